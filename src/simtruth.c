/* simtruth.c -- writing the ground truth of a simulation to a caimg HDF5
 * file, and stimulus schedules to TSV.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * The layout is documented in caimg-h5(5) (section /truth) and
 * caimg/simulate.h.  Everything lives under /truth so that a truth file can
 * also be the movie file, and so that stages which link their inputs'
 * top-level objects carry the truth along.
 */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <hdf5.h>

#include "caimg/h5io.h"
#include "caimg/simulate.h"
#include "caimg/tsv.h"
#include "internal.h"

/* int64 is not one of the caimg sample types, so the pixel-list offsets
 * (int64 in the roi format too) are written with HDF5 directly. */
static int write_i64(caimg_h5 *f, const char *name, const int64_t *v, size_t n)
{
    hid_t fid = caimg_h5_hid(f);
    hsize_t d = n;
    hid_t sp = H5Screate_simple(1, &d, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t ds = H5Dcreate2(fid, name, H5T_STD_I64LE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    int rc = 0;
    if (ds < 0 || H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
        rc = caimg_error(CAIMG_EIO, "%s: cannot write %s", caimg_h5_path(f), name);
    if (ds >= 0) H5Dclose(ds);
    H5Pclose(lcpl);
    H5Sclose(sp);
    return rc;
}

static int w1(caimg_h5 *f, const char *name, caimg_dtype dt, size_t n, const void *v)
{
    size_t d[1] = {n};
    return caimg_h5_write(f, name, dt, 1, d, v);
}

static int w2(caimg_h5 *f, const char *name, caimg_dtype dt, size_t a, size_t b, const void *v)
{
    size_t d[2] = {a, b};
    return caimg_h5_write(f, name, dt, 2, d, v);
}

/* A per-neuron column of doubles gathered from structs. */
#define COLUMN(field_expr, name)                                                  \
    do {                                                                          \
        for (size_t i = 0; i < N; i++) col[i] = (field_expr);                     \
        if (!rc) rc = w1(f, name, CAIMG_DT_F64, N, col);                          \
    } while (0)

int caimg_sim_write_truth(const caimg_sim *s, caimg_h5 *f)
{
    const caimg_sim_truth *t = caimg_sim_get_truth(s);
    const caimg_sim_params *p = caimg_sim_get_params(s);
    size_t N = t->neurons, T = t->frames, Y = t->height, X = t->width;
    size_t M = (size_t)t->pix_start[N];
    int rc = caimg_h5_mkgroup(f, "/truth");
    double *col = caimg_malloc(N + 1, sizeof(double), "a truth column");
    float *img = caimg_malloc(Y * X, sizeof(float), "a truth image");
    int32_t *lab = caimg_calloc(Y * X, sizeof(int32_t), "a truth label image");
    float *best = caimg_calloc(Y * X, sizeof(float), "a truth label image");
    if (!col || !img || !lab || !best) {
        rc = CAIMG_ENOMEM;
        goto out;
    }
    /* Attributes: everything needed to interpret the arrays. */
    const char *g = "/truth";
    if (!rc) rc = caimg_h5_set_attr_double(f, g, "fs", t->fs);
    if (!rc) rc = caimg_h5_set_attr_long(f, g, "height", (long)Y);
    if (!rc) rc = caimg_h5_set_attr_long(f, g, "width", (long)X);
    if (!rc) rc = caimg_h5_set_attr_long(f, g, "frames", (long)T);
    if (!rc) rc = caimg_h5_set_attr_long(f, g, "neurons", (long)N);
    if (!rc) rc = caimg_h5_set_attr_double(f, g, "pixel_um", p->pixel_um);
    if (!rc) rc = caimg_h5_set_attr_double(f, g, "photons", t->photons);
    if (!rc) rc = caimg_h5_set_attr_double(f, g, "gain", t->gain);
    if (!rc) rc = caimg_h5_set_attr_double(f, g, "offset", t->offset);
    if (!rc) rc = caimg_h5_set_attr_double(f, g, "read_noise", t->read_noise);
    if (!rc) rc = caimg_h5_set_attr_double(f, g, "dark", t->dark);
    if (!rc) rc = caimg_h5_set_attr_double(f, g, "bidi_offset", t->bidi);
    if (!rc) rc = caimg_h5_set_attr_double(f, g, "max_abs_shift", t->max_abs_shift);
    if (!rc) rc = caimg_h5_set_attr_double(f, g, "soma_edge", N ? t->soma[0].edge : p->edge);
    if (!rc) rc = caimg_h5_set_attr_long(f, g, "seed", (long)p->seed);
    if (!rc) rc = caimg_h5_set_attr_long(f, g, "ar_order", p->ar_order);
    if (!rc) rc = caimg_h5_set_attr_string(f, g, "indicator", p->indicator ? p->indicator : "");
    if (!rc) rc = caimg_h5_set_attr_string(f, g, "units",
        "traces in photons per pixel per frame (ADU = offset + gain * photons); "
        "calcium in dF/F; rate in Hz; spikes in counts per frame; distances in pixels");

    /* Motion. */
    if (!rc) rc = w2(f, "/truth/shifts", CAIMG_DT_F32, T, 2, t->shifts);
    if (!rc && t->deform) {
        size_t d[4] = {T, t->deform_gy, t->deform_gx, 2};
        rc = caimg_h5_write(f, "/truth/deform", CAIMG_DT_F32, 4, d, t->deform);
        for (size_t j = 0; j < t->deform_gy; j++) col[j] = (double)j * t->deform_sy;
        if (!rc) rc = w1(f, "/truth/deform_y", CAIMG_DT_F64, t->deform_gy, col);
        for (size_t k = 0; k < t->deform_gx; k++) col[k] = (double)k * t->deform_sx;
        if (!rc) rc = w1(f, "/truth/deform_x", CAIMG_DT_F64, t->deform_gx, col);
        if (!rc) rc = caimg_h5_set_attr_string(f, "/truth/deform", "interpolation",
            "separable cubic convolution (Keys, a = -0.5) of the node grid at frame "
            "pixels, node indices clamped at the borders; total displacement = "
            "shifts[t] + field");
    }

    /* Neurons: ragged pixel lists as in /roi, geometry, and a label image. */
    if (!rc) rc = write_i64(f, "/truth/pix_start", t->pix_start, N + 1);
    if (!rc) rc = w2(f, "/truth/pix_index", CAIMG_DT_I32, M, 2, t->pix_index);
    if (!rc) rc = w1(f, "/truth/pix_weight", CAIMG_DT_F32, M, t->pix_weight);
    if (!rc) rc = w1(f, "/truth/pix_body", CAIMG_DT_F32, M, t->pix_body);
    for (size_t i = 0; i < N; i++)
        for (int64_t k = t->pix_start[i]; k < t->pix_start[i + 1]; k++) {
            size_t px = (size_t)t->pix_index[2 * k] * X + (size_t)t->pix_index[2 * k + 1];
            if (t->pix_body[k] >= 0.5f && t->pix_body[k] > best[px]) {
                best[px] = t->pix_body[k];
                lab[px] = (int32_t)(i + 1);
            }
        }
    if (!rc) rc = w2(f, "/truth/labels", CAIMG_DT_I32, Y, X, lab);
    COLUMN(t->soma[i].cy, "/truth/soma/cy");
    COLUMN(t->soma[i].cx, "/truth/soma/cx");
    COLUMN(t->soma[i].ra, "/truth/soma/ra");
    COLUMN(t->soma[i].rb, "/truth/soma/rb");
    COLUMN(t->soma[i].theta, "/truth/soma/theta");
    COLUMN(t->soma[i].nucleus, "/truth/soma/nucleus");
    COLUMN(t->soma[i].nucleus_brightness, "/truth/soma/nucleus_brightness");
    COLUMN(t->soma[i].edge, "/truth/soma/edge");
    if (!rc) rc = w1(f, "/truth/brightness", CAIMG_DT_F32, N, t->brightness);
    if (!rc) rc = w1(f, "/truth/snr", CAIMG_DT_F32, N, t->snr);

    /* Activity. */
    if (!rc) rc = w2(f, "/truth/spikes", CAIMG_DT_F32, N, T, t->spikes);
    if (!rc) rc = w2(f, "/truth/calcium", CAIMG_DT_F32, N, T, t->calcium);
    if (!rc) rc = w2(f, "/truth/rate", CAIMG_DT_F32, N, T, t->rate);
    if (!rc) rc = w2(f, "/truth/baseline", CAIMG_DT_F32, N, T, t->baseline);
    if (!rc) rc = w2(f, "/truth/neuropil", CAIMG_DT_F32, N, T, t->neuropil);
    if (!rc) rc = w1(f, "/truth/global_gain", CAIMG_DT_F32, T, t->global_gain);
    if (!rc) rc = w2(f, "/truth/g", CAIMG_DT_F32, N, 2, t->g);
    if (!rc) rc = w1(f, "/truth/alpha", CAIMG_DT_F32, N, t->alpha);
    if (!rc) rc = w1(f, "/truth/amplitude", CAIMG_DT_F32, N, t->amplitude);
    if (!rc) rc = w1(f, "/truth/tau_rise", CAIMG_DT_F32, N, t->tau_rise);
    if (!rc) rc = w1(f, "/truth/tau_decay", CAIMG_DT_F32, N, t->tau_decay);

    /* The noise-free reference frame (what a perfect template would be, at
     * rest, frame 0's brightness). */
    if (!rc) rc = caimg_sim_render(s, 0, CAIMG_SIM_NOISELESS | CAIMG_SIM_STILL, img);
    if (!rc) rc = w2(f, "/truth/reference", CAIMG_DT_F32, Y, X, img);

    /* Stimuli. */
    if (!rc && t->stimuli) {
        const caimg_stimset *st = t->stimuli;
        size_t d[3] = {st->n, st->h, st->w};
        rc = caimg_h5_write(f, "/truth/stim/images", CAIMG_DT_F32, 3, d, st->images);
        int32_t *sch = caimg_malloc(t->npres * 3 + 1, sizeof(int32_t), "the schedule");
        if (!sch && !rc) rc = CAIMG_ENOMEM;
        if (!rc) {
            for (size_t k = 0; k < t->npres; k++) {
                sch[3 * k] = (int32_t)t->schedule[k].onset;
                sch[3 * k + 1] = (int32_t)t->schedule[k].stimulus;
                sch[3 * k + 2] = (int32_t)t->schedule[k].duration;
            }
            rc = w2(f, "/truth/stim/schedule", CAIMG_DT_I32, t->npres, 3, sch);
        }
        free(sch);
        if (!rc) rc = w2(f, "/truth/stim/response", CAIMG_DT_F32, st->n, N, t->response);
        if (!rc) rc = caimg_h5_set_attr_string(f, "/truth/stim", "image_units",
                                               "grey levels in [0, 1], 0.5 = mean grey");
        if (!rc) rc = caimg_h5_set_attr_double(f, "/truth/stim", "latency_s", p->stim_latency);
        COLUMN(t->rf[i].type, "/truth/stim/rf/type");
        COLUMN(t->rf[i].cy, "/truth/stim/rf/cy");
        COLUMN(t->rf[i].cx, "/truth/stim/rf/cx");
        COLUMN(t->rf[i].sigma, "/truth/stim/rf/sigma");
        COLUMN(t->rf[i].aspect, "/truth/stim/rf/aspect");
        COLUMN(t->rf[i].wavelength, "/truth/stim/rf/wavelength");
        COLUMN(t->rf[i].theta, "/truth/stim/rf/theta");
        COLUMN(t->rf[i].phase, "/truth/stim/rf/phase");
        COLUMN(t->rf[i].exponent, "/truth/stim/rf/exponent");
        COLUMN(t->rf[i].gain, "/truth/stim/rf/gain");
        COLUMN(t->rf[i].baseline, "/truth/stim/rf/baseline");
    }
out:
    free(col);
    free(img);
    free(lab);
    free(best);
    return rc;
}

/* ---- schedules as TSV -------------------------------------------------------- */

int caimg_schedule_write_tsv(FILE *fp, const caimg_presentation *p, size_t n)
{
    fprintf(fp, "onset_frame\tstimulus\tduration_frames\n");
    for (size_t k = 0; k < n; k++)
        fprintf(fp, "%zu\t%zu\t%zu\n", p[k].onset, p[k].stimulus, p[k].duration);
    return ferror(fp) ? caimg_error(CAIMG_EIO, "cannot write the schedule") : 0;
}

int caimg_schedule_read_tsv(const char *path, caimg_presentation **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    caimg_table *t = caimg_table_read(path);
    if (!t) return CAIMG_EFORMAT;
    long co = caimg_table_column(t, "onset_frame"), cs = caimg_table_column(t, "stimulus");
    long cd = caimg_table_column(t, "duration_frames");
    int rc = 0;
    if (!t->colnames) {
        /* No header: the documented column order. */
        co = 0;
        cs = t->ncols > 1 ? 1 : -1;
        cd = t->ncols > 2 ? 2 : -1;
    }
    if (co < 0 || cs < 0) {
        rc = caimg_error(CAIMG_EFORMAT, "%s: a schedule needs columns onset_frame and stimulus",
                         path);
        goto out;
    }
    caimg_presentation *p = caimg_malloc(t->nrows, sizeof *p, "a schedule");
    if (!p) {
        rc = CAIMG_ENOMEM;
        goto out;
    }
    for (size_t r = 0; r < t->nrows; r++) {
        double v[3] = {t->data[r * t->ncols + (size_t)co], t->data[r * t->ncols + (size_t)cs],
                       cd >= 0 ? t->data[r * t->ncols + (size_t)cd] : 0};
        for (int k = 0; k < 3; k++)
            if (!(v[k] >= 0) || v[k] != floor(v[k]) || v[k] > 1e12) {
                rc = caimg_error(CAIMG_EFORMAT,
                                 "%s: row %zu: onset, stimulus and duration must be "
                                 "non-negative integers", path, r + 1);
                free(p);
                goto out;
            }
        p[r].onset = (size_t)v[0];
        p[r].stimulus = (size_t)v[1];
        p[r].duration = (size_t)v[2];
    }
    *out = p;
    *n = t->nrows;
out:
    caimg_table_free(t);
    return rc;
}
