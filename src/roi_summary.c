/* roi_summary.c -- the first pass of caimg roi: summary images and the
 * temporally binned movie, in one streaming read of the movie.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <string.h>

#include <hdf5.h>

#include "caimg/error.h"
#include "caimg/h5io.h"
#include "caimg/tiffio.h"
#include "roi_internal.h"

/* The binned movie may use this much memory when max_bins is 0.  At
 * 512 x 512 that is 512 bins: enough for detection (longer recordings get
 * longer bins, but also more events per cell), and it keeps the stage well
 * under 1 GB whatever the length of the recording. */
#define BIN_BUDGET_BYTES ((size_t)512 << 20)

void caimg_roi_params_init(caimg_roi_params *p)
{
    memset(p, 0, sizeof *p);
    p->diameter = 12;
    p->threshold = 6;
    p->max_rois = 0;
    p->tau = 0.2;
    p->fs = 0;
    p->max_bins = 0;
    p->highpass = 30;
    p->anatomy = 3;
    p->np_gap = 2;
    p->np_min_pixels = 350;
    p->np_coeff = 0.7;
    /* Below one half: the threshold that maximises the expected F1 of a
     * calibrated classifier is half the F1 it reaches (0.8-0.96 here), and
     * missing a dim cell costs as much F1 as accepting a false one. */
    p->cell_threshold = 0.4;
    p->masks = NULL;
}

void caimg_roi_binning(const caimg_roi_params *p, double fs, size_t T, size_t Y, size_t X,
                       size_t *bin, size_t *nbins)
{
    size_t b = 1;
    if (fs > 0 && p->tau > 0) {
        double f = floor(p->tau * fs + 0.5);
        b = f < 1 ? 1 : (size_t)f;
    }
    size_t maxb = p->max_bins;
    if (maxb == 0) {
        size_t per = caimg_mul(Y * X, sizeof(float));
        maxb = per ? BIN_BUDGET_BYTES / per : 100;
        if (maxb < 100) maxb = 100;
    }
    if (T / b > maxb) b = (T + maxb - 1) / maxb;
    if (b > T) b = T ? T : 1;
    *bin = b;
    *nbins = T / b;
}

void caimg_roi_summary_free(caimg_roi_summary *s)
{
    if (!s) return;
    free(s->mean);
    free(s->max);
    free(s->std);
    free(s->corr);
    free(s->enhanced);
    free(s);
}

void caimg_roi_binned_free(caimg_roi_binned *b)
{
    if (!b) return;
    free(b->data);
    free(b);
}

/* Enhanced mean: background removed over a Gaussian of s.d. `d`, divided by
 * the local RMS contrast over the same Gaussian, so that dim and bright
 * regions of the field look alike. */
static int enhance(const float *mean, float *out, size_t Y, size_t X, double d)
{
    float *bg = caimg_malloc(Y * X, sizeof *bg, "the enhanced mean image");
    float *tmp = caimg_malloc(Y * X, sizeof *tmp, "the enhanced mean image");
    if (!bg || !tmp) {
        free(bg);
        free(tmp);
        return CAIMG_ENOMEM;
    }
    roi_gauss_blur(mean, bg, Y, X, d, tmp);
    for (size_t i = 0; i < Y * X; i++) {
        out[i] = mean[i] - bg[i];
        bg[i] = out[i] * out[i];
    }
    roi_gauss_blur(bg, bg, Y, X, d, tmp);
    double tot = 0;
    for (size_t i = 0; i < Y * X; i++) tot += bg[i];
    /* A floor on the contrast keeps flat (blank) regions from being blown
     * up into noise. */
    float floor_ = (float)(0.05 * sqrt(tot / (double)(Y * X)) + 1e-12);
    for (size_t i = 0; i < Y * X; i++) out[i] /= sqrtf(bg[i]) + floor_;
    free(bg);
    free(tmp);
    return 0;
}

