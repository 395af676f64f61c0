/* caimg/deconv.h -- OASIS spike deconvolution with AR(1) and AR(2) calcium models.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Model (Vogelstein et al. 2010; Friedrich, Zhou & Paninski 2017): a trace
 * y[t] = b + c[t] + noise, where the calcium c follows an autoregressive
 * process driven by non-negative spikes s:
 *
 *     s[t] = c[t] - g1 c[t-1] - g2 c[t-2] >= 0,   c[-1] = c[-2] = 0
 *
 * (AR(1): g2 = 0; an impulse decays as g1^t.  AR(2) adds a finite rise.)
 * s is in the units of the input trace (a jump of c), e.g. dF/F.
 *
 * Ways of choosing the sparsity, all solved by active-set OASIS (pools of
 * frames that share one impulse response), O(T) for AR(1):
 *
 *   thresholded   lambda = 0 and every nonzero s >= s_min (OASIS's hard
 *                 threshold; the pool of a spike smaller than s_min is
 *                 merged into the previous one), s_min = smin_z * sn / sqrt(W)
 *                 with W = sum of the squared impulse response, i.e. the
 *                 smallest spike whose matched-filter z-score is smin_z.
 *                 The default: fast, sparse, and its spikes have the size
 *                 of the transients, which makes spike counts meaningful;
 *   constrained   min sum(s)  s.t. ||y - b - c||^2 <= sn^2 T  (foopsi);
 *                 equivalently the penalized problem below with the lambda
 *                 at which the residual matches the noise, which is found
 *                 by Newton steps on the exact piecewise-quadratic
 *                 residual curve;
 *   penalized     min 1/2 ||y - b - c||^2 + lambda sum(s), lambda given or
 *                 from the noise (CAIMG_DECONV_LAMBDA_AUTO);
 *   auto          constrained, or penalized with the noise-based lambda
 *                 where the noise target cannot be met (see below).  The
 *                 most accurate on simulations, and as good as thresholded
 *                 on real recordings, but for AR(2) several times slower
 *                 (it needs exact AR(2) solves).
 *
 * The baseline b is estimated robustly (the mode of the residual) by
 * default, or jointly and exactly (b = mean(y - c) at the optimum),
 * optionally constrained to b >= 0, or fixed.  For AR(1) OASIS is exact;
 * for AR(2) the greedy pass is followed by a primal-dual active-set
 * polish with banded solves, so the constrained and penalized problems are
 * solved exactly for both orders (checked against a generic solver in the
 * tests).  The thresholded problem is not convex and OASIS's greedy answer
 * is used.
 *
 * Parameters per neuron when not given: noise sn from the PSD (see
 * caimg/dff.h), AR coefficients from the autocovariance with sn^2 removed
 * from lag 0 (CaImAn's estimate_time_constant), optionally refined by
 * maximising the fit of the largest isolated transients; or decay (and
 * rise) time constants given in seconds, or an indicator preset.
 *
 * Objects: a plan holds parameters and shared precomputation (an FFTW plan
 * for the noise); a workspace holds the scratch of one thread, so that the
 * hot loop never allocates.  caimg_deconv_traces() runs many traces in
 * parallel.
 */
#ifndef CAIMG_DECONV_H
#define CAIMG_DECONV_H

#include <stddef.h>

#include "caimg/dff.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CAIMG_DECONV_CONSTRAINED = 0,
    CAIMG_DECONV_THRESHOLDED,
    CAIMG_DECONV_PENALIZED,
    /* constrained where the noise target can be met with lambda > 0;
     * where even lambda = 0 leaves more residual than the noise explains
     * (slow fluctuations the model does not describe -- common in real
     * recordings), constrained foopsi degenerates to unpenalized
     * deconvolution, and the penalized problem with the noise-based
     * lambda (CAIMG_DECONV_LAMBDA_AUTO) is solved instead. */
    CAIMG_DECONV_AUTO
} caimg_deconv_method;

