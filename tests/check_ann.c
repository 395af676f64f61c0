/* check_ann.c -- the response-model engine: architecture language, exact
 * gradients, determinism, evaluation metrics, and learning known receptive
 * fields.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include <check.h>

#include "caimg/caimg.h"
#include "ann_internal.h"

/* ---- helpers ------------------------------------------------------------------ */

/* Objectives for the finite-difference checks record their terms (sums
 * of products of float values, evaluated in double) in `terms`, plus any
 * part computed exactly in double in `exact`, so that a difference
 * J(v + h) - J(v - h) can be taken term by term: terms a perturbation does
 * not reach cancel exactly, and only those it changes carry float rounding
 * (see fd_compare). */
#define MAXTERMS 200000
static double *terms;
static size_t nterms;
static double exact;
static double terms_p[MAXTERMS], terms_m[MAXTERMS];

static void fill_normal(float *v, size_t n, double sd, uint64_t seed)
{
    ann_rng r;
    ann_rng_init(&r, seed, 7);
    for (size_t i = 0; i < n; i++) v[i] = (float)(sd * ann_rng_normal(&r));
}

/* Values bounded away from zero (|v| >= 0.1), so that a finite difference
 * of step 0.01 never crosses a ReLU kink. */
static void fill_away_from_zero(float *v, size_t n, uint64_t seed)
{
    ann_rng r;
    ann_rng_init(&r, seed, 8);
    for (size_t i = 0; i < n; i++) {
        double u = 0.1 + 0.9 * ann_rng_uniform(&r);
        v[i] = (float)(ann_rng_uniform(&r) < 0.5 ? -u : u);
    }
}

/* A random permutation of values 0.05 apart, so that no two pixels of a
 * pooling window are within two finite-difference steps of each other. */
static void fill_distinct(float *v, size_t n, uint64_t seed)
{
    ann_rng r;
    ann_rng_init(&r, seed, 9);
    for (size_t i = 0; i < n; i++) v[i] = (float)(0.05 * ((double)i - (double)n / 2));
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = ann_rng_below(&r, i + 1);
        float t = v[i]; v[i] = v[j]; v[j] = t;
    }
}

/* J = sum c .* out, in double. */
static double lin_objective(caimg_ann *m, caimg_ann_work *w, const float *x, size_t n,
                            const float *c, const caimg_ann_noise_draw *nd)
{
    size_t N = caimg_ann_output_size(m);
    float *out = malloc(n * N * sizeof *out);
    ck_assert_int_eq(caimg_ann_forward(m, w, x, n, nd, out), 0);
    double J = 0.0;
    for (size_t i = 0; i < n * N; i++) {
        J += (double)c[i] * out[i];
        if (terms) terms[i] = (double)c[i] * out[i];
    }
    nterms = n * N;
    exact = 0.0;
    free(out);
    return J;
}

/* Compare an analytic gradient with finite differences of `f` over the
 * float variables v[0..n).  Central differences at steps h and h/2 are
 * combined by Richardson extrapolation, which cancels the O(h^2) truncation
 * error that curved layers (ELU, softplus) would otherwise leave.  Steps
 * are applied to float storage, so each denominator is the difference
 * actually made.  The tolerance of entry i has three parts:
 *   rtol * |gradient|             relative agreement (1e-2: a wrong formula
 *                                 is off by O(1));
 *   atol_rel * max |analytic|     for entries near zero;
 *   1e-6 * S_i / step             float32 rounding: only the objective's
 *                                 terms that the perturbation of v[i]
 *                                 changes carry rounding (the others cancel
 *                                 exactly); each has a relative error of a
 *                                 few ulps (2.5e-7 = 4 ulps) after the short
 *                                 float sums of these small layers, and
 *                                 errors of separately computed terms add
 *                                 like a random walk, so S_i = sqrt(sum of
 *                                 their squares), times 4 (about four
 *                                 standard deviations), over the step.
 * Returns the worst ratio of error to tolerance (<= 1 passes). */
typedef double (*objective_fn)(void *ctx);

/* (J(v + h) - J(v - h)) / (2h) term by term; *round gets the rounding
 * allowance of that quotient. */
static double central(float *v, size_t i, double h, objective_fn f, void *ctx, double *round)
{
    float v0 = v[i];
    v[i] = v0 + (float)h;
    float vp = v[i];
    terms = terms_p;
    f(ctx);
    double ep = exact;
    size_t n = nterms;
    v[i] = v0 - (float)h;
    float vm = v[i];
    terms = terms_m;
    f(ctx);
    double em = exact;
    terms = NULL;
    v[i] = v0;
    ck_assert_uint_eq(n, nterms);
    double d = ep - em, changed2 = 0.0;
    for (size_t k = 0; k < n; k++) {
        d += terms_p[k] - terms_m[k];
        if (terms_p[k] != terms_m[k])
            changed2 += fmax(terms_p[k] * terms_p[k], terms_m[k] * terms_m[k]);
    }
    double step = (double)vp - (double)vm;
    *round = 1e-6 * sqrt(changed2) / step;
    return d / step;
}

static double fd_compare(float *v, const float *ana, size_t n, double h, objective_fn f,
                         void *ctx, double rtol, double atol_rel, const char *what)
{
    double amax = 0.0;
    for (size_t i = 0; i < n; i++) amax = fmax(amax, fabs(ana[i]));
    double worst = 0.0, maxerr = 0.0, maxround = 0.0;
    size_t stride = n > 400 ? n / 400 : 1;     /* sample big tensors */
    for (size_t i = 0; i < n; i += stride) {
        double r1, r2;
        double d1 = central(v, i, h, f, ctx, &r1), d2 = central(v, i, h / 2, f, ctx, &r2);
        double num = (4.0 * d2 - d1) / 3.0, round_tol = (4.0 * r2 + r1) / 3.0;
        double err = fabs(num - ana[i]);
        double tol = atol_rel * amax + rtol * fmax(fabs(num), fabs(ana[i])) + round_tol + 1e-12;
        worst = fmax(worst, err / tol);
        maxerr = fmax(maxerr, err);
        maxround = fmax(maxround, round_tol);
    }
    if (getenv("CAIMG_TEST_VERBOSE"))
        fprintf(stderr, "  %-40s n=%5zu max|grad|=%.3g max err=%.3g max rounding tol=%.2g "
                "worst ratio=%.3f\n", what, n, amax, maxerr, maxround, worst);
    return worst;
}

typedef struct {
    caimg_ann *m;
    caimg_ann_work *w;
    const float *x;
    size_t n;
    const float *c;
    const caimg_ann_noise_draw *nd;
} lin_ctx;

static double lin_f(void *p)
{
    lin_ctx *c = p;
    return lin_objective(c->m, c->w, c->x, c->n, c->c, c->nd);
}

enum { IN_GAUSS = 0, IN_AWAY, IN_DISTINCT };

/* Gradient check of a linear functional of the output, for all parameters
 * and the input. */
static void gradcheck_arch(const char *arch, size_t C, size_t H, size_t W, size_t N,
                           int input_kind, const char *noise_layer, int noise_mode)
{
    const size_t n = 3;
    caimg_ann *m = caimg_ann_create(arch, C, H, W, N, 11);
    ck_assert_msg(m != NULL, "create '%s': %s", arch, caimg_errmsg());
    if (noise_layer)
        ck_assert_int_eq(caimg_ann_noise_set(m, noise_layer, 0.3, noise_mode), 0);
    /* Biases start at zero; make them random so every path is exercised. */
    for (size_t k = 0; k < caimg_ann_ntensors(m); k++) {
        caimg_ann_tensor t;
        caimg_ann_tensor_get(m, k, &t);
        if (t.trainable && strstr(t.name, "bias")) fill_normal(t.data, t.size, 0.2, 100 + k);
    }
    size_t insz = caimg_ann_input_size(m);
    float *x = malloc(n * insz * sizeof *x), *c = malloc(n * N * sizeof *c);
    float *dx = malloc(n * insz * sizeof *dx);
    if (input_kind == IN_AWAY) fill_away_from_zero(x, n * insz, 3);
    else if (input_kind == IN_DISTINCT) fill_distinct(x, n * insz, 3);
    else fill_normal(x, n * insz, 1.0, 3);
    if (noise_layer) ck_assert_int_eq(caimg_ann_noise_calibrate(m, x, n), 0);
    fill_normal(c, n * N, 1.0, 4);
    caimg_ann_work *w = caimg_ann_work_alloc(m, n);
    caimg_ann_noise_draw nd = {5, 0};
    lin_ctx ctx = {m, w, x, n, c, noise_layer ? &nd : NULL};
    lin_objective(m, w, x, n, c, ctx.nd);
    ck_assert_int_eq(caimg_ann_backward(m, w, c, NULL, 0, dx, 1), 0);
    float *pg = malloc(caimg_ann_nparams(m) * sizeof *pg);
    memcpy(pg, caimg_ann_work_param_grad(w), caimg_ann_nparams(m) * sizeof *pg);
    if (getenv("CAIMG_TEST_VERBOSE")) fprintf(stderr, "%s\n", arch);
    for (size_t k = 0; k < caimg_ann_ntensors(m); k++) {
        caimg_ann_tensor t;
        caimg_ann_tensor_get(m, k, &t);
        if (!t.trainable) continue;
        size_t off = (size_t)(t.data - m->theta);
        double r = fd_compare(t.data, pg + off, t.size, 1e-2, lin_f, &ctx, 1e-2, 1e-3, t.name);
        ck_assert_msg(r <= 1.0, "%s: gradient of %s off by %.2f x tolerance", arch, t.name, r);
    }
    double r = fd_compare(x, dx, n * insz, 1e-2, lin_f, &ctx, 1e-2, 1e-3, "input");
    ck_assert_msg(r <= 1.0, "%s: input gradient off by %.2f x tolerance", arch, r);
    free(pg); free(x); free(c); free(dx);
    caimg_ann_work_free(w);
    caimg_ann_free(m);
}

