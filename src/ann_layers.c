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
#include <string.h>

#include <gsl/gsl_cblas.h>

#include "ann_internal.h"
#include "internal.h"

/* ---- convolution: im2col + GEMM ----------------------------------------- */

/* Is the convolution a plain 1x1 projection, whose input already has the
 * layout of the col matrix? */
static int conv_is_pointwise(const ann_layer *L)
{
    return L->kh == 1 && L->kw == 1 && L->stride == 1 && L->pad_t == 0 && L->pad_l == 0;
}

/* Unfold one sample x [C][H][W] into col [C*kh*kw][oh*ow]: row (c, i, j)
 * holds the input pixels that kernel tap (i, j) of channel c meets at every
 * output position, zero where the tap falls in the padding.  Rows are
 * filled with contiguous copies when the stride is 1, the common case. */
static void im2col(const ann_layer *L, const float *x, float *col)
{
    const long H = (long)L->ih, W = (long)L->iw, Ho = (long)L->oh, Wo = (long)L->ow;
    const long s = (long)L->stride, pt = (long)L->pad_t, pl = (long)L->pad_l;
    float *row = col;
    for (size_t c = 0; c < L->ic; c++) {
        const float *xc = x + c * (size_t)(H * W);
        for (long i = 0; i < (long)L->kh; i++) {
            for (long j = 0; j < (long)L->kw; j++, row += Ho * Wo) {
                for (long oy = 0; oy < Ho; oy++) {
                    float *r = row + oy * Wo;
                    long iy = oy * s - pt + i;
                    if (iy < 0 || iy >= H) {
                        memset(r, 0, (size_t)Wo * sizeof *r);
                        continue;
                    }
                    const float *xr = xc + iy * W;
                    if (s == 1) {
                        long x0 = j - pl;               /* ix = ox + x0 */
                        long lo = CAIMG_MIN(CAIMG_MAX(0, -x0), Wo);
                        long hi = CAIMG_MAX(CAIMG_MIN(Wo, W - x0), lo);
                        memset(r, 0, (size_t)lo * sizeof *r);
                        memcpy(r + lo, xr + lo + x0, (size_t)(hi - lo) * sizeof *r);
                        memset(r + hi, 0, (size_t)(Wo - hi) * sizeof *r);
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

/* The adjoint of im2col: add every entry of col back onto the input pixel
 * it was copied from.  gx must be zeroed by the caller. */
static void col2im(const ann_layer *L, const float *col, float *gx)
{
    const long H = (long)L->ih, W = (long)L->iw, Ho = (long)L->oh, Wo = (long)L->ow;
    const long s = (long)L->stride, pt = (long)L->pad_t, pl = (long)L->pad_l;
    const float *row = col;
    for (size_t c = 0; c < L->ic; c++) {
        float *gc = gx + c * (size_t)(H * W);
        for (long i = 0; i < (long)L->kh; i++) {
            for (long j = 0; j < (long)L->kw; j++, row += Ho * Wo) {
                for (long oy = 0; oy < Ho; oy++) {
                    long iy = oy * s - pt + i;
                    if (iy < 0 || iy >= H) continue;
                    const float *r = row + oy * Wo;
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
    for (size_t s = 0; s < nb; s++) {
        const float *x = in + s * L->isize;
        float *y = out + s * L->osize;
        const float *src = x;
        if (!conv_is_pointwise(L)) {
            im2col(L, x, col);
            src = col;
        }
        for (int co = 0; co < Co; co++)
            for (int p = 0; p < P; p++) y[(size_t)co * P + p] = b[co];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Co, P, K, 1.0f,
                    W, K, src, P, 1.0f, y, P);
    }
}

static void conv_backward(const caimg_ann *m, const ann_layer *L, const float *in,
                          const float *gout, float *gin, float *g, size_t nb,
                          float *scratch)
{
    const float *W = m->theta + L->p_w;
    const int K = (int)(L->ic * L->kh * L->kw), P = (int)(L->oh * L->ow);
    const int Co = (int)L->oc;
    const int pointwise = conv_is_pointwise(L);
    float *col = scratch, *dcol = scratch + L->col_size;
    for (size_t s = 0; s < nb; s++) {
        const float *x = in + s * L->isize;
        const float *gy = gout + s * L->osize;
        if (g) {
            const float *src = x;
            if (!pointwise) {
                im2col(L, x, col);
                src = col;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Co, K, P, 1.0f,
                        gy, P, src, P, 1.0f, g + L->p_w, K);
            float *gb = g + L->p_b;
            for (int co = 0; co < Co; co++) {
                float acc = 0.0f;
                for (int p = 0; p < P; p++) acc += gy[(size_t)co * P + p];
                gb[co] += acc;
            }
        }
        if (gin) {
            float *gx = gin + s * L->isize;
            if (pointwise) {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, P, Co, 1.0f,
                            W, K, gy, P, 0.0f, gx, P);
            } else {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, P, Co, 1.0f,
                            W, K, gy, P, 0.0f, dcol, P);
                memset(gx, 0, L->isize * sizeof *gx);
                col2im(L, dcol, gx);
            }
        }
    }
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

/* ---- elementwise ---------------------------------------------------------- */

/* softplus(x) = log(1 + e^x), computed without overflow for large x. */
static inline float softplusf(float x)
{
    return x > 20.0f ? x : log1pf(expf(x));
}

static void elementwise_forward(ann_ltype t, const float *in, float *out, size_t n)
{
    switch (t) {
    case ANN_RELU:
        for (size_t i = 0; i < n; i++) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
        break;
    case ANN_ELU:
        for (size_t i = 0; i < n; i++) out[i] = in[i] > 0.0f ? in[i] : expm1f(in[i]);
        break;
    case ANN_ELU1:
        for (size_t i = 0; i < n; i++) out[i] = (in[i] > 0.0f ? in[i] : expm1f(in[i])) + 1.0f;
        break;
    case ANN_SOFTPLUS:
        for (size_t i = 0; i < n; i++) out[i] = softplusf(in[i]);
        break;
    default:   /* input, noise: identity */
        if (out != in) memcpy(out, in, n * sizeof *out);
        break;
    }
}

static void elementwise_backward(ann_ltype t, const float *in, const float *gout,
                                 float *gin, size_t n)
{
    switch (t) {
    case ANN_RELU:
        for (size_t i = 0; i < n; i++) gin[i] = in[i] > 0.0f ? gout[i] : 0.0f;
        break;
    case ANN_ELU:
    case ANN_ELU1:
        for (size_t i = 0; i < n; i++) gin[i] = in[i] > 0.0f ? gout[i] : gout[i] * expf(in[i]);
        break;
    case ANN_SOFTPLUS:
        for (size_t i = 0; i < n; i++) gin[i] = gout[i] / (1.0f + expf(-in[i]));
        break;
    default:
        if (gin != gout) memcpy(gin, gout, n * sizeof *gin);
        break;
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
    default: if (gin) elementwise_backward(L->type, in, gout, gin, nb * L->osize); break;
    }
}

size_t ann_scratch_size(const caimg_ann *m)
{
    size_t need = 1;
    for (size_t l = 1; l < m->nl; l++) {
        const ann_layer *L = &m->L[l];
        if (L->type == ANN_CONV) need = CAIMG_MAX(need, 2 * L->col_size);
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
