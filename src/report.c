/* report.c -- a self-contained HTML report of a pipeline's results.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caimg/h5io.h"
#include "caimg/movie.h"
#include "caimg/report.h"
#include "caimg/tsv.h"
#include "caimg/version.h"
#include "internal.h"
#include "plot.h"

typedef struct {
    caimg_h5 **files;
    const char *const *paths;
    size_t n;
    caimg_str *b;
    double fs;          /* frame rate, 0 if unknown */
    caimg_str nav;      /* links to the sections written */
    size_t T;           /* frames of the traces/movie */
} report;

void caimg_report_opts_init(caimg_report_opts *o)
{
    memset(o, 0, sizeof *o);
    o->ncells = 6;
}

/* The first input holding `name`, or NULL. */
static caimg_h5 *holder(report *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (caimg_h5_exists(r->files[i], name)) return r->files[i];
    return NULL;
}

/* Read a whole dataset as float/double if present and of the given rank;
 * NULL (and no error) when absent. */
static void *get(report *r, const char *name, caimg_dtype dt, int rank, size_t *dims)
{
    caimg_h5 *f = holder(r, name);
    void *data = NULL;
    if (!f || caimg_h5_read(f, name, dt, rank, NULL, dims, &data)) {
        caimg_clear_error();
        return NULL;
    }
    return data;
}

static int get_attr(report *r, const char *obj, const char *name, double *v)
{
    caimg_h5 *f = holder(r, obj);
    int rc = f ? caimg_h5_get_attr_double(f, obj, name, v) : CAIMG_ENOENT;
    caimg_clear_error();
    return rc;
}

static void section(report *r, const char *id, const char *title)
{
    caimg_str_printf(&r->nav, "<a href='#%s'>", id);
    caimg_str_escape(&r->nav, title);
    caimg_str_printf(&r->nav, "</a>");
    caimg_str_printf(r->b, "<section id='%s'><h2>", id);
    caimg_str_escape(r->b, title);
    caimg_str_printf(r->b, "</h2>\n");
}

static void end_section(report *r) { caimg_str_printf(r->b, "</section>\n"); }

