/* attack.c -- caimg attack: adversarial attacks on a fitted response
 * model, robustness curves and their sanity checks.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caimg/caimg.h"
#include "caimg/h5io.h"
#include "caimg/tsv.h"
#include "annutil.h"
#include "cmd.h"

enum {
    OPT_STIMULI = OPT_FIRST_PRIVATE, OPT_IMAGES, OPT_RANGE, OPT_METHOD, OPT_NORM, OPT_EPS,
    OPT_OBJECTIVE, OPT_NEURON, OPT_DECODER, OPT_STEPS, OPT_STEP_SCALE, OPT_RESTARTS,
    OPT_NO_RANDOM_START, OPT_EOT, OPT_EOT_SWEEP, OPT_EOT_BUDGET, OPT_EVAL_SAMPLES,
    OPT_FEATURE_LAYER, OPT_FEATURE_EPS, OPT_SUCCESS, OPT_TOLERANCE, OPT_TSV, OPT_PLOT,
    OPT_SAVE_IMAGES
};

static const struct option longopts[] = {
    CMD_COMMON_LONGOPTS,
    {"stimuli",           required_argument, NULL, OPT_STIMULI},
    {"images",            required_argument, NULL, OPT_IMAGES},
    {"range",             required_argument, NULL, OPT_RANGE},
    {"method",            required_argument, NULL, OPT_METHOD},
    {"norm",              required_argument, NULL, OPT_NORM},
    {"eps",               required_argument, NULL, OPT_EPS},
    {"objective",         required_argument, NULL, OPT_OBJECTIVE},
    {"neuron",            required_argument, NULL, OPT_NEURON},
    {"decoder",           required_argument, NULL, OPT_DECODER},
    {"steps",             required_argument, NULL, OPT_STEPS},
    {"step-scale",        required_argument, NULL, OPT_STEP_SCALE},
    {"restarts",          required_argument, NULL, OPT_RESTARTS},
    {"no-random-start",   no_argument,       NULL, OPT_NO_RANDOM_START},
    {"eot",               required_argument, NULL, OPT_EOT},
    {"eot-sweep",         required_argument, NULL, OPT_EOT_SWEEP},
    {"eot-budget",        required_argument, NULL, OPT_EOT_BUDGET},
    {"eval-samples",      required_argument, NULL, OPT_EVAL_SAMPLES},
    {"feature-layer",     required_argument, NULL, OPT_FEATURE_LAYER},
    {"feature-eps",       required_argument, NULL, OPT_FEATURE_EPS},
    {"success-threshold", required_argument, NULL, OPT_SUCCESS},
    {"tolerance",         required_argument, NULL, OPT_TOLERANCE},
    {"tsv",               required_argument, NULL, OPT_TSV},
    {"plot",              required_argument, NULL, OPT_PLOT},
    {"save-images",       no_argument,       NULL, OPT_SAVE_IMAGES},
    {NULL, 0, NULL, 0}
};

static void usage(FILE *fp)
{
    fprintf(fp,
"Usage: caimg attack [options] MODEL.h5 [--stimuli IMAGES.tif] -o ROBUSTNESS.h5\n"
"\n"
"Attack a model written by caimg fit: perturb each stimulus within a budget so\n"
"as to change the predicted responses most, and report per budget how far they\n"
"moved (absolute and in units of each neuron's natural variability), the\n"
"correlation of clean and attacked responses, the robust decoding accuracy, the\n"
"attack success rate and the perturbation's size, with sanity checks.  Noisy\n"
"models are attacked with expectation over the noise (EOT) and evaluated on\n"
"noise-averaged predictions.\n"
"\n"
"Stimuli:\n"
"      --stimuli FILE      images to attack: TIFF stack of the model's image size\n"
"                          [the model's held-out test images, /fit/test/images]\n"
"      --images N          attack the first N images only [all]\n"
"      --range LO,HI       valid pixel range [the model's input_min,input_max]\n"
"Attacks:\n"
"      --method LIST       random, fgsm, pgd [random,fgsm,pgd]\n"
"      --norm LIST         pixel budgets: linf, l2 [linf]\n"
"      --eps LIST          budgets, fractions of the pixel range (l2: RMS per pixel)\n"
"                          [0,0.005,0.01,0.02,0.05]\n"
"      --objective LIST    response, neuron, decoder [response]\n"
"      --neuron K[:up|:down]  neuron of the neuron objective, 0-based [the best\n"
"                          predicted held-out neuron, up]\n"
"      --decoder NAME      stimulus decoder: centroid or corr [centroid]\n"
"      --steps N           PGD steps [20]\n"
"      --step-scale X      PGD step = X * budget / steps [2.5]\n"
"      --restarts N        PGD runs per image, the strongest kept [1]\n"
"      --no-random-start   PGD starts at the clean image\n"
"      --eot M             noise draws averaged per gradient (noisy models) [10]\n"
"      --eot-sweep LIST    also PGD with these M at one budget, to show that the\n"
"                          EOT estimate converged; 'none' to skip [1,M/2,2M]\n"
"      --eot-budget E      budget of the sweep [the middle nonzero budget]\n"
"      --eval-samples K    noise draws averaged per evaluation (noisy models) [32]\n"
"      --feature-layer L   also attack with budgets on layer L's activity\n"
"                          (feature space) [none]\n"
"      --feature-eps LIST  relative L2 budgets of that layer [0,0.05,0.1,0.2,0.5]\n"
"      --success-threshold T  response/neuron success: change >= T natural s.d. [0.5]\n"
"      --tolerance X       relative tolerance of the sanity checks [0.02]\n"
"      --seed N            random starts, baselines and noise draws [1]\n"
"Output:\n"
"  -o, --output FILE       robustness results, HDF5 (/attack) (required)\n"
"      --tsv FILE          the results table as TSV ('-' for standard output)\n"
"      --plot FILE         SVG plot of the curves\n"
"      --save-images       keep the attacked images in the HDF5 file\n"
"  -@, --threads N         threads [all cores]\n"
"      --config FILE       read options from section [attack] of FILE\n"
"  -q, --quiet             no progress or warnings\n"
"  -v, --verbose           report more of what was done\n"
"  -h, --help              this help\n");
}

#define MAXLIST 32

typedef struct {
    const char *model, *stimuli, *tsv, *plot, *feature_layer;
    long images;
    double range[2];
    int range_given;
    int methods[3], nmethods;
    int norms[2], nnorms;
    double eps[MAXLIST];
    int neps;
    int objectives[3], nobjectives;
    long neuron;
    int direction;
    int decoder;
    long steps, restarts, eot, eval_samples;
    double step_scale, success, tolerance, eot_budget;
    int eot_budget_given;
    int random_start;
    long sweep[MAXLIST];
    int nsweep;             /* -1: default, 0: none */
    double feps[MAXLIST];
    int nfeps;
    int save_images;
} attack_opts;

