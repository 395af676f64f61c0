/* ann_layers.c -- forward and backward kernels of the network layers.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Every kernel works on a chunk of nb samples stored one after another
 * ([nb][C][H][W]) and runs on a single thread: parallelism lives one level
 * up, across chunks, so that BLAS is always called single-threaded and the
 * order of every floating-point sum is fixed.  Backward kernels only read
 * their layer's input, never its output, because noise may have been added
 * to the output in place after the forward pass.
 */
#include <config.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <gsl/gsl_cblas.h>

#include "ann_internal.h"
#include "internal.h"

/* ---- convolution: im2col + GEMM -------------------------------------------
 * A convolution is a matrix product once the input is unfolded ("im2col")
 * into a matrix with one row per (channel, kernel tap) and one column per
 * output position.  The unfolded matrix of a whole image is kh*kw times
 * larger than the image and would not stay in cache, so it is built and
 * used in tiles of output rows of about CONV_TILE floats, which keeps each
 * tile in L2 while BLAS works on it. */

#define CONV_TILE 16384   /* floats per im2col tile (384 KiB) */

/* The geometry of a stride/padding convolution of a C x H x W input. */
typedef struct {
    size_t C, H, W, kh, kw, s;
    long pt, pl;
    size_t Ho, Wo;
} geom;

static geom layer_geom(const ann_layer *L)
{
    geom g = {L->ic, L->ih, L->iw, L->kh, L->kw, L->stride,
              (long)L->pad_t, (long)L->pad_l, L->oh, L->ow};
    return g;
}

/* The input gradient of a stride-1 convolution is itself a convolution of
 * the output gradient with the kernels flipped and input/output channels
 * swapped, with padding k-1-pad.  It has the efficient shape of a forward
 * pass (a long inner dimension), where the direct formula multiplies by a
 * matrix with only Cout columns and scatters the result back. */
static int conv_has_transpose(const ann_layer *L)
{
    return L->stride == 1 && L->pad_t <= L->kh - 1 && L->pad_l <= L->kw - 1;
}

static geom transpose_geom(const ann_layer *L)
{
    geom g = {L->oc, L->oh, L->ow, L->kh, L->kw, 1,
              (long)(L->kh - 1 - L->pad_t), (long)(L->kw - 1 - L->pad_l), L->ih, L->iw};
    return g;
}

/* Output rows per tile for an unfolded matrix of K rows. */
static size_t tile_rows(const geom *g)
{
    size_t K = g->C * g->kh * g->kw, per_row = K * g->Wo;
    size_t r = per_row ? CONV_TILE / per_row : 1;
    if (r < 1) r = 1;
    if (r > g->Ho) r = g->Ho;
    return r;
}

static size_t tile_floats(const geom *g)
{
    return g->C * g->kh * g->kw * g->Wo * tile_rows(g);
}

/* Is the convolution a plain 1x1 projection, whose input already has the
 * layout of the col matrix? */
static int conv_is_pointwise(const ann_layer *L)
{
    return L->kh == 1 && L->kw == 1 && L->stride == 1 && L->pad_t == 0 && L->pad_l == 0;
}

/* r[0..lo) = 0, r[lo..hi) = src[lo..hi), r[hi..n) = 0. */
static inline void copy_row(float *restrict r, const float *restrict src, long lo, long hi, long n)
{
    for (long k = 0; k < lo; k++) r[k] = 0.0f;
    for (long k = lo; k < hi; k++) r[k] = src[k];
    for (long k = hi; k < n; k++) r[k] = 0.0f;
}

/* One im2col row of a stride-1 convolution whose output is as wide as its
 * input (W == Wo, "same" padding): the ny output rows read input rows
 * iy0.. iy0+ny-1 shifted by x0 columns, which in memory is one contiguous
 * span, so it is copied in one go; the columns that fall in the left or
 * right padding (which the span filled from neighbouring rows) and rows
 * outside the image are then zeroed.  Short per-row copies were a third
 * of the work. */
