/* ann_train.c -- losses, penalties, Adam and the training loop.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "caimg/ann.h"
#include "ann_internal.h"
#include "internal.h"

#define POISSON_EPS 1e-6f

/* Noise streams with the top two bits 01 are reserved for training, so a
 * caller's prediction or attack streams (small numbers) never repeat the
 * noise the model was trained with. */
#define TRAIN_STREAM (UINT64_C(1) << 62)

void caimg_ann_train_opts_init(caimg_ann_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->loss = CAIMG_ANN_POISSON;
    o->batch = 64;
    o->lr = 0.002;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->l2 = 1e-4;
    o->max_epochs = 200;
    o->min_epochs = 5;
    o->patience = 10;
    o->val_fraction = 0.1;
    o->seed = 1;
    o->calib_max = 512;
    o->init_bias = 1;
    o->lr_factor = 0.3;
}

void caimg_ann_history_clear(caimg_ann_history *h)
{
    if (!h) return;
    free(h->epochs);
    free(h->val_mask);
    memset(h, 0, sizeof *h);
}

/* ---- loss -------------------------------------------------------------------- */

/* Weighted data loss: sum over neurons, weighted mean over samples (w NULL:
 * plain mean).  dp receives the gradient of that value. */
static double loss_weighted(caimg_ann_loss_type type, const float *p, const float *y,
                            const float *w, const float *nw, size_t n, size_t N, float *dp)
{
    double wsum = 0.0;
    for (size_t s = 0; s < n; s++) wsum += w ? w[s] : 1.0;
    if (!(wsum > 0)) {
        if (dp) memset(dp, 0, n * N * sizeof *dp);
        return 0.0;
    }
    double total = 0.0;
    for (size_t s = 0; s < n; s++) {
        const float ws = (float)((w ? w[s] : 1.0) / wsum);
        double ls = 0.0;
        for (size_t k = 0; k < N; k++) {
            size_t i = s * N + k;
            float pv = p[i], yv = y[i], g;
            if (isnan(yv)) {
                if (dp) dp[i] = 0.0f;
                continue;
            }
            const float nwk = nw ? nw[k] : 1.0f;
            if (type == CAIMG_ANN_POISSON) {
                float q = pv + POISSON_EPS;
                ls += nwk * ((double)pv - (double)yv * log((double)q));
                g = 1.0f - yv / q;
            } else {
                float d = pv - yv;
                ls += nwk * 0.5 * (double)d * (double)d;
                g = d;
            }
            if (dp) dp[i] = ws * nwk * g;
        }
        total += (double)ws * ls;
    }
    return total;
}

double caimg_ann_loss(caimg_ann_loss_type type, const float *p, const float *y,
                      size_t n, size_t nout, float *dp)
{
    return loss_weighted(type, p, y, NULL, NULL, n, nout, dp);
}

/* ---- penalties ----------------------------------------------------------------- */

/* 5-point Laplacian of an h x w slice with zero outside: the adjoint of
 * this operator is itself, so the gradient of sum(lap(v)^2) is
 * 2 lap(lap(v)).  Computed in double so that the penalty's value is exact
 * enough to be compared with its gradient. */
static void laplacian(const double *v, size_t h, size_t w, double *out)
{
    for (size_t i = 0; i < h; i++)
        for (size_t j = 0; j < w; j++) {
            double c = 4.0 * v[i * w + j];
            if (i > 0) c -= v[(i - 1) * w + j];
            if (i + 1 < h) c -= v[(i + 1) * w + j];
            if (j > 0) c -= v[i * w + j - 1];
            if (j + 1 < w) c -= v[i * w + j + 1];
            out[i * w + j] = c;
        }
}

