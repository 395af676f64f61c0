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
"      --window S             maximin, percentile, lowpass: running window,\n"
"                             seconds [maximin 60; percentile 500 frames;\n"
"                             lowpass none]\n"
"      --window-frames N      running window in frames (instead of --window)\n"
"      --sigma FRAMES         maximin: Gaussian smoothing sigma [10]\n"
"      --percentile P|auto    percentile, lowpass, constant: 0-100, or 'auto'\n"
"                             from the mode of the trace's distribution\n"
"                             [percentile 8, lowpass 5, constant 8]\n"
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
"  -v, --verbose              say what was written\n"
"  -h, --help                 this help\n");
}

/* The baseline options and the methods that use them.  An option the
 * chosen method does not use would otherwise be dropped without a word
 * (or, worse, recorded in the provenance as if it had been used). */
enum { USE_MAXIMIN = 1, USE_PERCENTILE = 2, USE_LOWPASS = 4, USE_CONSTANT = 8 };
enum { BOPT_WINDOW, BOPT_WINFRAMES, BOPT_SIGMA, BOPT_PERCENTILE, BOPT_LOWPASS, BOPT_TAPS, NBOPT };
static const struct {
    const char *name;
    unsigned used_by;
} bopts[NBOPT] = {
    {"window",        USE_MAXIMIN | USE_PERCENTILE | USE_LOWPASS},
    {"window-frames", USE_MAXIMIN | USE_PERCENTILE | USE_LOWPASS},
    {"sigma",         USE_MAXIMIN},
    {"percentile",    USE_PERCENTILE | USE_LOWPASS | USE_CONSTANT},
    {"lowpass",       USE_LOWPASS},
    {"taps",          USE_LOWPASS},
};

/* Where an option came from: not given, the --config file, the command
 * line (which overrides the file). */
enum { FROM_NONE, FROM_CONFIG, FROM_ARGS };

static unsigned method_bit(const caimg_baseline_type *t)
{
    if (t == caimg_baseline_maximin) return USE_MAXIMIN;
    if (t == caimg_baseline_percentile) return USE_PERCENTILE;
    if (t == caimg_baseline_lowpass) return USE_LOWPASS;
    return USE_CONSTANT;
}

