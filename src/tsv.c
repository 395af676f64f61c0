/* tsv.c -- numeric text tables and atomic text output.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "caimg/tsv.h"
#include "internal.h"

struct caimg_outfile {
    FILE *fp;
    char *path;
    char *tmp;      /* NULL for stdout */
};

char *caimg_temp_name(const char *path)
{
    static unsigned counter;
    size_t n = strlen(path) + 48;
    char *t = caimg_malloc(n, 1, "a file name");
    if (t) snprintf(t, n, "%s.tmp.%ld.%u", path, (long)getpid(), counter++);
    return t;
}

caimg_outfile *caimg_outfile_open(const char *path)
{
    caimg_outfile *o = caimg_calloc(1, sizeof *o, "an output file");
    if (!o) return NULL;
    o->path = caimg_strdup(path);
    if (!o->path) goto fail;
    if (strcmp(path, "-") == 0) {
        o->fp = stdout;
        return o;
    }
    if (caimg_output_ok(path)) goto fail;
    o->tmp = caimg_temp_name(path);
    if (!o->tmp) goto fail;
    caimg_temp_register(o->tmp);
    o->fp = fopen(o->tmp, "w");
    if (!o->fp) {
        caimg_error(CAIMG_EIO, "%s: cannot create: %s", path, strerror(errno));
        goto fail;
    }
    return o;
fail:
    if (o) {
        caimg_temp_unregister(o->tmp);
        free(o->path);
        free(o->tmp);
        free(o);
    }
    return NULL;
}

FILE *caimg_outfile_fp(caimg_outfile *o) { return o->fp; }

int caimg_outfile_commit(caimg_outfile *o)
{
    int rc = 0;
    if (!o) return caimg_error(CAIMG_EINVAL, "no output file");
    if (fflush(o->fp) != 0 || ferror(o->fp))
        rc = caimg_error(CAIMG_EIO, "%s: write failed: %s", o->path, strerror(errno));
    if (o->tmp) {
        if (fclose(o->fp) != 0 && !rc)
            rc = caimg_error(CAIMG_EIO, "%s: write failed: %s", o->path, strerror(errno));
        if (!rc && rename(o->tmp, o->path) != 0)
            rc = caimg_error(CAIMG_EIO, "%s: cannot rename: %s", o->path, strerror(errno));
        if (rc) unlink(o->tmp);
        caimg_temp_unregister(o->tmp);
    }
    free(o->path);
    free(o->tmp);
    free(o);
    return rc;
}

void caimg_outfile_abort(caimg_outfile *o)
{
    if (!o) return;
    if (o->tmp) {
        fclose(o->fp);
        unlink(o->tmp);
        caimg_temp_unregister(o->tmp);
    }
    free(o->path);
    free(o->tmp);
    free(o);
}

/* ---- reading ------------------------------------------------------------- */

void caimg_table_free(caimg_table *t)
{
    if (!t) return;
    if (t->colnames)
        for (size_t i = 0; i < t->ncols; i++) free(t->colnames[i]);
    free(t->colnames);
    free(t->data);
    free(t);
}

long caimg_table_column(const caimg_table *t, const char *name)
{
    if (!t->colnames) return -1;
    for (size_t i = 0; i < t->ncols; i++)
        if (strcmp(t->colnames[i], name) == 0) return (long)i;
    return -1;
}

int caimg_tsv_line(char **line, size_t *len, size_t lineno, const char *path)
{
    char *s = *line;
    size_t n = *len;
    /* getline keeps NUL bytes, which would silently end the line for the
     * string functions: a text table has none, so this is a binary file
     * (or a damaged one), not a short line. */
    if (memchr(s, '\0', n))
        return caimg_error(CAIMG_EFORMAT, "%s: line %zu holds a NUL byte: a binary file, "
                           "not a text table", path, lineno);
    /* Spreadsheets on Windows start UTF-8 files with a byte order mark;
     * left in place it makes the first row a header. */
    if (lineno == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        s += 3;
        n -= 3;
    }
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = '\0';
    *line = s;
    *len = n;
    return 0;
}

int caimg_tsv_skip(const char *line, size_t len)
{
    /* A comment may be indented with spaces (hand-edited files); after a
     * tab, '#' is the text of a field that follows an empty one. */
    size_t k = 0;
    while (k < len && line[k] == ' ') k++;
    if (k < len && line[k] == '#') return 1;
    /* Blank lines between blocks and a last line of spaces are common in
     * exported spreadsheets and hand-edited files; none is a row.  A line
     * of tabs only is not taken as a row of missing values either: such a
     * row spells them (nan, NA), as an empty line cannot. */
    for (size_t i = 0; i < len; i++)
        if (!isspace((unsigned char)line[i])) return 0;
    return 1;
}

