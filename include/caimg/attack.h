/* caimg/attack.h -- adversarial attacks on response models, and how much
 * they change the predicted population response.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * A plan fixes a model (caimg/ann.h) and a set of n stimuli: it measures
 * the clean predicted responses once, and the quantities every metric is
 * relative to.  Attacks then perturb each stimulus within a budget and
 * report, per budget, how far the predicted responses moved.
 *
 * Images are model inputs ([n][C][H][W], the model's crop and resize
 * already applied, in the caller's pixel units); perturbations act on them
 * and attacked images are kept inside the valid pixel range [lo, hi].
 *
 * Budgets
 * -------
 * Budgets are relative, so that one list serves images of any size and
 * grey scale:
 *   CAIMG_ATTACK_LINF     max_p |delta_p| <= eps * (hi - lo)
 *   CAIMG_ATTACK_L2       ||delta||_2 <= eps * (hi - lo) * sqrt(P), P = C*H*W,
 *                         i.e. eps bounds the RMS change per pixel; an L-inf
 *                         perturbation of eps at every pixel has L2 budget eps
 *   CAIMG_ATTACK_FEATURE  no pixel bound (only [lo, hi]), but the clean
 *                         (noise-free) activity h of a named hidden layer
 *                         must stay close to its value on the clean image:
 *                         ||h(x') - h(x)||_2 <= eps * ||h(x)||_2
 *
 * Noise and expectation over transformation (EOT)
 * -----------------------------------------------
 * A noisy model's prediction of an image is the mean over noise draws.
 * Every evaluation (clean and attacked) averages the same K draws
 * (`eval_samples`; common random numbers, so that budget 0 reproduces the
 * clean numbers exactly).  Every attack gradient is the gradient of the
 * objective evaluated on the mean of M fresh draws (`eot`), drawn anew at
 * each step and independent of the evaluation draws, so an attack cannot
 * overfit the noise it is scored with.  For the response objective the
 * clean image is re-measured on the same M draws and the gradient is that
 * of the distance between the two means (common random numbers): their
 * difference then carries none of the clean side's sampling noise, which
 * at small budgets would otherwise swamp the change being maximised.
 * Deterministic models ignore K and M.
 *
 * Objectives (maximised; z = response / natural s.d., see below)
 * ----------
 *   CAIMG_ATTACK_RESPONSE  population disruption: the mean over neurons of
 *                          ((f_n(x') - f_n(x)) / s_n)^2
 *   CAIMG_ATTACK_NEURON    drive neuron k up (direction +1) or down (-1):
 *                          direction * (f_k(x') - f_k(x)) / s_k
 *   CAIMG_ATTACK_DECODER   fool a stimulus-identity decoder whose templates
 *                          are the clean predicted responses to the n
 *                          stimuli: the margin by which the best wrong
 *                          stimulus beats the true one (distance or
 *                          correlation, see caimg_attack_decoder_type)
 * s_n, the natural variability of neuron n, is the s.d. across the plan's
 * stimuli of its clean predicted response.  Neurons whose predictions do
 * not vary (s_n <= 1e-6 max s) are left out of every relative quantity.
 *
 * Methods
 * -------
 *   CAIMG_ATTACK_RANDOM  a random perturbation at the full budget (L-inf: a
 *                        random sign at every pixel; L2: a random direction;
 *                        feature: a random pixel direction scaled until the
 *                        layer's distance reaches the budget), the baseline
 *   CAIMG_ATTACK_FGSM    one step of the full budget along the gradient's
 *                        sign (L-inf) or direction (L2) (Goodfellow et al.
 *                        2015).  For the response objective the gradient is
 *                        taken at a random point at half the budget,
 *                        because at the clean image the distance is at its
 *                        minimum and its gradient vanishes.
 *   CAIMG_ATTACK_PGD     projected gradient ascent (Madry et al. 2018):
 *                        `steps` steps of size step_scale * budget / steps,
 *                        each followed by projection onto the budget and
 *                        clipping to [lo, hi]; a random start in the budget
 *                        ball; `restarts` independent runs, keeping per image
 *                        the run whose objective (on a separate set of K
 *                        noise draws) is highest.
 * For feature budgets PGD is a projected ascent with a line-search
 * projection: each step moves along the objective's gradient with the
 * component that would enlarge the layer's distance removed when the
 * distance is near the budget, and is then pulled back along the step by
 * bisection until the distance is within the budget, so every iterate is
 * feasible; the step length adapts (shrinks after a cut step, grows after a
 * whole one) and the best feasible iterate is returned.  FGSM is not
 * defined for feature budgets.
 *
 * Determinism: results depend only on the model, the images, the options
 * and the seeds, never on the number of threads or the batch size.
 */