/* ---- random numbers -------------------------------------------------------------- */

START_TEST(philox_known_answers)
{
    /* Random123's published known-answer vectors for Philox4x32-10. */
    const uint32_t ctr[3][4] = {{0, 0, 0, 0},
                                {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                                {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}};
    const uint32_t key[3][2] = {{0, 0}, {0xffffffffu, 0xffffffffu}, {0xa4093822u, 0x299f31d0u}};
    const uint32_t want[3][4] = {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u},
                                 {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu},
                                 {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}};
    for (int k = 0; k < 3; k++) {
        uint32_t out[4];
        ann_philox(ctr[k], key[k], out);
        for (int i = 0; i < 4; i++) ck_assert_uint_eq(out[i], want[k][i]);
    }
}
END_TEST

START_TEST(philox_blocks_match)
{
    /* The vectorised block generator behind the noise is the KAT-tested
     * Philox, word for word. */
    const uint32_t key[2] = {0xa4093822u, 0x299f31d0u};
    uint32_t out[4 * 37];
    ann_philox_blocks(key, 0xfffffff0u, 17, 0x243f6a88u, 3, 37, out);
    for (uint32_t b = 0; b < 37; b++) {
        uint32_t ctr[4] = {0xfffffff0u + b, 17, 0x243f6a88u, 3}, want[4];
        ann_philox(ctr, key, want);
        for (int k = 0; k < 4; k++) ck_assert_uint_eq(out[4 * b + k], want[k]);
    }
}
END_TEST

START_TEST(noise_is_gaussian_and_keyed)
{
    /* Noise of an absolute-sigma layer: mean 0, sd sigma, and a function of
     * (seed, stream, sample) only. */
    caimg_ann *m = caimg_ann_create("noise noise_abs=2; readout dense", 1, 40, 50, 1, 3);
    ck_assert_ptr_nonnull(m);
    size_t n = 20, sz = 2000;
    float *x = calloc(n * sz, sizeof *x);
    caimg_ann_work *w = caimg_ann_work_alloc(m, n);
    caimg_ann_noise_draw nd = {9, 0};
    ck_assert_int_eq(caimg_ann_forward(m, w, x, n, &nd, NULL), 0);
    const float *a = caimg_ann_work_activation(w, 1);
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n * sz; i++) { s += a[i]; s2 += (double)a[i] * a[i]; }
    double mean = s / (double)(n * sz), sd = sqrt(s2 / (double)(n * sz) - mean * mean);
    /* 40000 draws: the standard error of the mean is 0.01, of the sd 0.007;
     * tails (|z| > 3 sd: 0.27%, about 108 +- 10 draws) checked too. */
    ck_assert_double_le(fabs(mean), 0.05);
    ck_assert_double_le(fabs(sd - 2.0), 0.04);
    size_t tail = 0;
    for (size_t i = 0; i < n * sz; i++) tail += fabsf(a[i]) > 6.0f;
    ck_assert_uint_ge(tail, 70);
    ck_assert_uint_le(tail, 150);
    float *first = malloc(n * sz * sizeof *first);
    memcpy(first, a, n * sz * sizeof *first);
    /* Sample 5 of a call starting at index 5 gets the noise of sample 5
     * above; a different stream gives different noise. */
    caimg_ann_noise_draw nd2 = {9, 5};
    ck_assert_int_eq(caimg_ann_forward(m, w, x, 1, &nd2, NULL), 0);
    ck_assert_int_eq(memcmp(caimg_ann_work_activation(w, 1), first + 5 * sz, sz * sizeof(float)), 0);
    caimg_ann_noise_draw nd3 = {10, 5};
    ck_assert_int_eq(caimg_ann_forward(m, w, x, 1, &nd3, NULL), 0);
    ck_assert_int_ne(memcmp(caimg_ann_work_activation(w, 1), first + 5 * sz, sz * sizeof(float)), 0);
    /* Without a draw there is no noise. */
    ck_assert_int_eq(caimg_ann_forward(m, w, x, 1, NULL, NULL), 0);
    ck_assert_float_eq(caimg_ann_work_activation(w, 1)[17], 0.0f);
    free(first); free(x);
    caimg_ann_work_free(w);
    caimg_ann_free(m);
}
END_TEST

/* ---- architecture language -------------------------------------------------------- */

START_TEST(presets_build_and_round_trip)
{
    for (const char *const *p = caimg_ann_preset_names(); *p; p++) {
        caimg_ann *m = caimg_ann_create(*p, 1, 31, 31, 7, 1);
        ck_assert_msg(m != NULL, "preset %s: %s", *p, caimg_errmsg());
        char *t1 = caimg_ann_arch_text(m);
        caimg_ann *m2 = caimg_ann_create(t1, 1, 31, 31, 7, 1);
        ck_assert_msg(m2 != NULL, "canonical text of %s does not parse: %s\n%s", *p, caimg_errmsg(), t1);
        char *t2 = caimg_ann_arch_text(m2);
        ck_assert_str_eq(t1, t2);
        /* Same text and seed: same weights. */
        ck_assert_uint_eq(caimg_ann_nparams(m), caimg_ann_nparams(m2));
        ck_assert_int_eq(memcmp(m->theta, m2->theta, caimg_ann_nparams(m) * sizeof(float)), 0);
        free(t1); free(t2);
        caimg_ann_free(m); caimg_ann_free(m2);
    }
    caimg_ann *m = caimg_ann_create("conv2", 1, 31, 31, 7, 1);
    /* The conv2 preset names its noise points and keeps the image size. */
    ck_assert_int_eq(caimg_ann_layer_find(m, "input"), 0);
    int h1 = caimg_ann_layer_find(m, "h1"), h2 = caimg_ann_layer_find(m, "h2");
    ck_assert_int_gt(h1, 0);
    ck_assert_int_gt(h2, h1);
    size_t sh[3];
    caimg_ann_layer_shape(m, (size_t)h2, sh);
    ck_assert_uint_eq(sh[0], 16);
    ck_assert_uint_eq(sh[1], 31);
    ck_assert_uint_eq(sh[2], 31);
    ck_assert_str_eq(caimg_ann_layer_type(m, caimg_ann_nlayers(m) - 2), "readout factorised");
    ck_assert_int_ge(caimg_ann_tensor_find(m, "readout/mask"), 0);
    ck_assert_int_eq(caimg_ann_tensor_find(m, "h1/noise_sd"), -1);
    /* Noise set through the API shows in the canonical text and tensors. */
    ck_assert_int_eq(caimg_ann_noise_set(m, "h1", 0.5, CAIMG_ANN_NOISE_REL), 0);
    ck_assert_int_eq(caimg_ann_noise_set(m, "input", 0.1, CAIMG_ANN_NOISE_ABS), 0);
    ck_assert_int_ge(caimg_ann_tensor_find(m, "h1/noise_sd"), 0);
    char *t = caimg_ann_arch_text(m);
    ck_assert_ptr_nonnull(strstr(t, "noise name=h1 noise_rel=0.5"));
    ck_assert_ptr_nonnull(strstr(t, "input noise_abs=0.1"));
    caimg_ann *m3 = caimg_ann_create(t, 1, 31, 31, 7, 1);
    ck_assert_ptr_nonnull(m3);
    double sg;
    int mode;
    caimg_ann_noise_get(m3, 0, &sg, &mode);
    ck_assert_double_eq(sg, 0.1);
    ck_assert_int_eq(mode, CAIMG_ANN_NOISE_ABS);
    ck_assert_int_eq(caimg_ann_noise_set(m, "nosuch", 0.5, CAIMG_ANN_NOISE_REL), CAIMG_EINVAL);
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "nosuch"));
    free(t);
    caimg_ann_free(m);
    caimg_ann_free(m3);
}
END_TEST

