/* roi_anatomy.c -- somata seen in the mean image: cells that were silent
 * (or too dim in activity) during the recording are still there, and a
 * human annotator marks them from the mean image.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * The mean image less its background (a Gaussian of 1.5 d; the neuropil
 * background and vignetting are smooth on that scale), divided by its local
 * noise level (the texture of the neuropil is proportional to its
 * brightness), is correlated (by FFT) with templates of a soma: a filled
 * disk and a ring (the cytosol around a dimmer nucleus, as GCaMP
 * expresses), each at 0.8, 1 and 1.25 times the diameter d and against a
 * surrounding annulus.  Each response is divided by its own robust s.d.,
 * so all read in noise units, and the largest is kept; where the cell also
 * showed some activity the two kinds of evidence are combined, and so
 * are the mean image and the own-light map (roi_detect.c).  Local
 * maxima at or above the threshold are fitted with a soma model (an
 * ellipse with a soft edge, less a nucleus of fitted depth, no larger
 * than the field's somata, whose size is measured on the first round),
 * each over the pixels nearer to it than to any other maximum, and, taken
 * strongest first, become ROIs whose masks are the fitted ellipses, unless
 * the fit is poor or they mostly cover an ROI already found (a cell found
 * from activity that lies mostly inside the ellipse is absorbed instead:
 * see roi_internal.h).  The somata
 * found are subtracted from the image and the search is repeated, so that
 * dim cells next to bright ones are found once their neighbours are gone,
 * with the noise then measured without the cells; the cells found from
 * activity that the mean image shows as outlined are subtracted before
 * the first round.
 */
#include <config.h>

#include <limits.h>
#include <math.h>
#include <string.h>

#include <fftw3.h>

#include "caimg/error.h"
#include "roi_internal.h"

#define ROUNDS 5            /* detect, fit, subtract, detect again */
#define NMS_RADIUS 0.45     /* in diameters: peaks closer than this merge */
#define MIN_CORR 0.3        /* fits that explain this much of their patch
                             * measure the field's soma size */
#define CAND_CORR 0.2       /* fits that explain this much become candidates */
/* How far (pixels) a soma fit's centre is searched from its peak, coarse,
 * before the fine half-pixel step.  The templates' peak lies within about a
 * pixel of a soma's centre; searched 2 pixels out, the fit of a dim soma
 * beside the neuropil's texture drifted onto the texture, to every bound at
 * once (centre 2.5 pixels off in both axes, the largest size and
 * elongation: IoU 0.3-0.5 with the soma; 13 hard fields F1 0.944 -> 0.949,
 * typical 0.994 -> 0.998, with the classifier refitted).  The diameter
 * estimator keeps 2 (EST_REACH): it tells a field without somata by its
 * fits being poor, and fits held near chance peaks of the texture are good
 * at small sizes. */
#define FIT_REACH 1
#define DEPTH_MAX 1.5       /* deepest nucleus in the soma fit */
#define MIN_SIZED 10        /* fits that measure the field's soma size */
#define NEAR_CELL 0.75      /* in diameters: a cell found before whose centre
                             * is farther from a peak is a neighbour of the
                             * soma fitted there, a nearer one may be part
                             * of it */
#define CELL_MATCH 0.65     /* IoU of a cell found from activity with the
                             * soma fitted at its centre for the mean image
                             * to show it as outlined */
#define PEAK_DEPTH 2.0      /* in pixels: how deep inside a cell found before
                             * a peak is its own */

typedef struct {
    float z;
    int32_t i;
} peak;

static int cmp_peak(const void *a, const void *b)
{
    float x = ((const peak *)a)->z, y = ((const peak *)b)->z;
    return (x < y) - (x > y);
}

/* Correlation of an h x w image with small symmetric templates by FFT
 * (FFTW, single precision), the image zero-padded by the largest template
 * radius so that nothing wraps around: out(y, x) = sum of k(dy, dx)
 * img(y + dy, x + dx) over the offsets that fall inside the image. */
typedef struct {
    size_t h, w, H, W, pad;
    float *rin;
    fftwf_complex *fimg, *fk;
    fftwf_plan fwd, inv;
} fftcorr;

static size_t good_size(size_t n)
{
    for (;; n++) {
        size_t m = n;
        while (m % 2 == 0) m /= 2;
        while (m % 3 == 0) m /= 3;
        while (m % 5 == 0) m /= 5;
        if (m == 1) return n;
    }
}

static void fftcorr_free(fftcorr *c)
{
    if (c->fwd) fftwf_destroy_plan(c->fwd);
    if (c->inv) fftwf_destroy_plan(c->inv);
    fftwf_free(c->rin);
    fftwf_free(c->fimg);
    fftwf_free(c->fk);
    memset(c, 0, sizeof *c);
}

static int fftcorr_init(fftcorr *c, size_t h, size_t w, size_t pad)
{
    memset(c, 0, sizeof *c);
    c->h = h;
    c->w = w;
    c->pad = pad;
    c->H = good_size(h + 2 * pad);
    c->W = good_size(w + 2 * pad);
    size_t nc = c->H * (c->W / 2 + 1);
    c->rin = fftwf_malloc(c->H * c->W * sizeof *c->rin);
    c->fimg = fftwf_malloc(nc * sizeof *c->fimg);
    c->fk = fftwf_malloc(nc * sizeof *c->fk);
    if (!c->rin || !c->fimg || !c->fk) {
        fftcorr_free(c);
        return caimg_error(CAIMG_ENOMEM, "out of memory for the template FFTs");
    }
    c->fwd = fftwf_plan_dft_r2c_2d((int)c->H, (int)c->W, c->rin, c->fk, FFTW_ESTIMATE);
    c->inv = fftwf_plan_dft_c2r_2d((int)c->H, (int)c->W, c->fk, c->rin, FFTW_ESTIMATE);
    if (!c->fwd || !c->inv) {
        fftcorr_free(c);
        return caimg_error(CAIMG_ENOMEM, "cannot plan the template FFTs");
    }
    return 0;
}

/* Transform the image (zero-padded) into fimg. */
static void fftcorr_image(fftcorr *c, const float *img)
{
    memset(c->rin, 0, c->H * c->W * sizeof *c->rin);
    for (size_t y = 0; y < c->h; y++)
        memcpy(c->rin + (y + c->pad) * c->W + c->pad, img + y * c->w, c->w * sizeof *img);
    fftwf_execute_dft_r2c(c->fwd, c->rin, c->fimg);
    memcpy(c->fk, c->fimg, c->H * (c->W / 2 + 1) * sizeof *c->fk);
}

