/* roi_util.c -- image helpers of the roi modules: normalised Gaussian and
 * box filters, selection, distance transform, hole filling.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <string.h>

#include "roi_internal.h"

#define BIG_D2 1e20f

static size_t gauss_kernel(double sigma, float *k, size_t kmax)
{
    size_t r = (size_t)ceil(3.0 * sigma);
    if (r < 1) r = 1;
    if (r >= kmax) r = kmax - 1;
    for (size_t i = 0; i <= r; i++)
        k[i] = (float)exp(-0.5 * (double)(i * i) / (sigma * sigma));
    return r;
}

void roi_gauss_blur_window(const float *in, size_t h, size_t w, double sigma,
                           size_t oy, size_t ox, size_t oh, size_t ow, float *out,
                           float *tmp)
{
    if (sigma <= 0) {
        for (size_t y = 0; y < oh; y++)
            memcpy(out + y * ow, in + (oy + y) * w + ox, ow * sizeof *out);
        return;
    }
    float k[256];
    size_t r = gauss_kernel(sigma, k, 256);
    /* Rows that the vertical pass will read. */
    size_t ya = oy > r ? oy - r : 0, yb = CAIMG_MIN(h, oy + oh + r);
    /* Horizontal pass into tmp[(y - ya) * ow + (x - ox)]. */
    for (size_t y = ya; y < yb; y++) {
        const float *row = in + y * w;
        float *t = tmp + (y - ya) * ow;
        for (size_t x = ox; x < ox + ow; x++) {
            if (x >= r && x + r < w) {
                float s = k[0] * row[x];
                for (size_t i = 1; i <= r; i++) s += k[i] * (row[x - i] + row[x + i]);
                t[x - ox] = s;   /* normalised below, with the interior norm */
            } else {
                float s = 0, n = 0;
                for (size_t i = 0; i <= r; i++) {
                    if (i == 0) { s += k[0] * row[x]; n += k[0]; continue; }
                    if (x >= i) { s += k[i] * row[x - i]; n += k[i]; }
                    if (x + i < w) { s += k[i] * row[x + i]; n += k[i]; }
                }
                t[x - ox] = s / n;
            }
        }
        /* Interior pixels were left unnormalised. */
        float norm = k[0];
        for (size_t i = 1; i <= r; i++) norm += 2 * k[i];
        for (size_t x = ox; x < ox + ow; x++)
            if (x >= r && x + r < w) t[x - ox] /= norm;
    }
    float norm = k[0];
    for (size_t i = 1; i <= r; i++) norm += 2 * k[i];
    for (size_t y = oy; y < oy + oh; y++) {
        float *o = out + (y - oy) * ow;
        if (y >= r && y + r < h) {
            const float *c = tmp + (y - ya) * ow;
            for (size_t x = 0; x < ow; x++) o[x] = k[0] * c[x];
            for (size_t i = 1; i <= r; i++) {
                const float *a = c - i * ow, *b = c + i * ow;
                float ki = k[i];
                for (size_t x = 0; x < ow; x++) o[x] += ki * (a[x] + b[x]);
            }
            for (size_t x = 0; x < ow; x++) o[x] /= norm;
        } else {
            float n = 0;
            for (size_t x = 0; x < ow; x++) o[x] = 0;
            for (long i = -(long)r; i <= (long)r; i++) {
                long yy = (long)y + i;
                if (yy < 0 || yy >= (long)h) continue;
                float ki = k[i < 0 ? -i : i];
                const float *c = tmp + ((size_t)yy - ya) * ow;
                for (size_t x = 0; x < ow; x++) o[x] += ki * c[x];
                n += ki;
            }
            for (size_t x = 0; x < ow; x++) o[x] /= n;
        }
    }
}

void roi_gauss_blur(const float *in, float *out, size_t h, size_t w, double sigma,
                    float *tmp)
{
    roi_gauss_blur_window(in, h, w, sigma, 0, 0, h, w, out, tmp);
}

/* Point-symmetric extension of v (n samples) by r on each side into e
 * (n + 2r) about the mean level of the last r/2 + 1 samples at each end:
 * beyond an end, 2 level - v(mirror), so that a linear trend continues
 * through the border and a box mean there is not biased by it (a
 * one-sided mean would be), while the level, an average, adds little
 * noise. */
