/* export.c -- caimg export: movies and images to TIFF, arrays and tables to
 * TSV, so results open in ImageJ, napari or a spreadsheet.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "caimg/caimg.h"
#include "caimg/h5io.h"
#include "caimg/movie.h"
#include "caimg/tiffio.h"
#include "caimg/tsv.h"
#include "cmd.h"

enum {
    OPT_DATASET = OPT_FIRST_PRIVATE, OPT_DTYPE, OPT_RANGE, OPT_FRAMES,
    OPT_COMPRESSION, OPT_TRANSPOSE, OPT_BIGTIFF, OPT_FORMAT
};

static const struct option longopts[] = {
    CMD_COMMON_LONGOPTS,
    {"dataset",     required_argument, NULL, 'd'},
    {"dtype",       required_argument, NULL, OPT_DTYPE},
    {"range",       required_argument, NULL, OPT_RANGE},
    {"frames",      required_argument, NULL, OPT_FRAMES},
    {"compression", required_argument, NULL, OPT_COMPRESSION},
    {"transpose",   no_argument,       NULL, OPT_TRANSPOSE},
    {"bigtiff",     no_argument,       NULL, OPT_BIGTIFF},
    {"format",      required_argument, NULL, OPT_FORMAT},
    {NULL, 0, NULL, 0}
};

static void usage(FILE *fp)
{
    fprintf(fp,
"Usage: caimg export [options] FILE.h5 -o OUT.tif|OUT.tsv\n"
"\n"
"Write a dataset of a caimg HDF5 file to TIFF (movies [T][Y][X] and images\n"
"[Y][X]) or TSV (traces [N][T], vectors, and groups of equal-length\n"
"vectors such as /roi/stats as a table with a header).\n"
"\n"
"Options:\n"
"  -o, --output FILE     output; '-' is standard output (TSV only)\n"
"  -d, --dataset NAME    dataset or group to export [/movie]\n"
"      --format F        tiff or tsv [from the output's extension]\n"
"  TIFF:\n"
"      --dtype TYPE      uint8, int8, uint16, int16, uint32, int32, int64, float32 or\n"
"                        float64 [the dataset's type]\n"
"      --range LO:HI     map LO..HI linearly onto the integer type's full range\n"
"                        [uint8: 0.1st..99.9th percentile of the data; else no\n"
"                        scaling, values are rounded and clamped]\n"

"      --compression C   none, lzw or deflate [none]\n"
"      --bigtiff         always write BigTIFF [automatic past 4 GB]\n"
"  TIFF and TSV:\n"
"      --frames A-B      frames A to B only, 1-based, inclusive, of a movie or\n"
"                        of [N][T] traces (columns; lines with --transpose) [all]\n"
"  TSV:\n"
"      --transpose       one line per column (per frame for traces) [one line\n"
"                        per row, i.e. per neuron]\n"
"  -q, --quiet           no progress or warnings\n"
"  -h, --help            this help\n");
}

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcasecmp(s + n - m, suf) == 0;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Percentiles of up to 64 evenly spaced frames: robust display range. */
static int auto_range(caimg_movie *m, size_t fa, size_t fb, double *lo, double *hi)
{
    size_t per = caimg_movie_height(m) * caimg_movie_width(m);
    size_t nf = fb - fa < 64 ? fb - fa : 64;
    float *buf = malloc(nf * per * sizeof *buf);
    if (!buf) return caimg_error(CAIMG_ENOMEM, "out of memory estimating the range");
    size_t n = 0;
    for (size_t i = 0; i < nf; i++) {
        size_t t = fa + i * (fb - fa) / nf;
        size_t start = n;
        int rc = caimg_movie_read(m, t, 1, buf + start);
        if (rc) { free(buf); return rc; }
        /* Compact in place, dropping NaN and Inf. */
        for (size_t k = 0; k < per; k++) {
            float v = buf[start + k];
            if (isfinite(v)) buf[n++] = v;
        }
    }
    if (n == 0) { *lo = 0; *hi = 1; free(buf); return 0; }
    qsort(buf, n, sizeof *buf, cmp_float);
    *lo = buf[(size_t)(0.001 * (double)(n - 1))];
    *hi = buf[(size_t)(0.999 * (double)(n - 1))];
    if (*hi <= *lo) *hi = *lo + 1;
    free(buf);
    return 0;
}

