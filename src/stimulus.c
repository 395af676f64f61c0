/* stimulus.c -- stimulus sets, schedules and V1-like receptive fields.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <string.h>

#include <fftw3.h>

#include "caimg/stimulus.h"
#include "internal.h"
#include "simrng.h"

#define TWO_PI 6.283185307179586

/* ---- sets -------------------------------------------------------------- */

caimg_stimset *caimg_stimset_alloc(size_t n, size_t h, size_t w)
{
    if (!n || !h || !w) {
        caimg_error(CAIMG_EINVAL, "stimulus set of %zu images of %zux%zu: every size must be positive",
                    n, h, w);
        return NULL;
    }
    caimg_stimset *s = caimg_calloc(1, sizeof *s, "a stimulus set");
    if (!s) return NULL;
    s->images = caimg_malloc(caimg_mul(n, caimg_mul(h, w)), sizeof(float), "stimulus images");
    if (!s->images) {
        free(s);
        return NULL;
    }
    s->n = n;
    s->h = h;
    s->w = w;
    return s;
}

void caimg_stimset_free(caimg_stimset *s)
{
    if (!s) return;
    free(s->images);
    free(s);
}

caimg_stimset *caimg_stimset_from_array(const float *images, size_t n, size_t h, size_t w)
{
    if (!images) {
        caimg_error(CAIMG_EINVAL, "no stimulus images given");
        return NULL;
    }
    size_t npix = h * w;
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < npix; i++) {
            float v = images[k * npix + i];
            if (!(v >= 0.0f && v <= 1.0f)) {
                caimg_error(CAIMG_EINVAL,
                            "stimulus image %zu, pixel (%zu, %zu) is %g; grey levels must be in [0, 1]",
                            k, i / w, i % w, (double)v);
                return NULL;
            }
        }
    caimg_stimset *s = caimg_stimset_alloc(n, h, w);
    if (s) memcpy(s->images, images, n * npix * sizeof(float));
    return s;
}

caimg_stimset *caimg_stimset_pink(size_t n, size_t h, size_t w, double alpha,
                                  double contrast, uint64_t seed)
{
    if (!(contrast > 0) || !isfinite(alpha)) {
        caimg_error(CAIMG_EINVAL, "1/f images need a positive RMS contrast and a finite exponent");
        return NULL;
    }
    if (h < 2 || w < 2) {
        caimg_error(CAIMG_EINVAL, "1/f images must be at least 2x2 pixels (got %zux%zu)", h, w);
        return NULL;
    }
    caimg_stimset *s = caimg_stimset_alloc(n, h, w);
    if (!s) return NULL;
    size_t wc = w / 2 + 1;
    float *re = fftwf_malloc(sizeof(float) * h * w);
    fftwf_complex *sp = fftwf_malloc(sizeof(fftwf_complex) * h * wc);
    if (!re || !sp) {
        fftwf_free(re);
        fftwf_free(sp);
        caimg_stimset_free(s);
        caimg_error(CAIMG_ENOMEM, "out of memory making 1/f images");
        return NULL;
    }
    fftwf_plan fwd = fftwf_plan_dft_r2c_2d((int)h, (int)w, re, sp, FFTW_ESTIMATE);
    fftwf_plan inv = fftwf_plan_dft_c2r_2d((int)h, (int)w, sp, re, FFTW_ESTIMATE);
    for (size_t k = 0; k < n; k++) {
        /* Shaping white Gaussian noise in the Fourier domain gives random
         * phases with exactly the requested amplitude spectrum on average. */
        simrng r = simrng_key(seed, SIMRNG_STIMSET, k, 0);
        for (size_t i = 0; i < h * w; i++) re[i] = (float)simrng_normal(&r);
        fftwf_execute(fwd);
        for (size_t ky = 0; ky < h; ky++) {
            double fy = (double)(ky <= h / 2 ? ky : h - ky) / (double)h;
            for (size_t kx = 0; kx < wc; kx++) {
                double fx = (double)kx / (double)w;
                double f = sqrt(fx * fx + fy * fy);
                double g = f > 0 ? pow(f, -alpha) : 0.0;
                sp[ky * wc + kx][0] *= (float)g;
                sp[ky * wc + kx][1] *= (float)g;
            }
        }
        fftwf_execute(inv);
        double sum = 0, ss = 0;
        for (size_t i = 0; i < h * w; i++) sum += re[i];
        double mean = sum / (double)(h * w);
        for (size_t i = 0; i < h * w; i++) ss += (re[i] - mean) * (re[i] - mean);
        double rms = sqrt(ss / (double)(h * w));
        float *img = s->images + k * h * w;
        for (size_t i = 0; i < h * w; i++) {
            double c = rms > 0 ? (re[i] - mean) * contrast / rms : 0.0;
            if (c > 1) c = 1;
            if (c < -1) c = -1;
            img[i] = (float)(0.5 + 0.5 * c);
        }
    }
    fftwf_destroy_plan(fwd);
    fftwf_destroy_plan(inv);
    fftwf_free(re);
    fftwf_free(sp);
    return s;
}