#ifndef CAIMG_ATTACK_H
#define CAIMG_ATTACK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "caimg/ann.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { CAIMG_ATTACK_RANDOM = 0, CAIMG_ATTACK_FGSM, CAIMG_ATTACK_PGD } caimg_attack_method;
typedef enum { CAIMG_ATTACK_LINF = 0, CAIMG_ATTACK_L2, CAIMG_ATTACK_FEATURE } caimg_attack_budget;
typedef enum {
    CAIMG_ATTACK_RESPONSE = 0, CAIMG_ATTACK_NEURON, CAIMG_ATTACK_DECODER
} caimg_attack_objective;

/* The stimulus-identity decoder: it assigns a response to the stimulus
 * whose template (clean predicted response, z-scored per neuron with the
 * stimulus set's mean and s_n) is nearest (CENTROID: Euclidean distance of
 * z-scored responses) or most correlated across neurons (CORR). */
typedef enum { CAIMG_DECODER_CENTROID = 0, CAIMG_DECODER_CORR } caimg_attack_decoder_type;

/* Names for the CLI and files ("random", "fgsm", "pgd"; "linf", "l2",
 * "feature"; "response", "neuron", "decoder"; "centroid", "corr"). */
const char *caimg_attack_method_name(caimg_attack_method m);
const char *caimg_attack_budget_name(caimg_attack_budget b);
const char *caimg_attack_objective_name(caimg_attack_objective o);
const char *caimg_attack_decoder_name(caimg_attack_decoder_type d);
/* Parse a name; returns the value or -1. */
int caimg_attack_method_parse(const char *s);
int caimg_attack_budget_parse(const char *s);
int caimg_attack_objective_parse(const char *s);
int caimg_attack_decoder_parse(const char *s);

/* ---- the plan: a model and a stimulus set ------------------------------------ */

typedef struct {
    double lo, hi;              /* valid pixel range; NaN: the model's recorded
                                   range (caimg_ann_get_input_range) [NaN] */
    size_t eval_samples;        /* K noise draws per evaluation (noisy models) [32] */
    caimg_attack_decoder_type decoder;   /* [CAIMG_DECODER_CENTROID] */
    int feature_layer;          /* layer of feature budgets and of the reported
                                   feature distance; -1 for none [-1] */
    double success_threshold;   /* tau, see caimg_attack_result [0.5] */
    uint64_t seed;              /* numbers the evaluation noise draws [1] */
} caimg_attack_setup;

void caimg_attack_setup_init(caimg_attack_setup *s);

typedef struct caimg_attack_plan caimg_attack_plan;

/* Measure the clean predictions of n >= 2 images x [n][C][H][W] and
 * everything the metrics need.  The plan keeps pointers to m and x, which
 * must outlive it and not change.  Errors: CAIMG_EINVAL for bad setup
 * values (no valid range, images outside the range by more than 1e-4 of
 * it, a bad layer, fewer than 2 images), CAIMG_EFORMAT when no neuron's
 * prediction varies across the images, CAIMG_ENOMEM. */
caimg_attack_plan *caimg_attack_plan_create(const caimg_ann *m, const float *x, size_t n,
                                            const caimg_attack_setup *s);
void caimg_attack_plan_destroy(caimg_attack_plan *p);

size_t caimg_attack_plan_nimages(const caimg_attack_plan *p);
/* The clean predictions [n][N] (noise-averaged for a noisy model). */
const float *caimg_attack_plan_clean(const caimg_attack_plan *p);
/* s_n [N], the natural variability (0 for neurons left out). */
const double *caimg_attack_plan_sd(const caimg_attack_plan *p);
/* Decoding accuracy of the clean predictions (1 unless stimuli coincide). */
double caimg_attack_plan_clean_accuracy(const caimg_attack_plan *p);
/* The range in use. */
void caimg_attack_plan_range(const caimg_attack_plan *p, double *lo, double *hi);
/* 1 if the model is noisy (EOT and noise-averaged evaluation apply). */
int caimg_attack_plan_noisy(const caimg_attack_plan *p);

