/* motion_pw.c -- piecewise-rigid registration: patch grid, per-patch
 * shifts, the interpolated shift field and the warp.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <string.h>

#include "caimg/motion.h"
#include "internal.h"
#include "motion_impl.h"

/* Evenly spaced patch origins covering [0, n) with patches of side P whose
 * spacing is at most `stride`; the first starts at 0 and the last ends at n. */
static size_t layout(size_t n, size_t P, size_t stride, size_t *pos)
{
    if (n <= P) {
        if (pos) pos[0] = 0;
        return 1;
    }
    size_t cnt = (n - P + stride - 1) / stride + 1;
    if (pos)
        for (size_t i = 0; i < cnt; i++)
            pos[i] = (size_t)floor((double)i * (double)(n - P) / (double)(cnt - 1) + 0.5);
    return cnt;
}

/* Interpolation weights of the node values c[0..n) at coordinate u: four
 * consecutive nodes from *base.  Catmull-Rom between the outer centres
 * (ghost nodes continue the end slopes linearly), linear extrapolation
 * beyond them, constant for a single node.  n is at most 64. */
static void node_weights(const float *c, size_t n, double u, int *base, float w[4])
{
    double full[64];
    int nn = (int)n;
    memset(full, 0, sizeof full);
    if (nn == 1) {
        full[0] = 1;
    } else if (u <= c[0] || u >= c[nn - 1]) {
        int j = u <= c[0] ? 0 : nn - 2;
        double t = (u - c[j]) / (c[j + 1] - c[j]);
        full[j] = 1 - t;
        full[j + 1] = t;
    } else {
        int j = 0;
        while (j + 2 < nn && u > c[j + 1]) j++;
        double t = (u - c[j]) / (c[j + 1] - c[j]), t2 = t * t, t3 = t2 * t;
        double a[4] = {0.5 * (-t3 + 2 * t2 - t), 0.5 * (3 * t3 - 5 * t2 + 2),
                       0.5 * (-3 * t3 + 4 * t2 + t), 0.5 * (t3 - t2)};
        /* Ghost nodes p[-1] = 2 p[0] - p[1] and p[n] = 2 p[n-1] - p[n-2]
         * are folded onto the real ones. */
        for (int k = 0; k < 4; k++) {
            int node = j - 1 + k;
            if (node < 0) {
                full[0] += 2 * a[k];
                full[1] -= a[k];
            } else if (node >= nn) {
                full[nn - 1] += 2 * a[k];
                full[nn - 2] -= a[k];
            } else {
                full[node] += a[k];
            }
        }
    }
    /* The nonzero weights span at most four nodes; the window must also
     * stay inside the node array padded to four. */
    int first = 0;
    while (first < nn - 1 && full[first] == 0) first++;
    int npad = nn < 4 ? 4 : nn, b = first;
    if (b + 4 > npad) b = npad - 4;
    *base = b;
    for (int k = 0; k < 4; k++) w[k] = b + k < nn ? (float)full[b + k] : 0.0f;
}

