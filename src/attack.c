/* attack.c -- FGSM, PGD (L-inf, L2, feature-space) and random baselines on
 * response models, with expectation over the model's noise.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * See caimg/attack.h for the definitions.  The network does the heavy
 * lifting (caimg_ann_forward/backward run OpenMP over chunks); this file
 * keeps per-image state, draws the noise and random numbers from
 * counter-based streams keyed by the image's index (so batching and
 * threads never change a result) and measures the outcome.
 */
#include <config.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "caimg/attack.h"
#include "ann_internal.h"
#include "attack_internal.h"
#include "internal.h"

/* Noise streams: training uses top bits 01 and predictions small numbers;
 * attack gradients use 10, evaluation 110 and restart selection 111, so no
 * two purposes ever share a draw. */
#define STREAM_GRAD (UINT64_C(2) << 62)
#define STREAM_EVAL (UINT64_C(6) << 61)
#define STREAM_SEL  (UINT64_C(7) << 61)
#define STREAM_LOW  ((UINT64_C(1) << 61) - 1)

/* Rows (images times noise draws) per network call: enough chunks of 8 to
 * keep two to four threads busy, small enough to stay in cache-friendly
 * work spaces. */
#define ATTACK_ROWS 128

/* Purposes of the per-image random generators. */
enum { RNG_START = 1, RNG_BASELINE, RNG_FGSM, RNG_FEATDIR };

/* ---- names ------------------------------------------------------------------ */

static const char *const method_names[] = {"random", "fgsm", "pgd", NULL};
static const char *const budget_names[] = {"linf", "l2", "feature", NULL};
static const char *const objective_names[] = {"response", "neuron", "decoder", NULL};
static const char *const decoder_names[] = {"centroid", "corr", NULL};

static int parse_name(const char *const *names, const char *s)
{
    for (int i = 0; s && names[i]; i++)
        if (!strcmp(names[i], s)) return i;
    return -1;
}

const char *caimg_attack_method_name(caimg_attack_method m)
{
    return (unsigned)m < 3 ? method_names[m] : "?";
}
const char *caimg_attack_budget_name(caimg_attack_budget b)
{
    return (unsigned)b < 3 ? budget_names[b] : "?";
}
const char *caimg_attack_objective_name(caimg_attack_objective o)
{
    return (unsigned)o < 3 ? objective_names[o] : "?";
}
const char *caimg_attack_decoder_name(caimg_attack_decoder_type d)
{
    return (unsigned)d < 2 ? decoder_names[d] : "?";
}
int caimg_attack_method_parse(const char *s) { return parse_name(method_names, s); }
int caimg_attack_budget_parse(const char *s) { return parse_name(budget_names, s); }
int caimg_attack_objective_parse(const char *s) { return parse_name(objective_names, s); }
int caimg_attack_decoder_parse(const char *s)
{
    if (s && !strcmp(s, "correlation")) return CAIMG_DECODER_CORR;
    return parse_name(decoder_names, s);
}

/* ---- defaults ------------------------------------------------------------------- */

void caimg_attack_setup_init(caimg_attack_setup *s)
{
    memset(s, 0, sizeof *s);
    s->lo = s->hi = NAN;
    s->eval_samples = 32;
    s->decoder = CAIMG_DECODER_CENTROID;
    s->feature_layer = -1;
    s->success_threshold = 0.5;
    s->seed = 1;
}

void caimg_attack_opts_init(caimg_attack_opts *o)
{
    memset(o, 0, sizeof *o);
    o->method = CAIMG_ATTACK_PGD;
    o->budget = CAIMG_ATTACK_LINF;
    o->objective = CAIMG_ATTACK_RESPONSE;
    o->direction = 1;
    o->steps = 20;
    o->step_scale = 2.5;
    o->random_start = 1;
    o->restarts = 1;
    o->eot = 10;
    o->seed = 1;
}

/* ---- the plan -------------------------------------------------------------------- */

size_t caimg_attack_plan_nimages(const caimg_attack_plan *p) { return p->n; }
const float *caimg_attack_plan_clean(const caimg_attack_plan *p) { return p->clean; }
const double *caimg_attack_plan_sd(const caimg_attack_plan *p) { return p->sd; }
double caimg_attack_plan_clean_accuracy(const caimg_attack_plan *p) { return p->clean_acc; }
int caimg_attack_plan_noisy(const caimg_attack_plan *p) { return p->noisy; }
void caimg_attack_plan_range(const caimg_attack_plan *p, double *lo, double *hi)
{
    if (lo) *lo = p->lo;
    if (hi) *hi = p->hi;
}

void caimg_attack_plan_destroy(caimg_attack_plan *p)
{
    if (!p) return;
    free(p->clean);
    free(p->mu);
    free(p->sd);
    free(p->valid);
    free(p->tmpl);
    free(p->tstd);
    free(p->feat0);
    free(p->fnorm);
    free(p);
}

/* z-scored response of valid neurons (others 0). */
static void zscore(const caimg_attack_plan *p, const float *f, double *z)
{
    for (size_t k = 0; k < p->N; k++)
        z[k] = p->valid[k] ? ((double)f[k] - p->mu[k]) / p->sd[k] : 0.0;
}

/* Standardise a vector over the valid neurons (mean 0, population sd 1);
 * returns the sd before standardising (0 leaves zeros). */
static double standardise(const caimg_attack_plan *p, const double *z, double *out)
{
    double m = 0.0, v = 0.0;
    for (size_t k = 0; k < p->N; k++)
        if (p->valid[k]) m += z[k];
    m /= (double)p->nvalid;
    for (size_t k = 0; k < p->N; k++)
        if (p->valid[k]) v += (z[k] - m) * (z[k] - m);
    double sd = sqrt(v / (double)p->nvalid);
    for (size_t k = 0; k < p->N; k++)
        out[k] = p->valid[k] && sd > 0 ? (z[k] - m) / sd : 0.0;
    return sd;
}

/* Score of a z-scored response against template j: a distance (smaller
 * is better) for the centroid decoder, minus the correlation for the
 * correlation decoder, so that the decision is always an argmin.  zs is
 * the standardised z (correlation decoder only). */
static double score(const caimg_attack_plan *p, const double *z, const double *zs, size_t j)
{
    double s = 0.0;
    if (p->decoder == CAIMG_DECODER_CENTROID) {
        const double *t = p->tmpl + j * p->N;
        for (size_t k = 0; k < p->N; k++) {
            double d = z[k] - t[k];
            s += d * d;
        }
        return s / (double)p->nvalid;
    }
    const double *t = p->tstd + j * p->N;
    for (size_t k = 0; k < p->N; k++) s += zs[k] * t[k];
    return -s / (double)p->nvalid;
}

/* Decode z (zs as for score): the index of the best template; *margin is
 * score(true) - best score among the others (> 0: decoded wrongly) and
 * *rival that other template. */
