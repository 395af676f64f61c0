/* deconv.c -- OASIS spike deconvolution with AR(1) and AR(2) calcium models.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Notation used throughout: the trace y (centred in the workspace), the
 * baseline b, the calcium c, spikes s = G c with G the lower-triangular
 * banded AR matrix, and the penalty lambda * sum(s) = lambda * w'c with
 * w = G'1.  For a fixed baseline and lambda, the penalized problem is the
 * projection of z = y - b - lambda w onto the cone {c : G c >= 0}, which
 * is what OASIS computes.  The set of frames allowed a nonzero spike (the
 * "active set", pool starts in OASIS) fixes c as the orthogonal projection
 * P z onto a linear subspace, so for a fixed active set everything of
 * interest is affine or quadratic in (b, lambda).  That gives exact Newton
 * steps for b and lambda between OASIS passes (each pass may change the
 * active set; we stop when it no longer does).
 */
#include <config.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "caimg/deconv.h"
#include "caimg/error.h"
#include "deconv_lanes.h"
#include "internal.h"
#include "tsutil.h"

/* ======================================================================
 * Names, presets, AR coefficients.
 * ====================================================================== */

static const char *const method_names[] = {"constrained", "thresholded", "penalized", "auto"};

int caimg_deconv_method_from_name(const char *name)
{
    for (int i = 0; name && i < 4; i++)
        if (strcmp(name, method_names[i]) == 0) return i;
    return -1;
}

const char *caimg_deconv_method_name(caimg_deconv_method m)
{
    return (unsigned)m < 4 ? method_names[m] : NULL;
}

static const char *const baseline_names[] = {"mean", "nonneg", "fixed", "mode"};

int caimg_deconv_baseline_from_name(const char *name)
{
    for (int i = 0; name && i < 4; i++)
        if (strcmp(name, baseline_names[i]) == 0) return i;
    return -1;
}

const char *caimg_deconv_baseline_name(caimg_deconv_baseline b)
{
    return (unsigned)b < 4 ? baseline_names[b] : NULL;
}

/* Decay time constants are what deconvolution needs; for the GCaMP6
 * variants we use the values the Suite2p documentation recommends for its
 * deconvolution (tau 0.7 / 1.0 / 1.25 s), which fold in the in-vivo
 * broadening of single-spike transients.  Rise constants are rounded from
 * the rise times reported in the indicator papers; they matter only for
 * AR(2).  All are starting points: estimating the decay per neuron (the
 * default) is better when the data allow it. */
static const caimg_indicator indicators[] = {
    {"GCaMP6f", 0.04, 0.7, "decay: Suite2p docs; rise: Chen et al. 2013 (Nature 499:295)"},
    {"GCaMP6m", 0.06, 1.0, "decay: Suite2p docs; rise: Chen et al. 2013"},
    {"GCaMP6s", 0.10, 1.25, "decay: Suite2p docs; rise: Chen et al. 2013"},
    {"GCaMP7f", 0.03, 0.6, "Dana et al. 2019 (Nat Methods 16:649), jGCaMP7f faster than 6f"},
    {"GCaMP7s", 0.08, 1.2, "Dana et al. 2019, jGCaMP7s"},
    {"GCaMP8f", 0.01, 0.2, "Zhang et al. 2023 (Nature 615:884), jGCaMP8f"},
    {"GCaMP8m", 0.01, 0.3, "Zhang et al. 2023, jGCaMP8m"},
    {"GCaMP8s", 0.02, 0.6, "Zhang et al. 2023, jGCaMP8s"},
    {"OGB-1", 0.01, 0.7, "Oregon Green BAPTA-1 AM in vivo, e.g. Grewe et al. 2010 (Nat Methods 7:399)"},
};

const caimg_indicator *caimg_indicator_find(const char *name)
{
    if (!name) return NULL;
    /* Accept "jGCaMP8f" for "GCaMP8f" and "OGB1" for "OGB-1". */
    if ((name[0] == 'j' || name[0] == 'J') && strncasecmp(name + 1, "gcamp", 5) == 0) name++;
    for (size_t i = 0; i < sizeof indicators / sizeof *indicators; i++) {
        if (strcasecmp(indicators[i].name, name) == 0) return &indicators[i];
        if (strcasecmp(name, "OGB1") == 0 && strcmp(indicators[i].name, "OGB-1") == 0)
            return &indicators[i];
    }
    return NULL;
}

const caimg_indicator *caimg_indicators(size_t *n)
{
    if (n) *n = sizeof indicators / sizeof *indicators;
    return indicators;
}

int caimg_ar_check(const double g[2], int p)
{
    if (p != 1 && p != 2)
        return caimg_error(CAIMG_EINVAL, "AR order must be 1 or 2 (got %d)", p);
    if (!isfinite(g[0]) || (p == 2 && !isfinite(g[1])))
        return caimg_error(CAIMG_EINVAL, "AR coefficients are not finite");
    if (p == 1 || g[1] == 0) {
        if (!(g[0] >= 0 && g[0] < 1))
            return caimg_error(CAIMG_EINVAL, "AR(1) coefficient g = %g is not in [0, 1): "
                               "the calcium model would be unstable", g[0]);
        return CAIMG_OK;
    }
    double disc = g[0] * g[0] + 4 * g[1];
    if (disc < 0)
        return caimg_error(CAIMG_EINVAL, "AR(2) coefficients (%g, %g) oscillate (complex roots)",
                           g[0], g[1]);
    double d = (g[0] + sqrt(disc)) / 2, r = (g[0] - sqrt(disc)) / 2;
    if (!(d < 1) || !(r >= 0))
        return caimg_error(CAIMG_EINVAL, "AR(2) coefficients (%g, %g) have roots %g and %g, "
                           "outside [0, 1): the calcium model would be unstable", g[0], g[1], d, r);
    return CAIMG_OK;
}

int caimg_ar_from_tau(double tau_decay, double tau_rise, double fs, int p, double g[2])
{
    if (p != 1 && p != 2)
        return caimg_error(CAIMG_EINVAL, "AR order must be 1 or 2 (got %d)", p);
    if (!(fs > 0) || !isfinite(fs))
        return caimg_error(CAIMG_EINVAL, "the frame rate must be positive (got %g Hz)", fs);
    if (!(tau_decay > 0) || !isfinite(tau_decay))
        return caimg_error(CAIMG_EINVAL, "decay time %g s is not a positive time: the calcium "
                           "model would be unstable", tau_decay);
    double d = exp(-1.0 / (tau_decay * fs));
    if (!(d < 1))
        return caimg_error(CAIMG_EINVAL, "decay time %g s is too long for %g Hz: the calcium "
                           "model would be unstable (g rounds to 1)", tau_decay, fs);
    double r = 0;
    if (p == 2) {
        if (!(tau_rise >= 0) || !isfinite(tau_rise))
            return caimg_error(CAIMG_EINVAL, "rise time %g s is not a non-negative time", tau_rise);
        r = tau_rise > 0 ? exp(-1.0 / (tau_rise * fs)) : 0;
        if (!(r < 1))
            return caimg_error(CAIMG_EINVAL, "rise time %g s is too long for %g Hz", tau_rise, fs);
    }
    g[0] = d + r;
    g[1] = -d * r;
    return CAIMG_OK;
}

int caimg_ar_to_tau(const double g[2], int p, double fs, double *tau_decay, double *tau_rise)
{
    if (caimg_ar_check(g, p)) return CAIMG_EINVAL;
    double d = g[0], r = 0;
    if (p == 2 && g[1] != 0) {
        double disc = sqrt(g[0] * g[0] + 4 * g[1]);
        d = (g[0] + disc) / 2;
        r = (g[0] - disc) / 2;
    }
    *tau_decay = d > 0 ? -1.0 / (fs * log(d)) : 0;
    if (tau_rise) *tau_rise = r > 0 ? -1.0 / (fs * log(r)) : 0;
    return CAIMG_OK;
}

/* The vector loops below are also built for AVX2 where the compiler can,
 * and the better version is picked when the library is loaded; the
 * results are the same either way (no fused multiply-adds). */
#define ar_load4(p) (*(const caimg_v4du *)(p))
typedef int64_t ar_v4i __attribute__((vector_size(32)));   /* comparison masks */
typedef int32_t ar_v4s __attribute__((vector_size(16)));   /* bin numbers */
typedef double ar_v2 __attribute__((vector_size(16)));
typedef double ar_v2u __attribute__((vector_size(16), aligned(8), may_alias));
typedef int64_t ar_v2i __attribute__((vector_size(16)));

/* The comparison mask m of a pair as bits (bit 0 for lane 0). */
static inline unsigned ar_bits2(ar_v2i m)
{
#if defined(__SSE2__)
    return (unsigned)__builtin_ia32_movmskpd((ar_v2)m);
#else
    return (unsigned)(m[0] & 1) | (unsigned)(m[1] & 2);
#endif
}

/* Raw lagged products sum_t y[t] y[t+k], k = 0..L (L < 16), each in four
 * lanes: lane m sums the products at t = m, m + 4, m + 8, ... over the
 * blocks of four that fit, then lane 0 takes the remaining frames one by
 * one (four independent chains per lag instead of one).  The first eight
 * lags are computed together in 4-wide vectors, which reads y once for
 * all of them; every lane still adds the same products in the same order
 * (separate multiply and add, no fused rounding), so the sums do not
 * depend on the vector width the function was built for. */
CAIMG_SIMD_CLONES
static void lag_products(const double *y, size_t T, size_t L, double acc[16][4], double *sum)
{
    /* The sum of y too, in four lanes: one running sum would be a chain
     * of T dependent additions, slower than all the products. */
    caimg_v4d s4 = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= T; i += 4) s4 += ar_load4(y + i);
    double tot = (s4[0] + s4[1]) + (s4[2] + s4[3]);
    for (; i < T; i++) tot += y[i];
    *sum = tot;
    caimg_v4d a[16];
    for (size_t k = 0; k < 16; k++) a[k] = (caimg_v4d){0, 0, 0, 0};
    size_t t = 0;
    if (T >= 12) {
        caimg_v4d a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3], a4 = a[4], a5 = a[5], a6 = a[6],
              a7 = a[7];
        for (; t + 4 <= T - 7; t += 4) {
            caimg_v4d x = ar_load4(y + t);
            a0 += x * x;
            a1 += x * ar_load4(y + t + 1);
            a2 += x * ar_load4(y + t + 2);
            a3 += x * ar_load4(y + t + 3);
            a4 += x * ar_load4(y + t + 4);
            a5 += x * ar_load4(y + t + 5);
            a6 += x * ar_load4(y + t + 6);
            a7 += x * ar_load4(y + t + 7);
        }
        a[0] = a0; a[1] = a1; a[2] = a2; a[3] = a3;
        a[4] = a4; a[5] = a5; a[6] = a6; a[7] = a7;
    }
    for (size_t k = 0; k <= L; k++) {
        size_t n = T - k, tt = k < 8 ? t : 0;
        caimg_v4d ak = a[k];
        for (; tt + 4 <= n; tt += 4) ak += ar_load4(y + tt) * ar_load4(y + tt + k);
        for (int m = 0; m < 4; m++) acc[k][m] = ak[m];
        for (; tt < n; tt++) acc[k][0] += y[tt] * y[tt + k];
    }
}

int caimg_ar_estimate(const double *y, size_t T, int p, double sn, int lags,
                      double fudge, double g[2])
{
    if (p != 1 && p != 2) return CAIMG_EINVAL;
    if (lags < 0) lags = 0;
    size_t L = (size_t)p + (size_t)lags;
    if (T < 2 * L + 2) return CAIMG_EFAIL;
    double acov[16];
    if (L >= sizeof acov / sizeof *acov) L = sizeof acov / sizeof *acov - 1;
    /* Raw lagged products with four independent accumulators (a single
     * running sum is one long chain of dependent additions), then the
     * mean is taken out: sum (y_t - m)(y_t+k - m) = sum y_t y_t+k
     * - m (sum of the two overlapping stretches) + (T - k) m^2. */
    double acc[16][4], tot;
    lag_products(y, T, L, acc, &tot);
    double mean = tot / (double)T;
    double head = 0, tail = 0;   /* sums of the first and last k samples */
    for (size_t k = 0; k <= L; k++) {
        size_t n = T - k;
        double a0 = acc[k][0], a1 = acc[k][1], a2 = acc[k][2], a3 = acc[k][3];
        if (k > 0) {
            head += y[k - 1];
            tail += y[T - k];
        }
        double s_lo = tot - tail, s_hi = tot - head;
        acov[k] = ((a0 + a1) + (a2 + a3) - mean * (s_lo + s_hi) + (double)n * mean * mean) /
                  (double)T;
    }
    /* The noise is white, so it adds sn^2 at lag 0 only. */
    double a0 = acov[0] - sn * sn;
    double d, r = 0;
    if (p == 1) {
        double num = 0, den = 0;
        for (size_t k = 1; k <= L; k++) {
            double prev = k == 1 ? a0 : acov[k - 1];
            num += acov[k] * prev;
            den += prev * prev;
        }
        if (!(den > 0)) return CAIMG_EFAIL;
        d = num / den;
    } else {
        /* Least squares for acov[k] = g1 a(k-1) + g2 a(|k-2|), k = 1..L,
         * where a(0) is the noise-free lag-0 value. */
        double s11 = 0, s12 = 0, s22 = 0, r1 = 0, r2 = 0;
        for (size_t k = 1; k <= L; k++) {
            double x1 = k - 1 == 0 ? a0 : acov[k - 1];
            size_t j = k >= 2 ? k - 2 : 2 - k;
            double x2 = j == 0 ? a0 : acov[j];
            s11 += x1 * x1;
            s12 += x1 * x2;
            s22 += x2 * x2;
            r1 += x1 * acov[k];
            r2 += x2 * acov[k];
        }
        double det = s11 * s22 - s12 * s12;
        if (!(fabs(det) > 1e-300)) return CAIMG_EFAIL;
        double g1 = (r1 * s22 - r2 * s12) / det, g2 = (s11 * r2 - s12 * r1) / det;
        double disc = g1 * g1 + 4 * g2;
        if (disc < 0) return CAIMG_EFAIL;
        d = (g1 + sqrt(disc)) / 2;
        r = (g1 - sqrt(disc)) / 2;
        /* A negative second root is noise in the estimate of a rise that
         * is faster than one frame: no rise. */
        if (r < 0) r = 0;
    }
    if (!(d > 0 && d < 1) || !isfinite(d)) return CAIMG_EFAIL;
    if (fudge > 0) {
        d *= fudge;
        r *= fudge;
    }
    if (!(d < 1)) return CAIMG_EFAIL;
    g[0] = d + r;
    g[1] = -d * r;
    return CAIMG_OK;
}