/* "constrained", "thresholded", "penalized", "auto" and back; -1 / NULL if
 * unknown. */
int caimg_deconv_method_from_name(const char *name);
const char *caimg_deconv_method_name(caimg_deconv_method m);

/* How the baseline b is found.  "mode" alternates deconvolution with b
 * held fixed and b = the mode of the residual y - c (a kernel density
 * estimate; the first b is the mode of y).  It is robust to what the model
 * does not describe -- slow fluctuations left by the dF/F baseline,
 * neuropil -- which the exact least-squares b ("mean") lets the calcium
 * absorb: a constant calcium floor under a lower b costs the L1 penalty
 * exactly as much per unit area as real transients, and lets c dip below
 * the floor to fit slow downward fluctuations.  "mean" and "nonneg" give
 * the exact joint optimum of the convex problems (b = mean(y - c)). */
typedef enum {
    CAIMG_DECONV_B_ESTIMATE = 0,   /* "mean": joint least squares */
    CAIMG_DECONV_B_NONNEG,         /* "nonneg": joint least squares, b >= 0 */
    CAIMG_DECONV_B_FIXED,          /* "fixed": b given */
    CAIMG_DECONV_B_MODE            /* "mode": robust, alternating (default) */
} caimg_deconv_baseline;

/* "mean", "nonneg", "fixed", "mode" and back; -1 / NULL if unknown. */
int caimg_deconv_baseline_from_name(const char *name);
const char *caimg_deconv_baseline_name(caimg_deconv_baseline b);

/* ---- indicators and AR coefficients ------------------------------------ */

typedef struct {
    const char *name;       /* "GCaMP6f", matched case-insensitively */
    double tau_rise;        /* s, time constant of the rise */
    double tau_decay;       /* s, time constant of the decay */
    const char *source;     /* where the numbers come from */
} caimg_indicator;

/* The preset called `name`, or NULL. */
const caimg_indicator *caimg_indicator_find(const char *name);

/* All presets; *n receives their number. */
const caimg_indicator *caimg_indicators(size_t *n);

/* AR coefficients of order p (1 or 2) for an impulse response
 * exp(-t/tau_decay) (AR(1)) or exp(-t/tau_decay) - exp(-t/tau_rise) (AR(2))
 * sampled at fs Hz: the roots are exp(-1/(tau fs)), g1 = d + r, g2 = -d r.
 * For p = 2, tau_rise = 0 gives g2 = 0.  Fails with CAIMG_EINVAL, naming
 * the value, if a time constant is not positive and finite or the model
 * would be unstable (a root that rounds to 1). */
int caimg_ar_from_tau(double tau_decay, double tau_rise, double fs, int p, double g[2]);

/* The decay and rise time constants (s) of AR coefficients g at fs Hz
 * (rise 0 for AR(1) or a root <= 0).  Returns CAIMG_EINVAL for unstable or
 * oscillating coefficients. */
int caimg_ar_to_tau(const double g[2], int p, double fs, double *tau_decay, double *tau_rise);

/* 0 if g describes a stable, non-oscillating AR(p) decay (real roots in
 * [0, 1)), else CAIMG_EINVAL with a message. */
int caimg_ar_check(const double g[2], int p);

/* Estimate AR(p) coefficients from the autocovariance of y[0..T) at lags
 * 0 .. p + lags, with the noise variance sn^2 removed from lag 0, by least
 * squares over `lags` + p equations (CaImAn's estimate_time_constant); the
 * roots are then multiplied by `fudge` (1 = none).  Returns 0, or
 * CAIMG_EFAIL (no message; the caller decides) when the estimate is not a
 * stable decay. */
int caimg_ar_estimate(const double *y, size_t T, int p, double sn, int lags,
                      double fudge, double g[2]);

/* ---- parameters --------------------------------------------------------- */

