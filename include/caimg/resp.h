/* caimg/resp.h -- stimulus-locked responses: one value per presentation and
 * neuron, from traces and a stimulus schedule, or read from a ready matrix.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * A presentation is one showing of one stimulus (an image, identified by
 * its 0-based page in the stimulus TIFF).  Repeats of a stimulus are kept
 * as separate presentations, so that trial-to-trial variability (and the
 * explainable variance) can be measured.  NaN marks a missing response.
 */
#ifndef CAIMG_RESP_H
#define CAIMG_RESP_H

#include <stddef.h>

#include "caimg/tsv.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    size_t npres, nneur;
    float *r;              /* [npres][nneur] responses */
    size_t *stim;          /* [npres] stimulus id (page of the stimulus TIFF) */
    signed char *split;    /* [npres] 0 train, 1 test; NULL when the source has none */
    char **names;          /* [nneur] neuron names, or NULL */
} caimg_resp;

/* How a response is read out of a trace. */
typedef struct {
    double offset;     /* seconds from onset to the start of the window [0] */
    double length;     /* seconds; <= 0 means the presentation's duration
                          (duration_frames) when the schedule has it, else 0.5 */
    int sum;           /* 1: sum over the window's frames; 0: mean [0] */
} caimg_resp_window;

void caimg_resp_window_init(caimg_resp_window *w);

/* Responses of N neurons, traces [N][T] at fs Hz, to the presentations in
 * `sched` (columns onset_frame, stimulus and optionally duration_frames,
 * found by name; `traces_name` and `sched_name` name them in messages).  The window of a
 * presentation is frames [onset + round(offset*fs), + max(1,
 * round(length*fs))).  A window that runs past the end of the recording, a
 * negative or fractional onset or stimulus, and a missing column are errors
 * ("sched.tsv: row 18: ..."; rows counted from 1 after the header).  A
 * window with any NaN frame gives a NaN response; an infinite frame in a
 * window is an error. */
caimg_resp *caimg_resp_from_traces(const float *traces, size_t N, size_t T, double fs,
                                   const char *traces_name, const caimg_table *sched,
                                   const char *sched_name, const caimg_resp_window *win);

/* Read a ready response matrix.
 * TSV: a header line naming the columns; the column "stimulus" (also
 * accepted: "scene", "image") holds the stimulus id, an optional column
 * "split" holds train/test (or 0/1), every other column is a neuron.
 * Fields "nan", "NA" and empty are NaN.  Without a header the first column
 * is the stimulus and the others neurons.
 * HDF5: datasets /responses [P][N] and /stimulus [P], optional /split [P]
 * (0 train, 1 test).
 * Infinite values and stimulus ids that are not non-negative integers are
 * errors naming the file, row and column. */
caimg_resp *caimg_resp_read(const char *path);

void caimg_resp_free(caimg_resp *r);

/* Trial averages per stimulus: presentation p of r [P][N] belongs to row
 * row[p] (< S; SIZE_MAX leaves it out); mean [S][N] receives the mean of
 * each neuron's finite responses (NaN where there is none) and reps [S]
 * (may be NULL) the number of repeats, i.e. the largest count of finite
 * responses of any neuron, the weight a stimulus gets in training.
 * Returns 0, CAIMG_EINVAL for a row out of range, or CAIMG_ENOMEM. */
int caimg_resp_means(const float *r, const size_t *row, size_t P, size_t N, size_t S, float *mean,
                     float *reps);

#ifdef __cplusplus
}
#endif
#endif
