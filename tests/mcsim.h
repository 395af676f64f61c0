/* mcsim.h -- synthetic two-photon movies with known motion, for the motion
 * correction tests and benchmarks (not part of the library).
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * The scene is continuous: a band-limited neuropil texture (sampled with
 * cubic interpolation from a 2x oversampled canvas) plus soft-edged
 * elliptical somata with dim nuclei, rendered analytically.  A frame samples
 * the scene at p = (y, x) - d(y, x), so frame(y, x) = scene(y - dy, x - dx),
 * the sign convention of caimg's shifts.  Somata fluctuate with sparse
 * calcium transients so that frames differ from any template the way real
 * frames do, and photon shot noise (Poisson) is added at a chosen photon
 * count.
 */
#ifndef CAIMG_TESTS_MCSIM_H
#define CAIMG_TESTS_MCSIM_H

#include <stddef.h>

typedef struct {
    size_t ny, nx;          /* frame size */
    unsigned long seed;
    double margin;          /* scene extent outside the frame, px */
    double cells_per_kpx;   /* somata per 1000 px^2 of scene */
    double bg_photons;      /* mean neuropil photons per pixel per frame */
    double cell_photons;    /* mean soma photons above neuropil at rest */
    double spike_prob;      /* per soma per frame */
    double gain, offset;    /* sample = gain * photons + offset */
    int noise;              /* 0: noise-free expected photon counts */
} mcsim_params;

void mcsim_params_init(mcsim_params *p, size_t ny, size_t nx);

/* A smooth deformation added to the rigid shift: at pixel (y, x) of frame
 * t the displacement is (dy, dx) += field(ctx, t, y, x). */
typedef void (*mcsim_field_fn)(void *ctx, size_t t, double y, double x,
                               double *dy, double *dx);

typedef struct mcsim mcsim;

mcsim *mcsim_create(const mcsim_params *p);
void mcsim_free(mcsim *s);

/* Render the next frame (frames are generated in order; activity evolves
 * from one call to the next).  (dy, dx) is the rigid shift, `field` an
 * optional deformation (NULL for none), `bidi` the bidirectional-scan
 * offset: odd rows are displaced right by `bidi` pixels.  Writes ny*nx
 * floats. */
void mcsim_next(mcsim *s, double dy, double dx, mcsim_field_fn field,
                void *ctx, double bidi, float *out);

/* The noise-free resting scene at zero shift (the ideal template). */
void mcsim_scene(mcsim *s, float *out);

/* A random-walk trajectory with occasional jumps: shifts[t][2] (dy, dx),
 * bounded by +-limit, starting at (y0, x0). */
void mcsim_walk(unsigned long seed, size_t T, double step, double jump_prob,
                double jump, double limit, double y0, double x0, float *shifts);

#endif
