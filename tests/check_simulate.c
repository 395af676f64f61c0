/* check_simulate.c -- the statistics and truths the simulator promises.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Statistical checks use fixed seeds but tolerances derived from the
 * sampling error (a few standard errors), so they are not tuned to a seed:
 * they would fail if the simulator drew from the wrong distribution.
 */
#include <config.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include <check.h>

#include "caimg/caimg.h"
#include "simrng.h"

/* A small, quiet-field simulation: no motion unless the test adds it. */
static void small_params(caimg_sim_params *p, size_t Y, size_t X, size_t T)
{
    caimg_sim_params_init(p);
    p->height = Y;
    p->width = X;
    p->frames = T;
    p->motion_sd = 0;
    p->jitter_sd = 0;
    p->jump_rate = 0;
}

static caimg_sim *must_alloc(const caimg_sim_params *p)
{
    caimg_sim *s = caimg_sim_alloc(p);
    ck_assert_msg(s != NULL, "caimg_sim_alloc: %s", caimg_errmsg());
    return s;
}

static float *frame_buf(const caimg_sim *s, size_t n)
{
    float *f = malloc(n * caimg_sim_height(s) * caimg_sim_width(s) * sizeof(float));
    ck_assert_ptr_nonnull(f);
    return f;
}

/* Footprint-weighted mean of a frame over neuron i's truth footprint. */
static double fp_mean(const caimg_sim_truth *tr, size_t i, const float *f)
{
    double a = 0, w = 0;
    for (int64_t k = tr->pix_start[i]; k < tr->pix_start[i + 1]; k++) {
        double ww = tr->pix_weight[k];
        a += ww * f[(size_t)tr->pix_index[2 * k] * tr->width + (size_t)tr->pix_index[2 * k + 1]];
        w += ww;
    }
    return a / w;
}

/* 1 if neuron i shares a footprint pixel with any other neuron. */
static int touches_other(const caimg_sim_truth *tr, size_t i)
{
    size_t Y = tr->height, X = tr->width;
    int *own = calloc(Y * X, sizeof(int));
    int hit = 0;
    for (size_t j = 0; j < tr->neurons; j++)
        for (int64_t k = tr->pix_start[j]; k < tr->pix_start[j + 1]; k++)
            own[(size_t)tr->pix_index[2 * k] * X + (size_t)tr->pix_index[2 * k + 1]] += j == i ? 1 : 1000;
    for (int64_t k = tr->pix_start[i]; k < tr->pix_start[i + 1]; k++)
        if (own[(size_t)tr->pix_index[2 * k] * X + (size_t)tr->pix_index[2 * k + 1]] > 1) hit = 1;
    free(own);
    return hit;
}

/* ---- determinism ---------------------------------------------------------- */

START_TEST(same_seed_same_bytes)
{
    caimg_sim_params p;
    small_params(&p, 64, 80, 40);
    p.motion_sd = 1.0;
    p.jump_rate = 1.0;
    p.deform_sd = 0.8;
    p.bidi = 1.5;
    p.seed = 42;
    caimg_sim *a = must_alloc(&p), *b = must_alloc(&p);
    p.seed = 43;
    caimg_sim *c = must_alloc(&p);
    float *fa = frame_buf(a, 1), *fb = frame_buf(a, 1), *fc = frame_buf(a, 1);
    size_t n = 64 * 80;
    size_t ts[] = {0, 17, 39};
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(caimg_sim_frame(a, ts[k], fa), 0);
        ck_assert_int_eq(caimg_sim_frame(b, ts[k], fb), 0);
        ck_assert_int_eq(caimg_sim_frame(c, ts[k], fc), 0);
        ck_assert_msg(memcmp(fa, fb, n * sizeof(float)) == 0, "frame %zu differs for one seed", ts[k]);
        ck_assert_msg(memcmp(fa, fc, n * sizeof(float)) != 0, "frame %zu same for two seeds", ts[k]);
    }
    const caimg_sim_truth *ta = caimg_sim_get_truth(a), *tb = caimg_sim_get_truth(b);
    ck_assert_uint_eq(ta->neurons, tb->neurons);
    ck_assert(memcmp(ta->spikes, tb->spikes, ta->neurons * 40 * sizeof(float)) == 0);
    ck_assert(memcmp(ta->shifts, tb->shifts, 40 * 2 * sizeof(float)) == 0);
    ck_assert(memcmp(ta->deform, tb->deform, 40 * 16 * 2 * sizeof(float)) == 0);
    free(fa);
    free(fb);
    free(fc);
    caimg_sim_free(a);
    caimg_sim_free(b);
    caimg_sim_free(c);
}
END_TEST

START_TEST(thread_count_independent)
{
    caimg_sim_params p;
    small_params(&p, 48, 56, 12);
    p.motion_sd = 1.0;
    p.deform_sd = 0.5;
    p.bidi = 1;
    caimg_sim *s = must_alloc(&p);
    size_t n = 48 * 56;
    float *one = frame_buf(s, 12), *two = frame_buf(s, 12), *single = frame_buf(s, 1);
#ifdef _OPENMP
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
#endif
    ck_assert_int_eq(caimg_sim_frames(s, 0, 12, one), 0);
#ifdef _OPENMP
    omp_set_num_threads(3);
#endif
    ck_assert_int_eq(caimg_sim_frames(s, 0, 12, two), 0);
#ifdef _OPENMP
    omp_set_num_threads(saved);
#endif
    ck_assert(memcmp(one, two, 12 * n * sizeof(float)) == 0);
    /* Out of order, one at a time: the same bytes again. */
    for (size_t t = 12; t-- > 0;) {
        ck_assert_int_eq(caimg_sim_frame(s, t, single), 0);
        ck_assert(memcmp(single, one + t * n, n * sizeof(float)) == 0);
    }
    /* And a simulation drawn with another thread count is the same. */
#ifdef _OPENMP
    omp_set_num_threads(1);
    caimg_sim *s1 = must_alloc(&p);
    omp_set_num_threads(saved);
    const caimg_sim_truth *a = caimg_sim_get_truth(s), *b = caimg_sim_get_truth(s1);
    ck_assert(memcmp(a->calcium, b->calcium, a->neurons * 12 * sizeof(float)) == 0);
    ck_assert(memcmp(a->neuropil, b->neuropil, a->neurons * 12 * sizeof(float)) == 0);
    caimg_sim_free(s1);
#endif
    free(one);
    free(two);
    free(single);
    caimg_sim_free(s);
}
END_TEST

