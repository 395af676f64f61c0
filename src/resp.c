/* resp.c -- stimulus-locked responses from traces and schedules, and ready
 * response matrices from TSV or HDF5.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "caimg/h5io.h"
#include "caimg/resp.h"
#include "internal.h"

void caimg_resp_window_init(caimg_resp_window *w)
{
    w->offset = 0.0;
    w->length = 0.0;
    w->sum = 0;
}

void caimg_resp_free(caimg_resp *r)
{
    if (!r) return;
    if (r->names)
        for (size_t k = 0; k < r->nneur; k++) free(r->names[k]);
    free(r->names);
    free(r->r);
    free(r->stim);
    free(r->split);
    free(r);
}

static caimg_resp *resp_alloc(size_t P, size_t N)
{
    caimg_resp *r = caimg_calloc(1, sizeof *r, "responses");
    if (!r) return NULL;
    r->npres = P;
    r->nneur = N;
    r->r = caimg_malloc(caimg_mul(P, N), sizeof *r->r, "response matrix");
    r->stim = caimg_malloc(P ? P : 1, sizeof *r->stim, "stimulus ids");
    if (!r->r || !r->stim) {
        caimg_resp_free(r);
        return NULL;
    }
    return r;
}

/* A table value that must be a non-negative integer (frame, stimulus). */
static int as_index(double v, size_t *out)
{
    if (!(v >= 0) || v != floor(v) || v > 1e15) return -1;
    *out = (size_t)v;
    return 0;
}

caimg_resp *caimg_resp_from_traces(const float *traces, size_t N, size_t T, double fs,
                                   const char *traces_name, const caimg_table *sched,
                                   const char *sched_name, const caimg_resp_window *win)
{
    const char *tn = traces_name ? traces_name : "traces";
    const char *sn = sched_name ? sched_name : "schedule";
    long c_on = caimg_table_column(sched, "onset_frame");
    long c_st = caimg_table_column(sched, "stimulus");
    long c_du = caimg_table_column(sched, "duration_frames");
    if (c_on < 0 || c_st < 0) {
        caimg_error(CAIMG_EFORMAT, "%s: the schedule needs columns onset_frame and stimulus "
                    "(and optionally duration_frames) in a header line", sn);
        return NULL;
    }
    if (!(fs > 0)) {
        caimg_error(CAIMG_EINVAL, "the frame rate is unknown; give it with --fs");
        return NULL;
    }
    if (!(win->offset >= 0) || !isfinite(win->offset) || !isfinite(win->length)) {
        caimg_error(CAIMG_EINVAL, "response window offset %g s and length %g s: the offset must "
                    "be >= 0", win->offset, win->length);
        return NULL;
    }
    const size_t P = sched->nrows, nc = sched->ncols;
    caimg_resp *r = resp_alloc(P, N);
    if (!r) return NULL;
    const size_t off = (size_t)floor(win->offset * fs + 0.5);
    for (size_t p = 0; p < P; p++) {
        const double *row = sched->data + p * nc;
        size_t onset, stim, dur = 0;
        if (as_index(row[c_on], &onset)) {
            caimg_error(CAIMG_EFORMAT, "%s: row %zu: onset_frame %g is not a frame index (0-based "
                        "integer)", sn, p + 1, row[c_on]);
            goto fail;
        }
        if (as_index(row[c_st], &stim)) {
            caimg_error(CAIMG_EFORMAT, "%s: row %zu: stimulus %g is not a stimulus id (0-based "
                        "integer)", sn, p + 1, row[c_st]);
            goto fail;
        }
        if (c_du >= 0 && (as_index(row[c_du], &dur) || dur == 0)) {
            caimg_error(CAIMG_EFORMAT, "%s: row %zu: duration_frames %g is not a positive integer",
                        sn, p + 1, row[c_du]);
            goto fail;
        }
        size_t len;
        if (win->length > 0) len = (size_t)floor(win->length * fs + 0.5);
        else if (c_du >= 0) len = dur;
        else len = (size_t)floor(0.5 * fs + 0.5);
        if (len == 0) len = 1;
        size_t a = onset + off, b = a + len;
        if (b > T) {
            caimg_error(CAIMG_EFORMAT, "%s: row %zu: the response window (frames %zu to %zu) ends "
                        "past the end of the recording (%zu frames)", sn, p + 1, a, b - 1, T);
            goto fail;
        }
        r->stim[p] = stim;
        for (size_t k = 0; k < N; k++) {
            const float *tr = traces + k * T;
            double s = 0.0;
            int bad = 0;
            for (size_t t = a; t < b; t++) {
                if (isnan(tr[t])) bad = 1;
                if (isinf(tr[t])) {
                    caimg_error(CAIMG_EFORMAT, "%s: neuron %zu has an infinite value at frame %zu, "
                                "in the response window of %s row %zu", tn, k, t, sn, p + 1);
                    goto fail;
                }
                s += tr[t];
            }
            r->r[p * N + k] = bad ? NAN : (float)(win->sum ? s : s / (double)len);
        }
    }
    return r;
fail:
    caimg_resp_free(r);
    return NULL;
}

