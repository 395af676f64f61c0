/* deconv_lanes.h -- the AR(1) OASIS pass of deconv.c on eight segments of
 * a trace at once, in the lanes of AVX-512 vectors (private to libcaimg).
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Without a sparsity threshold (smin = 0) the AR(1) problem is a weighted
 * isotonic regression, and merging adjacent violating pools gives the same
 * solution in any order.  So the trace can be cut into eight segments,
 * each pooled on its own (a lane each, in step), and the segments' pools
 * then pooled in order as if they were frames: most merges happen inside
 * the segments, where the vector pass does them eight at a time, and the
 * pass's branches no longer depend on one noisy frame each.  The pools
 * are the same as the sequential pass's; their sums differ by rounding
 * only (they are added in another order).
 *
 * Available only where the compiler can target AVX-512F and the processor
 * has it; caimg_ar1_lanes_available() tells at run time.
 */
#ifndef CAIMG_DECONV_LANES_H
#define CAIMG_DECONV_LANES_H

#include <stddef.h>
#include <stdint.h>

/* The shortest trace worth cutting into segments. */
#define CAIMG_AR1_LANES_MIN_T 64

/* The pools, in the layout of deconv.c's workspace: N = sum g^k z over
 * the pool (not yet divided by w), w = sum g^2k, g^l, start and length. */
typedef struct {
    double *N, *w, *gl;
    uint32_t *t, *l;
} caimg_ar1_stack;

/* Scratch of the lane pass for traces of up to T frames, 64-byte aligned
 * where the vector code needs it. */
typedef struct caimg_ar1_lanes caimg_ar1_lanes;

/* 1 when the processor and this build can run the lane pass. */
int caimg_ar1_lanes_available(void);

/* Nonzero: workspaces allocated from now on use the sequential pass (for
 * tests and benchmarks that compare the two). */
extern int caimg_ar1_lanes_disabled;

caimg_ar1_lanes *caimg_ar1_lanes_alloc(size_t T);
void caimg_ar1_lanes_free(caimg_ar1_lanes *L);

/* Pools of z[t] = y[t] - zoff (y[T-1] - zlast for the last frame), as
 * deconv.c's ar1_pools() with smin = 0: a pool merges into its
 * predecessor while its value is below the predecessor's decayed value,
 * and the first pool into the zero calcium before the trace while its
 * value is negative (*zend receives the end of that region).  Returns the
 * number of pools.  Needs T >= CAIMG_AR1_LANES_MIN_T and T no longer than
 * the scratch was made for. */
size_t caimg_ar1_pools_lanes(caimg_ar1_lanes *L, const double *y, size_t T, double g,
                             double zoff, double zlast, caimg_ar1_stack *st, size_t *zend);

#endif