static int export_tiff(cmd_ctx *c, const char *in, const char *dataset, const char *dtype_name,
                       const double *range, size_t fa, size_t fb,
                       caimg_tiff_compression comp, int bigtiff)
{
    caimg_h5 *f = caimg_h5_open_any(in, NULL);
    if (!f) return CAIMG_EFORMAT;
    int rank;
    size_t dims[CAIMG_H5_MAXRANK];
    int rc = caimg_h5_dims(f, dataset, &rank, dims);
    caimg_h5_close(f);
    if (rc) return rc;
    if (rank != 2 && rank != 3)
        return caimg_error(CAIMG_EFORMAT, "%s: %s has rank %d; TIFF export needs [T][Y][X] or [Y][X] (use a .tsv output)",
                           in, dataset, rank);
    caimg_movie *m = NULL;
    float *img = NULL;
    size_t T, Y, X;
    caimg_dtype src;
    if (rank == 3) {
        caimg_movie_opts mo;
        caimg_movie_opts_init(&mo);
        mo.dataset = dataset;
        m = caimg_movie_open(&in, 1, &mo);
        if (!m) return caimg_errstatus_or(CAIMG_EFORMAT);
        T = caimg_movie_frames(m);
        Y = caimg_movie_height(m);
        X = caimg_movie_width(m);
        src = caimg_movie_dtype(m);
    } else {
        f = caimg_h5_open_any(in, NULL);
        if (!f) return CAIMG_EFORMAT;
        src = caimg_h5_dtype(f, dataset);
        rc = caimg_h5_read(f, dataset, CAIMG_DT_F32, 2, NULL, dims, (void **)&img);
        caimg_h5_close(f);
        if (rc) return rc;
        T = 1;
        Y = dims[0];
        X = dims[1];
    }
    if (fb == 0) fb = T;
    if (fa >= T || fb > T) {
        rc = caimg_error(CAIMG_EINVAL, "%s: --frames out of range: %s has %zu frames", in,
                         dataset, T);
        goto out;
    }
    /* By default the stored type is kept, so that import and export are
     * exact inverses. */
    caimg_dtype dt = dtype_name ? caimg_dtype_from_name(dtype_name) : src;
    if (dt == CAIMG_DT_NONE) {
        rc = caimg_error(CAIMG_EINVAL, "--dtype: '%s' is not a sample type (uint8, int8, "
                         "uint16, int16, uint32, int32, float32, float64)", dtype_name);
        goto out;
    }
    double lo = 0, hi = 0;
    int scale = range != NULL;
    if (range) { lo = range[0]; hi = range[1]; }
    else if (dt == CAIMG_DT_U8 && src != CAIMG_DT_U8) {
        scale = 1;
        if (m) rc = auto_range(m, fa, fb, &lo, &hi);
        else {
            /* One image: percentiles of its pixels. */
            float *s = malloc(Y * X * sizeof *s);
            if (!s) { rc = CAIMG_ENOMEM; goto out; }
            size_t n = 0;
            for (size_t k = 0; k < Y * X; k++) if (isfinite(img[k])) s[n++] = img[k];
            qsort(s, n, sizeof *s, cmp_float);
            lo = n ? s[(size_t)(0.001 * (double)(n - 1))] : 0;
            hi = n ? s[(size_t)(0.999 * (double)(n - 1))] : 1;
            if (hi <= lo) hi = lo + 1;
            free(s);
        }
        if (rc) goto out;
    }
    /* Scaling maps [lo, hi] onto the integer type's full range. */
    static const double type_lo[] = {0, 0, -128, 0, -32768, 0, -2147483648.0, 0, 0,
                                     -9223372036854775808.0};
    static const double type_hi[] = {0, 255, 127, 65535, 32767, 4294967295.0, 2147483647.0, 1, 1,
                                     9223372036854774784.0};
    double out_lo = type_lo[dt], out_hi = type_hi[dt];

    caimg_tiff_wopts wo;
    caimg_tiff_wopts_init(&wo, dt);
    wo.compression = comp;
    wo.bigtiff = bigtiff ? 1 : -1;
    if (m) {
        wo.fs = caimg_movie_fs(m);
        wo.pixel_um = caimg_movie_pixel_um(m);
    }
    caimg_tiff_writer *w = caimg_tiff_writer_create(c->output, X, Y, fb - fa, &wo);
    if (!w) { rc = CAIMG_EIO; goto out; }
    float *frame = m ? malloc(Y * X * sizeof *frame) : img;
    void *conv = malloc(Y * X * caimg_dtype_size(dt));
    if (!frame || !conv) rc = caimg_error(CAIMG_ENOMEM, "out of memory");
    size_t clamped = 0;
    /* Same type and no scaling: copy samples untouched (float cannot hold
     * every 32-bit integer exactly). */
    int raw = m && dt == src && !scale;
    for (size_t t = fa; !rc && t < fb; t++) {
        if (raw) {
            rc = caimg_movie_read_raw(m, t, 1, conv);
            if (!rc) rc = caimg_tiff_write_page(w, conv);
            if (!rc) rc = caimg_progress("exporting frames", (double)(t + 1 - fa), (double)(fb - fa));
            continue;
        }
        if (m) rc = caimg_movie_read(m, t, 1, frame);
        if (rc) break;
        if (scale && !caimg_dtype_is_float(dt)) {
            double k = (out_hi - out_lo) / (hi - lo);
            for (size_t i = 0; i < Y * X; i++)
                frame[i] = (float)(out_lo + (frame[i] - lo) * k);
        }
        clamped += caimg_from_float(frame, conv, dt, Y * X);
        rc = caimg_tiff_write_page(w, conv);
        if (!rc) rc = caimg_progress("exporting frames", (double)(t + 1 - fa), (double)(fb - fa));
    }
    if (m) free(frame);
    free(conv);
    if (rc) caimg_tiff_writer_abort(w);
    else rc = caimg_tiff_writer_close(w);
    if (!rc && clamped && !scale)
        caimg_warn("%zu samples outside the range of %s were clamped (see --range)", clamped,
                   caimg_dtype_name(dt));
out:
    free(img);
    caimg_movie_close(m);
    return rc;
}

