/* deconv.c -- caimg deconv: OASIS spike deconvolution of traces.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "caimg/caimg.h"
#include "cmd.h"

enum {
    OPT_METHOD = OPT_FIRST_PRIVATE, OPT_AR, OPT_TAU, OPT_RISE, OPT_INDICATOR, OPT_NOREFINE,
    OPT_LAGS, OPT_FUDGE, OPT_TAURANGE, OPT_FBTAU, OPT_FBRISE, OPT_SN, OPT_NOISEM, OPT_BAND,
    OPT_LAMBDA, OPT_LAMBDAZ, OPT_SMIN, OPT_SMINZ, OPT_BASELINE, OPT_B, OPT_MAXITER,
    OPT_DATASET, OPT_BLOCK, OPT_DEFLATE
};

static const struct option longopts[] = {
    CMD_COMMON_LONGOPTS,
    {"method",        required_argument, NULL, OPT_METHOD},
    {"ar",            required_argument, NULL, OPT_AR},
    {"tau",           required_argument, NULL, OPT_TAU},
    {"rise",          required_argument, NULL, OPT_RISE},
    {"indicator",     required_argument, NULL, OPT_INDICATOR},
    {"no-refine",     no_argument,       NULL, OPT_NOREFINE},
    {"lags",          required_argument, NULL, OPT_LAGS},
    {"fudge",         required_argument, NULL, OPT_FUDGE},
    {"tau-range",     required_argument, NULL, OPT_TAURANGE},
    {"fallback-tau",  required_argument, NULL, OPT_FBTAU},
    {"fallback-rise", required_argument, NULL, OPT_FBRISE},
    {"sn",            required_argument, NULL, OPT_SN},
    {"noise-method",  required_argument, NULL, OPT_NOISEM},
    {"noise-band",    required_argument, NULL, OPT_BAND},
    {"lambda",        required_argument, NULL, OPT_LAMBDA},
    {"lambda-z",      required_argument, NULL, OPT_LAMBDAZ},
    {"smin",          required_argument, NULL, OPT_SMIN},
    {"smin-z",        required_argument, NULL, OPT_SMINZ},
    {"baseline",      required_argument, NULL, OPT_BASELINE},
    {"b",             required_argument, NULL, OPT_B},
    {"max-iter",      required_argument, NULL, OPT_MAXITER},
    {"dataset",       required_argument, NULL, OPT_DATASET},
    {"block",         required_argument, NULL, OPT_BLOCK},
    {"deflate",       required_argument, NULL, OPT_DEFLATE},
    {NULL, 0, NULL, 0}
};

static void usage(FILE *fp)
{
    fprintf(fp,
"Usage: caimg deconv [options] DFF.h5|TRACES.h5|TRACES.tsv -o SPIKES.h5\n"
"\n"
"Infer spikes from calcium traces by OASIS deconvolution with an AR(1) or\n"
"AR(2) model, estimating the kinetics, noise and baseline of every neuron.\n"
"Input: a caimg dff output (/dff/dff), any HDF5 dataset [neurons][frames]\n"
"(--dataset), or a table with one row per neuron (tab, comma or space\n"
"separated; give --fs).\n"
"\n"
"Options:\n"
"  -o, --output FILE        output caimg HDF5 file (required)\n"
"      --fs HZ              frame rate [fs attribute of the input]\n"
"      --dataset NAME       traces in an HDF5 input [/dff/dff]\n"
"      --method M           thresholded, constrained, penalized or auto\n"
"                           [thresholded]\n"
"      --ar 1|2             AR order; 2 models the rise [2]\n"
"Kinetics (estimated per neuron unless given):\n"
"      --tau S              decay time constant, seconds [estimate]\n"
"      --rise S             rise time constant, seconds (AR(2), with --tau)\n"
"                           [0]\n"
"      --indicator NAME     decay and rise of a preset: GCaMP6f, GCaMP6m,\n"
"                           GCaMP6s, GCaMP7f, GCaMP7s, GCaMP8f, GCaMP8m, GCaMP8s,\n"
"                           OGB-1\n"
"      --no-refine          keep the autocovariance estimate (no refinement on\n"
"                           isolated transients)\n"
"      --lags N             extra autocovariance lags, 0-12 [5]\n"
"      --fudge F            multiply the estimated AR roots by F [1]\n"
"      --tau-range LO,HI    plausible decay range, seconds [0.05,5]\n"
"      --fallback-tau S     decay used when estimation fails [1]\n"
"      --fallback-rise S    rise used then, AR(2) [0.05]\n"
"Noise and sparsity:\n"
"      --sn X               noise sd in units of the traces [estimate from the PSD]\n"
"      --noise-method M     mean, logmean or median of the PSD band [mean]\n"
"      --noise-band LO,HI   PSD band, cycles per frame [0.25,0.5]\n"
"      --smin X             thresholded: smallest spike, units of the traces\n"
"                           [from --smin-z]\n"
"      --smin-z Z           thresholded: smallest spike as a matched-filter\n"
"                           z-score [3]\n"
"      --lambda X|auto      penalized (and auto): the L1 penalty [auto]\n"
"      --lambda-z Z         auto lambda = Z sn sqrt(sum of squared kernel) [2]\n"
"Baseline:\n"
"      --baseline B         mode (robust), mean (joint least squares), nonneg\n"
"                           (mean, b >= 0) or fixed [mode]\n"
"      --b X                the baseline with --baseline fixed [0]\n"
"      --max-iter N         baseline/lambda iterations [20]\n"
"Processing:\n"
"      --block N            neurons processed at once [about 64 MB]\n"
"      --deflate LEVEL      compression of the [N][T] outputs, 0-9 [0]\n"
"  -@, --threads N          threads [all cores]\n"
"      --config FILE        read options from section [deconv] of FILE\n"
"  -q, --quiet              no progress or warnings\n"
"  -v, --verbose            say what was written\n"
"  -h, --help               this help\n");
}

/* "LO,HI" with lo <= LO < HI <= hi.  cmd_parse_double_list has said
 * what is wrong when it fails, but a list of one number ("1", "1,") is a
 * list to it, and needs saying here. */
