/* roi.c -- caimg roi: summary images, cell detection, neuropil masks and
 * fluorescence traces from a (motion-corrected) movie.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "caimg/caimg.h"
#include "caimg/roi.h"
#include "cmd.h"

enum {
    OPT_METHOD = OPT_FIRST_PRIVATE, OPT_DIAMETER, OPT_THRESHOLD, OPT_MAX_ROIS, OPT_TAU,
    OPT_MAX_BINS, OPT_HIGHPASS, OPT_NP_GAP, OPT_NP_MIN, OPT_NP_COEFF, OPT_CELL_THRESHOLD,
    OPT_MASKS, OPT_ANATOMY
};

static const struct option longopts[] = {
    CMD_COMMON_LONGOPTS,
    {"method",         required_argument, NULL, OPT_METHOD},
    {"diameter",       required_argument, NULL, OPT_DIAMETER},
    {"threshold",      required_argument, NULL, OPT_THRESHOLD},
    {"max-rois",       required_argument, NULL, OPT_MAX_ROIS},
    {"tau",            required_argument, NULL, OPT_TAU},
    {"max-bins",       required_argument, NULL, OPT_MAX_BINS},
    {"highpass",       required_argument, NULL, OPT_HIGHPASS},
    {"np-gap",         required_argument, NULL, OPT_NP_GAP},
    {"np-min-pixels",  required_argument, NULL, OPT_NP_MIN},
    {"np-coeff",       required_argument, NULL, OPT_NP_COEFF},
    {"cell-threshold", required_argument, NULL, OPT_CELL_THRESHOLD},
    {"masks",          required_argument, NULL, OPT_MASKS},
    {"anatomy-threshold", required_argument, NULL, OPT_ANATOMY},
    {NULL, 0, NULL, 0}
};

static void usage(FILE *fp)
{
    caimg_roi_params d;
    caimg_roi_params_init(&d);
    fprintf(fp,
"Usage: caimg roi [options] MOVIE.h5 -o ROI.h5\n"
"\n"
"Find cells in a motion-corrected movie (the output of caimg mc, or any\n"
"caimg movie or TIFF stack) and extract their fluorescence F and the\n"
"neuropil around them Fneu.  Writes masks, a label image, neuropil masks,\n"
"per-ROI statistics, a cell probability, the traces and summary images\n"
"under /roi (see caimg-h5(5)).\n"
"\n"
"Options:\n"
"  -o, --output FILE        output caimg HDF5 file (required)\n"
"      --method NAME        activity, activity-classic or seeded\n"
"                           [activity; seeded with --masks]:\n");
    for (const caimg_roi_type *const *t = caimg_roi_types(); *t; t++)
        fprintf(fp, "                             %s: %s\n", (*t)->name, (*t)->description);
    fprintf(fp,
"      --masks FILE         user masks for seeded: label TIFF, ImageJ .roi or\n"
"                           RoiSet .zip\n"
"      --diameter PX        expected soma diameter in pixels, or auto: measured\n"
"                           in the mean image [auto]\n"
"      --threshold Z        threshold for cells found from their activity, in\n"
"                           noise units [%g]\n"
"      --anatomy-threshold Z  threshold for somata seen in the mean image, in\n"
"                           noise units; 0 = activity only [%g]\n"
"      --max-rois N         stop after N ROIs, 0 = no limit [0]\n"
"      --tau S              indicator decay time in seconds; bins are tau*fs\n"
"                           frames [%g]\n"
"      --fs HZ              frame rate [from the movie]\n"
"      --max-bins N         most time bins kept in memory [as many as fit in\n"
"                           512 MB, at least 100]\n"
"      --highpass S         temporal high-pass window in seconds [%g]\n"
"      --np-gap PX          gap between a cell and its neuropil annulus [%g]\n"
"      --np-min-pixels N    pixels in each neuropil annulus [%zu]\n"
"      --np-coeff R         neuropil factor for the trace statistics [%g]\n"
"      --cell-threshold P   cell probability for iscell = 1 [%g]\n"
"  -@, --threads N          threads [all cores]\n"
"      --config FILE        read options from section [roi] of FILE\n"
"  -q, --quiet              no progress or warnings\n"
"  -v, --verbose            report what was found\n"
"  -h, --help               this help\n",
            d.threshold, d.anatomy, d.tau, d.highpass, d.np_gap, d.np_min_pixels,
            d.np_coeff, d.cell_threshold);
}

int main_roi(int argc, char **argv)
{
    cmd_ctx c;
    int rc = cmd_begin(&c, "roi", argc, argv, longopts);
    if (rc) return rc;
    caimg_roi_params p;
    caimg_roi_params_init(&p);
    p.diameter = 0;         /* auto: the library's default is a fixed 12 */
    const char *method = NULL;
    long v;
    int opt;
    while ((opt = getopt_long(c.argc, c.argv, CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        int h = cmd_common_option(&c, opt, optarg);
        if (h < 0) { rc = EXIT_USAGE; goto done; }
        if (h > 0) continue;
        switch (opt) {
        case OPT_METHOD: method = optarg; break;
        case OPT_MASKS: p.masks = optarg; break;
        case OPT_DIAMETER:
            if (!strcmp(optarg, "auto")) p.diameter = 0;
            else if (cmd_parse_double(&c, "--diameter", optarg, 2, 500, &p.diameter)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_THRESHOLD:
            if (cmd_parse_double(&c, "--threshold", optarg, 0, 1000, &p.threshold)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_MAX_ROIS:
            if (cmd_parse_long(&c, "--max-rois", optarg, 0, 10000000, &v)) { rc = EXIT_USAGE; goto done; }
            p.max_rois = (size_t)v;
            break;
        case OPT_TAU:
            if (cmd_parse_double(&c, "--tau", optarg, 0, 100, &p.tau)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_MAX_BINS:
            if (cmd_parse_long(&c, "--max-bins", optarg, 10, 1000000, &v)) { rc = EXIT_USAGE; goto done; }
            p.max_bins = (size_t)v;
            break;
        case OPT_HIGHPASS:
            if (cmd_parse_double(&c, "--highpass", optarg, 0.1, 1e5, &p.highpass)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_ANATOMY:
            if (cmd_parse_double(&c, "--anatomy-threshold", optarg, 0, 1000, &p.anatomy)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_NP_GAP:
            if (cmd_parse_double(&c, "--np-gap", optarg, 0, 100, &p.np_gap)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_NP_MIN:
            if (cmd_parse_long(&c, "--np-min-pixels", optarg, 1, 1000000, &v)) { rc = EXIT_USAGE; goto done; }
            p.np_min_pixels = (size_t)v;
            break;
        case OPT_NP_COEFF:
            if (cmd_parse_double(&c, "--np-coeff", optarg, 0, 2, &p.np_coeff)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_CELL_THRESHOLD:
            if (cmd_parse_double(&c, "--cell-threshold", optarg, 0, 1, &p.cell_threshold)) { rc = EXIT_USAGE; goto done; }
            break;
        default: rc = cmd_bad_option(&c); goto done;
        }
    }
    if (c.want_help) { usage(stdout); rc = 0; goto done; }
    if (optind >= c.argc) { rc = cmd_usage_error(&c, "no input file"); goto done; }
    if (optind + 1 < c.argc) { rc = cmd_usage_error(&c, "one input movie at a time"); goto done; }
    if (!c.output) { rc = cmd_usage_error(&c, "no output file (use -o FILE)"); goto done; }
    if ((rc = cmd_check_output(&c, c.output))
        || (rc = cmd_check_inputs(&c, c.output, (const char *const *)c.argv + optind,
                                  (size_t)(c.argc - optind))))
        goto done;
    if (!method) method = p.masks ? "seeded" : "activity";
    const caimg_roi_type *type = caimg_roi_type_find(method);
    if (!type) { rc = cmd_usage_error(&c, "--method: '%s' is not activity, activity-classic or seeded",
                                      method); goto done; }
    if (type == caimg_roi_seeded && !p.masks) {
        rc = cmd_usage_error(&c, "--method seeded needs --masks FILE");
        goto done;
    }
    if (type != caimg_roi_seeded && p.masks) {
        rc = cmd_usage_error(&c, "--masks is only used by --method seeded");
        goto done;
    }

    const char *in = c.argv[optind];
    caimg_movie *m = caimg_movie_open1(in);
    caimg_h5 *out = NULL;
    caimg_roi_summary *sum = NULL;
    caimg_roi_binned *bin = NULL;
    caimg_roiset *set = NULL;
    if (!m) { rc = cmd_fail(&c, CAIMG_EFORMAT); goto done; }
    size_t T = caimg_movie_frames(m), Y = caimg_movie_height(m), X = caimg_movie_width(m);
    int has_mc = 0;
    rc = caimg_roi_valid_box(in, Y, X, p.valid, &has_mc);
    p.fs = c.fs > 0 ? c.fs : caimg_movie_fs(m);
    /* User masks are checked before the long pass over the movie.  With
     * --diameter auto their own size is the diameter (the classifier's
     * sense of size and nothing else here): the median of their
     * equivalent diameters. */
    int auto_d = p.diameter == 0;
    if (!rc && type == caimg_roi_seeded) {
        rc = caimg_roi_masks_read(p.masks, Y, X, &set);
        if (!rc && auto_d && set->n) p.diameter = caimg_roiset_diameter(set);
        caimg_roiset_free(set);
        set = NULL;
    }
    if (!rc && !has_mc)
        caimg_warn("%s: movie is not motion corrected (no /mc group); run caimg mc first "
                   "unless the recording is known to be still", in);
    if (!rc) {
        out = caimg_h5_create(c.output, "roi", c.cmdline);
        if (!out) rc = CAIMG_EIO;
    }
    if (!rc) rc = caimg_h5_add_input(out, in, 1);
    if (!rc && p.masks) rc = caimg_h5_add_input(out, p.masks, 0);
    if (!rc) {
        size_t b, nb;
        caimg_roi_binning(&p, p.fs, T, p.valid[1] - p.valid[0], p.valid[3] - p.valid[2], &b, &nb);
        caimg_h5_param(out, "method", "%s", type->name);
        if (p.masks) caimg_h5_param(out, "masks", "%s", p.masks);
        if (!auto_d) caimg_h5_param_double(out, "diameter", p.diameter);
        else caimg_h5_param(out, "diameter", "auto");
        if (auto_d && p.diameter > 0)
            caimg_h5_param_derived(out, "diameter-used", "%g (the median of the masks)",
                                   p.diameter);
        caimg_h5_param_double(out, "threshold", p.threshold);
        caimg_h5_param(out, "max-rois", "%zu", p.max_rois);
        caimg_h5_param_double(out, "tau", p.tau);
        /* Only option values the parser takes, so the record replays
         * through --config; automatic choices and what was derived from
         * the data are comments. */
        if (p.fs > 0) caimg_h5_param_double(out, "fs", p.fs);
        else caimg_h5_param_derived(out, "fs", "0 (unknown)");
        if (p.max_bins > 0) caimg_h5_param(out, "max-bins", "%zu", p.max_bins);
        else caimg_h5_param_derived(out, "max-bins", "0 (as many as fit in memory)");
        caimg_h5_param_double(out, "highpass", p.highpass);
        caimg_h5_param_double(out, "anatomy-threshold", p.anatomy);
        caimg_h5_param_double(out, "np-gap", p.np_gap);
        caimg_h5_param(out, "np-min-pixels", "%zu", p.np_min_pixels);
        caimg_h5_param_double(out, "np-coeff", p.np_coeff);
        caimg_h5_param_double(out, "cell-threshold", p.cell_threshold);
        caimg_h5_param_derived(out, "valid", "%zu,%zu,%zu,%zu", p.valid[0], p.valid[1],
                               p.valid[2], p.valid[3]);
        caimg_h5_param_derived(out, "bin-frames", "%zu", b);
        caimg_h5_param_derived(out, "bins", "%zu", nb);
    }
    double t0 = cmd_seconds(), t1 = t0, t2 = t0, t3 = t0;
    if (!rc) rc = caimg_roi_summarize(m, &p, type->wants_binned, &sum, &bin);
    t1 = cmd_seconds();
    if (!rc && p.diameter == 0) {
        /* --diameter auto: from here on as if the measured one was given. */
        p.diameter = sum->diameter;
        if (sum->measured) {
            caimg_h5_param_derived(out, "diameter-used", "%g (measured in the mean image)",
                                   p.diameter);
            if (c.verbose) cmd_note(&c, "soma diameter measured in the mean image: %g pixels",
                                    p.diameter);
        } else {
            caimg_h5_param_derived(out, "diameter-used", "%g (not measurable in the mean "
                                   "image)", p.diameter);
            caimg_warn("%s: the mean image shows no soma size to measure (too few somata, "
                       "or only texture); %g pixels is used (set --diameter)", in, p.diameter);
        }
    }
    if (!rc) rc = caimg_roi_detect(type, &p, sum, bin, &set);
    caimg_roi_binned_free(bin);
    bin = NULL;
    if (!rc && isfinite(set->soma_diameter)) {
        /* What the data say about --diameter: a diameter far from it
         * makes the activity search and the neuropil masks the wrong size. */
        caimg_h5_param_derived(out, "soma-diameter", "%.1f (measured in the mean image)",
                               set->soma_diameter);
        if (c.verbose)
            cmd_note(&c, "somata in the mean image measure %.1f pixels across (diameter used %g)",
                     set->soma_diameter, p.diameter);
    }
    if (!rc) rc = caimg_roiset_finish(set, &p);
    if (!rc && type == caimg_roi_seeded) {
        /* Overlapping user masks are allowed; say what the rule did. */
        size_t shared = 0, M = (size_t)set->pix_start[set->n];
        for (size_t k = 0; k < M; k++) shared += set->pix_overlap[k];
        if (shared)
            caimg_warn("%s: %zu mask pixels are in more than one ROI; they are kept in the "
                       "masks (flagged in /roi/pix_overlap) and left out of every trace",
                       p.masks, shared);
    }
    t2 = cmd_seconds();
    if (!rc) rc = caimg_roi_traces(m, set, out, &p);
    t3 = cmd_seconds();
    if (!rc && c.verbose)
        cmd_note(&c, "times: summary pass %.1f s, detection %.1f s, traces %.1f s", t1 - t0,
                 t2 - t1, t3 - t2);
    if (!rc) rc = caimg_roi_write(out, set, sum, type->name, p.fs, p.diameter);
    if (!rc) {
        /* Cells, and ROIs probable enough that were not kept as cells
         * because they lie inside a larger cell (caimg-roi(1)). */
        size_t ncell = 0, ninside = 0;
        for (size_t i = 0; i < set->n; i++) {
            ncell += set->iscell[i];
            ninside += !set->iscell[i] &&
                       set->stats[i * CAIMG_ROI_NSTATS + CAIMG_ROI_PROB] >= p.cell_threshold;
        }
        if (c.verbose)
            cmd_note(&c, "%s: %zu ROIs, %zu classified as cells (probability >= %g; %zu more "
                     "%s inside a larger cell)", c.output, set->n, ncell, p.cell_threshold,
                     ninside, ninside == 1 ? "lies" : "lie");
        rc = caimg_h5_commit(out);
        out = NULL;
    }
    caimg_h5_close(out);
    caimg_roi_summary_free(sum);
    caimg_roiset_free(set);
    caimg_movie_close(m);
    if (rc) rc = cmd_fail(&c, rc);
done:
    cmd_end(&c);
    return rc;
}
