/* check_roi.c -- caimg roi: detection accuracy (F1 by IoU > 0.5 matching)
 * and trace quality on synthetic movies, the overlap rule, neuropil annuli,
 * summary images, user masks and ImageJ ROI files.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdint.h>
#include <zlib.h>

#include "caimg/caimg.h"
#include "caimg/roi.h"
#include "roi_internal.h"
#include "roimatch.h"
#include "synth.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------- */

/* The source tree (make check sets top_srcdir; "." when run by hand). */
static const char *top(void)
{
    const char *t = getenv("top_srcdir");
    return t && *t ? t : ".";
}

/* Write a synthetic movie (uint16, like an acquisition) with an /mc group. */
static void write_movie(const char *path, const synth *s, int with_mc)
{
    caimg_h5 *f = caimg_h5_create(path, "import", "check_roi");
    ck_assert_ptr_nonnull(f);
    size_t Y = s->p.Y, X = s->p.X, T = s->p.T, inner[2] = {Y, X};
    caimg_h5_stream *st = caimg_h5_stream_create(f, "/movie", CAIMG_DT_U16, 3, inner, 0, T);
    ck_assert_ptr_nonnull(st);
    float *fr = malloc(Y * X * sizeof *fr), *lam = malloc(Y * X * sizeof *lam);
    for (size_t t = 0; t < T; t++) {
        synth_frame(s, t, fr, lam);
        ck_assert_int_eq(caimg_h5_stream_write(st, fr, CAIMG_DT_F32, 1, NULL), 0);
    }
    free(fr);
    free(lam);
    ck_assert_int_eq(caimg_h5_stream_close(st), 0);
    ck_assert_int_eq(caimg_h5_set_attr_double(f, "/movie", "fs", s->p.fs), 0);
    if (with_mc) {
        int32_t v[4] = {0, (int32_t)Y, 0, (int32_t)X};
        size_t d4 = 4;
        ck_assert_int_eq(caimg_h5_write(f, "/mc/valid", CAIMG_DT_I32, 1, &d4, v), 0);
    }
    ck_assert_int_eq(caimg_h5_commit(f), 0);
}

/* The whole stage through the library, as caimg roi runs it; the output
 * file is left open in *outf (caller closes) so traces can be read. */
static caimg_roiset *run_stage(const char *movie, const char *out, caimg_roi_params *p,
                               const caimg_roi_type *type, caimg_h5 **outf)
{
    caimg_movie *m = caimg_movie_open1(movie);
    ck_assert_ptr_nonnull(m);
    int has_mc;
    ck_assert_int_eq(caimg_roi_valid_box(movie, caimg_movie_height(m), caimg_movie_width(m),
                                         p->valid, &has_mc), 0);
    if (p->fs <= 0) p->fs = caimg_movie_fs(m);
    caimg_roi_summary *s;
    caimg_roi_binned *b;
    ck_assert_int_eq(caimg_roi_summarize(m, p, type->wants_binned, &s, &b), 0);
    caimg_roiset *r;
    ck_assert_msg(caimg_roi_detect(type, p, s, b, &r) == 0, "%s", caimg_errmsg());
    caimg_roi_binned_free(b);
    ck_assert_int_eq(caimg_roiset_finish(r, p), 0);
    caimg_h5 *f = caimg_h5_create(out, "roi", "check_roi");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(caimg_roi_extract(m, r, f, p->fs), 0);
    ck_assert_int_eq(caimg_roi_stats_compute(r, f, p), 0);
    ck_assert_int_eq(caimg_roi_write(f, r, s, type->name, p->fs, p->diameter), 0);
    caimg_roi_summary_free(s);
    caimg_movie_close(m);
    *outf = f;
    return r;
}

/* Masks of a set as sorted pixel indices for roimatch. */
static rm_masks roi_masks(const caimg_roiset *r)
{
    rm_masks m;
    m.n = r->n;
    m.start = malloc((r->n + 1) * sizeof *m.start);
    size_t M = (size_t)r->pix_start[r->n];
    m.idx = malloc((M + 1) * sizeof *m.idx);
    for (size_t i = 0; i <= r->n; i++) m.start[i] = r->pix_start[i];
    for (size_t k = 0; k < M; k++)
        m.idx[k] = (int64_t)r->pix_index[2 * k] * (int64_t)r->width + r->pix_index[2 * k + 1];
    rm_sort(&m);
    return m;
}

static rm_masks truth_masks(const synth *s)
{
    rm_masks m;
    size_t YX = s->p.Y * s->p.X;
    m.n = s->n;
    m.start = calloc(s->n + 1, sizeof *m.start);
    m.idx = malloc((YX * 2 + 1) * sizeof *m.idx);
    uint8_t *mk = malloc(YX);
    size_t o = 0;
    for (size_t i = 0; i < s->n; i++) {
        memset(mk, 0, YX);
        synth_mask(s, i, mk);
        for (size_t k = 0; k < YX; k++)
            if (mk[k]) m.idx[o++] = (int64_t)k;
        m.start[i + 1] = (int64_t)o;
    }
    free(mk);
    return m;
}

static void masks_free(rm_masks *m)
{
    free(m->start);
    free(m->idx);
}

/* Remove the least-squares line: bleaching and slow drift are the dff
 * stage's business, not a property of the extraction. */
static void detrend(float *v, size_t n)
{
    double st = 0, sv = 0, stt = 0, stv = 0;
    for (size_t t = 0; t < n; t++) {
        st += (double)t; sv += v[t]; stt += (double)t * t; stv += (double)t * v[t];
    }
    double b = (stv - st * sv / n) / (stt - st * st / n), a = (sv - b * st) / n;
    for (size_t t = 0; t < n; t++) v[t] -= (float)(a + b * (double)t);
}

/* Detection and traces against the truth.  Returns F1 of the ROIs flagged
 * as cells; *rmean and *omean receive the mean correlation of matched
 * traces (F - 0.7 Fneu, detrended) with the true calcium, for our ROIs and
 * for the true masks measured on the same movie (the ceiling the noise
 * allows). */
