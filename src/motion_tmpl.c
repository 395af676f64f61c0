/* motion_tmpl.c -- building the template from the data, and estimating the
 * bidirectional-scan offset.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include <gsl/gsl_cblas.h>

#include "caimg/motion.h"
#include "internal.h"
#include "motion_impl.h"

#ifdef HAVE_OPENBLAS
/* OpenBLAS's own thread control; not part of the CBLAS interface. */
extern void openblas_set_num_threads(int n);
extern int openblas_get_num_threads(void);
#endif


/* ---- bidirectional scanning ---------------------------------------------- */

/* caimg_mc_estimate_bidi on nthr threads. */
static int estimate_bidi(const float *mean, size_t ny, size_t nx, int nthr, double *offset)
{
    if (ny < 3 || nx < 16)
        return caimg_error(CAIMG_EINVAL, "image of %zux%zu is too small to estimate a bidirectional offset",
                           ny, nx);
    long L = (long)(nx / 8);
    size_t nr = (ny - 1) / 2;   /* odd rows with a row below */
    double *c = caimg_calloc((size_t)(2 * L + 1), sizeof(double), "bidirectional correlation");
    float *a = caimg_malloc(nr * nx, 2 * sizeof(float), "rows");
    double *sab = caimg_calloc((size_t)(2 * L + 1) * 5, sizeof(double), "sums");
    if (!c || !a || !sab) {
        free(c);
        free(a);
        free(sab);
        return CAIMG_ENOMEM;
    }
    float *b = a + nr * nx;
    /* Per lag s, the Pearson correlation, pooled over all odd rows, of odd
     * row a(x) with the mean of its even neighbours b(x - s): an odd row
     * displaced right by k matches at s = k.  Averaging the rows above and
     * below keeps vertical structure from biasing the estimate.  The rows
     * are made mean-free once; the lags are independent. */
    for (size_t r = 0; r < nr; r++) {
        size_t y = 2 * r + 1;
        float *ar = a + r * nx, *br = b + r * nx;
        double ma = 0, mb = 0;
        for (size_t x = 0; x < nx; x++) {
            ar[x] = mean[y * nx + x];
            br[x] = 0.5f * (mean[(y - 1) * nx + x] + mean[(y + 1) * nx + x]);
            ma += ar[x];
            mb += br[x];
        }
        ma /= (double)nx;
        mb /= (double)nx;
        for (size_t x = 0; x < nx; x++) {
            ar[x] -= (float)ma;
            br[x] -= (float)mb;
        }
    }
#pragma omp parallel for schedule(dynamic, 4) num_threads(nthr)
    for (long s = -L; s <= L; s++) {
        double *q = sab + 5 * (s + L);
        long x0 = s > 0 ? s : 0, x1 = s < 0 ? (long)nx + s : (long)nx;
        for (size_t r = 0; r < nr; r++) {
            const float *ar = a + r * nx, *br = b + r * nx;
            for (long x = x0; x < x1; x++) {
                double u = ar[x], v = br[x - s];
                q[0] += u * v;
                q[1] += u;
                q[2] += v;
                q[3] += u * u;
                q[4] += v * v;
            }
        }
    }
    long best = 0;
    for (long s = -L; s <= L; s++) {
        double *q = sab + 5 * (s + L);
        double n = (double)nr * (double)(nx - (size_t)labs(s));
        double cov = q[0] - q[1] * q[2] / n, va = q[3] - q[1] * q[1] / n, vb = q[4] - q[2] * q[2] / n;
        c[s + L] = va > 0 && vb > 0 ? cov / sqrt(va * vb) : 0;
        if (c[s + L] > c[best + L]) best = s;
    }
    double off = 0;
    if (best > -L && best < L) {
        double y0 = c[best - 1 + L], y1 = c[best + L], y2 = c[best + 1 + L];
        double den = y0 - 2 * y1 + y2;
        if (den < 0) off = 0.5 * (y0 - y2) / den;
        if (off > 0.5) off = 0.5;
        if (off < -0.5) off = -0.5;
    }
    *offset = (double)best + off;
    free(sab);
    free(c);
    free(a);
    return 0;
}

int caimg_mc_estimate_bidi(const float *mean, size_t ny, size_t nx, double *offset)
{
    return estimate_bidi(mean, ny, nx, caimg_nthreads(), offset);
}

/* ---- template ------------------------------------------------------------ */

/* The template sample: n frames of samples of type dt, fb bytes each,
 * contiguous from b or at ptrs[i]. */
typedef struct {
    const char *b;
    const void *const *ptrs;
    caimg_dtype dt;
    size_t fb;
} sample_t;