/* lambda for the penalized method chosen from the noise, like the
 * "universal" threshold of the lasso: a spike at t enters the solution
 * when the correlation of the residual with the impulse response there
 * exceeds lambda, and for noise alone that correlation has sd sn sqrt(W)
 * (W = sum of the squared impulse response), so lambda = lambda_z sn
 * sqrt(W) admits noise spikes with probability of a lambda_z-sigma event. */
#define CAIMG_DECONV_LAMBDA_AUTO (-1.0)

typedef struct {
    double fs;                  /* frame rate, Hz (required) */
    int p;                      /* AR order, 1 or 2 [2] */
    caimg_deconv_method method; /* [thresholded] */
    /* Kinetics: time constants in s; tau_decay = 0 estimates g per trace. */
    double tau_decay, tau_rise; /* [0, 0] */
    int refine_g;               /* refine estimated g on isolated events [1] */
    int lags;                   /* extra autocovariance lags [5] */
    double fudge;               /* multiply estimated roots by this [1] */
    double tau_min, tau_max;    /* plausible decay range of estimates, s
                                   [0.05, 5]; outside it the fallback is used */
    double fallback_decay;      /* decay used when estimation fails [1.0 s] */
    double fallback_rise;       /* rise used then (AR(2)) [0.05 s] */
    /* Noise. */
    double sn;                  /* noise sd; 0 = estimate per trace [0] */
    caimg_noise_method noise_method;   /* [mean] */
    double noise_band[2];       /* cycles/frame [0.25, 0.5] */
    /* Sparsity. */
    double lambda;              /* penalized: the penalty, or
                                   CAIMG_DECONV_LAMBDA_AUTO [auto] */
    double lambda_z;            /* auto lambda = lambda_z * sn * sqrt(W) [2] */
    double smin;                /* thresholded: absolute s_min; 0 = from smin_z */
    double smin_z;              /* thresholded: s_min as a z-score [3] */
    /* Baseline. */
    caimg_deconv_baseline baseline;    /* [mode] */
    double b;                   /* the baseline when fixed [0] */
    int max_iter;               /* iterations of the b / lambda updates [20] */
    int threads;                /* OpenMP threads, 0 = default */
} caimg_deconv_params;

/* The defaults in brackets, for frame rate fs. */
void caimg_deconv_params_init(caimg_deconv_params *p, double fs);

/* ---- per-trace results -------------------------------------------------- */

enum {
    CAIMG_DECONV_NONFINITE  = 1,   /* NaN/Inf samples were interpolated */
    CAIMG_DECONV_ZERO       = 2,   /* constant trace: nothing to deconvolve */
    CAIMG_DECONV_SHORT      = 4,   /* too short to estimate g; fallback used */
    CAIMG_DECONV_G_FALLBACK = 8,   /* g estimate unusable; fallback used */
    CAIMG_DECONV_NOCONVERGE = 16   /* b / lambda iterations hit max_iter */
};

typedef struct {
    double b;          /* baseline, units of the trace */
    double g[2];       /* AR coefficients used (g[1] = 0 for AR(1)) */
    double sn;         /* noise sd per frame, units of the trace */
    double lambda;     /* sparsity penalty used (0 for thresholded) */
    double smin;       /* minimum spike size used (0 unless thresholded) */
    double amplitude;  /* fitted single-spike amplitude (s units per spike) */
    size_t nspikes;    /* frames with s > 0 */
    unsigned flags;    /* CAIMG_DECONV_* warnings */
} caimg_deconv_info;

/* ---- plans, workspaces, execution --------------------------------------- */

typedef struct caimg_deconv_plan caimg_deconv_plan;
typedef struct caimg_deconv_ws caimg_deconv_ws;

/* Check the parameters and precompute for traces of up to T frames.  Not
 * thread-safe (it makes an FFTW plan).  Fails with CAIMG_EINVAL naming the
 * bad parameter (an unstable decay, a negative noise level, ...). */