int caimg_roi_summarize(caimg_movie *m, const caimg_roi_params *p, int keep_binned,
                        caimg_roi_summary **summary, caimg_roi_binned **binned)
{
    *summary = NULL;
    if (binned) *binned = NULL;
    size_t T = caimg_movie_frames(m), Y = caimg_movie_height(m), X = caimg_movie_width(m);
    size_t YX = Y * X;
    size_t y0 = 0, y1 = Y, x0 = 0, x1 = X;
    if (p->valid[1] > 0) {
        y0 = p->valid[0]; y1 = p->valid[1]; x0 = p->valid[2]; x1 = p->valid[3];
        if (y1 > Y || x1 > X || y0 >= y1 || x0 >= x1)
            return caimg_error(CAIMG_EINVAL, "%s: valid box [%zu,%zu) x [%zu,%zu) does not fit "
                               "the %zux%zu frame", caimg_movie_sources(m), y0, y1, x0, x1, Y, X);
    }
    size_t bh = y1 - y0, bw = x1 - x0;
    double fs = p->fs > 0 ? p->fs : caimg_movie_fs(m);
    size_t b, nb;
    caimg_roi_binning(p, fs, T, bh, bw, &b, &nb);
    /* Exponential running mean for the correlation image's high-pass. */
    double whp = fs > 0 ? p->highpass * fs / (double)b : 100;
    if (whp < 2) whp = 2;
    float alpha = (float)(1.0 / whp);

    size_t fbytes = YX * sizeof(float);
    size_t chunk = ((size_t)32 << 20) / (fbytes ? fbytes : 1);
    chunk = CAIMG_MAX(1, CAIMG_MIN(chunk, 256));
    size_t maxcb = chunk / b + 2;

    int rc = 0;
    caimg_roi_summary *s = caimg_calloc(1, sizeof *s, "summary images");
    caimg_roi_binned *bm = NULL;
    double *sum = NULL, *sumsq = NULL, *cs = NULL;
    float *ref = NULL, *acc = NULL, *buf = NULL, *cb = NULL, *ema = NULL;
    size_t *ends = NULL;
    if (!s) return CAIMG_ENOMEM;
    s->height = Y;
    s->width = X;
    s->frames = T;
    s->mean = caimg_calloc(YX, sizeof(float), "the mean image");
    s->max = caimg_malloc(YX, sizeof(float), "the max image");
    s->std = caimg_calloc(YX, sizeof(float), "the std image");
    s->corr = caimg_calloc(YX, sizeof(float), "the correlation image");
    s->enhanced = caimg_calloc(YX, sizeof(float), "the enhanced image");
    sum = caimg_calloc(YX, sizeof *sum, "running sums");
    sumsq = caimg_calloc(YX, sizeof *sumsq, "running sums");
    cs = caimg_calloc(6 * YX, sizeof *cs, "correlation sums");
    ref = caimg_calloc(YX, sizeof *ref, "a frame");
    acc = caimg_calloc(YX, sizeof *acc, "a frame");
    ema = caimg_calloc(YX, sizeof *ema, "a frame");
    buf = caimg_malloc(chunk * YX, sizeof *buf, "a chunk of frames");
    cb = caimg_malloc(maxcb * YX, sizeof *cb, "binned frames");
    ends = caimg_malloc(maxcb, sizeof *ends, "bin ends");
    if (!s->mean || !s->max || !s->std || !s->corr || !s->enhanced || !sum || !sumsq || !cs
        || !ref || !acc || !ema || !buf || !cb || !ends) {
        rc = CAIMG_ENOMEM;
        goto out;
    }
    if (keep_binned && binned) {
        bm = caimg_calloc(1, sizeof *bm, "the binned movie");
        if (!bm) { rc = CAIMG_ENOMEM; goto out; }
        bm->nbins = nb;
        bm->bin = b;
        bm->fs = fs;
        bm->y0 = y0;
        bm->x0 = x0;
        bm->height = bh;
        bm->width = bw;
        bm->data = caimg_malloc(caimg_mul(nb ? nb : 1, bh * bw), sizeof(float),
                                "the binned movie");
        if (!bm->data) { rc = CAIMG_ENOMEM; goto out; }
    }
    for (size_t i = 0; i < YX; i++) s->max[i] = -HUGE_VALF;
    double *s1 = cs, *s2 = cs + YX, *sr = cs + 2 * YX, *sd = cs + 3 * YX,
           *sdr = cs + 4 * YX, *sdl = cs + 5 * YX;
    size_t kbin = 0, ncorr = 0, nonfinite = 0;

    for (size_t t0 = 0; !rc && t0 < T; t0 += chunk) {
        size_t n = CAIMG_MIN(chunk, T - t0);
        rc = caimg_movie_read(m, t0, n, buf);
        if (rc) break;
        if (t0 == 0)
            for (size_t i = 0; i < YX; i++) ref[i] = isfinite(buf[i]) ? buf[i] : 0;
        /* Frames of this chunk that complete a bin. */
        size_t nbc = 0;
        for (size_t i = 0; i < n; i++) {
            size_t f = t0 + i + 1;
            if (f % b == 0 && f / b <= nb) ends[nbc++] = i;
        }
        size_t nf = 0;
        /* Pixel blocks, frames inside: each block's sums stay in cache. */
        const size_t PB = 256;
#pragma omp parallel for schedule(static) reduction(+:nf)
        for (size_t p0 = 0; p0 < YX; p0 += PB) {
            size_t pe = CAIMG_MIN(YX, p0 + PB), np = pe - p0;
            double ls[256], lss[256];
            float la[256];
            for (size_t q = 0; q < np; q++) { ls[q] = lss[q] = 0; la[q] = acc[p0 + q]; }
            size_t j = 0;
            for (size_t i = 0; i < n; i++) {
                float *fr = buf + i * YX + p0;
                const float *rf = ref + p0;
                for (size_t q = 0; q < np; q++) {
                    float v = fr[q];
                    if (!isfinite(v)) { v = 0; fr[q] = 0; nf++; }
                    double dv = (double)v - (double)rf[q];
                    ls[q] += dv;
                    lss[q] += dv * dv;
                    la[q] += v;
                }
                if (j < nbc && ends[j] == i) {
                    float *o = cb + j * YX + p0;
                    for (size_t q = 0; q < np; q++) { o[q] = la[q] / (float)b; la[q] = 0; }
                    j++;
                }
            }
            for (size_t q = 0; q < np; q++) {
                sum[p0 + q] += ls[q];
                sumsq[p0 + q] += lss[q];
                acc[p0 + q] = la[q];
            }
        }
        nonfinite += nf;
        /* Completed bins: max, the binned copy and the high-pass, pixel by
         * pixel across the bins of the chunk; then the correlation sums,
         * which need each pixel's neighbours.  Two parallel loops per chunk,
         * not per bin: on a busy machine every barrier costs. */
        size_t k0 = kbin;
        if (nbc) {
#pragma omp parallel for schedule(dynamic, 4096)
            for (size_t i = 0; i < YX; i++) {
                size_t y = i / X, x = i % X;
                int inbox = bm && y >= y0 && y < y1 && x >= x0 && x < x1;
                for (size_t j = 0; j < nbc; j++) {
                    float *bj = cb + j * YX;
                    float v = bj[i];
                    if (v > s->max[i]) s->max[i] = v;
                    if (inbox) bm->data[(k0 + j) * bh * bw + (y - y0) * bw + (x - x0)] = v;
                    if (k0 + j == 0) {
                        ema[i] = v;
                        bj[i] = 0;
                        continue;
                    }
                    float hp = v - ema[i];
                    ema[i] += alpha * hp;
                    bj[i] = hp;
                }
            }
            size_t j0 = k0 == 0 ? 1 : 0;   /* the very first bin only seeds the mean */
#pragma omp parallel for schedule(dynamic, 8)
            for (size_t y = 0; y < Y; y++)
                for (size_t j = j0; j < nbc; j++) {
                    const float *bj = cb + j * YX;
                    const float *r0 = bj + y * X, *r1 = y + 1 < Y ? r0 + X : NULL;
                    for (size_t x = 0; x < X; x++) {
                        size_t i = y * X + x;
                        double v = r0[x];
                        s1[i] += v;
                        s2[i] += v * v;
                        if (x + 1 < X) sr[i] += v * r0[x + 1];
                        if (r1) {
                            sd[i] += v * r1[x];
                            if (x + 1 < X) sdr[i] += v * r1[x + 1];
                            if (x > 0) sdl[i] += v * r1[x - 1];
                        }
                    }
                }
            ncorr += nbc - j0;
            kbin += nbc;
        }
        if (!rc) rc = caimg_progress("reading frames", (double)(t0 + n), (double)T);
    }
    if (rc) goto out;
    if (nonfinite)
        caimg_warn("%s: %zu samples were NaN or infinite and were treated as 0",
                   caimg_movie_sources(m), nonfinite);

    double invT = T ? 1.0 / (double)T : 0;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < YX; i++) {
        double mu = sum[i] * invT;
        s->mean[i] = (float)(ref[i] + mu);
        double var = sumsq[i] * invT - mu * mu;
        s->std[i] = (float)sqrt(var > 0 ? var : 0);
        if (kbin == 0) s->max[i] = s->mean[i];
    }
    /* Local correlation: mean Pearson correlation with the 8 neighbours. */
    if (ncorr > 1) {
        double nn = (double)ncorr;
#pragma omp parallel for schedule(static)
        for (size_t y = 0; y < Y; y++)
            for (size_t x = 0; x < X; x++) {
                size_t i = y * X + x;
                double vi = s2[i] - s1[i] * s1[i] / nn, acc_c = 0;
                int cnt = 0;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        long yy = (long)y + dy, xx = (long)x + dx;
                        if ((dy == 0 && dx == 0) || yy < 0 || xx < 0 || yy >= (long)Y
                            || xx >= (long)X)
                            continue;
                        size_t j = (size_t)yy * X + (size_t)xx;
                        /* The pair sum is stored at the upper (or left) pixel. */
                        double sxy;
                        if (dy == 0) sxy = dx > 0 ? sr[i] : sr[j];
                        else if (dx == 0) sxy = dy > 0 ? sd[i] : sd[j];
                        else if (dy == dx) sxy = dy > 0 ? sdr[i] : sdr[j];
                        else sxy = dy > 0 ? sdl[i] : sdl[j];
                        double vj = s2[j] - s1[j] * s1[j] / nn;
                        double c = sxy - s1[i] * s1[j] / nn;
                        if (vi > 0 && vj > 0) acc_c += c / sqrt(vi * vj);
                        cnt++;
                    }
                s->corr[i] = cnt ? (float)(acc_c / cnt) : 0;
            }
    }
    s->diameter = p->diameter;
    if (p->diameter <= 0) {
        rc = roi_estimate_diameter(p, s, &s->diameter, &s->measured);
        if (rc) goto out;
    }
    rc = enhance(s->mean, s->enhanced, Y, X, s->diameter);