/* out = image correlated with template k ((2R+1)^2, symmetric, R <= pad). */
static void fftcorr_apply(fftcorr *c, const float *k, long R, float *out)
{
    long K = 2 * R + 1;
    memset(c->rin, 0, c->H * c->W * sizeof *c->rin);
    for (long dy = -R; dy <= R; dy++)
        for (long dx = -R; dx <= R; dx++) {
            size_t yy = (size_t)((dy + (long)c->H) % (long)c->H);
            size_t xx = (size_t)((dx + (long)c->W) % (long)c->W);
            c->rin[yy * c->W + xx] = k[(dy + R) * K + dx + R];
        }
    fftwf_execute_dft_r2c(c->fwd, c->rin, c->fk);
    size_t nc = c->H * (c->W / 2 + 1);
    float norm = 1.0f / (float)(c->H * c->W);
    for (size_t i = 0; i < nc; i++) {
        float ar = c->fimg[i][0], ai = c->fimg[i][1], br = c->fk[i][0], bi = c->fk[i][1];
        c->fk[i][0] = (ar * br - ai * bi) * norm;
        c->fk[i][1] = (ar * bi + ai * br) * norm;
    }
    fftwf_execute_dft_c2r(c->inv, c->fk, c->rin);
    for (size_t y = 0; y < c->h; y++)
        memcpy(out + y * c->w, c->rin + (y + c->pad) * c->W + c->pad, c->w * sizeof *out);
}

/* Divide by the robust s.d. (MAD about the median) of the map, measured
 * over the pixels where `skip` is 0 (all when skip is NULL). */
static int robust_z(float *m, size_t n, float *scratch, const uint8_t *skip)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!skip || !skip[i]) scratch[k++] = m[i];
    if (k < 16) {
        k = n;
        memcpy(scratch, m, n * sizeof *m);
    }
    float med = roi_median(scratch, k);
    size_t k2 = 0;
    for (size_t i = 0; i < n; i++)
        if (k == n || !skip[i]) scratch[k2++] = fabsf(m[i] - med);
    float sd = 1.4826f * roi_median(scratch, k2);
    if (!(sd > 0)) return 1;
    for (size_t i = 0; i < n; i++) m[i] = (m[i] - med) / sd;
    return 0;
}

/* A soma model in the mean image: an ellipse (centre, semi-axes a >= b,
 * orientation th) of uniform brightness with a 1-pixel soft edge, less
 * beta times a nucleus of 0.55 of its size (beta from 0, no nucleus, to
 * 1.5, a nucleus darker than the surroundings).  Fitted to a candidate by
 * maximising the Pearson correlation with the high-passed mean image over a
 * fixed disk around the candidate (so the surroundings, which the model
 * says are dark, count too) less the pixels nearer to another candidate: a
 * coarse search over centre, size and nucleus, then a fine one adding
 * elongation and orientation (nucleus depth kept). */
typedef struct {
    double cy, cx, a, b, th, beta, corr;
} soma_fit;

static double ramp(double rho, double edge, double at)
{
    double v = (at + edge - rho) / (2 * edge);
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

static double soma_model(const soma_fit *f, double c, double sn, double y, double x)
{
    double dy = y - f->cy, dx = x - f->cx;
    double u = (dx * c + dy * sn) / f->a, v = (-dx * sn + dy * c) / f->b;
    double rho = sqrt(u * u + v * v), e = 1.0 / sqrt(f->a * f->b);
    return ramp(rho, e, 1.0) - f->beta * ramp(rho, e, 0.55);
}

typedef struct {
    size_t n;
    float *y, *x, *v;       /* window pixels (crop coordinates) and values */
    float *r;               /* scratch: distances */
    double vm, vss;         /* mean and centred sum of squares of v */
} patch;

static double model_corr(const patch *P, const soma_fit *f)
{
    double c = cos(f->th), sn = sin(f->th), st = 0, stt = 0, stv = 0;
    for (size_t j = 0; j < P->n; j++) {
        double t = soma_model(f, c, sn, P->y[j], P->x[j]);
        st += t;
        stt += t * t;
        stv += t * (P->v[j] - P->vm);
    }
    double var = stt - st * st / (double)P->n;
    return var > 0 && P->vss > 0 ? stv / sqrt(var * P->vss) : -1;
}

/* Radius of the disk a soma of expected radius R is fitted over. */
static double fit_radius(double R)
{
    return 2.4 * R + 1;
}

/* Fit a soma at the peak (py, px).  The disk of fit_radius(R) around it is
 * shared with its neighbours in a crowded field, and over the whole disk a
 * bright neighbour is either covered by a larger model (a fit too large and
 * off-centre) or left in the model's dark surroundings (a poor fit that is
 * rejected): so the pixels nearer to one of the other candidates' peaks
 * nb[nnb][2] (y, x) than to this one are left out, and the neighbour
 * counts neither for nor against the model. */
static void fit_soma(const float *img, size_t h, size_t w, double py, double px, double R,
                     double rref, double top, int centre_reach, const float *nb, size_t nnb,
                     patch *P, soma_fit *best)
{
    double W = fit_radius(R);
    long iw = (long)ceil(W);
    P->n = 0;
    double s = 0;
    for (long dy = -iw; dy <= iw; dy++)
        for (long dx = -iw; dx <= iw; dx++) {
            long yy = (long)py + dy, xx = (long)px + dx;
            double d2 = (double)(dy * dy + dx * dx);
            if (yy < 0 || xx < 0 || yy >= (long)h || xx >= (long)w || d2 > W * W) continue;
            size_t k = 0;
            while (k < nnb) {
                double ey = (double)yy - nb[2 * k], ex = (double)xx - nb[2 * k + 1];
                if (ey * ey + ex * ex < d2) break;
                k++;
            }
            if (k < nnb) continue;
            P->y[P->n] = (float)yy;
            P->x[P->n] = (float)xx;
            P->v[P->n] = img[(size_t)yy * w + (size_t)xx];
            s += P->v[P->n];
            P->n++;
        }
    P->vm = P->n ? s / (double)P->n : 0;
    P->vss = 0;
    for (size_t j = 0; j < P->n; j++) P->vss += (P->v[j] - P->vm) * (P->v[j] - P->vm);
    best->corr = -2;
    /* Radii of rref times 0.7 (0.665 after the fine step) up to `top`,
     * which the fine step does not exceed; see roi_anatomy() for the two
     * uses. */
    static const double rs[] = {0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5};
    int nrs = 0;
    while (nrs < (int)(sizeof rs / sizeof rs[0]) && rs[nrs] <= top + 1e-9) nrs++;
    soma_fit f;
    /* Coarse: round models, whose value depends on the distance to the
     * centre only, computed once per centre, within `centre_reach` pixels
     * of the peak (and half a pixel more in the fine step): see FIT_REACH. */
    for (int dy = -centre_reach; dy <= centre_reach; dy++)
        for (int dx = -centre_reach; dx <= centre_reach; dx++) {
            double cy = py + dy, cx = px + dx;
            for (size_t j = 0; j < P->n; j++) {
                double ey = P->y[j] - cy, ex = P->x[j] - cx;
                P->r[j] = (float)sqrt(ey * ey + ex * ex);
            }
            for (int ir = 0; ir < nrs; ir++) {
                double a = rs[ir] * rref, e = 1.0 / a;
                double sb = 0, sbb = 0, sbv = 0, sn = 0, snn = 0, snv = 0, sbn = 0;
                for (size_t j = 0; j < P->n; j++) {
                    double rho = P->r[j] / a, v = P->v[j] - P->vm;
                    double bo = ramp(rho, e, 1.0), nu = ramp(rho, e, 0.55);
                    sb += bo; sbb += bo * bo; sbv += bo * v;
                    sn += nu; snn += nu * nu; snv += nu * v; sbn += bo * nu;
                }
                /* The nucleus depth is fitted too, from none to nuclei
                 * darker than the neuropil around the cell (be > 1), which
                 * is how a dim soma looks: a thin bright ring of cytosol
                 * around a dark hole.  The best depth in [0, DEPTH_MAX]
                 * in closed form: corr(be) is a linear function over the
                 * square root of a quadratic, with one stationary point,
                 * be* = (B C - A D) / (B D - A E); the ends are tried too. */
                double nn = (double)P->n;
                double A = sbv, B = snv, C = sbb - sb * sb / nn, D = sbn - sb * sn / nn;
                double E = snn - sn * sn / nn, den = B * D - A * E;
                double bst = den != 0 ? (B * C - A * D) / den : 0;
                bst = bst < 0 ? 0 : bst > DEPTH_MAX ? DEPTH_MAX : bst;
                double depths[3] = {0, DEPTH_MAX, bst};
                for (int ib = 0; ib < 3; ib++) {
                    double be = depths[ib];
                    /* t = body - be nucleus: its sums from the parts. */
                    double st = sb - be * sn, stt = sbb - 2 * be * sbn + be * be * snn;
                    double stv = sbv - be * snv, var = stt - st * st / nn;
                    double corr = var > 0 && P->vss > 0 ? stv / sqrt(var * P->vss) : -1;
                    if (corr > best->corr) {
                        f.cy = cy;
                        f.cx = cx;
                        f.a = f.b = a;
                        f.th = 0;
                        f.beta = be;
                        f.corr = corr;
                        *best = f;
                    }
                }
            }
        }
    /* Fine: half-pixel centre steps, size steps of 5 %, elongation. */
    soma_fit c0 = *best;
    static const double asp[] = {1.0, 1.15, 1.3, 1.45};
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++)
            for (int ir = -1; ir <= 1; ir++)
                for (int ia = 0; ia < 4; ia++)
                    for (int it = 0; it < (ia ? 4 : 1); it++) {
                        f = c0;
                        f.cy = c0.cy + 0.5 * dy;
                        f.cx = c0.cx + 0.5 * dx;
                        double rm = sqrt(c0.a * c0.b) * (1 + 0.05 * ir);
                        if (rm > top * rref * 1.0001) continue;
                        f.a = rm * sqrt(asp[ia]);
                        f.b = rm / sqrt(asp[ia]);
                        f.th = it * M_PI / 4;
                        f.corr = model_corr(P, &f);
                        if (f.corr > best->corr) *best = f;
                    }
}

