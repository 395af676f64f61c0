/* roi_stats.c -- per-ROI trace statistics and the cell classifier.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "caimg/error.h"
#include "roi_internal.h"

/* ---- the classifier ------------------------------------------------------------
 *
 * A logistic model p = 1 / (1 + exp(-(w0 + sum_k w_k f_k))) of the features
 * of caimg_roi_classifier_features() (scale-free, so one set of weights
 * serves any pixel size and frame rate), in two passes.  The first pass
 * (W_FIRST) leaves out the last feature, the field's prior: it only counts
 * the ROIs it is sure of, whose share of all ROIs (caimg_roi_field_prior())
 * is the last feature of the second pass (W).  The same candidate, a dim
 * soma-like blob that follows the neuropil a little less than its
 * surround, is a cell more often in a field crowded with cells than in one
 * with few or none, and the weights of one model fitted to both kinds of
 * field were right for neither: too strict in the hard fields (of their
 * ROIs given p 0.2-0.4, 81 of 133 were cells) and too lenient where there
 * are no cells.
 *
 * The weights were fitted by maximum likelihood with
 * bench/roi_classifier.sh (IRLS with a ridge, on the ROIs the defaults give
 * in simulated fields of seeds that no test uses -- typical, hard,
 * dim-but-active and cell-free fields, seeds 901-908 -- each labelled a
 * cell when it matches a true soma with IoU > 0.5); the script prints them
 * in this form.  activity-classic shares them, as its ROIs differ only in
 * outline.  The first pass's weights are those of the single-pass model
 * before (ridge 1e-2 per ROI; 9633 ROIs, 2220 of them cells; fitted to
 * seven seeds and scored on the eighth, in turn, at p >= 0.4 2015 true and
 * 28 false positives, 205 missed, log-loss 0.088).  The second pass's: see
 * below. */
static const double W0_FIRST = -2.0637;
static const double W_FIRST[CAIMG_ROI_NFEATURES] = {0.4303, -0.2181, 0.0127, -0.1167, 0.0638, 0.0803, 0.3408, -0.3932, -0.0703, -0.2509, 0.3338, -0.7366, 0.6761, 1.9330, 0.4655, 0};
/* The second pass's, with the prior: ridge 1e-3 per ROI, on the ROIs of the
 * own-light map in every round and the soma fits within a pixel and a half
 * of their peaks (9540 ROIs, 2257 of them cells; one seed left out in
 * turn, at p >= 0.4: 2157 true and 52 false positives, 100 missed,
 * log-loss 0.0543; before the fits were held near their peaks 2117, 63,
 * 104 and 0.0565, and with the ridge of the first pass 2071, 56, 150 and
 * 0.0786).  The prior's weight, 0.63, raises the odds of a candidate 1.55
 * times for each doubling of the share of sure cells. */
static const double W0 = 1.1543;
static const double W[CAIMG_ROI_NFEATURES] = {1.3412, -0.7655, 0.1007, -0.4864, 0.4158, 0.4424, 0.2485, -1.1735, -0.3185, -1.0620, 1.2518, -1.7291, 1.6317, 2.8699, 0.3026, 0.6295};
/* For ROIs whose np_excess is unknown (recordings shorter than the
 * high-pass window, where np_slope and so np_excess are too noisy to
 * use), in both passes, the weights fitted the same way to the same ROIs
 * with the two np_excess features and the prior set to 0 (roi_fitclass
 * --no-excess; one seed left out in turn: 1844 true and 72 false
 * positives, 147 missed, log-loss 0.173). */
static const double W0_NOEXCESS = -2.0120;
static const double W_NOEXCESS[CAIMG_ROI_NFEATURES] = {0.3684, -0.3072, 0.0452, -0.3615, 0.1194, -0.0834, 0.3693, 0.6269, 0.1590, -0.3472, 0.7829, -2.7294, 0, 0, 0.8443, 0};

