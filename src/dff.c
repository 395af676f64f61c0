/* dff.c -- neuropil subtraction, baselines, dF/F and noise levels.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <fftw3.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "caimg/dff.h"
#include "caimg/error.h"
#include "internal.h"
#include "tsutil.h"

/* ======================================================================
 * Running minimum / maximum: monotone deque, O(T) whatever the window.
 * ====================================================================== */

/* One routine for both: `sign` = +1 for the minimum, -1 for the maximum
 * (comparing sign*x keeps a single, branch-light loop). */
static void running_extreme(const double *x, size_t T, size_t w, double *out,
                            size_t *dq, double sign)
{
    if (T == 0) return;
    if (w < 1) w = 1;
    size_t h = w / 2, head = 0, tail = 0, next = 0;
    for (size_t i = 0; i < T; i++) {
        size_t hi = i + (w - 1 - h);
        if (hi > T - 1) hi = T - 1;
        for (; next <= hi; next++) {
            double v = sign * x[next];
            while (tail > head && sign * x[dq[tail - 1]] >= v) tail--;
            dq[tail++] = next;
        }
        size_t lo = i >= h ? i - h : 0;
        while (dq[head] < lo) head++;
        out[i] = x[dq[head]];
    }
}

void caimg_running_min(const double *x, size_t T, size_t w, double *out, size_t *work)
{
    running_extreme(x, T, w, out, work, 1.0);
}

void caimg_running_max(const double *x, size_t T, size_t w, double *out, size_t *work)
{
    running_extreme(x, T, w, out, work, -1.0);
}

/* ======================================================================
 * Running percentile: two indexed heaps.  The lower heap (a max-heap)
 * holds the k smallest samples of the window, the upper heap (a min-heap)
 * the rest, where k is chosen so that the top of the lower heap is the
 * order statistic just below the percentile position and the top of the
 * upper heap the one just above.  Every sample knows its position in its
 * heap, so the sample leaving the window is removed in O(log w) instead of
 * being searched for.
 * ====================================================================== */

typedef struct {
    const double *x;
    size_t *lo, *up;   /* heaps of time indices */
    size_t nlo, nup;
    size_t *pos;       /* pos[t % cap]: index in lo, or cap + index in up */
    size_t cap;
} ostat;

static void lo_place(ostat *o, size_t i, size_t t) { o->lo[i] = t; o->pos[t % o->cap] = i; }
static void up_place(ostat *o, size_t i, size_t t) { o->up[i] = t; o->pos[t % o->cap] = o->cap + i; }

static void lo_sift_up(ostat *o, size_t i)
{
    size_t t = o->lo[i];
    double v = o->x[t];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (o->x[o->lo[p]] >= v) break;
        lo_place(o, i, o->lo[p]);
        i = p;
    }
    lo_place(o, i, t);
}

static void lo_sift_down(ostat *o, size_t i)
{
    size_t t = o->lo[i], n = o->nlo;
    double v = o->x[t];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && o->x[o->lo[c + 1]] > o->x[o->lo[c]]) c++;
        if (o->x[o->lo[c]] <= v) break;
        lo_place(o, i, o->lo[c]);
        i = c;
    }
    lo_place(o, i, t);
}

static void up_sift_up(ostat *o, size_t i)
{
    size_t t = o->up[i];
    double v = o->x[t];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (o->x[o->up[p]] <= v) break;
        up_place(o, i, o->up[p]);
        i = p;
    }
    up_place(o, i, t);
}

static void up_sift_down(ostat *o, size_t i)
{
    size_t t = o->up[i], n = o->nup;
    double v = o->x[t];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && o->x[o->up[c + 1]] < o->x[o->up[c]]) c++;
        if (o->x[o->up[c]] >= v) break;
        up_place(o, i, o->up[c]);
        i = c;
    }
    up_place(o, i, t);
}

static void lo_push(ostat *o, size_t t) { o->lo[o->nlo] = t; o->nlo++; lo_sift_up(o, o->nlo - 1); }
static void up_push(ostat *o, size_t t) { o->up[o->nup] = t; o->nup++; up_sift_up(o, o->nup - 1); }

static size_t lo_pop(ostat *o)
{
    size_t t = o->lo[0];
    o->nlo--;
    if (o->nlo) { lo_place(o, 0, o->lo[o->nlo]); lo_sift_down(o, 0); }
    return t;
}

static size_t up_pop(ostat *o)
{
    size_t t = o->up[0];
    o->nup--;
    if (o->nup) { up_place(o, 0, o->up[o->nup]); up_sift_down(o, 0); }
    return t;
}

static void ostat_insert(ostat *o, size_t t)
{
    if (o->nlo && o->x[t] <= o->x[o->lo[0]]) lo_push(o, t);
    else up_push(o, t);
}

