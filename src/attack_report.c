/* attack_report.c -- attack curves over budgets, their sanity checks, and
 * reports as TSV, HDF5 and SVG.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caimg/attack.h"
#include "caimg/h5io.h"
#include "attack_internal.h"
#include "internal.h"
#include "plot.h"

/* ---- curves ---------------------------------------------------------------------- */

void caimg_attack_curve_clear(caimg_attack_curve *c)
{
    if (!c) return;
    free(c->res);
    free(c->images);
    memset(c, 0, sizeof *c);
}

int caimg_attack_curve_run(const caimg_attack_plan *p, const caimg_attack_opts *o,
                           const double *budgets, size_t nb, int keep_images,
                           caimg_attack_curve *c)
{
    memset(c, 0, sizeof *c);
    c->opts = *o;
    /* A deterministic model has one "draw": record what was done. */
    if (!p->noisy || o->method == CAIMG_ATTACK_RANDOM) c->opts.eot = 1;
    c->nbudgets = nb;
    c->res = caimg_calloc(nb ? nb : 1, sizeof *c->res, "attack results");
    if (!c->res) return CAIMG_ENOMEM;
    const size_t isz = p->n * p->P;
    if (keep_images) {
        c->images = caimg_malloc(caimg_mul(nb ? nb : 1, isz), sizeof *c->images, "attacked images");
        if (!c->images) {
            caimg_attack_curve_clear(c);
            return CAIMG_ENOMEM;
        }
    }
    for (size_t k = 0; k < nb; k++) {
        int st = caimg_attack_execute(p, &c->opts, budgets[k], c->images ? c->images + k * isz : NULL,
                                      &c->res[k]);
        if (!st) st = caimg_progress("attack", (double)(k + 1), (double)nb);
        if (st) {
            caimg_attack_curve_clear(c);
            return st;
        }
    }
    return 0;
}

char *caimg_attack_name(const caimg_attack_plan *p, const caimg_attack_opts *o, char *buf,
                        size_t len)
{
    int k = snprintf(buf, len, "%s-%s-%s", caimg_attack_method_name(o->method),
                     caimg_attack_budget_name(o->budget), caimg_attack_objective_name(o->objective));
    if (k < 0 || (size_t)k >= len) return buf;
    if (o->objective == CAIMG_ATTACK_NEURON)
        k += snprintf(buf + k, len - (size_t)k, "-n%zu%s", o->neuron, o->direction > 0 ? "up" : "down");
    if (k < 0 || (size_t)k >= len) return buf;
    if (p->noisy && o->method != CAIMG_ATTACK_RANDOM)
        snprintf(buf + k, len - (size_t)k, "-eot%zu", o->eot);
    return buf;
}

/* ---- checks ------------------------------------------------------------------------ */

static double tol_abs(double tol, double a, double b)
{
    return tol * fmax(fabs(a), fabs(b)) + 1e-3;
}

static int same_target(const caimg_attack_opts *a, const caimg_attack_opts *b)
{
    if (a->budget != b->budget || a->objective != b->objective) return 0;
    if (a->objective == CAIMG_ATTACK_NEURON && (a->neuron != b->neuron || a->direction != b->direction))
        return 0;
    return 1;
}

/* Index of budget v in curve c, or -1. */
static long find_budget(const caimg_attack_curve *c, double v)
{
    for (size_t k = 0; k < c->nbudgets; k++)
        if (c->res[k].budget == v) return (long)k;
    return -1;
}

typedef struct {
    caimg_attack_check *v;
    size_t n, cap;
    int oom;
} checklist;

static caimg_attack_check *add_check(checklist *l)
{
    if (l->oom) return NULL;
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 16;
        caimg_attack_check *nv = realloc(l->v, nc * sizeof *nv);
        if (!nv) {
            l->oom = 1;
            return NULL;
        }
        l->v = nv;
        l->cap = nc;
    }
    caimg_attack_check *c = &l->v[l->n++];
    memset(c, 0, sizeof *c);
    return c;
}

