/* roi_extract.c -- the second pass of caimg roi: fluorescence traces F and
 * Fneu streamed into the output, and writing the ROI set itself.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <string.h>

#include <hdf5.h>

#include "caimg/error.h"
#include "roi_internal.h"

/* Frames per trace chunk: the traces of all ROIs for this many frames are
 * kept in memory and written as one chunk per ROI, so memory is 2 N BLOCK
 * floats whatever T is, and every chunk is written whole (no
 * read-modify-write of partial chunks). */
#define BLOCK 4096

/* Create the N x T trace dataset `name`, or open it when an earlier
 * extraction made it (the traces are extracted again once the cells are
 * known; the shape is the same, so the chunks are overwritten in place). */
static int create_traces(caimg_h5 *out, const char *name, size_t N, size_t T, hid_t *d)
{
    if (caimg_h5_exists(out, name)) {
        *d = H5Dopen2(caimg_h5_hid(out), name, H5P_DEFAULT);
        if (*d < 0)
            return caimg_error(CAIMG_EIO, "%s: cannot open %s", caimg_h5_path(out), name);
        return 0;
    }
    hsize_t dims[2] = {N, T};
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (N > 0 && T > 0) {
        hsize_t chunk[2] = {1, T < BLOCK ? T : BLOCK};
        H5Pset_chunk(dcpl, 2, chunk);
    }
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    *d = H5Dcreate2(caimg_h5_hid(out), name, H5T_IEEE_F32LE, sp, lcpl, dcpl, H5P_DEFAULT);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(sp);
    if (*d < 0)
        return caimg_error(CAIMG_EIO, "%s: cannot create %s", caimg_h5_path(out), name);
    return 0;
}

static int write_block(caimg_h5 *out, hid_t d, const char *name, const float *buf, size_t N,
                       size_t t0, size_t n)
{
    if (N == 0 || n == 0) return 0;
    hid_t fsp = H5Dget_space(d);
    hsize_t start[2] = {0, t0}, count[2] = {N, n};
    H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL);
    hsize_t mdims[2] = {N, BLOCK}, mstart[2] = {0, 0};
    hid_t msp = H5Screate_simple(2, mdims, NULL);
    H5Sselect_hyperslab(msp, H5S_SELECT_SET, mstart, NULL, count, NULL);
    herr_t e = H5Dwrite(d, H5T_NATIVE_FLOAT, msp, fsp, H5P_DEFAULT, buf);
    H5Sclose(msp);
    H5Sclose(fsp);
    if (e < 0)
        return caimg_error(CAIMG_EIO, "%s: cannot write %s (disk full?)", caimg_h5_path(out),
                           name);
    return 0;
}

/* Write frames [t0, t0 + n) of the rows of block buffer `buf` (ns rows of
 * BLOCK floats) to dataset d: to rows 0..ns-1, or to rows sel[0..ns-1]
 * when sel is given.  A row's frames of one block are one chunk, so the
 * row-by-row writes of a subset cost no more than a whole-block write. */
static int write_rows(caimg_h5 *out, hid_t d, const char *name, const float *buf,
                      const size_t *sel, size_t ns, size_t t0, size_t n)
{
    if (!sel) return write_block(out, d, name, buf, ns, t0, n);
    int rc = 0;
    hid_t fsp = H5Dget_space(d);
    hsize_t mdims[1] = {n};
    hid_t msp = H5Screate_simple(1, mdims, NULL);
    for (size_t k = 0; !rc && k < ns; k++) {
        hsize_t start[2] = {sel[k], t0}, count[2] = {1, n};
        H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL);
        if (H5Dwrite(d, H5T_NATIVE_FLOAT, msp, fsp, H5P_DEFAULT, buf + k * BLOCK) < 0)
            rc = caimg_error(CAIMG_EIO, "%s: cannot write %s (disk full?)", caimg_h5_path(out),
                             name);
    }
    H5Sclose(msp);
    H5Sclose(fsp);
    return rc;
}

/* The traces of the ROIs flagged in `only` (F alone; Fneu does not depend
 * on the overlap flags), or of every ROI, F and Fneu, when only is NULL. */
