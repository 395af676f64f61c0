/* roi_masks.c -- sets of ROIs: pixel lists, the overlap rule, the label
 * image, neuropil annuli, shape statistics, and user masks (label TIFFs and
 * ImageJ ROIs) for the seeded method.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "caimg/error.h"
#include "caimg/tiffio.h"
#include "roi_internal.h"

static const char *const stat_names[CAIMG_ROI_NSTATS] = {
    "npix", "cy", "cx", "radius", "compactness", "aspect", "skew", "snr", "score",
    "contrast", "fit", "overlap", "np_npix", "source", "prob",
    "np_slope", "np_excess", "nucleus"
};

const char *caimg_roi_stat_name(int k)
{
    return (k >= 0 && k < CAIMG_ROI_NSTATS) ? stat_names[k] : NULL;
}

caimg_roiset *caimg_roiset_alloc(size_t height, size_t width)
{
    caimg_roiset *r = caimg_calloc(1, sizeof *r, "a set of ROIs");
    if (!r) return NULL;
    r->height = height;
    r->width = width;
    r->soma_diameter = NAN;
    r->cap_roi = 16;
    r->cap_pix = 1024;
    r->pix_start = caimg_calloc(r->cap_roi + 1, sizeof *r->pix_start, "ROI offsets");
    r->stats = caimg_malloc(r->cap_roi * CAIMG_ROI_NSTATS, sizeof *r->stats, "ROI statistics");
    r->pix_index = caimg_malloc(2 * r->cap_pix, sizeof *r->pix_index, "ROI pixels");
    r->pix_weight = caimg_malloc(r->cap_pix, sizeof *r->pix_weight, "ROI weights");
    if (!r->pix_start || !r->stats || !r->pix_index || !r->pix_weight) {
        caimg_roiset_free(r);
        return NULL;
    }
    return r;
}

void caimg_roiset_free(caimg_roiset *r)
{
    if (!r) return;
    free(r->pix_start);
    free(r->pix_index);
    free(r->pix_weight);
    free(r->pix_overlap);
    free(r->labels);
    free(r->np_start);
    free(r->np_index);
    free(r->stats);
    free(r->iscell);
    free(r);
}

typedef struct {
    int64_t idx;
    float w;
} pixw;

static int cmp_pixw(const void *a, const void *b)
{
    int64_t x = ((const pixw *)a)->idx, y = ((const pixw *)b)->idx;
    return (x > y) - (x < y);
}

int caimg_roiset_add(caimg_roiset *r, size_t npix, const int32_t *yx, const float *w,
                     double score, int source)
{
    pixw *pw = caimg_malloc(npix ? npix : 1, sizeof *pw, "an ROI");
    if (!pw) return CAIMG_ENOMEM;
    size_t n = 0;
    float wmax = 0;
    for (size_t i = 0; i < npix; i++) {
        int32_t y = yx[2 * i], x = yx[2 * i + 1];
        float wi = w ? w[i] : 1.0f;
        if (y < 0 || x < 0 || (size_t)y >= r->height || (size_t)x >= r->width || !(wi > 0))
            continue;
        pw[n].idx = (int64_t)y * (int64_t)r->width + x;
        pw[n].w = wi;
        n++;
    }
    qsort(pw, n, sizeof *pw, cmp_pixw);
    /* Duplicates keep their largest weight. */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && pw[m - 1].idx == pw[i].idx) {
            if (pw[i].w > pw[m - 1].w) pw[m - 1].w = pw[i].w;
            continue;
        }
        pw[m++] = pw[i];
    }
    for (size_t i = 0; i < m; i++) wmax = pw[i].w > wmax ? pw[i].w : wmax;
    if (m == 0) {
        free(pw);
        return caimg_error(CAIMG_EINVAL, "ROI %zu has no pixels inside the %zux%zu frame",
                           r->n + 1, r->height, r->width);
    }
    if (r->n + 1 > r->cap_roi) {
        size_t c = r->cap_roi * 2;
        int64_t *ps = realloc(r->pix_start, (c + 1) * sizeof *ps);
        if (ps) r->pix_start = ps;
        double *st = ps ? realloc(r->stats, c * CAIMG_ROI_NSTATS * sizeof *st) : NULL;
        if (st) r->stats = st;
        if (!ps || !st) {
            free(pw);
            return caimg_error(CAIMG_ENOMEM, "out of memory adding ROI %zu", r->n + 1);
        }
        r->cap_roi = c;
    }
    size_t M = (size_t)r->pix_start[r->n];
    if (M + m > r->cap_pix) {
        size_t c = CAIMG_MAX(r->cap_pix * 2, M + m);
        int32_t *pi = realloc(r->pix_index, 2 * c * sizeof *pi);
        if (pi) r->pix_index = pi;
        float *pwt = pi ? realloc(r->pix_weight, c * sizeof *pwt) : NULL;
        if (pwt) r->pix_weight = pwt;
        if (!pi || !pwt) {
            free(pw);
            return caimg_error(CAIMG_ENOMEM, "out of memory adding ROI %zu", r->n + 1);
        }
        r->cap_pix = c;
    }
    for (size_t i = 0; i < m; i++) {
        r->pix_index[2 * (M + i)] = (int32_t)(pw[i].idx / (int64_t)r->width);
        r->pix_index[2 * (M + i) + 1] = (int32_t)(pw[i].idx % (int64_t)r->width);
        r->pix_weight[M + i] = pw[i].w / wmax;
    }
    free(pw);
    double *st = r->stats + r->n * CAIMG_ROI_NSTATS;
    for (int k = 0; k < CAIMG_ROI_NSTATS; k++) st[k] = NAN;
    st[CAIMG_ROI_SCORE] = score;
    st[CAIMG_ROI_SOURCE] = source;
    r->n++;
    r->pix_start[r->n] = (int64_t)(M + m);
    return 0;
}