static double score_field(const synth_params *sp, double *rmean, double *omean, size_t *nrois)
{
    char *d = tu_tmpdir();
    synth *s = synth_new(sp);
    const char *mv = tu_path(d, "m.h5");
    write_movie(mv, s, 1);
    caimg_roi_params p;
    caimg_roi_params_init(&p);
    caimg_h5 *f;
    caimg_roiset *r = run_stage(mv, tu_path(d, "r.h5"), &p, caimg_roi_activity, &f);
    rm_masks mt = truth_masks(s), mr = roi_masks(r);
    rm_result res = rm_match(&mt, &mr, r->iscell);
    size_t T = sp->T, X = sp->X;
    float *F = malloc(T * sizeof *F), *Fn = malloc(T * sizeof *Fn), *o = malloc(T * sizeof *o);
    float *fr = malloc(sp->Y * X * sizeof *fr), *lam = malloc(sp->Y * X * sizeof *lam);
    double sr = 0, so = 0;
    size_t nm = 0;
    /* Oracle traces: the true masks on the same movie. */
    float *ot = calloc(s->n * T, sizeof *ot);
    caimg_movie *m = caimg_movie_open1(mv);
    for (size_t t = 0; t < T; t++) {
        ck_assert_int_eq(caimg_movie_read(m, t, 1, fr), 0);
        for (size_t i = 0; i < s->n; i++) {
            double acc = 0;
            for (int64_t k = mt.start[i]; k < mt.start[i + 1]; k++) acc += fr[mt.idx[k]];
            ot[i * T + t] = (float)(acc / (double)(mt.start[i + 1] - mt.start[i]));
        }
    }
    caimg_movie_close(m);
    for (size_t j = 0; j < r->n; j++) {
        long i = res.match_of_roi[j];
        if (i < 0) continue;
        ck_assert_int_eq(caimg_h5_read_rows(f, "/roi/F", CAIMG_DT_F32, j, 1, F), 0);
        ck_assert_int_eq(caimg_h5_read_rows(f, "/roi/Fneu", CAIMG_DT_F32, j, 1, Fn), 0);
        for (size_t t = 0; t < T; t++) F[t] -= 0.7f * Fn[t];
        detrend(F, T);
        memcpy(o, ot + (size_t)i * T, T * sizeof *o);
        /* The oracle's neuropil: our annulus (the comparison is of masks). */
        for (size_t t = 0; t < T; t++) o[t] -= 0.7f * Fn[t];
        detrend(o, T);
        sr += rm_corr(F, s->calcium + (size_t)i * T, T);
        so += rm_corr(o, s->calcium + (size_t)i * T, T);
        nm++;
    }
    *rmean = nm ? sr / (double)nm : 0;
    *omean = nm ? so / (double)nm : 0;
    *nrois = r->n;
    double f1 = res.f1;
    rm_free(&res);
    masks_free(&mt);
    masks_free(&mr);
    free(F); free(Fn); free(o); free(fr); free(lam); free(ot);
    caimg_h5_close(f);
    caimg_roiset_free(r);
    synth_free(s);
    tu_rmdir(d);
    return f1;
}

/* ---- detection accuracy --------------------------------------------------- */

/* A field like `caimg simulate`'s typical preset (3 photons per pixel and
 * frame in the neuropil, somata 1.3 times brighter, GCaMP6f, 0.5 Hz), small
 * enough for a unit test.  Seeds 11 and 12 are used by no tuning. */
START_TEST(detect_typical_field)
{
    synth_params sp;
    synth_defaults(&sp);
    sp.Y = sp.X = 160;
    sp.T = 1500;
    sp.np_photons = 3;
    sp.seed = 11 + (uint64_t)_i;
    double r, o;
    size_t n;
    double f1 = score_field(&sp, &r, &o, &n);
    fprintf(stderr, "typical seed %d: F1 %.3f, trace r %.3f (true masks %.3f), %zu ROIs\n",
            (int)sp.seed, f1, r, o, n);
    /* At this photon count a few dim, silent cells are hard to see; the
     * 0.95 target of the issue is measured with caimg simulate (bench). */
    ck_assert_double_ge(f1, 0.85);
    /* Extraction loses little against the true masks: the footprints are
     * estimated from the same noisy movie (a few percent at this SNR). */
    ck_assert_double_ge(r, 0.92 * o);
}
END_TEST

/* Mean IoU of the matched ROIs found from activity (source 1) and F1 of
 * all ROIs flagged as cells, for one method on one movie. */
static void score_masks(const char *mv, const char *out, const rm_masks *mt,
                        const caimg_roi_type *type, double *iou, size_t *nmatch, double *f1)
{
    caimg_roi_params p;
    caimg_roi_params_init(&p);
    caimg_h5 *f;
    caimg_roiset *r = run_stage(mv, out, &p, type, &f);
    rm_masks mr = roi_masks(r);
    rm_result all = rm_match(mt, &mr, NULL), cells = rm_match(mt, &mr, r->iscell);
    double acc = 0;
    size_t n = 0;
    for (size_t j = 0; j < r->n; j++)
        if (all.match_of_roi[j] >= 0
            && r->stats[j * CAIMG_ROI_NSTATS + CAIMG_ROI_SOURCE] == 1) {
            acc += all.iou_of_roi[j];
            n++;
        }
    *iou = n ? acc / (double)n : 0;
    *nmatch = n;
    *f1 = cells.f1;
    rm_free(&all);
    rm_free(&cells);
    masks_free(&mr);
    caimg_h5_close(f);
    caimg_roiset_free(r);
}

/* The joint refinement of method activity outlines the cells found from
 * their activity more closely than the candidates it starts from
 * (activity-classic), without losing any: measured on caimg simulate's
 * typical fields the mean IoU of those ROIs with their true somata rises
 * by 0.03-0.05, here by 0.02 (0.853 to 0.874); the test asks for half of
 * that.  Seed 13 is used by no tuning. */
START_TEST(refinement_sharpens)
{
    synth_params sp;
    synth_defaults(&sp);
    sp.Y = sp.X = 160;
    sp.T = 1500;
    sp.np_photons = 3;
    sp.seed = 13;
    char *d = tu_tmpdir();
    synth *s = synth_new(&sp);
    const char *mv = tu_path(d, "m.h5");
    write_movie(mv, s, 1);
    rm_masks mt = truth_masks(s);
    double iou_r, iou_c, f1_r, f1_c;
    size_t n_r, n_c;
    score_masks(mv, tu_path(d, "r.h5"), &mt, caimg_roi_activity, &iou_r, &n_r, &f1_r);
    score_masks(mv, tu_path(d, "c.h5"), &mt, caimg_roi_activity_classic, &iou_c, &n_c, &f1_c);
    fprintf(stderr, "refined: IoU %.3f of %zu, F1 %.3f; classic: IoU %.3f of %zu, F1 %.3f\n",
            iou_r, n_r, f1_r, iou_c, n_c, f1_c);
    ck_assert_uint_ge(n_c, 10);
    ck_assert_uint_ge(n_r, n_c);
    ck_assert_double_ge(iou_r, iou_c + 0.01);
    ck_assert_double_ge(f1_r, f1_c);
    masks_free(&mt);
    synth_free(s);
    tu_rmdir(d);
}
END_TEST

/* Many photons: every cell is clear, and traces follow the calcium as far
 * as neuropil contamination allows (the true masks do no better). */
START_TEST(detect_bright_field)
{
    synth_params sp;
    synth_defaults(&sp);
    sp.Y = sp.X = 128;
    sp.T = 1200;
    sp.np_photons = 30;
    sp.seed = 21;
    double r, o;
    size_t n;
    double f1 = score_field(&sp, &r, &o, &n);
    fprintf(stderr, "bright: F1 %.3f, trace r %.3f (true masks %.3f), %zu ROIs\n", f1, r, o, n);
    ck_assert_double_ge(f1, 0.95);
    ck_assert_double_ge(r, 0.97 * o);
    ck_assert_double_ge(r, 0.75);
}
END_TEST

/* Noise alone: no cells, no ROIs, and every output is still written. */
START_TEST(blank_movie)
{
    char *d = tu_tmpdir();
    synth_params sp;
    synth_defaults(&sp);
    sp.Y = 96; sp.X = 112; sp.T = 900;
    sp.ncells = 0; sp.density = 0; sp.np_sd = 0; sp.texture_sd = 0; sp.bleach = 0;
    synth *s = synth_new(&sp);
    write_movie(tu_path(d, "b.h5"), s, 1);
    caimg_roi_params p;
    caimg_roi_params_init(&p);
    caimg_h5 *f;
    caimg_roiset *r = run_stage(tu_path(d, "b.h5"), tu_path(d, "rb.h5"), &p, caimg_roi_activity, &f);
    ck_assert_uint_eq(r->n, 0);
    ck_assert_int_eq(caimg_h5_commit(f), 0);
    f = caimg_h5_open(tu_path(d, "rb.h5"));
    int rank;
    size_t dims[CAIMG_H5_MAXRANK];
    ck_assert_int_eq(caimg_h5_dims(f, "/roi/F", &rank, dims), 0);
    ck_assert_uint_eq(dims[0], 0);
    ck_assert_uint_eq(dims[1], 900);
    ck_assert_int_eq(caimg_h5_dims(f, "/roi/labels", &rank, dims), 0);
    ck_assert_uint_eq(dims[0], 96);
    ck_assert_uint_eq(dims[1], 112);
    ck_assert_int_eq(caimg_h5_dims(f, "/roi/pix_index", &rank, dims), 0);
    ck_assert_uint_eq(dims[0], 0);
    caimg_h5_close(f);
    caimg_roiset_free(r);
    synth_free(s);
    tu_rmdir(d);
}
END_TEST

