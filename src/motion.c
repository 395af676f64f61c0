/* motion.c -- rigid registration, resampling and the execution loop.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "caimg/motion.h"
#include "internal.h"
#include "motion_impl.h"


void caimg_mc_params_init(caimg_mc_params *p)
{
    memset(p, 0, sizeof *p);
    p->max_shift = 0;
    p->max_shift_frac = 0.25;
    p->smooth_sigma = 1.15;
    p->whiten = 1;
    p->taper = 0;
    p->piecewise = 0;
    p->patch = 0;
    p->overlap = 0;
    p->max_dev = 5;
    p->min_pnr = 8;
    p->interp = CAIMG_MC_INTERP_BICUBIC;
    p->border = CAIMG_MC_BORDER_NEAREST;
    p->template_iter = 3;
    p->bidi = CAIMG_MC_BIDI_AUTO;
    p->bidi_offset = 0;
    p->bidi_subpixel = 0;
    p->threads = 0;
    p->measure = 0;
}

/* ---- windows and filters ------------------------------------------------ */

/* Raised-cosine taper: 1 in the middle, falling to near 0 over `width`
 * samples at each end.  Half-sample offsets keep it symmetric and nonzero,
 * so no pixel is thrown away entirely. */
void mc_taper(float *w, size_t n, double width)
{
    if (width > (double)n / 2) width = (double)n / 2;
    for (size_t i = 0; i < n; i++) {
        double d = (double)(i < n - 1 - i ? i : n - 1 - i) + 0.5;
        w[i] = d < width ? (float)(0.5 - 0.5 * cos(M_PI * d / width)) : 1.0f;
    }
}

/* Gaussian low-pass exp(-2 pi^2 sigma^2 |f|^2) on the half spectrum of an
 * ny x nx real transform, zero at DC (the mean carries no position).  *sum
 * receives its sum over the full spectrum, which is the correlation peak a
 * perfect match would give after whitening. */
void mc_gauss_filter(float *filt, size_t ny, size_t nx, double sigma, double *sum)
{
    size_t nh = nx / 2 + 1;
    double s = 0, c = 2 * M_PI * M_PI * sigma * sigma;
    for (size_t ky = 0; ky < ny; ky++) {
        double fy = (ky <= ny / 2 ? (double)ky : (double)ky - (double)ny) / (double)ny;
        for (size_t kx = 0; kx < nh; kx++) {
            double fx = (double)kx / (double)nx;
            double g = exp(-c * (fy * fy + fx * fx));
            if (ky == 0 && kx == 0) g = 0;
            filt[ky * nh + kx] = (float)g;
            /* Columns 1 .. (nx-1)/2 stand for two frequencies each. */
            s += (kx == 0 || 2 * kx == nx) ? g : 2 * g;
        }
    }
    *sum = s;
}

/* ---- plan ---------------------------------------------------------------- */

static void work_free(mc_work *w)
{
    fftwf_free(w->frame);
    fftwf_free(w->real);
    fftwf_free(w->spec);
    fftwf_free(w->xspec);
    fftwf_free(w->corr);
    fftwf_free(w->xrow);
    fftwf_free(w->crow);
    fftwf_free(w->tmp);
    fftwf_free(w->outf);
    fftwf_free(w->tmp2);
    fftwf_free(w->bre);
    fftwf_free(w->bcorr);
    fftwf_free(w->bspec);
    free(w->swy);
    free(w->swx);
    fftwf_free(w->preal);
    fftwf_free(w->pcorr);
    fftwf_free(w->pspec);
    free(w->pshift);
    free(w->ppnr);
    free(w->pok);
    free(w->wrow);
    free(w->acc_in);
    free(w->acc_out);
}

static int work_alloc(caimg_mc_plan *p, mc_work *w)
{
    size_t n = p->npix, nh = p->ny * (p->nx / 2 + 1);
    size_t pn = p->P * p->P, pnh = p->P * (p->P / 2 + 1);
    memset(w, 0, sizeof *w);
    w->frame = fftwf_malloc(sizeof(float) * n);
    w->real = fftwf_malloc(sizeof(float) * n);
    w->spec = fftwf_malloc(sizeof(fftwf_complex) * nh);
    w->xspec = fftwf_malloc(sizeof(fftwf_complex) * nh);
    w->corr = fftwf_malloc(sizeof(float) * n);
    w->xrow = fftwf_malloc(sizeof(fftwf_complex) * (p->nx / 2 + 1));
    w->crow = fftwf_malloc(sizeof(float) * p->nx);
    w->tmp = fftwf_malloc(sizeof(float) * n);
    w->outf = fftwf_malloc(sizeof(float) * n);
    w->tmp2 = p->par.piecewise ? fftwf_malloc(sizeof(float) * n) : NULL;
    size_t bn = p->bny * p->bnx, bnh = p->bny * (p->bnx / 2 + 1);
    w->bre = fftwf_malloc(sizeof(float) * bn);
    w->bcorr = fftwf_malloc(sizeof(float) * bn);
    w->bspec = fftwf_malloc(sizeof(fftwf_complex) * bnh);
    w->swy = caimg_malloc(p->ny, sizeof(float), "taper");
    w->swx = caimg_malloc(p->nx, sizeof(float), "taper");
    w->preal = fftwf_malloc(sizeof(float) * pn);
    w->pcorr = fftwf_malloc(sizeof(float) * pn);
    w->pspec = fftwf_malloc(sizeof(fftwf_complex) * pnh);
    w->pshift = caimg_calloc(p->npatch * 2, sizeof(float), "patch shifts");
    w->ppnr = caimg_calloc(p->npatch, sizeof(float), "patch PNR");
    w->pok = caimg_calloc(p->npatch, 1, "patch flags");
    w->wrow = caimg_calloc(12 * p->nx, sizeof(float), "shift field rows");
    w->acc_in = caimg_calloc(n, sizeof(double), "mean image");
    w->acc_out = caimg_calloc(n, sizeof(double), "mean image");
    if (!w->frame || !w->real || !w->spec || !w->xspec || !w->corr || !w->xrow || !w->crow || !w->tmp || !w->outf || (p->par.piecewise && !w->tmp2)
        || !w->bre || !w->bcorr || !w->bspec || !w->swy || !w->swx
        || !w->preal || !w->pcorr || !w->pspec || !w->pshift || !w->ppnr
        || !w->pok || !w->wrow || !w->acc_in || !w->acc_out) {
        work_free(w);
        return caimg_error(CAIMG_ENOMEM, "out of memory allocating motion correction work space");
    }
    return 0;
}

static int check_params(size_t ny, size_t nx, const caimg_mc_params *a)
{
    size_t side = ny < nx ? ny : nx;
    if (ny < 16 || nx < 16)
        /* A property of the data, not a usage error. */
        return caimg_error(CAIMG_EFORMAT, "frames of %zux%zu are too small to register (at least 16x16)", ny, nx);
    if (!(a->max_shift >= 0) || a->max_shift > (double)side / 2)
        return caimg_error(CAIMG_EINVAL, "max shift %g px is out of range [0, %zu]", a->max_shift, side / 2);
    if (!(a->max_shift_frac > 0 && a->max_shift_frac <= 0.5))
        return caimg_error(CAIMG_EINVAL, "max shift fraction %g is out of range (0, 0.5]", a->max_shift_frac);
    if (!(a->smooth_sigma >= 0 && a->smooth_sigma <= 10))
        return caimg_error(CAIMG_EINVAL, "smoothing sigma %g px is out of range [0, 10]", a->smooth_sigma);
    if (!(a->taper >= 0) || a->taper > (double)side / 2)
        return caimg_error(CAIMG_EINVAL, "taper %g px is out of range [0, %zu]", a->taper, side / 2);
    if (a->piecewise) {
        if (a->patch && a->patch < 16)
            return caimg_error(CAIMG_EINVAL, "patch size %zu is too small (at least 16)", a->patch);
        if (a->patch && a->overlap && a->overlap >= a->patch)
            return caimg_error(CAIMG_EINVAL, "patch overlap %zu must be smaller than the patch size %zu",
                               a->overlap, a->patch);
        if (!(a->max_dev > 0 && a->max_dev <= 64))
            return caimg_error(CAIMG_EINVAL, "max deviation %g px is out of range (0, 64]", a->max_dev);
        if (!(a->min_pnr >= 0))
            return caimg_error(CAIMG_EINVAL, "minimum peak-to-noise ratio %g must be >= 0", a->min_pnr);
    }
    if ((unsigned)a->interp > CAIMG_MC_INTERP_BILINEAR)
        return caimg_error(CAIMG_EINVAL, "unknown interpolation %d", (int)a->interp);
    if ((unsigned)a->border > CAIMG_MC_BORDER_NAN)
        return caimg_error(CAIMG_EINVAL, "unknown border policy %d", (int)a->border);
    if ((unsigned)a->bidi > CAIMG_MC_BIDI_FIXED)
        return caimg_error(CAIMG_EINVAL, "unknown bidirectional mode %d", (int)a->bidi);
    if (a->template_iter < 0 || a->template_iter > 50)
        return caimg_error(CAIMG_EINVAL, "template iterations %d out of range [0, 50]", a->template_iter);
    if (!(fabs(a->bidi_offset) <= (double)nx / 8))
        return caimg_error(CAIMG_EINVAL, "bidirectional offset %g px is out of range [-%zu, %zu]",
                           a->bidi_offset, nx / 8, nx / 8);
    if (a->threads < 0)
        return caimg_error(CAIMG_EINVAL, "thread count %d must be >= 0", a->threads);
    return 0;
}