/* ---- activity --------------------------------------------------------------- */

START_TEST(spike_rates_are_poisson)
{
    /* Without rate modulation the total count is Poisson with the summed
     * expected rate: it must fall within 4 s.d. */
    caimg_sim_params p;
    small_params(&p, 200, 200, 6000);
    p.neurons = 120;
    p.rate = 0.5;
    p.rate_mod_sd = 0;
    caimg_sim *s = must_alloc(&p);
    const caimg_sim_truth *tr = caimg_sim_get_truth(s);
    double expect = 0, got = 0, rmean = 0;
    for (size_t i = 0; i < tr->neurons; i++) {
        rmean += tr->rate[i * 6000];
        for (size_t t = 0; t < 6000; t++) {
            expect += tr->rate[i * 6000 + t] / p.fs;
            got += tr->spikes[i * 6000 + t];
            ck_assert(tr->spikes[i * 6000 + t] >= 0 && tr->spikes[i * 6000 + t] == floorf(tr->spikes[i * 6000 + t]));
        }
    }
    ck_assert_msg(fabs(got - expect) < 4 * sqrt(expect), "spikes %g, expected %g", got, expect);
    /* Rates across neurons are log-normal with mean `rate`. */
    rmean /= (double)tr->neurons;
    double se = p.rate * sqrt(exp(p.rate_sd * p.rate_sd) - 1) / sqrt((double)tr->neurons);
    ck_assert_msg(fabs(rmean - p.rate) < 4 * se, "mean rate %g, expected %g +- %g", rmean, p.rate, se);
    caimg_sim_free(s);

    /* With modulation the mean is kept; the variance bound of an integrated
     * log-normal OU rate is r^2 D (exp(sd^2) - 1) 2 tau. */
    p.rate_mod_sd = 0.5;
    s = must_alloc(&p);
    tr = caimg_sim_get_truth(s);
    double var = 0, D = 6000 / p.fs;
    expect = got = 0;
    for (size_t i = 0; i < tr->neurons; i++) {
        double r = tr->rate[i * 6000], e = r * D;
        expect += e;
        var += e + r * r * D * (exp(0.25) - 1) * 2 * p.rate_mod_tau;
        for (size_t t = 0; t < 6000; t++) got += tr->spikes[i * 6000 + t];
    }
    ck_assert_msg(fabs(got - expect) < 4 * sqrt(var), "modulated: spikes %g, expected %g +- %g",
                  got, expect, sqrt(var));
    caimg_sim_free(s);
}
END_TEST

START_TEST(calcium_follows_ar_model)
{
    caimg_sim_params p;
    small_params(&p, 96, 96, 900);
    p.neurons = 20;
    p.rate = 2.0;
    caimg_sim *s = must_alloc(&p);
    const caimg_sim_truth *tr = caimg_sim_get_truth(s);
    size_t T = 900;
    ck_assert_uint_gt(tr->neurons, 10);
    for (size_t i = 0; i < tr->neurons; i++) {
        double g1 = tr->g[2 * i], g2 = tr->g[2 * i + 1], c1 = 0, c2 = 0;
        ck_assert(g2 < 0);   /* AR(2): a rise */
        for (size_t t = 0; t < T; t++) {
            double c = g1 * c1 + g2 * c2 + tr->alpha[i] * tr->spikes[i * T + t];
            ck_assert_msg(fabs(c - tr->calcium[i * T + t]) < 1e-5 + 1e-5 * fabs(c),
                          "neuron %zu frame %zu: %g vs %g", i, t, c, tr->calcium[i * T + t]);
            c2 = c1;
            c1 = c;
        }
        /* Time constants behind g are the neuron's documented ones. */
        double d = exp(-1.0 / (p.fs * tr->tau_decay[i])), r = exp(-1.0 / (p.fs * tr->tau_rise[i]));
        ck_assert_double_eq_tol(g1, d + r, 1e-5);
        ck_assert_double_eq_tol(g2, -d * r, 1e-5);
    }
    caimg_sim_free(s);

    /* AR(1) on request: g2 = 0 and alpha is the amplitude. */
    p.ar_order = 1;
    s = must_alloc(&p);
    tr = caimg_sim_get_truth(s);
    for (size_t i = 0; i < tr->neurons; i++) {
        ck_assert(tr->g[2 * i + 1] == 0);
        ck_assert_double_eq_tol(tr->alpha[i], tr->amplitude[i], 1e-6);
    }
    caimg_sim_free(s);
}
END_TEST

START_TEST(indicator_kinetics_match_literature)
{
    /* The kernel solved for each preset reproduces its time to peak and
     * half-decay time to 0.5 ms. */
    for (const caimg_sim_indicator *ind = caimg_sim_indicators(); ind->name; ind++) {
        double tr, td;
        ck_assert_int_eq(caimg_sim_kernel_taus(ind->t_peak, ind->t_half, &tr, &td), 0);
        ck_assert(tr > 0 && tr < td);
        double tp = td * tr / (td - tr) * log(td / tr);
        double hp = exp(-tp / td) - exp(-tp / tr), t = tp;
        while (exp(-t / td) - exp(-t / tr) > 0.5 * hp) t += 1e-5;
        ck_assert_msg(fabs(tp - ind->t_peak) < 5e-4, "%s: peak %g", ind->name, tp);
        ck_assert_msg(fabs(t - tp - ind->t_half) < 5e-4, "%s: half-decay %g", ind->name, t - tp);
    }
    ck_assert_ptr_nonnull(caimg_sim_indicator_find("GCaMP6s"));
    ck_assert_ptr_null(caimg_sim_indicator_find("gcamp99"));

    /* One isolated spike of a neuron without variability peaks at the
     * preset's amplitude (continuous kernel), sampled a little below it. */
    caimg_sim_params p;
    small_params(&p, 64, 64, 300);
    p.amplitude_cv = 0;
    p.tau_cv = 0;
    p.indicator = "gcamp6s";
    caimg_sim *s = must_alloc(&p);
    const caimg_sim_truth *tr = caimg_sim_get_truth(s);
    ck_assert_double_eq_tol(tr->amplitude[0], 0.23, 1e-6);
    double g1 = tr->g[0], g2 = tr->g[1], c1 = 0, c2 = 0, peak = 0;
    for (int k = 0; k < 300; k++) {
        double c = g1 * c1 + g2 * c2 + (k == 0 ? tr->alpha[0] : 0);
        if (c > peak) peak = c;
        c2 = c1;
        c1 = c;
    }
    ck_assert_msg(peak <= 0.23 + 1e-6 && peak > 0.23 * 0.9, "sampled peak %g", peak);
    caimg_sim_free(s);
}
END_TEST

