/* mkstim.c -- write a small simulated stimulus-response experiment for the
 * fit/predict CLI tests: natural-like images, simple (Gabor) and complex
 * (energy) cells with Poisson spikes, a schedule with repeats.
 *
 *   mkstim [-n S,REPS] DIR [VARIANT]
 *
 * writes DIR/stimuli.tif (S pages of 16x16 uint8; S = 240 by default),
 * DIR/spikes.h5 (caimg file, /deconv/spikes [N][T], /deconv fs = 10 Hz),
 * DIR/schedule.tsv (onset_frame, stimulus, duration_frames: each stimulus
 * REPS times, 4 by default, 4 frames each), DIR/responses.tsv (the window means as a ready matrix with
 * stimulus and split columns) and DIR/truth.tsv (expected rates [S][N]).
 * VARIANT makes one thing wrong: past-end (the last window runs past the
 * recording), no-image (a stimulus id without a page), zero-neuron (an
 * extra silent neuron), all-zero (every neuron silent), nan (NaN frames),
 * inf (an infinite frame inside a window), no-fs (no frame rate).
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caimg/caimg.h"

#define IMG 16
#define NCELL 8
#define DUR 4
#define GAP 8

static uint64_t rs = 12345;
static double unif(void)
{
    uint64_t z = (rs += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}
static double normal(void)
{
    double u = 1.0 - unif(), v = unif();
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}
static unsigned poisson(double lam)
{
    double L = exp(-lam), p = 1.0;
    unsigned k = 0;
    do { k++; p *= unif(); } while (p > L);
    return k - 1;
}

static void die(const char *what)
{
    fprintf(stderr, "mkstim: %s: %s\n", what, caimg_errmsg());
    exit(2);
}

int main(int argc, char **argv)
{
    /* The default, 240 stimuli shown 4 times, is enough for the simple
     * cells; the complex (energy) cells need more stimuli to be learned
     * to a correlation of 0.8 with their true rates (tests/cli_fit.sh). */
    int S = 240, REPS = 4;
    if (argc > 2 && !strcmp(argv[1], "-n")) {
        if (sscanf(argv[2], "%d,%d", &S, &REPS) != 2 || S < 41 || REPS < 1) argc = 0;
        argv += 2;
        argc -= 2;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: mkstim [-n S,REPS] DIR [past-end|no-image|zero-neuron|all-zero|nan|inf|no-fs]\n");
        return 2;
    }
    const char *dir = argv[1], *var = argc > 2 ? argv[2] : "";
    caimg_init();
    char path[4096];
    /* Images: sums of upsampled white-noise octaves (about 1/f). */
    float (*img)[IMG * IMG] = malloc((size_t)S * sizeof *img);
    double (*rate)[NCELL] = malloc((size_t)S * sizeof *rate);
    int *order = malloc((size_t)S * REPS * sizeof *order);
    float (*resp)[NCELL + 1] = malloc((size_t)S * REPS * sizeof *resp);
    if (!img || !rate || !order || !resp) {
        fprintf(stderr, "mkstim: out of memory\n");
        return 2;
    }
    for (int s = 0; s < S; s++) {
        float *im = img[s];
        memset(im, 0, sizeof *img);
        for (int k = 0; k < 4; k++) {
            int step = 1 << k, g = IMG / step + 2;
            float grid[20 * 20];
            for (int q = 0; q < g * g; q++) grid[q] = (float)normal();
            for (int y = 0; y < IMG; y++)
                for (int x = 0; x < IMG; x++) {
                    float fy = (float)y / step, fx = (float)x / step;
                    int y0 = (int)fy, x0 = (int)fx;
                    float ty = fy - y0, tx = fx - x0;
                    im[y * IMG + x] += step * ((1 - ty) * ((1 - tx) * grid[y0 * g + x0] + tx * grid[y0 * g + x0 + 1]) +
                                               ty * ((1 - tx) * grid[(y0 + 1) * g + x0] + tx * grid[(y0 + 1) * g + x0 + 1]));
                }
        }
        for (int i = 0; i < IMG * IMG; i++) {
            float v = 128.0f + 12.0f * im[i];
            im[i] = v < 0 ? 0 : v > 255 ? 255 : floorf(v + 0.5f);
        }
    }
    snprintf(path, sizeof path, "%s/stimuli.tif", dir);
    caimg_tiff_wopts wo;
    caimg_tiff_wopts_init(&wo, CAIMG_DT_U8);
    caimg_tiff_writer *tw = caimg_tiff_writer_create(path, IMG, IMG, S, &wo);
    if (!tw) die(path);
    for (int s = 0; s < S; s++) {
        uint8_t page[IMG * IMG];
        for (int i = 0; i < IMG * IMG; i++) page[i] = (uint8_t)img[s][i];
        if (caimg_tiff_write_page(tw, page)) die(path);
    }
    if (caimg_tiff_writer_close(tw)) die(path);

    /* Cells: Gabor filters (sigma 2, wavelength 6) near the centre. */
    static float g[NCELL][2][IMG * IMG];
    for (int c = 0; c < NCELL; c++) {
        double cy = 7.5 + 3 * (unif() - 0.5), cx = 7.5 + 3 * (unif() - 0.5);
        double th = M_PI * unif(), ph = 2 * M_PI * unif();
        for (int q = 0; q < 2; q++) {
            double n2 = 0;
            for (int y = 0; y < IMG; y++)
                for (int x = 0; x < IMG; x++) {
                    double dx = x - cx, dy = y - cy;
                    double xr = dx * cos(th) + dy * sin(th), yr = -dx * sin(th) + dy * cos(th);
                    double v = exp(-(xr * xr + yr * yr) / 8.0) * cos(2 * M_PI * xr / 6.0 + ph + q * M_PI / 2);
                    g[c][q][y * IMG + x] = (float)v;
                    n2 += v * v;
                }
            for (int i = 0; i < IMG * IMG; i++) g[c][q][i] /= (float)sqrt(n2);
        }
    }
    double sc = 0;
    for (int s = 0; s < S; s++) {
        double u = 0;
        for (int i = 0; i < IMG * IMG; i++) u += g[0][0][i] * (img[s][i] - 128.0);
        sc += u * u;
    }
    sc = sqrt(sc / S);
    for (int s = 0; s < S; s++)
        for (int c = 0; c < NCELL; c++) {
            double u0 = 0, u1 = 0;
            for (int i = 0; i < IMG * IMG; i++) {
                u0 += g[c][0][i] * (img[s][i] - 128.0);
                u1 += g[c][1][i] * (img[s][i] - 128.0);
            }
            u0 /= sc; u1 /= sc;
            /* Expected spikes per frame during the stimulus. */
            rate[s][c] = c < NCELL / 2 ? 0.5 * (0.2 + (u0 > 0 ? u0 * u0 : 0)) : 0.25 * (0.4 + u0 * u0 + u1 * u1);
        }
    snprintf(path, sizeof path, "%s/truth.tsv", dir);
    FILE *fp = fopen(path, "w");
    if (!fp) die(path);
    for (int c = 0; c < NCELL; c++) fprintf(fp, "%sc%d", c ? "\t" : "", c);
    fputc('\n', fp);
    for (int s = 0; s < S; s++)
        for (int c = 0; c < NCELL; c++) fprintf(fp, "%.6g%c", rate[s][c], c + 1 < NCELL ? '\t' : '\n');
    fclose(fp);

    /* Schedule: every stimulus REPS times in shuffled order. */
    for (int i = 0; i < S * REPS; i++) order[i] = i % S;
    for (int i = S * REPS - 1; i > 0; i--) {
        int j = (int)(unif() * (i + 1));
        int t = order[i]; order[i] = order[j]; order[j] = t;
    }
    const int P = S * REPS;
    size_t T = (size_t)(GAP * P + GAP);
    int N = NCELL + (!strcmp(var, "zero-neuron"));
    float *tr = calloc((size_t)N * T, sizeof *tr);
    for (int p = 0; p < P; p++) {
        size_t on = (size_t)(GAP / 2 + GAP * p);
        for (int c = 0; c < N; c++) {
            double sum = 0;
            for (int f = 0; f < DUR; f++) {
                float v = c < NCELL && strcmp(var, "all-zero") ? (float)poisson(rate[order[p]][c]) : 0.0f;
                tr[(size_t)c * T + on + f] = v;
                sum += v;
            }
            resp[p][c] = (float)(sum / DUR);
        }
    }
    if (!strcmp(var, "nan"))
        for (int p = 0; p < 20; p++) tr[(size_t)1 * T + GAP / 2 + GAP * p * 7] = NAN;
    if (!strcmp(var, "inf")) tr[(size_t)2 * T + GAP / 2 + GAP * 5 + 1] = INFINITY;

    snprintf(path, sizeof path, "%s/spikes.h5", dir);
    caimg_h5 *f = caimg_h5_create(path, "deconv", "mkstim");
    if (!f) die(path);
    size_t dims[2] = {(size_t)N, T};
    if (caimg_h5_write(f, "/deconv/spikes", CAIMG_DT_F32, 2, dims, tr)) die(path);
    if (strcmp(var, "no-fs") && caimg_h5_set_attr_double(f, "/deconv", "fs", 10.0)) die(path);
    if (caimg_h5_commit(f)) die(path);

    snprintf(path, sizeof path, "%s/schedule.tsv", dir);
    fp = fopen(path, "w");
    if (!fp) die(path);
    fprintf(fp, "onset_frame\tstimulus\tduration_frames\n");
    for (int p = 0; p < P; p++) {
        int on = GAP / 2 + GAP * p, st = order[p];
        if (p == P - 1 && !strcmp(var, "past-end")) on = (int)T - 2;
        if (p == 17 && !strcmp(var, "no-image")) st = S;
        fprintf(fp, "%d\t%d\t%d\n", on, st, DUR);
    }
    fclose(fp);

    /* The same responses as a ready matrix; the first 40 stimuli are the
     * test split. */
    snprintf(path, sizeof path, "%s/responses.tsv", dir);
    fp = fopen(path, "w");
    if (!fp) die(path);
    fprintf(fp, "# simulated window means\nstimulus\tsplit");
    for (int c = 0; c < N; c++) fprintf(fp, "\tcell%d", c);
    fputc('\n', fp);
    for (int p = 0; p < P; p++) {
        fprintf(fp, "%d\t%s", order[p], order[p] < 40 ? "test" : "train");
        for (int c = 0; c < N; c++) fprintf(fp, "\t%g", resp[p][c]);
        fputc('\n', fp);
    }
    fclose(fp);
    free(tr);
    free(img);
    free(rate);
    free(order);
    free(resp);
    return 0;
}