static void odd_extend(const float *v, size_t n, size_t stride, size_t r, float *e)
{
    for (size_t i = 0; i < n; i++) e[r + i] = v[i * stride];
    size_t q = CAIMG_MIN(n, r / 2 + 1);
    double a = 0, b = 0;
    for (size_t i = 0; i < q; i++) {
        a += v[i * stride];
        b += v[(n - 1 - i) * stride];
    }
    /* The level at the end pixel itself, from the mean of q samples whose
     * centre lies (q - 1) / 2 inside. */
    float la = (float)(a / (double)q), lb = (float)(b / (double)q);
    for (size_t k = 1; k <= r; k++) {
        size_t m = k < n ? k : n - 1;
        e[r - k] = 2 * la - v[m * stride];
        e[r + n - 1 + k] = 2 * lb - v[(n - 1 - m) * stride];
    }
}

void roi_box_mean(const float *in, float *out, size_t h, size_t w, size_t r, float *tmp)
{
    /* Horizontal then vertical running sums over the point-symmetric
     * extension; `tmp` holds h*w floats, the extension is on the stack or
     * the heap. */
    size_t m = CAIMG_MAX(h, w) + 2 * r;
    float ebuf[4096];
    float *e = m <= 4096 ? ebuf : malloc(m * sizeof *e);
    if (!e) {
        memcpy(out, in, h * w * sizeof *out);   /* no memory: no high-pass */
        return;
    }
    float inv = 1.0f / (float)(2 * r + 1);
    for (size_t y = 0; y < h; y++) {
        odd_extend(in + y * w, w, 1, r, e);
        double s = 0;
        for (size_t k = 0; k < 2 * r + 1; k++) s += e[k];
        for (size_t x = 0; x < w; x++) {
            tmp[y * w + x] = (float)s * inv;
            if (x + 1 < w) s += e[x + 2 * r + 1] - e[x];
        }
    }
    for (size_t x = 0; x < w; x++) {
        odd_extend(tmp + x, h, w, r, e);
        double s = 0;
        for (size_t k = 0; k < 2 * r + 1; k++) s += e[k];
        for (size_t y = 0; y < h; y++) {
            out[y * w + x] = (float)s * inv;
            if (y + 1 < h) s += e[y + 2 * r + 1] - e[y];
        }
    }
    if (e != ebuf) free(e);
}

float roi_select(float *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        /* Median of three as pivot keeps sorted input linear. */
        size_t mid = lo + (hi - lo) / 2;
        float x = a[lo], y = a[mid], z = a[hi];
        float piv = (x < y) ? ((y < z) ? y : (x < z ? z : x)) : ((x < z) ? x : (y < z ? z : y));
        size_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < piv) i++;
            while (a[j] > piv) j--;
            if (i <= j) {
                float t = a[i]; a[i] = a[j]; a[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return a[k];
    }
    return a[k];
}

float roi_median(float *a, size_t n)
{
    if (n == 0) return 0;
    return roi_select(a, n, n / 2);
}

/* One-dimensional squared distance transform of f (n samples) into d: the
 * lower envelope of the parabolas (q - p)^2 + f[p]. */
static void edt1(const double *f, double *d, size_t n, size_t *v, double *z)
{
    size_t k = 0;
    v[0] = 0;
    z[0] = -HUGE_VAL;
    z[1] = HUGE_VAL;
    for (size_t q = 1; q < n; q++) {
        double fq = f[q] + (double)q * (double)q, s;
        for (;;) {
            double p = (double)v[k];
            s = (fq - (f[v[k]] + p * p)) / (2.0 * ((double)q - p));
            if (s > z[k] || k == 0) break;
            k--;
        }
        if (s <= z[k]) {
            /* Only possible at k == 0 with z[0] = -inf excluded above. */
            v[0] = q;
            continue;
        }
        k++;
        v[k] = q;
        z[k] = s;
        z[k + 1] = HUGE_VAL;
    }
    k = 0;
    for (size_t q = 0; q < n; q++) {
        while (z[k + 1] < (double)q) k++;
        double dq = (double)q - (double)v[k];
        d[q] = dq * dq + f[v[k]];
    }
}