/* Shape statistics of ROI i from its pixels and weights. */
static void shape_stats(caimg_roiset *r, size_t i)
{
    double *st = r->stats + i * CAIMG_ROI_NSTATS;
    size_t a = (size_t)r->pix_start[i], b = (size_t)r->pix_start[i + 1], n = b - a;
    double sw = 0, wy = 0, wx = 0, my = 0, mx = 0;
    size_t nov = 0;
    for (size_t k = a; k < b; k++) {
        double y = r->pix_index[2 * k], x = r->pix_index[2 * k + 1], w = r->pix_weight[k];
        sw += w;
        wy += w * y;
        wx += w * x;
        my += y;
        mx += x;
        if (r->pix_overlap && r->pix_overlap[k]) nov++;
    }
    my /= (double)n;
    mx /= (double)n;
    /* Second moments of the mask (unweighted: the outline is what a user
     * sees); each pixel adds its own 1/12 so that single pixels have size. */
    double cyy = 1.0 / 12, cxx = 1.0 / 12, cxy = 0, mr = 0;
    for (size_t k = a; k < b; k++) {
        double dy = r->pix_index[2 * k] - my, dx = r->pix_index[2 * k + 1] - mx;
        cyy += dy * dy / (double)n;
        cxx += dx * dx / (double)n;
        cxy += dy * dx / (double)n;
        mr += sqrt(dy * dy + dx * dx);
    }
    mr /= (double)n;
    double tr = cyy + cxx, det = cyy * cxx - cxy * cxy;
    double disc = sqrt(CAIMG_MAX(0, tr * tr / 4 - det));
    double l1 = tr / 2 + disc, l2 = CAIMG_MAX(1e-12, tr / 2 - disc);
    /* A uniform ellipse with semi-axes A, B has variances A^2/4 and B^2/4. */
    double A = 2 * sqrt(l1), B = 2 * sqrt(l2);
    st[CAIMG_ROI_NPIX] = (double)n;
    st[CAIMG_ROI_CY] = wy / sw;
    st[CAIMG_ROI_CX] = wx / sw;
    st[CAIMG_ROI_RADIUS] = sqrt(A * B);
    st[CAIMG_ROI_ASPECT] = A / B;
    /* A disk of n pixels has mean distance (2/3) R from its centre. */
    double mr_disk = (2.0 / 3.0) * sqrt((double)n / M_PI);
    st[CAIMG_ROI_COMPACTNESS] = mr > 0 ? mr_disk / mr : 1;
    st[CAIMG_ROI_OVERLAP] = (double)nov / (double)n;
}

