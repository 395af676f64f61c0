/* attack_internal.h -- the attack plan, shared by attack.c and
 * attack_report.c; not installed.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#ifndef CAIMG_ATTACK_INTERNAL_H
#define CAIMG_ATTACK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "caimg/attack.h"

struct caimg_attack_plan {
    const caimg_ann *m;
    const float *x;             /* [n][P] clean images (the caller's) */
    size_t n, P, N;
    double lo, hi;              /* valid pixel range */
    int noisy;
    size_t K;                   /* evaluation draws (0 for a deterministic model) */
    caimg_attack_decoder_type decoder;
    int layer;                  /* feature layer, or -1 */
    double tau;                 /* success threshold */
    uint64_t seed;
    uint64_t eval_stream, sel_stream;
    float *clean;               /* [n][N] clean predictions */
    double *mu, *sd;            /* [N] across-stimulus mean and s.d. (0: left out) */
    unsigned char *valid;       /* [N] */
    size_t nvalid;
    double *tmpl;               /* [n][N] z-scored clean responses (decoder templates) */
    double *tstd;               /* [n][N] the same standardised across neurons */
    double clean_acc;
    size_t fsize;               /* units of the feature layer */
    float *feat0;               /* [n][fsize] clean features */
    double *fnorm;              /* [n] their L2 norms */
};

#endif
