/* bench_attack.c -- speed of an EOT-PGD attack on the conv2 preset.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Usage: bench_attack [-n IMAGES] [-s HxW] [-N NEURONS] [-k STEPS] [-m EOT]
 *                     [-K EVAL] [-@ THREADS] [-b BUDGET] [--feature]
 * Defaults: 100 images of 32x32, 100 neurons, PGD-20 with EOT-10 under an
 * L-inf budget of 0.01, evaluation over 32 draws, 2 threads; the model is
 * the conv2 preset with noise (sd 0.5 of each unit) after its first layer
 * and random weights (speed does not depend on training).  Prints the wall
 * and CPU time of the attack (with its evaluation), and the network rows
 * (image x noise draw) pushed forward and back per second.
 */
#include <config.h>

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "caimg/caimg.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Smooth random images in [0, 1]: a few blurred noise passes, so that the
 * network sees image-like inputs rather than white noise. */
static void make_images(float *x, size_t n, size_t h, size_t w, unsigned seed)
{
    srand(seed);
    float *t = malloc(h * w * sizeof *t);
    for (size_t i = 0; i < n; i++) {
        float *im = x + i * h * w;
        for (size_t p = 0; p < h * w; p++) im[p] = (float)rand() / (float)RAND_MAX;
        for (int pass = 0; pass < 3; pass++) {
            for (size_t y = 0; y < h; y++)
                for (size_t z = 0; z < w; z++) {
                    double s = 0;
                    int c = 0;
                    for (int dy = -1; dy <= 1; dy++)
                        for (int dz = -1; dz <= 1; dz++) {
                            long yy = (long)y + dy, zz = (long)z + dz;
                            if (yy < 0 || zz < 0 || yy >= (long)h || zz >= (long)w) continue;
                            s += im[yy * (long)w + zz];
                            c++;
                        }
                    t[y * w + z] = (float)(s / c);
                }
            memcpy(im, t, h * w * sizeof *t);
        }
        float lo = 1e9f, hi = -1e9f;
        for (size_t p = 0; p < h * w; p++) { lo = im[p] < lo ? im[p] : lo; hi = im[p] > hi ? im[p] : hi; }
        for (size_t p = 0; p < h * w; p++) im[p] = (im[p] - lo) / (hi - lo);
    }
    free(t);
}

int main(int argc, char **argv)
{
    size_t n = 100, H = 32, W = 32, N = 100, steps = 20, eot = 10, K = 32;
    int threads = 2, feature = 0;
    double budget = 0.01;
    static const struct option lo[] = {{"feature", no_argument, NULL, 'f'}, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "n:s:N:k:m:K:@:b:", lo, NULL)) != -1) {
        switch (opt) {
        case 'n': n = (size_t)atol(optarg); break;
        case 's': if (sscanf(optarg, "%zux%zu", &H, &W) != 2) return 2; break;
        case 'N': N = (size_t)atol(optarg); break;
        case 'k': steps = (size_t)atol(optarg); break;
        case 'm': eot = (size_t)atol(optarg); break;
        case 'K': K = (size_t)atol(optarg); break;
        case '@': threads = atoi(optarg); break;
        case 'b': budget = atof(optarg); break;
        case 'f': feature = 1; break;
        default:
            fprintf(stderr, "usage: bench_attack [-n IMAGES] [-s HxW] [-N NEURONS] [-k STEPS] [-m EOT] "
                            "[-K EVAL] [-@ THREADS] [-b BUDGET] [--feature]\n");
            return 2;
        }
    }
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    caimg_init();
    caimg_ann *m = caimg_ann_create("conv2", 1, H, W, N, 1);
    if (!m) { fprintf(stderr, "%s\n", caimg_errmsg()); return 1; }
    float *x = malloc(n * H * W * sizeof *x);
    make_images(x, n, H, W, 7);
    caimg_ann_set_input_norm(m, 0.5, 0.25);
    caimg_ann_set_input_range(m, 0.0, 1.0);
    caimg_ann_noise_set(m, "h1", 0.5, CAIMG_ANN_NOISE_REL);
    caimg_ann_noise_calibrate(m, x, n);
    caimg_attack_setup su;
    caimg_attack_setup_init(&su);
    su.eval_samples = K;
    if (feature) su.feature_layer = caimg_ann_layer_find(m, "h1");
    double t0 = now(), c0 = cpu();
    caimg_attack_plan *p = caimg_attack_plan_create(m, x, n, &su);
    if (!p) { fprintf(stderr, "%s\n", caimg_errmsg()); return 1; }
    double tplan = now() - t0;
    caimg_attack_opts o;
    caimg_attack_opts_init(&o);
    o.steps = steps;
    o.eot = eot;
    if (feature) {
        o.budget = CAIMG_ATTACK_FEATURE;
        budget = budget < 0.05 ? 0.1 : budget;
    }
    caimg_attack_result r;
    double t1 = now(), c1 = cpu();
    if (caimg_attack_execute(p, &o, budget, NULL, &r)) { fprintf(stderr, "%s\n", caimg_errmsg()); return 1; }
    double wall = now() - t1, cput = cpu() - c1;
    /* Rows pushed through forward + backward by the gradient steps (the
     * response objective's paired clean pass adds a forward per row). */
    double rows = (double)n * (double)steps * (double)eot;
    printf("conv2 %zux%zu, %zu neurons, %zu images, %s PGD-%zu EOT-%zu, eval %zu draws, %d threads\n", H, W, N,
           n, feature ? "feature-space" : "L-inf", steps, eot, K, threads);
    printf("plan (clean predictions)  %7.2f s\n", tplan);
    printf("attack + evaluation       %7.2f s wall, %7.2f s CPU (%.0f gradient rows/s)\n", wall, cput,
           rows / wall);
    printf("result: relative response change %.4f (budget %g), total %.2f s wall, %.2f s CPU\n",
           r.rel_change, budget, now() - t0, cpu() - c0);
    caimg_attack_plan_destroy(p);
    caimg_ann_free(m);
    free(x);
    return 0;
}