int mc_grid_init(caimg_mc_plan *p)
{
    size_t ny = p->ny, nx = p->nx;
    if (!p->par.piecewise) {
        p->P = 16;
        p->npy = p->npx = p->npatch = 1;
        p->pcy = caimg_malloc(1, sizeof(float), "patch centres");
        p->pcx = caimg_malloc(1, sizeof(float), "patch centres");
        if (!p->pcy || !p->pcx) return CAIMG_ENOMEM;
        p->pcy[0] = (float)(ny - 1) / 2;
        p->pcx[0] = (float)(nx - 1) / 2;
        return 0;
    }
    size_t side = ny < nx ? ny : nx;
    size_t P = p->par.patch;
    if (!P) {
        /* 128 px (Suite2p's block size) for 512-px frames: a 5 x 5 grid with
         * the default overlap; a quarter of the side on smaller frames. */
        P = side / 4 < 128 ? side / 4 : 128;
        if (P < 32) P = 32;
    }
    if (P > side) P = side;
    P &= ~(size_t)1;
    /* A quarter of the patch: on 512-px frames with 128-px patches, a 5 x 5
     * grid 96 px apart.  Denser grids (half overlap, 7 x 7) cost twice the
     * FFTs and were no more accurate on simulated deformations: patch
     * estimates that share most of their pixels share their errors too. */
    size_t O = p->par.overlap ? p->par.overlap : P / 4;
    if (O >= P)
        return caimg_error(CAIMG_EINVAL, "patch overlap %zu must be smaller than the patch size %zu", O, P);
    p->P = P;
    p->par.patch = P;
    p->par.overlap = O;
    if (p->par.max_dev > (double)P / 4) p->par.max_dev = (double)P / 4;
    p->npy = layout(ny, P, P - O, NULL);
    p->npx = layout(nx, P, P - O, NULL);
    if (p->npy > 64 || p->npx > 64) {
        return caimg_error(CAIMG_EINVAL, "patch grid %zux%zu is too fine (at most 64x64); use larger patches",
                           p->npy, p->npx);
    }
    p->npatch = p->npy * p->npx;
    p->py0 = caimg_malloc(p->npy, sizeof(size_t), "patch grid");
    p->px0 = caimg_malloc(p->npx, sizeof(size_t), "patch grid");
    p->pcy = caimg_malloc(p->npy, sizeof(float), "patch centres");
    p->pcx = caimg_malloc(p->npx, sizeof(float), "patch centres");
    p->pwin = caimg_malloc(P * P, sizeof(float), "patch taper");
    p->pfilt = caimg_malloc(P * (P / 2 + 1), sizeof(float), "patch filter");
    p->ptspec = fftwf_malloc(sizeof(fftwf_complex) * p->npatch * P * (P / 2 + 1));
    p->fy_base = caimg_malloc(ny, sizeof(int), "field weights");
    p->fx_base = caimg_malloc(nx, sizeof(int), "field weights");
    p->fy_w = caimg_malloc(ny, 4 * sizeof(float), "field weights");
    p->fx_w = caimg_malloc(nx, 4 * sizeof(float), "field weights");
    if (!p->py0 || !p->px0 || !p->pcy || !p->pcx || !p->pwin || !p->pfilt || !p->ptspec
        || !p->fy_base || !p->fx_base || !p->fy_w || !p->fx_w)
        return caimg_error(CAIMG_ENOMEM, "out of memory allocating the patch grid");
    layout(ny, P, P - O, p->py0);
    layout(nx, P, P - O, p->px0);
    for (size_t i = 0; i < p->npy; i++) p->pcy[i] = (float)p->py0[i] + (float)(P - 1) / 2;
    for (size_t j = 0; j < p->npx; j++) p->pcx[j] = (float)p->px0[j] + (float)(P - 1) / 2;
    float *t = caimg_malloc(P, sizeof(float), "taper");
    if (!t) return CAIMG_ENOMEM;
    mc_taper(t, P, (double)P / 8 < 4 ? 4 : (double)P / 8);
    for (size_t u = 0; u < P; u++)
        for (size_t v = 0; v < P; v++) p->pwin[u * P + v] = t[u] * t[v];
    free(t);
    mc_gauss_filter(p->pfilt, P, P, p->par.smooth_sigma, &p->pfilt_sum);
    for (size_t y = 0; y < ny; y++)
        node_weights(p->pcy, p->npy, (double)y, &p->fy_base[y], p->fy_w + 4 * y);
    for (size_t x = 0; x < nx; x++)
        node_weights(p->pcx, p->npx, (double)x, &p->fx_base[x], p->fx_w + 4 * x);
    /* The same weights along x as a dense, transposed matrix [npx][nx], so
     * that the field along a row is a vectorisable sum of scaled rows. */
    p->fxt = caimg_calloc(p->npx * nx, sizeof(float), "field weights");
    if (!p->fxt) return CAIMG_ENOMEM;
    for (size_t x = 0; x < nx; x++)
        for (int k = 0; k < 4; k++) {
            size_t j = (size_t)p->fx_base[x] + (size_t)k;
            if (j < p->npx) p->fxt[j * nx + x] = p->fx_w[4 * x + k];
        }
    return 0;
}

void mc_grid_free(caimg_mc_plan *p)
{
    free(p->py0);
    free(p->px0);
    free(p->pcy);
    free(p->pcx);
    free(p->pwin);
    free(p->pfilt);
    fftwf_free(p->ptspec);
    free(p->fy_base);
    free(p->fx_base);
    free(p->fy_w);
    free(p->fx_w);
    free(p->fxt);
}

