/* deconv_accuracy.c -- spike correlation of caimg's deconvolution on
 * simulated GCaMP6f-like traces against SNR, side by side with a
 * Suite2p-style reference run in the same program.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Usage: deconv_accuracy [-n NEURONS] [-T FRAMES] [-f FS] [-r RATE] [--seed N]
 *
 * The reference is what Suite2p does with its defaults: maximin baseline
 * (sigma 10 frames, 60 s) subtracted, then OASIS AR(1) with no sparsity
 * penalty and the TRUE decay time (Suite2p is given tau).  caimg estimates
 * the decay per neuron.
 */
#include <config.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caimg/caimg.h"
#include "../tests/simtrace.h"

typedef struct {
    const char *name;
    int p;
    caimg_deconv_method method;
    double smin_z;
    int refine;
    int given_tau;
} variant;

int main(int argc, char **argv)
{
    size_t N = 20, T = 9000;
    double fs = 30, rate = 1.0, tau_r = 0.04, tau_d = 0.5;
    unsigned long long seed = 1;
    static const struct option lo[] = {{"seed", required_argument, NULL, 's'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "n:T:f:r:d:", lo, NULL)) != -1) {
        switch (o) {
        case 'n': N = strtoul(optarg, NULL, 10); break;
        case 'T': T = strtoul(optarg, NULL, 10); break;
        case 'f': fs = atof(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'd': tau_d = atof(optarg); break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        default: return 2;
        }
    }
    const double snrs[] = {2, 3, 4, 5, 6, 8, 10};
    const size_t nsnr = sizeof snrs / sizeof *snrs;
    const variant vars[] = {
        {"caimg default", 2, CAIMG_DECONV_THRESHOLDED, 3, 1, 0},
        {"caimg auto", 2, CAIMG_DECONV_AUTO, 2, 1, 0},
        {"caimg AR(1)", 1, CAIMG_DECONV_THRESHOLDED, 3, 1, 0},
        {"caimg true tau", 2, CAIMG_DECONV_THRESHOLDED, 3, 0, 1},
    };
    const size_t nv = sizeof vars / sizeof *vars;
    double *F = malloc(T * sizeof *F), *c = malloc(T * sizeof *c), *s = malloc(T * sizeof *s);
    double *tf = malloc(T * sizeof *tf), *F0 = malloc(T * sizeof *F0), *Fd = malloc(T * sizeof *Fd);
    for (size_t i = 0; i < T; i++) tf[i] = (double)i / fs;
    caimg_baseline_params bp;
    caimg_baseline_params_init(&bp, caimg_baseline_maximin);
    caimg_baseline *base = caimg_baseline_alloc(caimg_baseline_maximin, &bp, fs, T);
    /* The Suite2p-style reference plan: fixed b = 0, no penalty. */
    caimg_deconv_params rp;
    caimg_deconv_params_init(&rp, fs);
    rp.baseline = CAIMG_DECONV_B_FIXED;
    caimg_deconv_plan *rplan = caimg_deconv_plan_create(&rp, T);
    caimg_deconv_ws *rws = caimg_deconv_ws_alloc(rplan);
    caimg_deconv_plan *plans[8];
    caimg_deconv_ws *wss[8];
    for (size_t v = 0; v < nv; v++) {
        caimg_deconv_params pp;
        caimg_deconv_params_init(&pp, fs);
        pp.p = vars[v].p;
        pp.method = vars[v].method;
        pp.smin_z = vars[v].smin_z;
        pp.lambda_z = vars[v].smin_z;
        pp.refine_g = vars[v].refine;
        if (vars[v].given_tau) {
            pp.tau_decay = tau_d;
            pp.tau_rise = vars[v].p == 2 ? tau_r : 0;
        }
        plans[v] = caimg_deconv_plan_create(&pp, T);
        if (!plans[v]) {
            fprintf(stderr, "%s\n", caimg_errmsg());
            return 1;
        }
        wss[v] = caimg_deconv_ws_alloc(plans[v]);
    }
    printf("GCaMP6f-like: tau_r %.3g s, tau_d %.3g s, %g Hz, %zu frames, %g Hz Poisson, %zu "
           "neurons per SNR, seed %llu\n", tau_r, tau_d, fs, T, rate, N, seed);
    printf("%-6s %12s", "SNR", "suite2p-ref");
    for (size_t v = 0; v < nv; v++) printf(" %18s", vars[v].name);
    printf("   decay (default) median\n");
    double tot_ref = 0, tot[8] = {0};
    for (size_t k = 0; k < nsnr; k++) {
        double sum_ref = 0, sum[8] = {0};
        double taus[1024];
        sim_rng rng = {seed * 1000003ULL + k};
        for (size_t n = 0; n < N; n++) {
            sim_params sp = {fs, rate, tau_r, tau_d, 1.0, 1.0 / snrs[k], 0.2};
            double *u = NULL;
            size_t nu = 0;
            sim_trace(&sp, T, &rng, F, &u, &nu);
            /* Reference. */
            caimg_baseline_compute(base, F, F0, NULL);
            for (size_t i = 0; i < T; i++) Fd[i] = F[i] - F0[i];
            double g[2] = {exp(-1 / (tau_d * fs)), 0}, b = 0;
            caimg_oasis_solve(rplan, rws, Fd, T, 1, g, CAIMG_DECONV_PENALIZED, 0, 0, 0, &b,
                              NULL, c, s);
            sum_ref += sim_score(s, tf, T, u, nu);
            for (size_t v = 0; v < nv; v++) {
                caimg_deconv_info info;
                caimg_deconv_execute(plans[v], wss[v], F, c, s, &info, n);
                sum[v] += sim_score(s, tf, T, u, nu);
                if (v == 0 && n < 1024) caimg_ar_to_tau(info.g, 2, fs, &taus[n], NULL);
            }
            free(u);
        }
        /* median of taus */
        for (size_t i = 1; i < N && i < 1024; i++)
            for (size_t j = i; j > 0 && taus[j - 1] > taus[j]; j--) {
                double t = taus[j]; taus[j] = taus[j - 1]; taus[j - 1] = t;
            }
        printf("%-6g %12.3f", snrs[k], sum_ref / N);
        for (size_t v = 0; v < nv; v++) printf(" %18.3f", sum[v] / N);
        printf("   %.3f\n", taus[N / 2]);
        tot_ref += sum_ref / N;
        for (size_t v = 0; v < nv; v++) tot[v] += sum[v] / N;
    }
    printf("%-6s %12.3f", "mean", tot_ref / nsnr);
    for (size_t v = 0; v < nv; v++) printf(" %18.3f", tot[v] / nsnr);
    printf("\n");
    return 0;
}
