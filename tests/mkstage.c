/* mkstage.c -- fabricate stage outputs from a truth file, for the caimg eval
 * command-line tests: the truth itself (which must score perfectly) or the
 * truth with known damage.
 *
 *   tests/mkstage TRUTH.h5 -o OUT.h5 [--offset DY,DX] [--shift-noise S]
 *                 [--drop F] [--spike-noise F] [--mix F] [--groups mc,roi,deconv,predict]
 *
 * --mix F replaces the last fraction F of each ROI's pixels by as many
 * pixels of the nearest other neuron: the ROI still matches (IoU about
 * 0.6 at F = 0.25) but its trace mixes in a neighbour's signal.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "caimg/caimg.h"
#include "caimg/h5io.h"

static void die(const char *what)
{
    fprintf(stderr, "mkstage: %s: %s\n", what, caimg_errmsg());
    exit(1);
}

static void *rd(caimg_h5 *f, const char *name, caimg_dtype dt, size_t *dims)
{
    void *d;
    int rank;
    if (caimg_h5_read(f, name, dt, 0, &rank, dims, &d)) die(name);
    return d;
}

static double frand(void) { return (double)rand() / RAND_MAX; }

int main(int argc, char **argv)
{
    const char *truth = NULL, *out = NULL, *groups = "mc,roi,deconv,predict";
    double oy = 0, ox = 0, snoise = 0, drop = 0, spnoise = 0, mix = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--offset") && i + 1 < argc) sscanf(argv[++i], "%lf,%lf", &oy, &ox);
        else if (!strcmp(argv[i], "--shift-noise") && i + 1 < argc) snoise = atof(argv[++i]);
        else if (!strcmp(argv[i], "--drop") && i + 1 < argc) drop = atof(argv[++i]);
        else if (!strcmp(argv[i], "--spike-noise") && i + 1 < argc) spnoise = atof(argv[++i]);
        else if (!strcmp(argv[i], "--mix") && i + 1 < argc) mix = atof(argv[++i]);
        else if (!strcmp(argv[i], "--groups") && i + 1 < argc) groups = argv[++i];
        else truth = argv[i];
    }
    if (!truth || !out) {
        fprintf(stderr, "usage: mkstage TRUTH.h5 -o OUT.h5 [options]\n");
        return 2;
    }
    caimg_init();
    caimg_h5 *t = caimg_h5_open(truth);
    if (!t) die(truth);
    caimg_h5 *f = caimg_h5_create(out, "deconv", "mkstage");
    if (!f) die(out);
    srand(5);
    size_t ds[2], dc[2], di[2], dw[1], dst[1];
    float *sh = rd(t, "/truth/shifts", CAIMG_DT_F32, ds);
    size_t T = ds[0];
    if (strstr(groups, "mc")) {
        for (size_t k = 0; k < T; k++) {
            sh[2 * k] += (float)(oy + snoise * (2 * frand() - 1));
            sh[2 * k + 1] += (float)(ox + snoise * (2 * frand() - 1));
        }
        if (caimg_h5_write(f, "/mc/shifts", CAIMG_DT_F32, 2, ds, sh)) die("/mc/shifts");
    }
    float *ca = rd(t, "/truth/calcium", CAIMG_DT_F32, dc);
    float *spk = rd(t, "/truth/spikes", CAIMG_DT_F32, dc);
    size_t N = dc[0];
    /* int64 offsets: not a caimg sample type, read with HDF5 directly. */
    int rk;
    if (caimg_h5_dims(t, "/truth/pix_start", &rk, dst)) die("/truth/pix_start");
    double *st = malloc(dst[0] * sizeof(double));
    hid_t dd = H5Dopen2(caimg_h5_hid(t), "/truth/pix_start", H5P_DEFAULT);
    H5Dread(dd, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, st);
    H5Dclose(dd);
    int32_t *ix = rd(t, "/truth/pix_index", CAIMG_DT_I32, di);
    float *body = rd(t, "/truth/pix_body", CAIMG_DT_F32, dw);
    long *keep = malloc(N * sizeof(long));
    size_t nr = 0;
    for (size_t i = 0; i < N; i++)
        if (frand() >= drop) keep[nr++] = (long)i;
    if (strstr(groups, "roi")) {
        int64_t *rs = malloc((nr + 1) * sizeof(int64_t));
        int32_t *ri = malloc(di[0] * 4 * sizeof(int32_t));
        float *rw = malloc(di[0] * 2 * sizeof(float));
        double *cy = calloc(N + 1, sizeof(double)), *cx = calloc(N + 1, sizeof(double));
        for (size_t i = 0; i < N; i++) {
            size_t c = 0;
            for (size_t k = (size_t)st[i]; k < (size_t)st[i + 1]; k++)
                if (body[k] >= 0.5f) { cy[i] += ix[2 * k]; cx[i] += ix[2 * k + 1]; c++; }
            if (c) { cy[i] /= (double)c; cx[i] /= (double)c; }
        }
        float *F = malloc(nr * T * sizeof(float));
        size_t m = 0;
        int sy = (int)lround(-oy), sx = (int)lround(-ox);
        for (size_t r = 0; r < nr; r++) {
            size_t i = (size_t)keep[r];
            rs[r] = (int64_t)m;
            size_t own = 0, used = 0;
            for (size_t k = (size_t)st[i]; k < (size_t)st[i + 1]; k++) own += body[k] >= 0.5f;
            size_t nmix = (size_t)lround(mix * (double)own);
            for (size_t k = (size_t)st[i]; k < (size_t)st[i + 1]; k++) {
                if (body[k] < 0.5f || used + nmix >= own) continue;
                ri[2 * m] = ix[2 * k] + sy;
                ri[2 * m + 1] = ix[2 * k + 1] + sx;
                rw[m++] = body[k];
                used++;
            }
            if (nmix) {
                size_t nb = i;
                double best = HUGE_VAL;
                for (size_t q = 0; q < N; q++) {
                    double dd2 = (cy[q] - cy[i]) * (cy[q] - cy[i]) + (cx[q] - cx[i]) * (cx[q] - cx[i]);
                    if (q != i && dd2 < best) { best = dd2; nb = q; }
                }
                for (size_t k = (size_t)st[nb]; k < (size_t)st[nb + 1] && nmix; k++) {
                    if (body[k] < 0.5f) continue;
                    ri[2 * m] = ix[2 * k] + sy;
                    ri[2 * m + 1] = ix[2 * k + 1] + sx;
                    rw[m++] = body[k];
                    nmix--;
                }
            }
            memcpy(F + r * T, ca + i * T, T * sizeof(float));
        }
        rs[nr] = (int64_t)m;
        hsize_t n = nr + 1;
        hid_t sp = H5Screate_simple(1, &n, NULL), lcpl = H5Pcreate(H5P_LINK_CREATE);
        H5Pset_create_intermediate_group(lcpl, 1);
        hid_t d = H5Dcreate2(caimg_h5_hid(f), "/roi/pix_start", H5T_STD_I64LE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, rs);
        H5Dclose(d);
        H5Pclose(lcpl);
        H5Sclose(sp);
        size_t dm[2] = {m, 2}, dF[2] = {nr, T};
        if (caimg_h5_write(f, "/roi/pix_index", CAIMG_DT_I32, 2, dm, ri)) die("pix_index");
        if (caimg_h5_write(f, "/roi/pix_weight", CAIMG_DT_F32, 1, dm, rw)) die("pix_weight");
        if (caimg_h5_write(f, "/roi/F", CAIMG_DT_F32, 2, dF, F)) die("F");
        free(rs);
        free(ri);
        free(rw);
        free(F);
        free(cy);
        free(cx);
    }
    if (strstr(groups, "deconv")) {
        size_t rows = strstr(groups, "roi") ? nr : N;
        float *s = malloc(rows * T * sizeof(float));
        for (size_t r = 0; r < rows; r++) {
            size_t i = strstr(groups, "roi") ? (size_t)keep[r] : r;
            for (size_t k = 0; k < T; k++)
                s[r * T + k] = frand() < spnoise ? (float)(rand() % 2) : spk[i * T + k];
        }
        size_t d2[2] = {rows, T};
        if (caimg_h5_write(f, "/deconv/spikes", CAIMG_DT_F32, 2, d2, s)) die("spikes");
        free(s);
    }
    if (strstr(groups, "predict") && caimg_h5_exists(t, "/truth/stim/response")) {
        size_t dr[2];
        float *resp = rd(t, "/truth/stim/response", CAIMG_DT_F32, dr);
        size_t S = dr[0], cols = strstr(groups, "roi") ? nr : N;
        float *p = malloc(S * cols * sizeof(float));
        for (size_t s = 0; s < S; s++)
            for (size_t r = 0; r < cols; r++)
                p[s * cols + r] = resp[s * N + (strstr(groups, "roi") ? (size_t)keep[r] : r)];
        size_t d2[2] = {S, cols};
        if (caimg_h5_write(f, "/predict/responses", CAIMG_DT_F32, 2, d2, p)) die("responses");
        free(p);
        free(resp);
    }
    if (caimg_h5_commit(f)) die(out);
    caimg_h5_close(t);
    free(sh);
    free(ca);
    free(spk);
    free(st);
    free(ix);
    free(body);
    free(keep);
    return 0;
}
