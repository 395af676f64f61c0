/* robustness.c -- caimg robustness: does noise in a hidden layer make a
 * response model harder to fool than noise at the input, or no noise?
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * The experiment retrains the architecture of a model written by caimg fit,
 * on the same data, split and preprocessing, with Gaussian noise placed
 * nowhere, at the input, after a hidden layer, and both; the noise levels
 * are matched so that every placement loses the same small fraction of the
 * validation accuracy of the (regularised) no-noise model.  Each model,
 * for several seeds, is then attacked the same way, in pixel space and in
 * the feature space of the hidden layer, and the results are summarised
 * as mean +- s.d. over seeds.
 */
#include <config.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "caimg/caimg.h"
#include "caimg/h5io.h"
#include "caimg/resp.h"
#include "caimg/tsv.h"
#include "annutil.h"
#include "cmd.h"

enum {
    OPT_STIMULI = OPT_FIRST_PRIVATE, OPT_HIDDEN, OPT_PLACEMENTS, OPT_ACCURACY_DROP, OPT_SIGMA_GRID,
    OPT_SEARCH_STEPS, OPT_L2_GRID, OPT_L2, OPT_SIGMA_INPUT, OPT_SIGMA_HIDDEN, OPT_BOTH_FACTOR,
    OPT_SEEDS, OPT_EPS, OPT_FEATURE_EPS,
    OPT_FEATURE_LAYER, OPT_NO_DECODER, OPT_STEPS, OPT_EOT, OPT_EVAL_SAMPLES, OPT_IMAGES,
    OPT_DECODER, OPT_TSV, OPT_PLOT, OPT_TOLERANCE
};

static const struct option longopts[] = {
    CMD_COMMON_LONGOPTS,
    {"stimuli",        required_argument, NULL, OPT_STIMULI},
    {"hidden",         required_argument, NULL, OPT_HIDDEN},
    {"placements",     required_argument, NULL, OPT_PLACEMENTS},
    {"accuracy-drop",  required_argument, NULL, OPT_ACCURACY_DROP},
    {"sigma-grid",     required_argument, NULL, OPT_SIGMA_GRID},
    {"search-steps",   required_argument, NULL, OPT_SEARCH_STEPS},
    {"l2-grid",        required_argument, NULL, OPT_L2_GRID},
    {"l2",             required_argument, NULL, OPT_L2},
    {"sigma-input",    required_argument, NULL, OPT_SIGMA_INPUT},
    {"sigma-hidden",   required_argument, NULL, OPT_SIGMA_HIDDEN},
    {"both-factor",    required_argument, NULL, OPT_BOTH_FACTOR},
    {"seeds",          required_argument, NULL, OPT_SEEDS},
    ANN_TRAIN_LONGOPTS,
    {"eps",            required_argument, NULL, OPT_EPS},
    {"feature-eps",    required_argument, NULL, OPT_FEATURE_EPS},
    {"feature-layer",  required_argument, NULL, OPT_FEATURE_LAYER},
    {"no-decoder",     no_argument,       NULL, OPT_NO_DECODER},
    {"steps",          required_argument, NULL, OPT_STEPS},
    {"eot",            required_argument, NULL, OPT_EOT},
    {"eval-samples",   required_argument, NULL, OPT_EVAL_SAMPLES},
    {"images",         required_argument, NULL, OPT_IMAGES},
    {"decoder",        required_argument, NULL, OPT_DECODER},
    {"tsv",            required_argument, NULL, OPT_TSV},
    {"plot",           required_argument, NULL, OPT_PLOT},
    {"tolerance",      required_argument, NULL, OPT_TOLERANCE},
    {NULL, 0, NULL, 0}
};

static void usage(FILE *fp)
{
    fprintf(fp,
"Usage: caimg robustness [options] MODEL.h5 --stimuli IMAGES.tif -o ROBUSTNESS.h5\n"
"\n"
"The noise-placement experiment.  Retrain MODEL.h5's architecture (written by\n"
"caimg fit) on its data, split and preprocessing with Gaussian noise nowhere,\n"
"at the input, after a hidden layer, and both, at noise levels matched for\n"
"comparable clean accuracy (the no-noise model's weight decay tuned too);\n"
"attack every model the same way in pixel space and in the hidden layer's\n"
"feature space, for several seeds; print one table (mean +- s.d. over seeds)\n"
"and plot the curves side by side.\n"
"\n"
"Data:\n"
"      --stimuli FILE      the stimulus images MODEL.h5 was fitted on (required)\n"
"Placements and matching:\n"
"      --placements LIST   none, input, hidden, both [none,input,hidden,both]\n"
"      --hidden LAYER      the hidden noise layer [h1]\n"
"      --accuracy-drop F   each noisy model gets the largest noise whose validation\n"
"                          correlation is >= (1 - F) x the no-noise model's [0.05]\n"
"      --sigma-grid LIST   noise levels tried, relative to each unit's s.d.\n"
"                          [0.1,0.2,0.4,0.8,1.6,3.2]\n"
"      --search-steps N    bisection steps after the grid [2]\n"
"      --l2-grid LIST      weight decays tried for the no-noise model; the best\n"
"                          validation correlation wins and every model uses it\n"
"                          [0.0001,0.001,0.01]\n"
"      --l2 X              use this weight decay (no search)\n"
"      --sigma-input S     use this input noise level (no search)\n"
"      --sigma-hidden S    use this hidden noise level (no search)\n"
"      --both-factor C     'both' uses C x each matched level (no search)\n"
"Training (as caimg fit):\n"
"      --seeds N           models per placement, seeds 1..N [3]\n"
"      --epochs N          maximum epochs [200]\n"
"      --patience N        early-stopping patience [10]\n"
"      --ema D             weight-averaging decay per step [0: off]\n"
"      --lr-decay N[:F]    learning-rate decays by F [0.3] on plateau [0]\n"
"      --batch N           mini-batch size [64]\n"
"      --lr X              Adam learning rate [0.002]\n"
"Attacks (as caimg attack, on the held-out test images):\n"
"      --eps LIST          L-inf budgets, fractions of the pixel range\n"
"                          [0,0.005,0.01,0.02,0.05]\n"
"      --feature-eps LIST  feature-space budgets (relative L2) [0,0.05,0.1,0.2,0.5]\n"
"      --feature-layer L   layer of the feature budgets [the hidden noise layer]\n"
"      --no-decoder        skip the decoder attack (robust decoding accuracy)\n"
"      --decoder NAME      centroid or corr [centroid]\n"
"      --steps N           PGD steps [20]\n"
"      --eot M             noise draws per gradient [10]\n"
"      --eval-samples K    noise draws per evaluation [32]\n"
"      --images N          attack the first N test images [all]\n"
"      --tolerance X       sanity-check tolerance [0.02]\n"
"Output:\n"
"  -o, --output FILE       results, HDF5 (/robustness) (required)\n"
"      --tsv FILE          every attack result as TSV\n"
"      --plot FILE         SVG plot, placements side by side\n"
"      --seed N            attack seed [1]\n"
"  -@, --threads N         threads [all cores]\n"
"      --config FILE       read options from section [robustness] of FILE\n"
"  -q, --quiet             no progress or warnings\n"
"  -v, --verbose           report more of what was done\n"
"  -h, --help              this help\n");
}

#define MAXLIST 32
enum { PL_NONE = 0, PL_INPUT, PL_HIDDEN, PL_BOTH, NPL };
static const char *const pl_names[NPL] = {"none", "input", "hidden", "both"};