START_TEST(language_details)
{
    /* Comments, newlines, default names, shapes of stride/pad/pool. */
    const char *txt =
        "# a comment line\n"
        "conv 4 3x5 stride=2 pad=1   # trailing comment\n"
        "relu; pool avg 2x2\n"
        "elu\n"
        "dense 6 ; softplus ; readout dense l1=0.5 ; elu1\n";
    caimg_ann *m = caimg_ann_create(txt, 2, 11, 13, 3, 1);
    ck_assert_msg(m != NULL, "%s", caimg_errmsg());
    ck_assert_uint_eq(caimg_ann_nlayers(m), 9);
    size_t sh[3];
    caimg_ann_layer_shape(m, 1, sh);              /* (11+2-3)/2+1, (13+2-5)/2+1 */
    ck_assert_uint_eq(sh[0], 4);
    ck_assert_uint_eq(sh[1], 6);
    ck_assert_uint_eq(sh[2], 6);
    caimg_ann_layer_shape(m, 3, sh);
    ck_assert_uint_eq(sh[1], 3);
    ck_assert_str_eq(caimg_ann_layer_name(m, 1), "conv1");
    ck_assert_str_eq(caimg_ann_layer_name(m, 3), "pool1");
    ck_assert_str_eq(caimg_ann_layer_name(m, 7), "readout");
    ck_assert_str_eq(caimg_ann_layer_name(m, 8), "elu1_1");
    ck_assert_uint_eq(caimg_ann_nparams(m), 4 * 2 * 15 + 4 + 6 * 36 + 6 + 3 * 6 + 3);
    caimg_ann_free(m);
    /* square keeps its channel count through the canonical text. */
    m = caimg_ann_create("conv 4 3x3; square channels=2; readout dense", 1, 8, 8, 2, 1);
    ck_assert_msg(m != NULL, "%s", caimg_errmsg());
    char *t = caimg_ann_arch_text(m);
    ck_assert_ptr_nonnull(strstr(t, "square channels=2 name=square1"));
    caimg_ann *m2 = caimg_ann_create(t, 1, 8, 8, 2, 1);
    ck_assert_ptr_nonnull(m2);
    char *t2 = caimg_ann_arch_text(m2);
    ck_assert_str_eq(t, t2);
    free(t); free(t2);
    caimg_ann_free(m); caimg_ann_free(m2);
}
END_TEST