caimg_deconv_plan *caimg_deconv_plan_create(const caimg_deconv_params *p, size_t T);
void caimg_deconv_plan_destroy(caimg_deconv_plan *plan);

/* Scratch for one thread; thread-safe to allocate. */
caimg_deconv_ws *caimg_deconv_ws_alloc(const caimg_deconv_plan *plan);
void caimg_deconv_ws_free(caimg_deconv_ws *ws);

/* Deconvolve one trace y[0..T) (T as planned).  c and s receive the
 * calcium and spikes (T doubles each, may be NULL); info the parameters
 * used.  Problems with the trace (NaN, constant, too short) are handled as
 * documented by the flags, with a warning naming ROI `roi`; outputs are
 * always finite.  Returns 0 (or CAIMG_ENOMEM). */
int caimg_deconv_execute(const caimg_deconv_plan *plan, caimg_deconv_ws *ws,
                         const double *y, double *c, double *s,
                         caimg_deconv_info *info, size_t roi);

/* Deconvolve n traces Y [n][T] in parallel (OpenMP, p->threads).  Outputs
 * [n][T] floats c, s and spikes (= s / amplitude, estimated spike counts
 * per frame) and info [n]; any may be NULL.  `first` numbers the ROIs in
 * warnings. */
int caimg_deconv_traces(const caimg_deconv_plan *plan, size_t n, const float *Y,
                        float *c, float *s, float *spikes, caimg_deconv_info *info,
                        size_t first);

/* ---- the solver alone --------------------------------------------------- */

/* One solve with known g (no estimation): the problem of `method` for
 * y[0..T) (T <= the planned T), with lambda (penalized, and auto's
 * fallback; >= 0), sn (constrained: the residual target is sn^2 T), smin
 * (thresholded) and the baseline mode of the plan's parameters ("mode" is
 * not meaningful here and acts as "mean"); b_io holds the fixed baseline
 * or the starting guess, and receives the estimate; lambda_out the lambda
 * used.  Returns 0 or CAIMG_EINVAL for an unstable g. */
int caimg_oasis_solve(const caimg_deconv_plan *plan, caimg_deconv_ws *ws,
                      const double *y, size_t T, int p, const double g[2],
                      caimg_deconv_method method, double lambda, double sn,
                      double smin, double *b_io, double *lambda_out,
                      double *c, double *s);

/* ---- the deconv stage: files in, file out ------------------------------- */

typedef struct {
    const char *dataset;  /* traces [N][T] in an HDF5 input [/dff/dff] */
    size_t block;         /* traces per block; 0 = about 64 MB at once */
    int deflate;          /* compression of the [N][T] outputs, 0-9 [0] */
} caimg_deconv_io;

void caimg_deconv_io_init(caimg_deconv_io *io);

/* The deconv stage.  `input` is an HDF5 file (a caimg dff output, or any
 * HDF5 file with the dataset io->dataset [N][T], neuron-major) or a text
 * table with one row per neuron and one column per frame (tab, comma or
 * space separated, see caimg/tsv.h).  The frame rate is p->fs if
 * positive, else the `fs` attribute of the dataset, its group, /dff, /roi
 * or /movie (a table has none: p->fs is required).  Traces are read in
 * blocks and deconvolved in parallel; `output` gets, as specified in
 * caimg-h5(5): /deconv/s, /deconv/c, /deconv/spikes [N][T] float32,
 * /deconv/b, /deconv/sn, /deconv/amplitude [N] and /deconv/g [N][2]
 * float64, each with a `units` attribute, and /deconv with fs and the
 * method.  Written under a temporary name and renamed on success; errors
 * name the file. */
int caimg_deconv_run(const char *input, const char *output, const caimg_deconv_params *p,
                     const caimg_deconv_io *io, const char *cmdline);

#ifdef __cplusplus
}
#endif
#endif /* CAIMG_DECONV_H */
