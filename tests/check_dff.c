/* check_dff.c -- baselines, running order statistics, neuropil, dF/F policy
 * and noise levels.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "caimg/caimg.h"
#include "simtrace.h"
#include "tsutil.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The obvious implementations, window by window. */
static double naive_window(const double *x, size_t T, size_t w, size_t i, int what, double p,
                           double *buf)
{
    size_t h = w / 2;
    size_t lo = i >= h ? i - h : 0, hi = i - h + w - 1;
    if (i < h) hi = i + (w - 1 - h);
    if (hi > T - 1) hi = T - 1;
    size_t n = hi - lo + 1;
    memcpy(buf, x + lo, n * sizeof *buf);
    qsort(buf, n, sizeof *buf, cmp_double);
    if (what == 0) return buf[0];
    if (what == 1) return buf[n - 1];
    double pos = p / 100 * (double)(n - 1);
    size_t k = (size_t)floor(pos);
    double f = pos - (double)k;
    return k + 1 < n ? buf[k] + f * (buf[k + 1] - buf[k]) : buf[k];
}

/* Selection and quantiles against a sort: random values, many ties (a few
 * distinct values, all equal), sorted and reversed input, every order
 * statistic of small arrays and quantiles of large ones; after a
 * selection the array is partitioned around k (caimg_ts_quantile and the
 * KDE mode rely on that). */
START_TEST(selection_matches_sort)
{
    sim_rng rng = {3};
    static const size_t sizes[] = {1, 2, 3, 5, 17, 100, 1001, 4096};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        size_t n = sizes[si];
        double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *r = malloc(n * sizeof *r);
        for (int kind = 0; kind < 5; kind++) {
            for (size_t i = 0; i < n; i++)
                r[i] = kind == 0 ? sim_normal(&rng)
                     : kind == 1 ? floor(4 * sim_uniform(&rng))
                     : kind == 2 ? 7.0
                     : kind == 3 ? (double)i : (double)(n - i);
            memcpy(b, r, n * sizeof *b);
            qsort(b, n, sizeof *b, cmp_double);
            size_t step = n > 200 ? n / 97 : 1;
            for (size_t k = 0; k < n; k += step) {
                memcpy(a, r, n * sizeof *a);
                double v = caimg_ts_select(a, n, k);
                ck_assert_msg(v == b[k] && a[k] == b[k], "n %zu kind %d: element %zu is %g, "
                              "sorted %g", n, kind, k, v, b[k]);
                for (size_t i = 0; i < n; i++)
                    ck_assert(i < k ? a[i] <= v : i > k ? a[i] >= v : 1);
            }
            static const double qs[] = {0, 0.005, 0.25, 0.5, 0.75, 0.995, 1};
            for (size_t qi = 0; qi < sizeof qs / sizeof *qs; qi++) {
                memcpy(a, r, n * sizeof *a);
                double pos = qs[qi] * (double)(n - 1), lo = b[(size_t)floor(pos)];
                double hi = b[(size_t)floor(pos) + (floor(pos) < (double)(n - 1))];
                double want = lo + (pos - floor(pos)) * (hi - lo);
                ck_assert_double_eq(caimg_ts_quantile(a, n, qs[qi]), want);
            }
        }
        free(a); free(b); free(r);
    }
}
END_TEST

START_TEST(running_order_statistics)
{
    const size_t T = 700;
    double *x = malloc(T * sizeof *x), *out = malloc(T * sizeof *out), *buf = malloc(T * sizeof *buf);
    size_t *work = malloc((3 * T + 2) * sizeof *work);
    sim_rng rng = {3};
    for (size_t i = 0; i < T; i++) {
        x[i] = sim_normal(&rng);
        /* Ties and plateaus, which trip up heap and deque code. */
        if (i % 7 == 0) x[i] = 0.5;
        if (i > 300 && i < 340) x[i] = 1.0;
    }
    const size_t ws[] = {1, 2, 3, 10, 51, 500, 699, 700, 1000};
    const double ps[] = {0, 8, 50, 77.7, 100};
    for (size_t a = 0; a < sizeof ws / sizeof *ws; a++) {
        size_t w = ws[a];
        caimg_running_min(x, T, w, out, work);
        for (size_t i = 0; i < T; i++)
            ck_assert_double_eq(out[i], naive_window(x, T, w, i, 0, 0, buf));
        caimg_running_max(x, T, w, out, work);
        for (size_t i = 0; i < T; i++)
            ck_assert_double_eq(out[i], naive_window(x, T, w, i, 1, 0, buf));
        for (size_t b = 0; b < sizeof ps / sizeof *ps; b++) {
            caimg_running_percentile(x, T, w, ps[b], out, work);
            for (size_t i = 0; i < T; i++)
                ck_assert_msg(fabs(out[i] - naive_window(x, T, w, i, 2, ps[b], buf)) < 1e-12,
                              "w %zu p %g i %zu: %g vs %g", w, ps[b], i, out[i],
                              naive_window(x, T, w, i, 2, ps[b], buf));
        }
    }
    free(x); free(out); free(buf); free(work);
}
END_TEST

