/* mkcells.c -- write a synthetic caimg movie with somata (tests/synth.h) for
 * the roi CLI tests and benchmark, with optional truth files.
 *
 *   tests/mkcells -o movie.h5 [-Y 128] [-X 128] [-T 1500] [--fs 30]
 *       [--seed 1] [--density 10] [--photons 1.5] [--rate 0.5]
 *       [--diameter 12] [--blank] [--mc] [--valid y0,y1,x0,x1]
 *       [--labels truth.tif] [--overlap-labels two.tif] [--truth truth.h5]
 *       [--constant V] [--white L]
 *
 * --blank: no cells and no neuropil activity (noise only); --mc: add an /mc
 * group (with /mc/valid, the whole frame unless --valid); --labels: the true
 * somata (body >= 0.5) as a uint16 label TIFF (overlapping pixels get the
 * later cell); --overlap-labels: a 2-page label TIFF whose pages hold two
 * overlapping squares 1 and 2; --truth: /truth/calcium [N][T] and
 * /truth/labels; --constant: every pixel of every frame V (a movie with
 * nothing in it); --white: every pixel an independent Poisson count of mean
 * L (noise without any structure).
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caimg/caimg.h"
#include "synth.h"

static void die(const char *m)
{
    fprintf(stderr, "mkcells: %s: %s\n", m, caimg_errmsg());
    exit(2);
}

static void write_labels(const char *path, const uint16_t *lab, size_t Y, size_t X, size_t pages)
{
    caimg_tiff_wopts o;
    caimg_tiff_wopts_init(&o, CAIMG_DT_U16);
    o.imagej = 0;
    caimg_tiff_writer *w = caimg_tiff_writer_create(path, X, Y, pages, &o);
    if (!w) die(path);
    for (size_t k = 0; k < pages; k++)
        if (caimg_tiff_write_page(w, lab + k * Y * X)) die(path);
    if (caimg_tiff_writer_close(w)) die(path);
}

int main(int argc, char **argv)
{
    synth_params p;
    synth_defaults(&p);
    const char *out = NULL, *labels = NULL, *olabels = NULL, *truth = NULL;
    int blank = 0, mc = 0;
    long valid[4] = {-1, -1, -1, -1};
    static const struct option lo[] = {
        {"fs", 1, NULL, 1}, {"seed", 1, NULL, 2}, {"density", 1, NULL, 3},
        {"photons", 1, NULL, 4}, {"rate", 1, NULL, 5}, {"diameter", 1, NULL, 6},
        {"blank", 0, NULL, 7}, {"mc", 0, NULL, 8}, {"valid", 1, NULL, 9},
        {"labels", 1, NULL, 10}, {"overlap-labels", 1, NULL, 11}, {"truth", 1, NULL, 12},
        {"brightness", 1, NULL, 13}, {"min-sep", 1, NULL, 14}, {"tau", 1, NULL, 15},
        {"constant", 1, NULL, 16}, {"white", 1, NULL, 17}, {NULL, 0, NULL, 0}};
    double constant = -1, white = -1;
    int c;
    while ((c = getopt_long(argc, argv, "o:Y:X:T:", lo, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'Y': p.Y = strtoul(optarg, NULL, 10); break;
        case 'X': p.X = strtoul(optarg, NULL, 10); break;
        case 'T': p.T = strtoul(optarg, NULL, 10); break;
        case 1: p.fs = atof(optarg); break;
        case 2: p.seed = strtoull(optarg, NULL, 10); break;
        case 3: p.density = atof(optarg); break;
        case 4: p.np_photons = atof(optarg); break;
        case 5: p.rate = atof(optarg); break;
        case 6: p.diameter = atof(optarg); break;
        case 7: blank = 1; break;
        case 8: mc = 1; break;
        case 9:
            if (sscanf(optarg, "%ld,%ld,%ld,%ld", &valid[0], &valid[1], &valid[2], &valid[3]) != 4)
                die("--valid y0,y1,x0,x1");
            mc = 1;
            break;
        case 10: labels = optarg; break;
        case 11: olabels = optarg; break;
        case 12: truth = optarg; break;
        case 13: p.brightness = atof(optarg); break;
        case 14: p.min_sep = atof(optarg); break;
        case 15: p.tau = atof(optarg); break;
        case 16: constant = atof(optarg); blank = 1; break;
        case 17: white = atof(optarg); blank = 1; break;
        default: fprintf(stderr, "mkcells: bad option\n"); return 2;
        }
    }
    if (!out && !labels && !olabels) die("-o FILE");
    if (blank) {
        p.ncells = 0;
        p.density = 0;
        p.np_sd = 0;
        p.texture_sd = 0;
        p.bleach = 0;
    }
    synth *s = synth_new(&p);
    size_t Y = p.Y, X = p.X, T = p.T, N = s->n;
    uint16_t *lab = NULL;
    if (labels || truth) {
        lab = calloc(Y * X, sizeof *lab);
        uint8_t *m = calloc(Y * X, 1);
        for (size_t i = 0; i < N; i++) {
            memset(m, 0, Y * X);
            synth_mask(s, i, m);
            for (size_t k = 0; k < Y * X; k++)
                if (m[k]) lab[k] = (uint16_t)(i + 1);
        }
        free(m);
        if (labels) write_labels(labels, lab, Y, X, 1);
    }
    if (olabels) {
        uint16_t *two = calloc(2 * Y * X, sizeof *two);
        for (size_t y = Y / 4; y < Y / 2; y++)
            for (size_t x = X / 4; x < X / 2; x++) two[y * X + x] = 1;
        for (size_t y = Y / 3; y < Y / 3 + Y / 4; y++)
            for (size_t x = X / 3; x < X / 3 + X / 4; x++) two[Y * X + y * X + x] = 2;
        write_labels(olabels, two, Y, X, 2);
        free(two);
    }
    if (out) {
        caimg_h5 *f = caimg_h5_create(out, "import", "mkcells");
        if (!f) die(out);
        size_t inner[2] = {Y, X};
        caimg_h5_stream *st = caimg_h5_stream_create(f, "/movie", CAIMG_DT_U16, 3, inner, 0, T);
        if (!st) die(out);
        size_t chunk = 32;
        float *buf = malloc(chunk * Y * X * sizeof *buf);
        for (size_t t0 = 0; t0 < T; t0 += chunk) {
            size_t n = T - t0 < chunk ? T - t0 : chunk;
            if (constant >= 0 || white >= 0) {
                for (size_t i = 0; i < n; i++) {
                    synth_rng r;
                    synth_seed(&r, p.seed, 0x77686974, t0 + i);
                    for (size_t k = 0; k < Y * X; k++)
                        buf[i * Y * X + k] =
                            constant >= 0 ? (float)constant : (float)synth_poisson(&r, white);
                }
            } else {
#pragma omp parallel
                {
                    float *lam = malloc(Y * X * sizeof *lam);
#pragma omp for schedule(dynamic, 1)
                    for (size_t i = 0; i < n; i++) synth_frame(s, t0 + i, buf + i * Y * X, lam);
                    free(lam);
                }
            }
            if (caimg_h5_stream_write(st, buf, CAIMG_DT_F32, n, NULL)) die(out);
        }
        free(buf);
        if (caimg_h5_stream_close(st)) die(out);
        if (caimg_h5_set_attr_double(f, "/movie", "fs", p.fs)) die(out);
        if (mc) {
            int32_t v[4] = {0, (int32_t)Y, 0, (int32_t)X};
            if (valid[0] >= 0)
                for (int k = 0; k < 4; k++) v[k] = (int32_t)valid[k];
            size_t d4 = 4;
            if (caimg_h5_write(f, "/mc/valid", CAIMG_DT_I32, 1, &d4, v)) die(out);
            if (caimg_h5_set_attr_double(f, "/mc", "fs", p.fs)) die(out);
        }
        if (caimg_h5_commit(f)) die(out);
    }
    if (truth) {
        caimg_h5 *f = caimg_h5_create(truth, "simulate", "mkcells");
        if (!f) die(truth);
        size_t d2[2] = {N, T}, dl[2] = {Y, X};
        if (caimg_h5_write(f, "/truth/calcium", CAIMG_DT_F32, 2, d2, s->calcium)) die(truth);
        if (caimg_h5_write(f, "/truth/labels", CAIMG_DT_U16, 2, dl, lab)) die(truth);
        /* Every true mask whole (the label image loses shared pixels). */
        int32_t *st = calloc(N + 1, sizeof *st);
        int32_t *pix = malloc(2 * Y * X * 4 * sizeof *pix + 8);
        uint8_t *m = calloc(Y * X, 1);
        size_t tot = 0;
        for (size_t i = 0; i < N; i++) {
            memset(m, 0, Y * X);
            synth_mask(s, i, m);
            for (size_t k = 0; k < Y * X; k++)
                if (m[k]) {
                    pix[2 * tot] = (int32_t)(k / X);
                    pix[2 * tot + 1] = (int32_t)(k % X);
                    tot++;
                }
            st[i + 1] = (int32_t)tot;
        }
        size_t dp[2] = {tot, 2}, ds = N + 1;
        if (caimg_h5_write(f, "/truth/pix_index", CAIMG_DT_I32, 2, dp, pix)) die(truth);
        if (caimg_h5_write(f, "/truth/pix_start", CAIMG_DT_I32, 1, &ds, st)) die(truth);
        free(st);
        free(pix);
        free(m);
        if (caimg_h5_commit(f)) die(truth);
    }
    free(lab);
    synth_free(s);
    return 0;
}