static void ostat_remove(ostat *o, size_t t)
{
    size_t k = o->pos[t % o->cap];
    if (k < o->cap) {
        o->nlo--;
        if (k < o->nlo) {
            /* The last element fills the hole; it may need to move either
             * way, and sifting up first then down from wherever it ended
             * up restores the heap in both cases. */
            size_t moved = o->lo[o->nlo];
            lo_place(o, k, moved);
            lo_sift_up(o, k);
            lo_sift_down(o, o->pos[moved % o->cap]);
        }
    } else {
        k -= o->cap;
        o->nup--;
        if (k < o->nup) {
            size_t moved = o->up[o->nup];
            up_place(o, k, moved);
            up_sift_up(o, k);
            up_sift_down(o, o->pos[moved % o->cap] - o->cap);
        }
    }
}

void caimg_running_percentile(const double *x, size_t T, size_t w, double p,
                              double *out, size_t *work)
{
    if (T == 0) return;
    if (w < 1) w = 1;
    if (p < 0) p = 0;
    if (p > 100) p = 100;
    size_t cap = w < T ? w : T;
    ostat o = {x, work, work + cap, 0, 0, work + 2 * cap, cap};
    size_t h = w / 2, next = 0, first = 0;
    for (size_t i = 0; i < T; i++) {
        size_t hi = i + (w - 1 - h);
        if (hi > T - 1) hi = T - 1;
        size_t lo = i >= h ? i - h : 0;
        for (; first < lo; first++) ostat_remove(&o, first);
        for (; next <= hi; next++) ostat_insert(&o, next);
        size_t n = o.nlo + o.nup;
        double q = p / 100.0 * (double)(n - 1);
        size_t k = (size_t)floor(q);
        double frac = q - (double)k;
        while (o.nlo > k + 1) up_push(&o, lo_pop(&o));
        while (o.nlo < k + 1 && o.nup) lo_push(&o, up_pop(&o));
        double v = x[o.lo[0]];
        if (frac > 0 && o.nup) v += frac * (x[o.up[0]] - v);
        out[i] = v;
    }
}

double caimg_auto_percentile(const double *x, size_t T, double *work)
{
    if (T < 2) return 50.0;
    double mode = caimg_ts_kde_mode(x, T, work, 0);
    size_t below = 0;
    for (size_t i = 0; i < T; i++) below += x[i] < mode;
    double pct = 100.0 * (double)below / (double)T;
    if (pct < 1) pct = 1;
    if (pct > 50) pct = 50;
    return pct;
}

/* ======================================================================
 * The baseline type table.
 * ====================================================================== */

struct caimg_baseline {
    const caimg_baseline_type *type;
    caimg_baseline_params p;
    double fs;
    size_t T;
    size_t win;        /* running window in frames (0 = constant) */
    double *kern;      /* Gaussian kernel, kern[0..krad] (maximin) */
    size_t krad;
    double *taps;      /* FIR taps (lowpass), ntaps of them, 0 = no filter */
    size_t ntaps, pad;
    double *b1, *b2;   /* scratch, T + 2 * pad (+ 512) doubles each */
    size_t *iw;        /* scratch for deques and heaps */
};

struct caimg_baseline_type {
    const char *name;
    const char *summary;
    void (*defaults)(caimg_baseline_params *p);
    void (*compute)(caimg_baseline *b, const double *F, double *F0, double *pct);
};

/* Window length in frames from seconds (if given) or frames. */
static size_t window_frames(const caimg_baseline_params *p, double fs)
{
    double w = p->window_s > 0 ? p->window_s * fs : p->window_frames;
    if (!(w >= 1)) return 1;
    if (w > 1e12) w = 1e12;
    return (size_t)(w + 0.5);
}

/* Gaussian smoothing with scipy.ndimage's 'reflect' boundary
 * (d c b a | a b c d | d c b a), kernel truncated at 4 sigma. */
static size_t reflect_index(long i, size_t T)
{
    long n2 = 2 * (long)T;
    long m = i % n2;
    if (m < 0) m += n2;
    return m < (long)T ? (size_t)m : (size_t)(n2 - 1 - m);
}

static void gauss_filter(const caimg_baseline *b, const double *x, double *y)
{
    size_t T = b->T, r = b->krad;
    const double *k = b->kern;
    for (size_t i = 0; i < T; i++) {
        double acc = k[0] * x[i];
        if (i >= r && i + r < T) {
            for (size_t j = 1; j <= r; j++) acc += k[j] * (x[i - j] + x[i + j]);
        } else {
            for (size_t j = 1; j <= r; j++)
                acc += k[j] * (x[reflect_index((long)i - (long)j, T)] +
                               x[reflect_index((long)i + (long)j, T)]);
        }
        y[i] = acc;
    }
}

static void maximin_defaults(caimg_baseline_params *p)
{
    p->window_s = 60;
    p->sigma_frames = 10;
}

static void maximin_compute(caimg_baseline *b, const double *F, double *F0, double *pct)
{
    const double *src = F;
    if (b->kern) {
        gauss_filter(b, F, b->b1);
        src = b->b1;
    }
    caimg_running_min(src, b->T, b->win, b->b2, b->iw);
    caimg_running_max(b->b2, b->T, b->win, F0, b->iw);
    if (pct) *pct = NAN;
}