static void row(report *r, const char *k, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void row(report *r, const char *k, const char *fmt, ...)
{
    char v[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    caimg_str_printf(r->b, "<tr><th>");
    caimg_str_escape(r->b, k);
    caimg_str_printf(r->b, "</th><td>");
    caimg_str_escape(r->b, v);
    caimg_str_printf(r->b, "</td></tr>\n");
}

/* The mean image: from roi, else the motion template, else the average of
 * up to 200 evenly spaced frames of the movie. */
static float *mean_image(report *r, size_t *h, size_t *w, const char **what)
{
    size_t d[CAIMG_H5_MAXRANK];
    float *img = get(r, "/roi/mean", CAIMG_DT_F32, 2, d);
    *what = "mean image";
    if (!img) {
        img = get(r, "/mc/template", CAIMG_DT_F32, 2, d);
        *what = "motion-correction template";
    }
    if (img) {
        *h = d[0];
        *w = d[1];
        return img;
    }
    caimg_h5 *f = holder(r, "/movie");
    if (!f) return NULL;
    caimg_movie_opts mo;
    caimg_movie_opts_init(&mo);
    const char *path = caimg_h5_path(f);
    caimg_movie *m = caimg_movie_open(&path, 1, &mo);
    if (!m) { caimg_clear_error(); return NULL; }
    size_t T = caimg_movie_frames(m), Y = caimg_movie_height(m), X = caimg_movie_width(m);
    size_t k = T < 200 ? T : 200;
    float *acc = calloc(Y * X, sizeof *acc), *fr = malloc(Y * X * sizeof *fr);
    for (size_t i = 0; acc && fr && i < k; i++) {
        if (caimg_movie_read(m, i * T / k, 1, fr)) { free(acc); acc = NULL; break; }
        for (size_t p = 0; p < Y * X; p++) acc[p] += fr[p] / (float)k;
    }
    free(fr);
    caimg_movie_close(m);
    caimg_clear_error();
    *h = Y;
    *w = X;
    *what = "mean of the movie";
    return acc;
}

static void summary_section(report *r)
{
    section(r, "summary", "Recording");
    caimg_str_printf(r->b, "<table>\n");
    for (size_t i = 0; i < r->n; i++) row(r, "file", "%s", r->paths[i]);
    size_t d[CAIMG_H5_MAXRANK];
    int rank;
    caimg_h5 *f = holder(r, "/movie");
    if (f && caimg_h5_dims(f, "/movie", &rank, d) == 0 && rank == 3) {
        r->T = d[0];
        row(r, "movie", "%zu frames of %zu x %zu pixels", d[0], d[1], d[2]);
        double px = 0;
        if (get_attr(r, "/movie", "pixel_um", &px) == 0 && px > 0)
            row(r, "pixel size", "%g um (field of view %.0f x %.0f um)", px, px * (double)d[1],
                px * (double)d[2]);
    }
    if (r->fs > 0) {
        row(r, "frame rate", "%g Hz", r->fs);
        if (r->T) row(r, "duration", "%.1f s", (double)r->T / r->fs);
    }
    if (holder(r, "/roi/iscell")) {
        size_t n;
        uint8_t *isc = get(r, "/roi/iscell", CAIMG_DT_U8, 1, &n);
        size_t cells = 0;
        for (size_t i = 0; isc && i < n; i++) cells += isc[i] != 0;
        row(r, "ROIs", "%zu (%zu classified as cells)", n, cells);
        free(isc);
    }
    caimg_str_printf(r->b, "</table>\n");
    end_section(r);
}

static void images_section(report *r)
{
    size_t h = 0, w = 0, d[CAIMG_H5_MAXRANK];
    const char *what;
    float *mean = mean_image(r, &h, &w, &what);
    if (!mean) return;
    int32_t *labels = get(r, "/roi/labels", CAIMG_DT_I32, 2, d);
    if (labels && (d[0] != h || d[1] != w)) { free(labels); labels = NULL; }
    size_t nlab = 0;
    uint8_t *isc = get(r, "/roi/iscell", CAIMG_DT_U8, 1, &nlab);
    if (labels && !isc)
        for (size_t i = 0; i < h * w; i++) if (labels[i] > 0 && (size_t)labels[i] > nlab) nlab = (size_t)labels[i];
    section(r, "images", "Images");
    if (labels)
        caimg_str_printf(r->b, "<p>ROI outlines: <span class='cell'>cells</span>, "
                               "<span class='notcell'>rejected ROIs</span>; hover for the ROI index.</p>\n");
    int width = w >= 240 ? 480 : (int)(w * (480 / w));
    if (width < 256) width = 256;
    char title[128];
    snprintf(title, sizeof title, "%c%s", what[0] - 32, what + 1);
    caimg_svg_image(r->b, title, mean, h, w, 0, 0, width, labels, isc, nlab);
    float *corr = get(r, "/roi/corr", CAIMG_DT_F32, 2, d);
    if (corr && d[0] == h && d[1] == w)
        caimg_svg_image(r->b, "Local correlation image", corr, h, w, 0, 0, width, labels, isc, nlab);
    free(corr);
    end_section(r);
    free(mean);
    free(labels);
    free(isc);
}

static void motion_section(report *r)
{
    size_t d[CAIMG_H5_MAXRANK];
    float *sh = get(r, "/mc/shifts", CAIMG_DT_F32, 2, d);
    if (!sh || d[1] != 2) { free(sh); return; }
    size_t T = d[0];
    double *dy = malloc(T * sizeof *dy), *dx = malloc(T * sizeof *dx);
    if (!dy || !dx) { free(sh); free(dy); free(dx); r->b->failed = 1; return; }
    double rms = 0, mx = 0;
    for (size_t t = 0; t < T; t++) {
        dy[t] = sh[2 * t];
        dx[t] = sh[2 * t + 1];
        double m = hypot(dy[t], dx[t]);
        rms += m * m;
        if (m > mx) mx = m;
    }
    rms = sqrt(rms / (double)(T ? T : 1));
    section(r, "motion", "Motion correction");
    caimg_str_printf(r->b, "<table>\n");
    row(r, "displacement", "RMS %.2f px, largest %.2f px", rms, mx);
    double v, v2;
    if (get_attr(r, "/mc", "crispness_before", &v) == 0 && get_attr(r, "/mc", "crispness_after", &v2) == 0)
        row(r, "crispness of the mean image", "%.4g before, %.4g after (%+.1f%%)", v, v2,
            100 * (v2 - v) / (v ? v : 1));
    if (get_attr(r, "/mc", "bidi_offset", &v) == 0)
        row(r, "bidirectional-scan offset", "%g px", v);
    int32_t *valid = get(r, "/mc/valid", CAIMG_DT_I32, 1, d);
    if (valid && d[0] == 4)
        row(r, "valid region", "rows %d-%d, columns %d-%d", valid[0], valid[1] - 1, valid[2],
            valid[3] - 1);
    free(valid);
    caimg_str_printf(r->b, "</table>\n");
    double dt = r->fs > 0 ? 1 / r->fs : 1;
    caimg_series s[2] = {
        {"dy (rows)", NULL, dy, T, 0, dt, "#1f77b4", 0, 0},
        {"dx (columns)", NULL, dx, T, 0, dt, "#d62728", 0, 0},
    };
    caimg_plot_opts o = {"Rigid shifts", r->fs > 0 ? "time (s)" : "frame", "shift (px)",
                         800, 220, 0, 0, 0, 0, 0};
    caimg_svg_lines(r->b, &o, s, 2);
    float *corr = get(r, "/mc/corr", CAIMG_DT_F32, 1, d);
    if (corr && d[0] == T) {
        for (size_t t = 0; t < T; t++) dy[t] = corr[t];
        caimg_series c = {"correlation", NULL, dy, T, 0, dt, "#2ca02c", 0, 0};
        caimg_plot_opts oc = {"Correlation of each corrected frame with the template",
                              r->fs > 0 ? "time (s)" : "frame", "r", 800, 180, 0, 0, 0, 0, 0};
        caimg_svg_lines(r->b, &oc, &c, 1);
    }
    free(corr);
    end_section(r);
    free(sh);
    free(dy);
    free(dx);
}

/* Cells to show: the classified cells with the highest SNR. */
static size_t pick_cells(report *r, size_t N, size_t want, size_t *idx)
{
    size_t n1 = 0, n2 = 0;
    uint8_t *isc = get(r, "/roi/iscell", CAIMG_DT_U8, 1, &n1);
    double *snr = get(r, "/roi/stats/snr", CAIMG_DT_F64, 1, &n2);
    size_t k = 0;
    int *used = calloc(N, sizeof *used);
    while (used && k < want && k < N) {
        size_t best = N;
        for (size_t i = 0; i < N; i++) {
            if (used[i]) continue;
            int ci = isc && n1 == N ? isc[i] != 0 : 1;
            if (best == N) { best = i; continue; }
            int cb = isc && n1 == N ? isc[best] != 0 : 1;
            double si = snr && n2 == N ? snr[i] : 0, sb = snr && n2 == N ? snr[best] : 0;
            if (ci > cb || (ci == cb && si > sb)) best = i;
        }
        used[best] = 1;
        idx[k++] = best;
    }
    free(used);
    free(isc);
    free(snr);
    return k;
}

static int read_row(report *r, const char *name, size_t i, size_t N, size_t T, double *out)
{
    caimg_h5 *f = holder(r, name);
    int rank;
    size_t d[CAIMG_H5_MAXRANK];
    if (!f || caimg_h5_dims(f, name, &rank, d) || rank != 2 || d[0] != N || d[1] != T
        || caimg_h5_read_rows(f, name, CAIMG_DT_F64, i, 1, out)) {
        caimg_clear_error();
        return -1;
    }
    return 0;
}

static void traces_section(report *r, int ncells)
{
    static const struct { const char *ds, *label, *color; } kinds[] = {
        {"/roi/F", "F", "#1f77b4"},
        {"/roi/Fneu", "neuropil", "#7f7f7f"},
        {"/dff/dff", "dF/F", "#2ca02c"},
        {"/deconv/c", "denoised", "#9467bd"},
        {"/deconv/spikes", "spikes", "#d62728"},
    };
    caimg_h5 *f = holder(r, "/roi/F");
    int rank;
    size_t d[CAIMG_H5_MAXRANK];
    if (!f || caimg_h5_dims(f, "/roi/F", &rank, d) || rank != 2 || d[0] == 0) {
        caimg_clear_error();
        return;
    }
    size_t N = d[0], T = d[1];
    size_t idx[64];
    size_t k = pick_cells(r, N, (size_t)(ncells > 64 ? 64 : ncells), idx);
    section(r, "traces", "Example traces");
    caimg_str_printf(r->b, "<p>%zu of %zu ROIs: the cells with the highest SNR.</p>\n", k, N);
    double *buf = malloc(5 * T * sizeof *buf);
    if (!buf) { r->b->failed = 1; return; }
    for (size_t c = 0; c < k; c++) {
        caimg_series s[5];
        size_t ns = 0;
        for (size_t j = 0; j < 5; j++) {
            if (read_row(r, kinds[j].ds, idx[c], N, T, buf + ns * T)) continue;
            caimg_series t = {kinds[j].label, NULL, buf + ns * T, T, 0,
                              r->fs > 0 ? 1 / r->fs : 1, kinds[j].color, 0, 0};
            s[ns++] = t;
        }
        char title[64];
        snprintf(title, sizeof title, "ROI %zu", idx[c]);
        caimg_plot_opts o = {title, r->fs > 0 ? "time (s)" : "frame", NULL, 800, 150, 1, 0, 0, 0, 0};
        caimg_svg_lines(r->b, &o, s, ns);
    }
    free(buf);
    end_section(r);
}

static void stats_section(report *r)
{
    caimg_h5 *f = holder(r, "/roi/stats");
    char **names;
    size_t n;
    if (!f || caimg_h5_list(f, "/roi/stats", &names, &n)) {
        caimg_clear_error();
        return;
    }
    section(r, "stats", "ROI statistics");
    caimg_str_printf(r->b, "<div class='grid'>\n");
    for (size_t i = 0; i < n; i++) {
        char full[300];
        snprintf(full, sizeof full, "/roi/stats/%s", names[i]);
        size_t len;
        double *v = get(r, full, CAIMG_DT_F64, 1, &len);
        if (!v) continue;
        caimg_plot_opts o = {names[i], names[i], NULL, 300, 190, 0, 0, 0, 0, 0};
        caimg_svg_histogram(r->b, &o, v, len, 0, NULL);
        free(v);
    }
    caimg_str_printf(r->b, "</div>\n");
    caimg_h5_list_free(names, n);
    end_section(r);
}

/* Trial averages of the measured responses of each test stimulus, from the
 * presentations the fit kept: [S][N], NaN where a stimulus has no valid
 * presentation. */
static double *test_means(report *r, const int32_t *stim, size_t S, size_t N)
{
    size_t dp[CAIMG_H5_MAXRANK], dr[CAIMG_H5_MAXRANK];
    int32_t *ps = get(r, "/fit/presentation_stimulus", CAIMG_DT_I32, 1, dp);
    float *resp = get(r, "/fit/responses", CAIMG_DT_F32, 2, dr);
    double *mean = calloc(S * N, sizeof *mean);
    size_t *cnt = calloc(S * N, sizeof *cnt);
    if (!ps || !resp || !mean || !cnt || dr[0] != dp[0] || dr[1] != N) {
        free(ps); free(resp); free(mean); free(cnt);
        return NULL;
    }
    for (size_t p = 0; p < dp[0]; p++)
        for (size_t s = 0; s < S; s++) {
            if (ps[p] != stim[s]) continue;
            for (size_t n = 0; n < N; n++) {
                float v = resp[p * N + n];
                if (isfinite(v)) { mean[s * N + n] += v; cnt[s * N + n]++; }
            }
        }
    for (size_t i = 0; i < S * N; i++) mean[i] = cnt[i] ? mean[i] / (double)cnt[i] : NAN;
    free(ps);
    free(resp);
    free(cnt);
    return mean;
}

static void model_section(report *r)
{
    size_t d[CAIMG_H5_MAXRANK], dn[CAIMG_H5_MAXRANK];
    double *corr = get(r, "/fit/eval/corr_avg", CAIMG_DT_F64, 1, dn);
    if (!corr) return;
    size_t N = dn[0];
    section(r, "model", "Response model");
    caimg_str_printf(r->b, "<table>\n");
    double v;
    caimg_h5 *f = holder(r, "/fit/eval");
    char *loss = NULL;
    if (holder(r, "/fit") && caimg_h5_get_attr_string(holder(r, "/fit"), "/fit", "loss", &loss) == 0)
        row(r, "loss", "%s", loss);
    free(loss);
    if (f && caimg_h5_get_attr_double(f, "/fit/eval", "mean_corr_avg", &v) == 0)
        row(r, "held-out correlation with trial averages", "mean %.3f over %zu neurons", v, N);
    if (f && caimg_h5_get_attr_double(f, "/fit/eval", "mean_feve", &v) == 0 && isfinite(v))
        row(r, "fraction of explainable variance explained", "mean %.3f", v);
    long be;
    if (holder(r, "/fit") && caimg_h5_get_attr_long(holder(r, "/fit"), "/fit", "best_epoch", &be) == 0)
        row(r, "weights kept from epoch", "%ld", be);
    caimg_clear_error();
    caimg_str_printf(r->b, "</table>\n");
    caimg_plot_opts oh = {"Held-out correlation with trial averages, per neuron", "r", NULL,
                          360, 220, 0, 0, 0, 0, 0};
    caimg_svg_histogram(r->b, &oh, corr, N, 0, NULL);
    double *vc = get(r, "/fit/curve/val_corr", CAIMG_DT_F64, 1, d);
    double *tl = vc ? get(r, "/fit/curve/train_loss", CAIMG_DT_F64, 1, d) : NULL;
    if (vc && tl) {
        caimg_series s[2] = {{"training loss", NULL, tl, d[0], 1, 1, "#1f77b4", 0, 0},
                             {"validation r", NULL, vc, d[0], 1, 1, "#2ca02c", 0, 0}};
        caimg_plot_opts oc = {"Training curve", "epoch", NULL, 420, 180, 1, 0, 0, 0, 0};
        caimg_svg_lines(r->b, &oc, s, 2);
    }
    free(vc);
    free(tl);
    /* Predicted against measured trial averages on the held-out stimuli,
     * for the best-predicted neurons. */
    int32_t *stim = get(r, "/fit/test/stimulus", CAIMG_DT_I32, 1, d);
    size_t S = stim ? d[0] : 0;
    float *pred = stim ? get(r, "/fit/test/pred", CAIMG_DT_F32, 2, d) : NULL;
    double *meas = pred && d[0] == S && d[1] == N ? test_means(r, stim, S, N) : NULL;
    if (meas) {
        caimg_str_printf(r->b, "<div class='grid'>\n");
        int used[64] = {0};
        double *x = malloc(S * sizeof *x), *y = malloc(S * sizeof *y);
        for (int k = 0; k < 4 && k < (int)N && x && y; k++) {
            size_t best = N;
            for (size_t n = 0; n < N && n < 64; n++)
                if (!used[n] && isfinite(corr[n]) && (best == N || corr[n] > corr[best])) best = n;
            if (best == N) break;
            used[best] = 1;
            for (size_t s2 = 0; s2 < S; s2++) {
                x[s2] = meas[s2 * N + best];
                y[s2] = pred[s2 * N + best];
            }
            char t[96];
            snprintf(t, sizeof t, "Model neuron %zu: r = %.2f", best, corr[best]);
            caimg_plot_opts os = {t, "measured (trial average)", "predicted", 280, 260, 0, 0, 1, 0, 0};
            caimg_svg_scatter(r->b, &os, x, y, S, NULL);
        }
        free(x);
        free(y);
        caimg_str_printf(r->b, "</div>\n");
    }
    free(stim);
    free(pred);
    free(meas);
    free(corr);
    end_section(r);
}

/* Robustness curves: one chart per metric and budget type, one line per
 * attack configuration. */
static void robustness_section(report *r)
{
    caimg_h5 *f = holder(r, "/attack/curves");
    char **names;
    size_t n;
    if (!f || caimg_h5_list(f, "/attack/curves", &names, &n) || n == 0) {
        caimg_clear_error();
        return;
    }
    section(r, "robustness", "Robustness to adversarial stimuli");
    static const char *const types[] = {"linf", "l2", "feature"};
    static const char *const xlab[] = {"L-infinity budget (fraction of the pixel range)",
                                       "L2 budget (RMS per pixel, fraction of the range)",
                                       "feature budget (relative L2 of the layer)"};
    static const struct { const char *ds, *label; } metrics[] = {
        {"rel_change", "response change / natural s.d."},
        {"decode_acc", "decoding accuracy"},
    };
    caimg_series *s = calloc(n, sizeof *s);
    double **bud = calloc(n, sizeof *bud), **val = calloc(n, sizeof *val);
    caimg_str_printf(r->b, "<div class='grid'>\n");
    for (size_t t = 0; s && bud && val && t < 3; t++)
        for (size_t m = 0; m < 2; m++) {
            size_t ns = 0;
            for (size_t i = 0; i < n; i++) {
                char obj[300], full[360], *bt = NULL;
                snprintf(obj, sizeof obj, "/attack/curves/%s", names[i]);
                if (caimg_h5_get_attr_string(f, obj, "budget_type", &bt) || strcmp(bt, types[t])) {
                    free(bt);
                    continue;
                }
                free(bt);
                size_t d1[CAIMG_H5_MAXRANK], d2[CAIMG_H5_MAXRANK];
                snprintf(full, sizeof full, "%s/budget", obj);
                double *b = get(r, full, CAIMG_DT_F64, 1, d1);
                snprintf(full, sizeof full, "%s/%s", obj, metrics[m].ds);
                double *v = get(r, full, CAIMG_DT_F64, 1, d2);
                if (!b || !v || d1[0] != d2[0]) { free(b); free(v); continue; }
                bud[ns] = b;
                val[ns] = v;
                caimg_series one = {names[i], b, v, d1[0], 0, 0, NULL, 1, 0};
                s[ns++] = one;
            }
            if (ns) {
                caimg_plot_opts o = {metrics[m].label, xlab[t], metrics[m].label, 480, 260, 0, 0, 0, 0, 0};
                caimg_svg_lines(r->b, &o, s, ns);
            }
            for (size_t i = 0; i < ns; i++) { free(bud[i]); free(val[i]); }
        }
    caimg_str_printf(r->b, "</div>\n");
    caimg_clear_error();
    free(s);
    free(bud);
    free(val);
    caimg_h5_list_free(names, n);
    end_section(r);
}

static void provenance_section(report *r)
{
    int any = 0;
    for (size_t k = 0; k < r->n; k++) {
        char **recs;
        size_t nrec;
        if (caimg_h5_list(r->files[k], "/provenance", &recs, &nrec)) continue;
        if (!any++) {
            section(r, "provenance", "Provenance");
            caimg_str_printf(r->b, "<table class='prov'><tr><th>step</th><th>date</th>"
                             "<th>command</th></tr>\n");
        }
        for (size_t i = 0; i < nrec; i++) {
            char obj[300];
            snprintf(obj, sizeof obj, "/provenance/%s", recs[i]);
            char *cmd = NULL, *date = NULL;
            caimg_h5_get_attr_string(r->files[k], obj, "command_line", &cmd);
            caimg_h5_get_attr_string(r->files[k], obj, "date", &date);
            caimg_str_printf(r->b, "<tr><td>");
            caimg_str_escape(r->b, recs[i]);
            caimg_str_printf(r->b, "</td><td>");
            caimg_str_escape(r->b, date ? date : "");
            caimg_str_printf(r->b, "</td><td><code>");
            caimg_str_escape(r->b, cmd ? cmd : "");
            caimg_str_printf(r->b, "</code></td></tr>\n");
            free(cmd);
            free(date);
        }
        caimg_h5_list_free(recs, nrec);
    }
    caimg_clear_error();
    if (any) {
        caimg_str_printf(r->b, "</table>\n");
        end_section(r);
    }
}

static const char css[] =
    "body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1em 2em;color:#222}"
    "h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}"
    "table{border-collapse:collapse}th,td{text-align:left;padding:2px 12px 2px 0;vertical-align:top}"
    "table.prov td{font-size:12px}figure{display:inline-block;margin:.4em 1em .8em 0}"
    "figcaption{font-size:12px;color:#555}.tick{font-size:10px;fill:#555}.lab{font-size:11px;fill:#333}"
    ".grid{display:flex;flex-wrap:wrap}.cell{color:#c90;font-weight:600}.notcell{color:#5fa8d3;font-weight:600}"
    "nav a{margin-right:1em}footer{margin-top:2em;font-size:12px;color:#777}";

int caimg_report_write(const char *const *inputs, size_t n, const char *out,
                       const caimg_report_opts *opts)
{
    caimg_report_opts defaults;
    caimg_init();
    if (!opts) {
        caimg_report_opts_init(&defaults);
        opts = &defaults;
    }
    if (n == 0) return caimg_error(CAIMG_EINVAL, "no input files");
    report r = {0};
    caimg_str b;
    caimg_str_init(&b);
    r.b = &b;
    r.paths = inputs;
    r.n = n;
    r.files = caimg_calloc(n, sizeof *r.files, "file handles");
    int rc = r.files ? 0 : CAIMG_ENOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        r.files[i] = caimg_h5_open(inputs[i]);
        if (!r.files[i]) rc = CAIMG_EFORMAT;
    }
    if (!rc && !holder(&r, "/movie") && !holder(&r, "/roi") && !holder(&r, "/mc")
        && !holder(&r, "/dff") && !holder(&r, "/deconv") && !holder(&r, "/fit")
        && !holder(&r, "/attack"))
        rc = caimg_error(CAIMG_EFORMAT, "%s: holds no results a report can show", inputs[0]);
    if (!rc) {
        static const char *const fs_holders[] = {"/roi", "/dff", "/deconv", "/mc", "/movie"};
        for (size_t i = 0; i < 5 && r.fs <= 0; i++) get_attr(&r, fs_holders[i], "fs", &r.fs);
        const char *title = opts->title ? opts->title : inputs[0];
        summary_section(&r);
        images_section(&r);
        motion_section(&r);
        if (opts->ncells > 0) traces_section(&r, opts->ncells);
        stats_section(&r);
        model_section(&r);
        robustness_section(&r);
        provenance_section(&r);
        /* The page: head, navigation to the sections actually present, body. */
        caimg_str page;
        caimg_str_init(&page);
        caimg_str_printf(&page, "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
                         "<meta name='viewport' content='width=device-width'><title>caimg report: ");
        caimg_str_escape(&page, title);
        caimg_str_printf(&page, "</title><style>%s</style></head><body>\n<h1>", css);
        caimg_str_escape(&page, title);
        caimg_str_printf(&page, "</h1>\n<nav>%s</nav>\n", r.nav.s ? r.nav.s : "");
        caimg_str_append(&page, b.s ? b.s : "", b.len);
        caimg_str_printf(&page, "<footer>Made by caimg %s.</footer>\n</body></html>\n",
                         caimg_version());
        if (page.failed) b.failed = 1;
        caimg_str_free(&b);
        b = page;
        if (b.failed) rc = caimg_error(CAIMG_ENOMEM, "out of memory writing the report");
    }
    if (!rc) {
        caimg_outfile *o = caimg_outfile_open(out);
        if (!o) rc = CAIMG_EIO;
        else {
            fwrite(b.s, 1, b.len, caimg_outfile_fp(o));
            rc = caimg_outfile_commit(o);
        }
    }
    for (size_t i = 0; r.files && i < n; i++) caimg_h5_close(r.files[i]);
    free(r.files);
    caimg_str_free(&b);
    caimg_str_free(&r.nav);
    return rc;
}
