/* caimg/motion.h -- motion correction of movies in memory.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * This module registers frames to a template.  It works on frames in memory
 * and does no file I/O; caimg_mc_run() (caimg/mcrun.h) streams whole movies
 * through it.
 *
 * Shift convention (caimg-h5(5)): the shift (dy, dx) of a frame is the
 * translation of the scene in that frame relative to the template,
 *     frame(y, x) = template(y - dy, x - dx),
 * so it is the motion itself; correcting samples the frame at
 * (y + dy, x + dx).  dy is along rows (the first index), dx along columns.
 *
 * Method.
 *   Rigid: each frame, with its mean removed and its edges tapered to zero
 *   by a raised-cosine window (so that the periodic FFT sees no step at the
 *   frame border, which would otherwise produce a spurious peak at zero
 *   shift), is Fourier transformed once with a single-precision FFTW plan
 *   made at plan creation.  The cross-power spectrum with the template is
 *   whitened (divided by its magnitude: phase correlation), weighted by each
 *   frequency's reliability |T|^2 / (|T|^2 + noise) (the noise power of one
 *   frame is measured on the data, in the outer band of its spectrum, where
 *   two-photon images hold little but shot noise) and multiplied by a
 *   Gaussian low-pass of `smooth_sigma` pixels.  Whitening makes the peak
 *   independent of the images' brightness and of their large-scale
 *   structure (illumination gradients, the frame border), which bias plain
 *   cross-correlation by several hundredths of a pixel; the weighting keeps
 *   the frequencies where shot noise dominates from diluting it.  With the
 *   Gaussian the peak is itself near-Gaussian, so the sub-pixel position is
 *   found by fitting a parabola to the logarithm of the three samples around
 *   the peak along each axis; on simulated movies this matches the maximum
 *   of the continuous (band-limited) correlation to a few thousandths of a
 *   pixel, at no cost, where an upsampled DFT would cost more than the FFTs.
 *   The peak is searched within +-max_shift.
 *   The edge taper is fixed to the frame while the scene moves, so frame
 *   and template would weigh the same scene point differently, which pulls
 *   the estimate towards zero by a fraction of the shift (about 1% on
 *   128-px frames, 0.1% on 512-px frames).  So a coarse registration of
 *   binned frames (to at least 64 px, small FFTs) comes first, and the
 *   full-resolution frame is tapered with the window moved by the coarse
 *   shift, i.e. anchored to the scene as the template's is.
 *   Piecewise-rigid: the frame is cut into overlapping square patches; each
 *   is registered to the same patch of the template (the frame window being
 *   displaced by the rounded rigid shift, so no interpolation is needed
 *   first), within max_dev pixels of the rigid shift.  Patches whose
 *   correlation peak-to-noise ratio is below min_pnr, or whose peak lies at
 *   the edge of the allowed region, are replaced by the mean of their
 *   reliable neighbours (the rigid shift if there are none).  The patch
 *   shifts are interpolated to every pixel by Catmull-Rom splines
 *   (extrapolated linearly beyond the outer patch centres).  A patch sees a
 *   varying displacement as an average weighted by where its structure is,
 *   which biases the field where it bends; so the frame is resampled with
 *   this first field and the patches are registered again (within 3 px),
 *   and the small residual is added.  The frame is then resampled along the
 *   final field.
 *   Patch shifts are reported, like all shifts, as the motion on the
 *   frame's pixels: at the patch centre c, d(c) with frame(p) =
 *   template(p - d(p)).  (The patches measure the template-side field s,
 *   frame(c + s(c)) = template(c), which the warp uses; d(c) = s(c - d(c))
 *   differs from s(c) by the field's gradient times the shift.)
 *   Bidirectional scanning: the offset between odd and even rows is found by
 *   cross-correlating the odd rows of the mean image with the average of
 *   their even neighbours, along x; odd rows are then moved back by it
 *   before registration.
 *
 * Border policy: a corrected pixel whose source position lies outside the
 * frame is filled according to caimg_mc_params.border: by default with the
 * nearest edge pixel (so integer output stays meaningful), or with NaN
 * (float output only) or zero.  The valid region, the box of pixels whose
 * source was inside the frame in every frame, is reported so later stages
 * can crop.
 *
 * Unusable frames: a frame with no variation among its finite pixels
 * (blank, or saturated everywhere) or with fewer than half its pixels
 * finite cannot be registered.  It is given the shift of the previous usable
 * frame (zero at the start of a movie), corrected with it, flagged
 * CAIMG_MC_UNUSABLE and given a correlation of NaN.  Non-finite pixels of
 * other frames are replaced by the frame mean for registration.
 *
 * Threads: a plan is used by one thread at a time; it parallelises over
 * frames internally with OpenMP (params.threads workers).
 */