typedef struct {
    float d2;
    int32_t idx;
} cand;

static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->d2 != y->d2) return (x->d2 > y->d2) - (x->d2 < y->d2);
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Neuropil annulus of ROI i (see caimg_roiset_finish). */
static int annulus(const caimg_roiset *r, size_t i, const uint8_t *excluded,
                   const size_t box[4], double gap, size_t want, int32_t **out, size_t *nout,
                   int *short_of)
{
    size_t X = r->width;
    size_t a = (size_t)r->pix_start[i], b = (size_t)r->pix_start[i + 1];
    long ymin = LONG_MAX, ymax = -1, xmin = LONG_MAX, xmax = -1;
    for (size_t k = a; k < b; k++) {
        long y = r->pix_index[2 * k], x = r->pix_index[2 * k + 1];
        ymin = y < ymin ? y : ymin; ymax = y > ymax ? y : ymax;
        xmin = x < xmin ? x : xmin; xmax = x > xmax ? x : xmax;
    }
    double margin = gap + 2 * sqrt((double)want / M_PI) + 2;
    *out = NULL;
    *nout = 0;
    *short_of = 0;
    for (;;) {
        long M = (long)ceil(margin);
        long wy0 = CAIMG_MAX((long)box[0], ymin - M), wy1 = CAIMG_MIN((long)box[1], ymax + M + 1);
        long wx0 = CAIMG_MAX((long)box[2], xmin - M), wx1 = CAIMG_MIN((long)box[3], xmax + M + 1);
        /* The ROI may lie partly outside the valid box; its distance is
         * still measured from all of its pixels. */
        long ey0 = CAIMG_MIN(wy0, ymin), ey1 = CAIMG_MAX(wy1, ymax + 1);
        long ex0 = CAIMG_MIN(wx0, xmin), ex1 = CAIMG_MAX(wx1, xmax + 1);
        size_t h = (size_t)(ey1 - ey0), w = (size_t)(ex1 - ex0);
        uint8_t *mask = caimg_calloc(h * w, 1, "a neuropil mask");
        float *d2 = caimg_malloc(h * w, sizeof *d2, "a neuropil mask");
        cand *c = caimg_malloc(h * w, sizeof *c, "a neuropil mask");
        if (!mask || !d2 || !c) {
            free(mask); free(d2); free(c);
            return CAIMG_ENOMEM;
        }
        for (size_t k = a; k < b; k++)
            mask[(size_t)(r->pix_index[2 * k] - ey0) * w + (size_t)(r->pix_index[2 * k + 1] - ex0)] = 1;
        int rc = roi_edt(mask, h, w, d2);
        if (rc) { free(mask); free(d2); free(c); return rc; }
        size_t nc = 0;
        double g2 = gap * gap;
        for (long y = wy0; y < wy1; y++)
            for (long x = wx0; x < wx1; x++) {
                size_t li = (size_t)(y - ey0) * w + (size_t)(x - ex0);
                size_t gi = (size_t)y * X + (size_t)x;
                if (excluded[gi] || d2[li] <= g2) continue;
                c[nc].d2 = d2[li];
                c[nc].idx = (int32_t)gi;
                nc++;
            }
        qsort(c, nc, sizeof *c, cmp_cand);
        int whole = wy0 == (long)box[0] && wy1 == (long)box[1] && wx0 == (long)box[2]
                    && wx1 == (long)box[3];
        size_t take = nc;
        if (nc >= want) {
            float dmax = c[want - 1].d2;
            take = want;
            while (take < nc && c[take].d2 <= dmax) take++;
            /* Every pixel nearer than the margin is in the window, so the
             * ring is complete unless it reaches the margin. */
            if (sqrt(dmax) >= (double)M && !whole) {
                free(mask); free(d2); free(c);
                margin *= 1.5;
                continue;
            }
        } else if (!whole) {
            free(mask); free(d2); free(c);
            margin *= 1.5;
            continue;
        } else *short_of = 1;
        int32_t *o = caimg_malloc(take ? 2 * take : 1, sizeof *o, "a neuropil mask");
        if (!o) { free(mask); free(d2); free(c); return CAIMG_ENOMEM; }
        for (size_t k = 0; k < take; k++) {
            o[2 * k] = (int32_t)((size_t)c[k].idx / X);
            o[2 * k + 1] = (int32_t)((size_t)c[k].idx % X);
        }
        /* Store in raster order, which makes extraction cache-friendly. */
        free(mask); free(d2); free(c);
        *out = o;
        *nout = take;
        return 0;
    }
}

