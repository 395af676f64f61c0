/* roi_detect.c -- the activity method: cells found from their activity in
 * the temporally binned movie, one at a time, until what remains is noise;
 * then somata seen in the mean image (roi_anatomy.c).
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * The method (after Suite2p's "sparsery", Pachitariu et al. 2017, with a
 * significance that is calibrated in noise units):
 *
 *  1. Each pixel of the binned movie (bins of about one decay time, so a
 *     transient falls in one or two bins) is high-passed in time (a running
 *     mean over `highpass` seconds is subtracted: bleaching, slow drift) and
 *     turned into relative changes (divided by its resting brightness above
 *     the detector offset, so the neuropil's activity, which multiplies the
 *     fine pattern of the neuropil, becomes smooth); a box mean over 1.5
 *     cell diameters is subtracted from every bin (the neuropil is smooth
 *     on that scale, somata are not); and each pixel is divided by its noise
 *     s.d., estimated robustly from bin-to-bin changes, so every pixel has
 *     unit noise whatever its brightness.
 *  2. The matched filter for a soma, a Gaussian of s.d. d/4, turns each bin
 *     into u; u / nu is a z-score, nu being the robust noise s.d. of u
 *     measured on the data (so slow neuropil fluctuations and spatially
 *     correlated noise, e.g. from motion correction, count as noise), with
 *     the filter's larger noise near the borders accounted for.
 *  3. Activity at a pixel is E = sum over bins of z - theta0 for z > theta0
 *     (theta0 = 1.5): only excursions above the noise count, as calcium
 *     transients are sparse and positive, and no single bin dominates.  For
 *     pure noise the mean and s.d. of E are known (roi_phi_moments), which
 *     makes S = (E - mean) / sd a significance in noise units.
 *  4. Repeatedly: take the pixel of largest S; while S >= threshold, grow a
 *     cell there: its trace is the footprint-weighted sum of the movie, its
 *     active bins those where the trace exceeds 2.5 robust s.d., its
 *     footprint the mean of the movie over the active bins, thresholded at
 *     0.3 of its peak, restricted to the connected part containing the
 *     peak, with holes (the dim nucleus) filled; three rounds.  It is a cell
 *     if it is neither tiny nor too large, not mostly an earlier cell, and
 *     compact (its activity falls off beyond its edge).  Its least-squares
 *     contribution (footprint x trace) is then subtracted from the movie in
 *     any case and S is recomputed around it, so a neighbour that overlaps
 *     it can be found next, and nothing is found twice.
 *
 * The footprint weights are converted back to raw units (multiplied by each
 * pixel's noise s.d.) for the traces.
 *
 * Method activity then refines the cells of both sources jointly, with the
 * mean image as a second view of their footprints (roi_refine.c); method
 * activity-classic stops here.  Every candidate, kept or not, is recorded
 * with what was subtracted for it, so the refinement starts from the
 * movie's residual.
 */
#include <config.h>

#include <math.h>
#include <string.h>

#include "caimg/error.h"
#include "roi_internal.h"

/* Fixed constants of the method, documented in caimg-roi(1). */
#define THETA0 1.5          /* noise units: the activity statistic's floor */
#define THETA_ACTIVE 2.5    /* robust s.d.: bins that define a footprint */
#define FOOT_FRAC 0.3       /* footprint outline, fraction of its peak */
#define HP_SPATIAL 1.5      /* spatial high-pass box, in diameters */
#define SMOOTH 0.25         /* matched-filter s.d., in diameters */
#define ROUNDS 3            /* footprint refinement rounds per cell */
#define RING_MAX 0.3        /* a cell's activity falls off beyond its edge */
#define MAX_AREA 2.5        /* a cell is at most this many expected areas */
#define MIN_BINS 50         /* fewer time bins cannot tell activity from noise */

typedef struct {
    const caimg_roi_params *p;
    size_t nb, h, w, hw;
    float *x;               /* [nb][h][w], normalised and high-passed in place */
    float *sig;             /* [hw] noise s.d. of each pixel in raw units */
    float *rel;             /* [hw] 1 / resting brightness above the offset */
    double offset;          /* detector offset from the photon transfer curve */
    size_t bin;             /* frames per bin */
    float *S;               /* [hw] significance */
    float *own;             /* [hw] own-light map (prep_spatial()) */
    double sigma_s;         /* matched filter */
    size_t rblur;           /* its radius, ceil(3 sigma_s) */
    double nu;              /* noise s.d. of the filtered movie (interior) */
    float *ny, *nx;         /* [h], [w]: relative noise s.d. of the filter near
                             * the borders, where it averages fewer pixels */
    double m1, sd1;         /* mean and s.d. of E for pure noise */
} det;

/* qsort of pixel indices by brightness.  qsort has no context argument in
 * C11; the key is passed through a thread-local pointer. */
static _Thread_local const float *sort_key;

static int cmp_by_key(const void *a, const void *b)
{
    float x = sort_key[*(const size_t *)a], y = sort_key[*(const size_t *)b];
    return (x > y) - (x < y);
}

static void qsort_r_mean(size_t *ord, size_t n, const float *key)
{
    sort_key = key;
    qsort(ord, n, sizeof *ord, cmp_by_key);
    sort_key = NULL;
}


/* Step 1, in time: high-pass and normalise each pixel.  Pixels are taken
 * in tiles whose time series are copied out contiguously. */
