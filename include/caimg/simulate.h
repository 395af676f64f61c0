/* caimg/simulate.h -- synthetic two-photon calcium-imaging recordings with
 * the ground truth of every stage.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * A simulation is made in two steps.  caimg_sim_alloc() draws everything
 * that is not a pixel: neuron shapes and positions, the static anatomy of
 * the field (neuropil texture, blood vessels, vignetting), spike trains,
 * calcium, neuropil activity, bleaching and drift, the motion trajectory and
 * deformation field, stimuli and receptive fields.  That costs O(N*T) memory
 * (a few arrays of neurons x frames) and O(Y*X) for the scene.  Frames are
 * then rendered on demand, one at a time, by caimg_sim_frame(), so a movie of
 * any length streams out in constant memory.  A frame depends only on the
 * seed and its index: frames can be made in any order, in parallel
 * (caimg_sim_frames() uses OpenMP), and are byte-identical whatever the
 * number of threads.
 *
 * Coordinates.  Pixel (y, x) -- row y, column x, 0-based -- has its centre at
 * the point (y, x).  The *scene* is the noise-free specimen at the reference
 * position; the recorded frame t is
 *     frame_t(y, x) = scene_t(y - uy, x - ux),   u = u_t(y, x'),
 *     x' = x - bidi for odd rows y (1, 3, 5, ...), x' = x for even rows,
 * where u_t(p) = shift_t + deform_t(p) is the local displacement at frame
 * pixel p: the rigid shift (dy, dx) of formats.md (the translation of the
 * scene in the frame; correcting moves the frame by (-dy, -dx)) plus the
 * optional smooth deformation field, and bidi the bidirectional-scan offset
 * (odd rows moved right by `bidi` pixels in the raw data).  The scene is
 * analytic where it matters: somata are evaluated exactly at the displaced
 * position, the neuropil activity field is a cubic B-spline, and the static
 * anatomy is the cubic B-spline interpolant of an image made band-limited by
 * construction, so the truth is exact at sub-pixel shifts.
 *
 * Image formation (expected photons per pixel and frame):
 *     lambda = G(t) * [ P(q) (1 + f(q, t))  +  sum_i a_i(q) S_i(t) ]  +  dark
 * with q the scene position of the pixel (above), P the static neuropil
 * brightness (occluded to `np_contamination` inside somata), f the neuropil
 * activity, a_i the footprint of neuron i (GCaMP is cytosolic: a dimmer
 * nucleus), S_i(t) = B_i(t) (1 + dF/F_i(t)) its fluorescence and G(t) the
 * global bleaching-and-drift factor.  The recorded value in ADU is
 *     offset + gain * Poisson(lambda) + Normal(0, read_noise^2).
 * Frames are returned as floats, not rounded; writers round and clamp.
 *
 * Activity.  Spikes per frame are Poisson with the neuron's rate, which is
 * either spontaneous (lognormal across neurons, slowly modulated in time) or
 * driven by visual stimuli through receptive fields (caimg/stimulus.h).
 * Calcium follows the AR(2) model of OASIS exactly:
 *     c_t = g1 c_{t-1} + g2 c_{t-2} + alpha n_t,
 * with n_t the spike count, g1 = d + r, g2 = -d r, d = exp(-1/(fs tau_decay)),
 * r = exp(-1/(fs tau_rise)) (AR(1): g2 = 0, r = 0), and alpha chosen so that
 * the continuous kernel exp(-t/tau_d) - exp(-t/tau_r) peaks at the indicator's
 * per-spike dF/F.  dF/F = c, or a Hill saturation of c when `saturation` > 0.
 */
#ifndef CAIMG_SIMULATE_H
#define CAIMG_SIMULATE_H

#include <stddef.h>
#include <stdint.h>

#include "caimg/stimulus.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- indicators ---------------------------------------------------------- */

/* Calcium-indicator kinetics for single action potentials, from the
 * literature (values rounded; see caimg-simulate(1) for the sources):
 *   name      dF/F per AP  time to peak  half-decay   source
 *   gcamp6f      0.19         45 ms        142 ms     Chen et al. 2013, Nature 499:295 (in vivo V1 L2/3)
 *   gcamp6m      0.13         80 ms        270 ms     Chen et al. 2013
 *   gcamp6s      0.23        180 ms        550 ms     Chen et al. 2013
 *   jgcamp7f     0.21        100 ms        182 ms     Zhang et al. 2023, Nature 615:884 (control)
 *   jgcamp8f     0.41         25 ms         67 ms     Zhang et al. 2023
 *   jgcamp8m     0.76         29 ms        118 ms     Zhang et al. 2023
 *   jgcamp8s     1.11         57 ms        307 ms     Zhang et al. 2023
 * The rise and decay time constants of the double-exponential kernel are
 * solved from time-to-peak and half-decay time (half-decay measured from the
 * peak).  Multi-spike transients in vivo often decay more slowly than single
 * spikes; set tau_decay explicitly to model that. */
