/* dff_run.c -- the dff stage: ROI traces in an HDF5 file to dF/F.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "caimg/dff.h"
#include "caimg/error.h"
#include "caimg/h5io.h"
#include "internal.h"
#include "traceio.h"

void caimg_dff_io_init(caimg_dff_io *io)
{
    io->F = "/roi/F";
    io->Fneu = "/roi/Fneu";
    io->block = 0;
    io->deflate = 0;
}

/* The parameters as `key = value` lines, keys being the command's long
 * options, so that a record can be replayed as a --config file. */
static void record_params(caimg_h5 *out, const caimg_dff_params *p, const caimg_dff_io *io)
{
    const caimg_baseline_params *b = &p->bparams;
    caimg_h5_param_double(out, "fs", p->fs);
    caimg_h5_param(out, "traces", "%s", io->F);
    caimg_h5_param(out, "neuropil-traces", "%s", io->Fneu && io->Fneu[0] ? io->Fneu : "none");
    if (p->estimate_r) {
        caimg_h5_param(out, "neuropil", "estimate");
        caimg_h5_param(out, "neuropil-range", "%g,%g", p->r_min, p->r_max);
        caimg_h5_param_double(out, "neuropil-quantile", p->r_quantile);
    } else {
        caimg_h5_param_double(out, "neuropil", p->r);
    }
    caimg_h5_param(out, "baseline", "%s", caimg_baseline_type_name(p->baseline));
    if (b->window_s > 0) caimg_h5_param_double(out, "window", b->window_s);
    if (b->window_frames > 0) caimg_h5_param_double(out, "window-frames", b->window_frames);
    if (p->baseline == caimg_baseline_maximin) caimg_h5_param_double(out, "sigma", b->sigma_frames);
    if (p->baseline != caimg_baseline_maximin) {
        if (b->percentile < 0) caimg_h5_param(out, "percentile", "auto");
        else caimg_h5_param_double(out, "percentile", b->percentile);
    }
    if (p->baseline == caimg_baseline_lowpass) {
        caimg_h5_param_double(out, "lowpass", b->lowpass_hz);
        caimg_h5_param(out, "taps", "%d", b->lowpass_taps);
    }
    caimg_h5_param_double(out, "f0-floor", p->f0_floor);
    caimg_h5_param(out, "noise-band", "%g,%g", p->noise_band[0], p->noise_band[1]);
    caimg_h5_param(out, "noise-method", "%s", caimg_noise_method_name(p->noise_method));
}