static void percentile_defaults(caimg_baseline_params *p)
{
    p->window_frames = 500;
    p->percentile = 8;
}

static double choose_percentile(caimg_baseline *b, const double *x)
{
    if (b->p.percentile >= 0) return b->p.percentile;
    return caimg_auto_percentile(x, b->T, b->b2);
}

static void percentile_compute(caimg_baseline *b, const double *F, double *F0, double *pct)
{
    double p = b->p.percentile;
    if (p < 0) {
        /* The automatic percentile describes the distribution within a
         * window; over the whole trace a slow drift would smear it (and
         * move its mode), so it is taken from the trace minus a first,
         * 8th-percentile running baseline. */
        caimg_running_percentile(F, b->T, b->win, 8, F0, b->iw);
        for (size_t i = 0; i < b->T; i++) b->b1[i] = F[i] - F0[i];
        p = caimg_auto_percentile(b->b1, b->T, b->b2);
    }
    caimg_running_percentile(F, b->T, b->win, p, F0, b->iw);
    if (pct) *pct = p;
}

static void constant_defaults(caimg_baseline_params *p)
{
    p->percentile = 8;
}

static void constant_compute(caimg_baseline *b, const double *F, double *F0, double *pct)
{
    double p = choose_percentile(b, F);
    memcpy(b->b1, F, b->T * sizeof *F);
    double v = caimg_ts_quantile(b->b1, b->T, p / 100.0);
    for (size_t i = 0; i < b->T; i++) F0[i] = v;
    if (pct) *pct = p;
}

static void lowpass_defaults(caimg_baseline_params *p)
{
    p->lowpass_hz = 1;
    p->lowpass_taps = 30;
    p->percentile = 5;
}

/* Zero-phase FIR filtering as scipy.signal.filtfilt(b, [1], x) does it:
 * odd extension by `pad` samples at both ends, then the filter run
 * forwards and backwards, each started in its steady state for the first
 * sample (for an FIR filter with unit DC gain that is the same as
 * extending the input by that constant). */
static void fir_filtfilt(const caimg_baseline *b, const double *x, double *y)
{
    size_t T = b->T, pad = b->pad, n = T + 2 * pad, N = b->ntaps;
    double *e = b->b1, *f = b->b2;
    for (size_t i = 0; i < pad; i++) {
        e[i] = 2 * x[0] - x[pad - i];
        e[pad + T + i] = 2 * x[T - 1] - x[T - 2 - i];
    }
    memcpy(e + pad, x, T * sizeof *x);
    const double *h = b->taps;
    for (size_t i = 0; i < n; i++) {
        double acc = 0;
        for (size_t k = 0; k < N; k++) acc += h[k] * (i >= k ? e[i - k] : e[0]);
        f[i] = acc;
    }
    /* Backwards: run the filter over the reversed sequence. */
    for (size_t j = 0; j < n; j++) {
        size_t i = n - 1 - j;
        double acc = 0;
        for (size_t k = 0; k < N; k++) acc += h[k] * (i + k < n ? f[i + k] : f[n - 1]);
        e[i] = acc;
    }
    memcpy(y, e + pad, T * sizeof *y);
}

static void lowpass_compute(caimg_baseline *b, const double *F, double *F0, double *pct)
{
    /* The filtered trace goes to F0 first, then the percentile replaces it. */
    if (b->ntaps) fir_filtfilt(b, F, F0);
    else memcpy(F0, F, b->T * sizeof *F);
    double p = choose_percentile(b, F0);
    if (b->win) {
        memcpy(b->b1, F0, b->T * sizeof *F0);
        caimg_running_percentile(b->b1, b->T, b->win, p, F0, b->iw);
    } else {
        memcpy(b->b1, F0, b->T * sizeof *F0);
        double v = caimg_ts_quantile(b->b1, b->T, p / 100.0);
        for (size_t i = 0; i < b->T; i++) F0[i] = v;
    }
    if (pct) *pct = p;
}

static const caimg_baseline_type maximin_type = {
    "maximin", "Gaussian smoothing, then running min and max (Suite2p) [sigma 10 frames, 60 s]",
    maximin_defaults, maximin_compute};
static const caimg_baseline_type percentile_type = {
    "percentile", "running percentile (CaImAn) [8th over 500 frames; 'auto' from the mode]",
    percentile_defaults, percentile_compute};
static const caimg_baseline_type lowpass_type = {
    "lowpass", "percentile of the 1 Hz low-passed trace (FISSA) [5th, constant]",
    lowpass_defaults, lowpass_compute};
static const caimg_baseline_type constant_type = {
    "constant", "percentile of the whole trace [8th]",
    constant_defaults, constant_compute};

const caimg_baseline_type *const caimg_baseline_maximin = &maximin_type;
const caimg_baseline_type *const caimg_baseline_percentile = &percentile_type;
const caimg_baseline_type *const caimg_baseline_lowpass = &lowpass_type;
const caimg_baseline_type *const caimg_baseline_constant = &constant_type;