typedef struct {
    const char *name;
    double amplitude;    /* peak dF/F of one spike */
    double t_peak;       /* s, spike to peak */
    double t_half;       /* s, peak to half of the peak */
    const char *source;
} caimg_sim_indicator;

/* The preset of that name (case-insensitive), or NULL. */
const caimg_sim_indicator *caimg_sim_indicator_find(const char *name);

/* The presets, terminated by an entry with name NULL. */
const caimg_sim_indicator *caimg_sim_indicators(void);

/* Rise and decay time constants (s) of exp(-t/tau_d) - exp(-t/tau_r) with the
 * given time to peak and half-decay time.  t_peak = 0 gives tau_r = 0 (an
 * instantaneous rise: AR(1)).  CAIMG_EINVAL if t_half <= 0 or t_peak < 0. */
int caimg_sim_kernel_taus(double t_peak, double t_half, double *tau_rise, double *tau_decay);

/* ---- parameters -------------------------------------------------------- */

typedef enum {
    CAIMG_SIM_STIM_NONE = 0,    /* spontaneous activity only */
    CAIMG_SIM_STIM_USER,        /* images given in stim_images */
    CAIMG_SIM_STIM_PINK,        /* generated 1/f natural-like images */
    CAIMG_SIM_STIM_GRATINGS     /* static sinusoidal gratings */
} caimg_sim_stim_mode;

/* All parameters, with their defaults (set by caimg_sim_params_init) in
 * brackets.  Distances are in pixels, times in seconds, rates in Hz,
 * brightness in photons per pixel per frame. */
