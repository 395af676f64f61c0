/* main.c -- the caimg program: one table of subcommands.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include <hdf5.h>

#include "caimg/caimg.h"
#include "cmd.h"

typedef struct {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *group;      /* heading under which `caimg --help` lists it */
    const char *summary;
} command;

/* The one table: dispatch, `caimg --help` and `caimg help CMD` all read it.
 * Entries are grouped by their heading, in pipeline order. */
static const command commands[] = {
    {"import",  main_import,  "Data",  "convert TIFF stacks to a caimg HDF5 movie"},
    {"info",    main_info,    "Data",  "summarise a caimg HDF5 or TIFF file"},
    {"export",  main_export,  "Data",  "write movies to TIFF and traces to TSV"},
    {"mc",      main_mc,      "Processing", "motion correction: rigid, piecewise-rigid, bidirectional scan"},
    {"roi",     main_roi,     "Processing", "find cells, neuropil masks and traces F, Fneu"},
    {"dff",     main_dff,     "Traces", "neuropil subtraction, baselines, dF/F and noise levels"},
    {"deconv",  main_deconv,  "Traces", "OASIS spike inference with estimated kinetics"},
    {"report",  main_report,  "Reporting", "one self-contained HTML page of the results"},
    {"simulate", main_simulate, "Ground truth", "synthetic recording with the truth of every stage"},
    {"eval",     main_eval,     "Ground truth", "score any stage's output against the truth"},
    {"fit",     main_fit,     "Models", "train a noisy network predicting responses to images"},
    {"predict", main_predict, "Models", "predict responses to images with a fitted model"},
    {"attack",  main_attack,  "Models", "adversarial attacks on a fitted model: robustness curves"},
    {"robustness", main_robustness, "Models", "noise-placement experiment: retrain, match, attack"},
    {NULL, NULL, NULL, NULL}
};

static const command *find(const char *name)
{
    for (const command *c = commands; c->name; c++)
        if (strcmp(c->name, name) == 0) return c;
    return NULL;
}

static void usage(FILE *fp)
{
    fprintf(fp,
            "caimg %s -- calcium-imaging toolkit: TIFF stacks to neuronal activity,\n"
            "response models and their adversarial robustness\n\n"
            "Usage: caimg COMMAND [options] INPUT... -o OUTPUT\n"
            "       caimg help COMMAND | caimg COMMAND -h\n"
            "       caimg --version\n",
            caimg_version());
    const char *group = NULL;
    for (const command *c = commands; c->name; c++) {
        if (!group || strcmp(group, c->group) != 0) {
            group = c->group;
            fprintf(fp, "\n%s:\n", group);
        }
        fprintf(fp, "  %-12s %s\n", c->name, c->summary);
    }
    fprintf(fp, "\nShared options: -o FILE, -@/--threads N, --fs HZ, --seed N, -q, -v,\n"
                "--config FILE.  See caimg(1) and caimg-COMMAND(1).\n");
}

int main(int argc, char **argv)
{
    /* HDF5 1.10 frees a file's state when closing it fails (a full disk
     * makes the final flush fail) but keeps its id, and the clean-up it
     * registers with atexit() then closes that id again and crashes.  Every
     * file caimg writes is closed (or abandoned, and its temporary removed)
     * before the command returns, so nothing is lost by skipping HDF5's
     * clean-up at exit; it must be declined before HDF5 initialises. */
    H5dont_atexit();
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *a = argv[1];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(a, "--version") || !strcmp(a, "version")) {
        printf("caimg %s\n%s", caimg_version(), caimg_build_info());
        return 0;
    }
    if (!strcmp(a, "help")) {
        if (argc < 3) {
            usage(stdout);
            return 0;
        }
        const command *c = find(argv[2]);
        if (!c) {
            fprintf(stderr, "caimg: no such command '%s'; see 'caimg --help'\n", argv[2]);
            return EXIT_USAGE;
        }
        char *hv[] = {(char *)c->name, "-h", NULL};
        return c->main(2, hv);
    }
    const command *c = find(a);
    if (!c) {
        fprintf(stderr, "caimg: no such command '%s'; see 'caimg --help'\n", a);
        return EXIT_USAGE;
    }
    return c->main(argc - 1, argv + 1);
}