static size_t decode(const caimg_attack_plan *p, const double *z, const double *zs, size_t truth,
                     double *margin, size_t *rival)
{
    size_t best = 0, other = truth == 0 ? 1 : 0;
    double sbest = INFINITY, sother = INFINITY, strue = 0.0;
    for (size_t j = 0; j < p->n; j++) {
        double s = score(p, z, zs, j);
        if (s < sbest) { sbest = s; best = j; }
        if (j == truth) strue = s;
        else if (s < sother) { sother = s; other = j; }
    }
    /* Ties go to the true stimulus: a response equidistant from two
     * templates is not evidence of a wrong decision. */
    if (strue <= sbest) best = truth;
    if (margin) *margin = strue - sother;
    if (rival) *rival = other;
    return best;
}

caimg_attack_plan *caimg_attack_plan_create(const caimg_ann *m, const float *x, size_t n,
                                            const caimg_attack_setup *s)
{
    caimg_attack_setup defaults;
    if (!s) {
        caimg_attack_setup_init(&defaults);
        s = &defaults;
    }
    if (n < 2) {
        caimg_error(CAIMG_EINVAL, "attacks need at least 2 images (the natural variability and the "
                    "decoder are defined over the stimulus set), got %zu", n);
        return NULL;
    }
    if (s->feature_layer >= (int)caimg_ann_nlayers(m) || s->feature_layer == 0 ||
        (s->feature_layer > 0 && (size_t)s->feature_layer == caimg_ann_nlayers(m) - 1)) {
        caimg_error(CAIMG_EINVAL, "feature layer %d is not a hidden layer (1 to %zu)",
                    s->feature_layer, caimg_ann_nlayers(m) - 2);
        return NULL;
    }
    if (!(s->success_threshold >= 0) || !isfinite(s->success_threshold)) {
        caimg_error(CAIMG_EINVAL, "success threshold must be >= 0, not %g", s->success_threshold);
        return NULL;
    }
    double lo = s->lo, hi = s->hi;
    if (isnan(lo) || isnan(hi)) {
        if (caimg_ann_get_input_range(m, &lo, &hi)) {
            caimg_error(CAIMG_EINVAL, "the model records no valid pixel range; give one");
            return NULL;
        }
    }
    if (!isfinite(lo) || !isfinite(hi) || !(hi > lo)) {
        caimg_error(CAIMG_EINVAL, "the pixel range must be finite with lo < hi, not [%g, %g]", lo, hi);
        return NULL;
    }
    const size_t P = caimg_ann_input_size(m), N = caimg_ann_output_size(m);
    for (size_t i = 0; i < n * P; i++)
        if (!isfinite(x[i])) {
            caimg_error(CAIMG_EFORMAT, "image %zu has a non-finite pixel", i / P);
            return NULL;
        }
    caimg_attack_plan *p = caimg_calloc(1, sizeof *p, "attack plan");
    if (!p) return NULL;
    p->m = m;
    p->x = x;
    p->n = n;
    p->P = P;
    p->N = N;
    p->lo = lo;
    p->hi = hi;
    p->noisy = caimg_ann_is_noisy(m);
    p->K = p->noisy ? (s->eval_samples ? s->eval_samples : 1) : 0;
    p->decoder = s->decoder;
    p->layer = s->feature_layer;
    p->tau = s->success_threshold;
    p->seed = s->seed;
    p->eval_stream = STREAM_EVAL | ((ann_mix64(s->seed ^ UINT64_C(0x4556414c)) & STREAM_LOW) &
                                    ~(uint64_t)0xFFFFF);
    p->sel_stream = STREAM_SEL | ((ann_mix64(s->seed ^ UINT64_C(0x53454c45)) & STREAM_LOW) &
                                  ~(uint64_t)0xFFFFF);
    p->clean = caimg_malloc(n * N, sizeof *p->clean, "clean predictions");
    p->mu = caimg_calloc(N, sizeof *p->mu, "response means");
    p->sd = caimg_calloc(N, sizeof *p->sd, "response s.d.");
    p->valid = caimg_calloc(N, 1, "neuron flags");
    p->tmpl = caimg_calloc(n * N, sizeof *p->tmpl, "decoder templates");
    p->tstd = caimg_calloc(n * N, sizeof *p->tstd, "decoder templates");
    if (!p->clean || !p->mu || !p->sd || !p->valid || !p->tmpl || !p->tstd) goto fail;
    if (caimg_ann_predict(m, x, n, p->K, p->eval_stream, p->clean)) goto fail;
    double smax = 0.0;
    for (size_t k = 0; k < N; k++) {
        double a = 0.0, b = 0.0;
        for (size_t i = 0; i < n; i++) a += p->clean[i * N + k];
        a /= (double)n;
        for (size_t i = 0; i < n; i++) {
            double d = p->clean[i * N + k] - a;
            b += d * d;
        }
        p->mu[k] = a;
        p->sd[k] = sqrt(b / (double)(n - 1));
        if (!isfinite(p->sd[k])) {
            caimg_error(CAIMG_EFORMAT, "the model predicts non-finite responses for neuron %zu", k);
            goto fail;
        }
        if (p->sd[k] > smax) smax = p->sd[k];
    }
    for (size_t k = 0; k < N; k++) {
        p->valid[k] = smax > 0 && p->sd[k] > 1e-6 * smax;
        if (p->valid[k]) p->nvalid++;
        else p->sd[k] = 0.0;
    }
    if (!p->nvalid) {
        caimg_error(CAIMG_EFORMAT, "no neuron's predicted response varies across the %zu images; "
                    "there is nothing to disrupt", n);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        zscore(p, p->clean + i * N, p->tmpl + i * N);
        standardise(p, p->tmpl + i * N, p->tstd + i * N);
    }
    {
        double *z = caimg_malloc(2 * N, sizeof *z, "decoder buffer");
        if (!z) goto fail;
        size_t correct = 0;
        for (size_t i = 0; i < n; i++) {
            zscore(p, p->clean + i * N, z);
            standardise(p, z, z + N);
            correct += decode(p, z, z + N, i, NULL, NULL) == i;
        }
        free(z);
        p->clean_acc = (double)correct / (double)n;
    }
    if (p->layer > 0) {
        p->fsize = caimg_ann_layer_size(m, (size_t)p->layer);
        p->feat0 = caimg_malloc(n * p->fsize, sizeof *p->feat0, "clean features");
        p->fnorm = caimg_malloc(n, sizeof *p->fnorm, "feature norms");
        if (!p->feat0 || !p->fnorm) goto fail;
        size_t bs = CAIMG_MIN(n, (size_t)ATTACK_ROWS);
        caimg_ann_work *w = caimg_ann_work_alloc(m, bs);
        if (!w) goto fail;
        int st = 0;
        for (size_t b0 = 0; b0 < n && !st; b0 += bs) {
            size_t nb = CAIMG_MIN(bs, n - b0);
            st = caimg_ann_forward(m, w, x + b0 * P, nb, NULL, NULL);
            if (!st)
                memcpy(p->feat0 + b0 * p->fsize, caimg_ann_work_activation(w, (size_t)p->layer),
                       nb * p->fsize * sizeof *p->feat0);
        }
        caimg_ann_work_free(w);
        if (st) goto fail;
        for (size_t i = 0; i < n; i++) {
            double a = 0.0;
            for (size_t u = 0; u < p->fsize; u++) {
                double v = p->feat0[i * p->fsize + u];
                a += v * v;
            }
            /* A silent layer gets a tiny norm: any change is then far
             * outside every budget, which is the honest reading. */
            p->fnorm[i] = a > 0 ? sqrt(a) : 1e-30;
        }
    }
    return p;
fail:
    caimg_attack_plan_destroy(p);
    return NULL;
}