/* a stronger than b (within tolerance) at every shared budget > 0. */
static void compare(checklist *l, const caimg_attack_plan *p, const caimg_attack_curve *a,
                    const caimg_attack_curve *b, const char *what, double tol)
{
    char na[96], nb[96];
    caimg_attack_name(p, &a->opts, na, sizeof na);
    caimg_attack_name(p, &b->opts, nb, sizeof nb);
    size_t shared = 0;
    int ok = 1;
    double worst = INFINITY, wb = 0;
    for (size_t k = 0; k < a->nbudgets; k++) {
        double v = a->res[k].budget;
        long j = find_budget(b, v);
        if (v == 0 || j < 0) continue;
        shared++;
        double sa = a->res[k].strength, sb = b->res[j].strength;
        double margin = sa - sb + tol_abs(tol, sa, sb);
        if (margin < 0) ok = 0;
        if (sa - sb < worst) { worst = sa - sb; wb = v; }
    }
    if (!shared) return;
    caimg_attack_check *c = add_check(l);
    if (!c) return;
    snprintf(c->name, sizeof c->name, "%s", what);
    c->status = ok;
    snprintf(c->detail, sizeof c->detail, "%.60s vs %.60s: smallest difference in strength %+.4g "
             "(budget %g), %zu budgets", na, nb, worst, wb, shared);
}