typedef struct {
    /* Field of view and time. */
    size_t height, width;   /* Y x X [512 x 512] */
    size_t frames;          /* T [2000]; 0 in stimulus mode: what the schedule needs */
    double fs;              /* frame rate [30] */
    double pixel_um;        /* pixel size in micrometres, metadata only [1.0] */
    uint64_t seed;          /* [1] */

    /* Neurons: somata as soft-edged ellipses with a dimmer nucleus. */
    size_t neurons;         /* N; 0 = density * Y * X / 10^4 [0] */
    double density;         /* neurons per 100 x 100 pixels when neurons = 0 [10] */
    double diameter;        /* mean equivalent soma diameter 2 sqrt(ra rb) [12] */
    double diameter_sd;     /* s.d. of the diameter across neurons [1.5] */
    double aspect_max;      /* major/minor axis ratio uniform in [1, aspect_max] [1.4] */
    double edge;            /* half-width of the soft edge (raised cosine) [1.0] */
    double nucleus;         /* nucleus diameter / soma diameter, median; each
                             * neuron's is within +-15 % of it; 0 = none [0.55] */
    double nucleus_brightness; /* nucleus brightness / cytosol, median (+-30 %) [0.35] */
    double overlap;         /* in [0, 0.9]: centres at least (1 - overlap)(R_i + R_j)
                             * apart, R the equivalent radius; 0 = somata never
                             * share a pixel inside their half-maximum outline [0.1] */
    double brightness;      /* median resting soma brightness / mean neuropil [1.3] */
    double brightness_sd;   /* log-normal s.d. of soma brightness [0.35] */

    /* Spontaneous activity. */
    double rate;            /* mean firing rate across neurons [0.5] */
    double rate_sd;         /* log-normal s.d. of rates across neurons [0.8] */
    double rate_mod_sd;     /* log s.d. of slow modulation of each rate in time [0.5] */
    double rate_mod_tau;    /* time constant of that modulation [1.0] */

    /* Indicator. */
    const char *indicator;  /* preset name ["gcamp6f"]; NULL = explicit values below */
    double tau_rise;        /* s; 0 = from the preset [0] */
    double tau_decay;       /* s; 0 = from the preset [0] */
    double amplitude;       /* peak dF/F per spike; 0 = from the preset [0] */
    double amplitude_cv;    /* variation of amplitude across neurons (log-normal) [0.3] */
    double tau_cv;          /* variation of the time constants across neurons [0.1] */
    int ar_order;           /* 1 (instantaneous rise) or 2 [2] */
    double saturation;      /* Hill saturation: max dF/F; 0 = linear [0] */
    double hill;            /* Hill coefficient n [1]; dF/F = sat c^n/(c^n + K^n), K
                             * chosen so one spike keeps its amplitude */

    /* Photons and detector. */
    double photons;         /* mean neuropil photons per pixel per frame [3.0] */
    double snr;             /* > 0: choose `photons` so the median per-spike SNR
                             * is this (see caimg_sim_truth.snr) [0] */
    double dark;            /* dark counts per pixel per frame [0] */
    double gain;            /* ADU per photon [50] */
    double read_noise;      /* ADU s.d. [20] */
    double offset;          /* ADU [100] */

    /* Static anatomy. */
    double texture_sd;      /* relative s.d. of fine neuropil texture [0.25] */
    double texture_scale;   /* Gaussian s.d. of that texture [1.5] */
    double vessels;         /* blood vessels per 512 x 512 pixels [4] */
    double vignetting;      /* brightness loss at the FOV corners [0.3] */

    /* Neuropil activity: a smooth field f(q, t), cubic B-spline on a grid. */
    double np_sd;           /* s.d. of its random part (dF/F units) [0.05] */
    double np_scale;        /* B-spline knot spacing [48] */
    double np_tau;          /* time constant of the random part [2.0] */
    double np_coupling;     /* neuropil dF/F per unit mean somatic dF/F [0.5] */
    double np_contamination; /* neuropil seen through a soma, relative to outside [0.7] */

    /* Slow changes of brightness. */
    double bleach;          /* fraction of brightness lost asymptotically [0.15] */
    double bleach_tau;      /* bleaching time constant [600] */
    double drift_sd;        /* global multiplicative drift s.d. [0.01] */
    double drift_tau;       /* [30] */
    double baseline_drift_sd;  /* per-neuron baseline drift s.d. [0.03] */
    double baseline_drift_tau; /* [60] */

    /* Motion. */
    double motion_sd;       /* s.d. of the slow random walk per axis [1.0] */
    double motion_tau;      /* its time constant (Ornstein-Uhlenbeck) [1.0] */
    double jitter_sd;       /* fast frame-to-frame jitter per axis [0.1] */
    double jump_rate;       /* sudden jumps per second [0.02] */
    double jump_sd;         /* s.d. of the position after a jump, per axis [3] */
    double max_shift;       /* shifts are clipped to this per axis [10] */
    const float *shifts;    /* optional [T][2] trajectory replacing the above
                             * (not kept; copied) [NULL] */
    size_t deform_grid;     /* deformation nodes per side (>= 2) [4] */
    double deform_sd;       /* s.d. of node displacements; 0 = rigid only [0] */
    double deform_tau;      /* [2.0] */
    double bidi;            /* bidirectional-scan offset [0] */

    /* Stimuli (stimulus-driven mode). */
    int stim_mode;          /* caimg_sim_stim_mode [NONE] */
    const float *stim_images;  /* USER: [stim_n][stim_h][stim_w] grey levels in [0,1] */
    size_t stim_n;          /* PINK: number of images [100] */
    size_t stim_h, stim_w;  /* PINK/GRATINGS image size [32 x 32] */
    double stim_alpha;      /* PINK spectral exponent [1.0] */
    double stim_contrast;   /* PINK RMS contrast [0.3]; GRATINGS contrast [1.0] */
    size_t grating_ori;     /* [8] */
    size_t grating_sf_n;    /* number of spatial frequencies [3] */
    double grating_sf[8];   /* cycles per image width [2, 4, 8] */
    size_t grating_phase;   /* [4] */
    double stim_duration;   /* presentation, s [0.5] */
    double stim_isi;        /* blank between presentations, s [0.5] */
    double stim_start;      /* blank before the first, s [1.0] */
    size_t stim_repeats;    /* [10] */
    int stim_random;        /* random order within each repeat [1] */
    double stim_latency;    /* response latency, s [0.05] */
    double frac_complex;    /* fraction of complex cells [0.5] */
    double frac_responsive; /* fraction of neurons with a receptive field [0.8] */
    double peak_rate;       /* median rate at the best stimulus of the set [8] */
    double peak_rate_sd;    /* log-normal s.d. [0.5] */
    double rf_sigma;        /* median envelope s.d., fraction of image width [0.08] */
    double rf_sigma_sd;     /* log-normal s.d. [0.3] */
    double rf_cycles;       /* envelope s.d. in carrier wavelengths (sigma / wavelength),
                             * about 1.5 octaves of bandwidth [0.5] */
    double rf_exponent;     /* [2] */
    double retino_span;     /* RF centres span this fraction of the image across
                             * the FOV (retinotopy) [0.4] */
    double retino_scatter;  /* s.d. of RF-centre scatter, fraction of width [0.08] */
} caimg_sim_params;

