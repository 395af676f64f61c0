/* synth.h -- a small synthetic two-photon movie with ground truth, for the
 * roi tests and benchmark (header-only; independent of caimg simulate).
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Model, in expected photons per pixel and frame:
 *   lambda(p, t) = G(t) [ P(p) O(p) (1 + f(p, t)) + sum_i a_i(p) B_i (1 + c_i(t)) ]
 * P: neuropil brightness with a fine texture; O: occlusion by somata (the
 * neuropil seen through a soma is `contamination` of that outside); f: a
 * smooth neuropil activity field (knots every np_scale pixels, smoothstep
 * interpolation, AR(1) in time) plus a coupling to the mean calcium; a_i:
 * soma footprint, an ellipse with a raised-cosine edge and a dimmer nucleus;
 * B_i: resting brightness; c_i: calcium dF/F, AR(1) from Poisson spikes with
 * a log-normal spread of rates; G: bleaching.  Recorded value:
 * offset + gain Poisson(lambda) + Normal(0, read_noise^2).  Frame t depends
 * only on the seed and t, so frames can be made in any order.
 */
#ifndef CAIMG_TESTS_SYNTH_H
#define CAIMG_TESTS_SYNTH_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t Y, X, T;
    double fs;
    size_t ncells;          /* 0 = density * Y * X / 1e4 */
    double density;
    double diameter, diameter_sd, aspect_max, edge;
    double min_sep;         /* centres at least min_sep (R_i + R_j) apart */
    double nucleus, nucleus_bright;
    double np_photons, brightness, brightness_sd, contamination, texture_sd;
    double rate, rate_sd, tau, amp;
    double np_sd, np_scale, np_tau, np_coupling;
    double bleach;          /* fraction lost over the recording */
    double gain, offset, read_noise;
    uint64_t seed;
} synth_params;

typedef struct {
    double cy, cx, ra, rb, th, B;
} synth_cell;

typedef struct {
    synth_params p;
    size_t n;
    synth_cell *cell;
    float *spikes, *calcium;        /* [n][T] */
    float *P;                       /* [Y][X] static neuropil x occlusion */
    /* Footprints: per cell, a box with weights a and body mask m. */
    size_t *by0, *bx0, *bh, *bw;
    float **a, **m;
    size_t gy, gx;                  /* neuropil knots */
    float *knot;                    /* [T][gy][gx] */
    float *meanc;                   /* [T] mean calcium */
} synth;

static inline void synth_defaults(synth_params *p)
{
    memset(p, 0, sizeof *p);
    p->Y = 128; p->X = 128; p->T = 1500; p->fs = 30;
    p->density = 10;
    p->diameter = 12; p->diameter_sd = 1.5; p->aspect_max = 1.4; p->edge = 1.0;
    p->min_sep = 0.9;
    p->nucleus = 0.55; p->nucleus_bright = 0.35;
    p->np_photons = 1.5; p->brightness = 1.3; p->brightness_sd = 0.35;
    p->contamination = 0.7; p->texture_sd = 0.25;
    p->rate = 0.5; p->rate_sd = 0.8; p->tau = 0.2; p->amp = 0.19;
    p->np_sd = 0.05; p->np_scale = 48; p->np_tau = 2; p->np_coupling = 0.5;
    p->bleach = 0.1;
    p->gain = 50; p->offset = 100; p->read_noise = 20;
    p->seed = 1;
}

/* ---- random numbers: splitmix64 seeding xoshiro256** -------------------- */
typedef struct { uint64_t s[4]; } synth_rng;

static inline uint64_t synth_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline void synth_seed(synth_rng *r, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t x = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull) * 0xbf58476d1ce4e5b9ull
                 ^ (c + 0x1234567ull) * 0x94d049bb133111ebull;
    for (int i = 0; i < 4; i++) r->s[i] = synth_splitmix(&x);
}

static inline uint64_t synth_next(synth_rng *r)
{
    uint64_t *s = r->s;
    uint64_t res = ((s[1] * 5) << 7 | (s[1] * 5) >> 57) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return res;
}