out:
    free(sum);
    free(sumsq);
    free(cs);
    free(ref);
    free(acc);
    free(ema);
    free(buf);
    free(cb);
    free(ends);
    if (rc) {
        caimg_roi_summary_free(s);
        caimg_roi_binned_free(bm);
        return rc;
    }
    *summary = s;
    if (binned) *binned = bm;
    return 0;
}

int caimg_roi_valid_box(const char *path, size_t height, size_t width, size_t box[4],
                        int *has_mc)
{
    box[0] = 0;
    box[1] = height;
    box[2] = 0;
    box[3] = width;
    *has_mc = 0;
    caimg_init();
    if (caimg_is_tiff(path) == 1) return 0;
    caimg_h5 *f = caimg_h5_open_any(path, NULL);
    if (!f) return CAIMG_EFORMAT;
    int rc = 0;
    if (caimg_h5_exists(f, "/mc")) {
        *has_mc = 1;
        if (caimg_h5_exists(f, "/mc/valid")) {
            int32_t *v = NULL;
            size_t d[CAIMG_H5_MAXRANK];
            rc = caimg_h5_read(f, "/mc/valid", CAIMG_DT_I32, 1, NULL, d, (void **)&v);
            if (!rc && d[0] != 4)
                rc = caimg_error(CAIMG_EFORMAT, "%s: /mc/valid has %zu values, expected 4 "
                                 "(y0, y1, x0, x1)", path, d[0]);
            if (!rc) {
                long y0 = CAIMG_MAX(0, v[0]), y1 = CAIMG_MIN((long)height, v[1]);
                long x0 = CAIMG_MAX(0, v[2]), x1 = CAIMG_MIN((long)width, v[3]);
                if (y1 - y0 < 3 || x1 - x0 < 3)
                    rc = caimg_error(CAIMG_EFORMAT, "%s: /mc/valid (%d, %d, %d, %d) leaves no "
                                     "usable pixels in the %zux%zu frame", path, v[0], v[1],
                                     v[2], v[3], height, width);
                else {
                    box[0] = (size_t)y0;
                    box[1] = (size_t)y1;
                    box[2] = (size_t)x0;
                    box[3] = (size_t)x1;
                }
            }
            free(v);
        }
    }
    caimg_h5_close(f);
    return rc;
}