/* A group of equal-length vectors (e.g. /roi/stats) as a table. */
static int export_group_tsv(caimg_h5 *f, const char *in, const char *group, FILE *fp)
{
    char **members;
    size_t nm;
    int rc = caimg_h5_list(f, group, &members, &nm);
    if (rc) return rc;
    size_t ncol = 0, nrow = 0;
    const char **names = calloc(nm + 1, sizeof *names);
    double **cols = calloc(nm + 1, sizeof *cols);
    if (!names || !cols) rc = caimg_error(CAIMG_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < nm; i++) {
        char full[600];
        snprintf(full, sizeof full, "%s/%s", group, members[i]);
        int rank;
        size_t d[CAIMG_H5_MAXRANK];
        /* Subgroups and matrices are not columns of the table. */
        H5O_info_t oi;
        if (H5Oget_info_by_name(caimg_h5_hid(f), full, &oi, H5P_DEFAULT) < 0
            || oi.type != H5O_TYPE_DATASET || caimg_h5_dims(f, full, &rank, d) || rank != 1) {
            H5Eclear2(H5E_DEFAULT);
            caimg_clear_error();
            continue;
        }
        if (ncol && d[0] != nrow) {
            rc = caimg_error(CAIMG_EFORMAT, "%s: %s has %zu rows, others have %zu", in,
                             full, d[0], nrow);
            break;
        }
        nrow = d[0];
        rc = caimg_h5_read(f, full, CAIMG_DT_F64, 1, NULL, d, (void **)&cols[ncol]);
        if (!rc) names[ncol++] = members[i];
    }
    if (!rc && ncol == 0)
        rc = caimg_error(CAIMG_EFORMAT, "%s: group %s holds no vectors to tabulate", in, group);
    if (!rc) {
        for (size_t j = 0; j < ncol; j++) fprintf(fp, "%s%s", j ? "\t" : "", names[j]);
        fputc('\n', fp);
        for (size_t i = 0; i < nrow; i++) {
            for (size_t j = 0; j < ncol; j++) fprintf(fp, "%s%.9g", j ? "\t" : "", cols[j][i]);
            fputc('\n', fp);
        }
    }
    for (size_t j = 0; j < ncol; j++) free(cols[j]);
    free(names);
    free(cols);
    caimg_h5_list_free(members, nm);
    return rc;
}

/* Whether `dataset` is one of the [N][T] traces of caimg-h5(5), whose
 * second dimension is frames, so that --frames selects its columns. */
