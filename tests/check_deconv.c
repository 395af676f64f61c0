/* check_deconv.c -- OASIS deconvolution: exactness against a slow generic
 * solver, parameter recovery, spike inference accuracy, edge cases.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "caimg/caimg.h"
#include "simtrace.h"
#include "deconv_lanes.h"

/* ---- the reference solver ------------------------------------------------
 *
 * Projected gradient with Nesterov momentum (FISTA, restarted whenever the
 * objective goes up) on the spikes s >= 0 of
 *
 *     f(s) = 1/2 || y - b - K s ||^2 + lambda sum(s),
 *
 * where K s is the AR filter (c[t] = s[t] + g1 c[t-1] + g2 c[t-2], zero
 * initial conditions) and the baseline is eliminated: b = mean(y - K s)
 * (free), max(0, that) (non-negative) or fixed.  f stays convex and its
 * gradient is -K'(y - b - K s) + lambda.  Nothing here knows about pools or
 * active sets; it is slow and obviously a solver of the same problem. */

static void ref_filter(const double *s, double *c, int T, double g1, double g2)
{
    for (int t = 0; t < T; t++) {
        double v = s[t];
        if (t >= 1) v += g1 * c[t - 1];
        if (t >= 2) v += g2 * c[t - 2];
        c[t] = v;
    }
}

static void ref_adjoint(const double *r, double *u, int T, double g1, double g2)
{
    for (int t = T - 1; t >= 0; t--) {
        double v = r[t];
        if (t + 1 < T) v += g1 * u[t + 1];
        if (t + 2 < T) v += g2 * u[t + 2];
        u[t] = v;
    }
}

typedef struct {
    const double *y;
    int T;
    double g1, g2, lam;
    caimg_deconv_baseline bmode;
    double bfix;
} refprob;

static double ref_objective(const refprob *P, const double *s, double *c, double *r, double *bout)
{
    ref_filter(s, c, P->T, P->g1, P->g2);
    double b = P->bfix;
    if (P->bmode != CAIMG_DECONV_B_FIXED) {
        double m = 0;
        for (int t = 0; t < P->T; t++) m += P->y[t] - c[t];
        b = m / P->T;
        if (P->bmode == CAIMG_DECONV_B_NONNEG && b < 0) b = 0;
    }
    double f = 0, sum = 0;
    for (int t = 0; t < P->T; t++) {
        r[t] = P->y[t] - b - c[t];
        f += r[t] * r[t];
        sum += s[t];
    }
    if (bout) *bout = b;
    return 0.5 * f + P->lam * sum;
}

static double ref_solve(const refprob *P, double *c_out, double *b_out, long iters)
{
    int T = P->T;
    double *x = calloc(T, sizeof *x), *xo = calloc(T, sizeof *x), *v = calloc(T, sizeof *x);
    double *c = calloc(T, sizeof *x), *r = calloc(T, sizeof *x), *gr = calloc(T, sizeof *x);
    /* Lipschitz constant of the gradient: ||K||^2 <= (sum |h|)^2. */
    double sh = 0, h1 = 1, h2 = 0;
    for (int k = 0; k < 100000; k++) {
        sh += fabs(h1);
        double hn = P->g1 * h1 + P->g2 * h2;
        h2 = h1;
        h1 = hn;
        if (fabs(h1) < 1e-18 && fabs(h2) < 1e-18) break;
    }
    double L = sh * sh * 1.0001, tk = 1, fprev = INFINITY;
    for (long it = 0; it < iters; it++) {
        ref_objective(P, v, c, r, NULL);
        ref_adjoint(r, gr, T, P->g1, P->g2);
        memcpy(xo, x, T * sizeof *x);
        for (int t = 0; t < T; t++) {
            double z = v[t] + (gr[t] - P->lam) / L;
            x[t] = z > 0 ? z : 0;
        }
        double f = ref_objective(P, x, c, r, NULL);
        double tn = (1 + sqrt(1 + 4 * tk * tk)) / 2;
        if (f > fprev) {
            tk = tn = 1;
            memcpy(v, x, T * sizeof *x);
        } else {
            for (int t = 0; t < T; t++) v[t] = x[t] + (tk - 1) / tn * (x[t] - xo[t]);
        }
        tk = tn;
        fprev = f;
    }
    double f = ref_objective(P, x, c, r, b_out);
    memcpy(c_out, c, T * sizeof *c);
    free(x); free(xo); free(v); free(c); free(r); free(gr);
    return f;
}

/* The objective of a given calcium trace (s = G c must be >= 0). */
static double objective_of(const refprob *P, const double *c, double b)
{
    double f = 0, sum = 0;
    for (int t = 0; t < P->T; t++) {
        double r = P->y[t] - b - c[t];
        f += r * r;
        double s = c[t] - (t >= 1 ? P->g1 * c[t - 1] : 0) - (t >= 2 ? P->g2 * c[t - 2] : 0);
        sum += s;
    }
    return 0.5 * f + P->lam * sum;
}