static double clampd(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

void caimg_roi_classifier_features(const double *st, double diameter, double prior, double *f)
{
    double area = M_PI * diameter * diameter / 4;
    double skew = st[CAIMG_ROI_SKEW], snr = st[CAIMG_ROI_SNR];
    double score = st[CAIMG_ROI_SCORE], con = st[CAIMG_ROI_CONTRAST];
    f[0] = log(st[CAIMG_ROI_NPIX] / area);
    f[1] = f[0] * f[0];
    f[2] = clampd(st[CAIMG_ROI_COMPACTNESS], 0, 1.2);
    f[3] = log(st[CAIMG_ROI_ASPECT]);
    f[4] = clampd(isfinite(skew) ? skew : 0, -2, 10);
    f[5] = log(isfinite(snr) ? CAIMG_MAX(snr, 0.5) : 0.5);
    /* Activity saturates at 8: beyond, a cell is a cell, and a bounded
     * feature lets the weight matter where the doubt is. */
    f[6] = clampd(isfinite(score) ? score : 0, -3, 8);
    f[7] = clampd(isfinite(con) ? con : 0, -5, 30);
    f[8] = isfinite(st[CAIMG_ROI_FIT]) ? st[CAIMG_ROI_FIT] : 0;
    f[9] = isfinite(st[CAIMG_ROI_OVERLAP]) ? st[CAIMG_ROI_OVERLAP] : 0;
    /* Either kind of evidence suffices: activity in units of the default
     * activity threshold (6), or contrast in units of the default mean-image
     * threshold (3). */
    f[10] = CAIMG_MAX(clampd(isfinite(score) ? score : 0, -5, 30) / 6, f[7] / 3);
    /* How much of the ROI's light moves with the neuropil around it: a
     * soma displaces neuropil, so only part of the neuropil's changes are
     * seen through it, while a bright patch of neuropil follows them fully.
     * This tells dim silent somata from neuropil blobs of the same contrast,
     * which neither activity nor the mean image can. */
    double k = st[CAIMG_ROI_NP_SLOPE];
    f[11] = isfinite(k) ? clampd(k, 0, 2.5) : 1;
    /* The other half of that evidence: a soma's own resting light, which
     * does not follow the neuropil (np_excess); a patch of neuropil has
     * none. */
    double e = st[CAIMG_ROI_NP_EXCESS];
    f[12] = isfinite(e) ? clampd(e, -1, 3) : 0;
    /* Contrast in the mean image counts for as much as the light is the
     * ROI's own: a bright patch of neuropil has contrast but no excess, a
     * dim soma little contrast but all of it its own. */
    f[13] = f[12] * f[7];
    /* GCaMP is kept out of the nucleus: a soma in the mean image is a ring
     * around a darker centre, a blob of neuropil mostly is not.  The depth
     * means something only where the soma model explains the image (fit at
     * least 0.3, what a soma of the mean image needs); a poor fit's nucleus
     * is as often the texture of the neuropil. */
    double nuc = st[CAIMG_ROI_NUCLEUS];
    f[14] = isfinite(nuc) && f[8] >= 0.3 ? nuc : 0;
    f[15] = prior;
}

/* The logistic model of weights w0, w on the features of one row of stats. */
static double logistic(const double *st, double diameter, double prior, double w0, const double *w)
{
    double f[CAIMG_ROI_NFEATURES], z = w0;
    caimg_roi_classifier_features(st, diameter, prior, f);
    for (int k = 0; k < CAIMG_ROI_NFEATURES; k++) z += w[k] * f[k];
    return 1.0 / (1.0 + exp(-z));
}

double caimg_roi_field_prior(const double *stats, size_t n, double diameter)
{
    size_t sure = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        const double *st = stats + i * CAIMG_ROI_NSTATS;
        if (st[CAIMG_ROI_SOURCE] == 0) continue;
        int known = isfinite(st[CAIMG_ROI_NP_EXCESS]);
        m++;
        sure += logistic(st, diameter, 0, known ? W0_FIRST : W0_NOEXCESS,
                         known ? W_FIRST : W_NOEXCESS) >= 0.5;
    }
    /* Plus one each: a field with no sure cell is not certain to have none. */
    return log((double)(sure + 1) / (double)(m + 1));
}

double caimg_roi_cell_probability(const caimg_roiset *r, size_t i, double diameter, double prior)
{
    const double *st = r->stats + i * CAIMG_ROI_NSTATS;
    int known = isfinite(st[CAIMG_ROI_NP_EXCESS]);
    return known ? logistic(st, diameter, prior, W0, W)
                 : logistic(st, diameter, prior, W0_NOEXCESS, W_NOEXCESS);
}

/* ---- trace statistics -------------------------------------------------------- */

/* Regression slope of F on Fneu (each T frames) over their slow changes:
 * both are averaged in bins of b frames (about a second, so that the photon
 * noise of Fneu, which would bias the slope towards 0, is small against the
 * neuropil's own changes), a running mean of w bins (the high-pass window)
 * is subtracted to remove bleaching and drift, whose multiplicative effect
 * would give every ROI the slope of its brightness ratio, and the slope is
 * cov(F, Fneu) / var(Fneu).  NaN for fewer than 8 bins, a flat neuropil
 * or non-finite frames.  ws: 4 (T / b + 1) doubles. */
