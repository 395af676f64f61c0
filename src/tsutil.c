/* tsutil.c -- private time-series helpers shared by dff.c and deconv.c.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <string.h>

#include "internal.h"
#include "tsutil.h"

/* Quickselect with median-of-three pivots and a three-way partition (runs
 * of equal values -- all-zero traces, clipped samples -- must not make it
 * quadratic).  The partition is two branch-free Lomuto passes, the values
 * below the pivot to the front, then those equal to it: on data in random
 * order each comparison of a branchy partition mispredicts half the time,
 * which made selection several times slower. */
double caimg_ts_select(double *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n;   /* k lies in [lo, hi) */
    while (hi - lo > 1) {
        double x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi - 1], pivot;
        if (x < y) pivot = y < z ? y : (x < z ? z : x);
        else       pivot = x < z ? x : (y < z ? z : y);
        /* [lo, lt) < pivot, then [lt, eq) == pivot, [eq, hi) > pivot. */
        size_t lt = lo;
        for (size_t i = lo; i < hi; i++) {
            double v = a[i];
            a[i] = a[lt];
            a[lt] = v;
            lt += v < pivot;
        }
        size_t eq = lt;
        for (size_t i = lt; i < hi; i++) {
            double v = a[i];
            a[i] = a[eq];
            a[eq] = v;
            eq += !(v > pivot);
        }
        if (k < lt) hi = lt;
        else if (k >= eq) lo = eq;
        else return pivot;
    }
    return a[k];
}

double caimg_ts_quantile(double *a, size_t n, double q)
{
    if (n == 0) return 0.0;
    if (q <= 0) q = 0;
    if (q >= 1) q = 1;
    double pos = q * (double)(n - 1);
    size_t k = (size_t)floor(pos);
    if (k >= n - 1) return caimg_ts_select(a, n, n - 1);
    double frac = pos - (double)k;
    double lo = caimg_ts_select(a, n, k);
    if (frac == 0) return lo;
    /* After selection everything above index k is >= a[k]; the next order
     * statistic is the minimum of that part. */
    double hi = a[k + 1];
    for (size_t i = k + 2; i < n; i++)
        if (a[i] < hi) hi = a[i];
    return lo + frac * (hi - lo);
}

/* The index of the lower order statistic caimg_ts_quantile() uses. */
static size_t quantile_index(size_t n, double q)
{
    size_t k = (size_t)floor(q * (double)(n - 1));
    return k < n - 1 ? k : n - 1;
}

/* caimg_ts_quantile(a, n, q) when a is already partitioned so that
 * a[0..lo) <= a[lo..hi) <= a[hi..n) and the order statistic lies in
 * [lo, hi): the same value, selecting only within [lo, hi). */
static double quantile_within(double *a, size_t n, size_t lo, size_t hi, double q)
{
    double pos = q * (double)(n - 1);
    size_t k = (size_t)floor(pos);
    if (k >= n - 1) return caimg_ts_select(a + lo, n - lo, n - 1 - lo);
    double frac = pos - (double)k;
    double v = caimg_ts_select(a + lo, hi - lo, k - lo);
    if (frac == 0) return v;
    /* The next order statistic: the minimum above k, which lies below hi
     * unless k is the last index of the part. */
    size_t end = k + 1 < hi ? hi : n;
    double w = a[k + 1];
    for (size_t i = k + 2; i < end; i++)
        if (a[i] < w) w = a[i];
    return v + frac * (w - v);
}

double caimg_ts_median(double *a, size_t n)
{
    return caimg_ts_quantile(a, n, 0.5);
}

size_t caimg_ts_fill_nonfinite(double *x, size_t n)
{
    size_t bad = 0, last = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        if (isfinite(x[i])) {
            if (last == (size_t)-1) {
                for (size_t j = 0; j < i; j++) x[j] = x[i];
            } else if (i > last + 1) {
                double a = x[last], b = x[i], span = (double)(i - last);
                for (size_t j = last + 1; j < i; j++)
                    x[j] = a + (b - a) * (double)(j - last) / span;
            }
            last = i;
        } else {
            bad++;
        }
    }
    if (last == (size_t)-1) {
        memset(x, 0, n * sizeof *x);
        return n;
    }
    for (size_t j = last + 1; j < n; j++) x[j] = x[last];
    return bad;
}

/* Each dens[k] is one chain of dependent additions, so in the interior of
 * the grid four of them are run side by side (each still summed in the
 * same order, so the result does not depend on the blocking). */
static double smooth_at(const double *hist, size_t nb, const double *kern, size_t rad, size_t k)
{
    size_t j0 = k > rad ? k - rad : 0, j1 = k + rad < nb ? k + rad : nb - 1;
    double d = 0;
    for (size_t j = j0; j <= j1; j++) d += hist[j] * kern[j > k ? j - k : k - j];
    return d;
}

/* The densities in vectors of four (built for AVX2 too where the compiler
 * can; no fused multiply-adds, so the sums are the same either way), over
 * a copy of the histogram with rad zeros on either side so that the edges
 * need no special case.  Each lane still adds the products of
 * smooth_at() in the same order: the extra terms are zeros added before
 * the first product (0 + 0 = 0) or after the last (x + 0 = x, with x >= 0
 * here), which change nothing. */
