/* annutil.h -- helpers shared by the response-model subcommands (fit,
 * predict and the attack stages).
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#ifndef CAIMG_CMD_ANNUTIL_H
#define CAIMG_CMD_ANNUTIL_H

#include <stddef.h>

#include "caimg/ann.h"
#include "cmd.h"

/* Read pages of a TIFF stack as float images into *img ([n][h][w], n =
 * number of pages; malloc'd).  With `want` (npages flags, may be NULL for
 * all) only those pages are read, the others are left as zeros.  Mixed
 * page sizes and unreadable files are errors naming the file and page. */
int ann_read_images(const char *path, const unsigned char *want, size_t nwant,
                    float **img, size_t *n, size_t *h, size_t *w);

/* Parse "LAYER=SIGMA" with an optional "abs" or "rel" suffix on SIGMA
 * ("h1=0.5", "input=4abs") and set it on the model.  Returns 0, or prints
 * a usage error and returns -1. */
int ann_parse_noise(cmd_ctx *c, caimg_ann *m, const char *spec);

/* An architecture argument: a preset name, an architecture text, or
 * @FILE to read the text from a file.  Returns a malloc'd text or NULL
 * (message set). */
char *ann_arch_arg(const char *arg);

/* Commit the HDF5 output and then the optional TSV and plot files (each
 * may be NULL), in that order, setting each pointer to NULL once it is
 * committed so the caller's clean-up aborts only what is left.  Stops at
 * the first failure and returns its status. */
int ann_commit_outputs(caimg_h5 **out, caimg_outfile **tsv, caimg_outfile **plot);

#endif