/* Smoothness penalty over `count` slices of h x w; tmp holds 3*h*w doubles. */
static double smooth_penalty(const float *v, size_t count, size_t h, size_t w, double lam,
                             float *g, double *tmp)
{
    double pen = 0.0;
    double *s = tmp, *l1 = tmp + h * w, *l2 = tmp + 2 * h * w;
    for (size_t k = 0; k < count; k++) {
        for (size_t i = 0; i < h * w; i++) s[i] = v[k * h * w + i];
        laplacian(s, h, w, l1);
        for (size_t i = 0; i < h * w; i++) pen += l1[i] * l1[i];
        if (g) {
            laplacian(l1, h, w, l2);
            float *gs = g + k * h * w;
            for (size_t i = 0; i < h * w; i++) gs[i] += (float)(2.0 * lam * l2[i]);
        }
    }
    return lam * pen;
}

double ann_penalty(const caimg_ann *m, double l2, float *g)
{
    double pen = 0.0;
    size_t tmpn = 3;
    for (size_t k = 0; k < m->ntens; k++) {
        const ann_layer *L = &m->L[m->tens[k].layer];
        if (m->tens[k].kind == ANN_T_MASK) tmpn = CAIMG_MAX(tmpn, 3 * L->ih * L->iw);
        if (L->type == ANN_CONV) tmpn = CAIMG_MAX(tmpn, 3 * L->kh * L->kw);
    }
    /* A few kilobytes; should even this fail, the smoothness terms are
     * left out rather than the training failing. */
    double *tmp = malloc(tmpn * sizeof *tmp);
    for (size_t k = 0; k < m->ntens; k++) {
        const ann_tensor_info *t = &m->tens[k];
        const ann_layer *L = &m->L[t->layer];
        const float *v = m->theta + t->off;
        float *gv = g ? g + t->off : NULL;
        if (t->kind == ANN_T_BIAS) continue;
        if (l2 > 0) {
            double s = 0.0;
            for (size_t i = 0; i < t->size; i++) {
                s += (double)v[i] * v[i];
                if (gv) gv[i] += (float)l2 * v[i];
            }
            pen += 0.5 * l2 * s;
        }
        int readout_w = t->kind == ANN_T_MASK || t->kind == ANN_T_FEAT ||
                        (t->kind == ANN_T_WEIGHT && L->type == ANN_READOUT_DENSE);
        if (readout_w && L->l1 > 0) {
            double s = 0.0;
            const float lam = (float)L->l1;
            for (size_t i = 0; i < t->size; i++) {
                s += fabs((double)v[i]);
                if (gv) gv[i] += v[i] > 0 ? lam : (v[i] < 0 ? -lam : 0.0f);
            }
            pen += L->l1 * s;
        }
        if (L->smooth > 0 && tmp) {
            if (t->kind == ANN_T_WEIGHT && L->type == ANN_CONV)
                pen += smooth_penalty(v, L->oc * L->ic, L->kh, L->kw, L->smooth, gv, tmp);
            else if (t->kind == ANN_T_MASK)
                pen += smooth_penalty(v, L->osize, L->ih, L->iw, L->smooth, gv, tmp);
        }
    }
    free(tmp);
    return pen;
}

/* ---- helpers --------------------------------------------------------------------- */

/* The pre-activation that makes the layers after the readout output v:
 * the readout biases then start at the mean responses, which saves the
 * first epochs from learning an offset. */
static double invert_output(const caimg_ann *m, double v)
{
    for (size_t l = m->nl - 1; l > m->readout; l--) {
        switch (m->L[l].type) {
        case ANN_SOFTPLUS:
            v = v < 1e-4 ? 1e-4 : v;
            v = v > 20 ? v : log(expm1(v));
            break;
        case ANN_ELU1:
            v = v < 1e-4 ? 1e-4 : v;
            v = v >= 1 ? v - 1 : log(v);
            break;
        case ANN_ELU:
            v = v > 0 ? v : log1p(v > -0.9999 ? v : -0.9999);
            break;
        case ANN_RELU:
            v = v > 0 ? v : 0.0;
            break;
        case ANN_SQUARE:
            v = v > 0 ? sqrt(v) : 0.0;
            break;
        default:
            break;
        }
    }
    return v;
}

static void gather(const float *src, size_t rowlen, const size_t *idx, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++)
        memcpy(dst + i * rowlen, src + idx[i] * rowlen, rowlen * sizeof *dst);
}

