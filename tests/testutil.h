/* testutil.h -- helpers shared by the Check suites.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#ifndef CAIMG_TESTUTIL_H
#define CAIMG_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

/* A fresh temporary directory for one test; removed by tu_rmdir(). */
static inline char *tu_tmpdir(void)
{
    char *d = strdup("/tmp/caimg-test-XXXXXX");
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_nonnull(mkdtemp(d));
    return d;
}

static inline void tu_rmdir(char *d)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    ck_assert_int_eq(system(cmd), 0);
    free(d);
}

/* dir/name in a static rotating buffer. */
static inline const char *tu_path(const char *dir, const char *name)
{
    static char buf[8][1200];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* Number of entries in a directory other than . and .. whose name contains
 * `needle` (used to check that no temporary file is left behind). */
static inline int tu_count(const char *dir, const char *needle)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | grep -c -- '%s'", dir, needle);
    FILE *p = popen(cmd, "r");
    int n = 0;
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = 0;
        pclose(p);
    }
    return n;
}

/* Run a suite and return the process exit status. */
static inline int tu_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
