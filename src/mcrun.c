/* mcrun.c -- motion correction of whole movies, file to file.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caimg/error.h"
#include "caimg/h5io.h"
#include "caimg/mcrun.h"
#include "caimg/tiffio.h"
#include "internal.h"

void caimg_mc_run_opts_init(caimg_mc_run_opts *o)
{
    memset(o, 0, sizeof *o);
    caimg_mc_params_init(&o->mc);
    caimg_movie_opts_init(&o->movie);
    o->template_frames = 200;
    o->dtype = CAIMG_DT_NONE;
    o->deflate = 0;
    o->chunk = 0;
    o->fs = 0;
}

/* Read a user template of ny x nx into tmpl. */
static int read_template(const char *path, size_t ny, size_t nx, float *tmpl)
{
    int tif = caimg_is_tiff(path);
    if (tif < 0) return tif;
    if (tif) {
        caimg_tiff *t = caimg_tiff_open(path);
        if (!t) return CAIMG_EFORMAT;
        const caimg_tiff_info *in = caimg_tiff_get_info(t);
        int rc = 0;
        if (in->height != ny || in->width != nx) {
            rc = caimg_error(CAIMG_EFORMAT, "%s: template is %zux%zu, the frames are %zux%zu", path,
                             in->height, in->width, ny, nx);
        } else {
            void *buf = caimg_malloc(ny * nx, caimg_dtype_size(in->dtype), "template");
            rc = buf ? caimg_tiff_read_page(t, 0, buf) : CAIMG_ENOMEM;
            if (!rc) caimg_to_float(buf, in->dtype, tmpl, ny * nx);
            free(buf);
        }
        caimg_tiff_close(t);
        return rc;
    }
    int is_caimg;
    caimg_h5 *f = caimg_h5_open_any(path, &is_caimg);
    if (!f) return CAIMG_EFORMAT;
    static const char *const names[] = {"/mc/template", "/template"};
    const char *name = NULL;
    for (size_t i = 0; i < sizeof names / sizeof *names && !name; i++)
        if (caimg_h5_exists(f, names[i]) == 1) name = names[i];
    int rc = 0;
    if (!name) {
        rc = caimg_error(CAIMG_ENOENT, "%s: no /mc/template or /template dataset for a template", path);
    } else {
        int rank;
        size_t dims[CAIMG_H5_MAXRANK];
        void *data = NULL;
        rc = caimg_h5_read(f, name, CAIMG_DT_F32, 2, &rank, dims, &data);
        if (!rc && (dims[0] != ny || dims[1] != nx))
            rc = caimg_error(CAIMG_EFORMAT, "%s: template %s is %zux%zu, the frames are %zux%zu", path,
                             name, dims[0], dims[1], ny, nx);
        if (!rc) memcpy(tmpl, data, sizeof(float) * ny * nx);
        free(data);
    }
    caimg_h5_close(f);
    return rc;
}

/* Reading the template sample: ns frames spread evenly over the movie,
 * in its own sample type, in a thread of its own.  Where the movie's
 * frames lie in the file as they would in memory they are mapped in place
 * instead (frames[i] into the file): a sample read into fresh memory costs
 * more in the kernel's zeroing of that memory than in reading (about 0.1 s
 * for 200 frames of 512 x 512, at a point where nothing else can proceed). */
typedef struct {
    caimg_movie *m;
    void *buf;                 /* the frames read, if not mapped */
    const void **frames;       /* ns frame addresses */
    struct caimg_h5_map *map;
    size_t ns, T, fbytes;
    int rc;
    char msg[1024];
} sample_job;

static void *sample_reader(void *arg)
{
    sample_job *j = arg;
    caimg_init_thread();
    int rc = 0;
    size_t *t = caimg_malloc(j->ns, sizeof *t, "template sample");
    if (!t) rc = CAIMG_ENOMEM;
    for (size_t i = 0; !rc && i < j->ns; i++) {
        t[i] = (size_t)(((double)i + 0.5) * (double)j->T / (double)j->ns);
        if (t[i] >= j->T) t[i] = j->T - 1;
    }
    if (!rc) j->map = caimg_movie_map_frames(j->m, j->ns, t, j->frames);
    if (!rc && !j->map) {
        j->buf = caimg_malloc_big(j->ns, j->fbytes, "template sample");
        if (!j->buf) rc = CAIMG_ENOMEM;
        for (size_t i = 0; i < j->ns && !rc; i++) {
            j->frames[i] = (char *)j->buf + i * j->fbytes;
            rc = caimg_movie_read_raw(j->m, t[i], 1, (char *)j->buf + i * j->fbytes);
        }
    }
    free(t);
    if (rc) snprintf(j->msg, sizeof j->msg, "%s", caimg_errmsg());
    j->rc = rc;
    return NULL;
}