/* A random AR(p) trace: sparse spikes on frames, baseline, white noise. */
static void random_problem(sim_rng *rng, int T, int p, double g[2], double *y, double *sn)
{
    if (p == 1) {
        g[0] = 0.75 + 0.22 * sim_uniform(rng);
        g[1] = 0;
    } else {
        double d = 0.85 + 0.12 * sim_uniform(rng), r = 0.1 + 0.6 * sim_uniform(rng);
        g[0] = d + r;
        g[1] = -d * r;
    }
    double *s = calloc(T, sizeof *s), *c = calloc(T, sizeof *c);
    for (int t = 0; t < T; t++) s[t] = sim_uniform(rng) < 0.04 ? 0.5 + sim_uniform(rng) : 0;
    ref_filter(s, c, T, g[0], g[1]);
    *sn = 0.1 + 0.3 * sim_uniform(rng);
    double b = 2 * (sim_uniform(rng) - 0.5);
    for (int t = 0; t < T; t++) y[t] = b + c[t] + *sn * sim_normal(rng);
    free(s);
    free(c);
}

/* Solve with caimg and with the reference at the lambda caimg used;
 * assert the calcium and baseline agree to 1e-4 relative and that caimg's
 * objective is not worse. */
static void check_exact(int p, caimg_deconv_method method, caimg_deconv_baseline bmode,
                        unsigned long long seed)
{
    const int T = 240;
    sim_rng rng = {seed};
    caimg_deconv_params pp;
    caimg_deconv_params_init(&pp, 30);
    pp.p = p;
    pp.baseline = bmode;
    caimg_deconv_plan *plan = caimg_deconv_plan_create(&pp, T);
    ck_assert_ptr_nonnull(plan);
    caimg_deconv_ws *ws = caimg_deconv_ws_alloc(plan);
    ck_assert_ptr_nonnull(ws);
    double y[T], c[T], s[T], cref[T], g[2], sn;
    for (int trial = 0; trial < 5; trial++) {
        random_problem(&rng, T, p, g, y, &sn);
        double lam_in = method == CAIMG_DECONV_PENALIZED ? 0.05 + 0.5 * sim_uniform(&rng) : 0;
        double b = 0.3, lam = -1;
        ck_assert_int_eq(caimg_oasis_solve(plan, ws, y, T, p, g, method, lam_in, sn, 0, &b, &lam,
                                           c, s), 0);
        if (method == CAIMG_DECONV_PENALIZED) ck_assert_double_eq(lam, lam_in);
        refprob P = {y, T, g[0], g[1], lam, bmode, 0.3};
        double bref;
        double fref = ref_solve(&P, cref, &bref, 60000);
        double fmine = objective_of(&P, c, b);
        double dc = 0, nc = 0;
        for (int t = 0; t < T; t++) {
            dc += (c[t] - cref[t]) * (c[t] - cref[t]);
            nc += cref[t] * cref[t];
            /* Feasibility: s = G c >= 0 and reported s matches G c. */
            double gc = c[t] - (t >= 1 ? g[0] * c[t - 1] : 0) - (t >= 2 ? g[1] * c[t - 2] : 0);
            ck_assert_msg(gc > -1e-9, "s[%d] = %g < 0", t, gc);
            ck_assert_msg(fabs(gc - s[t]) < 1e-9, "s[%d] = %g but G c = %g", t, s[t], gc);
        }
        ck_assert_msg(sqrt(dc / nc) < 1e-4, "p=%d %s trial %d: calcium differs from the "
                      "reference by %.2e relative", p, caimg_deconv_method_name(method), trial,
                      sqrt(dc / nc));
        ck_assert_msg(fabs(b - bref) < 1e-4 * (fabs(bref) + sn),
                      "baseline %.8f, reference %.8f", b, bref);
        ck_assert_msg(fmine <= fref + 1e-9 * fabs(fref), "objective %.12g above the reference's "
                      "%.12g", fmine, fref);
        if (bmode == CAIMG_DECONV_B_NONNEG) ck_assert(b >= 0);
        if (method == CAIMG_DECONV_CONSTRAINED && lam > 0) {
            /* The residual matches the noise exactly when lambda > 0. */
            double rss = 0;
            for (int t = 0; t < T; t++) rss += (y[t] - b - c[t]) * (y[t] - b - c[t]);
            ck_assert_msg(fabs(rss - sn * sn * T) < 1e-6 * sn * sn * T,
                          "RSS %.10g, target %.10g", rss, sn * sn * T);
        }
    }
    caimg_deconv_ws_free(ws);
    caimg_deconv_plan_destroy(plan);
}

START_TEST(exact_ar1_penalized)
{
    check_exact(1, CAIMG_DECONV_PENALIZED, CAIMG_DECONV_B_ESTIMATE, 11);
    check_exact(1, CAIMG_DECONV_PENALIZED, CAIMG_DECONV_B_NONNEG, 12);
    check_exact(1, CAIMG_DECONV_PENALIZED, CAIMG_DECONV_B_FIXED, 13);
}
END_TEST

START_TEST(exact_ar2_penalized)
{
    check_exact(2, CAIMG_DECONV_PENALIZED, CAIMG_DECONV_B_ESTIMATE, 21);
    check_exact(2, CAIMG_DECONV_PENALIZED, CAIMG_DECONV_B_NONNEG, 22);
    check_exact(2, CAIMG_DECONV_PENALIZED, CAIMG_DECONV_B_FIXED, 23);
}
END_TEST

START_TEST(exact_constrained)
{
    check_exact(1, CAIMG_DECONV_CONSTRAINED, CAIMG_DECONV_B_ESTIMATE, 31);
    check_exact(1, CAIMG_DECONV_CONSTRAINED, CAIMG_DECONV_B_NONNEG, 32);
    check_exact(2, CAIMG_DECONV_CONSTRAINED, CAIMG_DECONV_B_ESTIMATE, 33);
    check_exact(2, CAIMG_DECONV_CONSTRAINED, CAIMG_DECONV_B_FIXED, 34);
}
END_TEST