/* ---- objectives ------------------------------------------------------------------- */

/* The objective of image i for the response f [N] (to be maximised), and
 * its gradient with respect to f in df [N] when df is not NULL.  `ref`
 * (NULL: the plan's clean prediction) is the clean response the response
 * objective measures from.  `z` holds 2N doubles of scratch. */
static double objective(const caimg_attack_plan *p, const caimg_attack_opts *o, size_t i,
                        const float *f, const float *ref, double *df, double *z)
{
    const size_t N = p->N;
    const float *c = ref ? ref : p->clean + i * N;
    double J = 0.0;
    if (df) memset(df, 0, N * sizeof *df);
    switch (o->objective) {
    case CAIMG_ATTACK_RESPONSE:
        for (size_t k = 0; k < N; k++) {
            if (!p->valid[k]) continue;
            double d = ((double)f[k] - c[k]) / p->sd[k];
            J += d * d;
            if (df) df[k] = 2.0 * d / (p->sd[k] * (double)p->nvalid);
        }
        return J / (double)p->nvalid;
    case CAIMG_ATTACK_NEURON: {
        size_t k = o->neuron;
        J = (double)o->direction * ((double)f[k] - c[k]) / p->sd[k];
        if (df) df[k] = (double)o->direction / p->sd[k];
        return J;
    }
    case CAIMG_ATTACK_DECODER: {
        double *zs = z + N;
        zscore(p, f, z);
        double sdz = p->decoder == CAIMG_DECODER_CORR ? standardise(p, z, zs) : 0.0;
        size_t rival;
        double margin;
        decode(p, z, zs, i, &margin, &rival);
        if (df) {
            const double nv = (double)p->nvalid;
            if (p->decoder == CAIMG_DECODER_CENTROID) {
                const double *ti = p->tmpl + i * N, *tj = p->tmpl + rival * N;
                for (size_t k = 0; k < N; k++)
                    if (p->valid[k]) df[k] = 2.0 * (tj[k] - ti[k]) / (nv * p->sd[k]);
            } else if (sdz > 0) {
                /* margin = corr(z, t_rival) - corr(z, t_true); the gradient
                 * of corr(z, t) is (t~ - r z~) / (nv sd_z), t~ and z~
                 * standardised over the valid neurons. */
                const double *ti = p->tstd + i * N, *tj = p->tstd + rival * N;
                double ri = 0.0, rj = 0.0;
                for (size_t k = 0; k < N; k++) {
                    ri += zs[k] * ti[k];
                    rj += zs[k] * tj[k];
                }
                ri /= nv;
                rj /= nv;
                for (size_t k = 0; k < N; k++)
                    if (p->valid[k])
                        df[k] = ((tj[k] - rj * zs[k]) - (ti[k] - ri * zs[k])) / (nv * sdz * p->sd[k]);
            }
        }
        return margin;
    }
    }
    return 0.0;
}

/* ---- per-batch machinery ------------------------------------------------------------ */

typedef struct {
    const caimg_attack_plan *p;
    const caimg_attack_opts *o;
    size_t M;             /* noise draws per gradient (1 for a deterministic model) */
    size_t B;             /* images per batch */
    caimg_ann_work *w;    /* B*M rows */
    float *xrep;          /* [B*M][P] replicated images */
    float *dout;          /* [B*M][N] */
    float *dxrep;         /* [B*M][P] */
    float *fbar;          /* [B][N] mean predictions */
    float *cref;          /* [B][N] clean mean predictions on the same draws */
    float *sref;          /* [B][N] the same on the selection draws */
    double *df, *z;       /* [N], [2N] */
    float *seed_grad;     /* [B][fsize] feature seed */
} batch_ctx;

static void batch_free(batch_ctx *c)
{
    caimg_ann_work_free(c->w);
    free(c->xrep);
    free(c->dout);
    free(c->dxrep);
    free(c->fbar);
    free(c->cref);
    free(c->sref);
    free(c->df);
    free(c->z);
    free(c->seed_grad);
    memset(c, 0, sizeof *c);
}

static int batch_alloc(batch_ctx *c, const caimg_attack_plan *p, const caimg_attack_opts *o,
                       size_t M)
{
    memset(c, 0, sizeof *c);
    c->p = p;
    c->o = o;
    c->M = M;
    c->B = CAIMG_MAX((size_t)1, CAIMG_MIN(p->n, (size_t)ATTACK_ROWS / M));
    const size_t R = c->B * M;
    c->w = caimg_ann_work_alloc(p->m, R);
    c->xrep = caimg_malloc(R * p->P, sizeof *c->xrep, "attack batch");
    c->dout = caimg_malloc(R * p->N, sizeof *c->dout, "attack batch");
    c->dxrep = caimg_malloc(R * p->P, sizeof *c->dxrep, "attack batch");
    c->fbar = caimg_malloc(c->B * p->N, sizeof *c->fbar, "attack batch");
    c->cref = caimg_malloc(c->B * p->N, sizeof *c->cref, "attack batch");
    c->sref = caimg_malloc(c->B * p->N, sizeof *c->sref, "attack batch");
    c->df = caimg_malloc(p->N, sizeof *c->df, "attack batch");
    c->z = caimg_malloc(2 * p->N, sizeof *c->z, "attack batch");
    c->seed_grad = caimg_malloc(p->fsize ? c->B * p->fsize : 1, sizeof *c->seed_grad, "attack batch");
    if (!c->w || !c->xrep || !c->dout || !c->dxrep || !c->fbar || !c->cref || !c->sref || !c->df ||
        !c->z || !c->seed_grad) {
        batch_free(c);
        return CAIMG_ENOMEM;
    }
    return 0;
}

/* The EOT stream of step t of restart r. */
static uint64_t grad_stream(const caimg_attack_opts *o, size_t r, size_t t)
{
    uint64_t h = ann_mix64(o->seed * UINT64_C(0x9E3779B97F4A7C15) ^ ((uint64_t)r << 40) ^ (uint64_t)t ^
                           UINT64_C(0x47524144));
    return STREAM_GRAD | (h & STREAM_LOW);
}

/* Mean predictions fbar [nb][N] of the images xa [nb][P] (global indices
 * i0..) over M noise draws from `stream` (noise-free for a deterministic
 * model); the forward pass stays in the work space for a backward pass. */