START_TEST(saturation_is_hill)
{
    caimg_sim_params p;
    small_params(&p, 64, 64, 600);
    p.rate = 5;
    p.saturation = 1.0;
    p.hill = 2.0;
    p.amplitude_cv = 0;
    caimg_sim *s = must_alloc(&p);
    const caimg_sim_truth *tr = caimg_sim_get_truth(s);
    double A = tr->amplitude[0], K = A * sqrt((1.0 - A) / A);
    size_t T = 600;
    for (size_t i = 0; i < tr->neurons; i++) {
        double c1 = 0, c2 = 0;
        for (size_t t = 0; t < T; t++) {
            double c = tr->g[2 * i] * c1 + tr->g[2 * i + 1] * c2 + tr->alpha[i] * tr->spikes[i * T + t];
            double y = c > 0 ? c * c / (c * c + K * K) : 0;
            ck_assert(tr->calcium[i * T + t] <= 1.0f);
            ck_assert_double_eq_tol(tr->calcium[i * T + t], y, 1e-5);
            c2 = c1;
            c1 = c;
        }
    }
    caimg_sim_free(s);
}
END_TEST

/* ---- photons, noise and SNR --------------------------------------------------- */

START_TEST(snr_knob_and_noise_model)
{
    caimg_sim_params p;
    small_params(&p, 96, 96, 400);
    p.snr = 3.0;
    p.bleach = 0;
    p.drift_sd = 0;
    caimg_sim *s = must_alloc(&p);
    const caimg_sim_truth *tr = caimg_sim_get_truth(s);
    size_t N = tr->neurons, T = 400, n = 96 * 96;
    ck_assert_uint_gt(N, 5);
    /* The knob hits its median. */
    double *v = malloc(N * sizeof(double));
    for (size_t i = 0; i < N; i++) v[i] = tr->snr[i];
    for (size_t i = 0; i < N; i++)
        for (size_t j = i + 1; j < N; j++)
            if (v[j] < v[i]) { double t = v[i]; v[i] = v[j]; v[j] = t; }
    double med = N % 2 ? v[N / 2] : 0.5 * (v[N / 2 - 1] + v[N / 2]);
    ck_assert_msg(fabs(med - 3.0) < 0.01, "median SNR %g", med);
    free(v);

    /* The noise of the footprint-weighted trace is what the SNR assumes:
     * gain^2 * sum a^2 lambda + read^2 sum a^2, over (sum a)^2.  Pooled over
     * neurons and frames the variance ratio has a standard error of about
     * sqrt(2 / (N T)), below 2 %; allow 6 %. */
    float *noisy = frame_buf(s, 1), *clean = frame_buf(s, 1), *lam = frame_buf(s, 1);
    double ratio_num = 0, ratio_den = 0;
    /* And per pixel: mean 0, variance gain^2 lambda + read^2. */
    double rsum = 0, rss = 0, pred = 0;
    for (size_t t = 0; t < T; t++) {
        caimg_sim_frame(s, t, noisy);
        caimg_sim_render(s, t, CAIMG_SIM_NOISELESS, clean);
        caimg_sim_render(s, t, CAIMG_SIM_PHOTONS, lam);
        for (size_t i = 0; i < N; i++) {
            double sa = 0, sa2 = 0, vv = 0, d = 0;
            for (int64_t k = tr->pix_start[i]; k < tr->pix_start[i + 1]; k++) {
                size_t px = (size_t)tr->pix_index[2 * k] * 96 + (size_t)tr->pix_index[2 * k + 1];
                double a = tr->pix_weight[k];
                sa += a;
                sa2 += a * a;
                vv += a * a * (p.gain * p.gain * lam[px] + p.read_noise * p.read_noise);
                d += a * (noisy[px] - clean[px]);
            }
            ratio_num += (d / sa) * (d / sa);
            ratio_den += vv / (sa * sa);
        }
        if (t < 40)
            for (size_t k = 0; k < n; k++) {
                double e = noisy[k] - clean[k];
                rsum += e;
                rss += e * e;
                pred += p.gain * p.gain * lam[k] + p.read_noise * p.read_noise;
            }
    }
    double ratio = ratio_num / ratio_den;
    ck_assert_msg(fabs(ratio - 1) < 0.06, "trace noise variance / predicted = %g", ratio);
    double npix = 40.0 * n;
    ck_assert_msg(fabs(rsum / npix) < 4 * sqrt(pred / npix) / sqrt(npix), "pixel noise mean %g",
                  rsum / npix);
    ck_assert_msg(fabs(rss / pred - 1) < 0.02, "pixel noise variance / predicted = %g", rss / pred);

    /* The noiseless trace decomposes exactly into the truth traces:
     * F = baseline (1 + calcium) + neuropil for a neuron nobody overlaps. */
    size_t checked = 0;
    for (size_t i = 0; i < N && checked < 5; i++) {
        if (touches_other(tr, i)) continue;
        checked++;
        for (size_t t = 0; t < T; t += 37) {
            caimg_sim_render(s, t, CAIMG_SIM_PHOTONS, lam);
            double F = fp_mean(tr, i, lam);
            double model = tr->baseline[i * T + t] * (1 + tr->calcium[i * T + t]) + tr->neuropil[i * T + t];
            ck_assert_msg(fabs(F - model) < 1e-4 * F, "neuron %zu frame %zu: F %g, truth %g", i, t, F, model);
        }
    }
    ck_assert_uint_gt(checked, 0);
    free(noisy);
    free(clean);
    free(lam);
    caimg_sim_free(s);
}
END_TEST