static int check_data(const caimg_ann *m, const float *x, const float *y, const float *wt,
                      size_t n, const caimg_ann_train_opts *o)
{
    const size_t insz = m->L[0].osize, N = m->nout;
    for (size_t i = 0; i < n * insz; i++)
        if (!isfinite(x[i]))
            return caimg_error(CAIMG_EFORMAT, "image %zu has a non-finite pixel (value %g at %zu)",
                               i / insz, (double)x[i], i % insz);
    for (size_t s = 0; s < n; s++) {
        if (wt && (!(wt[s] >= 0) || !isfinite(wt[s])))
            return caimg_error(CAIMG_EINVAL, "stimulus %zu has weight %g; weights must be >= 0", s,
                               (double)wt[s]);
        for (size_t k = 0; k < N; k++) {
            float v = y[s * N + k];
            if (o->neuron_weights && (!(o->neuron_weights[k] >= 0) || !isfinite(o->neuron_weights[k])))
                return caimg_error(CAIMG_EINVAL, "neuron %zu has loss weight %g; weights must be >= 0",
                                   k, (double)o->neuron_weights[k]);
            if (isinf(v))
                return caimg_error(CAIMG_EFORMAT, "response of neuron %zu to stimulus %zu is infinite",
                                   k, s);
            if (o->loss == CAIMG_ANN_POISSON && v < 0)
                return caimg_error(CAIMG_EINVAL, "the Poisson loss needs non-negative responses, but "
                                   "neuron %zu has %g for stimulus %zu (use the MSE loss, or "
                                   "responses such as spike counts)", k, (double)v, s);
        }
    }
    return 0;
}

/* ---- training ---------------------------------------------------------------------- */

