/* dff.c -- caimg dff: neuropil subtraction, baselines, dF/F and noise levels.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caimg/caimg.h"
#include "cmd.h"

enum {
    OPT_NEUROPIL = OPT_FIRST_PRIVATE, OPT_NPRANGE, OPT_NPQ, OPT_BASELINE, OPT_WINDOW,
    OPT_WINFRAMES, OPT_SIGMA, OPT_PERCENTILE, OPT_LOWPASS, OPT_TAPS, OPT_FLOOR, OPT_BAND,
    OPT_NOISEM, OPT_TRACES, OPT_NTRACES, OPT_BLOCK, OPT_DEFLATE
};

static const struct option longopts[] = {
    CMD_COMMON_LONGOPTS,
    {"neuropil",          required_argument, NULL, OPT_NEUROPIL},
    {"neuropil-range",    required_argument, NULL, OPT_NPRANGE},
    {"neuropil-quantile", required_argument, NULL, OPT_NPQ},
    {"baseline",          required_argument, NULL, OPT_BASELINE},
    {"window",            required_argument, NULL, OPT_WINDOW},
    {"window-frames",     required_argument, NULL, OPT_WINFRAMES},
    {"sigma",             required_argument, NULL, OPT_SIGMA},
    {"percentile",        required_argument, NULL, OPT_PERCENTILE},
    {"lowpass",           required_argument, NULL, OPT_LOWPASS},
    {"taps",              required_argument, NULL, OPT_TAPS},
    {"f0-floor",          required_argument, NULL, OPT_FLOOR},
    {"noise-band",        required_argument, NULL, OPT_BAND},
    {"noise-method",      required_argument, NULL, OPT_NOISEM},
    {"traces",            required_argument, NULL, OPT_TRACES},
    {"neuropil-traces",   required_argument, NULL, OPT_NTRACES},
    {"block",             required_argument, NULL, OPT_BLOCK},
    {"deflate",           required_argument, NULL, OPT_DEFLATE},
    {NULL, 0, NULL, 0}
};

static void usage(FILE *fp)
{
    fprintf(fp,
"Usage: caimg dff [options] ROI.h5 -o DFF.h5\n"
"\n"
"Neuropil-subtract the ROI traces, find their baselines F0 and write\n"
"dF/F = (Fc - F0) / max(F0, floor) with the noise level of every ROI.\n"
"\n"
"Options:\n"
"  -o, --output FILE          output caimg HDF5 file (required)\n"
"      --fs HZ                frame rate [fs attribute of /roi or /movie]\n"
"      --neuropil R|estimate  neuropil coefficient, Fc = F - R Fneu, or\n"
"                             'estimate' per ROI [0.7]\n"
"      --neuropil-range LO,HI bounds of the estimate [0,1.5]\n"
"      --neuropil-quantile Q  quantile of the robust regression [0.05]\n"
"      --baseline NAME        maximin, percentile, lowpass or constant [maximin]\n"
"      --window S             running window, seconds [maximin 60; percentile:\n"
"                             500 frames; lowpass: none, constant]\n"
"      --window-frames N      running window in frames (instead of --window)\n"
"      --sigma FRAMES         maximin: Gaussian smoothing sigma [10]\n"
"      --percentile P|auto    percentile, 0-100, or 'auto' from the mode of the\n"
"                             trace's distribution [percentile 8, lowpass 5,\n"
"                             constant 8]\n"
"      --lowpass HZ           lowpass: cutoff frequency [1]\n"
"      --taps N               lowpass: FIR filter length [30]\n"
"      --f0-floor F           denominators at least F times the mean |F| [0.1]\n"
"      --noise-band LO,HI     PSD noise band, cycles per frame [0.25,0.5]\n"
"      --noise-method M       mean, logmean or median of the PSD band [mean]\n"
"      --traces NAME          dataset of the raw traces [/roi/F]\n"
"      --neuropil-traces NAME dataset of the neuropil traces, or 'none' [/roi/Fneu]\n"
"      --block N              ROIs processed at once [about 64 MB]\n"
"      --deflate LEVEL        compression of the [N][T] outputs, 0-9 [0]\n"
"  -@, --threads N            threads [all cores]\n"
"      --config FILE          read options from section [dff] of FILE\n"
"  -q, --quiet                no progress or warnings\n"
"  -v, --verbose              more detail in messages\n"
"  -h, --help                 this help\n");
}

int main_dff(int argc, char **argv)
{
    cmd_ctx c;
    int rc = cmd_begin(&c, "dff", argc, argv, longopts);
    if (rc) return rc;
    caimg_dff_params p;
    caimg_dff_params_init(&p, 0);
    caimg_dff_io io;
    caimg_dff_io_init(&io);
    /* Baseline options are collected first and applied over the chosen
     * method's defaults at the end, so their order does not matter. */
    double window = -1, winframes = -1, sigma = -1, pct = -2, lowpass = -1;
    long taps = -1, v;
    const char *bname = "maximin";
    double list[2];
    int opt;
    while ((opt = getopt_long(c.argc, c.argv, CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        int h = cmd_common_option(&c, opt, optarg);
        if (h < 0) { rc = EXIT_USAGE; goto done; }
        if (h > 0) continue;
        switch (opt) {
        case OPT_NEUROPIL:
            if (strcmp(optarg, "estimate") == 0) {
                p.estimate_r = 1;
            } else {
                p.estimate_r = 0;
                if (cmd_parse_double(&c, "--neuropil", optarg, 0, 10, &p.r)) { rc = EXIT_USAGE; goto done; }
            }
            break;
        case OPT_NPRANGE:
            if (cmd_parse_double_list(&c, "--neuropil-range", optarg, list, 2) != 2 ||
                !(list[0] >= 0 && list[0] <= list[1])) {
                rc = cmd_usage_error(&c, "--neuropil-range: need LO,HI with 0 <= LO <= HI");
                goto done;
            }
            p.r_min = list[0];
            p.r_max = list[1];
            break;
        case OPT_NPQ:
            if (cmd_parse_double(&c, "--neuropil-quantile", optarg, 0.001, 0.999, &p.r_quantile)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_BASELINE: bname = optarg; break;
        case OPT_WINDOW:
            if (cmd_parse_double(&c, "--window", optarg, 1e-6, 1e9, &window)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_WINFRAMES:
            if (cmd_parse_double(&c, "--window-frames", optarg, 1, 1e12, &winframes)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_SIGMA:
            if (cmd_parse_double(&c, "--sigma", optarg, 0, 1e6, &sigma)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_PERCENTILE:
            if (strcmp(optarg, "auto") == 0) pct = CAIMG_PERCENTILE_AUTO;
            else if (cmd_parse_double(&c, "--percentile", optarg, 0, 100, &pct)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_LOWPASS:
            if (cmd_parse_double(&c, "--lowpass", optarg, 1e-6, 1e6, &lowpass)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_TAPS:
            if (cmd_parse_long(&c, "--taps", optarg, 3, 100000, &taps)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_FLOOR:
            if (cmd_parse_double(&c, "--f0-floor", optarg, 1e-9, 1e3, &p.f0_floor)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_BAND:
            if (cmd_parse_double_list(&c, "--noise-band", optarg, list, 2) != 2 ||
                !(list[0] >= 0 && list[0] < list[1] && list[1] <= 0.5)) {
                rc = cmd_usage_error(&c, "--noise-band: need LO,HI with 0 <= LO < HI <= 0.5 "
                                     "(cycles per frame)");
                goto done;
            }
            p.noise_band[0] = list[0];
            p.noise_band[1] = list[1];
            break;
        case OPT_NOISEM: {
            int m = caimg_noise_method_from_name(optarg);
            if (m < 0) {
                rc = cmd_usage_error(&c, "--noise-method: '%s' is not mean, logmean or median", optarg);
                goto done;
            }
            p.noise_method = (caimg_noise_method)m;
            break;
        }
        case OPT_TRACES: io.F = optarg; break;
        case OPT_NTRACES: io.Fneu = strcmp(optarg, "none") == 0 ? NULL : optarg; break;
        case OPT_BLOCK:
            if (cmd_parse_long(&c, "--block", optarg, 1, 100000000, &v)) { rc = EXIT_USAGE; goto done; }
            io.block = (size_t)v;
            break;
        case OPT_DEFLATE:
            if (cmd_parse_long(&c, "--deflate", optarg, 0, 9, &v)) { rc = EXIT_USAGE; goto done; }
            io.deflate = (int)v;
            break;
        default: rc = cmd_bad_option(&c); goto done;
        }
    }
    if (c.want_help) { usage(stdout); rc = 0; goto done; }
    if (optind >= c.argc) { rc = cmd_usage_error(&c, "no input file"); goto done; }
    if (c.argc - optind > 1) { rc = cmd_usage_error(&c, "one input file expected, got %d", c.argc - optind); goto done; }
    if (!c.output) { rc = cmd_usage_error(&c, "no output file (use -o FILE)"); goto done; }
    if ((rc = cmd_check_output(&c, c.output))
        || (rc = cmd_check_inputs(&c, c.output, (const char *const *)c.argv + optind,
                                  (size_t)(c.argc - optind))))
        goto done;
    p.baseline = caimg_baseline_type_find(bname);
    if (!p.baseline) {
        rc = cmd_usage_error(&c, "--baseline: '%s' is not maximin, percentile, lowpass or constant",
                             bname);
        goto done;
    }
    caimg_baseline_params_init(&p.bparams, p.baseline);
    if (window > 0) p.bparams.window_s = window;
    if (winframes > 0) {
        p.bparams.window_frames = winframes;
        p.bparams.window_s = 0;
    }
    if (sigma >= 0) p.bparams.sigma_frames = sigma;
    if (pct > -2) p.bparams.percentile = pct;
    if (lowpass > 0) p.bparams.lowpass_hz = lowpass;
    if (taps > 0) p.bparams.lowpass_taps = (int)taps;
    if (pct == CAIMG_PERCENTILE_AUTO && p.baseline == caimg_baseline_maximin) {
        rc = cmd_usage_error(&c, "--percentile: the maximin baseline has no percentile");
        goto done;
    }
    p.fs = c.fs;
    p.threads = c.threads;
    rc = caimg_dff_run(c.argv[optind], c.output, &p, &io, c.cmdline);
    if (rc) { rc = cmd_fail(&c, rc); goto done; }
    if (c.verbose) cmd_note(&c, "%s: dF/F written", c.output);
done:
    cmd_end(&c);
    return rc;
}
