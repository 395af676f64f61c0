/* caimg/h5io.h -- caimg HDF5 files: create/commit, datasets, provenance.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * The file format itself is specified in caimg-h5(5) (man/caimg-h5.5).
 * This layer enforces the stage contract:
 *   - an output is written under a temporary name in the same directory and
 *     renamed over `path` only by caimg_h5_commit(), so a failure leaves
 *     nothing half-written;
 *   - every output carries the provenance chain of its inputs plus one new
 *     record (program version, command line, parameters, inputs);
 *   - big arrays are not copied forward: at commit, every top-level object
 *     of a caimg input that the output does not define itself is added as
 *     an HDF5 external link to the input (relative path), so the newest file
 *     of a pipeline gives access to all earlier results.
 * Debian's HDF5 is not thread-safe: call these functions from one thread.
 */
#ifndef CAIMG_H5IO_H
#define CAIMG_H5IO_H

#include <stddef.h>

#include <hdf5.h>

#include "caimg/types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CAIMG_H5_FORMAT "caimg-h5"
#define CAIMG_H5_FORMAT_VERSION 1
#define CAIMG_H5_MAXRANK 8

typedef struct caimg_h5 caimg_h5;

/* Open an existing caimg file read-only.  Fails with CAIMG_EFORMAT if it is
 * not HDF5 or has no caimg_format attribute, naming the file. */
caimg_h5 *caimg_h5_open(const char *path);

/* Like caimg_h5_open() but accepts any HDF5 file (for reading traces made by
 * other tools); `is_caimg` tells which it was. */
caimg_h5 *caimg_h5_open_any(const char *path, int *is_caimg);

/* Create a new output for `stage` ("import", "mc", ...) with the full command
 * line `cmdline` recorded in its provenance.  Written under a temporary
 * name until caimg_h5_commit(). */
caimg_h5 *caimg_h5_create(const char *path, const char *stage, const char *cmdline);

/* Record a parameter of this step for the provenance record, as
 * "key = value" (the config-file syntax, so a record can be replayed):
 * `key` must be a long option of the stage and the value one its parser
 * accepts.  A newline in the value becomes a space, as a config line ends
 * there; a value that a config file would otherwise cut or trim (one with
 * whitespace before a '#', or starting with '#' or '"', or with whitespace
 * at either end) is written in double quotes, '"' and '\' escaped by a
 * backslash. */
