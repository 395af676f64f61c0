/* check_motion.c -- motion correction against synthetic movies with known
 * motion (tests/mcsim.c): accuracy of rigid and piecewise-rigid shifts,
 * large off-centre shifts, template estimation, bidirectional scanning,
 * unusable frames and the border policy.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Error measures: the template defines the reference, so estimated shifts
 * equal the true ones up to one constant offset (where the template sits);
 * "RMS error" is the root mean square over frames of the 2-D error vector
 * after removing its mean, sqrt(mean(|e - mean(e)|^2)).
 */
#include <config.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "caimg/caimg.h"
#include "mcsim.h"

/* Measured values go to stderr, so that the test log records them. */
#define note(...) fprintf(stderr, "check_motion: " __VA_ARGS__)

/* A movie in memory with its true shifts. */
typedef struct {
    size_t ny, nx, T;
    float *frames;
    float *truth;     /* [T][2] */
    mcsim *sim;
} movie;

static void movie_make(movie *m, size_t ny, size_t nx, size_t T, double photons,
                       const float *truth, mcsim_field_fn field, void *ctx, double bidi)
{
    mcsim_params sp;
    mcsim_params_init(&sp, ny, nx);
    sp.bg_photons = photons;
    sp.cell_photons = 2 * photons;
    m->ny = ny;
    m->nx = nx;
    m->T = T;
    m->sim = mcsim_create(&sp);
    m->frames = malloc(sizeof(float) * ny * nx * T);
    m->truth = malloc(sizeof(float) * 2 * T);
    memcpy(m->truth, truth, sizeof(float) * 2 * T);
    for (size_t t = 0; t < T; t++)
        mcsim_next(m->sim, truth[2 * t], truth[2 * t + 1], field, ctx, bidi, m->frames + t * ny * nx);
}

static void movie_free(movie *m)
{
    free(m->frames);
    free(m->truth);
    mcsim_free(m->sim);
}

/* RMS of the 2-D error after removing the mean error (returned in off). */
static double rms_error(const float *est, const float *truth, size_t T, double off[2])
{
    double my = 0, mx = 0, s = 0;
    for (size_t t = 0; t < T; t++) {
        my += est[2 * t] - truth[2 * t];
        mx += est[2 * t + 1] - truth[2 * t + 1];
    }
    my /= (double)T;
    mx /= (double)T;
    for (size_t t = 0; t < T; t++) {
        double a = est[2 * t] - truth[2 * t] - my, b = est[2 * t + 1] - truth[2 * t + 1] - mx;
        s += a * a + b * b;
    }
    if (off) {
        off[0] = my;
        off[1] = mx;
    }
    return sqrt(s / (double)T);
}

static double max_error(const float *est, const float *truth, size_t T, const double off[2])
{
    double e = 0;
    for (size_t t = 0; t < T; t++) {
        double a = fabs(est[2 * t] - truth[2 * t] - off[0]);
        double b = fabs(est[2 * t + 1] - truth[2 * t + 1] - off[1]);
        e = a > e ? a : e;
        e = b > e ? b : e;
    }
    return e;
}

/* Build the template from the whole movie (as the driver does with a
 * sample) and register every frame; returns the plan. */
static caimg_mc_plan *register_movie(const movie *m, const caimg_mc_params *par, float *est,
                                     float *corr, unsigned char *flags, float *patch, float *out)
{
    caimg_mc_plan *p = caimg_mc_plan_create(m->ny, m->nx, par);
    ck_assert_msg(p != NULL, "plan: %s", caimg_errmsg());
    ck_assert_msg(caimg_mc_make_template(p, m->frames, m->T) == 0, "template: %s", caimg_errmsg());
    caimg_mc_frames r = {est, patch, corr, flags};
    ck_assert_msg(caimg_mc_execute(p, m->frames, CAIMG_DT_F32, out, CAIMG_DT_F32, m->T, &r, NULL) == 0,
                  "execute: %s", caimg_errmsg());
    return p;
}

/* ---- rigid accuracy ---------------------------------------------------- */

/* 512x512 at about 4 photons per pixel of neuropil and 8 more in somata
 * (shot-noise limited, like resonant-scanner GCaMP data), a random walk
 * with jumps: the RMS error must be at most 0.025 px (the target;
 * the Cramer-Rao bound of this movie is 0.010 px). */
