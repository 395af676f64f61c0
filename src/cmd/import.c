/* import.c -- caimg import: TIFF stacks to a caimg HDF5 movie.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caimg/caimg.h"
#include "caimg/h5io.h"
#include "caimg/movie.h"
#include "cmd.h"

enum {
    OPT_CHANNELS = OPT_FIRST_PRIVATE, OPT_CHANNEL, OPT_PLANES, OPT_PLANE,
    OPT_PIXEL, OPT_DEFLATE, OPT_DTYPE, OPT_FRAMES, OPT_DATASET
};

static const struct option longopts[] = {
    CMD_COMMON_LONGOPTS,
    {"channels",  required_argument, NULL, OPT_CHANNELS},
    {"channel",   required_argument, NULL, OPT_CHANNEL},
    {"planes",    required_argument, NULL, OPT_PLANES},
    {"plane",     required_argument, NULL, OPT_PLANE},
    {"pixel-um",  required_argument, NULL, OPT_PIXEL},
    {"deflate",   required_argument, NULL, OPT_DEFLATE},
    {"dtype",     required_argument, NULL, OPT_DTYPE},
    {"frames",    required_argument, NULL, OPT_FRAMES},
    {"dataset",   required_argument, NULL, OPT_DATASET},
    {NULL, 0, NULL, 0}
};

static void usage(FILE *fp)
{
    fprintf(fp,
"Usage: caimg import [options] INPUT.tif... -o OUT.h5\n"
"\n"
"Convert one or more TIFF stacks (concatenated in the order given) into a\n"
"caimg HDF5 movie /movie [T][Y][X].  An HDF5 input is also accepted\n"
"(see --dataset).\n"
"\n"
"Options:\n"
"  -o, --output FILE     output caimg HDF5 file (required)\n"
"      --channels N      interleaved channels per time point [ImageJ metadata, else 1]\n"
"      --channel K       channel to import, 1-based [1]\n"
"      --planes P        interleaved planes per volume [ImageJ metadata, else 1]\n"
"      --plane Q         plane to import, 1-based [1]\n"
"      --frames A-B      import frames A to B only, 1-based, inclusive [all]\n"
"      --fs HZ           frame rate in Hz [ImageJ finterval, else unknown]\n"
"      --pixel-um UM     pixel size in micrometres [from the TIFF, else unknown]\n"
"      --dtype TYPE      stored sample type: keep, uint16 or float32 [keep]\n"
"      --deflate LEVEL   deflate compression level 0-9, 0 = none [0]\n"
"      --dataset NAME    dataset of an HDF5 input, [T][Y][X] [/movie]\n"
"  -@, --threads N       threads [all cores]\n"
"      --config FILE     read options from section [import] of FILE\n"
"  -q, --quiet           no progress or warnings\n"
"  -v, --verbose         report more of what was done\n"
"  -h, --help            this help\n");
}

int main_import(int argc, char **argv)
{
    cmd_ctx c;
    int rc = cmd_begin(&c, "import", argc, argv, longopts);
    if (rc) return rc;
    caimg_movie_opts mo;
    caimg_movie_opts_init(&mo);
    double pixel_um = 0;
    long deflate = 0, v;
    const char *dtype_name = "keep";
    size_t fa = 0, fb = 0;
    int opt;
    while ((opt = getopt_long(c.argc, c.argv, CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        int h = cmd_common_option(&c, opt, optarg);
        if (h < 0) { rc = EXIT_USAGE; goto done; }
        if (h > 0) continue;
        switch (opt) {
        case OPT_CHANNELS:
            if (cmd_parse_long(&c, "--channels", optarg, 1, 64, &v)) { rc = EXIT_USAGE; goto done; }
            mo.channels = (size_t)v; break;
        case OPT_CHANNEL:
            if (cmd_parse_long(&c, "--channel", optarg, 1, 64, &v)) { rc = EXIT_USAGE; goto done; }
            mo.channel = (size_t)v; break;
        case OPT_PLANES:
            if (cmd_parse_long(&c, "--planes", optarg, 1, 4096, &v)) { rc = EXIT_USAGE; goto done; }
            mo.planes = (size_t)v; break;
        case OPT_PLANE:
            if (cmd_parse_long(&c, "--plane", optarg, 1, 4096, &v)) { rc = EXIT_USAGE; goto done; }
            mo.plane = (size_t)v; break;
        case OPT_PIXEL:
            if (cmd_parse_double(&c, "--pixel-um", optarg, 1e-6, 1e6, &pixel_um)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_DEFLATE:
            if (cmd_parse_long(&c, "--deflate", optarg, 0, 9, &deflate)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_DTYPE: dtype_name = optarg; break;
        case OPT_FRAMES:
            if (cmd_parse_frames(&c, "--frames", optarg, &fa, &fb)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_DATASET: mo.dataset = optarg; break;
        default: rc = cmd_bad_option(&c); goto done;
        }
    }
    if (c.want_help) { usage(stdout); rc = 0; goto done; }
    if (optind >= c.argc) { rc = cmd_usage_error(&c, "no input files"); goto done; }
    if (!c.output) { rc = cmd_usage_error(&c, "no output file (use -o FILE)"); goto done; }
    if ((rc = cmd_check_output(&c, c.output))
        || (rc = cmd_check_inputs(&c, c.output, (const char *const *)c.argv + optind,
                                  (size_t)(c.argc - optind))))
        goto done;
    caimg_dtype store = CAIMG_DT_NONE;
    if (strcmp(dtype_name, "keep") != 0) {
        store = caimg_dtype_from_name(dtype_name);
        if (store != CAIMG_DT_U16 && store != CAIMG_DT_F32) {
            rc = cmd_usage_error(&c, "--dtype: '%s' is not keep, uint16 or float32", dtype_name);
            goto done;
        }
    }

    const char *const *inputs = (const char *const *)c.argv + optind;
    size_t ninputs = (size_t)(c.argc - optind);
    caimg_movie *m = caimg_movie_open(inputs, ninputs, &mo);
    /* The library's status, not a blanket data error: a --channel or
     * --plane the data does not have is a usage error (CAIMG_EINVAL), as
     * is --frames past the end below and in every other stage. */
    if (!m) { rc = cmd_fail(&c, caimg_errstatus_or(CAIMG_EFORMAT)); goto done; }
    size_t T = caimg_movie_frames(m), Y = caimg_movie_height(m), X = caimg_movie_width(m);
    if (fb == 0) fb = T;
    if (fa >= T || fb > T) {
        /* Well formed, but past the end of this movie: named with its
         * file, as export names the file for the same error. */
        if (ninputs > 1)
            caimg_error(CAIMG_EINVAL, "%s (first of %zu files): --frames out of range: "
                        "the movie has %zu frames", inputs[0], ninputs, T);
        else
            caimg_error(CAIMG_EINVAL, "%s: --frames out of range: the movie has %zu frames",
                        inputs[0], T);
        rc = cmd_fail(&c, CAIMG_EINVAL);
        caimg_movie_close(m);
        goto done;
    }
    caimg_dtype src = caimg_movie_dtype(m);
    if (store == CAIMG_DT_NONE) store = src;
    double fs = c.fs > 0 ? c.fs : caimg_movie_fs(m);
    if (pixel_um <= 0) pixel_um = caimg_movie_pixel_um(m);

    caimg_h5 *out = caimg_h5_create(c.output, "import", c.cmdline);
    caimg_h5_stream *s = NULL;
    void *buf = NULL;
    rc = out ? 0 : caimg_errmsg()[0] ? CAIMG_EIO : CAIMG_ENOMEM;
    for (size_t i = 0; !rc && i < ninputs; i++) rc = caimg_h5_add_input(out, inputs[i], 0);
    if (!rc) {
        /* Only option values the parser takes, so the record replays
         * through --config; what came from the file's metadata, with no
         * option value to say so, is a comment. */
        if (mo.channels) caimg_h5_param(out, "channels", "%zu", mo.channels);
        else caimg_h5_param_derived(out, "channels", "%zu (from the metadata)",
                                    caimg_movie_channels(m));
        caimg_h5_param(out, "channel", "%zu", mo.channel ? mo.channel : 1);
        if (mo.planes) caimg_h5_param(out, "planes", "%zu", mo.planes);
        else caimg_h5_param_derived(out, "planes", "%zu (from the metadata)",
                                    caimg_movie_planes(m));
        caimg_h5_param(out, "plane", "%zu", mo.plane ? mo.plane : 1);
        caimg_h5_param(out, "frames", "%zu-%zu", fa + 1, fb);
        if (fs > 0) caimg_h5_param_double(out, "fs", fs);
        else caimg_h5_param_derived(out, "fs", "0 (unknown)");
        if (pixel_um > 0) caimg_h5_param_double(out, "pixel-um", pixel_um);
        else caimg_h5_param_derived(out, "pixel-um", "0 (unknown)");
        /* --dtype takes keep, uint16 or float32: a kept type of another
         * kind is recorded as keep. */
        if (store == CAIMG_DT_U16 || store == CAIMG_DT_F32)
            caimg_h5_param(out, "dtype", "%s", caimg_dtype_name(store));
        else {
            caimg_h5_param(out, "dtype", "keep");
            caimg_h5_param_derived(out, "dtype", "%s", caimg_dtype_name(store));
        }
        caimg_h5_param(out, "deflate", "%ld", deflate);
        size_t inner[2] = {Y, X};
        s = caimg_h5_stream_create(out, "/movie", store, 3, inner, (int)deflate, fb - fa);
        if (!s) rc = CAIMG_EIO;
    }
    /* Chunks of about 32 MB: large enough for efficient I/O, small enough
     * that memory does not depend on the length of the recording. */
    size_t fbytes = Y * X * caimg_dtype_size(src);
    size_t chunk = (32u << 20) / (fbytes ? fbytes : 1);
    if (chunk < 1) chunk = 1;
    if (chunk > 256) chunk = 256;
    int to_float = store != src;
    if (!rc) {
        buf = malloc(chunk * Y * X * (to_float ? sizeof(float) : caimg_dtype_size(src)));
        if (!buf) rc = caimg_error(CAIMG_ENOMEM, "out of memory for %zu frames", chunk);
    }
    size_t clamped = 0;
    for (size_t t = fa; !rc && t < fb; t += chunk) {
        size_t n = fb - t < chunk ? fb - t : chunk;
        rc = to_float ? caimg_movie_read(m, t, n, buf) : caimg_movie_read_raw(m, t, n, buf);
        if (!rc) rc = caimg_h5_stream_write(s, buf, to_float ? CAIMG_DT_F32 : src, n, &clamped);
        if (!rc) rc = caimg_progress("importing frames", (double)(t + n - fa), (double)(fb - fa));
    }
    if (!rc) rc = caimg_h5_stream_close(s);
    else caimg_h5_stream_close(s);
    s = NULL;
    if (!rc) {
        rc = caimg_h5_set_attr_double(out, "/movie", "fs", fs);
        if (!rc) rc = caimg_h5_set_attr_double(out, "/movie", "pixel_um", pixel_um);
        if (!rc) rc = caimg_h5_set_attr_string(out, "/movie", "source_files", caimg_movie_sources(m));
        if (!rc) rc = caimg_h5_set_attr_long(out, "/movie", "channel", (long)(mo.channel ? mo.channel : 1));
        if (!rc) rc = caimg_h5_set_attr_long(out, "/movie", "plane", (long)(mo.plane ? mo.plane : 1));
        if (!rc) rc = caimg_h5_set_attr_long(out, "/movie", "first_frame", (long)fa);
    }
    if (clamped)
        caimg_warn("%zu samples were outside the range of %s and were clamped", clamped,
                   caimg_dtype_name(store));
    free(buf);
    caimg_movie_close(m);
    if (!rc) {
        rc = caimg_h5_commit(out);
        out = NULL;
    }
    caimg_h5_close(out);
    if (rc) { rc = cmd_fail(&c, rc); goto done; }
    if (c.verbose)
        cmd_note(&c, "%s: %zu frames of %zux%zu %s", c.output, fb - fa, Y, X,
                 caimg_dtype_name(store));
done:
    cmd_end(&c);
    return rc;
}
