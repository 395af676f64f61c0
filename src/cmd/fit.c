/* fit.c -- caimg fit: train a noisy neural network that predicts each
 * neuron's response to an image, and evaluate it on held-out stimuli.
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
#include "caimg/resp.h"
#include "caimg/tiffio.h"
#include "caimg/tsv.h"
#include "annutil.h"
#include "cmd.h"

enum {
    OPT_STIMULI = OPT_FIRST_PRIVATE, OPT_SCHEDULE, OPT_SIGNAL, OPT_WINDOW, OPT_REDUCE,
    OPT_RESPONSES, OPT_TEST_FRACTION, OPT_CROP, OPT_RESIZE, OPT_ARCH, OPT_NOISE, OPT_LOSS,
    OPT_L2, OPT_VAL_FRACTION, OPT_EVAL_SAMPLES,
    OPT_EV_THRESHOLD, OPT_ENSEMBLE
};

static const struct option longopts[] = {
    CMD_COMMON_LONGOPTS,
    {"stimuli",       required_argument, NULL, OPT_STIMULI},
    {"schedule",      required_argument, NULL, OPT_SCHEDULE},
    {"signal",        required_argument, NULL, OPT_SIGNAL},
    {"window",        required_argument, NULL, OPT_WINDOW},
    {"reduce",        required_argument, NULL, OPT_REDUCE},
    {"responses",     required_argument, NULL, OPT_RESPONSES},
    {"test-fraction", required_argument, NULL, OPT_TEST_FRACTION},
    {"crop",          required_argument, NULL, OPT_CROP},
    {"resize",        required_argument, NULL, OPT_RESIZE},
    {"arch",          required_argument, NULL, OPT_ARCH},
    {"noise",         required_argument, NULL, OPT_NOISE},
    {"loss",          required_argument, NULL, OPT_LOSS},
    {"ensemble",      required_argument, NULL, OPT_ENSEMBLE},
    ANN_TRAIN_LONGOPTS,
    {"l2",            required_argument, NULL, OPT_L2},
    {"val-fraction",  required_argument, NULL, OPT_VAL_FRACTION},
    {"eval-samples",  required_argument, NULL, OPT_EVAL_SAMPLES},
    {"ev-threshold",  required_argument, NULL, OPT_EV_THRESHOLD},
    {NULL, 0, NULL, 0}
};

static void usage(FILE *fp)
{
    fprintf(fp,
"Usage: caimg fit [options] TRACES.h5 --schedule SCHED.tsv --stimuli IMAGES.tif -o MODEL.h5\n"
"       caimg fit [options] --responses RESP.tsv|RESP.h5 --stimuli IMAGES.tif -o MODEL.h5\n"
"\n"
"Train a neural network that predicts every neuron's response to an image,\n"
"with Gaussian noise at the input and/or in hidden layers, and evaluate it\n"
"on held-out stimuli (correlation with trial averages and single trials,\n"
"FEVE).  Responses come from traces (a caimg file with /deconv/spikes or\n"
"/dff/dff) and a stimulus schedule, or from a ready response matrix.\n"
"\n"
"Data:\n"
"      --stimuli FILE      stimulus images: TIFF stack, page k = stimulus k (required)\n"
"      --schedule FILE     TSV with onset_frame, stimulus[, duration_frames]\n"
"      --signal NAME       traces [N][T] in TRACES.h5 [/deconv/spikes, else /dff/dff]\n"
"      --window OFF[:LEN]  response window after onset, in seconds [0:duration_frames,\n"
"                          or 0:0.5 without that column]\n"
"      --reduce mean|sum   response = mean or sum over the window [mean]\n"
"      --fs HZ             frame rate [the fs attribute of the traces' group]\n"
"      --responses FILE    presentations x neurons matrix instead of traces (TSV with a\n"
"                          stimulus column and optional split column, or HDF5)\n"
"      --test-fraction F   stimuli held out for testing, unless the data has a split\n"
"                          column [0.2]\n"
"      --crop Y,X,H,W      crop box in image pixels [whole image]\n"
"      --resize HxW        model input size [the cropped image size]\n"
"Model:\n"
"      --arch ARCH         preset (conv2, energy, mlp, ln), architecture text,\n"
"                          or @FILE [conv2]\n"
"      --noise LAYER=S[abs]  Gaussian noise after a named layer, sd S times the unit's\n"
"                          clean sd (or S absolute); repeatable; e.g. input=0.5,\n"
"                          h1=1 [none]\n"
"      --ensemble K        train K networks from seeds N, N+1, ... and predict\n"
"                          their mean [5]\n"
"Training:\n"
"      --loss L            auto, poisson or mse [auto: poisson if no response is\n"
"                          negative, else mse]\n"
"      --batch N           mini-batch size [64]\n"
"      --lr X              Adam learning rate [0.002]\n"
"      --epochs N          maximum epochs [200]\n"
"      --patience N        stop after N epochs without a better validation\n"
"                          correlation [10]\n"
"      --ema D             keep an average of the weights, decay D per step,\n"
"                          and validate and save it [0: off]\n"
"      --lr-decay N[:F]    when patience runs out, go back to the best weights and\n"
"                          multiply the learning rate by F [0.3], up to N times [0]\n"
"      --l2 X              weight decay [0.0001]\n"
"      --val-fraction F    training stimuli used for validation [0.1]\n"
"      --seed N            weights, noise, splits and shuffling [1]\n"
"Evaluation:\n"
"      --eval-samples K    noise draws averaged when predicting held-out stimuli\n"
"                          [0: noise off]\n"
"      --ev-threshold F    FEVE for neurons whose explainable variance fraction is\n"
"                          at least F [0.15]\n"
"\n"
"  -o, --output FILE       the model (required)\n"
"  -@, --threads N         threads [all cores]\n"
"      --config FILE       read options from section [fit] of FILE\n"
"  -q, --quiet             no progress or warnings\n"
"  -v, --verbose           report more of what was done\n"
"  -h, --help              this help\n");
}

typedef struct {
    const char *traces, *stimuli, *schedule, *signal, *responses, *arch;
    caimg_resp_window win;
    int window_given;
    double test_fraction, val_fraction, l2, ev_threshold;
    long crop[4];
    int crop_given;
    long resize[2];
    int resize_given;
    const char *noise[32];
    int nnoise;
    const char *loss;
    ann_train_args train;
    long eval_samples;
    long ensemble;
} fit_opts;

/* splitmix64: a small seeded generator for the test split. */
static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct {
    cmd_ctx *c;
    double lr;      /* the learning rate of the previous epoch */
} epoch_ctx;