static double np_slope(const float *F, const float *Fn, size_t T, size_t b, size_t w, double *ws)
{
    size_t nb = T / b;
    if (nb < 8) return NAN;
    double *bf = ws, *bn = ws + nb, *cf = ws + 2 * nb, *cn = ws + 3 * nb + 1;
    for (size_t j = 0; j < nb; j++) {
        double sf = 0, sn = 0;
        for (size_t t = j * b; t < (j + 1) * b; t++) { sf += F[t]; sn += Fn[t]; }
        if (!isfinite(sf) || !isfinite(sn)) return NAN;
        bf[j] = sf / (double)b;
        bn[j] = sn / (double)b;
    }
    cf[0] = cn[0] = 0;
    for (size_t j = 0; j < nb; j++) { cf[j + 1] = cf[j] + bf[j]; cn[j + 1] = cn[j] + bn[j]; }
    size_t half = w / 2;
    double sxy = 0, sxx = 0;
    for (size_t j = 0; j < nb; j++) {
        size_t lo = j > half ? j - half : 0, hi = CAIMG_MIN(nb, j + half + 1);
        double m = (double)(hi - lo);
        double df = bf[j] - (cf[hi] - cf[lo]) / m, dn = bn[j] - (cn[hi] - cn[lo]) / m;
        sxy += df * dn;
        sxx += dn * dn;
    }
    return sxx > 0 ? sxy / sxx : NAN;
}

/* The resting light of F (T frames) that does not move with the neuropil
 * Fn around it, in units of the neuropil's brightness: with b = mean - off
 * (off the detector offset), b(F) / b(Fn) - k for the slope k of F on Fn
 * (np_slope).  A patch of neuropil is the neuropil's pattern times its
 * activity, all of its light moves with the annulus's and the excess is
 * about 0; a soma displaces neuropil and adds its own resting light, which
 * does not follow the neuropil, so its excess is its brightness over the
 * neuropil's.  NaN when k is, for non-finite frames or for an annulus no
 * brighter than the offset. */
static double np_excess(const float *F, const float *Fn, size_t T, double off, double k)
{
    if (!isfinite(k) || T == 0) return NAN;
    double sf = 0, sn = 0;
    for (size_t t = 0; t < T; t++) { sf += F[t]; sn += Fn[t]; }
    double bf = sf / (double)T - off, bn = sn / (double)T - off;
    if (!isfinite(bf) || !isfinite(bn) || !(bn > 0)) return NAN;
    return bf / bn - k;
}

/* skew and snr of one trace g[T] (overwritten as scratch). */
static void trace_stats(float *g, size_t T, float *scratch, double *skew, double *snr)
{
    size_t n = 0;
    double s1 = 0;
    for (size_t t = 0; t < T; t++)
        if (isfinite(g[t])) { g[n++] = g[t]; s1 += g[t]; }
    *skew = *snr = NAN;
    if (n < 4) return;
    double mu = s1 / (double)n, m2 = 0, m3 = 0;
    for (size_t t = 0; t < n; t++) {
        double d = g[t] - mu;
        m2 += d * d;
        m3 += d * d * d;
    }
    m2 /= (double)n;
    m3 /= (double)n;
    *skew = m2 > 0 ? m3 / pow(m2, 1.5) : 0;
    /* Noise from frame-to-frame changes, robustly (MAD), so that transients
     * do not count as noise. */
    for (size_t t = 1; t < n; t++) scratch[t - 1] = g[t] - g[t - 1];
    float md = roi_median(scratch, n - 1);
    for (size_t t = 0; t + 1 < n; t++) scratch[t] = fabsf(scratch[t] - md);
    double sigma = 1.4826 * roi_median(scratch, n - 1) / sqrt(2.0);
    memcpy(scratch, g, n * sizeof *g);
    double p50 = roi_select(scratch, n, n / 2);
    double p99 = roi_select(scratch, n, (size_t)(0.99 * (double)(n - 1)));
    *snr = sigma > 0 ? (p99 - p50) / sigma : 0;
}

/* The trace statistics of every ROI from the traces in f; and, when
 * `classify`, the cell probability and flag from them. */