/* ---- masks ----------------------------------------------------------------- */

static void add_square(caimg_roiset *r, int y0, int x0, int n, float w)
{
    int32_t *yx = malloc(2 * (size_t)(n * n) * sizeof *yx);
    float *wt = malloc((size_t)(n * n) * sizeof *wt);
    for (int k = 0; k < n * n; k++) {
        yx[2 * k] = y0 + k / n;
        yx[2 * k + 1] = x0 + k % n;
        wt[k] = w;
    }
    ck_assert_int_eq(caimg_roiset_add(r, (size_t)(n * n), yx, wt, NAN, 0), 0);
    free(yx);
    free(wt);
}

/* Two squares sharing a 3 x 3 corner: the shared pixels are flagged, stay
 * in both masks, go to the heavier ROI in the label image, and are left out
 * of both traces, which are exact means of the exclusive pixels. */
START_TEST(overlap_rule)
{
    char *d = tu_tmpdir();
    size_t Y = 40, X = 40, T = 6;
    caimg_roiset *r = caimg_roiset_alloc(Y, X);
    add_square(r, 5, 5, 8, 1);     /* rows 5-12, columns 5-12 */
    add_square(r, 10, 10, 8, 1);   /* rows 10-17: shares rows 10-12, columns 10-12 */
    caimg_roi_params p;
    caimg_roi_params_init(&p);
    p.np_min_pixels = 100;
    ck_assert_int_eq(caimg_roiset_finish(r, &p), 0);
    size_t shared = 0;
    for (int64_t k = 0; k < r->pix_start[2]; k++) {
        int y = r->pix_index[2 * k], x = r->pix_index[2 * k + 1];
        int inboth = y >= 10 && y <= 12 && x >= 10 && x <= 12;
        ck_assert_int_eq(r->pix_overlap[k], inboth);
        shared += r->pix_overlap[k];
    }
    ck_assert_uint_eq(shared, 18);   /* 9 pixels, listed in both masks */
    ck_assert_uint_eq(r->pix_start[1], 64);
    ck_assert_uint_eq(r->pix_start[2], 128);
    ck_assert_int_eq(r->labels[11 * X + 11], 1);   /* equal weights: the first */
    ck_assert_int_eq(r->labels[15 * X + 15], 2);
    ck_assert_int_eq(r->labels[0], 0);
    ck_assert_double_eq_tol(r->stats[CAIMG_ROI_OVERLAP], 9.0 / 64, 1e-12);
    /* A movie where shared pixels are far off: traces must not see them. */
    caimg_h5 *f = caimg_h5_create(tu_path(d, "o.h5"), "import", "check_roi");
    size_t inner[2] = {Y, X};
    caimg_h5_stream *st = caimg_h5_stream_create(f, "/movie", CAIMG_DT_F32, 3, inner, 0, T);
    float *fr = malloc(Y * X * sizeof *fr);
    for (size_t t = 0; t < T; t++) {
        for (size_t i = 0; i < Y * X; i++) {
            size_t y = i / X, x = i % X;
            fr[i] = (float)(t + (y < 20 && x < 20 ? 100 * (y % 3) : 7));
            if (y >= 10 && y <= 12 && x >= 10 && x <= 12) fr[i] = 1e6f;
        }
        ck_assert_int_eq(caimg_h5_stream_write(st, fr, CAIMG_DT_F32, 1, NULL), 0);
    }
    ck_assert_int_eq(caimg_h5_stream_close(st), 0);
    ck_assert_int_eq(caimg_h5_commit(f), 0);
    caimg_movie *m = caimg_movie_open1(tu_path(d, "o.h5"));
    f = caimg_h5_create(tu_path(d, "or.h5"), "roi", "check_roi");
    ck_assert_int_eq(caimg_roi_extract(m, r, f, 0), 0);
    float F[2 * 6];
    ck_assert_int_eq(caimg_h5_read_rows(f, "/roi/F", CAIMG_DT_F32, 0, 2, F), 0);
    for (size_t i = 0; i < 2; i++)
        for (size_t t = 0; t < T; t++) {
            /* Exact mean of the exclusive pixels of ROI i at frame t. */
            double acc = 0;
            size_t n = 0;
            for (int64_t k = r->pix_start[i]; k < r->pix_start[i + 1]; k++) {
                if (r->pix_overlap[k]) continue;
                int y = r->pix_index[2 * k];
                acc += (double)t + 100.0 * (y % 3);
                n++;
            }
            ck_assert_double_eq_tol(F[i * T + t], acc / (double)n, 1e-3);
        }
    caimg_h5_close(f);
    caimg_movie_close(m);
    free(fr);
    caimg_roiset_free(r);
    tu_rmdir(d);
}
END_TEST

/* Neuropil annuli: a gap of np_gap from every ROI, at least np_min_pixels,
 * and a whole ring: no eligible pixel nearer than the farthest one taken
 * is left out. */
START_TEST(annulus)
{
    size_t Y = 120, X = 130;
    caimg_roiset *r = caimg_roiset_alloc(Y, X);
    /* Disks of radius 6 at a few places, two of them close. */
    int cy[4] = {30, 30, 80, 100}, cx[4] = {30, 45, 60, 110};
    for (int c = 0; c < 4; c++) {
        int32_t yx[2 * 200];
        size_t n = 0;
        for (int y = cy[c] - 6; y <= cy[c] + 6; y++)
            for (int x = cx[c] - 6; x <= cx[c] + 6; x++)
                if ((y - cy[c]) * (y - cy[c]) + (x - cx[c]) * (x - cx[c]) <= 36) {
                    yx[2 * n] = y;
                    yx[2 * n + 1] = x;
                    n++;
                }
        ck_assert_int_eq(caimg_roiset_add(r, n, yx, NULL, NAN, 0), 0);
    }
    caimg_roi_params p;
    caimg_roi_params_init(&p);
    ck_assert_double_eq(p.np_gap, 2);
    ck_assert_uint_eq(p.np_min_pixels, 350);
    ck_assert_int_eq(caimg_roiset_finish(r, &p), 0);
    for (size_t i = 0; i < r->n; i++) {
        size_t a = (size_t)r->np_start[i], b = (size_t)r->np_start[i + 1];
        ck_assert_uint_ge(b - a, 350);
        ck_assert_double_eq(r->stats[i * CAIMG_ROI_NSTATS + CAIMG_ROI_NP_NPIX], (double)(b - a));
        double dmax = 0;
        uint8_t *in = calloc(Y * X, 1);
        for (size_t k = a; k < b; k++) {
            int y = r->np_index[2 * k], x = r->np_index[2 * k + 1];
            in[(size_t)y * X + (size_t)x] = 1;
            /* Distance to every ROI pixel > gap; distance to own ROI. */
            double dmin = 1e9;
            for (size_t j = 0; j < r->n; j++)
                for (int64_t q = r->pix_start[j]; q < r->pix_start[j + 1]; q++) {
                    double dd = hypot(y - r->pix_index[2 * q], x - r->pix_index[2 * q + 1]);
                    ck_assert_double_gt(dd, p.np_gap);
                    if (j == i && dd < dmin) dmin = dd;
                }
            if (dmin > dmax) dmax = dmin;
        }
        /* Whole ring: every eligible pixel nearer than dmax is in it. */
        for (size_t y = 0; y < Y; y++)
            for (size_t x = 0; x < X; x++) {
                if (in[y * X + x]) continue;
                double dmin = 1e9, dany = 1e9;
                for (size_t j = 0; j < r->n; j++)
                    for (int64_t q = r->pix_start[j]; q < r->pix_start[j + 1]; q++) {
                        double dd = hypot((double)y - r->pix_index[2 * q], (double)x - r->pix_index[2 * q + 1]);
                        if (dd < dany) dany = dd;
                        if (j == i && dd < dmin) dmin = dd;
                    }
                ck_assert_msg(!(dany > p.np_gap && dmin < dmax - 1e-6),
                              "ROI %zu: pixel (%zu,%zu) at %.2f left out of a ring reaching %.2f",
                              i, y, x, dmin, dmax);
            }
        free(in);
    }
    caimg_roiset_free(r);
}
END_TEST