START_TEST(rigid_accuracy_512)
{
    size_t T = 120;
    float *truth = malloc(sizeof(float) * 2 * T), *est = malloc(sizeof(float) * 2 * T);
    float *corr = malloc(sizeof(float) * T);
    mcsim_walk(11, T, 0.4, 0.05, 3, 20, 0, 0, truth);
    movie m;
    movie_make(&m, 512, 512, T, 4, truth, NULL, NULL, 0);
    caimg_mc_params par;
    caimg_mc_params_init(&par);
    caimg_mc_plan *p = register_movie(&m, &par, est, corr, NULL, NULL, NULL);
    double off[2];
    double rms = rms_error(est, truth, T, off);
    double mx = max_error(est, truth, T, off);
    note("rigid 512x512, 4 photons: RMS error %.4f px, max %.4f px\n", rms, mx);
    ck_assert_msg(rms <= 0.025, "rigid RMS error %.4f px > 0.025", rms);
    ck_assert_msg(mx <= 0.08, "rigid max error %.4f px > 0.08", mx);
    for (size_t t = 0; t < T; t++) ck_assert_msg(corr[t] > 0.3, "frame %zu corr %g", t, corr[t]);
    caimg_mc_summary s;
    ck_assert_int_eq(caimg_mc_get_summary(p, &s, NULL, NULL), 0);
    ck_assert_msg(s.crispness_after > 1.2 * s.crispness_before, "crispness %g -> %g",
                  s.crispness_before, s.crispness_after);
    ck_assert_uint_eq(s.frames, T);
    ck_assert_uint_eq(s.unusable, 0);
    caimg_mc_plan_destroy(p);
    movie_free(&m);
    free(truth);
    free(est);
    free(corr);
}
END_TEST

/* The sign convention: registering to the ideal scene reports the true
 * shifts themselves, not their negatives, and correcting a frame moved by
 * a whole number of pixels reproduces the template inside the valid box. */
START_TEST(sign_convention_and_integer_shift)
{
    size_t n = 256, npix = n * n, T = 8;
    float truth[16] = {3, -5, -7.25f, 2.5f, 0.4f, 0.3f, 11, 9, -2, -13.5f, 6.75f, -0.5f, 1, 1, 0, 0};
    movie m;
    movie_make(&m, n, n, T, 50, truth, NULL, NULL, 0);
    float *scene = malloc(sizeof(float) * npix);
    mcsim_scene(m.sim, scene);
    caimg_mc_plan *p = caimg_mc_plan_create(n, n, NULL);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(caimg_mc_set_template(p, scene), 0);
    float est[16];
    caimg_mc_frames r = {est, NULL, NULL, NULL};
    ck_assert_int_eq(caimg_mc_execute(p, m.frames, CAIMG_DT_F32, NULL, CAIMG_DT_F32, T, &r, NULL), 0);
    for (size_t t = 0; t < T; t++) {
        ck_assert_msg(fabs(est[2 * t] - truth[2 * t]) < 0.05, "frame %zu dy %g, truth %g", t,
                      est[2 * t], truth[2 * t]);
        ck_assert_msg(fabs(est[2 * t + 1] - truth[2 * t + 1]) < 0.05, "frame %zu dx %g, truth %g",
                      t, est[2 * t + 1], truth[2 * t + 1]);
    }
    /* A copy of the scene moved by (4, -6) whole pixels, without noise. */
    float *f = malloc(sizeof(float) * npix), *out = malloc(sizeof(float) * npix);
    for (size_t y = 0; y < n; y++)
        for (size_t x = 0; x < n; x++) {
            long sy = (long)y - 4, sx = (long)x + 6;
            sy = sy < 0 ? 0 : sy >= (long)n ? (long)n - 1 : sy;
            sx = sx < 0 ? 0 : sx >= (long)n ? (long)n - 1 : sx;
            f[y * n + x] = scene[(size_t)sy * n + (size_t)sx];
        }
    caimg_mc_reset(p);
    ck_assert_int_eq(caimg_mc_execute(p, f, CAIMG_DT_F32, out, CAIMG_DT_F32, 1, &r, NULL), 0);
    ck_assert_msg(fabs(est[0] - 4) < 0.02 && fabs(est[1] + 6) < 0.02, "integer shift %g %g", est[0], est[1]);
    caimg_mc_summary s;
    caimg_mc_get_summary(p, &s, NULL, NULL);
    /* Output row y reads row y + 4: rows from n - 4 on have no source;
     * column x reads x - 6: the first 6 columns have none (one more row or
     * column may go if the estimate is a hair above the integer). */
    ck_assert_int_eq(s.valid[0], 0);
    ck_assert_int_ge(s.valid[1], (int)n - 5);
    ck_assert_int_le(s.valid[1], (int)n - 4);
    ck_assert_int_ge(s.valid[2], 6);
    ck_assert_int_le(s.valid[2], 7);
    ck_assert_int_eq(s.valid[3], (int)n);
    /* Inside the valid box the corrected frame is the scene, up to the
     * residual sub-pixel error of the estimate: under 1% of its spread. */
    double d2 = 0, v2 = 0, mu = 0;
    size_t cnt = 0;
    for (int y = s.valid[0]; y < s.valid[1]; y++)
        for (int x = s.valid[2]; x < s.valid[3]; x++) mu += scene[y * (int)n + x], cnt++;
    mu /= (double)cnt;
    for (int y = s.valid[0]; y < s.valid[1]; y++)
        for (int x = s.valid[2]; x < s.valid[3]; x++) {
            double d = out[y * (int)n + x] - scene[y * (int)n + x], v = scene[y * (int)n + x] - mu;
            d2 += d * d;
            v2 += v * v;
        }
    ck_assert_msg(sqrt(d2 / v2) < 0.01, "corrected frame differs from the template by %.2f%%",
                  100 * sqrt(d2 / v2));
    caimg_mc_plan_destroy(p);
    movie_free(&m);
    free(scene);
    free(f);
    free(out);
}
END_TEST