/* A trace with a slow drift (bleaching-like decay plus a slow oscillation)
 * under sparse positive transients and noise: every baseline method must
 * follow the drift.  Errors are measured against the true baseline, in
 * units of the noise sd, as the median over frames (baselines of a few
 * methods lag at the very ends). */
static void drift_trace(size_t T, double fs, double *F, double *truth, double sn)
{
    sim_rng rng = {17};
    sim_params sp = {fs, 0.3, 0.05, 0.7, 1.0, sn, 0};
    double *u = NULL;
    size_t nu = 0;
    sim_trace(&sp, T, &rng, F, &u, &nu);
    free(u);
    for (size_t i = 0; i < T; i++) {
        double t = (double)i / fs;
        truth[i] = 10 + 2 * exp(-t / 200) + 0.5 * sin(2 * M_PI * t / 150);
        F[i] += truth[i];
    }
}

static double median_abs_err(const double *a, const double *b, size_t T)
{
    double *d = malloc(T * sizeof *d);
    for (size_t i = 0; i < T; i++) d[i] = fabs(a[i] - b[i]);
    qsort(d, T, sizeof *d, cmp_double);
    double m = d[T / 2];
    free(d);
    return m;
}

START_TEST(baselines_follow_drift)
{
    const size_t T = 18000;
    const double fs = 30, sn = 0.1;
    double *F = malloc(T * sizeof *F), *truth = malloc(T * sizeof *truth), *F0 = malloc(T * sizeof *F0);
    drift_trace(T, fs, F, truth, sn);
    /* maximin and percentile track the lower edge, which sits below the
     * true baseline by about 1-2 noise sd for low percentiles; the bound
     * allows that offset (it is what these methods define) but not a
     * failure to follow the 2.5-unit drift.  With the automatic
     * percentile the baseline is the mode, close to the truth. */
    struct { const caimg_baseline_type *t; double pct; double bound; } cases[] = {
        {caimg_baseline_maximin, 0, 3 * sn},
        {caimg_baseline_percentile, 8, 2.5 * sn},
        {caimg_baseline_percentile, CAIMG_PERCENTILE_AUTO, 1.0 * sn},
    };
    for (size_t k = 0; k < 3; k++) {
        caimg_baseline_params p;
        caimg_baseline_params_init(&p, cases[k].t);
        if (cases[k].t == caimg_baseline_percentile) p.percentile = cases[k].pct;
        caimg_baseline *b = caimg_baseline_alloc(cases[k].t, &p, fs, T);
        ck_assert_ptr_nonnull(b);
        double used;
        ck_assert_int_eq(caimg_baseline_compute(b, F, F0, &used), 0);
        double err = median_abs_err(F0, truth, T);
        ck_assert_msg(err < cases[k].bound, "%s (p %g): median baseline error %.3f",
                      caimg_baseline_type_name(cases[k].t), used, err);
        if (cases[k].pct == CAIMG_PERCENTILE_AUTO) ck_assert(used >= 1 && used <= 50);
        caimg_baseline_free(b);
    }
    free(F); free(truth); free(F0);
}
END_TEST

/* Constant baseline: the lowpass (FISSA) and constant methods give one
 * value near the truth (a low percentile of the smoothed trace). */