void caimg_stimset_grating_params(size_t k, size_t n_ori, const double *sf, size_t n_sf,
                                  size_t n_phase, double *ori, double *freq, double *phase)
{
    size_t ip = k % n_phase, isf = (k / n_phase) % n_sf, io = k / (n_phase * n_sf);
    *ori = M_PI * (double)io / (double)n_ori;
    *freq = sf[isf];
    *phase = TWO_PI * (double)ip / (double)n_phase;
}

caimg_stimset *caimg_stimset_gratings(size_t h, size_t w, size_t n_ori, const double *sf,
                                      size_t n_sf, size_t n_phase, double contrast)
{
    if (!n_ori || !n_sf || !n_phase || !sf) {
        caimg_error(CAIMG_EINVAL, "gratings need at least one orientation, frequency and phase");
        return NULL;
    }
    if (!(contrast > 0 && contrast <= 1)) {
        caimg_error(CAIMG_EINVAL, "grating contrast %g is not in (0, 1]", contrast);
        return NULL;
    }
    for (size_t i = 0; i < n_sf; i++)
        if (!(sf[i] > 0) || !isfinite(sf[i])) {
            caimg_error(CAIMG_EINVAL, "grating spatial frequency %g is not positive", sf[i]);
            return NULL;
        }
    caimg_stimset *s = caimg_stimset_alloc(n_ori * n_sf * n_phase, h, w);
    if (!s) return NULL;
    double yc = 0.5 * (double)(h - 1), xc = 0.5 * (double)(w - 1);
    for (size_t k = 0; k < s->n; k++) {
        double th, f, ph;
        caimg_stimset_grating_params(k, n_ori, sf, n_sf, n_phase, &th, &f, &ph);
        double kx = TWO_PI * f / (double)w * cos(th), ky = TWO_PI * f / (double)w * sin(th);
        float *img = s->images + k * h * w;
        for (size_t y = 0; y < h; y++)
            for (size_t x = 0; x < w; x++) {
                double c = contrast * cos(kx * ((double)x - xc) + ky * ((double)y - yc) + ph);
                img[y * w + x] = (float)(0.5 + 0.5 * c);
            }
    }
    return s;
}

/* ---- schedules ----------------------------------------------------------- */

void caimg_schedule_opts_init(caimg_schedule_opts *o)
{
    o->start = 0;
    o->duration = 15;
    o->isi = 15;
    o->repeats = 10;
    o->random_order = 1;
}

size_t caimg_schedule_frames(const caimg_schedule_opts *o, size_t nstim)
{
    return o->start + o->repeats * nstim * (o->duration + o->isi);
}