/* Fit a soma model at each of the np peaks (strongest first), each with
 * radii rref times 0.7 .. top (fit_soma()).  The fits are independent: in
 * parallel.  Each one's neighbours are the other peaks that can be nearer
 * than it to a pixel of its window (within twice the window's radius), and
 * the centres cen[2 * i], cen[2 * i + 1] (i < ncen) of the cells found
 * before that are as near but farther than NEAR_CELL diameters. */
static int fit_peaks(const float *hp, size_t h, size_t w, const peak *pk, size_t np, double R,
                     double rref, double top, int centre_reach, const float *cen,
                     size_t ncen, soma_fit *fits)
{
    size_t pmax = (size_t)(2 * ceil(fit_radius(R)) + 1);
    pmax *= pmax;
    double reach = 2 * fit_radius(R);
    int ferr = 0;
#pragma omp parallel
    {
        patch P;
        P.y = malloc(pmax * sizeof *P.y);
        P.x = malloc(pmax * sizeof *P.x);
        P.v = malloc(pmax * sizeof *P.v);
        P.r = malloc(pmax * sizeof *P.r);
        float *nb = malloc(2 * (np + ncen) * sizeof *nb);
        int ok = P.y && P.x && P.v && P.r && nb;
        if (!ok) {
#pragma omp atomic write
            ferr = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (size_t q = 0; q < np; q++) {
            if (!ok) continue;
            double qy = (double)(pk[q].i / (int32_t)w), qx = (double)(pk[q].i % (int32_t)w);
            size_t nnb = 0;
            for (size_t o = 0; o < np; o++) {
                double oy = (double)(pk[o].i / (int32_t)w), ox = (double)(pk[o].i % (int32_t)w);
                if (o == q || hypot(oy - qy, ox - qx) > reach) continue;
                nb[2 * nnb] = (float)oy;
                nb[2 * nnb + 1] = (float)ox;
                nnb++;
            }
            for (size_t o = 0; o < ncen; o++) {
                double dd = hypot(cen[2 * o] - qy, cen[2 * o + 1] - qx);
                if (dd > reach || dd <= NEAR_CELL * 2 * R) continue;
                nb[2 * nnb] = cen[2 * o];
                nb[2 * nnb + 1] = cen[2 * o + 1];
                nnb++;
            }
            fit_soma(hp, h, w, qy, qx, R, rref, top, centre_reach, nb, nnb, &P, &fits[q]);
        }
        free(P.y);
        free(P.x);
        free(P.v);
        free(P.r);
        free(nb);
    }
    return ferr ? caimg_error(CAIMG_ENOMEM, "out of memory fitting somata") : 0;
}

/* The local maxima of z over a disk of radius nr at or above thr, not on
 * a pixel of `excl` (NULL: none), strongest first, into *pk (capacity
 * *cap, grown as needed). */
static int find_peaks(const float *z, const uint8_t *excl, size_t h, size_t w, double thr,
                      long nr, peak **pk, size_t *cap, size_t *np)
{
    *np = 0;
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++) {
            float v = z[y * w + x];
            if (!(v >= thr) || (excl && excl[y * w + x])) continue;
            int ismax = 1;
            for (long dy = -nr; dy <= nr && ismax; dy++)
                for (long dx = -nr; dx <= nr; dx++) {
                    long yy = (long)y + dy, xx = (long)x + dx;
                    if ((dy == 0 && dx == 0) || yy < 0 || xx < 0 || yy >= (long)h
                        || xx >= (long)w || dy * dy + dx * dx > nr * nr)
                        continue;
                    float u = z[(size_t)yy * w + (size_t)xx];
                    /* Ties go to the first in raster order. */
                    if (u > v || (u == v && (yy < (long)y || (yy == (long)y && xx < (long)x)))) {
                        ismax = 0;
                        break;
                    }
                }
            if (!ismax) continue;
            if (*np == *cap) {
                size_t c2 = *cap ? 2 * *cap : 256;
                peak *n2 = realloc(*pk, c2 * sizeof *n2);
                if (!n2) return caimg_error(CAIMG_ENOMEM, "out of memory finding somata");
                *pk = n2;
                *cap = c2;
            }
            (*pk)[*np].z = v;
            (*pk)[*np].i = (int32_t)(y * w + x);
            (*np)++;
        }
    qsort(*pk, *np, sizeof **pk, cmp_peak);
    return 0;
}

/* The pixels of the cells found from activity (`owner`, on entry) on
 * which find_peaks() takes no peak: those more than PEAK_DEPTH pixels from
 * any pixel the cells do not cover, into `excl` (`d2` is scratch).  A peak
 * inside a cell is that cell's own; but a cell found from activity often
 * reaches into a neighbour along a strip a pixel or two wide (the pixels
 * the two share, active when either is), and the strip hid the
 * neighbour's peak however bright it was (13 hard fields: F1 0.905 with
 * the whole cells excluded, 0.908 without their strips).  A peak near a
 * cell's edge is still fitted, and the fit kept only if most of it is not
 * the cell's.  The somata fitted here have no strips and are excluded
 * whole: opening their edges too found more of the neuropil's texture
 * beside them (12 more false cells in 12 cell-free fields). */