static void im2col_span(float *r, const float *xc, long H, long W, long iy0, long ny, long x0)
{
    long qa = iy0 < 0 ? -iy0 : 0, qb = H - iy0 < ny ? H - iy0 : ny;
    if (qb <= qa) {
        memset(r, 0, (size_t)(ny * W) * sizeof *r);
        return;
    }
    long lo = CAIMG_MIN(CAIMG_MAX(0, -x0), W);       /* valid columns [lo, hi) */
    long hi = CAIMG_MAX(CAIMG_MIN(W, W - x0), lo);
    if (qa > 0) memset(r, 0, (size_t)(qa * W) * sizeof *r);
    /* From the first valid pixel of row qa to the last of row qb-1. */
    long d0 = qa * W + lo, d1 = (qb - 1) * W + hi;
    if (d1 > d0) memcpy(r + d0, xc + (iy0 + qa) * W + x0 + lo, (size_t)(d1 - d0) * sizeof *r);
    for (long q = qa; q < qb; q++) {
        float *rq = r + q * W;
        for (long k = 0; k < lo; k++) rq[k] = 0.0f;
        for (long k = hi; k < W; k++) rq[k] = 0.0f;
    }
    if (qb < ny) memset(r + qb * W, 0, (size_t)((ny - qb) * W) * sizeof *r);
}

/* Unfold output rows [oy0, oy1) of one sample x [C][H][W] into
 * col [C*kh*kw][(oy1-oy0)*Wo]: row (c, i, j) holds the input pixels that
 * kernel tap (i, j) of channel c meets at those output positions, zero
 * where the tap falls in the padding.  Rows are filled with contiguous
 * copies when the stride is 1, the common case. */
static void im2col(const geom *g, const float *x, size_t oy0, size_t oy1, float *col)
{
    const long H = (long)g->H, W = (long)g->W, Wo = (long)g->Wo;
    const long s = (long)g->s, pt = g->pt, pl = g->pl;
    const long ny = (long)(oy1 - oy0);
    float *row = col;
    for (size_t c = 0; c < g->C; c++) {
        const float *xc = x + c * (size_t)(H * W);
        for (long i = 0; i < (long)g->kh; i++) {
            for (long j = 0; j < (long)g->kw; j++, row += ny * Wo) {
                if (s == 1 && W == Wo) {
                    im2col_span(row, xc, H, W, (long)oy0 - pt + i, ny, j - pl);
                    continue;
                }
                for (long q = 0; q < ny; q++) {
                    long oy = (long)oy0 + q;
                    float *r = row + q * Wo;
                    long iy = oy * s - pt + i;
                    if (iy < 0 || iy >= H) {
                        memset(r, 0, (size_t)Wo * sizeof *r);
                        continue;
                    }
                    const float *xr = xc + iy * W;
                    if (s == 1) {
                        /* Rows are short (tens of pixels): plain loops,
                         * which the compiler vectorises, beat calls to
                         * memcpy and memset here. */
                        long x0 = j - pl;               /* ix = ox + x0 */
                        long lo = CAIMG_MIN(CAIMG_MAX(0, -x0), Wo);
                        long hi = CAIMG_MAX(CAIMG_MIN(Wo, W - x0), lo);
                        copy_row(r, xr + x0, lo, hi, Wo);
                    } else {
                        for (long ox = 0; ox < Wo; ox++) {
                            long ix = ox * s - pl + j;
                            r[ox] = (ix >= 0 && ix < W) ? xr[ix] : 0.0f;
                        }
                    }
                }
            }
        }
    }
}

/* The adjoint of im2col for output rows [oy0, oy1): add every entry of
 * col back onto the input pixel it was copied from. */