#ifndef CAIMG_MOTION_H
#define CAIMG_MOTION_H

#include <stddef.h>

#include "caimg/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CAIMG_MC_BORDER_NEAREST = 0,  /* replicate the nearest edge pixel */
    CAIMG_MC_BORDER_ZERO,         /* fill with 0 */
    CAIMG_MC_BORDER_NAN           /* fill with NaN (float output only) */
} caimg_mc_border;

typedef enum {
    CAIMG_MC_INTERP_BICUBIC = 0,  /* Keys cubic convolution (a = -1/2) */
    CAIMG_MC_INTERP_BILINEAR
} caimg_mc_interp;

typedef enum {
    CAIMG_MC_BIDI_AUTO = 0,       /* estimate from the template sample, correct */
    CAIMG_MC_BIDI_OFF,            /* neither estimate nor correct */
    CAIMG_MC_BIDI_FIXED           /* correct by params.bidi_offset */
} caimg_mc_bidi;

/* Frame flags reported by caimg_mc_execute(). */
enum {
    CAIMG_MC_OK = 0,
    CAIMG_MC_UNUSABLE = 1,        /* blank, saturated or mostly non-finite */
    CAIMG_MC_CLIPPED = 2,         /* the best shift lies at (or beyond) +-max_shift */
    CAIMG_MC_FILLED = 4           /* NaN or infinite pixels replaced by the frame's mean */
};

/* The fewest usable frames caimg_mc_make_template() accepts. */
#define CAIMG_MC_MIN_TEMPLATE_FRAMES 5

typedef struct {
    /* Rigid registration. */
    double max_shift;       /* largest |dy| and |dx| searched, px; 0 means
                               max_shift_frac of the smaller frame side */
    double max_shift_frac;  /* [0.25] */
    double smooth_sigma;    /* Gaussian low-pass of the correlation, px [1.15] */
    int whiten;             /* 1: phase correlation, the cross-power spectrum
                               normalised to unit magnitude and weighted by
                               each frequency's signal-to-noise ratio; 0: plain
                               cross-correlation [1] */
    double taper;           /* width of the raised-cosine edge taper, px;
                               0 means 1/16 of the side, at least 8 [0] */
    /* Piecewise-rigid registration. */
    int piecewise;          /* 0: rigid only; 1: rigid then patches [0] */
    size_t patch;           /* patch side, px; 0 means 128, or a quarter of the
                               smaller frame side if that is less (at least 32) [0] */
    size_t overlap;         /* overlap of neighbouring patches, px; 0 means patch/4 [0] */
    double max_dev;         /* largest deviation of a patch from the rigid shift,
                               px; at most a quarter of the patch [5] */
    double min_pnr;         /* patches with a lower correlation peak-to-noise
                               ratio are replaced by their neighbours [8] */
    caimg_mc_interp interp; /* resampling of corrected frames [bicubic] */
    caimg_mc_border border; /* see the border policy above [nearest] */
    /* Template estimated from the data (caimg_mc_make_template). */
    int template_iter;      /* refinement iterations [3] */
    /* Bidirectional scanning. */
    caimg_mc_bidi bidi;     /* [auto] */
    double bidi_offset;     /* odd-row offset for CAIMG_MC_BIDI_FIXED, px */
    int bidi_subpixel;      /* 0: round the estimated offset to whole pixels,
                               which odd rows are then moved by exactly; 1:
                               keep the fraction and interpolate [0] */
    int threads;            /* OpenMP workers; 0 means the OpenMP default [0] */
    int measure;            /* 0: FFTW's estimated plans, which are the same on
                               every run, so the same input gives the same
                               output to the last bit; 1: measured plans, timed
                               on this machine (20-30% faster transforms, but
                               the algorithm chosen, and with it the rounding
                               of the results, can change from run to run) [0] */
    size_t frames_hint;     /* with measure: how many frames the plan will
                               register, if known; measured plans (a few tenths
                               of a second to make) are then made only for the
                               transforms run often enough to pay for that,
                               estimated plans for the others; 0: unknown, all
                               are measured [0] */
} caimg_mc_params;