/* ---- summary images ---------------------------------------------------------- */

/* A mean image of 64 x 64 pixels for the soma fits of roi_anatomy: a
 * neuropil level of 100 with a fine texture of +-tex/2, and n somata of
 * radius 6 (y, x, cytosol and nucleus brightness above the neuropil); a
 * soma drawn first stays on top.  The summary points into static arrays. */
enum { MF = 64 };
static const double MF_RAD = 6;
static caimg_roi_summary mean_field(uint64_t seed, float tex, const double (*soma)[4], size_t n)
{
    static float mean[MF * MF], sd[MF * MF];
    uint64_t st = seed;
    for (size_t i = 0; i < MF * MF; i++) {
        st = st * 6364136223846793005ULL + 1442695040888963407ULL;
        mean[i] = 100.0f + tex * (float)((double)(st >> 11) / 9007199254740992.0 - 0.5);
        sd[i] = 1;
    }
    for (size_t y = 0; y < MF; y++)
        for (size_t x = 0; x < MF; x++)
            for (size_t k = 0; k < n; k++) {
                double r = hypot((double)y - soma[k][0], (double)x - soma[k][1]);
                if (r > MF_RAD) continue;
                mean[y * MF + x] += (float)(r <= 3.3 ? soma[k][3] : soma[k][2]);
                break;
            }
    caimg_roi_summary s;
    memset(&s, 0, sizeof s);
    s.height = s.width = MF;
    s.frames = 1000;
    s.mean = mean;
    s.std = sd;
    return s;
}

/* Default parameters with the diameter of mean_field()'s somata. */
static caimg_roi_params mf_params(void)
{
    caimg_roi_params p;
    caimg_roi_params_init(&p);
    p.diameter = 2 * MF_RAD;
    return p;
}

/* Add the pixels of soma (y, x) of mean_field() with y <= ymax, and those
 * of a strip 3 pixels wide along its row out to column xstrip (none if
 * xstrip <= cx), as an ROI found from activity; returns the soma's whole
 * area. */
static size_t add_cell(caimg_roiset *r, double cy, double cx, double ymax, double xstrip,
                       double score)
{
    static int32_t yx[2 * MF * MF];
    size_t n = 0, all = 0;
    for (int y = 0; y < MF; y++)
        for (int x = 0; x < MF; x++) {
            int in = hypot(y - cy, x - cx) <= MF_RAD;
            all += (size_t)in;
            int strip = fabs(y - cy) <= 1 && x >= cx && x <= xstrip;
            if (!(in ? y <= ymax : strip)) continue;
            yx[2 * n] = y;
            yx[2 * n + 1] = x;
            n++;
        }
    ck_assert_int_eq(caimg_roiset_add(r, n, yx, NULL, score, 1), 0);
    return all;
}

/* IoU of ROI j with soma (y, x) of mean_field() of area `area`. */
static double soma_iou(const caimg_roiset *r, size_t j, double cy, double cx, size_t area)
{
    size_t in = 0, nj = (size_t)(r->pix_start[j + 1] - r->pix_start[j]);
    for (int64_t k = r->pix_start[j]; k < r->pix_start[j + 1]; k++)
        in += hypot(r->pix_index[2 * k] - cy, r->pix_index[2 * k + 1] - cx) <= MF_RAD;
    return (double)in / (double)(nj + area - in);
}

/* A soma of the mean image that holds most of a cell found from activity
 * is that cell, outlined whole, not a second cell beside it: the activity
 * outline is often only the soma's bright part (here its top 40 %).  A
 * neighbouring cell that the soma only overlaps stays as it is. */
START_TEST(soma_absorbs_piece)
{
    const double soma[2][4] = {{30, 26, 40, 5}, {32, 40, 40, 5}};
    caimg_roi_summary s = mean_field(7, 4, soma, 2);
    caimg_roi_params p = mf_params();
    caimg_roiset *r = caimg_roiset_alloc(MF, MF);
    size_t area = add_cell(r, 30, 26, 28, 0, 7.5);
    add_cell(r, 32, 40, MF, 0, 9.0);
    ck_assert_double_le((double)(r->pix_start[1] - r->pix_start[0]), 0.45 * (double)area);
    size_t box[4] = {0, MF, 0, MF};
    int32_t by[2];
    ck_assert_int_eq(roi_anatomy(&p, &s, box, r, 1, NULL, NULL, by), 0);
    fprintf(stderr, "absorb: %zu ROIs, piece taken by %d, neighbour by %d\n", r->n, by[0], by[1]);
    ck_assert_int_eq(by[1], -1);
    ck_assert_int_ge(by[0], 2);
    ck_assert_int_lt(by[0], (int)r->n);
    /* The soma that took it is the whole soma, and the only soma added
     * there (the field's texture may make others, elsewhere). */
    size_t j = (size_t)by[0], n = r->n;
    double iou = soma_iou(r, j, 30, 26, area);
    fprintf(stderr, "absorb: soma IoU %.2f\n", iou);
    ck_assert_double_ge(iou, 0.7);
    ck_assert_double_eq(r->stats[j * CAIMG_ROI_NSTATS + CAIMG_ROI_SOURCE], 2);
    for (size_t k = 2; k < n; k++)
        if (k != j) ck_assert_double_lt(soma_iou(r, k, 30, 26, area), 0.1);
    /* Dropped, the piece leaves the set and the others move up. */
    size_t nj = (size_t)(r->pix_start[j + 1] - r->pix_start[j]);
    uint8_t drop[MF] = {1};
    ck_assert_uint_le(n, MF);
    roi_roiset_drop(r, drop);
    ck_assert_uint_eq(r->n, n - 1);
    ck_assert_double_eq(r->stats[CAIMG_ROI_SCORE], 9.0);
    ck_assert_uint_eq((size_t)(r->pix_start[j] - r->pix_start[j - 1]), nj);
    caimg_roiset_free(r);
}
END_TEST