START_TEST(constant_baselines)
{
    const size_t T = 6000;
    const double fs = 30, sn = 0.1;
    double *F = malloc(T * sizeof *F), *F0 = malloc(T * sizeof *F0);
    sim_rng rng = {23};
    sim_params sp = {fs, 0.3, 0.05, 0.7, 1.0, sn, 5.0};
    double *u = NULL;
    size_t nu = 0;
    sim_trace(&sp, T, &rng, F, &u, &nu);
    free(u);
    const caimg_baseline_type *types[] = {caimg_baseline_lowpass, caimg_baseline_constant};
    for (int k = 0; k < 2; k++) {
        caimg_baseline_params p;
        caimg_baseline_params_init(&p, types[k]);
        caimg_baseline *b = caimg_baseline_alloc(types[k], &p, fs, T);
        caimg_baseline_compute(b, F, F0, NULL);
        for (size_t i = 1; i < T; i++) ck_assert_double_eq(F0[i], F0[0]);
        /* The low-pass removes most noise, so its 5th percentile is close
         * to the baseline; the raw 8th percentile sits ~1.4 sd below. */
        ck_assert_msg(fabs(F0[0] - 5.0) < 2 * sn, "%s: %g", caimg_baseline_type_name(types[k]),
                      F0[0]);
        caimg_baseline_free(b);
    }
    free(F); free(F0);
}
END_TEST

/* A window given in frames is the same window as in seconds, for every
 * method that takes one (lowpass once took only seconds and silently
 * computed its constant baseline for a window in frames); and for lowpass
 * a window of either kind makes the baseline vary over time. */
START_TEST(window_frames_equal_seconds)
{
    const size_t T = 3000;
    const double fs = 30;
    double *F = malloc(T * sizeof *F), *truth = malloc(T * sizeof *truth);
    double *A = malloc(T * sizeof *A), *B = malloc(T * sizeof *B);
    drift_trace(T, fs, F, truth, 0.1);
    const caimg_baseline_type *types[] = {caimg_baseline_maximin, caimg_baseline_percentile,
                                          caimg_baseline_lowpass};
    for (int k = 0; k < 3; k++) {
        caimg_baseline_params ps, pf;
        caimg_baseline_params_init(&ps, types[k]);
        pf = ps;
        ps.window_s = 5;
        ps.window_frames = 0;
        pf.window_s = 0;
        pf.window_frames = 150;
        caimg_baseline *bs = caimg_baseline_alloc(types[k], &ps, fs, T);
        caimg_baseline *bf = caimg_baseline_alloc(types[k], &pf, fs, T);
        ck_assert_ptr_nonnull(bs);
        ck_assert_ptr_nonnull(bf);
        caimg_baseline_compute(bs, F, A, NULL);
        caimg_baseline_compute(bf, F, B, NULL);
        int varies = 0;
        for (size_t i = 0; i < T; i++) {
            ck_assert_msg(A[i] == B[i], "%s: frame %zu: %g (5 s) vs %g (150 frames)",
                          caimg_baseline_type_name(types[k]), i, A[i], B[i]);
            if (B[i] != B[0]) varies = 1;
        }
        ck_assert_msg(varies, "%s: a 150-frame window gave a constant baseline",
                      caimg_baseline_type_name(types[k]));
        caimg_baseline_free(bs);
        caimg_baseline_free(bf);
    }
    free(F); free(truth); free(A); free(B);
}
END_TEST

START_TEST(baseline_table)
{
    const caimg_baseline_type *const *all = caimg_baseline_types();
    int n = 0;
    for (; all[n]; n++) {
        ck_assert_ptr_eq(caimg_baseline_type_find(caimg_baseline_type_name(all[n])), all[n]);
        ck_assert(strlen(caimg_baseline_type_summary(all[n])) > 10);
    }
    ck_assert_int_eq(n, 4);
    ck_assert_ptr_null(caimg_baseline_type_find("median"));
    caimg_baseline_params p;
    caimg_baseline_params_init(&p, caimg_baseline_percentile);
    ck_assert_double_eq(p.window_frames, 500);
    ck_assert_double_eq(p.percentile, 8);
    p.percentile = 150;
    ck_assert_ptr_null(caimg_baseline_alloc(caimg_baseline_percentile, &p, 30, 100));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "percentile"));
    caimg_baseline_params_init(&p, caimg_baseline_maximin);
    ck_assert_ptr_null(caimg_baseline_alloc(caimg_baseline_maximin, &p, 0, 100));
}
END_TEST