static const caimg_baseline_type *const all_types[] = {
    &maximin_type, &percentile_type, &lowpass_type, &constant_type, NULL};

const caimg_baseline_type *const *caimg_baseline_types(void) { return all_types; }

const caimg_baseline_type *caimg_baseline_type_find(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; all_types[i]; i++)
        if (strcmp(all_types[i]->name, name) == 0) return all_types[i];
    return NULL;
}

const char *caimg_baseline_type_name(const caimg_baseline_type *t) { return t ? t->name : ""; }
const char *caimg_baseline_type_summary(const caimg_baseline_type *t) { return t ? t->summary : ""; }

void caimg_baseline_params_init(caimg_baseline_params *p, const caimg_baseline_type *t)
{
    memset(p, 0, sizeof *p);
    if (t) t->defaults(p);
}

caimg_baseline *caimg_baseline_alloc(const caimg_baseline_type *t,
                                     const caimg_baseline_params *p,
                                     double fs, size_t T)
{
    if (!t) {
        caimg_error(CAIMG_EINVAL, "no baseline method given");
        return NULL;
    }
    if (!(fs > 0) || !isfinite(fs)) {
        caimg_error(CAIMG_EINVAL, "baseline %s: frame rate must be positive (got %g Hz)",
                    t->name, fs);
        return NULL;
    }
    if (T == 0) {
        caimg_error(CAIMG_EINVAL, "baseline %s: traces have no frames", t->name);
        return NULL;
    }
    if (!(p->percentile == CAIMG_PERCENTILE_AUTO ||
          (p->percentile >= 0 && p->percentile <= 100))) {
        caimg_error(CAIMG_EINVAL, "baseline %s: percentile %g is outside 0..100",
                    t->name, p->percentile);
        return NULL;
    }
    if (!(p->window_s >= 0) || !(p->window_frames >= 0) || !(p->sigma_frames >= 0)) {
        caimg_error(CAIMG_EINVAL, "baseline %s: windows and sigma must not be negative", t->name);
        return NULL;
    }
    caimg_baseline *b = caimg_calloc(1, sizeof *b, "a baseline workspace");
    if (!b) return NULL;
    b->type = t;
    b->p = *p;
    b->fs = fs;
    b->T = T;
    if (t == &maximin_type) {
        /* Suite2p truncates win_baseline * fs to an integer. */
        double wf = p->window_s > 0 ? floor(p->window_s * fs) : p->window_frames;
        b->win = wf >= 1 ? (size_t)wf : 1;
        if (p->sigma_frames > 0) {
            b->krad = (size_t)(4 * p->sigma_frames + 0.5);
            b->kern = caimg_malloc(b->krad + 1, sizeof *b->kern, "a Gaussian kernel");
            if (!b->kern) goto fail;
            double sum = 0;
            for (size_t j = 0; j <= b->krad; j++) {
                double u = (double)j / p->sigma_frames;
                b->kern[j] = exp(-0.5 * u * u);
                sum += j ? 2 * b->kern[j] : b->kern[j];
            }
            for (size_t j = 0; j <= b->krad; j++) b->kern[j] /= sum;
        }
    } else if (t == &percentile_type) {
        b->win = window_frames(p, fs);
    } else if (t == &lowpass_type) {
        if (!(p->lowpass_hz > 0)) {
            caimg_error(CAIMG_EINVAL, "baseline lowpass: cutoff must be positive (got %g Hz)",
                        p->lowpass_hz);
            goto fail;
        }
        /* A window in either unit makes the percentile a running one; with
         * neither it is one value per trace (FISSA's default). */
        b->win = p->window_s > 0 || p->window_frames > 0 ? window_frames(p, fs) : 0;
        /* FISSA shortens the filter for short traces and skips it when
         * the frame rate is at or below the cutoff. */
        size_t n = p->lowpass_taps > 0 ? (size_t)p->lowpass_taps : 30;
        size_t nmax = T / 3 > 3 ? T / 3 : 3;
        if (n > nmax) n = nmax;
        if (fs > p->lowpass_hz && T >= 2) {
            double fc = p->lowpass_hz / (fs / 2);
            if (fc > 1) fc = 1;
            b->ntaps = n;
            b->taps = caimg_malloc(n, sizeof *b->taps, "FIR taps");
            if (!b->taps) goto fail;
            double sum = 0, mid = (double)(n - 1) / 2;
            for (size_t k = 0; k < n; k++) {
                double m = (double)k - mid, x = M_PI * fc * m;
                double sinc = m == 0 ? 1 : sin(x) / x;
                double ham = n > 1 ? 0.54 - 0.46 * cos(2 * M_PI * (double)k / (double)(n - 1)) : 1;
                b->taps[k] = fc * sinc * ham;
                sum += b->taps[k];
            }
            for (size_t k = 0; k < n; k++) b->taps[k] /= sum;
            b->pad = 3 * n < T - 1 ? 3 * n : T - 1;
        }
    }
    size_t nd = T + 2 * b->pad + CAIMG_TS_KDE_BINS;
    b->b1 = caimg_malloc(nd, sizeof *b->b1, "baseline scratch");
    b->b2 = caimg_malloc(nd, sizeof *b->b2, "baseline scratch");
    /* Deques need T indices, the heaps of a running percentile 3 per
     * window slot, and a window never holds more than T samples. */
    b->iw = caimg_malloc(3 * T + 2, sizeof *b->iw, "baseline scratch");
    if (!b->b1 || !b->b2 || !b->iw) goto fail;
    return b;
fail:
    caimg_baseline_free(b);
    return NULL;
}

