/* ann_io.c -- image preprocessing for the response model, and saving and
 * loading models in caimg HDF5 files.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caimg/ann.h"
#include "caimg/h5io.h"
#include "ann_internal.h"
#include "internal.h"

/* ---- preprocessing ------------------------------------------------------------ */

void caimg_ann_prep_init(caimg_ann_prep *p, size_t h, size_t w)
{
    p->src_h = p->crop_h = h;
    p->src_w = p->crop_w = w;
    p->crop_y = p->crop_x = 0;
}

int caimg_ann_set_prep(caimg_ann *m, const caimg_ann_prep *p)
{
    if (!p->src_h || !p->src_w || !p->crop_h || !p->crop_w ||
        p->crop_y + p->crop_h > p->src_h || p->crop_x + p->crop_w > p->src_w)
        return caimg_error(CAIMG_EINVAL, "crop box %zu+%zu x %zu+%zu does not fit in %zux%zu images",
                           p->crop_y, p->crop_h, p->crop_x, p->crop_w, p->src_h, p->src_w);
    if (m->L[0].ic != 1)
        return caimg_error(CAIMG_EINVAL, "image preprocessing needs a single-channel model input");
    m->prep = *p;
    return 0;
}

const caimg_ann_prep *caimg_ann_get_prep(const caimg_ann *m)
{
    return &m->prep;
}

/* 1-D resampling of n samples (stride `is`) to `on` samples (stride `os`)
 * with a triangle kernel whose half-width is max(1, n/on) input samples:
 * linear interpolation when enlarging, an area-like average when shrinking.
 * Taps outside the input are dropped and the weights renormalised, which
 * keeps edges unbiased. */
static void resample(const float *in, size_t n, size_t is, float *out, size_t on, size_t os)
{
    const double s = (double)n / (double)on;
    const double support = s > 1.0 ? s : 1.0;
    for (size_t i = 0; i < on; i++) {
        double c = ((double)i + 0.5) * s - 0.5;
        long j0 = (long)ceil(c - support), j1 = (long)floor(c + support);
        double acc = 0.0, wsum = 0.0;
        for (long j = j0; j <= j1; j++) {
            if (j < 0 || j >= (long)n) continue;
            double t = fabs((double)j - c) / support;
            if (t >= 1.0) continue;
            acc += (1.0 - t) * in[(size_t)j * is];
            wsum += 1.0 - t;
        }
        out[i * os] = wsum > 0 ? (float)(acc / wsum) : 0.0f;
    }
}

int caimg_ann_resize(const float *in, size_t h, size_t w, float *out, size_t oh, size_t ow)
{
    if (h == oh && w == ow) {
        memcpy(out, in, h * w * sizeof *out);
        return 0;
    }
    float *tmp = caimg_malloc(h * ow, sizeof *tmp, "resized image");
    if (!tmp) return CAIMG_ENOMEM;
    for (size_t y = 0; y < h; y++) resample(in + y * w, w, 1, tmp + y * ow, ow, 1);
    for (size_t x = 0; x < ow; x++) resample(tmp + x, h, ow, out + x, oh, ow);
    free(tmp);
    return 0;
}

int caimg_ann_preprocess(const caimg_ann *m, const float *in, size_t n, float *out)
{
    const caimg_ann_prep *p = &m->prep;
    const size_t H = m->L[0].oh, W = m->L[0].ow;
    float *crop = caimg_malloc(p->crop_h * p->crop_w, sizeof *crop, "cropped image");
    if (!crop) return CAIMG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const float *im = in + i * p->src_h * p->src_w;
        for (size_t y = 0; y < p->crop_h; y++)
            memcpy(crop + y * p->crop_w, im + (p->crop_y + y) * p->src_w + p->crop_x,
                   p->crop_w * sizeof *crop);
        int st = caimg_ann_resize(crop, p->crop_h, p->crop_w, out + i * H * W, H, W);
        if (st) {
            free(crop);
            return st;
        }
    }
    free(crop);
    return 0;
}

/* ---- saving and loading --------------------------------------------------------- */

static int save_tensor(caimg_h5 *f, const char *group, const caimg_ann_tensor *t)
{
    char name[512];
    snprintf(name, sizeof name, "%s/%s", group, t->name);
    return caimg_h5_write(f, name, CAIMG_DT_F32, t->rank, t->dims, t->data);
}