/* ======================================================================
 * Plans and workspaces.
 * ====================================================================== */

void caimg_deconv_params_init(caimg_deconv_params *p, double fs)
{
    memset(p, 0, sizeof *p);
    p->fs = fs;
    p->p = 2;
    p->method = CAIMG_DECONV_THRESHOLDED;
    p->refine_g = 1;
    p->lags = 5;
    p->fudge = 1;
    p->tau_min = 0.05;
    p->tau_max = 5;
    p->fallback_decay = 1.0;
    p->fallback_rise = 0.05;
    p->noise_method = CAIMG_NOISE_MEAN;
    p->noise_band[0] = 0.25;
    p->noise_band[1] = 0.5;
    p->smin_z = 3;
    p->lambda = CAIMG_DECONV_LAMBDA_AUTO;
    p->lambda_z = 2;
    p->baseline = CAIMG_DECONV_B_MODE;
    p->max_iter = 20;
}

struct caimg_deconv_plan {
    caimg_deconv_params p;
    size_t T;
    int have_g;              /* kinetics given: g_fixed used for every trace */
    double g_fixed[2];
    double g_fallback[2];
    caimg_noise_plan *noise;
};

/* An OASIS pool: frames [t, t+l) share one impulse response of value v at
 * the start.  AR(1) needs the weight w = sum g^2k and g^l; AR(2) the
 * calcium just before the pool (cp), the calcium it predicts for the next
 * frame and two sums of the data (see ar2_pools).  AR(1) pools are stored
 * as separate arrays (structure of arrays): the pass reads a pool right
 * after writing it, and scalar arrays keep those loads from being merged
 * into wide loads that stall on store forwarding.  The AR(2) pass keeps a
 * record per pool during the pass (its fields are all read and written
 * one at a time) and leaves value, cp, start and length in pv, qcp, pt
 * and pl. */


struct caimg_deconv_ws {
    size_t T;
    double *y;          /* centred working copy of the trace */
    double *c, *s;      /* results */
    double *gp;         /* AR(1): g^k, k = 0..T */
    double g_cached[2];
    int p_cached;
    double *h11, *h12;  /* AR(2) impulse responses, nonzero below K */
    size_t K;
    double rd, rr;      /* AR(2) roots, rd > rr */
    int geo;            /* roots distinct enough for O(1) merges */
    double *pv, *pw, *pgl;          /* AR(1) pools: value, weight, g^l */
    uint32_t *pt, *pl;              /* start and length (both orders) */
    double *qcp;                    /* AR(2) pools: value in pv, calcium before */
    void *rec;                      /* AR(2) pools during the pass (ar2_pool) */
    double *kt;                     /* AR(2) per pool length: see prepare_kernel() */
    size_t npool, zend;
    int s_pools;        /* the last output's spikes lie at the pool starts pt[] */
    int s_sparse;       /* then the caller reads s there only: the rest is not zeroed */
    /* AR(2) exact polish. */
    unsigned char *spk; /* 1 where a spike is allowed (the active set's complement) */
    uint32_t *aidx;     /* frames with s = 0 enforced */
    size_t m;
    double *D, *L1, *L2, *rhs, *mu, *px1, *pxw, *z, *u2, *u3, *pzb;
    /* Outputs when the caller wants none, and estimation scratch. */
    double *oc, *os;
    double *work;       /* 2T + 6 * 512 */
    float *nwork;
    double boff;        /* the offset subtracted from the trace in y */
    caimg_ar1_lanes *lanes;  /* the segmented AR(1) pass, where the processor has it */
};

caimg_deconv_plan *caimg_deconv_plan_create(const caimg_deconv_params *p, size_t T)
{
    if (!(p->fs > 0) || !isfinite(p->fs)) {
        caimg_error(CAIMG_EINVAL, "deconv: the frame rate is unknown or not positive (%g Hz); "
                    "give it with --fs", p->fs);
        return NULL;
    }
    if (p->p != 1 && p->p != 2) {
        caimg_error(CAIMG_EINVAL, "deconv: AR order must be 1 or 2 (got %d)", p->p);
        return NULL;
    }
    if ((unsigned)p->method > CAIMG_DECONV_AUTO) {
        caimg_error(CAIMG_EINVAL, "deconv: unknown method %d", (int)p->method);
        return NULL;
    }
    if (T == 0 || T >= UINT32_MAX) {
        caimg_error(CAIMG_EINVAL, "deconv: traces of %zu frames are not supported", T);
        return NULL;
    }
    if (!(p->sn >= 0) || !isfinite(p->sn)) {
        caimg_error(CAIMG_EINVAL, "deconv: noise level %g is negative", p->sn);
        return NULL;
    }
    if (!(p->lambda >= 0 || p->lambda == CAIMG_DECONV_LAMBDA_AUTO) || !isfinite(p->lambda) ||
        !(p->lambda_z >= 0)) {
        caimg_error(CAIMG_EINVAL, "deconv: lambda %g is negative", p->lambda);
        return NULL;
    }
    if (!(p->smin >= 0) || !(p->smin_z >= 0)) {
        caimg_error(CAIMG_EINVAL, "deconv: s_min must not be negative");
        return NULL;
    }
    if (!(p->tau_min > 0 && p->tau_min < p->tau_max)) {
        caimg_error(CAIMG_EINVAL, "deconv: need 0 < tau_min < tau_max (got %g, %g)",
                    p->tau_min, p->tau_max);
        return NULL;
    }
    if (p->max_iter < 1) {
        caimg_error(CAIMG_EINVAL, "deconv: max_iter must be at least 1");
        return NULL;
    }
    if ((unsigned)p->baseline > CAIMG_DECONV_B_MODE) {
        caimg_error(CAIMG_EINVAL, "deconv: unknown baseline mode %d", (int)p->baseline);
        return NULL;
    }
    caimg_deconv_plan *plan = caimg_calloc(1, sizeof *plan, "a deconvolution plan");
    if (!plan) return NULL;
    plan->p = *p;
    plan->T = T;
    if (p->tau_decay != 0 || p->tau_rise != 0) {
        if (caimg_ar_from_tau(p->tau_decay, p->tau_rise, p->fs, p->p, plan->g_fixed)) {
            caimg_error_prefix("deconv");
            free(plan);
            return NULL;
        }
        plan->have_g = 1;
    }
    if (caimg_ar_from_tau(p->fallback_decay, p->p == 2 ? p->fallback_rise : 0, p->fs, p->p,
                          plan->g_fallback)) {
        caimg_error_prefix("deconv: fallback kinetics");
        free(plan);
        return NULL;
    }
    plan->noise = caimg_noise_plan_create(T, p->noise_band[0], p->noise_band[1], p->noise_method);
    if (!plan->noise) {
        caimg_error_prefix("deconv");
        free(plan);
        return NULL;
    }
    return plan;
}

void caimg_deconv_plan_destroy(caimg_deconv_plan *plan)
{
    if (!plan) return;
    caimg_noise_plan_destroy(plan->noise);
    free(plan);
}

void caimg_deconv_ws_free(caimg_deconv_ws *ws)
{
    if (!ws) return;
    free(ws->y);
    free(ws->rec);
    free(ws->pt);
    free(ws->spk);
    free(ws->aidx);
    caimg_noise_work_free(ws->nwork);
    caimg_ar1_lanes_free(ws->lanes);
    free(ws);
}

caimg_deconv_ws *caimg_deconv_ws_alloc(const caimg_deconv_plan *plan)
{
    size_t T = plan->T;
    caimg_deconv_ws *ws = caimg_calloc(1, sizeof *ws, "a deconvolution workspace");
    if (!ws) return NULL;
    ws->T = T;
    /* One block of doubles for everything of length ~T. */
    size_t nd = 31 * (T + 2) + 5 * 512 + CAIMG_TS_KDE_BINS;
    ws->y = caimg_malloc(nd, sizeof(double), "deconvolution scratch");
    ws->pt = caimg_malloc(2 * (T + 1), sizeof(uint32_t), "OASIS pools");
    ws->spk = caimg_malloc(T + 1, 1, "OASIS active set");
    ws->aidx = caimg_malloc(T + 1, sizeof(uint32_t), "OASIS active set");
    ws->rec = caimg_malloc(T + 1, 9 * sizeof(double), "OASIS pools");
    ws->nwork = caimg_noise_work_alloc(plan->noise);
    int lanes = T >= CAIMG_AR1_LANES_MIN_T && T <= INT32_MAX / 8 && !caimg_ar1_lanes_disabled &&
                caimg_ar1_lanes_available();
    if (lanes) ws->lanes = caimg_ar1_lanes_alloc(T);
    if (!ws->y || !ws->pt || !ws->spk || !ws->aidx || !ws->rec || !ws->nwork ||
        (lanes && !ws->lanes)) {
        caimg_deconv_ws_free(ws);
        return NULL;
    }
    double *q = ws->y + (T + 2);
    ws->c = q; q += T + 2;
    ws->s = q; q += T + 2;
    ws->gp = q; q += T + 2;
    ws->h11 = q; q += T + 2;
    ws->h12 = q; q += T + 2;
    ws->D = q; q += T + 2;
    ws->L1 = q; q += T + 2;
    ws->L2 = q; q += T + 2;
    ws->rhs = q; q += T + 2;
    ws->mu = q; q += T + 2;
    ws->px1 = q; q += T + 2;
    ws->pxw = q; q += T + 2;
    ws->z = q; q += T + 2;
    ws->u2 = q; q += T + 2;
    ws->u3 = q; q += T + 2;
    ws->pzb = q; q += T + 2;
    ws->oc = q; q += T + 2;
    ws->os = q; q += T + 2;
    ws->pv = q; q += T + 2;
    ws->pw = q; q += T + 2;
    ws->pgl = q; q += T + 2;
    ws->qcp = q; q += T + 2;
    ws->kt = q; q += 6 * (T + 2);
    ws->pl = ws->pt + (T + 1);
    ws->work = q;   /* 2 (T + 2) + 5 * 512 + KDE bins */
    ws->p_cached = 0;
    return ws;
}

/* Powers and impulse responses for g; recomputed only when g changes. */
static void prepare_kernel(caimg_deconv_ws *ws, int p, const double g[2], size_t T)
{
    if (ws->p_cached == p && ws->g_cached[0] == g[0] && ws->g_cached[1] == g[1]) return;
    if (p == 1) {
        double *gp = ws->gp;
        gp[0] = 1;
        /* Four interleaved chains shorten the multiply dependency. */
        if (T >= 1) gp[1] = g[0];
        if (T >= 2) gp[2] = g[0] * g[0];
        if (T >= 3) gp[3] = gp[2] * g[0];
        double g4 = gp[2] * gp[2];
        for (size_t k = 4; k <= T; k++) gp[k] = gp[k - 4] * g4;
    } else {
        double g1 = g[0], g2 = g[1];
        double *h11 = ws->h11, *h12 = ws->h12;
        h11[0] = 1;
        h12[0] = 0;
        if (T > 1) {
            h11[1] = g1;
            h12[1] = g2;
        }
        /* Past the point where both responses are below 1e-17 of their
         * peak they no longer change any sum in double precision: from
         * there on the responses are zero and the cumulative sums
         * constant, so the tables stop at K and every index past it reads
         * the entry at K + 1 (see kt_at()).  Long traces then cost no
         * more than short ones to prepare. */
        size_t K = T;
        double peak = 1;
        for (size_t k = 2; k < T; k++) {
            h11[k] = g1 * h11[k - 1] + g2 * h11[k - 2];
            h12[k] = g1 * h12[k - 1] + g2 * h12[k - 2];
            if (fabs(h11[k]) > peak) peak = fabs(h11[k]);
            if (fabs(h11[k]) < 1e-17 * peak && fabs(h12[k]) < 1e-17 * peak &&
                fabs(h11[k - 1]) < 1e-17 * peak) {
                K = k;
                break;
            }
        }
        double disc = g1 * g1 + 4 * g2;
        disc = disc > 0 ? sqrt(disc) : 0;
        ws->rd = (g1 + disc) / 2;
        ws->rr = (g1 - disc) / 2;
        ws->geo = ws->rd - ws->rr > 1e-3;
        /* For a pool of length l = k + 1 with data correlation num and
         * calcium cp before it, the value is v = (num - cp B) / A (A, B the
         * cumulative sums of h11^2 and h11 h12 to k), and the calcium it
         * predicts for the next frame is v h11[l] + cp h12[l].  Both are
         * tabulated as linear forms in (u, cp), where u = num, or, with
         * distinct roots, u = d Nd - r Nr = (d - r) num: then the pass
         * gets from its running sums to its decisions in two steps.  A row
         * holds (vA, pA, vB, pB, h11[k], h12[k]) with v = u vA + cp vB and
         * pred = u pA + cp pB, so that the pass computes (v, pred) as one
         * pair: vB is the negated coefficient, which gives the same value
         * as subtracting cp times the coefficient. */
        double f = ws->geo ? 1 / (ws->rd - ws->rr) : 1;
        double a = 0, b = 0, *kt = ws->kt;
        for (size_t k = 0; k < K; k++) {
            a += h11[k] * h11[k];
            b += h11[k] * h12[k];
            double hn = k + 1 < K ? h11[k + 1] : 0, hn2 = k + 1 < K ? h12[k + 1] : 0;
            double *e = kt + 6 * k, ia = 1 / a, va = f * ia, vb = b * ia;
            e[0] = va;
            e[1] = hn * va;
            e[2] = -vb;
            e[3] = hn2 - hn * vb;
            e[4] = h11[k];
            e[5] = h12[k];
        }
        for (size_t k = K; k < K + 2; k++) {
            double *e = kt + 6 * k;
            e[0] = f * (1 / a);
            e[1] = 0;
            e[2] = -(b * (1 / a));
            e[3] = 0;
            e[4] = 0;
            e[5] = 0;
        }
        ws->K = K;
    }
    ws->p_cached = p;
    ws->g_cached[0] = g[0];
    ws->g_cached[1] = g[1];
}

