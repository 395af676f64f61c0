/* simtrace.h -- synthetic calcium traces and spike-inference scores, for
 * the deconvolution tests and benchmarks (header-only, not installed).
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * A trace is sampled at fs Hz: frame i is the fluorescence at time i/fs,
 *   F_i = b + sum over spikes at times u < i/fs of A k(i/fs - u) + noise,
 * with k(t) = exp(-t/tau_d) - exp(-t/tau_r) scaled to a peak of 1, so A is
 * the peak of a single-spike transient and SNR = A / noise sd.  Spike
 * times are continuous (a homogeneous Poisson process), so the model the
 * deconvolution assumes (spikes on frames, AR dynamics) is only an
 * approximation of the data, as with real recordings.
 *
 * Scoring follows the Spikefinder convention: true spike counts and
 * inferred spikes are binned into 40 ms bins and compared by Pearson
 * correlation.  The inferred value of frame i is spread uniformly over the
 * frame interval ((i-1)/fs, i/fs] that produced it (a spike in that
 * interval first shows in frame i), split between bins in proportion to
 * the overlap, so frame rates that are not multiples of 25 Hz are binned
 * fairly.
 */
#ifndef CAIMG_SIMTRACE_H
#define CAIMG_SIMTRACE_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    unsigned long long s;
} sim_rng;

static inline double sim_uniform(sim_rng *r)
{
    r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((double)(r->s >> 11) + 0.5) / 9007199254740992.0;
}

static inline double sim_normal(sim_rng *r)
{
    double u = sim_uniform(r), v = sim_uniform(r);
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

typedef struct {
    double fs;          /* Hz */
    double rate;        /* mean firing rate, Hz */
    double tau_r, tau_d;/* s */
    double amp;         /* single-spike peak */
    double sn;          /* noise sd */
    double b;           /* baseline */
} sim_params;

/* Simulate T frames into F; spike times (s) into *spk (malloc'd), count
 * into *nspk.  Returns 0, -1 on allocation failure. */
static inline int sim_trace(const sim_params *p, size_t T, sim_rng *r, double *F,
                     double **spk, size_t *nspk)
{
    double dur = (double)T / p->fs;
    size_t cap = (size_t)(p->rate * dur * 2 + 16), n = 0;
    double *u = malloc(cap * sizeof *u);
    if (!u) return -1;
    for (double t = -log(sim_uniform(r)) / p->rate; t < dur;
         t += -log(sim_uniform(r)) / p->rate) {
        if (n == cap) {
            cap *= 2;
            double *nu = realloc(u, cap * sizeof *u);
            if (!nu) { free(u); return -1; }
            u = nu;
        }
        u[n++] = t;
    }
    /* Peak of exp(-t/td) - exp(-t/tr). */
    double peak = 1;
    if (p->tau_r > 0) {
        double tp = p->tau_d * p->tau_r / (p->tau_d - p->tau_r) * log(p->tau_d / p->tau_r);
        peak = exp(-tp / p->tau_d) - exp(-tp / p->tau_r);
    }
    for (size_t i = 0; i < T; i++) F[i] = p->b + p->sn * sim_normal(r);
    for (size_t k = 0; k < n; k++) {
        size_t i0 = (size_t)ceil(u[k] * p->fs);
        if ((double)i0 / p->fs <= u[k]) i0++;
        for (size_t i = i0; i < T; i++) {
            double dt = (double)i / p->fs - u[k];
            double v = exp(-dt / p->tau_d) - (p->tau_r > 0 ? exp(-dt / p->tau_r) : 0);
            if (dt > 10 * p->tau_d) break;
            F[i] += p->amp * v / peak;
        }
    }
    *spk = u;
    *nspk = n;
    return 0;
}

/* Bin into nb bins of width w (s) starting at t0: counts of spike times,
 * and inferred values x_i spread over (tf_{i-1}, tf_i] where tf are the
 * frame times (tf_{-1} = tf_0 - (tf_1 - tf_0)). */
static inline void sim_bin_spikes(const double *u, size_t n, double t0, double w, size_t nb,
                           double *out)
{
    memset(out, 0, nb * sizeof *out);
    for (size_t k = 0; k < n; k++) {
        double p = (u[k] - t0) / w;
        if (p < 0 || p >= (double)nb) continue;
        out[(size_t)p] += 1;
    }
}

static inline void sim_bin_frames(const double *x, const double *tf, size_t T, double t0,
                           double w, size_t nb, double *out)
{
    memset(out, 0, nb * sizeof *out);
    for (size_t i = 0; i < T; i++) {
        if (x[i] == 0) continue;
        double b = tf[i];
        double a = i > 0 ? tf[i - 1] : tf[0] - (T > 1 ? tf[1] - tf[0] : 0);
        double len = b - a;
        if (!(len > 0)) {
            double p = (b - t0) / w;
            if (p >= 0 && p < (double)nb) out[(size_t)p] += x[i];
            continue;
        }
        double pa = (a - t0) / w, pb = (b - t0) / w;
        for (long j = (long)floor(pa); j <= (long)floor(pb) && j < (long)nb; j++) {
            if (j < 0) continue;
            double lo = fmax(pa, (double)j), hi = fmin(pb, (double)j + 1);
            if (hi > lo) out[j] += x[i] * (hi - lo) / (pb - pa);
        }
    }
}

static inline double sim_pearson(const double *a, const double *b, size_t n)
{
    double ma = 0, mb = 0;
    for (size_t i = 0; i < n; i++) { ma += a[i]; mb += b[i]; }
    ma /= (double)n;
    mb /= (double)n;
    double sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < n; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    if (!(saa > 0) || !(sbb > 0)) return 0;
    return sab / sqrt(saa * sbb);
}

/* Spikefinder score of inferred spikes x (per frame, frame times tf) against
 * true spike times u: Pearson r at 40 ms bins over [tf_0 - 1/fs, tf_T-1]. */
static inline double sim_score(const double *x, const double *tf, size_t T, const double *u,
                        size_t n)
{
    const double w = 0.040;
    double t0 = T > 1 ? tf[0] - (tf[1] - tf[0]) : tf[0];
    size_t nb = (size_t)((tf[T - 1] - t0) / w) + 1;
    double *bt = malloc(nb * sizeof *bt), *bx = malloc(nb * sizeof *bx);
    if (!bt || !bx) { free(bt); free(bx); return NAN; }
    sim_bin_spikes(u, n, t0, w, nb, bt);
    sim_bin_frames(x, tf, T, t0, w, nb, bx);
    double r = sim_pearson(bt, bx, nb);
    free(bt);
    free(bx);
    return r;
}

#endif