int roi_edt(const uint8_t *mask, size_t h, size_t w, float *d2)
{
    size_t m = CAIMG_MAX(h, w);
    double *f = caimg_malloc(3 * m + 2, sizeof *f, "a distance transform");
    size_t *v = caimg_malloc(m + 1, sizeof *v, "a distance transform");
    if (!f || !v) {
        free(f);
        free(v);
        return CAIMG_ENOMEM;
    }
    double *d = f + m, *z = f + 2 * m;
    for (size_t y = 0; y < h; y++) {
        for (size_t x = 0; x < w; x++) f[x] = mask[y * w + x] ? 0 : 1e30;
        edt1(f, d, w, v, z);
        for (size_t x = 0; x < w; x++) d2[y * w + x] = (float)CAIMG_MIN(d[x], 1e30);
    }
    for (size_t x = 0; x < w; x++) {
        for (size_t y = 0; y < h; y++) f[y] = d2[y * w + x];
        edt1(f, d, h, v, z);
        for (size_t y = 0; y < h; y++) d2[y * w + x] = (float)CAIMG_MIN(d[y], (double)BIG_D2);
    }
    free(f);
    free(v);
    return 0;
}

void roi_phi_moments(double theta, double *mean, double *var)
{
    /* Simpson's rule on [theta, theta + 12]; the tail beyond is far below
     * double precision. */
    const int n = 4000;
    double h = 12.0 / n, m1 = 0, m2 = 0;
    for (int i = 0; i <= n; i++) {
        double z = theta + h * i, u = z - theta;
        double wgt = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2);
        double pdf = exp(-0.5 * z * z) / sqrt(2 * M_PI);
        m1 += wgt * u * pdf;
        m2 += wgt * u * u * pdf;
    }
    m1 *= h / 3;
    m2 *= h / 3;
    *mean = m1;
    *var = m2 - m1 * m1;
}

void roi_fill_holes(uint8_t *mask, size_t h, size_t w, int32_t *stack)
{
    /* Mark background reachable from the border with 2. */
    size_t sp = 0;
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++) {
            if (y != 0 && y != h - 1 && x != 0 && x != w - 1) continue;
            size_t i = y * w + x;
            if (mask[i] == 0) { mask[i] = 2; stack[sp++] = (int32_t)i; }
        }
    while (sp) {
        size_t i = (size_t)stack[--sp], y = i / w, x = i % w;
        size_t nb[4];
        int nn = 0;
        if (y > 0) nb[nn++] = i - w;
        if (y + 1 < h) nb[nn++] = i + w;
        if (x > 0) nb[nn++] = i - 1;
        if (x + 1 < w) nb[nn++] = i + 1;
        for (int k = 0; k < nn; k++)
            if (mask[nb[k]] == 0) { mask[nb[k]] = 2; stack[sp++] = (int32_t)nb[k]; }
    }
    for (size_t i = 0; i < h * w; i++) mask[i] = mask[i] == 2 ? 0 : 1;
}

size_t roi_component(uint8_t *mask, size_t h, size_t w, size_t seed, int32_t *stack,
                     uint8_t *keep)
{
    if (!mask[seed]) {
        memset(mask, 0, h * w);
        return 0;
    }
    memset(keep, 0, h * w);
    size_t sp = 0, n = 0;
    keep[seed] = 1;
    stack[sp++] = (int32_t)seed;
    while (sp) {
        size_t i = (size_t)stack[--sp], y = i / w, x = i % w;
        n++;
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                long yy = (long)y + dy, xx = (long)x + dx;
                if ((dy == 0 && dx == 0) || yy < 0 || xx < 0 || yy >= (long)h || xx >= (long)w)
                    continue;
                size_t j = (size_t)yy * w + (size_t)xx;
                if (mask[j] && !keep[j]) { keep[j] = 1; stack[sp++] = (int32_t)j; }
            }
    }
    memcpy(mask, keep, h * w);
    return n;
}
