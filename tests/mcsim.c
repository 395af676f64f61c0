/* mcsim.c -- synthetic two-photon movies with known motion (test helper).
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <fftw3.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "mcsim.h"

typedef struct {
    double y, x;          /* centre, scene coordinates */
    double c, s;          /* cos/sin of the orientation */
    double a, b;          /* semi-axes, px */
    double base;          /* resting brightness, photons */
    double ca;            /* calcium (dF/F) state */
} cell;

struct mcsim {
    mcsim_params p;
    gsl_rng *rng;
    size_t cy, cx;        /* canvas size (2x oversampled) */
    float *canvas;        /* neuropil, photons */
    cell *cells;
    size_t ncells;
    double *py, *px;      /* per-pixel sample positions of the current frame */
    double *lam;          /* expected photons of the current frame */
    size_t t;
};

void mcsim_params_init(mcsim_params *p, size_t ny, size_t nx)
{
    memset(p, 0, sizeof *p);
    p->ny = ny;
    p->nx = nx;
    p->seed = 1;
    p->margin = 48;
    p->cells_per_kpx = 1.1;
    p->bg_photons = 4;
    p->cell_photons = 8;
    p->spike_prob = 0.02;
    p->gain = 20;
    p->offset = 100;
    p->noise = 1;
}

/* Gaussian-filtered white noise on the canvas, unit variance, scale sigma
 * in frame pixels (the canvas is 2x oversampled). */
static void smooth_noise(gsl_rng *r, size_t cy, size_t cx, double sigma, float *out)
{
    size_t nc = cy * (cx / 2 + 1);
    float *re = fftwf_malloc(sizeof *re * cy * cx);
    fftwf_complex *sp = fftwf_malloc(sizeof *sp * nc);
    fftwf_plan f = fftwf_plan_dft_r2c_2d((int)cy, (int)cx, re, sp, FFTW_ESTIMATE);
    fftwf_plan b = fftwf_plan_dft_c2r_2d((int)cy, (int)cx, sp, re, FFTW_ESTIMATE);
    for (size_t i = 0; i < cy * cx; i++) re[i] = (float)gsl_ran_gaussian(r, 1.0);
    fftwf_execute(f);
    double s = 2 * sigma;   /* in canvas pixels */
    for (size_t ky = 0; ky < cy; ky++) {
        double fy = (ky <= cy / 2 ? (double)ky : (double)ky - (double)cy) / (double)cy;
        for (size_t kx = 0; kx <= cx / 2; kx++) {
            double fx = (double)kx / (double)cx;
            double g = exp(-2 * M_PI * M_PI * s * s * (fy * fy + fx * fx));
            sp[ky * (cx / 2 + 1) + kx][0] *= (float)g;
            sp[ky * (cx / 2 + 1) + kx][1] *= (float)g;
        }
    }
    sp[0][0] = sp[0][1] = 0;
    fftwf_execute(b);
    double ss = 0;
    for (size_t i = 0; i < cy * cx; i++) ss += (double)re[i] * re[i];
    double sd = sqrt(ss / (double)(cy * cx));
    for (size_t i = 0; i < cy * cx; i++) out[i] = (float)(re[i] / sd);
    fftwf_destroy_plan(f);
    fftwf_destroy_plan(b);
    fftwf_free(re);
    fftwf_free(sp);
}