int caimg_attack_checks(const caimg_attack_plan *p, const caimg_attack_curve *cv, size_t nc,
                        double tol, caimg_attack_check **checks, size_t *nchecks)
{
    checklist l = {NULL, 0, 0, 0};
    char name[96];
    for (size_t i = 0; i < nc; i++) {
        const caimg_attack_curve *c = &cv[i];
        caimg_attack_name(p, &c->opts, name, sizeof name);
        long z = find_budget(c, 0.0);
        if (z >= 0) {
            const caimg_attack_result *r = &c->res[z];
            caimg_attack_check *k = add_check(&l);
            if (k) {
                snprintf(k->name, sizeof k->name, "budget 0 = clean");
                k->status = fabs(r->rel_change) <= 1e-9 && fabs(r->abs_change) <= 1e-9 &&
                            fabs(r->corr - 1.0) <= 1e-9 &&
                            fabs(r->decode_acc - p->clean_acc) <= 1e-9 && r->linf == 0 && r->l2 == 0;
                snprintf(k->detail, sizeof k->detail, "%s: change %.3g, correlation %.12g, decoding "
                         "%.4g (clean %.4g), perturbation %.3g", name, r->rel_change, r->corr,
                         r->decode_acc, p->clean_acc, r->linf);
            }
        }
        if (c->nbudgets >= 2) {
            /* Budgets in increasing order. */
            size_t *ord = malloc(c->nbudgets * sizeof *ord);
            if (!ord) { l.oom = 1; break; }
            for (size_t k = 0; k < c->nbudgets; k++) ord[k] = k;
            for (size_t a = 1; a < c->nbudgets; a++)
                for (size_t b = a; b > 0 && c->res[ord[b]].budget < c->res[ord[b - 1]].budget; b--) {
                    size_t t = ord[b]; ord[b] = ord[b - 1]; ord[b - 1] = t;
                }
            int ok = 1;
            double worst = INFINITY, wb = 0;
            for (size_t k = 1; k < c->nbudgets; k++) {
                double s0 = c->res[ord[k - 1]].strength, s1 = c->res[ord[k]].strength;
                if (s1 - s0 + tol_abs(tol, s0, s1) < 0) ok = 0;
                if (s1 - s0 < worst) { worst = s1 - s0; wb = c->res[ord[k]].budget; }
            }
            free(ord);
            caimg_attack_check *k = add_check(&l);
            if (k) {
                snprintf(k->name, sizeof k->name, "grows with budget");
                k->status = ok;
                snprintf(k->detail, sizeof k->detail, "%s: smallest step in strength %+.4g (to budget "
                         "%g)", name, worst, wb);
            }
        }
    }
    for (size_t i = 0; i < nc && !l.oom; i++) {
        const caimg_attack_curve *a = &cv[i];
        if (a->opts.method != CAIMG_ATTACK_PGD) continue;
        for (size_t j = 0; j < nc; j++) {
            const caimg_attack_curve *b = &cv[j];
            if (!same_target(&a->opts, &b->opts)) continue;
            if (b->opts.method == CAIMG_ATTACK_FGSM && b->opts.eot == a->opts.eot)
                compare(&l, p, a, b, "PGD >= FGSM", tol);
            else if (b->opts.method == CAIMG_ATTACK_RANDOM)
                compare(&l, p, a, b, "PGD >= random", tol);
        }
    }
    /* EOT: groups of PGD curves with one target and several M. */
    for (size_t i = 0; i < nc && p->noisy && !l.oom; i++) {
        const caimg_attack_curve *a = &cv[i];
        if (a->opts.method != CAIMG_ATTACK_PGD) continue;
        int first = 1;
        for (size_t j = 0; j < i; j++)
            if (cv[j].opts.method == CAIMG_ATTACK_PGD && same_target(&cv[j].opts, &a->opts)) first = 0;
        if (!first) continue;
        /* The group's main curve (most budgets, then largest M), its M = 1
         * curve, and the budget most of them share. */
        const caimg_attack_curve *main_c = NULL, *one = NULL;
        size_t members = 0;
        for (size_t j = i; j < nc; j++) {
            const caimg_attack_curve *b = &cv[j];
            if (b->opts.method != CAIMG_ATTACK_PGD || !same_target(&b->opts, &a->opts)) continue;
            members++;
            if (!main_c || b->nbudgets > main_c->nbudgets ||
                (b->nbudgets == main_c->nbudgets && b->opts.eot > main_c->opts.eot))
                main_c = b;
            if (b->opts.eot == 1) one = b;
        }
        if (members < 2) continue;
        if (one && one != main_c) compare(&l, p, main_c, one, "EOT >= single sample", tol);
        double bstar = NAN;
        size_t bcount = 0;
        for (size_t k = 0; k < main_c->nbudgets; k++) {
            double v = main_c->res[k].budget;
            if (v == 0) continue;
            size_t cnt = 0;
            for (size_t j = i; j < nc; j++)
                if (cv[j].opts.method == CAIMG_ATTACK_PGD && same_target(&cv[j].opts, &a->opts) &&
                    find_budget(&cv[j], v) >= 0)
                    cnt++;
            if (cnt > bcount) { bcount = cnt; bstar = v; }
        }
        if (bcount < 2) continue;
        /* Strengths at bstar by M, sorted by M. */
        size_t ms[64], nm = 0;
        double ss[64];
        for (size_t j = i; j < nc && nm < 64; j++) {
            const caimg_attack_curve *b = &cv[j];
            if (b->opts.method != CAIMG_ATTACK_PGD || !same_target(&b->opts, &a->opts)) continue;
            long k = find_budget(b, bstar);
            if (k < 0) continue;
            size_t q = nm++;
            while (q > 0 && ms[q - 1] > b->opts.eot) {
                ms[q] = ms[q - 1];
                ss[q] = ss[q - 1];
                q--;
            }
            ms[q] = b->opts.eot;
            ss[q] = b->res[k].strength;
        }
        caimg_attack_check *k = add_check(&l);
        if (!k) break;
        snprintf(k->name, sizeof k->name, "EOT converged");
        double s1 = ss[nm - 1], s0 = ss[nm - 2];
        k->status = fabs(s1 - s0) <= 5 * tol_abs(tol, s0, s1);
        caimg_attack_name(p, &a->opts, name, sizeof name);
        char *dash = strstr(name, "-eot");
        if (dash) *dash = '\0';
        int w = snprintf(k->detail, sizeof k->detail, "%s at budget %g: strength", name, bstar);
        for (size_t q = 0; q < nm && w > 0 && (size_t)w < sizeof k->detail; q++)
            w += snprintf(k->detail + w, sizeof k->detail - (size_t)w, "%s M=%zu %.4g", q ? "," : "",
                          ms[q], ss[q]);
    }
    if (l.oom) {
        free(l.v);
        return caimg_error(CAIMG_ENOMEM, "out of memory for the attack checks");
    }
    *checks = l.v;
    *nchecks = l.n;
    return 0;
}

