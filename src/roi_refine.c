/* roi_refine.c -- refinement of the candidate cells by a constrained
 * non-negative matrix factorisation of the binned movie and the mean image
 * together (after CNMF, Pnevmatikakis et al. 2016, with the mean image as
 * a second, static view of the same footprints).
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Why: the candidates come from two sources that each see a cell only in
 * part.  A footprint grown from activity is outlined on a noisy average of
 * a few active bins, so it is often only the bright core of the soma; an
 * ellipse fitted to the mean image does not know that a neighbour overlaps
 * it.  Both views are explained by the same spatial footprint a(x) >= 0 of
 * each cell: its activity c(t) >= 0 in the binned movie X and its resting
 * brightness s >= 0 in the high-passed mean image M,
 *
 *     X(x, t) = sum_k a_k(x) c_k(t) / sigma(x) + noise,
 *     M(x)    = sum_k a_k(x) s_k + texture,
 *
 * where sigma(x) is the per-pixel noise s.d. by which the detector divided
 * the movie (so its noise is white with unit variance) and the texture of
 * the neuropil in M is measured by its local mean absolute value nu(x).
 * Dividing M by nu puts both views in noise units, so the footprint's
 * least-squares update weighs each by what it knows: at a pixel,
 *
 *     a(x) = [sum_t R(x,t) c_t / sigma + Mr(x) s / nu^2]
 *            / [|c|^2 / sigma^2 + s^2 / nu^2],
 *
 * R and Mr being the residuals with every other component taken out (so a
 * brighter overlapping neighbour is explained away).  The updates are the
 * block-coordinate (HALS) steps: for each component in turn its trace, its
 * resting brightness and its footprint, each the non-negative least-squares
 * solution with everything else fixed.  The footprint is kept to the
 * candidate's neighbourhood (its mask grown by DILATE pixels), smoothed
 * lightly (s.d. 1 px, against the noise of single pixels), cut at CUT of
 * its peak and restricted to the connected part containing the peak.
 * Components whose footprint vanishes explain nothing and are dropped.
 *
 * Somata found in the mean image only (roi_anatomy.c) are components with a
 * fixed footprint, the fitted soma model: their trace and resting
 * brightness are fitted, so they explain their pixels away for their
 * neighbours, but their shape is not re-estimated.  Such a soma is mostly
 * silent and dim, and a parametric ellipse fitted to it is a better outline
 * than a free footprint at that signal: on caimg simulate's hard fields a
 * free footprint lowered their mean IoU with the true somata from 0.84 to
 * 0.78, while it raises that of the cells found from activity (0.77-0.84
 * to 0.85-0.88).  They keep their mask and weights.
 *
 * Components with disjoint windows are updated in parallel: they are
 * coloured greedily so that no two of one colour overlap.
 *
 * Memory: the residual is the binned movie itself (the detector's copy,
 * modified in place), plus a trace of nb floats and a small window per
 * component, so nothing grows with the number of frames beyond the binned
 * movie's own bound.
 */
#include <config.h>

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "caimg/error.h"
#include "roi_internal.h"

#define ITERS 5             /* sweeps over all components */
#define DILATE 2            /* px: how far a footprint may grow beyond its
                             * candidate's mask */
#define CUT 0.1             /* footprint support: fraction of its peak */
#define SMOOTH_A 1.0        /* px: s.d. of the footprint's smoothing */
#define OUTLINE 0.45        /* the ROI mask: fraction of the footprint's 90th
                             * percentile (the peak of a noisy footprint is
                             * biased high, a high quantile is not) */
#define OUTLINE_SMOOTH 0.5  /* px: smoothing before outlining */

struct roi_comp {
    size_t wy, wx, wh, ww;  /* window in the crop */
    float *a;               /* [wh*ww] footprint (raw units, max 1) */
    uint8_t *sup;           /* [wh*ww] where it may be nonzero */
    float *c;               /* [nb] activity in the binned movie */
    double s;               /* resting brightness in the mean image */
    int keep;               /* 0: only to be added back to the movie */
    int fixed;              /* the footprint is held fixed (a fitted soma) */
    int colour;
    size_t roi;             /* ROI of the candidate set it refines */
};