/* Parse a comma-separated list of names into values; returns the count or -1. */
static int parse_names(cmd_ctx *c, const char *opt, const char *s, int (*parse)(const char *),
                       int *out, int max)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int v = parse(tok);
        if (v < 0 || n >= max) {
            cmd_usage_error(c, "%s: '%s' is not one of the accepted names", opt, tok);
            return -1;
        }
        for (int k = 0; k < n; k++)
            if (out[k] == v) v = -1;
        if (v >= 0) out[n++] = v;
    }
    if (!n) cmd_usage_error(c, "%s: empty list", opt);
    return n ? n : -1;
}

static int parse_pixel_norm(const char *s)
{
    int v = caimg_attack_budget_parse(s);
    return v == CAIMG_ATTACK_FEATURE ? -1 : v;
}

/* Budgets: non-negative, finite, increasing order is not required. */
static int parse_budgets(cmd_ctx *c, const char *opt, const char *s, double *out)
{
    int n = cmd_parse_double_list(c, opt, s, out, MAXLIST);
    if (n < 0) return -1;
    for (int k = 0; k < n; k++)
        if (!(out[k] >= 0) || out[k] > 1e6) {
            cmd_usage_error(c, "%s: budget %g is negative", opt, out[k]);
            return -1;
        }
    return n;
}