int caimg_baseline_compute(caimg_baseline *b, const double *F, double *F0, double *pct_used)
{
    b->type->compute(b, F, F0, pct_used);
    return CAIMG_OK;
}

void caimg_baseline_free(caimg_baseline *b)
{
    if (!b) return;
    free(b->kern);
    free(b->taps);
    free(b->b1);
    free(b->b2);
    free(b->iw);
    free(b);
}

/* ======================================================================
 * Neuropil coefficient by quantile regression.
 * ====================================================================== */

/* The check loss of F - r Fneu around its own q-quantile. */
static double quantile_loss(const double *F, const double *N, size_t T, double q,
                            double r, double *work)
{
    for (size_t t = 0; t < T; t++) work[t] = F[t] - r * N[t];
    double b = caimg_ts_quantile(work, T, q);
    double loss = 0;
    for (size_t t = 0; t < T; t++) {
        double e = F[t] - r * N[t] - b;
        loss += e >= 0 ? q * e : (q - 1) * e;
    }
    return loss;
}

int caimg_neuropil_estimate(const double *F, const double *Fneu, size_t T,
                            double q, double rmin, double rmax, double *work,
                            double *r, int *clamped)
{
    if (!(rmin <= rmax) || !(q > 0 && q < 1))
        return caimg_error(CAIMG_EINVAL, "neuropil: need r_min <= r_max and 0 < quantile < 1");
    if (clamped) *clamped = 0;
    if (T < 3 || rmin == rmax) {
        *r = rmin;
        return CAIMG_OK;
    }
    /* Golden-section search on the convex loss. */
    const double phi = (sqrt(5.0) - 1) / 2, tol = 1e-4;
    double a = rmin, d = rmax;
    double b = d - phi * (d - a), c = a + phi * (d - a);
    double fb = quantile_loss(F, Fneu, T, q, b, work);
    double fc = quantile_loss(F, Fneu, T, q, c, work);
    while (d - a > tol) {
        if (fb <= fc) {
            d = c; c = b; fc = fb;
            b = d - phi * (d - a);
            fb = quantile_loss(F, Fneu, T, q, b, work);
        } else {
            a = b; b = c; fb = fc;
            c = a + phi * (d - a);
            fc = quantile_loss(F, Fneu, T, q, c, work);
        }
    }
    double est = (a + d) / 2;
    if (clamped && (est - rmin < 4 * tol || rmax - est < 4 * tol)) *clamped = 1;
    *r = est;
    return CAIMG_OK;
}

/* ======================================================================
 * Noise levels.
 * ====================================================================== */

struct caimg_noise_plan {
    size_t T;
    size_t k0, k1;            /* band of periodogram bins [k0, k1] */
    caimg_noise_method method;
    fftwf_plan plan;
};

static const char *const noise_names[] = {"mean", "logmean", "median"};

int caimg_noise_method_from_name(const char *name)
{
    for (int i = 0; name && i < 3; i++)
        if (strcmp(name, noise_names[i]) == 0) return i;
    return -1;
}

const char *caimg_noise_method_name(caimg_noise_method m)
{
    return (unsigned)m < 3 ? noise_names[m] : NULL;
}

/* The output of the transform starts at a 64-byte boundary after the
 * input, so both keep the SIMD alignment the plan was made with. */
static size_t noise_out_offset(size_t T)
{
    return (T + 15) / 16 * 16;
}

float *caimg_noise_work_alloc(const caimg_noise_plan *p)
{
    size_t n = noise_out_offset(p->T) + 2 * (p->T / 2 + 1) + 16;
    float *w = fftwf_malloc(n * sizeof(float));
    if (!w) caimg_error(CAIMG_ENOMEM, "out of memory allocating noise scratch");
    return w;
}

void caimg_noise_work_free(float *work)
{
    if (work) fftwf_free(work);
}