/* ---- attacks ------------------------------------------------------------------ */

typedef struct {
    caimg_attack_method method;         /* [CAIMG_ATTACK_PGD] */
    caimg_attack_budget budget;         /* [CAIMG_ATTACK_LINF] */
    caimg_attack_objective objective;   /* [CAIMG_ATTACK_RESPONSE] */
    size_t neuron;                      /* CAIMG_ATTACK_NEURON: the neuron [0] */
    int direction;                      /* CAIMG_ATTACK_NEURON: +1 up, -1 down [+1] */
    size_t steps;                       /* PGD steps [20] */
    double step_scale;                  /* PGD step = step_scale * budget / steps [2.5] */
    int random_start;                   /* PGD [1] */
    size_t restarts;                    /* PGD runs per image [1] */
    size_t eot;                         /* M draws per gradient (noisy models) [10] */
    uint64_t seed;                      /* random starts, baselines and EOT draws [1] */
} caimg_attack_opts;

void caimg_attack_opts_init(caimg_attack_opts *o);

/* The metrics of one budget, means over the n images; i indexes images,
 * n neurons (those with s_n > 0), f' the prediction for the attacked and
 * f for the clean image:
 *   abs_change   mean_i sqrt(mean_n (f'_in - f_in)^2), response units
 *   rel_change   mean_i sqrt(mean_n ((f'_in - f_in) / s_n)^2): the change in
 *                units of the neurons' natural variability; two unrelated
 *                stimuli differ by about sqrt(2) on this scale
 *   corr         mean_i of the correlation across neurons between the
 *                z-scored clean and attacked responses (1: pattern intact)
 *   decode_acc   fraction of attacked responses the decoder assigns to
 *                their own stimulus (robust decoding accuracy)
 *   success      attack success rate: response objective, the fraction of
 *                images with a relative change (as in rel_change) >= tau;
 *                neuron objective, the fraction where the neuron moved
 *                >= tau natural s.d. in the asked direction; decoder
 *                objective, the fraction of the correctly decoded clean
 *                images that are decoded wrongly after the attack
 *   linf, l2     mean perturbation norms in budget units (see above)
 *   feature      mean relative distance of the feature layer's clean
 *                activity, ||h(x') - h(x)|| / ||h(x)|| (NaN without a layer)
 *   neuron_change  mean (f'_ik - f_ik) / s_k of the target neuron (neuron
 *                objective; NaN otherwise)
 *   strength     the attack's effect, higher = stronger: rel_change,
 *                direction * neuron_change, or 1 - decode_acc, by objective
 *   seconds      wall time of the attack and its evaluation */
typedef struct {
    double budget;
    size_t n;
    double abs_change, rel_change, corr, decode_acc, success;
    double linf, l2, feature, neuron_change, strength, seconds;
} caimg_attack_result;

/* Attack every image of the plan at one budget (>= 0; 0 leaves the images
 * unchanged) and measure.  xadv [n][C][H][W] (may be NULL) receives the
 * attacked images.  Errors: CAIMG_EINVAL for invalid options (FGSM with a
 * feature budget, a feature budget without a feature layer, a neuron out
 * of range, zero steps/restarts/eot), CAIMG_ENOMEM, CAIMG_ECANCEL. */
int caimg_attack_execute(const caimg_attack_plan *p, const caimg_attack_opts *o, double budget,
                         float *xadv, caimg_attack_result *r);

/* Measure given attacked images xadv [n][C][H][W] against the plan's clean
 * images (the evaluation half of caimg_attack_execute); `o` gives the
 * objective (for success and strength) and r->budget is set to `budget`. */
int caimg_attack_measure(const caimg_attack_plan *p, const caimg_attack_opts *o, double budget,
                         const float *xadv, caimg_attack_result *r);

/* ---- curves, checks and reports --------------------------------------------------- */

/* One attack configuration over a list of budgets. */
typedef struct {
    caimg_attack_opts opts;
    size_t nbudgets;
    caimg_attack_result *res;   /* [nbudgets] */
    float *images;              /* [nbudgets][n][C][H][W] attacked images, or NULL */
} caimg_attack_curve;

/* Run `o` at every budget of `budgets` [nb]; with keep_images the attacked
 * images are kept in c->images.  Progress is reported through
 * caimg_progress("attack", ...). */