static void col2im(const geom *g, const float *col, size_t oy0, size_t oy1, float *gx)
{
    const long H = (long)g->H, W = (long)g->W, Wo = (long)g->Wo;
    const long s = (long)g->s, pt = g->pt, pl = g->pl;
    const long ny = (long)(oy1 - oy0);
    const float *row = col;
    for (size_t c = 0; c < g->C; c++) {
        float *gc = gx + c * (size_t)(H * W);
        for (long i = 0; i < (long)g->kh; i++) {
            for (long j = 0; j < (long)g->kw; j++, row += ny * Wo) {
                for (long q = 0; q < ny; q++) {
                    long iy = ((long)oy0 + q) * s - pt + i;
                    if (iy < 0 || iy >= H) continue;
                    const float *r = row + q * Wo;
                    float *gr = gc + iy * W;
                    if (s == 1) {
                        long x0 = j - pl;
                        long lo = CAIMG_MAX(0, -x0);
                        long hi = CAIMG_MIN(Wo, W - x0);
                        for (long ox = lo; ox < hi; ox++) gr[ox + x0] += r[ox];
                    } else {
                        for (long ox = 0; ox < Wo; ox++) {
                            long ix = ox * s - pl + j;
                            if (ix >= 0 && ix < W) gr[ix] += r[ox];
                        }
                    }
                }
            }
        }
    }
}

static void conv_forward(const caimg_ann *m, const ann_layer *L, const float *in,
                         float *out, size_t nb, float *col)
{
    const float *W = m->theta + L->p_w, *b = m->theta + L->p_b;
    const int K = (int)(L->ic * L->kh * L->kw), P = (int)(L->oh * L->ow);
    const int Co = (int)L->oc;
    const geom g = layer_geom(L);
    const size_t R = tile_rows(&g);
    for (size_t s = 0; s < nb; s++) {
        const float *x = in + s * L->isize;
        float *y = out + s * L->osize;
        for (int co = 0; co < Co; co++)
            for (int p = 0; p < P; p++) y[(size_t)co * P + p] = b[co];
        if (conv_is_pointwise(L)) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Co, P, K, 1.0f,
                        W, K, x, P, 1.0f, y, P);
            continue;
        }
        for (size_t y0 = 0; y0 < L->oh; y0 += R) {
            size_t y1 = CAIMG_MIN(y0 + R, L->oh);
            int n = (int)((y1 - y0) * L->ow);
            im2col(&g, x, y0, y1, col);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Co, n, K, 1.0f,
                        W, K, col, n, 1.0f, y + y0 * L->ow, P);
        }
    }
}

static void conv_backward(const caimg_ann *m, const ann_layer *L, const float *in,
                          const float *gout, float *gin, float *g, size_t nb,
                          float *scratch)
{
    const float *W = m->theta + L->p_w;
    const int K = (int)(L->ic * L->kh * L->kw), P = (int)(L->oh * L->ow);
    const int Co = (int)L->oc, Ci = (int)L->ic;
    const int pointwise = conv_is_pointwise(L);
    const geom gf = layer_geom(L);
    const size_t R = tile_rows(&gf);
    const int transpose = !pointwise && conv_has_transpose(L);
    const geom gt = transpose_geom(L);
    const size_t Rt = tile_rows(&gt);
    const int Kt = Co * (int)(L->kh * L->kw);
    /* Scratch: the flipped kernels (transpose path), then a tile. */
    float *wf = scratch, *col = scratch + (transpose ? (size_t)Ci * Kt : 0);
    if (gin && transpose) {
        /* wf[ci][co][i][j] = W[co][ci][kh-1-i][kw-1-j] */
        const size_t kk = L->kh * L->kw;
        for (int ci = 0; ci < Ci; ci++)
            for (int co = 0; co < Co; co++) {
                const float *src = W + ((size_t)co * Ci + ci) * kk;
                float *dst = wf + ((size_t)ci * Co + co) * kk;
                for (size_t t = 0; t < kk; t++) dst[t] = src[kk - 1 - t];
            }
    }
    for (size_t s = 0; s < nb; s++) {
        const float *x = in + s * L->isize;
        const float *gy = gout + s * L->osize;
        if (g) {
            if (pointwise) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Co, K, P, 1.0f,
                            gy, P, x, P, 1.0f, g + L->p_w, K);
            } else {
                for (size_t y0 = 0; y0 < L->oh; y0 += R) {
                    size_t y1 = CAIMG_MIN(y0 + R, L->oh);
                    int n = (int)((y1 - y0) * L->ow);
                    im2col(&gf, x, y0, y1, col);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Co, K, n, 1.0f,
                                gy + y0 * L->ow, P, col, n, 1.0f, g + L->p_w, K);
                }
            }
            float *gb = g + L->p_b;
            for (int co = 0; co < Co; co++) {
                float acc = 0.0f;
                for (int p = 0; p < P; p++) acc += gy[(size_t)co * P + p];
                gb[co] += acc;
            }
        }
        if (!gin) continue;
        float *gx = gin + s * L->isize;
        if (pointwise) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, P, Co, 1.0f,
                        W, K, gy, P, 0.0f, gx, P);
        } else if (transpose) {
            const int Pi = (int)(L->ih * L->iw);
            for (size_t y0 = 0; y0 < L->ih; y0 += Rt) {
                size_t y1 = CAIMG_MIN(y0 + Rt, L->ih);
                int n = (int)((y1 - y0) * L->iw);
                im2col(&gt, gy, y0, y1, col);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Ci, n, Kt, 1.0f,
                            wf, Kt, col, n, 0.0f, gx + y0 * L->iw, Pi);
            }
        } else {
            memset(gx, 0, L->isize * sizeof *gx);
            for (size_t y0 = 0; y0 < L->oh; y0 += R) {
                size_t y1 = CAIMG_MIN(y0 + R, L->oh);
                int n = (int)((y1 - y0) * L->ow);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, n, Co, 1.0f,
                            W, K, gy + y0 * L->ow, P, 0.0f, col, n);
                col2im(&gf, col, y0, y1, gx);
            }
        }
    }
}