struct roi_comps {
    size_t n, cap, nb, h, w;
    struct roi_comp *v;
};

roi_comps *roi_comps_alloc(size_t nb, size_t h, size_t w)
{
    roi_comps *C = caimg_calloc(1, sizeof *C, "components");
    if (!C) return NULL;
    C->nb = nb;
    C->h = h;
    C->w = w;
    return C;
}

void roi_comps_free(roi_comps *C)
{
    if (!C) return;
    for (size_t i = 0; i < C->n; i++) {
        free(C->v[i].a);
        free(C->v[i].sup);
        free(C->v[i].c);
    }
    free(C->v);
    free(C);
}

/* Window of a set of crop pixels grown by `margin`, clipped to the crop. */
static void window_of(const roi_comps *C, size_t n, const size_t *pix, size_t margin,
                      struct roi_comp *k)
{
    size_t y0 = SIZE_MAX, y1 = 0, x0 = SIZE_MAX, x1 = 0;
    for (size_t j = 0; j < n; j++) {
        size_t y = pix[j] / C->w, x = pix[j] % C->w;
        y0 = CAIMG_MIN(y0, y); y1 = CAIMG_MAX(y1, y + 1);
        x0 = CAIMG_MIN(x0, x); x1 = CAIMG_MAX(x1, x + 1);
    }
    k->wy = y0 > margin ? y0 - margin : 0;
    k->wx = x0 > margin ? x0 - margin : 0;
    k->wh = CAIMG_MIN(C->h, y1 + margin) - k->wy;
    k->ww = CAIMG_MIN(C->w, x1 + margin) - k->wx;
}

int roi_comps_add(roi_comps *C, size_t n, const size_t *pix, const float *ax, const float *sig,
                  const float *c, int keep, int fixed, size_t roi)
{
    if (n == 0) return 0;
    if (C->n == C->cap) {
        size_t cap = C->cap ? 2 * C->cap : 64;
        struct roi_comp *v = realloc(C->v, cap * sizeof *v);
        if (!v) return caimg_error(CAIMG_ENOMEM, "out of memory for the components");
        C->v = v;
        C->cap = cap;
    }
    struct roi_comp *k = &C->v[C->n];
    memset(k, 0, sizeof *k);
    /* The window leaves room for the footprint to grow by DILATE and for
     * the smoothing to reach beyond it. */
    window_of(C, n, pix, DILATE + 2, k);
    size_t wn = k->wh * k->ww;
    k->a = caimg_calloc(wn, sizeof *k->a, "a component");
    k->sup = caimg_calloc(wn, 1, "a component");
    k->c = caimg_calloc(C->nb, sizeof *k->c, "a component");
    if (!k->a || !k->sup || !k->c) {
        free(k->a);
        free(k->sup);
        free(k->c);
        return CAIMG_ENOMEM;
    }
    /* Footprint in raw units: the movie's footprint times each pixel's
     * noise s.d.; scaled to a peak of 1, the trace the other way, so their
     * product (what was subtracted from the movie) is unchanged. */
    float amax = 0;
    for (size_t j = 0; j < n; j++) {
        size_t y = pix[j] / C->w - k->wy, x = pix[j] % C->w - k->wx;
        float v = ax[j] > 0 && sig[pix[j]] > 0 ? ax[j] * sig[pix[j]] : 0;
        k->a[y * k->ww + x] = v;
        k->sup[y * k->ww + x] = 1;
        amax = CAIMG_MAX(amax, v);
    }
    if (!(amax > 0) && !fixed) {
        free(k->a);
        free(k->sup);
        free(k->c);
        return 0;
    }
    /* A fixed footprint without a usable pixel (noise s.d. 0 throughout)
     * stays all 0: it explains nothing, but its ROI is kept. */
    if (amax > 0) {
        for (size_t j = 0; j < wn; j++) k->a[j] /= amax;
        if (c)
            for (size_t t = 0; t < C->nb; t++) k->c[t] = c[t] * amax;
    }
    /* The neighbourhood the footprint may occupy: the mask grown by DILATE
     * pixels (4-connected steps, so it grows as a diamond). */
    for (int it = 0; it < DILATE; it++) {
        uint8_t *grow = caimg_malloc(wn, 1, "a component");
        if (!grow) {
            free(k->a);
            free(k->sup);
            free(k->c);
            return CAIMG_ENOMEM;
        }
        memcpy(grow, k->sup, wn);
        for (size_t y = 0; y < k->wh; y++)
            for (size_t x = 0; x < k->ww; x++) {
                if (!k->sup[y * k->ww + x]) continue;
                for (long dy = -1; dy <= 1; dy++)
                    for (long dx = -1; dx <= 1; dx++) {
                        long yy = (long)y + dy, xx = (long)x + dx;
                        if (dy && dx) continue;   /* 4-connected steps */
                        if (yy >= 0 && xx >= 0 && yy < (long)k->wh && xx < (long)k->ww)
                            grow[(size_t)yy * k->ww + (size_t)xx] = 1;
                    }
            }
        memcpy(k->sup, grow, wn);
        free(grow);
    }
    k->keep = keep;
    k->fixed = fixed;
    k->roi = roi;
    C->n++;
    return 0;
}