typedef struct {
    const char *model, *stimuli, *hidden, *feature_layer, *tsv, *plot;
    int want[NPL];
    double drop;
    double grid[MAXLIST];
    int ngrid;
    long search_steps;
    double l2grid[MAXLIST];
    int nl2;
    double l2, sig_in, sig_hid, both;       /* NaN: search */
    long seeds;
    ann_train_args train;
    double eps[MAXLIST], feps[MAXLIST];
    int neps, nfeps;
    int decoder_attack, decoder;
    long steps, eot, eval_samples, images;
    double tolerance;
} rob_opts;

/* The data, as caimg fit prepared it (from the model file). */
typedef struct {
    char *arch;
    caimg_ann_prep prep;
    size_t C, H, W, N, insz;
    caimg_ann_loss_type loss;
    size_t ntr, nte, npte;
    float *xtr, *ytr, *wtr;        /* [ntr][insz], [ntr][N], [ntr] (validation included) */
    unsigned char *vmask;          /* [ntr] */
    size_t nval;
    float *xval, *yval;            /* gathered validation rows */
    float *xte, *rte;              /* [nte][insz], [npte][N] single-trial test responses */
    size_t *pte;                   /* [npte] test row of each presentation */
} rob_data;

static void data_free(rob_data *d)
{
    free(d->arch); free(d->xtr); free(d->ytr); free(d->wtr); free(d->vmask); free(d->xval);
    free(d->yval); free(d->xte); free(d->rte); free(d->pte);
    memset(d, 0, sizeof *d);
}

/* Read the template model's architecture, preprocessing, responses and
 * split, and the images; build the training, validation and test sets. */
static int load_data(const rob_opts *o, rob_data *d)
{
    memset(d, 0, sizeof *d);
    caimg_h5 *f = caimg_h5_open(o->model);
    if (!f) return CAIMG_EFORMAT;
    caimg_ann *m = caimg_ann_load(f, "/model");
    float *resp = NULL, *img = NULL, *mean = NULL, *reps = NULL;
    int32_t *pstim = NULL;
    signed char *split = NULL;
    size_t *row = NULL, *srow = NULL;
    char *loss = NULL;
    int st = m ? 0 : CAIMG_EFORMAT;
    int rank;
    size_t dr[CAIMG_H5_MAXRANK], dp[CAIMG_H5_MAXRANK], ds[CAIMG_H5_MAXRANK];
    if (!st) {
        static const char *const need[] = {"/fit/responses", "/fit/presentation_stimulus",
                                           "/fit/stimulus_split"};
        for (int i = 0; i < 3 && !st; i++)
            if (!caimg_h5_exists(f, need[i]))
                st = caimg_error(CAIMG_EFORMAT, "%s: %s is missing (not a model written by caimg fit?)",
                                 o->model, need[i]);
    }
    if (!st) st = caimg_h5_read(f, "/fit/responses", CAIMG_DT_F32, 2, &rank, dr, (void **)&resp);
    if (!st) st = caimg_h5_read(f, "/fit/presentation_stimulus", CAIMG_DT_I32, 1, &rank, dp, (void **)&pstim);
    if (!st) st = caimg_h5_read(f, "/fit/stimulus_split", CAIMG_DT_I8, 1, &rank, ds, (void **)&split);
    if (!st && caimg_h5_get_attr_string(f, "/fit", "loss", &loss)) loss = NULL;
    caimg_h5_close(f);
    if (st) goto done;
    d->N = caimg_ann_output_size(m);
    const size_t P = dr[0], npages = ds[0];
    if (dr[1] != d->N || dp[0] != P) {
        st = caimg_error(CAIMG_EFORMAT, "%s: /fit/responses is %zux%zu, /fit/presentation_stimulus has "
                         "%zu rows and the model %zu neurons", o->model, dr[0], dr[1], dp[0], d->N);
        goto done;
    }
    d->loss = loss && !strcmp(loss, "mse") ? CAIMG_ANN_MSE : CAIMG_ANN_POISSON;
    d->arch = caimg_ann_arch_text(m);
    if (!d->arch) { st = caimg_error(CAIMG_ENOMEM, "out of memory"); goto done; }
    d->prep = *caimg_ann_get_prep(m);
    size_t shape[3];
    caimg_ann_layer_shape(m, 0, shape);
    d->C = shape[0];
    d->H = shape[1];
    d->W = shape[2];
    d->insz = caimg_ann_input_size(m);

    size_t np, ih, iw;
    if ((st = ann_read_images(o->stimuli, NULL, 0, &img, &np, &ih, &iw))) goto done;
    if (ih != d->prep.src_h || iw != d->prep.src_w) {
        st = caimg_error(CAIMG_EFORMAT, "%s: images are %zux%zu, but %s was fitted on %zux%zu images",
                         o->stimuli, ih, iw, o->model, d->prep.src_h, d->prep.src_w);
        goto done;
    }
    if (np < npages) {
        st = caimg_error(CAIMG_EFORMAT, "%s: %zu images, but %s used stimulus ids up to %zu", o->stimuli,
                         np, o->model, npages - 1);
        goto done;
    }
    /* Rows: training (and validation) stimuli, then test stimuli, in id order. */
    srow = malloc(npages * sizeof *srow);
    row = malloc(P * sizeof *row);
    if (!srow || !row) { st = caimg_error(CAIMG_ENOMEM, "out of memory"); goto done; }
    for (size_t s = 0; s < npages; s++) {
        srow[s] = SIZE_MAX;
        if (split[s] == 0 || split[s] == 1) srow[s] = d->ntr++;
        else if (split[s] == 2) d->nte++;
    }
    if (d->ntr < 2 || d->nte < 2) {
        st = caimg_error(CAIMG_EFORMAT, "%s: %zu training and %zu test stimuli; the experiment needs at "
                         "least 2 of each", o->model, d->ntr, d->nte);
        goto done;
    }
    for (size_t p = 0; p < P; p++) {
        if (pstim[p] < 0 || (size_t)pstim[p] >= npages) {
            st = caimg_error(CAIMG_EFORMAT, "%s: presentation %zu shows stimulus %d, outside the split",
                             o->model, p, pstim[p]);
            goto done;
        }
        row[p] = srow[pstim[p]];
    }
    d->xtr = malloc(d->ntr * d->insz * sizeof *d->xtr);
    d->ytr = malloc(d->ntr * d->N * sizeof *d->ytr);
    d->wtr = malloc(d->ntr * sizeof *d->wtr);
    d->vmask = calloc(d->ntr, 1);
    d->xte = malloc(d->nte * d->insz * sizeof *d->xte);
    if (!d->xtr || !d->ytr || !d->wtr || !d->vmask || !d->xte) {
        st = caimg_error(CAIMG_ENOMEM, "out of memory");
        goto done;
    }
    if ((st = caimg_resp_means(resp, row, P, d->N, d->ntr, d->ytr, d->wtr))) goto done;
    caimg_ann *pm = m;     /* the template's preprocessing */
    for (size_t s = 0, a = 0, b = 0; s < npages && !st; s++) {
        const float *im = img + s * ih * iw;
        if (split[s] == 0 || split[s] == 1) {
            d->vmask[a] = split[s] == 1;
            d->nval += split[s] == 1;
            st = caimg_ann_preprocess(pm, im, 1, d->xtr + a++ * d->insz);
        } else if (split[s] == 2) {
            st = caimg_ann_preprocess(pm, im, 1, d->xte + b++ * d->insz);
        }
    }
    if (st) goto done;
    if (d->nval < 2) {
        st = caimg_error(CAIMG_EFORMAT, "%s: %zu validation stimuli; noise levels are matched on "
                         "validation accuracy, which needs at least 2 (fit with --val-fraction > 0)",
                         o->model, d->nval);
        goto done;
    }
    d->xval = malloc(d->nval * d->insz * sizeof *d->xval);
    d->yval = malloc(d->nval * d->N * sizeof *d->yval);
    if (!d->xval || !d->yval) { st = caimg_error(CAIMG_ENOMEM, "out of memory"); goto done; }
    for (size_t i = 0, k = 0; i < d->ntr; i++) {
        if (!d->vmask[i]) continue;
        memcpy(d->xval + k * d->insz, d->xtr + i * d->insz, d->insz * sizeof *d->xval);
        memcpy(d->yval + k * d->N, d->ytr + i * d->N, d->N * sizeof *d->yval);
        k++;
    }
    /* Test presentations: single trials against their test row. */
    size_t *trow = malloc(npages * sizeof *trow);
    if (!trow) { st = caimg_error(CAIMG_ENOMEM, "out of memory"); goto done; }
    for (size_t s = 0, b = 0; s < npages; s++) trow[s] = split[s] == 2 ? b++ : SIZE_MAX;
    for (size_t p = 0; p < P; p++) d->npte += trow[pstim[p]] != SIZE_MAX;
    d->rte = malloc((d->npte ? d->npte : 1) * d->N * sizeof *d->rte);
    d->pte = malloc((d->npte ? d->npte : 1) * sizeof *d->pte);
    if (!d->rte || !d->pte) { free(trow); st = caimg_error(CAIMG_ENOMEM, "out of memory"); goto done; }
    for (size_t p = 0, q = 0; p < P; p++) {
        if (trow[pstim[p]] == SIZE_MAX) continue;
        memcpy(d->rte + q * d->N, resp + p * d->N, d->N * sizeof *d->rte);
        d->pte[q++] = trow[pstim[p]];
    }
    free(trow);
done:
    caimg_ann_free(m);
    free(resp); free(img); free(mean); free(reps); free(pstim); free(split); free(row); free(srow);
    free(loss);
    if (st) data_free(d);
    return st;
}