static const void *sample_frame(const sample_t *s, size_t i)
{
    return s->ptrs ? s->ptrs[i] : s->b + i * s->fb;
}

/* Clean frame i of the sample into w->frame (bidi-corrected); returns 0 if
 * it is unusable. */
static int load(const caimg_mc_plan *p, mc_work *w, const sample_t *frames, size_t i, float *mean)
{
    if (!mc_clean(p, sample_frame(frames, i), frames->dt, w->frame, mean)) return 0;
    mc_bidi_apply(p, w->frame, w->tmp);
    return 1;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Mean of n floats spaced `stride` apart, leaving out the lowest and
 * highest tenth (so a few failed registrations cannot drag it), using tmp
 * (n floats). */
static float trimmed_mean(const float *v, size_t stride, size_t n, float *tmp)
{
    for (size_t i = 0; i < n; i++) tmp[i] = v[i * stride];
    qsort(tmp, n, sizeof *tmp, cmp_float);
    size_t cut = n / 10;
    double s = 0;
    for (size_t i = cut; i < n - cut; i++) s += tmp[i];
    return (float)(s / (double)(n - 2 * cut));
}

/* Index order of `key` by decreasing value. */
typedef struct { double key; size_t idx; } keyed;

static int cmp_keyed(const void *a, const void *b)
{
    double x = ((const keyed *)a)->key, y = ((const keyed *)b)->key;
    return (x < y) - (x > y);
}

/* sum = the nthr per-thread sums of npix values in ts, in thread order. */
static void fold_sums(const double *ts, int nthr, size_t npix, double *sum)
{
    memcpy(sum, ts, sizeof(double) * npix);
    for (int t = 1; t < nthr; t++) {
        const double *a = ts + (size_t)t * npix;
        for (size_t k = 0; k < npix; k++) sum[k] += a[k];
    }
}

int caimg_mc_make_template(caimg_mc_plan *p, const float *frames, size_t n)
{
    return caimg_mc_make_template_raw(p, frames, CAIMG_DT_F32, n);
}

static int make_template(caimg_mc_plan *p, const void *raw, const void *const *ptrs,
                         caimg_dtype dt, size_t n);

int caimg_mc_make_template_raw(caimg_mc_plan *p, const void *raw, caimg_dtype dt, size_t n)
{
    return make_template(p, raw, NULL, dt, n);
}

int caimg_mc_make_template_frames(caimg_mc_plan *p, const void *const *frames, caimg_dtype dt,
                                  size_t n)
{
    return make_template(p, NULL, frames, dt, n);
}

static int make_template(caimg_mc_plan *p, const void *raw, const void *const *ptrs,
                         caimg_dtype dt, size_t n)
{
    size_t ny = p->ny, nx = p->nx, npix = p->npix;
    size_t sz = caimg_dtype_size(dt);
    if (!sz) return caimg_error(CAIMG_EINVAL, "template sample: unknown sample type");
    sample_t sample = {raw, ptrs, dt, npix * sz}, *frames = &sample;
    int nthr = p->nthr;
    int rc = 0;
    size_t *use = caimg_malloc(n ? n : 1, sizeof(size_t), "template sample");
    double *sum = caimg_calloc(npix, sizeof(double), "template");
    /* Per-thread sums of frames, added in thread order.  The frames are
     * dealt to the threads in fixed shares (static schedule), so a run
     * repeats the last bit of the one before; and float frames summed in
     * double lose nothing at image magnitudes, so the thread count does not
     * change the sums either. */
    double *tsum = caimg_malloc((size_t)nthr * npix, sizeof(double), "template sums");
    unsigned char *ok = caimg_calloc(n ? n : 1, 1, "template sample");
    float *tmpl = caimg_malloc(npix, sizeof(float), "template");
    float *bin = NULL, *cm = NULL, *sh = NULL, *fields = NULL, *med = NULL;
    keyed *order = NULL;
    if (!use || !sum || !tsum || !ok || !tmpl) { rc = CAIMG_ENOMEM; goto done; }

    /* Usable frames, and their mean for the bidirectional estimate. */
    size_t m = 0;
    {
        double saved = p->bidi;
        p->bidi = 0;
        memset(tsum, 0, sizeof(double) * (size_t)nthr * npix);
#pragma omp parallel for schedule(static) num_threads(nthr)
        for (size_t i = 0; i < n; i++) {
            int t = mc_thread_num();
            mc_work *w = &p->work[t];
            float mean;
            if (!load(p, w, frames, i, &mean)) continue;
            ok[i] = 1;
            mc_add_frame(tsum + (size_t)t * npix, w->frame, npix);
        }
        p->bidi = saved;
        for (size_t i = 0; i < n; i++)
            if (ok[i]) use[m++] = i;
        fold_sums(tsum, nthr, npix, sum);
    }
    if (m < CAIMG_MC_MIN_TEMPLATE_FRAMES) {
        rc = caimg_error(CAIMG_EFORMAT,
                         "only %zu of %zu sample frames are usable (not blank, saturated or NaN); "
                         "a template needs at least %d",
                         m, n, CAIMG_MC_MIN_TEMPLATE_FRAMES);
        goto done;
    }
    if (p->par.bidi == CAIMG_MC_BIDI_AUTO) {
        for (size_t k = 0; k < npix; k++) tmpl[k] = (float)(sum[k] / (double)m);
        double off;
        if ((rc = estimate_bidi(tmpl, ny, nx, nthr, &off))) goto done;
        if (!p->par.bidi_subpixel) off = floor(off + 0.5);
        p->bidi = off;
    } else if (p->par.bidi == CAIMG_MC_BIDI_OFF) {
        p->bidi = 0;
    }

    /* Initial template: the mean of the frames most correlated with each
     * other, found on binned copies (binning to ~128 px keeps the cost of
     * the m x m correlation matrix small and ignores shot noise). */
    size_t side = ny < nx ? ny : nx;
    size_t d = side / 128 ? side / 128 : 1;
    size_t by = ny / d, bx = nx / d, q = by * bx;
    bin = caimg_malloc(m * q, sizeof(float), "binned sample");
    cm = caimg_malloc(m * m, sizeof(float), "sample correlations");
    order = caimg_malloc(m, sizeof(keyed), "sample order");
    sh = caimg_malloc(m, 3 * sizeof(float), "sample shifts");
    if (!bin || !cm || !order || !sh) { rc = CAIMG_ENOMEM; goto done; }
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthr)
    for (size_t j = 0; j < m; j++) {
        mc_work *w = &p->work[mc_thread_num()];
        float mean;
        load(p, w, frames, use[j], &mean);
        float *o = bin + j * q;
        mc_bin_frame(w->frame, nx, d, by, bx, w->wrow, o);
        double s = 0, ss = 0;
        for (size_t k = 0; k < q; k++) s += o[k];
        float mu = (float)(s / (double)q);
        for (size_t k = 0; k < q; k++) {
            o[k] -= mu;
            ss += (double)o[k] * o[k];
        }
        float sc = ss > 0 ? (float)(1 / sqrt(ss)) : 0;
        for (size_t k = 0; k < q; k++) o[k] *= sc;
    }
    {
        /* On one thread: the product takes a few milliseconds, while
         * OpenBLAS's helper threads, once woken, spin (sched_yield) for
         * tens of milliseconds after it, taking the CPU from the template's
         * workers and the FFTW measurement running beside them. */
#ifdef HAVE_OPENBLAS
        int saved = openblas_get_num_threads();
        if (saved != 1) openblas_set_num_threads(1);
#endif
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)m, (int)q, 1.0f, bin, (int)q,
                    0.0f, cm, (int)m);