/* Large shifts with the template far from some frames: half the movie sits
 * 28 px away from the other half.  With the default maximum shift (a
 * quarter of the frame) every frame must be recovered; a fixed 10 px limit
 * (CaImAn's default) would fail by tens of pixels. */
START_TEST(large_offcentre_shifts)
{
    size_t T = 60;
    float *truth = malloc(sizeof(float) * 2 * T), *est = malloc(sizeof(float) * 2 * T);
    unsigned char *flags = malloc(T);
    mcsim_walk(5, T, 0.3, 0, 0, 40, 0, 0, truth);
    for (size_t t = 0; t < T; t++)
        if ((t / 10) % 2) {
            truth[2 * t] += 20;
            truth[2 * t + 1] -= 20;
        }
    movie m;
    movie_make(&m, 256, 256, T, 6, truth, NULL, NULL, 0);
    caimg_mc_params par;
    caimg_mc_params_init(&par);
    caimg_mc_plan *p = register_movie(&m, &par, est, NULL, flags, NULL, NULL);
    double off[2];
    double rms = rms_error(est, truth, T, off), mx = max_error(est, truth, T, off);
    note("shifts 28 px apart, 256x256: RMS error %.4f px, max %.4f px\n", rms, mx);
    ck_assert_msg(mx < 0.15, "max error %.3f px (RMS %.3f)", mx, rms);
    for (size_t t = 0; t < T; t++) ck_assert_int_eq(flags[t], CAIMG_MC_OK);
    caimg_mc_plan_destroy(p);

    /* The same with a 10 px limit: the far frames are clipped and wrong,
     * which is what the default avoids. */
    par.max_shift = 10;
    p = register_movie(&m, &par, est, NULL, flags, NULL, NULL);
    size_t clipped = 0;
    for (size_t t = 0; t < T; t++) clipped += (flags[t] & CAIMG_MC_CLIPPED) != 0;
    ck_assert_msg(clipped > 0, "a 10 px limit should clip some of the 28 px shifts");
    caimg_mc_summary s;
    caimg_mc_get_summary(p, &s, NULL, NULL);
    ck_assert_uint_eq(s.clipped, clipped);
    caimg_mc_plan_destroy(p);
    movie_free(&m);
    free(truth);
    free(est);
    free(flags);
}
END_TEST

/* The first 30% of the frames are displaced by (15, -12) px from the rest:
 * the template must still come out sharp (it is built from mutually
 * similar frames, then refined), and every frame registered accurately. */
