/* mc.c -- caimg mc: motion correction (rigid, piecewise-rigid, bidirectional).
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caimg/caimg.h"
#include "caimg/mcrun.h"
#include "cmd.h"

enum {
    OPT_TEMPLATE = OPT_FIRST_PRIVATE, OPT_TFRAMES, OPT_TITER, OPT_MAXSHIFT, OPT_SMOOTH,
    OPT_NOWHITEN, OPT_TAPER, OPT_PIECEWISE, OPT_PATCH, OPT_OVERLAP, OPT_MAXDEV, OPT_MINPNR,
    OPT_INTERP, OPT_BORDER, OPT_BIDI, OPT_BIDISUB, OPT_DTYPE, OPT_DEFLATE, OPT_CHUNK,
    OPT_CHANNELS, OPT_CHANNEL, OPT_PLANES, OPT_PLANE, OPT_DATASET, OPT_MEASURE
};

static const struct option longopts[] = {
    CMD_COMMON_LONGOPTS,
    {"template",        required_argument, NULL, OPT_TEMPLATE},
    {"template-frames", required_argument, NULL, OPT_TFRAMES},
    {"template-iter",   required_argument, NULL, OPT_TITER},
    {"max-shift",       required_argument, NULL, OPT_MAXSHIFT},
    {"smooth",          required_argument, NULL, OPT_SMOOTH},
    {"no-whiten",       no_argument,       NULL, OPT_NOWHITEN},
    {"taper",           required_argument, NULL, OPT_TAPER},
    {"piecewise",       no_argument,       NULL, OPT_PIECEWISE},
    {"nonrigid",        no_argument,       NULL, OPT_PIECEWISE},
    {"patch",           required_argument, NULL, OPT_PATCH},
    {"overlap",         required_argument, NULL, OPT_OVERLAP},
    {"max-dev",         required_argument, NULL, OPT_MAXDEV},
    {"min-pnr",         required_argument, NULL, OPT_MINPNR},
    {"interp",          required_argument, NULL, OPT_INTERP},
    {"border",          required_argument, NULL, OPT_BORDER},
    {"bidi",            required_argument, NULL, OPT_BIDI},
    {"bidi-subpixel",   no_argument,       NULL, OPT_BIDISUB},
    {"dtype",           required_argument, NULL, OPT_DTYPE},
    {"deflate",         required_argument, NULL, OPT_DEFLATE},
    {"chunk",           required_argument, NULL, OPT_CHUNK},
    {"channels",        required_argument, NULL, OPT_CHANNELS},
    {"channel",         required_argument, NULL, OPT_CHANNEL},
    {"planes",          required_argument, NULL, OPT_PLANES},
    {"plane",           required_argument, NULL, OPT_PLANE},
    {"dataset",         required_argument, NULL, OPT_DATASET},
    {"fftw-measure",    no_argument,       NULL, OPT_MEASURE},
    {NULL, 0, NULL, 0}
};

static void usage(FILE *fp)
{
    fprintf(fp,
"Usage: caimg mc [options] INPUT... -o OUT.h5\n"
"\n"
"Motion-correct a movie: a caimg HDF5 file (/movie) or TIFF stacks\n"
"concatenated in the order given.  Writes the corrected /movie and /mc\n"
"(shifts, per-frame correlation, template, patch shifts, valid region,\n"
"crispness, bidirectional offset) to a new caimg HDF5 file.\n"
"\n"
"Options:\n"
"  -o, --output FILE         output caimg HDF5 file (required)\n"
"      --template FILE       register to this template (TIFF, or HDF5 with\n"
"                            /mc/template or /template) [built from the data]\n"
"      --template-frames N   frames sampled evenly for the template [200]\n"
"      --template-iter N     template refinement iterations [3]\n"
"      --max-shift PX        largest shift searched per axis [1/4 of the smaller side]\n"
"      --smooth PX           Gaussian smoothing of the correlation [1.15]\n"
"      --no-whiten           plain cross-correlation instead of phase correlation\n"
"      --taper PX            width of the edge taper [1/16 of the side, at least 8]\n"
"      --piecewise           piecewise-rigid (non-rigid) registration after the\n"
"                            rigid one (also --nonrigid) [rigid only]\n"
"      --patch PX            patch side [128, or 1/4 of the smaller side if less]\n"
"      --overlap PX          overlap of neighbouring patches [patch/4]\n"
"      --max-dev PX          largest patch shift away from the rigid shift [5]\n"
"      --min-pnr R           patches with a lower peak-to-noise ratio take their\n"
"                            neighbours' shift [8]\n"
"      --interp METHOD       bicubic or bilinear resampling [bicubic]\n"
"      --border POLICY       pixels from outside the frame: nearest, zero or nan\n"
"                            (nan needs --dtype float32) [nearest]\n"
"      --bidi auto|off|PX    bidirectional-scan offset of odd rows [auto]\n"
"      --bidi-subpixel       keep the fraction of an estimated offset [whole pixels]\n"
"      --dtype TYPE          stored type of /movie: uint16 or float32\n"
"                            [uint16 for uint16 input, else float32]\n"
"      --deflate LEVEL       deflate compression of /movie, 0-9 [0]\n"
"      --chunk N             frames per chunk [about 32 MB]\n"
"      --fs HZ               frame rate in Hz [from the input]\n"
"      --dataset NAME        dataset of an HDF5 input [/movie]\n"
"      --channels N --channel K --planes P --plane Q\n"
"                            interleaving of TIFF pages, 1-based [ImageJ metadata, else 1]\n"
"      --fftw-measure        time FFTW's algorithms and use the fastest: quicker,\n"
"                            but the last bits of the results can then change\n"
"                            from run to run [estimated plans, reproducible]\n"
"  -@, --threads N           threads [all cores]\n"
"      --config FILE         read options from section [mc] of FILE\n"
"  -q, --quiet               no progress or warnings\n"
"  -v, --verbose             print a summary of what was done\n"
"  -h, --help                this help\n");
}

int main_mc(int argc, char **argv)
{
    cmd_ctx c;
    int rc = cmd_begin(&c, "mc", argc, argv, longopts);
    if (rc) return rc;
    caimg_mc_run_opts o;
    caimg_mc_run_opts_init(&o);
    long v;
    double d;
    int opt;
    while ((opt = getopt_long(c.argc, c.argv, CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        int h = cmd_common_option(&c, opt, optarg);
        if (h < 0) { rc = EXIT_USAGE; goto done; }
        if (h > 0) continue;
        switch (opt) {
        case OPT_TEMPLATE: o.template_path = optarg; break;
        case OPT_TFRAMES:
            if (cmd_parse_long(&c, "--template-frames", optarg, 1, 100000, &v)) { rc = EXIT_USAGE; goto done; }
            o.template_frames = (size_t)v;
            break;
        case OPT_TITER:
            if (cmd_parse_long(&c, "--template-iter", optarg, 0, 50, &v)) { rc = EXIT_USAGE; goto done; }
            o.mc.template_iter = (int)v;
            break;
        case OPT_MAXSHIFT:
            if (cmd_parse_double(&c, "--max-shift", optarg, 1, 1e6, &o.mc.max_shift)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_SMOOTH:
            if (cmd_parse_double(&c, "--smooth", optarg, 0, 10, &o.mc.smooth_sigma)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_NOWHITEN: o.mc.whiten = 0; break;
        case OPT_TAPER:
            if (cmd_parse_double(&c, "--taper", optarg, 1, 1e6, &o.mc.taper)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_PIECEWISE: o.mc.piecewise = 1; break;
        case OPT_PATCH:
            if (cmd_parse_long(&c, "--patch", optarg, 16, 65536, &v)) { rc = EXIT_USAGE; goto done; }
            o.mc.patch = (size_t)v;
            break;
        case OPT_OVERLAP:
            if (cmd_parse_long(&c, "--overlap", optarg, 1, 65536, &v)) { rc = EXIT_USAGE; goto done; }
            o.mc.overlap = (size_t)v;
            break;
        case OPT_MAXDEV:
            if (cmd_parse_double(&c, "--max-dev", optarg, 0.1, 64, &o.mc.max_dev)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_MINPNR:
            if (cmd_parse_double(&c, "--min-pnr", optarg, 0, 1e6, &o.mc.min_pnr)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_INTERP:
            if (!strcmp(optarg, "bicubic")) o.mc.interp = CAIMG_MC_INTERP_BICUBIC;
            else if (!strcmp(optarg, "bilinear")) o.mc.interp = CAIMG_MC_INTERP_BILINEAR;
            else { rc = cmd_usage_error(&c, "--interp: '%s' is not bicubic or bilinear", optarg); goto done; }
            break;
        case OPT_BORDER:
            if (!strcmp(optarg, "nearest")) o.mc.border = CAIMG_MC_BORDER_NEAREST;
            else if (!strcmp(optarg, "zero")) o.mc.border = CAIMG_MC_BORDER_ZERO;
            else if (!strcmp(optarg, "nan")) o.mc.border = CAIMG_MC_BORDER_NAN;
            else { rc = cmd_usage_error(&c, "--border: '%s' is not nearest, zero or nan", optarg); goto done; }
            break;
        case OPT_BIDI:
            if (!strcmp(optarg, "auto")) o.mc.bidi = CAIMG_MC_BIDI_AUTO;
            else if (!strcmp(optarg, "off")) o.mc.bidi = CAIMG_MC_BIDI_OFF;
            else {
                if (cmd_parse_double(&c, "--bidi", optarg, -1e4, 1e4, &d)) { rc = EXIT_USAGE; goto done; }
                o.mc.bidi = CAIMG_MC_BIDI_FIXED;
                o.mc.bidi_offset = d;
            }
            break;
        case OPT_BIDISUB: o.mc.bidi_subpixel = 1; break;
        case OPT_DTYPE:
            o.dtype = caimg_dtype_from_name(optarg);
            if (o.dtype != CAIMG_DT_U16 && o.dtype != CAIMG_DT_F32) {
                rc = cmd_usage_error(&c, "--dtype: '%s' is not uint16 or float32", optarg);
                goto done;
            }
            break;
        case OPT_DEFLATE:
            if (cmd_parse_long(&c, "--deflate", optarg, 0, 9, &v)) { rc = EXIT_USAGE; goto done; }
            o.deflate = (int)v;
            break;
        case OPT_CHUNK:
            if (cmd_parse_long(&c, "--chunk", optarg, 1, 100000, &v)) { rc = EXIT_USAGE; goto done; }
            o.chunk = (size_t)v;
            break;
        case OPT_CHANNELS:
            if (cmd_parse_long(&c, "--channels", optarg, 1, 64, &v)) { rc = EXIT_USAGE; goto done; }
            o.movie.channels = (size_t)v;
            break;
        case OPT_CHANNEL:
            if (cmd_parse_long(&c, "--channel", optarg, 1, 64, &v)) { rc = EXIT_USAGE; goto done; }
            o.movie.channel = (size_t)v;
            break;
        case OPT_PLANES:
            if (cmd_parse_long(&c, "--planes", optarg, 1, 4096, &v)) { rc = EXIT_USAGE; goto done; }
            o.movie.planes = (size_t)v;
            break;
        case OPT_PLANE:
            if (cmd_parse_long(&c, "--plane", optarg, 1, 4096, &v)) { rc = EXIT_USAGE; goto done; }
            o.movie.plane = (size_t)v;
            break;
        case OPT_DATASET: o.movie.dataset = optarg; break;
        case OPT_MEASURE: o.mc.measure = 1; break;
        default: rc = cmd_bad_option(&c); goto done;
        }
    }
    if (c.want_help) { usage(stdout); rc = 0; goto done; }
    if (optind >= c.argc) { rc = cmd_usage_error(&c, "no input files"); goto done; }
    if (!c.output) { rc = cmd_usage_error(&c, "no output file (use -o FILE)"); goto done; }
    if ((rc = cmd_check_output(&c, c.output))
        || (rc = cmd_check_inputs(&c, c.output, (const char *const *)c.argv + optind,
                                  (size_t)(c.argc - optind)))
        || (rc = cmd_check_inputs(&c, c.output, &o.template_path, 1)))
        goto done;
    if (o.mc.border == CAIMG_MC_BORDER_NAN && o.dtype != CAIMG_DT_F32) {
        rc = cmd_usage_error(&c, "--border nan needs --dtype float32 (uint16 has no NaN)");
        goto done;
    }
    o.mc.threads = c.threads;
    o.fs = c.fs;
    o.cmdline = c.cmdline;
    caimg_mc_summary s;
    rc = caimg_mc_run((const char *const *)c.argv + optind, (size_t)(c.argc - optind), c.output, &o, &s);
    if (rc) { rc = cmd_fail(&c, rc); goto done; }
    if (c.verbose)
        cmd_note(&c, "%s: %zu frames, valid box rows %d-%d columns %d-%d, bidi %g px, "
                 "crispness %.4g -> %.4g", c.output, s.frames, s.valid[0], s.valid[1], s.valid[2],
                 s.valid[3], s.bidi_offset, s.crispness_before, s.crispness_after);
done:
    cmd_end(&c);
    return rc;
}
