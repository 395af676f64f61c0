/* roieval.c -- score a caimg roi output against a tests/mkcells truth file:
 * IoU > 0.5 matching (tests/roimatch.h), precision, recall, F1 (all ROIs and
 * those flagged iscell), and the correlation of matched traces with the
 * true calcium.  A helper of the tests and benchmark, not a test itself.
 *
 *   tests/roieval [-v] roi.h5 truth.h5
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "caimg/caimg.h"
#include "caimg/roi.h"
#include "roimatch.h"

static void die(const char *m)
{
    fprintf(stderr, "roieval: %s: %s\n", m, caimg_errmsg());
    exit(2);
}

static int64_t *read_i64(caimg_h5 *f, const char *name, size_t *n)
{
    hid_t d = H5Dopen2(caimg_h5_hid(f), name, H5P_DEFAULT);
    if (d < 0) die(name);
    hid_t sp = H5Dget_space(d);
    hsize_t dim;
    H5Sget_simple_extent_dims(sp, &dim, NULL);
    int64_t *v = malloc((dim + 1) * sizeof *v);
    if (dim && H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) die(name);
    H5Sclose(sp);
    H5Dclose(d);
    *n = dim;
    return v;
}

static rm_masks load(caimg_h5 *f, const char *pre, size_t X)
{
    char a[64], b[64];
    snprintf(a, sizeof a, "%s/pix_index", pre);
    snprintf(b, sizeof b, "%s/pix_start", pre);
    rm_masks m;
    size_t ns;
    m.start = read_i64(f, b, &ns);
    m.n = ns - 1;
    int32_t *pix;
    size_t d[8];
    if (caimg_h5_read(f, a, CAIMG_DT_I32, 2, NULL, d, (void **)&pix)) die(a);
    m.idx = malloc((d[0] + 1) * sizeof *m.idx);
    /* caimg simulate's truth lists whole footprints; the mask is body >= 0.5. */
    char bn[64];
    snprintf(bn, sizeof bn, "%s/pix_body", pre);
    float *body = NULL;
    if (caimg_h5_exists(f, bn) && caimg_h5_read(f, bn, CAIMG_DT_F32, 1, NULL, d + 2, (void **)&body)) die(bn);
    size_t o = 0;
    for (size_t i = 0; i < m.n; i++) {
        int64_t a0 = m.start[i], a1 = m.start[i + 1];
        m.start[i] = (int64_t)o;
        for (int64_t k = a0; k < a1; k++)
            if (!body || body[k] >= 0.5f)
                m.idx[o++] = (int64_t)pix[2 * k] * (int64_t)X + pix[2 * k + 1];
    }
    m.start[m.n] = (int64_t)o;
    free(body);
    free(pix);
    rm_sort(&m);
    return m;
}