int caimg_attack_curve_run(const caimg_attack_plan *p, const caimg_attack_opts *o,
                           const double *budgets, size_t nb, int keep_images,
                           caimg_attack_curve *c);
/* Free what a curve holds (not the struct). */
void caimg_attack_curve_clear(caimg_attack_curve *c);

/* A short name for a configuration: "pgd-linf-response-eot10" (method,
 * budget, objective, and for noisy models the EOT samples; the neuron
 * objective adds "-n17up").  Writes at most `len` bytes; returns buf. */
char *caimg_attack_name(const caimg_attack_plan *p, const caimg_attack_opts *o, char *buf,
                        size_t len);

/* A sanity check over a set of curves. */
typedef struct {
    char name[64];       /* e.g. "budget 0 = clean (pgd-linf-response-eot10)" */
    int status;          /* 1 passed, 0 failed */
    char detail[256];    /* the numbers behind the verdict */
} caimg_attack_check;

/* The checks that the curves allow, with tolerance `tol` (a difference
 * counts when it exceeds tol times the larger strength compared plus 1e-3;
 * 0.02 is a good value):
 *   budget 0 = clean     at budget 0 the change is 0, the correlation 1 and
 *                        the decoding accuracy the clean one (to 1e-9)
 *   grows with budget    strength never drops by more than the tolerance
 *                        from one budget to the next (per curve)
 *   PGD >= FGSM, PGD >= random   at every shared budget > 0, same budget
 *                        type and objective (FGSM: same EOT)
 *   EOT >= single sample (noisy models) the PGD curve with the most budgets
 *                        against PGD with M = 1, at shared budgets > 0
 *   EOT converged        at the budget most PGD curves share, the strengths
 *                        of the two largest M differ by at most 5 times the
 *                        tolerance (the detail lists every M)
 * *checks is malloc'd (free with free()); returns 0 or CAIMG_ENOMEM. */
int caimg_attack_checks(const caimg_attack_plan *p, const caimg_attack_curve *c, size_t nc,
                        double tol, caimg_attack_check **checks, size_t *nchecks);

/* Tab-separated table: a header line (when `header`), then one row per
 * curve and budget: the `nextra` columns extra_names/extra_values (may be
 * 0/NULL; the same values on every row, e.g. a model's label), then name,
 * method, budget_type, objective, eot, budget, n and the metrics of
 * caimg_attack_result. */
void caimg_attack_write_tsv(FILE *fp, const caimg_attack_plan *p, const caimg_attack_curve *c,
                            size_t nc, int header, const char *const *extra_names,
                            const char *const *extra_values, size_t nextra);

/* Write the plan's clean measurements and the curves into group `group`
 * (e.g. "/attack") of an HDF5 file being created; see caimg-h5(5). */
int caimg_attack_save(caimg_h5 *f, const char *group, const caimg_attack_plan *p,
                      const caimg_attack_curve *c, size_t nc, const caimg_attack_check *checks,
                      size_t nchecks);

/* A standalone SVG document with one panel per budget type and metric
 * (relative change, robust decoding accuracy, clean-attacked correlation)
 * against the budget, one line per curve that has more than one budget,
 * coloured by method (labelled by method, and objective when several).
 * Returns a malloc'd string or NULL (CAIMG_ENOMEM). */
char *caimg_attack_svg(const caimg_attack_plan *p, const caimg_attack_curve *c, size_t nc,
                       const char *title);

/* A standalone SVG document of panels laid out `ncols` to a row, each a
 * line chart of its lines (points marked), titled; for side-by-side
 * comparisons such as the robustness experiment's.  Lines of the same
 * index share a colour across panels.  Returns a malloc'd string or NULL. */
typedef struct {
    const char *label;
    const double *x, *y;
    size_t n;
    const char *color;          /* CSS colour; NULL: by the line's index */
} caimg_attack_line;

typedef struct {
    const char *title, *xlabel, *ylabel;
    const caimg_attack_line *lines;
    size_t nlines;
    double ymin, ymax;          /* fixed y range when ymin < ymax */
} caimg_attack_panel;

char *caimg_attack_svg_panels(const caimg_attack_panel *panels, size_t npanels, size_t ncols,
                              const char *title);

#ifdef __cplusplus
}
#endif
#endif