START_TEST(template_first_frames_shifted)
{
    size_t T = 100, n = 256;
    float *truth = malloc(sizeof(float) * 2 * T), *est = malloc(sizeof(float) * 2 * T);
    mcsim_walk(9, T, 0.3, 0, 0, 5, 0, 0, truth);
    for (size_t t = 0; t < 30; t++) {
        truth[2 * t] += 15;
        truth[2 * t + 1] -= 12;
    }
    movie m;
    movie_make(&m, n, n, T, 6, truth, NULL, NULL, 0);
    caimg_mc_params par;
    caimg_mc_params_init(&par);
    caimg_mc_plan *p = register_movie(&m, &par, est, NULL, NULL, NULL, NULL);
    double off[2];
    double rms = rms_error(est, truth, T, off);
    note("first 30%% of frames displaced: RMS error %.4f px\n", rms);
    ck_assert_msg(rms <= 0.04, "RMS error %.4f px with displaced first frames", rms);
    ck_assert_msg(max_error(est, truth, T, off) < 0.12, "max error");
    /* The template sits at the (trimmed) mean position of the movie. */
    double mean_y = 0, mean_x = 0;
    for (size_t t = 0; t < T; t++) {
        mean_y += truth[2 * t];
        mean_x += truth[2 * t + 1];
    }
    mean_y /= (double)T;
    mean_x /= (double)T;
    ck_assert_msg(fabs(-off[0] - mean_y) < 3 && fabs(-off[1] - mean_x) < 3,
                  "template at (%g, %g), movie mean (%g, %g)", -off[0], -off[1], mean_y, mean_x);
    /* Sharpness: the template registered to the ideal scene correlates
     * with it nearly perfectly. */
    float *scene = malloc(sizeof(float) * n * n);
    mcsim_scene(m.sim, scene);
    caimg_mc_plan *q = caimg_mc_plan_create(n, n, NULL);
    ck_assert_int_eq(caimg_mc_set_template(q, scene), 0);
    float e2[2], c;
    caimg_mc_frames r = {e2, NULL, &c, NULL};
    float *out = malloc(sizeof(float) * n * n);
    ck_assert_int_eq(caimg_mc_execute(q, caimg_mc_get_template(p), CAIMG_DT_F32, out, CAIMG_DT_F32, 1, &r,
                                      NULL), 0);
    note("template vs ideal scene: correlation %.4f\n", c);
    ck_assert_msg(c > 0.97, "template correlates %.3f with the scene", c);
    caimg_mc_plan_destroy(q);
    caimg_mc_plan_destroy(p);
    movie_free(&m);
    free(truth);
    free(est);
    free(scene);
    free(out);
}
END_TEST

/* ---- piecewise-rigid --------------------------------------------------- */

typedef struct {
    double A, lam, T;
} wave;

/* A smooth deformation: dy varies along x and dx along y, half a period
 * over the field of view, amplitude A px, cycling twice (dy) and three
 * times (dx) over the movie so that its mean over the movie is zero. */
static void wave_field(void *ctx, size_t t, double y, double x, double *dy, double *dx)
{
    const wave *w = ctx;
    double ph = 2 * M_PI * 2 * (double)t / w->T;
    *dy = w->A * sin(2 * M_PI * x / w->lam + ph);
    *dx = w->A * cos(2 * M_PI * y / w->lam + 1.5 * ph);
}

/* The field RMS error over patch centres and frames, after removing one
 * global offset, must be at most 0.2 px; the rigid part alone is far off. */