static int mean_forward(batch_ctx *c, const float *xa, size_t i0, size_t nb, uint64_t stream,
                        size_t M, float *fbar)
{
    const caimg_attack_plan *p = c->p;
    const size_t P = p->P, N = p->N, R = nb * M;
    for (size_t b = 0; b < nb; b++)
        for (size_t m = 0; m < M; m++) memcpy(c->xrep + (b * M + m) * P, xa + b * P, P * sizeof(float));
    caimg_ann_noise_draw nd = {stream, (uint64_t)i0 * M};
    int st = caimg_ann_forward(p->m, c->w, c->xrep, R, p->noisy ? &nd : NULL, NULL);
    if (st) return st;
    const float *out = caimg_ann_work_activation(c->w, caimg_ann_nlayers(p->m) - 1);
    for (size_t b = 0; b < nb; b++)
        for (size_t k = 0; k < N; k++) {
            double s = 0.0;
            for (size_t m = 0; m < M; m++) s += out[(b * M + m) * N + k];
            fbar[b * N + k] = (float)(s / (double)M);
        }
    return 0;
}

/* For the response objective of a noisy model, the clean response is
 * re-measured with the very draws the attacked image gets: the mean
 * change then carries no sampling noise of the clean side, which would
 * otherwise dominate (and misdirect) the gradient at small budgets. */
static int paired(const batch_ctx *c)
{
    return c->p->noisy && c->o->objective == CAIMG_ATTACK_RESPONSE;
}

/* Objective J [nb] of the images xa [nb][P] (global indices i0..), each on
 * the mean of M noise draws from `stream` (or noise-free), and, when g is
 * not NULL, its gradient g [nb][P] with respect to the images. */
static int eval_grad(batch_ctx *c, const float *xa, size_t i0, size_t nb, uint64_t stream,
                     size_t M, double *J, float *g)
{
    const caimg_attack_plan *p = c->p;
    const size_t P = p->P, N = p->N;
    int st = 0;
    if (paired(c) && (st = mean_forward(c, p->x + i0 * P, i0, nb, stream, M, c->cref))) return st;
    if ((st = mean_forward(c, xa, i0, nb, stream, M, c->fbar))) return st;
    for (size_t b = 0; b < nb; b++) {
        J[b] = objective(p, c->o, i0 + b, c->fbar + b * N, paired(c) ? c->cref + b * N : NULL,
                         g ? c->df : NULL, c->z);
        if (!g) continue;
        /* The objective is a function of the mean prediction, so each
         * draw receives 1/M of its gradient. */
        for (size_t m = 0; m < M; m++)
            for (size_t k = 0; k < N; k++) c->dout[(b * M + m) * N + k] = (float)(c->df[k] / (double)M);
    }
    if (!g) return 0;
    st = caimg_ann_backward(p->m, c->w, c->dout, NULL, 0, c->dxrep, 0);
    if (st) return st;
    for (size_t b = 0; b < nb; b++) {
        float *gb = g + b * P;
        memcpy(gb, c->dxrep + b * M * P, P * sizeof *gb);
        for (size_t m = 1; m < M; m++) {
            const float *d = c->dxrep + (b * M + m) * P;
            for (size_t q = 0; q < P; q++) gb[q] += d[q];
        }
    }
    return 0;
}

/* Mean predictions out [nb][N] of xa on the K draws numbered (stream0 + k,
 * global image index), K = 0 for noise-free: one forward per draw, so the
 * work space's size does not limit K. */
static int mean_draws(batch_ctx *c, const float *xa, size_t i0, size_t nb, uint64_t stream0,
                      size_t K, float *out)
{
    const caimg_attack_plan *p = c->p;
    const size_t N = p->N;
    const size_t L = caimg_ann_nlayers(p->m) - 1;
    double *acc = caimg_calloc(nb * N, sizeof *acc, "prediction sums");
    if (!acc) return CAIMG_ENOMEM;
    int st = 0;
    for (size_t k = 0; k < (K ? K : 1) && !st; k++) {
        caimg_ann_noise_draw nd = {stream0 + k, i0};
        st = caimg_ann_forward(p->m, c->w, xa, nb, K ? &nd : NULL, NULL);
        const float *f = caimg_ann_work_activation(c->w, L);
        for (size_t i = 0; !st && i < nb * N; i++) acc[i] += f[i];
    }
    const double div = (double)(K ? K : 1);
    for (size_t i = 0; !st && i < nb * N; i++) out[i] = (float)(acc[i] / div);
    free(acc);
    return st;
}

/* Objective J [nb] of xa on the mean of K draws numbered (stream0 + k,
 * global image index), K = 0 for noise-free.  For the response objective
 * of a noisy model the clean images are measured on the same draws: ref
 * [nb][N] when the caller has them already (they do not change while an
 * image is attacked), else here. */
static int eval_mean(batch_ctx *c, const float *xa, size_t i0, size_t nb, uint64_t stream0,
                     size_t K, const float *ref, double *J)
{
    const caimg_attack_plan *p = c->p;
    const size_t N = p->N;
    const int pair = paired(c);
    int st = mean_draws(c, xa, i0, nb, stream0, K, c->fbar);
    if (!st && pair && !ref) {
        st = mean_draws(c, p->x + i0 * p->P, i0, nb, stream0, K, c->cref);
        ref = c->cref;
    }
    for (size_t b = 0; !st && b < nb; b++)
        J[b] = objective(p, c->o, i0 + b, c->fbar + b * N, pair ? ref + b * N : NULL, NULL, c->z);
    return st;
}

/* Relative feature distance r [nb] of xa (noise-free), and with fg the
 * gradient of r^2 with respect to the images, fg [nb][P]. */
static int feat_eval(batch_ctx *c, const float *xa, size_t i0, size_t nb, double *r, float *fg)
{
    const caimg_attack_plan *p = c->p;
    const size_t F = p->fsize;
    int st = caimg_ann_forward(p->m, c->w, xa, nb, NULL, NULL);
    if (st) return st;
    const float *h = caimg_ann_work_activation(c->w, (size_t)p->layer);
    for (size_t b = 0; b < nb; b++) {
        const float *h0 = p->feat0 + (i0 + b) * F, *hb = h + b * F;
        const double nrm2 = p->fnorm[i0 + b] * p->fnorm[i0 + b];
        double a = 0.0;
        for (size_t u = 0; u < F; u++) {
            double d = (double)hb[u] - h0[u];
            a += d * d;
            if (fg) c->seed_grad[b * F + u] = (float)(2.0 * d / nrm2);
        }
        r[b] = sqrt(a) / p->fnorm[i0 + b];
    }
    if (!fg) return 0;
    caimg_ann_grad_seed sd = {p->layer, c->seed_grad};
    return caimg_ann_backward(p->m, c->w, NULL, &sd, 1, fg, 0);
}

static float clampf(float v, float lo, float hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

static double norm2(const float *v, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)v[i] * v[i];
    return sqrt(s);
}