/* w = G'1, the gradient of sum(s) with respect to c. */
static inline double wvec(int p, const double g[2], size_t t, size_t T)
{
    double v = 1;
    if (t + 1 < T) v -= g[0];
    if (p == 2 && t + 2 < T) v -= g[1];
    return v;
}

/* ======================================================================
 * AR(1) OASIS.
 * ====================================================================== */

/* Pools of z = y - b - lambda w.  A pool whose jump over the decayed value
 * of its predecessor is below smin merges into it; the first pool merges
 * into the region of zero calcium before it (c[-1] = 0 acts as a pool of
 * infinite weight and value 0) when its value is below smin.  Without a
 * threshold, where the processor allows, the trace is pooled in eight
 * segments at once (deconv_lanes.h): the same pools, in about 0.6 of
 * the time. */
static void ar1_pools(caimg_deconv_ws *ws, const double *y, size_t T, double g,
                      double b, double lam, double smin)
{
    if (ws->lanes && smin == 0) {
        caimg_ar1_stack st = {ws->pv, ws->pw, ws->pgl, ws->pt, ws->pl};
        size_t zend;
        size_t n = caimg_ar1_pools_lanes(ws->lanes, y, T, g, b + lam * (1 - g), b + lam, &st,
                                         &zend);
        for (size_t i = 0; i < n; i++) ws->pv[i] /= ws->pw[i];
        ws->npool = n;
        ws->zend = zend;
        return;
    }
    /* During the pass a pool holds N = sum g^k z rather than the value
     * N / w, so that merging needs no division: the test v_c < g^l_a v_a +
     * smin is made as N_c w_a < g^l_a N_a w_c + smin w_a w_c (weights are
     * positive).  The newest pool lives in registers (cv, cw, cg, ct, cl)
     * and is stored only when the next frame starts a pool after it. */
    double *pv = ws->pv, *pw = ws->pw, *pgl = ws->pgl;
    uint32_t *pt = ws->pt, *pl = ws->pl;
    size_t n = 0, zend = 0;   /* pools stored below the current one */
    double zoff = b + lam * (1 - g);
    int have = 0;
    double cv = 0, cw = 0, cg = 0;
    uint32_t ct = 0, cl = 0;
    for (size_t t = 0; t < T; t++) {
        double z = y[t] - (t + 1 < T ? zoff : b + lam);
        if (have) {
            /* The frame's own pool would have value z: keep it if its jump
             * is large enough, else it joins the current pool, which is
             * then checked against the stored ones. */
            if (z * cw >= (cg * cv + smin * cw)) {
                pv[n] = cv; pw[n] = cw; pgl[n] = cg; pt[n] = ct; pl[n] = cl;
                n++;
                cv = z; cw = 1; cg = g; ct = (uint32_t)t; cl = 1;
                continue;
            }
            cv += cg * z;
            cw += cg * cg;
            cg *= g;
            cl++;
        } else {
            cv = z; cw = 1; cg = g; ct = (uint32_t)t; cl = 1;
            have = 1;
        }
        for (;;) {
            if (n == 0) {
                if (cv < smin * cw) {
                    zend = ct + cl;
                    have = 0;
                }
                break;
            }
            double av = pv[n - 1], aw = pw[n - 1], ag = pgl[n - 1];
            if (cv * aw >= (ag * av + smin * aw) * cw) break;
            cv = av + ag * cv;
            cw = aw + ag * ag * cw;
            cg = ag * cg;
            cl = pl[n - 1] + cl;
            ct = pt[n - 1];
            n--;
        }
    }
    if (have) {
        pv[n] = cv; pw[n] = cw; pgl[n] = cg; pt[n] = ct; pl[n] = cl;
        n++;
    }
    for (size_t i = 0; i < n; i++) pv[i] /= pw[i];
    ws->npool = n;
    ws->zend = zend;
}

/* c and s from the pools. */
static void ar1_output(caimg_deconv_ws *ws, size_t T, double g, double *c, double *s)
{
    const double *gp = ws->gp, *pv = ws->pv;
    const uint32_t *pt = ws->pt, *pl = ws->pl;
    size_t zend = ws->zend;
    memset(c, 0, zend * sizeof *c);
    if (s && !ws->s_sparse) memset(s, 0, T * sizeof *s);
    double prev = 0;
    for (size_t i = 0; i < ws->npool; i++) {
        double v = pv[i];
        size_t t = pt[i], l = pl[i];
        double *ct = c + t;
        size_t k = 0;
        if (t + 8 <= T) {
            /* Most pools are a few frames long, and a loop over their
             * frames mispredicts its exit about once a pool: eight are
             * written whatever the length (the pools after this one
             * overwrite the excess; the last pool ends at T). */
            for (; k < 8; k++) ct[k] = v * gp[k];
        }
        for (; k < l; k++) ct[k] = v * gp[k];
        if (s) {
            s[t] = v - g * prev;
            if (s[t] < 0) s[t] = 0;   /* rounding only: v >= g^l v_prev + smin */
        }
        prev = v * gp[l - 1];   /* = ct[l - 1], without waiting for the store */
    }
}

/* Sums that make the residual and the b-gradient explicit functions of
 * (b, lambda) for the current pools:
 *   RSS(b, lambda) = K0 - 2 b K1 + b^2 K2 + lambda^2 Q,
 *   1'(y - b - c) = K1 + lambda M - b K2. */
typedef struct {
    double K0, K1, K2, Q, M;
} asums;

static void ar1_sums(const caimg_deconv_ws *ws, size_t T, double g, double b, double lam,
                     double Sy, double Syy, asums *S)
{
    const double *gp = ws->gp;
    double K0 = Syy, K1 = Sy, K2 = (double)T, Q = 0, M = 0;
    double inv1g = g < 1 ? 1 / (1 - g) : 0;
    for (size_t i = 0; i < ws->npool; i++) {
        size_t l = ws->pl[i];
        double W = ws->pw[i];
        double Sh = g < 1 ? (1 - gp[l]) * inv1g : (double)l;
        double Shw = (1 - g) * Sh;
        if ((size_t)ws->pt[i] + l == T) Shw += g * gp[l - 1];
        double B = Sh / W, C = Shw / W;
        double A = ws->pv[i] + b * B + lam * C;
        K0 -= W * A * A;
        K1 -= W * A * B;
        K2 -= W * B * B;
        Q += W * C * C;
        M += W * B * C;
    }
    S->K0 = K0;
    S->K1 = K1;
    S->K2 = K2;
    S->Q = Q;
    S->M = M;
}

/* ======================================================================
 * AR(2): greedy OASIS pass, then an exact primal-dual active-set polish.
 * ====================================================================== */

static inline double z_at(const double *y, int p, const double g[2], size_t t, size_t T,
                          double b, double lam)
{
    return y[t] - b - lam * wvec(p, g, t, T);
}

/* The greedy AR(2) pass of Friedrich et al.: like AR(1), but a pool's
 * calcium depends on the value just before it, c[t+k] = v h11[k] +
 * c[t-1] h12[k], and the fit of v holds the earlier pools fixed.
 *
 * The impulse response is h11[k] = (d^(k+1) - r^(k+1)) / (d - r) for the
 * roots d > r, so the correlation of a pool's data with it is
 * (d Nd - r Nr) / (d - r) with Nd = sum d^k z and Nr = sum r^k z, and both
 * sums merge in O(1) like the AR(1) sum.  For nearly equal roots that
 * formula cancels badly and the correlation is recomputed over the merged
 * frames instead.  As in the AR(1) pass, the newest pool lives in
 * registers. */
static inline double ar2_num(const double *z, const double *h11, size_t t0, size_t l, size_t K)
{
    double num = 0;
    for (size_t k = 0; k < l && k < K; k++) num += h11[k] * z[t0 + k];
    return num;
}

/* One pool of the AR(2) pass, kept together so that the pass needs one
 * pointer for the stack of pools.  ar2_run() writes the pairs (v, pred),
 * (nd, nr) and (dl, rl) with one store each; every read is of one field,
 * which a load right after such a store still gets forwarded (a read
 * wider than the store it follows would not). */
typedef struct {
    double v, pred;          /* value, calcium predicted after */
    double nd, nr, dl, rl;   /* sum d^k z, sum r^k z, d^l, r^l */
    double cp;               /* calcium before */
    uint32_t t, l;
} ar2_pool;

/* z = y - b - lambda w, the data the pass fits. */
static void ar2_z(const double *y, size_t T, const double g[2], double b, double lam, double *z)
{
    /* z_at() with the weight of the interior frames hoisted. */
    size_t t = 0;
    if (T > 2) {
        double lw = lam * wvec(2, g, 0, T);
        for (; t < T - 2; t++) z[t] = y[t] - b - lw;
    }
    for (; t < T; t++) z[t] = z_at(y, 2, g, t, T, b, lam);
    z[T] = 0;   /* read (not used) by ar2_run() */
}

/* The newest pool of the AR(2) pass, which lives in registers. */
typedef struct {
    double v, cp, pred, nd, nr, dl, rl;
    uint32_t t, l;
} ar2_cur;

typedef struct {
    const double *z, *kt, *h11;
    size_t K, K1;
    double d, r;
    int geo;
} ar2_ctx;

/* The kernel table row for a pool of l frames (prepare_kernel(): pools
 * longer than K1 + 1 frames share the last row). */
static inline const double *ar2_row(const double *kt, size_t K1, size_t l)
{
    return kt + 6 * (l - 1 < K1 ? l - 1 : K1);
}

/* Value and prediction of pool c from its sum u (see prepare_kernel()). */
static inline void ar2_finish(const ar2_ctx *x, ar2_cur *c, double u)
{
    const double *e = ar2_row(x->kt, x->K1, c->l);
    c->v = u * e[0] + c->cp * e[2];
    c->pred = u * e[1] + c->cp * e[3];
}

/* A pool of the single frame t after calcium cp. */
static inline void ar2_fresh(const ar2_ctx *x, ar2_cur *c, double zt, size_t t, double cp)
{
    c->cp = cp;
    c->v = zt;
    c->nd = zt; c->nr = zt; c->dl = x->d; c->rl = x->r;
    c->t = (uint32_t)t; c->l = 1;
    c->pred = (x->geo ? x->d * zt - x->r * zt : zt) * x->kt[1] + cp * x->kt[3];
}

/* Frame zt joins pool c. */
static inline void ar2_grow(const ar2_ctx *x, ar2_cur *c, double zt)
{
    c->l++;
    double u;
    if (x->geo) {
        c->nd += c->dl * zt;
        c->nr += c->rl * zt;
        c->dl *= x->d;
        c->rl *= x->r;
        u = x->d * c->nd - x->r * c->nr;
    } else {
        u = ar2_num(x->z, x->h11, c->t, c->l, x->K);
    }
    ar2_finish(x, c, u);
}

/* Pool c joins the stored pool q before it. */
static inline void ar2_join(const ar2_ctx *x, ar2_cur *c, const ar2_pool *q)
{
    double u;
    c->l += q->l;
    if (x->geo) {
        c->nd = q->nd + q->dl * c->nd;
        c->nr = q->nr + q->rl * c->nr;
        c->dl *= q->dl;
        c->rl *= q->rl;
        u = x->d * c->nd - x->r * c->nr;
    } else {
        u = ar2_num(x->z, x->h11, q->t, c->l, x->K);
    }
    c->cp = q->cp;
    c->t = q->t;
    ar2_finish(x, c, u);
}

/* Store pool c as q and return the calcium at its last frame. */
static inline double ar2_push(const ar2_ctx *x, const ar2_cur *c, ar2_pool *q)
{
    q->v = c->v; q->cp = c->cp; q->pred = c->pred;
    q->nd = c->nd; q->nr = c->nr; q->dl = c->dl; q->rl = c->rl;
    q->t = c->t; q->l = c->l;
    const double *e = ar2_row(x->kt, x->K1, c->l);
    return c->v * e[4] + c->cp * e[5];
}