/* F = b + r Fneu + activity + noise with r = 0.8: the quantile-regression
 * estimate (at the default quantile 0.05) is within 0.05 for sparse and
 * moderate activity.  (A cell active nearly all the time -- several Hz
 * with a 0.7 s decay, transients ten times the noise -- biases it: slow
 * chance correlations of activity and neuropil then dominate.) */
START_TEST(neuropil_estimate)
{
    const size_t T = 9000;
    double *F = malloc(T * sizeof *F), *N = malloc(T * sizeof *N), *w = malloc(T * sizeof *w);
    double *act = malloc(T * sizeof *act);
    const double rates[] = {0.2, 1.0};
    for (int k = 0; k < 2; k++) {
        sim_rng rng = {40 + k};
        sim_params sp = {30, rates[k], 0.05, 0.7, 30.0, 0, 0};
        double *u = NULL;
        size_t nu = 0;
        sim_trace(&sp, T, &rng, act, &u, &nu);
        free(u);
        double nb = 0;
        for (size_t i = 0; i < T; i++) {
            /* Neuropil: a slowly varying background with its own noise. */
            nb = 0.98 * nb + 2 * sim_normal(&rng);
            N[i] = 100 + nb + 3 * sin((double)i / 400);
            F[i] = 50 + 0.8 * N[i] + act[i] + 3 * sim_normal(&rng);
        }
        double r;
        int clamped;
        ck_assert_int_eq(caimg_neuropil_estimate(F, N, T, 0.05, 0, 1.5, w, &r, &clamped), 0);
        ck_assert_msg(fabs(r - 0.8) < 0.05, "rate %g Hz: r = %.3f", rates[k], r);
        ck_assert_int_eq(clamped, 0);
    }
    /* Bounds are honoured and reported. */
    double r;
    int clamped;
    caimg_neuropil_estimate(F, N, T, 0.05, 0, 0.5, w, &r, &clamped);
    ck_assert(r <= 0.5 && clamped);
    free(F); free(N); free(w); free(act);
}
END_TEST

START_TEST(noise_levels)
{
    const size_t T = 8000;
    const double fs = 30, sd = 0.2;
    double *x = malloc(T * sizeof *x);
    sim_rng rng = {5};
    for (size_t i = 0; i < T; i++) x[i] = 7 + sd * sim_normal(&rng);
    for (int m = 0; m < 3; m++) {
        caimg_noise_plan *p = caimg_noise_plan_create(T, 0.25, 0.5, (caimg_noise_method)m);
        ck_assert_ptr_nonnull(p);
        float *w = caimg_noise_work_alloc(p);
        double sn;
        ck_assert_int_eq(caimg_noise_psd(p, x, w, &sn), 0);
        ck_assert_msg(fabs(sn - sd) < 0.05 * sd, "%s: sn %.4f for sd %.2f",
                      caimg_noise_method_name((caimg_noise_method)m), sn, sd);
        /* Without a work buffer, the same answer. */
        double sn2;
        caimg_noise_psd(p, x, NULL, &sn2);
        ck_assert_double_eq(sn, sn2);
        caimg_noise_work_free(w);
        caimg_noise_plan_destroy(p);
    }
    /* Cascade: median |diff| of white noise is 0.6745 sqrt(2) sd; reported
     * in percent per sqrt(Hz). */
    double nu = caimg_noise_cascade(x, T, fs, NULL);
    double expect = 100 * 0.6745 * sqrt(2.0) * sd / sqrt(fs);
    ck_assert_msg(fabs(nu - expect) < 0.05 * expect, "cascade %.3f, expected %.3f", nu, expect);
    ck_assert_int_eq(caimg_noise_method_from_name("logmean"), CAIMG_NOISE_LOGMEAN);
    ck_assert_ptr_null(caimg_noise_plan_create(T, 0.3, 0.2, CAIMG_NOISE_MEAN));
    /* Short traces fall back to the difference estimate. */
    caimg_noise_plan *p = caimg_noise_plan_create(5, 0.25, 0.5, CAIMG_NOISE_MEAN);
    double sn;
    caimg_noise_psd(p, x, NULL, &sn);
    ck_assert(isfinite(sn) && sn > 0);
    caimg_noise_plan_destroy(p);
    free(x);
}
END_TEST