static int is_traces(const char *dataset)
{
    static const char *const traces[] = {
        "roi/F", "roi/Fneu", "dff/dff", "dff/baseline", "deconv/s", "deconv/c",
        "deconv/spikes", "truth/spikes", "truth/calcium", "truth/rate", "truth/baseline",
        "truth/neuropil", NULL
    };
    while (*dataset == '/') dataset++;
    for (const char *const *t = traces; *t; t++)
        if (strcmp(dataset, *t) == 0) return 1;
    return 0;
}

/* A dataset or group as TSV.  `frames` says --frames was given: frames fa
 * to fb - 1 (fb 0 for the last), the columns of traces [N][T] or their
 * lines with `transpose`. */
static int export_tsv(cmd_ctx *c, const char *in, const char *dataset, int transpose,
                      int frames, size_t fa, size_t fb)
{
    caimg_h5 *f = caimg_h5_open_any(in, NULL);
    if (!f) return CAIMG_EFORMAT;
    int rc = 0;
    caimg_outfile *o = NULL;
    H5O_info_t oi;
    if (!caimg_h5_exists(f, dataset)) {
        rc = caimg_error(CAIMG_ENOENT, "%s: no dataset or group %s", in, dataset);
        goto out;
    }
    H5Oget_info_by_name(caimg_h5_hid(f), dataset, &oi, H5P_DEFAULT);
    o = caimg_outfile_open(c->output);
    if (!o) { rc = CAIMG_EIO; goto out; }
    FILE *fp = caimg_outfile_fp(o);
    int rank = 0;
    size_t d[CAIMG_H5_MAXRANK];
    if (oi.type != H5O_TYPE_GROUP) {
        rc = caimg_h5_dims(f, dataset, &rank, d);
        if (rc) goto out;
    }
    /* --frames is checked before anything is written, as for movies: an
     * option that would be ignored, or frames past the end, is a usage
     * error rather than a table of something else. */
    if (frames && (oi.type == H5O_TYPE_GROUP || rank != 2 || !is_traces(dataset))) {
        rc = caimg_error(CAIMG_EINVAL, "%s: --frames selects frames of movies and of [N][T] "
                         "traces (see caimg-export(1)); %s is neither", in, dataset);
        goto out;
    }
    if (frames) {
        if (fb == 0) fb = d[1];
        if (fa >= d[1] || fb > d[1]) {
            rc = caimg_error(CAIMG_EINVAL, "%s: --frames out of range: %s has %zu frames", in,
                             dataset, d[1]);
            goto out;
        }
    } else {
        fa = 0;
        fb = rank == 2 ? d[1] : 1;
    }
    if (oi.type == H5O_TYPE_GROUP) {
        rc = export_group_tsv(f, in, dataset, fp);
        goto out;
    }
    if (rank > 2) {
        rc = caimg_error(CAIMG_EFORMAT, "%s: %s has rank %d; TSV export takes vectors and "
                         "matrices (use a .tif output for movies)", in, dataset, rank);
        goto out;
    }
    size_t rows = rank == 0 ? 1 : d[0], cols = rank == 2 ? d[1] : 1;
    if (rank == 1) { rows = d[0]; cols = 1; }
    /* Row by row keeps memory bounded for [N][T] traces. */
    if (!transpose) {
        double *row = malloc((cols ? cols : 1) * sizeof *row);
        if (!row) { rc = CAIMG_ENOMEM; goto out; }
        for (size_t i = 0; !rc && i < rows; i++) {
            if (rank == 0) {
                double *all;
                rc = caimg_h5_read(f, dataset, CAIMG_DT_F64, 0, NULL, NULL, (void **)&all);
                if (!rc) { row[0] = all[0]; free(all); }
            } else rc = caimg_h5_read_rows(f, dataset, CAIMG_DT_F64, i, 1, row);
            /* A matrix's columns fa..fb-1: all of them unless --frames. */
            size_t j0 = rank == 2 ? fa : 0, j1 = rank == 2 ? fb : cols;
            for (size_t j = j0; !rc && j < j1; j++)
                fprintf(fp, "%s%.9g", j > j0 ? "\t" : "", row[j]);
            fputc('\n', fp);
        }
        free(row);
    } else {
        double *all = NULL;
        rc = caimg_h5_read(f, dataset, CAIMG_DT_F64, 0, NULL, NULL, (void **)&all);
        size_t j0 = rank == 2 ? fa : 0, j1 = rank == 2 ? fb : cols;
        for (size_t j = j0; !rc && j < j1; j++) {
            for (size_t i = 0; i < rows; i++)
                fprintf(fp, "%s%.9g", i ? "\t" : "", all[i * cols + j]);
            fputc('\n', fp);
        }
        free(all);
    }
out:
    if (o) {
        if (rc) caimg_outfile_abort(o);
        else rc = caimg_outfile_commit(o);
    }
    caimg_h5_close(f);
    return rc;
}