/* Scratch floats one sample of a conv layer needs. */
static size_t conv_scratch(const ann_layer *L)
{
    geom gf = layer_geom(L), gt = transpose_geom(L);
    size_t need = tile_floats(&gf);
    if (conv_has_transpose(L))
        need = CAIMG_MAX(need, tile_floats(&gt)) + L->ic * L->oc * L->kh * L->kw;
    return need;
}

/* ---- dense layers (hidden and readout) ------------------------------------ */

static void dense_forward(const caimg_ann *m, const ann_layer *L, const float *in,
                          float *out, size_t nb)
{
    const float *W = m->theta + L->p_w, *b = m->theta + L->p_b;
    const int I = (int)L->isize, O = (int)L->osize;
    for (size_t s = 0; s < nb; s++) memcpy(out + s * O, b, (size_t)O * sizeof *b);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, O, I, 1.0f,
                in, I, W, I, 1.0f, out, O);
}

static void dense_backward(const caimg_ann *m, const ann_layer *L, const float *in,
                           const float *gout, float *gin, float *g, size_t nb)
{
    const float *W = m->theta + L->p_w;
    const int I = (int)L->isize, O = (int)L->osize;
    if (g) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, O, I, (int)nb, 1.0f,
                    gout, O, in, I, 1.0f, g + L->p_w, I);
        float *gb = g + L->p_b;
        for (size_t s = 0; s < nb; s++)
            for (int o = 0; o < O; o++) gb[o] += gout[s * O + o];
    }
    if (gin)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, I, O, 1.0f,
                    gout, O, W, I, 0.0f, gin, I);
}

/* ---- factorised readout ----------------------------------------------------
 * Neuron n responds b[n] + sum_c F[n][c] sum_p M[n][p] x[c][p]: a spatial
 * mask M picks where the neuron looks, feature weights F what it looks for
 * (Klindt et al. 2017).  The masked sums T[c][n] = sum_p x[c][p] M[n][p] of
 * a whole chunk are one GEMM; T is kept (aux) for the backward pass. */

static void fact_forward(const caimg_ann *m, const ann_layer *L, const float *in,
                         float *out, float *T, size_t nb)
{
    const float *M = m->theta + L->p_mask, *F = m->theta + L->p_feat;
    const float *b = m->theta + L->p_b;
    const int C = (int)L->ic, HW = (int)(L->ih * L->iw), N = (int)L->osize;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb * C, N, HW, 1.0f,
                in, HW, M, HW, 0.0f, T, N);
    for (size_t s = 0; s < nb; s++) {
        const float *Ts = T + s * (size_t)C * N;
        float *y = out + s * N;
        for (int n = 0; n < N; n++) y[n] = b[n];
        for (int c = 0; c < C; c++) {
            const float *tc = Ts + (size_t)c * N;
            for (int n = 0; n < N; n++) y[n] += F[(size_t)n * C + c] * tc[n];
        }
    }
}

