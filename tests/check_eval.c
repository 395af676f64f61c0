/* check_eval.c -- scoring against ground truth: perfect scores for the
 * truth itself, worse ones for perturbed truth, and the building blocks
 * (assignment, shift errors, binned correlation, mask matching).
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <hdf5.h>

#include "caimg/caimg.h"
#include "caimg/eval.h"
#include "caimg/h5io.h"
#include "caimg/simulate.h"
#include "testutil.h"

/* ---- assignment ----------------------------------------------------------- */

static double brute(const double *c, size_t nr, size_t nc, size_t r, unsigned used)
{
    if (r == nr) return 0;
    double best = INFINITY;
    /* Rows beyond the columns may stay unassigned. */
    size_t assigned = (size_t)__builtin_popcount(used);
    if (nr - r > nc - assigned) best = brute(c, nr, nc, r + 1, used);
    for (size_t j = 0; j < nc; j++)
        if (!(used & (1u << j))) {
            double v = c[r * nc + j] + brute(c, nr, nc, r + 1, used | (1u << j));
            if (v < best) best = v;
        }
    return best;
}

START_TEST(assignment_is_optimal)
{
    srand(11);
    for (int trial = 0; trial < 300; trial++) {
        size_t nr = 1 + (size_t)(rand() % 6), nc = 1 + (size_t)(rand() % 6);
        double c[36];
        for (size_t i = 0; i < nr * nc; i++) c[i] = (rand() % 1000) / 100.0 - (trial % 3 ? 0 : 5);
        long a[6];
        ck_assert_int_eq(caimg_assign(c, nr, nc, a), 0);
        double tot = 0;
        unsigned used = 0;
        size_t n = 0;
        for (size_t r = 0; r < nr; r++) {
            if (a[r] < 0) continue;
            ck_assert(a[r] < (long)nc && !(used & (1u << a[r])));
            used |= 1u << a[r];
            tot += c[r * nc + (size_t)a[r]];
            n++;
        }
        ck_assert_uint_eq(n, nr < nc ? nr : nc);
        ck_assert_msg(fabs(tot - brute(c, nr, nc, 0, 0)) < 1e-9, "trial %d: %g vs %g", trial, tot,
                      brute(c, nr, nc, 0, 0));
    }
    double bad[1] = {NAN};
    long a[1];
    ck_assert_int_eq(caimg_assign(bad, 1, 1, a), CAIMG_EINVAL);
}
END_TEST

/* ---- shifts and correlations ------------------------------------------------- */

START_TEST(shift_errors)
{
    size_t T = 20000;
    float *tr = malloc(2 * T * sizeof(float)), *es = malloc(2 * T * sizeof(float));
    srand(3);
    for (size_t i = 0; i < 2 * T; i++) tr[i] = (float)(rand() % 1000) / 100.0f;
    caimg_eval_shifts_result r;
    caimg_eval_shifts(tr, tr, T, 1, &r);
    ck_assert(r.rms == 0 && r.max == 0);
    /* A constant template offset is removed and reported... */
    for (size_t t = 0; t < T; t++) {
        es[2 * t] = tr[2 * t] + 2.0f;
        es[2 * t + 1] = tr[2 * t + 1] - 1.0f;
    }
    caimg_eval_shifts(tr, es, T, 1, &r);
    ck_assert(r.rms < 1e-5 && fabs(r.offset[0] - 2) < 1e-5 && fabs(r.offset[1] + 1) < 1e-5);
    /* ...unless asked not to. */
    caimg_eval_shifts(tr, es, T, 0, &r);
    ck_assert_double_eq_tol(r.rms, sqrt(5.0), 1e-5);
    /* Uniform errors of half-width 0.1 per axis: rms sqrt(2/3) * 0.1. */
    for (size_t i = 0; i < 2 * T; i++) es[i] = tr[i] + 0.1f * (2.0f * (float)rand() / (float)RAND_MAX - 1.0f);
    caimg_eval_shifts(tr, es, T, 1, &r);
    ck_assert_msg(fabs(r.rms / (0.1 * sqrt(2.0 / 3.0)) - 1) < 0.03, "rms %g", r.rms);
    ck_assert(r.max <= 0.1 * sqrt(2.0) + 1e-3);
    free(tr);
    free(es);
}
END_TEST

