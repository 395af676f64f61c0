/* deconv_speed.c -- deconvolution throughput: traces per second for N
 * traces of T frames on a given number of threads, against a reference
 * measured in the same run.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Usage: deconv_speed [-n TRACES] [-T FRAMES] [-@ THREADS] [-r REPEATS]
 *
 * The reference is the job Suite2p's deconvolution does (its numba OASIS:
 * AR(1), decay given, no sparsity penalty, no baseline), written here
 * plainly as Suite2p writes it: one array per pool field, a division per
 * merge, the calcium rebuilt with pow().  caimg is timed on the same job
 * through its full per-trace pipeline (which also estimates the noise and
 * the spike amplitude), and on its default pipeline (AR(2), kinetics,
 * noise and baseline estimated per trace).  Wall-clock times, best of the
 * repeats, outputs already touched.  On a machine shared with other work
 * the wall clock understates what the threads could do, so the rate from
 * the process's CPU time (traces per CPU second times the threads) is
 * printed too: it is what an otherwise idle machine would give.
 */
#include <config.h>

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "caimg/caimg.h"
#include "../tests/simtrace.h"

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Suite2p's OASIS (suite2p/extraction/dcnv.py, oasis_trace), plainly. */
static void ref_oasis(const float *F, size_t T, double g, double *v, double *w, long *t, long *l,
                      float *s)
{
    long it = 0, ip = 0;
    for (; it < (long)T; it++, ip++) {
        v[ip] = F[it];
        w[ip] = 1;
        t[ip] = it;
        l[ip] = 1;
        while (ip > 0 && v[ip - 1] * pow(g, (double)l[ip - 1]) > v[ip]) {
            double f1 = pow(g, (double)l[ip - 1]), f2 = pow(g, 2.0 * (double)l[ip - 1]);
            double wnew = w[ip - 1] + w[ip] * f2;
            v[ip - 1] = (v[ip - 1] * w[ip - 1] + v[ip] * w[ip] * f1) / wnew;
            w[ip - 1] = wnew;
            l[ip - 1] += l[ip];
            ip--;
        }
    }
    /* Rebuild c into s, then s = c[t] - g c[t-1]. */
    for (long j = 0; j < ip; j++) {
        double vv = v[j] > 0 ? v[j] : 0;
        for (long k = 0; k < l[j]; k++) s[t[j] + k] = (float)(vv * pow(g, (double)k));
    }
    for (long k = (long)T - 1; k > 0; k--) {
        float d = s[k] - (float)g * s[k - 1];
        s[k] = d > 0 ? d : 0;
    }
}

