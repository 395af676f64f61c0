/* eval.c -- scoring stage outputs against simulated ground truth.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <hdf5.h>

#include "caimg/eval.h"
#include "caimg/h5io.h"
#include "caimg/simulate.h"
#include "internal.h"

/* ---- assignment ---------------------------------------------------------- */

int caimg_assign(const double *cost, size_t nr, size_t nc, long *row_to_col)
{
    for (size_t i = 0; i < nr * nc; i++)
        if (!isfinite(cost[i])) return caimg_error(CAIMG_EINVAL, "assignment cost %zu is not finite", i);
    for (size_t r = 0; r < nr; r++) row_to_col[r] = -1;
    if (!nr || !nc) return 0;
    /* The algorithm wants rows <= columns; otherwise solve the transpose. */
    int tr = nr > nc;
    size_t n = tr ? nc : nr, m = tr ? nr : nc;
#define A(i, j) (tr ? cost[((j) - 1) * nc + ((i) - 1)] : cost[((i) - 1) * nc + ((j) - 1)])
    double *u = caimg_calloc(n + 1, sizeof(double), "assignment potentials");
    double *v = caimg_calloc(m + 1, sizeof(double), "assignment potentials");
    double *minv = caimg_malloc(m + 1, sizeof(double), "assignment scratch");
    size_t *p = caimg_calloc(m + 1, sizeof(size_t), "assignment scratch");
    size_t *way = caimg_calloc(m + 1, sizeof(size_t), "assignment scratch");
    unsigned char *used = caimg_malloc(m + 1, 1, "assignment scratch");
    int rc = 0;
    if (!u || !v || !minv || !p || !way || !used) {
        rc = CAIMG_ENOMEM;
        goto out;
    }
    /* Rows are added one at a time; each addition finds a shortest
     * augmenting path in reduced costs (Dijkstra over columns) and updates
     * the dual potentials so that reduced costs stay non-negative. */
    for (size_t i = 1; i <= n; i++) {
        p[0] = i;
        size_t j0 = 0;
        for (size_t j = 0; j <= m; j++) {
            minv[j] = INFINITY;
            used[j] = 0;
        }
        do {
            used[j0] = 1;
            size_t i0 = p[j0], j1 = 0;
            double delta = INFINITY;
            for (size_t j = 1; j <= m; j++) {
                if (used[j]) continue;
                double cur = A(i0, j) - u[i0] - v[j];
                if (cur < minv[j]) {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if (minv[j] < delta) {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for (size_t j = 0; j <= m; j++) {
                if (used[j]) {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
        } while (p[j0] != 0);
        do {
            size_t j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0);
    }
    for (size_t j = 1; j <= m; j++) {
        if (!p[j]) continue;
        if (tr) row_to_col[j - 1] = (long)(p[j] - 1);
        else row_to_col[p[j] - 1] = (long)(j - 1);
    }
#undef A
out:
    free(u);
    free(v);
    free(minv);
    free(p);
    free(way);
    free(used);
    return rc;
}

/* ---- motion ----------------------------------------------------------------- */

void caimg_eval_shifts(const float *truth, const float *est, size_t T, int remove_offset,
                       caimg_eval_shifts_result *r)
{
    memset(r, 0, sizeof *r);
    r->frames = T;
    if (!T) return;
    if (remove_offset) {
        for (size_t t = 0; t < T; t++)
            for (int a = 0; a < 2; a++) r->offset[a] += (double)est[2 * t + a] - truth[2 * t + a];
        r->offset[0] /= (double)T;
        r->offset[1] /= (double)T;
    }
    double ss = 0;
    for (size_t t = 0; t < T; t++) {
        double ey = est[2 * t] - truth[2 * t] - r->offset[0];
        double ex = est[2 * t + 1] - truth[2 * t + 1] - r->offset[1];
        double e2 = ey * ey + ex * ex;
        ss += e2;
        if (sqrt(e2) > r->max) r->max = sqrt(e2);
    }
    r->rms = sqrt(ss / (double)T);
}

/* ---- ROI matching ------------------------------------------------------------- */

void caimg_eval_match_free(caimg_eval_match *m)
{
    if (!m) return;
    free(m->roi_of_true);
    free(m->true_of_roi);
    free(m->iou);
    memset(m, 0, sizeof *m);
}

typedef struct {
    size_t a, b;       /* truth, roi */
    double iou;
} pair;

static size_t uf_find(size_t *par, size_t x)
{
    while (par[x] != x) {
        par[x] = par[par[x]];
        x = par[x];
    }
    return x;
}

int caimg_eval_match_masks(const caimg_masks *truth, const caimg_masks *rois, size_t Y,
                           size_t X, double iou_min, const unsigned char *counted,
                           caimg_eval_match *m)
{
    memset(m, 0, sizeof *m);
    size_t NT = truth->n, NR = rois->n, npix = Y * X;
    m->ntrue = NT;
    m->nroi = NR;
    m->roi_of_true = caimg_malloc(NT + 1, sizeof(long), "a match");
    m->true_of_roi = caimg_malloc(NR + 1, sizeof(long), "a match");
    m->iou = caimg_calloc(NT + 1, sizeof(double), "a match");
    size_t *tstart = caimg_calloc(npix + 1, sizeof(size_t), "a pixel map");
    size_t *tarea = caimg_calloc(NT + 1, sizeof(size_t), "mask areas");
    double *tcy = caimg_calloc(NT + 1, sizeof(double), "centroids");
    double *tcx = caimg_calloc(NT + 1, sizeof(double), "centroids");
    size_t *stamp = caimg_calloc(npix + 1, sizeof(size_t), "a pixel map");
    size_t *inter = caimg_calloc(NT + 1, sizeof(size_t), "intersections");
    size_t *touched = caimg_malloc(NT + 1, sizeof(size_t), "intersections");
    size_t *tlist = NULL, *fill = NULL, *par = NULL;
    pair *pairs = NULL;
    double *cost = NULL;
    long *asg = NULL;
    size_t npairs = 0, cap = 0, total = 0;
    int rc = 0;
    if (!m->roi_of_true || !m->true_of_roi || !m->iou || !tstart || !tarea || !tcy || !tcx
        || !stamp || !inter || !touched) {
        rc = CAIMG_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < NT; i++) m->roi_of_true[i] = -1;
    for (size_t j = 0; j < NR; j++) m->true_of_roi[j] = -1;

    /* Truth masks as a pixel -> masks map (CSR), duplicates removed. */
#define PIX_OK(s, k) ((!(s)->keep || (s)->keep[k]) && (s)->index[2 * (k)] >= 0 \
                      && (size_t)(s)->index[2 * (k)] < Y && (s)->index[2 * (k) + 1] >= 0 \
                      && (size_t)(s)->index[2 * (k) + 1] < X)
#define PIX(s, k) ((size_t)(s)->index[2 * (k)] * X + (size_t)(s)->index[2 * (k) + 1])
    for (size_t i = 0; i < NT; i++)
        for (int64_t k = truth->start[i]; k < truth->start[i + 1]; k++) {
            if (!PIX_OK(truth, k) || stamp[PIX(truth, k)] == i + 1) continue;
            stamp[PIX(truth, k)] = i + 1;
            tstart[PIX(truth, k) + 1]++;
            tarea[i]++;
            tcy[i] += truth->index[2 * k];
            tcx[i] += truth->index[2 * k + 1];
            total++;
        }
    for (size_t p = 0; p < npix; p++) tstart[p + 1] += tstart[p];
    tlist = caimg_malloc(total + 1, sizeof(size_t), "a pixel map");
    fill = caimg_calloc(npix + 1, sizeof(size_t), "a pixel map");
    if (!tlist || !fill) {
        rc = CAIMG_ENOMEM;
        goto out;
    }
    memset(stamp, 0, npix * sizeof(size_t));
    for (size_t i = 0; i < NT; i++)
        for (int64_t k = truth->start[i]; k < truth->start[i + 1]; k++) {
            if (!PIX_OK(truth, k) || stamp[PIX(truth, k)] == i + 1) continue;
            size_t px = PIX(truth, k);
            stamp[px] = i + 1;
            tlist[tstart[px] + fill[px]++] = i;
        }

    /* Candidate pairs: intersections of each ROI with the truth masks. */
    memset(stamp, 0, npix * sizeof(size_t));
    double *rcy = caimg_calloc(NR + 1, sizeof(double), "centroids");
    double *rcx = caimg_calloc(NR + 1, sizeof(double), "centroids");
    if (!rcy || !rcx) {
        free(rcy);
        free(rcx);
        rc = CAIMG_ENOMEM;
        goto out;
    }
    for (size_t j = 0; j < NR; j++) {
        size_t area = 0, nt = 0;
        for (int64_t k = rois->start[j]; k < rois->start[j + 1]; k++) {
            if (!PIX_OK(rois, k) || stamp[PIX(rois, k)] == j + 1) continue;
            size_t px = PIX(rois, k);
            stamp[px] = j + 1;
            area++;
            rcy[j] += rois->index[2 * k];
            rcx[j] += rois->index[2 * k + 1];
            for (size_t q = tstart[px]; q < tstart[px + 1]; q++) {
                size_t i = tlist[q];
                if (!inter[i]++) touched[nt++] = i;
            }
        }
        if (area) {
            rcy[j] /= (double)area;
            rcx[j] /= (double)area;
        }
        for (size_t q = 0; q < nt; q++) {
            size_t i = touched[q];
            double iou = (double)inter[i] / (double)(area + tarea[i] - inter[i]);
            inter[i] = 0;
            if (!(iou > iou_min)) continue;
            if (npairs == cap) {
                cap = cap ? 2 * cap : 64;
                pair *np = realloc(pairs, cap * sizeof *np);
                if (!np) {
                    free(rcy);
                    free(rcx);
                    rc = caimg_error(CAIMG_ENOMEM, "out of memory matching ROIs");
                    goto out;
                }
                pairs = np;
            }
            pairs[npairs++] = (pair){i, j, iou};
        }
    }
    for (size_t i = 0; i < NT; i++)
        if (tarea[i]) {
            tcy[i] /= (double)tarea[i];
            tcx[i] /= (double)tarea[i];
        }

    /* Connected groups of candidate pairs (truth nodes 0..NT-1, ROI nodes
     * NT..NT+NR-1); each group is solved by the Hungarian algorithm with
     * cost -(K + IoU), K the group size, so that no assignment with fewer
     * pairs can beat one with more. */
    par = caimg_malloc(NT + NR + 1, sizeof(size_t), "match groups");
    if (!par) {
        free(rcy);
        free(rcx);
        rc = CAIMG_ENOMEM;
        goto out;
    }
    for (size_t k = 0; k < NT + NR; k++) par[k] = k;
    for (size_t q = 0; q < npairs; q++) {
        size_t a = uf_find(par, pairs[q].a), b = uf_find(par, NT + pairs[q].b);
        if (a != b) par[a] = b;
    }
    /* Members of each group, gathered in one pass: first[g] .. linked by
     * next[], so the work is linear in the number of masks. */
    long *gid = caimg_malloc(NT + NR + 1, sizeof(long), "match groups");
    long *loc = caimg_malloc(NT + NR + 1, sizeof(long), "match groups");
    size_t *gt = caimg_malloc(NT + 1, sizeof(size_t), "match groups");
    size_t *gr = caimg_malloc(NR + 1, sizeof(size_t), "match groups");
    size_t *gcount = caimg_calloc(2 * (npairs + 1), sizeof(size_t), "match groups");
    size_t *gstart = caimg_calloc(2 * (npairs + 2), sizeof(size_t), "match groups");
    size_t *members = caimg_malloc(NT + NR + 1, sizeof(size_t), "match groups");
    size_t *pstart = caimg_calloc(npairs + 2, sizeof(size_t), "match groups");
    size_t *plist = caimg_malloc(npairs + 1, sizeof(size_t), "match groups");
    size_t ng = 0;
    if (!gid || !loc || !gt || !gr || !gcount || !gstart || !members || !pstart || !plist)
        rc = CAIMG_ENOMEM;
    if (!rc) {
        for (size_t k = 0; k < NT + NR; k++) gid[k] = -1;
        /* Number the groups that have pairs. */
        for (size_t q = 0; q < npairs; q++) {
            size_t root = uf_find(par, pairs[q].a);
            if (gid[root] < 0) gid[root] = (long)ng++;
        }
        /* Count and list members (truth first, then ROIs) and pairs per group. */
        for (size_t k = 0; k < NT + NR; k++) {
            long g = gid[uf_find(par, k)];
            if (g >= 0) gcount[g]++;
        }
        for (size_t g = 0; g < ng; g++) gstart[g + 1] = gstart[g] + gcount[g];
        memset(gcount, 0, ng * sizeof(size_t));
        for (size_t k = 0; k < NT + NR; k++) {
            long g = gid[uf_find(par, k)];
            if (g >= 0) members[gstart[g] + gcount[g]++] = k;
        }
        for (size_t q = 0; q < npairs; q++) pstart[gid[uf_find(par, pairs[q].a)] + 1]++;
        for (size_t g = 0; g < ng; g++) pstart[g + 1] += pstart[g];
        memset(gcount, 0, ng * sizeof(size_t));
        for (size_t q = 0; q < npairs; q++) {
            size_t g = (size_t)gid[uf_find(par, pairs[q].a)];
            plist[pstart[g] + gcount[g]++] = q;
        }
    }
    for (size_t g = 0; !rc && g < ng; g++) {
        size_t nt = 0, nr = 0;
        for (size_t k = gstart[g]; k < gstart[g + 1]; k++) {
            size_t node = members[k];
            if (node < NT) {
                loc[node] = (long)nt;
                gt[nt++] = node;
            } else {
                loc[node] = (long)nr;
                gr[nr++] = node - NT;
            }
        }
        double K = (double)(nt + nr + 1);
        free(cost);
        free(asg);
        cost = calloc(nt * nr, sizeof(double));
        asg = malloc(nt * sizeof(long));
        if (!cost || !asg) {
            rc = caimg_error(CAIMG_ENOMEM, "out of memory matching ROIs");
            break;
        }
        for (size_t k = pstart[g]; k < pstart[g + 1]; k++) {
            const pair *pr = &pairs[plist[k]];
            cost[(size_t)loc[pr->a] * nr + (size_t)loc[NT + pr->b]] = -(K + pr->iou);
        }
        rc = caimg_assign(cost, nt, nr, asg);
        for (size_t a = 0; !rc && a < nt; a++) {
            if (asg[a] < 0 || cost[a * nr + (size_t)asg[a]] == 0) continue;
            size_t i = gt[a], j = gr[asg[a]];
            m->roi_of_true[i] = (long)j;
            m->true_of_roi[j] = (long)i;
            m->iou[i] = -cost[a * nr + (size_t)asg[a]] - K;
        }
    }
    free(gid);
    free(loc);
    free(gt);
    free(gr);
    free(gcount);
    free(gstart);
    free(members);
    free(pstart);
    free(plist);
    if (rc) {
        free(rcy);
        free(rcx);
        goto out;
    }
    double siou = 0, scen = 0;
    for (size_t i = 0; i < NT; i++) {
        int c = counted ? counted[i] != 0 : 1;
        m->counted += c;
        if (m->roi_of_true[i] < 0) continue;
        size_t j = (size_t)m->roi_of_true[i];
        m->matched_all++;
        m->matched += c;
        siou += m->iou[i];
        scen += hypot(tcy[i] - rcy[j], tcx[i] - rcx[j]);
    }
    free(rcy);
    free(rcx);
    m->precision = NR ? (double)m->matched_all / (double)NR : NAN;
    m->recall = m->counted ? (double)m->matched / (double)m->counted : NAN;
    m->f1 = (m->precision + m->recall > 0) ? 2 * m->precision * m->recall / (m->precision + m->recall)
                                           : 0.0;
    if (!NR || !m->counted) m->f1 = (NR || m->counted) ? 0.0 : NAN;
    m->mean_iou = m->matched_all ? siou / (double)m->matched_all : NAN;
    m->centroid_err = m->matched_all ? scen / (double)m->matched_all : NAN;
#undef PIX_OK
#undef PIX
out:
    free(tstart);
    free(tarea);
    free(tcy);
    free(tcx);
    free(stamp);
    free(inter);
    free(touched);
    free(tlist);
    free(fill);
    free(par);
    free(pairs);
    free(cost);
    free(asg);
    if (rc) caimg_eval_match_free(m);
    return rc;
}

/* ---- correlations -------------------------------------------------------------- */

static double pearson_d(const double *a, const double *b, size_t n)
{
    if (n < 2) return NAN;
    double ma = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        ma += a[i];
        mb += b[i];
    }
    ma /= (double)n;
    mb /= (double)n;
    double sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < n; i++) {
        double x = a[i] - ma, y = b[i] - mb;
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    if (!(saa > 0) || !(sbb > 0)) return NAN;
    return sab / sqrt(saa * sbb);
}

double caimg_eval_corr(const float *a, const float *b, size_t n)
{
    double *d = malloc(2 * (n ? n : 1) * sizeof(double));
    if (!d) return NAN;
    for (size_t i = 0; i < n; i++) {
        d[i] = a[i];
        d[n + i] = b[i];
    }
    double r = pearson_d(d, d + n, n);
    free(d);
    return r;
}

double caimg_eval_corr_binned(const float *a, const float *b, size_t n, double fs, double bin)
{
    if (!(fs > 0) || !(bin > 0)) return NAN;
    double dur = (double)n / fs;
    size_t nb = (size_t)floor(dur / bin + 1e-9);
    if (nb < 2) return NAN;
    double *d = calloc(2 * nb, sizeof(double));
    if (!d) return NAN;
    double dt = 1.0 / fs;
    for (size_t t = 0; t < n; t++) {
        double t0 = (double)t * dt, t1 = t0 + dt;
        size_t k = (size_t)floor(t0 / bin);
        for (; k < nb && (double)k * bin < t1; k++) {
            double lo = fmax(t0, (double)k * bin), hi = fmin(t1, (double)(k + 1) * bin);
            if (hi <= lo) continue;
            double w = (hi - lo) / dt;
            d[k] += w * a[t];
            d[nb + k] += w * b[t];
        }
    }
    double r = pearson_d(d, d + nb, nb);
    free(d);
    return r;
}

/* ---- files ----------------------------------------------------------------------- */

void caimg_eval_opts_init(caimg_eval_opts *o)
{
    o->iou = 0.5;
    o->bin = 0.04;
    o->min_spikes = 0;
    o->all_rois = 0;
    o->neuropil_r = 0.7;
    o->keep_offset = 0;
}

void caimg_eval_report_free(caimg_eval_report *r)
{
    if (!r) return;
    free(r->rows);
    free(r->roi);
    free(r->counted);
    free(r->iou);
    free(r->trace_corr);
    free(r->spike_corr);
    free(r->model_corr);
    free(r->signal_corr);
    free(r);
}

static int add_row(caimg_eval_report *r, const char *section, const char *metric, double v)
{
    caimg_eval_row *n = realloc(r->rows, (r->nrows + 1) * sizeof *n);
    if (!n) return caimg_error(CAIMG_ENOMEM, "out of memory");
    r->rows = n;
    snprintf(n[r->nrows].section, sizeof n->section, "%s", section);
    snprintf(n[r->nrows].metric, sizeof n->metric, "%s", metric);
    n[r->nrows].value = v;
    r->nrows++;
    return 0;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Mean and median of the finite values of v[0..n), and their count. */
static void summarise(const double *v, size_t n, double *mean, double *median, size_t *count)
{
    double *s = malloc((n ? n : 1) * sizeof(double));
    size_t k = 0;
    double sum = 0;
    for (size_t i = 0; s && i < n; i++)
        if (isfinite(v[i])) {
            s[k++] = v[i];
            sum += v[i];
        }
    *count = k;
    *mean = k ? sum / (double)k : NAN;
    if (k && s) {
        qsort(s, k, sizeof *s, cmp_dbl);
        *median = k % 2 ? s[k / 2] : 0.5 * (s[k / 2 - 1] + s[k / 2]);
    } else {
        *median = NAN;
    }
    free(s);
}

typedef struct {
    caimg_h5 *f;
    size_t Y, X, T, N;
    double fs;
} truthfile;

/* Read a dataset expecting an exact shape (dims[i] == 0 accepts any). */
static int read_shape(caimg_h5 *f, const char *name, caimg_dtype dt, int rank,
                      const size_t *want, size_t *got, void **data)
{
    int r;
    size_t d[CAIMG_H5_MAXRANK];
    int rc = caimg_h5_read(f, name, dt, rank, &r, d, data);
    if (rc) return rc;
    for (int i = 0; i < rank; i++) {
        if (want && want[i] && d[i] != want[i]) {
            free(*data);
            *data = NULL;
            char ws[96] = "", gs[96] = "";
            for (int k = 0; k < rank; k++) {
                char b[24];
                snprintf(b, sizeof b, "[%zu]", want[k]);
                strcat(ws, want[k] ? b : "[*]");
                snprintf(b, sizeof b, "[%zu]", d[k]);
                strcat(gs, b);
            }
            return caimg_error(CAIMG_EFORMAT, "%s: %s is %s, expected %s", caimg_h5_path(f), name,
                               gs, ws);
        }
        if (got) got[i] = d[i];
    }
    return 0;
}

/* A 1-D dataset read as int64 with HDF5 directly: the offsets of ragged
 * pixel lists are int64 in caimg-h5(5), which is not one of the caimg
 * sample types, and HDF5 converts any integer or float type on reading. */
static int read_i64(caimg_h5 *f, const char *name, size_t *n, double **out)
{
    *out = NULL;
    int rank;
    size_t d[CAIMG_H5_MAXRANK];
    int rc = caimg_h5_dims(f, name, &rank, d);
    if (rc) return rc;
    if (rank != 1)
        return caimg_error(CAIMG_EFORMAT, "%s: %s has rank %d, expected 1", caimg_h5_path(f), name, rank);
    int64_t *v = caimg_malloc(d[0] + 1, sizeof(int64_t), name);
    double *dv = caimg_malloc(d[0] + 1, sizeof(double), name);
    if (!v || !dv) {
        free(v);
        free(dv);
        return CAIMG_ENOMEM;
    }
    hid_t ds = H5Dopen2(caimg_h5_hid(f), name, H5P_DEFAULT);
    hid_t ty = ds >= 0 ? H5Dget_type(ds) : H5I_INVALID_HID;
    H5T_class_t cl = ty >= 0 ? H5Tget_class(ty) : H5T_NO_CLASS;
    if (ds < 0 || (cl != H5T_INTEGER && cl != H5T_FLOAT)
        || (d[0] && H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0))
        rc = caimg_error(CAIMG_EFORMAT, "%s: cannot read %s as integers", caimg_h5_path(f), name);
    if (ty >= 0) H5Tclose(ty);
    if (ds >= 0) H5Dclose(ds);
    for (size_t i = 0; !rc && i < d[0]; i++) dv[i] = (double)v[i];
    free(v);
    if (rc) {
        free(dv);
        return rc;
    }
    *n = d[0];
    *out = dv;
    return 0;
}

/* Ragged pixel lists from a group (pix_start, pix_index, pix_weight). */
static int read_pixlists(caimg_h5 *f, const char *group, size_t *n, int64_t **start,
                         int32_t **index, float **weight)
{
    char a[96], b[96], c[96];
    snprintf(a, sizeof a, "%s/pix_start", group);
    snprintf(b, sizeof b, "%s/pix_index", group);
    snprintf(c, sizeof c, "%s/pix_weight", group);
    double *st = NULL;
    size_t d1[1] = {0}, d2[2] = {0, 0};
    *start = NULL;
    *index = NULL;
    *weight = NULL;
    int rc = read_i64(f, a, &d1[0], &st);
    if (rc) return rc;
    if (d1[0] < 1) {
        free(st);
        return caimg_error(CAIMG_EFORMAT, "%s: %s is empty (it holds N+1 offsets)", caimg_h5_path(f), a);
    }
    size_t want2[2] = {0, 2};
    rc = read_shape(f, b, CAIMG_DT_I32, 2, want2, d2, (void **)index);
    if (!rc) {
        size_t w1 = d2[0];
        rc = read_shape(f, c, CAIMG_DT_F32, 1, &w1, NULL, (void **)weight);
    }
    if (!rc) {
        *n = d1[0] - 1;
        *start = malloc(d1[0] * sizeof(int64_t));
        if (!*start) rc = caimg_error(CAIMG_ENOMEM, "out of memory");
        for (size_t i = 0; !rc && i < d1[0]; i++) {
            (*start)[i] = (int64_t)st[i];
            if (st[i] != floor(st[i]) || st[i] < 0 || st[i] > (double)d2[0]
                || (i && st[i] < st[i - 1]) || (i == 0 && st[0] != 0) || (i == d1[0] - 1 && st[i] != (double)d2[0]))
                rc = caimg_error(CAIMG_EFORMAT, "%s: %s is not a list of increasing offsets from 0 "
                                 "to %zu", caimg_h5_path(f), a, d2[0]);
        }
    }
    free(st);
    if (rc) {
        free(*start);
        free(*index);
        free(*weight);
        *start = NULL;
        *index = NULL;
        *weight = NULL;
    }
    return rc;
}

/* ROI masks from a label image (0 background, k = ROI k-1), for files that
 * have /roi/labels but not the pixel lists. */
static int read_labels(caimg_h5 *f, size_t Y, size_t X, size_t *n, int64_t **start,
                       int32_t **index, float **weight)
{
    int32_t *lab = NULL;
    size_t w[2] = {Y, X};
    *start = NULL;
    *index = NULL;
    *weight = NULL;
    int rc = read_shape(f, "/roi/labels", CAIMG_DT_I32, 2, w, NULL, (void **)&lab);
    if (rc) return rc;
    int32_t mx = 0;
    size_t m = 0;
    for (size_t i = 0; i < Y * X; i++) {
        if (lab[i] < 0) {
            free(lab);
            return caimg_error(CAIMG_EFORMAT, "%s: /roi/labels holds a negative label", caimg_h5_path(f));
        }
        if (lab[i] > mx) mx = lab[i];
        m += lab[i] > 0;
    }
    *n = (size_t)mx;
    *start = calloc((size_t)mx + 2, sizeof(int64_t));
    *index = malloc((2 * m + 2) * sizeof(int32_t));
    *weight = malloc((m + 1) * sizeof(float));
    size_t *fill = calloc((size_t)mx + 1, sizeof(size_t));
    if (!*start || !*index || !*weight || !fill) rc = caimg_error(CAIMG_ENOMEM, "out of memory");
    if (!rc) {
        for (size_t i = 0; i < Y * X; i++)
            if (lab[i] > 0) (*start)[lab[i]]++;
        for (size_t k = 1; k <= (size_t)mx; k++) (*start)[k] += (*start)[k - 1];
        for (size_t i = 0; i < Y * X; i++)
            if (lab[i] > 0) {
                size_t k = (size_t)(*start)[lab[i] - 1] + fill[lab[i] - 1]++;
                (*index)[2 * k] = (int32_t)(i / X);
                (*index)[2 * k + 1] = (int32_t)(i % X);
                (*weight)[k] = 1;
            }
    }
    free(fill);
    free(lab);
    if (rc) {
        free(*start);
        free(*index);
        free(*weight);
        *start = NULL;
        *index = NULL;
        *weight = NULL;
    }
    return rc;
}

/* The inputs' first file that has `name`, or NULL. */
static caimg_h5 *find_in(caimg_h5 **files, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (files[i] && caimg_h5_exists(files[i], name)) return files[i];
    return NULL;
}

/* Truth masks (body >= 0.5) moved by (oy, ox) pixels, rebuilt from the
 * soma geometry so that sub-pixel offsets are exact. */
static int truth_masks(caimg_h5 *tf, size_t N, size_t Y, size_t X, double oy, double ox,
                       int64_t **start, int32_t **index)
{
    static const char *names[] = {"cy", "cx", "ra", "rb", "theta", "nucleus", "nucleus_brightness", "edge"};
    double *col[8] = {0};
    int rc = 0;
    for (int k = 0; k < 8 && !rc; k++) {
        char nm[64];
        snprintf(nm, sizeof nm, "/truth/soma/%s", names[k]);
        size_t w[1] = {N};
        rc = read_shape(tf, nm, CAIMG_DT_F64, 1, w, NULL, (void **)&col[k]);
    }
    size_t cap = 1024, M = 0;
    *start = malloc((N + 1) * sizeof(int64_t));
    *index = malloc(2 * cap * sizeof(int32_t));
    if (!rc && (!*start || !*index)) rc = caimg_error(CAIMG_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < N; i++) {
        caimg_sim_soma so = {col[0][i] + oy, col[1][i] + ox, col[2][i], col[3][i], col[4][i],
                             col[7][i], col[5][i], col[6][i]};
        (*start)[i] = (int64_t)M;
        double rb = (so.ra > so.rb ? so.ra : so.rb) + so.edge + 2;
        long y0 = (long)floor(so.cy - rb), y1 = (long)ceil(so.cy + rb);
        long x0 = (long)floor(so.cx - rb), x1 = (long)ceil(so.cx + rb);
        for (long y = y0 < 0 ? 0 : y0; y <= y1 && y < (long)Y; y++)
            for (long x = x0 < 0 ? 0 : x0; x <= x1 && x < (long)X; x++) {
                float body;
                caimg_sim_soma_eval(&so, (double)y, (double)x, NULL, &body);
                if (body < 0.5f) continue;
                if (M == cap) {
                    cap *= 2;
                    int32_t *ni = realloc(*index, 2 * cap * sizeof(int32_t));
                    if (!ni) {
                        rc = caimg_error(CAIMG_ENOMEM, "out of memory");
                        break;
                    }
                    *index = ni;
                }
                (*index)[2 * M] = (int32_t)y;
                (*index)[2 * M + 1] = (int32_t)x;
                M++;
            }
    }
    if (!rc) (*start)[N] = (int64_t)M;
    for (int k = 0; k < 8; k++) free(col[k]);
    if (rc) {
        free(*start);
        free(*index);
        *start = NULL;
        *index = NULL;
    }
    return rc;
}

static int eval_motion(truthfile *t, caimg_h5 *mf, const caimg_eval_opts *o,
                       caimg_eval_report *r, double *offset)
{
    float *ts = NULL, *es = NULL;
    size_t w[2] = {t->T, 2};
    int rc = read_shape(t->f, "/truth/shifts", CAIMG_DT_F32, 2, w, NULL, (void **)&ts);
    if (!rc) rc = read_shape(mf, "/mc/shifts", CAIMG_DT_F32, 2, w, NULL, (void **)&es);
    if (rc) goto out;
    caimg_eval_shifts_result sr;
    caimg_eval_shifts(ts, es, t->T, !o->keep_offset, &sr);
    offset[0] = sr.offset[0];
    offset[1] = sr.offset[1];
    rc = add_row(r, "motion", "frames", (double)t->T);
    if (!rc) rc = add_row(r, "motion", "rms_error_px", sr.rms);
    if (!rc) rc = add_row(r, "motion", "max_error_px", sr.max);
    if (!rc) rc = add_row(r, "motion", "offset_dy_px", sr.offset[0]);
    if (!rc) rc = add_row(r, "motion", "offset_dx_px", sr.offset[1]);
    if (rc) goto out;

    /* Piecewise-rigid: the total displacement at each patch centre. */
    if (caimg_h5_exists(mf, "/mc/patch_shifts")) {
        float *py = NULL, *px = NULL, *ps = NULL, *nodes = NULL;
        size_t dpy[1], dpx[1];
        rc = read_shape(mf, "/mc/patch_y", CAIMG_DT_F32, 1, NULL, dpy, (void **)&py);
        if (!rc) rc = read_shape(mf, "/mc/patch_x", CAIMG_DT_F32, 1, NULL, dpx, (void **)&px);
        size_t w4[4] = {t->T, rc ? 0 : dpy[0], rc ? 0 : dpx[0], 2};
        if (!rc) rc = read_shape(mf, "/mc/patch_shifts", CAIMG_DT_F32, 4, w4, NULL, (void **)&ps);
        size_t gy = 0, gx = 0;
        double sy = 1, sx = 1;
        if (!rc && caimg_h5_exists(t->f, "/truth/deform")) {
            size_t d4[4];
            rc = read_shape(t->f, "/truth/deform", CAIMG_DT_F32, 4, NULL, d4, (void **)&nodes);
            if (!rc && d4[0] != t->T) rc = caimg_error(CAIMG_EFORMAT, "truth: /truth/deform has %zu frames", d4[0]);
            gy = d4[1];
            gx = d4[2];
            sy = (double)(t->Y - 1) / (double)(gy - 1);
            sx = (double)(t->X - 1) / (double)(gx - 1);
        }
        if (!rc) {
            size_t P = dpy[0] * dpx[0];
            double *off = calloc(2 * (P ? P : 1), sizeof(double));
            if (!off) rc = caimg_error(CAIMG_ENOMEM, "out of memory");
            for (int pass = 0; !rc && pass < 2; pass++) {
                double ss = 0, mx = 0;
                for (size_t tt = 0; tt < t->T; tt++)
                    for (size_t a = 0; a < dpy[0]; a++)
                        for (size_t b = 0; b < dpx[0]; b++) {
                            size_t k = a * dpx[0] + b;
                            double dy = 0, dx = 0;
                            if (nodes)
                                caimg_sim_deform_eval(nodes + tt * gy * gx * 2, gy, gx, sy, sx, py[a], px[b], &dy, &dx);
                            dy += ts[2 * tt];
                            dx += ts[2 * tt + 1];
                            const float *e = ps + ((tt * dpy[0] + a) * dpx[0] + b) * 2;
                            double ey = e[0] - dy, ex = e[1] - dx;
                            if (pass == 0) {
                                off[2 * k] += ey / (double)t->T;
                                off[2 * k + 1] += ex / (double)t->T;
                            } else {
                                if (!o->keep_offset) {
                                    ey -= off[2 * k];
                                    ex -= off[2 * k + 1];
                                }
                                double e2 = ey * ey + ex * ex;
                                ss += e2;
                                if (sqrt(e2) > mx) mx = sqrt(e2);
                            }
                        }
                if (pass == 1) {
                    rc = add_row(r, "field", "patches", (double)P);
                    if (!rc) rc = add_row(r, "field", "rms_error_px", sqrt(ss / (double)(t->T * (P ? P : 1))));
                    if (!rc) rc = add_row(r, "field", "max_error_px", mx);
                }
            }
            free(off);
        }
        free(py);
        free(px);
        free(ps);
        free(nodes);
        if (rc) goto out;
    }
    double bt = 0, be;
    if (caimg_h5_get_attr_double(mf, "/mc", "bidi_offset", &be) == 0) {
        caimg_h5_get_attr_double(t->f, "/truth", "bidi_offset", &bt);
        rc = add_row(r, "bidi", "true_px", bt);
        if (!rc) rc = add_row(r, "bidi", "estimated_px", be);
        if (!rc) rc = add_row(r, "bidi", "error_px", fabs(be - bt));
    }
out:
    free(ts);
    free(es);
    return rc;
}

/* The somatic signal fidelity of matched ROIs (see caimg-eval(1)): for the
 * ROI matched to neuron i, the noise-free somatic signal its weights
 * collect, sig(t) = sum_k A_k G B_k(t) (1 + dF/F_k(t)) with
 * A_k = sum_p w_p a_k(p) / sum_p w_p over the ROI's pixels used for traces
 * (weight > 0, not flagged in /roi/pix_overlap) and a_k the footprint of
 * neuron k moved by (oy, ox); correlated with what a perfect ROI extracts
 * for neuron i, its own noise-free fluorescence baseline_i(t) (1 +
 * dF/F_i(t)).  G B_k(t) is baseline_k(t) sum a_k / sum a_k^2, by the
 * definition of /truth/baseline.  Photon noise and neuropil are left out on
 * purpose: no ROI can remove the first, and the second is the neuropil
 * correction's business; what remains are the ROI's own errors, other
 * cells' fluorescence mixed into the trace. */
static int eval_signal(const truthfile *t, caimg_h5 *rf, size_t NR, const int64_t *rstart,
                       const int32_t *rindex, const float *rweight, const float *calcium,
                       const long *roi_of_true, double oy, double ox, double *out)
{
    static const char *names[] = {"cy", "cx", "ra", "rb", "theta", "nucleus", "nucleus_brightness", "edge"};
    double *col[8] = {0};
    float *base = NULL, *tw = NULL, *sig = NULL;
    uint8_t *ovl = NULL;
    int64_t *tst = NULL;
    int32_t *tix = NULL;
    double *gbk = NULL;
    long *bb = NULL;
    size_t N = t->N, T = t->T;
    int rc = 0;
    for (size_t i = 0; i < N; i++) out[i] = NAN;
    if (!caimg_h5_exists(t->f, "/truth/baseline")) return 0;
    for (int k = 0; k < 8 && !rc; k++) {
        char nm[64];
        snprintf(nm, sizeof nm, "/truth/soma/%s", names[k]);
        size_t w[1] = {N};
        rc = read_shape(t->f, nm, CAIMG_DT_F64, 1, w, NULL, (void **)&col[k]);
    }
    size_t wb[2] = {N, T};
    if (!rc) rc = read_shape(t->f, "/truth/baseline", CAIMG_DT_F32, 2, wb, NULL, (void **)&base);
    size_t M = (size_t)rstart[NR];
    if (!rc && caimg_h5_exists(rf, "/roi/pix_overlap")) {
        size_t w[1] = {M};
        rc = read_shape(rf, "/roi/pix_overlap", CAIMG_DT_U8, 1, w, NULL, (void **)&ovl);
    }
    /* sum a / sum a^2 of each footprint, from the truth's own pixel lists
     * (the grid on which /truth/baseline was defined). */
    if (!rc) rc = read_pixlists(t->f, "/truth", &(size_t){0}, &tst, &tix, &tw);
    gbk = malloc((N + 1) * sizeof *gbk);
    bb = malloc((4 * N + 1) * sizeof *bb);
    sig = malloc((T + 1) * sizeof *sig);
    if (!rc && (!gbk || !bb || !sig)) rc = caimg_error(CAIMG_ENOMEM, "out of memory");
    if (rc) goto out;
    for (size_t k = 0; k < N; k++) {
        double s1 = 0, s2 = 0;
        for (int64_t q = tst[k]; q < tst[k + 1]; q++) {
            s1 += tw[q];
            s2 += (double)tw[q] * tw[q];
        }
        gbk[k] = s2 > 0 ? s1 / s2 : 0;
        double ext = (col[2][k] > col[3][k] ? col[2][k] : col[3][k]) + col[7][k] + 1;
        bb[4 * k] = (long)floor(col[0][k] + oy - ext);
        bb[4 * k + 1] = (long)ceil(col[0][k] + oy + ext);
        bb[4 * k + 2] = (long)floor(col[1][k] + ox - ext);
        bb[4 * k + 3] = (long)ceil(col[1][k] + ox + ext);
    }
    for (size_t i = 0; i < N; i++) {
        long j = roi_of_true[i];
        if (j < 0 || (size_t)j >= NR) continue;
        /* The ROI's bounding box and weight. */
        long y0 = LONG_MAX, y1 = LONG_MIN, x0 = LONG_MAX, x1 = LONG_MIN;
        double sw = 0;
        for (int64_t q = rstart[j]; q < rstart[j + 1]; q++) {
            if (!(rweight[q] > 0) || (ovl && ovl[q])) continue;
            long y = rindex[2 * q], x = rindex[2 * q + 1];
            y0 = y < y0 ? y : y0; y1 = y > y1 ? y : y1;
            x0 = x < x0 ? x : x0; x1 = x > x1 ? x : x1;
            sw += rweight[q];
        }
        if (!(sw > 0)) continue;
        for (size_t tt = 0; tt < T; tt++) sig[tt] = 0;
        for (size_t k = 0; k < N; k++) {
            if (bb[4 * k] > y1 || bb[4 * k + 1] < y0 || bb[4 * k + 2] > x1 || bb[4 * k + 3] < x0)
                continue;
            caimg_sim_soma so = {col[0][k] + oy, col[1][k] + ox, col[2][k], col[3][k], col[4][k],
                                 col[7][k], col[5][k], col[6][k]};
            double a = 0;
            for (int64_t q = rstart[j]; q < rstart[j + 1]; q++) {
                if (!(rweight[q] > 0) || (ovl && ovl[q])) continue;
                float fw;
                caimg_sim_soma_eval(&so, (double)rindex[2 * q], (double)rindex[2 * q + 1], &fw, NULL);
                a += rweight[q] * fw;
            }
            a = a / sw * gbk[k];
            if (a == 0) continue;
            const float *bk = base + k * T, *ck = calcium + k * T;
            for (size_t tt = 0; tt < T; tt++) sig[tt] += (float)(a * bk[tt] * (1.0 + ck[tt]));
        }
        double *d = malloc(2 * (T + 1) * sizeof *d);
        if (!d) {
            rc = caimg_error(CAIMG_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t tt = 0; tt < T; tt++) {
            d[tt] = sig[tt];
            d[T + tt] = (double)base[i * T + tt] * (1.0 + calcium[i * T + tt]);
        }
        out[i] = pearson_d(d, d + T, T);
        free(d);
    }
out:
    for (int k = 0; k < 8; k++) free(col[k]);
    free(base);
    free(tw);
    free(sig);
    free(ovl);
    free(tst);
    free(tix);
    free(gbk);
    free(bb);
    return rc;
}

int caimg_eval_files(const char *truth, const char *const *inputs, size_t ninputs,
                     const caimg_eval_opts *opts, caimg_eval_report **out)
{
    caimg_init();
    *out = NULL;
    caimg_eval_opts o;
    if (opts) o = *opts;
    else caimg_eval_opts_init(&o);
    caimg_eval_report *r = caimg_calloc(1, sizeof *r, "an evaluation report");
    caimg_h5 **files = caimg_calloc(ninputs + 1, sizeof *files, "input files");
    truthfile t = {0};
    float *calcium = NULL, *spikes = NULL, *trace = NULL, *fneu = NULL, *est = NULL;
    int64_t *tstart = NULL, *rstart = NULL;
    int32_t *tindex = NULL, *rindex = NULL;
    float *rweight = NULL;
    unsigned char *keep = NULL, *iscell = NULL;
    long *row_of_true = NULL;   /* row in per-ROI arrays (spikes, model) for each truth neuron */
    caimg_eval_match m = {0};
    int have_match = 0, rc = 0;
    if (!r || !files) {
        rc = CAIMG_ENOMEM;
        goto out;
    }
    t.f = caimg_h5_open(truth);
    if (!t.f) {
        rc = CAIMG_EFORMAT;
        goto out;
    }
    if (!caimg_h5_exists(t.f, "/truth/shifts")) {
        rc = caimg_error(CAIMG_EFORMAT, "%s: no /truth group; give the file written by caimg "
                         "simulate --truth", truth);
        goto out;
    }
    long v;
    if (caimg_h5_get_attr_long(t.f, "/truth", "height", &v) == 0) t.Y = (size_t)v;
    if (caimg_h5_get_attr_long(t.f, "/truth", "width", &v) == 0) t.X = (size_t)v;
    if (caimg_h5_get_attr_long(t.f, "/truth", "frames", &v) == 0) t.T = (size_t)v;
    if (caimg_h5_get_attr_long(t.f, "/truth", "neurons", &v) == 0) t.N = (size_t)v;
    caimg_h5_get_attr_double(t.f, "/truth", "fs", &t.fs);
    if (!t.Y || !t.X || !t.T || !(t.fs > 0)) {
        rc = caimg_error(CAIMG_EFORMAT, "%s: /truth lacks its height, width, frames or fs attribute", truth);
        goto out;
    }
    for (size_t i = 0; i < ninputs; i++) {
        int isc;
        files[i] = caimg_h5_open_any(inputs[i], &isc);
        if (!files[i]) {
            rc = CAIMG_EFORMAT;
            goto out;
        }
    }
    r->ntrue = t.N;
    r->roi = malloc((t.N + 1) * sizeof(long));
    r->counted = malloc(t.N + 1);
    r->iou = malloc((t.N + 1) * sizeof(double));
    r->trace_corr = malloc((t.N + 1) * sizeof(double));
    r->spike_corr = malloc((t.N + 1) * sizeof(double));
    r->model_corr = malloc((t.N + 1) * sizeof(double));
    r->signal_corr = malloc((t.N + 1) * sizeof(double));
    row_of_true = malloc((t.N + 1) * sizeof(long));
    if (!r->roi || !r->counted || !r->iou || !r->trace_corr || !r->spike_corr || !r->model_corr
        || !r->signal_corr || !row_of_true) {
        rc = caimg_error(CAIMG_ENOMEM, "out of memory");
        goto out;
    }
    {
        size_t w[2] = {t.N, t.T};
        rc = read_shape(t.f, "/truth/spikes", CAIMG_DT_F32, 2, w, NULL, (void **)&spikes);
        if (!rc) rc = read_shape(t.f, "/truth/calcium", CAIMG_DT_F32, 2, w, NULL, (void **)&calcium);
        if (rc) goto out;
    }
    for (size_t i = 0; i < t.N; i++) {
        double ns = 0;
        for (size_t k = 0; k < t.T; k++) ns += spikes[i * t.T + k];
        r->counted[i] = ns >= o.min_spikes;
        r->roi[i] = -1;
        row_of_true[i] = -1;
        r->iou[i] = r->trace_corr[i] = r->spike_corr[i] = r->model_corr[i] = r->signal_corr[i] = NAN;
    }
    int any = 0;

    /* Motion. */
    double offset[2] = {0, 0};
    caimg_h5 *mf = find_in(files, ninputs, "/mc/shifts");
    if (mf) {
        any = 1;
        rc = eval_motion(&t, mf, &o, r, offset);
        if (rc) goto out;
    }

    /* ROIs and their traces. */
    caimg_h5 *rf = find_in(files, ninputs, "/roi/pix_start");
    int from_labels = 0;
    if (!rf && (rf = find_in(files, ninputs, "/roi/labels"))) from_labels = 1;
    size_t NR = 0;
    if (rf) {
        any = 1;
        rc = from_labels ? read_labels(rf, t.Y, t.X, &NR, &rstart, &rindex, &rweight)
                         : read_pixlists(rf, "/roi", &NR, &rstart, &rindex, &rweight);
        if (rc) goto out;
        size_t M = (size_t)rstart[NR];
        keep = malloc(M + 1);
        if (!keep) {
            rc = caimg_error(CAIMG_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t k = 0; k < M; k++) keep[k] = rweight[k] > 0;
        if (!o.all_rois && caimg_h5_exists(rf, "/roi/iscell")) {
            size_t w[1] = {NR};
            rc = read_shape(rf, "/roi/iscell", CAIMG_DT_U8, 1, w, NULL, (void **)&iscell);
            if (rc) goto out;
            for (size_t j = 0; j < NR; j++)
                if (!iscell[j])
                    for (int64_t k = rstart[j]; k < rstart[j + 1]; k++) keep[k] = 0;
        }
        /* ROIs found on motion-corrected frames sit at the truth position
         * moved by minus the template offset (see caimg-eval(1)). */
        rc = truth_masks(t.f, t.N, t.Y, t.X, -offset[0], -offset[1], &tstart, &tindex);
        if (rc) goto out;
        caimg_masks tm = {t.N, tstart, tindex, NULL};
        /* Rejected ROIs are left out entirely (not just emptied), so they
         * count neither as detections nor as misses. */
        int64_t *rs2 = malloc((NR + 1) * sizeof(int64_t));
        size_t *map = malloc((NR + 1) * sizeof(size_t));
        if (!rs2 || !map) {
            free(rs2);
            free(map);
            rc = caimg_error(CAIMG_ENOMEM, "out of memory");
            goto out;
        }
        size_t nk = 0;
        for (size_t j = 0; j < NR; j++)
            if (o.all_rois || !iscell || iscell[j]) map[nk++] = j;
        int32_t *ri2 = malloc((M + 1) * 2 * sizeof(int32_t));
        unsigned char *k2 = malloc(M + 1);
        size_t q = 0;
        if (!ri2 || !k2) rc = caimg_error(CAIMG_ENOMEM, "out of memory");
        for (size_t a = 0; !rc && a < nk; a++) {
            rs2[a] = (int64_t)q;
            for (int64_t k = rstart[map[a]]; k < rstart[map[a] + 1]; k++, q++) {
                ri2[2 * q] = rindex[2 * k];
                ri2[2 * q + 1] = rindex[2 * k + 1];
                k2[q] = keep[k];
            }
        }
        if (!rc) {
            rs2[nk] = (int64_t)q;
            caimg_masks rm = {nk, rs2, ri2, k2};
            rc = caimg_eval_match_masks(&tm, &rm, t.Y, t.X, o.iou, r->counted, &m);
            /* Back to the file's ROI numbering. */
            for (size_t i = 0; !rc && i < t.N; i++)
                if (m.roi_of_true[i] >= 0) m.roi_of_true[i] = (long)map[m.roi_of_true[i]];
        }
        free(rs2);
        free(ri2);
        free(k2);
        free(map);
        if (rc) goto out;
        have_match = 1;
        for (size_t i = 0; i < t.N; i++) {
            r->roi[i] = m.roi_of_true[i];
            row_of_true[i] = m.roi_of_true[i];
            if (m.roi_of_true[i] >= 0) r->iou[i] = m.iou[i];
        }
        rc = add_row(r, "roi", "truth_neurons", (double)t.N);
        if (!rc) rc = add_row(r, "roi", "counted_neurons", (double)m.counted);
        if (!rc) rc = add_row(r, "roi", "rois", (double)m.nroi);
        if (!rc) rc = add_row(r, "roi", "matched", (double)m.matched_all);
        if (!rc) rc = add_row(r, "roi", "precision", m.precision);
        if (!rc) rc = add_row(r, "roi", "recall", m.recall);
        if (!rc) rc = add_row(r, "roi", "f1", m.f1);
        if (!rc) rc = add_row(r, "roi", "mean_iou", m.mean_iou);
        if (!rc) rc = add_row(r, "roi", "centroid_error_px", m.centroid_err);
        if (rc) goto out;

        /* Traces of matched ROIs against the true calcium. */
        caimg_h5 *df = find_in(files, ninputs, "/dff/dff");
        caimg_h5 *ff = find_in(files, ninputs, "/roi/F");
        size_t w[2] = {NR, t.T};
        if (df) rc = read_shape(df, "/dff/dff", CAIMG_DT_F32, 2, w, NULL, (void **)&trace);
        else if (ff) {
            rc = read_shape(ff, "/roi/F", CAIMG_DT_F32, 2, w, NULL, (void **)&trace);
            if (!rc && caimg_h5_exists(ff, "/roi/Fneu") && o.neuropil_r != 0) {
                rc = read_shape(ff, "/roi/Fneu", CAIMG_DT_F32, 2, w, NULL, (void **)&fneu);
                for (size_t k = 0; !rc && k < NR * t.T; k++) trace[k] -= (float)(o.neuropil_r * fneu[k]);
            }
        }
        if (rc) goto out;
        if (trace) {
            for (size_t i = 0; i < t.N; i++)
                if (m.roi_of_true[i] >= 0)
                    r->trace_corr[i] = caimg_eval_corr(trace + (size_t)m.roi_of_true[i] * t.T,
                                                       calcium + i * t.T, t.T);
            double mean, med;
            size_t cnt;
            summarise(r->trace_corr, t.N, &mean, &med, &cnt);
            rc = add_row(r, "roi", df ? "dff_corr_mean" : "trace_corr_mean", mean);
            if (!rc) rc = add_row(r, "roi", df ? "dff_corr_median" : "trace_corr_median", med);
            if (rc) goto out;
        }
        /* The somatic signal fidelity of the same ROIs. */
        rc = eval_signal(&t, rf, NR, rstart, rindex, rweight, calcium, m.roi_of_true, -offset[0],
                         -offset[1], r->signal_corr);
        if (rc) goto out;
        {
            double mean, med;
            size_t cnt;
            summarise(r->signal_corr, t.N, &mean, &med, &cnt);
            if (cnt) {
                /* The share of matched neurons whose fidelity is at least 0.98. */
                size_t hi = 0;
                for (size_t i = 0; i < t.N; i++) hi += r->signal_corr[i] >= 0.98;
                rc = add_row(r, "roi", "signal_corr_mean", mean);
                if (!rc) rc = add_row(r, "roi", "signal_corr_median", med);
                if (!rc) rc = add_row(r, "roi", "signal_corr_ge_0.98", (double)hi / (double)cnt);
                if (rc) goto out;
            }
        }
    }

    /* Spikes. */
    caimg_h5 *sf = find_in(files, ninputs, "/deconv/spikes");
    if (sf) {
        any = 1;
        size_t d[2], w[2] = {0, t.T};
        rc = read_shape(sf, "/deconv/spikes", CAIMG_DT_F32, 2, w, d, (void **)&est);
        if (rc) goto out;
        if (!have_match) {
            if (d[0] != t.N) {
                rc = caimg_error(CAIMG_EFORMAT, "%s: /deconv/spikes has %zu rows but the truth %zu "
                                 "neurons, and there is no /roi to match them", caimg_h5_path(sf),
                                 d[0], t.N);
                goto out;
            }
            for (size_t i = 0; i < t.N; i++) row_of_true[i] = r->roi[i] = (long)i;
        } else if (d[0] != NR) {
            rc = caimg_error(CAIMG_EFORMAT, "%s: /deconv/spikes has %zu rows but /roi has %zu ROIs",
                             caimg_h5_path(sf), d[0], NR);
            goto out;
        }
        for (size_t i = 0; i < t.N; i++)
            if (row_of_true[i] >= 0)
                r->spike_corr[i] = caimg_eval_corr_binned(est + (size_t)row_of_true[i] * t.T,
                                                          spikes + i * t.T, t.T, t.fs, o.bin);
        double mean, med;
        size_t cnt;
        summarise(r->spike_corr, t.N, &mean, &med, &cnt);
        rc = add_row(r, "spikes", "neurons", (double)cnt);
        if (!rc) rc = add_row(r, "spikes", "bin_s", o.bin);
        if (!rc) rc = add_row(r, "spikes", "corr_mean", mean);
        if (!rc) rc = add_row(r, "spikes", "corr_median", med);
        if (rc) goto out;
        free(est);
        est = NULL;
    }

    /* Model predictions. */
    caimg_h5 *pf = find_in(files, ninputs, "/predict/responses");
    if (pf) {
        any = 1;
        if (!caimg_h5_exists(t.f, "/truth/stim/response")) {
            rc = caimg_error(CAIMG_EFORMAT, "%s: the truth has no stimuli; simulate with --stim to "
                             "evaluate a model", truth);
            goto out;
        }
        float *tresp = NULL;
        size_t dt2[2], d[2], w[2] = {0, t.N};
        rc = read_shape(t.f, "/truth/stim/response", CAIMG_DT_F32, 2, w, dt2, (void **)&tresp);
        size_t S = rc ? 0 : dt2[0];
        size_t wp[2] = {S, 0};
        if (!rc) rc = read_shape(pf, "/predict/responses", CAIMG_DT_F32, 2, wp, d, (void **)&est);
        if (!rc && !have_match && d[1] != t.N)
            rc = caimg_error(CAIMG_EFORMAT, "%s: /predict/responses has %zu columns but the truth %zu "
                             "neurons, and there is no /roi to match them", caimg_h5_path(pf), d[1], t.N);
        if (!rc && have_match && d[1] != NR)
            rc = caimg_error(CAIMG_EFORMAT, "%s: /predict/responses has %zu columns but /roi has %zu ROIs",
                             caimg_h5_path(pf), d[1], NR);
        double *a = malloc((S + 1) * sizeof(double)), *b = malloc((S + 1) * sizeof(double));
        if (!rc && (!a || !b)) rc = caimg_error(CAIMG_ENOMEM, "out of memory");
        for (size_t i = 0; !rc && i < t.N; i++) {
            long j = have_match ? row_of_true[i] : (long)i;
            if (j < 0) continue;
            for (size_t s = 0; s < S; s++) {
                a[s] = est[s * d[1] + (size_t)j];
                b[s] = tresp[s * t.N + i];
            }
            r->model_corr[i] = pearson_d(a, b, S);
        }
        free(a);
        free(b);
        free(tresp);
        if (rc) goto out;
        double mean, med;
        size_t cnt;
        summarise(r->model_corr, t.N, &mean, &med, &cnt);
        rc = add_row(r, "model", "stimuli", (double)S);
        if (!rc) rc = add_row(r, "model", "neurons", (double)cnt);
        if (!rc) rc = add_row(r, "model", "corr_mean", mean);
        if (!rc) rc = add_row(r, "model", "corr_median", med);
        if (rc) goto out;
    }
    if (!any)
        rc = caimg_error(CAIMG_ENOENT, "%s: nothing to evaluate (no /mc/shifts, /roi/pix_start, "
                         "/deconv/spikes or /predict/responses)", ninputs ? inputs[0] : "(no input)");
out:
    caimg_eval_match_free(&m);
    free(calcium);
    free(spikes);
    free(trace);
    free(fneu);
    free(est);
    free(tstart);
    free(tindex);
    free(rstart);
    free(rindex);
    free(rweight);
    free(keep);
    free(iscell);
    free(row_of_true);
    for (size_t i = 0; files && i < ninputs; i++) caimg_h5_close(files[i]);
    free(files);
    caimg_h5_close(t.f);
    if (rc) {
        caimg_eval_report_free(r);
        return rc;
    }
    *out = r;
    return 0;
}