/* Fill `p` with the defaults shown in brackets above. */
void caimg_mc_params_init(caimg_mc_params *p);

/* A registration plan for frames of ny x nx pixels: FFTW plans, windows,
 * filters, the patch grid and per-thread work space, made once. */
typedef struct caimg_mc_plan caimg_mc_plan;

/* Create a plan.  Fails with CAIMG_EINVAL (message naming the parameter)
 * for frames smaller than 16 x 16 or parameters out of range.  FFTW plan
 * creation is not thread-safe: do not create plans concurrently. */
caimg_mc_plan *caimg_mc_plan_create(size_t ny, size_t nx, const caimg_mc_params *par);

/* Release a plan; accepts NULL. */
void caimg_mc_plan_destroy(caimg_mc_plan *p);

/* The parameters in effect, with defaults resolved (max_shift, taper,
 * patch and overlap hold the values used). */
const caimg_mc_params *caimg_mc_plan_params(const caimg_mc_plan *p);

/* The patch grid: *npy x *npx patches whose centres are at rows cy[0..npy)
 * and columns cx[0..npx) (pixels).  A rigid plan has one "patch", the whole
 * frame. */
void caimg_mc_plan_grid(const caimg_mc_plan *p, size_t *npy, size_t *npx,
                        const float **cy, const float **cx);

/* Set the template (ny*nx floats, copied).  Non-finite pixels are an
 * error (CAIMG_EINVAL), as is a template without any variation.  If the
 * noise level is not known yet (no caimg_mc_make_template()), the first
 * caimg_mc_execute() measures it on its frames. */
int caimg_mc_set_template(caimg_mc_plan *p, const float *tmpl);

/* The template in use, or NULL before one is set. */
const float *caimg_mc_get_template(const caimg_mc_plan *p);

/* Set the bidirectional-scan offset applied to every frame before
 * registration: odd rows (1, 3, ...) of the input are displaced right by
 * `offset` pixels and are moved left by it. */
void caimg_mc_set_bidi(caimg_mc_plan *p, double offset);
double caimg_mc_get_bidi(const caimg_mc_plan *p);

/* Estimate the bidirectional-scan offset of a movie from its mean image
 * (ny*nx floats), to within about 0.1 px: the offset of odd rows relative to
 * even rows, positive when odd rows are displaced right.  Range +-nx/8. */
int caimg_mc_estimate_bidi(const float *mean, size_t ny, size_t nx, double *offset);

/* Build a template from `n` sample frames (n*ny*nx floats, ideally spread
 * evenly over the movie) and set it in the plan; also measure the frames'
 * noise level (see Method).  Unless the plan's bidi mode is OFF or FIXED,
 * the bidirectional offset is first estimated from the sample's mean and
 * set with caimg_mc_set_bidi().  The template starts as the mean of the
 * frames most correlated with each other (on 4x binned copies; so it does
 * not matter which frames are displaced) and is refined template_iter
 * times: the sample is registered to it and the best-matching frames (from
 * a sixth to half of them) are averaged again, each moved so that the
 * template sits at the mean position of the whole sample (10% trimmed
 * mean), and for piecewise plans, in the last iteration, also has the
 * sample's mean deformation.  Resets the run state.  Fails with
 * CAIMG_EFORMAT when fewer than CAIMG_MC_MIN_TEMPLATE_FRAMES sample frames
 * are usable. */