static int prep_temporal(det *D, size_t whp)
{
    const size_t TILE = 128;
    size_t nb = D->nb, hw = D->hw;
    int err = 0;
#pragma omp parallel
    {
        float *ts = malloc(TILE * nb * sizeof *ts);
        float *scr = malloc((nb + 1) * sizeof *scr);
        double *cum = malloc((nb + 1) * sizeof *cum);
        if (!ts || !scr || !cum) {
#pragma omp atomic write
            err = 1;
        }
#pragma omp for schedule(dynamic, 4)
        for (size_t p0 = 0; p0 < hw; p0 += TILE) {
            if (!ts || !scr || !cum) continue;
            size_t np = CAIMG_MIN(TILE, hw - p0);
            for (size_t k = 0; k < nb; k++) {
                const float *src = D->x + k * hw + p0;
                for (size_t q = 0; q < np; q++) ts[q * nb + k] = src[q];
            }
            for (size_t q = 0; q < np; q++) {
                float *s = ts + q * nb;
                /* Centred running mean over whp bins, shortened at the ends. */
                size_t hwin = whp / 2;
                cum[0] = 0;
                for (size_t k = 0; k < nb; k++) cum[k + 1] = cum[k] + s[k];
                for (size_t k = 0; k < nb; k++) {
                    size_t a = k > hwin ? k - hwin : 0, b = CAIMG_MIN(nb, k + hwin + 1);
                    scr[k] = s[k] - (float)((cum[b] - cum[a]) / (double)(b - a));
                }
                memcpy(s, scr, nb * sizeof *s);
                float sd = 0;
                if (nb >= 3) {
                    for (size_t k = 1; k < nb; k++) scr[k - 1] = s[k] - s[k - 1];
                    float md = roi_median(scr, nb - 1);
                    for (size_t k = 0; k + 1 < nb; k++) scr[k] = fabsf(scr[k] - md);
                    sd = (float)(1.4826 * roi_median(scr, nb - 1) / sqrt(2.0));
                }
                D->sig[p0 + q] = sd;
            }
            for (size_t k = 0; k < nb; k++) {
                float *dst = D->x + k * hw + p0;
                for (size_t q = 0; q < np; q++) dst[q] = ts[q * nb + k];
            }
        }
        free(ts);
        free(scr);
        free(cum);
    }
    return err ? caimg_error(CAIMG_ENOMEM, "out of memory preparing the binned movie") : 0;
}

/* Step 1, relative changes: each pixel's changes are divided by its resting
 * brightness above the detector's offset (dF/F), so that the neuropil's
 * activity, which multiplies the fine static pattern of the neuropil and
 * the edges of vessels, becomes as smooth as that activity itself and goes
 * with the spatial high-pass, while a soma keeps its own dF/F.  The offset
 * is found from the photon transfer curve: across pixels, the variance of
 * the shot noise grows linearly with the mean, var = g (mean - offset) +
 * read noise^2, and the line is fitted to the medians of 20 groups of
 * pixels of similar brightness (the read noise is taken as small beside the
 * offset).  Without shot noise (synthetic data, or a flat line) the
 * offset is taken as 0.  `mean` is the mean image of the crop. */
static int prep_relative(det *D, const float *mean)
{
    size_t hw = D->hw, G = 20;
    float *mv = caimg_malloc(hw, sizeof *mv, "a photon transfer curve");
    size_t *ord = caimg_malloc(hw, sizeof *ord, "a photon transfer curve");
    if (!mv || !ord) {
        free(mv);
        free(ord);
        return CAIMG_ENOMEM;
    }
    /* Sort pixels by brightness (a counting sort on a fine grid would do;
     * qsort of indices keeps it simple). */
    for (size_t i = 0; i < hw; i++) ord[i] = i;
    qsort_r_mean(ord, hw, mean);
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    size_t ng = 0;
    for (size_t g = 1; g + 1 < G; g++) {   /* the extreme groups are left out */
        size_t a = g * hw / G, b = (g + 1) * hw / G, n = 0;
        if (b <= a) continue;
        for (size_t k = a; k < b; k++) mv[n++] = mean[ord[k]];
        double mx = roi_median(mv, n);
        n = 0;
        for (size_t k = a; k < b; k++) {
            double sg = D->sig[ord[k]];
            mv[n++] = (float)(sg * sg * (double)D->bin);
        }
        double my = roi_median(mv, n);
        sx += mx; sy += my; sxx += mx * mx; sxy += mx * my;
        ng++;
    }
    double off = 0;
    if (ng >= 3) {
        double gain = (sxy - sx * sy / (double)ng) / (sxx - sx * sx / (double)ng);
        double c = (sy - gain * sx) / (double)ng;
        if (gain > 0 && isfinite(gain)) off = -c / gain;
    }
    /* Resting brightness above the offset, floored at a tenth of its median
     * so that dark pixels (vessels) are not blown up. */
    for (size_t i = 0; i < hw; i++) mv[i] = mean[i] - (float)off;
    for (size_t i = 0; i < hw; i++) D->rel[i] = mv[i];
    float med = roi_median(mv, hw);
    int ok = med > 0 && isfinite(med);
    for (size_t i = 0; i < hw; i++) {
        float base = ok ? CAIMG_MAX(D->rel[i], 0.1f * med) : 1.0f;
        D->rel[i] = 1.0f / base;
    }
    D->offset = off;
    free(mv);
    free(ord);
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < D->nb; k++) {
        float *xk = D->x + k * hw;
        for (size_t i = 0; i < hw; i++) xk[i] *= D->rel[i];
    }
    return 0;
}