static int cmp_yx(const void *a, const void *b)
{
    const int32_t *p = a, *q = b;
    if (p[0] != q[0]) return (p[0] > q[0]) - (p[0] < q[0]);
    return (p[1] > q[1]) - (p[1] < q[1]);
}

int caimg_roiset_finish(caimg_roiset *r, const caimg_roi_params *p)
{
    size_t Y = r->height, X = r->width, YX = Y * X, N = r->n;
    size_t M = (size_t)r->pix_start[N];
    size_t box[4] = {0, Y, 0, X};
    if (p->valid[1] > 0) memcpy(box, p->valid, sizeof box);
    free(r->pix_overlap);
    free(r->labels);
    free(r->np_start);
    free(r->np_index);
    free(r->iscell);
    r->np_index = NULL;
    r->pix_overlap = caimg_calloc(M ? M : 1, 1, "overlap flags");
    r->labels = caimg_calloc(YX, sizeof *r->labels, "the label image");
    r->np_start = caimg_calloc(N + 1, sizeof *r->np_start, "neuropil offsets");
    r->iscell = caimg_calloc(N ? N : 1, 1, "cell flags");
    uint8_t *cnt = caimg_calloc(YX, 1, "an overlap count");
    float *best = caimg_calloc(YX, sizeof *best, "an overlap count");
    uint8_t *excl = caimg_calloc(YX, 1, "a neuropil exclusion mask");
    float *d2 = caimg_malloc(YX, sizeof *d2, "a distance map");
    int rc = 0;
    if (!r->pix_overlap || !r->labels || !r->np_start || !r->iscell || !cnt || !best || !excl
        || !d2) {
        rc = CAIMG_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < N; i++)
        for (int64_t k = r->pix_start[i]; k < r->pix_start[i + 1]; k++) {
            size_t g = (size_t)r->pix_index[2 * k] * X + (size_t)r->pix_index[2 * k + 1];
            if (cnt[g] < 255) cnt[g]++;
            /* The label image shows each shared pixel as part of the ROI
             * that weighs it most (the first on ties). */
            if (r->pix_weight[k] > best[g]) {
                best[g] = r->pix_weight[k];
                r->labels[g] = (int32_t)(i + 1);
            }
        }
    for (size_t k = 0; k < M; k++) {
        size_t g = (size_t)r->pix_index[2 * k] * X + (size_t)r->pix_index[2 * k + 1];
        r->pix_overlap[k] = cnt[g] > 1;
    }
    /* Pixels within np_gap of any ROI (ROIs included) are nobody's neuropil. */
    for (size_t g = 0; g < YX; g++) excl[g] = cnt[g] > 0;
    rc = roi_edt(excl, Y, X, d2);
    if (rc) goto out;
    double g2 = p->np_gap * p->np_gap;
    for (size_t g = 0; g < YX; g++) excl[g] = d2[g] <= g2;

    /* Annuli in parallel, then concatenated in ROI order. */
    int32_t **np = caimg_calloc(N ? N : 1, sizeof *np, "neuropil masks");
    size_t *nn = caimg_calloc(N ? N : 1, sizeof *nn, "neuropil masks");
    if (!np || !nn) {
        free(np);
        free(nn);
        rc = CAIMG_ENOMEM;
        goto out;
    }
    int err = 0;
    size_t nshort = 0;
#pragma omp parallel for schedule(dynamic, 4) reduction(+:nshort)
    for (size_t i = 0; i < N; i++) {
        int sh = 0;
        if (annulus(r, i, excl, box, p->np_gap, p->np_min_pixels, &np[i], &nn[i], &sh)) {
#pragma omp atomic write
            err = 1;
        }
        if (np[i]) qsort(np[i], nn[i], 2 * sizeof(int32_t), cmp_yx);
        nshort += (size_t)sh;
    }
    size_t tot = 0;
    for (size_t i = 0; i < N; i++) tot += nn[i];
    if (!err) r->np_index = caimg_malloc(tot ? 2 * tot : 1, sizeof *r->np_index, "neuropil masks");
    if (err || !r->np_index) rc = caimg_error(CAIMG_ENOMEM, "out of memory making neuropil masks");
    else {
        size_t o = 0;
        for (size_t i = 0; i < N; i++) {
            memcpy(r->np_index + 2 * o, np[i], 2 * nn[i] * sizeof *r->np_index);
            o += nn[i];
            r->np_start[i + 1] = (int64_t)o;
            r->stats[i * CAIMG_ROI_NSTATS + CAIMG_ROI_NP_NPIX] = (double)nn[i];
        }
    }
    for (size_t i = 0; i < N; i++) free(np[i]);
    free(np);
    free(nn);
    if (rc) goto out;
    if (nshort)
        caimg_warn("%zu neuropil annuli have fewer than %zu pixels: the field has no more "
                   "pixels away from cells", nshort, p->np_min_pixels);
    for (size_t i = 0; i < N; i++) shape_stats(r, i);
out:
    free(cnt);
    free(best);
    free(excl);
    free(d2);
    return rc;
}