/* With s_min the pools obey the threshold: every nonzero spike is at
 * least s_min (thresholded OASIS is not convex; this is its contract). */
START_TEST(thresholded_respects_smin)
{
    const int T = 500;
    sim_rng rng = {41};
    caimg_deconv_params pp;
    caimg_deconv_params_init(&pp, 30);
    pp.baseline = CAIMG_DECONV_B_FIXED;
    for (int p = 1; p <= 2; p++) {
        caimg_deconv_plan *plan = caimg_deconv_plan_create(&pp, T);
        caimg_deconv_ws *ws = caimg_deconv_ws_alloc(plan);
        double y[T], c[T], s[T], g[2], sn;
        random_problem(&rng, T, p, g, y, &sn);
        double b = 0, smin = 0.4;
        caimg_oasis_solve(plan, ws, y, T, p, g, CAIMG_DECONV_THRESHOLDED, 0, sn, smin, &b, NULL,
                          c, s);
        int n = 0;
        for (int t = 0; t < T; t++) {
            if (s[t] > 0) {
                n++;
                ck_assert_msg(s[t] >= smin - 1e-9, "AR(%d): s[%d] = %g below s_min", p, t, s[t]);
            }
            ck_assert(isfinite(c[t]) && c[t] >= -1e-12);
        }
        ck_assert_int_gt(n, 3);
        caimg_deconv_ws_free(ws);
        caimg_deconv_plan_destroy(plan);
    }
}
END_TEST

/* ---- kinetics and noise ------------------------------------------------- */

/* The segmented AR(1) pass (deconv_lanes.h, on processors with AVX-512)
 * gives the sequential pass's solution: the same spike frames and the
 * calcium to rounding, on lengths around its segment boundaries, with
 * long negative stretches (the zero region before the first spike), a
 * constant trace, a ramp, and the penalty.  Where the processor lacks
 * AVX-512 both runs take the sequential pass. */
START_TEST(ar1_lanes_match_sequential)
{
    static const int lens[] = {64, 65, 71, 72, 73, 240, 1001, 4096};
    sim_rng rng = {77};
    caimg_deconv_params pp;
    caimg_deconv_params_init(&pp, 30);
    pp.p = 1;
    pp.baseline = CAIMG_DECONV_B_FIXED;
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
        const int T = lens[li];
        caimg_deconv_plan *plan = caimg_deconv_plan_create(&pp, (size_t)T);
        ck_assert_ptr_nonnull(plan);
        caimg_ar1_lanes_disabled = 1;
        caimg_deconv_ws *seq = caimg_deconv_ws_alloc(plan);
        caimg_ar1_lanes_disabled = 0;
        caimg_deconv_ws *lan = caimg_deconv_ws_alloc(plan);
        ck_assert(seq && lan);
        double *y = malloc(5 * (size_t)T * sizeof *y), *c1 = y + T, *s1 = c1 + T, *c2 = s1 + T,
               *s2 = c2 + T;
        for (int kind = 0; kind < 5; kind++) {
            double g[2] = {0, 0}, sn = 0.2;
            if (kind < 3) {
                random_problem(&rng, T, 1, g, y, &sn);
                /* kind 1: mostly below zero; kind 2: long stretches of it */
                for (int t = 0; t < T; t++)
                    y[t] -= kind == 1 ? 0.8 : kind == 2 && (t / 50) % 2 ? 2.0 : 0.0;
            } else {
                g[0] = 0.95;
                for (int t = 0; t < T; t++) y[t] = kind == 3 ? 0.7 : 0.01 * (double)(T - t);
            }
            double lams[2] = {0, 0.3};
            for (int il = 0; il < 2; il++) {
                double b1 = 0, b2 = 0;
                ck_assert_int_eq(caimg_oasis_solve(plan, seq, y, (size_t)T, 1, g,
                                                   CAIMG_DECONV_PENALIZED, lams[il], sn, 0, &b1,
                                                   NULL, c1, s1), 0);
                ck_assert_int_eq(caimg_oasis_solve(plan, lan, y, (size_t)T, 1, g,
                                                   CAIMG_DECONV_PENALIZED, lams[il], sn, 0, &b2,
                                                   NULL, c2, s2), 0);
                double big = 1e-300, d = 0;
                for (int t = 0; t < T; t++)
                    if (fabs(c1[t]) > big) big = fabs(c1[t]);
                for (int t = 0; t < T; t++) {
                    /* (a spike of rounding size may be 0 in the other) */
                    ck_assert_msg((s1[t] > 0) == (s2[t] > 0) || fmax(s1[t], s2[t]) < 1e-12 * big,
                                  "T %d kind %d lambda %g: a spike at frame %d in one pass only "
                                  "(%g vs %g)", T, kind, lams[il], t, s1[t], s2[t]);
                    if (fabs(c1[t] - c2[t]) > d) d = fabs(c1[t] - c2[t]);
                }
                ck_assert_msg(d <= 1e-12 * big, "T %d kind %d lambda %g: calcium differs by "
                              "%.3g (max %.3g)", T, kind, lams[il], d, big);
            }
        }
        free(y);
        caimg_deconv_ws_free(seq);
        caimg_deconv_ws_free(lan);
        caimg_deconv_plan_destroy(plan);
    }
}
END_TEST