/* The pass over a run of frames without a branch on the common decision.
 *
 * Most frames either grow the current pool or start a pool that the next
 * frame merges straight back (noise); both leave the current pool's
 * running sums grown by the same frames.  So the sums are grown on every
 * frame whatever happens, and the decision for a frame only sets integer
 * flags: whether it is the tentative start of a pool (then it is not
 * checked for a merge) or the frame that settles the tentative pool.
 * What a tentative pool would need (the calcium before it, its prediction,
 * its value after two frames, and the state of the current pool before
 * it) is computed on every frame too.  A branch is taken only for the
 * rarer outcomes: a tentative pool that is kept (a spike, or a second
 * start right after the first) and a pool that merges into the one
 * before.  The predictor then sees one branch taken on about a tenth of
 * the frames, instead of one that goes either way at random on a fifth.
 *
 * The decisions are those of the general pass below.  Two things differ
 * in rounding only: a pool that absorbs a tentative pool adds up its sums
 * frame by frame rather than as a merge of two sums, and the value and
 * prediction of a tentative pool are taken as linear forms in its two
 * frames and the calcium before it, with the coefficients worked out
 * once (the general pass multiplies out the same expressions).  On
 * simulated GCaMP6f traces the pools come out the same, and the pass
 * takes ~12% less time.
 *
 * The arithmetic goes in pairs of lanes: (nd, nr), (dl, rl), (v, pred),
 * the value and prediction of a tentative pool, and the four threshold
 * tests two at a time (a frame tests its own merge together with the
 * next frame's start).  Each lane does the operations of the scalar
 * expression it replaces, in the same order, so the pools are bit for bit
 * those of the scalar pass; the pass needs fewer instructions and takes
 * ~4% less time.  Reads z[T] (not used).  Runs from frame t while there
 * is a stored pool to merge into (and distinct roots); returns the next
 * frame for the general pass, with the pools, *np, *have and *zend
 * updated. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-slp-vectorize")))
#endif
static size_t ar2_run(const ar2_ctx *x, ar2_cur *cur, ar2_pool *P, size_t *np, int *have,
                      size_t *zend, size_t t, size_t T, double smin)
{
    const double *z = x->z, *kt = x->kt, *elast = ar2_row(kt, x->K1, x->K1 + 1);
    const double d = x->d, r = x->r, dd = d * d, rr = r * r;
    const double *e2 = ar2_row(kt, x->K1, 2);   /* a pool of two frames */
    const double FA = (d - r) * e2[0], FB = (d * d - r * r) * e2[0], PA = (d - r) * kt[1];
    /* Coefficients of (fv, fpred) below, lane by lane. */
    const ar_v2 DR = {d, r}, FPA = {FA, PA}, FB0 = {FB, 0}, EK = {e2[2], kt[3]},
                SMIN = {smin, smin};
    size_t n = *np;
    double qpred = P[n - 1].pred, cp = cur->cp;
    ar_v2 CP = {cp, cp};
    /* (nd, nr), (dl, rl) and (v, pred) of the current pool. */
    ar_v2 NDR = {cur->nd, cur->nr}, DLR = {cur->dl, cur->rl}, VP = {cur->v, cur->pred};
    uint32_t l = cur->l, ct = cur->t;
    /* P[n] holds the current pool as it was before the previous frame
     * (stored on every frame, so that a pool started at the previous frame
     * finds it ready to keep); zp and ce are what such a pool needs. */
    ar_v2 ZP = {0, 0};
    double ce = 0;
    unsigned pending = 0;
    const double *e = ar2_row(kt, x->K1, l);
    /* Whether frame t starts a pool: each frame tests the next one
     * together with its own merge. */
    unsigned start = t < T && z[t] - VP[1] >= smin;
    for (; t < T; t++) {
        const ar_v2 ZT = {z[t], z[t]};
        /* If a pool started at t - 1: its value fv after two frames and
         * the calcium fpred it predicted for this frame (ar2_fresh()).
         * Does this frame start another (bit 1), or does the two-frame
         * pool stand over the current pool's prediction (bit 0,
         * ar2_grow())? */
        const ar_v2 CE = {ce, ce};
        ar_v2 X = (ZP * FPA + ZT * FB0) + CE * EK;
        ar2_pool *sv = P + n;
        unsigned ks = ar_bits2((ar_v2){X[0], ZT[0]} - (ar_v2){sv->pred, X[1]} >= SMIN);
        /* The calcium before a pool started at this frame (ar2_push()). */
        double nce = VP[0] * e[4] + cp * e[5];
        /* (On the frame that settles a tentative pool, P[n] must stay:
         * the store goes to the free record above it.) */
        ar2_pool *sw = sv + pending;
        *(ar_v2u *)&sw->v = VP;
        *(ar_v2u *)&sw->nd = NDR;
        *(ar_v2u *)&sw->dl = DLR;
        sw->l = l;
        NDR = NDR + DLR * ZT;
        DLR = DLR * DR;
        l++;
        e += 6;
        e = e < elast ? e : elast;
        ar_v2 PR = DR * NDR;
        double u = PR[0] - PR[1];
        const ar_v2 U = {u, u};
        VP = U * *(const ar_v2u *)e + CP * *(const ar_v2u *)(e + 2);
        /* Bit 0: the current pool stands over the stored one's prediction;
         * bit 1: the next frame starts a pool. */
        unsigned ms = ar_bits2((ar_v2){VP[0], z[t + 1]} - (ar_v2){qpred, VP[1]} >= SMIN);
        unsigned tentative = start & ~pending & 1u;
        unsigned merge = ~ms & ~tentative & 1u;
        if (__builtin_expect((pending & (ks != 0)) | merge, 0)) {
            double v, pred, nd, nr, dl, rl, zt = ZT[0], zp = ZP[0];
            if (pending & (ks != 0)) {
                /* The pool started at t - 1 stays: store the current pool
                 * as it was before that frame. */
                ar2_pool *q = P + n++;
                q->cp = cp;
                q->t = ct;
                if (ks & 2) {
                    /* ... and the one-frame pool too; this frame starts
                     * a third (ar2_fresh()). */
                    q = P + n++;
                    q->v = zp; q->cp = ce; q->pred = X[1];
                    q->nd = zp; q->nr = zp; q->dl = d; q->rl = r;
                    q->t = (uint32_t)(t - 1); q->l = 1;
                    cp = zp * kt[4] + ce * kt[5];
                    v = zt;
                    nd = nr = zt;
                    dl = d;
                    rl = r;
                    ct = (uint32_t)t;
                    l = 1;
                    pred = (d * zt - r * zt) * kt[1] + cp * kt[3];
                } else {
                    /* ... and the two-frame pool is the current one. */
                    double fnd = zp + d * zt, fnr = zp + r * zt;
                    double fu = d * fnd - r * fnr;
                    cp = ce;
                    v = X[0];
                    nd = fnd;
                    nr = fnr;
                    dl = dd;
                    rl = rr;
                    ct = (uint32_t)(t - 1);
                    l = 2;
                    pred = fu * e2[1] + ce * e2[3];
                }
                e = ar2_row(kt, x->K1, l);
                qpred = q->pred;
            } else {
                /* Merge into the stored pools while the current one
                 * does not stand over their prediction (ar2_join()). */
                nd = NDR[0]; nr = NDR[1]; dl = DLR[0]; rl = DLR[1];
                for (;;) {
                    const ar2_pool *q = P + n - 1;
                    l += q->l;
                    nd = q->nd + q->dl * nd;
                    nr = q->nr + q->rl * nr;
                    dl *= q->dl;
                    rl *= q->rl;
                    cp = q->cp;
                    ct = q->t;
                    e = ar2_row(kt, x->K1, l);
                    u = d * nd - r * nr;
                    v = u * e[0] + cp * e[2];
                    pred = u * e[1] + cp * e[3];
                    n--;
                    if (n == 0) {
                        /* What is left for the general pass: the first
                         * pool. */
                        if (v < smin) {
                            *zend = (size_t)ct + l;
                            *have = 0;
                        }
                        t++;
                        VP = (ar_v2){v, pred};
                        NDR = (ar_v2){nd, nr};
                        DLR = (ar_v2){dl, rl};
                        goto out;
                    }
                    if (v - P[n - 1].pred >= smin) break;
                }
                qpred = P[n - 1].pred;
            }
            VP = (ar_v2){v, pred};
            NDR = (ar_v2){nd, nr};
            DLR = (ar_v2){dl, rl};
            CP = (ar_v2){cp, cp};
            pending = 0;
            start = t + 1 < T && z[t + 1] - pred >= smin;
            continue;
        }
        ZP = ZT;
        ce = nce;
        pending = tentative;
        start = ms >> 1;
    }
    if (pending) {
        /* A pool started at the last frame: store the current pool as it
         * was before it, and make the one-frame pool the current one. */
        ar2_pool *q = P + n++;
        q->cp = cp;
        q->t = ct;
        cp = ce;
        VP = (ar_v2){ZP[0], PA * ZP[0] + ce * kt[3]};
        NDR = (ar_v2){ZP[0], ZP[0]};
        DLR = DR;
        ct = (uint32_t)(T - 1);
        l = 1;
    }
out:
    cur->cp = cp;
    cur->nd = NDR[0]; cur->nr = NDR[1]; cur->dl = DLR[0]; cur->rl = DLR[1];
    cur->v = VP[0]; cur->pred = VP[1]; cur->l = l; cur->t = ct;
    *np = n;
    return t;
}

/* The pass decides with the tables of prepare_kernel(): the current
 * pool's value and the calcium it predicts for the next frame (the
 * baseline a new spike must exceed by smin) are both two multiplications
 * away from its running sums, so a mispredicted branch waits for a short
 * chain of arithmetic.  Most frames that start a pool are noise that the
 * next frame merges back; that next frame is handled right there, so the
 * processor predicts its branches apart from those of ordinary frames,
 * which almost never merge.  Branch mispredictions are what the pass
 * costs: with distinct traces it runs ~2.5 times slower than on one trace
 * repeated (whose branches the predictor learns), and AR(2) costs more
 * than AR(1) because its lower spike threshold starts (and merges back) a
 * pool on ~20% of noise frames, against ~8% for AR(1).
 *
 * Most frames are handled by ar2_run() above, which takes the common
 * decisions without branching; this loop handles the rest.
 *
 * GCC's straight-line vectorizer packs pairs of the running sums into
 * vector registers and unpacks them on every frame, which lengthens the
 * chains the branches wait on; the pass is 25% faster without it. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-slp-vectorize")))
#endif
static void ar2_pools(caimg_deconv_ws *ws, const double *z, size_t T, double smin)
{
    ar2_pool *P = ws->rec;
    const ar2_ctx x = {z, ws->kt, ws->h11, ws->K, ws->K + 1, ws->rd, ws->rr, ws->geo};
    size_t n = 0, zend = 0;
    int have = 0;
    ar2_cur c = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    for (size_t t = 0; t < T; t++) {
        if (x.geo && have && n > 0) {
            t = ar2_run(&x, &c, P, &n, &have, &zend, t, T, smin);
            if (t >= T) break;
        }
        double zt = z[t];
        if (!have) {
            ar2_fresh(&x, &c, zt, t, 0);
            have = 1;
        } else if (zt - c.pred >= smin) {
            /* The frame's own pool would start with a jump of z over the
             * current pool's prediction, large enough: keep it. */
            double ce = ar2_push(&x, &c, P + n);
            n++;
            ar2_fresh(&x, &c, zt, t, ce);
            if (t + 1 >= T) continue;
            zt = z[++t];
            if (zt - c.pred >= smin) {
                ce = ar2_push(&x, &c, P + n);
                n++;
                ar2_fresh(&x, &c, zt, t, ce);
                continue;
            }
            ar2_grow(&x, &c, zt);
            if (c.v - P[n - 1].pred >= smin) continue;
            ar2_join(&x, &c, P + n - 1);
            n--;
        } else {
            ar2_grow(&x, &c, zt);
        }
        for (;;) {
            if (n == 0) {
                if (c.v < smin) {
                    zend = c.t + c.l;
                    have = 0;
                }
                break;
            }
            const ar2_pool *q = P + n - 1;
            if (c.v - q->pred >= smin) break;
            ar2_join(&x, &c, q);
            n--;
        }
    }
    if (have) {
        ar2_push(&x, &c, P + n);
        n++;
    }
    /* What the rest of the code reads of the pools. */
    for (size_t i = 0; i < n; i++) {
        ws->pv[i] = P[i].v;
        ws->qcp[i] = P[i].cp;
        ws->pt[i] = P[i].t;
        ws->pl[i] = P[i].l;
    }
    ws->npool = n;
    ws->zend = zend;
}

/* c and (unless s is NULL) s from the pools.  The calcium of a pool is
 * built four frames at a time (GCC -O2 leaves the plain loop scalar), each
 * frame with the same two products and one sum. */
CAIMG_SIMD_CLONES
static void ar2_output_greedy(caimg_deconv_ws *ws, size_t T, const double g[2],
                              double *c, double *s)
{
    memset(c, 0, ws->zend * sizeof *c);
    if (s && !ws->s_sparse) memset(s, 0, T * sizeof *s);
    const double *h11 = ws->h11, *h12 = ws->h12;
    for (size_t i = 0; i < ws->npool; i++) {
        size_t t = ws->pt[i], l = ws->pl[i];
        double v = ws->pv[i], cp = ws->qcp[i];
        size_t lk = l < ws->K ? l : ws->K, k = 0;
        double *ct = c + t;
        const caimg_v4d v4 = {v, v, v, v}, cp4 = {cp, cp, cp, cp};
        for (; k + 4 <= lk; k += 4) {
            caimg_v4d x = v4 * ar_load4(h11 + k) + cp4 * ar_load4(h12 + k);
            memcpy(ct + k, &x, sizeof x);
        }
        for (; k < lk; k++) ct[k] = v * h11[k] + cp * h12[k];
        if (lk < l) memset(c + t + lk, 0, (l - lk) * sizeof *c);
        if (!s) continue;
        double c1 = t >= 1 ? c[t - 1] : 0, c2 = t >= 2 ? c[t - 2] : 0;
        double sv = c[t] - g[0] * c1 - g[1] * c2;
        s[t] = sv > 0 ? sv : 0;
    }
}

/* Rows of G: (G x)[t] = x[t] - g1 x[t-1] - g2 x[t-2]. */
static inline double Gx(const double *x, const double g[2], size_t t)
{
    double v = x[t];
    if (t >= 1) v -= g[0] * x[t - 1];
    if (t >= 2) v -= g[1] * x[t - 2];
    return v;
}

