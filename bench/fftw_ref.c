/* fftw_ref.c -- the practical limit of FFT-based registration: the time
 * FFTW alone needs for one forward (r2c) and one inverse (c2r) transform of
 * every frame of a movie, with the same single-precision plans (made once,
 * FFTW_MEASURE) and the same number of OpenMP threads as caimg mc.  Reading
 * the frames is not timed.
 *
 *   bench/fftw_ref MOVIE THREADS
 * prints "frames seconds frames_per_s".
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include <fftw3.h>

#include "caimg/caimg.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: fftw_ref MOVIE THREADS\n");
        return 2;
    }
    int nthr = atoi(argv[2]);
    if (nthr < 1) nthr = 1;
    caimg_init();
    caimg_movie *m = caimg_movie_open1(argv[1]);
    if (!m) {
        fprintf(stderr, "fftw_ref: %s\n", caimg_errmsg());
        return 1;
    }
    size_t T = caimg_movie_frames(m), ny = caimg_movie_height(m), nx = caimg_movie_width(m);
    size_t npix = ny * nx, nh = ny * (nx / 2 + 1), chunk = 64;
    float *frames = malloc(sizeof(float) * npix * chunk);
    float *re = fftwf_malloc(sizeof(float) * npix * (size_t)nthr);
    fftwf_complex *sp = fftwf_malloc(sizeof(fftwf_complex) * nh * (size_t)nthr);
    fftwf_plan f = fftwf_plan_dft_r2c_2d((int)ny, (int)nx, re, sp, FFTW_MEASURE);
    fftwf_plan b = fftwf_plan_dft_c2r_2d((int)ny, (int)nx, sp, re, FFTW_MEASURE);
    double busy = 0;
    for (size_t t0 = 0; t0 < T; t0 += chunk) {
        size_t n = T - t0 < chunk ? T - t0 : chunk;
        if (caimg_movie_read(m, t0, n, frames)) {
            fprintf(stderr, "fftw_ref: %s\n", caimg_errmsg());
            return 1;
        }
        double a = now();
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthr)
        for (size_t i = 0; i < n; i++) {
#ifdef _OPENMP
            int id = omp_get_thread_num();
#else
            int id = 0;
#endif
            float *r = re + (size_t)id * npix;
            fftwf_complex *s = sp + (size_t)id * nh;
            for (size_t k = 0; k < npix; k++) r[k] = frames[i * npix + k];
            fftwf_execute_dft_r2c(f, r, s);
            fftwf_execute_dft_c2r(b, s, r);
        }
        busy += now() - a;
    }
    printf("%zu %.3f %.1f\n", T, busy, (double)T / busy);
    fftwf_destroy_plan(f);
    fftwf_destroy_plan(b);
    fftwf_free(re);
    fftwf_free(sp);
    free(frames);
    caimg_movie_close(m);
    return 0;
}