/* A unit-norm Gaussian direction, or uniform signs, for image i. */
static void random_dir(const caimg_attack_opts *o, int purpose, size_t i, size_t r, int signs,
                       float *d, size_t P)
{
    ann_rng g;
    ann_rng_init(&g, o->seed, ann_mix64(((uint64_t)purpose << 56) ^ ((uint64_t)r << 40) ^ (uint64_t)i));
    if (signs) {
        for (size_t q = 0; q < P; q++) d[q] = (ann_rng_u32(&g) & 1) ? 1.0f : -1.0f;
        return;
    }
    for (size_t q = 0; q < P; q++) d[q] = (float)ann_rng_normal(&g);
    double s = norm2(d, P);
    for (size_t q = 0; q < P; q++) d[q] = (float)(d[q] / s);
}

/* A random point of the pixel budget ball of radius e (pixel units) around
 * x: uniform in the L-inf box, or uniform in the L2 ball. */
static void random_in_ball(const caimg_attack_plan *p, const caimg_attack_opts *o, int purpose,
                           size_t i, size_t r, double e, const float *x, float *xa)
{
    const size_t P = p->P;
    ann_rng g;
    ann_rng_init(&g, o->seed, ann_mix64(((uint64_t)purpose << 56) ^ ((uint64_t)r << 40) ^ (uint64_t)i));
    if (o->budget == CAIMG_ATTACK_LINF) {
        for (size_t q = 0; q < P; q++)
            xa[q] = clampf((float)(x[q] + e * (2.0 * ann_rng_uniform(&g) - 1.0)), (float)p->lo,
                           (float)p->hi);
        return;
    }
    double s = 0.0;
    for (size_t q = 0; q < P; q++) {
        xa[q] = (float)ann_rng_normal(&g);
        s += (double)xa[q] * xa[q];
    }
    double rad = e * pow(ann_rng_uniform(&g), 1.0 / (double)P) / sqrt(s);
    for (size_t q = 0; q < P; q++)
        xa[q] = clampf((float)(x[q] + rad * xa[q]), (float)p->lo, (float)p->hi);
}

/* Step xa along g and project onto the pixel budget e around x and the range. */
static void step_project(const caimg_attack_plan *p, const caimg_attack_opts *o, const float *x,
                         float *xa, const float *g, double alpha, double e)
{
    const size_t P = p->P;
    const float lo = (float)p->lo, hi = (float)p->hi;
    if (o->budget == CAIMG_ATTACK_LINF) {
        const float a = (float)alpha, ef = (float)e;
        for (size_t q = 0; q < P; q++) {
            float v = xa[q] + (g[q] > 0 ? a : (g[q] < 0 ? -a : 0.0f));
            v = clampf(v, x[q] - ef, x[q] + ef);
            xa[q] = clampf(v, lo, hi);
        }
        return;
    }
    double gn = norm2(g, P);
    if (gn > 0)
        for (size_t q = 0; q < P; q++) xa[q] += (float)(alpha * g[q] / gn);
    double dn = 0.0;
    for (size_t q = 0; q < P; q++) {
        double d = (double)xa[q] - x[q];
        dn += d * d;
    }
    dn = sqrt(dn);
    double s = dn > e ? e / dn : 1.0;
    for (size_t q = 0; q < P; q++) xa[q] = clampf((float)(x[q] + s * ((double)xa[q] - x[q])), lo, hi);
}

/* ---- pixel-space attacks ---------------------------------------------------------------- */

/* FGSM: one step of the whole budget e from the clean images along the
 * gradient, written to out [nb][P]; xa, g and J are scratch.  For the
 * response objective the gradient is taken at a random point at half the
 * budget, because the distance has zero gradient at the clean image. */
static int fgsm(batch_ctx *c, size_t i0, size_t nb, double e, float *out, float *xa, float *g,
                double *J)
{
    const caimg_attack_plan *p = c->p;
    const caimg_attack_opts *o = c->o;
    const size_t P = p->P;
    const float *x = p->x + i0 * P;
    for (size_t b = 0; b < nb; b++) {
        if (o->objective == CAIMG_ATTACK_RESPONSE)
            random_in_ball(p, o, RNG_FGSM, i0 + b, 0, 0.5 * e, x + b * P, xa + b * P);
        else
            memcpy(xa + b * P, x + b * P, P * sizeof *xa);
    }
    int st = eval_grad(c, xa, i0, nb, grad_stream(o, 0, 0), c->M, J, g);
    if (st) return st;
    for (size_t b = 0; b < nb; b++) {
        memcpy(out + b * P, x + b * P, P * sizeof *out);
        step_project(p, o, x + b * P, out + b * P, g + b * P, e, e);
    }
    return 0;
}

static int attack_pixel_batch(batch_ctx *c, size_t i0, size_t nb, double e, float *out,
                              float *xa, float *g, float *best, double *J, double *bestJ)
{
    const caimg_attack_plan *p = c->p;
    const caimg_attack_opts *o = c->o;
    const size_t P = p->P;
    const float *x = p->x + i0 * P;
    int st = 0;
    if (o->method == CAIMG_ATTACK_RANDOM) {
        for (size_t b = 0; b < nb; b++) {
            float *d = g + b * P;
            random_dir(o, RNG_BASELINE, i0 + b, 0, o->budget == CAIMG_ATTACK_LINF, d, P);
            for (size_t q = 0; q < P; q++)
                out[b * P + q] = clampf((float)(x[b * P + q] + e * d[q]), (float)p->lo, (float)p->hi);
        }
        return 0;
    }
    if (o->method == CAIMG_ATTACK_FGSM) return fgsm(c, i0, nb, e, out, xa, g, J);
    /* PGD keeps, per image, the strongest of several candidates rather
     * than its last iterate: FGSM's result (so that PGD, whatever its
     * steps, cannot end weaker than the one-step attack: with few steps a
     * fixed step size overshoots, and the decoder margin, say, can be won
     * at one step and lost at the next) and the best iterate of each run
     * (as in Croce & Hein's APGD).  Within a run the iterates are judged on
     * the fresh draws of the step taken from them, which are drawn after
     * the iterate is fixed; the candidates are compared on draws that
     * neither the attack nor the evaluation uses, so that the choice does
     * not fit the noise the result is scored with.  A deterministic model's
     * objective is exact, and judges both. */
    double *runJ = J + c->B;
    if (p->noisy && paired(c) && (st = mean_draws(c, x, i0, nb, p->sel_stream, p->K, c->sref)))
        return st;
    if ((st = fgsm(c, i0, nb, e, out, xa, g, J))) return st;
    if (p->noisy) st = eval_mean(c, out, i0, nb, p->sel_stream, p->K, c->sref, bestJ);
    else st = eval_grad(c, out, i0, nb, 0, 1, bestJ, NULL);    /* noise-free: exact */
    if (st) return st;
    const double alpha = o->step_scale * e / (double)o->steps;
    for (size_t r = 0; r < o->restarts; r++) {
        for (size_t b = 0; b < nb; b++) {
            if (o->random_start)
                random_in_ball(p, o, RNG_START, i0 + b, r, e, x + b * P, xa + b * P);
            else
                memcpy(xa + b * P, x + b * P, P * sizeof *xa);
            runJ[b] = -INFINITY;
        }
        for (size_t t = 0; t <= o->steps; t++) {
            const int last = t == o->steps;
            if ((st = eval_grad(c, xa, i0, nb, grad_stream(o, r, t), c->M, J, last ? NULL : g)))
                return st;
            for (size_t b = 0; b < nb; b++)
                if (J[b] > runJ[b]) {
                    runJ[b] = J[b];
                    memcpy(best + b * P, xa + b * P, P * sizeof *best);
                }
            if (last) break;
            for (size_t b = 0; b < nb; b++)
                step_project(p, o, x + b * P, xa + b * P, g + b * P, alpha, e);
        }
        if (p->noisy && (st = eval_mean(c, best, i0, nb, p->sel_stream, p->K, c->sref, runJ)))
            return st;
        for (size_t b = 0; b < nb; b++)
            if (runJ[b] > bestJ[b]) {
                bestJ[b] = runJ[b];
                memcpy(out + b * P, best + b * P, P * sizeof *out);
            }
    }
    return 0;
}

