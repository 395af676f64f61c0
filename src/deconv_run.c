/* deconv_run.c -- the deconv stage: traces (HDF5 or a text table) to spikes.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "caimg/deconv.h"
#include "caimg/error.h"
#include "caimg/h5io.h"
#include "internal.h"
#include "traceio.h"

void caimg_deconv_io_init(caimg_deconv_io *io)
{
    io->dataset = "/dff/dff";
    io->block = 0;
    io->deflate = 0;
}

static void record_params(caimg_h5 *out, const caimg_deconv_params *p, const char *dataset)
{
    if (p->fs > 0) caimg_h5_param_double(out, "fs", p->fs);
    else caimg_h5_param_derived(out, "fs", "0 (unknown)");
    if (dataset) caimg_h5_param(out, "dataset", "%s", dataset);
    caimg_h5_param(out, "method", "%s", caimg_deconv_method_name(p->method));
    caimg_h5_param(out, "ar", "%d", p->p);
    if (p->tau_decay > 0) {
        caimg_h5_param_double(out, "tau", p->tau_decay);
        if (p->p == 2) caimg_h5_param_double(out, "rise", p->tau_rise);
    } else {
        /* No option value says "estimate": leaving --tau out does. */
        caimg_h5_param_derived(out, "tau", "estimate");
        caimg_h5_param(out, "no-refine", "%s", p->refine_g ? "no" : "yes");
        caimg_h5_param(out, "lags", "%d", p->lags);
        caimg_h5_param_double(out, "fudge", p->fudge);
        caimg_h5_param(out, "tau-range", "%g,%g", p->tau_min, p->tau_max);
        caimg_h5_param_double(out, "fallback-tau", p->fallback_decay);
        if (p->p == 2) caimg_h5_param_double(out, "fallback-rise", p->fallback_rise);
    }
    if (p->sn > 0) caimg_h5_param_double(out, "sn", p->sn);
    else caimg_h5_param_derived(out, "sn", "estimate");
    caimg_h5_param(out, "noise-method", "%s", caimg_noise_method_name(p->noise_method));
    caimg_h5_param(out, "noise-band", "%g,%g", p->noise_band[0], p->noise_band[1]);
    if (p->lambda >= 0) caimg_h5_param_double(out, "lambda", p->lambda);
    else caimg_h5_param(out, "lambda", "auto");
    caimg_h5_param_double(out, "lambda-z", p->lambda_z);
    if (p->smin > 0) caimg_h5_param_double(out, "smin", p->smin);
    caimg_h5_param_double(out, "smin-z", p->smin_z);
    caimg_h5_param(out, "baseline", "%s", caimg_deconv_baseline_name(p->baseline));
    if (p->baseline == CAIMG_DECONV_B_FIXED) caimg_h5_param_double(out, "b", p->b);
    caimg_h5_param(out, "max-iter", "%d", p->max_iter);
}

/* A source of traces: rows of an HDF5 dataset, or of a text table, both
 * read a block at a time (a table's rows in order). */
typedef struct {
    caimg_h5 *h5;
    const char *dataset;
    caimg_trace_table *tab;
    size_t n, T;
} source;

static int source_rows(source *src, size_t r0, size_t m, float *buf)
{
    if (src->h5) return caimg_h5_read_rows(src->h5, src->dataset, CAIMG_DT_F32, r0, m, buf);
    return caimg_trace_table_read(src->tab, m, buf);
}

/* 1 if the file starts with the HDF5 signature (at offset 0; files with a
 * user block are HDF5 too and H5Fis_hdf5 finds those). */
static int is_hdf5(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return -1;
    fclose(fp);
    htri_t r = H5Fis_hdf5(path);
    return r > 0;
}