int caimg_ann_save(const caimg_ann *m, caimg_h5 *f, const char *group)
{
    caimg_ann *mm = (caimg_ann *)m;     /* tensor_get hands out writable views */
    int st = caimg_h5_mkgroup(f, group);
    char *arch = st ? NULL : caimg_ann_arch_text(m);
    if (!st && !arch) st = CAIMG_ENOMEM;
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)m->seed);
    if (!st) st = caimg_h5_set_attr_string(f, group, "arch", arch);
    if (!st) st = caimg_h5_set_attr_string(f, group, "seed", seed);
    if (!st) st = caimg_h5_set_attr_long(f, group, "input_channels", (long)m->L[0].oc);
    if (!st) st = caimg_h5_set_attr_long(f, group, "input_height", (long)m->L[0].oh);
    if (!st) st = caimg_h5_set_attr_long(f, group, "input_width", (long)m->L[0].ow);
    if (!st) st = caimg_h5_set_attr_long(f, group, "nneurons", (long)m->nout);
    if (!st) st = caimg_h5_set_attr_double(f, group, "input_mean", m->in_mean);
    if (!st) st = caimg_h5_set_attr_double(f, group, "input_sd", m->in_sd);
    if (!st && !isnan(m->in_lo)) st = caimg_h5_set_attr_double(f, group, "input_min", m->in_lo);
    if (!st && !isnan(m->in_hi)) st = caimg_h5_set_attr_double(f, group, "input_max", m->in_hi);
    if (!st) st = caimg_h5_set_attr_long(f, group, "image_height", (long)m->prep.src_h);
    if (!st) st = caimg_h5_set_attr_long(f, group, "image_width", (long)m->prep.src_w);
    if (!st) st = caimg_h5_set_attr_long(f, group, "crop_y", (long)m->prep.crop_y);
    if (!st) st = caimg_h5_set_attr_long(f, group, "crop_x", (long)m->prep.crop_x);
    if (!st) st = caimg_h5_set_attr_long(f, group, "crop_h", (long)m->prep.crop_h);
    if (!st) st = caimg_h5_set_attr_long(f, group, "crop_w", (long)m->prep.crop_w);
    for (size_t k = 0; !st && k < caimg_ann_ntensors(m); k++) {
        caimg_ann_tensor t;
        st = caimg_ann_tensor_get(mm, k, &t);
        if (!st) st = save_tensor(f, group, &t);
    }
    free(arch);
    if (!st && m->nmem) st = caimg_h5_set_attr_long(f, group, "members", (long)(m->nmem + 1));
    for (size_t k = 0; !st && k < m->nmem; k++) {
        char name[512];
        snprintf(name, sizeof name, "%s_member%zu", group, k + 1);
        st = caimg_ann_save(m->mem[k], f, name);
    }
    return st;
}

static int get_size(caimg_h5 *f, const char *group, const char *name, size_t *v)
{
    long x;
    int st = caimg_h5_get_attr_long(f, group, name, &x);
    if (st || x < 0)
        return caimg_error(CAIMG_EFORMAT, "%s: %s has no valid attribute %s (not a caimg model?)",
                           caimg_h5_path(f), group, name);
    *v = (size_t)x;
    return 0;
}

static caimg_ann *load_one(caimg_h5 *f, const char *group);

caimg_ann *caimg_ann_load(caimg_h5 *f, const char *group)
{
    caimg_ann *m = load_one(f, group);
    long K = 1;
    if (!m) return NULL;
    int rc = caimg_h5_get_attr_long(f, group, "members", &K);
    if (rc == CAIMG_ENOENT) return m;       /* a single network */
    if (rc || K < 1 || K > 1000) {
        caimg_error(CAIMG_EFORMAT, "%s: %s has an invalid members attribute", caimg_h5_path(f), group);
        caimg_ann_free(m);
        return NULL;
    }
    for (long k = 1; k < K; k++) {
        char name[512];
        snprintf(name, sizeof name, "%s_member%ld", group, k);
        caimg_ann *mk = load_one(f, name);
        if (!mk || caimg_ann_ensemble_add(m, mk)) {
            if (mk) {
                char msg[600];
                snprintf(msg, sizeof msg, "%s: %s", caimg_h5_path(f), name);
                caimg_error_prefix(msg);
            }
            caimg_ann_free(mk);
            caimg_ann_free(m);
            return NULL;
        }
    }
    return m;
}