int roi_overlap_cells(caimg_roiset *r, uint8_t *roi_changed, size_t *changed)
{
    size_t YX = r->height * r->width, N = r->n, X = r->width;
    *changed = 0;
    if (!r->pix_overlap || !r->iscell) return 0;
    uint8_t *cnt = caimg_calloc(YX ? YX : 1, 1, "an overlap count");
    if (!cnt) return CAIMG_ENOMEM;
    for (size_t i = 0; i < N; i++)
        if (r->iscell[i])
            for (int64_t k = r->pix_start[i]; k < r->pix_start[i + 1]; k++) {
                size_t g = (size_t)r->pix_index[2 * k] * X + (size_t)r->pix_index[2 * k + 1];
                if (cnt[g] < 255) cnt[g]++;
            }
    /* Only the flags of cells' pixels change; a rejected ROI keeps every
     * pixel it shares with anyone flagged. */
    for (size_t i = 0; i < N; i++)
        if (r->iscell[i])
            for (int64_t k = r->pix_start[i]; k < r->pix_start[i + 1]; k++) {
                size_t g = (size_t)r->pix_index[2 * k] * X + (size_t)r->pix_index[2 * k + 1];
                uint8_t o = cnt[g] > 1;
                if (o != r->pix_overlap[k]) {
                    r->pix_overlap[k] = o;
                    roi_changed[i] = 1;
                    (*changed)++;
                }
            }
    free(cnt);
    return 0;
}