/* --baseline nonneg bounds the baseline of the trace as given (the solver
 * centres traces internally; the bound once applied to the centred
 * baseline, so a trace of negative mean got b = its mean < 0).  And a
 * trace that varies less than the noise level: constrained foopsi cannot
 * reach RSS = sn^2 T, so it has no spikes -- lambda used to run away and
 * leave calcium inconsistent with s (AR(2)). */
START_TEST(baseline_nonneg_and_quiet_traces)
{
    const size_t T = 600;
    double *y = malloc(T * sizeof *y), *c = malloc(T * sizeof *c), *s = malloc(T * sizeof *s);
    sim_rng rng = {5};
    for (int p = 1; p <= 2; p++)
        for (int m = 0; m < 3; m++) {
            caimg_deconv_method method = m == 0 ? CAIMG_DECONV_CONSTRAINED
                                       : m == 1 ? CAIMG_DECONV_THRESHOLDED
                                                : CAIMG_DECONV_AUTO;
            caimg_deconv_params pp;
            caimg_deconv_params_init(&pp, 30);
            pp.p = p;
            pp.method = method;
            pp.baseline = CAIMG_DECONV_B_NONNEG;
            caimg_deconv_plan *plan = caimg_deconv_plan_create(&pp, T);
            caimg_deconv_ws *ws = caimg_deconv_ws_alloc(plan);
            ck_assert(plan && ws);
            /* Spikes on a baseline of -0.5: nonneg must give b = 0. */
            sim_params sp = {30, 1.0, 0.04, 0.5, 1.0, 0.2, 0.0};
            double *u = NULL;
            size_t nu = 0;
            sim_trace(&sp, T, &rng, y, &u, &nu);
            free(u);
            for (size_t t = 0; t < T; t++) y[t] -= 0.5;
            caimg_deconv_info inf;
            ck_assert_int_eq(caimg_deconv_execute(plan, ws, y, c, s, &inf, 0), 0);
            ck_assert_msg(inf.b >= 0 && inf.b < 1e-9, "AR(%d) %s: nonneg baseline %g",
                          p, caimg_deconv_method_name(method), inf.b);
            /* Noise only, given a noise level above the trace's s.d. */
            caimg_deconv_params_init(&pp, 30);
            pp.p = p;
            pp.method = method;
            pp.baseline = CAIMG_DECONV_B_ESTIMATE;
            pp.sn = 0.3;
            caimg_deconv_plan *quiet = caimg_deconv_plan_create(&pp, T);
            ck_assert_ptr_nonnull(quiet);
            double mean = 0;
            for (size_t t = 0; t < T; t++) mean += (y[t] = 0.2 + 0.25 * sim_normal(&rng));
            mean /= (double)T;
            ck_assert_int_eq(caimg_deconv_execute(quiet, ws, y, c, s, &inf, 0), 0);
            ck_assert_msg(isfinite(inf.lambda) && inf.lambda < 100, "AR(%d) %s: lambda %g", p,
                          caimg_deconv_method_name(method), inf.lambda);
            ck_assert_msg(fabs(inf.b - mean) < 1e-6, "AR(%d) %s: b %g, mean %g", p,
                          caimg_deconv_method_name(method), inf.b, mean);
            for (size_t t = 0; t < T; t++)
                ck_assert_msg(fabs(c[t]) < 1e-9 && fabs(s[t]) < 1e-9, "AR(%d) %s: c[%zu] = %g",
                              p, caimg_deconv_method_name(method), t, c[t]);
            caimg_deconv_plan_destroy(quiet);
            caimg_deconv_ws_free(ws);
            caimg_deconv_plan_destroy(plan);
        }
    free(y); free(c); free(s);
}
END_TEST

/* Units do not matter: the same trace in units 1e20 times larger or 1e30
 * times smaller gives the same spike frames and the noise level scaled
 * (the noise estimate's single-precision spectrum once overflowed to Inf
 * above ~1e19 and underflowed to 0 below ~1e-19, which made every output
 * NaN or every frame a spike). */
START_TEST(scale_invariance)
{
    const size_t T = 1200;
    double *y = malloc(T * sizeof *y), *z = malloc(T * sizeof *z);
    double *c = malloc(T * sizeof *c), *s = malloc(T * sizeof *s), *s1 = malloc(T * sizeof *s1);
    sim_rng rng = {8};
    sim_params sp = {30, 1.0, 0.04, 0.5, 1.0, 0.2, 0.0};
    double *u = NULL;
    size_t nu = 0;
    sim_trace(&sp, T, &rng, y, &u, &nu);
    free(u);
    caimg_deconv_params pp;
    caimg_deconv_params_init(&pp, 30);
    caimg_deconv_plan *plan = caimg_deconv_plan_create(&pp, T);
    caimg_deconv_ws *ws = caimg_deconv_ws_alloc(plan);
    caimg_deconv_info i1, i2;
    ck_assert_int_eq(caimg_deconv_execute(plan, ws, y, c, s1, &i1, 0), 0);
    static const double scales[] = {1e20, 1e-30};
    for (int k = 0; k < 2; k++) {
        for (size_t t = 0; t < T; t++) z[t] = y[t] * scales[k];
        ck_assert_int_eq(caimg_deconv_execute(plan, ws, z, c, s, &i2, 0), 0);
        ck_assert_msg(fabs(i2.sn / scales[k] - i1.sn) < 1e-6 * i1.sn, "scale %g: sn %g vs %g",
                      scales[k], i2.sn / scales[k], i1.sn);
        size_t differ = 0;
        for (size_t t = 0; t < T; t++) {
            ck_assert(isfinite(c[t]) && isfinite(s[t]));
            differ += (s[t] > 0) != (s1[t] > 0);
        }
        ck_assert_msg(differ == 0, "scale %g: %zu frames differ in having a spike", scales[k],
                      differ);
    }
    caimg_deconv_ws_free(ws);
    caimg_deconv_plan_destroy(plan);
    free(y); free(z); free(c); free(s); free(s1);
}
END_TEST