/* ---- TSV ------------------------------------------------------------------------------ */

static void put_num(FILE *fp, double v)
{
    if (isnan(v)) fprintf(fp, "\tnan");
    else fprintf(fp, "\t%.6g", v);
}

void caimg_attack_write_tsv(FILE *fp, const caimg_attack_plan *p, const caimg_attack_curve *c,
                            size_t nc, int header, const char *const *extra_names,
                            const char *const *extra_values, size_t nextra)
{
    if (header) {
        for (size_t e = 0; e < nextra; e++) fprintf(fp, "%s\t", extra_names[e]);
        fprintf(fp, "name\tmethod\tbudget_type\tobjective\teot\tbudget\tn\tabs_change\trel_change\t"
                    "corr\tdecode_acc\tsuccess\tlinf\tl2\tfeature\tneuron_change\tstrength\tseconds\n");
    }
    char name[96];
    for (size_t i = 0; i < nc; i++) {
        caimg_attack_name(p, &c[i].opts, name, sizeof name);
        for (size_t k = 0; k < c[i].nbudgets; k++) {
            const caimg_attack_result *r = &c[i].res[k];
            for (size_t e = 0; e < nextra; e++) fprintf(fp, "%s\t", extra_values[e]);
            fprintf(fp, "%s\t%s\t%s\t%s\t%zu\t%g\t%zu", name, caimg_attack_method_name(c[i].opts.method),
                    caimg_attack_budget_name(c[i].opts.budget),
                    caimg_attack_objective_name(c[i].opts.objective), c[i].opts.eot, r->budget, r->n);
            const double v[] = {r->abs_change, r->rel_change, r->corr, r->decode_acc, r->success,
                                r->linf, r->l2, r->feature, r->neuron_change, r->strength, r->seconds};
            for (size_t q = 0; q < sizeof v / sizeof v[0]; q++) put_num(fp, v[q]);
            fputc('\n', fp);
        }
    }
}

/* ---- HDF5 ------------------------------------------------------------------------------ */

static const char *const metric_names[] = {
    "budget", "abs_change", "rel_change", "corr", "decode_acc", "success", "linf", "l2",
    "feature", "neuron_change", "strength", "seconds"};

static double metric(const caimg_attack_result *r, int k)
{
    switch (k) {
    case 0: return r->budget;
    case 1: return r->abs_change;
    case 2: return r->rel_change;
    case 3: return r->corr;
    case 4: return r->decode_acc;
    case 5: return r->success;
    case 6: return r->linf;
    case 7: return r->l2;
    case 8: return r->feature;
    case 9: return r->neuron_change;
    case 10: return r->strength;
    default: return r->seconds;
    }
}

