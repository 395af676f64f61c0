/* caimg/roi.h -- regions of interest: summary images, cell detection,
 * neuropil masks, fluorescence traces and per-ROI statistics.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * The stage runs in two streaming passes over the movie, so that memory
 * does not grow with the number of frames T:
 *
 *   1. caimg_roi_summarize() reads the movie once, in chunks, and computes
 *      the summary images (mean, max, std, local correlation, enhanced mean)
 *      and, when the detection method asks for it, a temporally binned copy
 *      of the movie with at most `max_bins` bins (the bin grows with T, so
 *      the copy is bounded: about 512 MB for a 512 x 512 field by default).
 *   2. A detection method (a caimg_roi_type, chosen by name as in GSL's
 *      gsl_interp_type) turns these into a set of ROIs: pixel lists with
 *      weights (caimg_roiset).  caimg_roiset_finish() then applies the
 *      overlap rule and builds the label image and the neuropil masks.
 *   3. caimg_roi_extract() reads the movie a second time and writes the
 *      traces F and Fneu [N][T] to the output file block by block;
 *      caimg_roi_stats_compute() reads them back one neuron at a time and
 *      computes the statistics and the cell probability.
 *
 * Coordinates: pixel (y, x) is row y, column x, 0-based.  ROIs are numbered
 * from 0 in arrays and from 1 in the label image (0 = background).
 *
 * Overlap rule: a pixel that belongs to two or more ROIs stays in each ROI's
 * pixel list (so masks keep their shape) but is flagged in pix_overlap and
 * excluded from every trace, because its fluorescence cannot be attributed
 * to one cell.  caimg_roi_traces() then counts cells only for the cells'
 * pixels: a pixel shared by a cell and ROIs that are not cells stays in the
 * cell's trace (and out of theirs).  In the label image such a pixel
 * carries the label of the ROI with the largest weight there.
 *
 * Threads: the computational functions use OpenMP across pixels, bins or
 * ROIs; HDF5 is only called from the calling thread.  Objects must not be
 * shared between concurrent calls.
 */
#ifndef CAIMG_ROI_H
#define CAIMG_ROI_H

#include <stddef.h>
#include <stdint.h>

#include "caimg/h5io.h"
#include "caimg/movie.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- parameters ----------------------------------------------------------- */

/* All parameters of the stage, with defaults set by caimg_roi_params_init()
 * in brackets.  Sizes are in pixels, times in seconds. */
typedef struct {
    double diameter;        /* expected soma diameter [12]; 0 = measure it in
                             * the mean image (caimg roi's default, --diameter
                             * auto): caimg_roi_summarize() stores it in the
                             * summary's `diameter`, which the caller then sets
                             * here for detection and the rest */
    double threshold;       /* activity detection threshold in noise units:
                             * the significance (a z-score, see caimg-roi(1))
                             * below which detection from activity stops [6] */
    size_t max_rois;        /* stop after this many ROIs; 0 = no limit [0] */
    double tau;             /* decay time constant of the indicator: the
                             * temporal bin is tau * fs frames [0.2] */
    double fs;              /* frame rate in Hz; 0 = from the movie [0] */
    size_t max_bins;        /* most bins kept in memory; 0 = as many as fit
                             * in 512 MB (at least 100) [0] */
    double highpass;        /* temporal high-pass window for detection [30] */
    double anatomy;         /* threshold in noise units for somata in the mean
                             * image that were not found from their activity;
                             * 0 = do not look for them [3] */
    double np_gap;          /* gap between a cell and its neuropil annulus [2] */
    size_t np_min_pixels;   /* the annulus grows until it has this many [350] */
    double np_coeff;        /* neuropil coefficient r used for the trace
                             * statistics (F - r Fneu) [0.7] */
    double cell_threshold;  /* cell probability at or above which an ROI is
                             * flagged as a cell in iscell [0.4] */
    /* Region used for detection: the half-open box [y0, y1) x [x0, x1) of
     * pixels that were never out of frame (/mc/valid).  y1 = 0 means the
     * whole frame [0, 0, 0, 0]. */
    size_t valid[4];
    const char *masks;      /* seeded method: a label TIFF or an ImageJ
                             * .roi / RoiSet .zip file [NULL] */
} caimg_roi_params;

void caimg_roi_params_init(caimg_roi_params *p);

/* ---- summary images and the binned movie ---------------------------------- */