CAIMG_SIMD_CLONES
size_t caimg_ts_smooth_argmax(const double *hist, size_t nb, const double *kern, size_t rad,
                              double *dens)
{
    /* Sixteen densities at a time (four independent chains of additions);
     * the last block is computed into `last` and only its part inside
     * the grid copied out. */
    enum { NMAX = CAIMG_TS_KDE_BINS };
    if (nb > NMAX || rad >= NMAX) {
        for (size_t k = 0; k < nb; k++) dens[k] = smooth_at(hist, nb, kern, rad, k);
    } else {
        double pad[3 * NMAX + 16];
        memset(pad, 0, rad * sizeof *pad);
        memcpy(pad + rad, hist, nb * sizeof *pad);
        memset(pad + rad + nb, 0, (rad + 16) * sizeof *pad);
        for (size_t k = 0; k < nb; k += 16) {
            const double *h = pad + k;
            caimg_v4d a0 = {0, 0, 0, 0}, a1 = a0, a2 = a0, a3 = a0;
            for (size_t j = 0; j <= 2 * rad; j++) {
                double w = kern[j > rad ? j - rad : rad - j];
                const caimg_v4d w4 = {w, w, w, w};
                a0 += *(const caimg_v4du *)(h + j) * w4;
                a1 += *(const caimg_v4du *)(h + j + 4) * w4;
                a2 += *(const caimg_v4du *)(h + j + 8) * w4;
                a3 += *(const caimg_v4du *)(h + j + 12) * w4;
            }
            double last[16];
            double *o = k + 16 <= nb ? dens + k : last;
            memcpy(o, &a0, sizeof a0);
            memcpy(o + 4, &a1, sizeof a1);
            memcpy(o + 8, &a2, sizeof a2);
            memcpy(o + 12, &a3, sizeof a3);
            if (o == last) memcpy(dens + k, last, (nb - k) * sizeof *dens);
        }
    }
    size_t best = 0;
    for (size_t k = 1; k < nb; k++)
        if (dens[k] > dens[best]) best = k;
    return best;
}

double caimg_ts_kde_mode(const double *x, size_t n, double *work, int first)
{
    if (n < 2) return n ? x[0] : 0.0;
    double *s = work, *hist = work + n;
    double mean = 0, m2 = 0;
    for (size_t i = 0; i < n; i++) {
        double d = x[i] - mean;
        mean += d / (double)(i + 1);
        m2 += d * (x[i] - mean);
    }
    double sd = sqrt(m2 / (double)(n - 1));
    memcpy(s, x, n * sizeof *s);
    /* Each selection leaves s partitioned around its index (and only
     * permutes the part it searched), so the next one only searches the
     * part that holds its order statistic. */
    size_t k25 = quantile_index(n, 0.25), k75 = quantile_index(n, 0.75);
    double q25 = quantile_within(s, n, 0, n, 0.25);
    double q75 = quantile_within(s, n, k25, n, 0.75);
    double lo = quantile_index(n, 0.005) < k25 ? quantile_within(s, n, 0, k25, 0.005)
                                                : caimg_ts_quantile(s, n, 0.005);
    double hi = quantile_within(s, n, k75, n, 0.995);
    double scale = sd;
    if (q75 - q25 > 0 && (q75 - q25) / 1.349 < scale) scale = (q75 - q25) / 1.349;
    if (!(hi > lo) || !(scale > 0)) return caimg_ts_median(s, n);
    double h = 0.9 * scale * pow((double)n, -0.2);
    /* A grid much finer than the bandwidth buys nothing but cost: a
     * quarter of the bandwidth per bin resolves the mode to well within
     * its statistical uncertainty. */
    double dx = (hi - lo) / (double)(CAIMG_TS_KDE_BINS - 1);
    if (dx < h / 4) dx = h / 4;
    size_t nb = (size_t)((hi - lo) / dx) + 1;
    if (nb > CAIMG_TS_KDE_BINS) nb = CAIMG_TS_KDE_BINS;
    memset(hist, 0, nb * sizeof *hist);
    /* Linear binning: each sample splits its weight between the two
     * nearest grid points, which keeps the estimate smooth in the data. */
    for (size_t i = 0; i < n; i++) {
        double p = (x[i] - lo) / dx;
        if (p < 0 || p > (double)(nb - 1)) continue;
        size_t k = (size_t)p;
        if (k >= nb - 1) { hist[nb - 1] += 1; continue; }
        double f = p - (double)k;
        hist[k] += 1 - f;
        hist[k + 1] += f;
    }
    double sig = h / dx;
    size_t rad = (size_t)(4 * sig + 1);
    if (rad >= CAIMG_TS_KDE_BINS) rad = CAIMG_TS_KDE_BINS - 1;
    double kern[CAIMG_TS_KDE_BINS], dens[CAIMG_TS_KDE_BINS];
    for (size_t j = 0; j <= rad; j++) {
        double u = (double)j / sig;
        kern[j] = exp(-0.5 * u * u);
    }
    size_t best = caimg_ts_smooth_argmax(hist, nb, kern, rad, dens);
    if (first) {
        /* Split the density at its local minima into basins and take the
         * peak of the basin holding the most samples: a narrow cluster
         * (events just above a detection threshold) can be as dense as a
         * broad one while holding far fewer samples. */
        double bestmass = -1, mass = 0;
        size_t peak = 0, bestpeak = best;
        for (size_t k = 0; k < nb; k++) {
            if (k > 0 && k + 1 < nb && dens[k] < dens[k - 1] && dens[k] <= dens[k + 1]) {
                if (mass > bestmass) {
                    bestmass = mass;
                    bestpeak = peak;
                }
                mass = 0;
                peak = k;
            }
            mass += hist[k];
            if (dens[k] > dens[peak]) peak = k;
        }
        if (mass > bestmass) bestpeak = peak;
        return lo + dx * (double)bestpeak;
    }
    return lo + dx * (double)best;
}