int caimg_tsv_header(char *const *fields, size_t n)
{
    double v;
    for (size_t i = 0; i < n; i++)
        if (caimg_tsv_number(fields[i], &v)) return 1;
    return 0;
}

size_t caimg_tsv_split(char *line, char ***fields, size_t *cap)
{
    size_t n = 0;
    char sep = strchr(line, '\t') ? '\t' : strchr(line, ',') ? ',' : ' ';
    char *p = line;
    for (;;) {
        if (sep == ' ') while (*p == ' ') p++;
        if (n == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            char **f = realloc(*fields, nc * sizeof *f);
            if (!f) return (size_t)-1;
            *fields = f;
            *cap = nc;
        }
        (*fields)[n++] = p;
        char *e = strchr(p, sep);
        if (!e) break;
        *e = '\0';
        p = e + 1;
        if (sep == ' ') {
            while (*p == ' ') p++;
            if (!*p) break;
        }
    }
    return n;
}

int caimg_tsv_number(const char *s, double *v)
{
    while (isspace((unsigned char)*s)) s++;
    if (!*s || !strcmp(s, "NA") || !strcasecmp(s, "nan")) {
        *v = NAN;
        return 0;
    }
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    while (isspace((unsigned char)*end)) end++;
    return (end == s || *end) ? -1 : 0;
}

caimg_table *caimg_table_read(const char *path)
{
    FILE *fp = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!fp) {
        caimg_error(errno == ENOENT ? CAIMG_ENOENT : CAIMG_EIO, "%s: %s", path,
                    strerror(errno));
        return NULL;
    }
    caimg_table *t = caimg_calloc(1, sizeof *t, "a table");
    char *line = NULL, **fields = NULL;
    size_t linecap = 0, fcap = 0, cap = 0, lineno = 0;
    ssize_t len;
    int rc = t ? 0 : CAIMG_ENOMEM;
    while (!rc && (len = getline(&line, &linecap, fp)) >= 0) {
        lineno++;
        char *s0 = line;
        size_t n0 = (size_t)len;
        if ((rc = caimg_tsv_line(&s0, &n0, lineno, path))) break;
        if (caimg_tsv_skip(s0, n0)) continue;
        size_t n = caimg_tsv_split(s0, &fields, &fcap);
        if (n == (size_t)-1) { rc = caimg_error(CAIMG_ENOMEM, "out of memory reading %s", path); break; }
        if (t->ncols == 0) {
            t->ncols = n;
            if (caimg_tsv_header(fields, n)) {
                t->colnames = caimg_calloc(n, sizeof *t->colnames, "column names");
                if (!t->colnames) { rc = CAIMG_ENOMEM; break; }
                for (size_t i = 0; i < n; i++)
                    if (!(t->colnames[i] = caimg_strdup(fields[i]))) rc = CAIMG_ENOMEM;
                continue;
            }
        }
        if (n != t->ncols) {
            rc = caimg_error(CAIMG_EFORMAT, "%s: line %zu has %zu fields, expected %zu", path,
                             lineno, n, t->ncols);
            break;
        }
        if ((t->nrows + 1) * t->ncols > cap) {
            size_t nc = cap ? cap * 2 : t->ncols * 64;
            double *d = realloc(t->data, nc * sizeof *d);
            if (!d) { rc = caimg_error(CAIMG_ENOMEM, "out of memory reading %s", path); break; }
            t->data = d;
            cap = nc;
        }
        for (size_t i = 0; i < n; i++) {
            if (caimg_tsv_number(fields[i], &t->data[t->nrows * t->ncols + i])) {
                rc = caimg_error(CAIMG_EFORMAT, "%s: line %zu, field %zu: '%s' is not a number",
                                 path, lineno, i + 1, fields[i]);
                break;
            }
        }
        t->nrows++;
    }
    if (!rc && ferror(fp))
        rc = caimg_error(CAIMG_EIO, "%s: read error: %s", path, strerror(errno));
    if (!rc && t->nrows == 0)
        rc = caimg_error(CAIMG_EFORMAT, "%s: no data rows", path);
    free(line);
    free(fields);
    if (fp != stdin) fclose(fp);
    if (rc) {
        caimg_table_free(t);
        return NULL;
    }
    return t;
}