int caimg_dff_run(const char *input, const char *output, const caimg_dff_params *pin,
                  const caimg_dff_io *io_in, const char *cmdline)
{
    caimg_init();
    caimg_dff_io io;
    if (io_in) io = *io_in;
    else caimg_dff_io_init(&io);
    if (!io.F || !io.F[0]) io.F = "/roi/F";
    int with_neu = io.Fneu && io.Fneu[0];
    caimg_dff_params p = *pin;
    int rc = CAIMG_OK;
    caimg_h5 *in = NULL, *out = NULL;
    caimg_h5_stream *sd = NULL, *sb = NULL;
    float *F = NULL, *N = NULL, *D = NULL, *B = NULL;
    double *r = NULL, *npsd = NULL, *ncas = NULL;

    in = caimg_h5_open_any(input, NULL);
    if (!in) return CAIMG_EFORMAT;
    int rank;
    size_t dims[CAIMG_H5_MAXRANK], ndims[CAIMG_H5_MAXRANK];
    rc = caimg_h5_dims(in, io.F, &rank, dims);
    if (rc) goto done;
    if (rank != 2) {
        rc = caimg_error(CAIMG_EFORMAT, "%s: %s has rank %d, expected 2 ([ROIs][frames])", input,
                         io.F, rank);
        goto done;
    }
    size_t n = dims[0], T = dims[1];
    /* No ROIs is a valid result (caimg roi finds none in a blank movie,
     * caimg-h5(5)): the outputs are then [0][T] and [0], so the pipeline
     * runs on.  ROIs without frames have no traces to work on. */
    if (n > 0 && T == 0) {
        rc = caimg_error(CAIMG_EFORMAT, "%s: %s is empty (%zu ROIs, 0 frames)", input, io.F, n);
        goto done;
    }
    if (with_neu) {
        rc = caimg_h5_dims(in, io.Fneu, &rank, ndims);
        if (rc) goto done;
        if (rank != 2 || ndims[0] != n || ndims[1] != T) {
            rc = caimg_error(CAIMG_EFORMAT, "%s: %s is not [%zu][%zu] like %s", input, io.Fneu, n, T,
                             io.F);
            goto done;
        }
    }
    if (!(p.fs > 0)) {
        static const char *const groups[] = {"/roi", "/movie", NULL};
        p.fs = caimg_trace_fs(in, io.F, groups);
        if (!(p.fs > 0)) {
            rc = caimg_error(CAIMG_EFORMAT, "%s: the frame rate is unknown (no fs attribute on %s, "
                             "/roi or /movie); give it with --fs", input, io.F);
            goto done;
        }
    }

    out = caimg_h5_create(output, "dff", cmdline);
    if (!out) {
        rc = caimg_errmsg()[0] ? CAIMG_EIO : CAIMG_ENOMEM;
        goto done;
    }
    rc = caimg_h5_add_input(out, input, 1);
    if (rc) goto done;
    record_params(out, &p, &io);
    size_t inner[1] = {T};
    sd = caimg_h5_stream_create(out, "/dff/dff", CAIMG_DT_F32, 2, inner, io.deflate, n);
    sb = sd ? caimg_h5_stream_create(out, "/dff/baseline", CAIMG_DT_F32, 2, inner, io.deflate, n)
            : NULL;
    if (!sd || !sb) {
        rc = CAIMG_EIO;
        goto done;
    }
    size_t blk = caimg_trace_block(n, T * sizeof(float) * 4, io.block);
    F = caimg_malloc(blk * T, sizeof *F, "a block of traces");
    N = with_neu ? caimg_malloc(blk * T, sizeof *N, "a block of traces") : NULL;
    D = caimg_malloc(blk * T, sizeof *D, "a block of traces");
    B = caimg_malloc(blk * T, sizeof *B, "a block of traces");
    r = caimg_malloc(n, sizeof *r, "per-ROI results");
    npsd = caimg_malloc(n, sizeof *npsd, "per-ROI results");
    ncas = caimg_malloc(n, sizeof *ncas, "per-ROI results");
    if (!F || (with_neu && !N) || !D || !B || !r || !npsd || !ncas) {
        rc = CAIMG_ENOMEM;
        goto done;
    }
    /* Read a block in this thread (HDF5 is not thread-safe), compute it in
     * parallel, write it, so that memory is bounded by the block size. */
    for (size_t i0 = 0; i0 < n && !rc; i0 += blk) {
        size_t m = n - i0 < blk ? n - i0 : blk;
        rc = caimg_h5_read_rows(in, io.F, CAIMG_DT_F32, i0, m, F);
        if (!rc && with_neu) rc = caimg_h5_read_rows(in, io.Fneu, CAIMG_DT_F32, i0, m, N);
        if (!rc) rc = caimg_dff_compute(&p, m, T, F, N, D, B, r + i0, npsd + i0, ncas + i0, NULL,
                                        i0);
        if (!rc) rc = caimg_h5_stream_write(sd, D, CAIMG_DT_F32, m, NULL);
        if (!rc) rc = caimg_h5_stream_write(sb, B, CAIMG_DT_F32, m, NULL);
        if (!rc) rc = caimg_progress("dF/F", (double)(i0 + m), (double)n);
    }
    if (rc) goto done;
    caimg_h5_stream *all[2] = {sd, sb};
    rc = caimg_h5_stream_close_all(all, 2);
    sd = all[0];
    sb = all[1];   /* one still open is closed in the cleanup below */
    if (!rc) rc = caimg_trace_write_vec(out, "/dff/r", r, n, 1,
                                         "neuropil coefficient: Fc = F - r Fneu");
    if (!rc) rc = caimg_trace_write_vec(out, "/dff/noise_psd", npsd, n, 1,
                                         "dF/F (fraction), noise sd per frame from the PSD");
    if (!rc) rc = caimg_trace_write_vec(out, "/dff/noise_cascade", ncas, n, 1,
                                         "percent dF/F per sqrt(Hz) (Cascade's noise level)");
    if (!rc) rc = caimg_h5_set_attr_string(out, "/dff/dff", "units",
                                           "dF/F as a fraction: (Fc - F0) / max(F0, floor)");
    if (!rc) rc = caimg_h5_set_attr_string(out, "/dff/baseline", "units",
                                           "F0, units of F (neuropil-corrected, not floored)");
    if (!rc) rc = caimg_h5_set_attr_double(out, "/dff", "fs", p.fs);
    if (!rc) rc = caimg_h5_set_attr_string(out, "/dff", "baseline_method",
                                           caimg_baseline_type_name(p.baseline));
    if (!rc) rc = caimg_h5_set_attr_double(out, "/dff", "f0_floor", p.f0_floor);
    if (!rc) {
        rc = caimg_h5_commit(out);
        out = NULL;
    }
done:
    if (sd) caimg_h5_stream_close(sd);
    if (sb) caimg_h5_stream_close(sb);
    caimg_h5_close(out);
    caimg_h5_close(in);
    free(F);
    free(N);
    free(D);
    free(B);
    free(r);
    free(npsd);
    free(ncas);
    return rc;
}