static int peak_exclusion(const uint8_t *owner, size_t h, size_t w, uint8_t *excl, float *d2)
{
    size_t hw = h * w;
    for (size_t i = 0; i < hw; i++) excl[i] = !owner[i];
    int rc = roi_edt(excl, h, w, d2);
    if (rc) return rc;
    for (size_t i = 0; i < hw; i++) excl[i] = owner[i] && d2[i] > PEAK_DEPTH * PEAK_DEPTH;
    return 0;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The field's soma radius: the mean of the middle half of sqrt(a b) over
 * the fits good enough to become ROIs, or NAN when there are fewer than
 * min_n.  Robust like the median, but the fits' radii lie on a grid
 * (steps of 5-10 %), and a median jumps from one step to the next where
 * this moves smoothly (on motion-corrected hard fields F1 0.870 with the
 * median, 0.876 with this). */
static int field_radius(const soma_fit *fits, size_t np, size_t min_n, double *rad)
{
    *rad = NAN;
    float *v = caimg_malloc(np + 1, sizeof *v, "soma sizes");
    if (!v) return CAIMG_ENOMEM;
    size_t n = 0;
    for (size_t q = 0; q < np; q++)
        if (fits[q].corr >= MIN_CORR) v[n++] = (float)sqrt(fits[q].a * fits[q].b);
    if (n >= min_n && n > 0) {
        qsort(v, n, sizeof *v, cmp_float);
        double s = 0;
        for (size_t k = n / 4; k < n - n / 4; k++) s += v[k];
        *rad = s / (double)(n - 2 * (n / 4));
    }
    free(v);
    return 0;
}

/* The soma-likeness map: the largest of the template responses, each in
 * robust noise units; `scale` receives the template size that won. */
static int soma_map(const float *hp, size_t h, size_t w, double R, float *z, float *scale,
                    float *work, float *tmp, const uint8_t *skip)
{
    size_t hw = h * w;
    fftcorr fc;
    int rc = fftcorr_init(&fc, h, w, (size_t)ceil(1.5 * 1.25 * R + 1) + 1);
    if (rc) return rc;
    fftcorr_image(&fc, hp);
    for (size_t i = 0; i < hw; i++) { z[i] = -HUGE_VALF; scale[i] = 1; }
    static const double scales[3] = {0.8, 1.0, 1.25};
    for (int si = 0; si < 3; si++)
        for (int ring = 0; ring < 2; ring++) {
            double Rs = scales[si] * R, Ro = 1.5 * Rs + 1;
            long kr = (long)ceil(Ro), kk = 2 * kr + 1;
            float *k = caimg_calloc((size_t)(kk * kk), sizeof *k, "a template");
            if (!k) { fftcorr_free(&fc); return CAIMG_ENOMEM; }
            double pos = 0, neg = 0;
            for (long dy = -kr; dy <= kr; dy++)
                for (long dx = -kr; dx <= kr; dx++) {
                    double rr = sqrt((double)(dy * dy + dx * dx));
                    float v = 0;
                    if (rr <= Rs) v = (!ring || rr >= 0.55 * Rs) ? 1.0f : (rr < 0.4 * Rs ? -1.0f : 0.0f);
                    else if (rr > Rs + 1 && rr <= Ro) v = -1.0f;
                    k[(dy + kr) * kk + dx + kr] = v;
                    if (v > 0) pos += v; else neg -= v;
                }
            for (long j = 0; j < kk * kk; j++) k[j] = (float)(k[j] > 0 ? k[j] / pos : k[j] / neg);
            fftcorr_apply(&fc, k, kr, work);
            free(k);
            if (robust_z(work, hw, tmp, skip)) { fftcorr_free(&fc); return 1; }
            for (size_t i = 0; i < hw; i++)
                if (work[i] > z[i]) { z[i] = work[i]; scale[i] = (float)scales[si]; }
        }
    fftcorr_free(&fc);
    return 0;
}

/* The image in which somata are sought: the mean image less its background
 * and less the somata found so far (`cells`), into `res`; and the same
 * divided by its local noise level, the mean absolute value of the residual
 * over a Gaussian of 3 d, into `hpn`, so that brighter parts of the field
 * (vignetting, denser neuropil), whose texture is proportionally stronger,
 * do not produce more false somata. */
static void prepare(const float *mean, const float *cells, size_t h, size_t w, double d,
                    float *hpn, float *res, float *a, float *tmp, int keep_cells)
{
    size_t hw = h * w;
    /* Background: a Gaussian of 1.5 d over the mean image without the
     * somata found so far (so that crowded cells do not raise it). */
    for (size_t i = 0; i < hw; i++) a[i] = mean[i] - cells[i];
    roi_gauss_blur(a, a, h, w, 1.5 * d, tmp);
    for (size_t i = 0; i < hw; i++) {
        res[i] = mean[i] - a[i] - cells[i];
        a[i] = fabsf(res[i]);
    }
    roi_gauss_blur(a, a, h, w, 3 * d, tmp);
    double tot = 0;
    for (size_t i = 0; i < hw; i++) tot += a[i];
    float floor_ = (float)(0.1 * tot / (double)hw + 1e-20);
    for (size_t i = 0; i < hw; i++)
        hpn[i] = (res[i] + (keep_cells ? cells[i] : 0)) / (a[i] + floor_);
}

/* Where the cell has shown some activity (S, the activity significance
 * left after the cells found from activity were taken out), combine the two
 * kinds of evidence as Stouffer's z, (z + S) / sqrt(2), which is again in
 * noise units for independent noise; a soma that is silent keeps its z. */
static void combine(float *z, const float *act, size_t n)
{
    if (!act) return;
    for (size_t i = 0; i < n; i++) {
        float a = act[i];
        if (!isfinite(a)) continue;
        float c = (z[i] + a) * (float)M_SQRT1_2;
        if (c > z[i]) z[i] = c;
    }
}

/* The same for the own-light map's soma map zo: where it is larger,
 * (z + zo) / sqrt(2).  Only ever together with the mean image: the map is
 * noisy pixel by pixel (the slope of each pixel's photon-noisy changes),
 * and alone its chance peaks in a field without cells would be somata;
 * added to the mean image's evidence it lifts dim somata, whose own light
 * sets them apart from the neuropil's texture, over the threshold (13 hard
 * fields: 55 more of 2132 somata found and 19 fewer false cells; see
 * caimg-roi(1), ACCURACY). */
static void combine_own(float *z, const float *zo, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float c = (z[i] + zo[i]) * (float)M_SQRT1_2;
        if (isfinite(c) && c > z[i]) z[i] = c;
    }
}

/* Whether the mean image (its residual `res` over the valid box, after
 * prepare()) varies no more than its own noise makes it: the temporal
 * variance of each pixel over the number of frames (an upper bound where
 * cells are active), plus the rounding of a float image.  In a blank
 * movie, constant or noise alone, every "soma" of the mean image is
 * chance, and with thousands of places to look some reach any threshold
 * in noise units; in a recording the neuropil's texture alone varies many
 * times more (simulated fields: 6 to 270 times; the real movies of
 * ../shared/realdata, of 20 and 29 frames: 2.8 to 376 times). */