int caimg_deconv_run(const char *input, const char *output, const caimg_deconv_params *pin,
                     const caimg_deconv_io *io_in, const char *cmdline)
{
    caimg_init();
    caimg_deconv_io io;
    if (io_in) io = *io_in;
    else caimg_deconv_io_init(&io);
    if (!io.dataset || !io.dataset[0]) io.dataset = "/dff/dff";
    caimg_deconv_params p = *pin;
    int rc = CAIMG_OK;
    source src = {NULL, io.dataset, NULL, 0, 0};
    caimg_h5 *out = NULL;
    caimg_h5_stream *ss = NULL, *sc = NULL, *sk = NULL;
    caimg_deconv_plan *plan = NULL;
    float *Y = NULL, *C = NULL, *S = NULL, *K = NULL;
    double *vb = NULL, *vg = NULL, *vsn = NULL, *vamp = NULL;
    caimg_deconv_info *info = NULL;
    const char *units_in = "units of the input traces";

    int h = is_hdf5(input);
    if (h < 0) return caimg_error(CAIMG_ENOENT, "%s: cannot open: no such file or unreadable",
                                  input);
    if (h) {
        src.h5 = caimg_h5_open_any(input, NULL);
        if (!src.h5) return CAIMG_EFORMAT;
        int rank;
        size_t dims[CAIMG_H5_MAXRANK];
        rc = caimg_h5_dims(src.h5, io.dataset, &rank, dims);
        if (rc) goto done;
        if (rank != 2) {
            rc = caimg_error(CAIMG_EFORMAT, "%s: %s has rank %d, expected 2 ([neurons][frames])",
                             input, io.dataset, rank);
            goto done;
        }
        src.n = dims[0];
        src.T = dims[1];
        if (!(p.fs > 0)) {
            static const char *const groups[] = {"/dff", "/roi", "/movie", NULL};
            p.fs = caimg_trace_fs(src.h5, io.dataset, groups);
        }
        if (strcmp(io.dataset, "/dff/dff") == 0) units_in = "dF/F (fraction)";
    } else {
        src.tab = caimg_trace_table_open(input, &src.n, &src.T);
        if (!src.tab) {
            rc = CAIMG_EFORMAT;
            goto done;
        }
        src.dataset = NULL;
    }
    /* No neurons is valid (a dff of a movie without ROIs, caimg-h5(5)):
     * the outputs are then [0][T], [0] and [0][2].  Neurons without frames
     * have nothing to deconvolve. */
    if (src.n > 0 && src.T == 0) {
        rc = caimg_error(CAIMG_EFORMAT, "%s: no traces (%zu neurons, 0 frames)", input, src.n);
        goto done;
    }
    if (!(p.fs > 0)) {
        rc = caimg_error(CAIMG_EFORMAT, "%s: the frame rate is unknown%s; give it with --fs", input,
                         src.h5 ? " (no fs attribute on the dataset, /dff, /roi or /movie)" : "");
        goto done;
    }
    /* The plan also checks the kinetics, so it is made even for no
     * neurons: a bad --tau is refused whatever the input holds. */
    plan = caimg_deconv_plan_create(&p, src.T ? src.T : 1);
    if (!plan) {
        rc = CAIMG_EINVAL;
        goto done;
    }

    out = caimg_h5_create(output, "deconv", cmdline);
    if (!out) {
        rc = caimg_errmsg()[0] ? CAIMG_EIO : CAIMG_ENOMEM;
        goto done;
    }
    rc = caimg_h5_add_input(out, input, src.h5 ? 1 : 0);
    if (rc) goto done;
    record_params(out, &p, src.dataset);
    size_t n = src.n, T = src.T, inner[1] = {T};
    ss = caimg_h5_stream_create(out, "/deconv/s", CAIMG_DT_F32, 2, inner, io.deflate, n);
    sc = ss ? caimg_h5_stream_create(out, "/deconv/c", CAIMG_DT_F32, 2, inner, io.deflate, n) : NULL;
    sk = sc ? caimg_h5_stream_create(out, "/deconv/spikes", CAIMG_DT_F32, 2, inner, io.deflate, n)
            : NULL;
    if (!ss || !sc || !sk) {
        rc = CAIMG_EIO;
        goto done;
    }
    size_t blk = caimg_trace_block(n, T * sizeof(float) * 4, io.block);
    Y = caimg_malloc(blk * T, sizeof *Y, "a block of traces");
    C = caimg_malloc(blk * T, sizeof *C, "a block of traces");
    S = caimg_malloc(blk * T, sizeof *S, "a block of traces");
    K = caimg_malloc(blk * T, sizeof *K, "a block of traces");
    info = caimg_malloc(blk, sizeof *info, "per-trace results");
    vb = caimg_malloc(n, sizeof *vb, "per-trace results");
    vg = caimg_malloc(2 * n, sizeof *vg, "per-trace results");
    vsn = caimg_malloc(n, sizeof *vsn, "per-trace results");
    vamp = caimg_malloc(n, sizeof *vamp, "per-trace results");
    if (!Y || !C || !S || !K || !info || !vb || !vg || !vsn || !vamp) {
        rc = CAIMG_ENOMEM;
        goto done;
    }
    for (size_t i0 = 0; i0 < n && !rc; i0 += blk) {
        size_t m = n - i0 < blk ? n - i0 : blk;
        rc = source_rows(&src, i0, m, Y);
        if (!rc) rc = caimg_deconv_traces(plan, m, Y, C, S, K, info, i0);
        if (!rc) rc = caimg_h5_stream_write(ss, S, CAIMG_DT_F32, m, NULL);
        if (!rc) rc = caimg_h5_stream_write(sc, C, CAIMG_DT_F32, m, NULL);
        if (!rc) rc = caimg_h5_stream_write(sk, K, CAIMG_DT_F32, m, NULL);
        for (size_t i = 0; !rc && i < m; i++) {
            vb[i0 + i] = info[i].b;
            vg[2 * (i0 + i)] = info[i].g[0];
            vg[2 * (i0 + i) + 1] = info[i].g[1];
            vsn[i0 + i] = info[i].sn;
            vamp[i0 + i] = info[i].amplitude;
        }
        if (!rc) rc = caimg_progress("deconvolving", (double)(i0 + m), (double)n);
    }
    if (rc) goto done;
    caimg_h5_stream *all[3] = {ss, sc, sk};
    rc = caimg_h5_stream_close_all(all, 3);
    ss = all[0];
    sc = all[1];
    sk = all[2];   /* those still open are closed in the cleanup below */
    char u[160];
    snprintf(u, sizeof u, "%s per frame: the jump of the calcium c at a spike", units_in);
    if (!rc) rc = caimg_h5_set_attr_string(out, "/deconv/s", "units", u);
    snprintf(u, sizeof u, "%s: denoised calcium above the baseline b", units_in);
    if (!rc) rc = caimg_h5_set_attr_string(out, "/deconv/c", "units", u);
    if (!rc) rc = caimg_h5_set_attr_string(out, "/deconv/spikes", "units",
                                           "estimated spikes per frame: s / amplitude");
    if (!rc) rc = caimg_trace_write_vec(out, "/deconv/b", vb, n, 1, units_in);
    if (!rc) rc = caimg_trace_write_vec(out, "/deconv/g", vg, n, 2,
                                         "AR coefficients g1, g2: c[t] = g1 c[t-1] + g2 c[t-2] + s[t]");
    snprintf(u, sizeof u, "%s, noise sd per frame", units_in);
    if (!rc) rc = caimg_trace_write_vec(out, "/deconv/sn", vsn, n, 1, u);
    snprintf(u, sizeof u, "%s per spike (units of s)", units_in);
    if (!rc) rc = caimg_trace_write_vec(out, "/deconv/amplitude", vamp, n, 1, u);
    if (!rc) rc = caimg_h5_set_attr_double(out, "/deconv", "fs", p.fs);
    if (!rc) rc = caimg_h5_set_attr_string(out, "/deconv", "method",
                                           caimg_deconv_method_name(p.method));
    if (!rc) rc = caimg_h5_set_attr_long(out, "/deconv", "ar_order", p.p);
    if (!rc) rc = caimg_h5_set_attr_string(out, "/deconv", "baseline",
                                           caimg_deconv_baseline_name(p.baseline));
    if (!rc) rc = caimg_h5_set_attr_string(out, "/deconv", "input",
                                           src.h5 ? io.dataset : "table");
    if (!rc) {
        rc = caimg_h5_commit(out);
        out = NULL;
    }
done:
    if (ss) caimg_h5_stream_close(ss);
    if (sc) caimg_h5_stream_close(sc);
    if (sk) caimg_h5_stream_close(sk);
    caimg_h5_close(out);
    caimg_h5_close(src.h5);
    caimg_trace_table_close(src.tab);
    caimg_deconv_plan_destroy(plan);
    free(Y);
    free(C);
    free(S);
    free(K);
    free(info);
    free(vb);
    free(vg);
    free(vsn);
    free(vamp);
    return rc;
}
