/* caimg/report.h -- one self-contained HTML page per recording.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * The report shows what a pipeline found, from whatever results its input
 * files hold or link to: the mean and correlation images with ROI outlines,
 * the motion shifts over time, example traces (F, neuropil, dF/F, spikes)
 * for a few cells, ROI statistics, and the provenance of every step.  Plots
 * are inline SVG and images base64 PNG, so the page needs no network and no
 * other file.
 */
#ifndef CAIMG_REPORT_H
#define CAIMG_REPORT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *title;   /* page title; NULL: the first input's name */
    int ncells;          /* example cells whose traces are shown (default 6) */
} caimg_report_opts;

void caimg_report_opts_init(caimg_report_opts *o);

/* Write the report for the caimg HDF5 files `inputs` (typically the last
 * file of a pipeline, whose links reach every earlier result, plus model or
 * robustness files) to `out` (written under a temporary name and renamed).
 * When several inputs hold the same dataset the first wins.  Sections whose
 * data are absent are left out; an input with no displayable result at all
 * is an error (CAIMG_EFORMAT). */
int caimg_report_write(const char *const *inputs, size_t n, const char *out,
                       const caimg_report_opts *o);

#ifdef __cplusplus
}
#endif
#endif