#ifdef HAVE_OPENBLAS
        if (saved != 1) openblas_set_num_threads(saved);
#endif
    }
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < i; j++) cm[i * m + j] = cm[j * m + i];
    size_t k = m - 1 < 20 ? m - 1 : 20;
    size_t best = 0;
    double bestv = -INFINITY;
    {
        double *row = caimg_malloc(m, sizeof(double), "row");
        if (!row) { rc = CAIMG_ENOMEM; goto done; }
        for (size_t i = 0; i < m; i++) {
            size_t c = 0;
            for (size_t j = 0; j < m; j++)
                if (j != i) row[c++] = cm[i * m + j];
            qsort(row, c, sizeof *row, cmp_desc);
            double s = 0;
            for (size_t j = 0; j < k; j++) s += row[j];
            if (s > bestv) {
                bestv = s;
                best = i;
            }
        }
        free(row);
    }
    for (size_t j = 0; j < m; j++) {
        order[j].key = j == best ? INFINITY : cm[best * m + j];
        order[j].idx = j;
    }
    qsort(order, m, sizeof *order, cmp_keyed);
    memset(tsum, 0, sizeof(double) * (size_t)nthr * npix);
#pragma omp parallel for schedule(static) num_threads(nthr)
    for (size_t j = 0; j <= k; j++) {
        int t = mc_thread_num();
        mc_work *w = &p->work[t];
        float mean;
        load(p, w, frames, use[order[j].idx], &mean);
        mc_add_frame(tsum + (size_t)t * npix, w->frame, npix);
    }
    fold_sums(tsum, nthr, npix, sum);
    for (size_t t = 0; t < npix; t++) tmpl[t] = (float)(sum[t] / (double)(k + 1));

    /* Noise power per frequency of one frame, for weighting the
     * correlation. */
    if ((rc = mc_estimate_noise(p, raw, ptrs, dt, use, m))) goto done;

    /* Refinement: register the sample to the template, then average the
     * best-matching frames (an increasing share of them), each moved to its
     * shift minus the (trimmed) mean shift of the whole sample, so that the
     * template sits at the mean position of the movie rather than that of
     * whichever frames matched best.  For piecewise-rigid plans the last
     * iteration does this with the patch fields, so that the template also
     * has the movie's mean shape (its mean deformation). */
    int iters = p->par.template_iter;
    size_t np2 = 2 * p->npatch;
    fields = p->par.piecewise ? caimg_malloc(m, np2 * sizeof(float), "sample fields") : NULL;
    med = caimg_malloc(m > np2 ? m : np2, 2 * sizeof(float), "medians");
    if ((p->par.piecewise && !fields) || !med) { rc = CAIMG_ENOMEM; goto done; }
    for (int it = 0; it < iters; it++) {
        int nonrigid = p->par.piecewise && it == iters - 1;
        mc_plan_settle(p, 0);
        if ((rc = caimg_mc_set_template(p, tmpl))) goto done;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthr)
        for (size_t j = 0; j < m; j++) {
            mc_work *w = &p->work[mc_thread_num()];
            float mean;
            mc_est e;
            load(p, w, frames, use[j], &mean);
            /* The first iterations only need to bring the sample within a
             * fraction of a pixel: the binned registration suffices. */
            if (it < iters - 1 && p->B > 1) mc_rigid_coarse(p, w, w->frame, mean, &e);
            else mc_rigid(p, w, w->frame, mean, &e);
            sh[3 * j] = e.dy;
            sh[3 * j + 1] = e.dx;
            sh[3 * j + 2] = e.peak;
            if (nonrigid) {
                mc_patches(p, w, w->frame, &e);
                memcpy(fields + j * np2, w->pshift, np2 * sizeof(float));
            }
        }
        for (size_t j = 0; j < m; j++) {
            order[j].key = sh[3 * j + 2];
            order[j].idx = j;
        }
        qsort(order, m, sizeof *order, cmp_keyed);
        size_t nsel = (size_t)((double)m * (it + 1) / (2.0 * iters));
        if (nsel < CAIMG_MC_MIN_TEMPLATE_FRAMES) nsel = CAIMG_MC_MIN_TEMPLATE_FRAMES;
        if (nsel > m) nsel = m;
        float cy = trimmed_mean(sh, 3, m, med), cx = trimmed_mean(sh + 1, 3, m, med);
        float *cen = med + m;   /* typical field, np2 values */
        if (nonrigid)
            for (size_t q = 0; q < np2; q++) cen[q] = trimmed_mean(fields + q, np2, m, med);
        memset(tsum, 0, sizeof(double) * (size_t)nthr * npix);