/* ---- feature-space attacks --------------------------------------------------------------- */

/* For each image, the largest scale s along unit directions d [nb][P]
 * (to 2^-12 of the bracket, by bisection) such that the layer distance of
 * clip(x + s d) stays <= target[b]; writes those points to xa and their
 * distances to r.  `found` is scratch [nb]. */
static int scale_to_feature(batch_ctx *c, size_t i0, size_t nb, const float *d,
                            const double *target, float *xa, double *r, double *slo, double *shi,
                            double *found)
{
    const caimg_attack_plan *p = c->p;
    const size_t P = p->P;
    const float *x = p->x + i0 * P;
    int st = 0;
    for (size_t b = 0; b < nb; b++) {
        slo[b] = 0.0;
        shi[b] = 1e-3 * (p->hi - p->lo) * sqrt((double)P);
        found[b] = 0.0;
    }
    /* Grow the upper end until the distance overshoots; a direction along
     * which the pixels saturate before it does keeps the largest scale. */
    for (int it = 0; it < 40; it++) {
        for (size_t b = 0; b < nb; b++)
            for (size_t q = 0; q < P; q++)
                xa[b * P + q] = clampf((float)(x[b * P + q] + shi[b] * d[b * P + q]), (float)p->lo,
                                       (float)p->hi);
        if ((st = feat_eval(c, xa, i0, nb, r, NULL))) return st;
        int more = 0;
        for (size_t b = 0; b < nb; b++) {
            if (found[b] != 0.0) continue;
            if (r[b] > target[b]) {
                found[b] = 1.0;
                continue;
            }
            slo[b] = shi[b];
            shi[b] *= 2.0;
            more = 1;
        }
        if (!more) break;
    }
    for (size_t b = 0; b < nb; b++)
        if (found[b] == 0.0) shi[b] = slo[b];
    for (int it = 0; it < 12; it++) {
        for (size_t b = 0; b < nb; b++) {
            double s = 0.5 * (slo[b] + shi[b]);
            for (size_t q = 0; q < P; q++)
                xa[b * P + q] = clampf((float)(x[b * P + q] + s * d[b * P + q]), (float)p->lo,
                                       (float)p->hi);
        }
        if ((st = feat_eval(c, xa, i0, nb, r, NULL))) return st;
        for (size_t b = 0; b < nb; b++) {
            double s = 0.5 * (slo[b] + shi[b]);
            if (r[b] <= target[b]) slo[b] = s;
            else shi[b] = s;
        }
    }
    for (size_t b = 0; b < nb; b++)
        for (size_t q = 0; q < P; q++)
            xa[b * P + q] = clampf((float)(x[b * P + q] + slo[b] * d[b * P + q]), (float)p->lo,
                                   (float)p->hi);
    return feat_eval(c, xa, i0, nb, r, NULL);
}

typedef struct {
    float *d, *xn, *fg, *best;
    double *target, *r, *slo, *shi, *alpha, *t, *bestJ;
} feat_bufs;