/* One trained model and its clean accuracy. */
typedef struct {
    caimg_ann *m;
    double sig_in, sig_hid, l2;
    double val_corr, test_corr, seconds;
    size_t epochs, best_epoch;
} trained;

/* Train the template's architecture with the given noise and weight decay;
 * accuracy of noise-averaged predictions (K draws) on the validation and
 * test stimuli. */
static int train_one(cmd_ctx *c, const rob_opts *o, const rob_data *d, double sig_in,
                     double sig_hid, double l2, uint64_t seed, trained *t)
{
    memset(t, 0, sizeof *t);
    t->sig_in = sig_in;
    t->sig_hid = sig_hid;
    t->l2 = l2;
    double t0 = cmd_seconds();
    caimg_ann *m = caimg_ann_create(d->arch, d->C, d->H, d->W, d->N, seed);
    if (!m) return CAIMG_EINVAL;
    int st = caimg_ann_set_prep(m, &d->prep);
    /* Noise exactly where this placement puts it, nowhere else. */
    for (size_t l = 0; l < caimg_ann_nlayers(m) && !st; l++) {
        double sg;
        int mode;
        caimg_ann_noise_get(m, l, &sg, &mode);
        if (sg > 0) st = caimg_ann_noise_set(m, caimg_ann_layer_name(m, l), 0.0, CAIMG_ANN_NOISE_REL);
    }
    if (!st && sig_in > 0) st = caimg_ann_noise_set(m, "input", sig_in, CAIMG_ANN_NOISE_REL);
    if (!st && sig_hid > 0) st = caimg_ann_noise_set(m, o->hidden, sig_hid, CAIMG_ANN_NOISE_REL);
    float *nw = malloc(d->N * sizeof *nw);
    float *pv = malloc(d->nval * d->N * sizeof *pv), *pt = malloc(d->nte * d->N * sizeof *pt);
    if (!st && (!nw || !pv || !pt)) st = caimg_error(CAIMG_ENOMEM, "out of memory");
    if (!st) st = caimg_ann_fit_scales(m, d->xtr, d->ytr, d->ntr, d->loss, nw);
    caimg_ann_history h;
    memset(&h, 0, sizeof h);
    if (!st) {
        caimg_ann_train_opts to;
        caimg_ann_train_opts_init(&to);
        to.loss = d->loss;
        to.neuron_weights = nw;
        ann_train_args_apply(&o->train, &to);
        to.l2 = l2;
        to.val_mask = d->vmask;
        to.seed = seed;
        st = caimg_ann_train(m, d->xtr, d->ytr, d->wtr, d->ntr, &to, &h);
    }
    size_t K = caimg_ann_is_noisy(m) ? (size_t)o->eval_samples : 0;
    if (!st) st = caimg_ann_predict(m, d->xval, d->nval, K, 0, pv);
    if (!st) st = caimg_ann_predict(m, d->xte, d->nte, K, 0, pt);
    caimg_ann_eval ev;
    memset(&ev, 0, sizeof ev);
    if (!st) st = caimg_ann_evaluate(pt, d->nte, d->N, d->rte, d->pte, d->npte, 0.15, &ev);
    if (!st) {
        t->val_corr = caimg_ann_mean_corr(pv, d->yval, d->nval, d->N);
        t->test_corr = ev.mean_corr_avg;
        t->epochs = h.nepochs;
        t->best_epoch = h.best_epoch;
        t->seconds = cmd_seconds() - t0;
        t->m = m;
        m = NULL;
    }
    caimg_ann_eval_clear(&ev);
    caimg_ann_history_clear(&h);
    caimg_ann_free(m);
    free(nw); free(pv); free(pt);
    (void)c;
    return st;
}

static void note_model(cmd_ctx *c, const char *what, const trained *t, double target)
{
    if (isnan(target))
        cmd_note(c, "%s: validation correlation %.4f, test %.4f (%zu epochs, %.1f s)", what, t->val_corr,
                 t->test_corr, t->epochs, t->seconds);
    else
        cmd_note(c, "%s: validation correlation %.4f (target >= %.4f: %s), test %.4f (%zu epochs, %.1f s)",
                 what, t->val_corr, target, t->val_corr >= target ? "ok" : "too noisy", t->test_corr,
                 t->epochs, t->seconds);
}

/* A search trace: the levels tried and their validation correlations. */
typedef struct {
    double v[64], acc[64];
    size_t n;
} trace;

/* Train placement `which` at level lv (a sigma, or for `both` a factor on
 * the matched levels in_star and hid_star) with seed 1. */
static int try_level(cmd_ctx *c, const rob_opts *o, const rob_data *d, int which, double lv,
                     double l2, double target, double in_star, double hid_star, trained *t, trace *tr)
{
    double si = which == PL_INPUT ? lv : which == PL_BOTH ? lv * in_star : 0.0;
    double sh = which == PL_HIDDEN ? lv : which == PL_BOTH ? lv * hid_star : 0.0;
    int st = train_one(c, o, d, si, sh, l2, 1, t);
    if (st) return st;
    char what[128];
    snprintf(what, sizeof what, "search %s %s %.4g", pl_names[which], which == PL_BOTH ? "factor" : "sigma",
             lv);
    note_model(c, what, t, target);
    if (tr->n < 64) {
        tr->v[tr->n] = lv;
        tr->acc[tr->n] = t->val_corr;
        tr->n++;
    }
    return 0;
}

/* The largest noise level whose validation correlation reaches the
 * target.  Input and hidden: the grid upwards until a level fails (or,
 * when the lowest fails, halving it), then bisection (geometric) between
 * the largest level that passed and the smallest that failed.  Both: a
 * factor on the two matched levels, from 1 downwards until one passes,
 * then the same bisection.  The model of the chosen level (seed 1) is
 * kept in *best for reuse. */