static void fact_backward(const caimg_ann *m, const ann_layer *L, const float *in,
                          const float *T, const float *gout, float *gin, float *g,
                          size_t nb, float *dT)
{
    const float *M = m->theta + L->p_mask, *F = m->theta + L->p_feat;
    const int C = (int)L->ic, HW = (int)(L->ih * L->iw), N = (int)L->osize;
    /* dT[s][c][n] = gout[s][n] F[n][c] */
    for (size_t s = 0; s < nb; s++) {
        const float *gy = gout + s * N;
        float *d = dT + s * (size_t)C * N;
        for (int c = 0; c < C; c++)
            for (int n = 0; n < N; n++) d[(size_t)c * N + n] = gy[n] * F[(size_t)n * C + c];
    }
    if (g) {
        float *gF = g + L->p_feat, *gb = g + L->p_b;
        for (size_t s = 0; s < nb; s++) {
            const float *gy = gout + s * N;
            const float *Ts = T + s * (size_t)C * N;
            for (int n = 0; n < N; n++) {
                gb[n] += gy[n];
                for (int c = 0; c < C; c++) gF[(size_t)n * C + c] += gy[n] * Ts[(size_t)c * N + n];
            }
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, HW, (int)nb * C, 1.0f,
                    dT, N, in, HW, 1.0f, g + L->p_mask, HW);
    }
    if (gin)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb * C, HW, N, 1.0f,
                    dT, N, M, HW, 0.0f, gin, HW);
}

/* ---- pooling (no padding; windows always inside the input) ---------------- */

static void pool_forward(const ann_layer *L, const float *in, float *out, size_t nb, int is_max)
{
    const size_t H = L->ih, W = L->iw, Ho = L->oh, Wo = L->ow, s = L->stride;
    const float inv = 1.0f / (float)(L->kh * L->kw);
    for (size_t q = 0; q < nb * L->ic; q++) {
        const float *x = in + q * H * W;
        float *y = out + q * Ho * Wo;
        for (size_t oy = 0; oy < Ho; oy++)
            for (size_t ox = 0; ox < Wo; ox++) {
                const float *w0 = x + oy * s * W + ox * s;
                float acc = is_max ? w0[0] : 0.0f;
                for (size_t i = 0; i < L->kh; i++)
                    for (size_t j = 0; j < L->kw; j++) {
                        float v = w0[i * W + j];
                        if (is_max) { if (v > acc) acc = v; }
                        else acc += v;
                    }
                y[oy * Wo + ox] = is_max ? acc : acc * inv;
            }
    }
}

/* Max pooling sends the gradient to the first maximum of each window,
 * found again from the input (ties go to the first, as in the forward). */
static void pool_backward(const ann_layer *L, const float *in, const float *gout,
                          float *gin, size_t nb, int is_max)
{
    const size_t H = L->ih, W = L->iw, Ho = L->oh, Wo = L->ow, s = L->stride;
    const float inv = 1.0f / (float)(L->kh * L->kw);
    memset(gin, 0, nb * L->isize * sizeof *gin);
    for (size_t q = 0; q < nb * L->ic; q++) {
        const float *x = in + q * H * W;
        const float *gy = gout + q * Ho * Wo;
        float *gx = gin + q * H * W;
        for (size_t oy = 0; oy < Ho; oy++)
            for (size_t ox = 0; ox < Wo; ox++) {
                size_t base = oy * s * W + ox * s;
                float gv = gy[oy * Wo + ox];
                if (is_max) {
                    size_t arg = base;
                    float best = x[base];
                    for (size_t i = 0; i < L->kh; i++)
                        for (size_t j = 0; j < L->kw; j++)
                            if (x[base + i * W + j] > best) {
                                best = x[base + i * W + j];
                                arg = base + i * W + j;
                            }
                    gx[arg] += gv;
                } else {
                    for (size_t i = 0; i < L->kh; i++)
                        for (size_t j = 0; j < L->kw; j++) gx[base + i * W + j] += gv * inv;
                }
            }
    }
}