/* Per-epoch lines, and a line when the learning rate drops (--lr-decay);
 * "\r" first so that they overwrite a progress line. */
static int on_epoch(const caimg_ann_epoch *e, void *ctx)
{
    epoch_ctx *ec = ctx;
    if (ec->c->quiet) return 0;
    if (e->lr != ec->lr)
        fprintf(stderr, "\rcaimg fit: back to the best weights, learning rate %g\n", e->lr);
    ec->lr = e->lr;
    fprintf(stderr, "\rcaimg fit: epoch %zu: loss %.5g, penalty %.4g, validation loss %.5g, "
                    "correlation %.4f (%.1f s)\n",
            e->epoch, e->train_loss, e->penalty, e->val_loss, e->val_corr, e->seconds);
    return 0;
}

/* The traces and their frame rate from a caimg file. */
static int read_traces(cmd_ctx *c, const char *path, const char *signal, float **tr, size_t *N,
                       size_t *T, double *fs, const char **used)
{
    caimg_h5 *f = caimg_h5_open_any(path, NULL);
    if (!f) return CAIMG_EFORMAT;
    const char *name = signal;
    if (!name) {
        if (caimg_h5_exists(f, "/deconv/spikes")) name = "/deconv/spikes";
        else if (caimg_h5_exists(f, "/dff/dff")) name = "/dff/dff";
        else {
            caimg_h5_close(f);
            return caimg_error(CAIMG_EFORMAT, "%s: no traces: neither /deconv/spikes nor /dff/dff "
                               "exists (give --signal)", path);
        }
    }
    *used = name;
    int rank;
    size_t dims[CAIMG_H5_MAXRANK];
    int st = caimg_h5_read(f, name, CAIMG_DT_F32, 2, &rank, dims, (void **)tr);
    if (st) {
        caimg_h5_close(f);
        return st;
    }
    *N = dims[0];
    *T = dims[1];
    *fs = c->fs;
    if (!(*fs > 0)) {
        /* The fs attribute lives on the group with the time axis. */
        char group[256];
        snprintf(group, sizeof group, "%s", name);
        char *slash = strrchr(group, '/');
        if (slash && slash != group) *slash = '\0';
        else strcpy(group, "/");
        double v = 0;
        if (!caimg_h5_get_attr_double(f, name, "fs", &v) && v > 0) *fs = v;
        else if (!caimg_h5_get_attr_double(f, group, "fs", &v) && v > 0) *fs = v;
    }
    caimg_h5_close(f);
    if (*N == 0 || *T == 0) return caimg_error(CAIMG_EFORMAT, "%s: %s is empty", path, name);
    if (!(*fs > 0))
        return caimg_error(CAIMG_EFORMAT, "%s: the frame rate of %s is unknown (no fs attribute); "
                           "give --fs", path, name);
    return 0;
}

static int write_eval(caimg_h5 *f, const char *g, const caimg_ann_eval *ev, size_t N)
{
    char name[128];
    int st = caimg_h5_mkgroup(f, g);
    const struct { const char *n; const double *v; } arr[] = {
        {"corr_avg", ev->corr_avg}, {"corr_trial", ev->corr_trial},
        {"ev_frac", ev->ev_frac}, {"feve", ev->feve}};
    for (size_t i = 0; !st && i < 4; i++) {
        snprintf(name, sizeof name, "%s/%s", g, arr[i].n);
        st = caimg_h5_write(f, name, CAIMG_DT_F64, 1, &N, arr[i].v);
    }
    if (!st) st = caimg_h5_set_attr_double(f, g, "mean_corr_avg", ev->mean_corr_avg);
    if (!st) st = caimg_h5_set_attr_double(f, g, "median_corr_avg", ev->median_corr_avg);
    if (!st) st = caimg_h5_set_attr_double(f, g, "mean_corr_trial", ev->mean_corr_trial);
    if (!st) st = caimg_h5_set_attr_double(f, g, "mean_feve", ev->mean_feve);
    if (!st) st = caimg_h5_set_attr_long(f, g, "n_corr_avg", (long)ev->n_corr_avg);
    if (!st) st = caimg_h5_set_attr_long(f, g, "n_corr_trial", (long)ev->n_corr_trial);
    if (!st) st = caimg_h5_set_attr_long(f, g, "n_feve", (long)ev->n_feve);
    return st;
}

/* A network of the architecture, with the preprocessing and the --noise
settings, initialised from `seed`.  Returns 0, -1 after a usage error
(a bad --noise), or an error status. */
static int new_network(cmd_ctx *c, const fit_opts *o, const char *arch, const caimg_ann_prep *prep,
                       size_t H, size_t W, size_t N, uint64_t seed, caimg_ann **out)
{
    caimg_ann *m = caimg_ann_create(arch, 1, H, W, N, seed);
    if (!m) return CAIMG_EINVAL;
    int st = caimg_ann_set_prep(m, prep);
    for (int i = 0; !st && i < o->nnoise; i++)
        if (ann_parse_noise(c, m, o->noise[i])) st = -1;
    if (st) caimg_ann_free(m);
    else *out = m;
    return st;
}