int main(int argc, char **argv)
{
    size_t N = 1000, T = 10000;
    int threads = 2, reps = 3, o;
    while ((o = getopt(argc, argv, "n:T:@:r:")) != -1) {
        switch (o) {
        case 'n': N = strtoul(optarg, NULL, 10); break;
        case 'T': T = strtoul(optarg, NULL, 10); break;
        case '@': threads = atoi(optarg); break;
        case 'r': reps = atoi(optarg); break;
        default: return 2;
        }
    }
    const double fs = 30, tau = 0.5;
    float *Y = malloc(N * T * sizeof *Y), *C = malloc(N * T * sizeof *C);
    float *S = malloc(N * T * sizeof *S), *K = malloc(N * T * sizeof *K);
    if (!Y || !C || !S || !K) return 1;
    /* 64 distinct simulated GCaMP6f-like traces (SNR 4), repeated. */
    double *F = malloc(T * sizeof *F);
    for (size_t i = 0; i < N; i++) {
        if (i >= 64) {
            memcpy(Y + i * T, Y + (i % 64) * T, T * sizeof *Y);
            continue;
        }
        sim_rng rng = {1234 + i};
        sim_params sp = {fs, 1.0, 0.04, tau, 1.0, 0.25, 0.0};
        double *u = NULL;
        size_t nu = 0;
        sim_trace(&sp, T, &rng, F, &u, &nu);
        free(u);
        for (size_t t = 0; t < T; t++) Y[i * T + t] = (float)F[t];
    }
    memset(C, 0, N * T * sizeof *C);
    memset(S, 0, N * T * sizeof *S);
    memset(K, 0, N * T * sizeof *K);
    printf("%zu traces x %zu frames, %d threads, best of %d\n", N, T, threads, reps);

    double g = exp(-1 / (tau * fs)), best = INFINITY, bestcpu = INFINITY;
    for (int r = 0; r < reps; r++) {
        double t0 = now(), c0 = cpu_now();
        #pragma omp parallel num_threads(threads)
        {
            double *v = malloc(T * sizeof *v), *w = malloc(T * sizeof *w);
            long *tt = malloc(T * sizeof *tt), *ll = malloc(T * sizeof *ll);
            #pragma omp for schedule(dynamic, 8)
            for (size_t i = 0; i < N; i++) ref_oasis(Y + i * T, T, g, v, w, tt, ll, S + i * T);
            free(v); free(w); free(tt); free(ll);
        }
        double dt = now() - t0, dc = cpu_now() - c0;
        if (dt < best) best = dt;
        if (dc < bestcpu) bestcpu = dc;
    }
    double ref_rate = (double)N / best, ref_cpu = (double)N / bestcpu * threads;
    printf("%-58s %9s %12s\n", "", "wall", "CPU-based");
    printf("%-58s %9.0f %12.0f traces/s\n", "reference: Suite2p-style OASIS AR(1), tau given",
           ref_rate, ref_cpu);

    struct { const char *name; int p; caimg_deconv_method m; int given; caimg_deconv_baseline b; } cfg[] = {
        {"caimg, same job: AR(1), tau given, lambda 0, b fixed", 1, CAIMG_DECONV_PENALIZED, 1,
         CAIMG_DECONV_B_FIXED},
        {"caimg AR(1), everything estimated per trace", 1, CAIMG_DECONV_THRESHOLDED, 0,
         CAIMG_DECONV_B_MODE},
        {"caimg default: AR(2), everything estimated per trace", 2, CAIMG_DECONV_THRESHOLDED, 0,
         CAIMG_DECONV_B_MODE},
        {"caimg --method auto: AR(2), exact, everything estimated", 2, CAIMG_DECONV_AUTO, 0,
         CAIMG_DECONV_B_MODE},
    };
    for (size_t k = 0; k < sizeof cfg / sizeof *cfg; k++) {
        caimg_deconv_params pp;
        caimg_deconv_params_init(&pp, fs);
        pp.p = cfg[k].p;
        pp.method = cfg[k].m;
        pp.baseline = cfg[k].b;
        pp.threads = threads;
        if (cfg[k].given) {
            pp.tau_decay = tau;
            pp.lambda = 0;
        }
        caimg_deconv_plan *plan = caimg_deconv_plan_create(&pp, T);
        if (!plan) {
            fprintf(stderr, "%s\n", caimg_errmsg());
            return 1;
        }
        best = bestcpu = INFINITY;
        for (int r = 0; r < reps; r++) {
            double t0 = now(), c0 = cpu_now();
            if (caimg_deconv_traces(plan, N, Y, C, S, K, NULL, 0)) {
                fprintf(stderr, "%s\n", caimg_errmsg());
                return 1;
            }
            double dt = now() - t0, dc = cpu_now() - c0;
            if (dt < best) best = dt;
            if (dc < bestcpu) bestcpu = dc;
        }
        double cpu_rate = (double)N / bestcpu * threads;
        printf("%-58s %9.0f %12.0f traces/s  (%.2fx reference)\n", cfg[k].name, (double)N / best,
               cpu_rate, cpu_rate / ref_cpu);
        caimg_deconv_plan_destroy(plan);
    }
    free(Y); free(C); free(S); free(K); free(F);
    return 0;
}