void roi_comps_drop(roi_comps *C, size_t roi)
{
    for (size_t i = 0; i < C->n; i++)
        if (C->v[i].keep && C->v[i].roi == roi) C->v[i].keep = 0;
}

/* Greedy colouring: no two components of one colour have overlapping
 * windows.  Returns the number of colours. */
static int colour(roi_comps *C)
{
    int ncol = 0;
    uint8_t *used = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < C->n; i++) {
        struct roi_comp *a = &C->v[i];
        if ((size_t)ncol + 1 > cap) {
            size_t nc = 2 * (size_t)ncol + 8;
            uint8_t *u = realloc(used, nc);
            if (!u) { free(used); return -1; }
            used = u;
            cap = nc;
        }
        memset(used, 0, cap);
        for (size_t j = 0; j < i; j++) {
            const struct roi_comp *b = &C->v[j];
            if (a->wy < b->wy + b->wh && b->wy < a->wy + a->wh && a->wx < b->wx + b->ww
                && b->wx < a->wx + a->ww)
                used[b->colour] = 1;
        }
        int col = 0;
        while (col < ncol && used[col]) col++;
        a->colour = col;
        if (col == ncol) ncol++;
    }
    free(used);
    return ncol;
}

/* Per-thread work space. */
typedef struct {
    float *rp;              /* [nb][ns] residual of the support plus the component */
    float *num, *tmp, *sm;  /* [wn] */
    uint8_t *mask, *keep;   /* [wn] */
    int32_t *stack;         /* [wn] */
    size_t *js, *gs;        /* [ns] support pixels: in the window, in the crop */
    float *u;               /* [ns] footprint in the movie's units, a / sigma */
} ws;

/* The support of k as pixel lists (so the loops over bins need no index
 * arithmetic) and its footprint in the movie's units.  Returns ns. */
static size_t support(const roi_comps *C, const struct roi_comp *k, const float *sig, ws *W)
{
    size_t ns = 0;
    for (size_t y = 0; y < k->wh; y++)
        for (size_t x = 0; x < k->ww; x++) {
            size_t j = y * k->ww + x;
            if (!k->sup[j]) continue;
            size_t g = (k->wy + y) * C->w + k->wx + x;
            W->js[ns] = j;
            W->gs[ns] = g;
            W->u[ns] = sig[g] > 0 ? k->a[j] / sig[g] : 0.0f;
            ns++;
        }
    return ns;
}

/* The movie's residual on k's support: the residual with k added back
 * (W->rp) less k's current contribution. */
static void put_back(const roi_comps *C, const struct roi_comp *k, float *x, const float *sig,
                     size_t ns, ws *W)
{
    size_t nb = C->nb, hw = C->h * C->w;
    for (size_t q = 0; q < ns; q++) {
        size_t g = W->gs[q];
        W->u[q] = sig[g] > 0 ? k->a[W->js[q]] / sig[g] : 0.0f;
    }
    for (size_t t = 0; t < nb; t++) {
        float *xt = x + t * hw;
        const float *r = W->rp + t * ns;
        float ct = k->c[t];
        for (size_t q = 0; q < ns; q++) xt[W->gs[q]] = r[q] - ct * W->u[q];
    }
}

