/* tsutil.h -- private time-series helpers shared by dff.c and deconv.c.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Everything here works on double arrays in memory, allocates nothing and
 * is safe to call from several OpenMP threads on different data.
 */
#ifndef CAIMG_TSUTIL_H
#define CAIMG_TSUTIL_H

#include <stddef.h>

/* Rearrange a[0..n) so that a[k] is the value that would be there if a
 * were sorted (quickselect, expected O(n)).  n > k required. */
double caimg_ts_select(double *a, size_t n, size_t k);

/* The q-th quantile (0 <= q <= 1) of a[0..n), with linear interpolation
 * between order statistics as numpy.percentile does by default.  Destroys
 * the order of a.  Returns 0 for n == 0. */
double caimg_ts_quantile(double *a, size_t n, double q);

/* Median of a[0..n) (destroys the order; 0 for n == 0). */
double caimg_ts_median(double *a, size_t n);

/* Replace non-finite samples of x[0..n) by linear interpolation between
 * the nearest finite neighbours (constant extrapolation at the ends).
 * Returns the number of samples replaced; if none is finite, x is set to
 * zero and n is returned. */
size_t caimg_ts_fill_nonfinite(double *x, size_t n);

/* The location of the highest mode of the distribution of x[0..n), from a
 * Gaussian kernel density estimate (Silverman's rule-of-thumb bandwidth,
 * with the robust scale min(sd, IQR/1.349)) evaluated by binning on a grid
 * of CAIMG_TS_KDE_BINS points spanning the 0.5th to 99.5th percentiles.
 * `work` is scratch of n + CAIMG_TS_KDE_BINS doubles.  With `first`
 * nonzero, the density is split at its local minima into basins and the
 * peak of the basin holding the most samples is returned instead (used
 * for event sizes: events just above a detection threshold form a narrow
 * cluster that can be as dense as the single-spike one while holding far
 * fewer events).  Returns x[0] if n < 2, the median if the data are
 * constant. */
#define CAIMG_TS_KDE_BINS 512
double caimg_ts_kde_mode(const double *x, size_t n, double *work, int first);

/* Smooth a histogram hist[0..nb) with a symmetric kernel kern[0..rad]
 * (kern[j] the weight at distance j, truncated at the ends of the grid):
 * dens[k] = sum over j of hist[j] kern[|j - k|], j ascending.  Returns the
 * first k of the largest dens[k]. */
size_t caimg_ts_smooth_argmax(const double *hist, size_t nb, const double *kern, size_t rad,
                              double *dens);

#endif