int roi_cells_contained(caimg_roiset *r)
{
    size_t YX = r->height * r->width, N = r->n, X = r->width;
    if (!r->iscell || N < 2) return 0;
    int32_t *mark = caimg_malloc(YX ? YX : 1, sizeof *mark, "a containment map");
    uint8_t *drop = caimg_calloc(N, 1, "containment flags");
    if (!mark || !drop) {
        free(mark);
        free(drop);
        return CAIMG_ENOMEM;
    }
    /* Bounding boxes (y0, y1, x0, x1, inclusive), so that only cells that
     * can overlap are compared pixel by pixel. */
    int32_t *bb = caimg_malloc(4 * N, sizeof *bb, "containment flags");
    if (!bb) {
        free(mark);
        free(drop);
        return CAIMG_ENOMEM;
    }
    for (size_t i = 0; i < N; i++) {
        int32_t *b = bb + 4 * i;
        b[0] = b[2] = INT32_MAX;
        b[1] = b[3] = -1;
        for (int64_t k = r->pix_start[i]; k < r->pix_start[i + 1]; k++) {
            int32_t y = r->pix_index[2 * k], x = r->pix_index[2 * k + 1];
            b[0] = CAIMG_MIN(b[0], y); b[1] = CAIMG_MAX(b[1], y);
            b[2] = CAIMG_MIN(b[2], x); b[3] = CAIMG_MAX(b[3], x);
        }
    }
    for (size_t g = 0; g < YX; g++) mark[g] = -1;
    for (size_t i = 0; i < N; i++) {
        /* User masks are cells by the user's say. */
        if (!r->iscell[i] || r->stats[i * CAIMG_ROI_NSTATS + CAIMG_ROI_SOURCE] == 0) continue;
        int64_t ni = r->pix_start[i + 1] - r->pix_start[i];
        for (int64_t k = r->pix_start[i]; k < r->pix_start[i + 1]; k++)
            mark[(size_t)r->pix_index[2 * k] * X + (size_t)r->pix_index[2 * k + 1]] = (int32_t)i;
        const int32_t *bi = bb + 4 * i;
        for (size_t j = 0; j < N && !drop[i]; j++) {
            const int32_t *bj = bb + 4 * j;
            if (j == i || !r->iscell[j] || r->pix_start[j + 1] - r->pix_start[j] <= ni) continue;
            if (bj[0] > bi[1] || bj[1] < bi[0] || bj[2] > bi[3] || bj[3] < bi[2]) continue;
            int64_t in = 0;
            for (int64_t k = r->pix_start[j]; k < r->pix_start[j + 1]; k++) {
                size_t g = (size_t)r->pix_index[2 * k] * X + (size_t)r->pix_index[2 * k + 1];
                in += mark[g] == (int32_t)i;
            }
            if ((double)in >= ROI_CONTAINED * (double)ni) drop[i] = 1;
        }
    }
    for (size_t i = 0; i < N; i++)
        if (drop[i]) r->iscell[i] = 0;
    free(mark);
    free(drop);
    free(bb);
    return 0;
}

/* ---- user masks ------------------------------------------------------------ */

typedef struct {
    int64_t label;
    int64_t idx;
} lab;