static int mean_is_noise(const caimg_roi_summary *s, const size_t box[4], const float *res)
{
    size_t h = box[1] - box[0], w = box[3] - box[2];
    double pr = 0, pn = 0, lvl = 0;
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++) {
            size_t i = (y + box[0]) * s->width + x + box[2];
            double sd = s->std[i];
            pr += (double)res[y * w + x] * res[y * w + x];
            pn += sd * sd;
            lvl += fabs(s->mean[i]);
        }
    double n = (double)(h * w), rnd = 1e-5 * lvl / n;
    pn = pn / n / (double)(s->frames ? s->frames : 1) + rnd * rnd;
    return pr / n <= 1.5 * pn;
}

/* Whether crop pixel (y, x) is inside the ellipse of fit f (c, sn: the
 * cosine and sine of its angle), as its ROI mask is drawn. */
static int in_ellipse(const soma_fit *f, double c, double sn, long y, long x)
{
    double dy = (double)y - f->cy, dx = (double)x - f->cx;
    double u = (dx * c + dy * sn) / f->a, v = (-dx * sn + dy * c) / f->b;
    return u * u + v * v <= 1;
}

/* How many pixels of ROI i of r (image coordinates) are inside the
 * ellipse of fit f (crop coordinates, the crop at y0, x0). */
static size_t roi_in_ellipse(const caimg_roiset *r, size_t i, const soma_fit *f, double c,
                             double sn, size_t y0, size_t x0)
{
    size_t in = 0;
    for (int64_t k = r->pix_start[i]; k < r->pix_start[i + 1]; k++)
        in += (size_t)in_ellipse(f, c, sn, r->pix_index[2 * k] - (long)y0,
                                 r->pix_index[2 * k + 1] - (long)x0);
    return in;
}

/* The cells found from activity (ROIs i < n0 of source 1, not yet
 * absorbed) of which fit f's ellipse holds at least ROI_ABSORB of the
 * pixels, into ids (count returned); *inside is the number of their pixels
 * in the ellipse.  bb holds each ROI's bounding box in crop coordinates
 * (y0, y1, x0, x1 inclusive; y1 < y0 for none). */
static size_t absorbable(const caimg_roiset *r, size_t n0, const int32_t *absorbed_by,
                         const long *bb, const soma_fit *f, double c, double sn, long ext,
                         size_t y0, size_t x0, size_t *ids, size_t *inside)
{
    size_t na = 0;
    long fy = (long)f->cy, fx = (long)f->cx;
    *inside = 0;
    for (size_t i = 0; i < n0; i++) {
        const long *b = bb + 4 * i;
        if (absorbed_by[i] >= 0 || r->stats[i * CAIMG_ROI_NSTATS + CAIMG_ROI_SOURCE] != 1
            || b[1] < fy - ext || b[0] > fy + ext || b[3] < fx - ext || b[2] > fx + ext)
            continue;
        size_t ni = (size_t)(r->pix_start[i + 1] - r->pix_start[i]);
        size_t in = roi_in_ellipse(r, i, f, c, sn, y0, x0);
        if ((double)in >= ROI_ABSORB * (double)ni) {
            ids[na++] = i;
            *inside += in;
        }
    }
    return na;
}

/* Add soma fit f, at its least-squares brightness in the residual image
 * res over the fit's window (pixels outside the image count as zeros), to
 * the image of the cells found, `cells`, if that brightness is positive. */
static void add_fit(const soma_fit *f, const float *res, size_t h, size_t w, float *cells)
{
    double c = cos(f->th), sn = sin(f->th);
    long ext = (long)ceil(f->a) + 2;
    double st = 0, stt = 0, stv = 0, sv = 0, n = (double)((2 * ext + 1) * (2 * ext + 1));
    for (long yy = (long)f->cy - ext; yy <= (long)f->cy + ext; yy++)
        for (long xx = (long)f->cx - ext; xx <= (long)f->cx + ext; xx++) {
            if (yy < 0 || xx < 0 || yy >= (long)h || xx >= (long)w) continue;
            double t = soma_model(f, c, sn, (double)yy, (double)xx), v = res[(size_t)yy * w + (size_t)xx];
            st += t; stt += t * t; stv += t * v; sv += v;
        }
    double var = stt - st * st / n, amp = var > 0 ? (stv - st * sv / n) / var : 0;
    if (!(amp > 0)) return;
    for (long yy = (long)f->cy - ext; yy <= (long)f->cy + ext; yy++)
        for (long xx = (long)f->cx - ext; xx <= (long)f->cx + ext; xx++) {
            if (yy < 0 || xx < 0 || yy >= (long)h || xx >= (long)w) continue;
            cells[(size_t)yy * w + (size_t)xx] += (float)(amp * soma_model(f, c, sn, (double)yy, (double)xx));
        }
}

/* Take the cells found from activity out of the image too, into `cells`,
 * those that the mean image shows as their activity outlined them: a soma
 * fitted at the cell's centre (cen[2 * k], cen[2 * k + 1], of ROI cid[k])
 * whose ellipse matches the cell's pixels with IoU CELL_MATCH or more.  A
 * bright active cell otherwise dominates the soma map around it, and the
 * peak of a dim neighbour within NMS_RADIUS of its own is never a local
 * maximum (on seed 301's hard field, three somata with z of 3 to 5 were
 * lost so).  A cell the fit does not match stays: it is most often the
 * bright part of a soma, outlined from a few active bins, that the soma
 * found later absorbs. */
static int take_out_found(const caimg_roiset *r, const float *cen, const size_t *cid, size_t ncen,
                          const float *hp, const float *res, size_t h, size_t w, double R,
                          size_t y0, size_t x0, float *cells)
{
    peak *cp = caimg_malloc(ncen, sizeof *cp, "soma fits");
    soma_fit *cf = caimg_malloc(ncen, sizeof *cf, "soma fits");
    int rc = cp && cf ? 0 : CAIMG_ENOMEM;
    for (size_t k = 0; !rc && k < ncen; k++) {
        long y = CAIMG_MAX(0, CAIMG_MIN(lround(cen[2 * k]), (long)h - 1));
        long x = CAIMG_MAX(0, CAIMG_MIN(lround(cen[2 * k + 1]), (long)w - 1));
        cp[k].i = (int32_t)((size_t)y * w + (size_t)x);
        cp[k].z = 0;
    }
    if (!rc) rc = fit_peaks(hp, h, w, cp, ncen, R, R, 1.5, FIT_REACH, NULL, 0, cf);
    for (size_t k = 0; !rc && k < ncen; k++) {
        const soma_fit *f = &cf[k];
        double c = cos(f->th), sn = sin(f->th);
        long ext = (long)ceil(f->a) + 2;
        size_t ne = 0, ni = (size_t)(r->pix_start[cid[k] + 1] - r->pix_start[cid[k]]);
        for (long yy = (long)f->cy - ext; yy <= (long)f->cy + ext; yy++)
            for (long xx = (long)f->cx - ext; xx <= (long)f->cx + ext; xx++)
                ne += (size_t)in_ellipse(f, c, sn, yy, xx);
        size_t in = roi_in_ellipse(r, cid[k], f, c, sn, y0, x0);
        if ((double)in >= CELL_MATCH * (double)(ni + ne - in)) add_fit(f, res, h, w, cells);
    }
    free(cp);
    free(cf);
    return rc;
}