static int search_level(cmd_ctx *c, const rob_opts *o, const rob_data *d, int which, double l2,
                        double target, double in_star, double hid_star, double *chosen,
                        trained *best, trace *tr)
{
    static const double factors[] = {1.0, 0.7, 0.5, 0.35, 0.25, 0.125};
    double pass = NAN, fail = NAN;
    memset(best, 0, sizeof *best);
    int st = 0;
    for (int phase = 0; phase < 3 && !st; phase++) {
        long ntry = phase == 0 ? (which == PL_BOTH ? 6 : o->ngrid) : phase == 1 ? 3 : o->search_steps;
        for (long i = 0; i < ntry; i++) {
            double lv;
            if (phase == 0) lv = which == PL_BOTH ? factors[i] : o->grid[i];
            else if (phase == 1) {
                /* Even the lowest grid level costs too much: go lower. */
                if (which == PL_BOTH || !isnan(pass)) break;
                lv = o->grid[0] / pow(2.0, (double)(i + 1));
            } else {
                if (isnan(pass) || isnan(fail)) break;
                lv = sqrt(pass * fail);
            }
            trained t;
            if ((st = try_level(c, o, d, which, lv, l2, target, in_star, hid_star, &t, tr))) break;
            int ok = t.val_corr >= target;
            if (ok && (isnan(pass) || lv > pass)) {
                caimg_ann_free(best->m);
                *best = t;
                pass = lv;
            } else {
                if (!ok && (isnan(fail) || lv < fail)) fail = lv;
                caimg_ann_free(t.m);
            }
            /* The grid stops at the first failure (input, hidden) or the
             * first success (both, searched downwards). */
            if (phase == 0 && (which == PL_BOTH ? ok : !ok)) break;
            if (phase == 1 && ok) break;
        }
    }
    if (st) return st;
    if (isnan(pass)) {
        double lv = which == PL_BOTH ? factors[5] : o->grid[0] / 8.0;
        caimg_warn("%s noise: no level tried keeps the validation correlation at %.4f or more; using "
                   "the smallest tried, %g", pl_names[which], target, lv);
        if ((st = try_level(c, o, d, which, lv, l2, target, in_star, hid_star, best, tr))) return st;
        pass = lv;
    } else if (isnan(fail) && which != PL_BOTH) {
        /* (Both at factor 1 is each noise at its own matched level: the
         * most the design allows.) */
        caimg_warn("%s noise: every level tried, up to %g, keeps the validation correlation at %.4f or "
                   "more; using %g (extend --sigma-grid for stronger noise)", pl_names[which], pass,
                   target, pass);
    }
    *chosen = pass;
    return 0;
}

/* ---- attacks of one model ---------------------------------------------------------- */

enum { CV_RAND_PIX = 0, CV_PGD_PIX, CV_PGD_DEC, CV_RAND_FEAT, CV_PGD_FEAT, CV_EOT1, CV_EOT2, NCV };

typedef struct {
    caimg_attack_plan *plan;
    caimg_attack_curve cv[NCV];
    int have[NCV];
    caimg_attack_check *checks;
    size_t nchecks, nfail;
    double range[2];
} attacked;

static void attacked_free(attacked *a)
{
    for (int k = 0; k < NCV; k++) caimg_attack_curve_clear(&a->cv[k]);
    caimg_attack_plan_destroy(a->plan);
    free(a->checks);
    memset(a, 0, sizeof *a);
}

static int attack_model(cmd_ctx *c, const rob_opts *o, const rob_data *d, const caimg_ann *m,
                        size_t nimg, attacked *a)
{
    memset(a, 0, sizeof *a);
    caimg_attack_setup su;
    caimg_attack_setup_init(&su);
    double lo, hi;
    caimg_ann_get_input_range(m, &lo, &hi);
    /* Test images beyond the training extremes are valid stimuli too. */
    for (size_t i = 0; i < nimg * d->insz; i++) {
        if (d->xte[i] < lo) lo = d->xte[i];
        if (d->xte[i] > hi) hi = d->xte[i];
    }
    su.lo = a->range[0] = lo;
    su.hi = a->range[1] = hi;
    su.eval_samples = (size_t)o->eval_samples;
    su.decoder = (caimg_attack_decoder_type)o->decoder;
    su.feature_layer = caimg_ann_layer_find(m, o->feature_layer);
    su.seed = c->seed_given ? c->seed : 1;
    a->plan = caimg_attack_plan_create(m, d->xte, nimg, &su);
    if (!a->plan) return CAIMG_EFORMAT;
    caimg_attack_opts base;
    caimg_attack_opts_init(&base);
    base.steps = (size_t)o->steps;
    base.eot = (size_t)o->eot;
    base.seed = c->seed_given ? c->seed : 1;
    int st = 0;
    double mid = 0.0;
    for (int k = 0; k < NCV && !st; k++) {
        caimg_attack_opts x = base;
        const double *b = o->eps;
        size_t nb = (size_t)o->neps;
        switch (k) {
        case CV_RAND_PIX: x.method = CAIMG_ATTACK_RANDOM; break;
        case CV_PGD_PIX: break;
        case CV_PGD_DEC:
            if (!o->decoder_attack) continue;
            x.objective = CAIMG_ATTACK_DECODER;
            break;
        case CV_RAND_FEAT:
        case CV_PGD_FEAT:
            x.budget = CAIMG_ATTACK_FEATURE;
            if (k == CV_RAND_FEAT) x.method = CAIMG_ATTACK_RANDOM;
            b = o->feps;
            nb = (size_t)o->nfeps;
            break;
        case CV_EOT1:
        case CV_EOT2: {
            if (!caimg_attack_plan_noisy(a->plan)) continue;
            /* The middle nonzero budget. */
            double nz[MAXLIST];
            int q = 0;
            for (int i = 0; i < o->neps; i++) if (o->eps[i] > 0) nz[q++] = o->eps[i];
            if (!q) continue;
            for (int i = 1; i < q; i++)
                for (int j = i; j > 0 && nz[j] < nz[j - 1]; j--) { double t = nz[j]; nz[j] = nz[j - 1]; nz[j - 1] = t; }
            mid = nz[(q - 1) / 2];
            b = &mid;
            nb = 1;
            x.eot = k == CV_EOT1 ? 1 : 2 * (size_t)o->eot;
            break;
        }
        }
        st = caimg_attack_curve_run(a->plan, &x, b, nb, 0, &a->cv[k]);
        if (!st) a->have[k] = 1;
    }
    if (st) return st;
    caimg_attack_curve list[NCV];
    size_t nl = 0;
    for (int k = 0; k < NCV; k++)
        if (a->have[k]) list[nl++] = a->cv[k];
    st = caimg_attack_checks(a->plan, list, nl, o->tolerance, &a->checks, &a->nchecks);
    for (size_t i = 0; !st && i < a->nchecks; i++) a->nfail += !a->checks[i].status;
    return st;
}

/* ---- summaries ------------------------------------------------------------------------ */

typedef struct {
    int curve;
    int metric;                /* 0 rel_change, 1 decode_acc, 2 corr */
    const char *title, *short_title;
} summary_def;

static const summary_def summaries[] = {
    {CV_PGD_PIX, 0, "PGD, L-inf pixel budget: relative response change", "PGD pixel: response change"},
    {CV_RAND_PIX, 0, "random, L-inf pixel budget: relative response change", "random pixel: response change"},
    {CV_PGD_DEC, 1, "PGD on the decoder, L-inf pixel budget: robust decoding accuracy",
     "PGD pixel: decoding accuracy"},
    {CV_PGD_FEAT, 0, "PGD, feature-space budget: relative response change", "PGD feature: response change"},
    {CV_RAND_FEAT, 0, "random, feature-space budget: relative response change",
     "random feature: response change"},
};
#define NSUM (sizeof summaries / sizeof summaries[0])

static double pick(const caimg_attack_result *r, int metric)
{
    return metric == 0 ? r->rel_change : metric == 1 ? r->decode_acc : r->corr;
}

