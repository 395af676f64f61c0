/* caimg/dff.h -- neuropil subtraction, baselines, dF/F and noise levels.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * A trace F[t] (t = 0..T-1, sampled at fs Hz) becomes dF/F in four steps:
 *
 *   1. neuropil subtraction   Fc = F - r * Fneu, r fixed (0.7, Suite2p's
 *      and Chen et al. 2013's value) or estimated per ROI;
 *   2. a baseline F0[t] of Fc, by one of the methods of the type table
 *      below (chosen by name, as GSL chooses interpolation methods);
 *   3. dF/F = (Fc - F0) / max(F0, floor), where floor = f0_floor times the
 *      mean |F| of the raw trace: a baseline near or below zero (common
 *      after neuropil subtraction of dim cells) would otherwise give huge
 *      or infinite values.  ROIs where the floor was used get a warning;
 *   4. noise levels of dF/F: the PSD estimate and the Cascade metric.
 *
 * Single-trace functions work on double arrays; caimg_dff_compute() does
 * whole blocks of ROIs stored as float [N][T] (the on-disk layout) in
 * parallel with OpenMP.  Non-finite samples are replaced by linear
 * interpolation between their finite neighbours (with a warning), so no
 * output ever holds NaN or Inf.
 */
#ifndef CAIMG_DFF_H
#define CAIMG_DFF_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- baselines: a table of interchangeable methods --------------------- */

/* A baseline method.  The predefined ones:
 *
 *  maximin     Suite2p's: Gaussian smoothing (sigma_frames), then a running
 *              minimum and a running maximum, both over window_s seconds.
 *              Follows the upper envelope of the lower edge of the trace.
 *  percentile  CaImAn's: running `percentile` over window_frames frames
 *              (or window_s seconds if given), exact, O(T log w).  With
 *              percentile = CAIMG_PERCENTILE_AUTO the percentile is chosen
 *              per ROI as the fraction of samples below the mode of the
 *              trace's distribution (CaImAn's df_percentile), which adapts
 *              to how active the cell is.
 *  lowpass     FISSA's: a zero-phase low-pass FIR filter (Hamming-windowed
 *              sinc, lowpass_taps taps, cutoff lowpass_hz, applied forwards
 *              and backwards), then the `percentile` of the filtered trace,
 *              constant over time (or running, over window_s seconds or
 *              window_frames frames, if either is positive).
 *  constant    the `percentile` of the whole trace, constant over time.
 *
 * Windows are centred on each frame and shrink at the ends of the trace. */
typedef struct caimg_baseline_type caimg_baseline_type;

extern const caimg_baseline_type *const caimg_baseline_maximin;
extern const caimg_baseline_type *const caimg_baseline_percentile;
extern const caimg_baseline_type *const caimg_baseline_lowpass;
extern const caimg_baseline_type *const caimg_baseline_constant;

/* The NULL-terminated list of all methods, in the order above. */
const caimg_baseline_type *const *caimg_baseline_types(void);

/* The method called `name` ("maximin", ...), or NULL. */
const caimg_baseline_type *caimg_baseline_type_find(const char *name);

/* Its name and a one-line description (for --help). */
const char *caimg_baseline_type_name(const caimg_baseline_type *t);
const char *caimg_baseline_type_summary(const caimg_baseline_type *t);

/* Ask for the automatic percentile (from the mode of the distribution). */
#define CAIMG_PERCENTILE_AUTO (-1.0)

typedef struct {
    double window_s;      /* running window, seconds; 0 = use window_frames */
    double window_frames; /* running window, frames, used when window_s is 0 */
    double sigma_frames;  /* maximin: Gaussian sigma in frames (0 = none) */
    double percentile;    /* 0..100, or CAIMG_PERCENTILE_AUTO */
    double lowpass_hz;    /* lowpass: cutoff frequency in Hz */
    int lowpass_taps;     /* lowpass: FIR filter length */
} caimg_baseline_params;

/* The defaults of method t: maximin window_s 60, sigma_frames 10;
 * percentile window_frames 500, percentile 8; lowpass lowpass_hz 1,
 * lowpass_taps 30, percentile 5, window 0 (constant); constant percentile
 * 8.  Unused fields are set to 0. */
void caimg_baseline_params_init(caimg_baseline_params *p, const caimg_baseline_type *t);

/* A baseline workspace for traces of T frames at fs Hz: the smoothing
 * kernel, filter taps and scratch memory are made once and reused for
 * every trace.  Not shareable between threads (make one per thread).
 * Fails with CAIMG_EINVAL (message naming the parameter) on bad params. */
typedef struct caimg_baseline caimg_baseline;
caimg_baseline *caimg_baseline_alloc(const caimg_baseline_type *t,
                                     const caimg_baseline_params *p,
                                     double fs, size_t T);