START_TEST(tau_conversions)
{
    double g[2], td, tr;
    ck_assert_int_eq(caimg_ar_from_tau(0.5, 0, 30, 1, g), 0);
    ck_assert_double_eq_tol(g[0], exp(-1 / 15.0), 1e-15);
    ck_assert_double_eq(g[1], 0);
    ck_assert_int_eq(caimg_ar_from_tau(0.7, 0.05, 60, 2, g), 0);
    ck_assert_int_eq(caimg_ar_to_tau(g, 2, 60, &td, &tr), 0);
    ck_assert_double_eq_tol(td, 0.7, 1e-12);
    ck_assert_double_eq_tol(tr, 0.05, 1e-12);
    /* Unstable or meaningless kinetics are refused with a message. */
    ck_assert_int_eq(caimg_ar_from_tau(0, 0, 30, 1, g), CAIMG_EINVAL);
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "unstable"));
    ck_assert_int_eq(caimg_ar_from_tau(-1, 0, 30, 1, g), CAIMG_EINVAL);
    ck_assert_int_eq(caimg_ar_from_tau(1e300, 0, 30, 1, g), CAIMG_EINVAL);
    double bad1[2] = {1.0, 0}, bad2[2] = {1.5, -0.4}, bad3[2] = {0.5, -0.5};
    ck_assert_int_eq(caimg_ar_check(bad1, 1), CAIMG_EINVAL);
    ck_assert_int_eq(caimg_ar_check(bad2, 2), CAIMG_EINVAL);   /* root 1.1 */
    ck_assert_int_eq(caimg_ar_check(bad3, 2), CAIMG_EINVAL);   /* complex roots */
    const caimg_indicator *ind = caimg_indicator_find("gcamp6f");
    ck_assert_ptr_nonnull(ind);
    ck_assert_ptr_eq(caimg_indicator_find("jGCaMP8f"), caimg_indicator_find("GCaMP8f"));
    ck_assert_ptr_null(caimg_indicator_find("GFP"));
}
END_TEST

/* The effective duration of an AR impulse response: its area over its
 * peak, in frames (for AR(1) this is 1 / (1 - g)). */
static double kernel_duration(const double g[2])
{
    double h1 = 1, h2 = 0, area = 0, peak = 0;
    for (int k = 0; k < 100000; k++) {
        area += h1;
        if (h1 > peak) peak = h1;
        double hn = g[0] * h1 + g[1] * h2;
        h2 = h1;
        h1 = hn;
        if (h1 < 1e-12 * peak && k > 10) break;
    }
    return area / peak;
}

/* Synthetic AR traces with frame-aligned Poisson spikes: the estimated
 * AR(1) decay must be within 10 % of the truth.  For AR(2) the rise and the
 * decay trade off in any fit (a slower rise with a faster decay draws
 * nearly the same transient), so what is checked is the transient itself:
 * its effective duration (area / peak) within 20 %.  Noise within 5 %. */
START_TEST(parameter_recovery)
{
    const size_t T = 6000;
    const double fs = 30;
    double *y = malloc(T * sizeof *y), *c = malloc(T * sizeof *c), *s = malloc(T * sizeof *s);
    const double taus[] = {0.3, 0.6, 1.2};
    for (int p = 1; p <= 2; p++) {
        caimg_deconv_params pp;
        caimg_deconv_params_init(&pp, fs);
        pp.p = p;
        caimg_deconv_plan *plan = caimg_deconv_plan_create(&pp, T);
        caimg_deconv_ws *ws = caimg_deconv_ws_alloc(plan);
        for (int k = 0; k < 3; k++) {
            sim_rng rng = {100 + k + 10 * p};
            double g[2];
            caimg_ar_from_tau(taus[k], p == 2 ? 0.08 : 0, fs, p, g);
            for (size_t t = 0; t < T; t++) s[t] = sim_uniform(&rng) < 0.5 / fs ? 1 : 0;
            ref_filter(s, c, (int)T, g[0], g[1]);
            double sn = 0.15;
            for (size_t t = 0; t < T; t++) y[t] = 0.3 + c[t] + sn * sim_normal(&rng);
            caimg_deconv_info info;
            caimg_deconv_execute(plan, ws, y, c, s, &info, 0);
            double td, tr;
            ck_assert_int_eq(caimg_ar_to_tau(info.g, p, fs, &td, &tr), 0);
            if (p == 1)
                ck_assert_msg(fabs(td - taus[k]) < 0.10 * taus[k],
                              "AR(1) tau %.3f estimated as %.3f", taus[k], td);
            double dt = kernel_duration(g), de = kernel_duration(info.g);
            ck_assert_msg(fabs(de - dt) < 0.20 * dt, "AR(%d) tau %.3f: transient duration %.1f "
                          "frames estimated as %.1f (tau %.3f, rise %.3f)", p, taus[k], dt, de,
                          td, tr);
            ck_assert_msg(fabs(info.sn - sn) < 0.05 * sn, "noise %.4f estimated as %.4f", sn,
                          info.sn);
            /* The robust (mode) baseline sits above the truth when the
             * calcium rarely returns to rest (slow decay, 0.5 Hz): within
             * one noise sd is what it guarantees. */
            ck_assert_msg(fabs(info.b - 0.3) < sn, "baseline 0.3 estimated as %.4f", info.b);
            ck_assert_int_eq(info.flags & (CAIMG_DECONV_G_FALLBACK | CAIMG_DECONV_SHORT), 0);
        }
        caimg_deconv_ws_free(ws);
        caimg_deconv_plan_destroy(plan);
    }
    free(y);
    free(c);
    free(s);
}
END_TEST