/* Everything after option parsing. */
static int run(cmd_ctx *c, const fit_opts *o)
{
    float *traces = NULL, *images = NULL, *x = NULL, *y = NULL, *wt = NULL, *xte = NULL;
    float *pred = NULL, *rte = NULL, *predtr = NULL, *rtr = NULL, *rkept = NULL;
    size_t *sid = NULL, *sidx = NULL, *ste = NULL, *str_ = NULL, *keep = NULL, *excl = NULL;
    signed char *ssplit = NULL;
    unsigned char *want = NULL;
    caimg_table *sched = NULL;
    caimg_resp *R = NULL;
    caimg_ann *m = NULL, *mk = NULL;
    caimg_h5 *out = NULL;
    char *arch = NULL;
    float *nw = NULL;
    double *memv = NULL;
    caimg_ann_history hist;
    caimg_ann_eval ev, evtr;
    memset(&hist, 0, sizeof hist);
    memset(&ev, 0, sizeof ev);
    memset(&evtr, 0, sizeof evtr);
    const char *signal_used = NULL;
    double fs = 0;
    int st = 0;

    /* ---- responses per presentation ---- */
    if (o->responses) {
        R = caimg_resp_read(o->responses);
        if (!R) { st = CAIMG_EFORMAT; goto done; }
    } else {
        size_t N = 0, T = 0;
        if ((st = read_traces(c, o->traces, o->signal, &traces, &N, &T, &fs, &signal_used))) goto done;
        sched = caimg_table_read(o->schedule);
        if (!sched) { st = CAIMG_EFORMAT; goto done; }
        char tname[1024];
        snprintf(tname, sizeof tname, "%s:%s", o->traces, signal_used);
        R = caimg_resp_from_traces(traces, N, T, fs, tname, sched, o->schedule, &o->win);
        if (!R) { st = CAIMG_EFORMAT; goto done; }
        free(traces);
        traces = NULL;
    }
    const size_t P = R->npres, N0 = R->nneur;

    /* ---- stimuli: the images of every stimulus shown ---- */
    size_t maxid = 0;
    for (size_t p = 0; p < P; p++) maxid = R->stim[p] > maxid ? R->stim[p] : maxid;
    want = calloc(maxid + 1, 1);
    sidx = malloc((maxid + 1) * sizeof *sidx);
    if (!want || !sidx) { st = caimg_error(CAIMG_ENOMEM, "out of memory"); goto done; }
    for (size_t p = 0; p < P; p++) want[R->stim[p]] = 1;
    size_t npages, ih, iw;
    if ((st = ann_read_images(o->stimuli, want, maxid + 1, &images, &npages, &ih, &iw))) goto done;
    if (maxid >= npages) {
        size_t p = 0;
        while (R->stim[p] < npages) p++;
        st = caimg_error(CAIMG_EFORMAT, "%s: presentation %zu shows stimulus %zu, which has no image: "
                         "%s has %zu pages (stimulus ids 0 to %zu)",
                         o->responses ? o->responses : o->schedule, p + 1, R->stim[p], o->stimuli,
                         npages, npages - 1);
        goto done;
    }
    size_t S = 0;
    for (size_t s = 0; s <= maxid; s++) sidx[s] = want[s] ? S++ : SIZE_MAX;
    sid = malloc(S * sizeof *sid);
    ssplit = malloc(S * sizeof *ssplit);
    if (!sid || !ssplit) { st = caimg_error(CAIMG_ENOMEM, "out of memory"); goto done; }
    for (size_t s = 0, k = 0; s <= maxid; s++) if (want[s]) sid[k++] = s;

    /* ---- train/test split by stimulus, never by presentation ---- */
    for (size_t s = 0; s < S; s++) ssplit[s] = -1;
    if (R->split) {
        for (size_t p = 0; p < P; p++) {
            size_t s = sidx[R->stim[p]];
            if (ssplit[s] >= 0 && ssplit[s] != R->split[p]) {
                st = caimg_error(CAIMG_EFORMAT, "%s: stimulus %zu is in both the train and the test "
                                 "split", o->responses, R->stim[p]);
                goto done;
            }
            ssplit[s] = R->split[p];
        }
    } else {
        for (size_t s = 0; s < S; s++) ssplit[s] = 0;
        size_t ntest = 0;
        if (o->test_fraction > 0 && S >= 3) {
            ntest = (size_t)floor(o->test_fraction * (double)S + 0.5);
            if (ntest < 1) ntest = 1;
            if (ntest > S - 2) ntest = S - 2;
        }
        size_t *perm = malloc(S * sizeof *perm);
        if (!perm) { st = caimg_error(CAIMG_ENOMEM, "out of memory"); goto done; }
        for (size_t s = 0; s < S; s++) perm[s] = s;
        uint64_t rs = c->seed_given ? c->seed : 1;
        rs ^= 0x54455354ull;                         /* "TEST" */
        for (size_t i = 0; i < ntest; i++) {
            size_t j = i + (size_t)(mix(&rs) % (uint64_t)(S - i));
            size_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
            ssplit[perm[i]] = 1;
        }
        free(perm);
    }
    size_t Str = 0, Ste = 0;
    for (size_t s = 0; s < S; s++) {
        if (ssplit[s] == 1) Ste++;
        else Str++;
    }
    if (Str < 2) {
        st = caimg_error(CAIMG_EFORMAT, "only %zu training stimuli; fitting needs at least 2", Str);
        goto done;
    }

    /* ---- neurons: drop those whose training responses cannot be fitted ---- */
    keep = malloc(N0 * sizeof *keep);
    excl = malloc(N0 * sizeof *excl);
    double *msum = calloc(Str * N0, sizeof *msum);
    size_t *mcnt = calloc(Str * N0, sizeof *mcnt);
    str_ = malloc(S * sizeof *str_);          /* stimulus -> row among training stimuli */
    if (!keep || !excl || !msum || !mcnt || !str_) {
        free(msum); free(mcnt);
        st = caimg_error(CAIMG_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t s = 0, k = 0; s < S; s++) str_[s] = ssplit[s] == 1 ? SIZE_MAX : k++;
    size_t nnan = 0, ntr_pres = 0;
    for (size_t p = 0; p < P; p++) {
        size_t row = str_[sidx[R->stim[p]]];
        for (size_t k = 0; k < N0; k++) {
            float v = R->r[p * N0 + k];
            if (isnan(v)) { nnan++; continue; }
            if (row == SIZE_MAX) continue;
            msum[row * N0 + k] += v;
            mcnt[row * N0 + k]++;
        }
        if (row != SIZE_MAX) ntr_pres++;
    }
    size_t Nk = 0, ne = 0;
    for (size_t k = 0; k < N0; k++) {
        /* Variance of the per-stimulus means: what the model has to fit. */
        double s1 = 0, s2 = 0;
        size_t n = 0;
        for (size_t r = 0; r < Str; r++) {
            if (!mcnt[r * N0 + k]) continue;
            double v = msum[r * N0 + k] / (double)mcnt[r * N0 + k];
            s1 += v; s2 += v * v; n++;
        }
        double var = n >= 2 ? (s2 - s1 * s1 / (double)n) / (double)(n - 1) : 0.0;
        if (n >= 2 && var > 1e-12 * (s2 / (double)n + 1e-30)) keep[Nk++] = k;
        else excl[ne++] = k;
    }
    if (nnan)
        caimg_warn("%zu of %zu responses are NaN; they are treated as missing (left out of "
                   "training and evaluation)", nnan, P * N0);
    if (ne && Nk) {
        char list[256] = "";
        for (size_t i = 0; i < ne && strlen(list) < 200; i++) {
            size_t u = strlen(list);
            if (R->names) snprintf(list + u, sizeof list - u, "%s%s", i ? ", " : "", R->names[excl[i]]);
            else snprintf(list + u, sizeof list - u, "%s%zu", i ? ", " : "", excl[i]);
        }
        caimg_warn("%zu neuron%s excluded: no variance across training stimuli (%s%s)", ne,
                   ne == 1 ? "" : "s", list, strlen(list) >= 200 ? ", ..." : "");
    }
    if (Nk == 0) {
        free(msum); free(mcnt);
        st = caimg_error(CAIMG_EFORMAT, "no neuron has responses that vary across the %zu training "
                         "stimuli; nothing to fit", Str);
        goto done;
    }

    /* ---- training targets: trial averages, weighted by repeats ---- */
    y = malloc(Str * Nk * sizeof *y);
    wt = malloc(Str * sizeof *wt);
    if (!y || !wt) { free(msum); free(mcnt); st = caimg_error(CAIMG_ENOMEM, "out of memory"); goto done; }
    for (size_t r = 0; r < Str; r++) {
        size_t reps = 0;
        for (size_t j = 0; j < Nk; j++) {
            size_t k = keep[j], cnt = mcnt[r * N0 + k];
            y[r * Nk + j] = cnt ? (float)(msum[r * N0 + k] / (double)cnt) : NAN;
            if (cnt > reps) reps = cnt;
        }
        wt[r] = (float)(reps ? reps : 1);
    }
    free(msum);
    free(mcnt);
    int negative = 0;
    for (size_t i = 0; i < Str * Nk; i++) if (y[i] < 0) negative = 1;
    caimg_ann_loss_type loss;
    if (!strcmp(o->loss, "poisson")) loss = CAIMG_ANN_POISSON;
    else if (!strcmp(o->loss, "mse")) loss = CAIMG_ANN_MSE;
    else loss = negative ? CAIMG_ANN_MSE : CAIMG_ANN_POISSON;
    if (loss == CAIMG_ANN_POISSON && negative) {
        st = caimg_error(CAIMG_EFORMAT, "the Poisson loss needs non-negative responses, and some are "
                         "negative (dF/F?); use --loss mse or auto");
        goto done;
    }

    /* ---- the model ---- */
    arch = ann_arch_arg(o->arch);
    if (!arch) { st = CAIMG_EIO; goto done; }
    caimg_ann_prep prep;
    caimg_ann_prep_init(&prep, ih, iw);
    if (o->crop_given) {
        prep.crop_y = (size_t)o->crop[0]; prep.crop_x = (size_t)o->crop[1];
        prep.crop_h = (size_t)o->crop[2]; prep.crop_w = (size_t)o->crop[3];
    }
    size_t H = o->resize_given ? (size_t)o->resize[0] : prep.crop_h;
    size_t W = o->resize_given ? (size_t)o->resize[1] : prep.crop_w;
    if (o->crop_given && (prep.crop_y + prep.crop_h > ih || prep.crop_x + prep.crop_w > iw)) {
        st = caimg_error(CAIMG_EINVAL, "--crop %ld,%ld,%ld,%ld does not fit in the %zux%zu images of %s",
                         o->crop[0], o->crop[1], o->crop[2], o->crop[3], ih, iw, o->stimuli);
        goto done;
    }
    const uint64_t seed = c->seed_given ? c->seed : 1;
    st = new_network(c, o, arch, &prep, H, W, Nk, seed, &m);
    if (st == -1) goto usage_done;
    if (st) goto done;

    /* Model inputs of the training and test stimuli. */
    x = malloc(Str * H * W * sizeof *x);
    xte = malloc((Ste ? Ste : 1) * H * W * sizeof *xte);
    ste = malloc((Ste ? Ste : 1) * sizeof *ste);
    if (!x || !xte || !ste) { st = caimg_error(CAIMG_ENOMEM, "out of memory"); goto done; }
    for (size_t s = 0, a = 0, b = 0; s < S && !st; s++) {
        const float *im = images + sid[s] * ih * iw;
        if (ssplit[s] == 1) {
            ste[b] = s;
            st = caimg_ann_preprocess(m, im, 1, xte + b++ * H * W);
        } else {
            st = caimg_ann_preprocess(m, im, 1, x + a++ * H * W);
        }
    }
    if (st) goto done;
    nw = malloc(Nk * sizeof *nw);
    if (!nw) { st = caimg_error(CAIMG_ENOMEM, "out of memory"); goto done; }

    caimg_ann_train_opts to;
    caimg_ann_train_opts_init(&to);
    to.loss = loss;
    to.neuron_weights = nw;
    ann_train_args_apply(&o->train, &to);
    to.l2 = o->l2;
    to.val_fraction = o->val_fraction;
    epoch_ctx ectx = {c, to.lr};
    to.epoch_fn = on_epoch;
    to.epoch_ctx = &ectx;
    if (!c->quiet)
        fprintf(stderr, "caimg fit: %zu neurons, %zu training stimuli (%zu presentations), %zu test "
                        "stimuli, %zu parameters, %s loss\n", Nk, Str, ntr_pres, Ste,
                caimg_ann_nparams(m), loss == CAIMG_ANN_POISSON ? "Poisson" : "MSE");
    /* Per network of the ensemble: seed, epochs trained, best epoch and
     * its validation correlation. */
    const size_t K = (size_t)o->ensemble;
    memv = calloc(4 * K, sizeof *memv);
    if (!memv) { st = caimg_error(CAIMG_ENOMEM, "out of memory"); goto done; }
    /* The networks: the same data and split, each its own initial weights,
     * validation stimuli, shuffling and noise.  The first one's history is
     * the one saved (curve, validation split). */
    for (size_t k = 0; k < K && !st; k++) {
        caimg_ann_history hk, *hp = k ? &hk : &hist;
        memset(&hk, 0, sizeof hk);
        if (K > 1 && !c->quiet) fprintf(stderr, "caimg fit: network %zu of %zu (seed %llu)\n", k + 1,
                                        K, (unsigned long long)(seed + k));
        caimg_ann *net = m;
        if (k) {
            if ((st = new_network(c, o, arch, &prep, H, W, Nk, seed + k, &mk))) break;
            net = mk;
        }
        /* Normalisation, pixel range, output scales and neuron weights
         * from the training set (the library's rules, shared with the
         * robustness experiment): the same for every network. */
        st = caimg_ann_fit_scales(net, x, y, Str, loss, nw);
        if (st == CAIMG_EFORMAT) caimg_error_prefix(o->stimuli);
        to.seed = seed + k;
        ectx.lr = to.lr;
        if (!st) st = caimg_ann_train(net, x, y, wt, Str, &to, hp);
        memv[k] = (double)(seed + k);
        memv[K + k] = (double)hp->nepochs;
        memv[2 * K + k] = (double)hp->best_epoch;
        memv[3 * K + k] = hp->best_val_corr;
        caimg_ann_history_clear(&hk);
        if (!st && k) st = caimg_ann_ensemble_add(m, mk);
        if (!st) mk = NULL;
    }
    if (st == -1) goto usage_done;
    if (st) goto done;

    /* ---- evaluation on held-out stimuli (and, for comparison, training) ---- */
    size_t Pte = 0;
    for (size_t p = 0; p < P; p++) Pte += ssplit[sidx[R->stim[p]]] == 1;
    rkept = malloc(P * Nk * sizeof *rkept);
    if (!rkept) { st = caimg_error(CAIMG_ENOMEM, "out of memory"); goto done; }
    for (size_t p = 0; p < P; p++)
        for (size_t j = 0; j < Nk; j++) rkept[p * Nk + j] = R->r[p * N0 + keep[j]];
    if (Ste) {
        pred = malloc(Ste * Nk * sizeof *pred);
        rte = malloc(Pte * Nk * sizeof *rte);
        size_t *stp = malloc(Pte * sizeof *stp), *row_of = malloc(S * sizeof *row_of);
        if (!pred || !rte || !stp || !row_of) {
            free(stp); free(row_of);
            st = caimg_error(CAIMG_ENOMEM, "out of memory");
            goto done;
        }
        for (size_t b = 0; b < Ste; b++) row_of[ste[b]] = b;
        for (size_t p = 0, q = 0; p < P; p++) {
            size_t s = sidx[R->stim[p]];
            if (ssplit[s] != 1) continue;
            memcpy(rte + q * Nk, rkept + p * Nk, Nk * sizeof *rte);
            stp[q++] = row_of[s];
        }
        st = caimg_ann_predict(m, xte, Ste, (size_t)o->eval_samples, 0, pred);
        if (!st) st = caimg_ann_evaluate(pred, Ste, Nk, rte, stp, Pte, o->ev_threshold, &ev);
        free(stp);
        free(row_of);
    } else {
        caimg_warn("no held-out test stimuli (--test-fraction 0 and no split column): no evaluation");
    }
    if (!st) {
        predtr = malloc(Str * Nk * sizeof *predtr);
        size_t Ptr = P - Pte;
        rtr = malloc((Ptr ? Ptr : 1) * Nk * sizeof *rtr);
        size_t *stp = malloc((Ptr ? Ptr : 1) * sizeof *stp);
        if (!predtr || !rtr || !stp) { free(stp); st = caimg_error(CAIMG_ENOMEM, "out of memory"); goto done; }
        for (size_t p = 0, q = 0; p < P; p++) {
            size_t s = sidx[R->stim[p]];
            if (ssplit[s] == 1) continue;
            memcpy(rtr + q * Nk, rkept + p * Nk, Nk * sizeof *rtr);
            stp[q++] = str_[s];
        }
        st = caimg_ann_predict(m, x, Str, (size_t)o->eval_samples, 0, predtr);
        if (!st) st = caimg_ann_evaluate(predtr, Str, Nk, rtr, stp, Ptr, o->ev_threshold, &evtr);
        free(stp);
    }
    if (st) goto done;

    /* ---- the model file ---- */
    out = caimg_h5_create(c->output, "fit", c->cmdline);
    if (!out) { st = CAIMG_EIO; goto done; }
    if (o->traces) st = caimg_h5_add_input(out, o->traces, 1);
    if (!st && o->schedule) st = caimg_h5_add_input(out, o->schedule, 0);
    if (!st && o->responses) st = caimg_h5_add_input(out, o->responses, 0);
    if (!st) st = caimg_h5_add_input(out, o->stimuli, 0);
    /* A config value is one line: the architecture is recorded with its
     * own '#' comments dropped (its parser ends a statement at any '#')
     * and its lines joined by ';', as its parser reads them. */
    char *arch1 = malloc(strlen(o->arch) + 1);
    if (arch1) {
        size_t j = 0;
        for (const char *q = o->arch; *q; q++) {
            if (*q == '#') {
                while (q[1] && q[1] != '\n') q++;
                continue;
            }
            arch1[j++] = *q == '\n' || *q == '\r' ? ';' : *q;
        }
        arch1[j] = '\0';
        caimg_h5_param(out, "arch", "%s", arch1);
        free(arch1);
    } else if (!st) st = caimg_error(CAIMG_ENOMEM, "out of memory");
    for (int i = 0; i < o->nnoise; i++) caimg_h5_param(out, "noise", "%s", o->noise[i]);
    if (!o->responses) {
        caimg_h5_param(out, "signal", "%s", signal_used);
        caimg_h5_param_double(out, "fs", fs);
        if (o->win.length > 0) caimg_h5_param(out, "window", "%g:%g", o->win.offset, o->win.length);
        else caimg_h5_param_double(out, "window", o->win.offset);
        caimg_h5_param(out, "reduce", "%s", o->win.sum ? "sum" : "mean");
    }
    caimg_h5_param_double(out, "test-fraction", o->test_fraction);
    if (o->crop_given)
        caimg_h5_param(out, "crop", "%ld,%ld,%ld,%ld", o->crop[0], o->crop[1], o->crop[2], o->crop[3]);
    caimg_h5_param(out, "resize", "%zux%zu", H, W);
    caimg_h5_param(out, "loss", "%s", loss == CAIMG_ANN_POISSON ? "poisson" : "mse");
    ann_train_args_record(&o->train, out);
    caimg_h5_param_double(out, "l2", o->l2);
    caimg_h5_param_double(out, "val-fraction", o->val_fraction);
    caimg_h5_param(out, "seed", "%lu", c->seed_given ? c->seed : 1UL);
    caimg_h5_param(out, "eval-samples", "%ld", o->eval_samples);
    caimg_h5_param(out, "ensemble", "%ld", o->ensemble);
    caimg_h5_param_double(out, "ev-threshold", o->ev_threshold);
    if (!st) st = caimg_ann_save(m, out, "/model");
    if (!st) st = caimg_h5_mkgroup(out, "/fit");
    if (!st) st = caimg_h5_set_attr_string(out, "/fit", "loss", loss == CAIMG_ANN_POISSON ? "poisson" : "mse");
    if (!st) st = caimg_h5_set_attr_string(out, "/fit", "source", o->responses ? "matrix" : "traces");
    if (!st && signal_used) st = caimg_h5_set_attr_string(out, "/fit", "signal", signal_used);
    if (!st) st = caimg_h5_set_attr_long(out, "/fit", "best_epoch", (long)hist.best_epoch);
    if (!st) st = caimg_h5_set_attr_long(out, "/fit", "stopped_early", hist.stopped_early);
    if (!st) st = caimg_h5_set_attr_double(out, "/fit", "ema", o->train.ema);
    if (!st) st = caimg_h5_set_attr_long(out, "/fit", "lr_decays", o->train.lr_decays);
    if (!st) st = caimg_h5_set_attr_double(out, "/fit", "lr_factor", o->train.lr_factor);
    if (!st) st = caimg_h5_set_attr_long(out, "/fit", "eval_samples", o->eval_samples);
    if (!st) st = caimg_h5_set_attr_long(out, "/fit", "ensemble", o->ensemble);
    {
        static const char *const mnames[] = {"seed", "epochs", "best_epoch", "best_val_corr"};
        size_t d = K;
        for (int i = 0; !st && i < 4; i++) {
            char name[64];
            snprintf(name, sizeof name, "/fit/members/%s", mnames[i]);
            st = caimg_h5_write(out, name, CAIMG_DT_F64, 1, &d, memv + (size_t)i * K);
        }
    }
    if (!st) st = caimg_h5_set_attr_double(out, "/fit", "ev_threshold", o->ev_threshold);
    if (!st) st = caimg_h5_set_attr_long(out, "/fit", "neurons_in", (long)N0);
    if (!st && R->names) {
        /* The names of all neurons of the data, kept or not, so that
         * predictions can be written one column per neuron. */
        size_t len = 1;
        for (size_t k = 0; k < N0; k++) len += strlen(R->names[k]) + 1;
        char *names = malloc(len);
        if (!names) st = caimg_error(CAIMG_ENOMEM, "out of memory");
        else {
            names[0] = '\0';
            for (size_t k = 0; k < N0; k++) {
                strcat(names, R->names[k]);
                if (k + 1 < N0) strcat(names, "\t");
            }
            st = caimg_h5_set_attr_string(out, "/fit", "neuron_names", names);
            free(names);
        }
    }
    {
        size_t niv = Nk > P ? Nk : P;
        int32_t *iv = malloc(niv * sizeof *iv);
        signed char *sp = malloc(npages);
        if (!iv || !sp) st = caimg_error(CAIMG_ENOMEM, "out of memory");
        size_t d;
        if (!st) {
            for (size_t j = 0; j < Nk; j++) iv[j] = (int32_t)keep[j];
            d = Nk;
            st = caimg_h5_write(out, "/fit/neuron_index", CAIMG_DT_I32, 1, &d, iv);
        }
        if (!st && ne) {
            for (size_t j = 0; j < ne; j++) iv[j] = (int32_t)excl[j];
            d = ne;
            st = caimg_h5_write(out, "/fit/excluded", CAIMG_DT_I32, 1, &d, iv);
        }
        if (!st) {
            /* Per stimulus id: -1 not shown, 0 train, 1 validation, 2 test. */
            for (size_t i = 0; i < npages; i++) sp[i] = -1;
            for (size_t s = 0; s < S; s++) {
                if (ssplit[s] == 1) sp[sid[s]] = 2;
                else sp[sid[s]] = hist.val_mask && hist.val_mask[str_[s]] ? 1 : 0;
            }
            d = npages;
            st = caimg_h5_write(out, "/fit/stimulus_split", CAIMG_DT_I8, 1, &d, sp);
        }
        if (!st) {
            for (size_t p = 0; p < P; p++) iv[p] = (int32_t)R->stim[p];
            d = P;
            st = caimg_h5_write(out, "/fit/presentation_stimulus", CAIMG_DT_I32, 1, &d, iv);
        }
        free(iv);
        free(sp);
    }
    if (!st) {
        size_t d2[2] = {P, Nk};
        st = caimg_h5_write(out, "/fit/responses", CAIMG_DT_F32, 2, d2, rkept);
    }
    if (!st) {
        size_t E = hist.nepochs;
        double *v = malloc((E ? E : 1) * sizeof *v);
        const char *names[] = {"epoch", "train_loss", "penalty", "val_loss", "val_corr", "seconds"};
        for (int k = 0; v && !st && k < 6; k++) {
            for (size_t e = 0; e < E; e++) {
                const caimg_ann_epoch *ep = &hist.epochs[e];
                v[e] = k == 0 ? (double)ep->epoch : k == 1 ? ep->train_loss : k == 2 ? ep->penalty
                     : k == 3 ? ep->val_loss : k == 4 ? ep->val_corr : ep->seconds;
            }
            char name[64];
            snprintf(name, sizeof name, "/fit/curve/%s", names[k]);
            st = caimg_h5_write(out, name, CAIMG_DT_F64, 1, &E, v);
        }
        if (!v) st = caimg_error(CAIMG_ENOMEM, "out of memory");
        free(v);
    }
    if (!st && Ste) {
        st = write_eval(out, "/fit/eval", &ev, Nk);
        int32_t *iv = malloc(Ste * sizeof *iv);
        if (!iv && !st) st = caimg_error(CAIMG_ENOMEM, "out of memory");
        for (size_t b = 0; !st && b < Ste; b++) iv[b] = (int32_t)sid[ste[b]];
        size_t d = Ste, d2[2] = {Ste, Nk}, d3[3] = {Ste, H, W};
        /* Per-test-stimulus arrays apart from the per-neuron metrics, so
         * that /fit/eval exports as one table. */
        if (!st) st = caimg_h5_write(out, "/fit/test/stimulus", CAIMG_DT_I32, 1, &d, iv);
        if (!st) st = caimg_h5_write(out, "/fit/test/pred", CAIMG_DT_F32, 2, d2, pred);
        if (!st) st = caimg_h5_write(out, "/fit/test/images", CAIMG_DT_F32, 3, d3, xte);
        free(iv);
    }
    if (!st) st = write_eval(out, "/fit/eval_train", &evtr, Nk);
    if (!st) {
        st = caimg_h5_commit(out);
        out = NULL;
    }
    if (!st && !c->quiet) {
        if (K == 1) {
            fprintf(stderr, "caimg fit: kept the weights of epoch %zu of %zu%s\n", hist.best_epoch,
                    hist.nepochs, hist.stopped_early ? " (stopped early)" : "");
        } else {
            fprintf(stderr, "caimg fit: %zu networks kept the weights of epochs", K);
            for (size_t k = 0; k < K; k++)
                fprintf(stderr, "%s %.0f of %.0f", k ? "," : "", memv[2 * K + k], memv[K + k]);
            fputc('\n', stderr);
        }
        fprintf(stderr, "caimg fit: training stimuli: mean correlation with trial averages %.3f\n",
                evtr.mean_corr_avg);
        if (Ste) {
            fprintf(stderr, "caimg fit: held-out stimuli: correlation with trial averages mean %.3f, "
                            "median %.3f (%zu neurons)", ev.mean_corr_avg, ev.median_corr_avg,
                    ev.n_corr_avg);
            if (ev.n_corr_trial)
                fprintf(stderr, "; with single trials %.3f", ev.mean_corr_trial);
            if (ev.n_feve)
                fprintf(stderr, "; FEVE %.3f (%zu neurons with explainable variance >= %g)",
                        ev.mean_feve, ev.n_feve, o->ev_threshold);
            else
                fprintf(stderr, "; FEVE not available (%s)",
                        ev.n_corr_trial ? "no neuron reaches --ev-threshold" : "no repeats");
            fputc('\n', stderr);
        }
    }
    goto done;
usage_done:
    st = -1000;     /* usage error already printed */
done:
    if (out) caimg_h5_close(out);
    caimg_ann_history_clear(&hist);
    caimg_ann_eval_clear(&ev);
    caimg_ann_eval_clear(&evtr);
    caimg_ann_free(m);
    caimg_ann_free(mk);
    free(nw);
    free(memv);
    caimg_resp_free(R);
    caimg_table_free(sched);
    free(traces); free(images); free(x); free(y); free(wt); free(xte); free(pred); free(rte);
    free(predtr); free(rtr); free(rkept); free(sid); free(sidx); free(ste); free(str_);
    free(keep); free(excl); free(ssplit); free(want); free(arch);
    return st;
}

int main_fit(int argc, char **argv)
{
    cmd_ctx c;
    int rc = cmd_begin(&c, "fit", argc, argv, longopts);
    if (rc) return rc;
    fit_opts o;
    memset(&o, 0, sizeof o);
    caimg_resp_window_init(&o.win);
    o.test_fraction = 0.2;
    o.val_fraction = 0.1;
    o.l2 = 1e-4;
    o.ev_threshold = 0.15;
    o.arch = "conv2";
    o.loss = "auto";
    o.ensemble = 5;
    ann_train_args_init(&o.train);
    int opt;
    while ((opt = getopt_long(c.argc, c.argv, CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        int k = cmd_common_option(&c, opt, optarg);
        if (k < 0) { rc = EXIT_USAGE; goto done; }
        if (k > 0) continue;
        double v2[4];
        int n;
        switch (opt) {
        case OPT_STIMULI: o.stimuli = optarg; break;
        case OPT_SCHEDULE: o.schedule = optarg; break;
        case OPT_SIGNAL: o.signal = optarg; break;
        case OPT_RESPONSES: o.responses = optarg; break;
        case OPT_ARCH: o.arch = optarg; break;
        case OPT_WINDOW: {
            char buf[128];
            snprintf(buf, sizeof buf, "%s", optarg);
            char *colon = strchr(buf, ':');
            if (colon) *colon = '\0';
            if (cmd_parse_double(&c, "--window", buf, 0, 1e6, &o.win.offset)) { rc = EXIT_USAGE; goto done; }
            if (colon && cmd_parse_double(&c, "--window", colon + 1, 1e-9, 1e6, &o.win.length)) {
                rc = EXIT_USAGE;
                goto done;
            }
            o.window_given = 1;
            break;
        }
        case OPT_REDUCE:
            if (!strcmp(optarg, "mean")) o.win.sum = 0;
            else if (!strcmp(optarg, "sum")) o.win.sum = 1;
            else { rc = cmd_usage_error(&c, "--reduce: '%s' is not mean or sum", optarg); goto done; }
            break;
        case OPT_TEST_FRACTION:
            if (cmd_parse_double(&c, "--test-fraction", optarg, 0, 0.9, &o.test_fraction)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_VAL_FRACTION:
            if (cmd_parse_double(&c, "--val-fraction", optarg, 0, 0.9, &o.val_fraction)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_CROP:
            n = cmd_parse_double_list(&c, "--crop", optarg, v2, 4);
            if (n < 0) { rc = EXIT_USAGE; goto done; }
            if (n != 4 || v2[0] < 0 || v2[1] < 0 || v2[2] < 1 || v2[3] < 1 || v2[0] != floor(v2[0]) ||
                v2[1] != floor(v2[1]) || v2[2] != floor(v2[2]) || v2[3] != floor(v2[3])) {
                rc = cmd_usage_error(&c, "--crop: '%s' is not Y,X,H,W (pixels, H and W >= 1)", optarg);
                goto done;
            }
            for (int i = 0; i < 4; i++) o.crop[i] = (long)v2[i];
            o.crop_given = 1;
            break;
        case OPT_RESIZE:
            if (sscanf(optarg, "%ldx%ld%n", &o.resize[0], &o.resize[1], &n) != 2 || optarg[n] ||
                o.resize[0] < 1 || o.resize[1] < 1 || o.resize[0] > 4096 || o.resize[1] > 4096) {
                rc = cmd_usage_error(&c, "--resize: '%s' is not HxW (e.g. 32x32)", optarg);
                goto done;
            }
            o.resize_given = 1;
            break;
        case OPT_NOISE:
            if (o.nnoise == 32) { rc = cmd_usage_error(&c, "--noise: at most 32 noise settings"); goto done; }
            o.noise[o.nnoise++] = optarg;
            break;
        case OPT_LOSS:
            if (strcmp(optarg, "auto") && strcmp(optarg, "poisson") && strcmp(optarg, "mse")) {
                rc = cmd_usage_error(&c, "--loss: '%s' is not auto, poisson or mse", optarg);
                goto done;
            }
            o.loss = optarg;
            break;
        case ANN_OPT_BATCH: case ANN_OPT_LR: case ANN_OPT_EPOCHS: case ANN_OPT_PATIENCE:
        case ANN_OPT_EMA: case ANN_OPT_LR_DECAY:
            if (ann_train_args_parse(&c, &o.train, opt, optarg)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_L2:
            if (cmd_parse_double(&c, "--l2", optarg, 0, 1e3, &o.l2)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_EVAL_SAMPLES:
            if (cmd_parse_long(&c, "--eval-samples", optarg, 0, 100000, &o.eval_samples)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_ENSEMBLE:
            if (cmd_parse_long(&c, "--ensemble", optarg, 1, 100, &o.ensemble)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_EV_THRESHOLD:
            if (cmd_parse_double(&c, "--ev-threshold", optarg, 0, 1, &o.ev_threshold)) { rc = EXIT_USAGE; goto done; }
            break;
        default:
            rc = cmd_bad_option(&c);
            goto done;
        }
    }
    if (c.want_help) { usage(stdout); rc = 0; goto done; }
    int nin = c.argc - optind;
    if (o.responses) {
        if (nin != 0 || o.schedule) {
            rc = cmd_usage_error(&c, "--responses replaces TRACES.h5 and --schedule; give one or the other");
            goto done;
        }
        if (o.signal || o.window_given) {
            rc = cmd_usage_error(&c, "--signal and --window apply to traces, not to --responses");
            goto done;
        }
    } else {
        if (nin != 1) {
            rc = cmd_usage_error(&c, nin ? "one TRACES.h5 input expected" :
                                 "no input: give TRACES.h5 with --schedule, or --responses");
            goto done;
        }
        if (!o.schedule) { rc = cmd_usage_error(&c, "--schedule is required with TRACES.h5"); goto done; }
        o.traces = c.argv[optind];
    }
    if (!o.stimuli) { rc = cmd_usage_error(&c, "--stimuli IMAGES.tif is required"); goto done; }
    if (!c.output) { rc = cmd_usage_error(&c, "no output: give -o MODEL.h5"); goto done; }
    {
        const char *const ins[4] = {o.traces, o.schedule, o.responses, o.stimuli};
        if ((rc = cmd_check_output(&c, c.output)) || (rc = cmd_check_inputs(&c, c.output, ins, 4)))
            goto done;
    }
    rc = run(&c, &o);
    if (rc == -1000) rc = EXIT_USAGE;
    else if (rc) rc = cmd_fail(&c, rc);
done:
    cmd_end(&c);
    return rc;
}