static inline double synth_unif(synth_rng *r)
{
    return ((double)(synth_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static inline double synth_normal(synth_rng *r)
{
    double u = synth_unif(r), v = synth_unif(r);
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

static inline int synth_poisson(synth_rng *r, double lam)
{
    if (lam <= 0) return 0;
    if (lam > 30) {
        double v = lam + sqrt(lam) * synth_normal(r);
        return v < 0 ? 0 : (int)(v + 0.5);
    }
    double L = exp(-lam), p = 1;
    int k = 0;
    do { k++; p *= synth_unif(r); } while (p > L);
    return k - 1;
}

/* ---- the model ---------------------------------------------------------- */

/* Footprint (weight a, body m) of a cell at pixel (y, x). */
static inline void synth_eval(const synth *s, const synth_cell *c, double y, double x,
                              float *a, float *m)
{
    double dy = y - c->cy, dx = x - c->cx, ct = cos(c->th), st = sin(c->th);
    double u = (dx * ct + dy * st) / c->ra, v = (-dx * st + dy * ct) / c->rb;
    double rho = sqrt(u * u + v * v);
    double e = s->p.edge / sqrt(c->ra * c->rb);
    double body;
    if (rho <= 1 - e) body = 1;
    else if (rho >= 1 + e) body = 0;
    else body = 0.5 * (1 + cos(M_PI * (rho - (1 - e)) / (2 * e)));
    double nuc = 0, nr = s->p.nucleus;
    if (nr > 0) {
        if (rho <= nr - e) nuc = 1;
        else if (rho < nr + e) nuc = 0.5 * (1 + cos(M_PI * (rho - (nr - e)) / (2 * e)));
    }
    *m = (float)body;
    *a = (float)(body * (1 - (1 - s->p.nucleus_bright) * nuc));
}

static inline void synth_free(synth *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) { free(s->a[i]); free(s->m[i]); }
    free(s->a); free(s->m); free(s->by0); free(s->bx0); free(s->bh); free(s->bw);
    free(s->cell); free(s->spikes); free(s->calcium); free(s->P); free(s->knot);
    free(s->meanc);
    free(s);
}

static inline synth *synth_new(const synth_params *pp)
{
    synth *s = calloc(1, sizeof *s);
    s->p = *pp;
    const synth_params *p = &s->p;
    size_t Y = p->Y, X = p->X, T = p->T;
    synth_rng r;
    synth_seed(&r, p->seed, 1, 0);
    size_t want = p->ncells ? p->ncells : (size_t)(p->density * (double)(Y * X) / 1e4 + 0.5);
    s->cell = calloc(want ? want : 1, sizeof *s->cell);
    /* Place cells by rejection; give up on a cell after many tries. */
    for (size_t i = 0; i < want; i++) {
        for (int tries = 0; tries < 2000; tries++) {
            double d = p->diameter + p->diameter_sd * synth_normal(&r);
            if (d < 0.5 * p->diameter) d = 0.5 * p->diameter;
            double asp = 1 + (p->aspect_max - 1) * synth_unif(&r);
            double R = d / 2;
            synth_cell c;
            c.ra = R * sqrt(asp);
            c.rb = R / sqrt(asp);
            c.th = M_PI * synth_unif(&r);
            c.cy = R + 1 + (double)(Y - 2 * R - 2) * synth_unif(&r);
            c.cx = R + 1 + (double)(X - 2 * R - 2) * synth_unif(&r);
            c.B = p->brightness * p->np_photons * exp(p->brightness_sd * synth_normal(&r));
            int ok = 1;
            for (size_t j = 0; j < s->n && ok; j++) {
                double Rj = sqrt(s->cell[j].ra * s->cell[j].rb);
                double dd = hypot(c.cy - s->cell[j].cy, c.cx - s->cell[j].cx);
                if (dd < p->min_sep * (R + Rj)) ok = 0;
            }
            if (ok) { s->cell[s->n++] = c; break; }
        }
    }
    size_t n = s->n;
    s->by0 = calloc(n + 1, sizeof(size_t)); s->bx0 = calloc(n + 1, sizeof(size_t));
    s->bh = calloc(n + 1, sizeof(size_t)); s->bw = calloc(n + 1, sizeof(size_t));
    s->a = calloc(n + 1, sizeof(float *)); s->m = calloc(n + 1, sizeof(float *));
    float *occ = calloc(Y * X, sizeof *occ);
    for (size_t i = 0; i < n; i++) {
        const synth_cell *c = &s->cell[i];
        double R = c->ra + p->edge + 1;
        long y0 = (long)floor(c->cy - R), y1 = (long)ceil(c->cy + R) + 1;
        long x0 = (long)floor(c->cx - R), x1 = (long)ceil(c->cx + R) + 1;
        if (y0 < 0) y0 = 0;
        if (x0 < 0) x0 = 0;
        if (y1 > (long)Y) y1 = (long)Y;
        if (x1 > (long)X) x1 = (long)X;
        s->by0[i] = (size_t)y0; s->bx0[i] = (size_t)x0;
        s->bh[i] = (size_t)(y1 - y0); s->bw[i] = (size_t)(x1 - x0);
        s->a[i] = calloc(s->bh[i] * s->bw[i], sizeof(float));
        s->m[i] = calloc(s->bh[i] * s->bw[i], sizeof(float));
        for (size_t y = 0; y < s->bh[i]; y++)
            for (size_t x = 0; x < s->bw[i]; x++) {
                float a, m;
                synth_eval(s, c, (double)(y + s->by0[i]), (double)(x + s->bx0[i]), &a, &m);
                s->a[i][y * s->bw[i] + x] = a;
                s->m[i][y * s->bw[i] + x] = m;
                float *o = &occ[(y + s->by0[i]) * X + x + s->bx0[i]];
                if (m > *o) *o = m;
            }
    }
    /* Static neuropil: texture smoothed by a 3x3 box twice, occluded. */
    s->P = calloc(Y * X, sizeof *s->P);
    float *tx = calloc(Y * X, sizeof *tx), *t2 = calloc(Y * X, sizeof *t2);
    for (size_t i = 0; i < Y * X; i++) tx[i] = (float)synth_normal(&r);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t y = 0; y < Y; y++)
            for (size_t x = 0; x < X; x++) {
                double acc = 0;
                int cnt = 0;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        long yy = (long)y + dy, xx = (long)x + dx;
                        if (yy < 0 || xx < 0 || yy >= (long)Y || xx >= (long)X) continue;
                        acc += tx[(size_t)yy * X + (size_t)xx];
                        cnt++;
                    }
                t2[y * X + x] = (float)(acc / cnt);
            }
        memcpy(tx, t2, Y * X * sizeof *tx);
    }
    double var = 0;
    for (size_t i = 0; i < Y * X; i++) var += (double)tx[i] * tx[i];
    double sd = sqrt(var / (double)(Y * X)) + 1e-12;
    for (size_t i = 0; i < Y * X; i++) {
        double tex = 1 + p->texture_sd * tx[i] / sd;
        if (tex < 0.2) tex = 0.2;
        s->P[i] = (float)(p->np_photons * tex * (1 - (1 - p->contamination) * occ[i]));
    }
    free(tx); free(t2); free(occ);
    /* Activity. */
    s->spikes = calloc(n * T + 1, sizeof(float));
    s->calcium = calloc(n * T + 1, sizeof(float));
    s->meanc = calloc(T + 1, sizeof(float));
    double g = exp(-1.0 / (p->fs * p->tau));
    for (size_t i = 0; i < n; i++) {
        synth_rng ri;
        synth_seed(&ri, p->seed, 2, i);
        double rate = p->rate * exp(p->rate_sd * synth_normal(&ri) - 0.5 * p->rate_sd * p->rate_sd);
        double c = 0;
        for (size_t t = 0; t < T; t++) {
            int k = synth_poisson(&ri, rate / p->fs);
            c = g * c + p->amp * k;
            s->spikes[i * T + t] = (float)k;
            s->calcium[i * T + t] = (float)c;
            s->meanc[t] += (float)(c / (double)n);
        }
    }
    s->gy = (size_t)ceil((double)Y / p->np_scale) + 1;
    s->gx = (size_t)ceil((double)X / p->np_scale) + 1;
    s->knot = calloc(T * s->gy * s->gx + 1, sizeof(float));
    double gn = exp(-1.0 / (p->fs * p->np_tau)), inn = p->np_sd * sqrt(1 - gn * gn);
    for (size_t k = 0; k < s->gy * s->gx; k++) {
        synth_rng rk;
        synth_seed(&rk, p->seed, 3, k);
        double z = p->np_sd * synth_normal(&rk);
        for (size_t t = 0; t < T; t++) {
            z = gn * z + inn * synth_normal(&rk);
            s->knot[t * s->gy * s->gx + k] = (float)z;
        }
    }
    return s;
}