int caimg_mc_make_template(caimg_mc_plan *p, const float *frames, size_t n);

/* caimg_mc_make_template() for a sample of any type: `frames` holds n*ny*nx
 * samples of type dt (as read from the movie, so no float copy is needed).
 * Fails with CAIMG_EINVAL for an unknown type. */
int caimg_mc_make_template_raw(caimg_mc_plan *p, const void *frames, caimg_dtype dt, size_t n);

/* caimg_mc_make_template_raw() for frames that need not be contiguous:
 * frames[i] points at the ny*nx samples of frame i (e.g. frames mapped in
 * place from the file, caimg_movie_map_frames()). */
int caimg_mc_make_template_frames(caimg_mc_plan *p, const void *const *frames, caimg_dtype dt,
                                  size_t n);

/* Per-frame results of caimg_mc_execute(); any pointer may be NULL. */
typedef struct {
    float *shifts;          /* [n][2] rigid shift (dy, dx), px */
    float *patch_shifts;    /* [n][npy][npx][2] total shift at each patch
                               centre, in the frame's coordinates (see Method;
                               the rigid shift for a rigid plan) */
    float *corr;            /* [n] Pearson correlation of the corrected frame
                               with the template over the frame's valid box
                               (NaN for unusable frames) */
    unsigned char *flags;   /* [n] CAIMG_MC_* flags, or-ed */
} caimg_mc_frames;

/* Register n frames (`in`, n*ny*nx samples of type in_dt) to the template
 * and correct them (always: the correlations and the summary describe the
 * corrected frames); if `out` is not NULL, write them there (n*ny*nx
 * samples of type out_dt, rounded and clamped for integer types; the number
 * of clamped samples is added to *nclamped if it is not NULL).  `out` may
 * equal `in` when the types are equal.  Frames are processed in parallel.
 * Successive calls continue one movie: the summary below accumulates over
 * them and an unusable first frame takes the last shift of the previous
 * call.  Fails with CAIMG_EINVAL if no template is set or if out_dt is an
 * integer type with border = NAN. */
int caimg_mc_execute(caimg_mc_plan *p, const void *in, caimg_dtype in_dt,
                     void *out, caimg_dtype out_dt, size_t n,
                     caimg_mc_frames *res, size_t *nclamped);

/* What the frames registered since the last reset have in common. */
typedef struct {
    size_t frames;          /* frames registered */
    size_t unusable;        /* frames flagged CAIMG_MC_UNUSABLE */
    size_t clipped;         /* frames flagged CAIMG_MC_CLIPPED */
    size_t filled;          /* frames flagged CAIMG_MC_FILLED */
    int valid[4];           /* y0, y1, x0, x1: half-open box of pixels whose
                               source was inside the frame in every frame
                               (empty if y0 >= y1 or x0 >= x1) */
    double crispness_before;/* mean gradient magnitude (central differences)
                               of the mean input image over the valid box,
                               in intensity units per pixel */
    double crispness_after; /* the same for the mean corrected image */
    double bidi_offset;     /* offset applied */
} caimg_mc_summary;

/* Fill `s`.  If mean_before / mean_after are not NULL they receive the mean
 * input and corrected images (ny*nx floats each; input frames after
 * cleaning of non-finite pixels, unusable frames excluded). */
int caimg_mc_get_summary(const caimg_mc_plan *p, caimg_mc_summary *s,
                         float *mean_before, float *mean_after);

/* Forget the accumulated summary and the last shift, to start a new movie
 * with the same template. */
void caimg_mc_reset(caimg_mc_plan *p);

#ifdef __cplusplus
}
#endif
#endif /* CAIMG_MOTION_H */