static int attack_feature_batch(batch_ctx *c, size_t i0, size_t nb, double e, float *out,
                                float *xa, float *g, double *J, double *selJ, feat_bufs *fb)
{
    const caimg_attack_plan *p = c->p;
    const caimg_attack_opts *o = c->o;
    const size_t P = p->P;
    const float *x = p->x + i0 * P;
    int st = 0;
    if (e == 0) {
        memcpy(out, x, nb * P * sizeof *out);
        return 0;
    }
    if (o->method == CAIMG_ATTACK_RANDOM) {
        for (size_t b = 0; b < nb; b++) {
            random_dir(o, RNG_BASELINE, i0 + b, 0, 0, fb->d + b * P, P);
            fb->target[b] = e;
        }
        return scale_to_feature(c, i0, nb, fb->d, fb->target, out, fb->r, fb->slo, fb->shi, fb->t);
    }
    for (size_t r = 0; r < o->restarts; r++) {
        /* Start: a random direction at half the budget (the response
         * distance has no gradient at the clean image), which also sets
         * the scale of the first steps. */
        for (size_t b = 0; b < nb; b++) {
            random_dir(o, RNG_FEATDIR, i0 + b, r, 0, fb->d + b * P, P);
            fb->target[b] = o->random_start ? 0.5 * e : 0.0;
        }
        if (o->random_start) {
            if ((st = scale_to_feature(c, i0, nb, fb->d, fb->target, xa, fb->r, fb->slo, fb->shi,
                                        fb->t)))
                return st;
        } else {
            memcpy(xa, x, nb * P * sizeof *xa);
        }
        for (size_t b = 0; b < nb; b++) {
            double a = 0.0;
            for (size_t q = 0; q < P; q++) {
                double dd = (double)xa[b * P + q] - x[b * P + q];
                a += dd * dd;
            }
            a = sqrt(a);
            if (!(a > 0)) a = 1e-3 * (p->hi - p->lo) * sqrt((double)P);
            fb->alpha[b] = 2.0 * o->step_scale * a / (double)o->steps;
            fb->bestJ[b] = -INFINITY;
        }
        for (size_t t = 0; t <= o->steps; t++) {
            int last = t == o->steps;
            if ((st = eval_grad(c, xa, i0, nb, grad_stream(o, r, t), c->M, J, last ? NULL : g)))
                return st;
            for (size_t b = 0; b < nb; b++)
                if (J[b] > fb->bestJ[b]) {
                    fb->bestJ[b] = J[b];
                    memcpy(fb->best + b * P, xa + b * P, P * sizeof *xa);
                }
            if (last) break;
            if ((st = feat_eval(c, xa, i0, nb, fb->r, fb->fg))) return st;
            for (size_t b = 0; b < nb; b++) {
                float *gb = g + b * P;
                const float *nb_ = fb->fg + b * P;
                /* Near the boundary, drop the part of the step that would
                 * push the layer's distance up: move along the boundary. */
                if (fb->r[b] >= 0.8 * e) {
                    double gn = 0.0, nn = 0.0;
                    for (size_t q = 0; q < P; q++) {
                        gn += (double)gb[q] * nb_[q];
                        nn += (double)nb_[q] * nb_[q];
                    }
                    if (gn > 0 && nn > 0)
                        for (size_t q = 0; q < P; q++) gb[q] -= (float)(gn / nn * nb_[q]);
                }
                double gnorm = norm2(gb, P);
                for (size_t q = 0; q < P; q++) {
                    float v = xa[b * P + q] + (gnorm > 0 ? (float)(fb->alpha[b] * gb[q] / gnorm) : 0.0f);
                    fb->xn[b * P + q] = clampf(v, (float)p->lo, (float)p->hi);
                }
                fb->t[b] = 1.0;
                fb->slo[b] = 0.0;
                fb->shi[b] = 1.0;
            }
            /* Pull infeasible steps back along the segment by bisection;
             * t = 0 (the previous, feasible iterate) is always allowed. */
            if ((st = feat_eval(c, fb->xn, i0, nb, fb->r, NULL))) return st;
            int any = 0;
            for (size_t b = 0; b < nb; b++)
                if (fb->r[b] > e) { fb->t[b] = -1.0; any = 1; }
            for (int it = 0; any && it < 8; it++) {
                for (size_t b = 0; b < nb; b++) {
                    double s = fb->t[b] < 0 ? 0.5 * (fb->slo[b] + fb->shi[b]) : fb->t[b];
                    for (size_t q = 0; q < P; q++)
                        g[b * P + q] = xa[b * P + q] + (float)s * (fb->xn[b * P + q] - xa[b * P + q]);
                }
                if ((st = feat_eval(c, g, i0, nb, fb->r, NULL))) return st;
                for (size_t b = 0; b < nb; b++) {
                    if (fb->t[b] >= 0) continue;
                    double s = 0.5 * (fb->slo[b] + fb->shi[b]);
                    if (fb->r[b] <= e) fb->slo[b] = s;
                    else fb->shi[b] = s;
                }
            }
            for (size_t b = 0; b < nb; b++) {
                double s = fb->t[b] < 0 ? fb->slo[b] : 1.0;
                for (size_t q = 0; q < P; q++)
                    xa[b * P + q] += (float)s * (fb->xn[b * P + q] - xa[b * P + q]);
                fb->alpha[b] *= s < 1.0 ? fmax(s, 0.3) : 1.25;
            }
        }
        if (o->restarts == 1) {
            memcpy(out, fb->best, nb * P * sizeof *out);
            break;
        }
        if ((st = eval_mean(c, fb->best, i0, nb, p->sel_stream, p->K, NULL, J))) return st;
        for (size_t b = 0; b < nb; b++)
            if (r == 0 || J[b] > selJ[b]) {
                selJ[b] = J[b];
                memcpy(out + b * P, fb->best + b * P, P * sizeof *out);
            }
    }
    return 0;
}

/* ---- execution and measurement ------------------------------------------------------------ */

static int check_opts(const caimg_attack_plan *p, const caimg_attack_opts *o, double budget)
{
    if ((unsigned)o->method > CAIMG_ATTACK_PGD || (unsigned)o->budget > CAIMG_ATTACK_FEATURE ||
        (unsigned)o->objective > CAIMG_ATTACK_DECODER)
        return caimg_error(CAIMG_EINVAL, "unknown attack method, budget or objective");
    if (!(budget >= 0) || !isfinite(budget))
        return caimg_error(CAIMG_EINVAL, "attack budget must be a finite number >= 0, not %g", budget);
    if (o->budget == CAIMG_ATTACK_FEATURE && p->layer <= 0)
        return caimg_error(CAIMG_EINVAL, "a feature budget needs a feature layer");
    if (o->budget == CAIMG_ATTACK_FEATURE && o->method == CAIMG_ATTACK_FGSM)
        return caimg_error(CAIMG_EINVAL, "FGSM is not defined for feature budgets (use pgd)");
    if (o->method == CAIMG_ATTACK_PGD && (o->steps == 0 || o->restarts == 0))
        return caimg_error(CAIMG_EINVAL, "PGD needs at least one step and one restart");
    if (!(o->step_scale > 0) || !isfinite(o->step_scale))
        return caimg_error(CAIMG_EINVAL, "PGD step scale must be positive, not %g", o->step_scale);
    if (o->eot == 0) return caimg_error(CAIMG_EINVAL, "EOT needs at least one noise draw per gradient");
    if (o->objective == CAIMG_ATTACK_NEURON) {
        if (o->neuron >= p->N)
            return caimg_error(CAIMG_EINVAL, "neuron %zu does not exist (the model has %zu)", o->neuron,
                               p->N);
        if (!p->valid[o->neuron])
            return caimg_error(CAIMG_EINVAL, "neuron %zu: its predicted response does not vary across "
                               "the images, so its change has no natural scale", o->neuron);
        if (o->direction != 1 && o->direction != -1)
            return caimg_error(CAIMG_EINVAL, "neuron direction must be +1 or -1");
    }
    if (o->objective == CAIMG_ATTACK_DECODER && p->n < 2)
        return caimg_error(CAIMG_EINVAL, "the decoder needs at least 2 stimuli");
    return 0;
}

