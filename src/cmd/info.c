/* info.c -- caimg info: what a caimg HDF5 or TIFF file holds, at a glance.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "caimg/caimg.h"
#include "caimg/h5io.h"
#include "caimg/tiffio.h"
#include "cmd.h"

static const struct option longopts[] = {
    CMD_COMMON_LONGOPTS,
    {"tsv", no_argument, NULL, OPT_FIRST_PRIVATE},
    {NULL, 0, NULL, 0}
};

static void usage(FILE *fp)
{
    fprintf(fp,
"Usage: caimg info [options] FILE...\n"
"\n"
"Summarise caimg HDF5 files (movie shape, sample type, frame rate, which\n"
"stages' results the file holds or links to, every dataset, and the\n"
"provenance chain) and TIFF stacks (pages, size, sample type, ImageJ\n"
"metadata).\n"
"\n"
"Options:\n"
"      --tsv             machine-readable output: FILE<TAB>KEY<TAB>VALUE lines\n"
"  -v, --verbose         also print each step's parameters\n"
"  -h, --help            this help\n");
}

/* Output either as aligned text or as FILE\tKEY\tVALUE lines. */
typedef struct {
    int tsv;
    const char *file;
} out_ctx;

static void kv(out_ctx *o, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void kv(out_ctx *o, const char *key, const char *fmt, ...)
{
    va_list ap;
    if (o->tsv) printf("%s\t%s\t", o->file, key);
    else printf("  %-14s ", key);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static const char *human_size(long long b, char *buf, size_t n)
{
    const char *u[] = {"B", "KB", "MB", "GB", "TB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1000 && i < 4) { v /= 1000; i++; }
    snprintf(buf, n, i ? "%.1f %s" : "%.0f %s", v, u[i]);
    return buf;
}

static int info_tiff(out_ctx *o, const char *path)
{
    caimg_tiff *t = caimg_tiff_open(path);
    if (!t) return CAIMG_EFORMAT;
    const caimg_tiff_info *ti = caimg_tiff_get_info(t);
    if (!o->tsv) printf("%s: TIFF%s\n", path, ti->bigtiff ? " (BigTIFF)" : "");
    kv(o, "format", "%s", ti->bigtiff ? "BigTIFF" : "TIFF");
    kv(o, "pages", "%zu", ti->npages);
    kv(o, "size", "%zu x %zu (height x width)", ti->height, ti->width);
    kv(o, "dtype", "%s", caimg_dtype_name(ti->dtype));
    if (ti->ij_images) {
        kv(o, "imagej", "images=%zu channels=%zu slices=%zu frames=%zu", ti->ij_images,
           ti->ij_channels ? ti->ij_channels : 1, ti->ij_slices ? ti->ij_slices : 1,
           ti->ij_frames ? ti->ij_frames : 1);
    }
    if (ti->ij_finterval > 0) kv(o, "fs", "%g Hz", 1.0 / ti->ij_finterval);
    if (ti->pixel_um_x > 0) kv(o, "pixel_um", "%g", ti->pixel_um_x);
    caimg_tiff_close(t);
    return 0;
}

/* Datasets and groups, recursively, following links.  External links are
 * shown with the file they point to, which is how a user sees which
 * earlier stage a result comes from. */
typedef struct {
    out_ctx *o;
    hid_t fid;
    char prefix[2100];
} walk_ctx;

static void describe(walk_ctx *w, const char *path, const char *linkfile);

static herr_t walk_cb(hid_t g, const char *name, const H5L_info_t *li, void *data)
{
    walk_ctx *w = data;
    char path[sizeof w->prefix];
    char target[1024] = "";
    if (strcmp(name, "provenance") == 0 && strcmp(w->prefix, "") == 0) return 0;
    if (snprintf(path, sizeof path, "%s/%s", w->prefix, name) >= (int)sizeof path) return 0;
    if (li->type == H5L_TYPE_EXTERNAL) {
        char buf[1024];
        const char *file = NULL, *obj = NULL;
        unsigned flags;
        if (H5Lget_val(g, name, buf, sizeof buf, H5P_DEFAULT) >= 0
            && H5Lunpack_elink_val(buf, li->u.val_size, &flags, &file, &obj) >= 0)
            snprintf(target, sizeof target, "%s", file);
    }
    describe(w, path, target[0] ? target : NULL);
    return 0;
}

static void describe(walk_ctx *w, const char *path, const char *linkfile)
{
    out_ctx *o = w->o;
    H5O_info_t oi;
    char via[1100] = "";
    if (linkfile) snprintf(via, sizeof via, "  -> %s", linkfile);
    if (H5Oget_info_by_name(w->fid, path, &oi, H5P_DEFAULT) < 0) {
        H5Eclear2(H5E_DEFAULT);
        kv(o, "object", "%s (broken link%s)", path, via);
        return;
    }
    if (oi.type == H5O_TYPE_GROUP) {
        hid_t g = H5Gopen2(w->fid, path, H5P_DEFAULT);
        char saved[sizeof w->prefix];
        snprintf(saved, sizeof saved, "%s", w->prefix);
        snprintf(w->prefix, sizeof w->prefix, "%s", path);
        if (linkfile && !o->tsv) printf("  %-14s %s/%s\n", "group", path, via);
        H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, walk_cb, w);
        snprintf(w->prefix, sizeof w->prefix, "%s", saved);
        H5Gclose(g);
        return;
    }
    if (oi.type != H5O_TYPE_DATASET) return;
    hid_t d = H5Dopen2(w->fid, path, H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hid_t ty = H5Dget_type(d);
    int rank = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[32];
    char shape[256] = "";
    size_t n = 0;
    if (rank > 0 && rank <= 32) {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        for (int i = 0; i < rank; i++)
            n += (size_t)snprintf(shape + n, sizeof shape - n, "[%llu]",
                                  (unsigned long long)dims[i]);
    } else snprintf(shape, sizeof shape, "scalar");
    const char *tn = "other";
    H5T_class_t cls = H5Tget_class(ty);
    size_t sz = H5Tget_size(ty);
    static char tbuf[32];
    if (cls == H5T_FLOAT) tn = sz == 4 ? "float32" : "float64";
    else if (cls == H5T_INTEGER) {
        snprintf(tbuf, sizeof tbuf, "%sint%zu", H5Tget_sign(ty) == H5T_SGN_2 ? "" : "u", sz * 8);
        tn = tbuf;
    } else if (cls == H5T_STRING) tn = "string";
    else if (cls == H5T_COMPOUND) tn = "compound";
    kv(o, "dataset", "%s %s %s%s", path, shape, tn, via);
    H5Tclose(ty);
    H5Sclose(sp);
    H5Dclose(d);
}

static const char *const stages[] = {
    "truth", "mc", "roi", "dff", "deconv", "fit", "predict", "attack", "robustness", NULL
};

static int info_h5(out_ctx *o, const char *path, int verbose)
{
    int is_caimg = 0;
    caimg_h5 *f = caimg_h5_open_any(path, &is_caimg);
    if (!f) return CAIMG_EFORMAT;
    struct stat st;
    char sz[32] = "?";
    if (stat(path, &st) == 0) human_size((long long)st.st_size, sz, sizeof sz);
    char *stage = NULL;
    caimg_h5_get_attr_string(f, "/", "caimg_stage", &stage);
    long ver = 0;
    caimg_h5_get_attr_long(f, "/", "caimg_format_version", &ver);
    if (!o->tsv) {
        if (is_caimg)
            printf("%s: caimg HDF5 (format %ld), written by stage '%s', %s\n", path, ver,
                   stage ? stage : "?", sz);
        else
            printf("%s: HDF5 (not a caimg file), %s\n", path, sz);
    }
    kv(o, "format", "%s", is_caimg ? "caimg-h5" : "hdf5");
    if (stage) kv(o, "stage", "%s", stage);
    free(stage);

    /* The movie, if any. */
    if (caimg_h5_exists(f, "/movie")) {
        int rank;
        size_t d[CAIMG_H5_MAXRANK];
        if (caimg_h5_dims(f, "/movie", &rank, d) == 0 && rank == 3) {
            double fs = 0, px = 0;
            caimg_h5_get_attr_double(f, "/movie", "fs", &fs);
            caimg_h5_get_attr_double(f, "/movie", "pixel_um", &px);
            kv(o, "frames", "%zu", d[0]);
            kv(o, "size", "%zu x %zu (height x width)", d[1], d[2]);
            kv(o, "dtype", "%s", caimg_dtype_name(caimg_h5_dtype(f, "/movie")));
            if (fs > 0) kv(o, "fs", "%g Hz (%.1f s)", fs, (double)d[0] / fs);
            else kv(o, "fs", "unknown");
            if (px > 0) kv(o, "pixel_um", "%g", px);
        }
    }
    /* Which stages' results are present (own or linked). */
    char list[512] = "";
    size_t n = 0;
    for (int i = 0; stages[i]; i++) {
        char g[64];
        snprintf(g, sizeof g, "/%s", stages[i]);
        if (caimg_h5_exists(f, g))
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", n ? " " : "", stages[i]);
    }
    kv(o, "results", "%s", n ? list : "(none)");

    walk_ctx w = {o, caimg_h5_hid(f), ""};
    H5Literate(caimg_h5_hid(f), H5_INDEX_NAME, H5_ITER_INC, NULL, walk_cb, &w);

    /* Provenance chain, oldest first. */
    char **recs;
    size_t nrec;
    if (caimg_h5_list(f, "/provenance", &recs, &nrec) == 0) {
        for (size_t i = 0; i < nrec; i++) {
            char obj[300];
            snprintf(obj, sizeof obj, "/provenance/%s", recs[i]);
            char *cmd = NULL, *date = NULL, *params = NULL;
            caimg_h5_get_attr_string(f, obj, "command_line", &cmd);
            caimg_h5_get_attr_string(f, obj, "date", &date);
            kv(o, "provenance", "%s  %s  %s", recs[i], date ? date : "?", cmd ? cmd : "?");
            if (verbose && caimg_h5_get_attr_string(f, obj, "parameters", &params) == 0) {
                for (char *p = strtok(params, "\n"); p; p = strtok(NULL, "\n"))
                    kv(o, "parameter", "%s  %s", recs[i], p);
            }
            free(cmd);
            free(date);
            free(params);
        }
        caimg_h5_list_free(recs, nrec);
    }
    caimg_clear_error();
    caimg_h5_close(f);
    return 0;
}

int main_info(int argc, char **argv)
{
    cmd_ctx c;
    int rc = cmd_begin(&c, "info", argc, argv, longopts);
    if (rc) return rc;
    int tsv = 0, opt;
    while ((opt = getopt_long(c.argc, c.argv, CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        int h = cmd_common_option(&c, opt, optarg);
        if (h < 0) { rc = EXIT_USAGE; goto done; }
        if (h > 0) continue;
        if (opt == OPT_FIRST_PRIVATE) tsv = 1;
        else { rc = cmd_bad_option(&c); goto done; }
    }
    if (c.want_help) { usage(stdout); rc = 0; goto done; }
    if (optind >= c.argc) { rc = cmd_usage_error(&c, "no input files"); goto done; }
    for (int i = optind; i < c.argc; i++) {
        const char *path = c.argv[i];
        out_ctx o = {tsv, path};
        int t = caimg_is_tiff(path);
        int r;
        if (t < 0) r = t;
        else if (t) r = info_tiff(&o, path);
        else if (H5Fis_hdf5(path) > 0) r = info_h5(&o, path, c.verbose);
        else {
            H5Eclear2(H5E_DEFAULT);
            r = caimg_error(CAIMG_EFORMAT, "%s: neither a TIFF nor an HDF5 file", path);
        }
        if (r) rc = cmd_fail(&c, r);
        else if (!tsv && i + 1 < c.argc) putchar('\n');
    }
done:
    cmd_end(&c);
    return rc;
}