START_TEST(binned_correlation)
{
    size_t n = 3000;
    float *a = calloc(n, sizeof(float)), *b = calloc(n, sizeof(float));
    srand(5);
    for (size_t i = 0; i < n; i++) a[i] = rand() % 7 == 0 ? (float)(1 + rand() % 2) : 0.0f;
    ck_assert_double_eq_tol(caimg_eval_corr_binned(a, a, n, 30, 0.04), 1.0, 1e-12);
    ck_assert_double_eq_tol(caimg_eval_corr(a, a, n), 1.0, 1e-12);
    /* Bins of 40 ms at 30 Hz do not align with frames: a spike one frame
     * late still correlates, partly, and a spike moved far does not. */
    for (size_t i = 1; i < n; i++) b[i] = a[i - 1];
    double r1 = caimg_eval_corr_binned(a, b, n, 30, 0.04);
    ck_assert_msg(r1 > 0.05 && r1 < 0.6, "one frame late: %g", r1);
    for (size_t i = 0; i < n; i++) b[i] = a[(i + 50) % n];
    ck_assert(fabs(caimg_eval_corr_binned(a, b, n, 30, 0.04)) < 0.1);
    /* A bin as wide as the recording leaves one bin: undefined. */
    ck_assert(isnan(caimg_eval_corr_binned(a, a, n, 30, 100.0)));
    memset(b, 0, n * sizeof(float));
    ck_assert(isnan(caimg_eval_corr(a, b, n)));
    /* Wide bins forgive timing: at 1 s, one frame late is almost perfect. */
    for (size_t i = 1; i < n; i++) b[i] = a[i - 1];
    ck_assert(caimg_eval_corr_binned(a, b, n, 30, 1.0) > 0.95);
    free(a);
    free(b);
}
END_TEST

/* ---- mask matching ---------------------------------------------------------------- */

/* Masks on a 1 x 40 image from [lo, hi] pixel ranges. */
static void ranges(const int (*r)[2], size_t n, int64_t *start, int32_t *index)
{
    size_t m = 0;
    for (size_t k = 0; k < n; k++) {
        start[k] = (int64_t)m;
        for (int x = r[k][0]; x <= r[k][1]; x++) {
            index[2 * m] = 0;
            index[2 * m + 1] = x;
            m++;
        }
    }
    start[n] = (int64_t)m;
}

START_TEST(matching_is_optimal_not_greedy)
{
    /* Truth A = 0..9 and B = 3..12 overlap.  ROI r1 = A exactly (IoU 1 with
     * A, 0.54 with B), r2 = 0..7 (0.8 with A only).  Greedy matching by IoU
     * takes r1-A and strands r2 and B; the optimal assignment pairs r1-B and
     * r2-A. */
    const int tr[2][2] = {{0, 9}, {3, 12}}, ro[2][2] = {{0, 9}, {0, 7}};
    int64_t ts[3], rs[3];
    int32_t ti[80], ri[80];
    ranges(tr, 2, ts, ti);
    ranges(ro, 2, rs, ri);
    caimg_masks T = {2, ts, ti, NULL}, R = {2, rs, ri, NULL};
    caimg_eval_match m;
    ck_assert_int_eq(caimg_eval_match_masks(&T, &R, 1, 40, 0.5, NULL, &m), 0);
    ck_assert_uint_eq(m.matched, 2);
    ck_assert_int_eq(m.roi_of_true[0], 1);
    ck_assert_int_eq(m.roi_of_true[1], 0);
    ck_assert_double_eq_tol(m.f1, 1.0, 1e-12);
    ck_assert_double_eq_tol(m.iou[0], 0.8, 1e-12);
    ck_assert_double_eq_tol(m.iou[1], 7.0 / 13.0, 1e-12);
    caimg_eval_match_free(&m);
    /* Uncounted truth: its match is not a false positive, nor a hit. */
    unsigned char counted[2] = {1, 0};
    ck_assert_int_eq(caimg_eval_match_masks(&T, &R, 1, 40, 0.5, counted, &m), 0);
    ck_assert_uint_eq(m.counted, 1);
    ck_assert_double_eq_tol(m.recall, 1.0, 1e-12);
    ck_assert_double_eq_tol(m.precision, 1.0, 1e-12);
    caimg_eval_match_free(&m);
    /* A higher threshold removes the weak pair. */
    ck_assert_int_eq(caimg_eval_match_masks(&T, &R, 1, 40, 0.6, NULL, &m), 0);
    ck_assert_uint_eq(m.matched, 1);
    ck_assert_double_eq_tol(m.recall, 0.5, 1e-12);
    caimg_eval_match_free(&m);
}
END_TEST