/* Soma 0 of mean_field(seed, 6, soma, 2), bright, found from activity
 * (its whole area as an ROI, and a strip out to column xstrip), and soma
 * 1, dim, beside it: the best IoU of an ROI the mean image adds with soma
 * 1, and that ROI's fit into *fit.  Both somata have the same area (same
 * radius, centres on pixels). */
static double beside_cell(uint64_t seed, const double (*soma)[4], double xstrip, double *fit)
{
    caimg_roi_summary s = mean_field(seed, 6, soma, 2);
    caimg_roi_params p = mf_params();
    caimg_roiset *r = caimg_roiset_alloc(MF, MF);
    size_t area = add_cell(r, soma[0][0], soma[0][1], MF, xstrip, 20.0);
    size_t box[4] = {0, MF, 0, MF};
    int32_t ab[1];
    ck_assert_int_eq(roi_anatomy(&p, &s, box, r, 1, NULL, NULL, ab), 0);
    ck_assert_int_eq(ab[0], -1);
    double best = 0;
    *fit = 0;
    for (size_t j = 1; j < r->n; j++) {
        double iou = soma_iou(r, j, soma[1][0], soma[1][1], area);
        if (iou > best) {
            best = iou;
            *fit = r->stats[j * CAIMG_ROI_NSTATS + CAIMG_ROI_FIT];
        }
    }
    caimg_roiset_free(r);
    return best;
}

/* A dim soma beside a bright cell found from activity is fitted on its own
 * pixels: those nearer to the bright cell are left out of its fit, which
 * the bright cell would otherwise pull towards itself.  Without that the
 * fit reached IoU 0.89 and a correlation of 0.23 here; with it, 1.00 and
 * 0.91. */
START_TEST(soma_beside_bright_cell)
{
    /* A bright cell (+100 %) and, 13 pixels away, a dim soma (+30 %). */
    const double soma[2][4] = {{32, 24, 100, 30}, {34, 37, 30, 4}};
    double fit, best = beside_cell(11, soma, 0, &fit);
    fprintf(stderr, "dim soma beside a bright cell: IoU %.2f, fit %.2f\n", best, fit);
    ck_assert_double_ge(best, 0.95);
    ck_assert_double_ge(fit, 0.5);
}
END_TEST

/* A dim soma that a bright cell found from activity half hides (7 pixels
 * apart) is found: the bright cell, which the mean image shows as its
 * activity outlined it, is taken out of the image first, or its peak, a
 * few pixels away, would be the only local maximum there (IoU 0 without
 * that, 1.00 with it). */
START_TEST(soma_under_bright_cell)
{
    const double soma[2][4] = {{32, 26, 100, 30}, {32, 33, 30, 4}};
    double fit, best = beside_cell(13, soma, 0, &fit);
    fprintf(stderr, "dim soma under a bright cell: IoU %.2f\n", best);
    ck_assert_double_gt(best, 0.5);
}
END_TEST

/* A dim soma that a bright cell found from activity reaches into along a
 * strip of pixels (as activity outlines a cell that shares pixels with its
 * neighbour) is found: the strip is too thin to be the cell's own peak,
 * though it runs over the dim soma's centre (IoU 0 when the whole cell
 * hid the peaks on its pixels). */
START_TEST(soma_under_strip)
{
    const double soma[2][4] = {{32, 20, 100, 30}, {32, 36, 30, 4}};
    double fit, best = beside_cell(17, soma, 38, &fit);
    fprintf(stderr, "dim soma under a strip of a bright cell: IoU %.2f\n", best);
    ck_assert_double_gt(best, 0.8);
}
END_TEST

START_TEST(summary_images)
{
    char *d = tu_tmpdir();
    size_t Y = 20, X = 30, T = 400;
    caimg_h5 *f = caimg_h5_create(tu_path(d, "s.h5"), "import", "check_roi");
    size_t inner[2] = {Y, X};
    caimg_h5_stream *st = caimg_h5_stream_create(f, "/movie", CAIMG_DT_F32, 3, inner, 0, T);
    float *fr = malloc(Y * X * sizeof *fr);
    synth_rng rng;
    synth_seed(&rng, 5, 0, 0);
    for (size_t t = 0; t < T; t++) {
        /* Left half: one shared signal (correlated neighbours); right half:
         * independent noise.  Known mean 10 + x and std 2. */
        double common = synth_normal(&rng);
        for (size_t i = 0; i < Y * X; i++) {
            size_t x = i % X;
            double v = x < X / 2 ? common : synth_normal(&rng);
            fr[i] = (float)(10.0 + (double)x + 2.0 * v);
        }
        ck_assert_int_eq(caimg_h5_stream_write(st, fr, CAIMG_DT_F32, 1, NULL), 0);
    }
    ck_assert_int_eq(caimg_h5_stream_close(st), 0);
    ck_assert_int_eq(caimg_h5_set_attr_double(f, "/movie", "fs", 10), 0);
    ck_assert_int_eq(caimg_h5_commit(f), 0);
    caimg_movie *m = caimg_movie_open1(tu_path(d, "s.h5"));
    caimg_roi_params p;
    caimg_roi_params_init(&p);
    p.tau = 0.1;   /* one frame per bin */
    caimg_roi_summary *s;
    caimg_roi_binned *b;
    ck_assert_int_eq(caimg_roi_summarize(m, &p, 1, &s, &b), 0);
    ck_assert_uint_eq(b->nbins, T);
    ck_assert_uint_eq(b->bin, 1);
    for (size_t y = 2; y < Y - 2; y++)
        for (size_t x = 2; x < X - 2; x++) {
            size_t i = y * X + x;
            ck_assert_double_eq_tol(s->mean[i], 10.0 + (double)x, 0.5);
            ck_assert_double_eq_tol(s->std[i], 2.0, 0.3);
            if (x < X / 2 - 1) ck_assert_double_gt(s->corr[i], 0.95);
            if (x > X / 2 + 1) ck_assert_double_lt(fabs(s->corr[i]), 0.2);
            ck_assert_double_ge(s->max[i], s->mean[i]);
        }
    caimg_roi_summary_free(s);
    caimg_roi_binned_free(b);
    /* A valid box crops the binned movie. */
    p.valid[0] = 3; p.valid[1] = 15; p.valid[2] = 4; p.valid[3] = 20;
    ck_assert_int_eq(caimg_roi_summarize(m, &p, 1, &s, &b), 0);
    ck_assert_uint_eq(b->height, 12);
    ck_assert_uint_eq(b->width, 16);
    ck_assert_uint_eq(b->y0, 3);
    ck_assert_uint_eq(b->x0, 4);
    ck_assert_float_eq(b->data[0], fr[0] * 0 + b->data[0]);   /* readable */
    caimg_roi_summary_free(s);
    caimg_roi_binned_free(b);
    /* A box outside the frame is refused. */
    p.valid[1] = 50;
    ck_assert_int_eq(caimg_roi_summarize(m, &p, 1, &s, &b), CAIMG_EINVAL);
    caimg_movie_close(m);
    free(fr);
    tu_rmdir(d);
}
END_TEST

/* Binning keeps memory bounded: bins grow with T. */
START_TEST(binning_bounded)
{
    caimg_roi_params p;
    caimg_roi_params_init(&p);
    size_t b, nb;
    caimg_roi_binning(&p, 30, 2000, 512, 512, &b, &nb);
    ck_assert_uint_eq(b, 6);
    ck_assert_uint_eq(nb, 333);
    size_t Ts[3] = {10000, 100000, 1000000};
    for (int k = 0; k < 3; k++) {
        caimg_roi_binning(&p, 30, Ts[k], 512, 512, &b, &nb);
        ck_assert_uint_le(nb * 512 * 512 * 4, (size_t)512 << 20);
        ck_assert_uint_ge(nb, 256);
    }
    p.max_bins = 100;
    caimg_roi_binning(&p, 30, 100000, 64, 64, &b, &nb);
    ck_assert_uint_le(nb, 100);
}
END_TEST