/* One HALS step for component k: its trace, resting brightness and
 * footprint, each the non-negative least-squares solution with the rest
 * fixed; the residuals x (the movie) and mres (the mean image) are updated.
 * The footprint is 0 outside its support, so only the support is visited.
 * Returns 1 when the footprint vanished. */
static int hals_one(const roi_comps *C, struct roi_comp *k, float *x, float *mres,
                    const float *sig, const float *nu, ws *W)
{
    size_t nb = C->nb, hw = C->h * C->w, wn = k->wh * k->ww, ww = k->ww;
    size_t ns = support(C, k, sig, W);
    /* The support's residual with the component added back. */
    for (size_t t = 0; t < nb; t++) {
        const float *xt = x + t * hw;
        float *r = W->rp + t * ns;
        float ct = k->c[t];
        for (size_t q = 0; q < ns; q++) r[q] = xt[W->gs[q]] + ct * W->u[q];
    }
    /* Trace: the footprint's least-squares amplitude in each bin, >= 0;
     * brightness: the same in the mean image. */
    double nx = 0, snum = 0, sden = 0;
    for (size_t q = 0; q < ns; q++) {
        size_t j = W->js[q], g = W->gs[q];
        nx += (double)W->u[q] * W->u[q];
        double mp = mres[g] + k->s * k->a[j], inv = 1.0 / ((double)nu[g] * nu[g]);
        snum += mp * k->a[j] * inv;
        sden += (double)k->a[j] * k->a[j] * inv;
    }
    for (size_t t = 0; t < nb; t++) {
        const float *r = W->rp + t * ns;
        double sc = 0;
        for (size_t q = 0; q < ns; q++) sc += r[q] * W->u[q];
        k->c[t] = nx > 0 && sc > 0 ? (float)(sc / nx) : 0.0f;
    }
    double s_new = sden > 0 && snum > 0 ? snum / sden : 0;
    if (k->fixed) {
        /* Only the activity and the brightness move; the residuals take the
         * change. */
        for (size_t q = 0; q < ns; q++)
            mres[W->gs[q]] += (float)((k->s - s_new) * k->a[W->js[q]]);
        k->s = s_new;
        put_back(C, k, x, sig, ns, W);
        return 0;
    }
    /* Footprint: both views, each in its noise units. */
    double cc = 0;
    for (size_t t = 0; t < nb; t++) cc += (double)k->c[t] * k->c[t];
    float *acc = W->sm;     /* scratch until the smoothing */
    for (size_t q = 0; q < ns; q++) acc[q] = 0;
    for (size_t t = 0; t < nb; t++) {
        float ct = k->c[t];
        if (ct == 0) continue;
        const float *r = W->rp + t * ns;
        for (size_t q = 0; q < ns; q++) acc[q] += ct * r[q];
    }
    for (size_t j = 0; j < wn; j++) W->num[j] = 0;
    for (size_t q = 0; q < ns; q++) {
        size_t j = W->js[q], g = W->gs[q];
        double sg = sig[g], inv = 1.0 / ((double)nu[g] * nu[g]);
        double mp = mres[g] + k->s * k->a[j];
        double num = (sg > 0 ? acc[q] / sg : 0) + mp * s_new * inv;
        double den = (sg > 0 ? cc / (sg * sg) : 0) + s_new * s_new * inv;
        W->num[j] = den > 0 && num > 0 ? (float)(num / den) : 0.0f;
    }
    /* Smoothed, cut at CUT of the peak, the part connected to the peak
     * (holes filled: the nucleus belongs to the cell). */
    roi_gauss_blur(W->num, W->sm, k->wh, ww, SMOOTH_A, W->tmp);
    float peak = 0;
    size_t pk = 0;
    for (size_t j = 0; j < wn; j++) {
        if (!k->sup[j]) W->sm[j] = 0;
        if (W->sm[j] > peak) { peak = W->sm[j]; pk = j; }
    }
    /* Take the old footprint out of the static residual, then put the new
     * one in (and the same in the movie below). */
    for (size_t q = 0; q < ns; q++) mres[W->gs[q]] += (float)(k->s * k->a[W->js[q]]);
    int gone = !(peak > 0);
    if (!gone) {
        for (size_t j = 0; j < wn; j++) W->mask[j] = W->sm[j] >= (float)CUT * peak;
        roi_component(W->mask, k->wh, ww, pk, W->stack, W->keep);
        roi_fill_holes(W->mask, k->wh, ww, W->stack);
        for (size_t j = 0; j < wn; j++) {
            W->mask[j] &= k->sup[j];
            k->a[j] = W->mask[j] ? CAIMG_MAX(W->sm[j], (float)CUT * peak) / peak : 0.0f;
        }
        /* The scale moves from the footprint (now max 1) to c and s. */
        for (size_t t = 0; t < nb; t++) k->c[t] *= peak;
        k->s = s_new * peak;
    } else {
        for (size_t j = 0; j < wn; j++) k->a[j] = 0;
        for (size_t t = 0; t < nb; t++) k->c[t] = 0;
        k->s = 0;
    }
    for (size_t q = 0; q < ns; q++) mres[W->gs[q]] -= (float)(k->s * k->a[W->js[q]]);
    put_back(C, k, x, sig, ns, W);
    return gone;
}