/* ---- elementwise ----------------------------------------------------------- */

/* The loops below carry "omp simd": GCC's default -O2 cost model does not
 * vectorise loops of unknown length, and these are an eighth of the work.
 * Vector and scalar code evaluate the same operations, so results do not
 * depend on it. */

/* e^x without a library call, so that elementwise loops vectorise (the
 * libm call was an eighth of a training step).  x = n ln2 + r with
 * |r| <= ln2/2 (Cody-Waite split of ln2), e^r by its degree-6 Taylor
 * polynomial (truncation below 1.3e-7 relative), 2^n put in the exponent.
 * x is clamped to [-87, 88], where e^x is a normal float. */
static inline float fast_expf(float x)
{
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    /* Round to nearest by the 1.5 * 2^23 trick (default rounding mode). */
    float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145752f - n * 1.42860677e-6f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416666679f +
              r * (0.00833333377f + r * 0.00138888892f)))));
    union { int32_t i; float f; } u;
    u.i = ((int32_t)n + 127) << 23;
    return p * u.f;
}

/* e^x - 1: near zero by its own series (no cancellation), else e^x - 1. */
static inline float fast_expm1f(float x)
{
    float near = x * (1.0f + x * (0.5f + x * (0.166666672f + x * (0.0416666679f +
                 x * (0.00833333377f + x * 0.00138888892f)))));
    float far = fast_expf(x) - 1.0f;
    return fabsf(x) < 0.3f ? near : far;
}

/* softplus(x) = log(1 + e^x), computed without overflow for large x. */
static inline float softplusf(float x)
{
    return x > 20.0f ? x : log1pf(fast_expf(x));
}

static void elementwise_forward(ann_ltype t, const float *restrict in, float *restrict out,
                                size_t n)
{
    switch (t) {
    case ANN_RELU:
        for (size_t i = 0; i < n; i++) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
        break;
    case ANN_ELU:
        #pragma omp simd
        for (size_t i = 0; i < n; i++) {
            /* Both sides computed, then selected: branch-free, so it
             * vectorises. */
            float v = in[i], e = fast_expm1f(v);
            out[i] = v > 0.0f ? v : e;
        }
        break;
    case ANN_ELU1:
        #pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float v = in[i], e = fast_expm1f(v);
            out[i] = (v > 0.0f ? v : e) + 1.0f;
        }
        break;
    case ANN_SOFTPLUS:
        for (size_t i = 0; i < n; i++) out[i] = softplusf(in[i]);
        break;
    default:   /* input, noise: identity */
        memcpy(out, in, n * sizeof *out);
        break;
    }
}

static void elementwise_backward(ann_ltype t, const float *restrict in,
                                 const float *restrict gout, float *restrict gin, size_t n)
{
    switch (t) {
    case ANN_RELU:
        for (size_t i = 0; i < n; i++) gin[i] = in[i] > 0.0f ? gout[i] : 0.0f;
        break;
    case ANN_ELU:
    case ANN_ELU1:
        #pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float v = in[i], d = fast_expf(v < 0.0f ? v : 0.0f);
            gin[i] = gout[i] * (v > 0.0f ? 1.0f : d);
        }
        break;
    case ANN_SOFTPLUS:
        #pragma omp simd
        for (size_t i = 0; i < n; i++) gin[i] = gout[i] / (1.0f + fast_expf(-in[i]));
        break;
    default:
        memcpy(gin, gout, n * sizeof *gin);
        break;
    }
}

/* ---- square ----------------------------------------------------------------- */

/* x^2 on the last nsq channels (all when nsq is 0), identity on the rest.
 * A both-sign rectifier: the square of a linear filter's output is the
 * "energy" that phase-invariant (complex) cells respond to, which one-sided
 * rectifiers such as the ELU cannot form without many more units.  Keeping
 * the other channels linear lets one conv layer feed a rectified path
 * (an ELU after this layer leaves the squares unchanged, as they are >= 0)
 * and an energy path side by side. */
