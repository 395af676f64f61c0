/* report.c -- caimg report: one self-contained HTML page of the results.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>

#include "caimg/caimg.h"
#include "caimg/report.h"
#include "cmd.h"

enum { OPT_TITLE = OPT_FIRST_PRIVATE, OPT_CELLS };

static const struct option longopts[] = {
    CMD_COMMON_LONGOPTS,
    {"title", required_argument, NULL, OPT_TITLE},
    {"cells", required_argument, NULL, OPT_CELLS},
    {NULL, 0, NULL, 0}
};

static void usage(FILE *fp)
{
    fprintf(fp,
"Usage: caimg report [options] RESULT.h5... -o REPORT.html\n"
"\n"
"Write one self-contained HTML page (inline SVG and PNG, no network needed)\n"
"showing the results that the input files hold or link to: mean and\n"
"correlation images with ROI outlines, motion shifts, example traces, ROI\n"
"statistics and the provenance of every step.\n"
"\n"
"Options:\n"
"  -o, --output FILE     the HTML file to write (required)\n"
"      --title TEXT      page title [the first input's name]\n"
"      --cells N         example cells whose traces are shown [6]\n"
"  -q, --quiet           no warnings\n"
"  -h, --help            this help\n");
}

int main_report(int argc, char **argv)
{
    cmd_ctx c;
    int rc = cmd_begin(&c, "report", argc, argv, longopts);
    if (rc) return rc;
    caimg_report_opts o;
    caimg_report_opts_init(&o);
    int opt;
    long v;
    while ((opt = getopt_long(c.argc, c.argv, CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        int h = cmd_common_option(&c, opt, optarg);
        if (h < 0) { rc = EXIT_USAGE; goto done; }
        if (h > 0) continue;
        switch (opt) {
        case OPT_TITLE: o.title = optarg; break;
        case OPT_CELLS:
            if (cmd_parse_long(&c, "--cells", optarg, 0, 64, &v)) { rc = EXIT_USAGE; goto done; }
            o.ncells = (int)v;
            break;
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
    rc = caimg_report_write((const char *const *)c.argv + optind, (size_t)(c.argc - optind),
                            c.output, &o);
    if (rc) rc = cmd_fail(&c, rc);
    else if (c.verbose) cmd_note(&c, "wrote %s", c.output);
done:
    cmd_end(&c);
    return rc;
}