static inline double synth_smoothstep(double u) { return u * u * (3 - 2 * u); }

/* Expected photons of frame t (no noise) into lam[Y*X]. */
static inline void synth_lambda(const synth *s, size_t t, float *lam)
{
    const synth_params *p = &s->p;
    size_t Y = p->Y, X = p->X;
    double G = 1 - p->bleach * (double)t / (double)(p->T ? p->T : 1);
    const float *kn = s->knot + t * s->gy * s->gx;
    double cpl = p->np_coupling * s->meanc[t];
    for (size_t y = 0; y < Y; y++) {
        double fy = (double)y / p->np_scale;
        size_t ky = (size_t)fy;
        double uy = synth_smoothstep(fy - (double)ky);
        for (size_t x = 0; x < X; x++) {
            double fx = (double)x / p->np_scale;
            size_t kx = (size_t)fx;
            double ux = synth_smoothstep(fx - (double)kx);
            const float *k0 = kn + ky * s->gx + kx, *k1 = k0 + s->gx;
            double f = (1 - uy) * ((1 - ux) * k0[0] + ux * k0[1]) + uy * ((1 - ux) * k1[0] + ux * k1[1]);
            lam[y * X + x] = (float)(G * s->P[y * X + x] * (1 + f + cpl));
        }
    }
    for (size_t i = 0; i < s->n; i++) {
        double v = G * s->cell[i].B * (1 + s->calcium[i * p->T + t]);
        for (size_t y = 0; y < s->bh[i]; y++)
            for (size_t x = 0; x < s->bw[i]; x++)
                lam[(y + s->by0[i]) * X + x + s->bx0[i]] += (float)(v * s->a[i][y * s->bw[i] + x]);
    }
}

/* Frame t in ADU (with noise) into out[Y*X]; lam is scratch of Y*X. */
static inline void synth_frame(const synth *s, size_t t, float *out, float *lam)
{
    const synth_params *p = &s->p;
    size_t Y = p->Y, X = p->X;
    synth_lambda(s, t, lam);
    for (size_t y = 0; y < Y; y++) {
        synth_rng r;
        synth_seed(&r, p->seed, 100 + t, y);
        for (size_t x = 0; x < X; x++) {
            double v = p->offset + p->gain * synth_poisson(&r, lam[y * X + x]);
            if (p->read_noise > 0) v += p->read_noise * synth_normal(&r);
            out[y * X + x] = (float)v;
        }
    }
}

/* Truth mask of cell i (body m >= 0.5) into mask[Y*X] (set to 1). */
static inline size_t synth_mask(const synth *s, size_t i, uint8_t *mask)
{
    size_t n = 0;
    for (size_t y = 0; y < s->bh[i]; y++)
        for (size_t x = 0; x < s->bw[i]; x++)
            if (s->m[i][y * s->bw[i] + x] >= 0.5f) {
                mask[(y + s->by0[i]) * s->p.X + x + s->bx0[i]] = 1;
                n++;
            }
    return n;
}

#endif