int caimg_h5_param(caimg_h5 *f, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record a number parameter in the fewest digits that read back as exactly
 * `v`, so that a replayed record repeats the step to the last bit (%g
 * keeps six digits). */
int caimg_h5_param_double(caimg_h5 *f, const char *key, double v);

/* Record a value the step derived rather than was given -- an automatic
 * choice no option value spells (such as 0 for "from the data"), or a
 * quantity computed from the input -- as the comment line "# key = value",
 * which a config file ignores, so the record still replays. */
int caimg_h5_param_derived(caimg_h5 *f, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record an input file (name and size).  If it is a caimg file its
 * provenance chain is inherited and, when `link` is nonzero, its top-level
 * objects are linked into the output at commit time. */
int caimg_h5_add_input(caimg_h5 *f, const char *path, int link);

/* Whether writing `output` would destroy `input`: the same file however
 * named, or (for an HDF5 input) a file it reaches through external links,
 * followed from file to file.  Returns 0, or CAIMG_EINVAL with the message
 * "OUTPUT: output would overwrite an input".  caimg_h5_add_input() checks
 * this; writers of other formats call it for each input. */
int caimg_h5_check_output(const char *output, const char *input);

/* Write the provenance record and links, close and rename into place.
 * Frees f whatever happens; on failure nothing is left at path. */
int caimg_h5_commit(caimg_h5 *f);

/* Close a file opened for reading, or abandon a created one (its temporary
 * file is removed).  Accepts NULL. */
void caimg_h5_close(caimg_h5 *f);

/* The underlying HDF5 file id, for code that needs HDF5 directly. */
hid_t caimg_h5_hid(const caimg_h5 *f);

/* The final path of the file. */
const char *caimg_h5_path(const caimg_h5 *f);

/* 1 if `name` (an absolute path such as "/mc/shifts") resolves to an
 * object, following links; 0 if not. */
int caimg_h5_exists(caimg_h5 *f, const char *name);

/* Rank and dimensions of a dataset.  Fails with CAIMG_ENOENT naming the
 * file and dataset when it is missing. */
int caimg_h5_dims(caimg_h5 *f, const char *name, int *rank, size_t *dims);

/* The on-disk sample type of a dataset (CAIMG_DT_NONE if it is not numeric). */
caimg_dtype caimg_h5_dtype(caimg_h5 *f, const char *name);

/* Write a whole dataset of `rank` dimensions from memory of type `dt`,
 * stored as `dt`.  Intermediate groups are created.  Datasets over 1 MiB are
 * chunked along the first dimension and deflate-compressed. */
int caimg_h5_write(caimg_h5 *f, const char *name, caimg_dtype dt, int rank,
                   const size_t *dims, const void *data);

/* Read a whole dataset, converted to type `dt`, into a new malloc'd buffer
 * (*data; free with free()).  `rank`/`dims` receive the shape; pass
 * `expect_rank` > 0 to have a different rank reported as an error
 * ("f.h5: /movie has rank 2, expected 3"). */
int caimg_h5_read(caimg_h5 *f, const char *name, caimg_dtype dt, int expect_rank,
                  int *rank, size_t *dims, void **data);

/* Read rows [r0, r0+n) along the first dimension into `buf` (converted to
 * `dt`; buf holds n times the product of the other dimensions). */
int caimg_h5_read_rows(caimg_h5 *f, const char *name, caimg_dtype dt,
                       size_t r0, size_t n, void *buf);

/* Rows r of `name` in place in the file, without reading them: ptrs[i]
 * points at row rows[i] (i < n) in a read-only mapping of the file, its
 * pages already mapped.  Only for rows stored as one unfiltered chunk each
 * in dt's memory layout (caimg-h5(5) movies); NULL otherwise or on any
 * failure, for the caller to read the rows instead.  The rows stay valid
 * until caimg_h5_unmap, even after the file is closed; the file must not
 * be truncated meanwhile. */
typedef struct caimg_h5_map caimg_h5_map;
caimg_h5_map *caimg_h5_map_rows(caimg_h5 *f, const char *name, caimg_dtype dt, size_t n,
                                const size_t *rows, const void **ptrs);
void caimg_h5_unmap(caimg_h5_map *map);

/* Streaming writer: a dataset that grows along its first dimension, chunked
 * one row (frame, trace) per chunk, so arbitrarily long movies are written
 * with bounded memory. */
typedef struct caimg_h5_stream caimg_h5_stream;

/* `inner` holds the rank-1 dimensions after the first; `store` is the
 * on-disk type; `deflate` 0-9 (0 = uncompressed); `nrows_hint` the expected
 * number of rows (0 if unknown). */
caimg_h5_stream *caimg_h5_stream_create(caimg_h5 *f, const char *name,
                                        caimg_dtype store, int rank,
                                        const size_t *inner, int deflate,
                                        size_t nrows_hint);

/* Append n rows from `buf` of type `src` (converted, with rounding and
 * clamping for integer storage; the number of clamped samples is added to
 * *nclamped when it is not NULL). */
int caimg_h5_stream_write(caimg_h5_stream *s, const void *buf, caimg_dtype src,
                          size_t n, size_t *nclamped);

/* Rows written so far. */
size_t caimg_h5_stream_rows(const caimg_h5_stream *s);

/* Close the dataset; frees s.  Accepts NULL. */
int caimg_h5_stream_close(caimg_h5_stream *s);

/* Close s[0], s[1], ... s[n-1] in turn, setting each closed one to NULL,
 * and stop at the first that fails (its message is the error): the others
 * stay open for the caller's clean-up of a failed output.  NULL entries
 * are skipped. */
int caimg_h5_stream_close_all(caimg_h5_stream **s, size_t n);

/* Attributes on an object (group or dataset; "/" for the file). */
int caimg_h5_set_attr_double(caimg_h5 *f, const char *obj, const char *name, double v);
int caimg_h5_set_attr_long(caimg_h5 *f, const char *obj, const char *name, long v);
int caimg_h5_set_attr_string(caimg_h5 *f, const char *obj, const char *name, const char *v);
int caimg_h5_set_attr_doubles(caimg_h5 *f, const char *obj, const char *name,
                              const double *v, size_t n);
/* Getters return CAIMG_ENOENT (without touching *v) if absent. */
int caimg_h5_get_attr_double(caimg_h5 *f, const char *obj, const char *name, double *v);
int caimg_h5_get_attr_long(caimg_h5 *f, const char *obj, const char *name, long *v);
/* *v is a malloc'd string. */
int caimg_h5_get_attr_string(caimg_h5 *f, const char *obj, const char *name, char **v);

/* The names of the members of group `name` (following links), in name
 * order: *names is a malloc'd array of *n malloc'd strings; free it with
 * caimg_h5_list_free().  CAIMG_ENOENT if there is no such group. */
int caimg_h5_list(caimg_h5 *f, const char *name, char ***names, size_t *n);
void caimg_h5_list_free(char **names, size_t n);

/* Create a group (and its parents) if it does not exist. */
int caimg_h5_mkgroup(caimg_h5 *f, const char *name);

#ifdef __cplusplus
}
#endif
#endif