START_TEST(language_errors)
{
    struct { const char *txt; const char *needle; } bad[] = {
        {"conv 16 9y9; readout dense", "9y9"},
        {"conv 16 9x9 pad=same; readout dense; frobnicate", "layer 3"},
        {"conv 16 8x8 pad=same; readout dense", "odd kernel"},
        {"conv 16 40x40; readout dense", "larger than"},
        {"dense 10", "no readout"},
        {"readout dense; readout dense", "exactly one readout"},
        {"readout dense; conv 2 3x3", "only elementwise"},
        {"conv 2 3 name=a; elu name=a; readout dense", "two layers are named 'a'"},
        {"conv 2 3 bogus=1; readout dense", "bogus"},
        {"dense 10 smooth=1; readout dense", "smooth"},
        {"pool max 2x3; readout dense", "explicit stride"},
        {"readout sideways", "sideways"},
        {"elu; input; readout dense", "first layer"},
        {"noise noise_rel=-1; readout dense", "noise_rel"},
        {"readout dense; softplus noise_abs=1", "output layer"},
        {"", "empty"},
        {"conv 0 3x3; readout dense", "channel"},
        {"conv 2 3x3; square channels=3; readout dense", "only 2"},
        {"square channels=0; readout dense", "channel count"},
        {"elu channels=1; readout dense", "channels"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        caimg_ann *m = caimg_ann_create(bad[i].txt, 1, 16, 16, 2, 1);
        ck_assert_msg(m == NULL, "'%s' was accepted", bad[i].txt);
        ck_assert_msg(strstr(caimg_errmsg(), bad[i].needle) != NULL,
                      "'%s': message '%s' lacks '%s'", bad[i].txt, caimg_errmsg(), bad[i].needle);
    }
}
END_TEST

/* ---- gradients --------------------------------------------------------------------- */

START_TEST(gradcheck_conv)
{
    gradcheck_arch("conv 3 3x3 pad=same; readout dense", 2, 6, 7, 2, IN_GAUSS, NULL, 0);
    gradcheck_arch("conv 2 3x2 stride=2 pad=1; readout dense", 2, 7, 6, 2, IN_GAUSS, NULL, 0);
    gradcheck_arch("conv 3 1x1; readout dense", 2, 4, 5, 2, IN_GAUSS, NULL, 0);
    gradcheck_arch("conv 2 5x5; readout dense", 1, 6, 6, 2, IN_GAUSS, NULL, 0);
}
END_TEST

START_TEST(gradcheck_dense_and_readouts)
{
    gradcheck_arch("dense 5; readout dense", 2, 3, 3, 3, IN_GAUSS, NULL, 0);
    gradcheck_arch("readout factorised", 3, 4, 5, 4, IN_GAUSS, NULL, 0);
    gradcheck_arch("conv 2 3x3; readout factorised", 1, 6, 6, 3, IN_GAUSS, NULL, 0);
}
END_TEST

START_TEST(gradcheck_pooling)
{
    gradcheck_arch("pool max 2x2; readout dense", 2, 6, 6, 2, IN_DISTINCT, NULL, 0);
    gradcheck_arch("pool max 3x3 stride=2; readout dense", 1, 7, 7, 2, IN_DISTINCT, NULL, 0);
    gradcheck_arch("pool avg 3x2 stride=1; readout dense", 2, 5, 6, 2, IN_GAUSS, NULL, 0);
}
END_TEST

START_TEST(gradcheck_elementwise)
{
    gradcheck_arch("relu; readout dense", 1, 4, 4, 2, IN_AWAY, NULL, 0);
    gradcheck_arch("elu; readout dense", 1, 4, 4, 2, IN_GAUSS, NULL, 0);
    gradcheck_arch("softplus; readout dense", 1, 4, 4, 2, IN_GAUSS, NULL, 0);
    gradcheck_arch("readout dense; elu1", 1, 4, 4, 3, IN_GAUSS, NULL, 0);
    gradcheck_arch("readout dense; softplus", 1, 4, 4, 3, IN_GAUSS, NULL, 0);
    gradcheck_arch("square; readout dense", 1, 4, 4, 2, IN_GAUSS, NULL, 0);
    /* Part of the channels squared, the rest passed through to an ELU. */
    gradcheck_arch("conv 3 3x3; square channels=2; elu; readout dense", 1, 5, 5, 2, IN_GAUSS,
                   NULL, 0);
    gradcheck_arch("readout dense; square", 1, 4, 4, 3, IN_GAUSS, NULL, 0);
}
END_TEST

START_TEST(gradcheck_noise)
{
    /* Additive noise with a fixed draw is a constant shift: gradients pass
     * through unchanged, and the backward pass must not read the noisy
     * output of an ELU as if it were the clean one. */
    gradcheck_arch("conv 2 3x3; elu; noise; readout dense", 1, 6, 6, 2, IN_GAUSS, "noise1", CAIMG_ANN_NOISE_REL);
    gradcheck_arch("conv 2 3x3; elu; readout dense", 1, 6, 6, 2, IN_GAUSS, "elu1", CAIMG_ANN_NOISE_ABS);
    gradcheck_arch("conv 2 3x3; elu; readout dense", 1, 6, 6, 2, IN_GAUSS, "input", CAIMG_ANN_NOISE_REL);
}
END_TEST

/* The full objective of training (Poisson loss + penalties) on a small
 * conv2-like network with input and hidden noise and input normalisation. */
typedef struct {
    caimg_ann *m;
    caimg_ann_work *w;
    const float *x, *y;
    size_t n;
    const caimg_ann_noise_draw *nd;
    double l2;
} full_ctx;

static double full_f(void *p)
{
    full_ctx *c = p;
    size_t N = caimg_ann_output_size(c->m);
    float *out = malloc(c->n * N * sizeof *out);
    ck_assert_int_eq(caimg_ann_forward(c->m, c->w, c->x, c->n, c->nd, out), 0);
    double J = caimg_ann_loss(CAIMG_ANN_POISSON, out, c->y, c->n, N, NULL);
    /* The Poisson terms (p - y log p) / n, as caimg_ann_loss sums them. */
    for (size_t i = 0; i < c->n * N; i++)
        if (terms)
            terms[i] = isnan(c->y[i]) ? 0.0 : ((double)out[i] - (double)c->y[i] *
                                               log((double)out[i] + 1e-6)) / (double)c->n;
    nterms = c->n * N;
    exact = ann_penalty(c->m, c->l2, NULL);   /* computed in double */
    free(out);
    return J + exact;
}

START_TEST(gradcheck_full_objective)
{
    const char *arch = "input noise_rel=0.2; conv 3 3x3 pad=same smooth=0.05; elu; noise noise_rel=0.5;"
                       "conv 2 3x3 stride=2; softplus; pool avg 2x2 stride=1;"
                       "readout factorised smooth=0.05; elu1";
    const size_t n = 4, N = 3;
    caimg_ann *m = caimg_ann_create(arch, 1, 9, 9, N, 5);
    ck_assert_msg(m != NULL, "%s", caimg_errmsg());
    ck_assert_int_eq(caimg_ann_set_input_norm(m, 10.0, 4.0), 0);
    const float scale[3] = {2.5f, 0.5f, 1.0f}, offset[3] = {0.3f, 0.0f, 1.0f};
    ck_assert_int_eq(caimg_ann_set_output_affine(m, scale, offset), 0);
    size_t insz = caimg_ann_input_size(m);
    float *x = malloc(n * insz * sizeof *x), *y = malloc(n * N * sizeof *y);
    float *dx = malloc(n * insz * sizeof *dx), *dp = malloc(n * N * sizeof *dp);
    fill_normal(x, n * insz, 4.0, 21);
    for (size_t i = 0; i < n * insz; i++) x[i] += 10.0f;
    for (size_t i = 0; i < n * N; i++) y[i] = (float)(i % 4);
    y[5] = NAN;                               /* a missing response */
    ck_assert_int_eq(caimg_ann_noise_calibrate(m, x, n), 0);
    caimg_ann_work *w = caimg_ann_work_alloc(m, n);
    caimg_ann_noise_draw nd = {77, 3};
    full_ctx ctx = {m, w, x, y, n, &nd, 0.01};
    float *out = malloc(n * N * sizeof *out);
    ck_assert_int_eq(caimg_ann_forward(m, w, x, n, &nd, out), 0);
    caimg_ann_loss(CAIMG_ANN_POISSON, out, y, n, N, dp);
    ck_assert_float_eq(dp[5], 0.0f);
    ck_assert_int_eq(caimg_ann_backward(m, w, dp, NULL, 0, dx, 1), 0);
    size_t P = caimg_ann_nparams(m);
    float *g = malloc(P * sizeof *g);
    memcpy(g, caimg_ann_work_param_grad(w), P * sizeof *g);
    ann_penalty(m, ctx.l2, g);
    for (size_t k = 0; k < m->ntens; k++) {
        caimg_ann_tensor t;
        caimg_ann_tensor_get(m, k, &t);
        double r = fd_compare(t.data, g + (t.data - m->theta), t.size, 1e-2, full_f, &ctx,
                              1e-2, 1e-3, t.name);
        ck_assert_msg(r <= 1.0, "full objective: gradient of %s off by %.2f x tolerance", t.name, r);
    }
    /* Input in raw pixel units (sd 4): a step of 0.04 is 0.01 normalised. */
    double r = fd_compare(x, dx, n * insz, 4e-2, full_f, &ctx, 1e-2, 1e-3, "input (pixels)");
    ck_assert_msg(r <= 1.0, "full objective: input gradient off by %.2f x tolerance", r);
    free(x); free(y); free(dx); free(dp); free(g); free(out);
    caimg_ann_work_free(w);
    caimg_ann_free(m);
}
END_TEST

/* L1, L2 and Laplacian penalties against central differences, with every
 * parameter at least 0.05 away from the L1 kink at zero. */
typedef struct { caimg_ann *m; double l2; } pen_ctx;
static double pen_f(void *p)
{
    pen_ctx *c = p;
    nterms = 0;        /* evaluated in double: no float rounding to allow for */
    exact = ann_penalty(c->m, c->l2, NULL);
    return exact;
}

START_TEST(gradcheck_penalties)
{
    caimg_ann *m = caimg_ann_create("conv 2 5x5 smooth=0.3; elu; readout factorised l1=0.2 smooth=0.4",
                                    1, 9, 9, 3, 5);
    ck_assert_ptr_nonnull(m);
    size_t P = caimg_ann_nparams(m);
    fill_away_from_zero(m->theta, P, 31);
    float *g = calloc(P, sizeof *g);
    pen_ctx ctx = {m, 0.05};
    double pen = ann_penalty(m, ctx.l2, g);
    ck_assert_double_gt(pen, 0.0);
    /* The penalties are quadratic away from the kink, where central
     * differences are exact up to rounding. */
    double r = fd_compare(m->theta, g, P, 1e-3, pen_f, &ctx, 1e-4, 1e-5, "penalties");
    ck_assert_msg(r <= 1.0, "penalty gradient off by %.2f x tolerance", r);
    free(g);
    caimg_ann_free(m);
}
END_TEST

/* d(sum d .* h)/dx for a hidden layer h, through a gradient seed: what a
 * feature-space attack differentiates. */
typedef struct { caimg_ann *m; caimg_ann_work *w; const float *x, *d; size_t n; int layer; } seed_ctx;
static double seed_f(void *p)
{
    seed_ctx *c = p;
    ck_assert_int_eq(caimg_ann_forward(c->m, c->w, c->x, c->n, NULL, NULL), 0);
    const float *h = caimg_ann_work_activation(c->w, (size_t)c->layer);
    double J = 0;
    size_t n = c->n * caimg_ann_layer_size(c->m, (size_t)c->layer);
    for (size_t i = 0; i < n; i++) {
        J += (double)c->d[i] * h[i];
        if (terms) terms[i] = (double)c->d[i] * h[i];
    }
    nterms = n;
    exact = 0.0;
    return J;
}

START_TEST(gradcheck_hidden_seed)
{
    caimg_ann *m = caimg_ann_create("conv2", 1, 12, 12, 4, 9);
    ck_assert_ptr_nonnull(m);
    const size_t n = 2;
    int l = caimg_ann_layer_find(m, "h1");
    size_t insz = caimg_ann_input_size(m), hs = caimg_ann_layer_size(m, (size_t)l);
    float *x = malloc(n * insz * sizeof *x), *d = malloc(n * hs * sizeof *d);
    float *dx = malloc(n * insz * sizeof *dx);
    fill_normal(x, n * insz, 1.0, 1);
    fill_normal(d, n * hs, 1.0, 2);
    caimg_ann_work *w = caimg_ann_work_alloc(m, n);
    seed_ctx ctx = {m, w, x, d, n, l};
    seed_f(&ctx);
    caimg_ann_grad_seed s = {l, d};
    ck_assert_int_eq(caimg_ann_backward(m, w, NULL, &s, 1, dx, 0), 0);
    /* The gradient at the seeded layer is the seed itself; above it zero. */
    ck_assert_int_eq(memcmp(caimg_ann_work_gradient(w, (size_t)l), d, n * hs * sizeof(float)), 0);
    ck_assert_float_eq(caimg_ann_work_gradient(w, caimg_ann_nlayers(m) - 1)[0], 0.0f);
    double r = fd_compare(x, dx, n * insz, 1e-2, seed_f, &ctx, 1e-2, 1e-3, "input via seed at h1");
    ck_assert_msg(r <= 1.0, "seeded input gradient off by %.2f x tolerance", r);
    free(x); free(d); free(dx);
    caimg_ann_work_free(w);
    caimg_ann_free(m);
}
END_TEST

/* ---- saving, loading, preprocessing ------------------------------------------------------ */

START_TEST(save_load_round_trip)
{
    caimg_ann *m = caimg_ann_create("input noise_abs=0.1; conv 3 5x5 pad=same smooth=0.01 name=c1; elu;"
                                    "noise name=h1 noise_rel=0.5; readout factorised l1=0.01; elu1",
                                    1, 12, 10, 4, 99);
    ck_assert_ptr_nonnull(m);
    caimg_ann_set_input_norm(m, 100.0, 30.0);
    const float sc[4] = {1, 2, 3, 4}, off[4] = {-1, 0, 1, 2};
    caimg_ann_set_output_affine(m, sc, off);
    caimg_ann_prep p = {30, 20, 2, 5, 24, 10};
    ck_assert_int_eq(caimg_ann_set_prep(m, &p), 0);
    size_t n = 9, insz = caimg_ann_input_size(m);
    float *x = malloc(n * insz * sizeof *x);
    fill_normal(x, n * insz, 30.0, 4);
    for (size_t i = 0; i < n * insz; i++) x[i] += 100.0f;
    ck_assert_int_eq(caimg_ann_noise_calibrate(m, x, n), 0);
    char path[] = "/tmp/caimg-ann-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    caimg_h5 *f = caimg_h5_create(path, "fit", "check_ann");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(caimg_ann_save(m, f, "/model"), 0);
    ck_assert_int_eq(caimg_h5_commit(f), 0);
    f = caimg_h5_open(path);
    ck_assert_ptr_nonnull(f);
    caimg_ann *m2 = caimg_ann_load(f, "/model");
    ck_assert_msg(m2 != NULL, "%s", caimg_errmsg());
    ck_assert_ptr_null(caimg_ann_load(f, "/nomodel"));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "/nomodel"));
    caimg_h5_close(f);
    char *t1 = caimg_ann_arch_text(m), *t2 = caimg_ann_arch_text(m2);
    ck_assert_str_eq(t1, t2);
    ck_assert_uint_eq(caimg_ann_ntensors(m), caimg_ann_ntensors(m2));
    ck_assert_uint_eq(caimg_ann_seed(m2), 99);
    ck_assert_mem_eq(caimg_ann_get_prep(m2), &p, sizeof p);
    /* Bitwise the same predictions, noisy ones included. */
    float *a = malloc(n * 4 * sizeof *a), *b = malloc(n * 4 * sizeof *b);
    ck_assert_int_eq(caimg_ann_predict(m, x, n, 3, 0, a), 0);
    ck_assert_int_eq(caimg_ann_predict(m2, x, n, 3, 0, b), 0);
    ck_assert_mem_eq(a, b, n * 4 * sizeof *a);
    ck_assert_int_eq(caimg_ann_predict(m2, x, n, 0, 0, b), 0);
    for (size_t i = 0; i < n; i++) ck_assert_float_ge(b[i * 4], -1.0f);  /* elu1 >= 0, offset -1 */
    free(t1); free(t2); free(a); free(b); free(x);
    unlink(path);
    caimg_ann_free(m);
    caimg_ann_free(m2);
}
END_TEST