int main_export(int argc, char **argv)
{
    cmd_ctx c;
    int rc = cmd_begin(&c, "export", argc, argv, longopts);
    if (rc) return rc;
    const char *dataset = "/movie", *dtype = NULL, *format = NULL;
    double range[2];
    int have_range = 0, transpose = 0, bigtiff = 0, have_frames = 0, opt;
    size_t fa = 0, fb = 0;
    caimg_tiff_compression comp = CAIMG_TIFF_NONE;
    while ((opt = getopt_long(c.argc, c.argv, CMD_COMMON_SHORTOPTS "d:", longopts, NULL)) != -1) {
        int h = cmd_common_option(&c, opt, optarg);
        if (h < 0) { rc = EXIT_USAGE; goto done; }
        if (h > 0) continue;
        switch (opt) {
        case 'd': case OPT_DATASET: dataset = optarg; break;
        case OPT_DTYPE: dtype = optarg; break;
        case OPT_FORMAT: format = optarg; break;
        case OPT_RANGE:
            if (sscanf(optarg, "%lf:%lf", &range[0], &range[1]) != 2 || !(range[1] > range[0])) {
                rc = cmd_usage_error(&c, "--range: '%s' is not LO:HI with LO < HI", optarg);
                goto done;
            }
            have_range = 1;
            break;
        case OPT_FRAMES:
            if (cmd_parse_frames(&c, "--frames", optarg, &fa, &fb)) { rc = EXIT_USAGE; goto done; }
            have_frames = 1;
            break;
        case OPT_COMPRESSION:
            if (!strcmp(optarg, "none")) comp = CAIMG_TIFF_NONE;
            else if (!strcmp(optarg, "lzw")) comp = CAIMG_TIFF_LZW;
            else if (!strcmp(optarg, "deflate")) comp = CAIMG_TIFF_DEFLATE;
            else { rc = cmd_usage_error(&c, "--compression: '%s' is not none, lzw or deflate", optarg); goto done; }
            break;
        case OPT_TRANSPOSE: transpose = 1; break;
        case OPT_BIGTIFF: bigtiff = 1; break;
        default: rc = cmd_bad_option(&c); goto done;
        }
    }
    if (c.want_help) { usage(stdout); rc = 0; goto done; }
    if (optind >= c.argc) { rc = cmd_usage_error(&c, "no input file"); goto done; }
    if (optind + 1 < c.argc) { rc = cmd_usage_error(&c, "one input file at a time"); goto done; }
    if (!c.output) { rc = cmd_usage_error(&c, "no output file (use -o FILE)"); goto done; }
    if ((rc = cmd_check_output(&c, c.output))) goto done;
    int tiff;
    if (format) {
        if (!strcmp(format, "tiff") || !strcmp(format, "tif")) tiff = 1;
        else if (!strcmp(format, "tsv")) tiff = 0;
        else { rc = cmd_usage_error(&c, "--format: '%s' is not tiff or tsv", format); goto done; }
    } else if (has_suffix(c.output, ".tif") || has_suffix(c.output, ".tiff")) tiff = 1;
    else if (has_suffix(c.output, ".tsv") || has_suffix(c.output, ".txt")
             || !strcmp(c.output, "-")) tiff = 0;
    else {
        rc = cmd_usage_error(&c, "%s: cannot tell the format from the name; use .tif, .tsv or --format",
                             c.output);
        goto done;
    }
    if (tiff && !strcmp(c.output, "-")) {
        rc = cmd_usage_error(&c, "TIFF cannot be written to standard output");
        goto done;
    }
    const char *in = c.argv[optind];
    if ((rc = cmd_check_inputs(&c, c.output, &in, 1))) goto done;
    int r = tiff ? export_tiff(&c, in, dataset, dtype, have_range ? range : NULL, fa, fb,
                               comp, bigtiff)
                 : export_tsv(&c, in, dataset, transpose, have_frames, fa, fb);
    if (r) rc = cmd_fail(&c, r);
done:
    cmd_end(&c);
    return rc;
}