/* The static view: the mean image of the crop less its background (a
 * Gaussian of 1.5 d, as the mean-image search uses), into m, and its
 * texture level nu (1.2533 times the mean absolute value over a Gaussian of
 * 3 d: the s.d. for Gaussian texture), floored at a tenth of its mean. */
static int static_view(const caimg_roi_summary *s, size_t y0, size_t x0, size_t h, size_t w,
                       double d, float *m, float *nu)
{
    size_t hw = h * w;
    float *tmp = caimg_malloc(hw, sizeof *tmp, "the static view");
    if (!tmp) return CAIMG_ENOMEM;
    for (size_t y = 0; y < h; y++)
        memcpy(m + y * w, s->mean + (y + y0) * s->width + x0, w * sizeof *m);
    roi_gauss_blur(m, nu, h, w, 1.5 * d, tmp);
    for (size_t i = 0; i < hw; i++) {
        m[i] -= nu[i];
        nu[i] = fabsf(m[i]);
    }
    roi_gauss_blur(nu, nu, h, w, 3 * d, tmp);
    double tot = 0;
    for (size_t i = 0; i < hw; i++) tot += nu[i];
    float fl = (float)(0.1 * tot / (double)hw) + 1e-20f;
    for (size_t i = 0; i < hw; i++) nu[i] = 1.2533f * nu[i] + fl;
    free(tmp);
    return 0;
}

