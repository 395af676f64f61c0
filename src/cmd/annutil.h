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

/* The training options `caimg fit` and `caimg robustness` share: one
 * spelling, one default and one valid range for both.  Each subcommand
 * lists ANN_TRAIN_LONGOPTS in its option table, starts from
 * ann_train_args_init() and hands the six ANN_OPT_* cases to
 * ann_train_args_parse(). */
/* Numbered well above any subcommand's private options. */
enum { ANN_OPT_BATCH = OPT_FIRST_PRIVATE + 900, ANN_OPT_LR, ANN_OPT_EPOCHS, ANN_OPT_PATIENCE,
       ANN_OPT_EMA, ANN_OPT_LR_DECAY };

#define ANN_TRAIN_LONGOPTS \
    {"batch",    required_argument, NULL, ANN_OPT_BATCH}, \
    {"lr",       required_argument, NULL, ANN_OPT_LR}, \
    {"epochs",   required_argument, NULL, ANN_OPT_EPOCHS}, \
    {"patience", required_argument, NULL, ANN_OPT_PATIENCE}, \
    {"ema",      required_argument, NULL, ANN_OPT_EMA}, \
    {"lr-decay", required_argument, NULL, ANN_OPT_LR_DECAY}

typedef struct {
    long batch;         /* mini-batch size [64] */
    double lr;          /* Adam learning rate [0.002] */
    long epochs;        /* maximum epochs [200] */
    long patience;      /* early-stopping patience in epochs [10] */
    double ema;         /* weight-averaging decay per step, 0 = off [0] */
    long lr_decays;     /* learning-rate decays on plateau [0] */
    double lr_factor;   /* by this factor each [0.3] */
} ann_train_args;

void ann_train_args_init(ann_train_args *a);

/* Parse the value of one ANN_OPT_* option.  Returns 0, or prints a usage
 * error and returns -1. */
int ann_train_args_parse(cmd_ctx *c, ann_train_args *a, int opt, const char *arg);

/* Copy the arguments into training options made by
 * caimg_ann_train_opts_init(), and record them in the output's parameters. */
void ann_train_args_apply(const ann_train_args *a, caimg_ann_train_opts *to);
void ann_train_args_record(const ann_train_args *a, caimg_h5 *out);

#endif