/* The registration loop overlaps I/O with computation: an I/O thread reads
 * chunk k+1 and writes chunk k-1 while the OpenMP workers register chunk k.
 * HDF5 is not thread-safe, so while the loop runs only the I/O thread calls
 * it.  Two slots of buffers alternate between the two sides. */
typedef struct {
    void *in, *out;
    float *shifts, *corr, *patch;
    unsigned char *flags;
    size_t t0, n;
} slot;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    caimg_movie *m;
    caimg_h5_stream *s_movie, *s_shift, *s_corr, *s_patch;
    caimg_dtype out_dt;
    slot sl[2];
    size_t nchunks, chunk, T;
    long read_done;      /* chunks read so far */
    long comp_done;      /* chunks registered so far */
    int abort;           /* the compute side failed or was cancelled */
    int io_rc;           /* first I/O failure */
    char io_msg[1024];
} pipe_t;

static void *io_thread(void *arg)
{
    pipe_t *q = arg;
    caimg_init_thread();
    int rc = 0;
    for (size_t k = 0; k <= q->nchunks && !rc; k++) {
        /* Read chunk k (into the slot chunk k-2 used, written already). */
        if (k < q->nchunks) {
            slot *a = &q->sl[k % 2];
            a->t0 = k * q->chunk;
            a->n = q->T - a->t0 < q->chunk ? q->T - a->t0 : q->chunk;
            rc = caimg_movie_read_raw(q->m, a->t0, a->n, a->in);
            pthread_mutex_lock(&q->mu);
            if (!rc) q->read_done = (long)k + 1;
            pthread_cond_broadcast(&q->cv);
            pthread_mutex_unlock(&q->mu);
            if (rc) break;
        }
        /* Write chunk k-1 once registered. */
        if (k >= 1) {
            pthread_mutex_lock(&q->mu);
            while (q->comp_done < (long)k && !q->abort) pthread_cond_wait(&q->cv, &q->mu);
            int stop = q->abort;
            pthread_mutex_unlock(&q->mu);
            if (stop) break;
            slot *b = &q->sl[(k - 1) % 2];
            rc = caimg_h5_stream_write(q->s_movie, b->out, q->out_dt, b->n, NULL);
            if (!rc) rc = caimg_h5_stream_write(q->s_shift, b->shifts, CAIMG_DT_F32, b->n, NULL);
            if (!rc) rc = caimg_h5_stream_write(q->s_corr, b->corr, CAIMG_DT_F32, b->n, NULL);
            if (!rc) rc = caimg_h5_stream_write(q->s_patch, b->patch, CAIMG_DT_F32, b->n, NULL);
            /* The slot is free again only after its write: reading chunk
             * k+1 into it happens in the next iteration, after this. */
        }
    }
    pthread_mutex_lock(&q->mu);
    if (rc) {
        q->io_rc = rc;
        snprintf(q->io_msg, sizeof q->io_msg, "%s", caimg_errmsg());
    }
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

int caimg_mc_run(const char *const *inputs, size_t ninputs, const char *output,
                 const caimg_mc_run_opts *opts, caimg_mc_summary *summary)
{
    caimg_mc_run_opts def;
    if (!opts) {
        caimg_mc_run_opts_init(&def);
        opts = &def;
    }
    caimg_init();
    int rc = 0;
    caimg_movie *m = NULL;
    caimg_mc_plan *plan = NULL;
    caimg_h5 *out = NULL;
    caimg_h5_stream *s_movie = NULL, *s_shift = NULL, *s_corr = NULL, *s_patch = NULL;
    void *sample = NULL;
    const void **frames = NULL;
    struct caimg_h5_map *smap = NULL;
    float *tmpl = NULL;

    if (opts->template_frames < 1)
        return caimg_error(CAIMG_EINVAL, "template frames must be at least 1");
    if (opts->deflate < 0 || opts->deflate > 9)
        return caimg_error(CAIMG_EINVAL, "deflate level %d is not 0-9", opts->deflate);
    m = caimg_movie_open(inputs, ninputs, &opts->movie);
    /* Its own status: a --channel or --plane the data does not have is
     * CAIMG_EINVAL (a usage error), as in import. */
    if (!m) return caimg_errstatus_or(CAIMG_EFORMAT);
    const char *src = caimg_movie_sources(m);
    size_t T = caimg_movie_frames(m), ny = caimg_movie_height(m), nx = caimg_movie_width(m);
    size_t npix = ny * nx;
    caimg_dtype in_dt = caimg_movie_dtype(m);
    caimg_dtype out_dt = opts->dtype;
    if (out_dt == CAIMG_DT_NONE) out_dt = in_dt == CAIMG_DT_U16 ? CAIMG_DT_U16 : CAIMG_DT_F32;
    if (out_dt != CAIMG_DT_U16 && out_dt != CAIMG_DT_F32) {
        rc = caimg_error(CAIMG_EINVAL, "output type %s is not uint16 or float32", caimg_dtype_name(out_dt));
        goto done;
    }
    if (opts->mc.border == CAIMG_MC_BORDER_NAN && out_dt != CAIMG_DT_F32) {
        rc = caimg_error(CAIMG_EINVAL, "border NaN needs float32 output");
        goto done;
    }
    if (T == 0) {
        rc = caimg_error(CAIMG_EFORMAT, "%s: the movie has no frames", src);
        goto done;
    }
    /* Template: a sample spread evenly over the movie (frames differ most
     * between the start and the end of a recording). */
    size_t ns = opts->template_frames < T ? opts->template_frames : T;
    /* At most 256 MB of the sample as float (200 frames of 512 x 512 fit;
     * 2048 x 2048 frames are limited to 16); it is held in the movie's own
     * type, which is smaller for integer movies. */
    size_t cap = (256u << 20) / (npix * sizeof(float));
    if (cap < CAIMG_MC_MIN_TEMPLATE_FRAMES) cap = CAIMG_MC_MIN_TEMPLATE_FRAMES;
    if (ns > cap) ns = cap;
    size_t fbytes = npix * caimg_dtype_size(in_dt);
    frames = caimg_malloc(ns, sizeof *frames, "template sample");
    tmpl = caimg_malloc(npix, sizeof(float), "template");
    if (!frames || !tmpl) { rc = CAIMG_ENOMEM; goto done; }
    {
        /* FFTW's planning (a few tenths of a second) needs no file and the
         * sample needs no FFTW: a second thread reads while this one plans.
         * Only the reader calls HDF5. */
        sample_job sj = {m, NULL, frames, NULL, ns, T, fbytes, 0, ""};
        pthread_t rd;
        int started = pthread_create(&rd, NULL, sample_reader, &sj) == 0;
        if (!started) sample_reader(&sj);
        caimg_mc_params mp = opts->mc;
        if (!mp.frames_hint) mp.frames_hint = T;
        plan = caimg_mc_plan_create(ny, nx, &mp);
        /* Options the plan refuses are usage errors, frames too small to
         * register a property of the data: the status says which. */
        int prc = plan ? 0 : caimg_errstatus_or(CAIMG_ENOMEM);
        if (started) pthread_join(rd, NULL);
        sample = sj.buf;
        smap = sj.map;
        if (prc) {
            rc = prc;
            caimg_error_prefix(src);
            goto done;
        }
        if (sj.rc) {
            rc = caimg_error(sj.rc, "%s", sj.msg);
            goto done;
        }
        if ((rc = caimg_progress("reading sample", (double)ns, (double)ns))) goto done;
    }
    if (opts->template_path) {
        if ((rc = read_template(opts->template_path, ny, nx, tmpl))) goto done;
        if ((rc = caimg_mc_set_template(plan, tmpl))) {
            caimg_error_prefix(opts->template_path);
            rc = CAIMG_EFORMAT;
            goto done;
        }
        if (opts->mc.bidi == CAIMG_MC_BIDI_AUTO) {
            /* The offset is a property of the raw frames, so it comes from
             * their mean whatever the template. */
            double *acc = caimg_calloc(npix, sizeof(double), "mean image");
            if (!acc) { rc = CAIMG_ENOMEM; goto done; }
            size_t used = 0;
            for (size_t i = 0; i < ns; i++) {
                float *f = tmpl;
                caimg_to_float(frames[i], in_dt, f, npix);
                int ok = 1;
                for (size_t k = 0; k < npix && ok; k++) ok = isfinite(f[k]);
                if (!ok) continue;
                for (size_t k = 0; k < npix; k++) acc[k] += f[k];
                used++;
            }
            for (size_t k = 0; k < npix; k++) tmpl[k] = used ? (float)(acc[k] / (double)used) : 0;
            free(acc);
            double b = 0;
            if (used) rc = caimg_mc_estimate_bidi(tmpl, ny, nx, &b);
            if (rc) goto done;
            if (!opts->mc.bidi_subpixel) b = floor(b + 0.5);
            caimg_mc_set_bidi(plan, b);
        }
    } else {
        rc = caimg_mc_make_template_frames(plan, frames, in_dt, ns);
        if (rc) {
            caimg_error_prefix(src);
            goto done;
        }
    }
    free(sample);
    sample = NULL;
    caimg_movie_unmap(smap);
    smap = NULL;

    /* Output. */
    size_t npy, npx;
    const float *pcy, *pcx;
    caimg_mc_plan_grid(plan, &npy, &npx, &pcy, &pcx);
    const caimg_mc_params *par = caimg_mc_plan_params(plan);
    double fs = opts->fs > 0 ? opts->fs : caimg_movie_fs(m);
    out = caimg_h5_create(output, "mc", opts->cmdline ? opts->cmdline : "caimg_mc_run");
    if (!out) { rc = caimg_errmsg()[0] ? CAIMG_EIO : CAIMG_ENOMEM; goto done; }
    for (size_t i = 0; !rc && i < ninputs; i++) rc = caimg_h5_add_input(out, inputs[i], 1);
    if (opts->template_path && !rc) rc = caimg_h5_add_input(out, opts->template_path, 0);
    if (rc) goto done;
    caimg_h5_param_double(out, "max-shift", par->max_shift);
    caimg_h5_param_double(out, "smooth", par->smooth_sigma);
    caimg_h5_param(out, "no-whiten", "%s", par->whiten ? "no" : "yes");
    caimg_h5_param_double(out, "taper", par->taper);
    caimg_h5_param(out, "piecewise", "%s", par->piecewise ? "yes" : "no");
    if (par->piecewise) {
        caimg_h5_param(out, "patch", "%zu", par->patch);
        caimg_h5_param(out, "overlap", "%zu", par->overlap);
        caimg_h5_param_double(out, "max-dev", par->max_dev);
        caimg_h5_param_double(out, "min-pnr", par->min_pnr);
    }
    caimg_h5_param(out, "interp", "%s", par->interp == CAIMG_MC_INTERP_BILINEAR ? "bilinear" : "bicubic");
    caimg_h5_param(out, "border", "%s", par->border == CAIMG_MC_BORDER_NAN ? "nan"
                                       : par->border == CAIMG_MC_BORDER_ZERO ? "zero" : "nearest");
    /* The template built from the data has no option value: --template
     * takes a file. */
    if (opts->template_path) caimg_h5_param(out, "template", "%s", opts->template_path);
    else caimg_h5_param_derived(out, "template", "data");
    caimg_h5_param(out, "template-frames", "%zu", ns);
    caimg_h5_param(out, "template-iter", "%d", par->template_iter);
    /* The --bidi given, so that a replay decides the same way; the offset
     * found and applied beside it. */
    if (opts->mc.bidi == CAIMG_MC_BIDI_AUTO) caimg_h5_param(out, "bidi", "auto");
    else if (opts->mc.bidi == CAIMG_MC_BIDI_OFF) caimg_h5_param(out, "bidi", "off");
    else caimg_h5_param_double(out, "bidi", opts->mc.bidi_offset);
    caimg_h5_param(out, "bidi-subpixel", "%s", opts->mc.bidi_subpixel ? "yes" : "no");
    caimg_h5_param_derived(out, "bidi-offset", "%.17g", caimg_mc_get_bidi(plan));
    caimg_h5_param(out, "dtype", "%s", caimg_dtype_name(out_dt));
    caimg_h5_param(out, "deflate", "%d", opts->deflate);
    if (fs > 0) caimg_h5_param_double(out, "fs", fs);
    else caimg_h5_param_derived(out, "fs", "0 (unknown)");
    caimg_h5_param(out, "fftw-measure", "%s", par->measure ? "yes" : "no");
    {
        size_t inner[3] = {ny, nx, 0};
        s_movie = caimg_h5_stream_create(out, "/movie", out_dt, 3, inner, opts->deflate, T);
        inner[0] = 2;
        s_shift = caimg_h5_stream_create(out, "/mc/shifts", CAIMG_DT_F32, 2, inner, 0, T);
        s_corr = caimg_h5_stream_create(out, "/mc/corr", CAIMG_DT_F32, 1, NULL, 0, T);
        inner[0] = npy;
        inner[1] = npx;
        inner[2] = 2;
        s_patch = caimg_h5_stream_create(out, "/mc/patch_shifts", CAIMG_DT_F32, 4, inner, 0, T);
        if (!s_movie || !s_shift || !s_corr || !s_patch) { rc = CAIMG_EIO; goto done; }
    }

    /* Chunks of about 32 MB of input: large enough for efficient I/O and
     * for every thread to have work, small enough that memory does not
     * depend on the length of the recording. */
    size_t isz = caimg_dtype_size(in_dt), osz = caimg_dtype_size(out_dt);
    size_t chunk = opts->chunk;
    if (!chunk) {
        chunk = (32u << 20) / (npix * isz);
        if (chunk < 16) chunk = 16;
        if (chunk > 256) chunk = 256;
    }
    if (chunk > T) chunk = T;
    pipe_t q;
    memset(&q, 0, sizeof q);
    for (int k = 0; k < 2 && !rc; k++) {
        slot *a = &q.sl[k];
        a->in = caimg_malloc_big(chunk, npix * isz, "input frames");
        a->out = isz == osz ? a->in : caimg_malloc_big(chunk, npix * osz, "corrected frames");
        a->shifts = caimg_malloc(chunk, 2 * sizeof(float), "shifts");
        a->corr = caimg_malloc(chunk, sizeof(float), "correlations");
        a->patch = caimg_malloc(chunk, npy * npx * 2 * sizeof(float), "patch shifts");
        a->flags = caimg_malloc(chunk, 1, "frame flags");
        if (!a->in || !a->out || !a->shifts || !a->corr || !a->patch || !a->flags) rc = CAIMG_ENOMEM;
    }
    caimg_mc_reset(plan);
    size_t clamped = 0;
    if (!rc) {
        q.m = m;
        q.s_movie = s_movie;
        q.s_shift = s_shift;
        q.s_corr = s_corr;
        q.s_patch = s_patch;
        q.out_dt = out_dt;
        q.chunk = chunk;
        q.T = T;
        q.nchunks = (T + chunk - 1) / chunk;
        pthread_mutex_init(&q.mu, NULL);
        pthread_cond_init(&q.cv, NULL);
        pthread_t io;
        if (pthread_create(&io, NULL, io_thread, &q)) {
            rc = caimg_error(CAIMG_EFAIL, "cannot start the I/O thread");
        } else {
            for (size_t k = 0; k < q.nchunks && !rc; k++) {
                pthread_mutex_lock(&q.mu);
                while (q.read_done <= (long)k && !q.io_rc) pthread_cond_wait(&q.cv, &q.mu);
                int failed = q.io_rc;
                pthread_mutex_unlock(&q.mu);
                if (failed) break;
                slot *a = &q.sl[k % 2];
                caimg_mc_frames res = {a->shifts, a->patch, a->corr, a->flags};
                rc = caimg_mc_execute(plan, a->in, in_dt, a->out, out_dt, a->n, &res, &clamped);
                if (!rc) rc = caimg_progress("registering", (double)(a->t0 + a->n), (double)T);
                pthread_mutex_lock(&q.mu);
                if (rc) q.abort = 1;
                else q.comp_done = (long)k + 1;
                pthread_cond_broadcast(&q.cv);
                pthread_mutex_unlock(&q.mu);
            }
            pthread_join(io, NULL);
            if (!rc && q.io_rc) rc = caimg_error(q.io_rc, "%s", q.io_msg);
        }
        pthread_mutex_destroy(&q.mu);
        pthread_cond_destroy(&q.cv);
    }
    for (int k = 0; k < 2; k++) {
        if (q.sl[k].out != q.sl[k].in) free(q.sl[k].out);
        free(q.sl[k].in);
        free(q.sl[k].shifts);
        free(q.sl[k].corr);
        free(q.sl[k].patch);
        free(q.sl[k].flags);
    }
    if (rc) goto done;
    caimg_h5_stream *all[4] = {s_movie, s_shift, s_corr, s_patch};
    rc = caimg_h5_stream_close_all(all, 4);
    s_movie = all[0];
    s_shift = all[1];
    s_corr = all[2];
    s_patch = all[3];   /* those still open are closed in the cleanup below */
    if (rc) goto done;

    caimg_mc_summary sum;
    if ((rc = caimg_mc_get_summary(plan, &sum, NULL, NULL))) goto done;
    {
        size_t d2[2] = {ny, nx}, d1;
        int32_t valid[4] = {sum.valid[0], sum.valid[1], sum.valid[2], sum.valid[3]};
        rc = caimg_h5_write(out, "/mc/template", CAIMG_DT_F32, 2, d2, caimg_mc_get_template(plan));
        d1 = npy;
        if (!rc) rc = caimg_h5_write(out, "/mc/patch_y", CAIMG_DT_F32, 1, &d1, pcy);
        d1 = npx;
        if (!rc) rc = caimg_h5_write(out, "/mc/patch_x", CAIMG_DT_F32, 1, &d1, pcx);
        d1 = 4;
        if (!rc) rc = caimg_h5_write(out, "/mc/valid", CAIMG_DT_I32, 1, &d1, valid);
    }
    if (!rc) rc = caimg_h5_set_attr_double(out, "/mc", "bidi_offset", sum.bidi_offset);
    if (!rc) rc = caimg_h5_set_attr_double(out, "/mc", "crispness_before", sum.crispness_before);
    if (!rc) rc = caimg_h5_set_attr_double(out, "/mc", "crispness_after", sum.crispness_after);
    if (!rc) rc = caimg_h5_set_attr_double(out, "/mc", "fs", fs);
    if (!rc) rc = caimg_h5_set_attr_double(out, "/movie", "fs", fs);
    if (!rc) rc = caimg_h5_set_attr_double(out, "/movie", "pixel_um", caimg_movie_pixel_um(m));
    if (rc) goto done;
    if (sum.valid[0] >= sum.valid[1] || sum.valid[2] >= sum.valid[3])
        caimg_warn("no pixel stayed inside the frame in every frame (the valid box is empty)");
    if (sum.unusable)
        caimg_warn("%zu of %zu frames were blank, saturated or mostly NaN; they were given the "
                   "shift of the frame before them", sum.unusable, T);
    if (sum.filled)
        caimg_warn("%zu frames had NaN or infinite pixels; they were replaced by the frame's "
                   "mean, for registration and in the corrected movie", sum.filled);
    if (sum.clipped)
        caimg_warn("%zu frames moved by %g px or more, the largest shift searched; their shifts "
                   "are probably wrong (raise --max-shift)", sum.clipped, par->max_shift);
    if (clamped)
        caimg_warn("%zu samples (%.2g%%) were outside the range of %s after resampling (cubic "
                   "overshoot near 0, or saturation) and were clamped; --dtype float32 keeps them",
                   clamped, 100.0 * (double)clamped / ((double)T * (double)npix),
                   caimg_dtype_name(out_dt));
    rc = caimg_h5_commit(out);
    out = NULL;
    if (!rc && summary) *summary = sum;
done:
    caimg_h5_stream_close(s_movie);
    caimg_h5_stream_close(s_shift);
    caimg_h5_stream_close(s_corr);
    caimg_h5_stream_close(s_patch);
    caimg_h5_close(out);
    caimg_mc_plan_destroy(plan);
    caimg_movie_close(m);
    free(sample);
    free(frames);
    caimg_movie_unmap(smap);
    free(tmpl);
    return rc;
}