mcsim *mcsim_create(const mcsim_params *p)
{
    mcsim *s = calloc(1, sizeof *s);
    s->p = *p;
    s->rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(s->rng, p->seed);
    s->cy = 2 * (p->ny + 2 * (size_t)p->margin) + 8;
    s->cx = 2 * (p->nx + 2 * (size_t)p->margin) + 8;
    size_t nc = s->cy * s->cx;
    s->canvas = malloc(sizeof *s->canvas * nc);
    float *tmp = malloc(sizeof *tmp * nc);
    /* Neuropil: a slow illumination gradient, cell-scale blotches and fine
     * processes.  The finest scale (1.5 px) is still well sampled on the
     * 2x canvas, so cubic interpolation reproduces it closely. */
    static const double sig[3] = {40, 4, 1.5}, amp[3] = {0.3, 0.35, 0.25};
    for (size_t i = 0; i < nc; i++) s->canvas[i] = 1;
    for (int k = 0; k < 3; k++) {
        smooth_noise(s->rng, s->cy, s->cx, sig[k], tmp);
        for (size_t i = 0; i < nc; i++) s->canvas[i] += (float)(amp[k] * tmp[i]);
    }
    for (size_t i = 0; i < nc; i++) {
        double v = s->canvas[i];
        /* A soft floor keeps the texture positive without kinks. */
        v = 0.5 * (v + sqrt(v * v + 0.04));
        s->canvas[i] = (float)(v * p->bg_photons);
    }
    free(tmp);

    double W = (double)p->nx + 2 * p->margin, H = (double)p->ny + 2 * p->margin;
    s->ncells = (size_t)(p->cells_per_kpx * W * H / 1000.0);
    s->cells = calloc(s->ncells ? s->ncells : 1, sizeof *s->cells);
    for (size_t i = 0; i < s->ncells; i++) {
        cell *c = &s->cells[i];
        c->y = gsl_rng_uniform(s->rng) * H - p->margin;
        c->x = gsl_rng_uniform(s->rng) * W - p->margin;
        double th = gsl_rng_uniform(s->rng) * M_PI;
        c->c = cos(th);
        c->s = sin(th);
        c->a = 3.5 + 3 * gsl_rng_uniform(s->rng);
        c->b = c->a * (0.65 + 0.35 * gsl_rng_uniform(s->rng));
        c->base = p->cell_photons * (0.4 + 1.2 * gsl_rng_uniform(s->rng));
    }
    s->py = malloc(sizeof *s->py * p->ny * p->nx);
    s->px = malloc(sizeof *s->px * p->ny * p->nx);
    s->lam = malloc(sizeof *s->lam * p->ny * p->nx);
    return s;
}

void mcsim_free(mcsim *s)
{
    if (!s) return;
    gsl_rng_free(s->rng);
    free(s->canvas);
    free(s->cells);
    free(s->py);
    free(s->px);
    free(s->lam);
    free(s);
}

static double keys(double t)
{
    t = fabs(t);
    if (t < 1) return (1.5 * t - 2.5) * t * t + 1;
    if (t < 2) return ((-0.5 * t + 2.5) * t - 4) * t + 2;
    return 0;
}

/* Neuropil at scene position (y, x): Keys cubic interpolation of the
 * canvas. */
static double neuropil(const mcsim *s, double y, double x)
{
    double cy = 2 * (y + s->p.margin) + 4, cx = 2 * (x + s->p.margin) + 4;
    if (cy < 1) cy = 1;
    if (cx < 1) cx = 1;
    if (cy > (double)s->cy - 3) cy = (double)s->cy - 3;
    if (cx > (double)s->cx - 3) cx = (double)s->cx - 3;
    long iy = (long)floor(cy), ix = (long)floor(cx);
    double fy = cy - (double)iy, fx = cx - (double)ix;
    double wy[4], wx[4], v = 0;
    for (int k = 0; k < 4; k++) {
        wy[k] = keys(fy - (k - 1));
        wx[k] = keys(fx - (k - 1));
    }
    for (int a = 0; a < 4; a++) {
        const float *row = s->canvas + (size_t)(iy - 1 + a) * s->cx + (size_t)(ix - 1);
        double r = 0;
        for (int b = 0; b < 4; b++) r += wx[b] * row[b];
        v += wy[a] * r;
    }
    return v;
}

/* Soma profile at offset (u, v) from its centre in its own axes: a soft
 * ellipse (edge width about one pixel, like a two-photon PSF) with a
 * nucleus at 40% brightness. */
static double soma(const cell *c, double dy, double dx)
{
    double u = c->c * dx + c->s * dy, v = -c->s * dx + c->c * dy;
    double r = sqrt((u / c->a) * (u / c->a) + (v / c->b) * (v / c->b));
    double w = 0.8 / c->b;
    double body = 1 / (1 + exp((r - 1) / w));
    double nuc = 1 / (1 + exp((r - 0.45) / w));
    return body - 0.6 * nuc;
}