/* Entry (t, t') of G G' for t >= t', |t - t'| <= 2. */
static inline double GGt(const double g[2], size_t t, size_t tp)
{
    size_t d = t - tp;
    if (d == 0) return 1 + (t >= 1 ? g[0] * g[0] : 0) + (t >= 2 ? g[1] * g[1] : 0);
    if (d == 1) return -g[0] + (t >= 2 ? g[0] * g[1] : 0);
    if (d == 2) return -g[1];
    return 0;
}

/* Factor H = A A' (LDL', bandwidth 2 in the compressed numbering), where
 * A holds the rows of G at the frames with spk[t] == 0. */
static void ar2_factor(caimg_deconv_ws *ws, size_t T, const double g[2])
{
    uint32_t *a = ws->aidx;
    size_t m = 0;
    for (size_t t = 0; t < T; t++)
        if (!ws->spk[t]) a[m++] = (uint32_t)t;
    ws->m = m;
    /* D holds the inverse pivots.  Long runs of consecutive constrained
     * frames give identical rows, and the factorisation of such a run
     * converges to a fixed point within a few dozen rows; from then on the
     * previous row's factors are reused, which skips the divisions that
     * dominate the cost. */
    double *iD = ws->D, *L1 = ws->L1, *L2 = ws->L2;
    const double dfull = GGt(g, 2, 2), e1full = GGt(g, 2, 1), e2full = -g[1];
    int prev_pat = -1;
    for (size_t i = 0; i < m; i++) {
        size_t t = a[i];
        size_t d1 = i >= 1 ? t - a[i - 1] : 9, d2 = i >= 2 ? t - a[i - 2] : 9;
        int pat = (t >= 3 && d1 == 1 && d2 == 2) ? 1 : 0;
        if (pat && prev_pat == 1 && i >= 3 &&
            fabs(iD[i - 1] - iD[i - 2]) <= 1e-15 * iD[i - 1] &&
            fabs(L1[i - 1] - L1[i - 2]) <= 1e-15 * fabs(L1[i - 1]) &&
            fabs(L2[i - 1] - L2[i - 2]) <= 1e-15 * fabs(L2[i - 1])) {
            L1[i] = L1[i - 1];
            L2[i] = L2[i - 1];
            iD[i] = iD[i - 1];
            continue;
        }
        prev_pat = pat;
        double h1, h2, hd;
        if (pat) {
            h1 = e1full;
            h2 = e2full;
            hd = dfull;
        } else {
            h1 = d1 <= 2 ? GGt(g, t, a[i - 1]) : 0;
            h2 = d2 <= 2 ? GGt(g, t, a[i - 2]) : 0;
            hd = GGt(g, t, t);
        }
        double l2 = i >= 2 ? h2 * iD[i - 2] : 0;
        double l1 = i >= 1 ? (h1 - (i >= 2 ? l2 * L1[i - 1] / iD[i - 2] : 0)) * iD[i - 1] : 0;
        double d = hd - (i >= 1 ? l1 * l1 / iD[i - 1] : 0) - (i >= 2 ? l2 * l2 / iD[i - 2] : 0);
        L1[i] = l1;
        L2[i] = l2;
        iD[i] = 1 / d;
    }
}

/* out_k = P x_k = x_k - A' H^-1 A x_k for up to three vectors at once (so
 * the factors are read once); mu (if not NULL) receives H^-1 A x_0.  x_k
 * may equal out_k. */
static void ar2_project_n(caimg_deconv_ws *ws, size_t T, const double g[2], int n,
                          const double *const *x, double *const *out, double *mu)
{
    size_t m = ws->m;
    const uint32_t *a = ws->aidx;
    const double *iD = ws->D, *L1 = ws->L1, *L2 = ws->L2;
    double *u[3] = {mu ? mu : ws->rhs, ws->u2, ws->u3};
    for (int k = 0; k < n; k++) {
        double *uk = u[k];
        const double *xk = x[k];
        double p1 = 0, p2 = 0;
        for (size_t i = 0; i < m; i++) {
            double v = Gx(xk, g, a[i]) - L1[i] * p1 - L2[i] * p2;
            uk[i] = v;
            p2 = p1;
            p1 = v;
        }
        p1 = p2 = 0;
        for (size_t j = m; j-- > 0;) {
            double v = uk[j] * iD[j];
            if (j + 1 < m) v -= L1[j + 1] * p1;
            if (j + 2 < m) v -= L2[j + 2] * p2;
            uk[j] = v;
            p2 = p1;
            p1 = v;
        }
        double *ok = out[k];
        if (ok != xk) memcpy(ok, xk, T * sizeof *ok);
        for (size_t i = 0; i < m; i++) {
            size_t t = a[i];
            ok[t] -= uk[i];
            if (t >= 1) ok[t - 1] += g[0] * uk[i];
            if (t >= 2) ok[t - 2] += g[1] * uk[i];
        }
    }
}

static void ar2_project(caimg_deconv_ws *ws, size_t T, const double g[2], const double *x,
                        double *out, double *mu)
{
    const double *xs[1] = {x};
    double *os[1] = {out};
    ar2_project_n(ws, T, g, 1, xs, os, mu);
}

/* Solve min ||z - c||^2 s.t. G c >= 0 exactly, starting from the active
 * set in ws->spk.  In dual form this is the linear complementarity problem
 * s = G z + H nu, s >= 0, nu >= 0, s'nu = 0 with H = G G' positive
 * definite.  Primal-dual active-set iterations (solve the equality-
 * constrained problem for the current set, then free the frames whose
 * multiplier has the wrong sign and constrain those whose spike came out
 * negative) converge in a few steps from a good start but can cycle; when
 * the number of violations stops falling we switch to Murty's least-index
 * rule (flip only the first violating frame), which terminates for any
 * positive definite H.  At the end the KKT conditions hold to `tol`.
 * Returns 0, or -1 if the iteration limit was reached (c and s then hold
 * the last, slightly infeasible, iterate). */
static int ar2_polish(caimg_deconv_ws *ws, size_t T, const double g[2], const double *z,
                      double *c, double *s, double tol)
{
    size_t best = (size_t)-1;
    int stall = 0, single = 0, rc = -1;
    for (int it = 0; it < 100 + (int)(T < 100000 ? T : 100000) / 10; it++) {
        ar2_factor(ws, T, g);
        ar2_project(ws, T, g, z, c, ws->mu);
        size_t nviol = 0, i = 0, first = (size_t)-1;
        for (size_t t = 0; t < T; t++) {
            int bad;
            if (ws->spk[t]) {
                bad = Gx(c, g, t) < -tol;
            } else {
                /* mu = -(multiplier of s[t] >= 0): positive mu means the
                 * constraint is holding c the wrong way. */
                bad = ws->mu[i] > tol;
                i++;
            }
            if (bad) {
                nviol++;
                if (first == (size_t)-1) first = t;
                if (!single) ws->spk[t] ^= 1;
            }
        }
        if (nviol == 0) {
            rc = 0;
            break;
        }
        if (single) {
            ws->spk[first] ^= 1;
        } else if (nviol < best) {
            best = nviol;
            stall = 0;
        } else if (++stall >= 3) {
            single = 1;
        }
    }
    for (size_t t = 0; t < T; t++) {
        double sv = ws->spk[t] ? Gx(c, g, t) : 0;
        s[t] = sv > 0 ? sv : 0;
    }
    return rc;
}

/* ======================================================================
 * One solve for given g: the b / lambda outer iterations.
 * ====================================================================== */

typedef struct {
    const caimg_deconv_plan *plan;
    caimg_deconv_ws *ws;
    const double *y;
    size_t T;
    int p;
    double g[2];
    int exact;                 /* convex problem: polish AR(2) */
    double smin;
    double Sy, Syy, scale;
    caimg_deconv_baseline bmode;
    int need_sums;             /* b or lambda are updated from the sums */
    int warm;                  /* AR(2): ws->spk holds this solve's last active set */
    int noconv;
} solver;

/* Run OASIS at (b, lambda), leave c and s in ws, fill the sums. */
static void run_once(solver *S, double b, double lam, asums *A)
{
    caimg_deconv_ws *ws = S->ws;
    size_t T = S->T;
    if (S->p == 1) {
        ar1_pools(ws, S->y, T, S->g[0], b, lam, S->smin);
        if (S->need_sums) ar1_sums(ws, T, S->g[0], b, lam, S->Sy, S->Syy, A);
        return;
    }
    double *z = ws->z;
    ar2_z(S->y, T, S->g, b, lam, z);
    if (!S->exact || !S->warm) {
        ar2_pools(ws, z, T, S->smin);
        /* The active set of the greedy pass seeds the exact solution (or,
         * for the thresholded problem, defines the model the b update
         * uses).  Later exact solves of the same trace start from the
         * previous solution instead, which is closer. */
        if (S->exact || S->need_sums) {
            memset(ws->spk, 0, T);
            for (size_t i = 0; i < ws->npool; i++) ws->spk[ws->pt[i]] = 1;
        }
    }
    if (S->exact) {
        if (ar2_polish(ws, T, S->g, z, ws->c, ws->s, 1e-12 * S->scale)) S->noconv = 1;
        S->warm = 1;
    } else {
        /* Without sums nothing reads c and s before final_output(), which
         * then writes them straight to their destination. */
        if (!S->need_sums) return;
        ar2_output_greedy(ws, T, S->g, ws->c, ws->s);
        ar2_factor(ws, T, S->g);
    }
    if (!S->need_sums) return;
    /* P y = P z + b P 1 + lambda P w, with P for the (final) active set. */
    double *pz = ws->pzb;
    double *px1 = ws->px1, *pxw = ws->pxw;
    for (size_t t = 0; t < T; t++) {
        px1[t] = 1;
        pxw[t] = wvec(2, S->g, t, T);
    }
    if (S->exact) {
        memcpy(pz, ws->c, T * sizeof *pz);
        const double *xs[2] = {px1, pxw};
        double *os[2] = {px1, pxw};
        ar2_project_n(ws, T, S->g, 2, xs, os, NULL);
    } else {
        const double *xs[3] = {px1, pxw, z};
        double *os[3] = {px1, pxw, pz};
        ar2_project_n(ws, T, S->g, 3, xs, os, NULL);
    }
    double py2 = 0, opy = 0, op1 = 0, pw2 = 0, opw = 0;
    for (size_t t = 0; t < T; t++) {
        double py = pz[t] + b * px1[t] + lam * pxw[t];
        py2 += py * py;
        opy += py;
        op1 += px1[t];
        pw2 += pxw[t] * pxw[t];
        opw += pxw[t];
    }
    A->K0 = S->Syy - py2;
    A->K1 = S->Sy - opy;
    A->K2 = (double)T - op1;
    A->Q = pw2;
    A->M = opw;
}

/* --baseline nonneg bounds the baseline of the trace as given, b + boff >= 0
 * (the solver works on a trace centred by boff). */
static double clampb(const solver *S, double b)
{
    double lo = -S->ws->boff;
    return (S->bmode == CAIMG_DECONV_B_NONNEG && b < lo) ? lo : b;
}

/* The optimal baseline for a given lambda: Newton steps on the piecewise
 * affine gradient 1'(y - b - c(b)), safeguarded by bisection.  Leaves the
 * pools of the final b in ws and the sums in *A. */
static void solve_b(solver *S, double lam, double *b, asums *A)
{
    double bb = *b;
    if (S->bmode == CAIMG_DECONV_B_FIXED) {
        run_once(S, bb, lam, A);
        return;
    }
    double lo = -INFINITY, hi = INFINITY;
    double tol = 1e-11 * S->scale;
    int maxit = S->plan->p.max_iter;
    for (int it = 0; it < maxit; it++) {
        run_once(S, bb, lam, A);
        double bn = A->K2 > 1e-12 * (double)S->T ? (A->K1 + lam * A->M) / A->K2 : bb;
        bn = clampb(S, bn);
        if (fabs(bn - bb) <= tol) {
            if (bn != bb) {
                bb = bn;
                run_once(S, bb, lam, A);
            }
            *b = bb;
            return;
        }
        double h = A->K1 + lam * A->M - bb * A->K2;
        if (h > 0) lo = bb > lo ? bb : lo;
        else hi = bb < hi ? bb : hi;
        if (!(bn > lo && bn < hi) && isfinite(lo) && isfinite(hi)) bn = clampb(S, 0.5 * (lo + hi));
        bb = bn;
    }
    S->noconv = 1;
    run_once(S, bb, lam, A);
    *b = bb;
}

static double rss_of(const asums *A, double b, double lam)
{
    return A->K0 - 2 * b * A->K1 + b * b * A->K2 + lam * lam * A->Q;
}

/* Whether the last run left any calcium (above rounding). */
static int has_calcium(const solver *S)
{
    const caimg_deconv_ws *ws = S->ws;
    if (S->p == 1) {
        for (size_t i = 0; i < ws->npool; i++)
            if (ws->pv[i] > 0) return 1;
        return 0;
    }
    double tol = 1e-9 * S->scale;   /* the exact AR(2) solve leaves rounding */
    for (size_t t = 0; t < S->T; t++)
        if (ws->c[t] > tol) return 1;
    return 0;
}

/* Constrained foopsi: the lambda at which RSS = sn^2 T.  RSS is
 * nondecreasing in lambda, and for a fixed active set (with b optimal) it
 * is R0 + lambda^2 R2 exactly, which gives the Newton prediction. */