/* The images to attack, as model inputs [n][C][H][W]. */
static int load_images(cmd_ctx *c, const attack_opts *o, caimg_ann *m, caimg_h5 *f, float **x,
                       size_t *n, int32_t **stim)
{
    (void)c;
    *x = NULL;
    *stim = NULL;
    size_t insz = caimg_ann_input_size(m);
    if (!o->stimuli) {
        /* /fit/test since the per-neuron metrics got /fit/eval to
         * themselves; models fitted before keep them in /fit/eval. */
        const char *grp = caimg_h5_exists(f, "/fit/test/images") ? "/fit/test" : "/fit/eval";
        char iname[64], sname[64];
        snprintf(iname, sizeof iname, "%s/images", grp);
        snprintf(sname, sizeof sname, "%s/stimulus", grp);
        if (!caimg_h5_exists(f, iname))
            return caimg_error(CAIMG_EFORMAT, "%s: no held-out test images (/fit/test/images); give "
                               "--stimuli", o->model);
        int rank;
        size_t d[CAIMG_H5_MAXRANK];
        int st = caimg_h5_read(f, iname, CAIMG_DT_F32, 3, &rank, d, (void **)x);
        if (st) return st;
        size_t shape[3];
        caimg_ann_layer_shape(m, 0, shape);
        if (d[1] != shape[1] || d[2] != shape[2]) {
            free(*x);
            *x = NULL;
            return caimg_error(CAIMG_EFORMAT, "%s: %s are %zux%zu, the model takes %zux%zu",
                               o->model, iname, d[1], d[2], shape[1], shape[2]);
        }
        *n = d[0];
        size_t d1[CAIMG_H5_MAXRANK];
        if (caimg_h5_exists(f, sname) &&
            caimg_h5_read(f, sname, CAIMG_DT_I32, 1, &rank, d1, (void **)stim) == 0 &&
            d1[0] != *n) {
            free(*stim);
            *stim = NULL;
        }
    } else {
        float *img = NULL;
        size_t np, h, w;
        int st = ann_read_images(o->stimuli, NULL, 0, &img, &np, &h, &w);
        if (st) return st;
        const caimg_ann_prep *pp = caimg_ann_get_prep(m);
        if (h != pp->src_h || w != pp->src_w) {
            free(img);
            return caimg_error(CAIMG_EFORMAT, "%s: images are %zux%zu, but the model was fitted on "
                               "%zux%zu images", o->stimuli, h, w, pp->src_h, pp->src_w);
        }
        *x = malloc(np * insz * sizeof **x);
        *stim = malloc(np * sizeof **stim);
        if (!*x || !*stim) {
            free(img);
            return caimg_error(CAIMG_ENOMEM, "out of memory");
        }
        st = caimg_ann_preprocess(m, img, np, *x);
        free(img);
        if (st) return st;
        for (size_t i = 0; i < np; i++) (*stim)[i] = (int32_t)i;
        *n = np;
    }
    if (o->images > 0 && (size_t)o->images < *n) *n = (size_t)o->images;
    if (*n < 2)
        return caimg_error(CAIMG_EFORMAT, "%s: %zu image%s to attack; at least 2 are needed (the "
                           "natural variability and the decoder are defined over the set)",
                           o->stimuli ? o->stimuli : o->model, *n, *n == 1 ? "" : "s");
    return 0;
}

static void print_table(FILE *fp, const caimg_attack_plan *p, const caimg_attack_curve *cv, size_t nc)
{
    char name[96];
    fprintf(fp, "%-32s %8s %9s %9s %7s %7s %7s %7s %7s %7s %7s\n", "attack", "budget", "rel_chg",
            "abs_chg", "corr", "decode", "success", "linf", "l2", "feature", "sec");
    for (size_t i = 0; i < nc; i++) {
        caimg_attack_name(p, &cv[i].opts, name, sizeof name);
        for (size_t k = 0; k < cv[i].nbudgets; k++) {
            const caimg_attack_result *r = &cv[i].res[k];
            fprintf(fp, "%-32s %8g %9.4f %9.4g %7.4f %7.4f %7.4f %7.4f %7.4f %7.4f %7.1f\n", name,
                    r->budget, r->rel_change, r->abs_change, r->corr, r->decode_acc, r->success,
                    r->linf, r->l2, r->feature, r->seconds);
        }
    }
}

