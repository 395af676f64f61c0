/* caimg/stimulus.h -- visual stimulus sets, presentation schedules and
 * V1-like receptive fields.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Images are grey levels in [0, 1] with 0.5 the mean (blank-screen) grey,
 * stored row-major as [n][h][w] floats.  Receptive fields see the contrast
 * image c = 2 * I - 1, which is 0 on the blank screen and +-1 at full
 * black/white, so a neuron's drive does not depend on the mean luminance.
 *
 * Used by caimg_sim (the stimulus-driven mode of the simulator), by the
 * model-fitting stage to read the ground truth, and by anyone who wants the
 * true response of a simulated neuron to a new image (e.g. an adversarial one).
 */
#ifndef CAIMG_STIMULUS_H
#define CAIMG_STIMULUS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- stimulus sets ----------------------------------------------------- */

typedef struct {
    size_t n, h, w;     /* number of images and their size in pixels */
    float *images;      /* [n][h][w] grey levels in [0, 1]; owned */
} caimg_stimset;

/* An uninitialised set of n images of h x w (images contents undefined).
 * NULL with a message if n, h or w is 0 or memory runs out. */
caimg_stimset *caimg_stimset_alloc(size_t n, size_t h, size_t w);

/* A copy of user images ([n][h][w] floats).  Values must be finite and in
 * [0, 1] (convert 8/16-bit images by dividing by 255/65535 first);
 * otherwise NULL with CAIMG_EINVAL naming the first bad image and pixel. */
caimg_stimset *caimg_stimset_from_array(const float *images, size_t n, size_t h,
                                        size_t w);

/* n natural-like images: random-phase noise whose amplitude spectrum falls
 * as 1/f^alpha (alpha = 1 is the statistics of natural scenes, Field 1987),
 * without the DC term, scaled to RMS contrast `contrast` (default 0.3) and
 * clipped to [-1, 1] in contrast units.  Deterministic in `seed`.  Made with
 * FFTW (plans are created here: do not call from several threads at once). */
caimg_stimset *caimg_stimset_pink(size_t n, size_t h, size_t w, double alpha,
                                  double contrast, uint64_t seed);

/* Static sinusoidal gratings: every combination of n_ori orientations
 * (evenly spaced in [0, pi)), n_sf spatial frequencies (cycles per image
 * width, given in sf[]) and n_phase phases (evenly spaced in [0, 2 pi)),
 * ordered orientation slowest, then frequency, then phase.  Grating k has
 * contrast image c(y, x) = contrast * cos(2 pi f (x cos th + y sin th) / w + ph),
 * i.e. th is the direction of the wave vector (bars are perpendicular to it),
 * with x and y measured from the image centre. */
caimg_stimset *caimg_stimset_gratings(size_t h, size_t w, size_t n_ori,
                                      const double *sf, size_t n_sf,
                                      size_t n_phase, double contrast);

/* Orientation (radians), frequency (cycles per width) and phase of grating k
 * of a set made by caimg_stimset_gratings() with these counts. */
void caimg_stimset_grating_params(size_t k, size_t n_ori, const double *sf,
                                  size_t n_sf, size_t n_phase, double *ori,
                                  double *freq, double *phase);

void caimg_stimset_free(caimg_stimset *s);

/* ---- presentation schedules ---------------------------------------------- */

/* One presentation: stimulus `stimulus` (0-based index into the set) shown
 * from frame `onset` (0-based) for `duration` frames.  This is the row of the
 * schedule TSV (onset_frame, stimulus, duration_frames). */
typedef struct {
    size_t onset;
    size_t stimulus;
    size_t duration;
} caimg_presentation;

typedef struct {
    size_t start;        /* frames of blank screen before the first onset [0] */
    size_t duration;     /* frames each image is shown [15] */
    size_t isi;          /* blank frames between presentations [15] */
    size_t repeats;      /* presentations of every stimulus [10] */
    int random_order;    /* 1: each repeat block is a fresh random permutation
                          * of the set; 0: stimuli in index order [1] */
} caimg_schedule_opts;

void caimg_schedule_opts_init(caimg_schedule_opts *o);

/* Frames a schedule of nstim stimuli needs:
 * start + repeats * nstim * (duration + isi). */