/* dF/F of a synthetic ROI with a known baseline: F = F0 (1 + dff). */
START_TEST(dff_recovers_truth)
{
    const size_t N = 3, T = 6000;
    const double fs = 30;
    float *F = malloc(N * T * sizeof *F), *Fn = malloc(N * T * sizeof *Fn);
    float *D = malloc(N * T * sizeof *D), *B = malloc(N * T * sizeof *B);
    double *truth = malloc(N * T * sizeof *truth), *act = malloc(T * sizeof *act);
    for (size_t i = 0; i < N; i++) {
        sim_rng rng = {60 + i};
        sim_params sp = {fs, 0.5, 0.05, 0.7, 0.5, 0, 0};
        double *u = NULL;
        size_t nu = 0;
        sim_trace(&sp, T, &rng, act, &u, &nu);
        free(u);
        for (size_t t = 0; t < T; t++) {
            double f0 = 200 + 20 * (double)t / (double)T;   /* slow drift */
            double neu = 100 + 10 * sin((double)t / 300);
            truth[i * T + t] = act[t];
            F[i * T + t] = (float)(f0 * (1 + act[t]) + 0.7 * neu + 2 * sim_normal(&rng));
            Fn[i * T + t] = (float)neu;
        }
    }
    /* The default (maximin) and CaImAn's 8th running percentile.  (The
     * automatic percentile is not used here: these cells are active
     * enough -- 0.5 Hz, 0.7 s decay -- that the mode of the trace sits
     * above the resting level, which that method assumes it does not.) */
    for (int k = 0; k < 2; k++) {
    caimg_dff_params p;
    caimg_dff_params_init(&p, fs);
    if (k == 1) {
        p.baseline = caimg_baseline_percentile;
        caimg_baseline_params_init(&p.bparams, p.baseline);
    }
    double r[3], npsd[3], ncas[3];
    unsigned flags[3];
    ck_assert_int_eq(caimg_dff_compute(&p, N, T, F, Fn, D, B, r, npsd, ncas, flags, 0), 0);
    for (size_t i = 0; i < N; i++) {
        double err = 0;
        for (size_t t = 0; t < T; t++) err += fabs(D[i * T + t] - truth[i * T + t]);
        err /= (double)T;
        /* Noise 2 on F0 ~ 210 is 0.01 in dF/F; allow a few times that. */
        ck_assert_msg(err < 0.03, "%s ROI %zu: mean |dF/F error| %.4f",
                      caimg_baseline_type_name(p.baseline), i, err);
        ck_assert_double_eq(r[i], 0.7);
        ck_assert_uint_eq(flags[i], 0);
        ck_assert(npsd[i] > 0.005 && npsd[i] < 0.02);
        ck_assert(ncas[i] > 0 && isfinite(ncas[i]));
    }
    }
    free(F); free(Fn); free(D); free(B); free(truth); free(act);
}
END_TEST

static int nwarn;
static char lastwarn[1024];
static void count_warn(const char *msg, void *ctx)
{
    (void)ctx;
    #pragma omp critical
    {
        nwarn++;
        snprintf(lastwarn, sizeof lastwarn, "%s", msg);
    }
}

/* The F0 policy: baselines near or below zero (dim cell after neuropil
 * subtraction), all-zero traces and NaN frames give finite output and a
 * warning naming the ROI. */