/* Tapered, mean-free P x P window of a frame at (y0, x0). */
static void patch_extract(const caimg_mc_plan *p, const float *f, size_t y0, size_t x0, float *out)
{
    size_t P = p->P, nx = p->nx;
    double s = 0;
    for (size_t u = 0; u < P; u++) {
        const float *r = f + (y0 + u) * nx + x0;
        float rs = 0;
#pragma omp simd reduction(+ : rs)
        for (size_t v = 0; v < P; v++) rs += r[v];
        s += rs;
    }
    float m = (float)(s / (double)(P * P));
    for (size_t u = 0; u < P; u++) {
        const float *r = f + (y0 + u) * nx + x0;
        const float *wv = p->pwin + u * P;
        float *o = out + u * P;
#pragma omp simd
        for (size_t v = 0; v < P; v++) o[v] = (r[v] - m) * wv[v];
    }
}

int mc_grid_template(caimg_mc_plan *p)
{
    size_t P = p->P, ph = P * (P / 2 + 1);
    mc_work *w = &p->work[0];
    /* The noise power of a patch spectrum is that of the frame scaled by
     * the energies of the two windows (shot noise being roughly uniform). */
    double ew = 0, ep = 0;
    for (size_t y = 0; y < p->ny; y++)
        for (size_t x = 0; x < p->nx; x++) {
            double v = (double)p->wy[y] * p->wx[x];
            ew += v * v;
        }
    for (size_t k = 0; k < P * P; k++) ep += (double)p->pwin[k] * p->pwin[k];
    double nu = p->par.whiten && p->nu > 0 ? p->nu * ep / ew : 0;
    for (size_t i = 0; i < p->npy; i++)
        for (size_t j = 0; j < p->npx; j++) {
            fftwf_complex *T = p->ptspec + (i * p->npx + j) * ph;
            patch_extract(p, p->tmpl, p->py0[i], p->px0[j], w->preal);
            fftwf_execute_dft_r2c(p->pfwd, w->preal, w->pspec);
            mc_template_spectrum(w->pspec, p->pfilt, ph, p->par.whiten, nu, T);
        }
    return 0;
}

void mc_patches_uniform(const caimg_mc_plan *p, mc_work *w, float dy, float dx)
{
    for (size_t k = 0; k < p->npatch; k++) {
        w->pshift[2 * k] = dy;
        w->pshift[2 * k + 1] = dx;
    }
}

static inline size_t wrap(long v, long n) { return (size_t)(((v % n) + n) % n); }

/* Register one patch: the P x P window of image f at the template patch's
 * corner moved by (oy, ox) against template patch k, searching shifts of
 * the window within `dev` of (cy, cx).  Returns the shift of the window's
 * content (relative to the template patch, so add (oy, ox) for the total),
 * its peak-to-noise ratio, and whether the peak is trustworthy. */
