/* annutil.c -- helpers shared by the response-model subcommands.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caimg/caimg.h"
#include "annutil.h"

int ann_read_images(const char *path, const unsigned char *want, size_t nwant,
                    float **img, size_t *n, size_t *h, size_t *w)
{
    *img = NULL;
    caimg_tiff *t = caimg_tiff_open(path);
    if (!t) return CAIMG_EFORMAT;     /* the reader left the message */
    const caimg_tiff_info *ti = caimg_tiff_get_info(t);
    size_t np = ti->npages, H = ti->height, W = ti->width;
    size_t bytes = caimg_dtype_size(ti->dtype);
    if (np == 0) {
        caimg_tiff_close(t);
        return caimg_error(CAIMG_EFORMAT, "%s: no images", path);
    }
    float *all = calloc(np * H * W, sizeof *all);
    void *raw = malloc(H * W * bytes);
    int st = (all && raw) ? 0 : caimg_error(CAIMG_ENOMEM, "out of memory reading %s", path);
    for (size_t p = 0; !st && p < np; p++) {
        if (want && (p >= nwant || !want[p])) continue;
        st = caimg_tiff_read_page(t, p, raw);
        if (!st) caimg_to_float(raw, ti->dtype, all + p * H * W, H * W);
        for (size_t i = 0; !st && i < H * W; i++)
            if (!isfinite(all[p * H * W + i]))
                st = caimg_error(CAIMG_EFORMAT, "%s: page %zu has a non-finite pixel", path, p + 1);
    }
    free(raw);
    caimg_tiff_close(t);
    if (st) {
        free(all);
        return st;
    }
    *img = all;
    *n = np;
    *h = H;
    *w = W;
    return 0;
}

int ann_parse_noise(cmd_ctx *c, caimg_ann *m, const char *spec)
{
    char name[64];
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || (size_t)(eq - spec) >= sizeof name) {
        cmd_usage_error(c, "--noise: '%s' is not LAYER=SIGMA (e.g. h1=0.5 or input=4abs)", spec);
        return -1;
    }
    memcpy(name, spec, (size_t)(eq - spec));
    name[eq - spec] = '\0';
    char *end;
    errno = 0;
    double sigma = strtod(eq + 1, &end);
    int mode = CAIMG_ANN_NOISE_REL;
    if (!strcmp(end, "abs")) mode = CAIMG_ANN_NOISE_ABS;
    else if (*end && strcmp(end, "rel")) end = NULL;
    if (!end || end == eq + 1 || errno || !(sigma >= 0) || !isfinite(sigma)) {
        cmd_usage_error(c, "--noise: '%s': SIGMA must be a non-negative number, optionally "
                        "followed by abs or rel", spec);
        return -1;
    }
    if (caimg_ann_noise_set(m, name, sigma, mode)) {
        cmd_usage_error(c, "--noise: %s", caimg_errmsg());
        return -1;
    }
    return 0;
}

char *ann_arch_arg(const char *arg)
{
    if (arg[0] != '@') {
        char *s = strdup(arg);
        if (!s) caimg_error(CAIMG_ENOMEM, "out of memory");
        return s;
    }
    FILE *fp = fopen(arg + 1, "r");
    if (!fp) {
        caimg_error(errno == ENOENT ? CAIMG_ENOENT : CAIMG_EIO, "%s: %s", arg + 1, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    while (s) {
        size_t k = fread(s + len, 1, cap - len - 1, fp);
        len += k;
        if (len < cap - 1) break;
        char *ns = realloc(s, cap * 2);
        if (!ns) { free(s); s = NULL; break; }
        s = ns;
        cap *= 2;
    }
    int err = ferror(fp);
    fclose(fp);
    if (!s || err) {
        free(s);
        caimg_error(CAIMG_EIO, "%s: cannot read the architecture file", arg + 1);
        return NULL;
    }
    s[len] = '\0';
    return s;
}

int ann_commit_outputs(caimg_h5 **out, caimg_outfile **tsv, caimg_outfile **plot)
{
    int st = caimg_h5_commit(*out);
    *out = NULL;
    if (!st && *tsv) {
        st = caimg_outfile_commit(*tsv);
        *tsv = NULL;
    }
    if (!st && *plot) {
        st = caimg_outfile_commit(*plot);
        *plot = NULL;
    }
    return st;
}

void ann_train_args_init(ann_train_args *a)
{
    a->batch = 64;
    a->lr = 0.002;
    a->epochs = 200;
    a->patience = 10;
    a->ema = 0;
    a->lr_decays = 0;
    a->lr_factor = 0.3;
}

int ann_train_args_parse(cmd_ctx *c, ann_train_args *a, int opt, const char *arg)
{
    switch (opt) {
    case ANN_OPT_BATCH:    return cmd_parse_long(c, "--batch", arg, 1, 100000, &a->batch);
    case ANN_OPT_LR:       return cmd_parse_double(c, "--lr", arg, 1e-9, 10, &a->lr);
    case ANN_OPT_EPOCHS:   return cmd_parse_long(c, "--epochs", arg, 1, 1000000, &a->epochs);
    case ANN_OPT_PATIENCE: return cmd_parse_long(c, "--patience", arg, 1, 1000000, &a->patience);
    case ANN_OPT_EMA:      return cmd_parse_double(c, "--ema", arg, 0, 0.99999, &a->ema);
    case ANN_OPT_LR_DECAY: {
        /* N[:F] */
        char buf[64];
        snprintf(buf, sizeof buf, "%s", arg);
        char *colon = strchr(buf, ':');
        if (colon) *colon = '\0';
        if (cmd_parse_long(c, "--lr-decay", buf, 0, 100, &a->lr_decays)) return -1;
        if (colon && cmd_parse_double(c, "--lr-decay factor", colon + 1, 1e-6, 0.999, &a->lr_factor))
            return -1;
        return 0;
    }
    }
    cmd_usage_error(c, "internal error: option %d is not a training option", opt);
    return -1;
}

void ann_train_args_apply(const ann_train_args *a, caimg_ann_train_opts *to)
{
    to->batch = (size_t)a->batch;
    to->lr = a->lr;
    to->max_epochs = (size_t)a->epochs;
    to->patience = (size_t)a->patience;
    to->ema = a->ema;
    to->lr_decays = (size_t)a->lr_decays;
    to->lr_factor = a->lr_factor;
}

void ann_train_args_record(const ann_train_args *a, caimg_h5 *out)
{
    caimg_h5_param(out, "batch", "%ld", a->batch);
    caimg_h5_param_double(out, "lr", a->lr);
    caimg_h5_param(out, "epochs", "%ld", a->epochs);
    caimg_h5_param(out, "patience", "%ld", a->patience);
    caimg_h5_param_double(out, "ema", a->ema);
    caimg_h5_param(out, "lr-decay", "%ld:%g", a->lr_decays, a->lr_factor);
}