int caimg_attack_save(caimg_h5 *f, const char *group, const caimg_attack_plan *p,
                      const caimg_attack_curve *c, size_t nc, const caimg_attack_check *checks,
                      size_t nchecks)
{
    char g[512], name[640], cname[96];
    int st = caimg_h5_mkgroup(f, group);
    if (!st) st = caimg_h5_set_attr_double(f, group, "range_lo", p->lo);
    if (!st) st = caimg_h5_set_attr_double(f, group, "range_hi", p->hi);
    if (!st) st = caimg_h5_set_attr_long(f, group, "noisy", p->noisy);
    if (!st) st = caimg_h5_set_attr_long(f, group, "eval_samples", (long)p->K);
    if (!st) st = caimg_h5_set_attr_string(f, group, "decoder", caimg_attack_decoder_name(p->decoder));
    if (!st) st = caimg_h5_set_attr_double(f, group, "success_threshold", p->tau);
    if (!st) st = caimg_h5_set_attr_double(f, group, "clean_decode_acc", p->clean_acc);
    if (!st) st = caimg_h5_set_attr_long(f, group, "nvalid", (long)p->nvalid);
    if (!st)
        st = caimg_h5_set_attr_string(f, group, "feature_layer",
                                      p->layer > 0 ? caimg_ann_layer_name(p->m, (size_t)p->layer) : "");
    size_t d2[2] = {p->n, p->N};
    snprintf(name, sizeof name, "%s/clean_pred", group);
    if (!st) st = caimg_h5_write(f, name, CAIMG_DT_F32, 2, d2, p->clean);
    snprintf(name, sizeof name, "%s/sd", group);
    if (!st) st = caimg_h5_write(f, name, CAIMG_DT_F64, 1, &p->N, p->sd);
    double *v = caimg_malloc(64, sizeof *v, "attack results");
    if (!v && !st) st = CAIMG_ENOMEM;
    for (size_t i = 0; i < nc && !st; i++) {
        const caimg_attack_curve *cv = &c[i];
        caimg_attack_name(p, &cv->opts, cname, sizeof cname);
        snprintf(g, sizeof g, "%s/curves/%s", group, cname);
        st = caimg_h5_mkgroup(f, g);
        const caimg_attack_opts *o = &cv->opts;
        if (!st) st = caimg_h5_set_attr_string(f, g, "method", caimg_attack_method_name(o->method));
        if (!st) st = caimg_h5_set_attr_string(f, g, "budget_type", caimg_attack_budget_name(o->budget));
        if (!st) st = caimg_h5_set_attr_string(f, g, "objective", caimg_attack_objective_name(o->objective));
        if (!st) st = caimg_h5_set_attr_long(f, g, "eot", (long)o->eot);
        if (!st) st = caimg_h5_set_attr_long(f, g, "steps", (long)o->steps);
        if (!st) st = caimg_h5_set_attr_double(f, g, "step_scale", o->step_scale);
        if (!st) st = caimg_h5_set_attr_long(f, g, "restarts", (long)o->restarts);
        if (!st) st = caimg_h5_set_attr_long(f, g, "random_start", o->random_start);
        if (!st) st = caimg_h5_set_attr_long(f, g, "neuron", (long)o->neuron);
        if (!st) st = caimg_h5_set_attr_long(f, g, "direction", o->direction);
        if (!st) {
            char seed[32];
            snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
            st = caimg_h5_set_attr_string(f, g, "seed", seed);
        }
        if (!st && cv->nbudgets > 64) {
            double *nv = realloc(v, cv->nbudgets * sizeof *v);
            if (!nv) st = caimg_error(CAIMG_ENOMEM, "out of memory");
            else v = nv;
        }
        for (int k = 0; k < 12 && !st; k++) {
            for (size_t b = 0; b < cv->nbudgets; b++) v[b] = metric(&cv->res[b], k);
            snprintf(name, sizeof name, "%s/%s", g, metric_names[k]);
            st = caimg_h5_write(f, name, CAIMG_DT_F64, 1, &cv->nbudgets, v);
        }
        if (!st && cv->images) {
            size_t shape[3];
            caimg_ann_layer_shape(p->m, 0, shape);
            size_t d5[5] = {cv->nbudgets, p->n, shape[0], shape[1], shape[2]};
            snprintf(name, sizeof name, "%s/images", g);
            st = caimg_h5_write(f, name, CAIMG_DT_F32, 5, d5, cv->images);
        }
    }
    free(v);
    if (!st && nchecks) {
        snprintf(g, sizeof g, "%s/checks", group);
        int32_t *s = caimg_malloc(nchecks, sizeof *s, "check results");
        size_t len = 1;
        for (size_t i = 0; i < nchecks; i++) len += strlen(checks[i].name) + strlen(checks[i].detail) + 2;
        char *names = caimg_malloc(len, 1, "check names"), *det = caimg_malloc(len, 1, "check details");
        if (!s || !names || !det) st = CAIMG_ENOMEM;
        if (!st) {
            names[0] = det[0] = '\0';
            for (size_t i = 0; i < nchecks; i++) {
                s[i] = checks[i].status;
                strcat(names, checks[i].name);
                strcat(det, checks[i].detail);
                if (i + 1 < nchecks) {
                    strcat(names, "\n");
                    strcat(det, "\n");
                }
            }
            snprintf(name, sizeof name, "%s/passed", g);
            st = caimg_h5_write(f, name, CAIMG_DT_I32, 1, &nchecks, s);
            if (!st) st = caimg_h5_set_attr_string(f, name, "names", names);
            if (!st) st = caimg_h5_set_attr_string(f, name, "details", det);
        }
        free(s);
        free(names);
        free(det);
    }
    return st;
}