static void square_span(const ann_layer *L, size_t *first, size_t *len)
{
    size_t hw = L->ih * L->iw, k = L->nsq ? L->nsq : L->ic;
    *first = (L->ic - k) * hw;
    *len = k * hw;
}

static void square_forward(const ann_layer *L, const float *in, float *out, size_t nb)
{
    size_t first, len;
    square_span(L, &first, &len);
    for (size_t b = 0; b < nb; b++) {
        const float *x = in + b * L->isize;
        float *y = out + b * L->osize;
        memcpy(y, x, first * sizeof *y);
        for (size_t i = first; i < first + len; i++) y[i] = x[i] * x[i];
    }
}

static void square_backward(const ann_layer *L, const float *in, const float *gout,
                            float *gin, size_t nb)
{
    size_t first, len;
    square_span(L, &first, &len);
    for (size_t b = 0; b < nb; b++) {
        const float *x = in + b * L->isize, *g = gout + b * L->osize;
        float *d = gin + b * L->isize;
        memcpy(d, g, first * sizeof *d);
        for (size_t i = first; i < first + len; i++) d[i] = 2.0f * x[i] * g[i];
    }
}

/* ---- dispatch ------------------------------------------------------------- */

void ann_layer_forward(const caimg_ann *m, size_t l, const float *in, float *out,
                       float *aux, size_t nb, float *scratch)
{
    const ann_layer *L = &m->L[l];
    switch (L->type) {
    case ANN_CONV: conv_forward(m, L, in, out, nb, scratch); break;
    case ANN_DENSE:
    case ANN_READOUT_DENSE: dense_forward(m, L, in, out, nb); break;
    case ANN_READOUT_FACT: fact_forward(m, L, in, out, aux, nb); break;
    case ANN_POOLMAX: pool_forward(L, in, out, nb, 1); break;
    case ANN_POOLAVG: pool_forward(L, in, out, nb, 0); break;
    case ANN_SQUARE: square_forward(L, in, out, nb); break;
    default: elementwise_forward(L->type, in, out, nb * L->osize); break;
    }
}

void ann_layer_backward(const caimg_ann *m, size_t l, const float *in,
                        const float *out, const float *aux, const float *gout,
                        float *gin, float *g, size_t nb, float *scratch)
{
    const ann_layer *L = &m->L[l];
    CAIMG_UNUSED(out);
    switch (L->type) {
    case ANN_CONV: conv_backward(m, L, in, gout, gin, g, nb, scratch); break;
    case ANN_DENSE:
    case ANN_READOUT_DENSE: dense_backward(m, L, in, gout, gin, g, nb); break;
    case ANN_READOUT_FACT: fact_backward(m, L, in, aux, gout, gin, g, nb, scratch); break;
    case ANN_POOLMAX: if (gin) pool_backward(L, in, gout, gin, nb, 1); break;
    case ANN_POOLAVG: if (gin) pool_backward(L, in, gout, gin, nb, 0); break;
    case ANN_SQUARE: if (gin) square_backward(L, in, gout, gin, nb); break;
    default: if (gin) elementwise_backward(L->type, in, gout, gin, nb * L->osize); break;
    }
}

size_t ann_scratch_size(const caimg_ann *m)
{
    size_t need = 1;
    for (size_t l = 1; l < m->nl; l++) {
        const ann_layer *L = &m->L[l];
        if (L->type == ANN_CONV) need = CAIMG_MAX(need, conv_scratch(L));
        if (L->type == ANN_READOUT_FACT)
            need = CAIMG_MAX(need, (size_t)CAIMG_ANN_CHUNK * L->ic * L->osize);
    }
    return need;
}

size_t ann_aux_size(const caimg_ann *m, size_t l)
{
    const ann_layer *L = &m->L[l];
    return L->type == ANN_READOUT_FACT ? L->ic * L->osize : 0;
}