int roi_anatomy(const caimg_roi_params *p, const caimg_roi_summary *s, const size_t box[4],
                caimg_roiset *r, int add, const float *act, const float *own,
                int32_t *absorbed_by)
{
    double thr = p->anatomy;
    size_t y0 = box[0], x0 = box[2], h = box[1] - box[0], w = box[3] - box[2], hw = h * w;
    size_t X = s->width;
    double d = p->diameter, R = d / 2;
    for (size_t i = 0; absorbed_by && i < r->n; i++) absorbed_by[i] = -1;
    if (h < 3 || w < 3) return 0;
    float *mean = caimg_malloc(hw, sizeof *mean, "the anatomy map");
    float *cells = caimg_calloc(hw, sizeof *cells, "the anatomy map");
    float *hp = caimg_malloc(hw, sizeof *hp, "the anatomy map");
    float *res = caimg_malloc(hw, sizeof *res, "the anatomy map");
    float *tmp = caimg_malloc(hw, sizeof *tmp, "the anatomy map");
    float *work = caimg_malloc(hw, sizeof *work, "the anatomy map");
    float *z = caimg_malloc(hw, sizeof *z, "the anatomy map");
    float *scale = caimg_malloc(hw, sizeof *scale, "the anatomy map");
    uint8_t *owner = caimg_calloc(hw, 1, "the anatomy map");
    uint8_t *excl = caimg_malloc(hw, 1, "the anatomy map");
    float *zo = own && add ? caimg_malloc(hw, sizeof *zo, "the anatomy map") : NULL;
    /* The largest semi-axis an ROI can have: the field's soma radius is
     * at most 1.5 R, and an ellipse of aspect 1.45 at that mean radius. */
    long ext_max = (long)ceil(1.5 * R * sqrt(1.45)) + 3;
    size_t wmax = (size_t)((2 * ext_max + 1) * (2 * ext_max + 1));
    int32_t *yx = caimg_malloc(2 * wmax, sizeof *yx, "a footprint");
    float *wt = caimg_malloc(wmax, sizeof *wt, "a footprint");
    peak *pk = NULL;
    soma_fit *fits = NULL;
    /* The ROIs found before (from activity), which a soma may absorb. */
    size_t n0 = r->n;
    long *bb = absorbed_by ? caimg_malloc(4 * n0 + 1, sizeof *bb, "the anatomy map") : NULL;
    float *cen = caimg_malloc(2 * n0 + 2, sizeof *cen, "the anatomy map");
    size_t *cid = caimg_malloc(n0 + 1, sizeof *cid, "the anatomy map");
    size_t *ids = absorbed_by ? caimg_malloc(n0 + 1, sizeof *ids, "the anatomy map") : NULL;
    int rc = 0;
    if (!mean || !cells || !hp || !res || !tmp || !work || !z || !scale || !owner || !excl || !yx
        || !wt || !cen || !cid || (absorbed_by && (!bb || !ids)) || (own && add && !zo)) {
        rc = CAIMG_ENOMEM;
        goto out;
    }
    for (size_t y = 0; y < h; y++) memcpy(mean + y * w, s->mean + (y + y0) * X + x0, w * sizeof *mean);
    prepare(mean, cells, h, w, d, hp, res, work, tmp, 0);
    int noise = mean_is_noise(s, box, res), flat = 0;
    rc = soma_map(hp, h, w, R, z, scale, work, tmp, NULL);
    if (rc == 1) { rc = 0; flat = 1; }
    if (rc) goto out;
    combine(z, act, hw);

    /* Where the ROIs found so far are, and their centres: a soma fitted
     * beside one leaves out the pixels nearer to that cell, as it does
     * those nearer to another peak of its round (a bright cell found from
     * activity would otherwise pull the fit of a dim neighbour onto
     * itself). */
    size_t ncen = 0;
    for (size_t i = 0; i < n0; i++) {
        long *b = bb ? bb + 4 * i : NULL;
        if (b) {
            b[0] = b[2] = LONG_MAX;
            b[1] = b[3] = LONG_MIN;
        }
        double sy = 0, sx = 0;
        for (int64_t k = r->pix_start[i]; k < r->pix_start[i + 1]; k++) {
            long y = r->pix_index[2 * k] - (long)y0, x = r->pix_index[2 * k + 1] - (long)x0;
            sy += (double)y;
            sx += (double)x;
            if (b) {
                b[0] = CAIMG_MIN(b[0], y); b[1] = CAIMG_MAX(b[1], y);
                b[2] = CAIMG_MIN(b[2], x); b[3] = CAIMG_MAX(b[3], x);
            }
            if (y < 0 || x < 0 || y >= (long)h || x >= (long)w) continue;
            owner[(size_t)y * w + (size_t)x] = 1;
        }
        int64_t ni = r->pix_start[i + 1] - r->pix_start[i];
        if (ni > 0) {
            cen[2 * ncen] = (float)(sy / (double)ni);
            cen[2 * ncen + 1] = (float)(sx / (double)ni);
            cid[ncen++] = i;
        }
    }
    if (flat) goto out;
    if (!add || noise) goto final;
    rc = peak_exclusion(owner, h, w, excl, tmp);
    if (rc) goto out;
    double area0 = M_PI * d * d / 4;
    long nr = (long)ceil(NMS_RADIUS * d);
    size_t cap = 0;
    double rref = R;
    {
        /* The size of this field's somata: the typical radius of the fits
         * at the peaks of the image as it is (before the cells found from
         * activity are taken out), with sizes free up to 1.5 R (at least
         * MIN_SIZED of them, or the expected R).  Every fit is then made
         * with radii up to that size, which the fine step does not exceed:
         * a fit that grows beyond is mostly a soma taken together with a
         * neighbour or with the neuropil's texture around it (an ROI of IoU
         * 0.3-0.5 with the soma), which the model, with its one extra
         * parameter, always explains a little better.  The size is
         * measured, not taken from d, so that a diameter set too small or
         * too large does not cut or inflate every ROI (larger somata are
         * still found from activity). */
        size_t np;
        rc = find_peaks(z, excl, h, w, thr, nr, &pk, &cap, &np);
        if (rc) goto out;
        if (np) {
            fits = caimg_malloc(np, sizeof *fits, "soma fits");
            if (!fits) { rc = CAIMG_ENOMEM; goto out; }
            rc = fit_peaks(hp, h, w, pk, np, R, R, 1.5, FIT_REACH, cen, ncen, fits);
            if (rc) goto out;
            double rad;
            rc = field_radius(fits, np, MIN_SIZED, &rad);
            if (rc) goto out;
            rref = isfinite(rad) ? rad : R;
            r->soma_diameter = 2 * rad;
        }
    }
    if (ncen) {
        rc = take_out_found(r, cen, cid, ncen, hp, res, h, w, R, y0, x0, cells);
        if (rc) goto out;
        prepare(mean, cells, h, w, d, hp, res, work, tmp, 0);
        rc = soma_map(hp, h, w, R, z, scale, work, tmp, owner);
        if (rc == 1) { rc = 0; goto final; }
        if (rc) goto out;
        combine(z, act, hw);
    }
    /* The own light joins only now: the soma size is measured on the
     * somata of the mean image, as before it (the dim somata it lifts are
     * fitted less well and smaller, and would shrink the size).  It then
     * joins every round's map: a dim soma beside a brighter one is no
     * maximum of the first round (the brighter one's peak is within
     * NMS_RADIUS), and once that one is fitted and taken out, only its own
     * light lifts it again.  A flat own-light map adds nothing. */
    if (zo) {
        rc = soma_map(own, h, w, R, zo, scale, work, tmp, NULL);
        if (rc < 0) goto out;
        if (rc == 1) {
            free(zo);
            zo = NULL;
        }
        rc = 0;
    }
    if (zo) combine_own(z, zo, hw);

    for (int round = 0; round < ROUNDS; round++) {
        size_t np;
        rc = find_peaks(z, excl, h, w, thr, nr, &pk, &cap, &np);
        if (rc) goto out;
        if (np == 0) break;
        free(fits);
        fits = caimg_malloc(np, sizeof *fits, "soma fits");
        if (!fits) { rc = CAIMG_ENOMEM; goto out; }
        rc = fit_peaks(hp, h, w, pk, np, R, rref, 1.0, FIT_REACH, cen, ncen, fits);
        if (rc) goto out;
        size_t accepted = 0;
        for (size_t q = 0; q < np; q++) {
            if (p->max_rois && r->n >= p->max_rois) break;
            const soma_fit *f = &fits[q];
            /* A lower bar than for measuring the size: many dim somata
             * are fitted at 0.2-0.3 (their own pixels against the
             * neuropil's texture), and the fit is one of the classifier's
             * features, which weighs it with the others (seven hard
             * fields: 13 more somata outlined, F1 +0.005). */
            if (f->corr < CAND_CORR) continue;
            double c = cos(f->th), sn = sin(f->th);
            long ext = (long)ceil(f->a) + 2;
            size_t m = 0, shared = 0;
            for (long yy = (long)f->cy - ext; yy <= (long)f->cy + ext; yy++)
                for (long xx = (long)f->cx - ext; xx <= (long)f->cx + ext; xx++) {
                    if (yy < 0 || xx < 0 || yy >= (long)h || xx >= (long)w) continue;
                    if (!in_ellipse(f, c, sn, yy, xx)) continue;
                    double t = soma_model(f, c, sn, (double)yy, (double)xx);
                    size_t g = (size_t)yy * w + (size_t)xx;
                    if (owner[g]) shared++;
                    yx[2 * m] = (int32_t)((size_t)yy + y0);
                    yx[2 * m + 1] = (int32_t)((size_t)xx + x0);
                    wt[m] = (float)(t > 0.05 ? t : 0.05);
                    m++;
                }
            /* The pixels of cells it absorbs are not taken by others. */
            size_t na = 0, inside = 0;
            if (absorbed_by)
                na = absorbable(r, n0, absorbed_by, bb, f, c, sn, ext, y0, x0, ids, &inside);
            shared -= CAIMG_MIN(shared, inside);
            if ((double)m < 0.25 * area0 || 2 * shared > m) continue;
            for (size_t q2 = 0; q2 < na; q2++) absorbed_by[ids[q2]] = (int32_t)r->n;
            rc = caimg_roiset_add(r, m, yx, wt, NAN, 2);
            if (rc) goto out;
            r->stats[(r->n - 1) * CAIMG_ROI_NSTATS + CAIMG_ROI_FIT] = f->corr;
            r->stats[(r->n - 1) * CAIMG_ROI_NSTATS + CAIMG_ROI_NUCLEUS] = f->beta;
            for (size_t k = 0; k < m; k++) {
                size_t g = (size_t)(yx[2 * k] - (int32_t)y0) * w + (size_t)(yx[2 * k + 1] - (int32_t)x0);
                owner[g] = excl[g] = 1;
            }
            add_fit(f, res, h, w, cells);
            accepted++;
        }
        if (!accepted) break;
        /* Take the somata found out of the image and look again: dim cells
         * next to bright ones show up once their neighbours are gone, and
         * the noise is measured without the cells. */
        prepare(mean, cells, h, w, d, hp, res, work, tmp, 0);
        rc = soma_map(hp, h, w, R, z, scale, work, tmp, owner);
        if (rc == 1) { rc = 0; break; }
        if (rc) goto out;
        combine(z, act, hw);
        if (zo) combine_own(z, zo, hw);
    }
final:
    /* Every ROI's contrast, in the mean image with all cells in it but in
     * units of the noise measured away from them (the residual's texture),
     * and, for those not found here, how well a soma model fits there
     * and the depth of its nucleus. */
    {
        prepare(mean, cells, h, w, d, hp, res, work, tmp, 1);
        uint8_t *skip = caimg_malloc(hw, 1, "the anatomy map");
        float *d2 = caimg_malloc(hw, sizeof *d2, "the anatomy map");
        if (!skip || !d2) { free(skip); free(d2); rc = CAIMG_ENOMEM; goto out; }
        rc = roi_edt(owner, h, w, d2);
        for (size_t i = 0; !rc && i < hw; i++) skip[i] = d2[i] <= (float)(R * R);
        free(d2);
        if (!rc) rc = soma_map(hp, h, w, R, z, scale, work, tmp, skip);
        free(skip);
        if (rc == 1) { rc = 0; goto out; }
        if (rc) goto out;
        size_t pmax2 = (size_t)(2 * ceil(fit_radius(R)) + 1);
        pmax2 *= pmax2;
        patch P;
        P.y = malloc(pmax2 * sizeof *P.y);
        P.x = malloc(pmax2 * sizeof *P.x);
        P.v = malloc(pmax2 * sizeof *P.v);
        P.r = malloc(pmax2 * sizeof *P.r);
        if (!P.y || !P.x || !P.v || !P.r) rc = caimg_error(CAIMG_ENOMEM, "out of memory fitting somata");
        for (size_t i = 0; !rc && i < r->n; i++) {
            double *st = r->stats + i * CAIMG_ROI_NSTATS;
            double cy = 0, cx = 0;
            size_t cnt = 0;
            for (int64_t k = r->pix_start[i]; k < r->pix_start[i + 1]; k++) {
                cy += r->pix_index[2 * k];
                cx += r->pix_index[2 * k + 1];
                cnt++;
            }
            cy = cy / (double)cnt - (double)y0;
            cx = cx / (double)cnt - (double)x0;
            long iy = (long)floor(cy + 0.5), ix = (long)floor(cx + 0.5);
            float best = -HUGE_VALF;
            for (long dy = -2; dy <= 2; dy++)
                for (long dx = -2; dx <= 2; dx++) {
                    long yy = iy + dy, xx = ix + dx;
                    if (yy < 0 || xx < 0 || yy >= (long)h || xx >= (long)w || dy * dy + dx * dx > 4)
                        continue;
                    best = CAIMG_MAX(best, z[(size_t)yy * w + (size_t)xx]);
                }
            st[CAIMG_ROI_CONTRAST] = isfinite(best) ? best : NAN;
            if (st[CAIMG_ROI_SOURCE] != 2 && iy >= 0 && ix >= 0 && iy < (long)h && ix < (long)w) {
                soma_fit f;
                fit_soma(hp, h, w, (double)iy, (double)ix, R, R, 1.2, FIT_REACH, NULL, 0, &P, &f);
                st[CAIMG_ROI_FIT] = f.corr;
                st[CAIMG_ROI_NUCLEUS] = f.beta;
            }
        }
        free(P.y);
        free(P.x);
        free(P.v);
        free(P.r);
    }
out:
    free(mean); free(cells); free(hp); free(res); free(tmp); free(work); free(z); free(scale); free(owner);
    free(excl);
    free(zo);
    free(bb); free(ids); free(cen); free(cid);
    free(yx); free(wt); free(pk); free(fits);
    return rc;
}