/* ---- user masks ------------------------------------------------------------- */

static void write_labels(const char *path, const void *lab, caimg_dtype dt, size_t Y, size_t X,
                         size_t pages)
{
    caimg_tiff_wopts o;
    caimg_tiff_wopts_init(&o, dt);
    caimg_tiff_writer *w = caimg_tiff_writer_create(path, X, Y, pages, &o);
    ck_assert_ptr_nonnull(w);
    for (size_t k = 0; k < pages; k++)
        ck_assert_int_eq(caimg_tiff_write_page(w, (const char *)lab + k * Y * X * caimg_dtype_size(dt)), 0);
    ck_assert_int_eq(caimg_tiff_writer_close(w), 0);
}

START_TEST(label_tiff)
{
    char *d = tu_tmpdir();
    size_t Y = 16, X = 20;
    uint16_t lab[2 * 16 * 20] = {0};
    for (size_t y = 2; y < 6; y++)
        for (size_t x = 2; x < 7; x++) lab[y * X + x] = 7;
    for (size_t y = 10; y < 12; y++)
        for (size_t x = 3; x < 5; x++) lab[y * X + x] = 3;
    write_labels(tu_path(d, "l.tif"), lab, CAIMG_DT_U16, Y, X, 1);
    caimg_roiset *r;
    ck_assert_int_eq(caimg_roi_masks_read(tu_path(d, "l.tif"), Y, X, &r), 0);
    ck_assert_uint_eq(r->n, 2);
    /* Increasing label order: label 3 first. */
    ck_assert_uint_eq(r->pix_start[1], 4);
    ck_assert_uint_eq(r->pix_start[2], 24);
    caimg_roiset_free(r);
    /* Wrong size: refused, naming the file and both sizes. */
    ck_assert_int_eq(caimg_roi_masks_read(tu_path(d, "l.tif"), Y, X + 1, &r), CAIMG_EFORMAT);
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "l.tif"));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "16x20"));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "16x21"));
    /* Two pages that overlap: two ROIs sharing pixels. */
    for (size_t y = 4; y < 9; y++)
        for (size_t x = 4; x < 9; x++) lab[Y * X + y * X + x] = 9;
    write_labels(tu_path(d, "two.tif"), lab, CAIMG_DT_U16, Y, X, 2);
    ck_assert_int_eq(caimg_roi_masks_read(tu_path(d, "two.tif"), Y, X, &r), 0);
    ck_assert_uint_eq(r->n, 3);
    caimg_roi_params p;
    caimg_roi_params_init(&p);
    ck_assert_int_eq(caimg_roiset_finish(r, &p), 0);
    size_t shared = 0;
    for (int64_t k = 0; k < r->pix_start[3]; k++) shared += r->pix_overlap[k];
    ck_assert_uint_eq(shared, 2 * 6);   /* rows 4-5, columns 4-6, in two ROIs */
    caimg_roiset_free(r);
    /* Negative or fractional labels. */
    float fl[16 * 20] = {0};
    fl[5] = 2.5f;
    write_labels(tu_path(d, "f.tif"), fl, CAIMG_DT_F32, Y, X, 1);
    ck_assert_int_eq(caimg_roi_masks_read(tu_path(d, "f.tif"), Y, X, &r), CAIMG_EFORMAT);
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "2.5"));
    int16_t neg[16 * 20] = {0};
    neg[7] = -1;
    write_labels(tu_path(d, "n.tif"), neg, CAIMG_DT_I16, Y, X, 1);
    ck_assert_int_eq(caimg_roi_masks_read(tu_path(d, "n.tif"), Y, X, &r), CAIMG_EFORMAT);
    ck_assert_int_eq(caimg_roi_masks_read(tu_path(d, "missing.tif"), Y, X, &r), CAIMG_ENOENT);
    tu_rmdir(d);
}
END_TEST

/* ---- ImageJ ROI files ---------------------------------------------------------- */

static double shoelace(const caimg_ijroi *q)
{
    double a = 0;
    for (size_t i = 0; i < q->n; i++) {
        size_t j = (i + 1) % q->n;
        a += q->x[i] * q->y[j] - q->x[j] * q->y[i];
    }
    return fabs(a) / 2;
}

/* The RoiSet shipped with SIMA (deflated freehand ROIs named by their
 * centre, y then x) and FISSA's (stored polygons). */
START_TEST(imagej_real_files)
{
    caimg_ijroi *q;
    size_t n;
    char path[1024];
    snprintf(path, sizeof path, "%s/testdata/real/sima/imageJ_ROIs.zip", top());
    ck_assert_msg(caimg_ijroi_read(path, &q, &n) == 0, "%s", caimg_errmsg());
    ck_assert_uint_eq(n, 2);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(q[i].type, 7);
        int sy, yc, xc;
        ck_assert_int_eq(sscanf(q[i].name, "%d-%d-%d", &sy, &yc, &xc), 3);
        uint8_t *m = calloc(128 * 256, 1);
        long np = caimg_ijroi_rasterize(&q[i], 128, 256, m);
        ck_assert_int_gt(np, 50);
        /* Pixel count within 10 % of the polygon's area (centre rule). */
        ck_assert_double_eq_tol((double)np, shoelace(&q[i]), 0.1 * shoelace(&q[i]));
        double cy = 0, cx = 0;
        for (size_t k = 0; k < 128 * 256; k++)
            if (m[k]) { cy += (double)(k / 256); cx += (double)(k % 256); }
        cy /= (double)np;
        cx /= (double)np;
        /* The name is the centre of the bounding box (ImageJ's convention). */
        ck_assert_double_eq_tol(cy, yc, 3);
        ck_assert_double_eq_tol(cx, xc, 3);
        for (size_t k = 0; k < q[i].n; k++) {
            ck_assert_double_ge(q[i].x[k], q[i].left);
            ck_assert_double_le(q[i].x[k], q[i].right);
            ck_assert_double_ge(q[i].y[k], q[i].top);
            ck_assert_double_le(q[i].y[k], q[i].bottom);
        }
        free(m);
    }
    ck_assert_str_eq(q[1].name, "0001-0049-0041");
    ck_assert_int_eq(q[1].top, 43);
    ck_assert_int_eq(q[1].left, 33);
    ck_assert_int_eq(q[1].bottom, 56);
    ck_assert_int_eq(q[1].right, 50);
    ck_assert_uint_eq(q[1].n, 50);
    caimg_ijroi_free(q, n);

    snprintf(path, sizeof path, "%s/testdata/real/fissa/rois.zip", top());
    ck_assert_msg(caimg_ijroi_read(path, &q, &n) == 0, "%s", caimg_errmsg());
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(q[0].type, 0);
    ck_assert_uint_eq(q[0].n, 7);
    ck_assert_int_eq(q[0].top, 10);
    ck_assert_int_eq(q[0].left, 10);
    caimg_ijroi_free(q, n);
    /* As seeded masks: the FISSA movie is 21 x 14 (rows x columns). */
    caimg_roiset *r;
    ck_assert_int_eq(caimg_roi_masks_read(path, 21, 14, &r), 0);
    ck_assert_uint_eq(r->n, 2);
    caimg_roiset_free(r);
    ck_assert_int_eq(caimg_roi_masks_read(path, 12, 12, &r), CAIMG_EFORMAT);
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "rois.zip"));
}
END_TEST