int roi_refine(const caimg_roi_params *p, const caimg_roi_summary *s, size_t y0, size_t x0,
               float *x, const float *sig, roi_comps *C, caimg_roiset **r)
{
    size_t h = C->h, w = C->w, hw = h * w, nb = C->nb;
    caimg_roiset *in = *r, *out = NULL;
    float *m = caimg_malloc(hw, sizeof *m, "the static view");
    float *nu = caimg_malloc(hw, sizeof *nu, "the static view");
    size_t maxwn = 0;
    int nt = caimg_nthreads(), rc = 0;
    ws *W = caimg_calloc((size_t)nt, sizeof *W, "work space");
    int32_t *yx = NULL;
    float *wt = NULL;
    if (!m || !nu || !W) { rc = CAIMG_ENOMEM; goto out; }
    rc = static_view(s, y0, x0, h, w, p->diameter, m, nu);
    if (rc) goto out;
    /* Components that are not kept (candidates rejected by the detector)
     * go back into the movie and out of the model. */
    size_t n = 0;
    for (size_t i = 0; i < C->n; i++) {
        struct roi_comp *k = &C->v[i];
        if (!k->keep) {
            for (size_t t = 0; t < nb; t++) {
                float *xt = x + t * hw;
                for (size_t j = 0; j < k->wh * k->ww; j++) {
                    size_t g = (k->wy + j / k->ww) * w + k->wx + j % k->ww;
                    if (k->a[j] > 0 && sig[g] > 0) xt[g] += k->c[t] * k->a[j] / sig[g];
                }
            }
            free(k->a);
            free(k->sup);
            free(k->c);
            continue;
        }
        C->v[n++] = *k;
    }
    C->n = n;
    for (size_t i = 0; i < n; i++) maxwn = CAIMG_MAX(maxwn, C->v[i].wh * C->v[i].ww);
    int ncol = colour(C);
    if (ncol < 0) { rc = caimg_error(CAIMG_ENOMEM, "out of memory ordering the components"); goto out; }
    for (int t = 0; t < nt; t++) {
        W[t].rp = caimg_malloc(nb * maxwn + 1, sizeof *W[t].rp, "work space");
        W[t].num = caimg_malloc(maxwn + 1, sizeof(float), "work space");
        W[t].tmp = caimg_malloc(maxwn + 1, sizeof(float), "work space");
        W[t].sm = caimg_malloc(maxwn + 1, sizeof(float), "work space");
        W[t].mask = caimg_malloc(maxwn + 1, 1, "work space");
        W[t].keep = caimg_malloc(maxwn + 1, 1, "work space");
        W[t].stack = caimg_malloc(maxwn + 1, sizeof(int32_t), "work space");
        W[t].js = caimg_malloc(maxwn + 1, sizeof(size_t), "work space");
        W[t].gs = caimg_malloc(maxwn + 1, sizeof(size_t), "work space");
        W[t].u = caimg_malloc(maxwn + 1, sizeof(float), "work space");
        if (!W[t].rp || !W[t].num || !W[t].tmp || !W[t].sm || !W[t].mask || !W[t].keep
            || !W[t].stack || !W[t].js || !W[t].gs || !W[t].u) {
            rc = CAIMG_ENOMEM;
            goto out;
        }
    }
    /* Components in order of colour, so each colour is one parallel loop. */
    size_t *order = caimg_malloc(n + 1, sizeof *order, "components");
    size_t *cstart = caimg_calloc((size_t)ncol + 2, sizeof *cstart, "components");
    if (!order || !cstart) { free(order); free(cstart); rc = CAIMG_ENOMEM; goto out; }
    for (size_t i = 0; i < n; i++) cstart[C->v[i].colour + 1]++;
    for (int c = 0; c < ncol; c++) cstart[c + 1] += cstart[c];
    {
        size_t *fill = caimg_malloc((size_t)ncol + 1, sizeof *fill, "components");
        if (!fill) { free(order); free(cstart); rc = CAIMG_ENOMEM; goto out; }
        memcpy(fill, cstart, (size_t)ncol * sizeof *fill);
        for (size_t i = 0; i < n; i++) order[fill[C->v[i].colour]++] = i;
        free(fill);
    }
    /* The static residual starts as the whole image: every resting
     * brightness is 0 until the first sweep fits it. */
    for (int it = 0; it < ITERS; it++) {
        for (int c = 0; c < ncol; c++) {
#pragma omp parallel for schedule(dynamic, 1)
            for (size_t q = cstart[c]; q < cstart[c + 1]; q++) {
                int tid = 0;
#ifdef _OPENMP
                tid = omp_get_thread_num();
#endif
                hals_one(C, &C->v[order[q]], x, m, sig, nu, &W[tid]);
            }
        }
        rc = caimg_progress("refining cells", (double)(it + 1), (double)ITERS);
        if (rc) { free(order); free(cstart); goto out; }
    }
    free(order);
    free(cstart);

    /* The ROIs: each footprint outlined at OUTLINE of its (lightly
     * smoothed) peak, the part connected to the peak, holes filled; the
     * weights are the footprint there (raw units).  Statistics of the
     * candidate (score, source, contrast, fit, nucleus) are carried over. */
    out = caimg_roiset_alloc(in->height, in->width);
    yx = caimg_malloc(2 * maxwn + 2, sizeof *yx, "a footprint");
    wt = caimg_malloc(maxwn + 1, sizeof *wt, "a footprint");
    if (!out || !yx || !wt) { rc = CAIMG_ENOMEM; goto out; }
    for (size_t i = 0; i < n; i++) {
        struct roi_comp *k = &C->v[i];
        size_t wn = k->wh * k->ww;
        ws *S = &W[0];
        const double *st = in->stats + k->roi * CAIMG_ROI_NSTATS;
        if (k->fixed) {
            /* A fitted soma keeps its mask and weights. */
            int64_t p0 = in->pix_start[k->roi], p1 = in->pix_start[k->roi + 1];
            rc = caimg_roiset_add(out, (size_t)(p1 - p0), in->pix_index + 2 * p0,
                                  in->pix_weight + p0, st[CAIMG_ROI_SCORE],
                                  (int)st[CAIMG_ROI_SOURCE]);
            if (rc == CAIMG_EINVAL) { rc = 0; continue; }
            if (rc) goto out;
            double *so = out->stats + (out->n - 1) * CAIMG_ROI_NSTATS;
            so[CAIMG_ROI_CONTRAST] = st[CAIMG_ROI_CONTRAST];
            so[CAIMG_ROI_FIT] = st[CAIMG_ROI_FIT];
            so[CAIMG_ROI_NUCLEUS] = st[CAIMG_ROI_NUCLEUS];
            continue;
        }
        roi_gauss_blur(k->a, S->sm, k->wh, k->ww, OUTLINE_SMOOTH, S->tmp);
        float peak = 0;
        size_t pk = 0;
        for (size_t j = 0; j < wn; j++)
            if (k->sup[j] && S->sm[j] > peak) { peak = S->sm[j]; pk = j; }
        if (!(peak > 0)) continue;
        size_t np = 0;
        for (size_t j = 0; j < wn; j++)
            if (k->sup[j] && S->sm[j] > 0) S->num[np++] = S->sm[j];
        float ref = roi_select(S->num, np, (size_t)(0.9 * (double)(np - 1)));
        for (size_t j = 0; j < wn; j++) S->mask[j] = k->sup[j] && S->sm[j] >= (float)OUTLINE * ref;
        roi_component(S->mask, k->wh, k->ww, pk, S->stack, S->keep);
        roi_fill_holes(S->mask, k->wh, k->ww, S->stack);
        size_t mm = 0;
        float amax = 0;
        for (size_t j = 0; j < wn; j++) amax = CAIMG_MAX(amax, k->a[j]);
        for (size_t j = 0; j < wn; j++) {
            if (!S->mask[j]) continue;
            yx[2 * mm] = (int32_t)(k->wy + j / k->ww + y0);
            yx[2 * mm + 1] = (int32_t)(k->wx + j % k->ww + x0);
            wt[mm] = CAIMG_MAX(k->a[j], 0.05f * amax);
            mm++;
        }
        rc = caimg_roiset_add(out, mm, yx, wt, st[CAIMG_ROI_SCORE], (int)st[CAIMG_ROI_SOURCE]);
        if (rc == CAIMG_EINVAL) { rc = 0; continue; }
        if (rc) goto out;
        double *so = out->stats + (out->n - 1) * CAIMG_ROI_NSTATS;
        so[CAIMG_ROI_CONTRAST] = st[CAIMG_ROI_CONTRAST];
        so[CAIMG_ROI_FIT] = st[CAIMG_ROI_FIT];
        so[CAIMG_ROI_NUCLEUS] = st[CAIMG_ROI_NUCLEUS];
    }
    out->soma_diameter = in->soma_diameter;
    caimg_roiset_free(in);
    *r = out;
    out = NULL;
out:
    caimg_roiset_free(out);
    for (int t = 0; W && t < nt; t++) {
        free(W[t].rp);
        free(W[t].num);
        free(W[t].tmp);
        free(W[t].sm);
        free(W[t].mask);
        free(W[t].keep);
        free(W[t].stack);
        free(W[t].js);
        free(W[t].gs);
        free(W[t].u);
    }
    free(W);
    free(m);
    free(nu);
    free(yx);
    free(wt);
    return rc;
}