/* An ensemble predicts the mean of its networks (noisy draws included),
 * its input gradient is the mean of theirs, and it survives saving and
 * loading; it refuses training and networks that do not fit. */
START_TEST(ensemble_is_the_mean_of_its_networks)
{
    const char *arch = "input noise_abs=0.1; conv 3 5x5 pad=same name=c1; elu;"
                       "noise name=h1 noise_rel=0.5; readout factorised; softplus";
    const size_t K = 3, N = 4, n = 7;
    caimg_ann *net[3], *copy[3];
    for (size_t k = 0; k < K; k++) {
        net[k] = caimg_ann_create(arch, 1, 10, 9, N, 40 + k);
        ck_assert_ptr_nonnull(net[k]);
        caimg_ann_set_input_norm(net[k], 1.0 + (double)k, 2.0);
    }
    const size_t insz = caimg_ann_input_size(net[0]);
    float *x = malloc(n * insz * sizeof *x);
    fill_normal(x, n * insz, 2.0, 11);
    for (size_t k = 0; k < K; k++) {
        ck_assert_int_eq(caimg_ann_noise_calibrate(net[k], x, n), 0);
        copy[k] = caimg_ann_clone(net[k]);
    }
    float *p = malloc(K * n * N * sizeof *p), *q = malloc(n * N * sizeof *q);
    float *dx = malloc(K * n * insz * sizeof *dx), *dq = malloc(n * insz * sizeof *dq);
    float *dout = malloc(n * N * sizeof *dout);
    fill_normal(dout, n * N, 1.0, 12);
    for (size_t k = 0; k < K; k++) {
        ck_assert_int_eq(caimg_ann_predict(copy[k], x, n, 4, 9, p + k * n * N), 0);
        caimg_ann_work *w = caimg_ann_work_alloc(copy[k], n);
        ck_assert_int_eq(caimg_ann_forward(copy[k], w, x, n, NULL, NULL), 0);
        ck_assert_int_eq(caimg_ann_backward(copy[k], w, dout, NULL, 0, dx + k * n * insz, 0), 0);
        caimg_ann_work_free(w);
    }
    caimg_ann *e = net[0];
    ck_assert_int_eq(caimg_ann_ensemble_add(e, net[1]), 0);
    ck_assert_int_eq(caimg_ann_ensemble_add(e, net[2]), 0);
    ck_assert_uint_eq(caimg_ann_members(e), K);
    ck_assert_ptr_eq(caimg_ann_member(e, 2), net[2]);
    ck_assert_ptr_null(caimg_ann_member(e, 3));
    ck_assert_int_eq(caimg_ann_predict(e, x, n, 4, 9, q), 0);
    for (size_t i = 0; i < n * N; i++) {
        double mean = ((double)p[i] + p[n * N + i] + p[2 * n * N + i]) / 3.0;
        ck_assert_double_eq_tol(q[i], mean, 1e-6 * (1.0 + fabs(mean)));
    }
    caimg_ann_work *w = caimg_ann_work_alloc(e, n);
    ck_assert_int_eq(caimg_ann_forward(e, w, x, n, NULL, NULL), 0);
    ck_assert_int_eq(caimg_ann_backward(e, w, dout, NULL, 0, dq, 0), 0);
    for (size_t i = 0; i < n * insz; i++) {
        double mean = ((double)dx[i] + dx[n * insz + i] + dx[2 * n * insz + i]) / 3.0;
        ck_assert_double_eq_tol(dq[i], mean, 1e-5 * (1e-3 + fabs(mean)));
    }
    ck_assert_int_ne(caimg_ann_backward(e, w, dout, NULL, 0, NULL, 1), 0);
    caimg_ann_work_free(w);
    /* Saved and loaded: the same predictions, bit for bit; a clone too. */
    char path[] = "/tmp/caimg-ann-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    caimg_h5 *f = caimg_h5_create(path, "fit", "check_ann");
    ck_assert_int_eq(caimg_ann_save(e, f, "/model"), 0);
    ck_assert_int_eq(caimg_h5_commit(f), 0);
    f = caimg_h5_open(path);
    caimg_ann *e2 = caimg_ann_load(f, "/model");
    ck_assert_msg(e2 != NULL, "%s", caimg_errmsg());
    caimg_h5_close(f);
    unlink(path);
    caimg_ann *e3 = caimg_ann_clone(e);
    ck_assert_uint_eq(caimg_ann_members(e2), K);
    for (caimg_ann *c = e2; c; c = c == e2 ? e3 : NULL) {
        ck_assert_int_eq(caimg_ann_predict(c, x, n, 4, 9, p), 0);
        ck_assert_mem_eq(p, q, n * N * sizeof *q);
    }
    /* A file that claims more networks than it holds, or a nonsensical
     * number of them, is an error naming the file and the object. */
    for (int bad = 0; bad < 2; bad++) {
        f = caimg_h5_create(path, "fit", "check_ann");
        ck_assert_int_eq(caimg_ann_save(copy[1], f, "/model"), 0);
        ck_assert_int_eq(caimg_h5_set_attr_long(f, "/model", "members", bad ? 0 : 2), 0);
        ck_assert_int_eq(caimg_h5_commit(f), 0);
        f = caimg_h5_open(path);
        ck_assert_ptr_null(caimg_ann_load(f, "/model"));
        ck_assert_ptr_nonnull(strstr(caimg_errmsg(), path));
        ck_assert_ptr_nonnull(strstr(caimg_errmsg(), bad ? "members" : "/model_member1"));
        caimg_h5_close(f);
        unlink(path);
    }
    /* Not trainable as one network; members must match. */
    float y[7 * 4];
    for (size_t i = 0; i < n * N; i++) y[i] = 1.0f + (float)(i % 3);
    ck_assert_int_ne(caimg_ann_train(e, x, y, NULL, n, NULL, NULL), 0);
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "ensemble"));
    caimg_ann *odd = caimg_ann_create(arch, 1, 10, 9, N + 1, 50);
    ck_assert_int_ne(caimg_ann_ensemble_add(e, odd), 0);
    ck_assert_int_ne(caimg_ann_ensemble_add(e, e3), 0);    /* has members of its own */
    caimg_ann_free(odd);
    caimg_ann_free(e);
    caimg_ann_free(e2);
    caimg_ann_free(e3);
    for (size_t k = 0; k < K; k++) caimg_ann_free(copy[k]);
    free(x); free(p); free(q); free(dx); free(dq); free(dout);
}
END_TEST

