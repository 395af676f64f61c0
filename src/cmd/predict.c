/* predict.c -- caimg predict: responses of a fitted model to images.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "caimg/caimg.h"
#include "caimg/h5io.h"
#include "caimg/tsv.h"
#include "annutil.h"
#include "cmd.h"

enum { OPT_SAMPLES = OPT_FIRST_PRIVATE, OPT_FORMAT };

static const struct option longopts[] = {
    CMD_COMMON_LONGOPTS,
    {"samples", required_argument, NULL, OPT_SAMPLES},
    {"format",  required_argument, NULL, OPT_FORMAT},
    {NULL, 0, NULL, 0}
};

static void usage(FILE *fp)
{
    fprintf(fp,
"Usage: caimg predict [options] MODEL.h5 IMAGES.tif -o OUT.h5|OUT.tsv\n"
"\n"
"Predict every neuron's response to each page of IMAGES.tif with a model\n"
"written by caimg fit.  Images must have the size of the stimuli the model\n"
"was fitted on; the model's crop, resize and normalisation are applied.\n"
"\n"
"Options:\n"
"  -o, --output FILE     HDF5 (/predict/responses) or TSV (one row per image);\n"
"                        '-' is standard output (TSV)\n"
"      --format F        h5 or tsv [from the output's extension: .tsv/.txt/- is TSV]\n"
"      --samples K       average K draws of the model's noise [0: noise off]\n"
"      --seed N          first noise draw; draws are numbered N, N+1, ... [0]\n"
"  -@, --threads N       threads [all cores]\n"
"      --config FILE     read options from section [predict] of FILE\n"
"  -q, --quiet           no progress or warnings\n"
"  -v, --verbose         report more of what was done\n"
"  -h, --help            this help\n");
}

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcasecmp(s + n - k, suf);
}

/* Predictions are written one column per neuron of the data the model
 * was fitted to (NaN for neurons the fit excluded), so that columns line up
 * with ROIs and traces; /fit/neuron_index maps model outputs to them. */
static int run(cmd_ctx *c, const char *model_path, const char *images_path, long samples, int tsv)
{
    caimg_h5 *f = caimg_h5_open(model_path);
    if (!f) return CAIMG_EFORMAT;
    caimg_ann *m = caimg_ann_load(f, "/model");
    char *names = NULL;
    int32_t *nidx = NULL;
    long nin = 0;
    size_t dims[CAIMG_H5_MAXRANK];
    int rank, st = m ? 0 : CAIMG_EFORMAT;
    if (!st && caimg_h5_exists(f, "/fit/neuron_index")) {
        st = caimg_h5_read(f, "/fit/neuron_index", CAIMG_DT_I32, 1, &rank, dims, (void **)&nidx);
        if (!st && caimg_h5_get_attr_long(f, "/fit", "neurons_in", &nin))
            st = caimg_error(CAIMG_EFORMAT, "%s: /fit lacks the neurons_in attribute", model_path);
        if (!st && dims[0] != caimg_ann_output_size(m))
            st = caimg_error(CAIMG_EFORMAT, "%s: /fit/neuron_index has %zu entries, the model %zu "
                             "neurons", model_path, dims[0], caimg_ann_output_size(m));
        for (size_t k = 0; !st && k < dims[0]; k++)
            if (nidx[k] < 0 || nidx[k] >= nin)
                st = caimg_error(CAIMG_EFORMAT, "%s: /fit/neuron_index[%zu] = %d is out of range",
                                 model_path, k, (int)nidx[k]);
    }
    if (!st && caimg_h5_exists(f, "/fit") && caimg_h5_get_attr_string(f, "/fit", "neuron_names", &names))
        names = NULL;
    caimg_h5_close(f);
    const size_t N = m ? caimg_ann_output_size(m) : 0;
    const size_t NW = nidx ? (size_t)nin : N;        /* columns written */
    float *img = NULL, *x = NULL, *pred = NULL, *wide = NULL;
    size_t n = 0, h, w;
    if (!st) st = ann_read_images(images_path, NULL, 0, &img, &n, &h, &w);
    const caimg_ann_prep *p = m ? caimg_ann_get_prep(m) : NULL;
    if (!st && (h != p->src_h || w != p->src_w))
        st = caimg_error(CAIMG_EFORMAT, "%s: images are %zux%zu, but the model was fitted on %zux%zu "
                         "images", images_path, h, w, p->src_h, p->src_w);
    if (!st) {
        x = malloc(n * caimg_ann_input_size(m) * sizeof *x);
        pred = malloc(n * N * sizeof *pred);
        wide = malloc(n * NW * sizeof *wide);
        if (!x || !pred || !wide) st = caimg_error(CAIMG_ENOMEM, "out of memory");
    }
    if (!st) st = caimg_ann_preprocess(m, img, n, x);
    uint64_t s0 = c->seed_given ? c->seed : 0;
    if (!st) st = caimg_ann_predict(m, x, n, (size_t)samples, s0, pred);
    if (!st) {
        for (size_t i = 0; i < n * NW; i++) wide[i] = NAN;
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < N; k++)
                wide[i * NW + (nidx ? (size_t)nidx[k] : k)] = pred[i * N + k];
    }
    if (!st && tsv) {
        caimg_outfile *of = caimg_outfile_open(c->output);
        if (!of) st = CAIMG_EIO;
        else {
            FILE *fp = caimg_outfile_fp(of);
            /* Column names: the neurons' names from the response matrix,
             * else their indices ("n17"). */
            fprintf(fp, "image");
            char *save = NULL, *tok = names ? strtok_r(names, "\t", &save) : NULL;
            for (size_t k = 0; k < NW; k++) {
                if (tok) {
                    fprintf(fp, "\t%s", tok);
                    tok = strtok_r(NULL, "\t", &save);
                } else {
                    fprintf(fp, "\tn%zu", k);
                }
            }
            fputc('\n', fp);
            for (size_t i = 0; i < n; i++) {
                fprintf(fp, "%zu", i);
                for (size_t k = 0; k < NW; k++) fprintf(fp, "\t%.7g", wide[i * NW + k]);
                fputc('\n', fp);
            }
            st = caimg_outfile_commit(of);
        }
    } else if (!st) {
        caimg_h5 *out = caimg_h5_create(c->output, "predict", c->cmdline);
        if (!out) st = CAIMG_EIO;
        if (!st) st = caimg_h5_add_input(out, model_path, 1);
        if (!st) st = caimg_h5_add_input(out, images_path, 0);
        if (!st) {
            caimg_h5_param(out, "samples", "%ld", samples);
            caimg_h5_param(out, "seed", "%llu", (unsigned long long)s0);
        }
        size_t d2[2] = {n, NW};
        if (!st) st = caimg_h5_write(out, "/predict/responses", CAIMG_DT_F32, 2, d2, wide);
        if (!st) st = caimg_h5_set_attr_long(out, "/predict", "samples", samples);
        if (!st) {
            st = caimg_h5_commit(out);
            out = NULL;
        }
        caimg_h5_close(out);
    }
    if (!st && !c->quiet)
        fprintf(stderr, "caimg predict: %zu images, %zu neurons%s%s\n", n, N,
                NW > N ? " (excluded neurons are NaN)" : "", samples ? ", noise averaged" : "");
    free(img); free(x); free(pred); free(wide); free(names); free(nidx);
    caimg_ann_free(m);
    return st;
}