START_TEST(poisson_sampler)
{
    /* Each sampler's mean and variance within 4 standard errors, at means
     * on and off the table grid, below and above the switch to PTRS. */
    static simrng_ptab tab;
    simrng_ptab_init(&tab);
    double lams[] = {0.03, 0.3, 1.1, 3.0, 4.87, 9.5, 9.99, 10.5, 57.0};
    for (int k = 0; k < 9; k++) {
        simrng r = simrng_key(7, 99, (uint64_t)k, 0);
        const int n = 200000;
        double s[3][2] = {{0}};
        for (int i = 0; i < n; i++) {
            double x[3] = {(double)simrng_poisson(&r, lams[k]),
                           (double)simrng_poissonf(&r, (float)lams[k]),
                           (double)simrng_poisson_tab(&r, &tab, (float)lams[k])};
            for (int j = 0; j < 3; j++) {
                s[j][0] += x[j];
                s[j][1] += x[j] * x[j];
            }
        }
        double lam = lams[k], se_m = sqrt(lam / n), se_v = lam * sqrt((2.0 + 1.0 / lam) / n);
        for (int j = 0; j < 3; j++) {
            double m = s[j][0] / n, var = s[j][1] / n - m * m;
            ck_assert_msg(fabs(m - lam) < 4 * se_m, "sampler %d lambda %g: mean %g", j, lam, m);
            ck_assert_msg(fabs(var - lam) < 4 * se_v, "sampler %d lambda %g: variance %g", j, lam, var);
        }
    }
    /* Normal deviates: the first four moments and the 3-sigma tail. */
    simrng r = simrng_key(1, 2, 3, 4);
    const double n = 1000000;
    for (int j = 0; j < 2; j++) {
        double m[5] = {0}, tail = 0;
        for (int i = 0; i < (int)n; i++) {
            double x = j ? simrng_normal_zig(&r, &tab) : simrng_normalf(&r);
            m[1] += x;
            m[2] += x * x;
            m[3] += x * x * x;
            m[4] += x * x * x * x;
            tail += fabs(x) > 3;
        }
        ck_assert_msg(fabs(m[1] / n) < 4 * sqrt(1 / n), "normal %d mean", j);
        ck_assert_msg(fabs(m[2] / n - 1) < 4 * sqrt(2 / n), "normal %d variance", j);
        ck_assert_msg(fabs(m[3] / n) < 4 * sqrt(15 / n), "normal %d skewness", j);
        ck_assert_msg(fabs(m[4] / n - 3) < 4 * sqrt(96 / n), "normal %d kurtosis", j);
        ck_assert_msg(fabs(tail / n - 0.0026998) < 4 * sqrt(0.0027 / n), "normal %d tail", j);
    }
}
END_TEST

/* ---- motion ----------------------------------------------------------------- */

START_TEST(shift_distribution)
{
    caimg_sim_params p;
    small_params(&p, 32, 32, 30000);
    p.neurons = 1;
    p.diameter = 6;
    p.motion_sd = 1.2;
    p.motion_tau = 1.0;
    caimg_sim *s = must_alloc(&p);
    const caimg_sim_truth *tr = caimg_sim_get_truth(s);
    size_t T = 30000;
    /* About T / (2 tau fs) = 500 independent samples: the s.d. estimate has a
     * standard error near 3 %; allow 15 %.  Lag-one correlation is
     * exp(-1/(fs tau)) = 0.967 within 0.01. */
    for (int ax = 0; ax < 2; ax++) {
        double m = 0, ss = 0, c1 = 0;
        for (size_t t = 0; t < T; t++) m += tr->shifts[2 * t + ax];
        m /= T;
        for (size_t t = 0; t < T; t++) {
            double d = tr->shifts[2 * t + ax] - m;
            ss += d * d;
            if (t) c1 += d * (tr->shifts[2 * (t - 1) + ax] - m);
        }
        double sd = sqrt(ss / T), rho = c1 / ss;
        ck_assert_msg(fabs(sd / 1.2 - 1) < 0.15, "axis %d: s.d. %g", ax, sd);
        ck_assert_msg(fabs(rho - exp(-1.0 / 30.0)) < 0.01, "axis %d: lag-1 correlation %g", ax, rho);
    }
    caimg_sim_free(s);

    /* Jumps alone: piecewise-constant positions changing at Poisson times,
     * clipped to max_shift. */
    small_params(&p, 32, 32, 30000);
    p.neurons = 1;
    p.diameter = 6;
    p.jump_rate = 0.5;
    p.jump_sd = 3.0;
    p.max_shift = 4.0;
    s = must_alloc(&p);
    tr = caimg_sim_get_truth(s);
    double changes = 0, expect = 0.5 * 30000 / 30.0 * (1 - 0);
    int clipped = 0;
    for (size_t t = 0; t < T; t++) {
        ck_assert(fabsf(tr->shifts[2 * t]) <= 4.0f && fabsf(tr->shifts[2 * t + 1]) <= 4.0f);
        if (fabsf(tr->shifts[2 * t]) == 4.0f) clipped = 1;
        if (t && tr->shifts[2 * t] != tr->shifts[2 * t - 2]) changes++;
    }
    /* The first frame's draw of the jump happens with probability
     * 1 - exp(-rate/fs) per frame. */
    expect = (T - 1) * (1 - exp(-0.5 / 30.0));
    ck_assert_msg(fabs(changes - expect) < 4 * sqrt(expect), "%g jumps, expected %g", changes, expect);
    ck_assert(clipped);
    caimg_sim_free(s);
}
END_TEST