/* The single-spike amplitude on sparse, clean data (frame-aligned spikes
 * of size 0.8, AR(1)): within 15 %, so spikes = s / amplitude counts
 * spikes: the total is within 15 % of the true count. */
START_TEST(amplitude_counts_spikes)
{
    const size_t T = 9000;
    const double fs = 30;
    double *y = malloc(T * sizeof *y), *c = malloc(T * sizeof *c), *s = malloc(T * sizeof *s);
    sim_rng rng = {7};
    double g[2];
    caimg_ar_from_tau(0.5, 0, fs, 1, g);
    size_t nsp = 0;
    for (size_t t = 0; t < T; t++) {
        s[t] = sim_uniform(&rng) < 0.3 / fs ? 0.8 : 0;
        nsp += s[t] > 0;
    }
    ref_filter(s, c, (int)T, g[0], g[1]);
    for (size_t t = 0; t < T; t++) y[t] = c[t] + 0.08 * sim_normal(&rng);
    caimg_deconv_params pp;
    caimg_deconv_params_init(&pp, fs);
    pp.p = 1;
    caimg_deconv_plan *plan = caimg_deconv_plan_create(&pp, T);
    caimg_deconv_ws *ws = caimg_deconv_ws_alloc(plan);
    caimg_deconv_info info;
    caimg_deconv_execute(plan, ws, y, c, s, &info, 0);
    ck_assert_msg(fabs(info.amplitude - 0.8) < 0.15 * 0.8, "amplitude %.3f, truth 0.8",
                  info.amplitude);
    double count = 0;
    for (size_t t = 0; t < T; t++) count += s[t] / info.amplitude;
    ck_assert_msg(fabs(count - (double)nsp) < 0.15 * (double)nsp, "%.1f spikes counted, %zu true",
                  count, nsp);
    caimg_deconv_ws_free(ws);
    caimg_deconv_plan_destroy(plan);
    free(y);
    free(c);
    free(s);
}
END_TEST

/* ---- spike inference on GCaMP6f-like traces ----------------------------- */

/* Continuous-time Poisson spikes (1 Hz), rise 40 ms, decay 0.5 s, 30 Hz.
 * caimg estimates the kinetics; the Suite2p-style reference (maximin
 * baseline, OASIS AR(1) without penalty) is given the true decay.  At
 * 30 Hz and 40 ms bins even perfect frame-level inference scores about
 * 0.84 (frames and bins do not align).  The requirement is on the mean
 * over SNR 2..10, as the goal is stated; from SNR 5 up caimg must also
 * beat the reference clearly at each level.  At SNR 2 (single spikes at
 * twice the noise) only a floor is asserted: there caimg is on par with or
 * slightly below the reference, because its robust baseline estimate is
 * biased up by dense sub-threshold calcium (a known gap). */