/* Fill in the defaults above. */
void caimg_sim_params_init(caimg_sim_params *p);

/* Apply a named preset on top of the current values:
 *   "typical": the defaults -- a 512 x 512 field at 30 Hz of GCaMP6f-
 *              expressing neurons (~260 per field, 10 % overlap allowed),
 *              moderate photon counts and rigid motion;
 *   "hard":    dense (25 per 100 x 100 pixels), strongly overlapping
 *              (overlap 0.35), dim (brightness 0.9), sparsely firing
 *              (0.2 Hz), few photons (1.2 per pixel), more motion.
 * CAIMG_EINVAL for an unknown name (the message lists the presets). */
int caimg_sim_params_preset(caimg_sim_params *p, const char *name);

/* ---- the simulation -------------------------------------------------- */

typedef struct caimg_sim caimg_sim;

/* Draw a simulation.  NULL with CAIMG_EINVAL for invalid parameters (the
 * message names the parameter) or when N neurons cannot be placed with the
 * requested overlap; CAIMG_ENOMEM when memory runs out.  Uses OpenMP. */
caimg_sim *caimg_sim_alloc(const caimg_sim_params *p);

void caimg_sim_free(caimg_sim *s);

size_t caimg_sim_height(const caimg_sim *s);
size_t caimg_sim_width(const caimg_sim *s);
size_t caimg_sim_frames_total(const caimg_sim *s);
size_t caimg_sim_neurons(const caimg_sim *s);
/* The parameters actually used (neurons, frames, photons, kinetics resolved). */
const caimg_sim_params *caimg_sim_get_params(const caimg_sim *s);

/* Render flags. */
enum {
    CAIMG_SIM_NOISELESS  = 1,   /* expected ADU (offset + gain * lambda), no noise */
    CAIMG_SIM_PHOTONS    = 2,   /* lambda itself: expected photons, no noise */
    CAIMG_SIM_STILL      = 4,   /* reference geometry: no shift, deformation or bidi */
    CAIMG_SIM_NO_SOMATA  = 8,   /* leave the somata out */
    CAIMG_SIM_NO_NEUROPIL = 16  /* leave the neuropil (static and active) out */
};

/* Frame t (0 <= t < T) as Y*X floats in ADU.  Thread-safe: different
 * threads may render different (or the same) frames at once.  CAIMG_EINVAL
 * for t out of range, CAIMG_ENOMEM if scratch memory runs out. */
int caimg_sim_frame(const caimg_sim *s, size_t t, float *frame);

/* Frames [t0, t0 + n) into buf (n*Y*X floats), in parallel with OpenMP. */
int caimg_sim_frames(const caimg_sim *s, size_t t0, size_t n, float *buf);

/* Frame t rendered with `flags` (above); caimg_sim_frame() is flags = 0. */
int caimg_sim_render(const caimg_sim *s, size_t t, unsigned flags, float *frame);

/* ---- ground truth -------------------------------------------------------- */

/* Geometry of one soma, enough to evaluate its footprint anywhere (eval uses
 * it to compare ROIs with the truth moved to the template's position). */
typedef struct {
    double cy, cx;        /* centre */
    double ra, rb;        /* semi-axes (ra along the direction theta) */
    double theta;         /* orientation of the `ra` axis, radians from +x toward +y */
    double edge;          /* soft-edge half-width */
    double nucleus;       /* nucleus diameter fraction (0 = none) */
    double nucleus_brightness;
} caimg_sim_soma;

/* Footprint of a soma at point (y, x): *weight receives the expression
 * footprint a (1 in the cytosol, nucleus_brightness in the nucleus, soft
 * edges) and *body the body mask m (1 inside the cell, soft edge, no
 * nucleus dip).  Both are 0 beyond the edge.  Let rho be the elliptic radius
 * (1 on the outline): m = 1 for rho <= 1 - e, 0 for rho >= 1 + e, a raised
 * cosine between, e = edge / sqrt(ra rb); the nucleus is the same profile at
 * rho = nucleus, and a = m (1 - (1 - nucleus_brightness) nucleus_profile). */
void caimg_sim_soma_eval(const caimg_sim_soma *s, double y, double x, float *weight,
                         float *body);

/* The truth.  All arrays belong to the simulation (valid until
 * caimg_sim_free()); layouts are C order, traces neuron-major [N][T]. */