static int run(cmd_ctx *c, attack_opts *o)
{
    caimg_h5 *f = caimg_h5_open(o->model), *out = NULL;
    if (!f) return CAIMG_EFORMAT;
    caimg_ann *m = caimg_ann_load(f, "/model");
    float *x = NULL;
    int32_t *stim = NULL;
    double *corr = NULL;
    size_t n = 0;
    int st = m ? 0 : CAIMG_EFORMAT;
    if (!st) st = load_images(c, o, m, f, &x, &n, &stim);
    if (!st && o->neuron < 0 && caimg_h5_exists(f, "/fit/eval/corr_avg")) {
        int rank;
        size_t d[CAIMG_H5_MAXRANK];
        if (caimg_h5_read(f, "/fit/eval/corr_avg", CAIMG_DT_F64, 1, &rank, d, (void **)&corr) ||
            d[0] != caimg_ann_output_size(m)) {
            free(corr);
            corr = NULL;
        }
    }
    caimg_h5_close(f);
    caimg_attack_plan *p = NULL;
    caimg_attack_curve *cv = NULL;
    caimg_attack_check *checks = NULL;
    size_t nc = 0, nchecks = 0;
    char *svg = NULL;
    caimg_outfile *tsvf = NULL, *plotf = NULL;
    if (st) goto done;

    caimg_attack_setup su;
    caimg_attack_setup_init(&su);
    if (o->range_given) {
        su.lo = o->range[0];
        su.hi = o->range[1];
    } else if (caimg_ann_get_input_range(m, NULL, NULL)) {
        st = caimg_error(CAIMG_EINVAL, "%s: the model records no valid pixel range (fitted by an "
                         "older caimg?); give --range LO,HI", o->model);
        goto done;
    }
    /* Clean images outside the valid range would be changed by clipping
     * alone; the range must hold them. */
    double lo = su.lo, hi = su.hi;
    if (!o->range_given) caimg_ann_get_input_range(m, &lo, &hi);
    {
        const size_t insz = caimg_ann_input_size(m);
        double mn = INFINITY, mx = -INFINITY;
        for (size_t i = 0; i < n * insz; i++) {
            if (x[i] < mn) mn = x[i];
            if (x[i] > mx) mx = x[i];
        }
        double slack = 1e-4 * (hi - lo);
        if (mn < lo - slack || mx > hi + slack) {
            if (o->range_given) {
                st = caimg_error(CAIMG_EINVAL, "%s: the images span [%g, %g], outside --range %g,%g",
                                 o->stimuli ? o->stimuli : o->model, mn, mx, lo, hi);
                goto done;
            }
            /* The model's range is its training images' extremes; stimuli
             * beyond them are still valid stimuli. */
            caimg_warn("the images span [%g, %g], beyond the model's pixel range [%g, %g]; using "
                       "[%g, %g]", mn, mx, lo, hi, fmin(mn, lo), fmax(mx, hi));
            lo = fmin(mn, lo);
            hi = fmax(mx, hi);
        }
        su.lo = lo;
        su.hi = hi;
    }
    su.eval_samples = (size_t)o->eval_samples;
    su.decoder = (caimg_attack_decoder_type)o->decoder;
    su.success_threshold = o->success;
    su.seed = c->seed_given ? c->seed : 1;
    if (o->feature_layer) {
        su.feature_layer = caimg_ann_layer_find(m, o->feature_layer);
        if (su.feature_layer <= 0 || (size_t)su.feature_layer + 1 >= caimg_ann_nlayers(m)) {
            char names[512] = "";
            for (size_t l = 1; l + 1 < caimg_ann_nlayers(m); l++) {
                size_t u = strlen(names);
                snprintf(names + u, sizeof names - u, "%s%s", l > 1 ? ", " : "", caimg_ann_layer_name(m, l));
            }
            st = caimg_error(CAIMG_EINVAL, "%s: --feature-layer: the model has no hidden layer "
                             "'%s' (hidden layers: %s)", o->model, o->feature_layer, names);
            goto done;
        }
    }
    const size_t N = caimg_ann_output_size(m);
    p = caimg_attack_plan_create(m, x, n, &su);
    if (!p) { st = CAIMG_EFORMAT; goto done; }
    const int noisy = caimg_attack_plan_noisy(p);
    if (o->neuron >= (long)N) {
        st = caimg_error(CAIMG_EINVAL, "%s: --neuron %ld: the model has %zu neurons (0 to %zu)",
                         o->model, o->neuron, N, N - 1);
        goto done;
    }
    size_t neuron = 0;
    if (o->neuron >= 0) {
        neuron = (size_t)o->neuron;
    } else {
        /* The best-predicted held-out neuron whose prediction varies. */
        const double *sd = caimg_attack_plan_sd(p);
        double best = -INFINITY;
        for (size_t k = 0; k < N; k++) {
            double v = corr && isfinite(corr[k]) ? corr[k] : -2.0;
            if (sd[k] > 0 && v > best) { best = v; neuron = k; }
        }
    }

    /* The curves: per objective and pixel norm, every method; the EOT
     * sweep for the first of each; feature budgets at the end. */
    size_t maxc = (size_t)(o->nobjectives * (o->nnorms * 3 + MAXLIST + 2));
    cv = calloc(maxc, sizeof *cv);
    if (!cv) { st = caimg_error(CAIMG_ENOMEM, "out of memory"); goto done; }
    caimg_attack_opts base;
    caimg_attack_opts_init(&base);
    base.neuron = neuron;
    base.direction = o->direction;
    base.steps = (size_t)o->steps;
    base.step_scale = o->step_scale;
    base.restarts = (size_t)o->restarts;
    base.random_start = o->random_start;
    base.eot = (size_t)o->eot;
    base.seed = c->seed_given ? c->seed : 1;
    double sweep_budget = o->eot_budget;
    if (!o->eot_budget_given) {
        /* The middle of the nonzero budgets. */
        double nz[MAXLIST];
        int k = 0;
        for (int i = 0; i < o->neps; i++) if (o->eps[i] > 0) nz[k++] = o->eps[i];
        for (int a = 1; a < k; a++)
            for (int b = a; b > 0 && nz[b] < nz[b - 1]; b--) { double t = nz[b]; nz[b] = nz[b - 1]; nz[b - 1] = t; }
        sweep_budget = k ? nz[(k - 1) / 2] : 0.0;
    }
    long sweep[MAXLIST];
    int nsweep = 0;
    if (noisy && o->nsweep < 0) {
        long cand[3] = {1, o->eot / 2 > 1 ? o->eot / 2 : 2, 2 * o->eot};
        for (int i = 0; i < 3; i++) {
            int dup = cand[i] == o->eot;
            for (int k = 0; k < nsweep; k++) dup |= sweep[k] == cand[i];
            if (!dup) sweep[nsweep++] = cand[i];
        }
    } else if (noisy) {
        for (int i = 0; i < o->nsweep; i++)
            if (o->sweep[i] != o->eot) sweep[nsweep++] = o->sweep[i];
    }
    char name[96];
    for (int oi = 0; oi < o->nobjectives && !st; oi++) {
        caimg_attack_opts a = base;
        a.objective = (caimg_attack_objective)o->objectives[oi];
        for (int ni = 0; ni < o->nnorms && !st; ni++) {
            a.budget = (caimg_attack_budget)o->norms[ni];
            for (int mi = 0; mi < o->nmethods && !st; mi++) {
                a.method = (caimg_attack_method)o->methods[mi];
                caimg_attack_name(p, &a, name, sizeof name);
                st = caimg_attack_curve_run(p, &a, o->eps, (size_t)o->neps, o->save_images, &cv[nc]);
                if (st) break;
                double secs = 0;
                for (size_t k = 0; k < cv[nc].nbudgets; k++) secs += cv[nc].res[k].seconds;
                cmd_note(c, "%s: %d budgets, %.1f s", name, o->neps, secs);
                nc++;
            }
            if (ni == 0 && nsweep && sweep_budget > 0) {
                a.method = CAIMG_ATTACK_PGD;
                for (int k = 0; k < nsweep && !st; k++) {
                    a.eot = (size_t)sweep[k];
                    st = caimg_attack_curve_run(p, &a, &sweep_budget, 1, 0, &cv[nc]);
                    if (st) break;
                    caimg_attack_name(p, &a, name, sizeof name);
                    cmd_note(c, "%s: budget %g (EOT sweep), %.1f s", name, sweep_budget, cv[nc].res[0].seconds);
                    nc++;
                }
                a.eot = base.eot;
            }
        }
        if (!st && su.feature_layer > 0) {
            a.budget = CAIMG_ATTACK_FEATURE;
            for (int mi = 0; mi < o->nmethods && !st; mi++) {
                if (o->methods[mi] == CAIMG_ATTACK_FGSM) continue;
                a.method = (caimg_attack_method)o->methods[mi];
                caimg_attack_name(p, &a, name, sizeof name);
                st = caimg_attack_curve_run(p, &a, o->feps, (size_t)o->nfeps, o->save_images, &cv[nc]);
                if (st) break;
                double secs = 0;
                for (size_t k = 0; k < cv[nc].nbudgets; k++) secs += cv[nc].res[k].seconds;
                cmd_note(c, "%s: %d budgets, %.1f s", name, o->nfeps, secs);
                nc++;
            }
        }
    }
    if (st) goto done;
    if ((st = caimg_attack_checks(p, cv, nc, o->tolerance, &checks, &nchecks))) goto done;

    /* ---- outputs: everything is prepared under temporary names first ---- */
    if (o->plot) {
        char title[512];
        snprintf(title, sizeof title, "caimg attack %s (%zu images%s)", o->model, n,
                 noisy ? ", noisy model" : "");
        svg = caimg_attack_svg(p, cv, nc, title);
        if (!svg) { st = CAIMG_ENOMEM; goto done; }
        plotf = caimg_outfile_open(o->plot);
        if (!plotf) { st = CAIMG_EIO; goto done; }
        fputs(svg, caimg_outfile_fp(plotf));
    }
    int tsv_stdout = o->tsv && !strcmp(o->tsv, "-");
    if (o->tsv && !tsv_stdout) {
        tsvf = caimg_outfile_open(o->tsv);
        if (!tsvf) { st = CAIMG_EIO; goto done; }
        caimg_attack_write_tsv(caimg_outfile_fp(tsvf), p, cv, nc, 1, NULL, NULL, 0);
    }
    out = caimg_h5_create(c->output, "attack", c->cmdline);
    if (!out) { st = CAIMG_EIO; goto done; }
    st = caimg_h5_add_input(out, o->model, 1);
    if (!st && o->stimuli) st = caimg_h5_add_input(out, o->stimuli, 0);
    {
        char buf[1024];
        int k = 0;
        for (int i = 0; i < o->nmethods; i++)
            k += snprintf(buf + k, sizeof buf - (size_t)k, "%s%s", i ? "," : "",
                          caimg_attack_method_name((caimg_attack_method)o->methods[i]));
        caimg_h5_param(out, "method", "%s", buf);
        k = 0;
        for (int i = 0; i < o->nnorms; i++)
            k += snprintf(buf + k, sizeof buf - (size_t)k, "%s%s", i ? "," : "",
                          caimg_attack_budget_name((caimg_attack_budget)o->norms[i]));
        caimg_h5_param(out, "norm", "%s", buf);
        k = 0;
        for (int i = 0; i < o->neps; i++) k += snprintf(buf + k, sizeof buf - (size_t)k, "%s%g", i ? "," : "", o->eps[i]);
        caimg_h5_param(out, "eps", "%s", buf);
        k = 0;
        for (int i = 0; i < o->nobjectives; i++)
            k += snprintf(buf + k, sizeof buf - (size_t)k, "%s%s", i ? "," : "",
                          caimg_attack_objective_name((caimg_attack_objective)o->objectives[i]));
        caimg_h5_param(out, "objective", "%s", buf);
        caimg_h5_param(out, "neuron", "%zu:%s", neuron, o->direction > 0 ? "up" : "down");
        caimg_h5_param(out, "decoder", "%s", caimg_attack_decoder_name(su.decoder));
        caimg_h5_param(out, "steps", "%ld", o->steps);
        caimg_h5_param_double(out, "step-scale", o->step_scale);
        caimg_h5_param(out, "restarts", "%ld", o->restarts);
        caimg_h5_param(out, "no-random-start", "%s", o->random_start ? "no" : "yes");
        caimg_h5_param(out, "eot", "%ld", o->eot);
        /* The sweep and its budget as run, which replay the same way. */
        k = 0;
        for (int i = 0; i < nsweep; i++)
            k += snprintf(buf + k, sizeof buf - (size_t)k, "%s%ld", i ? "," : "", sweep[i]);
        caimg_h5_param(out, "eot-sweep", "%s", nsweep ? buf : "none");
        if (sweep_budget > 0) caimg_h5_param_double(out, "eot-budget", sweep_budget);
        else caimg_h5_param_derived(out, "eot-budget", "0 (no nonzero budget)");
        caimg_h5_param(out, "eval-samples", "%ld", o->eval_samples);
        /* A range taken from the model is not --range: given, images
         * beyond it are an error, taken, a warning. */
        if (o->range_given) caimg_h5_param(out, "range", "%.17g,%.17g", su.lo, su.hi);
        else caimg_h5_param_derived(out, "range", "%.17g,%.17g", su.lo, su.hi);
        caimg_h5_param_double(out, "success-threshold", o->success);
        caimg_h5_param_double(out, "tolerance", o->tolerance);
        caimg_h5_param(out, "seed", "%lu", c->seed_given ? c->seed : 1UL);
        if (o->stimuli) caimg_h5_param(out, "stimuli", "%s", o->stimuli);
        if (o->images > 0) caimg_h5_param(out, "images", "%ld", o->images);
        else caimg_h5_param_derived(out, "images", "0 (all)");
        caimg_h5_param(out, "save-images", "%s", o->save_images ? "yes" : "no");
        if (o->feature_layer) {
            caimg_h5_param(out, "feature-layer", "%s", o->feature_layer);
            k = 0;
            for (int i = 0; i < o->nfeps; i++)
                k += snprintf(buf + k, sizeof buf - (size_t)k, "%s%g", i ? "," : "", o->feps[i]);
            caimg_h5_param(out, "feature-eps", "%s", buf);
        }
    }
    if (!st) st = caimg_attack_save(out, "/attack", p, cv, nc, checks, nchecks);
    if (!st) {
        size_t shape[3];
        caimg_ann_layer_shape(m, 0, shape);
        size_t d4[4] = {n, shape[0], shape[1], shape[2]};
        st = caimg_h5_write(out, "/attack/images", CAIMG_DT_F32, 4, d4, x);
        if (!st && stim) st = caimg_h5_write(out, "/attack/stimulus", CAIMG_DT_I32, 1, &n, stim);
        if (!st) st = caimg_h5_set_attr_long(out, "/attack", "neuron", (long)neuron);
    }
    if (!st) st = ann_commit_outputs(&out, &tsvf, &plotf);
    if (st) goto done;

    /* ---- the table and the checks ---- */
    if (tsv_stdout) {
        caimg_attack_write_tsv(stdout, p, cv, nc, 1, NULL, NULL, 0);
    } else {
        size_t nvary = 0;
        for (size_t k = 0; k < N; k++) nvary += caimg_attack_plan_sd(p)[k] > 0;
        printf("caimg attack: %zu images, %zu neurons (%zu vary across them), %s model; range "
               "[%g, %g]; decoder %s, clean decoding accuracy %.3f\n", n, N, nvary,
               noisy ? "noisy" : "deterministic", su.lo, su.hi, caimg_attack_decoder_name(su.decoder),
               caimg_attack_plan_clean_accuracy(p));
        print_table(stdout, p, cv, nc);
    }
    FILE *cf = tsv_stdout ? stderr : stdout;
    int nfail = 0;
    fprintf(cf, "sanity checks:\n");
    for (size_t i = 0; i < nchecks; i++) {
        fprintf(cf, "  %s  %-22s %s\n", checks[i].status ? "pass" : "FAIL", checks[i].name,
                checks[i].detail);
        nfail += !checks[i].status;
    }
    if (nfail)
        caimg_warn("%d sanity check%s failed: the attack may be too weak to trust these curves "
                   "(more --steps, --restarts or --eot?)", nfail, nfail == 1 ? "" : "s");
done:
    caimg_h5_close(out);
    caimg_outfile_abort(tsvf);
    caimg_outfile_abort(plotf);
    free(svg);
    free(checks);
    if (cv)
        for (size_t i = 0; i < nc; i++) caimg_attack_curve_clear(&cv[i]);
    free(cv);
    caimg_attack_plan_destroy(p);
    caimg_ann_free(m);
    free(x);
    free(stim);
    free(corr);
    return st;
}