START_TEST(spike_correlation_gcamp6f)
{
    const size_t T = 6000;
    const double fs = 30, snrs[] = {2, 5, 10};
    const double floor_r[] = {0.28, 0.60, 0.68}, margin[] = {-1, 0.08, 0.10};
    double mine_all = 0, ref_all = 0;
    double *F = malloc(T * sizeof *F), *c = malloc(T * sizeof *c), *s = malloc(T * sizeof *s);
    double *tf = malloc(T * sizeof *tf), *F0 = malloc(T * sizeof *F0);
    for (size_t i = 0; i < T; i++) tf[i] = (double)i / fs;
    caimg_deconv_params pp;
    caimg_deconv_params_init(&pp, fs);
    caimg_deconv_plan *plan = caimg_deconv_plan_create(&pp, T);
    caimg_deconv_ws *ws = caimg_deconv_ws_alloc(plan);
    caimg_deconv_params rp;
    caimg_deconv_params_init(&rp, fs);
    rp.baseline = CAIMG_DECONV_B_FIXED;
    caimg_deconv_plan *rplan = caimg_deconv_plan_create(&rp, T);
    caimg_deconv_ws *rws = caimg_deconv_ws_alloc(rplan);
    caimg_baseline_params bp;
    caimg_baseline_params_init(&bp, caimg_baseline_maximin);
    caimg_baseline *base = caimg_baseline_alloc(caimg_baseline_maximin, &bp, fs, T);
    for (int k = 0; k < 3; k++) {
        double mine = 0, ref = 0;
        const int N = 6;
        for (int n = 0; n < N; n++) {
            sim_rng rng = {1000 + 17 * k + n};
            sim_params sp = {fs, 1.0, 0.04, 0.5, 1.0, 1.0 / snrs[k], 0.2};
            double *u = NULL;
            size_t nu = 0;
            ck_assert_int_eq(sim_trace(&sp, T, &rng, F, &u, &nu), 0);
            caimg_deconv_info info;
            caimg_deconv_execute(plan, ws, F, c, s, &info, 0);
            mine += sim_score(s, tf, T, u, nu);
            caimg_baseline_compute(base, F, F0, NULL);
            for (size_t i = 0; i < T; i++) F0[i] = F[i] - F0[i];
            double g[2] = {exp(-1 / (0.5 * fs)), 0}, b = 0;
            caimg_oasis_solve(rplan, rws, F0, T, 1, g, CAIMG_DECONV_PENALIZED, 0, 0, 0, &b, NULL,
                              c, s);
            ref += sim_score(s, tf, T, u, nu);
            free(u);
        }
        mine /= N;
        ref /= N;
        ck_assert_msg(mine > ref + margin[k], "SNR %g: caimg r = %.3f, Suite2p-style reference "
                      "%.3f", snrs[k], mine, ref);
        mine_all += mine / 3;
        ref_all += ref / 3;
        ck_assert_msg(mine > floor_r[k], "SNR %g: caimg r = %.3f below %.2f", snrs[k], mine,
                      floor_r[k]);
    }
    ck_assert_msg(mine_all > ref_all + 0.05, "mean over SNR 2..10: caimg r = %.3f, reference %.3f",
                  mine_all, ref_all);
    caimg_baseline_free(base);
    caimg_deconv_ws_free(rws);
    caimg_deconv_plan_destroy(rplan);
    caimg_deconv_ws_free(ws);
    caimg_deconv_plan_destroy(plan);
    free(F); free(c); free(s); free(tf); free(F0);
}
END_TEST

/* ---- edge cases ------------------------------------------------------------ */

static int nwarn;
static void count_warn(const char *msg, void *ctx)
{
    (void)msg;
    (void)ctx;
    nwarn++;
}

static void assert_finite(const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++) ck_assert_msg(isfinite(x[i]), "x[%zu] = %g", i, x[i]);
}

START_TEST(edge_cases)
{
    caimg_set_warn_handler(count_warn, NULL);
    const size_t T = 400;
    double y[400], c[400], s[400];
    caimg_deconv_params pp;
    caimg_deconv_params_init(&pp, 30);
    for (int p = 1; p <= 2; p++) {
        pp.p = p;
        caimg_deconv_plan *plan = caimg_deconv_plan_create(&pp, T);
        caimg_deconv_ws *ws = caimg_deconv_ws_alloc(plan);
        caimg_deconv_info info;
        /* All zero. */
        memset(y, 0, sizeof y);
        nwarn = 0;
        ck_assert_int_eq(caimg_deconv_execute(plan, ws, y, c, s, &info, 3), 0);
        ck_assert(info.flags & CAIMG_DECONV_ZERO);
        ck_assert_int_eq(nwarn, 1);
        for (size_t t = 0; t < T; t++) ck_assert(c[t] == 0 && s[t] == 0);
        ck_assert(isfinite(info.b) && isfinite(info.sn) && isfinite(info.amplitude));
        /* NaN frames, and an infinite one. */
        sim_rng rng = {5};
        for (size_t t = 0; t < T; t++) y[t] = sim_normal(&rng) * 0.1 + (t % 50 == 10 ? 3 : 0);
        y[0] = NAN;
        y[100] = NAN;
        y[101] = INFINITY;
        y[T - 1] = NAN;
        nwarn = 0;
        caimg_deconv_execute(plan, ws, y, c, s, &info, 4);
        ck_assert(info.flags & CAIMG_DECONV_NONFINITE);
        ck_assert_int_ge(nwarn, 1);
        assert_finite(c, T);
        assert_finite(s, T);
        ck_assert(isfinite(info.b) && isfinite(info.sn) && isfinite(info.amplitude));
        ck_assert(isfinite(info.g[0]) && isfinite(info.g[1]));
        /* Every sample NaN. */
        for (size_t t = 0; t < T; t++) y[t] = NAN;
        caimg_deconv_execute(plan, ws, y, c, s, &info, 5);
        ck_assert(info.flags & CAIMG_DECONV_ZERO);
        assert_finite(c, T);
        assert_finite(s, T);
        caimg_deconv_ws_free(ws);
        caimg_deconv_plan_destroy(plan);
        /* Too short to estimate the decay: the fallback, flagged. */
        plan = caimg_deconv_plan_create(&pp, 6);
        ws = caimg_deconv_ws_alloc(plan);
        double ys[6] = {0, 1, 0.5, 0.2, 1.2, 0.6};
        nwarn = 0;
        caimg_deconv_execute(plan, ws, ys, c, s, &info, 6);
        ck_assert(info.flags & CAIMG_DECONV_SHORT);
        ck_assert_int_ge(nwarn, 1);
        assert_finite(c, 6);
        assert_finite(s, 6);
        caimg_deconv_ws_free(ws);
        caimg_deconv_plan_destroy(plan);
        /* One frame, with the decay given: fine. */
        pp.tau_decay = 0.5;
        plan = caimg_deconv_plan_create(&pp, 1);
        ck_assert_ptr_nonnull(plan);
        ws = caimg_deconv_ws_alloc(plan);
        caimg_deconv_execute(plan, ws, ys + 1, c, s, &info, 7);
        assert_finite(c, 1);
        assert_finite(s, 1);
        caimg_deconv_ws_free(ws);
        caimg_deconv_plan_destroy(plan);
        pp.tau_decay = 0;
    }
    /* A given decay that makes the model unstable is refused up front. */
    pp.tau_decay = -0.5;
    ck_assert_ptr_null(caimg_deconv_plan_create(&pp, T));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "unstable"));
    pp.tau_decay = 0;
    pp.fs = 0;
    ck_assert_ptr_null(caimg_deconv_plan_create(&pp, T));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "--fs"));
    /* And so is an unstable g given to the solver. */
    pp.fs = 30;
    caimg_deconv_plan *plan = caimg_deconv_plan_create(&pp, T);
    caimg_deconv_ws *ws = caimg_deconv_ws_alloc(plan);
    double g[2] = {1.9, -0.8}, b = 0;   /* roots 1.0 and 0.9: unstable */
    ck_assert_int_eq(caimg_oasis_solve(plan, ws, y, T, 2, g, CAIMG_DECONV_PENALIZED, 0.1, 0, 0,
                                       &b, NULL, c, s), CAIMG_EINVAL);
    caimg_deconv_ws_free(ws);
    caimg_deconv_plan_destroy(plan);
    caimg_set_warn_handler(NULL, NULL);
}
END_TEST