typedef struct {
    size_t height, width, frames, neurons;
    double fs;

    /* Motion (see the coordinate conventions at the top). */
    const float *shifts;        /* [T][2] rigid (dy, dx) */
    size_t deform_gy, deform_gx;/* deformation nodes (0 x 0 when rigid only) */
    double deform_sy, deform_sx;/* node spacing: node (j, k) is at (j sy, k sx) */
    const float *deform;        /* [T][Gy][Gx][2] node displacements (dy, dx),
                                 * zero-mean over the nodes of each frame */
    double bidi;                /* odd rows moved right by this in the raw data */
    double max_abs_shift;       /* bound on |u_y| and |u_x| over all frames and pixels */

    /* Neurons. */
    const caimg_sim_soma *soma; /* [N] geometry */
    const int64_t *pix_start;   /* [N+1] offsets into the pixel lists */
    const int32_t *pix_index;   /* [M][2] (y, x) of footprint pixels (reference) */
    const float *pix_weight;    /* [M] footprint a at that pixel */
    const float *pix_body;      /* [M] body mask m; the truth ROI of eval is m >= 0.5 */
    const float *brightness;    /* [N] resting photons where a = 1, before G(t) */

    /* Activity: spikes -> calcium -> fluorescence. */
    const float *rate;          /* [N][T] expected rate in Hz (stimulus drive or
                                 * spontaneous rate, before the slow modulation) */
    const float *spikes;        /* [N][T] spike counts per frame */
    const float *calcium;       /* [N][T] noise-free dF/F of the soma */
    const float *g;             /* [N][2] AR coefficients (g1, g2); g2 = 0 for AR(1) */
    const float *alpha;         /* [N] AR innovation per spike (dF/F units) */
    const float *amplitude;     /* [N] peak dF/F of one spike (continuous kernel) */
    const float *tau_rise, *tau_decay;  /* [N] s */
    const float *baseline;      /* [N][T] resting soma fluorescence: footprint-weighted
                                 * mean photons, G(t) B_i(t) sum a^2 / sum a */
    const float *neuropil;      /* [N][T] neuropil photons contaminating the soma,
                                 * footprint-weighted mean at the reference position */
    const float *global_gain;   /* [T] G(t): bleaching times drift */
    const float *snr;           /* [N] per-spike SNR: the largest frame-sampled rise of
                                 * the footprint-weighted trace (weights a) from one
                                 * isolated spike at t = 0, over that trace's noise
                                 * s.d. at rest (shot noise of all photons in the
                                 * footprint, read noise) */
    double photons, gain, offset, read_noise, dark;

    /* Stimuli (stimulus mode; otherwise NULL / 0). */
    const caimg_stimset *stimuli;
    const caimg_presentation *schedule;
    size_t npres;
    const caimg_rf *rf;         /* [N] receptive fields */
    const float *response;      /* [S][N] expected rate (Hz) during each stimulus */
} caimg_sim_truth;

const caimg_sim_truth *caimg_sim_get_truth(const caimg_sim *s);

/* Total local displacement u_t(y, x) = shift + deformation (pixels) at frame
 * pixel (y, x), any real coordinates.  The deformation is the separable
 * cubic convolution (Keys, a = -0.5) of the node grid, node indices clamped
 * at the borders, so it passes through the node values.  Bidi is not
 * included (it is a property of rows, not of the specimen). */
void caimg_sim_displacement(const caimg_sim *s, size_t t, double y, double x,
                            double *dy, double *dx);

/* The same deformation from stored nodes (e.g. /truth/deform[t] of a truth
 * file): nodes [gy][gx][2] (dy, dx) spaced (sy, sx), evaluated at frame
 * pixel (y, x).  Add the frame's rigid shift for the total displacement. */
void caimg_sim_deform_eval(const float *nodes, size_t gy, size_t gx, double sy, double sx,
                           double y, double x, double *dy, double *dx);

/* ---- writing the truth ---------------------------------------------------- */

typedef struct caimg_h5 caimg_h5;   /* caimg/h5io.h */

/* Write the whole truth under /truth of `f` (a caimg HDF5 file being
 * created; see caimg-h5(5) for the layout): attributes, shifts, deformation
 * nodes, footprints as ragged pixel lists (as /roi), soma geometry, label
 * image, spikes, calcium, rates, baseline, neuropil, kinetics, SNR, the
 * noise-free reference frame, and in stimulus mode the images, schedule,
 * receptive fields and expected responses.  Call from one thread. */
int caimg_sim_write_truth(const caimg_sim *s, caimg_h5 *f);

#ifdef __cplusplus
}
#endif
#endif
