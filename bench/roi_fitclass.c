/* roi_fitclass.c -- fit the weights of caimg roi's cell classifier: logistic
 * regression by iteratively reweighted least squares (Newton's method) with
 * a small ridge penalty, on TSV files written by tests/roieval --features
 * (first column 1 = the ROI matches a true soma, then the features of
 * caimg_roi_classifier_features()).  Prints the weights as the C arrays of
 * src/roi_stats.c and the fit's accuracy.  Run by bench/roi_classifier.sh.
 *
 *   bench/roi_fitclass FEATURES.tsv...
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

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

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: roi_fitclass FEATURES.tsv...\n");
        return 2;
    }
    size_t n = 0, cap = 0;
    int p = 0;
    double *X = NULL, *y = NULL;
    for (int a = 1; a < argc; a++) {
        caimg_table *t = caimg_table_read(argv[a]);
        if (!t) { fprintf(stderr, "roi_fitclass: %s\n", caimg_errmsg()); return 1; }
        if (p == 0) p = (int)t->ncols;   /* label + features */
        if ((int)t->ncols != p || p - 1 + 1 > MAXP) { fprintf(stderr, "roi_fitclass: %s: columns\n", argv[a]); return 1; }
        if (n + t->nrows > cap) {
            cap = 2 * (n + t->nrows);
            X = realloc(X, cap * (size_t)p * sizeof *X);
            y = realloc(y, cap * sizeof *y);
        }
        for (size_t i = 0; i < t->nrows; i++) {
            y[n] = t->data[i * t->ncols];
            X[n * (size_t)p] = 1;   /* intercept */
            for (int k = 1; k < p; k++) X[n * (size_t)p + k] = t->data[i * t->ncols + (size_t)k];
            n++;
        }
        caimg_table_free(t);
    }
    double w[MAXP] = {0}, A[MAXP * MAXP], g[MAXP];
    const double ridge = 1e-2;
    for (int it = 0; it < 50; it++) {
        memset(A, 0, sizeof A);
        memset(g, 0, sizeof g);
        for (size_t i = 0; i < n; i++) {
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
            if (k) { A[k * p + k] += ridge * (double)n; g[k] -= ridge * (double)n * w[k]; }
        }
        if (solve(A, g, p)) { fprintf(stderr, "roi_fitclass: singular system\n"); return 1; }
        double step = 0;
        for (int k = 0; k < p; k++) { w[k] += g[k]; step += fabs(g[k]); }
        if (step < 1e-8) break;
    }
    size_t tp = 0, fp = 0, fn = 0, tn = 0;
    for (size_t i = 0; i < n; i++) {
        const double *x = X + i * (size_t)p;
        double z = 0;
        for (int k = 0; k < p; k++) z += w[k] * x[k];
        int pred = z >= 0, lab = y[i] > 0.5;
        tp += pred && lab; fp += pred && !lab; fn += !pred && lab; tn += !pred && !lab;
    }
    printf("/* %zu ROIs (%zu cells); at p >= 0.5: %zu true and %zu false positives, %zu missed */\n",
           n, tp + fn, tp, fp, fn);
    printf("static const double W0 = %.4f;\n", w[0]);
    printf("static const double W[CAIMG_ROI_NFEATURES] = {");
    for (int k = 1; k < p; k++) printf("%s%.4f", k > 1 ? ", " : "", w[k]);
    printf("};\n");
    free(X);
    free(y);
    return 0;
}