START_TEST(shift_sign_convention)
{
    /* frame_t(y, x) = scene_t(y - dy, x - dx): with an integer shift the
     * frame is the still scene translated by (+dy, +dx), exactly. */
    caimg_sim_params p;
    small_params(&p, 64, 72, 3);
    float sh[6] = {0, 0, 3, -2, 0.37f, -0.81f};
    p.shifts = sh;
    caimg_sim *s = must_alloc(&p);
    float *f = frame_buf(s, 1), *g = frame_buf(s, 1);
    size_t X = 72;
    caimg_sim_render(s, 1, CAIMG_SIM_PHOTONS, f);
    caimg_sim_render(s, 1, CAIMG_SIM_PHOTONS | CAIMG_SIM_STILL, g);
    for (size_t y = 3; y < 64; y++)
        for (size_t x = 0; x + 2 < X; x++) {
            double a = f[y * X + x], b = g[(y - 3) * X + x + 2];
            ck_assert_msg(fabs(a - b) < 1e-4 * fabs(b) + 1e-6, "(%zu,%zu): %g vs %g", y, x, a, b);
        }
    /* Sub-pixel: each soma's intensity centroid moves by the shift.  Sampling
     * a soft edge on the pixel grid biases one soma's centroid by a few
     * hundredths of a pixel, differently for each sub-pixel phase, so the
     * average over somata must match to 0.01 px. */
    caimg_sim_render(s, 2, CAIMG_SIM_PHOTONS | CAIMG_SIM_NO_NEUROPIL, f);
    caimg_sim_render(s, 2, CAIMG_SIM_PHOTONS | CAIMG_SIM_NO_NEUROPIL | CAIMG_SIM_STILL, g);
    const caimg_sim_truth *tr = caimg_sim_get_truth(s);
    double ey = 0, ex = 0;
    int used = 0;
    for (size_t i = 0; i < tr->neurons; i++) {
        const caimg_sim_soma *so = &tr->soma[i];
        double rad = so->ra + 2.5;
        if (touches_other(tr, i) || so->cy < rad + 1 || so->cx < rad + 1 || so->cy > 63 - rad - 1
            || so->cx > 71 - rad - 1)
            continue;
        double a[2][3] = {{0}};
        for (int w = 0; w < 2; w++) {
            const float *img = w ? g : f;
            double cy = so->cy + (w ? 0 : 0.37), cx = so->cx + (w ? 0 : -0.81);
            for (long y = (long)floor(cy - rad); y <= (long)ceil(cy + rad); y++)
                for (long x = (long)floor(cx - rad); x <= (long)ceil(cx + rad); x++) {
                    if (hypot(y - cy, x - cx) > rad) continue;
                    double v = img[y * (long)X + x];
                    a[w][0] += v;
                    a[w][1] += v * y;
                    a[w][2] += v * x;
                }
        }
        ey += a[0][1] / a[0][0] - a[1][1] / a[1][0] - 0.37;
        ex += a[0][2] / a[0][0] - a[1][2] / a[1][0] + 0.81;
        used++;
    }
    ck_assert_int_gt(used, 3);
    ck_assert_msg(fabs(ey / used) < 0.01 && fabs(ex / used) < 0.01,
                  "mean centroid error (%g, %g) over %d somata", ey / used, ex / used, used);
    free(f);
    free(g);
    caimg_sim_free(s);
}
END_TEST

START_TEST(deformation_field)
{
    caimg_sim_params p;
    small_params(&p, 96, 96, 20);
    p.deform_sd = 0.8;
    p.deform_grid = 4;
    p.motion_sd = 0.7;
    caimg_sim *s = must_alloc(&p);
    const caimg_sim_truth *tr = caimg_sim_get_truth(s);
    ck_assert_uint_eq(tr->deform_gy, 4);
    ck_assert_double_eq_tol(tr->deform_sy, 95.0 / 3.0, 1e-9);
    /* The field passes through its nodes and has zero mean over them. */
    for (size_t t = 0; t < 20; t++) {
        double my = 0, mx = 0;
        for (size_t j = 0; j < 4; j++)
            for (size_t k = 0; k < 4; k++) {
                double dy, dx;
                caimg_sim_displacement(s, t, j * tr->deform_sy, k * tr->deform_sx, &dy, &dx);
                const float *nd = tr->deform + ((t * 4 + j) * 4 + k) * 2;
                ck_assert_double_eq_tol(dy, tr->shifts[2 * t] + nd[0], 1e-5);
                ck_assert_double_eq_tol(dx, tr->shifts[2 * t + 1] + nd[1], 1e-5);
                my += nd[0];
                mx += nd[1];
            }
        ck_assert(fabs(my) < 1e-4 && fabs(mx) < 1e-4);
    }
    float *f = frame_buf(s, 1), *g = frame_buf(s, 1);
    /* Every pixel shows the scene at p - u(p): rebuild the somata-only frame
     * from the truth (geometry, baseline, calcium) and the public
     * displacement function, and compare pixel by pixel. */
    {
        size_t T = 20;
        caimg_sim_render(s, 7, CAIMG_SIM_PHOTONS | CAIMG_SIM_NO_NEUROPIL, f);
        double *amp = calloc(tr->neurons, sizeof(double));
        for (size_t i = 0; i < tr->neurons; i++) {
            double sa = 0, sa2 = 0;
            for (int64_t k = tr->pix_start[i]; k < tr->pix_start[i + 1]; k++) {
                sa += tr->pix_weight[k];
                sa2 += (double)tr->pix_weight[k] * tr->pix_weight[k];
            }
            amp[i] = tr->baseline[i * T + 7] * sa / sa2 * (1 + tr->calcium[i * T + 7]);
        }
        for (size_t y = 0; y < 96; y++)
            for (size_t x = 0; x < 96; x++) {
                double uy, ux, v = 0;
                caimg_sim_displacement(s, 7, (double)y, (double)x, &uy, &ux);
                for (size_t i = 0; i < tr->neurons; i++) {
                    float w;
                    caimg_sim_soma_eval(&tr->soma[i], y - uy, x - ux, &w, NULL);
                    v += w * amp[i];
                }
                ck_assert_msg(fabs(v - f[y * 96 + x]) < 1e-3 * (1 + v), "pixel (%zu,%zu): %g vs %g",
                              y, x, f[y * 96 + x], v);
            }
        free(amp);
    }
    /* Each soma appears where the displacement puts it: the centroid of its
     * light within 0.1 px (the field also stretches a soma a little, which
     * moves its centroid by a few hundredths). */
    caimg_sim_render(s, 7, CAIMG_SIM_PHOTONS | CAIMG_SIM_NO_NEUROPIL, f);
    caimg_sim_render(s, 7, CAIMG_SIM_PHOTONS | CAIMG_SIM_NO_NEUROPIL | CAIMG_SIM_STILL, g);
    size_t tested = 0;
    for (size_t i = 0; i < tr->neurons; i++) {
        const caimg_sim_soma *so = &tr->soma[i];
        if (touches_other(tr, i) || so->cy < 12 || so->cx < 12 || so->cy > 83 || so->cx > 83) continue;
        /* The displacement is defined at frame pixels, so the soma lands at
         * the fixed point p = c + u(p), not at c + u(c). */
        double dy = 0, dx = 0;
        for (int it = 0; it < 50; it++)
            caimg_sim_displacement(s, 7, so->cy + dy, so->cx + dx, &dy, &dx);
        double a[2][3] = {{0}}, rad = so->ra + 2.5;
        for (int w = 0; w < 2; w++) {
            const float *img = w ? g : f;
            double cy = so->cy + (w ? 0 : dy), cx = so->cx + (w ? 0 : dx);
            for (long y = (long)floor(cy - rad); y <= (long)ceil(cy + rad); y++)
                for (long x = (long)floor(cx - rad); x <= (long)ceil(cx + rad); x++) {
                    if (y < 0 || x < 0 || y >= 96 || x >= 96 || hypot(y - cy, x - cx) > rad) continue;
                    double v = img[y * 96 + x];
                    a[w][0] += v;
                    a[w][1] += v * y;
                    a[w][2] += v * x;
                }
        }
        double my = a[0][1] / a[0][0] - a[1][1] / a[1][0], mx = a[0][2] / a[0][0] - a[1][2] / a[1][0];
        if (a[0][0] <= 0 || a[1][0] <= 0) continue;
        tested++;
        ck_assert_msg(fabs(my - dy) < 0.1 && fabs(mx - dx) < 0.1,
                      "neuron %zu moved (%g, %g), displacement (%g, %g)", i, my, mx, dy, dx);
    }
    ck_assert_uint_gt(tested, 2);
    free(f);
    free(g);
    caimg_sim_free(s);
}
END_TEST