START_TEST(resize_properties)
{
    float in[12 * 16], out[6 * 8], out2[24 * 32];
    for (int i = 0; i < 12 * 16; i++) in[i] = 5.0f;
    ck_assert_int_eq(caimg_ann_resize(in, 12, 16, out, 6, 8), 0);
    for (int i = 0; i < 6 * 8; i++) ck_assert_float_eq_tol(out[i], 5.0f, 1e-5f);
    /* A linear ramp stays linear in the interior, sampled at pixel centres. */
    for (int y = 0; y < 12; y++)
        for (int x = 0; x < 16; x++) in[y * 16 + x] = (float)x;
    ck_assert_int_eq(caimg_ann_resize(in, 12, 16, out, 6, 8), 0);
    for (int x = 1; x < 7; x++) ck_assert_float_eq_tol(out[3 * 8 + x], 2.0f * x + 0.5f, 1e-4f);
    ck_assert_int_eq(caimg_ann_resize(in, 12, 16, out2, 24, 32), 0);
    for (int x = 2; x < 30; x++) ck_assert_float_eq_tol(out2[5 * 32 + x], 0.5f * x - 0.25f, 1e-4f);
    /* Same size: a copy. */
    ck_assert_int_eq(caimg_ann_resize(in, 12, 16, out2, 12, 16), 0);
    ck_assert_mem_eq(out2, in, sizeof in);
    /* Preprocessing crops, then resizes. */
    caimg_ann *m = caimg_ann_create("ln", 1, 3, 4, 1, 1);
    caimg_ann_prep p = {12, 16, 6, 8, 6, 8};
    ck_assert_int_eq(caimg_ann_set_prep(m, &p), 0);
    float pre[12];
    ck_assert_int_eq(caimg_ann_preprocess(m, in, 1, pre), 0);
    ck_assert_float_eq_tol(pre[1], 8.0f + 2.0f * 1 + 0.5f, 1e-4f);
    caimg_ann_prep bad = {12, 16, 6, 10, 6, 8};
    ck_assert_int_eq(caimg_ann_set_prep(m, &bad), CAIMG_EINVAL);
    caimg_ann_free(m);
}
END_TEST

/* ---- determinism ---------------------------------------------------------------------- */

static void tiny_data(size_t n, size_t insz, size_t N, float **x, float **y)
{
    *x = malloc(n * insz * sizeof **x);
    *y = malloc(n * N * sizeof **y);
    fill_normal(*x, n * insz, 1.0, 123);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < N; k++) {
            double u = (*x)[i * insz + (k * 37) % insz] + 0.5 * (*x)[i * insz + (k * 11 + 5) % insz];
            (*y)[i * N + k] = (float)(u > 0 ? u * u : 0.05);
        }
}

static caimg_ann *train_once(int threads, const float *x, const float *y, size_t n,
                             caimg_ann_history *h)
{
#ifdef _OPENMP
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    caimg_ann *m = caimg_ann_create("conv 4 5x5 pad=same smooth=0.01; elu; noise noise_rel=0.5;"
                                    "readout factorised l1=0.001; softplus", 1, 10, 10, 5, 42);
    ck_assert_ptr_nonnull(m);
    caimg_ann_noise_set(m, "input", 0.2, CAIMG_ANN_NOISE_REL);
    caimg_ann_train_opts o;
    caimg_ann_train_opts_init(&o);
    o.max_epochs = 4;
    o.batch = 20;        /* 3 chunks of 8, the last partial */
    o.seed = 7;
    ck_assert_int_eq(caimg_ann_train(m, x, y, NULL, n, &o, h), 0);
    return m;
}

START_TEST(training_is_deterministic_across_threads)
{
    const size_t n = 90, N = 5;
    float *x, *y;
    tiny_data(n, 100, N, &x, &y);
    caimg_ann_history h1, h2;
    caimg_ann *a = train_once(1, x, y, n, &h1);
    caimg_ann *b = train_once(2, x, y, n, &h2);
    ck_assert_uint_eq(caimg_ann_nparams(a), caimg_ann_nparams(b));
    ck_assert_int_eq(memcmp(a->theta, b->theta, caimg_ann_nparams(a) * sizeof(float)), 0);
    ck_assert_uint_eq(h1.nepochs, h2.nepochs);
    for (size_t e = 0; e < h1.nepochs; e++) {
        ck_assert(h1.epochs[e].train_loss == h2.epochs[e].train_loss);
        ck_assert(h1.epochs[e].val_corr == h2.epochs[e].val_corr ||
                  (isnan(h1.epochs[e].val_corr) && isnan(h2.epochs[e].val_corr)));
    }
    ck_assert_int_eq(memcmp(h1.val_mask, h2.val_mask, n), 0);
    size_t nval = 0;
    for (size_t i = 0; i < n; i++) nval += h1.val_mask[i];
    ck_assert_uint_eq(nval, 9);       /* 10% of 90 */
    int t = caimg_ann_tensor_find(a, "noise1/noise_sd");
    ck_assert_int_ge(t, 0);
    caimg_ann_tensor ta, tb;
    caimg_ann_tensor_get(a, (size_t)t, &ta);
    caimg_ann_tensor_get(b, (size_t)t, &tb);
    ck_assert_int_eq(memcmp(ta.data, tb.data, ta.size * sizeof(float)), 0);
    /* Noisy predictions averaged over samples, too. */
    float *pa = malloc(n * N * sizeof *pa), *pb = malloc(n * N * sizeof *pb);
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    ck_assert_int_eq(caimg_ann_predict(a, x, n, 5, 0, pa), 0);
#ifdef _OPENMP
    omp_set_num_threads(2);
#endif
    ck_assert_int_eq(caimg_ann_predict(b, x, n, 5, 0, pb), 0);
    ck_assert_int_eq(memcmp(pa, pb, n * N * sizeof *pa), 0);
    /* A different seed gives a different model. */
    caimg_ann *c = caimg_ann_create("conv2", 1, 10, 10, 5, 43);
    caimg_ann *d = caimg_ann_create("conv2", 1, 10, 10, 5, 42);
    ck_assert_int_ne(memcmp(c->theta, d->theta, caimg_ann_nparams(c) * sizeof(float)), 0);
    caimg_ann_free(c); caimg_ann_free(d);
    free(pa); free(pb); free(x); free(y);
    caimg_ann_history_clear(&h1);
    caimg_ann_history_clear(&h2);
    caimg_ann_free(a);
    caimg_ann_free(b);
}
END_TEST

/* Weight averaging and learning-rate decay: the model returned is the one
 * whose validation correlation was reported as the best, and the decays
 * change nothing before the first plateau. */
START_TEST(averaging_and_decay_keep_the_validated_weights)
{
    const size_t n = 200, N = 5;
    float *x, *y;
    tiny_data(n, 100, N, &x, &y);
    for (int variant = 0; variant < 3; variant++) {
        caimg_ann_history h[2];
        caimg_ann *m[2];
        for (int with = 0; with < 2; with++) {
            m[with] = caimg_ann_create("conv 4 5x5 pad=same; elu; noise noise_rel=0.3;"
                                       "readout factorised l1=0.001; softplus", 1, 10, 10, N, 5);
            ck_assert_ptr_nonnull(m[with]);
            caimg_ann_train_opts o;
            caimg_ann_train_opts_init(&o);
            o.max_epochs = 60;
            o.patience = 3;
            o.batch = 16;
            o.lr = 0.02;           /* large, to reach a plateau soon */
            o.seed = 3;
            if (with && variant != 1) o.lr_decays = 2;
            if (with && variant != 0) o.ema = 0.9;
            ck_assert_int_eq(caimg_ann_train(m[with], x, y, NULL, n, &o, &h[with]), 0);
            /* The kept weights give the best validation correlation. */
            size_t nval = 0;
            for (size_t i = 0; i < n; i++) nval += h[with].val_mask[i];
            float *xv = malloc(nval * 100 * sizeof *xv), *yv = malloc(nval * N * sizeof *yv);
            float *pv = malloc(nval * N * sizeof *pv);
            for (size_t i = 0, k = 0; i < n; i++)
                if (h[with].val_mask[i]) {
                    memcpy(xv + k * 100, x + i * 100, 100 * sizeof *xv);
                    memcpy(yv + k * N, y + i * N, N * sizeof *yv);
                    k++;
                }
            ck_assert_int_eq(caimg_ann_predict(m[with], xv, nval, 0, 0, pv), 0);
            double r = caimg_ann_mean_corr(pv, yv, nval, N);
            ck_assert_msg(fabs(r - h[with].best_val_corr) < 1e-9, "variant %d: kept model validates "
                          "at %.6f, best epoch reported %.6f", variant, r, h[with].best_val_corr);
            for (size_t e = 0; e < h[with].nepochs; e++)
                ck_assert(h[with].best_val_corr >= h[with].epochs[e].val_corr);
            free(xv); free(yv); free(pv);
        }
        if (variant == 0) {
            /* Decay: the same curve up to the first plateau, then smaller
             * steps from the best weights, and never a worse result. */
            size_t e0 = h[0].nepochs;
            ck_assert_uint_gt(h[1].nepochs, e0);
            for (size_t e = 0; e < e0; e++) {
                ck_assert(h[0].epochs[e].train_loss == h[1].epochs[e].train_loss);
                ck_assert(h[1].epochs[e].lr == 0.02);
            }
            ck_assert(fabs(h[1].epochs[e0].lr - 0.006) < 1e-12);
            ck_assert(fabs(h[1].epochs[h[1].nepochs - 1].lr - 0.0018) < 1e-12);
            ck_assert(h[1].best_val_corr >= h[0].best_val_corr);
        } else {
            /* Averaging: a different model from the same steps. */
            ck_assert_int_ne(memcmp(m[0]->theta, m[1]->theta,
                                    caimg_ann_nparams(m[0]) * sizeof(float)), 0);
        }
        for (int with = 0; with < 2; with++) {
            caimg_ann_history_clear(&h[with]);
            caimg_ann_free(m[with]);
        }
    }
    /* Out-of-range settings are refused. */
    caimg_ann *m = caimg_ann_create("readout dense; softplus", 1, 10, 10, N, 1);
    caimg_ann_train_opts o;
    caimg_ann_train_opts_init(&o);
    o.ema = 1.0;
    ck_assert_int_eq(caimg_ann_train(m, x, y, NULL, n, &o, NULL), CAIMG_EINVAL);
    o.ema = 0;
    o.lr_decays = 1;
    o.lr_factor = 1.5;
    ck_assert_int_eq(caimg_ann_train(m, x, y, NULL, n, &o, NULL), CAIMG_EINVAL);
    caimg_ann_free(m);
    free(x); free(y);
}
END_TEST

