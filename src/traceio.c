/* traceio.c -- private helpers of the trace stages (dff, deconv).
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- traces in text tables ---------------------------------------------- */

/* The rules are those of caimg_table_read (caimg/tsv.h), but the table is
 * read twice instead of held: once to check it and count its rows, then a
 * block of rows at a time as the deconvolution asks for them.  Held whole
 * as doubles it took 8 bytes per sample, 800 MB for 500000 neurons of 200
 * frames, where the HDF5 path needs a few blocks. */
struct caimg_trace_table {
    FILE *fp;
    char *path;           /* for messages */
    char *line;           /* getline's buffer */
    size_t linecap, lineno;
    char **fields;        /* pointers into line */
    size_t fcap;
    size_t nrows, ncols;
    size_t row;           /* data rows returned so far (second pass) */
    int header;           /* the first non-comment line holds column names */
    int header_skipped;
};

/* The next line with data (see caimg_tsv_skip), split into
 * fields.  Returns the number of fields, 0 at the end of the file, or a
 * negative status with a message. */
static long next_line(caimg_trace_table *t)
{
    ssize_t len;
    while ((len = getline(&t->line, &t->linecap, t->fp)) >= 0) {
        t->lineno++;
        char *s = t->line;
        size_t n0 = (size_t)len;
        int rc = caimg_tsv_line(&s, &n0, t->lineno, t->path);
        if (rc) return rc;
        if (caimg_tsv_skip(s, n0)) continue;
        size_t n = caimg_tsv_split(s, &t->fields, &t->fcap);
        if (n == (size_t)-1) return caimg_error(CAIMG_ENOMEM, "out of memory reading %s", t->path);
        return (long)n;
    }
    if (ferror(t->fp)) return caimg_error(CAIMG_EIO, "%s: read error: %s", t->path, strerror(errno));
    return 0;
}

/* Parse the fields of a data line into out[ncols] (out may be NULL: only
 * check).  The line has been split into t->fields. */
static int parse_row(caimg_trace_table *t, size_t n, float *out)
{
    if (n != t->ncols)
        return caimg_error(CAIMG_EFORMAT, "%s: line %zu has %zu fields, expected %zu", t->path,
                           t->lineno, n, t->ncols);
    for (size_t i = 0; i < n; i++) {
        double v;
        if (caimg_tsv_number(t->fields[i], &v))
            return caimg_error(CAIMG_EFORMAT, "%s: line %zu, field %zu: '%s' is not a number",
                               t->path, t->lineno, i + 1, t->fields[i]);
        if (out) out[i] = (float)v;
    }
    return CAIMG_OK;
}

void caimg_trace_table_close(caimg_trace_table *t)
{
    if (!t) return;
    if (t->fp) fclose(t->fp);
    free(t->path);
    free(t->line);
    free(t->fields);
    free(t);
}

caimg_trace_table *caimg_trace_table_open(const char *path, size_t *nrows, size_t *ncols)
{
    caimg_trace_table *t = caimg_calloc(1, sizeof *t, "a table reader");
    if (!t) return NULL;
    t->path = caimg_strdup(path);
    if (!t->path) goto fail;
    t->fp = fopen(path, "r");
    if (!t->fp) {
        caimg_error(errno == ENOENT ? CAIMG_ENOENT : CAIMG_EIO, "%s: %s", path, strerror(errno));
        goto fail;
    }
    long n = 0;
    int rc = CAIMG_OK;
    while (!rc && (n = next_line(t)) > 0) {
        if (t->ncols == 0) {
            t->ncols = (size_t)n;
            t->header = caimg_tsv_header(t->fields, (size_t)n);
            if (t->header) continue;
        }
        rc = parse_row(t, (size_t)n, NULL);
        t->nrows++;
    }
    if (rc || n < 0) goto fail;
    if (t->nrows == 0) {
        caimg_error(CAIMG_EFORMAT, "%s: no data rows", path);
        goto fail;
    }
    /* Back to the start for the second pass; a pipe cannot go back. */
    if (fseek(t->fp, 0, SEEK_SET) != 0) {
        caimg_error(CAIMG_EIO, "%s: cannot read the table a second time: %s", path,
                    strerror(errno));
        goto fail;
    }
    t->lineno = 0;
    *nrows = t->nrows;
    *ncols = t->ncols;
    return t;
fail:
    caimg_trace_table_close(t);
    return NULL;
}

int caimg_trace_table_read(caimg_trace_table *t, size_t m, float *buf)
{
    for (size_t r = 0; r < m; r++) {
        long n = next_line(t);
        if (n > 0 && t->header && !t->header_skipped) {
            t->header_skipped = 1;
            n = next_line(t);
        }
        if (n < 0) return (int)n;
        /* The first pass counted the rows; fewer now means the file
         * changed under us. */
        if (n == 0 || t->row >= t->nrows)
            return caimg_error(CAIMG_EFORMAT, "%s: the file changed while being read", t->path);
        int rc = parse_row(t, (size_t)n, buf + r * t->ncols);
        if (rc) return rc;
        t->row++;
    }
    return CAIMG_OK;
}