/* Images of Y x X floats (row-major), all computed in one pass:
 *   mean      the temporal mean;
 *   max       the maximum over the temporally binned movie (the maximum of
 *             single frames shows only shot noise);
 *   std       the temporal standard deviation of single frames;
 *   corr      local correlation: each pixel's mean Pearson correlation with
 *             its 8 neighbours, from running sums of products over the
 *             binned movie after a causal temporal high-pass (an exponential
 *             running mean with the `highpass` window is subtracted), so
 *             slow drift and bleaching do not make every pixel correlated;
 *   enhanced  the mean image with its local background removed and divided
 *             by the local contrast (both over a Gaussian of s.d. equal to
 *             the cell diameter), which makes dim somata as visible as
 *             bright ones. */
typedef struct {
    size_t height, width, frames;
    float *mean, *max, *std, *corr, *enhanced;
    /* The soma diameter in pixels that `enhanced` was made for and the
     * detection is to use: the parameters' diameter, or, when that is 0
     * (--diameter auto), the one measured in the mean image (`measured`
     * is then 1), or 12 when the image shows no soma size to measure
     * (`measured` 0; a third of the valid box's smaller side if that is
     * less, at least 2). */
    double diameter;
    int measured;
} caimg_roi_summary;

/* The binned movie: bins of `bin` consecutive frames averaged, cropped to
 * the valid box (y0, x0, height x width).  Frames after the last whole bin
 * are not binned. */
typedef struct {
    size_t nbins, bin;
    double fs;              /* frame rate of the movie (0 if unknown) */
    size_t y0, x0, height, width;
    float *data;            /* [nbins][height][width] */
} caimg_roi_binned;

/* Read the movie once.  `keep_binned` asks for the binned movie in *binned
 * (NULL is stored otherwise).  The bin is max(1, round(tau fs)) frames,
 * enlarged so there are at most max_bins bins.  Reports progress as "reading
 * frames".  Errors: those of caimg_movie_read (naming the file and frame),
 * CAIMG_ENOMEM, CAIMG_EINVAL for a valid box outside the frame. */
int caimg_roi_summarize(caimg_movie *m, const caimg_roi_params *p, int keep_binned,
                        caimg_roi_summary **summary, caimg_roi_binned **binned);

void caimg_roi_summary_free(caimg_roi_summary *s);
void caimg_roi_binned_free(caimg_roi_binned *b);

/* The bin size and number of bins caimg_roi_summarize() would use for T
 * frames of Y x X pixels (after cropping to the valid box). */
void caimg_roi_binning(const caimg_roi_params *p, double fs, size_t T, size_t Y, size_t X,
                       size_t *bin, size_t *nbins);

/* ---- a set of ROIs ---------------------------------------------------------- */

/* Names of the per-ROI statistics, the columns of /roi/stats. */
enum {
    CAIMG_ROI_NPIX = 0,     /* pixels in the mask */
    CAIMG_ROI_CY,           /* weighted centroid, row */
    CAIMG_ROI_CX,           /* weighted centroid, column */
    CAIMG_ROI_RADIUS,       /* sqrt(a b) of the ellipse with the mask's second
                             * moments (a, b its semi-axes) */
    CAIMG_ROI_COMPACTNESS,  /* mean distance to the centroid of a disk with as
                             * many pixels, over the mask's own: 1 for a disk,
                             * smaller for elongated or ragged shapes */
    CAIMG_ROI_ASPECT,       /* a / b >= 1 */
    CAIMG_ROI_SKEW,         /* skewness of F - r Fneu */
    CAIMG_ROI_SNR,          /* (99th percentile - median) of F - r Fneu over the
                             * noise s.d. estimated from frame-to-frame changes */
    CAIMG_ROI_SCORE,        /* activity significance in noise units: of the
                             * seed pixel for ROIs found from activity, of the
                             * ROI's own trace for the others (NaN for user
                             * masks) */
    CAIMG_ROI_CONTRAST,     /* brightness in the mean image against its
                             * surroundings, in noise units (see caimg-roi(1)) */
    CAIMG_ROI_FIT,          /* correlation of a soma model (an ellipse with a
                             * dimmer nucleus) with the mean image there */
    CAIMG_ROI_OVERLAP,      /* fraction of the mask's pixels shared with others */
    CAIMG_ROI_NP_NPIX,      /* pixels in the neuropil annulus */
    CAIMG_ROI_SOURCE,       /* 0 user mask, 1 activity, 2 mean-image anatomy */
    CAIMG_ROI_PROB,         /* cell probability from the classifier */
    CAIMG_ROI_NP_SLOPE,     /* regression slope of F on Fneu over slow (seconds
                             * to the high-pass window) changes: about the
                             * neuropil fraction seen through a soma (0.7)
                             * below 1, and 1 or more for a patch of neuropil */
    CAIMG_ROI_NP_EXCESS,    /* resting light of F beyond the part that moves
                             * with the neuropil: (mean F - offset) / (mean
                             * Fneu - offset) - np_slope, with the roiset's
                             * detector offset; about 0 for a patch of
                             * neuropil, the soma's own brightness over the
                             * neuropil's for a cell; NaN with fewer ~1 s
                             * bins than the high-pass window */
    CAIMG_ROI_NUCLEUS,      /* depth of the nucleus in the soma model of fit
                             * (0 none, 1 as dark as the surroundings, up to
                             * 1.5) */
    CAIMG_ROI_NSTATS
};