int caimg_ann_train(caimg_ann *m, const float *x, const float *y, const float *wt,
                    size_t n, const caimg_ann_train_opts *opts, caimg_ann_history *h)
{
    caimg_ann_train_opts defaults;
    if (!opts) {
        caimg_ann_train_opts_init(&defaults);
        opts = &defaults;
    }
    const caimg_ann_train_opts *o = opts;
    const size_t insz = m->L[0].osize, N = m->nout;
    if (h) memset(h, 0, sizeof *h);
    if (m->nmem)
        return caimg_error(CAIMG_EINVAL, "an ensemble is not trained as one network; train its "
                           "members one by one");
    if (n < 2) return caimg_error(CAIMG_EINVAL, "training needs at least 2 stimuli, got %zu", n);
    if (o->batch == 0 || !(o->lr > 0) || o->max_epochs == 0 || !(o->val_fraction >= 0) ||
        o->val_fraction >= 1 || !(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1) ||
        !(o->ema >= 0 && o->ema < 1) || (o->lr_decays && !(o->lr_factor > 0 && o->lr_factor < 1)))
        return caimg_error(CAIMG_EINVAL, "training options out of range (batch %zu, lr %g, "
                           "epochs %zu, validation fraction %g, averaging decay %g)", o->batch, o->lr,
                           o->max_epochs, o->val_fraction, o->ema);
    int st = check_data(m, x, y, wt, n, o);
    if (st) return st;

    /* The validation split: drawn from this training set only. */
    unsigned char *vmask = caimg_calloc(n, 1, "validation split");
    size_t *idx = caimg_malloc(n, sizeof *idx, "stimulus order");
    if (!vmask || !idx) { free(vmask); free(idx); return CAIMG_ENOMEM; }
    ann_rng rng;
    ann_rng_init(&rng, o->seed, 0x53504c54u);   /* "SPLT" */
    if (o->val_mask) {
        memcpy(vmask, o->val_mask, n);
        for (size_t i = 0; i < n; i++) vmask[i] = vmask[i] != 0;
    } else if (o->val_fraction > 0) {
        size_t nval = (size_t)floor(o->val_fraction * (double)n + 0.5);
        if (nval < 2 && n >= 4) nval = 2;      /* a correlation needs two points */
        if (nval > n - 1) nval = n - 1;
        for (size_t i = 0; i < n; i++) idx[i] = i;
        for (size_t i = 0; i < nval; i++) {
            size_t j = i + ann_rng_below(&rng, n - i);
            size_t t = idx[i]; idx[i] = idx[j]; idx[j] = t;
            vmask[idx[i]] = 1;
        }
    }
    size_t ntr = 0, nval = 0;
    for (size_t i = 0; i < n; i++) {
        if (vmask[i]) nval++;
        else idx[ntr++] = i;
    }
    size_t *vidx = caimg_malloc(nval ? nval : 1, sizeof *vidx, "validation indices");
    if (!vidx) { free(vmask); free(idx); return CAIMG_ENOMEM; }
    for (size_t i = 0, k = 0; i < n; i++)
        if (vmask[i]) vidx[k++] = i;
    if (ntr == 0) {
        free(vmask); free(idx); free(vidx);
        return caimg_error(CAIMG_EINVAL, "the validation split leaves no training stimuli");
    }
    const size_t B = CAIMG_MIN(o->batch, ntr);

    /* Buffers. */
    caimg_ann_work *w = caimg_ann_work_alloc(m, B);
    float *xb = caimg_malloc(B * insz, sizeof *xb, "batch images");
    float *yb = caimg_malloc(B * N, sizeof *yb, "batch responses");
    float *wb = caimg_malloc(B, sizeof *wb, "batch weights");
    float *pb = caimg_malloc(B * N, sizeof *pb, "batch predictions");
    float *db = caimg_malloc(B * N, sizeof *db, "batch gradient");
    float *adam_m = caimg_calloc(m->nparam, sizeof *adam_m, "Adam state");
    float *adam_v = caimg_calloc(m->nparam, sizeof *adam_v, "Adam state");
    float *best = caimg_malloc(m->nparam, sizeof *best, "best weights");
    float *grad = caimg_malloc(m->nparam, sizeof *grad, "gradient");
    /* Polyak averaging: avg follows the weights; between epochs the two
     * swap places (raw keeps the weights being trained) so that
     * validation sees the average. */
    const int use_ema = o->ema > 0;
    float *avg = use_ema ? caimg_malloc(m->nparam, sizeof *avg, "averaged weights") : NULL;
    float *raw = use_ema ? caimg_malloc(m->nparam, sizeof *raw, "raw weights") : NULL;
    float *xv = caimg_malloc(nval ? nval * insz : 1, sizeof *xv, "validation images");
    float *yv = caimg_malloc(nval ? nval * N : 1, sizeof *yv, "validation responses");
    float *pv = caimg_malloc(nval ? nval * N : 1, sizeof *pv, "validation predictions");
    int noisy_rel = 0;
    size_t sdtotal = 0;
    for (size_t l = 0; l < m->nl; l++)
        if (m->L[l].noise_sd) { noisy_rel = 1; sdtotal += m->L[l].osize; }
    float *best_sd = caimg_malloc(sdtotal ? sdtotal : 1, sizeof *best_sd, "best noise scales");
    size_t ncal = noisy_rel ? CAIMG_MIN(ntr, o->calib_max ? o->calib_max : ntr) : 0;
    float *xc = caimg_malloc(ncal ? ncal * insz : 1, sizeof *xc, "calibration images");
    caimg_ann_epoch *curve = caimg_malloc(o->max_epochs, sizeof *curve, "training curve");
    if (!w || !xb || !yb || !wb || !pb || !db || !adam_m || !adam_v || !best || !grad ||
        !xv || !yv || !pv || !best_sd || !xc || !curve || (use_ema && (!avg || !raw))) {
        st = CAIMG_ENOMEM;
        goto done;
    }
    if (nval) {
        gather(x, insz, vidx, nval, xv);
        gather(y, N, vidx, nval, yv);
    }
    if (ncal) {
        /* A fixed, seeded subset of the training images measures the
         * activity that relative noise is scaled to. */
        size_t *perm = caimg_malloc(ntr, sizeof *perm, "calibration subset");
        if (!perm) { st = CAIMG_ENOMEM; goto done; }
        memcpy(perm, idx, ntr * sizeof *perm);
        ann_rng cr;
        ann_rng_init(&cr, o->seed, 0x43414c42u);   /* "CALB" */
        for (size_t i = 0; i < ncal; i++) {
            size_t j = i + ann_rng_below(&cr, ntr - i);
            size_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
        }
        gather(x, insz, perm, ncal, xc);
        free(perm);
    }

    if (o->init_bias) {
        float *b = m->theta + m->L[m->readout].p_b;
        for (size_t k = 0; k < N; k++) {
            double s = 0.0, ws = 0.0;
            for (size_t i = 0; i < ntr; i++) {
                float v = y[idx[i] * N + k];
                double wi = wt ? wt[idx[i]] : 1.0;
                if (isnan(v)) continue;
                s += wi * v;
                ws += wi;
            }
            double target = ws > 0 ? s / ws : 0.0;
            b[k] = (float)invert_output(m, (target - m->out_offset[k]) / m->out_scale[k]);
        }
    }

    ann_rng shuf;
    ann_rng_init(&shuf, o->seed, 0x53485546u);   /* "SHUF" */
    double best_score = -INFINITY;
    size_t best_epoch = 0, epoch = 0;
    size_t ndecay = 0, decayed_at = 0;   /* learning-rate decays so far, and when */
    double lr = o->lr;
    uint64_t step = 0;
    int stopped = 0;
    memcpy(best, m->theta, m->nparam * sizeof *best);
    if (use_ema) memcpy(avg, m->theta, m->nparam * sizeof *avg);
    if (ncal) st = caimg_ann_noise_calibrate(m, xc, ncal);
    for (epoch = 1; epoch <= o->max_epochs && !st; epoch++) {
        double t0 = caimg_seconds();
        for (size_t i = ntr - 1; i > 0; i--) {
            size_t j = ann_rng_below(&shuf, i + 1);
            size_t t = idx[i]; idx[i] = idx[j]; idx[j] = t;
        }
        double loss_sum = 0.0;
        size_t loss_n = 0;
        for (size_t b0 = 0; b0 < ntr && !st; b0 += B) {
            size_t nb = CAIMG_MIN(B, ntr - b0);
            gather(x, insz, idx + b0, nb, xb);
            gather(y, N, idx + b0, nb, yb);
            for (size_t i = 0; i < nb; i++) wb[i] = wt ? wt[idx[b0 + i]] : 1.0f;
            caimg_ann_noise_draw nd = {TRAIN_STREAM | step, 0};
            st = caimg_ann_forward(m, w, xb, nb, &nd, pb);
            if (st) break;
            double L = loss_weighted(o->loss, pb, yb, wb, o->neuron_weights, nb, N, db);
            loss_sum += L * (double)nb;
            loss_n += nb;
            st = caimg_ann_backward(m, w, db, NULL, 0, NULL, 1);
            if (st) break;
            memcpy(grad, caimg_ann_work_param_grad(w), m->nparam * sizeof *grad);
            ann_penalty(m, o->l2, grad);
            step++;
            /* Adam (Kingma & Ba 2015) with bias correction. */
            const float b1 = (float)o->beta1, b2 = (float)o->beta2;
            const double c1 = 1.0 - pow(o->beta1, (double)step);
            const double c2 = 1.0 - pow(o->beta2, (double)step);
            const float lr_t = (float)(lr * sqrt(c2) / c1);
            const float eps = (float)(o->eps * sqrt(c2));
            /* The average's decay ramps up as (1 + t) / (10 + t) so that
             * the random initial weights are soon forgotten. */
            const float ed = (float)CAIMG_MIN(o->ema, (1.0 + (double)step) / (10.0 + (double)step));
            float *th = m->theta;
            #pragma omp parallel for schedule(static)
            for (size_t i = 0; i < m->nparam; i++) {
                float g = grad[i];
                adam_m[i] = b1 * adam_m[i] + (1.0f - b1) * g;
                adam_v[i] = b2 * adam_v[i] + (1.0f - b2) * g * g;
                th[i] -= lr_t * adam_m[i] / (sqrtf(adam_v[i]) + eps);
                if (use_ema) avg[i] = ed * avg[i] + (1.0f - ed) * th[i];
            }
        }
        if (st) break;
        if (ncal && (st = caimg_ann_noise_calibrate(m, xc, ncal))) break;
        if (use_ema) {
            /* Evaluate (and keep) the averaged weights; the noise scales
             * stay those of the raw weights, which training draws with,
             * and are re-measured for the kept weights at the end. */
            memcpy(raw, m->theta, m->nparam * sizeof *raw);
            memcpy(m->theta, avg, m->nparam * sizeof *avg);
        }
        caimg_ann_epoch *e = &curve[epoch - 1];
        e->epoch = epoch;
        e->train_loss = loss_sum / (double)(loss_n ? loss_n : 1) / (double)N;
        e->penalty = ann_penalty(m, o->l2, NULL);
        e->val_loss = NAN;
        e->val_corr = NAN;
        if (nval) {
            if ((st = caimg_ann_predict(m, xv, nval, 0, 0, pv))) break;
            e->val_loss = loss_weighted(o->loss, pv, yv, NULL, o->neuron_weights, nval, N, NULL) /
                          (double)N;
            e->val_corr = caimg_ann_mean_corr(pv, yv, nval, N);
        }
        if (use_ema) memcpy(m->theta, raw, m->nparam * sizeof *raw);
        e->seconds = caimg_seconds() - t0;
        e->lr = lr;
        /* With no validation data, the newest weights are the best. */
        double score = nval ? (isnan(e->val_corr) ? -2.0 : e->val_corr) : (double)epoch;
        if (score > best_score) {
            best_score = score;
            best_epoch = epoch;
            memcpy(best, use_ema ? avg : m->theta, m->nparam * sizeof *best);
            size_t off = 0;
            for (size_t l = 0; l < m->nl; l++)
                if (m->L[l].noise_sd) {
                    memcpy(best_sd + off, m->L[l].noise_sd, m->L[l].osize * sizeof(float));
                    off += m->L[l].osize;
                }
        }
        if (o->epoch_fn && o->epoch_fn(e, o->epoch_ctx)) { epoch++; stopped = 1; break; }
        if ((st = caimg_progress("fit", (double)epoch, (double)o->max_epochs))) break;
        if (nval && epoch >= o->min_epochs && epoch - CAIMG_MAX(best_epoch, decayed_at) >= o->patience) {
            if (ndecay < o->lr_decays) {
                /* Back to the best weights, and on with smaller steps. */
                ndecay++;
                decayed_at = epoch;
                lr *= o->lr_factor;
                memcpy(m->theta, best, m->nparam * sizeof *best);
                if (use_ema) memcpy(avg, best, m->nparam * sizeof *avg);
                if (ncal && (st = caimg_ann_noise_calibrate(m, xc, ncal))) break;
                continue;
            }
            stopped = 1;
            epoch++;
            break;
        }
    }
    if (!st) {
        memcpy(m->theta, best, m->nparam * sizeof *best);
        size_t off = 0;
        if (best_epoch)
            for (size_t l = 0; l < m->nl; l++)
                if (m->L[l].noise_sd) {
                    memcpy(m->L[l].noise_sd, best_sd + off, m->L[l].osize * sizeof(float));
                    off += m->L[l].osize;
                }
        if (use_ema && ncal) st = caimg_ann_noise_calibrate(m, xc, ncal);
    }
    if (!st) {
        size_t nep = epoch - 1;
        if (h) {
            h->nepochs = nep;
            h->epochs = curve;
            curve = NULL;
            h->best_epoch = best_epoch;
            h->best_val_corr = nval && best_epoch ? h->epochs[best_epoch - 1].val_corr : NAN;
            h->nstim = n;
            h->val_mask = vmask;
            vmask = NULL;
            h->stopped_early = stopped;
        }
    }
done:
    caimg_ann_work_free(w);
    free(xb); free(yb); free(wb); free(pb); free(db);
    free(adam_m); free(adam_v); free(best); free(grad); free(avg); free(raw);
    free(xv); free(yv); free(pv); free(best_sd); free(xc); free(curve);
    free(vmask); free(idx); free(vidx);
    return st;
}