int main_attack(int argc, char **argv)
{
    cmd_ctx c;
    int rc = cmd_begin(&c, "attack", argc, argv, longopts);
    if (rc) return rc;
    attack_opts o;
    memset(&o, 0, sizeof o);
    o.methods[0] = CAIMG_ATTACK_RANDOM;
    o.methods[1] = CAIMG_ATTACK_FGSM;
    o.methods[2] = CAIMG_ATTACK_PGD;
    o.nmethods = 3;
    o.norms[0] = CAIMG_ATTACK_LINF;
    o.nnorms = 1;
    const double eps0[] = {0, 0.005, 0.01, 0.02, 0.05};
    memcpy(o.eps, eps0, sizeof eps0);
    o.neps = 5;
    o.objectives[0] = CAIMG_ATTACK_RESPONSE;
    o.nobjectives = 1;
    o.neuron = -1;
    o.direction = 1;
    o.steps = 20;
    o.step_scale = 2.5;
    o.restarts = 1;
    o.random_start = 1;
    o.eot = 10;
    o.eval_samples = 32;
    o.success = 0.5;
    o.tolerance = 0.02;
    o.nsweep = -1;
    const double feps0[] = {0, 0.05, 0.1, 0.2, 0.5};
    memcpy(o.feps, feps0, sizeof feps0);
    o.nfeps = 5;
    int opt;
    while ((opt = getopt_long(c.argc, c.argv, CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        int k = cmd_common_option(&c, opt, optarg);
        if (k < 0) { rc = EXIT_USAGE; goto done; }
        if (k > 0) continue;
        int n;
        switch (opt) {
        case OPT_STIMULI: o.stimuli = optarg; break;
        case OPT_IMAGES:
            if (cmd_parse_long(&c, "--images", optarg, 2, 100000000, &o.images)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_RANGE:
            n = cmd_parse_double_list(&c, "--range", optarg, o.range, 2);
            if (n < 0) { rc = EXIT_USAGE; goto done; }
            if (n != 2 || !(o.range[1] > o.range[0])) {
                rc = cmd_usage_error(&c, "--range: '%s' is not LO,HI with LO < HI", optarg);
                goto done;
            }
            o.range_given = 1;
            break;
        case OPT_METHOD:
            if ((o.nmethods = parse_names(&c, "--method", optarg, caimg_attack_method_parse, o.methods, 3)) < 0) {
                rc = EXIT_USAGE;
                goto done;
            }
            break;
        case OPT_NORM:
            if ((o.nnorms = parse_names(&c, "--norm", optarg, parse_pixel_norm, o.norms, 2)) < 0) {
                rc = EXIT_USAGE;
                goto done;
            }
            break;
        case OPT_EPS:
            if ((o.neps = parse_budgets(&c, "--eps", optarg, o.eps)) < 0) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_FEATURE_EPS:
            if ((o.nfeps = parse_budgets(&c, "--feature-eps", optarg, o.feps)) < 0) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_OBJECTIVE:
            if ((o.nobjectives = parse_names(&c, "--objective", optarg, caimg_attack_objective_parse,
                                             o.objectives, 3)) < 0) {
                rc = EXIT_USAGE;
                goto done;
            }
            break;
        case OPT_NEURON: {
            char buf[64];
            snprintf(buf, sizeof buf, "%s", optarg);
            char *colon = strchr(buf, ':');
            o.direction = 1;
            if (colon) {
                *colon = '\0';
                if (!strcmp(colon + 1, "down")) o.direction = -1;
                else if (strcmp(colon + 1, "up")) {
                    rc = cmd_usage_error(&c, "--neuron: '%s' is not K, K:up or K:down", optarg);
                    goto done;
                }
            }
            if (cmd_parse_long(&c, "--neuron", buf, 0, 100000000, &o.neuron)) { rc = EXIT_USAGE; goto done; }
            break;
        }
        case OPT_DECODER:
            if ((o.decoder = caimg_attack_decoder_parse(optarg)) < 0) {
                rc = cmd_usage_error(&c, "--decoder: '%s' is not centroid or corr", optarg);
                goto done;
            }
            break;
        case OPT_STEPS:
            if (cmd_parse_long(&c, "--steps", optarg, 1, 100000, &o.steps)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_STEP_SCALE:
            if (cmd_parse_double(&c, "--step-scale", optarg, 1e-6, 1e3, &o.step_scale)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_RESTARTS:
            if (cmd_parse_long(&c, "--restarts", optarg, 1, 1000, &o.restarts)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_NO_RANDOM_START: o.random_start = 0; break;
        case OPT_EOT:
            if (cmd_parse_long(&c, "--eot", optarg, 1, 100000, &o.eot)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_EOT_SWEEP:
            if (!strcmp(optarg, "none")) {
                o.nsweep = 0;
            } else {
                double v[MAXLIST];
                n = cmd_parse_double_list(&c, "--eot-sweep", optarg, v, MAXLIST);
                if (n < 0) { rc = EXIT_USAGE; goto done; }
                for (int i = 0; i < n; i++) {
                    if (!(v[i] >= 1) || v[i] != floor(v[i]) || v[i] > 100000) {
                        rc = cmd_usage_error(&c, "--eot-sweep: '%s' is not a list of whole numbers >= 1",
                                             optarg);
                        goto done;
                    }
                    o.sweep[i] = (long)v[i];
                }
                o.nsweep = n;
            }
            break;
        case OPT_EOT_BUDGET:
            if (cmd_parse_double(&c, "--eot-budget", optarg, 1e-12, 1e6, &o.eot_budget)) { rc = EXIT_USAGE; goto done; }
            o.eot_budget_given = 1;
            break;
        case OPT_EVAL_SAMPLES:
            if (cmd_parse_long(&c, "--eval-samples", optarg, 1, 1000000, &o.eval_samples)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_FEATURE_LAYER: o.feature_layer = optarg; break;
        case OPT_SUCCESS:
            if (cmd_parse_double(&c, "--success-threshold", optarg, 0, 1e6, &o.success)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_TOLERANCE:
            if (cmd_parse_double(&c, "--tolerance", optarg, 0, 10, &o.tolerance)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_TSV: o.tsv = optarg; break;
        case OPT_PLOT: o.plot = optarg; break;
        case OPT_SAVE_IMAGES: o.save_images = 1; break;
        default:
            rc = cmd_bad_option(&c);
            goto done;
        }
    }
    if (c.want_help) { usage(stdout); rc = 0; goto done; }
    if (c.argc - optind != 1) {
        rc = cmd_usage_error(&c, c.argc - optind ? "one MODEL.h5 expected" : "no model: give MODEL.h5");
        goto done;
    }
    if (!c.output) { rc = cmd_usage_error(&c, "no output: give -o ROBUSTNESS.h5"); goto done; }
    if ((rc = cmd_check_output(&c, c.output)) || (rc = cmd_check_output(&c, o.tsv))
        || (rc = cmd_check_output(&c, o.plot)))
        goto done;
    o.model = c.argv[optind];
    {
        /* Training and attacking take minutes: refuse outputs that would
         * destroy an input before, not when the results are written. */
        const char *const ins[2] = {o.model, o.stimuli}, *const outs[3] = {c.output, o.tsv, o.plot};
        for (int k = 0; k < 3 && !rc; k++) rc = cmd_check_inputs(&c, outs[k], ins, 2);
        if (rc) goto done;
    }
    rc = run(&c, &o);
    if (rc) rc = cmd_fail(&c, rc);
done:
    cmd_end(&c);
    return rc;
}