static void mean_sd(const double *v, size_t n, double *m, double *s)
{
    double a = 0, b = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) if (!isnan(v[i])) { a += v[i]; k++; }
    *m = k ? a / (double)k : NAN;
    for (size_t i = 0; i < n; i++) if (!isnan(v[i])) b += (v[i] - *m) * (v[i] - *m);
    *s = k > 1 ? sqrt(b / (double)(k - 1)) : (k ? 0.0 : NAN);
}

static void print_pm(FILE *fp, double m, double s, int width)
{
    char buf[64];
    if (isnan(m)) snprintf(buf, sizeof buf, "-");
    else snprintf(buf, sizeof buf, "%.3f+-%.3f", m, s);
    fprintf(fp, " %*s", width, buf);
}

/* ---- the experiment ---------------------------------------------------------------------- */

static int run(cmd_ctx *c, rob_opts *o)
{
    rob_data d;
    int st = load_data(o, &d);
    if (st) return st;
    trained *models = NULL;      /* [NPL][seeds] */
    attacked *att = NULL;
    caimg_h5 *out = NULL;
    caimg_outfile *tsvf = NULL, *plotf = NULL;
    char *svg = NULL;
    trained cache[NPL];
    memset(cache, 0, sizeof cache);
    trace l2tr = {{0}, {0}, 0}, tr[NPL];
    memset(tr, 0, sizeof tr);
    const size_t S = (size_t)o->seeds;
    size_t nimg = o->images > 0 && (size_t)o->images < d.nte ? (size_t)o->images : d.nte;

    /* The hidden and feature layers must exist in the architecture. */
    {
        caimg_ann *probe = caimg_ann_create(d.arch, d.C, d.H, d.W, d.N, 1);
        if (!probe) { st = CAIMG_EINVAL; goto done; }
        int lh = caimg_ann_layer_find(probe, o->hidden);
        int lf = caimg_ann_layer_find(probe, o->feature_layer);
        size_t nl = caimg_ann_nlayers(probe);
        caimg_ann_free(probe);
        if (lh <= 0 || (size_t)lh + 1 >= nl) {
            st = caimg_error(CAIMG_EINVAL, "--hidden: %s has no hidden layer '%s'", o->model, o->hidden);
            goto done;
        }
        if (lf <= 0 || (size_t)lf + 1 >= nl) {
            st = caimg_error(CAIMG_EINVAL, "--feature-layer: %s has no hidden layer '%s'", o->model,
                             o->feature_layer);
            goto done;
        }
    }
    cmd_note(c, "%zu training stimuli (%zu for validation), %zu test stimuli (%zu attacked), %zu neurons",
             d.ntr, d.nval, d.nte, nimg, d.N);

    /* ---- 1. the no-noise reference, its weight decay tuned ---- */
    double l2 = o->l2, ref = NAN;
    if (isnan(l2)) {
        for (int i = 0; i < o->nl2; i++) {
            trained t;
            if ((st = train_one(c, o, &d, 0, 0, o->l2grid[i], 1, &t))) goto done;
            char what[64];
            snprintf(what, sizeof what, "no noise, l2 %g", o->l2grid[i]);
            note_model(c, what, &t, NAN);
            l2tr.v[l2tr.n] = o->l2grid[i];
            l2tr.acc[l2tr.n++] = t.val_corr;
            if (isnan(ref) || t.val_corr > ref) {
                ref = t.val_corr;
                l2 = o->l2grid[i];
                caimg_ann_free(cache[PL_NONE].m);
                cache[PL_NONE] = t;
            } else {
                caimg_ann_free(t.m);
            }
        }
    } else {
        if ((st = train_one(c, o, &d, 0, 0, l2, 1, &cache[PL_NONE]))) goto done;
        note_model(c, "no noise", &cache[PL_NONE], NAN);
        ref = cache[PL_NONE].val_corr;
    }
    /* A reference that predicts nothing leaves nothing to match: say so
     * (the search still runs, and the table shows every accuracy). */
    const double target = ref - o->drop * fabs(ref);
    if (!(ref >= 0.05))
        caimg_warn("the no-noise model's validation correlation is only %.4f: it barely predicts the "
                   "held-out responses, so matching noise levels on accuracy is not meaningful and the "
                   "levels found are close to arbitrary", ref);
    cmd_note(c, "weight decay %g; reference validation correlation %.4f; noisy models must keep >= %.4f",
             l2, ref, target);

    /* ---- 2. matched noise levels ---- */
    double sig[NPL] = {0, NAN, NAN, NAN};
    int need_in = o->want[PL_INPUT] || o->want[PL_BOTH], need_hid = o->want[PL_HIDDEN] || o->want[PL_BOTH];
    if (need_in) {
        if (!isnan(o->sig_in)) sig[PL_INPUT] = o->sig_in;
        else if ((st = search_level(c, o, &d, PL_INPUT, l2, target, 0, 0, &sig[PL_INPUT], &cache[PL_INPUT],
                                    &tr[PL_INPUT])))
            goto done;
    }
    if (need_hid) {
        if (!isnan(o->sig_hid)) sig[PL_HIDDEN] = o->sig_hid;
        else if ((st = search_level(c, o, &d, PL_HIDDEN, l2, target, 0, 0, &sig[PL_HIDDEN],
                                    &cache[PL_HIDDEN], &tr[PL_HIDDEN])))
            goto done;
    }
    double factor = NAN;
    if (o->want[PL_BOTH]) {
        if (!isnan(o->both)) factor = o->both;
        else if ((st = search_level(c, o, &d, PL_BOTH, l2, target, sig[PL_INPUT], sig[PL_HIDDEN], &factor,
                                    &cache[PL_BOTH], &tr[PL_BOTH])))
            goto done;
    }
    double s_in[NPL] = {0, sig[PL_INPUT], 0, 0}, s_hid[NPL] = {0, 0, sig[PL_HIDDEN], 0};
    if (o->want[PL_BOTH]) {
        s_in[PL_BOTH] = factor * sig[PL_INPUT];
        s_hid[PL_BOTH] = factor * sig[PL_HIDDEN];
    }

    /* ---- 3. every placement and seed: train (or reuse), attack ---- */
    models = calloc(NPL * S, sizeof *models);
    att = calloc(NPL * S, sizeof *att);
    if (!models || !att) { st = caimg_error(CAIMG_ENOMEM, "out of memory"); goto done; }
    for (int p = 0; p < NPL; p++) {
        if (!o->want[p]) continue;
        for (size_t s = 0; s < S; s++) {
            trained *t = &models[p * S + s];
            /* Seed 1 at the chosen level was trained by the search. */
            if (s == 0 && cache[p].m && cache[p].sig_in == s_in[p] && cache[p].sig_hid == s_hid[p] &&
                cache[p].l2 == l2) {
                *t = cache[p];
                cache[p].m = NULL;
            } else if ((st = train_one(c, o, &d, s_in[p], s_hid[p], l2, s + 1, t))) {
                goto done;
            }
            char what[96];
            snprintf(what, sizeof what, "%s seed %zu", pl_names[p], s + 1);
            note_model(c, what, t, NAN);
            double t0 = cmd_seconds();
            if ((st = attack_model(c, o, &d, t->m, nimg, &att[p * S + s]))) goto done;
            cmd_note(c, "%s seed %zu: attacks %.1f s, %zu of %zu sanity checks failed", pl_names[p], s + 1,
                     cmd_seconds() - t0, att[p * S + s].nfail, att[p * S + s].nchecks);
        }
    }

    /* ---- 4. the summary table ---- */
    FILE *fp = stdout;
    fprintf(fp, "caimg robustness: %s, %zu seeds, %zu test images attacked; hidden layer %s, feature "
                "layer %s; weight decay %g\n", o->model, S, nimg, o->hidden, o->feature_layer, l2);
    fprintf(fp, "noise levels: matched so that validation correlation >= %.4f = %.4f (no noise) - %g x "
                "|%.4f|; relative to each unit's s.d.\n\n", target, ref, o->drop, ref);
    fprintf(fp, "%-9s %8s %8s %15s %15s %8s\n", "placement", "sig_in", "sig_hid", "val_corr",
            "test_corr", "failed");
    for (int p = 0; p < NPL; p++) {
        if (!o->want[p]) continue;
        double v[64], w[64], mv, sv, mt, stt;
        size_t nf = 0, ncheck = 0;
        for (size_t s = 0; s < S && s < 64; s++) {
            v[s] = models[p * S + s].val_corr;
            w[s] = models[p * S + s].test_corr;
            nf += att[p * S + s].nfail;
            ncheck += att[p * S + s].nchecks;
        }
        mean_sd(v, S < 64 ? S : 64, &mv, &sv);
        mean_sd(w, S < 64 ? S : 64, &mt, &stt);
        fprintf(fp, "%-9s %8.4g %8.4g", pl_names[p], s_in[p], s_hid[p]);
        print_pm(fp, mv, sv, 15);
        print_pm(fp, mt, stt, 15);
        fprintf(fp, " %4zu/%-3zu\n", nf, ncheck);
    }
    for (size_t q = 0; q < NSUM; q++) {
        const summary_def *sd = &summaries[q];
        if (sd->curve == CV_PGD_DEC && !o->decoder_attack) continue;
        const int feat = sd->curve == CV_PGD_FEAT || sd->curve == CV_RAND_FEAT;
        const double *b = feat ? o->feps : o->eps;
        int nb = feat ? o->nfeps : o->neps;
        fprintf(fp, "\n%s (mean +- s.d. over seeds)\n%-9s", sd->title, "placement");
        for (int k = 0; k < nb; k++) {
            char h[32];
            snprintf(h, sizeof h, "%s=%g", feat ? "rho" : "eps", b[k]);
            fprintf(fp, " %13s", h);
        }
        fputc('\n', fp);
        for (int p = 0; p < NPL; p++) {
            if (!o->want[p]) continue;
            fprintf(fp, "%-9s", pl_names[p]);
            for (int k = 0; k < nb; k++) {
                double v[64], m, s;
                for (size_t i = 0; i < S && i < 64; i++) {
                    const attacked *a = &att[p * S + i];
                    v[i] = a->have[sd->curve] ? pick(&a->cv[sd->curve].res[k], sd->metric) : NAN;
                }
                mean_sd(v, S < 64 ? S : 64, &m, &s);
                print_pm(fp, m, s, 13);
            }
            fputc('\n', fp);
        }
    }
    /* EOT convergence: PGD at the middle pixel budget with 1, M and 2M
     * noise draws per gradient (noisy placements). */
    for (int p = 0, first = 1; p < NPL; p++) {
        if (!o->want[p] || !att[p * S].have[CV_EOT1]) continue;
        const double b = att[p * S].cv[CV_EOT1].res[0].budget;
        long k = -1;
        for (int i = 0; i < o->neps; i++) if (o->eps[i] == b) k = i;
        if (k < 0) continue;
        if (first) {
            char h1[32], h2[32];
            snprintf(h1, sizeof h1, "M=%ld", o->eot);
            snprintf(h2, sizeof h2, "M=%ld", 2 * o->eot);
            fprintf(fp, "\nEOT convergence: PGD relative response change at eps=%g with M noise draws "
                        "per gradient\n%-9s %13s %13s %13s\n", b, "placement", "M=1", h1, h2);
            first = 0;
        }
        double v1[64], vm[64], v2[64], m1, s1, mm, sm, m2, s2;
        for (size_t i = 0; i < S && i < 64; i++) {
            v1[i] = att[p * S + i].cv[CV_EOT1].res[0].rel_change;
            vm[i] = att[p * S + i].cv[CV_PGD_PIX].res[k].rel_change;
            v2[i] = att[p * S + i].cv[CV_EOT2].res[0].rel_change;
        }
        mean_sd(v1, S < 64 ? S : 64, &m1, &s1);
        mean_sd(vm, S < 64 ? S : 64, &mm, &sm);
        mean_sd(v2, S < 64 ? S : 64, &m2, &s2);
        fprintf(fp, "%-9s", pl_names[p]);
        print_pm(fp, m1, s1, 13);
        print_pm(fp, mm, sm, 13);
        print_pm(fp, m2, s2, 13);
        fputc('\n', fp);
    }
    {
        int any = 0;
        for (int p = 0; p < NPL; p++)
            for (size_t s = 0; s < S; s++)
                if (o->want[p] && att[p * S + s].nfail) any = 1;
        if (any) {
            fprintf(fp, "\nfailed sanity checks:\n");
            for (int p = 0; p < NPL; p++)
                for (size_t s = 0; o->want[p] && s < S; s++)
                    for (size_t i = 0; i < att[p * S + s].nchecks; i++)
                        if (!att[p * S + s].checks[i].status)
                            fprintf(fp, "  %s seed %zu: %s: %s\n", pl_names[p], s + 1,
                                    att[p * S + s].checks[i].name, att[p * S + s].checks[i].detail);
        } else {
            fprintf(fp, "\nall sanity checks passed (budget 0 = clean, growth with budget, PGD >= FGSM/random, "
                        "EOT >= single sample, EOT converged)\n");
        }
    }
    fflush(fp);

    /* ---- 5. files ---- */
    if (o->plot) {
        caimg_attack_panel panels[NSUM];
        caimg_attack_line lines[NSUM][NPL];
        double ys[NSUM][NPL][MAXLIST];
        size_t np = 0;
        for (size_t q = 0; q < NSUM; q++) {
            const summary_def *sd = &summaries[q];
            if (sd->curve == CV_PGD_DEC && !o->decoder_attack) continue;
            if (sd->curve == CV_RAND_FEAT || sd->curve == CV_RAND_PIX) continue;
            const int feat = sd->curve == CV_PGD_FEAT;
            size_t nl = 0;
            for (int p = 0; p < NPL; p++) {
                if (!o->want[p]) continue;
                int nb = feat ? o->nfeps : o->neps;
                for (int k = 0; k < nb; k++) {
                    double v[64], s;
                    for (size_t i = 0; i < S && i < 64; i++)
                        v[i] = pick(&att[p * S + i].cv[sd->curve].res[k], sd->metric);
                    mean_sd(v, S < 64 ? S : 64, &ys[q][p][k], &s);
                }
                lines[q][nl].label = pl_names[p];
                lines[q][nl].x = feat ? o->feps : o->eps;
                lines[q][nl].y = ys[q][p];
                lines[q][nl].n = (size_t)nb;
                lines[q][nl].color = NULL;
                nl++;
            }
            caimg_attack_panel *pa = &panels[np++];
            memset(pa, 0, sizeof *pa);
            pa->title = sd->short_title;
            pa->xlabel = feat ? "feature budget (relative L2)" : "L-inf budget (fraction of range)";
            pa->ylabel = sd->metric == 1 ? "robust decoding accuracy" : "relative response change";
            pa->lines = lines[q];
            pa->nlines = nl;
            if (sd->metric == 1) { pa->ymin = 0; pa->ymax = 1.05; }
        }
        char title[512];
        snprintf(title, sizeof title, "caimg robustness %s: noise placement, mean over %zu seeds", o->model, S);
        svg = caimg_attack_svg_panels(panels, np, np, title);
        if (!svg) { st = CAIMG_ENOMEM; goto done; }
        plotf = caimg_outfile_open(o->plot);
        if (!plotf) { st = CAIMG_EIO; goto done; }
        fputs(svg, caimg_outfile_fp(plotf));
    }
    if (o->tsv) {
        tsvf = caimg_outfile_open(o->tsv);
        if (!tsvf) { st = CAIMG_EIO; goto done; }
        static const char *const names[] = {"placement", "seed", "sigma_input", "sigma_hidden",
                                            "val_corr", "test_corr"};
        int header = 1;
        for (int p = 0; p < NPL; p++)
            for (size_t s = 0; o->want[p] && s < S; s++) {
                const trained *t = &models[p * S + s];
                char v[6][32];
                snprintf(v[0], 32, "%s", pl_names[p]);
                snprintf(v[1], 32, "%zu", s + 1);
                snprintf(v[2], 32, "%g", t->sig_in);
                snprintf(v[3], 32, "%g", t->sig_hid);
                snprintf(v[4], 32, "%.6g", t->val_corr);
                snprintf(v[5], 32, "%.6g", t->test_corr);
                const char *vals[6] = {v[0], v[1], v[2], v[3], v[4], v[5]};
                caimg_attack_curve list[NCV];
                size_t nl = 0;
                for (int k = 0; k < NCV; k++)
                    if (att[p * S + s].have[k]) list[nl++] = att[p * S + s].cv[k];
                caimg_attack_write_tsv(caimg_outfile_fp(tsvf), att[p * S + s].plan, list, nl, header, names,
                                       vals, 6);
                header = 0;
            }
    }
    out = caimg_h5_create(c->output, "robustness", c->cmdline);
    if (!out) { st = CAIMG_EIO; goto done; }
    st = caimg_h5_add_input(out, o->model, 0);
    if (!st) st = caimg_h5_add_input(out, o->stimuli, 0);
    caimg_h5_param(out, "hidden", "%s", o->hidden);
    caimg_h5_param(out, "feature-layer", "%s", o->feature_layer);
    caimg_h5_param_double(out, "accuracy-drop", o->drop);
    caimg_h5_param_double(out, "l2", l2);
    caimg_h5_param(out, "seeds", "%ld", o->seeds);
    ann_train_args_record(&o->train, out);
    caimg_h5_param(out, "steps", "%ld", o->steps);
    caimg_h5_param(out, "eot", "%ld", o->eot);
    caimg_h5_param(out, "eval-samples", "%ld", o->eval_samples);
    caimg_h5_param(out, "seed", "%lu", c->seed_given ? c->seed : 1UL);
    const char *G = "/robustness";
    if (!st) st = caimg_h5_mkgroup(out, G);
    if (!st) st = caimg_h5_set_attr_string(out, G, "hidden_layer", o->hidden);
    if (!st) st = caimg_h5_set_attr_string(out, G, "feature_layer", o->feature_layer);
    if (!st) st = caimg_h5_set_attr_double(out, G, "l2", l2);
    if (!st) st = caimg_h5_set_attr_double(out, G, "accuracy_drop", o->drop);
    if (!st) st = caimg_h5_set_attr_double(out, G, "reference_val_corr", ref);
    if (!st) st = caimg_h5_set_attr_double(out, G, "target_val_corr", target);
    if (!st) st = caimg_h5_set_attr_long(out, G, "seeds", (long)S);
    if (!st) st = caimg_h5_set_attr_long(out, G, "images", (long)nimg);
    if (!st && l2tr.n) {
        st = caimg_h5_write(out, "/robustness/l2_search/l2", CAIMG_DT_F64, 1, &l2tr.n, l2tr.v);
        if (!st) st = caimg_h5_write(out, "/robustness/l2_search/val_corr", CAIMG_DT_F64, 1, &l2tr.n, l2tr.acc);
    }
    if (!st) {
        size_t nb = (size_t)o->neps, nfb = (size_t)o->nfeps;
        st = caimg_h5_write(out, "/robustness/eps", CAIMG_DT_F64, 1, &nb, o->eps);
        if (!st) st = caimg_h5_write(out, "/robustness/feature_eps", CAIMG_DT_F64, 1, &nfb, o->feps);
    }
    for (int p = 0; p < NPL && !st; p++) {
        if (!o->want[p]) continue;
        char g[256], name[512];
        snprintf(g, sizeof g, "%s/%s", G, pl_names[p]);
        st = caimg_h5_mkgroup(out, g);
        if (!st) st = caimg_h5_set_attr_double(out, g, "sigma_input", s_in[p]);
        if (!st) st = caimg_h5_set_attr_double(out, g, "sigma_hidden", s_hid[p]);
        if (!st && tr[p].n) {
            snprintf(name, sizeof name, "%s/search/level", g);
            st = caimg_h5_write(out, name, CAIMG_DT_F64, 1, &tr[p].n, tr[p].v);
            snprintf(name, sizeof name, "%s/search/val_corr", g);
            if (!st) st = caimg_h5_write(out, name, CAIMG_DT_F64, 1, &tr[p].n, tr[p].acc);
        }
        /* Per-budget summaries: mean and s.d. over seeds. */
        for (size_t q = 0; q < NSUM && !st; q++) {
            const summary_def *sd = &summaries[q];
            if (sd->curve == CV_PGD_DEC && !o->decoder_attack) continue;
            const int feat = sd->curve == CV_PGD_FEAT || sd->curve == CV_RAND_FEAT;
            size_t nb = (size_t)(feat ? o->nfeps : o->neps);
            double mv[MAXLIST], sv[MAXLIST];
            for (size_t k = 0; k < nb; k++) {
                double v[64];
                for (size_t i = 0; i < S && i < 64; i++)
                    v[i] = pick(&att[p * S + i].cv[sd->curve].res[k], sd->metric);
                mean_sd(v, S < 64 ? S : 64, &mv[k], &sv[k]);
            }
            char key[96];
            snprintf(key, sizeof key, "%s-%s", caimg_attack_method_name(att[p * S].cv[sd->curve].opts.method),
                     feat ? "feature" : "linf");
            const char *what = sd->metric == 0 ? "rel_change" : sd->metric == 1 ? "decode_acc" : "corr";
            if (sd->curve == CV_PGD_DEC) snprintf(key, sizeof key, "pgd-linf-decoder");
            snprintf(name, sizeof name, "%s/summary/%s/%s_mean", g, key, what);
            st = caimg_h5_write(out, name, CAIMG_DT_F64, 1, &nb, mv);
            snprintf(name, sizeof name, "%s/summary/%s/%s_sd", g, key, what);
            if (!st) st = caimg_h5_write(out, name, CAIMG_DT_F64, 1, &nb, sv);
        }
        for (size_t s = 0; s < S && !st; s++) {
            const trained *t = &models[p * S + s];
            char gs[300];
            snprintf(gs, sizeof gs, "%s/seed%zu", g, s + 1);
            st = caimg_h5_mkgroup(out, gs);
            if (!st) st = caimg_h5_set_attr_double(out, gs, "val_corr", t->val_corr);
            if (!st) st = caimg_h5_set_attr_double(out, gs, "test_corr", t->test_corr);
            if (!st) st = caimg_h5_set_attr_long(out, gs, "epochs", (long)t->epochs);
            if (!st) st = caimg_h5_set_attr_long(out, gs, "best_epoch", (long)t->best_epoch);
            snprintf(name, sizeof name, "%s/model", gs);
            if (!st) st = caimg_ann_save(t->m, out, name);
            caimg_attack_curve list[NCV];
            size_t nl = 0;
            for (int k = 0; k < NCV; k++)
                if (att[p * S + s].have[k]) list[nl++] = att[p * S + s].cv[k];
            snprintf(name, sizeof name, "%s/attack", gs);
            if (!st)
                st = caimg_attack_save(out, name, att[p * S + s].plan, list, nl, att[p * S + s].checks,
                                       att[p * S + s].nchecks);
        }
    }
    if (!st) st = ann_commit_outputs(&out, &tsvf, &plotf);
done:
    caimg_h5_close(out);
    caimg_outfile_abort(tsvf);
    caimg_outfile_abort(plotf);
    free(svg);
    for (int p = 0; p < NPL; p++) caimg_ann_free(cache[p].m);
    if (models)
        for (size_t i = 0; i < NPL * S; i++) caimg_ann_free(models[i].m);
    if (att)
        for (size_t i = 0; i < NPL * S; i++) attacked_free(&att[i]);
    free(models);
    free(att);
    data_free(&d);
    return st;
}