/* ---- ready matrices ------------------------------------------------------------ */

/* Split a line into fields on tabs, else commas, else runs of blanks. */
static size_t split_fields(char *line, char ***fields, size_t *cap)
{
    char sep = strchr(line, '\t') ? '\t' : strchr(line, ',') ? ',' : ' ';
    size_t n = 0;
    char *p = line;
    for (;;) {
        if (sep == ' ')
            while (*p == ' ') p++;
        if (sep == ' ' && !*p) break;
        if (n == *cap) {
            size_t nc = *cap ? 2 * *cap : 64;
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
    }
    /* Trim blanks around each field. */
    for (size_t i = 0; i < n; i++) {
        char *f = (*fields)[i];
        while (isspace((unsigned char)*f)) f++;
        size_t l = strlen(f);
        while (l > 0 && isspace((unsigned char)f[l - 1])) f[--l] = '\0';
        (*fields)[i] = f;
    }
    return n;
}

/* 0 and the value for numbers and missing-value spellings, -1 otherwise. */
static int field_number(const char *s, double *v)
{
    if (!*s || !strcmp(s, "NA") || !strcasecmp(s, "nan")) {
        *v = NAN;
        return 0;
    }
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return *end ? -1 : 0;
}

static int split_value(const char *s, signed char *v)
{
    if (!strcasecmp(s, "train") || !strcmp(s, "0")) { *v = 0; return 0; }
    if (!strcasecmp(s, "test") || !strcmp(s, "1")) { *v = 1; return 0; }
    return -1;
}

static caimg_resp *read_tsv(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        caimg_error(errno == ENOENT ? CAIMG_ENOENT : CAIMG_EIO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *line = NULL, **f = NULL;
    size_t lcap = 0, fcap = 0, lineno = 0, ncols = 0, rows = 0, rcap = 0;
    long c_stim = 0, c_split = -1;
    char **names = NULL;
    double *vals = NULL;           /* rows x ncols numbers (split as 0/1) */
    caimg_resp *r = NULL;
    int st = 0;
    ssize_t len;
    while (!st && (len = getline(&line, &lcap, fp)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (caimg_tsv_skip(line, (size_t)len)) continue;
        size_t n = split_fields(line, &f, &fcap);
        if (n == (size_t)-1) { st = caimg_error(CAIMG_ENOMEM, "out of memory reading %s", path); break; }
        if (ncols == 0) {
            ncols = n;
            int header = 0;
            double v;
            for (size_t i = 0; i < n; i++)
                if (field_number(f[i], &v)) header = 1;
            if (header) {
                c_stim = -1;
                names = caimg_calloc(n, sizeof *names, "column names");
                if (!names) { st = CAIMG_ENOMEM; break; }
                for (size_t i = 0; i < n && !st; i++) {
                    if (!(names[i] = caimg_strdup(f[i]))) st = CAIMG_ENOMEM;
                    if (c_stim < 0 && (!strcasecmp(f[i], "stimulus") || !strcasecmp(f[i], "scene") ||
                                       !strcasecmp(f[i], "image")))
                        c_stim = (long)i;
                    else if (c_split < 0 && !strcasecmp(f[i], "split"))
                        c_split = (long)i;
                }
                if (!st && c_stim < 0)
                    st = caimg_error(CAIMG_EFORMAT, "%s: no column named stimulus (or scene, image) "
                                     "in the header", path);
                continue;
            }
        }
        if (n != ncols) {
            st = caimg_error(CAIMG_EFORMAT, "%s: line %zu has %zu fields, expected %zu", path, lineno,
                             n, ncols);
            break;
        }
        if ((rows + 1) * ncols > rcap) {
            size_t nc = rcap ? 2 * rcap : 64 * ncols;
            double *d = realloc(vals, nc * sizeof *d);
            if (!d) { st = caimg_error(CAIMG_ENOMEM, "out of memory reading %s", path); break; }
            vals = d;
            rcap = nc;
        }
        double *row = vals + rows * ncols;
        for (size_t i = 0; i < n && !st; i++) {
            if ((long)i == c_split) {
                signed char sv = 0;
                if (split_value(f[i], &sv))
                    st = caimg_error(CAIMG_EFORMAT, "%s: line %zu: split is '%s', expected train or "
                                     "test", path, lineno, f[i]);
                row[i] = sv;
            } else if (field_number(f[i], &row[i])) {
                st = caimg_error(CAIMG_EFORMAT, "%s: line %zu, column %zu: '%s' is not a number",
                                 path, lineno, i + 1, f[i]);
            } else if (isinf(row[i])) {
                st = caimg_error(CAIMG_EFORMAT, "%s: line %zu, column %zu: infinite value", path,
                                 lineno, i + 1);
            }
        }
        rows++;
    }
    if (!st && ferror(fp)) st = caimg_error(CAIMG_EIO, "%s: read error", path);
    if (!st && rows == 0) st = caimg_error(CAIMG_EFORMAT, "%s: no data rows", path);
    size_t nn = ncols - 1 - (c_split >= 0);
    if (!st && nn == 0) st = caimg_error(CAIMG_EFORMAT, "%s: no neuron columns", path);
    if (!st) r = resp_alloc(rows, nn);
    if (!st && !r) st = CAIMG_ENOMEM;
    if (!st && c_split >= 0) {
        r->split = caimg_malloc(rows, sizeof *r->split, "split");
        if (!r->split) st = CAIMG_ENOMEM;
    }
    if (!st && names) {
        r->names = caimg_calloc(nn, sizeof *r->names, "neuron names");
        if (!r->names) st = CAIMG_ENOMEM;
    }
    for (size_t p = 0; !st && p < rows; p++) {
        const double *row = vals + p * ncols;
        if (as_index(row[c_stim], &r->stim[p])) {
            st = caimg_error(CAIMG_EFORMAT, "%s: data row %zu: stimulus %g is not a stimulus id "
                             "(0-based integer)", path, p + 1, row[c_stim]);
            break;
        }
        if (r->split) r->split[p] = (signed char)row[c_split];
        for (size_t i = 0, k = 0; i < ncols; i++) {
            if ((long)i == c_stim || (long)i == c_split) continue;
            r->r[p * nn + k] = (float)row[i];
            if (p == 0 && names) {
                r->names[k] = names[i];
                names[i] = NULL;
            }
            k++;
        }
    }
    if (names)
        for (size_t i = 0; i < ncols; i++) free(names[i]);
    free(names);
    free(vals);
    free(line);
    free(f);
    fclose(fp);
    if (st) {
        caimg_resp_free(r);
        return NULL;
    }
    return r;
}

static caimg_resp *read_h5(const char *path)
{
    caimg_h5 *f = caimg_h5_open_any(path, NULL);
    if (!f) return NULL;
    float *resp = NULL;
    double *stim = NULL, *split = NULL;
    size_t dr[CAIMG_H5_MAXRANK], ds[CAIMG_H5_MAXRANK], dsp[CAIMG_H5_MAXRANK];
    caimg_resp *r = NULL;
    int rank;
    int st = caimg_h5_read(f, "/responses", CAIMG_DT_F32, 2, &rank, dr, (void **)&resp);
    if (!st) st = caimg_h5_read(f, "/stimulus", CAIMG_DT_F64, 1, &rank, ds, (void **)&stim);
    if (!st && caimg_h5_exists(f, "/split"))
        st = caimg_h5_read(f, "/split", CAIMG_DT_F64, 1, &rank, dsp, (void **)&split);
    if (!st && ds[0] != dr[0])
        st = caimg_error(CAIMG_EFORMAT, "%s: /stimulus has %zu entries but /responses %zu rows", path,
                         ds[0], dr[0]);
    if (!st && split && dsp[0] != dr[0])
        st = caimg_error(CAIMG_EFORMAT, "%s: /split has %zu entries but /responses %zu rows", path,
                         dsp[0], dr[0]);
    if (!st && (dr[0] == 0 || dr[1] == 0))
        st = caimg_error(CAIMG_EFORMAT, "%s: /responses is empty", path);
    if (!st && !(r = resp_alloc(dr[0], dr[1]))) st = CAIMG_ENOMEM;
    if (!st && split && !(r->split = caimg_malloc(dr[0], 1, "split"))) st = CAIMG_ENOMEM;
    for (size_t p = 0; !st && p < dr[0]; p++) {
        if (as_index(stim[p], &r->stim[p]))
            st = caimg_error(CAIMG_EFORMAT, "%s: /stimulus[%zu] = %g is not a stimulus id", path, p,
                             stim[p]);
        else if (split && split[p] != 0 && split[p] != 1)
            st = caimg_error(CAIMG_EFORMAT, "%s: /split[%zu] = %g, expected 0 (train) or 1 (test)",
                             path, p, split[p]);
        else if (split)
            r->split[p] = (signed char)split[p];
        for (size_t k = 0; !st && k < dr[1]; k++)
            if (isinf(resp[p * dr[1] + k]))
                st = caimg_error(CAIMG_EFORMAT, "%s: /responses[%zu][%zu] is infinite", path, p, k);
    }
    if (!st) memcpy(r->r, resp, dr[0] * dr[1] * sizeof *resp);
    free(resp);
    free(stim);
    free(split);
    caimg_h5_close(f);
    if (st) {
        caimg_resp_free(r);
        return NULL;
    }
    return r;
}

caimg_resp *caimg_resp_read(const char *path)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char head[8] = {0};
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        caimg_error(errno == ENOENT ? CAIMG_ENOENT : CAIMG_EIO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t got = fread(head, 1, sizeof head, fp);
    fclose(fp);
    if (got == sizeof head && !memcmp(head, sig, sizeof sig)) return read_h5(path);
    return read_tsv(path);
}

int caimg_resp_means(const float *r, const size_t *row, size_t P, size_t N, size_t S, float *mean,
                     float *reps)
{
    double *sum = caimg_calloc(caimg_mul(S, N), sizeof *sum, "response sums");
    size_t *cnt = caimg_calloc(caimg_mul(S, N), sizeof *cnt, "response counts");
    if (!sum || !cnt) {
        free(sum);
        free(cnt);
        return CAIMG_ENOMEM;
    }
    for (size_t p = 0; p < P; p++) {
        if (row[p] == SIZE_MAX) continue;
        if (row[p] >= S) {
            free(sum);
            free(cnt);
            return caimg_error(CAIMG_EINVAL, "presentation %zu maps to row %zu of %zu", p, row[p], S);
        }
        for (size_t k = 0; k < N; k++) {
            float v = r[p * N + k];
            if (isnan(v)) continue;
            sum[row[p] * N + k] += v;
            cnt[row[p] * N + k]++;
        }
    }
    for (size_t s = 0; s < S; s++) {
        size_t most = 0;
        for (size_t k = 0; k < N; k++) {
            size_t c = cnt[s * N + k];
            mean[s * N + k] = c ? (float)(sum[s * N + k] / (double)c) : NAN;
            if (c > most) most = c;
        }
        if (reps) reps[s] = (float)most;
    }
    free(sum);
    free(cnt);
    return 0;
}
