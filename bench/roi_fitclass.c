/* roi_fitclass.c -- fit the weights of caimg roi's cell classifier: logistic
 * regression by iteratively reweighted least squares (Newton's method) with
 * a small ridge penalty, on TSV files written by tests/roieval --features
 * (first column 1 = the ROI matches a true soma, then the features of
 * caimg_roi_classifier_features()).  Prints the weights as the C arrays of
 * src/roi_stats.c, the fit's accuracy and, when the files come from more
 * than one seed (the number that ends a file's name, as in hard_901.tsv),
 * its accuracy cross-validated by leaving out one seed at a time: the
 * weights fitted to the other seeds' ROIs score the held-out ones (cells
 * flagged at p >= 0.4, the default --cell-threshold, and the mean
 * log-loss).  With --no-excess the two np_excess features and the field's
 * prior are set to 0, for the weights used when np_excess is unknown.
 * --ridge R: the penalty on the squared weights (not the intercept), per
 * ROI [1e-2].  Run by bench/roi_classifier.sh.
 *
 *   bench/roi_fitclass [--no-excess] [--ridge R] FEATURES.tsv...
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caimg/caimg.h"

#define MAXP 32

/* Solve A x = b (n x n, symmetric positive definite) by Cholesky. */
static int solve(double *A, double *b, int n)
{
    for (int j = 0; j < n; j++) {
        double s = A[j * n + j];
        for (int k = 0; k < j; k++) s -= A[j * n + k] * A[j * n + k];
        if (s <= 0) return -1;
        A[j * n + j] = sqrt(s);
        for (int i = j + 1; i < n; i++) {
            double t = A[i * n + j];
            for (int k = 0; k < j; k++) t -= A[i * n + k] * A[j * n + k];
            A[i * n + j] = t / A[j * n + j];
        }
    }
    for (int i = 0; i < n; i++) {
        double t = b[i];
        for (int k = 0; k < i; k++) t -= A[i * n + k] * b[k];
        b[i] = t / A[i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) {
        double t = b[i];
        for (int k = i + 1; k < n; k++) t -= A[k * n + i] * b[k];
        b[i] = t / A[i * n + i];
    }
    return 0;
}

/* The seed of a features file: the number that ends its name. */
static long file_seed(const char *path)
{
    const char *e = strrchr(path, '.');
    if (!e) e = path + strlen(path);
    const char *b = e;
    while (b > path && b[-1] >= '0' && b[-1] <= '9') b--;
    return b < e ? strtol(b, NULL, 10) : -1;
}

/* Maximum-likelihood weights w[p] (ridge on all but the intercept) from the
 * n rows of X[n][p], labels y, leaving out the rows whose fold is `skip`. */
static int fit(const double *X, const double *y, const long *fold, size_t n, int p, long skip,
               double ridge, double *w)
{
    double A[MAXP * MAXP], g[MAXP];
    size_t m = 0;
    for (size_t i = 0; i < n; i++) m += fold[i] != skip;
    memset(w, 0, MAXP * sizeof *w);
    for (int it = 0; it < 50; it++) {
        memset(A, 0, sizeof A);
        memset(g, 0, sizeof g);
        for (size_t i = 0; i < n; i++) {
            if (fold[i] == skip) continue;
            const double *x = X + i * (size_t)p;
            double z = 0;
            for (int k = 0; k < p; k++) z += w[k] * x[k];
            double mu = 1 / (1 + exp(-z)), v = mu * (1 - mu) + 1e-9;
            for (int k = 0; k < p; k++) {
                g[k] += (y[i] - mu) * x[k];
                for (int l = 0; l <= k; l++) A[k * p + l] += v * x[k] * x[l];
            }
        }
        for (int k = 0; k < p; k++) {
            for (int l = 0; l < k; l++) A[l * p + k] = A[k * p + l];
            if (k) { A[k * p + k] += ridge * (double)m; g[k] -= ridge * (double)m * w[k]; }
        }
        if (solve(A, g, p)) { fprintf(stderr, "roi_fitclass: singular system\n"); return 1; }
        double step = 0;
        for (int k = 0; k < p; k++) { w[k] += g[k]; step += fabs(g[k]); }
        if (step < 1e-8) break;
    }
    return 0;
}

static double prob(const double *w, const double *x, int p)
{
    double z = 0;
    for (int k = 0; k < p; k++) z += w[k] * x[k];
    return 1 / (1 + exp(-z));
}

int main(int argc, char **argv)
{
    int a = 1, noexcess = 0;
    double ridge = 1e-2;
    for (;;) {
        if (argc > a && !strcmp(argv[a], "--no-excess")) { noexcess = 1; a++; continue; }
        if (argc > a + 1 && !strcmp(argv[a], "--ridge")) { ridge = atof(argv[a + 1]); a += 2; continue; }
        break;
    }
    if (argc <= a || !(ridge >= 0)) {
        fprintf(stderr, "usage: roi_fitclass [--no-excess] [--ridge R] FEATURES.tsv...\n");
        return 2;
    }
    size_t n = 0, cap = 0;
    int p = 0;
    double *X = NULL, *y = NULL;
    long *fold = NULL;
    for (; a < argc; a++) {
        caimg_table *t = caimg_table_read(argv[a]);
        if (!t) { fprintf(stderr, "roi_fitclass: %s\n", caimg_errmsg()); return 1; }
        if (p == 0) p = (int)t->ncols;   /* label + features */
        if ((int)t->ncols != p || p - 1 + 1 > MAXP) { fprintf(stderr, "roi_fitclass: %s: columns\n", argv[a]); return 1; }
        if (n + t->nrows > cap) {
            cap = 2 * (n + t->nrows);
            X = realloc(X, cap * (size_t)p * sizeof *X);
            y = realloc(y, cap * sizeof *y);
            fold = realloc(fold, cap * sizeof *fold);
            if (!X || !y || !fold) { fprintf(stderr, "roi_fitclass: out of memory\n"); return 1; }
        }
        long seed = file_seed(argv[a]);
        for (size_t i = 0; i < t->nrows; i++) {
            y[n] = t->data[i * t->ncols];
            X[n * (size_t)p] = 1;   /* intercept */
            for (int k = 1; k < p; k++) X[n * (size_t)p + k] = t->data[i * t->ncols + (size_t)k];
            /* Features 13 and 14 (after the intercept): np_excess and its
             * product with contrast; and 16, the field's prior, which
             * --no-excess leaves out too (see src/roi_stats.c). */
            if (noexcess && p > 14) X[n * (size_t)p + 13] = X[n * (size_t)p + 14] = 0;
            if (noexcess && p > 16) X[n * (size_t)p + 16] = 0;
            fold[n] = seed;
            n++;
        }
        caimg_table_free(t);
    }
    double w[MAXP];
    /* Leave one seed out. */
    size_t ctp = 0, cfp = 0, cfn = 0, nfold = 0;
    double ll = 0;
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++) seen = fold[j] == fold[i];
        if (seen) continue;
        nfold++;
        if (fit(X, y, fold, n, p, fold[i], ridge, w)) return 1;
        for (size_t j = 0; j < n; j++) {
            if (fold[j] != fold[i]) continue;
            double pr = prob(w, X + j * (size_t)p, p);
            int lab = y[j] > 0.5, flag = pr >= 0.4;
            ctp += flag && lab; cfp += flag && !lab; cfn += !flag && lab;
            ll -= log(lab ? pr + 1e-12 : 1 - pr + 1e-12);
        }
    }
    if (fit(X, y, fold, n, p, LONG_MIN, ridge, w)) return 1;
    size_t tp = 0, fp = 0, fn = 0;
    for (size_t i = 0; i < n; i++) {
        int pred = prob(w, X + i * (size_t)p, p) >= 0.5, lab = y[i] > 0.5;
        tp += pred && lab; fp += pred && !lab; fn += !pred && lab;
    }
    printf("/* %zu ROIs (%zu cells); at p >= 0.5: %zu true and %zu false positives, %zu missed */\n",
           n, tp + fn, tp, fp, fn);
    if (nfold > 1)
        printf("/* leaving one seed out (%zu seeds), at p >= 0.4: %zu true and %zu false positives, "
               "%zu missed; log-loss %.4f */\n", nfold, ctp, cfp, cfn, ll / (double)n);
    const char *sfx = noexcess ? "_NOEXCESS" : "";
    printf("static const double W0%s = %.4f;\n", sfx, w[0]);
    printf("static const double W%s[CAIMG_ROI_NFEATURES] = {", sfx);
    for (int k = 1; k < p; k++) printf("%s%.4f", k > 1 ? ", " : "", w[k]);
    printf("};\n");
    free(X);
    free(y);
    free(fold);
    return 0;
}