/* Step 1, noise units: divide each pixel by its noise s.d. (in the same
 * relative units). */
static void prep_normalise(det *D)
{
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < D->nb; k++) {
        float *xk = D->x + k * D->hw;
        for (size_t i = 0; i < D->hw; i++) {
            float sd = D->sig[i] * D->rel[i];
            xk[i] = sd > 0 ? xk[i] / sd : 0.0f;
        }
    }
}

/* Step 1, in space: subtract the local mean of each bin.  On the way, the
 * own-light map: each pixel's slope k on that local mean over the bins
 * (both relative changes, high-passed), and own = 1 - k.  The local mean
 * of a box 3 d wide is the neuropil's activity; a pixel of neuropil, its
 * static pattern however bright, follows it fully (k = 1, own = 0), while
 * a soma displaces the neuropil and adds resting light of its own that
 * does not follow it, so only part of its relative change does (own > 0,
 * the share of its light that is its own).  The per-ROI np_slope and
 * np_excess say the same of an outline; as a map it finds dim somata that
 * barely stand out from the neuropil's texture in the mean image
 * (roi_anatomy()).  The sums run over OWN_CHUNKS fixed runs of bins, each
 * in its own accumulators, added in order: the map does not depend on the
 * number of threads. */
#define OWN_CHUNKS 8
static int prep_spatial(det *D)
{
    size_t r = (size_t)(HP_SPATIAL * D->p->diameter + 0.5);
    if (r < 2) r = 2;
    size_t hw = D->hw, nc = CAIMG_MIN((size_t)OWN_CHUNKS, D->nb);
    double *acc = D->own ? caimg_calloc(2 * nc * hw, sizeof *acc, "the own-light map") : NULL;
    if (D->own && !acc) return CAIMG_ENOMEM;
    int err = 0;
#pragma omp parallel
    {
        float *tmp = malloc(hw * sizeof *tmp), *bg = malloc(hw * sizeof *bg);
        if (!tmp || !bg) {
#pragma omp atomic write
            err = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (size_t c = 0; c < nc; c++) {
            if (!tmp || !bg) continue;
            double *sxn = acc ? acc + 2 * c * hw : NULL, *snn = sxn ? sxn + hw : NULL;
            for (size_t k = c * D->nb / nc; k < (c + 1) * D->nb / nc; k++) {
                float *xk = D->x + k * hw;
                roi_box_mean(xk, bg, D->h, D->w, r, tmp);
                for (size_t i = 0; sxn && i < hw; i++) {
                    sxn[i] += (double)xk[i] * bg[i];
                    snn[i] += (double)bg[i] * bg[i];
                }
                for (size_t i = 0; i < hw; i++) xk[i] -= bg[i];
            }
        }
        free(tmp);
        free(bg);
    }
    for (size_t i = 0; acc && i < hw; i++) {
        double xn = 0, nn = 0;
        for (size_t c = 0; c < nc; c++) {
            xn += acc[2 * c * hw + i];
            nn += acc[(2 * c + 1) * hw + i];
        }
        D->own[i] = nn > 0 ? (float)(1 - xn / nn) : 0.0f;
    }
    free(acc);
    return err ? caimg_error(CAIMG_ENOMEM, "out of memory preparing the binned movie") : 0;
}

/* Step 2: the noise s.d. of the filtered movie u, from its values at a grid
 * of pixels in evenly spaced bins, robustly (1.4826 times the median
 * absolute value: u has zero median after the high-pass), so that whatever
 * is not sparse activity -- shot noise, but also slow neuropil fluctuations
 * left by the high-pass, or noise made spatially correlated by motion
 * correction -- counts as noise.  One value for the field: estimates per
 * pixel would be too noisy, and the statistic is sensitive to its scale. */
static int estimate_nu(det *D)
{
    size_t nsamp = CAIMG_MIN(D->nb, 64), step = 3;
    size_t gy = (D->h + step - 1) / step, gx = (D->w + step - 1) / step, per = gy * gx;
    float *vals = caimg_malloc(nsamp * per, sizeof *vals, "a noise estimate");
    if (!vals) return CAIMG_ENOMEM;
    int err = 0;
#pragma omp parallel
    {
        float *u = malloc(D->hw * sizeof *u), *tmp = malloc(D->hw * sizeof *tmp);
        if (!u || !tmp) {
#pragma omp atomic write
            err = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (size_t j = 0; j < nsamp; j++) {
            if (!u || !tmp) continue;
            size_t k = j * D->nb / nsamp;
            roi_gauss_blur(D->x + k * D->hw, u, D->h, D->w, D->sigma_s, tmp);
            size_t o = j * per;
            for (size_t y = 0; y < D->h; y += step)
                for (size_t x = 0; x < D->w; x += step)
                    vals[o++] = fabsf(u[y * D->w + x]) / (D->ny[y] * D->nx[x]);
        }
        free(u);
        free(tmp);
    }
    if (err) {
        free(vals);
        return caimg_error(CAIMG_ENOMEM, "out of memory estimating the noise");
    }
    D->nu = 1.4826 * roi_median(vals, nsamp * per);
    free(vals);
    return 0;
}

/* Relative noise s.d. of the border-normalised Gaussian along one axis of
 * n pixels: sqrt(sum g^2) / sum g over the part of the kernel inside, over
 * the same for the whole kernel.  White noise is assumed, which is what the
 * per-pixel normalisation produces. */
static void border_noise(double sigma, size_t n, float *f)
{
    long r = (long)ceil(3 * sigma);
    if (r < 1) r = 1;
    double s1 = 0, s2 = 0;
    for (long k = -r; k <= r; k++) {
        double g = exp(-0.5 * (double)(k * k) / (sigma * sigma));
        s1 += g;
        s2 += g * g;
    }
    double ref = sqrt(s2) / s1;
    for (size_t i = 0; i < n; i++) {
        double a = 0, b = 0;
        for (long k = -r; k <= r; k++) {
            long j = (long)i + k;
            if (j < 0 || j >= (long)n) continue;
            double g = exp(-0.5 * (double)(k * k) / (sigma * sigma));
            a += g;
            b += g * g;
        }
        f[i] = (float)(sqrt(b) / a / ref);
    }
}

/* Bins are summed in this many fixed groups, each in bin order, and the
 * groups' sums added in group order, so that S -- and with it every
 * detection -- is the same whatever the number of threads and however the
 * threads happen to be scheduled. */
#define S_GROUPS 16

/* Steps 2-3 on a region: recompute S at rows [ry, ry+rh) and columns
 * [rx, rx+rw) of the crop. */
static int update_S(det *D, size_t ry, size_t rx, size_t rh, size_t rw)
{
    size_t n = rh * rw, tmpn = (rh + 2 * D->rblur + 2) * rw;
    size_t ng = CAIMG_MAX(1, CAIMG_MIN(S_GROUPS, D->nb));
    float *E = caimg_calloc(ng * n, sizeof *E, "an activity map");
    if (!E) return CAIMG_ENOMEM;
    int err = 0;
    float inv = (float)(1.0 / D->nu), th = (float)THETA0;
#pragma omp parallel
    {
        float *u = malloc(n * sizeof *u), *tmp = malloc(tmpn * sizeof *tmp);
        if (!u || !tmp) {
#pragma omp atomic write
            err = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (size_t g = 0; g < ng; g++) {
            if (!u || !tmp) continue;
            float *e = E + g * n;
            for (size_t k = g * D->nb / ng; k < (g + 1) * D->nb / ng; k++) {
                roi_gauss_blur_window(D->x + k * D->hw, D->h, D->w, D->sigma_s, ry, rx, rh, rw,
                                      u, tmp);
                for (size_t i = 0; i < n; i++) {
                    float z = u[i] * inv / (D->ny[ry + i / rw] * D->nx[rx + i % rw]) - th;
                    if (z > 0) e[i] += z;
                }
            }
        }
        free(u);
        free(tmp);
    }
    if (err) {
        free(E);
        return caimg_error(CAIMG_ENOMEM, "out of memory computing the activity map");
    }
    double mean = D->m1 * (double)D->nb, sd = D->sd1 * sqrt((double)D->nb);
    for (size_t i = 0; i < n; i++) {
        double e = 0;
        for (size_t g = 0; g < ng; g++) e += E[g * n + i];
        D->S[(ry + i / rw) * D->w + rx + i % rw] = (float)((e - mean) / sd);
    }
    free(E);
    return 0;
}

/* The activity significance of ROI i of r (pixels in frame coordinates,
 * inside the crop at y0, x0): its weighted trace over the prepared movie,
 * z-scored by its own median and robust s.d., summed through the activity
 * statistic and calibrated like S.  `c` and `cs` hold nb floats. */
static double roi_score(const det *D, const caimg_roiset *r, size_t i, size_t y0, size_t x0,
                        float *c, float *cs)
{
    size_t a = (size_t)r->pix_start[i], b = (size_t)r->pix_start[i + 1], nb = D->nb;
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < nb; k++) {
        const float *xk = D->x + k * D->hw;
        double s = 0;
        for (size_t j = a; j < b; j++) {
            size_t y = (size_t)r->pix_index[2 * j] - y0, x = (size_t)r->pix_index[2 * j + 1] - x0;
            s += r->pix_weight[j] * xk[y * D->w + x];
        }
        c[k] = (float)s;
    }
    memcpy(cs, c, nb * sizeof *cs);
    float med = roi_median(cs, nb);
    for (size_t k = 0; k < nb; k++) cs[k] = fabsf(c[k] - med);
    float sd = 1.4826f * roi_median(cs, nb);
    if (!(sd > 0)) return 0;
    double e = 0;
    for (size_t k = 0; k < nb; k++) {
        double z = (c[k] - med) / sd - THETA0;
        if (z > 0) e += z;
    }
    return (e - D->m1 * (double)nb) / (D->sd1 * sqrt((double)nb));
}

/* Work space for growing one cell in a square window. */
typedef struct {
    size_t wy, wx, wh, ww, wn;  /* window in the crop */
    float *c;                   /* [nb] trace */
    float *cs;                  /* [nb] scratch */
    float *f, *fs, *tmp;        /* [wn] footprint, smoothed, scratch */
    uint8_t *mask, *keep;       /* [wn] */
    int32_t *stack;             /* [wn] */
    size_t *act;                /* [nb] active bins */
    double ring;                /* footprint in the ring d .. 1.5 d from its
                                 * peak over that within d/2: near 0 for a
                                 * compact source, near 1 for diffuse activity */
} grow_ws;

/* Trace of footprint (mask, weights fs) over all bins. */
static void project(const det *D, grow_ws *G, int use_weights)
{
    size_t nb = D->nb;
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < nb; k++) {
        const float *xk = D->x + k * D->hw;
        double s = 0;
        for (size_t j = 0; j < G->wn; j++) {
            if (!G->mask[j]) continue;
            size_t y = G->wy + j / G->ww, x = G->wx + j % G->ww;
            s += (use_weights ? G->fs[j] : 1.0f) * xk[y * D->w + x];
        }
        G->c[k] = (float)s;
    }
}

/* Grow a cell from seed pixel (sy, sx); the footprint ends in G->mask and
 * G->fs (weights >= 0 on the mask).  Returns the number of pixels. */
static size_t grow(const det *D, grow_ws *G, size_t sy, size_t sx)
{
    double d = D->p->diameter, r0 = d / 2;
    size_t R = (size_t)ceil(1.5 * d);
    G->wy = sy > R ? sy - R : 0;
    G->wx = sx > R ? sx - R : 0;
    G->wh = CAIMG_MIN(D->h, sy + R + 1) - G->wy;
    G->ww = CAIMG_MIN(D->w, sx + R + 1) - G->wx;
    G->wn = G->wh * G->ww;
    size_t ly = sy - G->wy, lx = sx - G->wx;
    for (size_t j = 0; j < G->wn; j++) {
        double dy = (double)(j / G->ww) - (double)ly, dx = (double)(j % G->ww) - (double)lx;
        G->mask[j] = dy * dy + dx * dx <= r0 * r0;
        G->fs[j] = 1;
    }
    size_t npix = 0, nb = D->nb;
    for (int round = 0; round < ROUNDS; round++) {
        project(D, G, round > 0);
        /* Active bins: robustly above the trace's own noise. */
        memcpy(G->cs, G->c, nb * sizeof *G->cs);
        float med = roi_median(G->cs, nb);
        for (size_t k = 0; k < nb; k++) G->cs[k] = fabsf(G->c[k] - med);
        float sd = 1.4826f * roi_median(G->cs, nb);
        size_t na = 0;
        for (size_t k = 0; k < nb; k++)
            if (G->c[k] - med > THETA_ACTIVE * sd) G->act[na++] = k;
        if (na < 3) {
            /* Too few: the three largest bins. */
            na = 0;
            for (int q = 0; q < 3 && q < (int)nb; q++) {
                size_t best = 0;
                float bv = -HUGE_VALF;
                for (size_t k = 0; k < nb; k++) {
                    int used = 0;
                    for (size_t a = 0; a < na; a++) used |= G->act[a] == k;
                    if (!used && G->c[k] > bv) { bv = G->c[k]; best = k; }
                }
                G->act[na++] = best;
            }
        }
        /* Footprint: mean of the movie over the active bins. */
        for (size_t j = 0; j < G->wn; j++) G->f[j] = 0;
        for (size_t a = 0; a < na; a++) {
            const float *xk = D->x + G->act[a] * D->hw;
            for (size_t j = 0; j < G->wn; j++) {
                size_t y = G->wy + j / G->ww, x = G->wx + j % G->ww;
                G->f[j] += xk[y * D->w + x];
            }
        }
        for (size_t j = 0; j < G->wn; j++) G->f[j] /= (float)na;
        /* A light blur (s.d. 1 px) before outlining, against noise. */
        roi_gauss_blur(G->f, G->fs, G->wh, G->ww, 1.0, G->tmp);
        /* The peak nearest the seed: the maximum within d/2 of it. */
        float peak = -HUGE_VALF;
        size_t pk = ly * G->ww + lx;
        for (size_t j = 0; j < G->wn; j++) {
            double dy = (double)(j / G->ww) - (double)ly, dx = (double)(j % G->ww) - (double)lx;
            if (dy * dy + dx * dx <= r0 * r0 && G->fs[j] > peak) { peak = G->fs[j]; pk = j; }
        }
        if (!(peak > 0)) return 0;
        for (size_t j = 0; j < G->wn; j++) G->mask[j] = G->fs[j] >= FOOT_FRAC * peak;
        npix = roi_component(G->mask, G->wh, G->ww, pk, G->stack, G->keep);
        roi_fill_holes(G->mask, G->wh, G->ww, G->stack);
        npix = 0;
        double sin_ = 0, sout = 0;
        size_t nin = 0, nout = 0;
        long py = (long)(pk / G->ww), px = (long)(pk % G->ww);
        for (size_t j = 0; j < G->wn; j++) {
            double dy = (double)((long)(j / G->ww) - py), dx = (double)((long)(j % G->ww) - px);
            double rr = sqrt(dy * dy + dx * dx);
            if (rr <= r0) { sin_ += G->fs[j]; nin++; }
            else if (rr >= d && rr <= 1.5 * d) { sout += G->fs[j]; nout++; }
            if (G->mask[j]) npix++;
            if (G->fs[j] < 0) G->fs[j] = 0;
        }
        G->ring = nin && nout && sin_ > 0 ? (sout / (double)nout) / (sin_ / (double)nin) : 1;
    }
    return npix;
}

static int detect_impl(const caimg_roi_params *p, const caimg_roi_summary *s,
                       caimg_roi_binned *b, caimg_roiset **out, int refine)
{
    *out = NULL;
    if (!b)
        return caimg_error(CAIMG_EINVAL, "the activity method needs the binned movie");
    caimg_roiset *r = caimg_roiset_alloc(s->height, s->width);
    if (!r) return CAIMG_ENOMEM;
    /* Too short to tell activity from noise: nothing to find. */
    if (b->nbins < MIN_BINS || b->height < 3 || b->width < 3) {
        /* Too short to tell activity from noise: the mean image only. */
        if (b->nbins < MIN_BINS)
            caimg_warn("%zu time bins of %zu frames are too few to detect cells from their "
                       "activity (%d are needed); only the mean image is used", b->nbins,
                       b->bin, MIN_BINS);
        size_t box[4] = {b->y0, b->y0 + b->height, b->x0, b->x0 + b->width};
        int rc = roi_anatomy(p, s, box, r, p->anatomy > 0, NULL, NULL, NULL);
        if (rc) {
            caimg_roiset_free(r);
            return rc;
        }
        *out = r;
        return 0;
    }
    det D;
    memset(&D, 0, sizeof D);
    D.p = p;
    D.nb = b->nbins;
    D.h = b->height;
    D.w = b->width;
    D.hw = D.h * D.w;
    D.x = b->data;
    D.sigma_s = SMOOTH * p->diameter;
    D.rblur = (size_t)ceil(3 * D.sigma_s);
    double var1;
    roi_phi_moments(THETA0, &D.m1, &var1);
    D.sd1 = sqrt(var1);
    D.sig = caimg_malloc(D.hw, sizeof *D.sig, "noise levels");
    D.rel = caimg_malloc(D.hw, sizeof *D.rel, "resting levels");
    D.bin = b->bin;
    D.S = caimg_malloc(D.hw, sizeof *D.S, "the activity map");
    /* Only the mean-image search uses the own-light map. */
    D.own = p->anatomy > 0 ? caimg_malloc(D.hw, sizeof *D.own, "the own-light map") : NULL;
    D.ny = caimg_malloc(D.h, sizeof *D.ny, "noise levels");
    D.nx = caimg_malloc(D.w, sizeof *D.nx, "noise levels");
    uint8_t *owner = caimg_calloc(D.hw, 1, "an ROI map");
    size_t R = (size_t)ceil(1.5 * p->diameter), wmax = (2 * R + 1) * (2 * R + 1);
    grow_ws G;
    memset(&G, 0, sizeof G);
    G.c = caimg_malloc(D.nb, sizeof *G.c, "a trace");
    G.cs = caimg_malloc(D.nb, sizeof *G.cs, "a trace");
    G.act = caimg_malloc(D.nb, sizeof *G.act, "a trace");
    G.f = caimg_malloc(wmax, sizeof *G.f, "a footprint");
    G.fs = caimg_malloc(wmax, sizeof *G.fs, "a footprint");
    G.tmp = caimg_malloc(wmax, sizeof *G.tmp, "a footprint");
    G.mask = caimg_malloc(wmax, 1, "a footprint");
    G.keep = caimg_malloc(wmax, 1, "a footprint");
    G.stack = caimg_malloc(wmax, sizeof *G.stack, "a footprint");
    int32_t *yx = caimg_malloc(2 * wmax, sizeof *yx, "a footprint");
    float *wt = caimg_malloc(wmax, sizeof *wt, "a footprint");
    size_t *cpix = caimg_malloc(wmax, sizeof *cpix, "a footprint");
    float *cax = caimg_malloc(wmax, sizeof *cax, "a footprint");
    roi_comps *comps = refine ? roi_comps_alloc(D.nb, D.h, D.w) : NULL;
    int32_t *absorbed_by = NULL;
    int rc = 0;
    if (!D.sig || !D.rel || !D.S || (p->anatomy > 0 && !D.own) || !D.ny || !D.nx || !owner || !G.c || !G.cs || !G.act || !G.f || !G.fs || !G.tmp
        || !G.mask || !G.keep || !G.stack || !yx || !wt || !cpix || !cax || (refine && !comps)) {
        rc = CAIMG_ENOMEM;
        goto out;
    }
    /* The high-pass window in bins: `highpass` seconds at the movie's rate,
     * or 100 bins when the rate is unknown. */
    size_t whp = b->fs > 0 ? (size_t)(p->highpass * b->fs / (double)b->bin) : 100;
    if (whp < 5) whp = 5;
    border_noise(D.sigma_s, D.h, D.ny);
    border_noise(D.sigma_s, D.w, D.nx);
    rc = prep_temporal(&D, whp);
    if (!rc) {
        /* The mean image of the crop, for relative changes. */
        float *mc = caimg_malloc(D.hw, sizeof *mc, "the mean image");
        if (!mc) rc = CAIMG_ENOMEM;
        else {
            for (size_t y = 0; y < D.h; y++)
                memcpy(mc + y * D.w, s->mean + (y + b->y0) * s->width + b->x0, D.w * sizeof *mc);
            rc = prep_relative(&D, mc);
            free(mc);
        }
    }
    if (!rc) rc = prep_spatial(&D);
    if (!rc) prep_normalise(&D);
    if (!rc) rc = estimate_nu(&D);
    if (!rc && !(D.nu > 0)) {
        /* A constant movie: nothing is active. */
        *out = r;
        r = NULL;
        goto out;
    }
    if (!rc) rc = update_S(&D, 0, 0, D.h, D.w);
    if (rc) goto out;

    double area0 = M_PI * p->diameter * p->diameter / 4;
    size_t maxiter = 4 * (D.hw / (size_t)CAIMG_MAX(1, area0) + 10);
    size_t found = 0;
    for (size_t iter = 0; iter < maxiter; iter++) {
        if (p->max_rois && found >= p->max_rois) break;
        size_t best = 0;
        float bs = -HUGE_VALF;
        for (size_t i = 0; i < D.hw; i++)
            if (D.S[i] > bs) { bs = D.S[i]; best = i; }
        if (!(bs >= p->threshold)) break;
        size_t sy = best / D.w, sx = best % D.w;
        size_t npix = grow(&D, &G, sy, sx);
        int seed_in = 0;
        double ww = 0;
        for (size_t j = 0; npix > 0 && j < G.wn; j++)
            if (G.mask[j]) ww += (double)G.fs[j] * G.fs[j];
        if (!(ww > 0)) npix = 0;
        /* Accept it as a new cell unless it is mostly made of an earlier
         * one (the remains of an imperfect subtraction) or implausibly
         * small. */
        size_t shared = 0, m = 0;
        if (npix > 0) {
            /* Pixels of the outline whose footprint is not positive (a
             * filled nucleus) keep a small weight: they are part of the
             * cell's mask, which a weight of 0 would drop. */
            float fmax = 0;
            for (size_t j = 0; j < G.wn; j++)
                if (G.mask[j] && G.fs[j] > fmax) fmax = G.fs[j];
            for (size_t j = 0; j < G.wn; j++) {
                if (!G.mask[j]) continue;
                size_t y = G.wy + j / G.ww, x = G.wx + j % G.ww;
                if (y == sy && x == sx) seed_in = 1;
                if (owner[y * D.w + x]) shared++;
                yx[2 * m] = (int32_t)(y + b->y0);
                yx[2 * m + 1] = (int32_t)(x + b->x0);
                wt[m] = CAIMG_MAX(G.fs[j], 0.05f * fmax) * D.sig[y * D.w + x];
                m++;
            }
        }
        int added = 0;
        if (npix > 0 && (double)npix >= 0.1 * area0 && (double)npix <= MAX_AREA * area0
            && 2 * shared < npix && G.ring < RING_MAX) {
            rc = caimg_roiset_add(r, m, yx, wt, bs, 1);
            if (rc == CAIMG_EINVAL) rc = 0;   /* every weight was 0 */
            else if (rc) goto out;
            else {
                found++;
                added = 1;
                for (size_t j = 0; j < G.wn; j++)
                    if (G.mask[j]) owner[(G.wy + j / G.ww) * D.w + G.wx + j % G.ww] = 1;
            }
        }
        if (npix > 0) {
            /* Least-squares amplitude of the footprint in each bin, then
             * subtract the cell (or the remains of one) from the movie. */
            project(&D, &G, 1);
            float invw = (float)(1.0 / ww);
            if (comps) {
                /* Recorded for the refinement, which starts from what
                 * was subtracted here. */
                size_t mc = 0;
                for (size_t j = 0; j < G.wn; j++) {
                    if (!G.mask[j]) continue;
                    cpix[mc] = (G.wy + j / G.ww) * D.w + G.wx + j % G.ww;
                    cax[mc++] = G.fs[j];
                }
                for (size_t k = 0; k < D.nb; k++) G.cs[k] = G.c[k] * invw;
                rc = roi_comps_add(comps, mc, cpix, cax, D.sig, G.cs, added, 0, added ? r->n - 1 : 0);
                if (rc) goto out;
            }
#pragma omp parallel for schedule(static)
            for (size_t k = 0; k < D.nb; k++) {
                float a = G.c[k] * invw;
                float *xk = D.x + k * D.hw;
                for (size_t j = 0; j < G.wn; j++) {
                    if (!G.mask[j]) continue;
                    size_t y = G.wy + j / G.ww, x = G.wx + j % G.ww;
                    xk[y * D.w + x] -= a * G.fs[j];
                }
            }
        }
        /* Recompute the map where the movie changed; a seed that the
         * footprint did not cover is retired so it cannot come back. */
        if (npix > 0) {
            /* Only the filtered movie within the blur's reach of the
             * footprint changed. */
            size_t my0 = SIZE_MAX, my1 = 0, mx0 = SIZE_MAX, mx1 = 0;
            for (size_t j = 0; j < G.wn; j++) {
                if (!G.mask[j]) continue;
                size_t y = G.wy + j / G.ww, x = G.wx + j % G.ww;
                my0 = CAIMG_MIN(my0, y); my1 = CAIMG_MAX(my1, y + 1);
                mx0 = CAIMG_MIN(mx0, x); mx1 = CAIMG_MAX(mx1, x + 1);
            }
            size_t y0 = my0 > D.rblur ? my0 - D.rblur : 0;
            size_t x0 = mx0 > D.rblur ? mx0 - D.rblur : 0;
            size_t y1 = CAIMG_MIN(D.h, my1 + D.rblur);
            size_t x1 = CAIMG_MIN(D.w, mx1 + D.rblur);
            rc = update_S(&D, y0, x0, y1 - y0, x1 - x0);
            if (rc) goto out;
        }
        if (!seed_in || npix == 0) D.S[best] = -HUGE_VALF;
        else if (D.S[best] >= bs) D.S[best] = -HUGE_VALF;
        rc = caimg_progress("finding cells", (double)found, (double)(found + 1));
        if (rc) goto out;
    }
    {
        size_t box[4] = {b->y0, b->y0 + b->height, b->x0, b->x0 + b->width};
        size_t n0 = r->n;
        absorbed_by = caimg_malloc(n0 + 1, sizeof *absorbed_by, "an ROI map");
        if (!absorbed_by) { rc = CAIMG_ENOMEM; goto out; }
        rc = roi_anatomy(p, s, box, r, p->anatomy > 0, D.S, D.own, absorbed_by);
        if (rc) goto out;
        /* Somata found in the mean image: the activity of their traces
         * (the movie no longer holds the cells found from activity), or
         * that of the cells they absorbed when it is more. */
        for (size_t i = n0; i < r->n; i++)
            r->stats[i * CAIMG_ROI_NSTATS + CAIMG_ROI_SCORE] =
                roi_score(&D, r, i, b->y0, b->x0, G.c, G.cs);
        /* merged[i]: below n0, the cell was absorbed and leaves; from n0,
         * the soma absorbed a cell. */
        uint8_t *merged = caimg_calloc(r->n + 1, 1, "an ROI map");
        if (!merged) { rc = CAIMG_ENOMEM; goto out; }
        for (size_t i = 0; i < n0; i++) {
            if (absorbed_by[i] < 0) continue;
            double *so = r->stats + (size_t)absorbed_by[i] * CAIMG_ROI_NSTATS + CAIMG_ROI_SCORE;
            *so = CAIMG_MAX(*so, r->stats[i * CAIMG_ROI_NSTATS + CAIMG_ROI_SCORE]);
            merged[absorbed_by[i]] = 1;
            merged[i] = 1;
            if (comps) roi_comps_drop(comps, i);
        }
        if (comps) {
            /* The somata of the mean image join the refinement with no
             * activity yet and their fitted footprint held fixed (it is in
             * raw units; see roi_refine.c); one that absorbed a cell found
             * from activity is that cell, whose footprint the refinement
             * outlines afresh from both views (the cell's own candidate,
             * dropped, goes back into the movie). */
            for (size_t i = n0; !rc && i < r->n; i++) {
                size_t mc = 0;
                for (int64_t k = r->pix_start[i]; k < r->pix_start[i + 1] && mc < wmax; k++) {
                    size_t y = (size_t)r->pix_index[2 * k] - b->y0;
                    size_t x = (size_t)r->pix_index[2 * k + 1] - b->x0;
                    cpix[mc] = y * D.w + x;
                    float sg = D.sig[cpix[mc]];
                    cax[mc++] = sg > 0 ? r->pix_weight[k] / sg : 0.0f;
                }
                rc = roi_comps_add(comps, mc, cpix, cax, D.sig, NULL, 1, !merged[i], i);
            }
            free(merged);
            if (!rc) rc = roi_refine(p, s, b->y0, b->x0, D.x, D.sig, comps, &r);
            if (rc) goto out;
        } else {
            /* Method activity-classic: the absorbed cells leave the set. */
            for (size_t i = n0; i < r->n; i++) merged[i] = 0;
            roi_roiset_drop(r, merged);
            free(merged);
        }
    }
    r->offset = D.offset;
    *out = r;
    r = NULL;
out:
    caimg_roiset_free(r);
    free(D.sig);
    free(D.rel);
    free(D.S);
    free(D.own);
    free(D.ny);
    free(D.nx);
    free(owner);
    free(G.c);
    free(G.cs);
    free(G.act);
    free(G.f);
    free(G.fs);
    free(G.tmp);
    free(G.mask);
    free(G.keep);
    free(G.stack);
    free(yx);
    free(wt);
    free(cpix);
    free(cax);
    roi_comps_free(comps);
    free(absorbed_by);
    return rc;
}

static int activity_detect(const caimg_roi_params *p, const caimg_roi_summary *s,
                           caimg_roi_binned *b, caimg_roiset **out)
{
    return detect_impl(p, s, b, out, 1);
}

static int classic_detect(const caimg_roi_params *p, const caimg_roi_summary *s,
                          caimg_roi_binned *b, caimg_roiset **out)
{
    return detect_impl(p, s, b, out, 0);
}

static const caimg_roi_type activity_type = {
    "activity", "from activity and the mean image, refined jointly (default)", 1,
    activity_detect
};
const caimg_roi_type *const caimg_roi_activity = &activity_type;

static const caimg_roi_type classic_type = {
    "activity-classic", "the same candidates, not refined", 1,
    classic_detect
};
const caimg_roi_type *const caimg_roi_activity_classic = &classic_type;

/* The method table: the default first. */
static const caimg_roi_type *const all_types[] = {&activity_type, &classic_type,
                                                  &roi_seeded_type, NULL};

const caimg_roi_type *const *caimg_roi_types(void)
{
    return all_types;
}

const caimg_roi_type *caimg_roi_type_find(const char *name)
{
    for (const caimg_roi_type *const *t = caimg_roi_types(); *t; t++)
        if (!strcmp((*t)->name, name)) return *t;
    return NULL;
}

int caimg_roi_detect(const caimg_roi_type *t, const caimg_roi_params *p,
                     const caimg_roi_summary *s, caimg_roi_binned *binned, caimg_roiset **out)
{
    if (!t || !t->detect) return caimg_error(CAIMG_EINVAL, "no detection method");
    if (!(p->diameter >= 1) || !(p->diameter <= 1000))
        return caimg_error(CAIMG_EINVAL, "diameter %g px is out of range (1-1000)", p->diameter);
    return t->detect(p, s, binned, out);
}