START_TEST(piecewise_field_accuracy)
{
    size_t T = 100, n = 512;
    float *truth = malloc(sizeof(float) * 2 * T), *est = malloc(sizeof(float) * 2 * T);
    mcsim_walk(21, T, 0.3, 0.03, 2, 12, 0, 0, truth);
    wave wv = {1.5, 2.0 * (double)n, (double)T};
    movie m;
    movie_make(&m, n, n, T, 4, truth, wave_field, &wv, 0);
    caimg_mc_params par;
    caimg_mc_params_init(&par);
    par.piecewise = 1;
    caimg_mc_plan *p = caimg_mc_plan_create(n, n, &par);
    ck_assert_ptr_nonnull(p);
    size_t npy, npx;
    const float *cy, *cx;
    caimg_mc_plan_grid(p, &npy, &npx, &cy, &cx);
    ck_assert_uint_eq(npy, 5);
    ck_assert_uint_eq(npx, 5);
    ck_assert_int_eq(caimg_mc_make_template(p, m.frames, T), 0);
    size_t np = npy * npx;
    float *ps = malloc(sizeof(float) * T * np * 2);
    float *out = malloc(sizeof(float) * n * n * T);
    caimg_mc_frames r = {est, ps, NULL, NULL};
    ck_assert_int_eq(caimg_mc_execute(p, m.frames, CAIMG_DT_F32, out, CAIMG_DT_F32, T, &r, NULL), 0);
    /* Truth at a patch centre c: the displacement of the frame's pixel c. */
    double *tr = malloc(sizeof(double) * T * np * 2), oy = 0, ox = 0, rig = 0;
    for (size_t t = 0; t < T; t++)
        for (size_t k = 0; k < np; k++) {
            double c0 = cy[k / npx], c1 = cx[k % npx], ey, ex;
            wave_field(&wv, t, c0, c1, &ey, &ex);
            double sy = truth[2 * t] + ey, sx = truth[2 * t + 1] + ex;
            tr[2 * (t * np + k)] = sy;
            tr[2 * (t * np + k) + 1] = sx;
            oy += ps[2 * (t * np + k)] - sy;
            ox += ps[2 * (t * np + k) + 1] - sx;
        }
    oy /= (double)(T * np);
    ox /= (double)(T * np);
    double s = 0;
    for (size_t q = 0; q < T * np; q++) {
        double a = ps[2 * q] - tr[2 * q] - oy, b = ps[2 * q + 1] - tr[2 * q + 1] - ox;
        s += a * a + b * b;
        double ra = est[2 * (q / np)] - tr[2 * q] - oy, rb = est[2 * (q / np) + 1] - tr[2 * q + 1] - ox;
        rig += ra * ra + rb * rb;
    }
    double rms = sqrt(s / (double)(T * np)), rrms = sqrt(rig / (double)(T * np));
    note("piecewise 512x512, 1.5 px deformation: field RMS error %.4f px (rigid alone %.4f)\n", rms, rrms);
    ck_assert_msg(rms <= 0.2, "piecewise field RMS error %.3f px > 0.2 (rigid alone %.3f)", rms, rrms);
    ck_assert_msg(rrms > 2 * rms, "rigid %.3f vs piecewise %.3f: the deformation is not being followed",
                  rrms, rms);
    caimg_mc_summary su;
    caimg_mc_get_summary(p, &su, NULL, NULL);
    ck_assert_msg(su.crispness_after > su.crispness_before, "crispness");
    ck_assert_msg(su.valid[0] > 0 && su.valid[1] < (int)n && su.valid[0] < su.valid[1], "valid box");
    caimg_mc_plan_destroy(p);
    movie_free(&m);
    free(truth);
    free(est);
    free(ps);
    free(out);
    free(tr);
}
END_TEST

/* ---- bidirectional scanning -------------------------------------------- */

START_TEST(bidi_offset_exact)
{
    static const double offs[] = {2, -3, 1, 0};
    for (size_t i = 0; i < sizeof offs / sizeof *offs; i++) {
        size_t T = 40;
        float *truth = malloc(sizeof(float) * 2 * T), *est = malloc(sizeof(float) * 2 * T);
        mcsim_walk(3 + i, T, 0.3, 0, 0, 6, 0, 0, truth);
        movie m;
        movie_make(&m, 256, 256, T, 6, truth, NULL, NULL, offs[i]);
        caimg_mc_params par;
        caimg_mc_params_init(&par);
        caimg_mc_plan *p = register_movie(&m, &par, est, NULL, NULL, NULL, NULL);
        ck_assert_msg(caimg_mc_get_bidi(p) == offs[i], "bidi %g, truth %g", caimg_mc_get_bidi(p), offs[i]);
        double off[2];
        double rms = rms_error(est, truth, T, off);
        ck_assert_msg(rms < 0.05, "RMS error %.3f with bidi offset %g", rms, offs[i]);
        caimg_mc_summary s;
        caimg_mc_get_summary(p, &s, NULL, NULL);
        ck_assert(s.bidi_offset == offs[i]);
        /* Columns the odd rows lost to the correction are outside the
         * valid box: output column x reads corrected column x + dx, which
         * odd rows have only for 0 <= x + dx + b <= 255. */
        int x0 = 0, x1 = 256;
        for (size_t t = 0; t < T; t++) {
            int a = (int)ceil(-est[2 * t + 1] - (offs[i] < 0 ? offs[i] : 0) - 1e-6);
            int c = (int)floor(255 - (offs[i] > 0 ? offs[i] : 0) - est[2 * t + 1] + 1e-6) + 1;
            x0 = a > x0 ? a : x0;
            x1 = c < x1 ? c : x1;
        }
        ck_assert_int_eq(s.valid[2], x0);
        ck_assert_int_eq(s.valid[3], x1);
        caimg_mc_plan_destroy(p);
        movie_free(&m);
        free(truth);
        free(est);
    }
    /* The estimator alone, with a fractional offset. */
    size_t T = 1;
    float z[2] = {0, 0};
    movie m;
    movie_make(&m, 256, 256, T, 500, z, NULL, NULL, 1.5);
    double b;
    ck_assert_int_eq(caimg_mc_estimate_bidi(m.frames, 256, 256, &b), 0);
    ck_assert_msg(fabs(b - 1.5) < 0.15, "fractional bidi %g", b);
    movie_free(&m);
}
END_TEST

