/* simulate.c -- synthetic two-photon recordings with their ground truth.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * The model is described in caimg/simulate.h.  This file has three parts:
 * drawing a simulation (caimg_sim_alloc: everything that is not a pixel),
 * rendering frames (one row at a time, analytic somata over an interpolated
 * static scene), and the truth accessors.
 */
#include <config.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "caimg/simulate.h"
#include "internal.h"
#include "simrng.h"

#define PAD 4              /* extra scene pixels beyond the motion margin */

/* ---- small numerical helpers -------------------------------------------- */

double caimg_simrng_logfact(long k)
{
    static const double small[10] = {
        0.0, 0.0, 0.6931471805599453, 1.791759469228055, 3.1780538303479458,
        4.787491742782046, 6.579251212010101, 8.525161361065415, 10.60460290274525,
        12.80182748008147};
    if (k < 10) return small[k < 0 ? 0 : k];
    double x = (double)k, x2 = x * x;
    return x * log(x) - x + 0.5 * log(6.283185307179586 * x) + 1.0 / (12.0 * x)
           - 1.0 / (360.0 * x * x2) + 1.0 / (1260.0 * x2 * x2 * x);
}

/* Cubic B-spline weights of nodes i-1 .. i+2 at fractional position t. */
static inline void bspline_w(double t, float w[4])
{
    double t2 = t * t, t3 = t2 * t, s = 1.0 - t;
    w[0] = (float)(s * s * s / 6.0);
    w[1] = (float)((4.0 - 6.0 * t2 + 3.0 * t3) / 6.0);
    w[2] = (float)((1.0 + 3.0 * t + 3.0 * t2 - 3.0 * t3) / 6.0);
    w[3] = (float)(t3 / 6.0);
}

/* Keys cubic-convolution (a = -0.5) weights of nodes i-1 .. i+2. */
static inline void keys_w(double t, double w[4])
{
    double t2 = t * t, t3 = t2 * t;
    w[0] = -0.5 * t3 + t2 - 0.5 * t;
    w[1] = 1.5 * t3 - 2.5 * t2 + 1.0;
    w[2] = -1.5 * t3 + 2.0 * t2 + 0.5 * t;
    w[3] = 0.5 * t3 - 0.5 * t2;
}

