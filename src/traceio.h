/* traceio.h -- private helpers of the trace stages (dff, deconv): frame
 * rates from attributes, block sizes, writing per-ROI outputs.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Like the rest of the HDF5 layer these run in the calling thread only.
 */
#ifndef CAIMG_TRACEIO_H
#define CAIMG_TRACEIO_H

#include <stddef.h>

#include "caimg/h5io.h"

/* The frame rate of the traces in `dataset` of f: the `fs` attribute of
 * the dataset itself, then of its group, then of each of `groups`
 * (NULL-terminated, e.g. "/roi", "/movie"), the first that is positive.
 * 0 if none is. */
double caimg_trace_fs(caimg_h5 *f, const char *dataset, const char *const *groups);

/* Rows per block so that `bytes_per_row` times the block is about 64 MB
 * (at least 1, at most n), or `want` if nonzero. */
size_t caimg_trace_block(size_t n, size_t bytes_per_row, size_t want);

/* Write a [n] (or [n][k]) float64 dataset with a `units` attribute. */
int caimg_trace_write_vec(caimg_h5 *f, const char *name, const double *v, size_t n, size_t k,
                          const char *units);

/* Traces in a text table (one row per neuron, one column per frame; tab,
 * comma or space separated, as caimg/tsv.h describes), read in blocks of
 * rows so that memory does not grow with the number of neurons. */
typedef struct caimg_trace_table caimg_trace_table;

/* Open the table at `path` and read it through once: its size, and every
 * line checked (field counts, numbers, NUL bytes), so that a bad table
 * fails before any work.  A UTF-8 byte order mark is skipped; a NUL byte
 * (a binary file) is an error naming the line.  Returns NULL with a
 * message naming the file (and line) on failure. */
caimg_trace_table *caimg_trace_table_open(const char *path, size_t *nrows, size_t *ncols);

/* The next m rows, as float, into buf[m * ncols]. */
int caimg_trace_table_read(caimg_trace_table *t, size_t m, float *buf);

/* Accepts NULL. */
void caimg_trace_table_close(caimg_trace_table *t);

#endif