/* ---- bad frames and borders -------------------------------------------- */

START_TEST(unusable_frames)
{
    size_t T = 30, n = 128, npix = n * n;
    float *truth = malloc(sizeof(float) * 2 * T), *est = malloc(sizeof(float) * 2 * T);
    float *corr = malloc(sizeof(float) * T);
    unsigned char flags[30];
    mcsim_walk(4, T, 0.5, 0, 0, 8, 0, 0, truth);
    movie m;
    movie_make(&m, n, n, T, 20, truth, NULL, NULL, 0);
    float *f = m.frames;
    for (size_t i = 0; i < npix; i++) {
        f[10 * npix + i] = 100;              /* blank (dark offset only) */
        f[11 * npix + i] = NAN;              /* lost frame */
        f[20 * npix + i] = 65535;            /* saturated */
        if (i % 10 < 3) f[25 * npix + i] = NAN;   /* 30% NaN: still usable */
    }
    caimg_mc_params par;
    caimg_mc_params_init(&par);
    caimg_mc_plan *p = caimg_mc_plan_create(n, n, &par);
    ck_assert_int_eq(caimg_mc_make_template(p, f, T), 0);
    /* In two calls, to check that the last shift carries over. */
    uint16_t *out = malloc(sizeof(uint16_t) * npix * T);
    caimg_mc_frames r1 = {est, NULL, corr, flags};
    caimg_mc_frames r2 = {est + 22, NULL, corr + 11, flags + 11};
    size_t clamped = 0;
    ck_assert_int_eq(caimg_mc_execute(p, f, CAIMG_DT_F32, out, CAIMG_DT_U16, 11, &r1, &clamped), 0);
    ck_assert_int_eq(caimg_mc_execute(p, f + 11 * npix, CAIMG_DT_F32, out + 11 * npix, CAIMG_DT_U16,
                                      T - 11, &r2, &clamped), 0);
    ck_assert_int_eq(flags[10], CAIMG_MC_UNUSABLE);
    ck_assert_int_eq(flags[11], CAIMG_MC_UNUSABLE);
    ck_assert_int_eq(flags[20], CAIMG_MC_UNUSABLE);
    ck_assert_int_eq(flags[25], CAIMG_MC_FILLED);   /* usable, its NaN pixels filled */
    ck_assert(isnan(corr[10]) && isnan(corr[11]) && isnan(corr[20]));
    ck_assert(corr[25] > 0.5);
    /* Unusable frames take the previous frame's shift. */
    ck_assert(est[20] == est[18] && est[21] == est[19]);
    ck_assert(est[22] == est[18] && est[23] == est[19]);
    ck_assert(est[40] == est[38] && est[41] == est[39]);
    /* The partly-NaN frame is registered as accurately as the others. */
    double off[2];
    rms_error(est, truth, 10, off);
    ck_assert_msg(fabs(est[50] - truth[50] - off[0]) < 0.1 && fabs(est[51] - truth[51] - off[1]) < 0.1,
                  "frame with NaN pixels misregistered");
    /* NaN becomes 0 in integer output and is counted as clamped. */
    ck_assert_uint_eq(out[11 * npix + npix / 2], 0);
    ck_assert_uint_ge(clamped, npix);
    caimg_mc_summary s;
    caimg_mc_get_summary(p, &s, NULL, NULL);
    ck_assert_uint_eq(s.unusable, 3);
    ck_assert_uint_eq(s.frames, T);
    caimg_mc_plan_destroy(p);

    /* A template needs at least CAIMG_MC_MIN_TEMPLATE_FRAMES usable frames. */
    p = caimg_mc_plan_create(n, n, &par);
    float *few = malloc(sizeof(float) * npix * 6);
    memcpy(few, f, sizeof(float) * npix * 6);
    for (size_t i = 0; i < npix; i++) few[2 * npix + i] = few[4 * npix + i] = NAN;
    ck_assert_int_eq(caimg_mc_make_template(p, few, 6), CAIMG_EFORMAT);
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "usable"));
    /* A constant or non-finite template is refused. */
    ck_assert_int_eq(caimg_mc_set_template(p, few + 2 * npix), CAIMG_EINVAL);
    for (size_t i = 0; i < npix; i++) few[i] = 7;
    ck_assert_int_eq(caimg_mc_set_template(p, few), CAIMG_EINVAL);
    /* Registering without a template is a usage error. */
    ck_assert_int_eq(caimg_mc_execute(p, f, CAIMG_DT_F32, NULL, CAIMG_DT_F32, 1, NULL, NULL), CAIMG_EINVAL);
    caimg_mc_plan_destroy(p);
    movie_free(&m);
    free(truth);
    free(est);
    free(corr);
    free(out);
    free(few);
}
END_TEST