/* ---- files ---------------------------------------------------------------------- */

static int write_i64(caimg_h5 *f, const char *name, const int64_t *v, size_t n)
{
    hsize_t d = n;
    hid_t sp = H5Screate_simple(1, &d, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t ds = H5Dcreate2(caimg_h5_hid(f), name, H5T_STD_I64LE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(ds);
    H5Pclose(lcpl);
    H5Sclose(sp);
    return e < 0 ? -1 : 0;
}

typedef struct {
    caimg_sim *sim;
    const caimg_sim_truth *tr;
    char *dir;
    const char *truth;
} fixture;

static void make_truth(fixture *fx)
{
    caimg_sim_params p;
    caimg_sim_params_init(&p);
    p.height = 80;
    p.width = 96;
    p.frames = 0;
    p.deform_sd = 0.6;
    p.bidi = 1;
    p.rate = 1.5;
    p.stim_mode = CAIMG_SIM_STIM_PINK;
    p.stim_n = 12;
    p.stim_h = p.stim_w = 16;
    p.stim_repeats = 2;
    fx->sim = caimg_sim_alloc(&p);
    ck_assert_msg(fx->sim != NULL, "%s", caimg_errmsg());
    fx->tr = caimg_sim_get_truth(fx->sim);
    fx->dir = tu_tmpdir();
    fx->truth = strdup(tu_path(fx->dir, "truth.h5"));
    caimg_h5 *f = caimg_h5_create(fx->truth, "simulate", "test");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(caimg_sim_write_truth(fx->sim, f), 0);
    ck_assert_int_eq(caimg_h5_commit(f), 0);
}

static void free_fixture(fixture *fx)
{
    caimg_sim_free(fx->sim);
    tu_rmdir(fx->dir);
    free((char *)fx->truth);
}

/* Knobs for the stage file: errors added to each part. */
typedef struct {
    float shift_offset[2];   /* template offset */
    double shift_noise;      /* uniform half-width of shift errors */
    double drop_rois;        /* fraction of ROIs left out */
    int extra_rois;          /* false detections */
    double spike_noise;      /* fraction of spike frames scrambled */
    double model_noise;      /* s.d. of noise added to responses, relative */
} perturb;

static double frand(void) { return (double)rand() / RAND_MAX; }

static void write_stage(const fixture *fx, const char *path, const perturb *pt)
{
    const caimg_sim_truth *tr = fx->tr;
    size_t T = tr->frames, N = tr->neurons, Y = tr->height, X = tr->width;
    caimg_h5 *f = caimg_h5_create(path, "deconv", "test");
    ck_assert_ptr_nonnull(f);
    srand(17);
    /* mc: est = truth + offset (+ noise); patches at a 3 x 4 grid. */
    float *sh = malloc(2 * T * sizeof(float));
    for (size_t t = 0; t < T; t++)
        for (int a = 0; a < 2; a++)
            sh[2 * t + a] = tr->shifts[2 * t + a] + pt->shift_offset[a]
                            + (float)(pt->shift_noise * (2 * frand() - 1));
    size_t d2[2] = {T, 2};
    ck_assert_int_eq(caimg_h5_write(f, "/mc/shifts", CAIMG_DT_F32, 2, d2, sh), 0);
    float py[3] = {15, 40, 65}, px[4] = {12, 36, 60, 84};
    float *ps = malloc(T * 12 * 2 * sizeof(float));
    for (size_t t = 0; t < T; t++)
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 4; b++) {
                double dy, dx;
                caimg_sim_displacement(fx->sim, t, py[a], px[b], &dy, &dx);
                float *e = ps + ((t * 3 + (size_t)a) * 4 + (size_t)b) * 2;
                e[0] = (float)dy + pt->shift_offset[0];
                e[1] = (float)dx + pt->shift_offset[1];
            }
    size_t d4[4] = {T, 3, 4, 2}, d1[1] = {3};
    ck_assert_int_eq(caimg_h5_write(f, "/mc/patch_shifts", CAIMG_DT_F32, 4, d4, ps), 0);
    ck_assert_int_eq(caimg_h5_write(f, "/mc/patch_y", CAIMG_DT_F32, 1, d1, py), 0);
    d1[0] = 4;
    ck_assert_int_eq(caimg_h5_write(f, "/mc/patch_x", CAIMG_DT_F32, 1, d1, px), 0);
    ck_assert_int_eq(caimg_h5_set_attr_double(f, "/mc", "bidi_offset", tr->bidi), 0);

    /* roi: the truth's body masks where motion correction leaves them
     * (moved by minus the offset, rounded to whole pixels when the offset
     * is whole), a fraction dropped, false blobs added; traces = calcium. */
    size_t cap = (size_t)tr->pix_start[N] + 100 * (size_t)pt->extra_rois + 16;
    int64_t *st = malloc((N + (size_t)pt->extra_rois + 1) * sizeof(int64_t));
    int32_t *ix = malloc(2 * cap * sizeof(int32_t));
    float *w = malloc(cap * sizeof(float));
    float *F = malloc((N + (size_t)pt->extra_rois) * T * sizeof(float));
    size_t nr = 0, m = 0;
    int oy = (int)lround(-pt->shift_offset[0]), ox = (int)lround(-pt->shift_offset[1]);
    for (size_t i = 0; i < N; i++) {
        if (frand() < pt->drop_rois) continue;
        st[nr] = (int64_t)m;
        for (int64_t k = tr->pix_start[i]; k < tr->pix_start[i + 1]; k++) {
            if (tr->pix_body[k] < 0.5f) continue;
            int y = tr->pix_index[2 * k] + oy, x = tr->pix_index[2 * k + 1] + ox;
            if (y < 0 || x < 0 || y >= (int)Y || x >= (int)X) continue;
            ix[2 * m] = y;
            ix[2 * m + 1] = x;
            w[m++] = tr->pix_weight[k];
        }
        memcpy(F + nr * T, tr->calcium + i * T, T * sizeof(float));
        nr++;
    }
    for (int e = 0; e < pt->extra_rois; e++) {
        st[nr] = (int64_t)m;
        int cy = 5 + rand() % ((int)Y - 10), cx = 5 + rand() % ((int)X - 10);
        for (int y = cy - 3; y <= cy + 3; y++)
            for (int x = cx - 3; x <= cx + 3; x++) {
                ix[2 * m] = y;
                ix[2 * m + 1] = x;
                w[m++] = 1;
            }
        for (size_t t = 0; t < T; t++) F[nr * T + t] = (float)frand();
        nr++;
    }
    st[nr] = (int64_t)m;
    ck_assert_int_eq(write_i64(f, "/roi/pix_start", st, nr + 1), 0);
    size_t dm[2] = {m, 2};
    ck_assert_int_eq(caimg_h5_write(f, "/roi/pix_index", CAIMG_DT_I32, 2, dm, ix), 0);
    ck_assert_int_eq(caimg_h5_write(f, "/roi/pix_weight", CAIMG_DT_F32, 1, dm, w), 0);
    unsigned char *isc = malloc(nr + 1);
    memset(isc, 1, nr + 1);
    size_t dn[1] = {nr};
    ck_assert_int_eq(caimg_h5_write(f, "/roi/iscell", CAIMG_DT_U8, 1, dn, isc), 0);
    size_t dF[2] = {nr, T};
    ck_assert_int_eq(caimg_h5_write(f, "/roi/F", CAIMG_DT_F32, 2, dF, F), 0);

    /* deconv: spikes of the ROIs' neurons, partly scrambled. */
    float *sp = malloc(nr * T * sizeof(float));
    size_t r = 0;
    srand(17);
    for (size_t i = 0; i < N; i++) {
        if (frand() < pt->drop_rois) continue;
        for (size_t t = 0; t < T; t++)
            sp[r * T + t] = frand() < pt->spike_noise ? (float)(rand() % 2) : tr->spikes[i * T + t];
        r++;
    }
    for (; r < nr; r++)
        for (size_t t = 0; t < T; t++) sp[r * T + t] = (float)(rand() % 2);
    ck_assert_int_eq(caimg_h5_write(f, "/deconv/spikes", CAIMG_DT_F32, 2, dF, sp), 0);

    /* predict: expected responses of the ROIs' neurons, plus noise. */
    size_t S = tr->stimuli->n;
    float *pr = malloc(S * nr * sizeof(float));
    r = 0;
    srand(17);
    for (size_t i = 0; i < N; i++) {
        if (frand() < pt->drop_rois) continue;
        for (size_t s = 0; s < S; s++)
            pr[s * nr + r] = tr->response[s * N + i] * (float)(1 + pt->model_noise * (2 * frand() - 1));
        r++;
    }
    for (; r < nr; r++)
        for (size_t s = 0; s < S; s++) pr[s * nr + r] = (float)frand();
    size_t dp[2] = {S, nr};
    ck_assert_int_eq(caimg_h5_write(f, "/predict/responses", CAIMG_DT_F32, 2, dp, pr), 0);
    ck_assert_int_eq(caimg_h5_commit(f), 0);
    free(sh);
    free(ps);
    free(st);
    free(ix);
    free(w);
    free(F);
    free(isc);
    free(sp);
    free(pr);
}

static double metric(const caimg_eval_report *r, const char *section, const char *name)
{
    for (size_t i = 0; i < r->nrows; i++)
        if (!strcmp(r->rows[i].section, section) && !strcmp(r->rows[i].metric, name))
            return r->rows[i].value;
    ck_abort_msg("no metric %s/%s", section, name);
    return NAN;
}

START_TEST(truth_scores_perfectly)
{
    fixture fx;
    make_truth(&fx);
    const char *stage = tu_path(fx.dir, "stage.h5");
    perturb pt = {{2.0f, -3.0f}, 0, 0, 0, 0, 0};
    write_stage(&fx, stage, &pt);
    caimg_eval_report *r;
    const char *in[1] = {stage};
    ck_assert_msg(caimg_eval_files(fx.truth, in, 1, NULL, &r) == 0, "%s", caimg_errmsg());
    ck_assert(metric(r, "motion", "rms_error_px") < 1e-5);
    ck_assert(fabs(metric(r, "motion", "offset_dy_px") - 2) < 1e-5);
    ck_assert(metric(r, "field", "rms_error_px") < 1e-5);
    ck_assert(metric(r, "bidi", "error_px") == 0);
    ck_assert_double_eq(metric(r, "roi", "f1"), 1.0);
    ck_assert_double_eq(metric(r, "roi", "mean_iou"), 1.0);
    ck_assert(metric(r, "roi", "centroid_error_px") < 1e-9);
    ck_assert_double_eq_tol(metric(r, "roi", "trace_corr_mean"), 1.0, 1e-9);
    ck_assert_double_eq_tol(metric(r, "spikes", "corr_mean"), 1.0, 1e-9);
    ck_assert_double_eq_tol(metric(r, "model", "corr_mean"), 1.0, 1e-6);
    ck_assert_uint_eq(r->ntrue, fx.tr->neurons);
    for (size_t i = 0; i < r->ntrue; i++) ck_assert_int_eq(r->roi[i], (long)i);
    caimg_eval_report_free(r);
    free_fixture(&fx);
}
END_TEST

START_TEST(perturbed_truth_scores_worse)
{
    fixture fx;
    make_truth(&fx);
    const char *stage = tu_path(fx.dir, "stage.h5");
    perturb pt = {{0, 0}, 0.2, 0.25, 3, 0.3, 0.5};
    write_stage(&fx, stage, &pt);
    caimg_eval_report *r;
    const char *in[1] = {stage};
    ck_assert_msg(caimg_eval_files(fx.truth, in, 1, NULL, &r) == 0, "%s", caimg_errmsg());
    /* Uniform errors of half-width 0.2 per axis: rms about 0.16. */
    double rms = metric(r, "motion", "rms_error_px");
    ck_assert_msg(rms > 0.12 && rms < 0.2, "rms %g", rms);
    size_t N = fx.tr->neurons;
    double nr = metric(r, "roi", "rois"), matched = metric(r, "roi", "matched");
    ck_assert(matched < N && matched == nr - 3);
    ck_assert_double_eq_tol(metric(r, "roi", "recall"), matched / N, 1e-12);
    ck_assert_double_eq_tol(metric(r, "roi", "precision"), matched / nr, 1e-12);
    ck_assert(metric(r, "roi", "f1") < 1);
    double sc = metric(r, "spikes", "corr_mean");
    ck_assert_msg(sc < 0.95 && sc > 0.2, "spike corr %g", sc);
    double mc = metric(r, "model", "corr_mean");
    ck_assert_msg(mc < 0.99 && mc > 0, "model corr %g", mc);
    caimg_eval_report_free(r);

    /* Without the offset removed, a template offset is an error. */
    const char *s2 = tu_path(fx.dir, "s2.h5");
    perturb p2 = {{1.0f, 0}, 0, 0, 0, 0, 0};
    write_stage(&fx, s2, &p2);
    caimg_eval_opts o;
    caimg_eval_opts_init(&o);
    o.keep_offset = 1;
    const char *in2[1] = {s2};
    ck_assert_int_eq(caimg_eval_files(fx.truth, in2, 1, &o, &r), 0);
    ck_assert_double_eq_tol(metric(r, "motion", "rms_error_px"), 1.0, 1e-5);
    /* ROIs were not moved back, so with the offset kept they are 1 px off. */
    ck_assert(metric(r, "roi", "mean_iou") < 0.9);
    caimg_eval_report_free(r);
    free_fixture(&fx);
}
END_TEST

START_TEST(label_image_rois)
{
    /* A file with only a label image: the truth's own labels match every
     * neuron (overlapping pixels go to one neuron, so IoU is just below 1). */
    fixture fx;
    make_truth(&fx);
    caimg_h5 *t = caimg_h5_open(fx.truth);
    ck_assert_ptr_nonnull(t);
    void *lab;
    int rank;
    size_t d[2];
    ck_assert_int_eq(caimg_h5_read(t, "/truth/labels", CAIMG_DT_I32, 2, &rank, d, &lab), 0);
    caimg_h5_close(t);
    const char *stage = tu_path(fx.dir, "labels.h5");
    caimg_h5 *f = caimg_h5_create(stage, "roi", "test");
    ck_assert_int_eq(caimg_h5_write(f, "/roi/labels", CAIMG_DT_I32, 2, d, lab), 0);
    ck_assert_int_eq(caimg_h5_commit(f), 0);
    free(lab);
    caimg_eval_report *r;
    const char *in[1] = {stage};
    ck_assert_msg(caimg_eval_files(fx.truth, in, 1, NULL, &r) == 0, "%s", caimg_errmsg());
    ck_assert_double_eq(metric(r, "roi", "f1"), 1.0);
    ck_assert(metric(r, "roi", "mean_iou") > 0.9);
    caimg_eval_report_free(r);
    free_fixture(&fx);
}
END_TEST

START_TEST(bad_inputs)
{
    fixture fx;
    make_truth(&fx);
    caimg_eval_report *r = NULL;
    /* A file with nothing to evaluate. */
    const char *empty = tu_path(fx.dir, "empty.h5");
    caimg_h5 *f = caimg_h5_create(empty, "import", "test");
    float one = 1;
    size_t d1[1] = {1};
    caimg_h5_write(f, "/other", CAIMG_DT_F32, 1, d1, &one);
    ck_assert_int_eq(caimg_h5_commit(f), 0);
    const char *in[1] = {empty};
    ck_assert_int_eq(caimg_eval_files(fx.truth, in, 1, NULL, &r), CAIMG_ENOENT);
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "nothing to evaluate"));
    /* Shifts of the wrong length. */
    const char *bad = tu_path(fx.dir, "bad.h5");
    f = caimg_h5_create(bad, "mc", "test");
    float sh[20] = {0};
    size_t d2[2] = {10, 2};
    caimg_h5_write(f, "/mc/shifts", CAIMG_DT_F32, 2, d2, sh);
    ck_assert_int_eq(caimg_h5_commit(f), 0);
    in[0] = bad;
    ck_assert_int_eq(caimg_eval_files(fx.truth, in, 1, NULL, &r), CAIMG_EFORMAT);
    ck_assert_msg(strstr(caimg_errmsg(), "/mc/shifts is [10][2], expected [") != NULL, "%s", caimg_errmsg());
    /* Spikes that cannot be mapped to neurons. */
    f = caimg_h5_create(bad, "deconv", "test");
    float *sp = calloc(3 * fx.tr->frames, sizeof(float));
    size_t ds[2] = {3, fx.tr->frames};
    caimg_h5_write(f, "/deconv/spikes", CAIMG_DT_F32, 2, ds, sp);
    free(sp);
    ck_assert_int_eq(caimg_h5_commit(f), 0);
    ck_assert_int_eq(caimg_eval_files(fx.truth, in, 1, NULL, &r), CAIMG_EFORMAT);
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "no /roi to match"));
    /* The truth must be a truth file. */
    in[0] = bad;
    ck_assert_int_eq(caimg_eval_files(empty, in, 1, NULL, &r), CAIMG_EFORMAT);
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "no /truth group"));
    ck_assert_ptr_null(r);
    free_fixture(&fx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("eval");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, assignment_is_optimal);
    tcase_add_test(tc, shift_errors);
    tcase_add_test(tc, binned_correlation);
    tcase_add_test(tc, matching_is_optimal_not_greedy);
    tcase_add_test(tc, truth_scores_perfectly);
    tcase_add_test(tc, perturbed_truth_scores_worse);
    tcase_add_test(tc, label_image_rois);
    tcase_add_test(tc, bad_inputs);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