/* The batch driver gives what one-by-one execution gives, in parallel,
 * and spikes = s / amplitude. */
START_TEST(batch_matches_single)
{
    const size_t N = 12, T = 1500;
    float *Y = malloc(N * T * sizeof *Y), *C = malloc(N * T * sizeof *C);
    float *S = malloc(N * T * sizeof *S), *K = malloc(N * T * sizeof *K);
    double *y = malloc(T * sizeof *y), *c = malloc(T * sizeof *c), *s = malloc(T * sizeof *s);
    caimg_deconv_info info[12];
    sim_rng rng = {99};
    for (size_t i = 0; i < N; i++) {
        sim_params sp = {30, 1.5, 0.04, 0.5, 1.0, 0.2, 0.1};
        double *u = NULL;
        size_t nu = 0;
        sim_trace(&sp, T, &rng, y, &u, &nu);
        free(u);
        for (size_t t = 0; t < T; t++) Y[i * T + t] = (float)y[t];
    }
    caimg_deconv_params pp;
    caimg_deconv_params_init(&pp, 30);
    pp.threads = 2;
    caimg_deconv_plan *plan = caimg_deconv_plan_create(&pp, T);
    ck_assert_int_eq(caimg_deconv_traces(plan, N, Y, C, S, K, info, 0), 0);
    caimg_deconv_ws *ws = caimg_deconv_ws_alloc(plan);
    for (size_t i = 0; i < N; i++) {
        for (size_t t = 0; t < T; t++) y[t] = Y[i * T + t];
        caimg_deconv_info one;
        caimg_deconv_execute(plan, ws, y, c, s, &one, i);
        ck_assert_double_eq(one.b, info[i].b);
        ck_assert_double_eq(one.amplitude, info[i].amplitude);
        ck_assert(info[i].amplitude > 0);
        for (size_t t = 0; t < T; t++) {
            ck_assert_float_eq(C[i * T + t], (float)c[t]);
            ck_assert_float_eq(S[i * T + t], (float)s[t]);
            ck_assert_float_eq_tol(K[i * T + t], (float)(s[t] / one.amplitude), 1e-6);
        }
    }
    caimg_deconv_ws_free(ws);
    caimg_deconv_plan_destroy(plan);
    free(Y); free(C); free(S); free(K); free(y); free(c); free(s);
}
END_TEST

START_TEST(names)
{
    ck_assert_int_eq(caimg_deconv_method_from_name("thresholded"), CAIMG_DECONV_THRESHOLDED);
    ck_assert_int_eq(caimg_deconv_method_from_name("foopsi"), -1);
    ck_assert_str_eq(caimg_deconv_method_name(CAIMG_DECONV_CONSTRAINED), "constrained");
    ck_assert_int_eq(caimg_deconv_baseline_from_name("mode"), CAIMG_DECONV_B_MODE);
    ck_assert_str_eq(caimg_deconv_baseline_name(CAIMG_DECONV_B_NONNEG), "nonneg");
}
END_TEST

static Suite *deconv_suite(void)
{
    Suite *s = suite_create("deconv");
    TCase *tc = tcase_create("exact");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, exact_ar1_penalized);
    tcase_add_test(tc, exact_ar2_penalized);
    tcase_add_test(tc, exact_constrained);
    tcase_add_test(tc, ar1_lanes_match_sequential);
    tcase_add_test(tc, baseline_nonneg_and_quiet_traces);
    tcase_add_test(tc, scale_invariance);
    tcase_add_test(tc, thresholded_respects_smin);
    suite_add_tcase(s, tc);
    tc = tcase_create("estimation");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, tau_conversions);
    tcase_add_test(tc, parameter_recovery);
    tcase_add_test(tc, amplitude_counts_spikes);
    tcase_add_test(tc, spike_correlation_gcamp6f);
    suite_add_tcase(s, tc);
    tc = tcase_create("edges");
    tcase_add_test(tc, edge_cases);
    tcase_add_test(tc, batch_matches_single);
    tcase_add_test(tc, names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(deconv_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