START_TEST(border_policy)
{
    size_t n = 96, npix = n * n;
    float truth[4] = {3.5f, -4.25f, -2.0f, 6.5f};
    movie m;
    movie_make(&m, n, n, 2, 50, truth, NULL, NULL, 0);
    float *scene = malloc(sizeof(float) * npix), *out = malloc(sizeof(float) * npix * 2);
    mcsim_scene(m.sim, scene);
    for (int b = CAIMG_MC_BORDER_NEAREST; b <= CAIMG_MC_BORDER_NAN; b++) {
        caimg_mc_params par;
        caimg_mc_params_init(&par);
        par.border = (caimg_mc_border)b;
        caimg_mc_plan *p = caimg_mc_plan_create(n, n, &par);
        ck_assert_int_eq(caimg_mc_set_template(p, scene), 0);
        float est[4];
        caimg_mc_frames r = {est, NULL, NULL, NULL};
        ck_assert_int_eq(caimg_mc_execute(p, m.frames, CAIMG_DT_F32, out, CAIMG_DT_F32, 2, &r, NULL), 0);
        caimg_mc_summary s;
        caimg_mc_get_summary(p, &s, NULL, NULL);
        /* Frame 0 moved by (3.5, -4.25): source rows y + 3.5 leave the
         * frame below y = n - 4.5, columns x - 4.25 left of x = 4.25; frame
         * 1 at (-2, 6.5) cuts the top 2 rows and the right 7 columns. */
        ck_assert_int_eq(s.valid[0], 2);
        ck_assert_int_eq(s.valid[1], (int)n - 4);
        ck_assert_int_eq(s.valid[2], 5);
        ck_assert_int_eq(s.valid[3], (int)n - 7);
        size_t nan_in = 0, nan_out = 0, zero_out = 0;
        for (size_t y = 0; y < n; y++)
            for (size_t x = 0; x < n; x++) {
                float v = out[y * n + x];
                int inside = y < n - 4 && x >= 5;
                if (inside) nan_in += isnan(v);
                else {
                    nan_out += isnan(v);
                    zero_out += v == 0;
                }
            }
        ck_assert_uint_eq(nan_in, 0);
        size_t outside = npix - (n - 4) * (n - 5);
        if (b == CAIMG_MC_BORDER_NAN) ck_assert_uint_eq(nan_out, outside);
        else ck_assert_uint_eq(nan_out, 0);
        if (b == CAIMG_MC_BORDER_ZERO) ck_assert_uint_eq(zero_out, outside);
        if (b == CAIMG_MC_BORDER_NEAREST) ck_assert_uint_eq(zero_out, 0);
        /* NaN cannot be stored in integers. */
        uint16_t *u = malloc(sizeof(uint16_t) * npix);
        int rc = caimg_mc_execute(p, m.frames, CAIMG_DT_F32, u, CAIMG_DT_U16, 1, NULL, NULL);
        ck_assert_int_eq(rc, b == CAIMG_MC_BORDER_NAN ? CAIMG_EINVAL : 0);
        free(u);
        caimg_mc_plan_destroy(p);
    }
    movie_free(&m);
    free(scene);
    free(out);
}
END_TEST

/* Results do not depend on the number of threads (beyond float rounding:
 * FFTW_MEASURE may choose different algorithms for different plans, and
 * per-thread sums are added in a different order). */
START_TEST(threads_agree)
{
    size_t T = 24, n = 128;
    float *truth = malloc(sizeof(float) * 2 * T);
    mcsim_walk(8, T, 0.5, 0, 0, 8, 0, 0, truth);
    movie m;
    movie_make(&m, n, n, T, 10, truth, NULL, NULL, 0);
    float e1[48], e2[48];
    for (int k = 0; k < 2; k++) {
        caimg_mc_params par;
        caimg_mc_params_init(&par);
        par.piecewise = 1;
        par.threads = k + 1;
        caimg_mc_plan *p = register_movie(&m, &par, k ? e2 : e1, NULL, NULL, NULL, NULL);
        caimg_mc_plan_destroy(p);
    }
    for (size_t i = 0; i < 2 * T; i++) ck_assert_float_eq_tol(e1[i], e2[i], 1e-3);
    movie_free(&m);
    free(truth);
}
END_TEST