caimg_noise_plan *caimg_noise_plan_create(size_t T, double f_lo, double f_hi,
                                          caimg_noise_method method)
{
    if (!(f_lo >= 0 && f_lo < f_hi && f_hi <= 0.5)) {
        caimg_error(CAIMG_EINVAL, "noise band %g..%g is not within 0..0.5 cycles per frame",
                    f_lo, f_hi);
        return NULL;
    }
    if ((unsigned)method > CAIMG_NOISE_MEDIAN) {
        caimg_error(CAIMG_EINVAL, "unknown noise method %d", (int)method);
        return NULL;
    }
    if (T > (size_t)0x7fffffff) {
        caimg_error(CAIMG_EINVAL, "traces of %zu frames are too long for the noise estimate", T);
        return NULL;
    }
    caimg_noise_plan *p = caimg_calloc(1, sizeof *p, "a noise plan");
    if (!p) return NULL;
    p->T = T;
    p->method = method;
    /* Bins k with f_lo < k/T <= f_hi, as CaImAn's get_noise_fft selects them. */
    p->k0 = (size_t)floor(f_lo * (double)T) + 1;
    p->k1 = (size_t)floor(f_hi * (double)T);
    if (p->k1 > T / 2) p->k1 = T / 2;
    if (T >= 8 && p->k0 <= p->k1) {
        float *w = caimg_noise_work_alloc(p);
        if (w)
            p->plan = fftwf_plan_dft_r2c_1d((int)T, w, (fftwf_complex *)(w + noise_out_offset(T)),
                                            FFTW_ESTIMATE | FFTW_DESTROY_INPUT);
        caimg_noise_work_free(w);
        if (!p->plan) {
            free(p);
            caimg_error(CAIMG_ENOMEM, "cannot make an FFT plan for %zu frames", T);
            return NULL;
        }
    }
    return p;
}

/* The PSD noise level of (y - mean) 2^-ex, single precision: the trace
 * goes to float, through the FFT and into the band's powers scaled by a
 * power of two, which is exact. */
static double psd_level(const caimg_noise_plan *p, const double *y, double mean, int ex,
                        float *in, fftwf_complex *out)
{
    size_t T = p->T;
    double f = ldexp(1.0, -ex);
    /* Four frames at a time (GCC -O2 leaves the plain loop scalar); the
     * same roundings per frame. */
    typedef double v4d __attribute__((vector_size(32), aligned(8), may_alias));
    typedef float v4f __attribute__((vector_size(16), aligned(4), may_alias));
    const v4d m4 = {mean, mean, mean, mean}, f4 = {f, f, f, f};
    size_t t = 0;
    for (; t + 4 <= T; t += 4)
        *(v4f *)(in + t) = __builtin_convertvector((*(const v4d *)(y + t) - m4) * f4, v4f);
    for (; t < T; t++) in[t] = (float)((y[t] - mean) * f);
    fftwf_execute_dft_r2c(p->plan, in, out);
    size_t nb = p->k1 - p->k0 + 1;
    double acc = 0;
    if (p->method == CAIMG_NOISE_MEAN) {
        /* Single-precision partial sums over short stretches are exact
         * enough and vectorise; they are added up in double. */
        for (size_t k = p->k0; k <= p->k1;) {
            size_t e = k + 64 <= p->k1 + 1 ? k + 64 : p->k1 + 1;
            float part = 0;
            for (; k < e; k++) part += out[k][0] * out[k][0] + out[k][1] * out[k][1];
            acc += part;
        }
        return sqrt(acc / (double)nb / (double)T);
    }
    if (p->method == CAIMG_NOISE_LOGMEAN) {
        const double euler = 0.57721566490153286;
        size_t used = 0;
        for (size_t k = p->k0; k <= p->k1; k++) {
            double P = ((double)out[k][0] * out[k][0] + (double)out[k][1] * out[k][1]) / (double)T;
            if (P > 0) { acc += log(P); used++; }
        }
        return used ? sqrt(exp(acc / (double)used + euler)) : 0;
    }
    /* The median needs the band's values in memory.  The input buffer is
     * free again and large enough: the band has at most T/2 bins, and T/2
     * doubles take no more room than T floats. */
    double *P = (double *)in;
    size_t m = 0;
    for (size_t k = p->k0; k <= p->k1; k++)
        P[m++] = ((double)out[k][0] * out[k][0] + (double)out[k][1] * out[k][1]) / (double)T;
    return sqrt(caimg_ts_median(P, m) / M_LN2);
}