/* The column name of statistic k ("npix", "cy", ...), or NULL. */
const char *caimg_roi_stat_name(int k);

typedef struct {
    size_t n;                   /* number of ROIs */
    size_t height, width;       /* frame size */
    int64_t *pix_start;         /* [n+1] offsets into the pixel lists */
    int32_t *pix_index;         /* [M][2] (y, x) */
    float *pix_weight;          /* [M] footprint weight, max 1 per ROI */
    uint8_t *pix_overlap;       /* [M] 1 = shared with another ROI; excluded from
                                 * traces (set by caimg_roiset_finish) */
    int32_t *labels;            /* [Y][X] 0 background, i+1 for ROI i (finish) */
    int64_t *np_start;          /* [n+1] neuropil annuli (finish) */
    int32_t *np_index;          /* [Mn][2] (y, x) */
    double *stats;              /* [n][CAIMG_ROI_NSTATS]: statistic k of ROI i is
                                 * stats[i * CAIMG_ROI_NSTATS + k] */
    uint8_t *iscell;            /* [n] probability >= cell_threshold */
    double offset;              /* detector offset of the movie (the level of no
                                 * light), as the activity methods measure it
                                 * from the photon transfer curve; 0 when not
                                 * measured (set by caimg_roiset_alloc) */
    double soma_diameter;       /* the somata's median diameter in the mean
                                 * image, as method activity measures it to
                                 * size its soma fits (caimg-roi(1),
                                 * Detection); NAN when not measured */
    size_t cap_roi, cap_pix;    /* allocated capacities (internal) */
} caimg_roiset;

/* An empty set for frames of height x width; NULL on allocation failure. */
caimg_roiset *caimg_roiset_alloc(size_t height, size_t width);
void caimg_roiset_free(caimg_roiset *r);

/* Append an ROI of `npix` pixels yx[2*i] = y, yx[2*i+1] = x with weights w
 * (NULL = all 1); weights are rescaled to a maximum of 1, pixels outside the
 * frame or with a weight <= 0 are dropped, duplicates merged.  Statistics
 * start as NaN except `score` and `source`, given here.  Returns 0, or
 * CAIMG_EINVAL for an ROI left empty, CAIMG_ENOMEM. */
int caimg_roiset_add(caimg_roiset *r, size_t npix, const int32_t *yx, const float *w,
                     double score, int source);

/* The median equivalent diameter 2 sqrt(npix / pi) of the ROIs of r, in
 * pixels rounded to 0.1 (at least 1); 0 for an empty set.  caimg roi uses
 * it as the diameter of user masks under --diameter auto. */
double caimg_roiset_diameter(const caimg_roiset *r);

/* Apply the overlap rule (pix_overlap), build the label image and the
 * neuropil annuli, and compute the shape statistics (npix, centroid,
 * radius, compactness, aspect, overlap, np_npix).  The annulus of ROI i is
 * every pixel of the valid box at a distance greater than np_gap from ROI i
 * and from every other ROI, taken in order of distance from ROI i until it
 * has np_min_pixels pixels (all pixels as far as the last one are taken, so
 * the annulus is a whole ring).  A warning is given when the valid box does
 * not have that many pixels to offer.  Returns 0 or CAIMG_ENOMEM. */
int caimg_roiset_finish(caimg_roiset *r, const caimg_roi_params *p);