START_TEST(training_rejects_bad_data)
{
    const size_t n = 20, N = 2;
    float *x, *y;
    tiny_data(n, 25, N, &x, &y);
    caimg_ann *m = caimg_ann_create("readout dense; softplus", 1, 5, 5, N, 1);
    caimg_ann_train_opts o;
    caimg_ann_train_opts_init(&o);
    o.max_epochs = 2;
    y[3] = -1.0f;
    ck_assert_int_eq(caimg_ann_train(m, x, y, NULL, n, &o, NULL), CAIMG_EINVAL);
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "non-negative"));
    o.loss = CAIMG_ANN_MSE;               /* negative is fine for MSE */
    ck_assert_int_eq(caimg_ann_train(m, x, y, NULL, n, &o, NULL), 0);
    x[7] = NAN;
    ck_assert_int_eq(caimg_ann_train(m, x, y, NULL, n, &o, NULL), CAIMG_EFORMAT);
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "image 0"));
    x[7] = 0.0f;
    y[4] = NAN;                           /* missing responses are skipped */
    ck_assert_int_eq(caimg_ann_train(m, x, y, NULL, n, &o, NULL), 0);
    ck_assert_int_eq(caimg_ann_train(m, x, y, NULL, 1, &o, NULL), CAIMG_EINVAL);
    free(x); free(y);
    caimg_ann_free(m);
}
END_TEST

/* ---- evaluation ---------------------------------------------------------------------------- */

START_TEST(evaluation_metrics)
{
    /* 200 stimuli x 20 repeats, responses = mu + noise of sd 1 with
     * Var(mu) = 4: explainable fraction 4/5.  A perfect prediction (mu)
     * has FEVE ~ 1, a constant one FEVE ~ 0 and no correlation. */
    const size_t S = 200, R = 20, N = 3, P = S * R;
    float *mu = malloc(S * N * sizeof *mu), *resp = malloc(P * N * sizeof *resp);
    float *pred = malloc(S * N * sizeof *pred);
    size_t *stim = malloc(P * sizeof *stim);
    fill_normal(mu, S * N, 2.0, 1);
    float *noise = malloc(P * N * sizeof *noise);
    fill_normal(noise, P * N, 1.0, 2);
    for (size_t p = 0; p < P; p++) {
        stim[p] = p % S;
        for (size_t k = 0; k < N; k++) resp[p * N + k] = mu[stim[p] * N + k] + noise[p * N + k];
    }
    for (size_t s = 0; s < S; s++) {
        pred[s * N + 0] = mu[s * N + 0];                 /* perfect */
        pred[s * N + 1] = 0.5f;                          /* constant */
        pred[s * N + 2] = 0.5f * mu[s * N + 2] + 1.0f;   /* right shape, wrong scale */
    }
    resp[7 * N + 1] = NAN;                               /* skipped */
    caimg_ann_eval ev;
    ck_assert_int_eq(caimg_ann_evaluate(pred, S, N, resp, stim, P, 0.15, &ev), 0);
    /* ev_frac: 0.8 with sampling error of a few percent. */
    for (size_t k = 0; k < N; k++) ck_assert_double_le(fabs(ev.ev_frac[k] - 0.8), 0.05);
    ck_assert_double_le(fabs(ev.feve[0] - 1.0), 0.03);
    ck_assert(isnan(ev.corr_avg[1]));
    ck_assert_double_le(fabs(ev.feve[1]), 0.1);
    /* Trial averages of 20 repeats: corr = sqrt(4 / (4 + 1/20)) = 0.994. */
    ck_assert_double_ge(ev.corr_avg[0], 0.98);
    ck_assert_double_ge(ev.corr_avg[2], 0.98);
    /* Single trials: corr = sqrt(4/5) = 0.894. */
    ck_assert_double_le(fabs(ev.corr_trial[0] - 0.894), 0.02);
    /* Scale errors cost FEVE but not correlation: MSE = 0.25 Var(mu) + ... */
    ck_assert_double_lt(ev.feve[2], 0.9);
    ck_assert_uint_eq(ev.n_corr_avg, 2);
    ck_assert_uint_eq(ev.n_feve, 3);
    caimg_ann_eval_clear(&ev);
    /* Without repeats: no trial metrics, no FEVE. */
    ck_assert_int_eq(caimg_ann_evaluate(pred, S, N, resp, stim, S, 0.15, &ev), 0);
    ck_assert(isnan(ev.feve[0]) && isnan(ev.corr_trial[0]));
    ck_assert_uint_eq(ev.n_feve, 0);
    caimg_ann_eval_clear(&ev);
    stim[0] = S;
    ck_assert_int_eq(caimg_ann_evaluate(pred, S, N, resp, stim, P, 0.15, &ev), CAIMG_EINVAL);
    free(mu); free(resp); free(pred); free(stim); free(noise);
}
END_TEST

/* ---- learning known receptive fields ---------------------------------------------------------
 * Natural-like images (approximately 1/f amplitude spectrum, as a sum of
 * white-noise octaves upsampled bilinearly), simple cells (rectified-squared
 * Gabor filters) and complex cells (Gabor energy models) with Poisson
 * spike counts.  The model never sees the true rates; it must predict them
 * on held-out images and its input gradient must recover the simple cells'
 * filters. */

#define IMG 16

static void make_images(size_t n, uint64_t seed, float *x)
{
    ann_rng r;
    ann_rng_init(&r, seed, 21);
    for (size_t i = 0; i < n; i++) {
        float *im = x + i * IMG * IMG;
        memset(im, 0, IMG * IMG * sizeof *im);
        for (int k = 0; k < 4; k++) {
            int step = 1 << k, g = IMG / step + 2;
            float grid[20 * 20];
            for (int q = 0; q < g * g; q++) grid[q] = (float)ann_rng_normal(&r);
            float amp = (float)step;      /* coarser octaves are stronger: ~1/f */
            for (int yy = 0; yy < IMG; yy++)
                for (int xx = 0; xx < IMG; xx++) {
                    float fy = (float)yy / step, fx = (float)xx / step;
                    int y0 = (int)fy, x0 = (int)fx;
                    float ty = fy - y0, tx = fx - x0;
                    float v = (1 - ty) * ((1 - tx) * grid[y0 * g + x0] + tx * grid[y0 * g + x0 + 1]) +
                              ty * ((1 - tx) * grid[(y0 + 1) * g + x0] + tx * grid[(y0 + 1) * g + x0 + 1]);
                    im[yy * IMG + xx] += amp * v;
                }
        }
    }
    /* Pixel values like an 8-bit image: mean 128, sd 40. */
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n * IMG * IMG; i++) { s += x[i]; s2 += (double)x[i] * x[i]; }
    double mean = s / (double)(n * IMG * IMG);
    double sd = sqrt(s2 / (double)(n * IMG * IMG) - mean * mean);
    for (size_t i = 0; i < n * IMG * IMG; i++) x[i] = (float)(128.0 + 40.0 * (x[i] - mean) / sd);
}

static void gabor(double cy, double cx, double theta, double phase, float *g)
{
    const double sigma = 2.0, lambda = 6.0;
    double s = 0, s2 = 0;
    for (int y = 0; y < IMG; y++)
        for (int x = 0; x < IMG; x++) {
            double dx = x - cx, dy = y - cy;
            double xr = dx * cos(theta) + dy * sin(theta), yr = -dx * sin(theta) + dy * cos(theta);
            double v = exp(-(xr * xr + yr * yr) / (2 * sigma * sigma)) * cos(2 * M_PI * xr / lambda + phase);
            g[y * IMG + x] = (float)v;
            s += v;
        }
    for (int i = 0; i < IMG * IMG; i++) { g[i] -= (float)(s / (IMG * IMG)); s2 += (double)g[i] * g[i]; }
    for (int i = 0; i < IMG * IMG; i++) g[i] /= (float)sqrt(s2);
}