static int parse_list(cmd_ctx *c, const char *opt, const char *s, double *out, double lo)
{
    int n = cmd_parse_double_list(c, opt, s, out, MAXLIST);
    for (int k = 0; k < n; k++)
        if (!(out[k] >= lo)) {
            cmd_usage_error(c, "%s: %g is below %g", opt, out[k], lo);
            return -1;
        }
    return n;
}

int main_robustness(int argc, char **argv)
{
    cmd_ctx c;
    int rc = cmd_begin(&c, "robustness", argc, argv, longopts);
    if (rc) return rc;
    rob_opts o;
    memset(&o, 0, sizeof o);
    for (int p = 0; p < NPL; p++) o.want[p] = 1;
    o.hidden = "h1";
    o.drop = 0.05;
    const double grid0[] = {0.1, 0.2, 0.4, 0.8, 1.6, 3.2};
    memcpy(o.grid, grid0, sizeof grid0);
    o.ngrid = 6;
    o.search_steps = 2;
    const double l20[] = {1e-4, 1e-3, 1e-2};
    memcpy(o.l2grid, l20, sizeof l20);
    o.nl2 = 3;
    o.l2 = o.sig_in = o.sig_hid = o.both = NAN;
    o.seeds = 3;
    ann_train_args_init(&o.train);
    const double eps0[] = {0, 0.005, 0.01, 0.02, 0.05};
    memcpy(o.eps, eps0, sizeof eps0);
    o.neps = 5;
    const double feps0[] = {0, 0.05, 0.1, 0.2, 0.5};
    memcpy(o.feps, feps0, sizeof feps0);
    o.nfeps = 5;
    o.decoder_attack = 1;
    o.steps = 20;
    o.eot = 10;
    o.eval_samples = 32;
    o.tolerance = 0.02;
    int opt;
    while ((opt = getopt_long(c.argc, c.argv, CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        int k = cmd_common_option(&c, opt, optarg);
        if (k < 0) { rc = EXIT_USAGE; goto done; }
        if (k > 0) continue;
        switch (opt) {
        case OPT_STIMULI: o.stimuli = optarg; break;
        case OPT_HIDDEN: o.hidden = optarg; break;
        case OPT_FEATURE_LAYER: o.feature_layer = optarg; break;
        case OPT_PLACEMENTS: {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", optarg);
            memset(o.want, 0, sizeof o.want);
            int any = 0;
            for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
                int f = -1;
                for (int p = 0; p < NPL; p++) if (!strcmp(t, pl_names[p])) f = p;
                if (f < 0) {
                    rc = cmd_usage_error(&c, "--placements: '%s' is not none, input, hidden or both", t);
                    goto done;
                }
                o.want[f] = any = 1;
            }
            if (!any) { rc = cmd_usage_error(&c, "--placements: empty list"); goto done; }
            break;
        }
        case OPT_ACCURACY_DROP:
            if (cmd_parse_double(&c, "--accuracy-drop", optarg, 0, 0.99, &o.drop)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_SIGMA_GRID:
            if ((o.ngrid = parse_list(&c, "--sigma-grid", optarg, o.grid, 1e-9)) < 0) { rc = EXIT_USAGE; goto done; }
            for (int i = 1; i < o.ngrid; i++)
                if (o.grid[i] <= o.grid[i - 1]) {
                    rc = cmd_usage_error(&c, "--sigma-grid: levels must increase");
                    goto done;
                }
            break;
        case OPT_SEARCH_STEPS:
            if (cmd_parse_long(&c, "--search-steps", optarg, 0, 20, &o.search_steps)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_L2_GRID:
            if ((o.nl2 = parse_list(&c, "--l2-grid", optarg, o.l2grid, 0)) < 0) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_L2:
            if (cmd_parse_double(&c, "--l2", optarg, 0, 1e3, &o.l2)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_SIGMA_INPUT:
            if (cmd_parse_double(&c, "--sigma-input", optarg, 1e-9, 1e3, &o.sig_in)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_SIGMA_HIDDEN:
            if (cmd_parse_double(&c, "--sigma-hidden", optarg, 1e-9, 1e3, &o.sig_hid)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_BOTH_FACTOR:
            if (cmd_parse_double(&c, "--both-factor", optarg, 1e-6, 10, &o.both)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_SEEDS:
            if (cmd_parse_long(&c, "--seeds", optarg, 1, 64, &o.seeds)) { rc = EXIT_USAGE; goto done; }
            break;
        case ANN_OPT_BATCH: case ANN_OPT_LR: case ANN_OPT_EPOCHS: case ANN_OPT_PATIENCE:
        case ANN_OPT_EMA: case ANN_OPT_LR_DECAY:
            if (ann_train_args_parse(&c, &o.train, opt, optarg)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_EPS:
            if ((o.neps = parse_list(&c, "--eps", optarg, o.eps, 0)) < 0) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_FEATURE_EPS:
            if ((o.nfeps = parse_list(&c, "--feature-eps", optarg, o.feps, 0)) < 0) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_NO_DECODER: o.decoder_attack = 0; break;
        case OPT_DECODER:
            if ((o.decoder = caimg_attack_decoder_parse(optarg)) < 0) {
                rc = cmd_usage_error(&c, "--decoder: '%s' is not centroid or corr", optarg);
                goto done;
            }
            break;
        case OPT_STEPS:
            if (cmd_parse_long(&c, "--steps", optarg, 1, 100000, &o.steps)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_EOT:
            if (cmd_parse_long(&c, "--eot", optarg, 1, 100000, &o.eot)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_EVAL_SAMPLES:
            if (cmd_parse_long(&c, "--eval-samples", optarg, 1, 1000000, &o.eval_samples)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_IMAGES:
            if (cmd_parse_long(&c, "--images", optarg, 2, 100000000, &o.images)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_TOLERANCE:
            if (cmd_parse_double(&c, "--tolerance", optarg, 0, 10, &o.tolerance)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_TSV: o.tsv = optarg; break;
        case OPT_PLOT: o.plot = optarg; break;
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
    if (!o.stimuli) { rc = cmd_usage_error(&c, "--stimuli IMAGES.tif is required"); goto done; }
    if (!c.output) { rc = cmd_usage_error(&c, "no output: give -o ROBUSTNESS.h5"); goto done; }
    if ((rc = cmd_check_output(&c, c.output)) || (rc = cmd_check_output(&c, o.tsv))
        || (rc = cmd_check_output(&c, o.plot)))
        goto done;
    if (o.neps > MAXLIST || o.nfeps > MAXLIST) { rc = cmd_usage_error(&c, "too many budgets"); goto done; }
    o.model = c.argv[optind];
    {
        /* Training and attacking take minutes: refuse outputs that would
         * destroy an input before, not when the results are written. */
        const char *const ins[2] = {o.model, o.stimuli}, *const outs[3] = {c.output, o.tsv, o.plot};
        for (int k = 0; k < 3 && !rc; k++) rc = cmd_check_inputs(&c, outs[k], ins, 2);
        if (rc) goto done;
    }
    if (!o.feature_layer) o.feature_layer = o.hidden;
    rc = run(&c, &o);
    if (rc) rc = cmd_fail(&c, rc);
done:
    cmd_end(&c);
    return rc;
}
