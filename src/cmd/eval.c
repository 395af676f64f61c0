/* eval.c -- caimg eval: score stage outputs against simulated ground truth.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caimg/caimg.h"
#include "caimg/eval.h"
#include "caimg/tsv.h"
#include "cmd.h"

enum {
    OPT_TRUTH = OPT_FIRST_PRIVATE, OPT_TSV, OPT_IOU, OPT_BIN, OPT_MINSPK, OPT_ALLROIS,
    OPT_NPR, OPT_KEEPOFF, OPT_PERNEURON
};

static const struct option longopts[] = {
    CMD_COMMON_LONGOPTS,
    {"truth",       required_argument, NULL, OPT_TRUTH},
    {"tsv",         no_argument,       NULL, OPT_TSV},
    {"iou",         required_argument, NULL, OPT_IOU},
    {"bin",         required_argument, NULL, OPT_BIN},
    {"min-spikes",  required_argument, NULL, OPT_MINSPK},
    {"all-rois",    no_argument,       NULL, OPT_ALLROIS},
    {"neuropil-r",  required_argument, NULL, OPT_NPR},
    {"keep-offset", no_argument,       NULL, OPT_KEEPOFF},
    {"per-neuron",  required_argument, NULL, OPT_PERNEURON},
    {NULL, 0, NULL, 0}
};

static void usage(FILE *fp)
{
    fprintf(fp,
"Usage: caimg eval --truth TRUTH.h5 [options] STAGE.h5...\n"
"\n"
"Score stage outputs (mc, roi, dff, deconv, predict; links followed) against\n"
"the ground truth written by 'caimg simulate --truth', and print a table.\n"
"\n"
"Options:\n"
"      --truth FILE        the truth file (required)\n"
"      --tsv               print tab-separated section, metric, value\n"
"  -o, --output FILE       write the table to FILE instead of standard output\n"
"      --per-neuron FILE   per-neuron TSV: ROI, IoU, trace, spike and model correlation\n"
"      --iou X             IoU a detected ROI needs to match a neuron [0.5]\n"
"      --bin S             bin width for the spike correlation, seconds [0.04]\n"
"      --min-spikes N      neurons with fewer true spikes do not count for recall [0]\n"
"      --all-rois          score ROIs flagged iscell = 0 too\n"
"      --neuropil-r R      traces are F - R * Fneu when there is no dF/F [0.7]\n"
"      --keep-offset       do not remove the template offset from shift errors\n"
"  -q, --quiet             no warnings\n"
"  -v, --verbose           accepted; eval prints nothing more\n"
"      --config FILE       read options from section [eval] of FILE\n"
"  -h, --help              this help\n");
}

static void fmt_value(char *buf, size_t n, double v)
{
    if (isnan(v)) snprintf(buf, n, "nan");
    else if (v == floor(v) && fabs(v) < 1e9) snprintf(buf, n, "%.0f", v);
    else snprintf(buf, n, "%.4f", v);
}

int main_eval(int argc, char **argv)
{
    cmd_ctx c;
    int rc = cmd_begin(&c, "eval", argc, argv, longopts);
    if (rc) return rc;
    caimg_eval_opts o;
    caimg_eval_opts_init(&o);
    const char *truth = NULL, *pern = NULL;
    int tsv = 0;
    caimg_eval_report *r = NULL;
    caimg_outfile *out = NULL, *pn = NULL;
    long v;
    int opt;
    while ((opt = getopt_long(c.argc, c.argv, CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        int h = cmd_common_option(&c, opt, optarg);
        if (h < 0) { rc = EXIT_USAGE; goto done; }
        if (h > 0) continue;
        switch (opt) {
        case OPT_TRUTH: truth = optarg; break;
        case OPT_TSV: tsv = 1; break;
        case OPT_IOU:
            if (cmd_parse_double(&c, "--iou", optarg, 0, 0.999, &o.iou)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_BIN:
            if (cmd_parse_double(&c, "--bin", optarg, 1e-4, 1e4, &o.bin)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_MINSPK:
            if (cmd_parse_long(&c, "--min-spikes", optarg, 0, 1000000000, &v)) { rc = EXIT_USAGE; goto done; }
            o.min_spikes = (double)v;
            break;
        case OPT_ALLROIS: o.all_rois = 1; break;
        case OPT_NPR:
            if (cmd_parse_double(&c, "--neuropil-r", optarg, 0, 10, &o.neuropil_r)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_KEEPOFF: o.keep_offset = 1; break;
        case OPT_PERNEURON: pern = optarg; break;
        default: rc = cmd_bad_option(&c); goto done;
        }
    }
    if (c.want_help) { usage(stdout); rc = 0; goto done; }
    if (!truth) { rc = cmd_usage_error(&c, "no truth file (use --truth FILE)"); goto done; }
    if (optind >= c.argc) { rc = cmd_usage_error(&c, "no stage output to evaluate"); goto done; }
    if ((rc = cmd_check_output(&c, c.output)) || (rc = cmd_check_output(&c, pern))) goto done;
    for (int k = 0; k < 2; k++) {
        const char *out = k ? pern : c.output;
        if ((rc = cmd_check_inputs(&c, out, (const char *const *)&truth, 1))
            || (rc = cmd_check_inputs(&c, out, (const char *const *)c.argv + optind,
                                      (size_t)(c.argc - optind))))
            goto done;
    }
    rc = caimg_eval_files(truth, (const char *const *)c.argv + optind, (size_t)(c.argc - optind), &o, &r);
    if (rc) { rc = cmd_fail(&c, rc); goto done; }

    out = caimg_outfile_open(c.output ? c.output : "-");
    if (!out) { rc = cmd_fail(&c, CAIMG_EIO); goto done; }
    FILE *fp = caimg_outfile_fp(out);
    if (tsv) fprintf(fp, "section\tmetric\tvalue\n");
    else fprintf(fp, "%-8s %-20s %12s\n", "section", "metric", "value");
    for (size_t i = 0; i < r->nrows; i++) {
        char val[32];
        fmt_value(val, sizeof val, r->rows[i].value);
        if (tsv) fprintf(fp, "%s\t%s\t%s\n", r->rows[i].section, r->rows[i].metric, val);
        else fprintf(fp, "%-8s %-20s %12s\n", r->rows[i].section, r->rows[i].metric, val);
    }
    if (pern) {
        pn = caimg_outfile_open(pern);
        if (!pn) { rc = cmd_fail(&c, CAIMG_EIO); goto done; }
        FILE *q = caimg_outfile_fp(pn);
        fprintf(q, "neuron\tcounted\troi\tiou\ttrace_corr\tspike_corr\tmodel_corr\tsignal_corr\n");
        for (size_t i = 0; i < r->ntrue; i++) {
            char a[32], b[32], d[32], e[32], g[32];
            fmt_value(a, sizeof a, r->iou[i]);
            fmt_value(b, sizeof b, r->trace_corr[i]);
            fmt_value(d, sizeof d, r->spike_corr[i]);
            fmt_value(e, sizeof e, r->model_corr[i]);
            fmt_value(g, sizeof g, r->signal_corr[i]);
            fprintf(q, "%zu\t%d\t%ld\t%s\t%s\t%s\t%s\t%s\n", i, r->counted[i], r->roi[i], a, b, d, e, g);
        }
        rc = caimg_outfile_commit(pn);
        pn = NULL;
        if (rc) { rc = cmd_fail(&c, rc); goto done; }
    }
    rc = caimg_outfile_commit(out);
    out = NULL;
    if (rc) {
        if (pern) remove(pern);
        rc = cmd_fail(&c, rc);
    }
done:
    caimg_outfile_abort(out);
    caimg_outfile_abort(pn);
    caimg_eval_report_free(r);
    cmd_end(&c);
    return rc;
}