/* "maximin, percentile and lowpass": the methods in `mask`, for messages. */
static void method_list(unsigned mask, char *buf, size_t size)
{
    static const char *const names[] = {"maximin", "percentile", "lowpass", "constant"};
    int n = 0, total = 0;
    for (int i = 0; i < 4; i++) total += (mask >> i) & 1;
    buf[0] = '\0';
    for (int i = 0; i < 4; i++) {
        if (!((mask >> i) & 1)) continue;
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s", n == 0 ? "" : n + 1 == total ? " and " : ", ",
                 names[i]);
        n++;
    }
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
    int from[NBOPT] = {FROM_NONE};
    double list[2];
    int opt, n;
    while ((opt = getopt_long(c.argc, c.argv, CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        int h = cmd_common_option(&c, opt, optarg);
        if (h < 0) { rc = EXIT_USAGE; goto done; }
        if (h > 0) continue;
        /* Config arguments come first, each one --key=value word, so an
         * option read from argv[1..nconfig-1] leaves optind <= nconfig. */
        int src = optind <= c.nconfig ? FROM_CONFIG : FROM_ARGS;
        switch (opt) {
        case OPT_WINDOW: from[BOPT_WINDOW] = src; break;
        case OPT_WINFRAMES: from[BOPT_WINFRAMES] = src; break;
        case OPT_SIGMA: from[BOPT_SIGMA] = src; break;
        case OPT_PERCENTILE: from[BOPT_PERCENTILE] = src; break;
        case OPT_LOWPASS: from[BOPT_LOWPASS] = src; break;
        case OPT_TAPS: from[BOPT_TAPS] = src; break;
        default: break;
        }
        switch (opt) {
        case OPT_NEUROPIL:
            if (strcmp(optarg, "estimate") == 0) {
                p.estimate_r = 1;
            } else {
                p.estimate_r = 0;
                if (cmd_parse_double(&c, "--neuropil", optarg, 0, 10, &p.r)) { rc = EXIT_USAGE; goto done; }
            }
            break;
        /* A list that is not numbers has been reported by
         * cmd_parse_double_list (n < 0); one of the wrong length or
         * order is reported here, in one line either way. */
        case OPT_NPRANGE:
            if ((n = cmd_parse_double_list(&c, "--neuropil-range", optarg, list, 2)) < 0) { rc = EXIT_USAGE; goto done; }
            if (n != 2 || !(list[0] >= 0 && list[0] <= list[1])) {
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
            if ((n = cmd_parse_double_list(&c, "--noise-band", optarg, list, 2)) < 0) { rc = EXIT_USAGE; goto done; }
            if (n != 2 || !(list[0] >= 0 && list[0] < list[1] && list[1] <= 0.5)) {
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
    /* An option the method does not use: on the command line the user
     * asked for something that would not happen, a usage error; in a
     * config file (one file may serve several runs, and a [caimg] section
     * every stage) it is ignored with a warning. */
    unsigned mbit = method_bit(p.baseline);
    for (int i = 0; i < NBOPT; i++) {
        if (from[i] == FROM_NONE || (bopts[i].used_by & mbit)) continue;
        char users[64];
        method_list(bopts[i].used_by, users, sizeof users);
        if (from[i] == FROM_ARGS) {
            rc = cmd_usage_error(&c, "--%s: the %s baseline does not use it (only %s do%s)",
                                 bopts[i].name, caimg_baseline_type_name(p.baseline), users,
                                 strchr(users, ' ') ? "" : "es");
            goto done;
        }
        cmd_note(&c, "warning: %s: %s is not used by the %s baseline; ignored", c.config,
                 bopts[i].name, caimg_baseline_type_name(p.baseline));
        from[i] = FROM_NONE;
    }
    /* One window: both on the command line (or both in the file) is a
     * contradiction; one on the command line overrides the file's other. */
    if (from[BOPT_WINDOW] && from[BOPT_WINFRAMES]) {
        if (from[BOPT_WINDOW] == from[BOPT_WINFRAMES]) {
            rc = cmd_usage_error(&c, "give --window or --window-frames, not both");
            goto done;
        }
        if (from[BOPT_WINDOW] == FROM_CONFIG) from[BOPT_WINDOW] = FROM_NONE;
        else from[BOPT_WINFRAMES] = FROM_NONE;
    }
    if (!from[BOPT_WINDOW]) window = -1;
    if (!from[BOPT_WINFRAMES]) winframes = -1;
    if (!from[BOPT_SIGMA]) sigma = -1;
    if (!from[BOPT_PERCENTILE]) pct = -2;
    if (!from[BOPT_LOWPASS]) lowpass = -1;
    if (!from[BOPT_TAPS]) taps = -1;
    caimg_baseline_params_init(&p.bparams, p.baseline);
    /* One window, in one unit: the method's default window (percentile's
     * 500 frames) gives way to the one asked for, so the provenance
     * records only the window used and replays as the same command. */
    if (window > 0) {
        p.bparams.window_s = window;
        p.bparams.window_frames = 0;
    }
    if (winframes > 0) {
        p.bparams.window_frames = winframes;
        p.bparams.window_s = 0;
    }
    if (sigma >= 0) p.bparams.sigma_frames = sigma;
    if (pct > -2) p.bparams.percentile = pct;
    if (lowpass > 0) p.bparams.lowpass_hz = lowpass;
    if (taps > 0) p.bparams.lowpass_taps = (int)taps;
    p.fs = c.fs;
    p.threads = c.threads;
    rc = caimg_dff_run(c.argv[optind], c.output, &p, &io, c.cmdline);
    if (rc) { rc = cmd_fail(&c, rc); goto done; }
    if (c.verbose) cmd_note(&c, "%s: dF/F written", c.output);
done:
    cmd_end(&c);
    return rc;
}