/* One network from `group`. */
static caimg_ann *load_one(caimg_h5 *f, const char *group)
{
    const char *path = caimg_h5_path(f);
    if (!caimg_h5_exists(f, group)) {
        caimg_error(CAIMG_ENOENT, "%s: no model (%s is missing; was the file written by caimg fit?)",
                    path, group);
        return NULL;
    }
    char *arch = NULL, *seeds = NULL;
    if (caimg_h5_get_attr_string(f, group, "arch", &arch) ||
        caimg_h5_get_attr_string(f, group, "seed", &seeds)) {
        free(arch);
        caimg_error(CAIMG_EFORMAT, "%s: %s lacks the arch or seed attribute", path, group);
        return NULL;
    }
    char *end;
    errno = 0;
    unsigned long long seed = strtoull(seeds, &end, 10);
    int bad_seed = errno || *end || end == seeds;
    free(seeds);
    size_t C, H, W, N;
    caimg_ann_prep p;
    double mean, sd;
    caimg_ann *m = NULL;
    if (bad_seed) {
        caimg_error(CAIMG_EFORMAT, "%s: %s has a malformed seed", path, group);
        goto fail;
    }
    if (get_size(f, group, "input_channels", &C) || get_size(f, group, "input_height", &H) ||
        get_size(f, group, "input_width", &W) || get_size(f, group, "nneurons", &N) ||
        get_size(f, group, "image_height", &p.src_h) || get_size(f, group, "image_width", &p.src_w) ||
        get_size(f, group, "crop_y", &p.crop_y) || get_size(f, group, "crop_x", &p.crop_x) ||
        get_size(f, group, "crop_h", &p.crop_h) || get_size(f, group, "crop_w", &p.crop_w))
        goto fail;
    if (caimg_h5_get_attr_double(f, group, "input_mean", &mean) ||
        caimg_h5_get_attr_double(f, group, "input_sd", &sd)) {
        caimg_error(CAIMG_EFORMAT, "%s: %s lacks input_mean or input_sd", path, group);
        goto fail;
    }
    m = caimg_ann_create(arch, C, H, W, N, (uint64_t)seed);
    if (!m) {
        char msg[1200];
        snprintf(msg, sizeof msg, "%s: %s/arch", path, group);
        caimg_error_prefix(msg);
        goto fail;
    }
    /* The pixel range is optional: models written before it was recorded
     * lack it, and attacks then need it from the user. */
    double lo = NAN, hi = NAN;
    if (caimg_h5_get_attr_double(f, group, "input_min", &lo) ||
        caimg_h5_get_attr_double(f, group, "input_max", &hi))
        lo = hi = NAN;
    if (caimg_ann_set_input_norm(m, mean, sd) || caimg_ann_set_prep(m, &p) ||
        caimg_ann_set_input_range(m, lo, hi)) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s: %s", path, group);
        caimg_error_prefix(msg);
        goto fail;
    }
    for (size_t k = 0; k < caimg_ann_ntensors(m); k++) {
        caimg_ann_tensor t;
        caimg_ann_tensor_get(m, k, &t);
        char name[512];
        snprintf(name, sizeof name, "%s/%s", group, t.name);
        int rank;
        size_t dims[CAIMG_H5_MAXRANK];
        float *data = NULL;
        if (caimg_h5_read(f, name, CAIMG_DT_F32, t.rank, &rank, dims, (void **)&data)) goto fail;
        for (int i = 0; i < t.rank; i++)
            if (dims[i] != t.dims[i]) {
                caimg_error(CAIMG_EFORMAT, "%s: %s has dimension %d of %zu, the architecture needs %zu",
                            path, name, i, dims[i], t.dims[i]);
                free(data);
                goto fail;
            }
        for (size_t i = 0; i < t.size; i++)
            if (!isfinite(data[i])) {
                caimg_error(CAIMG_EFORMAT, "%s: %s holds a non-finite value", path, name);
                free(data);
                goto fail;
            }
        memcpy(t.data, data, t.size * sizeof *data);
        free(data);
    }
    /* Re-validate the output scale through the setter's checks. */
    if (caimg_ann_set_output_affine(m, m->out_scale, NULL)) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s: %s/output/scale", path, group);
        caimg_error_prefix(msg);
        goto fail;
    }
    free(arch);
    return m;
fail:
    free(arch);
    caimg_ann_free(m);
    return NULL;
}
