/* ann_eval.c -- held-out evaluation of response predictions.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * FEVE follows Cadena et al. (2019, PLoS Comput Biol): the part of a
 * neuron's response variance that is not trial-to-trial noise is the most
 * any stimulus-driven model can explain, and FEVE is the fraction of it the
 * model explains.  It is only meaningful for neurons with a reasonable
 * explainable variance, hence the threshold.
 */
#include <config.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "caimg/ann.h"
#include "internal.h"

double caimg_ann_corr(const float *a, size_t sa, const float *b, size_t sb, size_t n)
{
    double ma = 0.0, mb = 0.0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        double x = a[i * sa], y = b[i * sb];
        if (isnan(x) || isnan(y)) continue;
        ma += x;
        mb += y;
        k++;
    }
    if (k < 2) return NAN;
    ma /= (double)k;
    mb /= (double)k;
    double sab = 0.0, saa = 0.0, sbb = 0.0;
    for (size_t i = 0; i < n; i++) {
        double x = a[i * sa], y = b[i * sb];
        if (isnan(x) || isnan(y)) continue;
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    /* A constant side (to rounding) has no correlation to speak of. */
    if (!(saa > 1e-24 * (double)k) || !(sbb > 1e-24 * (double)k)) return NAN;
    return sab / sqrt(saa * sbb);
}

double caimg_ann_mean_corr(const float *p, const float *y, size_t n, size_t N)
{
    double s = 0.0;
    size_t k = 0;
    for (size_t j = 0; j < N; j++) {
        double r = caimg_ann_corr(p + j, N, y + j, N, n);
        if (!isnan(r)) { s += r; k++; }
    }
    return k ? s / (double)k : NAN;
}

void caimg_ann_eval_clear(caimg_ann_eval *ev)
{
    if (!ev) return;
    free(ev->corr_avg);
    free(ev->corr_trial);
    free(ev->ev_frac);
    free(ev->feve);
    memset(ev, 0, sizeof *ev);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double nan_mean(const double *v, size_t n, size_t *count)
{
    double s = 0.0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(v[i])) { s += v[i]; k++; }
    *count = k;
    return k ? s / (double)k : NAN;
}

int caimg_ann_evaluate(const float *pred, size_t nstim, size_t nneur,
                       const float *resp, const size_t *stim, size_t npres,
                       double ev_threshold, caimg_ann_eval *ev)
{
    memset(ev, 0, sizeof *ev);
    if (nneur == 0 || nstim == 0)
        return caimg_error(CAIMG_EINVAL, "evaluation needs at least one stimulus and one neuron");
    for (size_t p = 0; p < npres; p++)
        if (stim[p] >= nstim)
            return caimg_error(CAIMG_EINVAL, "presentation %zu shows stimulus %zu, but only %zu "
                               "stimuli were predicted", p, stim[p], nstim);
    ev->nneurons = nneur;
    ev->corr_avg = caimg_malloc(nneur, sizeof(double), "evaluation");
    ev->corr_trial = caimg_malloc(nneur, sizeof(double), "evaluation");
    ev->ev_frac = caimg_malloc(nneur, sizeof(double), "evaluation");
    ev->feve = caimg_malloc(nneur, sizeof(double), "evaluation");
    double *sum = caimg_malloc(nstim, sizeof *sum, "evaluation");
    double *sum2 = caimg_malloc(nstim, sizeof *sum2, "evaluation");
    size_t *cnt = caimg_malloc(nstim, sizeof *cnt, "evaluation");
    float *avg = caimg_malloc(nstim, sizeof *avg, "evaluation");
    float *pp = caimg_malloc(npres ? npres : 1, sizeof *pp, "evaluation");
    float *rr = caimg_malloc(npres ? npres : 1, sizeof *rr, "evaluation");
    double *tmp = caimg_malloc(nneur, sizeof *tmp, "evaluation");
    float *pj = caimg_malloc(nstim, sizeof *pj, "evaluation");
    if (!ev->corr_avg || !ev->corr_trial || !ev->ev_frac || !ev->feve || !sum || !sum2 ||
        !cnt || !avg || !pp || !rr || !tmp || !pj) {
        caimg_ann_eval_clear(ev);
        free(sum); free(sum2); free(cnt); free(avg); free(pp); free(rr); free(tmp); free(pj);
        return CAIMG_ENOMEM;
    }
    for (size_t j = 0; j < nneur; j++) {
        memset(sum, 0, nstim * sizeof *sum);
        memset(sum2, 0, nstim * sizeof *sum2);
        memset(cnt, 0, nstim * sizeof *cnt);
        double tot = 0.0, tot2 = 0.0, mse = 0.0;
        size_t ntr = 0;
        for (size_t p = 0; p < npres; p++) {
            float r = resp[p * nneur + j];
            size_t s = stim[p];
            pp[p] = pred[s * nneur + j];
            rr[p] = r;
            if (isnan(r)) continue;
            sum[s] += r;
            sum2[s] += (double)r * r;
            cnt[s]++;
            tot += r;
            tot2 += (double)r * r;
            double d = (double)r - pp[p];
            mse += d * d;
            ntr++;
        }
        int repeats = 0;
        double noise = 0.0;
        size_t nrep = 0;
        for (size_t s = 0; s < nstim; s++) {
            avg[s] = cnt[s] ? (float)(sum[s] / (double)cnt[s]) : NAN;
            if (cnt[s] >= 2) {
                double mu = sum[s] / (double)cnt[s];
                noise += (sum2[s] - (double)cnt[s] * mu * mu) / (double)(cnt[s] - 1);
                nrep++;
                repeats = 1;
            }
        }
        /* Predictions for stimuli that were never shown do not count. */
        for (size_t s = 0; s < nstim; s++) pj[s] = cnt[s] ? pred[s * nneur + j] : NAN;
        ev->corr_avg[j] = caimg_ann_corr(pj, 1, avg, 1, nstim);
        ev->corr_trial[j] = repeats ? caimg_ann_corr(pp, 1, rr, 1, npres) : NAN;
        ev->ev_frac[j] = NAN;
        ev->feve[j] = NAN;
        if (repeats && ntr >= 2) {
            double mu = tot / (double)ntr;
            double var = (tot2 - (double)ntr * mu * mu) / (double)(ntr - 1);
            noise /= (double)nrep;
            mse /= (double)ntr;
            if (var > 0) {
                ev->ev_frac[j] = (var - noise) / var;
                if (ev->ev_frac[j] >= ev_threshold && var > noise)
                    ev->feve[j] = 1.0 - (mse - noise) / (var - noise);
            }
        }
    }
    ev->mean_corr_avg = nan_mean(ev->corr_avg, nneur, &ev->n_corr_avg);
    ev->mean_corr_trial = nan_mean(ev->corr_trial, nneur, &ev->n_corr_trial);
    ev->mean_feve = nan_mean(ev->feve, nneur, &ev->n_feve);
    size_t k = 0;
    for (size_t j = 0; j < nneur; j++)
        if (!isnan(ev->corr_avg[j])) tmp[k++] = ev->corr_avg[j];
    if (k) {
        qsort(tmp, k, sizeof *tmp, cmp_double);
        ev->median_corr_avg = k % 2 ? tmp[k / 2] : 0.5 * (tmp[k / 2 - 1] + tmp[k / 2]);
    } else {
        ev->median_corr_avg = NAN;
    }
    free(sum); free(sum2); free(cnt); free(avg); free(pp); free(rr); free(tmp); free(pj);
    return 0;
}