void mcsim_next(mcsim *s, double dy, double dx, mcsim_field_fn field, void *ctx,
                double bidi, float *out)
{
    size_t ny = s->p.ny, nx = s->p.nx;
    double dmin_y = 1e30, dmax_y = -1e30, dmin_x = 1e30, dmax_x = -1e30;
    for (size_t y = 0; y < ny; y++)
        for (size_t x = 0; x < nx; x++) {
            double ey = 0, ex = 0;
            if (field) field(ctx, s->t, (double)y, (double)x, &ey, &ex);
            double oy = dy + ey, ox = dx + ex + ((y & 1) ? bidi : 0);
            size_t i = y * nx + x;
            s->py[i] = (double)y - oy;
            s->px[i] = (double)x - ox;
            if (oy < dmin_y) dmin_y = oy;
            if (oy > dmax_y) dmax_y = oy;
            if (ox < dmin_x) dmin_x = ox;
            if (ox > dmax_x) dmax_x = ox;
            s->lam[i] = neuropil(s, s->py[i], s->px[i]);
        }
    for (size_t k = 0; k < s->ncells; k++) {
        cell *c = &s->cells[k];
        /* Calcium: AR(1) decay with sparse spikes of random amplitude. */
        c->ca *= 0.93;
        if (gsl_rng_uniform(s->rng) < s->p.spike_prob)
            c->ca += 0.5 + gsl_rng_uniform(s->rng);
        double bright = c->base * (1 + c->ca);
        double R = c->a + 4;
        long y0 = (long)floor(c->y - R + dmin_y), y1 = (long)ceil(c->y + R + dmax_y);
        long x0 = (long)floor(c->x - R + dmin_x), x1 = (long)ceil(c->x + R + dmax_x);
        if (y0 < 0) y0 = 0;
        if (x0 < 0) x0 = 0;
        if (y1 > (long)ny - 1) y1 = (long)ny - 1;
        if (x1 > (long)nx - 1) x1 = (long)nx - 1;
        for (long y = y0; y <= y1; y++)
            for (long x = x0; x <= x1; x++) {
                size_t i = (size_t)y * nx + (size_t)x;
                double ey = s->py[i] - c->y, ex = s->px[i] - c->x;
                if (fabs(ey) > R || fabs(ex) > R) continue;
                s->lam[i] += bright * soma(c, ey, ex);
            }
    }
    for (size_t i = 0; i < ny * nx; i++) {
        double lam = s->lam[i] > 0 ? s->lam[i] : 0;
        double v = s->p.noise ? (double)gsl_ran_poisson(s->rng, lam) : lam;
        out[i] = (float)(s->p.gain * v + s->p.offset);
    }
    s->t++;
}

void mcsim_scene(mcsim *s, float *out)
{
    size_t ny = s->p.ny, nx = s->p.nx;
    for (size_t y = 0; y < ny; y++)
        for (size_t x = 0; x < nx; x++) {
            double v = neuropil(s, (double)y, (double)x);
            for (size_t k = 0; k < s->ncells; k++) {
                const cell *c = &s->cells[k];
                double ey = (double)y - c->y, ex = (double)x - c->x;
                double R = c->a + 4;
                if (fabs(ey) > R || fabs(ex) > R) continue;
                v += c->base * soma(c, ey, ex);
            }
            out[y * nx + x] = (float)(s->p.gain * v + s->p.offset);
        }
}

void mcsim_walk(unsigned long seed, size_t T, double step, double jump_prob,
                double jump, double limit, double y0, double x0, float *shifts)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    double y = y0, x = x0;
    for (size_t t = 0; t < T; t++) {
        if (t) {
            y += gsl_ran_gaussian(r, step);
            x += gsl_ran_gaussian(r, step);
            if (gsl_rng_uniform(r) < jump_prob) {
                y += gsl_ran_gaussian(r, jump);
                x += gsl_ran_gaussian(r, jump);
            }
            /* Reflect at the limits so the walk stays in range. */
            if (y > limit) y = 2 * limit - y;
            if (y < -limit) y = -2 * limit - y;
            if (x > limit) x = 2 * limit - x;
            if (x < -limit) x = -2 * limit - x;
        }
        shifts[2 * t] = (float)y;
        shifts[2 * t + 1] = (float)x;
    }
    gsl_rng_free(r);
}