START_TEST(bidirectional_offset)
{
    caimg_sim_params p;
    small_params(&p, 48, 64, 2);
    p.bidi = 2;
    caimg_sim *s = must_alloc(&p);
    float *f = frame_buf(s, 1), *g = frame_buf(s, 1);
    caimg_sim_render(s, 1, CAIMG_SIM_PHOTONS, f);
    caimg_sim_render(s, 1, CAIMG_SIM_PHOTONS | CAIMG_SIM_STILL, g);
    for (size_t y = 0; y < 48; y++)
        for (size_t x = 2; x < 64; x++) {
            double a = f[y * 64 + x], b = (y & 1) ? g[y * 64 + x - 2] : g[y * 64 + x];
            ck_assert_msg(fabs(a - b) < 1e-4 * fabs(b) + 1e-6, "row %zu col %zu: %g vs %g", y, x, a, b);
        }
    ck_assert_double_eq(caimg_sim_get_truth(s)->bidi, 2.0);
    free(f);
    free(g);
    caimg_sim_free(s);
}
END_TEST

/* ---- neurons ------------------------------------------------------------------ */

START_TEST(footprint_sizes_and_overlap)
{
    caimg_sim_params p;
    small_params(&p, 256, 256, 10);
    p.neurons = 150;
    p.diameter = 12;
    p.diameter_sd = 1.5;
    p.overlap = 0;
    caimg_sim *s = must_alloc(&p);
    const caimg_sim_truth *tr = caimg_sim_get_truth(s);
    size_t N = tr->neurons;
    ck_assert_uint_eq(N, 150);
    /* Equivalent diameter of the half-maximum body outline: mean within 3 %
     * (the standard error is 0.1 px), s.d. within 30 % of the request. */
    double sum = 0, ss = 0;
    for (size_t i = 0; i < N; i++) {
        double area = 0;
        for (int64_t k = tr->pix_start[i]; k < tr->pix_start[i + 1]; k++) area += tr->pix_body[k] >= 0.5f;
        double d = 2 * sqrt(area / M_PI);
        sum += d;
        ss += d * d;
    }
    double mean = sum / N, sd = sqrt(ss / N - mean * mean);
    ck_assert_msg(fabs(mean / 12.0 - 1) < 0.03, "mean diameter %g", mean);
    ck_assert_msg(fabs(sd / 1.5 - 1) < 0.3, "diameter s.d. %g", sd);
    /* overlap = 0: no pixel inside two half-maximum outlines. */
    int *cnt = calloc(256 * 256, sizeof(int));
    for (size_t i = 0; i < N; i++)
        for (int64_t k = tr->pix_start[i]; k < tr->pix_start[i + 1]; k++)
            if (tr->pix_body[k] >= 0.5f) cnt[tr->pix_index[2 * k] * 256 + tr->pix_index[2 * k + 1]]++;
    for (size_t i = 0; i < 256 * 256; i++) ck_assert_int_le(cnt[i], 1);
    /* Nuclei are dimmer than the cytosol. */
    for (size_t i = 0; i < N; i++) {
        float w, b;
        caimg_sim_soma_eval(&tr->soma[i], tr->soma[i].cy, tr->soma[i].cx, &w, &b);
        ck_assert(b == 1.0f && w < 0.5f);
    }
    caimg_sim_free(s);

    /* overlap = 0.4 in a dense field: the distance rule holds for every
     * pair, and some somata do share pixels. */
    p.overlap = 0.4;
    p.neurons = 500;
    s = must_alloc(&p);
    tr = caimg_sim_get_truth(s);
    int shared = 0;
    for (size_t i = 0; i < tr->neurons; i++)
        for (size_t j = i + 1; j < tr->neurons; j++) {
            const caimg_sim_soma *a = &tr->soma[i], *b = &tr->soma[j];
            double d = hypot(a->cy - b->cy, a->cx - b->cx);
            ck_assert(d >= 0.6 * (a->ra + b->ra) - 1e-9);
        }
    memset(cnt, 0, 256 * 256 * sizeof(int));
    for (size_t i = 0; i < tr->neurons; i++)
        for (int64_t k = tr->pix_start[i]; k < tr->pix_start[i + 1]; k++)
            if (tr->pix_body[k] >= 0.5f) cnt[tr->pix_index[2 * k] * 256 + tr->pix_index[2 * k + 1]]++;
    for (size_t i = 0; i < 256 * 256; i++) shared += cnt[i] > 1;
    ck_assert_int_gt(shared, 0);
    free(cnt);
    caimg_sim_free(s);
}
END_TEST

START_TEST(neuropil_truth_is_exact)
{
    caimg_sim_params p;
    small_params(&p, 80, 80, 60);
    p.np_sd = 0.2;
    caimg_sim *s = must_alloc(&p);
    const caimg_sim_truth *tr = caimg_sim_get_truth(s);
    float *f = frame_buf(s, 1);
    for (size_t t = 0; t < 60; t += 11) {
        caimg_sim_render(s, t, CAIMG_SIM_PHOTONS | CAIMG_SIM_STILL | CAIMG_SIM_NO_SOMATA, f);
        for (size_t i = 0; i < tr->neurons; i++) {
            double v = fp_mean(tr, i, f), w = tr->neuropil[i * 60 + t];
            ck_assert_msg(fabs(v - w) < 2e-4 * v, "neuron %zu frame %zu: %g vs %g", i, t, v, w);
        }
    }
    free(f);
    caimg_sim_free(s);

    /* Coupled to the population: neuropil follows the mean somatic dF/F. */
    small_params(&p, 80, 80, 1500);
    p.np_sd = 0.0;
    p.np_coupling = 1.0;
    p.rate = 2;
    p.bleach = 0;
    p.drift_sd = 0;
    s = must_alloc(&p);
    tr = caimg_sim_get_truth(s);
    double sxy = 0, sxx = 0, syy = 0, mx = 0, my = 0;
    size_t T = 1500, N = tr->neurons;
    for (size_t t = 0; t < T; t++) {
        double c = 0;
        for (size_t i = 0; i < N; i++) c += tr->calcium[i * T + t];
        mx += c / N;
        my += tr->neuropil[t];
    }
    mx /= T;
    my /= T;
    for (size_t t = 0; t < T; t++) {
        double c = 0;
        for (size_t i = 0; i < N; i++) c += tr->calcium[i * T + t];
        double a = c / N - mx, b = tr->neuropil[t] - my;
        sxy += a * b;
        sxx += a * a;
        syy += b * b;
    }
    ck_assert_msg(sxy / sqrt(sxx * syy) > 0.99, "neuropil vs population r = %g", sxy / sqrt(sxx * syy));
    caimg_sim_free(s);
}
END_TEST