/* Read user masks for the seeded method, and check they fit a frame of
 * height x width: a label TIFF (integer samples; one page, or several pages
 * whose labels are combined, so a pixel labelled on two pages belongs to
 * two ROIs), an ImageJ .roi file or an ImageJ RoiSet .zip.  Label k > 0 is
 * one ROI, numbered in increasing order of k.  Errors name the file:
 * CAIMG_EFORMAT for a label image of the wrong size, negative or fractional
 * labels, or a malformed ImageJ file; CAIMG_EUNSUP for ImageJ shapes that
 * are not areas (lines, points). */
int caimg_roi_masks_read(const char *path, size_t height, size_t width, caimg_roiset **out);

/* ---- detection methods ------------------------------------------------------ */

typedef struct caimg_roi_type {
    const char *name;           /* as given to --method */
    const char *description;    /* one line for -h */
    int wants_binned;           /* needs the binned movie from caimg_roi_summarize */
    /* Find ROIs.  `binned` may be modified (the activity method subtracts
     * every cell it finds).  *out receives a new set. */
    int (*detect)(const caimg_roi_params *p, const caimg_roi_summary *s,
                  caimg_roi_binned *binned, caimg_roiset **out);
} caimg_roi_type;

/* activity: cells found from their activity in the binned movie and in the
 * mean image, then refined jointly (default); see src/roi_detect.c,
 * src/roi_refine.c and caimg-roi(1). */
extern const caimg_roi_type *const caimg_roi_activity;
/* activity-classic: the same candidates without the joint refinement (the
 * default before it was added; see src/roi_refine.c). */
extern const caimg_roi_type *const caimg_roi_activity_classic;
/* seeded: the masks of params->masks; only traces are extracted. */
extern const caimg_roi_type *const caimg_roi_seeded;

/* The method with that name, or NULL. */
const caimg_roi_type *caimg_roi_type_find(const char *name);
/* All methods, NULL-terminated, the default first. */
const caimg_roi_type *const *caimg_roi_types(void);

/* Run a method: caimg_roi_type->detect and nothing else. */
int caimg_roi_detect(const caimg_roi_type *t, const caimg_roi_params *p,
                     const caimg_roi_summary *s, caimg_roi_binned *binned,
                     caimg_roiset **out);

/* ---- traces and statistics -------------------------------------------------- */

/* Read the movie a second time and write /roi/F and /roi/Fneu [N][T]
 * float32 into `out` (with attribute fs on /roi):
 *   F[i][t]    = sum of w x_t over ROI i's pixels not flagged as overlapping,
 *                divided by the sum of those weights (NaN if every pixel of
 *                the ROI is shared);
 *   Fneu[i][t] = mean of x_t over the neuropil annulus of ROI i.
 * Traces are written in blocks of frames, so memory is N times the block,
 * not N times T.  Reports progress as "extracting traces". */
int caimg_roi_extract(caimg_movie *m, const caimg_roiset *r, caimg_h5 *out, double fs);

/* Read /roi/F and /roi/Fneu back from `f` one ROI at a time, compute skew,
 * snr, np_slope, np_excess (with r->offset) and the cell probability
 * (prob) and set iscell = prob >= p->cell_threshold; user masks (source 0)
 * are always flagged cells. */
int caimg_roi_stats_compute(caimg_roiset *r, caimg_h5 *f, const caimg_roi_params *p);

/* Traces and classification as caimg roi makes them: caimg_roi_extract()
 * and caimg_roi_stats_compute() with the overlap rule applied among all
 * ROIs; then a cell (not a user mask) with at least 70 % of its pixels
 * inside a larger cell is unflagged in iscell (its prob stays); then the
 * pixels a cell shares only with ROIs that are not cells are unflagged for
 * that cell (pix_overlap), and when any were, the F traces of those cells
 * are extracted again and the cells' skew, snr, np_slope and np_excess
 * recomputed; prob and iscell keep the first classification.  Returns 0 or
 * an error code. */
int caimg_roi_traces(caimg_movie *m, caimg_roiset *r, caimg_h5 *out, const caimg_roi_params *p);

/* The classifier on its own: cell probability from the statistics of ROI i
 * and the field's prior (caimg_roi_field_prior() of the whole set; a
 * logistic model of the features below, weights in src/roi_stats.c; when
 * np_excess is NaN, weights fitted without the np_excess features and
 * without the prior). */