int caimg_attack_measure(const caimg_attack_plan *p, const caimg_attack_opts *o, double budget,
                         const float *xadv, caimg_attack_result *r)
{
    const size_t n = p->n, N = p->N, P = p->P;
    memset(r, 0, sizeof *r);
    r->budget = budget;
    r->n = n;
    float *pred = caimg_malloc(n * N, sizeof *pred, "attacked predictions");
    double *z = caimg_malloc(4 * N, sizeof *z, "metric buffer");
    double *rf = p->layer > 0 ? caimg_malloc(n, sizeof *rf, "feature distances") : NULL;
    int st = (!pred || !z || (p->layer > 0 && !rf)) ? CAIMG_ENOMEM : 0;
    if (!st) st = caimg_ann_predict(p->m, xadv, n, p->K, p->eval_stream, pred);
    if (!st && rf) {
        caimg_attack_opts oo = *o;
        batch_ctx c;
        if (!(st = batch_alloc(&c, p, &oo, 1))) {
            for (size_t i0 = 0; i0 < n && !st; i0 += c.B)
                st = feat_eval(&c, xadv + i0 * P, i0, CAIMG_MIN(c.B, n - i0), rf + i0, NULL);
            batch_free(&c);
        }
    }
    if (st) {
        free(pred); free(z); free(rf);
        return st;
    }
    const double range = p->hi - p->lo;
    double sabs = 0, srel = 0, scorr = 0, slinf = 0, sl2 = 0, sfeat = 0, sneu = 0;
    size_t correct = 0, clean_ok = 0, flipped = 0, succ = 0;
    for (size_t i = 0; i < n; i++) {
        const float *f = pred + i * N, *c = p->clean + i * N;
        double a = 0.0, b = 0.0;
        for (size_t k = 0; k < N; k++) {
            double d = (double)f[k] - c[k];
            a += d * d;
            if (p->valid[k]) b += (d / p->sd[k]) * (d / p->sd[k]);
        }
        double rel = sqrt(b / (double)p->nvalid);
        sabs += sqrt(a / (double)N);
        srel += rel;
        /* Pattern correlation of the z-scored responses. */
        double *za = z, *zc = z + N, *sa = z + 2 * N, *sc = z + 3 * N;
        zscore(p, f, za);
        zscore(p, c, zc);
        double sda = standardise(p, za, sa), sdc = standardise(p, zc, sc);
        double cr = 0.0;
        if (sda > 0 && sdc > 0) {
            for (size_t k = 0; k < N; k++) cr += sa[k] * sc[k];
            cr /= (double)p->nvalid;
        } else {
            cr = sda == sdc ? 1.0 : 0.0;
        }
        scorr += cr;
        size_t dec = decode(p, za, sa, i, NULL, NULL);
        correct += dec == i;
        /* Was the clean response decoded right? (the plan knows) */
        size_t dclean = decode(p, zc, sc, i, NULL, NULL);
        if (dclean == i) {
            clean_ok++;
            flipped += dec != i;
        }
        double nc = NAN;
        if (o->objective == CAIMG_ATTACK_NEURON) {
            size_t k = o->neuron;
            nc = ((double)f[k] - c[k]) / p->sd[k];
            sneu += nc;
        }
        switch (o->objective) {
        case CAIMG_ATTACK_RESPONSE: succ += rel >= p->tau; break;
        case CAIMG_ATTACK_NEURON: succ += (double)o->direction * nc >= p->tau; break;
        case CAIMG_ATTACK_DECODER: break;
        }
        const float *xa = xadv + i * P, *x0 = p->x + i * P;
        double mx = 0.0, s2 = 0.0;
        for (size_t q = 0; q < P; q++) {
            double d = fabs((double)xa[q] - x0[q]);
            if (d > mx) mx = d;
            s2 += d * d;
        }
        slinf += mx / range;
        sl2 += sqrt(s2) / (range * sqrt((double)P));
        if (rf) sfeat += rf[i];
    }
    const double dn = (double)n;
    r->abs_change = sabs / dn;
    r->rel_change = srel / dn;
    r->corr = scorr / dn;
    r->decode_acc = (double)correct / dn;
    r->linf = slinf / dn;
    r->l2 = sl2 / dn;
    r->feature = rf ? sfeat / dn : NAN;
    r->neuron_change = o->objective == CAIMG_ATTACK_NEURON ? sneu / dn : NAN;
    if (o->objective == CAIMG_ATTACK_DECODER)
        r->success = clean_ok ? (double)flipped / (double)clean_ok : NAN;
    else
        r->success = (double)succ / dn;
    r->strength = o->objective == CAIMG_ATTACK_RESPONSE ? r->rel_change
                : o->objective == CAIMG_ATTACK_NEURON ? (double)o->direction * r->neuron_change
                : 1.0 - r->decode_acc;
    free(pred);
    free(z);
    free(rf);
    return 0;
}

int caimg_attack_execute(const caimg_attack_plan *p, const caimg_attack_opts *o, double budget,
                         float *xadv, caimg_attack_result *r)
{
    int st = check_opts(p, o, budget);
    if (st) return st;
    double t0 = caimg_seconds();
    const size_t n = p->n, P = p->P;
    const size_t M = p->noisy ? o->eot : 1;
    /* Budget in pixel units (feature budgets stay relative). */
    double e = budget;
    if (o->budget == CAIMG_ATTACK_LINF) e = budget * (p->hi - p->lo);
    else if (o->budget == CAIMG_ATTACK_L2) e = budget * (p->hi - p->lo) * sqrt((double)P);
    float *adv = xadv ? xadv : caimg_malloc(n * P, sizeof *adv, "attacked images");
    if (!adv) return CAIMG_ENOMEM;
    batch_ctx c;
    float *xa = NULL, *g = NULL;
    double *J = NULL, *bestJ = NULL;
    feat_bufs fb;
    memset(&fb, 0, sizeof fb);
    if ((st = batch_alloc(&c, p, o, M))) goto done;
    const size_t B = c.B;
    xa = caimg_malloc(B * P, sizeof *xa, "attack state");
    g = caimg_malloc(B * P, sizeof *g, "attack state");
    /* J [2B]: the objective, and PGD's best of the current run. */
    J = caimg_malloc(2 * B, sizeof *J, "attack state");
    bestJ = caimg_malloc(B, sizeof *bestJ, "attack state");
    /* The best iterate of a PGD run (pixel and feature budgets). */
    fb.best = caimg_malloc(B * P, sizeof *fb.best, "attack state");
    if (!xa || !g || !J || !bestJ || !fb.best) { st = CAIMG_ENOMEM; goto done; }
    if (o->budget == CAIMG_ATTACK_FEATURE) {
        fb.d = caimg_malloc(B * P, sizeof *fb.d, "attack state");
        fb.xn = caimg_malloc(B * P, sizeof *fb.xn, "attack state");
        fb.fg = caimg_malloc(B * P, sizeof *fb.fg, "attack state");
        fb.target = caimg_malloc(8 * B, sizeof *fb.target, "attack state");
        if (!fb.d || !fb.xn || !fb.fg || !fb.target) { st = CAIMG_ENOMEM; goto done; }
        fb.r = fb.target + B;
        fb.slo = fb.target + 2 * B;
        fb.shi = fb.target + 3 * B;
        fb.alpha = fb.target + 4 * B;
        fb.t = fb.target + 5 * B;
        fb.bestJ = fb.target + 6 * B;
    }
    for (size_t i0 = 0; i0 < n && !st; i0 += B) {
        size_t nb = CAIMG_MIN(B, n - i0);
        if (budget == 0) {
            memcpy(adv + i0 * P, p->x + i0 * P, nb * P * sizeof *adv);
            continue;
        }
        if (o->budget == CAIMG_ATTACK_FEATURE)
            st = attack_feature_batch(&c, i0, nb, e, adv + i0 * P, xa, g, J, bestJ, &fb);
        else
            st = attack_pixel_batch(&c, i0, nb, e, adv + i0 * P, xa, g, fb.best, J, bestJ);
    }
    if (!st) st = caimg_attack_measure(p, o, budget, adv, r);
    if (!st) r->seconds = caimg_seconds() - t0;
done:
    batch_free(&c);
    free(xa); free(g); free(J); free(bestJ);
    free(fb.d); free(fb.xn); free(fb.fg); free(fb.best); free(fb.target);
    if (adv != xadv) free(adv);
    return st;
}