static int extract(caimg_movie *m, const caimg_roiset *r, caimg_h5 *out, double fs,
                   const uint8_t *only)
{
    size_t T = caimg_movie_frames(m), Y = caimg_movie_height(m), X = caimg_movie_width(m);
    size_t N = r->n, YX = Y * X;
    if (Y != r->height || X != r->width)
        return caimg_error(CAIMG_EINVAL, "%s: frames are %zux%zu, the ROIs were made for %zux%zu",
                           caimg_movie_sources(m), Y, X, r->height, r->width);
    if (!r->pix_overlap || !r->np_start)
        return caimg_error(CAIMG_EINVAL, "ROI set not finished (call caimg_roiset_finish)");
    int rc = caimg_h5_mkgroup(out, "/roi");
    if (rc) return rc;
    hid_t dF = -1, dN = -1;
    rc = create_traces(out, "/roi/F", N, T, &dF);
    if (!rc && !only) rc = create_traces(out, "/roi/Fneu", N, T, &dN);
    size_t fbytes = YX * sizeof(float);
    size_t chunk = ((size_t)32 << 20) / (fbytes ? fbytes : 1);
    chunk = CAIMG_MAX(1, CAIMG_MIN(chunk, 256));
    /* The ROIs extracted: sel[k] is the k-th (all of them without `only`). */
    size_t *sel = caimg_malloc(N ? N : 1, sizeof *sel, "trace weights");
    size_t ns = 0;
    for (size_t i = 0; sel && i < N; i++)
        if (!only || only[i]) sel[ns++] = i;
    /* Pixel offsets and normalised weights of each ROI without the shared
     * pixels (the overlap rule). */
    size_t M = (size_t)r->pix_start[N];
    int64_t *ps = caimg_calloc(N + 1, sizeof *ps, "trace weights");
    size_t *po = caimg_malloc(M ? M : 1, sizeof *po, "trace weights");
    float *pw = caimg_malloc(M ? M : 1, sizeof *pw, "trace weights");
    size_t Mn = only ? 0 : (size_t)r->np_start[N];
    size_t *no = caimg_malloc(Mn ? Mn : 1, sizeof *no, "neuropil offsets");
    float *buf = caimg_malloc(chunk * YX, sizeof *buf, "a chunk of frames");
    float *bF = caimg_malloc(ns ? ns * BLOCK : 1, sizeof *bF, "trace buffers");
    float *bN = only ? NULL : caimg_malloc(ns ? ns * BLOCK : 1, sizeof *bN, "trace buffers");
    if (!rc && (!sel || !ps || !po || !pw || !no || !buf || !bF || (!only && !bN)))
        rc = CAIMG_ENOMEM;
    if (rc) goto out;
    size_t k = 0, nshared = 0;
    for (size_t i = 0; i < N; i++) {
        double sw = 0;
        size_t k0 = k;
        for (int64_t j = r->pix_start[i]; j < r->pix_start[i + 1]; j++) {
            if (r->pix_overlap[j]) continue;
            po[k] = (size_t)r->pix_index[2 * j] * X + (size_t)r->pix_index[2 * j + 1];
            pw[k] = r->pix_weight[j];
            sw += pw[k];
            k++;
        }
        for (size_t j = k0; j < k; j++) pw[j] = (float)(pw[j] / sw);
        if (k == k0 && (!only || only[i])) nshared++;
        ps[i + 1] = (int64_t)k;
    }
    for (size_t j = 0; j < Mn; j++)
        no[j] = (size_t)r->np_index[2 * j] * X + (size_t)r->np_index[2 * j + 1];
    if (nshared)
        caimg_warn("%zu ROIs share all their pixels with others; their F is NaN", nshared);

    size_t tb = 0, nb = 0;   /* block start and frames in it */
    for (size_t t0 = 0; !rc && t0 < T; t0 += chunk) {
        size_t n = CAIMG_MIN(chunk, T - t0);
        rc = caimg_movie_read(m, t0, n, buf);
        if (rc) break;
        for (size_t f = 0; f < n;) {
            /* Frames of this chunk that fit in the current block. */
            size_t take = CAIMG_MIN(n - f, BLOCK - nb);
            /* Frame by frame, every ROI from one frame while it is in
             * cache: the ROIs' pixels and annuli together touch a frame
             * several times over (annuli overlap), which ROI by ROI over
             * a chunk of frames would fetch from memory each time. */
#pragma omp parallel for schedule(static)
            for (size_t u = 0; u < take; u++) {
                const float *fr = buf + (f + u) * YX;
                for (size_t q = 0; q < ns; q++) {
                    size_t i = sel[q];
                    size_t a = (size_t)ps[i], b = (size_t)ps[i + 1];
                    double s = 0;
                    for (size_t j = a; j < b; j++) s += (double)pw[j] * fr[po[j]];
                    bF[q * BLOCK + nb + u] = a < b ? (float)s : NAN;
                    if (only) continue;
                    size_t na = (size_t)r->np_start[i], nbb = (size_t)r->np_start[i + 1];
                    double sn = 0;
                    for (size_t j = na; j < nbb; j++) sn += fr[no[j]];
                    bN[q * BLOCK + nb + u] = nbb > na ? (float)(sn / (double)(nbb - na)) : NAN;
                }
            }
            nb += take;
            f += take;
            if (nb == BLOCK) {
                rc = write_rows(out, dF, "/roi/F", bF, only ? sel : NULL, ns, tb, nb);
                if (!rc && !only) rc = write_block(out, dN, "/roi/Fneu", bN, N, tb, nb);
                if (rc) break;
                tb += nb;
                nb = 0;
            }
        }
        if (!rc) rc = caimg_progress("extracting traces", (double)(t0 + n), (double)T);
    }
    if (!rc && nb) {
        rc = write_rows(out, dF, "/roi/F", bF, only ? sel : NULL, ns, tb, nb);
        if (!rc && !only) rc = write_block(out, dN, "/roi/Fneu", bN, N, tb, nb);
    }
    if (!rc) rc = caimg_h5_set_attr_double(out, "/roi", "fs", fs);
out:
    if (dF >= 0) H5Dclose(dF);
    if (dN >= 0) H5Dclose(dN);
    free(sel);
    free(ps);
    free(po);
    free(pw);
    free(no);
    free(buf);
    free(bF);
    free(bN);
    return rc;
}