/* The full-size transforms: forward r2c of a frame (planned with `flags`),
 * and the inverse column transforms of its half spectrum (in place on x).
 * The latter serve only when the search near the coarse shift fails (see
 * mc_rigid), too rarely to be worth measuring. */
static void plan_full(size_t ny, size_t nx, float *real, fftwf_complex *spec, fftwf_complex *x,
                      unsigned flags, fftwf_plan *fwd, fftwf_plan *icol)
{
    int n = (int)ny, h = (int)(nx / 2 + 1);
    *fwd = fftwf_plan_dft_r2c_2d((int)ny, (int)nx, real, spec, flags);
    *icol = fftwf_plan_many_dft(1, &n, h, x, NULL, h, 1, x, NULL, h, 1, FFTW_BACKWARD,
                                FFTW_ESTIMATE);
}

/* The zoomed column transform for the 2R + 1 rows around any shift: zL the
 * smallest divisor of ny from 2 (2R + 1) (about where the zL-point DFTs and
 * the sums over zM = ny / zL cost the same), else from 2R + 1; in place on
 * x.  Its cost hardly depends on measuring. */
static int plan_zoom(caimg_mc_plan *p, fftwf_complex *x, long R)
{
    size_t ny = p->ny, nh = p->nx / 2 + 1, L = 0, want = (size_t)(2 * R + 1);
    for (size_t d = 2 * want; d <= ny && !L; d++)
        if (ny % d == 0) L = d;
    for (size_t d = want; d <= ny && !L; d++)
        if (ny % d == 0) L = d;
    if (!L) L = ny;
    p->zL = L;
    p->zM = ny / L;
    p->ztw = caimg_malloc(ny, 2 * sizeof(float), "twiddles");
    if (!p->ztw) return CAIMG_ENOMEM;
    for (size_t j = 0; j < ny; j++) {
        double a = 2 * M_PI * (double)j / (double)ny;
        p->ztw[2 * j] = (float)cos(a);
        p->ztw[2 * j + 1] = (float)sin(a);
    }
    fftwf_iodim d = {(int)L, (int)(p->zM * nh), (int)(p->zM * nh)};
    fftwf_iodim hm[2] = {{(int)p->zM, (int)nh, (int)nh}, {(int)nh, 1, 1}};
    p->izoom = fftwf_plan_guru_dft(1, &d, 2, hm, x, x, FFTW_BACKWARD, FFTW_ESTIMATE);
    return 0;
}

/* ---- background measurement of the full-size plans ------------------------ */

#ifdef HAVE_FFTW_THREADSAFE
static pthread_once_t planner_once = PTHREAD_ONCE_INIT;
static void planner_safe(void) { fftwf_make_planner_thread_safe(); }