static void solve_constrained(solver *S, double sn, double *b, double *lam_out)
{
    size_t T = S->T;
    double thresh = sn * sn * (double)T;
    double lam = 0, lo = 0, hi = INFINITY;
    asums A;
    int maxit = S->plan->p.max_iter;
    for (int it = 0; it < 2 * maxit + 20; it++) {
        solve_b(S, lam, b, &A);
        double rss = rss_of(&A, *b, lam);
        if (fabs(rss - thresh) <= 1e-9 * thresh + 1e-300) break;
        if (rss > thresh && lam == 0) break;   /* even no penalty leaves more residual */
        /* Without calcium the residual is as large as it gets: a trace
         * that varies less than the noise level has no spikes, and a
         * larger lambda would only cost precision (b and lambda w then
         * cancel in z). */
        if (rss < thresh && !has_calcium(S)) break;
        if (rss < thresh) lo = lam;
        else hi = lam;
        double R0, R2;
        int bfree = S->bmode == CAIMG_DECONV_B_ESTIMATE ||
                    (S->bmode == CAIMG_DECONV_B_NONNEG && *b > -S->ws->boff);
        if (bfree && A.K2 > 1e-12 * (double)T) {
            R0 = A.K0 - A.K1 * A.K1 / A.K2;
            R2 = A.Q + A.M * A.M / A.K2;
        } else {
            R0 = A.K0 - 2 * *b * A.K1 + *b * *b * A.K2;
            R2 = A.Q;
        }
        double ln;
        if (R2 <= 1e-300) {
            /* No spikes at all: the residual no longer depends on lambda. */
            if (rss < thresh) break;
            ln = 0.5 * (lo + lam);
        } else {
            ln = thresh > R0 ? sqrt((thresh - R0) / R2) : 0;
        }
        /* When the last spikes are about to vanish R2 is tiny and the
         * prediction runs away: lambda grows at most tenfold a step. */
        if (ln > 10 * (lam + S->scale)) ln = 10 * (lam + S->scale);
        if (!(ln > lo && ln < hi)) ln = isfinite(hi) ? 0.5 * (lo + hi) : 2 * lo + 1e-3 * S->scale;
        if (fabs(ln - lam) <= 1e-14 * (fabs(lam) + S->scale)) break;
        if (bfree && A.K2 > 1e-12 * (double)T) *b = clampb(S, (A.K1 + ln * A.M) / A.K2);
        lam = ln;
        if (it == 2 * maxit + 19) S->noconv = 1;
    }
    *lam_out = lam;
}

/* Fill c and s (length T; s may be NULL) from the state left by the last
 * run. */
static void final_output(solver *S, double *c, double *s)
{
    caimg_deconv_ws *ws = S->ws;
    ws->s_pools = 1;
    if (S->p == 1) {
        ar1_output(ws, S->T, S->g[0], c, s);
    } else if (!S->exact && !S->need_sums) {
        ar2_output_greedy(ws, S->T, S->g, c, s);
    } else {
        memcpy(c, ws->c, S->T * sizeof *c);
        if (s) memcpy(s, ws->s, S->T * sizeof *s);
        ws->s_pools = 0;
    }
}

static void solver_init(solver *S, const caimg_deconv_plan *plan, caimg_deconv_ws *ws,
                        const double *y, size_t T, int p, const double g[2],
                        caimg_deconv_method method, double smin, double scale,
                        caimg_deconv_baseline bmode)
{
    S->plan = plan;
    S->ws = ws;
    S->y = y;
    S->T = T;
    S->p = p;
    S->g[0] = g[0];
    S->g[1] = p == 2 ? g[1] : 0;
    S->exact = method != CAIMG_DECONV_THRESHOLDED;
    S->smin = method == CAIMG_DECONV_THRESHOLDED ? smin : 0;
    S->bmode = bmode;
    S->noconv = 0;
    S->warm = 0;
    S->need_sums = method == CAIMG_DECONV_CONSTRAINED || bmode != CAIMG_DECONV_B_FIXED;
    double Sy = 0, Syy = 0;
    if (S->need_sums)
        for (size_t t = 0; t < T; t++) {
            Sy += y[t];
            Syy += y[t] * y[t];
        }
    S->Sy = Sy;
    S->Syy = Syy;
    S->scale = scale > 0 ? scale : 1;
    /* AR(2) with g2 = 0 is AR(1): use the exact O(T) algorithm. */
    if (S->p == 2 && S->g[1] == 0) S->p = 1;
    prepare_kernel(ws, S->p, S->g, T);
}

/* Solve for given g on the (centred) trace y; returns the flags. */
static unsigned solve_given_g(const caimg_deconv_plan *plan, caimg_deconv_ws *ws,
                              const double *y, size_t T, int p, const double g[2],
                              caimg_deconv_method method, caimg_deconv_baseline bmode,
                              double lambda, double sn, double smin, double scale,
                              double *b, double *lam_out, double *c, double *s)
{
    solver S;
    solver_init(&S, plan, ws, y, T, p, g, method, smin, scale, bmode);
    double lam = method == CAIMG_DECONV_PENALIZED ? lambda : 0;
    asums A;
    if (method == CAIMG_DECONV_CONSTRAINED) solve_constrained(&S, sn, b, &lam);
    else solve_b(&S, lam, b, &A);
    final_output(&S, c, s);
    if (lam_out) *lam_out = lam;
    return S.noconv ? CAIMG_DECONV_NOCONVERGE : 0;
}

int caimg_oasis_solve(const caimg_deconv_plan *plan, caimg_deconv_ws *ws,
                      const double *y, size_t T, int p, const double g[2],
                      caimg_deconv_method method, double lambda, double sn,
                      double smin, double *b_io, double *lambda_out,
                      double *c, double *s)
{
    if (T > ws->T || T == 0)
        return caimg_error(CAIMG_EINVAL, "oasis: %zu frames, workspace made for %zu", T, ws->T);
    if (caimg_ar_check(g, p)) return CAIMG_EINVAL;
    ws->boff = 0;   /* y is solved as given */
    double lo = y[0], hi = y[0];
    for (size_t t = 1; t < T; t++) {
        if (y[t] < lo) lo = y[t];
        if (y[t] > hi) hi = y[t];
    }
    double scale = hi - lo > 0 ? hi - lo : 1;
    double b = b_io ? *b_io : 0;
    if (method == CAIMG_DECONV_AUTO) {
        double lam = 0;
        solve_given_g(plan, ws, y, T, p, g, CAIMG_DECONV_CONSTRAINED, plan->p.baseline, 0, sn, 0,
                      scale, &b, &lam, c ? c : ws->oc, s ? s : ws->os);
        if (lam > 0) {
            if (lambda_out) *lambda_out = lam;
            if (b_io) *b_io = b;
            return CAIMG_OK;
        }
        method = CAIMG_DECONV_PENALIZED;
    }
    unsigned fl = solve_given_g(plan, ws, y, T, p, g, method, plan->p.baseline, lambda, sn,
                                smin, scale, &b,
                                lambda_out, c ? c : ws->oc, s ? s : ws->os);
    if (b_io) *b_io = b;
    if (fl & CAIMG_DECONV_NOCONVERGE)
        caimg_warn("oasis: the baseline/lambda iterations did not converge");
    return CAIMG_OK;
}

/* ======================================================================
 * Parameter estimation and the per-trace pipeline.
 * ====================================================================== */

/* Sum of the squared impulse response, for the matched-filter threshold. */
static double kernel_energy(int p, const double g[2], size_t T)
{
    if (p == 1 || g[1] == 0) {
        double g2 = g[0] * g[0];
        return (1 - pow(g2, (double)T)) / (1 - g2);
    }
    double a = 1, b = 0, e = 0;   /* h[k], h[k-1] */
    for (size_t k = 0; k < T; k++) {
        e += a * a;
        double n = g[0] * a + g[1] * b;
        b = a;
        a = n;
        if (fabs(a) < 1e-12 && fabs(b) < 1e-12) break;
    }
    return e;
}

/* Refinement of the kinetics on the largest isolated transients.
 *
 * With the spike times of the current solution fixed, each of the (up to
 * 16) largest pools that is long enough gives a stretch of data from one
 * spike to the next.  Between spikes the calcium obeys the homogeneous AR
 * recursion, whose solutions are A d^k (AR(1)) or A d^k + B r^k (AR(2),
 * d and r the roots, B <= 0), so each stretch is fitted with free A (and
 * B) by least squares, with one offset common to all stretches, and the
 * decay minimises the total residual (golden-section search on log tau
 * over the whole plausible range; for AR(2) with the estimated rise in
 * the model).
 * Spikes of a too-fast decay are placed inside slower transients and cut
 * the pools short, but each stretch still holds clean data of the true
 * kinetics, so this fit does not inherit the error of the first estimate;
 * it is what corrects the slow bias of the autocovariance estimate when
 * slow drifts remain in the trace.  Returns 1 when g changed. */

enum { REFINE_MAX = 16, REFINE_LMAX = 300 };

typedef struct {
    const double *y;
    double b, fs;
    size_t t[REFINE_MAX], l[REFINE_MAX], n;
    /* Filled by refine_prepare(): the stretches' data minus b (stretch j
     * from v + off[j]), their sums of squares and sums, the longest
     * length, and scratch for 7 tables of that length. */
    double *v, uu[REFINE_MAX], u1[REFINE_MAX], *tab;
    size_t off[REFINE_MAX], lmax;
} refine_set;

/* What the objective needs of the data that does not depend on the time
 * constants, computed once.  `work` holds at least sum(l) + 7 max(l)
 * doubles. */
static void refine_prepare(refine_set *R, double *work)
{
    size_t o = 0;
    R->lmax = 0;
    R->v = work;
    for (size_t j = 0; j < R->n; j++) {
        const double *yy = R->y + R->t[j];
        size_t L = R->l[j];
        double *v = R->v + o, uu = 0, u1 = 0;
        for (size_t k = 0; k < L; k++) {
            v[k] = yy[k] - R->b;
            uu += v[k] * v[k];
            u1 += v[k];
        }
        R->off[j] = o;
        R->uu[j] = uu;
        R->u1[j] = u1;
        o += L;
        if (L > R->lmax) R->lmax = L;
    }
    R->tab = work + o;
}

static double refine_objective_d(const refine_set *R, double tau_d, double tau_r, double *delta)
{
    double d = exp(-1.0 / (tau_d * R->fs));
    double r = tau_r > 0 ? exp(-1.0 / (tau_r * R->fs)) : 0;
    /* Residual sums after the per-stretch fits, as functions of a common
     * offset delta added to the baseline: RSS(delta) = Suu - 2 delta Su1
     * + delta^2 S11.  Fitting delta too makes the decay estimate immune to
     * an error in b, which otherwise bends the tails (a b that is too high
     * makes decays look faster). */
    /* The sums over the model terms alone are the same for every
     * stretch up to its length: tabulated once (in the order a stretch
     * would add them up, so the values are the same). */
    size_t M = R->lmax;
    double *DK = R->tab, *RK = DK + M, *Pdd = RK + M, *Pdr = Pdd + M, *Prr = Pdr + M,
           *Pd1 = Prr + M, *Pr1 = Pd1 + M;
    {
        double dk = 1, rk = 1, add = 0, adr = 0, arr = 0, ad1 = 0, ar1 = 0;
        for (size_t k = 0; k < M; k++) {
            DK[k] = dk;
            RK[k] = rk;
            Pdd[k] = add += dk * dk;
            Pdr[k] = adr += dk * rk;
            Prr[k] = arr += rk * rk;
            Pd1[k] = ad1 += dk;
            Pr1[k] = ar1 += rk;
            dk *= d;
            rk *= r;
        }
    }
    double Suu = 0, Su1 = 0, S11 = 0;
    for (size_t j = 0; j < R->n; j++) {
        const double *v = R->v + R->off[j];
        size_t L = R->l[j];
        double ady = 0, ary = 0;
        for (size_t k = 0; k < L; k++) {
            ady += DK[k] * v[k];
            ary += RK[k] * v[k];
        }
        double add = Pdd[L - 1], adr = Pdr[L - 1], arr = Prr[L - 1];
        double ad1 = Pd1[L - 1], ar1 = Pr1[L - 1], uu = R->uu[j], u1 = R->u1[j];
        /* Project onto {A d^k + B r^k : B <= 0}.  After a spike the
         * r-component can only subtract (it is the rise: for an impulse
         * B/A = -r/d, and calcium left from earlier spikes makes B less
         * negative but never positive), so a fit that wants B > 0 -- a
         * second, faster decay -- falls back to the decay alone.  Without
         * this the rise would happily model the fast part of a
         * biexponential decay. */
        double det = add * arr - adr * adr;
        double B = (tau_r > 0 && det > 1e-12 * add * arr) ? (add * ary - adr * ady) / det : 0;
        double pu2, p1u, p12;
        if (B < 0) {
            pu2 = (arr * ady * ady - 2 * adr * ady * ary + add * ary * ary) / det;
            p1u = (arr * ad1 * ady - adr * (ad1 * ary + ar1 * ady) + add * ar1 * ary) / det;
            p12 = (arr * ad1 * ad1 - 2 * adr * ad1 * ar1 + add * ar1 * ar1) / det;
        } else {
            pu2 = ady * ady / add;
            p1u = ad1 * ady / add;
            p12 = ad1 * ad1 / add;
        }
        Suu += uu - pu2;
        Su1 += u1 - p1u;
        S11 += (double)L - p12;
    }
    double rss = S11 > 1e-9 ? Suu - Su1 * Su1 / S11 : Suu;
    if (delta) *delta = S11 > 1e-9 ? Su1 / S11 : 0;
    return -rss;
}

static double refine_objective(const refine_set *R, double tau_d, double tau_r)
{
    return refine_objective_d(R, tau_d, tau_r, NULL);
}

/* Maximise over log tau in [lo, hi] the objective with the other constant
 * fixed; which = 0 searches the decay, 1 the rise. */