/* ---- the soma diameter, measured ------------------------------------------ */

#define EST_START 12.0      /* the search starts at the usual soma size */
#define EST_STEP 1.189207115 /* 2^(1/4): four expected sizes per octave */
#define EST_MIN 4.0         /* smaller somata are a few pixels: not fitted */
#define EST_MAX 48.0
#define EST_PEAKS 200       /* the strongest peaks fitted at each size */
#define EST_MIN_FITS 6      /* good fits needed to measure a size */
#define EST_THRESHOLD 3     /* peaks' threshold when --anatomy-threshold is 0 */
#define EST_MAX_SLOPE 0.3   /* a size of its own: see roi_estimate_diameter() */
/* The measured diameter over the true mean diameter of simulated somata
 * (caimg simulate, 17 fields of mean diameter 8, 12, 18 and 24 pixels:
 * 0.99-1.04, mean 1.015): the fits good enough to count are a little more
 * often the larger, brighter somata. */
#define EST_REACH 2         /* see FIT_REACH */
#define EST_BIAS 1.015

typedef struct {
    size_t h, w;
    float *mean, *cells, *hp, *res, *tmp, *work, *z, *scale;
    peak *pk;
    size_t cap;
    soma_fit *fits;
} estimator;

/* The radius the first round of roi_anatomy() measures when the expected
 * diameter is d: peaks of the soma map at d, each fitted with radii free
 * from 0.7 to 1.5 times d/2, and the interquartile mean of the good fits'
 * radii (NAN when fewer than EST_MIN_FITS are good). */
