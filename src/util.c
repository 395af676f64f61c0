/* util.c -- small helpers shared by the library modules.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYS_MMAN_H
#include <sys/mman.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "internal.h"

/* Lock-free atomic pointers, so that a signal handler may read the table
 * whatever thread it interrupts, in whatever state. */
static char *_Atomic temps[CAIMG_MAX_TEMPS];

void caimg_temp_register(char *path)
{
    for (size_t i = 0; i < CAIMG_MAX_TEMPS; i++) {
        char *none = NULL;
        if (atomic_compare_exchange_strong(&temps[i], &none, path)) return;
    }
}

void caimg_temp_unregister(const char *path)
{
    for (size_t i = 0; path && i < CAIMG_MAX_TEMPS; i++) {
        char *p = (char *)path;
        if (atomic_compare_exchange_strong(&temps[i], &p, NULL)) return;
    }
}

void caimg_remove_temporaries(void)
{
    for (size_t i = 0; i < CAIMG_MAX_TEMPS; i++) {
        char *p = atomic_load(&temps[i]);
        if (p) unlink(p);
    }
}

int caimg_output_ok(const char *path)
{
    struct stat st;
    if (path && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return caimg_error(CAIMG_EIO, "%s: is a directory", path);
    return 0;
}

/* The one message for a failed allocation of n x size bytes. */
static void *no_memory(size_t n, size_t size, const char *what)
{
    caimg_error(CAIMG_ENOMEM, "out of memory allocating %s (%zu x %zu bytes)",
                what ? what : "a buffer", n, size);
    return NULL;
}

void *caimg_malloc(size_t n, size_t size, const char *what)
{
    size_t bytes = caimg_mul(n, size);
    void *p = bytes == SIZE_MAX ? NULL : malloc(bytes ? bytes : 1);
    return p ? p : no_memory(n, size, what);
}

void *caimg_malloc_big(size_t n, size_t size, const char *what)
{
    size_t bytes = caimg_mul(n, size), huge = (size_t)2 << 20;
    if (bytes == SIZE_MAX || bytes < huge) return caimg_malloc(n, size, what);
    void *p = NULL;
    if (posix_memalign(&p, huge, bytes) != 0) return no_memory(n, size, what);
#if defined(HAVE_SYS_MMAN_H) && defined(MADV_HUGEPAGE)
    madvise(p, bytes - bytes % huge, MADV_HUGEPAGE);   /* only a hint */
#endif
    return p;
}

void *caimg_calloc(size_t n, size_t size, const char *what)
{
    void *p = (n && size && n > SIZE_MAX / size) ? NULL : calloc(n ? n : 1, size ? size : 1);
    return p ? p : no_memory(n, size, what);
}

char *caimg_strdup(const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = caimg_malloc(n, 1, "a string");
    if (d) memcpy(d, s, n);
    return d;
}

int caimg_nthreads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

double caimg_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