static double refine_search(const refine_set *R, int which, double lo, double hi,
                            double other)
{
    const double phi = (sqrt(5.0) - 1) / 2;
    double a = log(lo), d = log(hi);
    double x1 = d - phi * (d - a), x2 = a + phi * (d - a);
#define OBJ(x) (which ? refine_objective(R, other, exp(x)) : refine_objective(R, exp(x), other))
    double f1 = OBJ(x1), f2 = OBJ(x2);
    while (d - a > 5e-3) {
        if (f1 >= f2) {
            d = x2; x2 = x1; f2 = f1;
            x1 = d - phi * (d - a);
            f1 = OBJ(x1);
        } else {
            a = x1; x1 = x2; f1 = f2;
            x2 = a + phi * (d - a);
            f2 = OBJ(x2);
        }
    }
#undef OBJ
    return exp((a + d) / 2);
}

static int refine_kinetics(const caimg_deconv_plan *plan, caimg_deconv_ws *ws, const double *y,
                           int p, double b, double g[2], double *delta)
{
    *delta = 0;
    const caimg_deconv_params *pp = &plan->p;
    double fs = pp->fs, tau_d, tau_r = 0;
    int pe = (p == 2 && g[1] != 0) ? 2 : 1;
    if (caimg_ar_to_tau(g, pe, fs, &tau_d, &tau_r)) return 0;
    refine_set R;
    R.y = y;
    R.b = b;
    R.fs = fs;
    R.n = 0;
    double val[REFINE_MAX];
    size_t lmin = (size_t)ceil(0.5 * tau_d * fs);
    if (lmin < 4) lmin = 4;
    size_t lcap = (size_t)ceil(3 * tau_d * fs);
    if (lcap > REFINE_LMAX) lcap = REFINE_LMAX;
    if (lcap < lmin) lcap = lmin;
    for (size_t i = 0; i < ws->npool; i++) {
        size_t t, l;
        double v;
        t = ws->pt[i];
        l = ws->pl[i];
        v = ws->pv[i];
        if (l < lmin) continue;
        /* Keep the largest values (insertion into a sorted list). */
        size_t k = R.n < REFINE_MAX ? R.n++ : REFINE_MAX;
        if (k == REFINE_MAX) {
            if (v <= val[REFINE_MAX - 1]) continue;
            k = REFINE_MAX - 1;
        }
        while (k > 0 && val[k - 1] < v) {
            val[k] = val[k - 1];
            R.t[k] = R.t[k - 1];
            R.l[k] = R.l[k - 1];
            k--;
        }
        val[k] = v;
        R.t[k] = t;
        R.l[k] = l < lcap ? l : lcap;
    }
    if (R.n < 3) return 0;
    refine_prepare(&R, ws->work);
    double td = refine_search(&R, 0, pp->tau_min, pp->tau_max, pe == 2 ? tau_r : 0);
    double tr = 0;
    /* The rise stays at the autocovariance estimate (the decay search
     * above has it in the model).  Searching the rise too was tried: on
     * isolated stretches a slower rise and a faster decay fit nearly as
     * well, and on simulations with a known rise the search drifted to
     * rises five times too slow, which cost accuracy. */
    if (pe == 2) tr = tau_r;
    refine_objective_d(&R, td, tr, delta);
    double gn[2];
    if (caimg_ar_from_tau(td, tr, fs, pe, gn)) {
        caimg_clear_error();
        return 0;
    }
    if (gn[0] == g[0] && gn[1] == g[1]) return 0;
    g[0] = gn[0];
    g[1] = gn[1];
    return 1;
}

/* Single-spike amplitude: spikes of one event often land on adjacent
 * frames, so runs of consecutive nonzero s are summed into events; events
 * smaller than `floor` (noise) are ignored; the amplitude is the mode of
 * the event sizes (a Gaussian kernel density estimate) whose basin holds
 * the most events, since in sparse firing single spikes are the most
 * common events and multi-spike events pile up at multiples of it, while
 * noise events crowd narrowly just above the threshold.  With fewer than 10
 * events the median is used; with none, 0.
 *
 * When the solver's output came straight from its pools (`at` non-NULL),
 * s is zero except at the na pool starts at[] (ascending), and only those
 * frames are visited: the same events in the same order, without a pass
 * over T frames whose branches mispredict at every spike. */
static double fit_amplitude(const double *s, size_t T, const uint32_t *at, size_t na,
                            double floor, double *work, size_t *nonzero)
{
    size_t n = 0, nz = 0;
    if (at) {
        /* Branch-free (the outcomes are as random as the noise): each
         * pool start either continues the open event (the frame after its
         * last, both spiking) or closes it, kept if large enough, and
         * opens the next; the same sums in the same order as below. */
        double acc = 0;
        size_t open = 0, last = 0;
        for (size_t i = 0; i < na; i++) {
            size_t t = at[i];
            double v = s[t];
            size_t pos = v > 0, cont = open & (t == last + 1) & pos;
            work[n] = acc;
            n += open & !cont & (acc >= floor);
            acc = v + acc * (double)cont;
            open = pos;
            last = t;
            nz += pos;
        }
        work[n] = acc;
        n += open & (acc >= floor);
    }
    for (size_t t = 0; !at && t < T;) {
        if (s[t] <= 0) {
            t++;
            continue;
        }
        double sum = 0;
        while (t < T && s[t] > 0) {
            sum += s[t++];
            nz++;
        }
        if (sum >= floor) work[n++] = sum;
    }
    *nonzero = nz;
    if (n == 0) return 0;
    if (n < 10) return caimg_ts_median(work, n);
    return caimg_ts_kde_mode(work, n, work + n, 1);
}

/* The mode of the residual y - c (c NULL: of y), by a Gaussian kernel
 * density estimate with a bandwidth tied to the noise (Silverman's rule
 * for Gaussian noise of sd sn: 0.9 sn T^-1/5), in two stages so that a
 * trace with large transients costs no more than a quiet one: a coarse
 * grid over the whole range, then a fine one within 4 sn of the coarse
 * mode.  `work` holds 2 * 512 doubles. */
CAIMG_SIMD_CLONES
static double mode_on_grid(const double *y, const double *c, size_t T, size_t step,
                           double lo, double hi, double h, double *work)
{
    enum { NB = 512 };
    double *hist = work, *dens = work + NB;
    double dx = (hi - lo) / (NB - 1);
    if (dx < h / 4) dx = h / 4;
    size_t nb = (size_t)((hi - lo) / dx) + 2;
    if (nb > NB) nb = NB;
    /* Four interleaved histograms of integer counts: consecutive samples
     * often fall in the same bin, and one histogram would make each
     * increment wait for the previous one (an integer increment waits
     * less than a floating-point one).  The bins of four samples at a time
     * are found in vectors, without a branch: a sample off the grid (or
     * NaN) goes to the spare bin NB, which is not read.  Finding the bins
     * of a block first and counting them after keeps the vector and the
     * integer work apart (taking the four bins out of a vector one by one
     * for the increments cost more than the rest: ~30% less time). */
    uint32_t cnt[4][NB + 1];
    memset(cnt, 0, sizeof cnt);
    double inv = 1 / dx, top = (double)nb;
    const caimg_v4d lo4 = {lo, lo, lo, lo}, inv4 = {inv, inv, inv, inv}, half = {0.5, 0.5, 0.5, 0.5},
                zero = {0, 0, 0, 0}, top4 = {top, top, top, top},
                spare = {NB, NB, NB, NB};
    /* In blocks: first the bins of the block's samples, in vectors, then
     * the counts, a plain loop of increments. */
    enum { BLK = 256 };
    int32_t kb[BLK];
    size_t i = 0, t = 0;
    while (t + 3 * step < T) {
        size_t m = 0;
        for (; m < BLK && t + 3 * step < T; t += 4 * step, m += 4) {
            caimg_v4d v;
            if (step == 1) {
                /* Contiguous samples: one load each (the general case
                 * gathers them one by one). */
                v = ar_load4(y + t);
                if (c) v -= ar_load4(c + t);
            } else {
                v = (caimg_v4d){y[t], y[t + step], y[t + 2 * step], y[t + 3 * step]};
                if (c) v -= (caimg_v4d){c[t], c[t + step], c[t + 2 * step], c[t + 3 * step]};
            }
            caimg_v4d q = (v - lo4) * inv4 + half;
            ar_v4i in = (q >= zero) & (q < top4);
            q = (caimg_v4d)(((ar_v4i)q & in) | ((ar_v4i)spare & ~in));
            ar_v4s k = __builtin_convertvector(q, ar_v4s);
            memcpy(kb + m, &k, sizeof k);
        }
        for (size_t j = 0; j < m; j += 4) {
            cnt[0][kb[j]]++;
            cnt[1][kb[j + 1]]++;
            cnt[2][kb[j + 2]]++;
            cnt[3][kb[j + 3]]++;
        }
        i += m;
    }
    for (; t < T; t += step, i++) {
        double v = c ? y[t] - c[t] : y[t];
        double q = (v - lo) * inv + 0.5;
        if (q >= 0 && q < top) cnt[i & 3][(size_t)(long)q]++;
    }
    for (size_t k = 0; k < nb; k++)
        hist[k] = (double)cnt[0][k] + (double)cnt[1][k] + (double)cnt[2][k] + (double)cnt[3][k];
    double sig = h / dx;
    size_t rad = (size_t)(3 * sig + 1);
    if (rad >= nb) rad = nb - 1;
    double kern[NB];
    for (size_t j = 0; j <= rad; j++) kern[j] = exp(-0.5 * ((double)j / sig) * ((double)j / sig));
    return lo + dx * (double)caimg_ts_smooth_argmax(hist, nb, kern, rad, dens);
}

/* The same, when the mode is known to lie near `b0` (after a pass with
 * the baseline b0, the residual is noise around a slightly better b):
 * only the fine stage, within 6 sn of b0. */
static double residual_mode_near(const double *y, const double *c, size_t T, double sn,
                                 double b0, double *work)
{
    double h = 0.9 * sn * pow((double)T, -0.2);
    if (!(h > 0)) return b0;
    return mode_on_grid(y, c, T, 1, b0 - 6 * sn, b0 + 6 * sn, h, work);
}

/* Elementwise loops of the per-trace pipeline, four frames at a time: at
 * -O2 GCC leaves loops of unknown length scalar, and these three passes
 * over the trace cost as much as the autocovariance.  Each element gets
 * the same single operation as in a plain loop, so the results are
 * identical. */
static void vec_sub_const(double *y, size_t T, double off)
{
    size_t t = 0;
    const caimg_v4d o = {off, off, off, off};
    for (; t + 4 <= T; t += 4) {
        caimg_v4d v = ar_load4(y + t) - o;
        memcpy(y + t, &v, sizeof v);
    }
    for (; t < T; t++) y[t] -= off;
}

static void vec_sub(double *r, const double *y, const double *c, size_t T)
{
    size_t t = 0;
    for (; t + 4 <= T; t += 4) {
        caimg_v4d v = ar_load4(y + t) - ar_load4(c + t);
        memcpy(r + t, &v, sizeof v);
    }
    for (; t < T; t++) r[t] = y[t] - c[t];
}

static void vec_narrow(float *x, const double *y, size_t T)
{
    typedef float v4f __attribute__((vector_size(16), aligned(4), may_alias));
    size_t t = 0;
    for (; t + 4 <= T; t += 4) *(v4f *)(x + t) = __builtin_convertvector(ar_load4(y + t), v4f);
    for (; t < T; t++) x[t] = (float)y[t];
}

/* The mode of y[0..T), whose smallest and largest values are lo and hi. */
static double residual_mode(const double *y, size_t T, double lo, double hi, double sn,
                            double *work)
{
    if (!(hi > lo)) return lo;
    double h = 0.9 * sn * pow((double)T, -0.2);
    if (!(h > 0)) h = (hi - lo) / 100;
    /* The coarse stage only needs to land near the mode: every 4th frame. */
    double m = mode_on_grid(y, NULL, T, T > 4000 ? 4 : 1, lo, hi, fmax(h, (hi - lo) / 128), work);
    return mode_on_grid(y, NULL, T, 1, fmax(lo, m - 4 * sn - 4 * h), fmin(hi, m + 4 * sn + 4 * h),
                        h, work);
}

/* caimg_deconv_execute() on the trace yin, or (yin NULL) on the trace yf
 * in single precision, which is widened as it is copied. */
