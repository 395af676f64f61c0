/* deconv_speed.c -- deconvolution throughput: traces per second for N
 * traces of T frames on a given number of threads, against a reference
 * measured in the same run.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Usage: deconv_speed [-n TRACES] [-T FRAMES] [-@ THREADS] [-r REPEATS]
 *                     [-w FILE] [-R WALL:CPU]
 *
 * -w FILE writes the traces (N x T float32, native byte order) and exits:
 * they are the input of bench/deconv_speed_numba.py, Suite2p's own (numba)
 * deconvolution, whose rates -R passes back so that the table shows caimg
 * against it too.  bench/deconv_speed.sh runs the two.
 *
 * The C reference is the job Suite2p's deconvolution does (its numba
 * OASIS: AR(1), decay given, no sparsity penalty, no baseline), written
 * here as Suite2p writes it: single precision, one array per pool field,
 * exp() where Suite2p calls it, a division per merge, and only the spike
 * sizes written out (no calcium).  It is the same algorithm compiled by
 * GCC rather than numba, without Suite2p's per-batch allocations, and
 * runs about 1.8 times faster than Suite2p itself; the numba reference is
 * what Suite2p's users get.  caimg is timed on the same job
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
#include "deconv_lanes.h"

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

/* Suite2p's OASIS (suite2p/extraction/dcnv.py, oasis_trace) as Suite2p
 * writes it: single precision, exp(g l) evaluated where the Python
 * evaluates it, and only the spike sizes at the pool starts written out
 * (the calcium is never rebuilt).  S must be zeroed beforehand, as Suite2p's
 * np.zeros does. */
static void ref_oasis(const float *F, size_t T, float tau, float fs, float *v, float *w, long *t,
                      float *l, float *s)
{
    const float g = -1.0f / (tau * fs);
    long it = 0, ip = 0;
    for (; it < (long)T; it++, ip++) {
        v[ip] = F[it];
        w[ip] = 1;
        t[ip] = it;
        l[ip] = 1;
        while (ip > 0) {
            if (v[ip - 1] * expf(g * l[ip - 1]) > v[ip]) {
                float f1 = expf(g * l[ip - 1]), f2 = expf(2 * g * l[ip - 1]);
                float wnew = w[ip - 1] + w[ip] * f2;
                v[ip - 1] = (v[ip - 1] * w[ip - 1] + v[ip] * w[ip] * f1) / wnew;
                w[ip - 1] = wnew;
                l[ip - 1] = l[ip - 1] + l[ip];
                ip--;
            } else {
                break;
            }
        }
    }
    for (long j = 1; j < ip; j++) s[t[j]] = v[j] - v[j - 1] * expf(g * l[j - 1]);
}

int main(int argc, char **argv)
{
    size_t N = 1000, T = 10000;
    int threads = 2, reps = 3, o;
    const char *wpath = NULL;
    double nb_wall = 0, nb_cpu = 0;   /* the numba reference's rates, if given */
    while ((o = getopt(argc, argv, "n:T:@:r:w:R:")) != -1) {
        switch (o) {
        case 'n': N = strtoul(optarg, NULL, 10); break;
        case 'T': T = strtoul(optarg, NULL, 10); break;
        case '@': threads = atoi(optarg); break;
        case 'r': reps = atoi(optarg); break;
        case 'w': wpath = optarg; break;
        case 'R':
            if (sscanf(optarg, "%lf:%lf", &nb_wall, &nb_cpu) != 2 || !(nb_cpu > 0)) return 2;
            break;
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
    if (wpath) {
        FILE *f = fopen(wpath, "wb");
        if (!f || fwrite(Y, sizeof *Y, N * T, f) != N * T || fclose(f)) {
            fprintf(stderr, "deconv_speed: cannot write %s\n", wpath);
            return 1;
        }
        return 0;
    }
    memset(C, 0, N * T * sizeof *C);
    memset(S, 0, N * T * sizeof *S);
    memset(K, 0, N * T * sizeof *K);
    printf("%zu traces x %zu frames, %d threads, best of %d\n", N, T, threads, reps);

    double best = INFINITY, bestcpu = INFINITY;
    for (int r = 0; r < reps; r++) {
        double t0 = now(), c0 = cpu_now();
        #pragma omp parallel num_threads(threads)
        {
            float *v = malloc(T * sizeof *v), *w = malloc(T * sizeof *w);
            float *ll = malloc(T * sizeof *ll);
            long *tt = malloc(T * sizeof *tt);
            #pragma omp for schedule(dynamic, 8)
            for (size_t i = 0; i < N; i++) {
                memset(S + i * T, 0, T * sizeof *S);
                ref_oasis(Y + i * T, T, (float)tau, (float)fs, v, w, tt, ll, S + i * T);
            }
            free(v); free(w); free(tt); free(ll);
        }
        double dt = now() - t0, dc = cpu_now() - c0;
        if (dt < best) best = dt;
        if (dc < bestcpu) bestcpu = dc;
    }
    double ref_rate = (double)N / best, ref_cpu = (double)N / bestcpu * threads;
    printf("%-58s %9s %12s\n", "", "wall", "CPU-based");
    if (nb_cpu > 0)
        printf("%-58s %9.0f %12.0f traces/s\n", "reference: Suite2p's own OASIS (numba)", nb_wall,
               nb_cpu);
    printf("%-58s %9.0f %12.0f traces/s\n", "reference: Suite2p's OASIS written in C", ref_rate,
           ref_cpu);

    /* seq: the same with the sequential AR(1) pass, where the processor
     * would use the segmented one (deconv_lanes.h). */
    struct {
        const char *name; int p; caimg_deconv_method m; int given; caimg_deconv_baseline b;
        int seq;
    } cfg[] = {
        {"caimg, same job: AR(1), tau given, lambda 0, b fixed", 1, CAIMG_DECONV_PENALIZED, 1,
         CAIMG_DECONV_B_FIXED, 0},
        {"  the same, sequential AR(1) pass (no AVX-512)", 1, CAIMG_DECONV_PENALIZED, 1,
         CAIMG_DECONV_B_FIXED, 1},
        {"caimg AR(1), everything estimated per trace", 1, CAIMG_DECONV_THRESHOLDED, 0,
         CAIMG_DECONV_B_MODE, 0},
        {"caimg default: AR(2), everything estimated per trace", 2, CAIMG_DECONV_THRESHOLDED, 0,
         CAIMG_DECONV_B_MODE, 0},
        {"caimg --method auto: AR(2), exact, everything estimated", 2, CAIMG_DECONV_AUTO, 0,
         CAIMG_DECONV_B_MODE, 0},
    };
    for (size_t k = 0; k < sizeof cfg / sizeof *cfg; k++) {
        if (cfg[k].seq && !caimg_ar1_lanes_available()) continue;
        caimg_ar1_lanes_disabled = cfg[k].seq;
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
        printf("%-58s %9.0f %12.0f traces/s  (%.2fx C", cfg[k].name, (double)N / best, cpu_rate,
               cpu_rate / ref_cpu);
        if (nb_cpu > 0) printf(", %.2fx numba", cpu_rate / nb_cpu);
        printf(")\n");
        caimg_deconv_plan_destroy(plan);
    }
    free(Y); free(C); free(S); free(K); free(F);
    return 0;
}