int caimg_noise_psd(const caimg_noise_plan *p, const double *y, float *work, double *sn)
{
    size_t T = p->T;
    if (!p->plan) {
        double acc = 0;
        for (size_t t = 1; t < T; t++) acc += (y[t] - y[t - 1]) * (y[t] - y[t - 1]);
        *sn = T > 1 ? sqrt(acc / (double)(T - 1) / 2) : 0;
        return CAIMG_OK;
    }
    float *own = NULL;
    /* A buffer that lost the plan's alignment would make FFTW fail
     * silently; use a fresh one then. */
    if (!work || fftwf_alignment_of(work) != 0) {
        work = own = caimg_noise_work_alloc(p);
        if (!own) return CAIMG_ENOMEM;
    }
    float *in = work;
    fftwf_complex *out = (fftwf_complex *)(work + noise_out_offset(T));
    /* Remove the mean in double precision before going to float, so a
     * large offset (raw fluorescence) costs no precision. */
    double m0 = 0, m1 = 0, m2 = 0, m3 = 0;
    size_t t4 = T & ~(size_t)3;
    for (size_t t = 0; t < t4; t += 4) {
        m0 += y[t];
        m1 += y[t + 1];
        m2 += y[t + 2];
        m3 += y[t + 3];
    }
    for (size_t t = t4; t < T; t++) m0 += y[t];
    double mean = ((m0 + m1) + (m2 + m3)) / (double)T;
    *sn = psd_level(p, y, mean, 0, in, out);
    if (!(*sn >= 1e-15 && *sn <= 1e15)) {
        /* Squares of the spectrum beyond the float range (traces in units
         * of about 1e16 and up, or 1e-15 and down; or a constant trace):
         * again with the largest value scaled near 1, so that the units
         * of the trace do not change its noise level or its spikes. */
        double big = 0;
        for (size_t t = 0; t < T; t++) {
            double a = fabs(y[t] - mean);
            big = a > big ? a : big;
        }
        int ex = 0;
        if (big > 0 && isfinite(big)) {
            frexp(big, &ex);
            *sn = ldexp(psd_level(p, y, mean, ex, in, out), ex);
        }
    }
    caimg_noise_work_free(own);
    return CAIMG_OK;
}

void caimg_noise_plan_destroy(caimg_noise_plan *p)
{
    if (!p) return;
    if (p->plan) fftwf_destroy_plan(p->plan);
    free(p);
}

double caimg_noise_cascade(const double *dff, size_t T, double fs, double *work)
{
    if (T < 2 || !(fs > 0)) return 0;
    double *own = NULL;
    if (!work) {
        work = own = malloc((T - 1) * sizeof *work);
        if (!own) return NAN;
    }
    for (size_t t = 1; t < T; t++) work[t - 1] = fabs(dff[t] - dff[t - 1]);
    double m = caimg_ts_median(work, T - 1);
    free(own);
    return 100.0 * m / sqrt(fs);
}

/* ======================================================================
 * dF/F of many ROIs.
 * ====================================================================== */

void caimg_dff_params_init(caimg_dff_params *p, double fs)
{
    memset(p, 0, sizeof *p);
    p->fs = fs;
    p->r = 0.7;
    p->estimate_r = 0;
    p->r_min = 0;
    p->r_max = 1.5;
    p->r_quantile = 0.05;
    p->baseline = caimg_baseline_maximin;
    caimg_baseline_params_init(&p->bparams, p->baseline);
    p->f0_floor = 0.1;
    p->noise_band[0] = 0.25;
    p->noise_band[1] = 0.5;
    p->noise_method = CAIMG_NOISE_MEAN;
    p->threads = 0;
}

/* Everything one thread needs for one ROI at a time. */
typedef struct {
    caimg_baseline *base;
    double *f, *nf, *fc, *f0, *d, *work;
    float *nwork;
} dff_ws;

static void dff_ws_free(dff_ws *w)
{
    if (!w) return;
    caimg_baseline_free(w->base);
    free(w->f);
    caimg_noise_work_free(w->nwork);
}

static int dff_ws_init(dff_ws *w, const caimg_dff_params *p, size_t T,
                       const caimg_noise_plan *np)
{
    memset(w, 0, sizeof *w);
    w->base = caimg_baseline_alloc(p->baseline, &p->bparams, p->fs, T);
    if (!w->base) return CAIMG_EINVAL;
    w->f = caimg_malloc(6 * T + 1, sizeof(double), "dF/F scratch");
    w->nwork = caimg_noise_work_alloc(np);
    if (!w->f || !w->nwork) {
        dff_ws_free(w);
        return CAIMG_ENOMEM;
    }
    w->nf = w->f + T;
    w->fc = w->nf + T;
    w->f0 = w->fc + T;
    w->d = w->f0 + T;
    w->work = w->d + T;
    return CAIMG_OK;
}

