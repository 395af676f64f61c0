/* roimatch.h -- scoring detected ROIs against true masks: IoU > 0.5
 * matching, precision, recall, F1 and trace correlation (header-only, for
 * the roi tests and tests/roieval).
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Matching: pairs with IoU > 0.5 are taken greedily in decreasing IoU.  With
 * that threshold, two ROIs can rarely both exceed 0.5 with one true cell (it
 * would take them to share most of their pixels), so the greedy matching is
 * the optimal one in practice; caimg eval uses the Hungarian algorithm.
 */
#ifndef CAIMG_TESTS_ROIMATCH_H
#define CAIMG_TESTS_ROIMATCH_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t n;
    int64_t *start;     /* [n+1] */
    int64_t *idx;       /* pixel indices y*X+x, sorted within each mask */
} rm_masks;

typedef struct {
    size_t ntrue, nroi, nmatch;
    double precision, recall, f1;
    long *match_of_roi;     /* [nroi] true index or -1 */
    double *iou_of_roi;     /* [nroi] */
} rm_result;

static int rm_cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static inline void rm_sort(rm_masks *m)
{
    for (size_t i = 0; i < m->n; i++)
        qsort(m->idx + m->start[i], (size_t)(m->start[i + 1] - m->start[i]), sizeof(int64_t),
              rm_cmp64);
}

static inline size_t rm_inter(const rm_masks *a, size_t i, const rm_masks *b, size_t j)
{
    int64_t p = a->start[i], pe = a->start[i + 1], q = b->start[j], qe = b->start[j + 1];
    size_t n = 0;
    while (p < pe && q < qe) {
        if (a->idx[p] == b->idx[q]) { n++; p++; q++; }
        else if (a->idx[p] < b->idx[q]) p++;
        else q++;
    }
    return n;
}

typedef struct { double iou; size_t i, j; } rm_pair;

static int rm_cmp_pair(const void *a, const void *b)
{
    double x = ((const rm_pair *)a)->iou, y = ((const rm_pair *)b)->iou;
    return (x < y) - (x > y);
}

/* Match `roi` (only those with use[j] != 0 when use is not NULL) to truth. */
static inline rm_result rm_match(const rm_masks *truth, const rm_masks *roi,
                                 const uint8_t *use)
{
    rm_result r;
    memset(&r, 0, sizeof r);
    r.ntrue = truth->n;
    r.match_of_roi = malloc((roi->n + 1) * sizeof(long));
    r.iou_of_roi = calloc(roi->n + 1, sizeof(double));
    for (size_t j = 0; j < roi->n; j++) r.match_of_roi[j] = -1;
    size_t cap = 64, np = 0;
    rm_pair *pairs = malloc(cap * sizeof *pairs);
    for (size_t j = 0; j < roi->n; j++) {
        if (use && !use[j]) continue;
        r.nroi++;
        for (size_t i = 0; i < truth->n; i++) {
            size_t in = rm_inter(truth, i, roi, j);
            if (!in) continue;
            size_t na = (size_t)(truth->start[i + 1] - truth->start[i]);
            size_t nb = (size_t)(roi->start[j + 1] - roi->start[j]);
            double iou = (double)in / (double)(na + nb - in);
            if (iou > r.iou_of_roi[j]) r.iou_of_roi[j] = iou;
            if (iou <= 0.5) continue;
            if (np == cap) { cap *= 2; pairs = realloc(pairs, cap * sizeof *pairs); }
            pairs[np].iou = iou; pairs[np].i = i; pairs[np].j = j; np++;
        }
    }
    qsort(pairs, np, sizeof *pairs, rm_cmp_pair);
    uint8_t *tu = calloc(truth->n + 1, 1), *ru = calloc(roi->n + 1, 1);
    for (size_t k = 0; k < np; k++) {
        if (tu[pairs[k].i] || ru[pairs[k].j]) continue;
        tu[pairs[k].i] = ru[pairs[k].j] = 1;
        r.match_of_roi[pairs[k].j] = (long)pairs[k].i;
        r.nmatch++;
    }
    free(tu); free(ru); free(pairs);
    r.precision = r.nroi ? (double)r.nmatch / (double)r.nroi : 1;
    r.recall = r.ntrue ? (double)r.nmatch / (double)r.ntrue : 1;
    r.f1 = (r.nroi + r.ntrue) ? 2.0 * (double)r.nmatch / (double)(r.nroi + r.ntrue) : 1;
    return r;
}

static inline void rm_free(rm_result *r)
{
    free(r->match_of_roi);
    free(r->iou_of_roi);
}

/* Pearson correlation of two float series (NaN-free). */
static inline double rm_corr(const float *a, const float *b, size_t n)
{
    double sa = 0, sb = 0;
    for (size_t i = 0; i < n; i++) { sa += a[i]; sb += b[i]; }
    sa /= (double)n; sb /= (double)n;
    double sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < n; i++) {
        double x = a[i] - sa, y = b[i] - sb;
        sab += x * y; saa += x * x; sbb += y * y;
    }
    return (saa > 0 && sbb > 0) ? sab / sqrt(saa * sbb) : 0;
}

#endif