int main_predict(int argc, char **argv)
{
    cmd_ctx c;
    int rc = cmd_begin(&c, "predict", argc, argv, longopts);
    if (rc) return rc;
    long samples = 0;
    const char *format = NULL;
    int opt;
    while ((opt = getopt_long(c.argc, c.argv, CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        int k = cmd_common_option(&c, opt, optarg);
        if (k < 0) { rc = EXIT_USAGE; goto done; }
        if (k > 0) continue;
        switch (opt) {
        case OPT_SAMPLES:
            if (cmd_parse_long(&c, "--samples", optarg, 0, 1000000, &samples)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_FORMAT:
            if (strcmp(optarg, "h5") && strcmp(optarg, "tsv")) {
                rc = cmd_usage_error(&c, "--format: '%s' is not h5 or tsv", optarg);
                goto done;
            }
            format = optarg;
            break;
        default:
            rc = cmd_bad_option(&c);
            goto done;
        }
    }
    if (c.want_help) { usage(stdout); rc = 0; goto done; }
    if (c.argc - optind != 2) {
        rc = cmd_usage_error(&c, "expected MODEL.h5 and IMAGES.tif");
        goto done;
    }
    if (!c.output) { rc = cmd_usage_error(&c, "no output: give -o OUT.h5 or -o OUT.tsv"); goto done; }
    if ((rc = cmd_check_output(&c, c.output))) goto done;
    int tsv = format ? !strcmp(format, "tsv")
                     : (!strcmp(c.output, "-") || has_suffix(c.output, ".tsv") ||
                        has_suffix(c.output, ".txt"));
    if (!tsv && !strcmp(c.output, "-")) {
        rc = cmd_usage_error(&c, "HDF5 output cannot go to standard output; use --format tsv");
        goto done;
    }
    if ((rc = cmd_check_inputs(&c, c.output, (const char *const *)c.argv + optind, 2))) goto done;
    rc = run(&c, c.argv[optind], c.argv[optind + 1], samples, tsv);
    if (rc) rc = cmd_fail(&c, rc);
done:
    cmd_end(&c);
    return rc;
}
