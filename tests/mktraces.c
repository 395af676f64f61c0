/* mktraces.c -- fabricate ROI traces (/roi/F, /roi/Fneu) from a truth file,
 * for the dff and deconv command-line tests, with known noise and known
 * damage.  (Stands in for the roi stage until its output is available.)
 *
 *   tests/mktraces TRUTH.h5 -o ROI.h5 [--snr S] [--r R] [--seed N] [--no-fs]
 *                  [--nan K] [--zero K] [--neu-rows N] [--no-neu]
 *
 * F = baseline (1 + calcium) + neuropil + noise, Fneu = neuropil / R + noise
 * (so the true neuropil coefficient is R [0.7]), with the noise sd of each
 * ROI set so that one spike's first-frame rise (alpha x baseline) is S
 * times the noise [the truth's per-neuron snr].  --nan K puts NaN in ROI
 * K's frames 10-12, --zero K makes ROI K all zero, --neu-rows N writes
 * Fneu with N rows (a mismatch), --no-fs leaves out the fs attribute.
 * The ROI pixels are the truth's somata (body mask >= 0.5), so caimg eval
 * can match ROIs to neurons.
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
#include "caimg/h5io.h"

static void die(const char *what)
{
    fprintf(stderr, "mktraces: %s: %s\n", what, caimg_errmsg());
    exit(1);
}

static unsigned long long rs = 88172645463325252ULL;
static double unif(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return ((double)(rs >> 11) + 0.5) / 9007199254740992.0;
}
static double gauss(void) { return sqrt(-2 * log(unif())) * cos(2 * M_PI * unif()); }

static float *rd(caimg_h5 *f, const char *name, size_t *dims)
{
    void *d;
    int rank;
    if (caimg_h5_read(f, name, CAIMG_DT_F32, 0, &rank, dims, &d)) die(name);
    return d;
}

int main(int argc, char **argv)
{
    const char *truth = NULL, *out = NULL;
    double snr = 0, r = 0.7;
    long nan_roi = -1, zero_roi = -1, neu_rows = -1;
    int nofs = 0, noneu = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--snr") && i + 1 < argc) snr = atof(argv[++i]);
        else if (!strcmp(argv[i], "--r") && i + 1 < argc) r = atof(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) rs += strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--nan") && i + 1 < argc) nan_roi = atol(argv[++i]);
        else if (!strcmp(argv[i], "--zero") && i + 1 < argc) zero_roi = atol(argv[++i]);
        else if (!strcmp(argv[i], "--neu-rows") && i + 1 < argc) neu_rows = atol(argv[++i]);
        else if (!strcmp(argv[i], "--no-fs")) nofs = 1;
        else if (!strcmp(argv[i], "--no-neu")) noneu = 1;
        else truth = argv[i];
    }
    if (!truth || !out) {
        fprintf(stderr, "usage: mktraces TRUTH.h5 -o ROI.h5 [options]\n");
        return 2;
    }
    caimg_init();
    caimg_h5 *t = caimg_h5_open(truth);
    if (!t) die(truth);
    size_t d2[8], d1[8];
    float *base = rd(t, "/truth/baseline", d2);
    float *ca = rd(t, "/truth/calcium", d2);
    float *np = rd(t, "/truth/neuropil", d2);
    float *alpha = rd(t, "/truth/alpha", d1);
    float *tsnr = rd(t, "/truth/snr", d1);
    double fs = 0;
    if (caimg_h5_get_attr_double(t, "/truth", "fs", &fs)) die("fs");
    size_t N = d2[0], T = d2[1];
    float *F = malloc(N * T * sizeof *F), *Fn = malloc(N * T * sizeof *Fn);
    for (size_t i = 0; i < N; i++) {
        double mb = 0;
        for (size_t k = 0; k < T; k++) mb += base[i * T + k];
        mb /= (double)T;
        double s = snr > 0 ? snr : tsnr[i];
        double sd = mb * alpha[i] / s;
        for (size_t k = 0; k < T; k++) {
            size_t j = i * T + k;
            F[j] = (float)(base[j] * (1 + ca[j]) + np[j] + sd * gauss());
            Fn[j] = (float)(np[j] / r + sd / 3 * gauss());
        }
        if ((long)i == zero_roi)
            for (size_t k = 0; k < T; k++) F[i * T + k] = Fn[i * T + k] = 0;
        if ((long)i == nan_roi)
            for (size_t k = 10; k < 13 && k < T; k++) F[i * T + k] = NAN;
    }
    caimg_h5 *f = caimg_h5_create(out, "roi", "mktraces");
    if (!f) die(out);
    size_t dF[2] = {N, T}, dN[2] = {neu_rows >= 0 ? (size_t)neu_rows : N, T};
    if (caimg_h5_write(f, "/roi/F", CAIMG_DT_F32, 2, dF, F)) die("F");
    if (!noneu && caimg_h5_write(f, "/roi/Fneu", CAIMG_DT_F32, 2, dN, Fn)) die("Fneu");
    if (!nofs && caimg_h5_set_attr_double(f, "/roi", "fs", fs)) die("fs");
    {
        size_t ds[8], di[8], dw[8];
        int rank;
        int64_t *st;
        int32_t *ix;
        float *body;
        if (caimg_h5_read(t, "/truth/pix_start", CAIMG_DT_I64, 1, &rank, ds, (void **)&st)) die("pix_start");
        if (caimg_h5_read(t, "/truth/pix_index", CAIMG_DT_I32, 2, &rank, di, (void **)&ix)) die("pix_index");
        if (caimg_h5_read(t, "/truth/pix_body", CAIMG_DT_F32, 1, &rank, dw, (void **)&body)) die("pix_body");
        int64_t *rs = malloc((N + 1) * sizeof *rs);
        int32_t *ri = malloc(di[0] * 2 * sizeof *ri);
        float *rw = malloc(di[0] * sizeof *rw);
        size_t m = 0;
        for (size_t i = 0; i < N; i++) {
            rs[i] = (int64_t)m;
            for (int64_t k = st[i]; k < st[i + 1]; k++) {
                if (body[k] < 0.5f) continue;
                ri[2 * m] = ix[2 * k];
                ri[2 * m + 1] = ix[2 * k + 1];
                rw[m++] = body[k];
            }
        }
        rs[N] = (int64_t)m;
        size_t n1[1] = {N + 1}, dm[2] = {m, 2};
        if (caimg_h5_write(f, "/roi/pix_start", CAIMG_DT_I64, 1, n1, rs)) die("pix_start");
        if (caimg_h5_write(f, "/roi/pix_index", CAIMG_DT_I32, 2, dm, ri)) die("pix_index");
        if (caimg_h5_write(f, "/roi/pix_weight", CAIMG_DT_F32, 1, dm, rw)) die("pix_weight");
        free(st); free(ix); free(body); free(rs); free(ri); free(rw);
    }
    if (caimg_h5_commit(f)) die("commit");
    caimg_h5_close(t);
    free(base); free(ca); free(np); free(alpha); free(tsnr); free(F); free(Fn);
    return 0;
}