static int deconv_run(const caimg_deconv_plan *plan, caimg_deconv_ws *ws, const double *yin,
                      const float *yf, double *c, double *s, caimg_deconv_info *info,
                      size_t roi)
{
    const caimg_deconv_params *pp = &plan->p;
    size_t T = plan->T;
    caimg_deconv_info inf;
    memset(&inf, 0, sizeof inf);
    ws->s_pools = 0;   /* until a solve sets it (caimg_deconv_traces() reads it) */
    double *y = ws->y;
    /* Copy, look for non-finite samples, sum and find the range in one
     * pass (four partial sums: one running sum is a chain of dependent
     * additions); the repair pass runs only when there are bad samples. */
    int anybad = 0;
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0, lo = INFINITY, hi = -INFINITY;
    size_t t4 = T & ~(size_t)3;
    for (size_t t = 0; t < t4; t += 4) {
        double v0, v1, v2, v3;
        if (yin) {
            v0 = yin[t]; v1 = yin[t + 1]; v2 = yin[t + 2]; v3 = yin[t + 3];
        } else {
            v0 = yf[t]; v1 = yf[t + 1]; v2 = yf[t + 2]; v3 = yf[t + 3];
        }
        y[t] = v0; y[t + 1] = v1; y[t + 2] = v2; y[t + 3] = v3;
        a0 += v0; a1 += v1; a2 += v2; a3 += v3;
        /* Plain comparisons (fmin would be a library call); a NaN is
         * caught by the sum below. */
        double l01 = v0 < v1 ? v0 : v1, l23 = v2 < v3 ? v2 : v3, h01 = v0 > v1 ? v0 : v1,
               h23 = v2 > v3 ? v2 : v3;
        double l = l01 < l23 ? l01 : l23, h = h01 > h23 ? h01 : h23;
        lo = l < lo ? l : lo;
        hi = h > hi ? h : hi;
    }
    for (size_t t = t4; t < T; t++) {
        double v = yin ? yin[t] : yf[t];
        y[t] = v;
        a0 += v;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    double off = (a0 + a1) + (a2 + a3);
    anybad = !isfinite(off);
    size_t bad = anybad ? caimg_ts_fill_nonfinite(y, T) : 0;
    if (bad) {
        inf.flags |= CAIMG_DECONV_NONFINITE;
        caimg_warn("ROI %zu: %zu of %zu frames are NaN or infinite; replaced by linear "
                   "interpolation", roi, bad, T);
        off = 0;
        lo = hi = y[0];
        for (size_t t = 0; t < T; t++) {
            off += y[t];
            if (y[t] < lo) lo = y[t];
            if (y[t] > hi) hi = y[t];
        }
    }
    /* Centre the trace: a large offset (raw fluorescence) would cost
     * precision in the residual sums. */
    off /= (double)T;
    vec_sub_const(y, T, off);
    ws->boff = off;
    double range = hi - lo;
    double *cc = c ? c : ws->oc, *ss = s ? s : ws->os;

    int have_g = plan->have_g;
    double g[2] = {0, 0};
    if (have_g) {
        g[0] = plan->g_fixed[0];
        g[1] = plan->g_fixed[1];
    }
    if (!(range > 0)) {
        inf.flags |= CAIMG_DECONV_ZERO;
        caimg_warn("ROI %zu: the trace is constant; no spikes", roi);
        memset(cc, 0, T * sizeof *cc);
        memset(ss, 0, T * sizeof *ss);
        inf.b = off;
        if (!have_g) {
            g[0] = plan->g_fallback[0];
            g[1] = plan->g_fallback[1];
        }
        inf.g[0] = g[0];
        inf.g[1] = g[1];
        if (info) *info = inf;
        return CAIMG_OK;
    }

    double sn = pp->sn;
    if (!(sn > 0)) caimg_noise_psd(plan->noise, y, ws->nwork, &sn);

    int p = pp->p, estimated = 0;
    if (!have_g) {
        size_t need = 2 * ((size_t)p + (size_t)(pp->lags > 0 ? pp->lags : 0)) + 2;
        double td = 0;
        if (T < need) {
            inf.flags |= CAIMG_DECONV_SHORT;
            caimg_warn("ROI %zu: %zu frames are too few to estimate the AR(%d) decay "
                       "(need %zu); using the fallback decay %g s", roi, T, p, need,
                       pp->fallback_decay);
        } else if (caimg_ar_estimate(y, T, p, sn, pp->lags, pp->fudge, g) ||
                   caimg_ar_to_tau(g, p, pp->fs, &td, NULL) ||
                   td < pp->tau_min || td > pp->tau_max) {
            inf.flags |= CAIMG_DECONV_G_FALLBACK;
            caimg_clear_error();
            if (td > 0)
                caimg_warn("ROI %zu: estimated decay %.3g s is outside %g..%g s; using the "
                           "fallback decay %g s", roi, td, pp->tau_min, pp->tau_max,
                           pp->fallback_decay);
            else
                caimg_warn("ROI %zu: the autocovariance gives no stable decay; using the "
                           "fallback decay %g s", roi, pp->fallback_decay);
        } else {
            estimated = 1;
        }
        if (!estimated) {
            g[0] = plan->g_fallback[0];
            g[1] = plan->g_fallback[1];
        }
    }

    int pe = (p == 2 && g[1] != 0) ? 2 : 1;
    double W = kernel_energy(pe, g, T);
    double zfloor = pp->smin_z * sn / sqrt(W);
    double b = pp->baseline == CAIMG_DECONV_B_FIXED ? pp->b - off : 0;
    double lam = 0, smin = 0;
#define PEN_LAMBDA() (pp->lambda >= 0 ? pp->lambda : pp->lambda_z * sn * sqrt(W))
    double scale = sn > 0 ? sn : range;
    caimg_deconv_method method = pp->method;
    int refine = estimated && pp->refine_g;
    if (pp->baseline == CAIMG_DECONV_B_MODE) {
        /* Robust baseline, in two passes with b held fixed.  Pass 1 is
         * thresholded OASIS (events of z-score >= smin_z) with b = the mode
         * of y: its spikes are robust events, which is what the kinetics
         * refinement, the noise refinement and the baseline update need,
         * whatever the final method (the many small spikes of an
         * unthresholded solution cut transients at noise bumps, and the
         * largest pools would then be biased towards ones that start on a
         * positive noise excursion, i.e. decay too fast).  Pass 2 solves
         * the chosen problem with b = the mode of pass 1's residual. */
        /* Subtracting the offset preserves order, so the range of the
         * centred trace is the centred range. */
        b = residual_mode(y, T, lo - off, hi - off, sn, ws->work);
        smin = pp->smin > 0 ? pp->smin : zfloor;
        inf.flags |= solve_given_g(plan, ws, y, T, p, g, CAIMG_DECONV_THRESHOLDED,
                                   CAIMG_DECONV_B_FIXED, 0, sn, smin, scale, &b, NULL, cc, NULL);
        if (!(pp->sn > 0)) {
            /* The spikes' own power reaches into the PSD band (sharp rises
             * are broadband), so the first estimate is biased up on active
             * traces; the residual of pass 1 is nearly free of it.  Only a
             * decrease is accepted: a residual may also have lost some
             * noise to the fit. */
            double *r = ws->work + 6 * 512;
            vec_sub(r, y, cc, T);
            double sn2;
            caimg_noise_psd(plan->noise, r, ws->nwork, &sn2);
            if (sn2 < sn) sn = sn2;
        }
        double delta = 0;
        if (refine && refine_kinetics(plan, ws, y, p, b, g, &delta)) {
            pe = (p == 2 && g[1] != 0) ? 2 : 1;
            W = kernel_energy(pe, g, T);
        }
        zfloor = pp->smin_z * sn / sqrt(W);
        /* The common offset of the refinement (delta) is not used for b:
         * it rests on a few stretches and proved less reliable than the
         * mode of the whole residual. */
        (void)delta;
        b = residual_mode_near(y, cc, T, sn, b, ws->work);
        smin = method == CAIMG_DECONV_THRESHOLDED ? (pp->smin > 0 ? pp->smin : zfloor) : 0;
        caimg_deconv_method m = method == CAIMG_DECONV_AUTO ? CAIMG_DECONV_CONSTRAINED : method;
        inf.flags |= solve_given_g(plan, ws, y, T, p, g, m, CAIMG_DECONV_B_FIXED, PEN_LAMBDA(),
                                   sn, smin, scale, &b, &lam, cc, ss);
        if (method == CAIMG_DECONV_AUTO && lam == 0)
            inf.flags |= solve_given_g(plan, ws, y, T, p, g, CAIMG_DECONV_PENALIZED,
                                       CAIMG_DECONV_B_FIXED, PEN_LAMBDA(), sn, 0, scale, &b, &lam,
                                       cc, ss);
    } else {
        /* The constrained problem comes first whenever the baseline must
         * be estimated or the kinetics refined: it is well posed (the L1
         * penalty keeps c from absorbing a constant offset), and its
         * solution gives the baseline and the spike times the refinement
         * needs.  The thresholded problem alone is not: with lambda = 0, a
         * lower b can always be compensated by a small spike on every
         * frame. */
        int first_constrained = method == CAIMG_DECONV_CONSTRAINED ||
            method == CAIMG_DECONV_AUTO ||
            (method == CAIMG_DECONV_THRESHOLDED && pp->baseline != CAIMG_DECONV_B_FIXED) ||
            refine;
        if (first_constrained) {
            inf.flags |= solve_given_g(plan, ws, y, T, p, g, CAIMG_DECONV_CONSTRAINED,
                                       pp->baseline, 0, sn, 0, scale, &b, &lam, cc, ss);
            double delta;
            if (refine && refine_kinetics(plan, ws, y, p, b, g, &delta)) {
                pe = (p == 2 && g[1] != 0) ? 2 : 1;
                W = kernel_energy(pe, g, T);
                zfloor = pp->smin_z * sn / sqrt(W);
                inf.flags &= ~(unsigned)CAIMG_DECONV_NOCONVERGE;
                inf.flags |= solve_given_g(plan, ws, y, T, p, g, CAIMG_DECONV_CONSTRAINED,
                                           pp->baseline, 0, sn, 0, scale, &b, &lam, cc, ss);
            }
        }
        if (method == CAIMG_DECONV_THRESHOLDED) {
            smin = pp->smin > 0 ? pp->smin : zfloor;
            lam = 0;
            inf.flags |= solve_given_g(plan, ws, y, T, p, g, method, CAIMG_DECONV_B_FIXED, 0,
                                       sn, smin, scale, &b, NULL, cc, ss);
        } else if (method == CAIMG_DECONV_PENALIZED ||
                   (method == CAIMG_DECONV_AUTO && lam == 0)) {
            lam = PEN_LAMBDA();
            inf.flags |= solve_given_g(plan, ws, y, T, p, g, CAIMG_DECONV_PENALIZED, pp->baseline,
                                       lam, sn, 0, scale, &b, NULL, cc, ss);
        }
    }
#undef PEN_LAMBDA
    if (inf.flags & CAIMG_DECONV_NOCONVERGE)
        caimg_warn("ROI %zu: the baseline/lambda iterations did not converge in %d steps",
                   roi, pp->max_iter);
    double amp_floor = pp->method == CAIMG_DECONV_THRESHOLDED ? smin : zfloor;
    inf.amplitude = fit_amplitude(ss, T, ws->s_pools ? ws->pt : NULL, ws->npool, amp_floor,
                                  ws->work, &inf.nspikes);
    inf.b = b + off;
    inf.g[0] = g[0];
    inf.g[1] = pe == 2 ? g[1] : 0;
    inf.sn = sn;
    inf.lambda = lam;
    inf.smin = pp->method == CAIMG_DECONV_THRESHOLDED ? smin : 0;
    if (info) *info = inf;
    return CAIMG_OK;
}

int caimg_deconv_execute(const caimg_deconv_plan *plan, caimg_deconv_ws *ws,
                         const double *yin, double *c, double *s,
                         caimg_deconv_info *info, size_t roi)
{
    return deconv_run(plan, ws, yin, NULL, c, s, info, roi);
}

int caimg_deconv_traces(const caimg_deconv_plan *plan, size_t n, const float *Y,
                        float *c, float *s, float *spikes, caimg_deconv_info *info,
                        size_t first)
{
    if (n == 0) return CAIMG_OK;
    size_t T = plan->T;
    int nt = plan->p.threads > 0 ? plan->p.threads : caimg_nthreads();
    if ((size_t)nt > n) nt = (int)n;
    caimg_deconv_ws **ws = caimg_calloc((size_t)nt, sizeof *ws, "deconvolution workspaces");
    double **buf = caimg_calloc((size_t)nt, sizeof *buf, "deconvolution buffers");
    int status = ws && buf ? CAIMG_OK : CAIMG_ENOMEM;
    for (int i = 0; status == CAIMG_OK && i < nt; i++) {
        ws[i] = caimg_deconv_ws_alloc(plan);
        buf[i] = caimg_malloc(2 * T, sizeof(double), "deconvolution buffers");
        if (!ws[i] || !buf[i]) status = CAIMG_ENOMEM;
        else ws[i]->s_sparse = 1;   /* see the pool-start loop below */
    }
    if (status == CAIMG_OK) {
        #pragma omp parallel for schedule(dynamic, 8) num_threads(nt)
        for (size_t i = 0; i < n; i++) {
            int tid = 0;
#ifdef _OPENMP
            tid = omp_get_thread_num();
#endif
            double *cb = buf[tid], *sb = cb + T;
            float *oc = c ? c + i * T : NULL, *os = s ? s + i * T : NULL;
            float *ok = spikes ? spikes + i * T : NULL;
            /* The next trace, and this one's outputs, are fetched from
             * memory while this trace is worked on (into the second-level
             * cache: most of the work happens in between, and they fit
             * there), so that the first and last passes do not wait for
             * memory. */
            for (size_t t = 0; t < T; t += 64 / sizeof(float)) {
                if (i + 1 < n) __builtin_prefetch(Y + (i + 1) * T + t, 0, 2);
                if (oc) __builtin_prefetch(oc + t, 1, 2);
                if (os) __builtin_prefetch(os + t, 1, 2);
                if (ok) __builtin_prefetch(ok + t, 1, 2);
            }
            caimg_deconv_info inf;
            deconv_run(plan, ws[tid], NULL, Y + i * T, cb, sb, &inf, first + i);
            double inv = inf.amplitude > 0 ? 1 / inf.amplitude : 0;
            if (oc) vec_narrow(oc, cb, T);
            if (ws[tid]->s_pools) {
                /* The spikes are zero but at the pool starts. */
                const caimg_deconv_ws *w = ws[tid];
                if (os) memset(os, 0, T * sizeof *os);
                if (ok) memset(ok, 0, T * sizeof *ok);
                for (size_t j = 0; j < w->npool; j++) {
                    size_t t = w->pt[j];
                    if (os) os[t] = (float)sb[t];
                    if (ok) ok[t] = (float)(sb[t] * inv);
                }
            } else {
                if (os) vec_narrow(os, sb, T);
                if (ok)
                    for (size_t t = 0; t < T; t++) ok[t] = (float)(sb[t] * inv);
            }
            if (info) info[i] = inf;
        }
    }
    for (int i = 0; i < nt; i++) {
        if (ws) caimg_deconv_ws_free(ws[i]);
        if (buf) free(buf[i]);
    }
    free(ws);
    free(buf);
    return status;
}