/* ---- stimuli ----------------------------------------------------------------- */

START_TEST(schedule_is_correct)
{
    caimg_sim_params p;
    small_params(&p, 64, 64, 0);
    p.stim_mode = CAIMG_SIM_STIM_GRATINGS;
    p.grating_ori = 4;
    p.grating_sf_n = 1;
    p.grating_phase = 2;
    p.stim_repeats = 5;
    caimg_sim *s = must_alloc(&p);
    const caimg_sim_truth *tr = caimg_sim_get_truth(s);
    size_t S = tr->stimuli->n, T = tr->frames, N = tr->neurons;
    ck_assert_uint_eq(S, 8);
    ck_assert_uint_eq(tr->npres, 40);
    /* 1 s blank, then 40 x (0.5 s + 0.5 s) at 30 Hz, plus the 50 ms latency. */
    ck_assert_uint_eq(T, 30 + 40 * 30 + 2);
    int *count = calloc(S, sizeof(int));
    for (size_t k = 0; k < tr->npres; k++) {
        const caimg_presentation *pr = &tr->schedule[k];
        ck_assert_uint_eq(pr->onset, 30 + k * 30);
        ck_assert_uint_eq(pr->duration, 15);
        ck_assert_uint_lt(pr->stimulus, S);
        count[pr->stimulus]++;
        /* Every block of S presentations is a permutation. */
        if (k % S == S - 1) {
            for (size_t j = 0; j < S; j++) ck_assert_int_eq(count[j], (int)(k / S + 1));
        }
        /* The truth rate follows the schedule after the latency. */
        for (size_t i = 0; i < N; i++) {
            ck_assert_float_eq(tr->rate[i * T + pr->onset + 2], tr->response[pr->stimulus * N + i]);
            ck_assert_float_eq(tr->rate[i * T + pr->onset + 2 + 14], tr->response[pr->stimulus * N + i]);
            ck_assert_float_eq(tr->rate[i * T + pr->onset + 2 + 15], tr->rf[i].baseline);
        }
    }
    /* Random order differs between blocks (8! orders: the chance that all
     * five blocks agree is negligible). */
    int differ = 0;
    for (size_t k = 0; k < S; k++) differ |= tr->schedule[k].stimulus != tr->schedule[S + k].stimulus;
    ck_assert(differ);
    free(count);
    caimg_sim_free(s);

    /* A schedule longer than the recording is an error naming the frames. */
    p.frames = 100;
    ck_assert_ptr_null(caimg_sim_alloc(&p));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "needs 1232 frames"));
}
END_TEST

START_TEST(responses_follow_receptive_fields)
{
    caimg_sim_params p;
    small_params(&p, 96, 96, 0);
    p.stim_mode = CAIMG_SIM_STIM_PINK;
    p.stim_n = 20;
    p.stim_repeats = 20;
    p.frac_responsive = 1;
    p.rate_mod_sd = 0.3;
    caimg_sim *s = must_alloc(&p);
    const caimg_sim_truth *tr = caimg_sim_get_truth(s);
    size_t S = 20, N = tr->neurons, T = tr->frames;
    /* Mean spike count per presentation against the expected one, pooled
     * over neurons: with 20 repeats the sampling noise is small against
     * the spread of expected responses. */
    double *cnt = calloc(S * N, sizeof(double));
    for (size_t k = 0; k < tr->npres; k++) {
        const caimg_presentation *pr = &tr->schedule[k];
        for (size_t i = 0; i < N; i++)
            for (size_t t = pr->onset + 2; t < pr->onset + 2 + pr->duration; t++)
                cnt[pr->stimulus * N + i] += tr->spikes[i * T + t] / 20.0;
    }
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0, n = 0;
    for (size_t k = 0; k < S * N; k++) {
        double e = tr->response[k] * 15 / 30.0, o = cnt[k];
        sx += e;
        sy += o;
        sxx += e * e;
        syy += o * o;
        sxy += e * o;
        n++;
    }
    double r = (sxy - sx * sy / n) / sqrt((sxx - sx * sx / n) * (syy - sy * sy / n));
    ck_assert_msg(r > 0.9, "observed vs expected responses r = %g", r);
    /* The set spans each neuron's range: its best image evokes peak-ish rates. */
    for (size_t i = 0; i < N; i++) {
        double best = 0;
        for (size_t k = 0; k < S; k++) best = fmax(best, tr->response[k * N + i]);
        ck_assert(best >= tr->rf[i].baseline);
        double check = caimg_rf_rate(&tr->rf[i], tr->stimuli->images, tr->stimuli->h, tr->stimuli->w);
        ck_assert_double_eq_tol(check, tr->response[i], 1e-3 * (1 + check));
    }
    free(cnt);
    caimg_sim_free(s);
}
END_TEST