/* A .roi written byte by byte (ImageJ's RoiEncoder layout). */
static size_t make_roi(unsigned char *b, int type, int top, int left, int bottom, int right,
                       const int *xs, const int *ys, int n, const float *sub)
{
    memset(b, 0, 4096);
    memcpy(b, "Iout", 4);
    b[4] = 0; b[5] = 227;           /* version */
    b[6] = (unsigned char)type;
    b[8] = (unsigned char)(top >> 8); b[9] = (unsigned char)top;
    b[10] = (unsigned char)(left >> 8); b[11] = (unsigned char)left;
    b[12] = (unsigned char)(bottom >> 8); b[13] = (unsigned char)bottom;
    b[14] = (unsigned char)(right >> 8); b[15] = (unsigned char)right;
    b[16] = (unsigned char)(n >> 8); b[17] = (unsigned char)n;
    size_t o = 64;
    for (int i = 0; i < n; i++) { b[o++] = (unsigned char)((xs[i] - left) >> 8); b[o++] = (unsigned char)(xs[i] - left); }
    for (int i = 0; i < n; i++) { b[o++] = (unsigned char)((ys[i] - top) >> 8); b[o++] = (unsigned char)(ys[i] - top); }
    if (sub) {
        b[51] = 128;   /* sub-pixel resolution */
        for (int i = 0; i < 2 * n; i++) {
            uint32_t u;
            memcpy(&u, &sub[i], 4);
            b[o++] = (unsigned char)(u >> 24); b[o++] = (unsigned char)(u >> 16);
            b[o++] = (unsigned char)(u >> 8); b[o++] = (unsigned char)u;
        }
    }
    return o;
}

static void put_file(const char *path, const unsigned char *b, size_t n)
{
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(b, 1, n, fp), n);
    fclose(fp);
}

static void le16(unsigned char *p, unsigned v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void le32(unsigned char *p, uint32_t v) { le16(p, v & 0xffff); le16(p + 2, v >> 16); }

/* A zip of the given entries (deflated when `deflate`), built with zlib. */
static size_t make_zip(unsigned char *z, const unsigned char *const *data, const size_t *len,
                       const char *const *names, int n, int compress, int corrupt_crc)
{
    size_t o = 0, offs[8];
    uLong crcs[8];
    size_t csz[8];
    for (int i = 0; i < n; i++) {
        offs[i] = o;
        crcs[i] = crc32(0L, data[i], (uInt)len[i]);
        if (corrupt_crc) crcs[i] ^= 1;
        unsigned char comp[8192];
        size_t cl = len[i];
        if (compress) {
            z_stream s;
            memset(&s, 0, sizeof s);
            deflateInit2(&s, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
            s.next_in = (Bytef *)data[i]; s.avail_in = (uInt)len[i];
            s.next_out = comp; s.avail_out = sizeof comp;
            ck_assert_int_eq(deflate(&s, Z_FINISH), Z_STREAM_END);
            cl = s.total_out;
            deflateEnd(&s);
        } else memcpy(comp, data[i], len[i]);
        csz[i] = cl;
        size_t nl = strlen(names[i]);
        le32(z + o, 0x04034b50); le16(z + o + 4, 20); le16(z + o + 6, 0);
        le16(z + o + 8, compress ? 8 : 0); le32(z + o + 10, 0); le32(z + o + 14, (uint32_t)crcs[i]);
        le32(z + o + 18, (uint32_t)cl); le32(z + o + 22, (uint32_t)len[i]);
        le16(z + o + 26, (unsigned)nl); le16(z + o + 28, 0);
        memcpy(z + o + 30, names[i], nl);
        memcpy(z + o + 30 + nl, comp, cl);
        o += 30 + nl + cl;
    }
    size_t cd = o;
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(names[i]);
        memset(z + o, 0, 46);
        le32(z + o, 0x02014b50); le16(z + o + 4, 20); le16(z + o + 6, 20);
        le16(z + o + 10, compress ? 8 : 0); le32(z + o + 16, (uint32_t)crcs[i]);
        le32(z + o + 20, (uint32_t)csz[i]); le32(z + o + 24, (uint32_t)len[i]);
        le16(z + o + 28, (unsigned)nl); le32(z + o + 42, (uint32_t)offs[i]);
        memcpy(z + o + 46, names[i], nl);
        o += 46 + nl;
    }
    memset(z + o, 0, 22);
    le32(z + o, 0x06054b50);
    le16(z + o + 8, (unsigned)n); le16(z + o + 10, (unsigned)n);
    le32(z + o + 12, (uint32_t)(o - cd)); le32(z + o + 16, (uint32_t)cd);
    return o + 22;
}

START_TEST(imagej_shapes)
{
    char *d = tu_tmpdir();
    unsigned char rect[4096], oval[4096], poly[4096], sub[4096], line[4096];
    /* A 6 x 4 rectangle at columns 3-8, rows 2-5. */
    size_t nr = make_roi(rect, 1, 2, 3, 6, 9, NULL, NULL, 0, NULL);
    /* An oval in the 10 x 10 box at (20, 20). */
    size_t no = make_roi(oval, 2, 20, 20, 30, 30, NULL, NULL, 0, NULL);
    /* A right triangle with legs of 10 pixels. */
    int xs[3] = {40, 50, 40}, ys[3] = {10, 10, 20};
    size_t np = make_roi(poly, 0, 10, 40, 20, 50, xs, ys, 3, NULL);
    /* A sub-pixel square, 4.5 x 4.5 from (10.25, 30.25). */
    int sx[4] = {10, 14, 14, 10}, sy[4] = {30, 30, 34, 34};
    float sf[8] = {10.25f, 14.75f, 14.75f, 10.25f, 30.25f, 30.25f, 34.75f, 34.75f};
    size_t ns = make_roi(sub, 0, 30, 10, 35, 15, sx, sy, 4, sf);
    int lx[2] = {1, 5}, ly[2] = {1, 5};
    size_t nl = make_roi(line, 5, 1, 1, 5, 5, lx, ly, 2, NULL);
    const unsigned char *data[4] = {rect, oval, poly, sub};
    size_t len[4] = {nr, no, np, ns};
    const char *names[4] = {"rect.roi", "oval.roi", "poly.roi", "sub.roi"};
    unsigned char *z = malloc(65536);
    for (int deflate = 0; deflate < 2; deflate++) {
        size_t zl = make_zip(z, data, len, names, 4, deflate, 0);
        put_file(tu_path(d, "set.zip"), z, zl);
        caimg_ijroi *q;
        size_t n;
        ck_assert_msg(caimg_ijroi_read(tu_path(d, "set.zip"), &q, &n) == 0, "%s", caimg_errmsg());
        ck_assert_uint_eq(n, 4);
        ck_assert_str_eq(q[0].name, "rect");
        long counts[4];
        for (int i = 0; i < 4; i++) {
            uint8_t m[64 * 64] = {0};
            counts[i] = caimg_ijroi_rasterize(&q[i], 64, 64, m);
            if (i == 0) {
                ck_assert_int_eq(m[2 * 64 + 3], 1);
                ck_assert_int_eq(m[5 * 64 + 8], 1);
                ck_assert_int_eq(m[6 * 64 + 8], 0);
                ck_assert_int_eq(m[5 * 64 + 9], 0);
            }
        }
        ck_assert_int_eq(counts[0], 24);
        /* Ellipse of radius 5: pi 25 = 78.5 pixel centres, give or take. */
        ck_assert_int_ge(counts[1], 72);
        ck_assert_int_le(counts[1], 84);
        /* Triangle: centres inside a half square of 10: 45 (the diagonal
         * passes through no centre). */
        ck_assert_int_eq(counts[2], 45);
        /* Sub-pixel square 10.25-14.75: centres 10.5 .. 14.5, 5 x 5. */
        ck_assert_int_eq(counts[3], 25);
        caimg_ijroi_free(q, n);
    }
    /* A corrupt archive is refused, naming the entry. */
    size_t zl = make_zip(z, data, len, names, 4, 1, 1);
    put_file(tu_path(d, "bad.zip"), z, zl);
    caimg_ijroi *q;
    size_t n;
    ck_assert_int_eq(caimg_ijroi_read(tu_path(d, "bad.zip"), &q, &n), CAIMG_EFORMAT);
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "bad.zip: rect.roi"));
    /* Truncated: the central directory is gone. */
    put_file(tu_path(d, "short.zip"), z, zl / 2);
    ck_assert_int_eq(caimg_ijroi_read(tu_path(d, "short.zip"), &q, &n), CAIMG_EFORMAT);
    /* A line is not an area. */
    put_file(tu_path(d, "line.roi"), line, nl);
    ck_assert_int_eq(caimg_ijroi_read(tu_path(d, "line.roi"), &q, &n), 0);
    uint8_t m[64 * 64];
    ck_assert_int_eq(caimg_ijroi_rasterize(&q[0], 64, 64, m), CAIMG_EUNSUP);
    caimg_ijroi_free(q, n);
    caimg_roiset *r;
    ck_assert_int_eq(caimg_roi_masks_read(tu_path(d, "line.roi"), 64, 64, &r), CAIMG_EUNSUP);
    /* Not an ROI at all. */
    put_file(tu_path(d, "junk.roi"), (const unsigned char *)"hello world", 11);
    ck_assert_int_eq(caimg_ijroi_read(tu_path(d, "junk.roi"), &q, &n), CAIMG_EFORMAT);
    free(z);
    tu_rmdir(d);
}
END_TEST