static void *measure_plans(void *arg)
{
    caimg_mc_plan *p = arg;
    /* Same array alignment (fftwf_malloc) and in-place-ness as the work
     * spaces the plans will run on. */
    plan_full(p->ny, p->nx, p->mreal, p->mspec, p->mx, FFTW_MEASURE, &p->mfwd, &p->micol);
    __atomic_store_n(&p->measured, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Start measuring fwd in a thread; 0 if it could not start. */
static int start_measuring(caimg_mc_plan *p)
{
    size_t nh = p->ny * (p->nx / 2 + 1);
    pthread_t *t = malloc(sizeof *t);
    p->mreal = fftwf_malloc(sizeof(float) * p->npix);
    p->mspec = fftwf_malloc(sizeof(fftwf_complex) * nh);
    p->mx = fftwf_malloc(sizeof(fftwf_complex) * nh);
    pthread_once(&planner_once, planner_safe);
    if (t && p->mreal && p->mspec && p->mx && pthread_create(t, NULL, measure_plans, p) == 0) {
        p->planner = t;
        p->measuring = 1;
        return 1;
    }
    free(t);
    fftwf_free(p->mreal);
    fftwf_free(p->mspec);
    fftwf_free(p->mx);
    p->mreal = NULL;
    p->mspec = p->mx = NULL;
    return 0;
}
#endif

/* Put the measured plans in place of the estimated ones if they are ready
 * (or, with `wait`, once they are).  Only between parallel regions: the
 * workers read p->fwd and p->icol. */
void mc_plan_settle(caimg_mc_plan *p, int wait)
{
#ifdef HAVE_FFTW_THREADSAFE
    if (!p->measuring) return;
    if (!wait && !__atomic_load_n(&p->measured, __ATOMIC_ACQUIRE)) return;
    pthread_join(*(pthread_t *)p->planner, NULL);
    free(p->planner);
    p->planner = NULL;
    p->measuring = 0;
    if (p->mfwd && p->micol) {
        fftwf_destroy_plan(p->fwd);
        fftwf_destroy_plan(p->icol);
        p->fwd = p->mfwd;
        p->icol = p->micol;
    } else {
        if (p->mfwd) fftwf_destroy_plan(p->mfwd);
        if (p->micol) fftwf_destroy_plan(p->micol);
    }
    p->mfwd = p->micol = NULL;
    fftwf_free(p->mreal);
    fftwf_free(p->mspec);
    fftwf_free(p->mx);
    p->mreal = NULL;
    p->mspec = p->mx = NULL;
#else
    (void)p;
    (void)wait;
#endif
}

caimg_mc_plan *caimg_mc_plan_create(size_t ny, size_t nx, const caimg_mc_params *par)
{
    caimg_mc_params def;
    if (!par) {
        caimg_mc_params_init(&def);
        par = &def;
    }
    if (check_params(ny, nx, par)) return NULL;
    if (ny > 65536 || nx > 65536) {
        caimg_error(CAIMG_EINVAL, "frames of %zux%zu are too large to register", ny, nx);
        return NULL;
    }
    caimg_mc_plan *p = caimg_calloc(1, sizeof *p, "motion correction plan");
    if (!p) return NULL;
    p->ny = ny;
    p->nx = nx;
    p->npix = ny * nx;
    p->par = *par;
    size_t side = ny < nx ? ny : nx;
    double S = par->max_shift > 0 ? par->max_shift : par->max_shift_frac * (double)side;
    /* Two pixels are kept clear of the wrap-around so the three-point fit
     * around a peak never straddles +-S and -S. */
    if (S > (double)side / 2 - 2) S = (double)side / 2 - 2;
    p->S = (int)floor(S);
    p->par.max_shift = p->S;
    if (p->par.taper <= 0) {
        double t = (double)side / 16;
        p->par.taper = t < 8 ? 8 : t;
    }
    p->nthr = par->threads > 0 ? par->threads : caimg_nthreads();
    p->bidi = par->bidi == CAIMG_MC_BIDI_FIXED ? par->bidi_offset : 0;

    size_t nh = nx / 2 + 1;
    p->wy = caimg_malloc(ny, sizeof(float), "taper");
    p->wx = caimg_malloc(nx, sizeof(float), "taper");
    p->filt = caimg_malloc(ny * nh, sizeof(float), "filter");
    p->tmpl = caimg_malloc(p->npix, sizeof(float), "template");
    p->tspec = fftwf_malloc(sizeof(fftwf_complex) * ny * nh);
    p->sat = caimg_calloc((ny + 1) * (nx + 1), sizeof(double), "template sums");
    p->sat2 = caimg_calloc((ny + 1) * (nx + 1), sizeof(double), "template sums");
    p->sum_in = caimg_calloc(p->npix, sizeof(double), "mean image");
    p->sum_out = caimg_calloc(p->npix, sizeof(double), "mean image");
    if (!p->wy || !p->wx || !p->filt || !p->tmpl || !p->tspec || !p->sat || !p->sat2
        || !p->sum_in || !p->sum_out) {
        caimg_error(CAIMG_ENOMEM, "out of memory creating a motion correction plan");
        goto fail;
    }
    mc_taper(p->wy, ny, p->par.taper);
    mc_taper(p->wx, nx, p->par.taper);
    mc_gauss_filter(p->filt, ny, nx, par->smooth_sigma, &p->filt_sum);

    if (mc_grid_init(p)) goto fail;

    /* Coarse grid: bin to at least 64 px on the smaller side, by at most 4
     * (a 1 x 1 "binning" on small frames keeps the same code path). */
    {
        size_t B = side / 64;
        B = B < 1 ? 1 : B > 4 ? 4 : B;
        p->B = (int)B;
        p->bny = ny / B;
        p->bnx = nx / B;
        p->bS = (int)((double)p->S / (double)B);
        if (p->bS > (int)(p->bny < p->bnx ? p->bny : p->bnx) / 2 - 2)
            p->bS = (int)(p->bny < p->bnx ? p->bny : p->bnx) / 2 - 2;
        size_t bnh = p->bny * (p->bnx / 2 + 1);
        p->bwy = caimg_malloc(p->bny, sizeof(float), "taper");
        p->bwx = caimg_malloc(p->bnx, sizeof(float), "taper");
        p->bfilt = caimg_malloc(bnh, sizeof(float), "filter");
        p->btspec = fftwf_malloc(sizeof(fftwf_complex) * bnh);
        if (!p->bwy || !p->bwx || !p->bfilt || !p->btspec) {
            caimg_error(CAIMG_ENOMEM, "out of memory creating a motion correction plan");
            goto fail;
        }
        double bt = p->par.taper / (double)B;
        mc_taper(p->bwy, p->bny, bt < 4 ? 4 : bt);
        mc_taper(p->bwx, p->bnx, bt < 4 ? 4 : bt);
        double bs = par->smooth_sigma / (double)B;
        mc_gauss_filter(p->bfilt, p->bny, p->bnx, bs < 0.8 ? 0.8 : bs, &p->bfilt_sum);
    }

    p->work = caimg_calloc((size_t)p->nthr, sizeof *p->work, "work spaces");
    if (!p->work) goto fail;
    for (int t = 0; t < p->nthr; t++)
        if (work_alloc(p, &p->work[t])) goto fail;

    /* Estimated plans by default: FFTW_MEASURE times the candidate
     * algorithms and keeps the fastest, and which one that is varies from
     * run to run (4 different plans in 8 runs for 96 x 96 frames), each
     * rounding differently, so the shifts, the template and everything
     * downstream would differ in their last bits between two runs on the
     * same data.
     *
     * When asked for, FFTW_MEASURE finds faster algorithms for the sizes at
     * hand; it overwrites the arrays, which hold nothing yet.  Measuring
     * takes time, though: for 512 x 512 frames about as long as 2000
     * full-size (or 6000 binned) transforms save by running the measured
     * plans rather than estimated ones (FFTW 3.3.10, AVX2).  With a known,
     * smaller number of frames (plus the template's few hundred), the
     * estimate is quicker in all. */
    unsigned measure = par->measure ? FFTW_MEASURE : FFTW_ESTIMATE;
    unsigned full_flags = measure, coarse_flags = measure;
    if (par->frames_hint) {
        size_t runs = par->frames_hint + 250, bruns = par->frames_hint + 600;
        if (runs < 2000) full_flags = FFTW_ESTIMATE;
        if (bruns < 6000) coarse_flags = FFTW_ESTIMATE;
    }
    mc_work *w = &p->work[0];
    int later = 0;   /* measure fwd in the background */
#ifdef HAVE_FFTW_THREADSAFE
    later = full_flags == FFTW_MEASURE;
#endif
    unsigned now_flags = later ? FFTW_ESTIMATE : full_flags;
    plan_full(ny, nx, w->real, w->spec, w->xspec, now_flags, &p->fwd, &p->icol);
    /* The row transform runs on a handful of rows per frame; measuring it
     * would cost more time than a better plan could save. */
    p->irow = fftwf_plan_dft_c2r_1d((int)nx, w->xrow, w->crow, FFTW_ESTIMATE);
    if (plan_zoom(p, w->xspec, p->B + 2)) goto fail;
    p->bfwd = fftwf_plan_dft_r2c_2d((int)p->bny, (int)p->bnx, w->bre, w->bspec, coarse_flags);
    p->binv = fftwf_plan_dft_c2r_2d((int)p->bny, (int)p->bnx, w->bspec, w->bcorr, coarse_flags);
    if (!p->fwd || !p->icol || !p->irow || !p->izoom || !p->bfwd || !p->binv) {
        caimg_error(CAIMG_EFAIL, "FFTW could not plan %zux%zu transforms", ny, nx);
        goto fail;
    }
    if (p->par.piecewise) {
        int P = (int)p->P;
        p->pfwd = fftwf_plan_dft_r2c_2d(P, P, w->preal, w->pspec, measure);
        p->pinv = fftwf_plan_dft_c2r_2d(P, P, w->pspec, w->pcorr, measure);
        if (!p->pfwd || !p->pinv) {
            caimg_error(CAIMG_EFAIL, "FFTW could not plan %dx%d patch transforms", P, P);
            goto fail;
        }
    }
#ifdef HAVE_FFTW_THREADSAFE
    /* Last: the main thread makes no more plans while the thread runs. */
    if (later && !start_measuring(p)) {
        fftwf_destroy_plan(p->fwd);
        fftwf_destroy_plan(p->icol);
        plan_full(ny, nx, w->real, w->spec, w->xspec, full_flags, &p->fwd, &p->icol);
        if (!p->fwd || !p->icol) {
            caimg_error(CAIMG_EFAIL, "FFTW could not plan %zux%zu transforms", ny, nx);
            goto fail;
        }
    }
#endif
    caimg_mc_reset(p);
    return p;
fail:
    caimg_mc_plan_destroy(p);
    return NULL;
}

void caimg_mc_plan_destroy(caimg_mc_plan *p)
{
    if (!p) return;
    mc_plan_settle(p, 1);
    if (p->fwd) fftwf_destroy_plan(p->fwd);
    if (p->icol) fftwf_destroy_plan(p->icol);
    if (p->irow) fftwf_destroy_plan(p->irow);
    if (p->izoom) fftwf_destroy_plan(p->izoom);
    free(p->ztw);
    if (p->pfwd) fftwf_destroy_plan(p->pfwd);
    if (p->pinv) fftwf_destroy_plan(p->pinv);
    if (p->bfwd) fftwf_destroy_plan(p->bfwd);
    if (p->binv) fftwf_destroy_plan(p->binv);
    free(p->bwy);
    free(p->bwx);
    free(p->bfilt);
    fftwf_free(p->btspec);
    if (p->work)
        for (int t = 0; t < p->nthr; t++) work_free(&p->work[t]);
    free(p->work);
    mc_grid_free(p);
    free(p->wy);
    free(p->wx);
    free(p->filt);
    free(p->tmpl);
    fftwf_free(p->tspec);
    free(p->sat);
    free(p->sat2);
    free(p->sum_in);
    free(p->sum_out);
    free(p);
}

const caimg_mc_params *caimg_mc_plan_params(const caimg_mc_plan *p) { return &p->par; }

void caimg_mc_plan_grid(const caimg_mc_plan *p, size_t *npy, size_t *npx,
                        const float **cy, const float **cx)
{
    if (npy) *npy = p->npy;
    if (npx) *npx = p->npx;
    if (cy) *cy = p->pcy;
    if (cx) *cx = p->pcx;
}

void caimg_mc_set_bidi(caimg_mc_plan *p, double offset) { p->bidi = offset; }
double caimg_mc_get_bidi(const caimg_mc_plan *p) { return p->bidi; }
const float *caimg_mc_get_template(const caimg_mc_plan *p)
{
    return p->have_template ? p->tmpl : NULL;
}

void caimg_mc_reset(caimg_mc_plan *p)
{
    p->last[0] = p->last[1] = 0;
    memset(p->sum_in, 0, sizeof(double) * p->npix);
    memset(p->sum_out, 0, sizeof(double) * p->npix);
    p->n_in = p->n_out = 0;
    p->frames = p->unusable = p->clipped = p->filled = 0;
    p->valid[0] = 0;
    p->valid[1] = (int)p->ny;
    p->valid[2] = 0;
    p->valid[3] = (int)p->nx;
    for (int t = 0; t < p->nthr; t++) {
        mc_work *w = &p->work[t];
        memset(w->acc_in, 0, sizeof(double) * p->npix);
        memset(w->acc_out, 0, sizeof(double) * p->npix);
        w->n_in = w->n_out = 0;
    }
}

/* ---- template ------------------------------------------------------------ */

/* The template's spectrum G as the frames meet it: conj(G) / |G| (when
 * whitening) times the Gaussian filter, so that the per-frame work is one
 * complex product and one normalisation per frequency.  Frequencies where
 * one frame's shot noise (power nu) outweighs the template carry only
 * noise and are weighted by their reliability |G|^2 / (|G|^2 + nu). */
void mc_template_spectrum(const fftwf_complex *G, const float *filt, size_t n, int whiten,
                          double nu, fftwf_complex *out)
{
    for (size_t k = 0; k < n; k++) {
        float a = G[k][0], b = G[k][1];
        float pw = a * a + b * b;
        float m = whiten ? sqrtf(pw) : 1;
        float g = m > 0 ? filt[k] / m : 0;
        if (whiten && nu > 0) g *= (float)(pw / (pw + nu));
        out[k][0] = a * g;
        out[k][1] = -b * g;
    }
}

/* Tapered, mean-free copy of a frame: the input of every transform.  The
 * mean is removed before tapering so that the taper itself, which does not
 * move with the scene, carries no signal. */
CAIMG_SIMD_CLONES
static void taper_frame(const caimg_mc_plan *p, const float *f, float mean, float *out)
{
    size_t nx = p->nx;
    for (size_t y = 0; y < p->ny; y++) {
        const float *a = f + y * nx;
        float *o = out + y * nx;
        const float *wx = p->wx;
        float wy = p->wy[y];
#pragma omp simd
        for (size_t x = 0; x < nx; x++) o[x] = (a[x] - mean) * wy * wx[x];
    }
}

/* d x d block sums of a frame (nx wide) into out (by x bx): the d rows are
 * summed first (contiguous, so it vectorises) into rs (nx floats), then
 * groups of d columns of that sum. */
CAIMG_SIMD_CLONES
void mc_bin_frame(const float *f, size_t nx, size_t d, size_t by, size_t bx, float *rs,
                  float *out)
{
    for (size_t u = 0; u < by; u++) {
        const float *r0 = f + u * d * nx;
#pragma omp simd
        for (size_t x = 0; x < nx; x++) rs[x] = r0[x];
        for (size_t a = 1; a < d; a++) {
            const float *r = r0 + a * nx;
#pragma omp simd
            for (size_t x = 0; x < nx; x++) rs[x] += r[x];
        }
        float *o = out + u * bx;
        for (size_t v = 0; v < bx; v++) {
            float t = 0;
            for (size_t b = 0; b < d; b++) t += rs[v * d + b];
            o[v] = t;
        }
    }
}

/* Spectrum of the B x B binned frame (sums), mean removed and tapered,
 * into w->bspec. */
CAIMG_SIMD_CLONES
static void coarse_transform(const caimg_mc_plan *p, mc_work *w, const float *f, float mean)
{
    size_t bnx = p->bnx;
    float bm = mean * (float)(p->B * p->B);
    mc_bin_frame(f, p->nx, (size_t)p->B, p->bny, bnx, w->wrow, w->bre);   /* w->wrow holds a row */
    for (size_t u = 0; u < p->bny; u++) {
        float *o = w->bre + u * bnx;
        float wy = p->bwy[u];
#pragma omp simd
        for (size_t v = 0; v < bnx; v++) o[v] = (o[v] - bm) * wy * p->bwx[v];
    }
    fftwf_execute_dft_r2c(p->bfwd, w->bre, w->bspec);
}

/* Spectrum of a frame into w->spec: mean removed, edges tapered. */
void mc_transform(const caimg_mc_plan *p, mc_work *w, const float *f, float mean)
{
    taper_frame(p, f, mean, w->real);
    fftwf_execute_dft_r2c(p->fwd, w->real, w->spec);
}

int caimg_mc_set_template(caimg_mc_plan *p, const float *tmpl)
{
    size_t n = p->npix, nx = p->nx, ny = p->ny;
    double s = 0;
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        float v = tmpl[i];
        if (!isfinite(v))
            return caimg_error(CAIMG_EINVAL, "template pixel (%zu, %zu) is not finite", i / nx, i % nx);
        s += v;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    if (!(hi > lo)) return caimg_error(CAIMG_EINVAL, "template is constant (%g)", (double)lo);
    if (tmpl != p->tmpl) memcpy(p->tmpl, tmpl, sizeof(float) * n);
    float mean = (float)(s / (double)n);

    mc_work *w = &p->work[0];
    coarse_transform(p, w, p->tmpl, mean);
    mc_template_spectrum(w->bspec, p->bfilt, p->bny * (p->bnx / 2 + 1), p->par.whiten, p->bnu,
                         p->btspec);
    mc_transform(p, w, p->tmpl, mean);
    mc_template_spectrum(w->spec, p->filt, ny * (nx / 2 + 1), p->par.whiten, p->nu, p->tspec);
    /* Summed-area tables for per-frame correlations over any box. */
    for (size_t y = 0; y < ny; y++) {
        double r = 0, r2 = 0;
        for (size_t x = 0; x < nx; x++) {
            double v = p->tmpl[y * nx + x];
            r += v;
            r2 += v * v;
            p->sat[(y + 1) * (nx + 1) + x + 1] = p->sat[y * (nx + 1) + x + 1] + r;
            p->sat2[(y + 1) * (nx + 1) + x + 1] = p->sat2[y * (nx + 1) + x + 1] + r2;
        }
    }
    if (p->par.piecewise && mc_grid_template(p)) return CAIMG_ENOMEM;
    p->have_template = 1;
    return 0;
}

/* Mean power of a spectrum in the outer band |f| > 0.4 cycles/px, where
 * two-photon images hold little but shot noise: the per-frequency noise
 * power of one frame. */
static double noise_floor(size_t ny, size_t nx, const fftwf_complex *F)
{
    size_t nh = nx / 2 + 1;
    double s = 0;
    size_t cnt = 0;
    for (size_t ky = 0; ky < ny; ky++) {
        double fy = (ky <= ny / 2 ? (double)ky : (double)ky - (double)ny) / (double)ny;
        for (size_t kx = 0; kx < nh; kx++) {
            double fx = (double)kx / (double)nx;
            if (fy * fy + fx * fx < 0.16) continue;
            s += (double)F[ky * nh + kx][0] * F[ky * nh + kx][0] + (double)F[ky * nh + kx][1] * F[ky * nh + kx][1];
            cnt++;
        }
    }
    return cnt ? s / (double)cnt : 0;
}

double mc_noise_floor(const caimg_mc_plan *p, const fftwf_complex *F)
{
    return noise_floor(p->ny, p->nx, F);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The per-frequency noise power of one frame: the median of the outer-band
 * power over up to 32 of the given frames (float, picked by idx if not
 * NULL), each cleaned and bidi-corrected like any frame. */
int mc_estimate_noise(caimg_mc_plan *p, const void *frames, const void *const *ptrs,
                      caimg_dtype dt, const size_t *idx, size_t n)
{
    size_t sz = caimg_dtype_size(dt);
    size_t m = n < 32 ? n : 32, cnt = 0;
    double *fl = caimg_malloc(m ? m : 1, 2 * sizeof(double), "noise estimates");
    if (!fl) return CAIMG_ENOMEM;
#pragma omp parallel for schedule(dynamic, 1) num_threads(p->nthr)
    for (size_t j = 0; j < m; j++) {
        mc_work *w = &p->work[mc_thread_num()];
        size_t i = (j * n) / m;
        float mean;
        if (idx) i = idx[i];
        fl[j] = fl[m + j] = NAN;
        const void *fr = ptrs ? ptrs[i] : (const char *)frames + i * p->npix * sz;
        if (!mc_clean(p, fr, dt, w->frame, &mean)) continue;
        mc_bidi_apply(p, w->frame, w->tmp);
        mc_transform(p, w, w->frame, mean);
        coarse_transform(p, w, w->frame, mean);
        fl[j] = mc_noise_floor(p, w->spec);
        fl[m + j] = noise_floor(p->bny, p->bnx, w->bspec);
    }
    for (size_t j = 0; j < m; j++)
        if (!isnan(fl[j])) {
            fl[cnt] = fl[j];
            fl[m + cnt] = fl[m + j];
            cnt++;
        }
    if (cnt) {
        qsort(fl, cnt, sizeof *fl, cmp_double);
        qsort(fl + m, cnt, sizeof *fl, cmp_double);
        p->nu = fl[cnt / 2];
        p->bnu = fl[m + cnt / 2];
        p->nu_known = 1;
    }
    free(fl);
    return 0;
}

/* ---- per-frame steps ----------------------------------------------------- */

CAIMG_SIMD_CLONES
void mc_add_frame(double *restrict acc, const float *restrict f, size_t n)
{
#pragma omp simd
    for (size_t k = 0; k < n; k++) acc[k] += f[k];
}

/* mc_clean, and with acc not NULL, acc += the frame if it is usable: for
 * uint16 frames in the same pass (the sum is taken back from an unusable,
 * i.e. constant, frame: exact, as sums of integers below 2^53 are). */
CAIMG_SIMD_CLONES
static int clean(const caimg_mc_plan *p, const void *src, caimg_dtype dt, float *dst,
                 float *mean, double *acc)
{
    size_t n = p->npix, nx = p->nx, bad = 0;
    double s = 0;
    float lo = INFINITY, hi = -INFINITY;
    /* Convert, sum and find the range row by row in one vectorisable pass
     * for the common types (one pass over memory instead of two). */
    if (dt == CAIMG_DT_U16 || !caimg_dtype_is_float(dt)) {
        if (dt != CAIMG_DT_U16) caimg_to_float(src, dt, dst, n);
        const uint16_t *u = src;
        for (size_t y = 0; y < p->ny; y++) {
            float *r = dst + y * nx;
            float rs = 0, rl = INFINITY, rh = -INFINITY;
            if (dt == CAIMG_DT_U16 && acc) {
                const uint16_t *restrict q = u + y * nx;
                double *restrict a = acc + y * nx;
#pragma omp simd reduction(+ : rs) reduction(min : rl) reduction(max : rh)
                for (size_t x = 0; x < nx; x++) {
                    float v = (float)q[x];
                    r[x] = v;
                    a[x] += v;
                    rs += v;
                    rl = v < rl ? v : rl;
                    rh = v > rh ? v : rh;
                }
            } else if (dt == CAIMG_DT_U16) {
                const uint16_t *q = u + y * nx;
#pragma omp simd reduction(+ : rs) reduction(min : rl) reduction(max : rh)
                for (size_t x = 0; x < nx; x++) {
                    float v = (float)q[x];
                    r[x] = v;
                    rs += v;
                    rl = v < rl ? v : rl;
                    rh = v > rh ? v : rh;
                }
            } else {
#pragma omp simd reduction(+ : rs) reduction(min : rl) reduction(max : rh)
                for (size_t x = 0; x < nx; x++) {
                    float v = r[x];
                    rs += v;
                    rl = v < rl ? v : rl;
                    rh = v > rh ? v : rh;
                }
            }
            s += rs;
            lo = rl < lo ? rl : lo;
            hi = rh > hi ? rh : hi;
        }
    } else {
        if (dt == CAIMG_DT_F32 && src != dst) memcpy(dst, src, n * sizeof(float));
        else if (dt != CAIMG_DT_F32) caimg_to_float(src, dt, dst, n);
        for (size_t y = 0; y < p->ny; y++) {
            const float *r = dst + y * nx;
            float rs = 0, rl = INFINITY, rh = -INFINITY;
            int rb = 0;
            /* x - x is 0 for finite x and NaN for NaN and infinities. */
#pragma omp simd reduction(+ : rs, rb) reduction(min : rl) reduction(max : rh)
            for (size_t x = 0; x < nx; x++) {
                float v = r[x];
                int ok = (v - v) == 0;
                float z = ok ? v : 0, vl = ok ? v : INFINITY, vh = ok ? v : -INFINITY;
                rb += ok ? 0 : 1;
                rs += z;
                rl = vl < rl ? vl : rl;
                rh = vh > rh ? vh : rh;
            }
            s += rs;
            bad += (size_t)rb;
            lo = rl < lo ? rl : lo;
            hi = rh > hi ? rh : hi;
        }
    }
    if (2 * bad > n || !(hi > lo)) {
        if (acc && dt == CAIMG_DT_U16)
            for (size_t i = 0; i < n; i++) acc[i] -= dst[i];
        return 0;
    }
    float m = (float)(s / (double)(n - bad));
    if (bad)
        for (size_t i = 0; i < n; i++)
            if (!isfinite(dst[i])) dst[i] = m;
    *mean = m;
    if (acc && dt != CAIMG_DT_U16) mc_add_frame(acc, dst, n);
    return bad ? 2 : 1;
}

/* Convert a frame to float and decide whether it can be registered.
 * Returns 1 with the mean of the finite pixels in *mean (2 if non-finite
 * pixels were replaced by it), or 0 for an unusable frame. */
int mc_clean(const caimg_mc_plan *p, const void *src, caimg_dtype dt, float *dst, float *mean)
{
    return clean(p, src, dt, dst, mean, NULL);
}

/* Undo the bidirectional-scan offset: odd row y is resampled at x + b.
 * Whole-pixel offsets are exact copies; fractional ones use Keys cubic
 * interpolation.  Samples from outside the row take the nearest edge. */
void mc_bidi_apply(const caimg_mc_plan *p, float *f, float *tmp)
{
    double b = p->bidi;
    if (b == 0) return;
    size_t nx = p->nx;
    long ib = (long)floor(b);
    float fb = (float)(b - (double)ib);
    float w[4];
    for (int k = 0; k < 4; k++) w[k] = mc_keys(fb - (float)(k - 1));
    for (size_t y = 1; y < p->ny; y += 2) {
        float *r = f + y * nx;
        memcpy(tmp, r, sizeof(float) * nx);
        for (long x = 0; x < (long)nx; x++) {
            if (fb == 0) {
                long s = x + ib;
                s = s < 0 ? 0 : s >= (long)nx ? (long)nx - 1 : s;
                r[x] = tmp[s];
            } else {
                float v = 0;
                for (int k = 0; k < 4; k++) {
                    long s = x + ib - 1 + k;
                    s = s < 0 ? 0 : s >= (long)nx ? (long)nx - 1 : s;
                    v += w[k] * tmp[s];
                }
                r[x] = v;
            }
        }
    }
}

/* Sub-pixel offset of a peak from three samples: a parabola through their
 * logarithms, which is exact for a Gaussian peak; a parabola through the
 * values themselves if any is not positive. */
double mc_fit3(double a, double b, double c)
{
    double off = 0;
    if (a > 0 && b > 0 && c > 0) {
        double la = log(a), lb = log(b), lc = log(c);
        double den = la - 2 * lb + lc;
        if (den < 0) off = 0.5 * (la - lc) / den;
    } else {
        double den = a - 2 * b + c;
        if (den < 0) off = 0.5 * (a - c) / den;
    }
    return off < -0.5 ? -0.5 : off > 0.5 ? 0.5 : off;
}

void mc_subpixel(const float *c, size_t ny, size_t nx, long iy, long ix, double *oy, double *ox)
{
    size_t ym = (size_t)((iy - 1 + (long)ny) % (long)ny), yp = (size_t)((iy + 1) % (long)ny);
    size_t xm = (size_t)((ix - 1 + (long)nx) % (long)nx), xp = (size_t)((ix + 1) % (long)nx);
    size_t y0 = (size_t)iy, x0 = (size_t)ix;
    *oy = mc_fit3(c[ym * nx + x0], c[y0 * nx + x0], c[yp * nx + x0]);
    *ox = mc_fit3(c[y0 * nx + xm], c[y0 * nx + x0], c[y0 * nx + xp]);
}

/* Whitened cross-power spectrum, in place: X <- X T / |X|, T being the
 * pre-whitened filtered conjugate template spectrum. */
CAIMG_SIMD_CLONES
void mc_cross(const fftwf_complex *F, const fftwf_complex *restrict T,
                         fftwf_complex *X, size_t n, int whiten)
{
    if (!whiten) {
#pragma omp simd
        for (size_t k = 0; k < n; k++) {
            float a = F[k][0], b = F[k][1], c = T[k][0], d = T[k][1];
            X[k][0] = a * c - b * d;
            X[k][1] = a * d + b * c;
        }
        return;
    }
#pragma omp simd
    for (size_t k = 0; k < n; k++) {
        float a = F[k][0], b = F[k][1], c = T[k][0], d = T[k][1];
        float m = a * a + b * b;
        /* The tiny floor only keeps 0/0 out; real spectra never get near it. */
        float s = 1.0f / sqrtf(m + 1e-30f);
        X[k][0] = (a * c - b * d) * s;
        X[k][1] = (a * d + b * c) * s;
    }
}

/* Best whole-pixel shift within +-S of a correlation surface (wrapped
 * indices); returns the value. */
static float peak_search(const float *c, size_t ny, size_t nx, long S, long cy, long cx,
                         long *by, long *bx)
{
    float best = -INFINITY;
    long iy = 0, ix = 0;
    for (long sy = cy - S; sy <= cy + S; sy++) {
        const float *row = c + ((sy % (long)ny + (long)ny) % (long)ny) * nx;
        for (long sx = cx - S; sx <= cx + S; sx++) {
            float v = row[(sx % (long)nx + (long)nx) % (long)nx];
            if (v > best) {
                best = v;
                iy = sy;
                ix = sx;
            }
        }
    }
    *by = iy;
    *bx = ix;
    return best;
}

/* Search over the symmetric window +-S around zero: the row maxima first
 * (two contiguous column ranges per row, vectorised), then the position in
 * the best row. */
static float peak_search0(const float *c, size_t ny, size_t nx, long S, long *by, long *bx)
{
    float best = -INFINITY;
    long iy = 0;
    for (long sy = -S; sy <= S; sy++) {
        const float *row = c + (size_t)((sy + (long)ny) % (long)ny) * nx;
        const float *neg = row + nx - (size_t)S;
        float m = -INFINITY;
#pragma omp simd reduction(max : m)
        for (long sx = 0; sx <= S; sx++) m = row[sx] > m ? row[sx] : m;
#pragma omp simd reduction(max : m)
        for (long sx = 0; sx < S; sx++) m = neg[sx] > m ? neg[sx] : m;
        if (m > best) {
            best = m;
            iy = sy;
        }
    }
    const float *row = c + (size_t)((iy + (long)ny) % (long)ny) * nx;
    long ix = 0;
    for (long sx = -S; sx <= S; sx++)
        if (row[(sx + (long)nx) % (long)nx] == best) {
            ix = sx;
            break;
        }
    *by = iy;
    *bx = ix;
    return best;
}

/* Rigid registration of one frame.
 *
 * The edge taper is what lets a periodic FFT correlate two finite images,
 * but it is fixed to the frame while the scene moves: the frame and the
 * template then weigh the same scene point differently, which pulls the
 * estimate towards zero by a fraction of the shift (about 1% on 128-px
 * frames, 0.1% on 512-px ones, on simulated movies).  So a coarse
 * registration on binned frames (a few small FFTs) first finds the shift
 * to within a pixel or two, and the full-resolution frame is then tapered
 * with the window moved by that shift, i.e. anchored to the scene as the
 * template's is.  The bias is then that of the remaining fraction of a
 * pixel, negligible. */
void mc_rigid_coarse(const caimg_mc_plan *p, mc_work *w, const float *f, float mean, mc_est *e)
{
    coarse_transform(p, w, f, mean);
    size_t bny = p->bny, bnx = p->bnx;
    mc_cross(w->bspec, p->btspec, w->bspec, bny * (bnx / 2 + 1), p->par.whiten);
    fftwf_execute_dft_c2r(p->binv, w->bspec, w->bcorr);
    long cy, cx;
    float best = peak_search0(w->bcorr, bny, bnx, p->bS, &cy, &cx);
    double oy = 0, ox = 0;
    mc_subpixel(w->bcorr, bny, bnx, (cy + (long)bny) % (long)bny, (cx + (long)bnx) % (long)bnx, &oy, &ox);
    e->dy = (float)(((double)cy + oy) * p->B);
    e->dx = (float)(((double)cx + ox) * p->B);
    e->peak = (float)(best / p->bfilt_sum);
    e->flags = (labs(cy) >= p->bS || labs(cx) >= p->bS) ? CAIMG_MC_CLIPPED : 0;
    /* A frame moved further than the search reaches has its true peak
     * outside +-S, and the best inside is then anywhere, not necessarily
     * at the limit: the coarse surface, which is cheap, is searched whole
     * too, and a clearly higher peak outside flags the frame. */
    long gy, gx, G = (long)(bny < bnx ? bny : bnx) / 2 - 1;
    if (G > p->bS) {
        float gbest = peak_search0(w->bcorr, bny, bnx, G, &gy, &gx);
        if (gbest > 1.1f * best && (labs(gy) > p->bS || labs(gx) > p->bS))
            e->flags |= CAIMG_MC_CLIPPED;
    }
}

/* The whole correlation surface w->corr from the column-transformed
 * cross-power spectrum in w->xspec, which is left intact.  Rows go through
 * aligned buffers: FFTW's new-array execution needs the alignment it
 * planned for, and the row transform destroys its input. */
static void inverse_rows(const caimg_mc_plan *p, mc_work *w)
{
    size_t nx = p->nx, nh = nx / 2 + 1;
    for (size_t row = 0; row < p->ny; row++) {
        memcpy(w->xrow, w->xspec + row * nh, sizeof(fftwf_complex) * nh);
        fftwf_execute_dft_c2r(p->irow, w->xrow, w->crow);
        memcpy(w->corr + row * nx, w->crow, sizeof(float) * nx);
    }
}

/* Rows yc-r .. yc+r (wrapped; 2r + 1 <= zL) of the correlation surface
 * w->corr from the zoom-transformed cross-power spectrum in zs: row
 * y of the column transform is the sum over b of exp(2 pi i b y / ny)
 * times sub-row b of block y mod zL. */
CAIMG_SIMD_CLONES
static void zoom_rows(const caimg_mc_plan *p, mc_work *w, const fftwf_complex *zs, long yc,
                      long r)
{
    long ny = (long)p->ny;
    size_t nx = p->nx, nh = nx / 2 + 1, M = p->zM;
    for (long y = yc - r; y <= yc + r; y++) {
        size_t row = (size_t)((y % ny + ny) % ny), a = row % p->zL;
        const float *blk = (const float *)(zs + a * M * nh);
        float *restrict o = (float *)w->xrow;
        memcpy(o, blk, sizeof(fftwf_complex) * nh);   /* b = 0: weight 1 */
        for (size_t b = 1; b < M; b++) {
            size_t j = (b * row) % (size_t)ny;
            float c = p->ztw[2 * j], s = p->ztw[2 * j + 1];
            const float *restrict z = blk + 2 * b * nh;
#pragma omp simd
            for (size_t k = 0; k < nh; k++) {
                float zr = z[2 * k], zi = z[2 * k + 1];
                o[2 * k] += c * zr - s * zi;
                o[2 * k + 1] += c * zi + s * zr;
            }
        }
        fftwf_execute_dft_c2r(p->irow, w->xrow, w->crow);
        memcpy(w->corr + row * nx, w->crow, sizeof(float) * nx);
    }
}

/* The frame, mean removed, times the taper moved with the scene (w->swy,
 * w->swx), into w->real. */
CAIMG_SIMD_CLONES
static void taper_fine(mc_work *w, const float *f, float mean, long ny, long nx)
{
    for (long y = 0; y < ny; y++) {
        const float *a = f + y * nx;
        float *o = w->real + y * nx;
        const float *wx = w->swx;
        float wy = w->swy[y];
#pragma omp simd
        for (long x = 0; x < nx; x++) o[x] = (a[x] - mean) * wy * wx[x];
    }
}

CAIMG_SIMD_CLONES
void mc_rigid(const caimg_mc_plan *p, mc_work *w, const float *f, float mean, mc_est *e)
{
    long ny = (long)p->ny, nx = (long)p->nx;
    int flags = 0;
    /* Coarse. */
    mc_rigid_coarse(p, w, f, mean, e);
    flags |= e->flags & CAIMG_MC_CLIPPED;
    double oy, ox;
    long Dy = lround(e->dy), Dx = lround(e->dx);
    if (Dy > p->S) Dy = p->S;
    if (Dy < -p->S) Dy = -p->S;
    if (Dx > p->S) Dx = p->S;
    if (Dx < -p->S) Dx = -p->S;

    /* Fine, with the taper on the scene. */
    for (long y = 0; y < ny; y++) w->swy[y] = y - Dy >= 0 && y - Dy < ny ? p->wy[y - Dy] : 0;
    for (long x = 0; x < nx; x++) w->swx[x] = x - Dx >= 0 && x - Dx < nx ? p->wx[x - Dx] : 0;
    taper_fine(w, f, mean, ny, nx);
    fftwf_execute_dft_r2c(p->fwd, w->real, w->spec);
    /* The cross-power spectrum in place of the frame's: one array less
     * to stream through the cache, at the price of a second transform in
     * the rare case below. */
    mc_cross(w->spec, p->tspec, w->spec, (size_t)ny * (size_t)(nx / 2 + 1), p->par.whiten);
    /* Search near the coarse shift, which needs only the rows within R of
     * it: the zoomed column transform and their row transforms cost about
     * a third of the whole inverse transform.  If the maximum lands on the
     * edge of that neighbourhood, or outside +-S, the coarse step was
     * misled: the whole surface is made (from the frame's spectrum again,
     * which the cross-power spectrum and the zoom consumed) and searched. */
    long R = p->B + 2, iy, ix;
    fftwf_execute_dft(p->izoom, w->spec, w->spec);
    zoom_rows(p, w, w->spec, Dy, R);
    float best = peak_search(w->corr, (size_t)ny, (size_t)nx, R, Dy, Dx, &iy, &ix);
    if (labs(iy - Dy) == R || labs(ix - Dx) == R || labs(iy) > p->S || labs(ix) > p->S) {
        taper_fine(w, f, mean, ny, nx);
        fftwf_execute_dft_r2c(p->fwd, w->real, w->spec);
        mc_cross(w->spec, p->tspec, w->xspec, (size_t)ny * (size_t)(nx / 2 + 1), p->par.whiten);
        fftwf_execute_dft(p->icol, w->xspec, w->xspec);
        inverse_rows(p, w);
        best = peak_search0(w->corr, (size_t)ny, (size_t)nx, p->S, &iy, &ix);
    }
    if (labs(iy) >= p->S || labs(ix) >= p->S) flags |= CAIMG_MC_CLIPPED;
    oy = ox = 0;
    mc_subpixel(w->corr, (size_t)ny, (size_t)nx, (iy + ny) % ny, (ix + nx) % nx, &oy, &ox);
    /* The subpixel offset must not take the shift past the limit. */
    double sy = (double)iy + oy, sx = (double)ix + ox, S = (double)p->S;
    e->dy = (float)(sy > S ? S : sy < -S ? -S : sy);
    e->dx = (float)(sx > S ? S : sx < -S ? -S : sx);
    e->peak = (float)(best / p->filt_sum);
    e->flags = flags;
}

/* ---- resampling ---------------------------------------------------------- */

static inline long clampl(long v, long hi)
{
    return v < 0 ? 0 : v > hi ? hi : v;
}

/* Horizontal pass of mc_warp_rigid for one source row s into t: taps
 * x + ix0 - 1 .. x + ix0 + 2 with weights wx, inside the row for x in
 * [xa, xb), the nearest edge pixel elsewhere. */
CAIMG_SIMD_CLONES
static void warp_row(const float *s, float *t, long nx, long ix0, const float wx[4], long xa,
                     long xb)
{
    if (xa < xb) {
        const float *restrict s0 = s + ix0 - 1, *restrict s1 = s + ix0,
            *restrict s2 = s + ix0 + 1, *restrict s3 = s + ix0 + 2;
        float *restrict tt = t;
        float w0 = wx[0], w1 = wx[1], w2 = wx[2], w3 = wx[3];
#pragma omp simd
        for (long x = xa; x < xb; x++)
            tt[x] = w0 * s0[x] + w1 * s1[x] + w2 * s2[x] + w3 * s3[x];
    }
    for (long x = 0; x < nx; x++) {
        if (x == xa && xa < xb) {
            x = xb - 1;
            continue;
        }
        float v = 0;
        for (int k = 0; k < 4; k++) v += wx[k] * s[clampl(x + ix0 - 1 + k, nx - 1)];
        t[x] = v;
    }
}

/* Resample a frame at (y + dy, x + dx), the same fraction for every pixel,
 * so the interpolation is separable: a horizontal pass of 2 or 4 taps per
 * row, then a vertical one, with constant weights.  Taps outside the frame
 * take the nearest edge pixel; then, with border NAN or ZERO, pixels whose
 * source lies outside the frame are overwritten.  The two passes are
 * interleaved: an output row needs four consecutive (or, at the edges,
 * repeated) horizontally filtered source rows, kept in a ring of four rows
 * (w->tmp), so each is made once and used while in the cache.  With dst
 * NULL the rows exist only for the sink (in w->crow, one at a time). */
CAIMG_SIMD_CLONES
void mc_warp_rigid(const caimg_mc_plan *p, mc_work *w, const float *src, float *dst,
                   double dy, double dx, int border, mc_rows *sink)
{
    long ny = (long)p->ny, nx = (long)p->nx;
    long iy0 = (long)floor(dy), ix0 = (long)floor(dx);
    float fy = (float)(dy - (double)iy0), fx = (float)(dx - (double)ix0);
    float wy[4] = {0, 1, 0, 0}, wx[4] = {0, 1, 0, 0};
    if (p->par.interp == CAIMG_MC_INTERP_BICUBIC) {
        for (int k = 0; k < 4; k++) {
            wy[k] = mc_keys(fy - (float)(k - 1));
            wx[k] = mc_keys(fx - (float)(k - 1));
        }
    } else {
        wy[1] = 1 - fy;
        wy[2] = fy;
        wx[1] = 1 - fx;
        wx[2] = fx;
    }
    float *ring = w->tmp;
    long have[4] = {-1, -1, -1, -1};   /* source row held by each ring slot */
    long xa = 1 - ix0, xb = nx - 2 - ix0;   /* taps x+ix0-1 .. x+ix0+2 inside */
    if (xa < 0) xa = 0;
    if (xb > nx) xb = nx;
    /* Each row is finished (border policy applied) and handed to the sink
     * while it is still in the cache. */
    float fill = border == CAIMG_MC_BORDER_NAN ? NAN : 0.0f;
    long ya = (long)ceil(-dy), yb = (long)floor((double)(ny - 1) - dy);
    long xc = (long)ceil(-dx), xd = (long)floor((double)(nx - 1) - dx);
    for (long y = 0; y < ny; y++) {
        const float *t[4];
        /* The (up to four distinct) source rows are consecutive, so their
         * numbers mod 4 differ. */
        for (int k = 0; k < 4; k++) {
            long r = clampl(y + iy0 - 1 + k, ny - 1);
            float *slot = ring + (r & 3) * nx;
            if (have[r & 3] != r) {
                warp_row(src + r * nx, slot, nx, ix0, wx, xa, xb);
                have[r & 3] = r;
            }
            t[k] = slot;
        }
        const float *restrict t0 = t[0], *restrict t1 = t[1], *restrict t2 = t[2],
            *restrict t3 = t[3];
        float *restrict o = dst ? dst + y * nx : w->crow;
        float w0 = wy[0], w1 = wy[1], w2 = wy[2], w3 = wy[3];
#pragma omp simd
        for (long x = 0; x < nx; x++) o[x] = w0 * t0[x] + w1 * t1[x] + w2 * t2[x] + w3 * t3[x];
        if (border != CAIMG_MC_BORDER_NEAREST) {
            if (y < ya || y > yb) {
                for (long x = 0; x < nx; x++) o[x] = fill;
            } else {
                for (long x = 0; x < nx && x < xc; x++) o[x] = fill;
                for (long x = xd + 1 < 0 ? 0 : xd + 1; x < nx; x++) o[x] = fill;
            }
        }
        if (sink) mc_rows_take(sink, (size_t)y, o);
    }
}

/* The box of output pixels whose source lies inside the frame for every
 * displacement in [ymin, ymax] x [xmin, xmax] (plus the columns lost to the
 * bidirectional correction). */
void mc_valid_box(const caimg_mc_plan *p, double ymin, double ymax, double xmin, double xmax,
                  int box[4])
{
    double ny = (double)p->ny, nx = (double)p->nx;
    double c0 = 0, c1 = nx - 1;
    if (p->bidi > 0) c1 = floor(nx - 1 - p->bidi);
    if (p->bidi < 0) c0 = ceil(-p->bidi);
    double y0 = ceil(-ymin - 1e-6), y1 = floor(ny - 1 - ymax + 1e-6) + 1;
    double x0 = ceil(c0 - xmin - 1e-6), x1 = floor(c1 - xmax + 1e-6) + 1;
    box[0] = (int)(y0 < 0 ? 0 : y0 > ny ? ny : y0);
    box[1] = (int)(y1 < 0 ? 0 : y1 > ny ? ny : y1);
    box[2] = (int)(x0 < 0 ? 0 : x0 > nx ? nx : x0);
    box[3] = (int)(x1 < 0 ? 0 : x1 > nx ? nx : x1);
}

/* One row's share of the sums for corr_finish: frame row a, template row
 * b, over the columns of the box. */
static inline void corr_row(const float *a, const float *b, const int box[4], double *sa,
                            double *saa, double *sab)
{
    float ra = 0, raa = 0, rab = 0;
#pragma omp simd reduction(+ : ra, raa, rab)
    for (int x = box[2]; x < box[3]; x++) {
        ra += a[x];
        raa += a[x] * a[x];
        rab += a[x] * b[x];
    }
    *sa += ra;
    *saa += raa;
    *sab += rab;
}

/* Pearson correlation of a frame with the template over a (non-empty) box,
 * from the sums over the box of the frame (sa), its square (saa) and its
 * product with the template (sab); NaN if either has no variance there. */
static double corr_finish(const caimg_mc_plan *p, const int box[4], double sa, double saa,
                          double sab)
{
    size_t w1 = p->nx + 1;
    size_t y0 = (size_t)box[0], y1 = (size_t)box[1], x0 = (size_t)box[2], x1 = (size_t)box[3];
    double sb = p->sat[y1 * w1 + x1] - p->sat[y0 * w1 + x1] - p->sat[y1 * w1 + x0] + p->sat[y0 * w1 + x0];
    double sbb = p->sat2[y1 * w1 + x1] - p->sat2[y0 * w1 + x1] - p->sat2[y1 * w1 + x0] + p->sat2[y0 * w1 + x0];
    double n = (double)((y1 - y0) * (x1 - x0));
    double cov = sab - sa * sb / n, va = saa - sa * sa / n, vb = sbb - sb * sb / n;
    if (!(va > 0 && vb > 0)) return NAN;
    return cov / sqrt(va * vb);
}

/* ---- output conversion --------------------------------------------------- */

/* Float to the output type with rounding and clamping.  The common integer
 * types get a fast vectorisable path (caimg_from_float rounds with lround,
 * which is a library call per sample). */
CAIMG_SIMD_CLONES
static size_t store(const float *src, void *dst, caimg_dtype dt, size_t n)
{
    size_t bad = 0;
    switch (dt) {
    case CAIMG_DT_F32:
        memcpy(dst, src, n * sizeof(float));
        return 0;
    case CAIMG_DT_U16: {
        uint16_t *d = dst;
        float nb = 0;
        /* Counting and converting in separate loops lets both vectorise. */
#pragma omp simd reduction(+ : nb)
        for (size_t i = 0; i < n; i++) nb += src[i] >= -0.5f && src[i] < 65535.5f ? 0.0f : 1.0f;
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            /* Round half up; NaN fails v > 0 and becomes 0, as in
             * caimg_from_float; the clamps keep the conversion defined. */
            float v = src[i] + 0.5f;
            v = v > 0 ? v : 0;
            v = v < 65535.0f ? v : 65535.0f;
            d[i] = (uint16_t)(int)v;
        }
        return (size_t)nb;
    }
    case CAIMG_DT_I16: {
        int16_t *d = dst;
        for (size_t i = 0; i < n; i++) {
            float v = src[i];
            int ok = v >= -32768.5f && v < 32767.5f;
            bad += !ok;
            v = v < -32768.0f ? -32768.0f : v > 32767.0f ? 32767.0f : v;
            d[i] = (int16_t)(v < 0 ? v - 0.5f : v + 0.5f);
            if (v != v) d[i] = 0;
        }
        return bad;
    }
    case CAIMG_DT_U8: {
        uint8_t *d = dst;
        for (size_t i = 0; i < n; i++) {
            float v = src[i];
            int ok = v >= -0.5f && v < 255.5f;
            bad += !ok;
            v = v < 0 ? 0 : v > 255.0f ? 255.0f : v;
            d[i] = (uint8_t)(v + 0.5f);
            if (v != v) d[i] = 0;
        }
        return bad;
    }
    default:
        return caimg_from_float(src, dst, dt, n);
    }
}

/* ---- execution ----------------------------------------------------------- */

static void box_and(int *acc, const int *b)
{
    if (b[0] > acc[0]) acc[0] = b[0];
    if (b[1] < acc[1]) acc[1] = b[1];
    if (b[2] > acc[2]) acc[2] = b[2];
    if (b[3] < acc[3]) acc[3] = b[3];
}

/* What happens to each corrected row: added to the running mean, its
 * share of the correlation with the template, converted to the output
 * type, all right after the row is resampled, while it is in the L1 cache
 * (rather than in three more passes over the whole frame). */
struct mc_rows {
    const caimg_mc_plan *p;
    double *acc;           /* running sum of corrected frames, or NULL */
    const int *box;        /* correlation box, or NULL for no correlation */
    double sa, saa, sab;
    char *out;             /* converted output, or NULL */
    caimg_dtype dt;
    size_t clamped;
};

CAIMG_SIMD_CLONES
void mc_rows_take(mc_rows *r, size_t y, const float *row)
{
    size_t nx = r->p->nx;
    if (r->acc) {
        double *restrict acc = r->acc + y * nx;
#pragma omp simd
        for (size_t x = 0; x < nx; x++) acc[x] += row[x];
    }
    if (r->box && (int)y >= r->box[0] && (int)y < r->box[1])
        corr_row(row, r->p->tmpl + y * nx, r->box, &r->sa, &r->saa, &r->sab);
    if (r->out) r->clamped += store(row, r->out + y * nx * caimg_dtype_size(r->dt), r->dt, nx);
}

/* Correct one frame whose shifts are known (w->pshift for piecewise plans)
 * into `out` (type out_dt); returns the number of clamped samples. */
static size_t correct_frame(const caimg_mc_plan *p, mc_work *w, const float *f, float dy,
                            float dx, void *out, caimg_dtype out_dt, float *corr, int box[4],
                            int accumulate)
{
    float *dst = out && out_dt == CAIMG_DT_F32 ? out : w->outf;
    int border = p->par.border;
    mc_rows rows = {p, accumulate ? w->acc_out : NULL, corr ? box : NULL, 0, 0, 0,
                    out && dst != out ? out : NULL, out_dt, 0};
    if (p->par.piecewise) {
        float ext[4];
        mc_warp_field(p, w, f, dst, border, ext);
        mc_valid_box(p, ext[0], ext[1], ext[2], ext[3], box);
        for (size_t y = 0; y < p->ny; y++) mc_rows_take(&rows, y, dst + y * p->nx);
    } else {
        /* The box depends only on the shift, so it is known before the
         * rows are. */
        mc_valid_box(p, dy, dy, dx, dx, box);
        /* Integer output exists only as the sink's rows. */
        mc_warp_rigid(p, w, f, dst == out ? dst : NULL, dy, dx, border, &rows);
    }
    if (corr)
        *corr = box[0] >= box[1] || box[2] >= box[3]
                    ? NAN : (float)corr_finish(p, box, rows.sa, rows.saa, rows.sab);
    if (accumulate) w->n_out++;
    return rows.clamped;
}

int caimg_mc_execute(caimg_mc_plan *p, const void *in, caimg_dtype in_dt, void *out,
                     caimg_dtype out_dt, size_t n, caimg_mc_frames *res, size_t *nclamped)
{
    if (!p->have_template)
        return caimg_error(CAIMG_EINVAL, "motion correction: no template set");
    size_t isz = caimg_dtype_size(in_dt), osz = caimg_dtype_size(out_dt);
    if (!isz) return caimg_error(CAIMG_EINVAL, "motion correction: unknown input sample type");
    if (out && !osz) return caimg_error(CAIMG_EINVAL, "motion correction: unknown output sample type");
    if (out && out == in && isz != osz)
        return caimg_error(CAIMG_EINVAL, "motion correction: in-place correction needs equal sample types");
    if (out && p->par.border == CAIMG_MC_BORDER_NAN && !caimg_dtype_is_float(out_dt))
        return caimg_error(CAIMG_EINVAL, "border NaN needs floating-point output, not %s",
                           caimg_dtype_name(out_dt));
    if (n == 0) return 0;
    mc_plan_settle(p, 0);
    if (!p->nu_known && p->par.whiten) {
        /* A template given by the user: learn the noise level from the
         * first frames, then weight the template spectra with it. */
        int rc = mc_estimate_noise(p, in, NULL, in_dt, NULL, n);
        if (!rc && p->nu_known) rc = caimg_mc_set_template(p, p->tmpl);
        if (rc) return rc;
    }
    size_t np2 = p->npatch * 2, npix = p->npix;
    float *sh = caimg_malloc(n, 2 * sizeof(float), "shifts");
    unsigned char *fl = caimg_calloc(n, 1, "frame flags");
    if (!sh || !fl) {
        free(sh);
        free(fl);
        return CAIMG_ENOMEM;
    }
    const char *inb = in;
    char *outb = out;
    size_t clamped = 0;
    int boxes[64][4];
    int nthr = p->nthr < 64 ? p->nthr : 64;
    for (int t = 0; t < nthr; t++) memcpy(boxes[t], p->valid, sizeof boxes[t]);

    /* Frames are dealt to the threads in fixed shares, so that each
     * thread's sums of frames (and their rounding) are the same on every
     * run. */
#pragma omp parallel for schedule(static) num_threads(nthr) reduction(+ : clamped)
    for (size_t i = 0; i < n; i++) {
        int tid = mc_thread_num();
        mc_work *w = &p->work[tid];
        float mean;
        int cl = clean(p, inb + i * npix * isz, in_dt, w->frame, &mean, w->acc_in);
        if (!cl) {
            fl[i] = CAIMG_MC_UNUSABLE;
            continue;
        }
        w->n_in++;
        mc_bidi_apply(p, w->frame, w->tmp);
        mc_est e;
        mc_rigid(p, w, w->frame, mean, &e);
        if (p->par.piecewise) mc_patches(p, w, w->frame, &e);
        else mc_patches_uniform(p, w, e.dy, e.dx);
        sh[2 * i] = e.dy;
        sh[2 * i + 1] = e.dx;
        fl[i] = (unsigned char)(e.flags | (cl == 2 ? CAIMG_MC_FILLED : 0));
        if (res && res->patch_shifts) mc_patches_frame(p, w->pshift, res->patch_shifts + i * np2);
        float c = NAN;
        int box[4];
        clamped += correct_frame(p, w, w->frame, e.dy, e.dx, out ? outb + i * npix * osz : NULL,
                                 out_dt, &c, box, 1);
        box_and(boxes[tid], box);
        if (res && res->corr) res->corr[i] = c;
    }

    /* Unusable frames, in order: the shift of the previous frame. */
    float last[2] = {p->last[0], p->last[1]};
    mc_work *w = &p->work[0];
    for (size_t i = 0; i < n; i++) {
        if (!(fl[i] & CAIMG_MC_UNUSABLE)) {
            last[0] = sh[2 * i];
            last[1] = sh[2 * i + 1];
            if (fl[i] & CAIMG_MC_CLIPPED) p->clipped++;
            if (fl[i] & CAIMG_MC_FILLED) p->filled++;
            continue;
        }
        p->unusable++;
        sh[2 * i] = last[0];
        sh[2 * i + 1] = last[1];
        mc_patches_uniform(p, w, last[0], last[1]);
        if (res && res->patch_shifts) mc_patches_frame(p, w->pshift, res->patch_shifts + i * np2);
        if (res && res->corr) res->corr[i] = NAN;
        {
            /* The frame is moved like its neighbour but left as it is
             * otherwise: NaN stays NaN (0 in integer output). */
            int box[4];
            caimg_to_float(inb + i * npix * isz, in_dt, w->frame, npix);
            mc_bidi_apply(p, w->frame, w->tmp);
            clamped += correct_frame(p, w, w->frame, last[0], last[1],
                                     out ? outb + i * npix * osz : NULL, out_dt, NULL, box, 0);
            box_and(boxes[0], box);
        }
    }
    p->last[0] = last[0];
    p->last[1] = last[1];
    p->frames += n;
    for (int t = 0; t < nthr; t++) box_and(p->valid, boxes[t]);

    /* Fold the per-thread sums into the plan's now, while they hold few
     * frames (sums of floats in double are then exact, whatever share of
     * the frames each thread had); all threads share the pixels (in thread
     * order per pixel, as before). */
    {
        int nt = p->nthr;
        size_t nblk = (npix + 4095) / 4096;
#pragma omp parallel for schedule(static) num_threads(nthr)
        for (size_t b = 0; b < nblk; b++) {
            size_t k0 = b * 4096, k1 = k0 + 4096 < npix ? k0 + 4096 : npix;
            for (int t = 0; t < nt; t++) {
                mc_work *wt = &p->work[t];
                if (wt->n_in) {
                    for (size_t k = k0; k < k1; k++) p->sum_in[k] += wt->acc_in[k];
                    memset(wt->acc_in + k0, 0, sizeof(double) * (k1 - k0));
                }
                if (wt->n_out) {
                    for (size_t k = k0; k < k1; k++) p->sum_out[k] += wt->acc_out[k];
                    memset(wt->acc_out + k0, 0, sizeof(double) * (k1 - k0));
                }
            }
        }
        for (int t = 0; t < nt; t++) {
            mc_work *wt = &p->work[t];
            p->n_in += wt->n_in;
            p->n_out += wt->n_out;
            wt->n_in = wt->n_out = 0;
        }
    }
    if (res && res->shifts) memcpy(res->shifts, sh, sizeof(float) * 2 * n);
    if (res && res->flags) memcpy(res->flags, fl, n);
    if (nclamped) *nclamped += clamped;
    free(sh);
    free(fl);
    return 0;
}

/* Mean gradient magnitude of an image over a box (central differences
 * inside the box, one-sided at its edges). */
static double crispness(const double *img, size_t nx, const int box[4])
{
    double s = 0;
    size_t cnt = 0;
    for (int y = box[0]; y < box[1]; y++)
        for (int x = box[2]; x < box[3]; x++) {
            int ya = y > box[0] ? y - 1 : y, yb = y < box[1] - 1 ? y + 1 : y;
            int xa = x > box[2] ? x - 1 : x, xb = x < box[3] - 1 ? x + 1 : x;
            double gy = yb > ya ? (img[(size_t)yb * nx + x] - img[(size_t)ya * nx + x]) / (yb - ya) : 0;
            double gx = xb > xa ? (img[(size_t)y * nx + xb] - img[(size_t)y * nx + xa]) / (xb - xa) : 0;
            s += sqrt(gy * gy + gx * gx);
            cnt++;
        }
    return cnt ? s / (double)cnt : NAN;
}

int caimg_mc_get_summary(const caimg_mc_plan *p, caimg_mc_summary *s, float *mean_before,
                         float *mean_after)
{
    memset(s, 0, sizeof *s);
    s->frames = p->frames;
    s->unusable = p->unusable;
    s->clipped = p->clipped;
    s->filled = p->filled;
    memcpy(s->valid, p->valid, sizeof s->valid);
    s->bidi_offset = p->bidi;
    double *mb = caimg_malloc(p->npix, 2 * sizeof(double), "mean images");
    if (!mb) return CAIMG_ENOMEM;
    double *ma = mb + p->npix;
    double nb = p->n_in ? (double)p->n_in : 1, na = p->n_out ? (double)p->n_out : 1;
    for (size_t k = 0; k < p->npix; k++) {
        mb[k] = p->sum_in[k] / nb;
        ma[k] = p->sum_out[k] / na;
        if (mean_before) mean_before[k] = (float)mb[k];
        if (mean_after) mean_after[k] = (float)ma[k];
    }
    s->crispness_before = p->n_in ? crispness(mb, p->nx, p->valid) : NAN;
    s->crispness_after = p->n_out ? crispness(ma, p->nx, p->valid) : NAN;
    free(mb);
    return 0;
}