static unsigned dff_one(const caimg_dff_params *p, dff_ws *w, const caimg_noise_plan *np,
                        size_t T, const float *F, const float *N, float *dff, float *F0,
                        double *r_out, double *npsd, double *ncas, size_t roi)
{
    unsigned flags = 0;
    double *f = w->f, *nf = w->nf, *fc = w->fc, *f0 = w->f0, *d = w->d;
    for (size_t t = 0; t < T; t++) f[t] = F[t];
    size_t bad = caimg_ts_fill_nonfinite(f, T);
    if (N) {
        for (size_t t = 0; t < T; t++) nf[t] = N[t];
        size_t badn = caimg_ts_fill_nonfinite(nf, T);
        if (badn > bad) bad = badn;
    }
    if (bad) {
        flags |= CAIMG_DFF_NONFINITE;
        caimg_warn("ROI %zu: %zu of %zu frames are NaN or infinite; replaced by linear "
                   "interpolation", roi, bad, T);
    }
    double mean_abs = 0;
    for (size_t t = 0; t < T; t++) mean_abs += fabs(f[t]);
    mean_abs /= (double)T;

    double r = 0;
    if (N) {
        r = p->r;
        if (p->estimate_r) {
            int clamped = 0;
            caimg_neuropil_estimate(f, nf, T, p->r_quantile, p->r_min, p->r_max,
                                    w->work, &r, &clamped);
            if (clamped) {
                flags |= CAIMG_DFF_R_BOUND;
                caimg_warn("ROI %zu: estimated neuropil coefficient %.3f lies on a bound "
                           "of [%g, %g]", roi, r, p->r_min, p->r_max);
            }
        }
        for (size_t t = 0; t < T; t++) fc[t] = f[t] - r * nf[t];
    } else {
        memcpy(fc, f, T * sizeof *fc);
    }
    caimg_baseline_compute(w->base, fc, f0, NULL);

    if (mean_abs == 0) {
        flags |= CAIMG_DFF_ZERO;
        caimg_warn("ROI %zu: the trace is zero everywhere; dF/F set to 0", roi);
        memset(d, 0, T * sizeof *d);
    } else {
        double floor = p->f0_floor * mean_abs;
        size_t nfloor = 0;
        double f0min = INFINITY;
        for (size_t t = 0; t < T; t++) {
            double den = f0[t];
            if (f0[t] < f0min) f0min = f0[t];
            if (!(den >= floor)) {
                den = floor;
                nfloor++;
            }
            /* floor > 0 here, so den > 0 and the ratio is finite. */
            d[t] = (fc[t] - f0[t]) / den;
        }
        if (nfloor) {
            flags |= CAIMG_DFF_F0_FLOOR;
            caimg_warn("ROI %zu: baseline F0 below %g x mean|F| = %.4g on %zu of %zu frames "
                       "(min F0 %.4g); dF/F denominators floored there", roi, p->f0_floor,
                       floor, nfloor, T, f0min);
        }
    }
    if (dff)
        for (size_t t = 0; t < T; t++) dff[t] = (float)d[t];
    if (F0)
        for (size_t t = 0; t < T; t++) F0[t] = (float)f0[t];
    if (r_out) *r_out = r;
    if (npsd) caimg_noise_psd(np, d, w->nwork, npsd);
    if (ncas) *ncas = caimg_noise_cascade(d, T, p->fs, w->work);
    return flags;
}

int caimg_dff_compute(const caimg_dff_params *p, size_t n, size_t T,
                      const float *F, const float *Fneu, float *dff, float *F0,
                      double *r, double *noise_psd, double *noise_cascade,
                      unsigned *flags, size_t first)
{
    if (!(p->fs > 0) || !isfinite(p->fs))
        return caimg_error(CAIMG_EINVAL, "dff: the frame rate is unknown; give it with --fs");
    if (!p->baseline)
        return caimg_error(CAIMG_EINVAL, "dff: no baseline method given");
    if (!(p->f0_floor > 0))
        return caimg_error(CAIMG_EINVAL, "dff: the F0 floor fraction must be positive (got %g)",
                           p->f0_floor);
    if (Fneu && !p->estimate_r && !(p->r >= 0 && isfinite(p->r)))
        return caimg_error(CAIMG_EINVAL, "dff: neuropil coefficient %g is negative", p->r);
    if (n == 0) return CAIMG_OK;
    if (T == 0) return caimg_error(CAIMG_EINVAL, "dff: traces have no frames");

    caimg_noise_plan *np = caimg_noise_plan_create(T, p->noise_band[0], p->noise_band[1],
                                                   p->noise_method);
    if (!np) return CAIMG_EINVAL;
    int nt = p->threads > 0 ? p->threads : caimg_nthreads();
    if ((size_t)nt > n) nt = (int)n;
    dff_ws *ws = caimg_calloc((size_t)nt, sizeof *ws, "dF/F workspaces");
    int status = ws ? CAIMG_OK : CAIMG_ENOMEM;
    int made = 0;
    /* Workspaces are made here, in the calling thread, so that an error
     * message lands where the caller will look for it. */
    for (; status == CAIMG_OK && made < nt; made++) {
        status = dff_ws_init(&ws[made], p, T, np);
        if (status) break;
    }
    if (status == CAIMG_OK) {
        #pragma omp parallel for schedule(dynamic, 4) num_threads(nt)
        for (size_t i = 0; i < n; i++) {
            int tid = 0;
#ifdef _OPENMP
            tid = omp_get_thread_num();
#endif
            unsigned fl = dff_one(p, &ws[tid], np, T, F + i * T, Fneu ? Fneu + i * T : NULL,
                                  dff ? dff + i * T : NULL, F0 ? F0 + i * T : NULL,
                                  r ? r + i : NULL, noise_psd ? noise_psd + i : NULL,
                                  noise_cascade ? noise_cascade + i : NULL, first + i);
            if (flags) flags[i] = fl;
        }
    }
    for (int i = 0; ws && i < made; i++) dff_ws_free(&ws[i]);
    free(ws);
    caimg_noise_plan_destroy(np);
    return status;
}