static int patch_register(const caimg_mc_plan *p, mc_work *w, const float *f, size_t k, long oy,
                          long ox, double cy, double cx, double dev, double *sy, double *sx,
                          float *pnr)
{
    long P = (long)p->P, ph = P * (P / 2 + 1);
    long lim = P / 2 - 2;
    size_t i = k / p->npx, j = k % p->npx;
    patch_extract(p, f, (size_t)((long)p->py0[i] + oy), (size_t)((long)p->px0[j] + ox), w->preal);
    fftwf_execute_dft_r2c(p->pfwd, w->preal, w->pspec);
    const fftwf_complex *T = p->ptspec + k * (size_t)ph;
    mc_cross(w->pspec, T, w->pspec, (size_t)ph, p->par.whiten);
    fftwf_execute_dft_c2r(p->pinv, w->pspec, w->pcorr);
    long ya = (long)ceil(cy - dev), yb = (long)floor(cy + dev);
    long xa = (long)ceil(cx - dev), xb = (long)floor(cx + dev);
    if (ya < -lim) ya = -lim;
    if (yb > lim) yb = lim;
    if (xa < -lim) xa = -lim;
    if (xb > lim) xb = lim;
    if (ya > yb) ya = yb = (long)floor(cy + 0.5);
    if (xa > xb) xa = xb = (long)floor(cx + 0.5);
    float best = -INFINITY;
    long by = ya, bx = xa;
    for (long y = ya; y <= yb; y++) {
        const float *row = w->pcorr + wrap(y, P) * (size_t)P;
        for (long x = xa; x <= xb; x++) {
            float v = row[wrap(x, P)];
            if (v > best) { best = v; by = y; bx = x; }
        }
    }
    const float *c = w->pcorr;
    float ss = 0;
#pragma omp simd reduction(+ : ss)
    for (long q = 0; q < P * P; q++) ss += c[q] * c[q];
    double rms = sqrt((double)ss / (double)(P * P));
    size_t y_ = wrap(by, P), x_ = wrap(bx, P);
    float up = c[wrap(by - 1, P) * (size_t)P + x_], dn = c[wrap(by + 1, P) * (size_t)P + x_];
    float lf = c[y_ * (size_t)P + wrap(bx - 1, P)], rt = c[y_ * (size_t)P + wrap(bx + 1, P)];
    *sy = (double)by + mc_fit3(up, best, dn);
    *sx = (double)bx + mc_fit3(lf, best, rt);
    *pnr = rms > 0 ? (float)(best / rms) : 0;
    /* A maximum on the edge of the allowed region whose neighbour outside
     * it is higher is the slope of a peak beyond the limit. */
    int edge = (by == ya && up > best) || (by == yb && dn > best) || (bx == xa && lf > best)
               || (bx == xb && rt > best);
    return !edge && *pnr >= p->par.min_pnr && best > 0;
}

/* Unreliable patches (pok 0) take the mean of their reliable neighbours,
 * growing inwards from the reliable ones; any left over take (dy, dx). */
static void fill_patches(const caimg_mc_plan *p, mc_work *w, float dy, float dx)
{
    size_t npy = p->npy, npx = p->npx;
    for (int pass = 0; pass < (int)(npy + npx); pass++) {
        int changed = 0, missing = 0;
        for (size_t i = 0; i < npy; i++)
            for (size_t j = 0; j < npx; j++) {
                size_t k = i * npx + j;
                if (w->pok[k]) continue;
                double sy = 0, sx = 0;
                int cnt = 0;
                for (long di = -1; di <= 1; di++)
                    for (long dj = -1; dj <= 1; dj++) {
                        long ii = (long)i + di, jj = (long)j + dj;
                        if ((!di && !dj) || ii < 0 || jj < 0 || ii >= (long)npy || jj >= (long)npx)
                            continue;
                        size_t q = (size_t)ii * npx + (size_t)jj;
                        if (w->pok[q] != 1) continue;
                        sy += w->pshift[2 * q];
                        sx += w->pshift[2 * q + 1];
                        cnt++;
                    }
                if (cnt) {
                    w->pshift[2 * k] = (float)(sy / cnt);
                    w->pshift[2 * k + 1] = (float)(sx / cnt);
                    w->pok[k] = 2;   /* filled in this pass */
                    changed = 1;
                } else {
                    missing = 1;
                }
            }
        for (size_t k = 0; k < p->npatch; k++)
            if (w->pok[k] == 2) w->pok[k] = 1;
        if (!missing || !changed) break;
    }
    for (size_t k = 0; k < p->npatch; k++)
        if (!w->pok[k]) {
            w->pshift[2 * k] = dy;
            w->pshift[2 * k + 1] = dx;
        }
}