/* ---- SVG ------------------------------------------------------------------------------- */

#define PANEL_W 340
#define PANEL_H 230

char *caimg_attack_svg_panels(const caimg_attack_panel *panels, size_t np, size_t ncols,
                              const char *title)
{
    if (ncols == 0) ncols = 1;
    size_t nrows = (np + ncols - 1) / ncols;
    size_t cols = np < ncols ? np : ncols;
    if (cols == 0) cols = 1;
    int W = (int)cols * (PANEL_W + 10) + 10, H = (int)nrows * (PANEL_H + 34) + 36;
    caimg_str b;
    caimg_str_init(&b);
    caimg_svg_document_begin(&b, W, H, title);
    size_t maxl = 0;
    for (size_t i = 0; i < np; i++) maxl = panels[i].nlines > maxl ? panels[i].nlines : maxl;
    caimg_series *s = calloc(maxl ? maxl : 1, sizeof *s);
    if (!s) {
        caimg_str_free(&b);
        caimg_error(CAIMG_ENOMEM, "out of memory for the plot");
        return NULL;
    }
    for (size_t i = 0; i < np; i++) {
        const caimg_attack_panel *pa = &panels[i];
        double x0 = 10 + (double)(i % ncols) * (PANEL_W + 10);
        double y0 = 36 + (double)(i / ncols) * (PANEL_H + 34);
        caimg_str_printf(&b, "<text x='%.1f' y='%.1f' text-anchor='middle' class='lab'>",
                         x0 + PANEL_W / 2.0, y0 + 12);
        caimg_str_escape(&b, pa->title ? pa->title : "");
        caimg_str_printf(&b, "</text>\n");
        for (size_t k = 0; k < pa->nlines; k++) {
            memset(&s[k], 0, sizeof s[k]);
            s[k].label = pa->lines[k].label;
            s[k].x = pa->lines[k].x;
            s[k].y = pa->lines[k].y;
            s[k].n = pa->lines[k].n;
            s[k].markers = 1;
            s[k].color = pa->lines[k].color;
        }
        caimg_plot_opts o;
        memset(&o, 0, sizeof o);
        o.title = pa->title;
        o.xlabel = pa->xlabel;
        o.ylabel = pa->ylabel;
        o.width = PANEL_W;
        o.height = PANEL_H;
        o.ymin = pa->ymin;
        o.ymax = pa->ymax;
        caimg_svg_lines_at(&b, &o, s, pa->nlines, x0, y0 + 18);
    }
    free(s);
    caimg_svg_document_end(&b);
    if (b.failed) {
        caimg_str_free(&b);
        caimg_error(CAIMG_ENOMEM, "out of memory for the plot");
        return NULL;
    }
    return b.s;
}