int caimg_roi_extract(caimg_movie *m, const caimg_roiset *r, caimg_h5 *out, double fs)
{
    return extract(m, r, out, fs, NULL);
}

int roi_extract_only(caimg_movie *m, const caimg_roiset *r, caimg_h5 *out, double fs,
                     const uint8_t *only)
{
    return extract(m, r, out, fs, only);
}

static int write_i64(caimg_h5 *out, const char *name, const int64_t *v, size_t n)
{
    return caimg_h5_write(out, name, CAIMG_DT_I64, 1, &n, v);
}

int caimg_roi_write(caimg_h5 *out, const caimg_roiset *r, const caimg_roi_summary *s,
                    const char *method, double fs, double diameter)
{
    size_t N = r->n, M = (size_t)r->pix_start[N];
    size_t Mn = r->np_start ? (size_t)r->np_start[N] : 0;
    int rc = caimg_h5_mkgroup(out, "/roi");
    size_t d2[2] = {M, 2}, d1 = M;
    if (!rc) rc = caimg_h5_write(out, "/roi/pix_index", CAIMG_DT_I32, 2, d2, r->pix_index);
    if (!rc) rc = caimg_h5_write(out, "/roi/pix_weight", CAIMG_DT_F32, 1, &d1, r->pix_weight);
    if (!rc && r->pix_overlap)
        rc = caimg_h5_write(out, "/roi/pix_overlap", CAIMG_DT_U8, 1, &d1, r->pix_overlap);
    if (!rc) rc = write_i64(out, "/roi/pix_start", r->pix_start, N + 1);
    if (!rc && r->labels) {
        size_t dl[2] = {r->height, r->width};
        rc = caimg_h5_write(out, "/roi/labels", CAIMG_DT_I32, 2, dl, r->labels);
    }
    if (!rc && r->np_start) {
        size_t dn[2] = {Mn, 2};
        rc = caimg_h5_write(out, "/roi/np_index", CAIMG_DT_I32, 2, dn, r->np_index);
        if (!rc) rc = write_i64(out, "/roi/np_start", r->np_start, N + 1);
    }
    if (!rc && r->iscell) rc = caimg_h5_write(out, "/roi/iscell", CAIMG_DT_U8, 1, &N, r->iscell);
    double *col = caimg_malloc(N ? N : 1, sizeof *col, "a statistics column");
    if (!col && !rc) rc = CAIMG_ENOMEM;
    for (int k = 0; !rc && k < CAIMG_ROI_NSTATS; k++) {
        char name[64];
        snprintf(name, sizeof name, "/roi/stats/%s", caimg_roi_stat_name(k));
        for (size_t i = 0; i < N; i++) col[i] = r->stats[i * CAIMG_ROI_NSTATS + k];
        rc = caimg_h5_write(out, name, CAIMG_DT_F64, 1, &N, col);
    }
    free(col);
    if (!rc && s) {
        size_t di[2] = {s->height, s->width};
        const char *names[5] = {"/roi/mean", "/roi/max", "/roi/std", "/roi/corr", "/roi/enhanced"};
        const float *imgs[5] = {s->mean, s->max, s->std, s->corr, s->enhanced};
        for (int k = 0; !rc && k < 5; k++)
            rc = caimg_h5_write(out, names[k], CAIMG_DT_F32, 2, di, imgs[k]);
    }
    if (!rc) rc = caimg_h5_set_attr_double(out, "/roi", "fs", fs);
    if (!rc) rc = caimg_h5_set_attr_long(out, "/roi", "n_rois", (long)N);
    if (!rc) rc = caimg_h5_set_attr_string(out, "/roi", "method", method ? method : "");
    if (!rc) rc = caimg_h5_set_attr_double(out, "/roi", "diameter", diameter);
    /* The level np_excess counts light from, so the statistic can be
     * recomputed from the file. */
    if (!rc) rc = caimg_h5_set_attr_double(out, "/roi", "offset", r->offset);
    return rc;
}