static int cmp_lab(const void *a, const void *b)
{
    const lab *x = a, *y = b;
    if (x->label != y->label) return (x->label > y->label) - (x->label < y->label);
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* A set from (label, pixel) pairs: one ROI per distinct label. */
static int set_from_pairs(lab *pairs, size_t n, size_t Y, size_t X, caimg_roiset **out)
{
    qsort(pairs, n, sizeof *pairs, cmp_lab);
    caimg_roiset *r = caimg_roiset_alloc(Y, X);
    if (!r) return CAIMG_ENOMEM;
    int32_t *yx = caimg_malloc(2 * (n ? n : 1), sizeof *yx, "user masks");
    if (!yx) { caimg_roiset_free(r); return CAIMG_ENOMEM; }
    int rc = 0;
    for (size_t i = 0; !rc && i < n;) {
        size_t j = i, m = 0;
        while (j < n && pairs[j].label == pairs[i].label) {
            yx[2 * m] = (int32_t)(pairs[j].idx / (int64_t)X);
            yx[2 * m + 1] = (int32_t)(pairs[j].idx % (int64_t)X);
            m++;
            j++;
        }
        rc = caimg_roiset_add(r, m, yx, NULL, NAN, 0);
        i = j;
    }
    free(yx);
    if (rc) { caimg_roiset_free(r); return rc; }
    *out = r;
    return 0;
}

/* The largest label of a label TIFF: that of the widest integer sample
 * type (uint32).  Float images may hold whole numbers beyond it, and
 * infinities, that are no label. */
#define MAX_LABEL 4294967295.0

static int read_label_tiff(const char *path, size_t Y, size_t X, caimg_roiset **out)
{
    caimg_tiff *t = caimg_tiff_open(path);
    if (!t) return CAIMG_EFORMAT;
    const caimg_tiff_info *in = caimg_tiff_get_info(t);
    int rc = 0;
    if (in->width != X || in->height != Y) {
        rc = caimg_error(CAIMG_EFORMAT, "%s: label image is %zux%zu, the movie is %zux%zu "
                         "(height x width)", path, in->height, in->width, Y, X);
        caimg_tiff_close(t);
        return rc;
    }
    size_t YX = Y * X, cap = 4096, n = 0;
    void *page = caimg_malloc(YX, caimg_dtype_size(in->dtype), "a label image");
    float *f = caimg_malloc(YX, sizeof *f, "a label image");
    lab *pairs = caimg_malloc(cap, sizeof *pairs, "labels");
    if (!page || !f || !pairs) rc = CAIMG_ENOMEM;
    for (size_t pg = 0; !rc && pg < in->npages; pg++) {
        rc = caimg_tiff_read_page(t, pg, page);
        if (rc) break;
        caimg_to_float(page, in->dtype, f, YX);
        for (size_t i = 0; !rc && i < YX; i++) {
            /* The exact sample: float cannot hold every 32-bit integer, nor
             * a double label, so two labels could merge on the way. */
            double v = f[i];
            if (in->dtype == CAIMG_DT_U32) v = (double)((uint32_t *)page)[i];
            else if (in->dtype == CAIMG_DT_I32) v = (double)((int32_t *)page)[i];
            else if (in->dtype == CAIMG_DT_F64) v = ((double *)page)[i];
            if (v == 0) continue;
            /* Infinities and huge values are whole numbers to floor() but
             * no label: converting them to an integer is undefined, and in
             * practice made +Inf ROI 0, numbered before label 1. */
            if (!(v > 0) || v != floor(v) || v > MAX_LABEL) {
                rc = caimg_error(CAIMG_EFORMAT, "%s: page %zu, pixel (y %zu, x %zu) has label %g; "
                                 "labels must be whole numbers from 0 to %.0f", path, pg + 1,
                                 i / X, i % X, v, MAX_LABEL);
                break;
            }
            if (n == cap) {
                lab *np2 = realloc(pairs, 2 * cap * sizeof *np2);
                if (!np2) { rc = caimg_error(CAIMG_ENOMEM, "out of memory reading %s", path); break; }
                pairs = np2;
                cap *= 2;
            }
            pairs[n].label = (int64_t)v;
            pairs[n].idx = (int64_t)i;
            n++;
        }
    }
    caimg_tiff_close(t);
    free(page);
    free(f);
    if (!rc) rc = set_from_pairs(pairs, n, Y, X, out);
    free(pairs);
    return rc;
}

static int read_imagej(const char *path, size_t Y, size_t X, caimg_roiset **out)
{
    caimg_ijroi *rois = NULL;
    size_t n = 0;
    int rc = caimg_ijroi_read(path, &rois, &n);
    if (rc) return rc;
    uint8_t *mask = caimg_malloc(Y * X, 1, "an ROI mask");
    caimg_roiset *r = caimg_roiset_alloc(Y, X);
    int32_t *yx = caimg_malloc(2 * Y * X, sizeof *yx, "an ROI mask");
    if (!mask || !r || !yx) rc = CAIMG_ENOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        const caimg_ijroi *q = &rois[i];
        if (q->top < 0 || q->left < 0 || (size_t)q->bottom > Y || (size_t)q->right > X) {
            rc = caimg_error(CAIMG_EFORMAT, "%s: ROI '%s' spans rows %d-%d and columns %d-%d, "
                             "outside the %zux%zu movie (height x width)", path, q->name,
                             q->top, q->bottom - 1, q->left, q->right - 1, Y, X);
            break;
        }
        memset(mask, 0, Y * X);
        long np = caimg_ijroi_rasterize(q, Y, X, mask);
        if (np < 0) {
            rc = (int)np;
            caimg_error_prefix(path);
            break;
        }
        if (np == 0) {
            rc = caimg_error(CAIMG_EFORMAT, "%s: ROI '%s' covers no pixel centre", path, q->name);
            break;
        }
        size_t m = 0;
        for (size_t g = 0; g < Y * X; g++)
            if (mask[g]) {
                yx[2 * m] = (int32_t)(g / X);
                yx[2 * m + 1] = (int32_t)(g % X);
                m++;
            }
        rc = caimg_roiset_add(r, m, yx, NULL, NAN, 0);
    }
    free(mask);
    free(yx);
    caimg_ijroi_free(rois, n);
    if (rc) { caimg_roiset_free(r); return rc; }
    *out = r;
    return 0;
}