static int radius_at(estimator *E, double d, double thr, double *rad)
{
    size_t h = E->h, w = E->w, np;
    double R = d / 2;
    *rad = NAN;
    prepare(E->mean, E->cells, h, w, d, E->hp, E->res, E->work, E->tmp, 0);
    int rc = soma_map(E->hp, h, w, R, E->z, E->scale, E->work, E->tmp, NULL);
    if (rc == 1) return 0;
    if (rc) return rc;
    rc = find_peaks(E->z, NULL, h, w, thr, (long)ceil(NMS_RADIUS * d), &E->pk, &E->cap, &np);
    if (rc || np == 0) return rc;
    if (np > EST_PEAKS) np = EST_PEAKS;
    rc = fit_peaks(E->hp, h, w, E->pk, np, R, R, 1.5, EST_REACH, NULL, 0, E->fits);
    if (!rc) rc = field_radius(E->fits, np, EST_MIN_FITS, rad);
    return rc;
}

int roi_estimate_diameter(const caimg_roi_params *p, const caimg_roi_summary *s,
                          double *diameter, int *measured)
{
    size_t box[4] = {p->valid[0], p->valid[1], p->valid[2], p->valid[3]};
    if (box[1] == 0) {
        box[0] = box[2] = 0;
        box[1] = s->height;
        box[3] = s->width;
    }
    estimator E;
    memset(&E, 0, sizeof E);
    size_t h = E.h = box[1] - box[0], w = E.w = box[3] - box[2], hw = h * w;
    /* Somata of a third of the field or larger cannot be told from its
     * background (a Gaussian of 1.5 d). */
    double dmax = CAIMG_MIN(EST_MAX, (double)CAIMG_MIN(h, w) / 3);
    /* Unmeasured: the usual size, if the field can hold such somata. */
    *diameter = floor(10 * CAIMG_MAX(2, CAIMG_MIN(EST_START, dmax)) + 0.5) / 10;
    *measured = 0;
    if (dmax < EST_MIN) return 0;
    float **bufs[] = {&E.mean, &E.cells, &E.hp, &E.res, &E.tmp, &E.work, &E.z, &E.scale};
    int rc = 0;
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++)
        if (!(*bufs[k] = caimg_calloc(hw, sizeof(float), "the soma-size search"))) rc = CAIMG_ENOMEM;
    E.fits = caimg_malloc(EST_PEAKS, sizeof *E.fits, "the soma-size search");
    if (rc || !E.fits) { rc = CAIMG_ENOMEM; goto out; }
    for (size_t y = 0; y < h; y++)
        memcpy(E.mean + y * w, s->mean + (y + box[0]) * s->width + box[2], w * sizeof *E.mean);
    double d0 = CAIMG_MIN(EST_START, dmax);
    prepare(E.mean, E.cells, h, w, d0, E.hp, E.res, E.work, E.tmp, 0);
    if (mean_is_noise(s, box, E.res)) goto out;
    /* The measured size is drawn towards the expected one (the fits' radii
     * are bounded by it and the soma map is tuned to it), so it is asked
     * at expected sizes a quarter octave apart, from 12 pixels towards
     * where it points, until the measurement crosses the expectation:
     * there the two agree, and that diameter is taken (interpolated in
     * log size).  The crossing nearest the usual size is the one found
     * when the field has somata of two kinds (e.g. bright small cells
     * among larger dim ones). */
    /* Peaks as the mean-image search takes them; with that search off
     * (--anatomy-threshold 0), at its default threshold. */
    double thr = p->anatomy > 0 ? p->anatomy : EST_THRESHOLD;
    double rad, dprev = d0;
    rc = radius_at(&E, d0, thr, &rad);
    if (rc || !isfinite(rad)) goto out;
    double gprev = log(2 * rad / d0);
    int dir = gprev > 0 ? 1 : -1;
    double est = 2 * rad;
    for (int k = 1;; k++) {
        double dk = d0 * pow(EST_STEP, dir * k);
        if (dk < EST_MIN || dk > dmax) break;
        rc = radius_at(&E, dk, thr, &rad);
        if (rc || !isfinite(rad)) break;
        double g = log(2 * rad / dk);
        if (dir > 0 ? g <= 0 : g > 0) {
            double t = gprev / (gprev - g);
            est = exp(log(dprev) + t * (log(dk) - log(dprev)));
            /* How much the measurement followed the expectation across
             * the crossing (d log measured / d log expected): somata have
             * a size of their own (0.05-0.22 in simulated fields), the
             * neuropil's texture has none (0.3-0.8 in cell-free ones). */
            if (fabs((g - gprev) / (log(dk) - log(dprev)) + 1) > EST_MAX_SLOPE) est = NAN;
            break;
        }
        dprev = dk;
        gprev = g;
        est = 2 * rad;
    }
    est /= EST_BIAS;
    if (!rc && isfinite(est)) {
        *diameter = CAIMG_MAX(EST_MIN, CAIMG_MIN(dmax, floor(10 * est + 0.5) / 10));
        *measured = 1;
    }
out:
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) free(*bufs[k]);
    free(E.pk);
    free(E.fits);
    return rc;
}