double caimg_roi_cell_probability(const caimg_roiset *r, size_t i, double diameter, double prior);

/* The field's prior, the last of the classifier's features: log((s + 1) /
 * (m + 1)) of the m ROIs of stats[n][CAIMG_ROI_NSTATS] that are not user
 * masks, s of which a first pass of the classifier, without this feature,
 * gives a probability of at least 0.5.  The share of the candidates that
 * are surely cells says how crowded with cells the field is, and so how
 * likely a doubtful candidate is to be one. */
double caimg_roi_field_prior(const double *stats, size_t n, double diameter);

/* The classifier's features of one ROI from its statistics st[CAIMG_ROI_NSTATS]
 * (one row of caimg_roiset.stats) and the expected diameter d, into
 * f[CAIMG_ROI_NFEATURES]: log(npix / (pi d^2 / 4)), its square,
 * compactness (clipped to 1.2), log(aspect), skew (clipped to [-2, 10]),
 * log(max(snr, 0.5)), score (clipped to [-3, 8]) and contrast (clipped to
 * [-5, 30]; NaN as 0),
 * fit (NaN as 0), overlap, max(score / 6, contrast / 3), np_slope
 * (clipped to [0, 2.5]; NaN as 1), np_excess (clipped to [-1, 3]; NaN
 * as 0), the product of the clipped np_excess and contrast, and nucleus
 * (0 when NaN or when fit is under 0.3), and the field's prior as given.
 * Exposed so that the weights can be refitted (bench/). */
#define CAIMG_ROI_NFEATURES 16
void caimg_roi_classifier_features(const double *st, double diameter, double prior, double *f);

/* Write everything but the traces under /roi of `out`: pix_index,
 * pix_weight, pix_overlap, pix_start, labels, np_index, np_start, iscell,
 * stats/<name>, the summary images (when s is not NULL) and the attributes
 * fs, n_rois, method, diameter on /roi. */
int caimg_roi_write(caimg_h5 *out, const caimg_roiset *r, const caimg_roi_summary *s,
                    const char *method, double fs, double diameter);

/* ---- ImageJ ROI files -------------------------------------------------------- */

/* One ImageJ ROI as stored by ImageJ's RoiEncoder. */
typedef struct {
    char name[128];         /* from the file (or zip entry) name or the header */
    int type;               /* 0 polygon, 1 rect, 2 oval, 3 line, 4 freeline,
                             * 5 polyline, 7 freehand, 8 traced, 9 angle,
                             * 10 point; composite shapes are 1 with nsub > 0 */
    int top, left, bottom, right;   /* bounding box, bottom/right exclusive */
    size_t n;               /* vertices */
    double *x, *y;          /* [n] absolute vertex coordinates (pixel corners) */
    size_t nsub;            /* composite shapes: number of closed subpaths ... */
    size_t *sub_start;      /* [nsub+1] ... each vertices [sub_start[k], sub_start[k+1]) */
    int position;           /* stack position (slice), 0 if none */
} caimg_ijroi;

/* Read an ImageJ .roi file or every .roi entry of a RoiSet .zip (stored or
 * deflated) into a new array *rois of *n entries.  Errors name the file
 * (and zip entry): CAIMG_EFORMAT for bad magic numbers, truncation or CRC
 * errors. */
int caimg_ijroi_read(const char *path, caimg_ijroi **rois, size_t *n);

void caimg_ijroi_free(caimg_ijroi *rois, size_t n);

/* Rasterize an area ROI into mask[height][width] (set to 1 inside, other
 * pixels untouched) with ImageJ's rule: a pixel is inside when its centre
 * (x + 0.5, y + 0.5) is inside the polygon (even-odd rule) or ellipse.
 * Returns the number of pixels set, or CAIMG_EUNSUP for lines and points. */
long caimg_ijroi_rasterize(const caimg_ijroi *roi, size_t height, size_t width,
                           uint8_t *mask);

/* ---- helpers ---------------------------------------------------------------- */

/* The valid box of a motion-corrected caimg file: /mc/valid (y0, y1, x0, x1)
 * clipped to height x width; *has_mc tells whether the file has an /mc
 * group.  Without /mc/valid the whole frame is returned.  `path` may be a
 * TIFF (no /mc). */
int caimg_roi_valid_box(const char *path, size_t height, size_t width, size_t box[4],
                        int *has_mc);

#ifdef __cplusplus
}
#endif
#endif