/* The field's prior: the share of ROIs a first pass is sure of.  A
 * doubtful candidate is more likely a cell in a field crowded with sure
 * cells than among junk; user masks do not count; and where np_excess is
 * unknown the prior has no weight. */
static void set_row(double *st, double npix, double score, double con, double fit, double slope,
                    double excess, int source)
{
    for (int k = 0; k < CAIMG_ROI_NSTATS; k++) st[k] = NAN;
    st[CAIMG_ROI_NPIX] = npix;
    st[CAIMG_ROI_COMPACTNESS] = 1;
    st[CAIMG_ROI_ASPECT] = 1.1;
    st[CAIMG_ROI_SKEW] = score > 3 ? 2 : 0.1;
    st[CAIMG_ROI_SNR] = score > 3 ? 5 : 2;
    st[CAIMG_ROI_SCORE] = score;
    st[CAIMG_ROI_CONTRAST] = con;
    st[CAIMG_ROI_FIT] = fit;
    st[CAIMG_ROI_OVERLAP] = 0;
    st[CAIMG_ROI_NP_SLOPE] = slope;
    st[CAIMG_ROI_NP_EXCESS] = excess;
    st[CAIMG_ROI_NUCLEUS] = 0.3;
    st[CAIMG_ROI_SOURCE] = source;
}

START_TEST(classifier_prior)
{
    enum { N = 40 };
    const double d = 12;
    static double crowded[N * CAIMG_ROI_NSTATS], sparse[N * CAIMG_ROI_NSTATS];
    for (int i = 0; i < N; i++) {
        /* Sure cells: active, bright, own light; junk: neither. */
        set_row(crowded + i * CAIMG_ROI_NSTATS, 113, i < 20 ? 12 : -1, i < 20 ? 8 : 0.5,
                i < 20 ? 0.7 : 0.1, i < 20 ? 0.6 : 1.1, i < 20 ? 1 : 0, 1);
        set_row(sparse + i * CAIMG_ROI_NSTATS, 113, i < 1 ? 12 : -1, i < 1 ? 8 : 0.5,
                i < 1 ? 0.7 : 0.1, i < 1 ? 0.6 : 1.1, i < 1 ? 1 : 0, 1);
    }
    double pc = caimg_roi_field_prior(crowded, N, d), ps = caimg_roi_field_prior(sparse, N, d);
    ck_assert_double_eq_tol(pc, log(21.0 / 41), 1e-12);
    ck_assert_double_eq_tol(ps, log(2.0 / 41), 1e-12);
    /* A user mask is neither a sure cell nor a candidate. */
    crowded[CAIMG_ROI_SOURCE] = 0;
    ck_assert_double_eq_tol(caimg_roi_field_prior(crowded, N, d), log(20.0 / 40), 1e-12);
    ck_assert_double_eq_tol(caimg_roi_field_prior(crowded, 1, d), 0, 1e-12);

    /* A doubtful candidate: a dim soma-like blob, little activity. */
    caimg_roiset *r = caimg_roiset_alloc(16, 16);
    ck_assert_ptr_nonnull(r);
    int32_t yx[2] = {8, 8};
    ck_assert_int_eq(caimg_roiset_add(r, 1, yx, NULL, 1, 2), 0);
    ck_assert_int_eq(caimg_roiset_add(r, 1, yx, NULL, 1, 2), 0);
    set_row(r->stats, 100, 1, 3, 0.4, 0.85, 0.4, 2);
    set_row(r->stats + CAIMG_ROI_NSTATS, 100, 1, 3, 0.4, 0.85, NAN, 2);
    double a = caimg_roi_cell_probability(r, 0, d, pc), b = caimg_roi_cell_probability(r, 0, d, ps);
    ck_assert(a > b);
    ck_assert(a > 0 && a < 1 && b > 0 && b < 1);
    ck_assert_double_eq(caimg_roi_cell_probability(r, 1, d, pc), caimg_roi_cell_probability(r, 1, d, ps));
    caimg_roiset_free(r);
}
END_TEST

static Suite *roi_suite(void)
{
    Suite *s = suite_create("roi");
    TCase *tc = tcase_create("masks");
    tcase_add_test(tc, overlap_rule);
    tcase_add_test(tc, annulus);
    tcase_add_test(tc, soma_absorbs_piece);
    tcase_add_test(tc, soma_beside_bright_cell);
    tcase_add_test(tc, soma_under_bright_cell);
    tcase_add_test(tc, soma_under_strip);
    tcase_add_test(tc, label_tiff);
    tcase_add_test(tc, imagej_real_files);
    tcase_add_test(tc, imagej_shapes);
    tcase_add_test(tc, summary_images);
    tcase_add_test(tc, binning_bounded);
    tcase_add_test(tc, classifier_prior);
    suite_add_tcase(s, tc);
    TCase *td = tcase_create("detection");
    tcase_set_timeout(td, 600);
    tcase_add_test(td, blank_movie);
    tcase_add_loop_test(td, detect_typical_field, 0, 2);
    tcase_add_test(td, detect_bright_field);
    tcase_add_test(td, refinement_sharpens);
    suite_add_tcase(s, td);
    return s;
}

int main(void)
{
    return tu_run(roi_suite());
}