static int parse_pair(cmd_ctx *c, const char *opt, const char *s, double lo, double hi,
                      double out[2])
{
    int n = cmd_parse_double_list(c, opt, s, out, 2);
    if (n < 0) return -1;
    if (n != 2 || !(out[0] >= lo && out[0] < out[1] && out[1] <= hi)) {
        cmd_usage_error(c, "%s: need LO,HI with %g <= LO < HI <= %g", opt, lo, hi);
        return -1;
    }
    return 0;
}

int main_deconv(int argc, char **argv)
{
    cmd_ctx c;
    int rc = cmd_begin(&c, "deconv", argc, argv, longopts);
    if (rc) return rc;
    caimg_deconv_params p;
    caimg_deconv_params_init(&p, 0);
    caimg_deconv_io io;
    caimg_deconv_io_init(&io);
    double tau = 0, rise = 0, list[2];
    int rise_given = 0;
    const caimg_indicator *ind = NULL;
    long v;
    int opt;
    while ((opt = getopt_long(c.argc, c.argv, CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        int h = cmd_common_option(&c, opt, optarg);
        if (h < 0) { rc = EXIT_USAGE; goto done; }
        if (h > 0) continue;
        switch (opt) {
        case OPT_METHOD: {
            int m = caimg_deconv_method_from_name(optarg);
            if (m < 0) {
                rc = cmd_usage_error(&c, "--method: '%s' is not thresholded, constrained, "
                                     "penalized or auto", optarg);
                goto done;
            }
            p.method = (caimg_deconv_method)m;
            break;
        }
        case OPT_AR:
            if (cmd_parse_long(&c, "--ar", optarg, 1, 2, &v)) { rc = EXIT_USAGE; goto done; }
            p.p = (int)v;
            break;
        /* The signs of the time constants are checked here, with the
         * reason; whether a decay is too long for the frame rate (g
         * rounding to 1) only the library can tell, once it knows the
         * frame rate of the input. */
        case OPT_TAU:
            if (cmd_parse_double(&c, "--tau", optarg, -1e300, 1e300, &tau)) { rc = EXIT_USAGE; goto done; }
            if (!(tau > 0)) {
                rc = cmd_usage_error(&c, "--tau: a decay time of %g s is not a positive time: "
                                     "the calcium model would be unstable", tau);
                goto done;
            }
            break;
        case OPT_RISE:
            if (cmd_parse_double(&c, "--rise", optarg, -1e300, 1e300, &rise)) { rc = EXIT_USAGE; goto done; }
            if (!(rise >= 0)) {
                rc = cmd_usage_error(&c, "--rise: a rise time of %g s is not a non-negative time",
                                     rise);
                goto done;
            }
            rise_given = 1;
            break;
        case OPT_INDICATOR:
            ind = caimg_indicator_find(optarg);
            if (!ind) {
                size_t n;
                const caimg_indicator *all = caimg_indicators(&n);
                char names[256] = "";
                for (size_t i = 0; i < n; i++) {
                    strncat(names, all[i].name, sizeof names - strlen(names) - 1);
                    if (i + 1 < n) strncat(names, ", ", sizeof names - strlen(names) - 1);
                }
                rc = cmd_usage_error(&c, "--indicator: unknown indicator '%s' (known: %s)", optarg,
                                     names);
                goto done;
            }
            break;
        case OPT_NOREFINE: p.refine_g = 0; break;
        case OPT_LAGS:
            if (cmd_parse_long(&c, "--lags", optarg, 0, 12, &v)) { rc = EXIT_USAGE; goto done; }
            p.lags = (int)v;
            break;
        case OPT_FUDGE:
            if (cmd_parse_double(&c, "--fudge", optarg, 0.5, 1, &p.fudge)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_TAURANGE:
            if (parse_pair(&c, "--tau-range", optarg, 1e-4, 1e4, list)) { rc = EXIT_USAGE; goto done; }
            p.tau_min = list[0];
            p.tau_max = list[1];
            break;
        case OPT_FBTAU:
            if (cmd_parse_double(&c, "--fallback-tau", optarg, 1e-4, 1e4, &p.fallback_decay)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_FBRISE:
            if (cmd_parse_double(&c, "--fallback-rise", optarg, 0, 1e4, &p.fallback_rise)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_SN:
            if (cmd_parse_double(&c, "--sn", optarg, 1e-300, 1e300, &p.sn)) { rc = EXIT_USAGE; goto done; }
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
        case OPT_BAND:
            if (parse_pair(&c, "--noise-band", optarg, 0, 0.5, list)) { rc = EXIT_USAGE; goto done; }
            p.noise_band[0] = list[0];
            p.noise_band[1] = list[1];
            break;
        case OPT_LAMBDA:
            if (strcmp(optarg, "auto") == 0) p.lambda = CAIMG_DECONV_LAMBDA_AUTO;
            else if (cmd_parse_double(&c, "--lambda", optarg, 0, 1e300, &p.lambda)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_LAMBDAZ:
            if (cmd_parse_double(&c, "--lambda-z", optarg, 0, 100, &p.lambda_z)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_SMIN:
            if (cmd_parse_double(&c, "--smin", optarg, 0, 1e300, &p.smin)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_SMINZ:
            if (cmd_parse_double(&c, "--smin-z", optarg, 0, 100, &p.smin_z)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_BASELINE: {
            int b = caimg_deconv_baseline_from_name(optarg);
            if (b < 0) {
                rc = cmd_usage_error(&c, "--baseline: '%s' is not mode, mean, nonneg or fixed", optarg);
                goto done;
            }
            p.baseline = (caimg_deconv_baseline)b;
            break;
        }
        case OPT_B:
            if (cmd_parse_double(&c, "--b", optarg, -1e300, 1e300, &p.b)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_MAXITER:
            if (cmd_parse_long(&c, "--max-iter", optarg, 1, 10000, &v)) { rc = EXIT_USAGE; goto done; }
            p.max_iter = (int)v;
            break;
        case OPT_DATASET: io.dataset = optarg; break;
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
    if (tau != 0 && ind) { rc = cmd_usage_error(&c, "give --tau or --indicator, not both"); goto done; }
    /* The preset's rise goes with its decay; a rise of one's own goes with
     * a decay of one's own (--tau), rather than being dropped silently. */
    if (rise_given && ind) {
        rc = cmd_usage_error(&c, "--rise needs --tau, not --indicator (the preset sets the rise)");
        goto done;
    }
    if (ind) {
        p.tau_decay = ind->tau_decay;
        p.tau_rise = p.p == 2 ? ind->tau_rise : 0;
    } else if (tau != 0) {
        p.tau_decay = tau;
        p.tau_rise = rise;   /* the library refuses negative times */
    } else if (rise_given) {
        rc = cmd_usage_error(&c, "--rise needs --tau");
        goto done;
    }
    if (rise_given && p.p == 1) {
        rc = cmd_usage_error(&c, "--rise needs --ar 2 (AR(1) has an instantaneous rise)");
        goto done;
    }
    p.fs = c.fs;
    p.threads = c.threads;
    rc = caimg_deconv_run(c.argv[optind], c.output, &p, &io, c.cmdline);
    if (rc == CAIMG_EINVAL) {
        /* A parameter the library refused once it knew the input (a decay
         * too long for its frame rate): a usage error like those above,
         * with the hint.  The plan prefixes its messages with "deconv: "
         * for other callers; after "caimg deconv: " that says it twice. */
        const char *msg = caimg_errmsg();
        if (strncmp(msg, "deconv: ", 8) == 0) msg += 8;
        rc = cmd_usage_error(&c, "%s", msg);
        goto done;
    }
    if (rc) { rc = cmd_fail(&c, rc); goto done; }
    if (c.verbose) cmd_note(&c, "%s: spikes written", c.output);
done:
    cmd_end(&c);
    return rc;
}