static inline long clampl(long v, long lo, long hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* In-place cubic B-spline prefilter of one line (Unser et al. 1991, mirror
 * boundaries): afterwards the B-spline with these coefficients passes
 * through the original samples. */
static void bspline_prefilter_line(double *c, size_t n, size_t stride)
{
    const double z = sqrt(3.0) - 2.0;
    if (n < 2) return;
    for (size_t k = 0; k < n; k++) c[k * stride] *= 6.0;
    /* Causal initialisation by a truncated sum (z^k < 1e-12 after 22 terms). */
    double zk = z, sum = c[0];
    size_t horizon = n < 24 ? n : 24;
    for (size_t k = 1; k < horizon; k++) {
        sum += zk * c[k * stride];
        zk *= z;
    }
    c[0] = sum;
    for (size_t k = 1; k < n; k++) c[k * stride] += z * c[(k - 1) * stride];
    c[(n - 1) * stride] = (z / (z * z - 1.0))
                          * (c[(n - 1) * stride] + z * c[(n - 2) * stride]);
    for (size_t k = n - 1; k-- > 0;)
        c[k * stride] = z * (c[(k + 1) * stride] - c[k * stride]);
}

/* ---- indicators --------------------------------------------------------- */

static const caimg_sim_indicator indicators[] = {
    {"gcamp6f", 0.19, 0.045, 0.142, "Chen et al. 2013, Nature 499:295 (in vivo, 1 AP)"},
    {"gcamp6m", 0.13, 0.080, 0.270, "Chen et al. 2013, Nature 499:295 (in vivo, 1 AP)"},
    {"gcamp6s", 0.23, 0.180, 0.550, "Chen et al. 2013, Nature 499:295 (in vivo, 1 AP)"},
    {"jgcamp7f", 0.21, 0.100, 0.182, "Zhang et al. 2023, Nature 615:884 (1 AP)"},
    {"jgcamp8f", 0.41, 0.025, 0.067, "Zhang et al. 2023, Nature 615:884 (1 AP)"},
    {"jgcamp8m", 0.76, 0.029, 0.118, "Zhang et al. 2023, Nature 615:884 (1 AP)"},
    {"jgcamp8s", 1.11, 0.057, 0.307, "Zhang et al. 2023, Nature 615:884 (1 AP)"},
    {NULL, 0, 0, 0, NULL}
};

const caimg_sim_indicator *caimg_sim_indicators(void)
{
    return indicators;
}

const caimg_sim_indicator *caimg_sim_indicator_find(const char *name)
{
    if (!name) return NULL;
    for (const caimg_sim_indicator *i = indicators; i->name; i++)
        if (strcasecmp(i->name, name) == 0) return i;
    return NULL;
}

static double kernel_tpeak(double tr, double td)
{
    return td * tr / (td - tr) * log(td / tr);
}

static double kernel_h(double t, double tr, double td)
{
    return exp(-t / td) - (tr > 0 ? exp(-t / tr) : 0.0);
}

/* Time from the peak to half the peak. */
static double kernel_thalf(double tr, double td)
{
    double tp = tr > 0 ? kernel_tpeak(tr, td) : 0.0;
    double hp = kernel_h(tp, tr, td), lo = tp, hi = tp + 60.0 * td;
    for (int it = 0; it < 200; it++) {
        double mid = 0.5 * (lo + hi);
        if (kernel_h(mid, tr, td) > 0.5 * hp) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi) - tp;
}

/* The rise constant giving time-to-peak tp for decay td (tp < td). */
static double kernel_tr_for(double tp, double td)
{
    double lo = 0.0, hi = td;
    for (int it = 0; it < 200; it++) {
        double mid = 0.5 * (lo + hi);
        if (mid <= 0 || mid >= td) break;
        if (kernel_tpeak(mid, td) < tp) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

int caimg_sim_kernel_taus(double t_peak, double t_half, double *tau_rise, double *tau_decay)
{
    if (!(t_half > 0) || !(t_peak >= 0) || !isfinite(t_half) || !isfinite(t_peak))
        return caimg_error(CAIMG_EINVAL,
                           "indicator kinetics: time to peak %g s and half-decay %g s must be "
                           "non-negative and positive", t_peak, t_half);
    if (t_peak == 0) {
        *tau_rise = 0;
        *tau_decay = t_half / log(2.0);
        return 0;
    }
    /* As tau_d falls to t_peak the kernel becomes t exp(-t/t_peak), whose
     * half-decay is 1.678 t_peak: nothing faster can be matched. */
    if (t_half <= 1.6785 * t_peak)
        return caimg_error(CAIMG_EINVAL,
                           "indicator kinetics: a half-decay of %g s is too short for a time to "
                           "peak of %g s (it must exceed 1.68 times it)", t_half, t_peak);
    double lo = log(t_peak * 1.000001), hi = log(t_half * 100.0 + t_peak * 100.0);
    for (int it = 0; it < 200; it++) {
        double mid = 0.5 * (lo + hi), td = exp(mid);
        double tr = kernel_tr_for(t_peak, td);
        if (kernel_thalf(tr, td) < t_half) lo = mid;
        else hi = mid;
    }
    *tau_decay = exp(0.5 * (lo + hi));
    *tau_rise = kernel_tr_for(t_peak, *tau_decay);
    return 0;
}

/* ---- parameters ---------------------------------------------------------- */

void caimg_sim_params_init(caimg_sim_params *p)
{
    memset(p, 0, sizeof *p);
    p->height = 512;
    p->width = 512;
    p->frames = 2000;
    p->fs = 30.0;
    p->pixel_um = 1.0;
    p->seed = 1;

    p->neurons = 0;
    p->density = 10.0;
    p->diameter = 12.0;
    p->diameter_sd = 1.5;
    p->aspect_max = 1.4;
    p->edge = 1.0;
    p->nucleus = 0.55;
    p->nucleus_brightness = 0.35;
    p->overlap = 0.1;
    p->brightness = 1.3;
    p->brightness_sd = 0.35;

    p->rate = 0.5;
    p->rate_sd = 0.8;
    p->rate_mod_sd = 0.5;
    p->rate_mod_tau = 1.0;

    p->indicator = "gcamp6f";
    p->amplitude_cv = 0.3;
    p->tau_cv = 0.1;
    p->ar_order = 2;
    p->hill = 1.0;

    p->photons = 3.0;
    p->gain = 50.0;
    p->read_noise = 20.0;
    p->offset = 100.0;

    p->texture_sd = 0.25;
    p->texture_scale = 1.5;
    p->vessels = 4.0;
    p->vignetting = 0.3;

    p->np_sd = 0.05;
    p->np_scale = 48.0;
    p->np_tau = 2.0;
    p->np_coupling = 0.5;
    p->np_contamination = 0.7;

    p->bleach = 0.15;
    p->bleach_tau = 600.0;
    p->drift_sd = 0.01;
    p->drift_tau = 30.0;
    p->baseline_drift_sd = 0.03;
    p->baseline_drift_tau = 60.0;

    p->motion_sd = 1.0;
    p->motion_tau = 1.0;
    p->jitter_sd = 0.1;
    p->jump_rate = 0.02;
    p->jump_sd = 3.0;
    p->max_shift = 10.0;
    p->deform_grid = 4;
    p->deform_tau = 2.0;

    p->stim_mode = CAIMG_SIM_STIM_NONE;
    p->stim_n = 100;
    p->stim_h = 32;
    p->stim_w = 32;
    p->stim_alpha = 1.0;
    p->stim_contrast = 0.3;
    p->grating_ori = 8;
    p->grating_sf_n = 3;
    p->grating_sf[0] = 2;
    p->grating_sf[1] = 4;
    p->grating_sf[2] = 8;
    p->grating_phase = 4;
    p->stim_duration = 0.5;
    p->stim_isi = 0.5;
    p->stim_start = 1.0;
    p->stim_repeats = 10;
    p->stim_random = 1;
    p->stim_latency = 0.05;
    p->frac_complex = 0.5;
    p->frac_responsive = 0.8;
    p->peak_rate = 8.0;
    p->peak_rate_sd = 0.5;
    p->rf_sigma = 0.08;
    p->rf_sigma_sd = 0.3;
    p->rf_cycles = 0.5;
    p->rf_exponent = 2.0;
    p->retino_span = 0.4;
    p->retino_scatter = 0.08;
}

int caimg_sim_params_preset(caimg_sim_params *p, const char *name)
{
    if (name && strcasecmp(name, "typical") == 0) {
        /* The defaults are the typical field; re-applying them would lose
         * the user's size and length, so only the field's character is set. */
        caimg_sim_params d;
        caimg_sim_params_init(&d);
        p->density = d.density;
        p->neurons = 0;
        p->overlap = d.overlap;
        p->brightness = d.brightness;
        p->rate = d.rate;
        p->photons = d.photons;
        p->snr = 0;
        p->motion_sd = d.motion_sd;
        p->jump_rate = d.jump_rate;
        return 0;
    }
    if (name && strcasecmp(name, "hard") == 0) {
        p->density = 25.0;
        p->neurons = 0;
        p->overlap = 0.35;
        p->brightness = 0.9;
        p->rate = 0.2;
        p->photons = 1.2;
        p->snr = 0;
        p->motion_sd = 1.5;
        p->jump_rate = 0.05;
        return 0;
    }
    return caimg_error(CAIMG_EINVAL, "unknown simulation preset '%s' (known: typical, hard)",
                       name ? name : "(null)");
}

/* ---- the simulation object ------------------------------------------------ */

/* Per-neuron constants of the footprint, precomputed for rendering. */
typedef struct {
    float cy, cx, c, s, ira, irb, e, nuc, nb, rbox;
} soma_fast;

struct caimg_sim {
    caimg_sim_params p;
    char indicator[32];
    size_t Y, X, T, N;
    caimg_sim_truth tr;

    /* Geometry. */
    caimg_sim_soma *soma;
    soma_fast *sf;

    /* Motion. */
    float *shifts;             /* [T][2] */
    float *deform;             /* [T][G][G][2] or NULL */
    size_t G;
    double gsy, gsx;
    double margin_def;         /* extra box margin for somata under deformation */
    int keys_cidx_ok;

    /* Scene: B-spline coefficients of the normalised static neuropil P/photons. */
    size_t O, SY, SX;          /* scene offset and size */
    float *coef;

    /* Neuropil activity field: B-spline nodes [T][NY][NX], node j at (j - J0) S. */
    size_t NY, NX;
    long J0y, J0x;
    double S;
    float *npc;                /* [T][NY][NX] */
    float *w0;                 /* [T] */

    /* Activity. */
    float *soma_s;             /* [N][T] S_i(t), photons at a = 1, before G */
    float *gg;                 /* [T] global gain */

    /* Truth arrays (the truth struct points into these). */
    int64_t *pix_start;
    int32_t *pix_index;
    float *pix_weight, *pix_body, *brightness, *rate, *spikes, *calcium, *g, *alpha,
          *amplitude, *tau_rise, *tau_decay, *baseline, *neuropil, *snr, *response;
    caimg_stimset *stim;
    caimg_presentation *sched;
    size_t npres;
    caimg_rf *rf;
    simrng_ptab *ptab;         /* sampling tables for the pixel noise */
    /* Deformation: Keys weights and clamped node columns of every pixel
     * column, per row parity (bidi moves odd rows), fixed for the run. */
    double *kxw;               /* [2][X][4] */
    int *kxi;                  /* [2][X][4] */
};

size_t caimg_sim_height(const caimg_sim *s) { return s->Y; }
size_t caimg_sim_width(const caimg_sim *s) { return s->X; }
size_t caimg_sim_frames_total(const caimg_sim *s) { return s->T; }
size_t caimg_sim_neurons(const caimg_sim *s) { return s->N; }
const caimg_sim_params *caimg_sim_get_params(const caimg_sim *s) { return &s->p; }
const caimg_sim_truth *caimg_sim_get_truth(const caimg_sim *s) { return &s->tr; }

void caimg_sim_free(caimg_sim *s)
{
    if (!s) return;
    free(s->soma);
    free(s->sf);
    free(s->shifts);
    free(s->deform);
    free(s->coef);
    free(s->npc);
    free(s->w0);
    free(s->soma_s);
    free(s->gg);
    free(s->pix_start);
    free(s->pix_index);
    free(s->pix_weight);
    free(s->pix_body);
    free(s->brightness);
    free(s->rate);
    free(s->spikes);
    free(s->calcium);
    free(s->g);
    free(s->alpha);
    free(s->amplitude);
    free(s->tau_rise);
    free(s->tau_decay);
    free(s->baseline);
    free(s->neuropil);
    free(s->snr);
    free(s->response);
    caimg_stimset_free(s->stim);
    free(s->sched);
    free(s->rf);
    free(s->ptab);
    free(s->kxw);
    free(s->kxi);
    free(s);
}

/* ---- footprints ---------------------------------------------------------- */

static inline float soft_step(float rho, float at, float e)
{
    if (rho <= at - e) return 1.0f;
    if (rho >= at + e) return 0.0f;
    return 0.5f * (1.0f + cosf(1.5707963f * (rho - (at - e)) / e));
}

static inline void soma_fast_eval(const soma_fast *f, float y, float x, float *weight,
                                  float *body)
{
    float dy = y - f->cy, dx = x - f->cx;
    float u = (dx * f->c + dy * f->s) * f->ira;
    float v = (-dx * f->s + dy * f->c) * f->irb;
    float rho2 = u * u + v * v, lim = 1.0f + f->e;
    if (rho2 >= lim * lim) {
        *weight = 0;
        if (body) *body = 0;
        return;
    }
    float rho = sqrtf(rho2);
    float m = soft_step(rho, 1.0f, f->e);
    float n = f->nuc > 0 ? soft_step(rho, f->nuc, f->e) : 0.0f;
    *weight = m * (1.0f - (1.0f - f->nb) * n);
    if (body) *body = m;
}

static void soma_fast_make(const caimg_sim_soma *s, soma_fast *f)
{
    f->cy = (float)s->cy;
    f->cx = (float)s->cx;
    f->c = (float)cos(s->theta);
    f->s = (float)sin(s->theta);
    f->ira = (float)(1.0 / s->ra);
    f->irb = (float)(1.0 / s->rb);
    f->e = (float)(s->edge / sqrt(s->ra * s->rb));
    if (f->e < 1e-3f) f->e = 1e-3f;
    f->nuc = (float)s->nucleus;
    f->nb = (float)s->nucleus_brightness;
    f->rbox = (float)((s->ra > s->rb ? s->ra : s->rb) * (1.0 + f->e) + 1.0);
}

void caimg_sim_soma_eval(const caimg_sim_soma *s, double y, double x, float *weight,
                         float *body)
{
    soma_fast f;
    soma_fast_make(s, &f);
    float w, b;
    soma_fast_eval(&f, (float)y, (float)x, &w, &b);
    if (weight) *weight = w;
    if (body) *body = b;
}

/* ---- validation ------------------------------------------------------------ */

#define REQUIRE(cond, ...)                                             \
    do {                                                               \
        if (!(cond)) return caimg_error(CAIMG_EINVAL, __VA_ARGS__);    \
    } while (0)

static int nonneg(double v) { return isfinite(v) && v >= 0; }
static int positive(double v) { return isfinite(v) && v > 0; }

static int validate(const caimg_sim_params *p)
{
    REQUIRE(p->height >= 8 && p->width >= 8 && p->height <= 65536 && p->width <= 65536,
            "field of view %zux%zu: height and width must be between 8 and 65536 pixels",
            p->height, p->width);
    REQUIRE(positive(p->fs), "frame rate fs = %g must be positive", p->fs);
    REQUIRE(p->frames > 0 || p->stim_mode != CAIMG_SIM_STIM_NONE,
            "frames must be positive (0 is allowed only in stimulus mode)");
    REQUIRE(nonneg(p->density), "density %g must be >= 0", p->density);
    REQUIRE(isfinite(p->diameter) && p->diameter >= 3 && p->diameter <= 200,
            "soma diameter %g must be between 3 and 200 pixels", p->diameter);
    REQUIRE(nonneg(p->diameter_sd), "diameter_sd must be >= 0");
    REQUIRE(isfinite(p->aspect_max) && p->aspect_max >= 1 && p->aspect_max <= 4,
            "aspect_max %g must be in [1, 4]", p->aspect_max);
    REQUIRE(isfinite(p->edge) && p->edge >= 0.1 && p->edge <= p->diameter / 4,
            "edge %g must be in [0.1, diameter/4]", p->edge);
    REQUIRE(isfinite(p->nucleus) && p->nucleus >= 0 && p->nucleus < 0.9,
            "nucleus %g must be in [0, 0.9)", p->nucleus);
    REQUIRE(isfinite(p->nucleus_brightness) && p->nucleus_brightness >= 0
            && p->nucleus_brightness <= 1, "nucleus_brightness must be in [0, 1]");
    REQUIRE(isfinite(p->overlap) && p->overlap >= 0 && p->overlap <= 0.9,
            "overlap %g must be in [0, 0.9]", p->overlap);
    REQUIRE(positive(p->brightness) && nonneg(p->brightness_sd),
            "brightness must be positive and brightness_sd >= 0");
    REQUIRE(nonneg(p->rate) && nonneg(p->rate_sd) && nonneg(p->rate_mod_sd)
            && positive(p->rate_mod_tau), "firing-rate parameters must be >= 0 (tau > 0)");
    REQUIRE(p->ar_order == 1 || p->ar_order == 2, "ar_order %d must be 1 or 2", p->ar_order);
    REQUIRE(nonneg(p->tau_rise) && nonneg(p->tau_decay) && nonneg(p->amplitude)
            && nonneg(p->amplitude_cv) && nonneg(p->tau_cv),
            "indicator kinetics must be >= 0");
    REQUIRE(nonneg(p->saturation) && positive(p->hill) && p->hill <= 8,
            "saturation must be >= 0 and hill in (0, 8]");
    REQUIRE(nonneg(p->photons) && nonneg(p->snr) && nonneg(p->dark),
            "photons, snr and dark must be >= 0");
    REQUIRE(p->photons > 0 || p->snr > 0, "photons must be positive (or give snr)");
    REQUIRE(positive(p->gain) && nonneg(p->read_noise) && isfinite(p->offset),
            "gain must be positive, read_noise >= 0 and offset finite");
    REQUIRE(nonneg(p->texture_sd) && isfinite(p->texture_scale) && p->texture_scale >= 0.7
            && p->texture_scale <= 50,
            "texture_sd must be >= 0 and texture_scale in [0.7, 50] (finer texture "
            "would alias)");
    REQUIRE(nonneg(p->vessels) && p->vessels <= 100 && isfinite(p->vignetting)
            && p->vignetting >= 0 && p->vignetting < 1,
            "vessels must be in [0, 100] and vignetting in [0, 1)");
    REQUIRE(nonneg(p->np_sd) && isfinite(p->np_scale) && p->np_scale >= 8
            && positive(p->np_tau) && nonneg(p->np_coupling) && isfinite(p->np_contamination)
            && p->np_contamination >= 0 && p->np_contamination <= 1,
            "neuropil parameters: np_sd >= 0, np_scale >= 8, np_tau > 0, np_coupling >= 0, "
            "np_contamination in [0, 1]");
    REQUIRE(isfinite(p->bleach) && p->bleach >= 0 && p->bleach < 1 && positive(p->bleach_tau)
            && nonneg(p->drift_sd) && p->drift_sd < 0.3 && positive(p->drift_tau)
            && nonneg(p->baseline_drift_sd) && p->baseline_drift_sd < 0.3
            && positive(p->baseline_drift_tau),
            "bleach in [0, 1), drift s.d. in [0, 0.3) and time constants > 0");
    REQUIRE(nonneg(p->motion_sd) && positive(p->motion_tau) && nonneg(p->jitter_sd)
            && nonneg(p->jump_rate) && nonneg(p->jump_sd) && nonneg(p->max_shift)
            && p->max_shift <= 1000,
            "motion parameters must be >= 0 (tau > 0, max_shift <= 1000)");
    REQUIRE(p->deform_grid >= 2 && p->deform_grid <= 64 && nonneg(p->deform_sd)
            && p->deform_sd <= 50 && positive(p->deform_tau),
            "deform_grid must be in [2, 64], deform_sd in [0, 50] and deform_tau > 0");
    REQUIRE(isfinite(p->bidi) && fabs(p->bidi) <= 50, "bidi offset %g must be in [-50, 50]",
            p->bidi);
    REQUIRE(p->stim_mode >= CAIMG_SIM_STIM_NONE && p->stim_mode <= CAIMG_SIM_STIM_GRATINGS,
            "unknown stimulus mode %d", p->stim_mode);
    if (p->stim_mode != CAIMG_SIM_STIM_NONE) {
        REQUIRE(positive(p->stim_duration) && nonneg(p->stim_isi) && nonneg(p->stim_start)
                && nonneg(p->stim_latency) && p->stim_repeats > 0,
                "stimulus timing: duration > 0, isi/start/latency >= 0, repeats > 0");
        REQUIRE(isfinite(p->frac_complex) && p->frac_complex >= 0 && p->frac_complex <= 1
                && isfinite(p->frac_responsive) && p->frac_responsive >= 0
                && p->frac_responsive <= 1,
                "frac_complex and frac_responsive must be in [0, 1]");
        REQUIRE(nonneg(p->peak_rate) && nonneg(p->peak_rate_sd) && positive(p->rf_sigma)
                && nonneg(p->rf_sigma_sd) && positive(p->rf_cycles)
                && positive(p->rf_exponent) && p->rf_exponent <= 6
                && nonneg(p->retino_span) && nonneg(p->retino_scatter),
                "receptive-field parameters must be positive (exponent <= 6)");
        if (p->stim_mode == CAIMG_SIM_STIM_USER)
            REQUIRE(p->stim_images && p->stim_n > 0 && p->stim_h > 0 && p->stim_w > 0,
                    "stimulus mode 'user' needs images");
        else
            REQUIRE(p->stim_h >= 4 && p->stim_w >= 4 && p->stim_h <= 4096 && p->stim_w <= 4096,
                    "stimulus images must be between 4x4 and 4096x4096 pixels");
        if (p->stim_mode == CAIMG_SIM_STIM_PINK)
            REQUIRE(p->stim_n > 0 && positive(p->stim_contrast) && isfinite(p->stim_alpha),
                    "1/f stimuli need a positive count and contrast");
        if (p->stim_mode == CAIMG_SIM_STIM_GRATINGS)
            REQUIRE(p->grating_ori > 0 && p->grating_phase > 0 && p->grating_sf_n > 0
                    && p->grating_sf_n <= 8,
                    "gratings need orientations, phases and 1 to 8 spatial frequencies");
        if (p->shifts) REQUIRE(p->frames > 0, "give frames explicitly when giving shifts");
    }
    return 0;
}

/* ---- drawing helpers ------------------------------------------------------- */

/* A stationary Ornstein-Uhlenbeck process of s.d. sd and time constant tau
 * (seconds) sampled at fs, written to out[k * stride] for k < n. */
static void ou_fill(simrng *r, double sd, double tau, double fs, size_t n, float *out,
                    size_t stride)
{
    double rho = exp(-1.0 / (fs * tau)), k = sqrt(1.0 - rho * rho);
    double x = sd * simrng_normal(r);
    for (size_t i = 0; i < n; i++) {
        if (i) x = rho * x + k * sd * simrng_normal(r);
        out[i * stride] = (float)x;
    }
}

static double lognormal(simrng *r, double median, double sd)
{
    return median * exp(sd * simrng_normal(r));
}

/* Separable Gaussian blur of a sy x sx image in place (zero padding beyond
 * the borders is harmless: the scene is larger than what is ever seen). */
static int gauss_blur(float *img, size_t sy, size_t sx, double sigma)
{
    long rad = (long)ceil(4.0 * sigma);
    size_t nk = (size_t)(2 * rad + 1);
    size_t nl = sy > sx ? sy : sx;
    double *k = caimg_malloc(nk, sizeof *k, "a blur kernel");
    double *line = caimg_malloc(nl, sizeof *line, "a blur line");
    if (!k || !line) {
        free(k);
        free(line);
        return CAIMG_ENOMEM;
    }
    double ks = 0;
    for (long i = -rad; i <= rad; i++) ks += k[i + rad] = exp(-0.5 * (double)(i * i) / (sigma * sigma));
    for (size_t i = 0; i < nk; i++) k[i] /= ks;
    for (size_t y = 0; y < sy; y++) {
        float *row = img + y * sx;
        for (size_t x = 0; x < sx; x++) {
            double a = 0;
            for (long i = -rad; i <= rad; i++) {
                long xx = (long)x + i;
                if (xx >= 0 && xx < (long)sx) a += k[i + rad] * row[xx];
            }
            line[x] = a;
        }
        for (size_t x = 0; x < sx; x++) row[x] = (float)line[x];
    }
    for (size_t x = 0; x < sx; x++) {
        for (size_t y = 0; y < sy; y++) {
            double a = 0;
            for (long i = -rad; i <= rad; i++) {
                long yy = (long)y + i;
                if (yy >= 0 && yy < (long)sy) a += k[i + rad] * img[(size_t)yy * sx + x];
            }
            line[y] = a;
        }
        for (size_t y = 0; y < sy; y++) img[y * sx + x] = (float)line[y];
    }
    free(k);
    free(line);
    return 0;
}

/* ---- motion -------------------------------------------------------------- */

static int draw_motion(caimg_sim *s)
{
    const caimg_sim_params *p = &s->p;
    size_t T = s->T;
    s->shifts = caimg_malloc(T * 2, sizeof(float), "the shift trajectory");
    if (!s->shifts) return CAIMG_ENOMEM;
    double maxs = 0;
    if (p->shifts) {
        for (size_t i = 0; i < 2 * T; i++) {
            if (!isfinite(p->shifts[i]) || fabs(p->shifts[i]) > 1000)
                return caimg_error(CAIMG_EINVAL, "given shift of frame %zu is %g; shifts must "
                                   "be finite and at most 1000 pixels", i / 2,
                                   (double)p->shifts[i]);
            s->shifts[i] = p->shifts[i];
        }
    } else {
        for (int ax = 0; ax < 2; ax++) {
            simrng r = simrng_key(p->seed, SIMRNG_MOTION, (uint64_t)ax, 0);
            simrng rj = simrng_key(p->seed, SIMRNG_JUMP, (uint64_t)ax, 0);
            ou_fill(&r, p->motion_sd, p->motion_tau, p->fs, T, s->shifts + ax, 2);
            /* Jumps: the animal shifts to a new resting position, e.g. when it
             * starts or stops running; the slow walk continues around it. */
            double pj = 1.0 - exp(-p->jump_rate / p->fs), jump = 0;
            simrng rjit = simrng_key(p->seed, SIMRNG_MOTION, (uint64_t)ax, 1);
            for (size_t t = 0; t < T; t++) {
                if (t > 0 && simrng_uniform(&rj) < pj) jump = p->jump_sd * simrng_normal(&rj);
                double v = s->shifts[2 * t + ax] + jump + p->jitter_sd * simrng_normal(&rjit);
                if (v > p->max_shift) v = p->max_shift;
                if (v < -p->max_shift) v = -p->max_shift;
                s->shifts[2 * t + ax] = (float)v;
            }
        }
    }
    for (size_t i = 0; i < 2 * T; i++)
        if (fabs(s->shifts[i]) > maxs) maxs = fabs(s->shifts[i]);

    double maxd = 0;
    s->G = p->deform_grid;
    if (p->deform_sd > 0) {
        size_t G = s->G, nn = G * G;
        s->deform = caimg_malloc(T * nn * 2, sizeof(float), "the deformation field");
        if (!s->deform) return CAIMG_ENOMEM;
        for (size_t j = 0; j < nn * 2; j++) {
            simrng r = simrng_key(p->seed, SIMRNG_DEFORM, j, 0);
            ou_fill(&r, p->deform_sd, p->deform_tau, p->fs, T, s->deform + j, nn * 2);
        }
        /* Zero mean over the nodes: the frame-average translation belongs to
         * the rigid shift, so rigid and piecewise-rigid estimates are
         * compared with the right parts of the truth. */
        for (size_t t = 0; t < T; t++)
            for (int c = 0; c < 2; c++) {
                float *d = s->deform + t * nn * 2;
                double m = 0;
                for (size_t j = 0; j < nn; j++) m += d[2 * j + c];
                m /= (double)nn;
                for (size_t j = 0; j < nn; j++) {
                    d[2 * j + c] = (float)(d[2 * j + c] - m);
                    if (fabs(d[2 * j + c]) > maxd) maxd = fabs(d[2 * j + c]);
                }
            }
        s->gsy = (double)(s->Y - 1) / (double)(G - 1);
        s->gsx = (double)(s->X - 1) / (double)(G - 1);
    }
    /* Keys interpolation overshoots its nodes by at most a factor 1.25 per
     * axis, so 1.5625 bounds the field; somata boxes get twice that as
     * slack because the field varies across a box. */
    double maxu = maxs + 1.5625 * maxd;
    s->margin_def = s->deform ? ceil(2.0 * 1.5625 * maxd) + 1.0 : 0.0;
    s->tr.max_abs_shift = maxu;
    s->O = (size_t)ceil(maxu + fabs(p->bidi)) + 3 + PAD;
    return 0;
}

void caimg_sim_deform_eval(const float *nodes, size_t gy, size_t gx, double sy, double sx,
                           double y, double x, double *dy, double *dx)
{
    double uy = y / sy, ux = x / sx;
    long iy = (long)floor(uy), ix = (long)floor(ux);
    double wy[4], wx[4];
    keys_w(uy - (double)iy, wy);
    keys_w(ux - (double)ix, wx);
    double ay = 0, ax = 0;
    for (int j = 0; j < 4; j++) {
        long jj = clampl(iy - 1 + j, 0, (long)gy - 1);
        for (int k = 0; k < 4; k++) {
            long kk = clampl(ix - 1 + k, 0, (long)gx - 1);
            const float *nd = nodes + 2 * ((size_t)jj * gx + (size_t)kk);
            double w = wy[j] * wx[k];
            ay += w * nd[0];
            ax += w * nd[1];
        }
    }
    *dy = ay;
    *dx = ax;
}

void caimg_sim_displacement(const caimg_sim *s, size_t t, double y, double x, double *dy,
                            double *dx)
{
    double ay = 0, ax = 0;
    if (s->deform)
        caimg_sim_deform_eval(s->deform + t * s->G * s->G * 2, s->G, s->G, s->gsy, s->gsx, y, x,
                              &ay, &ax);
    *dy = s->shifts[2 * t] + ay;
    *dx = s->shifts[2 * t + 1] + ax;
}

/* ---- neurons --------------------------------------------------------------- */

static int place_neurons(caimg_sim *s)
{
    const caimg_sim_params *p = &s->p;
    size_t N = s->N;
    s->soma = caimg_calloc(N ? N : 1, sizeof *s->soma, "neuron geometry");
    s->sf = caimg_calloc(N ? N : 1, sizeof *s->sf, "neuron geometry");
    if (!s->soma || !s->sf) return CAIMG_ENOMEM;
    for (size_t i = 0; i < N; i++) {
        simrng r = simrng_key(p->seed, SIMRNG_PLACE, i, 0);
        double d = p->diameter + p->diameter_sd * simrng_normal(&r);
        if (d < 0.5 * p->diameter) d = 0.5 * p->diameter;
        if (d > 1.5 * p->diameter) d = 1.5 * p->diameter;
        if (d < 3) d = 3;
        double asp = 1.0 + (p->aspect_max - 1.0) * simrng_uniform(&r);
        double R = 0.5 * d, ra = R * sqrt(asp), rb = R / sqrt(asp);
        double th = M_PI * simrng_uniform(&r);
        double e = p->edge;
        double lim = ra * (1.0 + e / R) + 0.5;
        if (2 * lim >= (double)s->Y - 1 || 2 * lim >= (double)s->X - 1)
            return caimg_error(CAIMG_EINVAL, "somata of diameter %.1f do not fit in a %zux%zu field",
                               p->diameter, s->Y, s->X);
        int placed = 0;
        for (int attempt = 0; attempt < 5000 && !placed; attempt++) {
            double cy = lim + ((double)s->Y - 1 - 2 * lim) * simrng_uniform(&r);
            double cx = lim + ((double)s->X - 1 - 2 * lim) * simrng_uniform(&r);
            int ok = 1;
            for (size_t j = 0; j < i && ok; j++) {
                double min = (1.0 - p->overlap) * (ra + s->soma[j].ra);
                double ddy = cy - s->soma[j].cy, ddx = cx - s->soma[j].cx;
                if (ddy * ddy + ddx * ddx < min * min) ok = 0;
            }
            if (ok) {
                caimg_sim_soma *so = &s->soma[i];
                so->cy = cy;
                so->cx = cx;
                so->ra = ra;
                so->rb = rb;
                so->theta = th;
                so->edge = e;
                /* Nuclei vary in size and in how much indicator they hold
                 * (nuclear filling grows with expression time). */
                so->nucleus = p->nucleus * (0.85 + 0.3 * simrng_uniform(&r));
                so->nucleus_brightness = p->nucleus_brightness * (0.7 + 0.6 * simrng_uniform(&r));
                if (so->nucleus_brightness > 1) so->nucleus_brightness = 1;
                placed = 1;
            }
        }
        if (!placed)
            return caimg_error(CAIMG_EINVAL,
                               "cannot place neuron %zu of %zu in a %zux%zu field with overlap "
                               "%.2f: the field is too crowded; lower the neuron count or "
                               "density, or allow more overlap", i + 1, N, s->Y, s->X,
                               p->overlap);
        soma_fast_make(&s->soma[i], &s->sf[i]);
    }
    return 0;
}

static int make_footprints(caimg_sim *s)
{
    size_t N = s->N, Y = s->Y, X = s->X, cap = 0, M = 0;
    for (size_t i = 0; i < N; i++) {
        double b = s->sf[i].rbox;
        cap += (size_t)((2 * b + 2) * (2 * b + 2));
    }
    s->pix_start = caimg_malloc(N + 1, sizeof(int64_t), "footprint offsets");
    s->pix_index = caimg_malloc(cap ? 2 * cap : 2, sizeof(int32_t), "footprint pixels");
    s->pix_weight = caimg_malloc(cap ? cap : 1, sizeof(float), "footprint weights");
    s->pix_body = caimg_malloc(cap ? cap : 1, sizeof(float), "footprint masks");
    if (!s->pix_start || !s->pix_index || !s->pix_weight || !s->pix_body) return CAIMG_ENOMEM;
    for (size_t i = 0; i < N; i++) {
        const soma_fast *f = &s->sf[i];
        s->pix_start[i] = (int64_t)M;
        long y0 = (long)floor(f->cy - f->rbox), y1 = (long)ceil(f->cy + f->rbox);
        long x0 = (long)floor(f->cx - f->rbox), x1 = (long)ceil(f->cx + f->rbox);
        for (long y = y0 < 0 ? 0 : y0; y <= y1 && y < (long)Y; y++)
            for (long x = x0 < 0 ? 0 : x0; x <= x1 && x < (long)X; x++) {
                float w, b;
                soma_fast_eval(f, (float)y, (float)x, &w, &b);
                if (b <= 0) continue;
                s->pix_index[2 * M] = (int32_t)y;
                s->pix_index[2 * M + 1] = (int32_t)x;
                s->pix_weight[M] = w;
                s->pix_body[M] = b;
                M++;
            }
    }
    s->pix_start[N] = (int64_t)M;
    return 0;
}

/* ---- static anatomy ------------------------------------------------------- */

/* Value of a B-spline node grid (nodes spaced S, node j at (j - j0) S) at q. */
static double grid_bspline(const float *nodes, size_t ny, size_t nx, double S, long j0y,
                           long j0x, double qy, double qx)
{
    double uy = qy / S + (double)j0y, ux = qx / S + (double)j0x;
    long iy = (long)floor(uy), ix = (long)floor(ux);
    float wy[4], wx[4];
    bspline_w(uy - (double)iy, wy);
    bspline_w(ux - (double)ix, wx);
    double a = 0;
    for (int j = 0; j < 4; j++) {
        long jj = clampl(iy - 1 + j, 0, (long)ny - 1);
        for (int k = 0; k < 4; k++) {
            long kk = clampl(ix - 1 + k, 0, (long)nx - 1);
            a += (double)wy[j] * wx[k] * nodes[jj * (long)nx + kk];
        }
    }
    return a;
}

static void draw_vessel(const caimg_sim_params *p, size_t v, float *img, float *dist,
                        size_t SY, size_t SX)
{
    simrng r = simrng_key(p->seed, SIMRNG_VESSEL, v, 0);
    double width = 6.0 * exp(0.4 * simrng_normal(&r));
    double sig = width / 2.355, darkness = 0.5 + 0.35 * simrng_uniform(&r);
    double reach = 3.5 * sig + 1;
    for (size_t i = 0; i < SY * SX; i++) dist[i] = 1e30f;
    /* Start on a random side, heading inwards, and wander with smoothly
     * changing direction until leaving the scene: vessels cross the field. */
    int side = (int)(4 * simrng_uniform(&r)) & 3;
    double pos = simrng_uniform(&r), y, x, head;
    double H = (double)SY - 1, W = (double)SX - 1;
    switch (side) {
    case 0: y = 0; x = pos * W; head = M_PI / 2; break;
    case 1: y = H; x = pos * W; head = -M_PI / 2; break;
    case 2: y = pos * H; x = 0; head = 0; break;
    default: y = pos * H; x = W; head = M_PI; break;
    }
    head += 1.2 * (simrng_uniform(&r) - 0.5);
    double curv = 0;
    size_t maxsteps = 4 * (SY + SX);
    for (size_t step = 0; step < maxsteps; step++) {
        curv = 0.9 * curv + 0.03 * simrng_normal(&r);
        head += curv;
        double ny = y + 2.0 * sin(head), nx = x + 2.0 * cos(head);
        long by0 = (long)floor((y < ny ? y : ny) - reach), by1 = (long)ceil((y > ny ? y : ny) + reach);
        long bx0 = (long)floor((x < nx ? x : nx) - reach), bx1 = (long)ceil((x > nx ? x : nx) + reach);
        double sy = ny - y, sx = nx - x, l2 = sy * sy + sx * sx;
        for (long yy = by0 < 0 ? 0 : by0; yy <= by1 && yy < (long)SY; yy++)
            for (long xx = bx0 < 0 ? 0 : bx0; xx <= bx1 && xx < (long)SX; xx++) {
                double t = (((double)yy - y) * sy + ((double)xx - x) * sx) / l2;
                if (t < 0) t = 0;
                if (t > 1) t = 1;
                double ey = (double)yy - (y + t * sy), ex = (double)xx - (x + t * sx);
                float d2 = (float)(ey * ey + ex * ex);
                if (d2 < dist[yy * (long)SX + xx]) dist[yy * (long)SX + xx] = d2;
            }
        y = ny;
        x = nx;
        if (y < -reach || y > H + reach || x < -reach || x > W + reach) break;
    }
    for (size_t i = 0; i < SY * SX; i++)
        if (dist[i] < 1e29f)
            img[i] *= (float)(1.0 - darkness * exp(-0.5 * dist[i] / (sig * sig)));
}

static int make_scene(caimg_sim *s)
{
    const caimg_sim_params *p = &s->p;
    size_t O = s->O, SY = s->Y + 2 * O, SX = s->X + 2 * O, n = SY * SX;
    s->SY = SY;
    s->SX = SX;
    float *img = caimg_malloc(n, sizeof(float), "the static scene");
    float *tmp = caimg_malloc(n, sizeof(float), "the static scene");
    if (!img || !tmp) {
        free(img);
        free(tmp);
        return CAIMG_ENOMEM;
    }
    /* Fine texture (neurites, puncta): blurred white noise of unit s.d. */
    for (size_t y = 0; y < SY; y++) {
        simrng r = simrng_key(p->seed, SIMRNG_TEXTURE, y, 0);
        for (size_t x = 0; x < SX; x++) tmp[y * SX + x] = (float)simrng_normal(&r);
    }
    int rc = gauss_blur(tmp, SY, SX, p->texture_scale);
    if (rc) goto out;
    {
        double ss = 0;
        for (size_t i = 0; i < n; i++) ss += (double)tmp[i] * tmp[i];
        double sd = sqrt(ss / (double)n);
        for (size_t i = 0; i < n; i++) {
            double v = 1.0 + p->texture_sd * (sd > 0 ? tmp[i] / sd : 0.0);
            img[i] = (float)(v < 0.05 ? 0.05 : v);
        }
    }
    /* Large-scale brightness changes (expression, depth) and vignetting. */
    {
        const double S = 96.0;
        long j0 = (long)ceil((double)O / S) + 1;
        size_t ny = (size_t)j0 + (size_t)ceil((double)(s->Y + O) / S) + 3;
        size_t nx = (size_t)j0 + (size_t)ceil((double)(s->X + O) / S) + 3;
        float *nodes = caimg_malloc(ny * nx, sizeof(float), "brightness nodes");
        if (!nodes) {
            rc = CAIMG_ENOMEM;
            goto out;
        }
        simrng r = simrng_key(p->seed, SIMRNG_SMOOTH, 0, 0);
        for (size_t i = 0; i < ny * nx; i++) nodes[i] = (float)simrng_normal(&r);
        double yc = 0.5 * (double)(s->Y - 1), xc = 0.5 * (double)(s->X - 1);
        for (size_t y = 0; y < SY; y++)
            for (size_t x = 0; x < SX; x++) {
                double qy = (double)y - (double)O, qx = (double)x - (double)O;
                double ry = (qy - yc) / (0.5 * (double)s->Y), rx = (qx - xc) / (0.5 * (double)s->X);
                double vig = 1.0 - p->vignetting * 0.5 * (ry * ry + rx * rx);
                if (vig < 0.1) vig = 0.1;
                double sm = exp(0.3 * grid_bspline(nodes, ny, nx, S, j0, j0, qy, qx));
                img[y * SX + x] *= (float)(vig * sm);
            }
        free(nodes);
    }
    /* Blood vessels: dark tubes without indicator. */
    {
        size_t nv = (size_t)floor(p->vessels * (double)(s->Y * s->X) / (512.0 * 512.0) + 0.5);
        for (size_t v = 0; v < nv; v++) draw_vessel(p, v, img, tmp, SY, SX);
    }
    /* Normalise to mean 1 over the field of view, so `photons` is the mean
     * neuropil photon count where no soma occludes it. */
    {
        double sum = 0;
        for (size_t y = O; y < O + s->Y; y++)
            for (size_t x = O; x < O + s->X; x++) sum += img[y * SX + x];
        double m = sum / (double)(s->Y * s->X);
        for (size_t i = 0; i < n; i++) img[i] = (float)(img[i] / m);
    }
    /* Somata displace neuropil: inside a cell body only the out-of-focus
     * part (np_contamination) of the neuropil light remains. */
    for (size_t i = 0; i < n; i++) tmp[i] = 0;
    for (size_t i = 0; i < s->N; i++) {
        const soma_fast *f = &s->sf[i];
        long y0 = (long)floor(f->cy - f->rbox), y1 = (long)ceil(f->cy + f->rbox);
        long x0 = (long)floor(f->cx - f->rbox), x1 = (long)ceil(f->cx + f->rbox);
        for (long y = y0; y <= y1; y++)
            for (long x = x0; x <= x1; x++) {
                long yy = y + (long)O, xx = x + (long)O;
                if (yy < 0 || xx < 0 || yy >= (long)SY || xx >= (long)SX) continue;
                float w, b;
                soma_fast_eval(f, (float)y, (float)x, &w, &b);
                tmp[yy * (long)SX + xx] += b;
            }
    }
    for (size_t i = 0; i < n; i++) {
        double occ = tmp[i] > 1 ? 1.0 : tmp[i];
        img[i] = (float)(img[i] * (1.0 - (1.0 - p->np_contamination) * occ));
    }
    /* Cubic B-spline coefficients, rows then columns, in double. */
    {
        size_t nl = SY > SX ? SY : SX;
        double *line = caimg_malloc(nl, sizeof(double), "a prefilter line");
        if (!line) {
            rc = CAIMG_ENOMEM;
            goto out;
        }
        for (size_t y = 0; y < SY; y++) {
            for (size_t x = 0; x < SX; x++) line[x] = img[y * SX + x];
            bspline_prefilter_line(line, SX, 1);
            for (size_t x = 0; x < SX; x++) img[y * SX + x] = (float)line[x];
        }
        for (size_t x = 0; x < SX; x++) {
            for (size_t y = 0; y < SY; y++) line[y] = img[y * SX + x];
            bspline_prefilter_line(line, SY, 1);
            for (size_t y = 0; y < SY; y++) img[y * SX + x] = (float)line[y];
        }
        free(line);
    }
    s->coef = img;
    img = NULL;
out:
    free(img);
    free(tmp);
    return rc;
}

/* Normalised static neuropil (P / photons) at scene point q, any position. */
static inline float scene_static(const caimg_sim *s, double qy, double qx)
{
    double sy = qy + (double)s->O, sx = qx + (double)s->O;
    long iy = (long)floor(sy), ix = (long)floor(sx);
    float wy[4], wx[4];
    bspline_w(sy - (double)iy, wy);
    bspline_w(sx - (double)ix, wx);
    iy = clampl(iy, 1, (long)s->SY - 3);
    ix = clampl(ix, 1, (long)s->SX - 3);
    const float *c = s->coef + (iy - 1) * (long)s->SX + (ix - 1);
    float a = 0;
    for (int j = 0; j < 4; j++) {
        const float *row = c + j * (long)s->SX;
        a += wy[j] * (wx[0] * row[0] + wx[1] * row[1] + wx[2] * row[2] + wx[3] * row[3]);
    }
    return a;
}

/* ---- activity ---------------------------------------------------------------- */

/* Largest frame-sampled value of the calcium response to one spike at t = 0,
 * for AR coefficients g and innovation alpha. */
static double discrete_peak(double g1, double g2, double alpha, double tau_d, double fs)
{
    double c1 = 0, c2 = 0, best = 0;
    size_t n = (size_t)(20.0 * tau_d * fs) + 20;
    for (size_t k = 0; k < n; k++) {
        double c = g1 * c1 + g2 * c2 + (k == 0 ? alpha : 0.0);
        if (c > best) best = c;
        c2 = c1;
        c1 = c;
    }
    return best;
}

static inline double hill_fn(const caimg_sim_params *p, double K, double c)
{
    if (!(p->saturation > 0) || c <= 0) return c;
    double cn = pow(c, p->hill);
    return p->saturation * cn / (cn + pow(K, p->hill));
}

static int draw_kinetics(caimg_sim *s, double *peak_dff)
{
    const caimg_sim_params *p = &s->p;
    for (size_t i = 0; i < s->N; i++) {
        simrng r = simrng_key(p->seed, SIMRNG_NEURON, i, 1);
        double td = p->tau_decay * exp(p->tau_cv * simrng_normal(&r));
        double tr = p->ar_order == 2 ? p->tau_rise * exp(p->tau_cv * simrng_normal(&r)) : 0.0;
        if (tr > 0.8 * td) tr = 0.8 * td;
        double A = p->amplitude * exp(p->amplitude_cv * simrng_normal(&r)
                                      - 0.5 * p->amplitude_cv * p->amplitude_cv);
        double d = exp(-1.0 / (p->fs * td)), rr = tr > 0 ? exp(-1.0 / (p->fs * tr)) : 0.0;
        double alpha;
        if (tr > 0) {
            double tp = kernel_tpeak(tr, td);
            alpha = A * (d - rr) / kernel_h(tp, tr, td);
        } else {
            alpha = A;
        }
        s->tau_decay[i] = (float)td;
        s->tau_rise[i] = (float)tr;
        s->amplitude[i] = (float)A;
        s->alpha[i] = (float)alpha;
        s->g[2 * i] = (float)(d + rr);
        s->g[2 * i + 1] = (float)(-d * rr);
        double K = p->saturation > 0 ? A * pow((p->saturation - A) / A, 1.0 / p->hill) : 0.0;
        peak_dff[i] = hill_fn(p, K, discrete_peak(d + rr, -d * rr, alpha, td, p->fs));
    }
    return 0;
}

/* Hill constant for neuron i (one spike keeps its amplitude). */
static double hill_K(const caimg_sim *s, size_t i)
{
    const caimg_sim_params *p = &s->p;
    if (!(p->saturation > 0)) return 0;
    double A = s->amplitude[i];
    return A * pow((p->saturation - A) / A, 1.0 / p->hill);
}

/* Per-spike SNR of every neuron for photon level ph (see caimg_sim_truth). */
static void compute_snr(const caimg_sim *s, const float *pn, const float *rest,
                        const double *peak_dff, double ph, double *out)
{
    const caimg_sim_params *p = &s->p;
    for (size_t i = 0; i < s->N; i++) {
        double sa = 0, sa2 = 0, var = 0;
        for (int64_t k = s->pix_start[i]; k < s->pix_start[i + 1]; k++) {
            double a = s->pix_weight[k];
            size_t px = (size_t)s->pix_index[2 * k] * s->X + (size_t)s->pix_index[2 * k + 1];
            double lam = ph * (pn[px] + rest[px]) + p->dark;
            sa += a;
            sa2 += a * a;
            var += a * a * (p->gain * p->gain * lam + p->read_noise * p->read_noise);
        }
        double sig = p->gain * ph * s->brightness[i] * peak_dff[i] * sa2;
        out[i] = var > 0 ? sig / sqrt(var) : 0.0;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(const double *v, size_t n, double *scratch)
{
    if (!n) return 0;
    memcpy(scratch, v, n * sizeof *v);
    qsort(scratch, n, sizeof *scratch, cmp_double);
    return n % 2 ? scratch[n / 2] : 0.5 * (scratch[n / 2 - 1] + scratch[n / 2]);
}

static int make_stimuli(caimg_sim *s, caimg_schedule_opts *so)
{
    const caimg_sim_params *p = &s->p;
    switch (p->stim_mode) {
    case CAIMG_SIM_STIM_USER:
        s->stim = caimg_stimset_from_array(p->stim_images, p->stim_n, p->stim_h, p->stim_w);
        break;
    case CAIMG_SIM_STIM_PINK:
        s->stim = caimg_stimset_pink(p->stim_n, p->stim_h, p->stim_w, p->stim_alpha,
                                     p->stim_contrast, p->seed);
        break;
    default:
        s->stim = caimg_stimset_gratings(p->stim_h, p->stim_w, p->grating_ori, p->grating_sf,
                                         p->grating_sf_n, p->grating_phase,
                                         p->stim_contrast > 1 ? 1.0 : p->stim_contrast);
        break;
    }
    if (!s->stim) return CAIMG_EINVAL;
    caimg_schedule_opts_init(so);
    so->start = (size_t)floor(p->stim_start * p->fs + 0.5);
    so->duration = (size_t)floor(p->stim_duration * p->fs + 0.5);
    if (so->duration < 1) so->duration = 1;
    so->isi = (size_t)floor(p->stim_isi * p->fs + 0.5);
    so->repeats = p->stim_repeats;
    so->random_order = p->stim_random;
    int rc = caimg_schedule_make(so, s->stim->n, p->seed, &s->sched, &s->npres);
    if (rc) return rc;
    size_t lat = (size_t)floor(p->stim_latency * p->fs + 0.5);
    size_t need = caimg_schedule_frames(so, s->stim->n) + lat;
    if (s->T == 0) s->T = need;
    else if (need > s->T)
        return caimg_error(CAIMG_EINVAL,
                           "the stimulus schedule (%zu presentations) needs %zu frames but "
                           "frames = %zu; give more frames (or 0 to fit the schedule), fewer "
                           "repeats or shorter presentations", s->npres, need, s->T);
    return 0;
}

static int draw_receptive_fields(caimg_sim *s)
{
    const caimg_sim_params *p = &s->p;
    const caimg_stimset *st = s->stim;
    size_t N = s->N, S = st->n, h = st->h, w = st->w;
    s->rf = caimg_calloc(N ? N : 1, sizeof *s->rf, "receptive fields");
    s->response = caimg_malloc(S * (N ? N : 1), sizeof(float), "expected responses");
    if (!s->rf || !s->response) return CAIMG_ENOMEM;
    int rc = 0;
#pragma omp parallel for schedule(dynamic, 4)
    for (long li = 0; li < (long)N; li++) {
        size_t i = (size_t)li;
        simrng r = simrng_key(p->seed, SIMRNG_RF, i, 0);
        caimg_rf *rf = &s->rf[i];
        rf->type = simrng_uniform(&r) < p->frac_complex ? CAIMG_RF_COMPLEX : CAIMG_RF_SIMPLE;
        int responsive = simrng_uniform(&r) < p->frac_responsive;
        /* Retinotopy: neighbouring somata see neighbouring parts of the
         * screen, with scatter comparable to an RF (mouse V1). */
        double fy = s->soma[i].cy / (double)(s->Y - 1) - 0.5;
        double fx = s->soma[i].cx / (double)(s->X - 1) - 0.5;
        rf->cy = 0.5 * (double)(h - 1) + fy * p->retino_span * (double)h
                 + p->retino_scatter * (double)w * simrng_normal(&r);
        rf->cx = 0.5 * (double)(w - 1) + fx * p->retino_span * (double)w
                 + p->retino_scatter * (double)w * simrng_normal(&r);
        if (rf->cy < 0) rf->cy = 0;
        if (rf->cy > (double)(h - 1)) rf->cy = (double)(h - 1);
        if (rf->cx < 0) rf->cx = 0;
        if (rf->cx > (double)(w - 1)) rf->cx = (double)(w - 1);
        rf->sigma = lognormal(&r, p->rf_sigma * (double)w, p->rf_sigma_sd);
        if (rf->sigma < 0.7) rf->sigma = 0.7;
        rf->wavelength = rf->sigma / p->rf_cycles;
        if (rf->wavelength < 2.5) rf->wavelength = 2.5;   /* below Nyquist would alias */
        rf->aspect = 0.5 + 0.5 * simrng_uniform(&r);
        rf->theta = M_PI * simrng_uniform(&r);
        rf->phase = 2.0 * M_PI * simrng_uniform(&r);
        rf->exponent = p->rf_exponent;
        double base = s->rate[i * s->T];     /* the spontaneous rate, set before */
        rf->baseline = base;
        double peak = lognormal(&r, p->peak_rate, p->peak_rate_sd);
        float *f = malloc(2 * h * w * sizeof(float));
        if (!f) {
#pragma omp atomic write
            rc = CAIMG_ENOMEM;
            continue;
        }
        caimg_rf_filters(rf, h, w, f, f + h * w);
        double dmax = 0;
        for (size_t k = 0; k < S; k++) {
            double d = caimg_rf_drive(rf, f, f + h * w, st->images + k * h * w, h, w);
            double v = d > 0 ? pow(d, rf->exponent) : 0.0;
            s->response[k * N + i] = (float)v;
            if (v > dmax) dmax = v;
        }
        /* Gain so that the best stimulus of the set evokes `peak`: the
         * stimulus set then spans each neuron's dynamic range. */
        rf->gain = (responsive && dmax > 1e-12 && peak > base) ? (peak - base) / dmax : 0.0;
        for (size_t k = 0; k < S; k++)
            s->response[k * N + i] = (float)(base + rf->gain * s->response[k * N + i]);
        free(f);
    }
    if (rc) return caimg_error(rc, "out of memory computing receptive fields");
    return 0;
}

static int draw_activity(caimg_sim *s)
{
    const caimg_sim_params *p = &s->p;
    size_t N = s->N, T = s->T;
    /* Spontaneous rates: log-normal with the requested mean. */
    for (size_t i = 0; i < N; i++) {
        simrng r = simrng_key(p->seed, SIMRNG_NEURON, i, 0);
        double rt = p->rate * exp(p->rate_sd * simrng_normal(&r) - 0.5 * p->rate_sd * p->rate_sd);
        for (size_t t = 0; t < T; t++) s->rate[i * T + t] = (float)rt;
    }
    if (s->stim) {
        int rc = draw_receptive_fields(s);
        if (rc) return rc;
        size_t lat = (size_t)floor(p->stim_latency * p->fs + 0.5);
        for (size_t k = 0; k < s->npres; k++) {
            const caimg_presentation *pr = &s->sched[k];
            for (size_t t = pr->onset + lat; t < pr->onset + lat + pr->duration && t < T; t++)
                for (size_t i = 0; i < N; i++)
                    s->rate[i * T + t] = s->response[pr->stimulus * N + i];
        }
    }
    double msd = p->rate_mod_sd;
#pragma omp parallel for schedule(dynamic, 8)
    for (long li = 0; li < (long)N; li++) {
        size_t i = (size_t)li;
        simrng rm = simrng_key(p->seed, SIMRNG_RATEMOD, i, 0);
        simrng rs = simrng_key(p->seed, SIMRNG_SPIKES, i, 0);
        double rho = exp(-1.0 / (p->fs * p->rate_mod_tau)), k = sqrt(1.0 - rho * rho);
        double z = simrng_normal(&rm);
        double g1 = s->g[2 * i], g2 = s->g[2 * i + 1], al = s->alpha[i];
        double K = hill_K(s, i), c1 = 0, c2 = 0;
        for (size_t t = 0; t < T; t++) {
            if (t) z = rho * z + k * simrng_normal(&rm);
            /* exp(sd z - sd^2/2) has mean 1: modulation leaves the mean rate
             * (and the expected stimulus responses) unchanged. */
            double lam = s->rate[i * T + t] * exp(msd * z - 0.5 * msd * msd) / p->fs;
            long n = simrng_poisson(&rs, lam);
            double c = g1 * c1 + g2 * c2 + al * (double)n;
            c2 = c1;
            c1 = c;
            s->spikes[i * T + t] = (float)n;
            s->calcium[i * T + t] = (float)hill_fn(p, K, c);
        }
    }
    return 0;
}

/* Neuropil activity nodes, slow brightness changes, and the per-neuron
 * fluorescence and truth traces. */
static int draw_slow(caimg_sim *s, const float *pn)
{
    const caimg_sim_params *p = &s->p;
    size_t N = s->N, T = s->T, Y = s->Y, X = s->X;
    /* Neuropil field nodes; the random part's node s.d. is raised by
     * 1/sqrt(0.2298), the variance a 2-D cubic B-spline keeps from i.i.d.
     * nodes on average, so the field itself has s.d. np_sd. */
    double S = p->np_scale, O = (double)s->O;
    s->S = S;
    s->J0y = s->J0x = (long)ceil(O / S) + 1;
    s->NY = (size_t)s->J0y + (size_t)ceil(((double)Y + O) / S) + 3;
    s->NX = (size_t)s->J0x + (size_t)ceil(((double)X + O) / S) + 3;
    size_t nn = s->NY * s->NX;
    s->npc = caimg_malloc(T * nn, sizeof(float), "the neuropil field");
    s->w0 = caimg_malloc(T, sizeof(float), "the neuropil field");
    s->gg = caimg_malloc(T, sizeof(float), "the global gain");
    if (!s->npc || !s->w0 || !s->gg) return CAIMG_ENOMEM;
    double nsd = p->np_sd / sqrt(0.2298);
#pragma omp parallel for schedule(static)
    for (long j = 0; j < (long)nn; j++) {
        simrng r = simrng_key(p->seed, SIMRNG_NPFIELD, (uint64_t)j, 0);
        ou_fill(&r, nsd, p->np_tau, p->fs, T, s->npc + j, nn);
    }
    for (size_t t = 0; t < T; t++) {
        double m = 0;
        for (size_t i = 0; i < N; i++) m += s->calcium[i * T + t];
        s->w0[t] = (float)(N ? p->np_coupling * m / (double)N : 0.0);
    }
    /* Global gain: photobleaching times a slow multiplicative drift. */
    {
        simrng r = simrng_key(p->seed, SIMRNG_DRIFT, 0, 0);
        ou_fill(&r, p->drift_sd, p->drift_tau, p->fs, T, s->gg, 1);
        for (size_t t = 0; t < T; t++) {
            double bl = (1.0 - p->bleach) + p->bleach * exp(-(double)t / (p->fs * p->bleach_tau));
            s->gg[t] = (float)(bl * (1.0 + s->gg[t]));
        }
    }
    s->soma_s = caimg_malloc(N * T + 1, sizeof(float), "soma fluorescence");
    if (!s->soma_s) return CAIMG_ENOMEM;
    int rc = 0;
#pragma omp parallel for schedule(dynamic, 4)
    for (long li = 0; li < (long)N; li++) {
        size_t i = (size_t)li;
        float *S_i = s->soma_s + i * T, *base = s->baseline + i * T, *np = s->neuropil + i * T;
        simrng r = simrng_key(p->seed, SIMRNG_BASEDRIFT, i, 0);
        ou_fill(&r, p->baseline_drift_sd, p->baseline_drift_tau, p->fs, T, base, 1);
        double sa = 0, sa2 = 0, c0 = 0;
        int64_t k0 = s->pix_start[i], k1 = s->pix_start[i + 1];
        for (int64_t k = k0; k < k1; k++) {
            sa += s->pix_weight[k];
            sa2 += (double)s->pix_weight[k] * s->pix_weight[k];
        }
        /* Neuropil seen by this soma: footprint-weighted average of
         * P (1 + w0 + sum C beta) = c0 (1 + w0(t)) + sum_jk K_jk C_jk(t), with
         * the weights K over the few nodes the footprint touches. */
        long jy0 = 0, jx0 = 0;
        const long nb = (long)ceil(2.0 * s->sf[i].rbox / S) + 6;
        double *K = calloc((size_t)(nb * nb), sizeof(double));
        if (!K) {
#pragma omp atomic write
            rc = CAIMG_ENOMEM;
            continue;
        }
        {
            const soma_fast *f = &s->sf[i];
            jy0 = (long)floor((f->cy - f->rbox) / S) + s->J0y - 1;
            jx0 = (long)floor((f->cx - f->rbox) / S) + s->J0x - 1;
        }
        for (int64_t k = k0; k < k1; k++) {
            double py = s->pix_index[2 * k], px = s->pix_index[2 * k + 1];
            double w = sa > 0 ? s->pix_weight[k] / sa : 0.0;
            double v = w * pn[(size_t)py * X + (size_t)px];
            c0 += v;
            double uy = py / S + (double)s->J0y, ux = px / S + (double)s->J0x;
            long iy = (long)floor(uy), ix = (long)floor(ux);
            float wy[4], wx[4];
            bspline_w(uy - (double)iy, wy);
            bspline_w(ux - (double)ix, wx);
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++) {
                    long jy = iy - 1 + a - jy0, jx = ix - 1 + b - jx0;
                    if (jy >= 0 && jy < nb && jx >= 0 && jx < nb)
                        K[jy * nb + jx] += v * wy[a] * wx[b];
                }
        }
        double ph = p->photons, b = s->brightness[i];
        for (size_t t = 0; t < T; t++) {
            double Bt = b * (1.0 + base[t]);
            if (Bt < 0.1 * b) Bt = 0.1 * b;
            S_i[t] = (float)(Bt * (1.0 + s->calcium[i * T + t]));
            double nv = c0 * (1.0 + s->w0[t]);
            const float *C = s->npc + t * nn;
            for (long a = 0; a < nb; a++) {
                long jy = jy0 + a;
                if (jy < 0 || jy >= (long)s->NY) continue;
                for (long bb = 0; bb < nb; bb++) {
                    long jx = jx0 + bb;
                    if (jx < 0 || jx >= (long)s->NX) continue;
                    nv += K[a * nb + bb] * C[jy * (long)s->NX + jx];
                }
            }
            np[t] = (float)(s->gg[t] * ph * nv);
            base[t] = (float)(s->gg[t] * Bt * (sa > 0 ? sa2 / sa : 0.0));
        }
        free(K);
    }
    if (rc) return caimg_error(rc, "out of memory computing neuropil traces");
    return 0;
}

/* ---- allocation --------------------------------------------------------- */

caimg_sim *caimg_sim_alloc(const caimg_sim_params *params)
{
    if (!params) {
        caimg_error(CAIMG_EINVAL, "no simulation parameters");
        return NULL;
    }
    if (validate(params)) return NULL;
    caimg_sim *s = caimg_calloc(1, sizeof *s, "a simulation");
    if (!s) return NULL;
    s->p = *params;
    caimg_sim_params *p = &s->p;
    float *pn = NULL, *rest = NULL;
    double *peak = NULL, *snr = NULL, *scratch = NULL;
    int rc = 0;

    /* Indicator: explicit values win over the preset's. */
    if (p->indicator && p->indicator[0]) {
        const caimg_sim_indicator *ind = caimg_sim_indicator_find(p->indicator);
        if (!ind) {
            char list[256] = "";
            for (const caimg_sim_indicator *i = indicators; i->name; i++) {
                strcat(list, i->name);
                if (i[1].name) strcat(list, ", ");
            }
            caimg_error(CAIMG_EINVAL, "unknown indicator '%s' (known: %s)", p->indicator, list);
            goto fail;
        }
        double tr, td;
        if (caimg_sim_kernel_taus(ind->t_peak, ind->t_half, &tr, &td)) goto fail;
        if (!(p->tau_decay > 0)) p->tau_decay = td;
        if (!(p->tau_rise > 0)) p->tau_rise = tr;
        if (!(p->amplitude > 0)) p->amplitude = ind->amplitude;
        snprintf(s->indicator, sizeof s->indicator, "%s", ind->name);
        p->indicator = s->indicator;
    } else {
        p->indicator = NULL;
    }
    if (!(p->tau_decay > 0) || !(p->amplitude > 0)) {
        caimg_error(CAIMG_EINVAL, "give an indicator preset or tau_decay and amplitude");
        goto fail;
    }
    if (p->ar_order == 2 && !(p->tau_rise > 0)) p->ar_order = 1;
    if (p->ar_order == 2 && p->tau_rise >= p->tau_decay) {
        caimg_error(CAIMG_EINVAL, "tau_rise %g must be shorter than tau_decay %g", p->tau_rise,
                    p->tau_decay);
        goto fail;
    }
    if (p->saturation > 0 && p->saturation <= 1.5 * p->amplitude) {
        caimg_error(CAIMG_EINVAL, "saturation %g must exceed 1.5 times the per-spike amplitude %g",
                    p->saturation, p->amplitude);
        goto fail;
    }

    s->Y = p->height;
    s->X = p->width;
    s->T = p->frames;
    s->N = p->neurons ? p->neurons
                      : (size_t)floor(p->density * (double)(s->Y * s->X) / 1e4 + 0.5);
    p->neurons = s->N;
    if (s->N > 1000000) {
        caimg_error(CAIMG_EINVAL, "%zu neurons is too many (at most 10^6)", s->N);
        goto fail;
    }

    caimg_schedule_opts so;
    if (p->stim_mode != CAIMG_SIM_STIM_NONE) {
        if ((rc = make_stimuli(s, &so))) goto fail;
        p->stim_images = NULL;   /* copied; the caller's pointer is not kept */
    }
    p->frames = s->T;
    if (p->shifts && p->frames != s->T) {
        caimg_error(CAIMG_EINVAL, "given shifts must cover every frame");
        goto fail;
    }
    if (caimg_mul(s->N, s->T) > ((size_t)1 << 34)) {
        caimg_error(CAIMG_EINVAL, "%zu neurons x %zu frames is too large to simulate", s->N, s->T);
        goto fail;
    }

    if (!(s->ptab = caimg_malloc(1, sizeof *s->ptab, "sampling tables"))) goto fail;
    simrng_ptab_init(s->ptab);
    if ((rc = draw_motion(s))) goto fail;
    p->shifts = NULL;
    if (s->deform) {
        size_t X = s->X;
        long G = (long)s->G;
        if (!(s->kxw = caimg_malloc(8 * X, sizeof(double), "deformation weights"))) goto fail;
        if (!(s->kxi = caimg_malloc(8 * X, sizeof(int), "deformation weights"))) goto fail;
        for (int par = 0; par < 2; par++)
            for (size_t x = 0; x < X; x++) {
                double ux = ((double)x - (par ? p->bidi : 0.0)) / s->gsx;
                long ix = (long)floor(ux);
                keys_w(ux - (double)ix, s->kxw + ((size_t)par * X + x) * 4);
                for (int k = 0; k < 4; k++)
                    s->kxi[((size_t)par * X + x) * 4 + k] = (int)clampl(ix - 1 + k, 0, G - 1);
            }
    }
    if ((rc = place_neurons(s))) goto fail;
    if ((rc = make_footprints(s))) goto fail;
    if ((rc = make_scene(s))) goto fail;

    size_t N = s->N, T = s->T, YX = s->Y * s->X;
    size_t NT = caimg_mul(N, T) + 1;
#define ALLOC(field, n, what) \
    if (!(s->field = caimg_malloc((n), sizeof *s->field, what))) goto fail
    ALLOC(brightness, N + 1, "soma brightness");
    ALLOC(rate, NT, "firing rates");
    ALLOC(spikes, NT, "spike trains");
    ALLOC(calcium, NT, "calcium traces");
    ALLOC(baseline, NT, "baseline traces");
    ALLOC(neuropil, NT, "neuropil traces");
    ALLOC(g, 2 * N + 2, "AR coefficients");
    ALLOC(alpha, N + 1, "spike amplitudes");
    ALLOC(amplitude, N + 1, "spike amplitudes");
    ALLOC(tau_rise, N + 1, "rise times");
    ALLOC(tau_decay, N + 1, "decay times");
    ALLOC(snr, N + 1, "SNR");
#undef ALLOC

    /* The normalised static neuropil at every pixel of the field (the
     * interpolant at integer points, so truth and rendering agree), and the
     * resting soma light per photon. */
    pn = caimg_malloc(YX, sizeof(float), "a scene image");
    rest = caimg_calloc(YX, sizeof(float), "a scene image");
    peak = caimg_malloc(N + 1, sizeof(double), "SNR scratch");
    snr = caimg_malloc(N + 1, sizeof(double), "SNR scratch");
    scratch = caimg_malloc(N + 1, sizeof(double), "SNR scratch");
    if (!pn || !rest || !peak || !snr || !scratch) goto fail;
    for (size_t y = 0; y < s->Y; y++)
        for (size_t x = 0; x < s->X; x++) pn[y * s->X + x] = scene_static(s, (double)y, (double)x);
    for (size_t i = 0; i < N; i++) {
        simrng r = simrng_key(p->seed, SIMRNG_NEURON, i, 2);
        s->brightness[i] = (float)lognormal(&r, p->brightness, p->brightness_sd);
        for (int64_t k = s->pix_start[i]; k < s->pix_start[i + 1]; k++)
            rest[(size_t)s->pix_index[2 * k] * s->X + (size_t)s->pix_index[2 * k + 1]] +=
                s->pix_weight[k] * s->brightness[i];
    }
    draw_kinetics(s, peak);
    if (p->snr > 0 && N > 0) {
        /* The median SNR grows monotonically with the photon level. */
        double lo = log(1e-6), hi = log(1e6);
        for (int it = 0; it < 100; it++) {
            double mid = 0.5 * (lo + hi);
            compute_snr(s, pn, rest, peak, exp(mid), snr);
            if (median_of(snr, N, scratch) < p->snr) lo = mid;
            else hi = mid;
        }
        p->photons = exp(0.5 * (lo + hi));
    }
    compute_snr(s, pn, rest, peak, p->photons, snr);
    for (size_t i = 0; i < N; i++) {
        s->snr[i] = (float)snr[i];
        s->brightness[i] = (float)(s->brightness[i] * p->photons);
    }

    if ((rc = draw_activity(s))) goto fail;
    if ((rc = draw_slow(s, pn))) goto fail;

    /* The truth view. */
    caimg_sim_truth *t = &s->tr;
    t->height = s->Y;
    t->width = s->X;
    t->frames = s->T;
    t->neurons = s->N;
    t->fs = p->fs;
    t->shifts = s->shifts;
    t->deform = s->deform;
    t->deform_gy = t->deform_gx = s->deform ? s->G : 0;
    t->deform_sy = s->gsy;
    t->deform_sx = s->gsx;
    t->bidi = p->bidi;
    t->soma = s->soma;
    t->pix_start = s->pix_start;
    t->pix_index = s->pix_index;
    t->pix_weight = s->pix_weight;
    t->pix_body = s->pix_body;
    t->brightness = s->brightness;
    t->rate = s->rate;
    t->spikes = s->spikes;
    t->calcium = s->calcium;
    t->g = s->g;
    t->alpha = s->alpha;
    t->amplitude = s->amplitude;
    t->tau_rise = s->tau_rise;
    t->tau_decay = s->tau_decay;
    t->baseline = s->baseline;
    t->neuropil = s->neuropil;
    t->global_gain = s->gg;
    t->snr = s->snr;
    t->photons = p->photons;
    t->gain = p->gain;
    t->offset = p->offset;
    t->read_noise = p->read_noise;
    t->dark = p->dark;
    t->stimuli = s->stim;
    t->schedule = s->sched;
    t->npres = s->npres;
    t->rf = s->rf;
    t->response = s->response;

    free(pn);
    free(rest);
    free(peak);
    free(snr);
    free(scratch);
    return s;
fail:
    free(pn);
    free(rest);
    free(peak);
    free(snr);
    free(scratch);
    caimg_sim_free(s);
    return NULL;
}

/* ---- rendering ------------------------------------------------------------ */

typedef struct {
    float *tmp;       /* X + 8: a vertically interpolated coefficient row */
    float *rowc;      /* NX: a vertically interpolated neuropil-node row */
    int *cidx[2];     /* per row parity: neuropil node column of each pixel */
    float *cw[2];     /* per row parity: its 4 weights */
    float *qy, *qx;   /* per pixel scene position (deformation only) */
} sim_ws;

static void ws_free(sim_ws *w)
{
    if (!w) return;
    free(w->tmp);
    free(w->rowc);
    free(w->cidx[0]);
    free(w->cw[0]);
    free(w->qy);
    free(w->qx);
    memset(w, 0, sizeof *w);
}

static int ws_alloc(const caimg_sim *s, sim_ws *w)
{
    memset(w, 0, sizeof *w);
    size_t X = s->X;
    w->tmp = malloc((X + 8) * sizeof(float));
    w->rowc = malloc(s->NX * sizeof(float));
    w->cidx[0] = malloc(2 * X * sizeof(int));
    w->cw[0] = malloc(8 * X * sizeof(float));
    if (s->deform) {
        w->qy = malloc(s->Y * X * sizeof(float));
        w->qx = malloc(s->Y * X * sizeof(float));
    }
    if (!w->tmp || !w->rowc || !w->cidx[0] || !w->cw[0] || (s->deform && (!w->qy || !w->qx))) {
        ws_free(w);
        return caimg_error(CAIMG_ENOMEM, "out of memory rendering a %zux%zu frame", s->Y, X);
    }
    w->cidx[1] = w->cidx[0] + X;
    w->cw[1] = w->cw[0] + 4 * X;
    return 0;
}

/* Neuropil activity f(q, t) at an arbitrary scene point. */
static inline float np_field(const caimg_sim *s, const float *C, float w0, double qy, double qx)
{
    double uy = qy / s->S + (double)s->J0y, ux = qx / s->S + (double)s->J0x;
    long iy = (long)floor(uy), ix = (long)floor(ux);
    float wy[4], wx[4];
    bspline_w(uy - (double)iy, wy);
    bspline_w(ux - (double)ix, wx);
    iy = clampl(iy, 1, (long)s->NY - 3);
    ix = clampl(ix, 1, (long)s->NX - 3);
    float a = w0;
    for (int j = 0; j < 4; j++) {
        const float *row = C + (iy - 1 + j) * (long)s->NX + (ix - 1);
        a += wy[j] * (wx[0] * row[0] + wx[1] * row[1] + wx[2] * row[2] + wx[3] * row[3]);
    }
    return a;
}

/* The expected photon image lambda (before G and dark) for the rigid case:
 * every row is a uniform translation, so interpolation weights are shared
 * along rows and the work is a few multiply-adds per pixel. */
static void render_neuropil_rigid(const caimg_sim *s, size_t t, double dy, double dx,
                                  double bidi, float *out, sim_ws *w)
{
    size_t Y = s->Y, X = s->X, SX = s->SX;
    const float *C = s->npc + t * s->NY * s->NX;
    float w0 = s->w0[t], ph = (float)s->p.photons;
    for (int par = 0; par < 2; par++) {
        double off = -dx - (par ? bidi : 0.0);
        for (size_t x = 0; x < X; x++) {
            double ux = ((double)x + off) / s->S + (double)s->J0x;
            long ix = (long)floor(ux);
            bspline_w(ux - (double)ix, w->cw[par] + 4 * x);
            w->cidx[par][x] = (int)clampl(ix - 1, 0, (long)s->NX - 4);
        }
    }
    for (size_t y = 0; y < Y; y++) {
        int par = (int)(y & 1);
        double qy = (double)y - dy;
        /* Static scene: vertical pass into tmp, horizontal pass per pixel. */
        double sy = qy + (double)s->O;
        long iy = clampl((long)floor(sy), 1, (long)s->SY - 3);
        float wy[4], wx[4];
        bspline_w(sy - floor(sy), wy);
        double sx0 = -dx - (par ? bidi : 0.0) + (double)s->O;
        long ix0 = (long)floor(sx0);
        bspline_w(sx0 - (double)ix0, wx);
        long cbase = clampl(ix0 - 1, 0, (long)SX - (long)X - 3);
        const float *r0 = s->coef + (iy - 1) * (long)SX + cbase;
        for (size_t c = 0; c < X + 3; c++)
            w->tmp[c] = wy[0] * r0[c] + wy[1] * r0[c + SX] + wy[2] * r0[c + 2 * SX]
                        + wy[3] * r0[c + 3 * SX];
        /* Neuropil activity: vertical pass over the node rows. */
        double uy = qy / s->S + (double)s->J0y;
        long jy = clampl((long)floor(uy), 1, (long)s->NY - 3);
        float vy[4];
        bspline_w(uy - floor(uy), vy);
        const float *n0 = C + (jy - 1) * (long)s->NX;
        for (size_t k = 0; k < s->NX; k++)
            w->rowc[k] = vy[0] * n0[k] + vy[1] * n0[k + s->NX] + vy[2] * n0[k + 2 * s->NX]
                         + vy[3] * n0[k + 3 * s->NX];
        const int *ci = w->cidx[par];
        const float *cw = w->cw[par];
        float *o = out + y * X;
        for (size_t x = 0; x < X; x++) {
            const float *tp = w->tmp + x;
            float P = wx[0] * tp[0] + wx[1] * tp[1] + wx[2] * tp[2] + wx[3] * tp[3];
            const float *rc = w->rowc + ci[x];
            const float *ww = cw + 4 * x;
            float f = w0 + ww[0] * rc[0] + ww[1] * rc[1] + ww[2] * rc[2] + ww[3] * rc[3];
            o[x] = ph * P * (1.0f + f);
        }
    }
}

static void source_positions(const caimg_sim *s, size_t t, double bidi, sim_ws *w)
{
    size_t Y = s->Y, X = s->X;
    long G = (long)s->G;
    const float *d = s->deform + t * (size_t)(G * G) * 2;
    float dy = s->shifts[2 * t], dx = s->shifts[2 * t + 1];
    for (size_t y = 0; y < Y; y++) {
        int par = (int)(y & 1);
        double uy = (double)y / s->gsy;
        long iy = (long)floor(uy);
        double wy[4];
        keys_w(uy - (double)iy, wy);
        /* Vertical pass over node rows for this image row. */
        double ry[64][2];
        for (long k = 0; k < G; k++) {
            double ay = 0, ax = 0;
            for (int j = 0; j < 4; j++) {
                long jj = clampl(iy - 1 + j, 0, G - 1);
                ay += wy[j] * d[2 * (jj * G + k)];
                ax += wy[j] * d[2 * (jj * G + k) + 1];
            }
            ry[k][0] = ay;
            ry[k][1] = ax;
        }
        const double *kw = s->kxw + (size_t)par * X * 4;
        const int *ki = s->kxi + (size_t)par * X * 4;
        for (size_t x = 0; x < X; x++) {
            double xp = (double)x - (par ? bidi : 0.0);
            const double *wx = kw + 4 * x;
            const int *kk = ki + 4 * x;
            double ay = 0, ax = 0;
            for (int k = 0; k < 4; k++) {
                ay += wx[k] * ry[kk[k]][0];
                ax += wx[k] * ry[kk[k]][1];
            }
            w->qy[y * X + x] = (float)((double)y - dy - ay);
            w->qx[y * X + x] = (float)(xp - dx - ax);
        }
    }
}

/* Cubic B-spline weights in single precision, for the per-pixel path. */
static inline void bspline_wf(float t, float w[4])
{
    float t2 = t * t, t3 = t2 * t, u = 1.0f - t;
    w[0] = u * u * u * (1.0f / 6);
    w[1] = (4.0f - 6.0f * t2 + 3.0f * t3) * (1.0f / 6);
    w[2] = (1.0f + 3.0f * t + 3.0f * t2 - 3.0f * t3) * (1.0f / 6);
    w[3] = t3 * (1.0f / 6);
}

/* 4 x 4 B-spline evaluation of grid g (row stride `stride`, rows 0..ny-1,
 * columns 0..nx-1) at grid coordinates (u, v). */
static inline float bspline2_f(const float *g, long stride, long ny, long nx, float u, float v)
{
    float fu = floorf(u), fv = floorf(v);
    float wy[4], wx[4];
    bspline_wf(u - fu, wy);
    bspline_wf(v - fv, wx);
    long iy = clampl((long)fu, 1, ny - 3), ix = clampl((long)fv, 1, nx - 3);
    const float *c = g + (iy - 1) * stride + (ix - 1);
    float a = 0;
    for (int j = 0; j < 4; j++, c += stride)
        a += wy[j] * (wx[0] * c[0] + wx[1] * c[1] + wx[2] * c[2] + wx[3] * c[3]);
    return a;
}

static void render_neuropil_deformed(const caimg_sim *s, size_t t, float *out, sim_ws *w)
{
    const float *C = s->npc + t * s->NY * s->NX;
    float w0 = s->w0[t], ph = (float)s->p.photons;
    float O = (float)s->O, iS = (float)(1.0 / s->S), jy = (float)s->J0y, jx = (float)s->J0x;
    size_t n = s->Y * s->X;
    for (size_t i = 0; i < n; i++) {
        float qy = w->qy[i], qx = w->qx[i];
        float P = bspline2_f(s->coef, (long)s->SX, (long)s->SY, (long)s->SX, qy + O, qx + O);
        float f = w0 + bspline2_f(C, (long)s->NX, (long)s->NY, (long)s->NX, qy * iS + jy, qx * iS + jx);
        out[i] = ph * P * (1.0f + f);
    }
}

static void render_somata(const caimg_sim *s, size_t t, double dy, double dx, double bidi,
                          int deformed, float *out, const sim_ws *w)
{
    size_t Y = s->Y, X = s->X, T = s->T;
    double lo = bidi < 0 ? bidi : 0.0, hi = bidi > 0 ? bidi : 0.0;
    for (size_t i = 0; i < s->N; i++) {
        float Si = s->soma_s[i * T + t];
        if (Si == 0) continue;
        const soma_fast *f = &s->sf[i];
        double cy = f->cy, cx = f->cx, m = f->rbox;
        if (deformed) {
            double uy, ux;
            caimg_sim_displacement(s, t, cy, cx, &uy, &ux);
            cy += uy;
            cx += ux;
            m += s->margin_def;
        } else {
            cy += dy;
            cx += dx;
        }
        long y0 = (long)floor(cy - m), y1 = (long)ceil(cy + m);
        long x0 = (long)floor(cx - m + lo), x1 = (long)ceil(cx + m + hi);
        if (y0 < 0) y0 = 0;
        if (x0 < 0) x0 = 0;
        if (y1 > (long)Y - 1) y1 = (long)Y - 1;
        if (x1 > (long)X - 1) x1 = (long)X - 1;
        for (long y = y0; y <= y1; y++) {
            float *o = out + y * (long)X;
            double b = (y & 1) ? bidi : 0.0;
            for (long x = x0; x <= x1; x++) {
                float qy, qx, a;
                if (deformed) {
                    qy = w->qy[y * (long)X + x];
                    qx = w->qx[y * (long)X + x];
                } else {
                    qy = (float)((double)y - dy);
                    qx = (float)((double)x - dx - b);
                }
                soma_fast_eval(f, qy, qx, &a, NULL);
                o[x] += a * Si;
            }
        }
    }
}

static int render_ws(const caimg_sim *s, size_t t, unsigned flags, float *frame, sim_ws *w)
{
    size_t Y = s->Y, X = s->X, n = Y * X;
    const caimg_sim_params *p = &s->p;
    int still = (flags & CAIMG_SIM_STILL) != 0;
    double dy = still ? 0 : s->shifts[2 * t], dx = still ? 0 : s->shifts[2 * t + 1];
    double bidi = still ? 0 : p->bidi;
    int deformed = !still && s->deform;
    if (deformed) source_positions(s, t, bidi, w);
    if (flags & CAIMG_SIM_NO_NEUROPIL) memset(frame, 0, n * sizeof(float));
    else if (deformed) render_neuropil_deformed(s, t, frame, w);
    else render_neuropil_rigid(s, t, dy, dx, bidi, frame, w);
    if (!(flags & CAIMG_SIM_NO_SOMATA)) render_somata(s, t, dy, dx, bidi, deformed, frame, w);
    float G = s->gg[t], dark = (float)p->dark;
    if (flags & CAIMG_SIM_PHOTONS) {
        for (size_t i = 0; i < n; i++) frame[i] = G * frame[i] + dark;
        return 0;
    }
    float gain = (float)p->gain, off = (float)p->offset;
    if (flags & CAIMG_SIM_NOISELESS) {
        for (size_t i = 0; i < n; i++) frame[i] = off + gain * (G * frame[i] + dark);
        return 0;
    }
    float rn = (float)p->read_noise;
    for (size_t y = 0; y < Y; y++) {
        simrng r = simrng_key(p->seed, SIMRNG_NOISE, t, y);
        float *o = frame + y * X;
        for (size_t x = 0; x < X; x++) {
            float v = off + gain * (float)simrng_poisson_tab(&r, s->ptab, G * o[x] + dark);
            if (rn > 0) v += rn * simrng_normal_zig(&r, s->ptab);
            o[x] = v;
        }
    }
    return 0;
}

int caimg_sim_render(const caimg_sim *s, size_t t, unsigned flags, float *frame)
{
    if (!s || !frame) return caimg_error(CAIMG_EINVAL, "no simulation or frame buffer");
    if (t >= s->T)
        return caimg_error(CAIMG_EINVAL, "frame %zu is beyond the simulation's %zu frames", t, s->T);
    sim_ws w;
    int rc = ws_alloc(s, &w);
    if (rc) return rc;
    rc = render_ws(s, t, flags, frame, &w);
    ws_free(&w);
    return rc;
}

int caimg_sim_frame(const caimg_sim *s, size_t t, float *frame)
{
    return caimg_sim_render(s, t, 0, frame);
}

int caimg_sim_frames(const caimg_sim *s, size_t t0, size_t n, float *buf)
{
    if (!s || !buf) return caimg_error(CAIMG_EINVAL, "no simulation or frame buffer");
    if (t0 > s->T || n > s->T - t0)
        return caimg_error(CAIMG_EINVAL, "frames %zu..%zu are beyond the simulation's %zu frames",
                           t0, t0 + n, s->T);
    if (!n) return 0;
    int nth = caimg_nthreads();
    if ((size_t)nth > n) nth = (int)n;
    sim_ws *ws = caimg_calloc((size_t)nth, sizeof *ws, "render workspaces");
    if (!ws) return CAIMG_ENOMEM;
    int rc = 0;
    for (int i = 0; i < nth && !rc; i++) rc = ws_alloc(s, &ws[i]);
    if (!rc) {
        size_t YX = s->Y * s->X;
#pragma omp parallel for num_threads(nth) schedule(dynamic, 1)
        for (long k = 0; k < (long)n; k++) {
#ifdef _OPENMP
            sim_ws *w = &ws[omp_get_thread_num()];
#else
            sim_ws *w = &ws[0];
#endif
            render_ws(s, t0 + (size_t)k, 0, buf + (size_t)k * YX, w);
        }
    }
    for (int i = 0; i < nth; i++) ws_free(&ws[i]);
    free(ws);
    return rc;
}