static int stats_compute(caimg_roiset *r, caimg_h5 *f, const caimg_roi_params *p, int classify)
{
    size_t N = r->n;
    if (N == 0) return 0;
    int rank;
    size_t d[CAIMG_H5_MAXRANK];
    int rc = caimg_h5_dims(f, "/roi/F", &rank, d);
    if (rc) return rc;
    size_t T = d[1];
    /* Rows in blocks of about 64 MB, statistics in parallel within a block. */
    size_t rows = CAIMG_MAX(1, ((size_t)16 << 20) / (T ? T : 1));
    rows = CAIMG_MIN(rows, N);
    size_t nbuf = CAIMG_MAX(1, rows * T);
    float *F = caimg_malloc(nbuf, sizeof *F, "traces");
    float *Fn = caimg_malloc(nbuf, sizeof *Fn, "traces");
    int nt = caimg_nthreads();
    float *scr = caimg_malloc((size_t)nt * (T ? T : 1), sizeof *scr, "trace statistics");
    /* np_slope: bins of about a second, high-pass window as for detection. */
    double fs = p->fs > 0 ? p->fs : 30;
    size_t sb = (size_t)CAIMG_MAX(1.0, floor(fs + 0.5));
    size_t sw = (size_t)CAIMG_MAX(3.0, floor((p->highpass > 0 ? p->highpass : 30) + 0.5));
    size_t nws = 4 * (T / sb + 1);
    double *dws = caimg_malloc((size_t)nt * nws, sizeof *dws, "trace statistics");
    if (!F || !Fn || !scr || !dws) rc = CAIMG_ENOMEM;
    for (size_t i0 = 0; !rc && i0 < N; i0 += rows) {
        size_t nr = CAIMG_MIN(rows, N - i0);
        rc = caimg_h5_read_rows(f, "/roi/F", CAIMG_DT_F32, i0, nr, F);
        if (!rc) rc = caimg_h5_read_rows(f, "/roi/Fneu", CAIMG_DT_F32, i0, nr, Fn);
        if (rc) break;
#pragma omp parallel for schedule(dynamic, 4)
        for (size_t k = 0; k < nr; k++) {
            int tid = 0;
#ifdef _OPENMP
            tid = omp_get_thread_num();
#endif
            float *g = F + k * T;
            const float *gn = Fn + k * T;
            double *st = r->stats + (i0 + k) * CAIMG_ROI_NSTATS;
            st[CAIMG_ROI_NP_SLOPE] = np_slope(g, gn, T, sb, sw, dws + (size_t)tid * nws);
            /* Fewer bins than one high-pass window: np_slope is too noisy
             * for np_excess, which carries all of its error. */
            st[CAIMG_ROI_NP_EXCESS] =
                T / sb >= sw ? np_excess(g, gn, T, r->offset, st[CAIMG_ROI_NP_SLOPE]) : NAN;
            for (size_t t = 0; t < T; t++)
                g[t] = isfinite(gn[t]) ? g[t] - (float)p->np_coeff * gn[t] : g[t];
            trace_stats(g, T, scr + (size_t)tid * T, &st[CAIMG_ROI_SKEW], &st[CAIMG_ROI_SNR]);
        }
    }
    free(F);
    free(Fn);
    free(scr);
    free(dws);
    if (rc || !classify) return rc;
    double prior = caimg_roi_field_prior(r->stats, N, p->diameter);
    for (size_t i = 0; i < N; i++) {
        double pr = caimg_roi_cell_probability(r, i, p->diameter, prior);
        r->stats[i * CAIMG_ROI_NSTATS + CAIMG_ROI_PROB] = pr;
        /* User masks are cells by the user's say; their probability is
         * only information. */
        r->iscell[i] = pr >= p->cell_threshold || r->stats[i * CAIMG_ROI_NSTATS + CAIMG_ROI_SOURCE] == 0;
    }
    return 0;
}

int caimg_roi_stats_compute(caimg_roiset *r, caimg_h5 *f, const caimg_roi_params *p)
{
    return stats_compute(r, f, p, 1);
}

int caimg_roi_traces(caimg_movie *m, caimg_roiset *r, caimg_h5 *out, const caimg_roi_params *p)
{
    int rc = caimg_roi_extract(m, r, out, p->fs);
    if (!rc) rc = stats_compute(r, out, p, 1);
    if (rc) return rc;
    /* The overlap rule among cells only: a pixel a cell shares with
     * rejected ROIs alone is the cell's again.  A rejected candidate on top
     * of a cell (a second fit of the same soma, a piece of it) says nothing
     * about whose fluorescence the pixel holds, and leaving its pixels out
     * of the cell's trace would only make that trace worse.  The cells'
     * traces are then extracted again and their statistics recomputed; the
     * classification, made from the first traces, stands (revising it
     * would change which pixels count as shared, and so on); only the
     * traces of the cells whose flags changed are extracted again.  Before
     * that, a cell lying mostly inside a larger one (a piece of the soma
     * outlined from its activity beside the whole soma outlined in the mean
     * image) is unflagged: as a second cell it would be a false one, and
     * it would take its pixels out of the real cell's trace. */
    size_t changed = 0;
    uint8_t *which = caimg_calloc(r->n ? r->n : 1, 1, "overlap flags");
    if (!which) return CAIMG_ENOMEM;
    rc = roi_cells_contained(r);
    if (!rc) rc = roi_overlap_cells(r, which, &changed);
    if (!rc && changed) {
        rc = roi_extract_only(m, r, out, p->fs, which);
        if (!rc) rc = stats_compute(r, out, p, 0);
    }
    free(which);
    return rc;
}