/* F0[0..T) = the baseline of F[0..T) (F must be finite; F0 may not alias
 * F).  Returns 0.  `pct_used`, if not NULL, receives the percentile used
 * (the automatic one, where asked for; NAN for maximin). */
int caimg_baseline_compute(caimg_baseline *b, const double *F, double *F0,
                           double *pct_used);

void caimg_baseline_free(caimg_baseline *b);

/* ---- running order statistics (exposed for reuse and for tests) -------- */

/* out[i] = min (max) of x over the window [i - w/2, i - w/2 + w - 1]
 * clipped to [0, T), in O(T) with a monotone deque.  `work` holds T size_t.
 * The window convention is scipy.ndimage's minimum_filter1d. */
void caimg_running_min(const double *x, size_t T, size_t w, double *out, size_t *work);
void caimg_running_max(const double *x, size_t T, size_t w, double *out, size_t *work);

/* out[i] = the p-th percentile (0..100, linear interpolation as numpy) of x
 * over the same window, exactly, in O(T log w) with two indexed heaps.
 * `work` holds 3*w + 2 size_t. */
void caimg_running_percentile(const double *x, size_t T, size_t w, double p,
                              double *out, size_t *work);

/* The automatic percentile of x (CaImAn's df_percentile): 100 times the
 * fraction of samples below the mode of a kernel density estimate.
 * `work` holds T + 512 doubles.  Clamped to [1, 50]. */
double caimg_auto_percentile(const double *x, size_t T, double *work);

/* ---- neuropil ----------------------------------------------------------- */

/* Estimate the neuropil coefficient r of F = b + r * Fneu + (cell
 * activity) + noise by linear quantile regression at a low quantile q
 * (default 0.05): for each r, b is the q-quantile of F - r Fneu and the
 * check loss sum rho_q(F - b - r Fneu) is minimised over r in [rmin, rmax]
 * (it is convex in r; golden-section search to 1e-4).  Cell activity only
 * adds positive excursions, so a low quantile follows the quiet frames;
 * and as long as activity is independent of Fneu every conditional
 * quantile has slope r, so in principle the estimate does not depend on
 * how active the cell is.  In finite recordings slow chance correlations
 * between activity and neuropil leak in, the less the lower the quantile:
 * cells that are active nearly all the time bias it upwards.
 * *r receives the estimate, clamped to [rmin, rmax] (*clamped = 1 when the
 * optimum lay on a bound; may be NULL).  `work` holds T doubles.  Inputs
 * must be finite.  Returns 0, or CAIMG_EINVAL for bad bounds. */
int caimg_neuropil_estimate(const double *F, const double *Fneu, size_t T,
                            double q, double rmin, double rmax, double *work,
                            double *r, int *clamped);

/* ---- noise levels ------------------------------------------------------- */

typedef enum {
    CAIMG_NOISE_MEAN = 0,  /* sqrt of the mean PSD over the band */
    CAIMG_NOISE_LOGMEAN,   /* sqrt(exp(mean log PSD + Euler's gamma)): the
                              geometric mean, robust to a few bins with
                              signal power, and corrected for its bias
                              (periodogram bins of white noise are
                              exponential, E log P = log sigma^2 - gamma) */
    CAIMG_NOISE_MEDIAN     /* sqrt(median PSD / ln 2), likewise unbiased */
} caimg_noise_method;

/* "mean", "logmean", "median" and back; -1 / NULL if unknown. */
int caimg_noise_method_from_name(const char *name);
const char *caimg_noise_method_name(caimg_noise_method m);

/* The PSD noise estimate for traces of T frames: the periodogram
 * |X_k|^2 / T of the trace is averaged over the frequencies f_lo < f <= f_hi
 * (in cycles per frame, i.e. fractions of the sampling rate; CaImAn's
 * default band is 0.25..0.5, the upper half of the band up to Nyquist,
 * where calcium transients carry little power).  The result is the noise
 * standard deviation per frame, in the units of the trace (for white
 * noise of sd sigma it estimates sigma).  The plan holds an FFTW plan made
 * once (not thread-safe to create or destroy); caimg_noise_psd() may be
 * called from many threads at once, each with its own work buffer. */
typedef struct caimg_noise_plan caimg_noise_plan;
caimg_noise_plan *caimg_noise_plan_create(size_t T, double f_lo, double f_hi,
                                          caimg_noise_method method);

/* Scratch for caimg_noise_psd(), aligned for SIMD FFTs (one per thread);
 * release it with caimg_noise_work_free(), which accepts NULL. */
float *caimg_noise_work_alloc(const caimg_noise_plan *p);
void caimg_noise_work_free(float *work);

/* *sn = the noise sd of y[0..T) (finite samples).  `work`: from
 * caimg_noise_work_alloc(), or NULL to allocate here.  Traces too short to
 * have a frequency in the band (T < 8) use sqrt(mean(diff^2) / 2)
 * instead.  Returns 0 or CAIMG_ENOMEM. */
