/* caimg/eval.h -- scoring stage outputs against simulated ground truth.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Array-level metrics (shift errors, optimal assignment, ROI matching,
 * binned correlations) and a file-level driver that reads a truth file
 * written by caimg simulate and any stage outputs (by the names of
 * caimg-h5(5)) and returns a table of metrics.
 */
#ifndef CAIMG_EVAL_H
#define CAIMG_EVAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- assignment ---------------------------------------------------------- */

/* Optimal assignment (Hungarian algorithm, Kuhn 1955 / Munkres 1957, in the
 * O(n^2 m) shortest-augmenting-path form with dual potentials): choose
 * min(nr, nc) pairs (row, column), no row or column twice, minimising the
 * sum of cost[row * nc + col].  row_to_col[r] receives the column of row r,
 * or -1 when rows outnumber columns and r is left out.  Costs must be
 * finite.  CAIMG_ENOMEM or CAIMG_EINVAL (a non-finite cost). */
int caimg_assign(const double *cost, size_t nr, size_t nc, long *row_to_col);

/* ---- motion -------------------------------------------------------------------- */

typedef struct {
    size_t frames;
    double rms;          /* sqrt(mean |e_t|^2), e_t = est_t - truth_t - offset, pixels */
    double max;          /* max |e_t| */
    double offset[2];    /* removed constant (dy, dx): mean of est - truth, or 0 */
} caimg_eval_shifts_result;

/* Compare estimated with true shifts ([T][2] each, (dy, dx), the sign
 * convention of caimg-h5(5)).  With remove_offset, the mean difference is
 * removed first: registration to a template built from the data is only
 * defined up to the template's own position. */
void caimg_eval_shifts(const float *truth, const float *est, size_t T, int remove_offset,
                       caimg_eval_shifts_result *r);

/* ---- ROI matching ---------------------------------------------------------------- */

/* A set of masks as ragged pixel lists, as in /roi/pix_* and /truth/pix_*:
 * mask k is pixels index[2*j], index[2*j+1] (y, x) for start[k] <= j <
 * start[k+1]; a pixel belongs to the mask when keep is NULL or keep[j] != 0. */
typedef struct {
    size_t n;
    const int64_t *start;
    const int32_t *index;
    const unsigned char *keep;
} caimg_masks;

typedef struct {
    size_t ntrue, nroi;
    size_t counted;      /* truth masks that count for recall */
    size_t matched;      /* matched pairs whose truth mask is counted */
    size_t matched_all;  /* all matched pairs */
    double precision, recall, f1;
    double mean_iou;     /* over matched pairs */
    double centroid_err; /* mean distance of mask centroids over matched pairs, px */
    long *roi_of_true;   /* [ntrue] matched ROI or -1 */
    long *true_of_roi;   /* [nroi] matched truth mask or -1 */
    double *iou;         /* [ntrue] IoU with the matched ROI, 0 if unmatched */
} caimg_eval_match;

/* Match ROI masks to truth masks on a Y x X image: pairs need IoU > iou_min
 * (binary masks); among them an assignment maximising first the number of
 * pairs and then their total IoU is chosen (the Hungarian algorithm on each
 * connected group of candidate pairs).  precision = matched_all / nroi
 * (an ROI matched to an uncounted neuron is not a false positive),
 * recall = matched / counted, f1 their harmonic mean.  `counted` (may be
 * NULL = all) flags the truth masks that count for recall.  Pixels outside
 * the image are ignored.  Free with caimg_eval_match_free(). */
int caimg_eval_match_masks(const caimg_masks *truth, const caimg_masks *rois, size_t Y,
                           size_t X, double iou_min, const unsigned char *counted,
                           caimg_eval_match *m);

void caimg_eval_match_free(caimg_eval_match *m);

/* ---- correlations ------------------------------------------------------------------ */

/* Pearson correlation of a and b (n samples); NaN if either is constant. */
double caimg_eval_corr(const float *a, const float *b, size_t n);

/* Pearson correlation after summing both series into bins of `bin` seconds
 * (frames at fs Hz; a frame's value is spread evenly over its duration, so
 * bins need not align with frames; the last partial bin is dropped).  This
 * is the Spikefinder convention at bin = 0.04 s.  NaN if a binned series is
 * constant or there are fewer than 2 bins. */
double caimg_eval_corr_binned(const float *a, const float *b, size_t n, double fs, double bin);

/* ---- files ------------------------------------------------------------------------- */

typedef struct {
    double iou;          /* IoU threshold for a match [0.5] */
    double bin;          /* spike bin width, s [0.04] */
    double min_spikes;   /* truth neurons with fewer spikes do not count for recall [0] */
    int all_rois;        /* score ROIs flagged iscell = 0 too [0] */
    double neuropil_r;   /* traces are F - r Fneu when there is no /dff/dff [0.7] */
    int keep_offset;     /* do not remove the template offset from shifts [0] */
} caimg_eval_opts;

void caimg_eval_opts_init(caimg_eval_opts *o);

typedef struct {
    char section[12];    /* motion, field, bidi, roi, spikes, model */
    char metric[32];
    double value;
} caimg_eval_row;

typedef struct {
    caimg_eval_row *rows;
    size_t nrows;
    /* Per truth neuron (NaN where not evaluated). */
    size_t ntrue;
    long *roi;           /* matched ROI (0-based) or -1; identity when no /roi */
    unsigned char *counted;
    double *iou, *trace_corr, *spike_corr, *model_corr;
    double *signal_corr;  /* somatic signal fidelity of the matched ROI */
} caimg_eval_report;

/* Evaluate every stage output found in `inputs` (caimg HDF5 files; links
 * followed) against `truth` (a file written by caimg simulate --truth):
 *   motion: /mc/shifts; field: /mc/patch_shifts with /mc/patch_y, /mc/patch_x;
 *   bidi: attribute bidi_offset of /mc;
 *   roi: /roi/pix_start, /roi/pix_index, /roi/pix_weight (pixels with weight
 *        > 0) or, without them, the label image /roi/labels; /roi/iscell;
 *        traces /dff/dff, else /roi/F - r /roi/Fneu; the somatic signal
 *        fidelity of each matched ROI (signal_corr, see caimg-eval(1));
 *        truth masks are moved by the template offset of /mc/shifts;
 *   spikes: /deconv/spikes, rows mapped to truth neurons through the ROI
 *        match, or one to one when there is no /roi and the counts agree;
 *   model: /predict/responses [S][N] (expected responses to the truth's S
 *        stimuli; columns mapped like spikes).
 * Each group is taken from the first input that has it.  CAIMG_EFORMAT
 * naming the file and dataset for inconsistent shapes; CAIMG_ENOENT when
 * nothing evaluable is found. */
int caimg_eval_files(const char *truth, const char *const *inputs, size_t ninputs,
                     const caimg_eval_opts *o, caimg_eval_report **out);

void caimg_eval_report_free(caimg_eval_report *r);

#ifdef __cplusplus
}
#endif
#endif