size_t caimg_schedule_frames(const caimg_schedule_opts *o, size_t nstim);

/* Make the schedule: repeats blocks, each presenting every stimulus once, so
 * every stimulus is shown exactly `repeats` times and no block starts before
 * the previous one ends.  Presentation k starts at
 * start + k * (duration + isi).  *out (malloc'd, free with free()) receives
 * repeats * nstim presentations in time order.  The order is deterministic
 * in `seed`.  CAIMG_EINVAL if duration, repeats or nstim is 0. */
int caimg_schedule_make(const caimg_schedule_opts *o, size_t nstim, uint64_t seed,
                        caimg_presentation **out, size_t *npres);

/* Write a schedule as the TSV of formats.md: a header line
 * "onset_frame<TAB>stimulus<TAB>duration_frames", then one row per
 * presentation (0-based frames and stimulus pages).  CAIMG_EIO on a write
 * error. */
int caimg_schedule_write_tsv(FILE *fp, const caimg_presentation *p, size_t n);

/* Read such a TSV (columns found by name; without a header the order above;
 * duration_frames may be absent, then 0).  *out is malloc'd.  CAIMG_EFORMAT
 * naming the file and row for anything but non-negative integers. */
int caimg_schedule_read_tsv(const char *path, caimg_presentation **out, size_t *n);

/* ---- receptive fields --------------------------------------------------- */

typedef enum {
    CAIMG_RF_SIMPLE = 0,   /* Gabor filter, half-wave rectified, raised to a power */
    CAIMG_RF_COMPLEX = 1   /* energy model: quadrature pair of Gabors, squared and summed */
} caimg_rf_type;

/* A V1-like receptive field in stimulus pixel coordinates (pixel centres at
 * integers, x along a row).  The Gabor pair is
 *   u =  (x - cx) cos(theta) + (y - cy) sin(theta)
 *   v = -(x - cx) sin(theta) + (y - cy) cos(theta)
 *   env = exp(-(u^2 + (aspect v)^2) / (2 sigma^2))
 *   even = env cos(2 pi u / wavelength + phase),  odd = env sin(...)
 * each made zero-mean over the image and scaled to unit L2 norm, so a neuron
 * prefers gratings whose wave vector points along theta.  With the drive
 * d = <even, c> (and q = <odd, c>) on the contrast image c:
 *   simple:  rate = baseline + gain * max(d, 0)^exponent
 *   complex: rate = baseline + gain * (d^2 + q^2)^(exponent / 2)
 * in spikes per second. */
typedef struct {
    int type;              /* caimg_rf_type */
    double cy, cx;         /* centre, stimulus pixels */
    double sigma;          /* envelope s.d. along the wave vector, pixels */
    double aspect;         /* envelope elongation: s.d. across is sigma/aspect */
    double wavelength;     /* carrier wavelength, pixels */
    double theta;          /* wave-vector direction, radians */
    double phase;          /* carrier phase, radians (simple cells) */
    double exponent;       /* output nonlinearity power (about 2 in cat/mouse V1) */
    double gain;           /* Hz per unit drive^exponent; 0 = unresponsive */
    double baseline;       /* spontaneous rate, Hz */
} caimg_rf;

/* The even and odd filters of `rf` on an h x w image (each h*w floats;
 * `odd` may be NULL).  Filters that vanish on the image (centre far
 * outside) come out as zeros. */
void caimg_rf_filters(const caimg_rf *rf, size_t h, size_t w, float *even, float *odd);

/* The drive term of `rf` for one image (grey levels in [0,1]): max(d,0) for
 * simple cells and sqrt(d^2 + q^2) for complex cells, before the power and
 * gain.  `even`/`odd` are the filters from caimg_rf_filters() (so callers
 * evaluating many images compute them once). */
double caimg_rf_drive(const caimg_rf *rf, const float *even, const float *odd,
                      const float *image, size_t h, size_t w);

/* Expected firing rate (Hz) of `rf` for one image; computes the filters
 * itself (allocates; returns NaN if memory runs out). */
double caimg_rf_rate(const caimg_rf *rf, const float *image, size_t h, size_t w);

#ifdef __cplusplus
}
#endif
#endif