int caimg_schedule_make(const caimg_schedule_opts *o, size_t nstim, uint64_t seed,
                        caimg_presentation **out, size_t *npres)
{
    *out = NULL;
    *npres = 0;
    if (!nstim || !o->duration || !o->repeats)
        return caimg_error(CAIMG_EINVAL,
                           "a schedule needs stimuli, a positive duration and at least one repeat");
    size_t n = nstim * o->repeats;
    caimg_presentation *p = caimg_malloc(n, sizeof *p, "the stimulus schedule");
    if (!p) return CAIMG_ENOMEM;
    size_t *perm = caimg_malloc(nstim, sizeof *perm, "a permutation");
    if (!perm) {
        free(p);
        return CAIMG_ENOMEM;
    }
    size_t k = 0;
    for (size_t rep = 0; rep < o->repeats; rep++) {
        for (size_t i = 0; i < nstim; i++) perm[i] = i;
        if (o->random_order) {
            /* Fisher-Yates with one stream per block: the order of block r
             * does not depend on how many blocks there are. */
            simrng r = simrng_key(seed, SIMRNG_SCHEDULE, rep, 0);
            for (size_t i = nstim - 1; i > 0; i--) {
                size_t j = (size_t)(simrng_uniform(&r) * (double)(i + 1));
                if (j > i) j = i;
                size_t t = perm[i];
                perm[i] = perm[j];
                perm[j] = t;
            }
        }
        for (size_t i = 0; i < nstim; i++, k++) {
            p[k].onset = o->start + k * (o->duration + o->isi);
            p[k].stimulus = perm[i];
            p[k].duration = o->duration;
        }
    }
    free(perm);
    *out = p;
    *npres = n;
    return 0;
}

/* ---- receptive fields ---------------------------------------------------- */

void caimg_rf_filters(const caimg_rf *rf, size_t h, size_t w, float *even, float *odd)
{
    double ct = cos(rf->theta), st = sin(rf->theta);
    double s2 = 2.0 * rf->sigma * rf->sigma;
    double k = TWO_PI / rf->wavelength;
    double me = 0, mo = 0;
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++) {
            double dx = (double)x - rf->cx, dy = (double)y - rf->cy;
            double u = dx * ct + dy * st, v = -dx * st + dy * ct;
            double env = exp(-(u * u + rf->aspect * rf->aspect * v * v) / s2);
            double e = env * cos(k * u + rf->phase), o = env * sin(k * u + rf->phase);
            even[y * w + x] = (float)e;
            me += e;
            if (odd) {
                odd[y * w + x] = (float)o;
                mo += o;
            }
        }
    /* Zero mean makes the drive blind to uniform grey changes; unit norm
     * makes `gain` comparable across neurons of different RF sizes. */
    double n = (double)(h * w);
    for (int pass = 0; pass < 2; pass++) {
        float *f = pass ? odd : even;
        double m = (pass ? mo : me) / n;
        if (!f) continue;
        double ss = 0;
        for (size_t i = 0; i < h * w; i++) {
            double v = f[i] - m;
            ss += v * v;
        }
        double sc = ss > 1e-20 ? 1.0 / sqrt(ss) : 0.0;
        for (size_t i = 0; i < h * w; i++) f[i] = (float)((f[i] - m) * sc);
    }
}

double caimg_rf_drive(const caimg_rf *rf, const float *even, const float *odd,
                      const float *image, size_t h, size_t w)
{
    double d = 0, q = 0;
    for (size_t i = 0; i < h * w; i++) {
        double c = 2.0 * image[i] - 1.0;
        d += even[i] * c;
        if (rf->type == CAIMG_RF_COMPLEX) q += odd[i] * c;
    }
    if (rf->type == CAIMG_RF_COMPLEX) return sqrt(d * d + q * q);
    return d > 0 ? d : 0.0;
}

double caimg_rf_rate(const caimg_rf *rf, const float *image, size_t h, size_t w)
{
    float *f = malloc(2 * h * w * sizeof(float));
    if (!f) return NAN;
    caimg_rf_filters(rf, h, w, f, f + h * w);
    double d = caimg_rf_drive(rf, f, f + h * w, image, h, w);
    free(f);
    return rf->baseline + (d > 0 ? rf->gain * pow(d, rf->exponent) : 0.0);
}