/* A template built from the movie's own uint16 samples, with quick
 * (estimated) FFTW plans as caimg mc makes for short movies, registers the
 * frames as the float template with measured plans does: the same shifts up
 * to rounding, and accurate ones. */
START_TEST(raw_template_quick_plans)
{
    size_t T = 40, n = 256, npix = n * n;
    float *truth = malloc(sizeof(float) * 2 * T);
    float *e1 = malloc(sizeof(float) * 2 * T), *e2 = malloc(sizeof(float) * 2 * T);
    uint16_t *raw = malloc(sizeof(uint16_t) * npix * T);
    mcsim_walk(17, T, 0.4, 0.1, 3, 10, 0, 0, truth);
    movie m;
    movie_make(&m, n, n, T, 6, truth, NULL, NULL, 0);
    /* The float copy holds exactly the integer samples. */
    for (size_t i = 0; i < npix * T; i++) {
        float v = m.frames[i] < 0 ? 0 : m.frames[i] > 65535 ? 65535 : m.frames[i];
        raw[i] = (uint16_t)(v + 0.5f);
        m.frames[i] = raw[i];
    }
    caimg_mc_params par;
    caimg_mc_params_init(&par);
    caimg_mc_plan *p = register_movie(&m, &par, e1, NULL, NULL, NULL, NULL);
    caimg_mc_plan_destroy(p);
    par.frames_hint = T;
    p = caimg_mc_plan_create(n, n, &par);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(caimg_mc_make_template_raw(p, raw, CAIMG_DT_U16, T), 0);
    caimg_mc_frames r = {e2, NULL, NULL, NULL};
    ck_assert_int_eq(caimg_mc_execute(p, raw, CAIMG_DT_U16, NULL, CAIMG_DT_U16, T, &r, NULL), 0);
    caimg_mc_plan_destroy(p);
    for (size_t i = 0; i < 2 * T; i++) ck_assert_float_eq_tol(e1[i], e2[i], 1e-3);
    double off[2];
    double rms = rms_error(e2, truth, T, off);
    note("uint16 template, estimated plans, 256x256: RMS error %.4f px\n", rms);
    ck_assert_msg(rms <= 0.05, "RMS error %.4f px", rms);
    ck_assert_int_eq(caimg_mc_make_template_raw(p = caimg_mc_plan_create(n, n, &par), raw,
                                                (caimg_dtype)999, T), CAIMG_EINVAL);
    caimg_mc_plan_destroy(p);
    movie_free(&m);
    free(truth);
    free(e1);
    free(e2);
    free(raw);
}
END_TEST

START_TEST(parameters_checked)
{
    caimg_mc_params par;
    caimg_mc_params_init(&par);
    ck_assert_ptr_null(caimg_mc_plan_create(8, 64, &par));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "too small"));
    ck_assert_int_eq(caimg_errstatus(), CAIMG_EFORMAT);   /* the data's, not a usage error */
    par.max_shift = 500;
    ck_assert_ptr_null(caimg_mc_plan_create(64, 64, &par));
    ck_assert_int_eq(caimg_errstatus(), CAIMG_EINVAL);
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "max shift"));
    caimg_mc_params_init(&par);
    par.piecewise = 1;
    par.patch = 32;
    par.overlap = 40;
    ck_assert_ptr_null(caimg_mc_plan_create(64, 64, &par));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "overlap"));
    caimg_mc_params_init(&par);
    par.smooth_sigma = -1;
    ck_assert_ptr_null(caimg_mc_plan_create(64, 64, &par));
    /* Defaults resolved: a quarter of the smaller side. */
    caimg_mc_params_init(&par);
    caimg_mc_plan *p = caimg_mc_plan_create(200, 300, &par);
    ck_assert_ptr_nonnull(p);
    ck_assert_double_eq(caimg_mc_plan_params(p)->max_shift, 50);
    caimg_mc_plan_destroy(p);
    caimg_mc_plan_destroy(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("motion");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, parameters_checked);
    tcase_add_test(tc, sign_convention_and_integer_shift);
    tcase_add_test(tc, border_policy);
    tcase_add_test(tc, unusable_frames);
    tcase_add_test(tc, threads_agree);
    tcase_add_test(tc, raw_template_quick_plans);
    tcase_add_test(tc, bidi_offset_exact);
    tcase_add_test(tc, large_offcentre_shifts);
    tcase_add_test(tc, template_first_frames_shifted);
    tcase_add_test(tc, rigid_accuracy_512);
    tcase_add_test(tc, piecewise_field_accuracy);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