char *caimg_attack_svg(const caimg_attack_plan *p, const caimg_attack_curve *c, size_t nc,
                       const char *title)
{
    /* Rows: budget types present; columns: three metrics. */
    static const char *const ylab[3] = {"relative response change", "robust decoding accuracy",
                                        "clean-attacked correlation"};
    static const char *const xlab[3] = {"L-inf budget (fraction of range)",
                                        "L2 budget (RMS fraction of range)",
                                        "feature budget (relative L2)"};
    caimg_attack_panel panels[9];
    caimg_attack_line *lines = calloc(nc ? 9 * nc : 1, sizeof *lines);
    char (*labels)[96] = calloc(nc ? nc : 1, sizeof *labels);
    size_t total = 0;
    for (size_t i = 0; i < nc; i++) total += c[i].nbudgets;
    double *buf = calloc(total ? 4 * total : 1, sizeof *buf);
    if (!lines || !labels || !buf) {
        free(lines); free(labels); free(buf);
        caimg_error(CAIMG_ENOMEM, "out of memory for the plot");
        return NULL;
    }
    /* x and the three metrics of every curve, laid out once. */
    size_t off = 0;
    double **xs = calloc(nc ? nc : 1, sizeof *xs);
    if (!xs) {
        free(lines); free(labels); free(buf);
        caimg_error(CAIMG_ENOMEM, "out of memory for the plot");
        return NULL;
    }
    for (size_t i = 0; i < nc; i++) {
        xs[i] = buf + off;
        size_t nb = c[i].nbudgets;
        for (size_t k = 0; k < nb; k++) {
            xs[i][k] = c[i].res[k].budget;
            xs[i][nb + k] = c[i].res[k].rel_change;
            xs[i][2 * nb + k] = c[i].res[k].decode_acc;
            xs[i][3 * nb + k] = c[i].res[k].corr;
        }
        off += 4 * nb;
    }
    /* Short labels that fit the legends: the method and, for a noisy
     * model, its M; the objective too when the curves mix objectives. */
    int mixed = 0;
    for (size_t i = 1; i < nc; i++) mixed |= c[i].opts.objective != c[0].opts.objective;
    for (size_t i = 0; i < nc; i++) {
        int k = snprintf(labels[i], sizeof labels[i], "%s", caimg_attack_method_name(c[i].opts.method));
        if (p->noisy && c[i].opts.method != CAIMG_ATTACK_RANDOM && k > 0)
            k += snprintf(labels[i] + k, sizeof labels[i] - (size_t)k, " M=%zu", c[i].opts.eot);
        if (mixed && k > 0)
            snprintf(labels[i] + k, sizeof labels[i] - (size_t)k, " %s",
                     caimg_attack_objective_name(c[i].opts.objective));
    }
    static const char *const method_color[3] = {"#1f77b4", "#ff7f0e", "#d62728"};
    size_t np = 0, nl = 0;
    for (int bt = 0; bt < 3; bt++) {
        for (int mtr = 0; mtr < 3; mtr++) {
            size_t l0 = nl;
            for (size_t i = 0; i < nc; i++) {
                if ((int)c[i].opts.budget != bt || c[i].nbudgets < 2) continue;
                lines[nl].label = labels[i];
                lines[nl].x = xs[i];
                lines[nl].y = xs[i] + (size_t)(mtr + 1) * c[i].nbudgets;
                lines[nl].n = c[i].nbudgets;
                lines[nl].color = mixed ? NULL : method_color[c[i].opts.method];
                nl++;
            }
            if (nl == l0) break;
            caimg_attack_panel *pa = &panels[np++];
            memset(pa, 0, sizeof *pa);
            pa->title = ylab[mtr];
            pa->xlabel = xlab[bt];
            pa->lines = lines + l0;
            pa->nlines = nl - l0;
            if (mtr == 1) { pa->ymin = 0; pa->ymax = 1.05; }
        }
    }
    char *svg = caimg_attack_svg_panels(panels, np, 3, title);
    free(lines); free(labels); free(buf); free(xs);
    return svg;
}