int caimg_noise_psd(const caimg_noise_plan *p, const double *y, float *work,
                    double *sn);

void caimg_noise_plan_destroy(caimg_noise_plan *p);

/* The Cascade noise metric (Rupprecht et al. 2021): median over t of
 * |dff[t+1] - dff[t]|, divided by sqrt(fs), times 100, i.e. in percent
 * dF/F per sqrt(Hz) when dff is a fraction, as Cascade reports it (its
 * ground-truth datasets span roughly 1 to 8).  `work` holds T doubles
 * (NULL to allocate).  Returns 0 for T < 2. */
double caimg_noise_cascade(const double *dff, size_t T, double fs, double *work);

/* ---- dF/F of many ROIs -------------------------------------------------- */

/* Per-ROI warning flags (bitwise or). */
enum {
    CAIMG_DFF_NONFINITE = 1,  /* non-finite input samples were interpolated */
    CAIMG_DFF_F0_FLOOR  = 2,  /* baseline below the floor on some frames */
    CAIMG_DFF_ZERO      = 4,  /* the trace is constant zero: dF/F set to 0 */
    CAIMG_DFF_R_BOUND   = 8   /* estimated r lay on a bound of [r_min, r_max] */
};

typedef struct {
    double fs;            /* frame rate, Hz (required, > 0) */
    double r;             /* neuropil coefficient when not estimated [0.7] */
    int estimate_r;       /* 1: estimate r per ROI (caimg_neuropil_estimate) */
    double r_min, r_max;  /* bounds of the estimate [0, 1.5] */
    double r_quantile;    /* quantile of the regression [0.05] */
    const caimg_baseline_type *baseline;   /* [maximin] */
    caimg_baseline_params bparams;         /* defaults of `baseline` */
    double f0_floor;      /* denominators floored at f0_floor * mean|F| [0.1] */
    double noise_band[2]; /* PSD band, cycles/frame [0.25, 0.5] */
    caimg_noise_method noise_method;       /* [CAIMG_NOISE_MEAN] */
    int threads;          /* OpenMP threads, 0 = default */
} caimg_dff_params;

/* Defaults as in brackets above, for frame rate fs. */
void caimg_dff_params_init(caimg_dff_params *p, double fs);

/* Compute dF/F for n ROIs of T frames.  F and Fneu are [n][T] (Fneu may be
 * NULL: no neuropil subtraction).  Outputs, each may be NULL: dff and F0
 * [n][T] (F0 is the baseline of the neuropil-corrected trace, not
 * floored), r [n] (coefficient used), noise_psd [n] (sd of dF/F per
 * frame), noise_cascade [n] (percent per sqrt(Hz)), flags [n].
 * `first` is the index of ROI 0 in the whole recording, used in warnings
 * ("ROI 17: ...", 0-based as in the files).  Runs in parallel over ROIs.
 * Returns 0, CAIMG_EINVAL for bad parameters, CAIMG_ENOMEM. */
int caimg_dff_compute(const caimg_dff_params *p, size_t n, size_t T,
                      const float *F, const float *Fneu, float *dff, float *F0,
                      double *r, double *noise_psd, double *noise_cascade,
                      unsigned *flags, size_t first);

/* ---- the dff stage: files in, file out ---------------------------------- */

typedef struct {
    const char *F;      /* dataset of raw traces [N][T] ["/roi/F"] */
    const char *Fneu;   /* dataset of neuropil traces ["/roi/Fneu"]; NULL or ""
                           for none (no neuropil subtraction) */
    size_t block;       /* ROIs per block; 0 = about 64 MB of traces at once */
    int deflate;        /* compression of the [N][T] outputs, 0-9 [0] */
} caimg_dff_io;

void caimg_dff_io_init(caimg_dff_io *io);

/* The dff stage: read F (and Fneu) from `input`, a caimg or any HDF5
 * file, in blocks of ROIs (memory does not grow with N), compute dF/F in
 * parallel and write `output` as specified in caimg-h5(5): /dff/dff and
 * /dff/baseline [N][T] float32, /dff/r, /dff/noise_psd, /dff/noise_cascade
 * [N] float64, each with a `units` attribute, and /dff with the frame rate
 * `fs` and the method.  The frame rate is p->fs if positive, else the `fs`
 * attribute of the dataset's group, /roi or /movie.  The output is written
 * under a temporary name and renamed on success (caimg_h5_create), records
 * the parameters and `cmdline`, and links the input's groups.  Errors name
 * the file and the problem ("roi.h5: /roi/Fneu is [3][100], /roi/F is
 * [4][100]"); nothing is left at `output` on failure. */
int caimg_dff_run(const char *input, const char *output, const caimg_dff_params *p,
                  const caimg_dff_io *io, const char *cmdline);

#ifdef __cplusplus
}
#endif
#endif /* CAIMG_DFF_H */