void mc_patches(const caimg_mc_plan *p, mc_work *w, const float *f, const mc_est *e)
{
    long P = (long)p->P;
    long ny = (long)p->ny, nx = (long)p->nx;
    long ry = lround(e->dy), rx = lround(e->dx);
    double dev = p->par.max_dev;
    for (size_t k = 0; k < p->npatch; k++) {
        size_t i = k / p->npx, j = k % p->npx;
        long y0 = (long)p->py0[i], x0 = (long)p->px0[j];
        /* The frame window follows the rigid shift (rounded), so the patch
         * is compared with the same scene content. */
        long wy0 = y0 + ry, wx0 = x0 + rx;
        wy0 = wy0 < 0 ? 0 : wy0 > ny - P ? ny - P : wy0;
        wx0 = wx0 < 0 ? 0 : wx0 > nx - P ? nx - P : wx0;
        long oy = wy0 - y0, ox = wx0 - x0;
        double sy, sx;
        w->pok[k] = (unsigned char)patch_register(p, w, f, k, oy, ox, e->dy - (double)oy,
                                                  e->dx - (double)ox, dev, &sy, &sx, &w->ppnr[k]);
        w->pshift[2 * k] = (float)((double)oy + sy);
        w->pshift[2 * k + 1] = (float)((double)ox + sx);
    }
    fill_patches(p, w, e->dy, e->dx);

    /* Second pass: a patch sees a varying displacement as an average
     * weighted by where its structure is, so on a strongly deformed frame
     * the first estimates are biased.  Resampling the frame with the first
     * field leaves a small residual deformation, which the patches then
     * measure accurately. */
    {
        float ext[4];
        float *g = w->tmp2;
        mc_warp_field(p, w, f, g, CAIMG_MC_BORDER_NEAREST, ext);
        double rdev = dev < 3 ? dev : 3;
        for (size_t k = 0; k < p->npatch; k++) {
            double sy, sx;
            float pnr;
            if (patch_register(p, w, g, k, 0, 0, 0, 0, rdev, &sy, &sx, &pnr)) {
                w->pshift[2 * k] += (float)sy;
                w->pshift[2 * k + 1] += (float)sx;
            }
        }
    }
}

/* The interpolated field of patch shifts `ps` at any point (y, x). */
static void field_at(const caimg_mc_plan *p, const float *ps, double y, double x, double *dy,
                     double *dx)
{
    int by, bx;
    float wy[4], wx[4];
    node_weights(p->pcy, p->npy, y, &by, wy);
    node_weights(p->pcx, p->npx, x, &bx, wx);
    double vy = 0, vx = 0;
    for (int a = 0; a < 4; a++) {
        size_t i = (size_t)(by + a);
        if (i >= p->npy || wy[a] == 0) continue;
        for (int b = 0; b < 4; b++) {
            size_t j = (size_t)(bx + b);
            if (j >= p->npx || wx[b] == 0) continue;
            double wt = (double)wy[a] * wx[b];
            vy += wt * ps[2 * (i * p->npx + j)];
            vx += wt * ps[2 * (i * p->npx + j) + 1];
        }
    }
    *dy = vy;
    *dx = vx;
}

/* Patch shifts in the frame's coordinates.  The registration measures, for
 * the template point c, where it appears in the frame: s(c) with
 * frame(c + s(c)) = template(c).  The convention of caimg-h5(5) describes
 * motion on the frame's pixels, frame(p) = template(p - d(p)), so at the
 * patch centre p = c we need d(c) = s(c - d(c)), found by fixed-point
 * iteration on the interpolated field (it converges in a few steps: the
 * field's gradient is far below 1). */
void mc_patches_frame(const caimg_mc_plan *p, const float *ps, float *out)
{
    for (size_t i = 0; i < p->npy; i++)
        for (size_t j = 0; j < p->npx; j++) {
            size_t k = i * p->npx + j;
            double c0 = p->pcy[i], c1 = p->pcx[j], dy = ps[2 * k], dx = ps[2 * k + 1];
            for (int it = 0; it < 6 && p->par.piecewise; it++) field_at(p, ps, c0 - dy, c1 - dx, &dy, &dx);
            out[2 * k] = (float)dy;
            out[2 * k + 1] = (float)dx;
        }
}

/* One output pixel by clamped (edge-replicating) interpolation, for the
 * pixels whose taps leave the frame. */
static float sample_clamped(const float *src, long ny, long nx, long iy, long ix,
                            const float a[4], const float c[4], int cubic)
{
    float v = 0;
    int k0 = cubic ? 0 : 1, k1 = cubic ? 4 : 3;
    for (int k = k0; k < k1; k++) {
        long yy = iy - 1 + k;
        yy = yy < 0 ? 0 : yy >= ny ? ny - 1 : yy;
        const float *s = src + yy * nx;
        float r = 0;
        for (int m = k0; m < k1; m++) {
            long xx = ix - 1 + m;
            xx = xx < 0 ? 0 : xx >= nx ? nx - 1 : xx;
            r += c[m] * s[xx];
        }
        v += a[k] * r;
    }
    return v;
}