int caimg_roi_masks_read(const char *path, size_t height, size_t width, caimg_roiset **out)
{
    *out = NULL;
    caimg_init();
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return caimg_error(CAIMG_ENOENT, "%s: cannot open: %s", path, strerror(errno));
    unsigned char mg[4] = {0};
    size_t got = fread(mg, 1, 4, fp);
    fclose(fp);
    if (got == 4 && ((mg[0] == 'I' && mg[1] == 'I') || (mg[0] == 'M' && mg[1] == 'M')))
        return read_label_tiff(path, height, width, out);
    if (got == 4 && ((mg[0] == 'P' && mg[1] == 'K') || !memcmp(mg, "Iout", 4)))
        return read_imagej(path, height, width, out);
    return caimg_error(CAIMG_EFORMAT, "%s: neither a label TIFF nor an ImageJ .roi/.zip file",
                       path);
}

/* ---- the seeded method ------------------------------------------------------ */

static int seeded_detect(const caimg_roi_params *p, const caimg_roi_summary *s,
                         caimg_roi_binned *binned, caimg_roiset **out)
{
    (void)binned;
    if (!p->masks)
        return caimg_error(CAIMG_EINVAL, "the seeded method needs user masks (--masks FILE)");
    int rc = caimg_roi_masks_read(p->masks, s->height, s->width, out);
    if (!rc && (*out)->n == 0) caimg_warn("%s: holds no ROIs", p->masks);
    if (!rc) {
        size_t box[4] = {0, s->height, 0, s->width};
        if (p->valid[1] > 0) memcpy(box, p->valid, sizeof box);
        rc = roi_anatomy(p, s, box, *out, 0, NULL, NULL, NULL);
        if (rc) {
            caimg_roiset_free(*out);
            *out = NULL;
        }
    }
    return rc;
}

const caimg_roi_type roi_seeded_type = {
    "seeded", "user masks (label TIFF or ImageJ ROIs, --masks); traces only", 0, seeded_detect
};
const caimg_roi_type *const caimg_roi_seeded = &roi_seeded_type;

void roi_roiset_drop(caimg_roiset *r, const uint8_t *drop)
{
    size_t n = 0;
    int64_t m = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (drop[i]) continue;
        int64_t a = r->pix_start[i], b = r->pix_start[i + 1];
        memmove(r->pix_index + 2 * m, r->pix_index + 2 * a, (size_t)(b - a) * 2 * sizeof *r->pix_index);
        memmove(r->pix_weight + m, r->pix_weight + a, (size_t)(b - a) * sizeof *r->pix_weight);
        memmove(r->stats + n * CAIMG_ROI_NSTATS, r->stats + i * CAIMG_ROI_NSTATS,
                CAIMG_ROI_NSTATS * sizeof *r->stats);
        r->pix_start[n] = m;
        m += b - a;
        n++;
    }
    r->pix_start[n] = m;
    r->n = n;
}

double caimg_roiset_diameter(const caimg_roiset *r)
{
    if (!r->n) return 0;
    float *d = caimg_malloc(r->n, sizeof *d, "mask sizes");
    if (!d) return 0;
    for (size_t i = 0; i < r->n; i++)
        d[i] = (float)(2 * sqrt((double)(r->pix_start[i + 1] - r->pix_start[i]) / M_PI));
    double m = roi_median(d, r->n);
    free(d);
    return floor(10 * CAIMG_MAX(1, m) + 0.5) / 10;
}
