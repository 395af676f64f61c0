/* traceio.c -- private helpers of the trace stages (dff, deconv).
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "caimg/error.h"
#include "internal.h"
#include "traceio.h"

static double attr_fs(caimg_h5 *f, const char *obj)
{
    double v = 0;
    if (!obj || !obj[0] || caimg_h5_exists(f, obj) != 1) return 0;
    if (caimg_h5_get_attr_double(f, obj, "fs", &v)) {
        caimg_clear_error();
        return 0;
    }
    return v > 0 ? v : 0;
}

double caimg_trace_fs(caimg_h5 *f, const char *dataset, const char *const *groups)
{
    double fs = attr_fs(f, dataset);
    if (fs > 0) return fs;
    char parent[512];
    snprintf(parent, sizeof parent, "%s", dataset);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        fs = attr_fs(f, parent);
        if (fs > 0) return fs;
    }
    for (size_t i = 0; groups && groups[i]; i++) {
        fs = attr_fs(f, groups[i]);
        if (fs > 0) return fs;
    }
    return 0;
}

size_t caimg_trace_block(size_t n, size_t bytes_per_row, size_t want)
{
    size_t b = want;
    if (!b) b = bytes_per_row ? (size_t)(64u << 20) / bytes_per_row : n;
    if (b < 1) b = 1;
    if (b > n) b = n;
    return b;
}

int caimg_trace_write_vec(caimg_h5 *f, const char *name, const double *v, size_t n, size_t k,
                          const char *units)
{
    size_t dims[2] = {n, k};
    int rc = caimg_h5_write(f, name, CAIMG_DT_F64, k > 1 ? 2 : 1, dims, v);
    if (!rc && units) rc = caimg_h5_set_attr_string(f, name, "units", units);
    return rc;
}