int main(int argc, char **argv)
{
    int verbose = 0, a = 1;
    const char *features = NULL, *refgroup = "/truth";
    for (;;) {
        if (argc > a && !strcmp(argv[a], "-v")) { verbose = 1; a++; continue; }
        if (argc > a + 1 && !strcmp(argv[a], "--features")) { features = argv[a + 1]; a += 2; continue; }
        if (argc > a + 1 && !strcmp(argv[a], "--ref-group")) { refgroup = argv[a + 1]; a += 2; continue; }
        break;
    }
    if (argc - a != 2) {
        fprintf(stderr, "usage: roieval [-v] [--features OUT.tsv] [--ref-group /roi] roi.h5 truth.h5\n");
        return 2;
    }
    caimg_h5 *r = caimg_h5_open(argv[a]), *t = caimg_h5_open(argv[a + 1]);
    if (!r || !t) die("open");
    size_t d[8];
    int rank;
    if (caimg_h5_dims(r, "/roi/labels", &rank, d)) die("labels");
    size_t X = d[1];
    rm_masks mr = load(r, "/roi", X), mt = load(t, refgroup, X);
    uint8_t *iscell;
    if (caimg_h5_read(r, "/roi/iscell", CAIMG_DT_U8, 1, NULL, d, (void **)&iscell)) die("iscell");
    rm_result all = rm_match(&mt, &mr, NULL), cel = rm_match(&mt, &mr, iscell);
    printf("truth %zu  rois %zu  matched %zu  precision %.3f  recall %.3f  F1 %.3f\n",
           all.ntrue, all.nroi, all.nmatch, all.precision, all.recall, all.f1);
    printf("iscell: rois %zu  matched %zu  precision %.3f  recall %.3f  F1 %.3f\n",
           cel.nroi, cel.nmatch, cel.precision, cel.recall, cel.f1);
    if (!caimg_h5_exists(t, "/truth/calcium")) {
        /* Reference masks without traces (e.g. ImageJ ROIs run through
         * --masks): per reference mask, the best ROI and its distance. */
        for (size_t i = 0; i < mt.n; i++) {
            double ty = 0, tx = 0, best = 0;
            long bj = -1;
            for (int64_t k = mt.start[i]; k < mt.start[i + 1]; k++) {
                ty += (double)(mt.idx[k] / (int64_t)X);
                tx += (double)(mt.idx[k] % (int64_t)X);
            }
            ty /= (double)(mt.start[i + 1] - mt.start[i]);
            tx /= (double)(mt.start[i + 1] - mt.start[i]);
            for (size_t j = 0; j < mr.n; j++) {
                size_t in = rm_inter(&mt, i, &mr, j);
                double u = (double)(mt.start[i + 1] - mt.start[i] + mr.start[j + 1] - mr.start[j]) - (double)in;
                if (in && in / u > best) { best = in / u; bj = (long)j; }
            }
            double ry = 0, rx = 0;
            if (bj >= 0) {
                for (int64_t k = mr.start[bj]; k < mr.start[bj + 1]; k++) {
                    ry += (double)(mr.idx[k] / (int64_t)X);
                    rx += (double)(mr.idx[k] % (int64_t)X);
                }
                ry /= (double)(mr.start[bj + 1] - mr.start[bj]);
                rx /= (double)(mr.start[bj + 1] - mr.start[bj]);
            }
            printf("reference %zu (%.1f, %.1f) %lld px: best ROI %ld, IoU %.2f, centroid distance %.1f px, iscell %d\n",
                   i, ty, tx, (long long)(mt.start[i + 1] - mt.start[i]), bj, best,
                   bj >= 0 ? hypot(ry - ty, rx - tx) : NAN, bj >= 0 ? iscell[bj] : -1);
        }
        return 0;
    }
    float *F, *Fn, *C;
    size_t dF[8], dC[8];
    if (caimg_h5_read(r, "/roi/F", CAIMG_DT_F32, 2, NULL, dF, (void **)&F)) die("F");
    if (caimg_h5_read(r, "/roi/Fneu", CAIMG_DT_F32, 2, NULL, dF, (void **)&Fn)) die("Fneu");
    if (caimg_h5_read(t, "/truth/calcium", CAIMG_DT_F32, 2, NULL, dC, (void **)&C)) die("calcium");
    size_t T = dF[1];
    double sr = 0, sr7 = 0;
    size_t nr = 0;
    float *g = malloc(T * sizeof *g);
    double *stats[8] = {0};
    const char *sn[] = {"npix", "score", "prob", "skew", "snr", "compactness", "source", "contrast"};
    for (int k = 0; k < 8; k++) {
        char nm[64];
        snprintf(nm, sizeof nm, "/roi/stats/%s", sn[k]);
        if (caimg_h5_read(r, nm, CAIMG_DT_F64, 1, NULL, d, (void **)&stats[k])) die(nm);
    }
    /* Centroids of the true masks, to say where an unmatched ROI lies. */
    double *tcy = calloc(mt.n + 1, sizeof *tcy), *tcx = calloc(mt.n + 1, sizeof *tcx);
    for (size_t i = 0; i < mt.n; i++) {
        for (int64_t k = mt.start[i]; k < mt.start[i + 1]; k++) {
            tcy[i] += (double)(mt.idx[k] / (int64_t)X);
            tcx[i] += (double)(mt.idx[k] % (int64_t)X);
        }
        tcy[i] /= (double)(mt.start[i + 1] - mt.start[i]);
        tcx[i] /= (double)(mt.start[i + 1] - mt.start[i]);
    }
    double *rcy, *rcx;
    if (caimg_h5_read(r, "/roi/stats/cy", CAIMG_DT_F64, 1, NULL, d, (void **)&rcy)) die("cy");
    if (caimg_h5_read(r, "/roi/stats/cx", CAIMG_DT_F64, 1, NULL, d, (void **)&rcx)) die("cx");
    for (size_t j = 0; j < mr.n; j++) {
        long i = all.match_of_roi[j];
        size_t near = 0;
        double dn = 1e30;
        for (size_t q = 0; q < mt.n; q++) {
            double dd = hypot(tcy[q] - rcy[j], tcx[q] - rcx[j]);
            if (dd < dn) { dn = dd; near = q; }
        }
        double c1 = 0, c7 = 0;
        if (i >= 0) {
            c1 = rm_corr(F + j * T, C + (size_t)i * T, T);
            for (size_t u = 0; u < T; u++) g[u] = F[j * T + u] - 0.7f * Fn[j * T + u];
            c7 = rm_corr(g, C + (size_t)i * T, T);
            sr += c1; sr7 += c7; nr++;
        }
        if (verbose)
            printf("roi %3zu (%5.1f,%5.1f) near %3zu at %5.1f  match %4ld  iou %.2f  npix %4.0f  score %7.2f  prob %.2f  skew %5.2f  snr %6.2f  comp %.2f src %.0f  con %5.1f  r %.3f  r7 %.3f\n",
                   j, rcy[j], rcx[j], near, dn, i, all.iou_of_roi[j], stats[0][j], stats[1][j], stats[2][j], stats[3][j],
                   stats[4][j], stats[5][j], stats[6][j], stats[7][j], c1, c7);
    }
    if (features) {
        /* One line per ROI: matched (1/0), then the classifier's features. */
        double diameter = 12, *col[CAIMG_ROI_NSTATS];
        caimg_h5_get_attr_double(r, "/roi", "diameter", &diameter);
        for (int k = 0; k < CAIMG_ROI_NSTATS; k++) {
            char nm[64];
            snprintf(nm, sizeof nm, "/roi/stats/%s", caimg_roi_stat_name(k));
            if (caimg_h5_read(r, nm, CAIMG_DT_F64, 1, NULL, d, (void **)&col[k])) die(nm);
        }
        FILE *fp = fopen(features, "w");
        if (!fp) die(features);
        fprintf(fp, "cell");
        for (int k = 0; k < CAIMG_ROI_NFEATURES; k++) fprintf(fp, "\tf%d", k + 1);
        fputc('\n', fp);
        double *rows = malloc((mr.n + 1) * CAIMG_ROI_NSTATS * sizeof *rows);
        if (!rows) die("features");
        for (size_t j = 0; j < mr.n; j++)
            for (int k = 0; k < CAIMG_ROI_NSTATS; k++) rows[j * CAIMG_ROI_NSTATS + k] = col[k][j];
        double prior = caimg_roi_field_prior(rows, mr.n, diameter);
        for (size_t j = 0; j < mr.n; j++) {
            double f[CAIMG_ROI_NFEATURES];
            caimg_roi_classifier_features(rows + j * CAIMG_ROI_NSTATS, diameter, prior, f);
            fprintf(fp, "%d", all.match_of_roi[j] >= 0);
            for (int k = 0; k < CAIMG_ROI_NFEATURES; k++) fprintf(fp, "\t%.6g", f[k]);
            fputc('\n', fp);
        }
        fclose(fp);
        free(rows);
        for (int k = 0; k < CAIMG_ROI_NSTATS; k++) free(col[k]);
    }
    printf("trace r (F) %.3f  r (F-0.7Fneu) %.3f  over %zu matched\n", nr ? sr / nr : 0,
           nr ? sr7 / nr : 0, nr);
    return 0;
}