/* Resample a frame along the interpolated shift field: output pixel
 * (y, x) takes the frame at (y + dy(y, x), x + dx(y, x)).  The field is
 * smooth, so along a row the integer parts of the source position stay
 * constant over long runs; within a run the taps are contiguous in memory
 * and the loop vectorises with per-pixel weights, without gathers. */
void mc_warp_field(const caimg_mc_plan *p, mc_work *w, const float *src, float *dst,
                   int border, float ext[4])
{
    long ny = (long)p->ny, nx = (long)p->nx;
    size_t npx = p->npx, npy = p->npy;
    int cubic = p->par.interp == CAIMG_MC_INTERP_BICUBIC;
    float fill = border == CAIMG_MC_BORDER_NAN ? NAN : 0.0f;
    float *fdy = w->wrow, *fdx = fdy + nx, *wa = fdx + nx, *wc = wa + 4 * nx;
    int *iyv = (int *)(wc + 4 * nx), *oxv = iyv + nx;
    float ymin = INFINITY, ymax = -INFINITY, xmin = INFINITY, xmax = -INFINITY;
    for (long y = 0; y < ny; y++) {
        /* The node values of this row (interpolated along y), then the
         * field along x as a dense product with the transposed weights. */
        float ry[64], rx[64];
        const float *wy = p->fy_w + 4 * y;
        int b = p->fy_base[y];
        for (size_t j = 0; j < npx; j++) {
            float vy = 0, vx = 0;
            for (int k = 0; k < 4; k++) {
                size_t i = (size_t)(b + k);
                if (i >= npy) break;
                vy += wy[k] * w->pshift[2 * (i * npx + j)];
                vx += wy[k] * w->pshift[2 * (i * npx + j) + 1];
            }
            ry[j] = vy;
            rx[j] = vx;
        }
        for (long x = 0; x < nx; x++) fdy[x] = fdx[x] = 0;
        for (size_t j = 0; j < npx; j++) {
            const float *wt = p->fxt + j * (size_t)nx;
            float vy = ry[j], vx = rx[j];
#pragma omp simd
            for (long x = 0; x < nx; x++) {
                fdy[x] += wt[x] * vy;
                fdx[x] += wt[x] * vx;
            }
        }
        /* Source positions, their integer parts and the weights. */
        float rl = INFINITY, rh = -INFINITY, cl = INFINITY, ch = -INFINITY;
        int nxi = (int)nx, yi = (int)y;
        /* int, not long, indices: SSE2 has no vector int64-to-float. */
#pragma omp simd reduction(min : rl, cl) reduction(max : rh, ch)
        for (int x = 0; x < nxi; x++) {
            float dy = fdy[x], dx = fdx[x];
            rl = dy < rl ? dy : rl;
            rh = dy > rh ? dy : rh;
            cl = dx < cl ? dx : cl;
            ch = dx > ch ? dx : ch;
            float sy = (float)yi + dy, sx = (float)x + dx;
            /* floor for the range at hand (|s| < 2^23), vectorisable. */
            int iy = (int)sy, ix = (int)sx;
            iy -= sy < (float)iy;
            ix -= sx < (float)ix;
            iyv[x] = iy;
            oxv[x] = ix - x;
            wa[x] = sy - (float)iy;   /* fractions, turned into weights below */
            wc[x] = sx - (float)ix;
        }
        if (cubic) {
#pragma omp simd
            for (long x = 0; x < nx; x++) {
                float ty = wa[x], tx = wc[x];
                float ty2 = ty * ty, ty3 = ty2 * ty, tx2 = tx * tx, tx3 = tx2 * tx;
                wa[x] = -0.5f * ty3 + ty2 - 0.5f * ty;
                wa[nx + x] = 1.5f * ty3 - 2.5f * ty2 + 1;
                wa[2 * nx + x] = -1.5f * ty3 + 2 * ty2 + 0.5f * ty;
                wa[3 * nx + x] = 0.5f * ty3 - 0.5f * ty2;
                wc[x] = -0.5f * tx3 + tx2 - 0.5f * tx;
                wc[nx + x] = 1.5f * tx3 - 2.5f * tx2 + 1;
                wc[2 * nx + x] = -1.5f * tx3 + 2 * tx2 + 0.5f * tx;
                wc[3 * nx + x] = 0.5f * tx3 - 0.5f * tx2;
            }
        } else {
#pragma omp simd
            for (long x = 0; x < nx; x++) {
                float ty = wa[x], tx = wc[x];
                wa[x] = 0;
                wa[nx + x] = 1 - ty;
                wa[2 * nx + x] = ty;
                wa[3 * nx + x] = 0;
                wc[x] = 0;
                wc[nx + x] = 1 - tx;
                wc[2 * nx + x] = tx;
                wc[3 * nx + x] = 0;
            }
        }
        ymin = rl < ymin ? rl : ymin;
        ymax = rh > ymax ? rh : ymax;
        xmin = cl < xmin ? cl : xmin;
        xmax = ch > xmax ? ch : xmax;
        float *o = dst + y * nx;
        long x = 0;
        while (x < nx) {
            int iy = iyv[x], ox = oxv[x];
            long e = x + 1;
            while (e < nx && iyv[e] == iy && oxv[e] == ox) e++;
            /* Columns of the run whose four taps lie inside the frame. */
            long xa = x, xb = e;
            if (xa < 1 - ox) xa = 1 - ox;
            if (xb > nx - 2 - ox) xb = nx - 2 - ox;
            int rows_in = iy >= 1 && iy + 2 < ny;
            if (!rows_in || xa >= xb) xa = xb = e;
            for (long q = x; q < xa; q++) {
                float a4[4] = {wa[q], wa[nx + q], wa[2 * nx + q], wa[3 * nx + q]};
                float c4[4] = {wc[q], wc[nx + q], wc[2 * nx + q], wc[3 * nx + q]};
                o[q] = sample_clamped(src, ny, nx, iy, q + ox, a4, c4, cubic);
            }
            if (xa < xb) {
                const float *s0 = src + (long)(iy - 1) * nx + ox - 1;
                const float *s1 = s0 + nx, *s2 = s1 + nx, *s3 = s2 + nx;
                const float *a0 = wa, *a1 = wa + nx, *a2 = wa + 2 * nx, *a3 = wa + 3 * nx;
                const float *c0 = wc, *c1 = wc + nx, *c2 = wc + 2 * nx, *c3 = wc + 3 * nx;
                if (cubic) {
#pragma omp simd
                    for (long q = xa; q < xb; q++) {
                        float r0 = c0[q] * s0[q] + c1[q] * s0[q + 1] + c2[q] * s0[q + 2] + c3[q] * s0[q + 3];
                        float r1 = c0[q] * s1[q] + c1[q] * s1[q + 1] + c2[q] * s1[q + 2] + c3[q] * s1[q + 3];
                        float r2 = c0[q] * s2[q] + c1[q] * s2[q + 1] + c2[q] * s2[q + 2] + c3[q] * s2[q + 3];
                        float r3 = c0[q] * s3[q] + c1[q] * s3[q + 1] + c2[q] * s3[q + 2] + c3[q] * s3[q + 3];
                        o[q] = a0[q] * r0 + a1[q] * r1 + a2[q] * r2 + a3[q] * r3;
                    }
                } else {
#pragma omp simd
                    for (long q = xa; q < xb; q++) {
                        float r1 = c1[q] * s1[q + 1] + c2[q] * s1[q + 2];
                        float r2 = c1[q] * s2[q + 1] + c2[q] * s2[q + 2];
                        o[q] = a1[q] * r1 + a2[q] * r2;
                    }
                }
            }
            for (long q = xb; q < e; q++) {
                float a4[4] = {wa[q], wa[nx + q], wa[2 * nx + q], wa[3 * nx + q]};
                float c4[4] = {wc[q], wc[nx + q], wc[2 * nx + q], wc[3 * nx + q]};
                o[q] = sample_clamped(src, ny, nx, iy, q + ox, a4, c4, cubic);
            }
            x = e;
        }
        if (border != CAIMG_MC_BORDER_NEAREST)
            for (long q = 0; q < nx; q++) {
                float sy = (float)y + fdy[q], sx = (float)q + fdx[q];
                if (sy < 0 || sy > (float)(ny - 1) || sx < 0 || sx > (float)(nx - 1)) o[q] = fill;
            }
    }
    ext[0] = ymin;
    ext[1] = ymax;
    ext[2] = xmin;
    ext[3] = xmax;
}