#pragma omp parallel for schedule(static) num_threads(nthr)
        for (size_t j = 0; j < nsel; j++) {
            int t = mc_thread_num();
            mc_work *w = &p->work[t];
            size_t f = order[j].idx;
            float mean;
            load(p, w, frames, use[f], &mean);
            /* Resampling with edge replication: the template must hold no
             * NaN whatever the output border policy. */
            if (nonrigid) {
                float ext[4];
                for (size_t q = 0; q < np2; q++) w->pshift[q] = fields[f * np2 + q] - cen[q];
                mc_warp_field(p, w, w->frame, w->outf, CAIMG_MC_BORDER_NEAREST, ext);
            } else {
                mc_warp_rigid(p, w, w->frame, w->outf, sh[3 * f] - cy, sh[3 * f + 1] - cx,
                              CAIMG_MC_BORDER_NEAREST, NULL);
            }
            mc_add_frame(tsum + (size_t)t * npix, w->outf, npix);
        }
        fold_sums(tsum, nthr, npix, sum);
        for (size_t u = 0; u < npix; u++) tmpl[u] = (float)(sum[u] / (double)nsel);
        if ((rc = caimg_progress("template", it + 1, iters))) goto done;
    }
    rc = caimg_mc_set_template(p, tmpl);
done:
    caimg_mc_reset(p);
    free(use);
    free(sum);
    free(tsum);
    free(ok);
    free(tmpl);
    free(bin);
    free(cm);
    free(order);
    free(sh);
    free(fields);
    free(med);
    return rc;
}