START_TEST(receptive_field_models)
{
    double sf[1] = {4};
    caimg_stimset *g = caimg_stimset_gratings(32, 32, 8, sf, 1, 4, 1.0);
    ck_assert_ptr_nonnull(g);
    ck_assert_uint_eq(g->n, 32);
    caimg_rf rf = {CAIMG_RF_SIMPLE, 15.5, 15.5, 4.0, 1.0, 8.0, M_PI / 4, 0.0, 2.0, 1.0, 0.0};
    /* Simple cell: strongest for its orientation, near silent orthogonally,
     * and phase-selective. */
    double best = 0, orth = 0, minph = 1e30, maxph = 0;
    for (size_t k = 0; k < g->n; k++) {
        double th, f, ph;
        caimg_stimset_grating_params(k, 8, sf, 1, 4, &th, &f, &ph);
        double r = caimg_rf_rate(&rf, g->images + k * 32 * 32, 32, 32);
        if (fabs(th - M_PI / 4) < 1e-9) {
            best = fmax(best, r);
            minph = fmin(minph, r);
            maxph = fmax(maxph, r);
        }
        if (fabs(th - 3 * M_PI / 4) < 1e-9) orth = fmax(orth, r);
    }
    ck_assert(best > 0 && orth < 0.05 * best);
    ck_assert(minph < 0.2 * maxph);
    /* Complex cell: the same orientation preference, phase-invariant. */
    rf.type = CAIMG_RF_COMPLEX;
    minph = 1e30;
    maxph = 0;
    for (size_t k = 0; k < g->n; k++) {
        double th, f, ph;
        caimg_stimset_grating_params(k, 8, sf, 1, 4, &th, &f, &ph);
        if (fabs(th - M_PI / 4) > 1e-9) continue;
        double r = caimg_rf_rate(&rf, g->images + k * 32 * 32, 32, 32);
        minph = fmin(minph, r);
        maxph = fmax(maxph, r);
    }
    ck_assert_msg(minph > 0.9 * maxph, "complex cell phase modulation %g..%g", minph, maxph);
    caimg_stimset_free(g);

    /* 1/f images: grey mean, requested RMS contrast (clipping trims a little),
     * and a spectrum falling as 1/f^alpha. */
    caimg_stimset *pk = caimg_stimset_pink(8, 64, 64, 1.0, 0.3, 5);
    ck_assert_ptr_nonnull(pk);
    for (size_t k = 0; k < 8; k++) {
        double m = 0, ss = 0;
        for (size_t i = 0; i < 64 * 64; i++) m += pk->images[k * 4096 + i];
        m /= 4096;
        for (size_t i = 0; i < 64 * 64; i++) ss += pow(2 * (pk->images[k * 4096 + i] - m), 2);
        ck_assert(fabs(m - 0.5) < 0.01);
        ck_assert_msg(fabs(sqrt(ss / 4096) - 0.3) < 0.02, "RMS contrast %g", sqrt(ss / 4096));
    }
    caimg_stimset_free(pk);
    ck_assert_ptr_null(caimg_stimset_gratings(8, 8, 0, sf, 1, 1, 1.0));
}
END_TEST

/* ---- bad parameters ------------------------------------------------------------ */

START_TEST(bad_parameters)
{
    struct {
        const char *field, *expect;
    } cases[] = {
        {"height", "field of view"}, {"overlap", "overlap"}, {"indicator", "unknown indicator"},
        {"crowded", "too crowded"}, {"fs", "frame rate"}, {"ar", "ar_order"},
        {"preset", "known: typical, hard"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        caimg_sim_params p;
        small_params(&p, 64, 64, 10);
        if (!strcmp(cases[k].field, "height")) p.height = 0;
        if (!strcmp(cases[k].field, "overlap")) p.overlap = 0.95;
        if (!strcmp(cases[k].field, "indicator")) p.indicator = "gcamp99";
        if (!strcmp(cases[k].field, "crowded")) {
            p.neurons = 400;
            p.overlap = 0;
        }
        if (!strcmp(cases[k].field, "fs")) p.fs = NAN;
        if (!strcmp(cases[k].field, "ar")) p.ar_order = 3;
        if (!strcmp(cases[k].field, "preset")) {
            ck_assert_int_eq(caimg_sim_params_preset(&p, "easy"), CAIMG_EINVAL);
        } else {
            caimg_clear_error();
            ck_assert_ptr_null(caimg_sim_alloc(&p));
        }
        ck_assert_msg(strstr(caimg_errmsg(), cases[k].expect) != NULL, "%s: message '%s'",
                      cases[k].field, caimg_errmsg());
    }
    caimg_sim_params p;
    small_params(&p, 64, 64, 10);
    caimg_sim *s = must_alloc(&p);
    float *f = frame_buf(s, 1);
    ck_assert_int_eq(caimg_sim_frame(s, 10, f), CAIMG_EINVAL);
    ck_assert_int_eq(caimg_sim_frames(s, 5, 6, f), CAIMG_EINVAL);
    free(f);
    caimg_sim_free(s);
    caimg_sim_free(NULL);
}
END_TEST

START_TEST(presets)
{
    caimg_sim_params p;
    caimg_sim_params_init(&p);
    ck_assert_int_eq(caimg_sim_params_preset(&p, "hard"), 0);
    p.height = p.width = 128;
    p.frames = 20;
    caimg_sim *h = must_alloc(&p);
    caimg_sim_params_init(&p);
    ck_assert_int_eq(caimg_sim_params_preset(&p, "typical"), 0);
    p.height = p.width = 128;
    p.frames = 20;
    caimg_sim *t = must_alloc(&p);
    /* The hard field is denser and dimmer. */
    ck_assert_uint_gt(caimg_sim_neurons(h), 2 * caimg_sim_neurons(t));
    const caimg_sim_truth *th = caimg_sim_get_truth(h), *tt = caimg_sim_get_truth(t);
    ck_assert(th->photons < tt->photons);
    caimg_sim_free(h);
    caimg_sim_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("simulate");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, same_seed_same_bytes);
    tcase_add_test(tc, thread_count_independent);
    tcase_add_test(tc, spike_rates_are_poisson);
    tcase_add_test(tc, calcium_follows_ar_model);
    tcase_add_test(tc, indicator_kinetics_match_literature);
    tcase_add_test(tc, saturation_is_hill);
    tcase_add_test(tc, snr_knob_and_noise_model);
    tcase_add_test(tc, poisson_sampler);
    tcase_add_test(tc, shift_distribution);
    tcase_add_test(tc, shift_sign_convention);
    tcase_add_test(tc, deformation_field);
    tcase_add_test(tc, bidirectional_offset);
    tcase_add_test(tc, footprint_sizes_and_overlap);
    tcase_add_test(tc, neuropil_truth_is_exact);
    tcase_add_test(tc, schedule_is_correct);
    tcase_add_test(tc, responses_follow_receptive_fields);
    tcase_add_test(tc, receptive_field_models);
    tcase_add_test(tc, bad_parameters);
    tcase_add_test(tc, presets);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