#define NSIMPLE 6
#define NCOMPLEX 6
#define NCELLS (NSIMPLE + NCOMPLEX)

typedef struct {
    float g[NCELLS][2][IMG * IMG];   /* filters (complex cells use both phases) */
    double scale;                    /* sd of a filter response on training images */
} cells;

static void make_cells(cells *c, const float *x, size_t n)
{
    ann_rng r;
    ann_rng_init(&r, 5, 22);
    for (int k = 0; k < NCELLS; k++) {
        double cy = 7.5 + 3 * (ann_rng_uniform(&r) - 0.5), cx = 7.5 + 3 * (ann_rng_uniform(&r) - 0.5);
        double th = M_PI * ann_rng_uniform(&r), ph = 2 * M_PI * ann_rng_uniform(&r);
        gabor(cy, cx, th, ph, c->g[k][0]);
        gabor(cy, cx, th, ph + M_PI / 2, c->g[k][1]);
    }
    double s2 = 0;
    for (size_t i = 0; i < n; i++) {
        double u = 0;
        for (int p = 0; p < IMG * IMG; p++) u += c->g[0][0][p] * (x[i * IMG * IMG + p] - 128.0);
        s2 += u * u;
    }
    c->scale = sqrt(s2 / (double)n);
}

/* True expected spike counts of every cell for image x. */
static void true_rates(const cells *c, const float *x, double *rate)
{
    for (int k = 0; k < NCELLS; k++) {
        double u0 = 0, u1 = 0;
        for (int p = 0; p < IMG * IMG; p++) {
            u0 += c->g[k][0][p] * (x[p] - 128.0);
            u1 += c->g[k][1][p] * (x[p] - 128.0);
        }
        u0 /= c->scale;
        u1 /= c->scale;
        if (k < NSIMPLE) rate[k] = 3.0 * (0.1 + (u0 > 0 ? u0 * u0 : 0.0));
        else rate[k] = 1.5 * (0.2 + u0 * u0 + u1 * u1);
    }
}

static unsigned poisson(ann_rng *r, double lam)
{
    /* Knuth's method is fine for the small means used here. */
    double L = exp(-lam), p = 1.0;
    unsigned k = 0;
    do { k++; p *= ann_rng_uniform(r); } while (p > L);
    return k - 1;
}

START_TEST(learns_simple_and_complex_cells)
{
    const size_t ntrain = 2500, ntest = 300;
    float *x = malloc((ntrain + ntest) * IMG * IMG * sizeof *x);
    make_images(ntrain + ntest, 1, x);
    cells *c = malloc(sizeof *c);
    make_cells(c, x, ntrain);
    float *y = malloc(ntrain * NCELLS * sizeof *y);
    double *truth = malloc(ntest * NCELLS * sizeof *truth);
    ann_rng r;
    ann_rng_init(&r, 3, 23);
    double rate[NCELLS];
    for (size_t i = 0; i < ntrain; i++) {
        true_rates(c, x + i * IMG * IMG, rate);
        for (int k = 0; k < NCELLS; k++) y[i * NCELLS + k] = (float)poisson(&r, rate[k]);
    }
    const float *xt = x + ntrain * IMG * IMG;
    for (size_t i = 0; i < ntest; i++) true_rates(c, xt + i * IMG * IMG, truth + i * NCELLS);

    caimg_ann *m = caimg_ann_create("conv 8 9x9 pad=same smooth=0.02; elu; noise name=h1 noise_rel=0.2;"
                                    "conv 8 3x3 pad=same; elu;"
                                    "readout factorised l1=0.002 smooth=0.002; softplus",
                                    1, IMG, IMG, NCELLS, 1);
    ck_assert_msg(m != NULL, "%s", caimg_errmsg());
    ck_assert_int_eq(caimg_ann_set_input_norm(m, 128.0, 40.0), 0);
    caimg_ann_train_opts o;
    caimg_ann_train_opts_init(&o);
    o.max_epochs = 40;
    o.patience = 6;
    o.seed = 2;
    caimg_ann_history h;
    ck_assert_int_eq(caimg_ann_train(m, x, y, NULL, ntrain, &o, &h), 0);
    float *pred = malloc(ntest * NCELLS * sizeof *pred);
    ck_assert_int_eq(caimg_ann_predict(m, xt, ntest, 0, 0, pred), 0);
    double worst = 1.0, mean = 0.0;
    for (int k = 0; k < NCELLS; k++) {
        float tk[300];
        for (size_t i = 0; i < ntest; i++) tk[i] = (float)truth[i * NCELLS + k];
        double rk = caimg_ann_corr(pred + k, NCELLS, tk, 1, ntest);
        if (getenv("CAIMG_TEST_VERBOSE")) fprintf(stderr, "cell %d (%s): r = %.3f\n", k,
                                                  k < NSIMPLE ? "simple" : "complex", rk);
        worst = fmin(worst, rk);
        mean += rk / NCELLS;
    }
    if (getenv("CAIMG_TEST_VERBOSE"))
        fprintf(stderr, "epochs %zu best %zu, held-out r mean %.3f worst %.3f\n", h.nepochs,
                h.best_epoch, mean, worst);
    /* Every cell here is well driven (its rate varies several-fold across
     * images), so every cell must reach 0.8. */
    ck_assert_msg(worst >= 0.8, "worst held-out correlation with true rates %.3f < 0.8", worst);

    /* Input gradients of simple cells, averaged over the held-out images,
     * point along the true filter: d rate/dx = 2 relu(u) g / scale. */
    caimg_ann_work *w = caimg_ann_work_alloc(m, ntest);
    float *dout = calloc(ntest * NCELLS, sizeof *dout);
    float *dx = malloc(ntest * IMG * IMG * sizeof *dx);
    for (int k = 0; k < NSIMPLE; k++) {
        for (size_t i = 0; i < ntest; i++) dout[i * NCELLS + k] = 1.0f;
        ck_assert_int_eq(caimg_ann_forward(m, w, xt, ntest, NULL, NULL), 0);
        ck_assert_int_eq(caimg_ann_backward(m, w, dout, NULL, 0, dx, 0), 0);
        for (size_t i = 0; i < ntest; i++) dout[i * NCELLS + k] = 0.0f;
        float avg[IMG * IMG] = {0};
        for (size_t i = 0; i < ntest; i++)
            for (int p = 0; p < IMG * IMG; p++) avg[p] += dx[i * IMG * IMG + p];
        double rk = caimg_ann_corr(avg, 1, c->g[k][0], 1, IMG * IMG);
        if (getenv("CAIMG_TEST_VERBOSE")) fprintf(stderr, "simple cell %d: gradient vs RF r = %.3f\n", k, rk);
        ck_assert_msg(rk >= 0.8, "simple cell %d: mean input gradient correlates %.3f with its RF", k, rk);
    }
    free(dout); free(dx);
    caimg_ann_work_free(w);
    caimg_ann_history_clear(&h);
    free(pred); free(x); free(c); free(y); free(truth);
    caimg_ann_free(m);
}
END_TEST

static Suite *ann_suite(void)
{
    Suite *s = suite_create("ann");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, philox_known_answers);
    tcase_add_test(tc, philox_blocks_match);
    tcase_add_test(tc, noise_is_gaussian_and_keyed);
    tcase_add_test(tc, presets_build_and_round_trip);
    tcase_add_test(tc, language_details);
    tcase_add_test(tc, language_errors);
    tcase_add_test(tc, gradcheck_conv);
    tcase_add_test(tc, gradcheck_dense_and_readouts);
    tcase_add_test(tc, gradcheck_pooling);
    tcase_add_test(tc, gradcheck_elementwise);
    tcase_add_test(tc, gradcheck_noise);
    tcase_add_test(tc, gradcheck_full_objective);
    tcase_add_test(tc, gradcheck_penalties);
    tcase_add_test(tc, gradcheck_hidden_seed);
    tcase_add_test(tc, save_load_round_trip);
    tcase_add_test(tc, ensemble_is_the_mean_of_its_networks);
    tcase_add_test(tc, resize_properties);
    tcase_add_test(tc, training_is_deterministic_across_threads);
    tcase_add_test(tc, training_rejects_bad_data);
    tcase_add_test(tc, averaging_and_decay_keep_the_validated_weights);
    tcase_add_test(tc, evaluation_metrics);
    suite_add_tcase(s, tc);
    TCase *tl = tcase_create("learning");
    tcase_set_timeout(tl, 300);
    tcase_add_test(tl, learns_simple_and_complex_cells);
    suite_add_tcase(s, tl);
    return s;
}

int main(void)
{
    caimg_init();
    SRunner *sr = srunner_create(ann_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