START_TEST(dff_policy_no_inf_nan)
{
    caimg_set_warn_handler(count_warn, NULL);
    const size_t N = 4, T = 2000;
    float *F = malloc(N * T * sizeof *F), *Fn = malloc(N * T * sizeof *Fn);
    float *D = malloc(N * T * sizeof *D), *B = malloc(N * T * sizeof *B);
    sim_rng rng = {77};
    for (size_t t = 0; t < T; t++) {
        /* ROI 0: F - 0.7 Fneu is negative. */
        F[t] = (float)(50 + sim_normal(&rng));
        Fn[t] = (float)(100 + sim_normal(&rng));
        /* ROI 1: F - 0.7 Fneu crosses zero. */
        F[T + t] = (float)(70 + 5 * sin((double)t / 50) + sim_normal(&rng));
        Fn[T + t] = 100;
        /* ROI 2: all zero. */
        F[2 * T + t] = 0;
        Fn[2 * T + t] = 0;
        /* ROI 3: NaN frames. */
        F[3 * T + t] = (float)(300 + sim_normal(&rng));
        Fn[3 * T + t] = 100;
    }
    F[3 * T + 10] = NAN;
    F[3 * T + 11] = INFINITY;
    Fn[3 * T + 500] = NAN;
    caimg_dff_params p;
    caimg_dff_params_init(&p, 30);
    double npsd[4], ncas[4], r[4];
    unsigned flags[4];
    nwarn = 0;
    ck_assert_int_eq(caimg_dff_compute(&p, N, T, F, Fn, D, B, r, npsd, ncas, flags, 100), 0);
    for (size_t i = 0; i < N * T; i++) {
        ck_assert_msg(isfinite(D[i]), "dff[%zu] = %g", i, D[i]);
        ck_assert(isfinite(B[i]));
    }
    for (size_t i = 0; i < N; i++) ck_assert(isfinite(npsd[i]) && isfinite(ncas[i]));
    ck_assert(flags[0] & CAIMG_DFF_F0_FLOOR);
    ck_assert(flags[1] & CAIMG_DFF_F0_FLOOR);
    ck_assert(flags[2] & CAIMG_DFF_ZERO);
    ck_assert(flags[3] & CAIMG_DFF_NONFINITE);
    ck_assert_uint_eq(flags[3] & CAIMG_DFF_F0_FLOOR, 0);
    ck_assert_int_ge(nwarn, 4);
    for (size_t t = 0; t < T; t++) ck_assert(D[2 * T + t] == 0);
    /* The floor bounds dF/F: |Fc - F0| / (0.1 mean|F|). */
    for (size_t t = 0; t < T; t++) ck_assert(fabs(D[t]) < 100);
    /* Warnings name the ROI by its index in the recording. */
    caimg_dff_compute(&p, 1, T, F + 2 * T, Fn + 2 * T, D, B, NULL, NULL, NULL, NULL, 42);
    ck_assert_ptr_nonnull(strstr(lastwarn, "ROI 42"));
    caimg_set_warn_handler(NULL, NULL);
    /* Parameter errors. */
    p.fs = 0;
    ck_assert_int_eq(caimg_dff_compute(&p, N, T, F, Fn, D, B, NULL, NULL, NULL, NULL, 0),
                     CAIMG_EINVAL);
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "--fs"));
    free(F); free(Fn); free(D); free(B);
}
END_TEST

/* Estimated r is used and reported per ROI. */
START_TEST(dff_estimated_r)
{
    const size_t T = 6000;
    float *F = malloc(T * sizeof *F), *Fn = malloc(T * sizeof *Fn), *D = malloc(T * sizeof *D);
    sim_rng rng = {88};
    double nb = 0;
    for (size_t t = 0; t < T; t++) {
        nb = 0.97 * nb + sim_normal(&rng);
        Fn[t] = (float)(80 + 3 * nb);
        F[t] = (float)(100 + 1.1 * Fn[t] + sim_normal(&rng));
    }
    caimg_dff_params p;
    caimg_dff_params_init(&p, 30);
    p.estimate_r = 1;
    double r;
    unsigned fl;
    ck_assert_int_eq(caimg_dff_compute(&p, 1, T, F, Fn, D, NULL, &r, NULL, NULL, &fl, 0), 0);
    ck_assert_msg(fabs(r - 1.1) < 0.05, "r = %.3f", r);
    ck_assert_uint_eq(fl & CAIMG_DFF_R_BOUND, 0);
    free(F); free(Fn); free(D);
}
END_TEST

static Suite *dff_suite(void)
{
    Suite *s = suite_create("dff");
    TCase *tc = tcase_create("baselines");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, selection_matches_sort);
    tcase_add_test(tc, running_order_statistics);
    tcase_add_test(tc, baselines_follow_drift);
    tcase_add_test(tc, constant_baselines);
    tcase_add_test(tc, window_frames_equal_seconds);
    tcase_add_test(tc, baseline_table);
    suite_add_tcase(s, tc);
    tc = tcase_create("dff");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, neuropil_estimate);
    tcase_add_test(tc, noise_levels);
    tcase_add_test(tc, dff_recovers_truth);
    tcase_add_test(tc, dff_policy_no_inf_nan);
    tcase_add_test(tc, dff_estimated_r);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dff_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
