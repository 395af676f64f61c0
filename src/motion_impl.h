/* motion_impl.h -- internals shared by the motion correction sources.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#ifndef CAIMG_MOTION_IMPL_H
#define CAIMG_MOTION_IMPL_H

#include <stddef.h>

#include <fftw3.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "caimg/motion.h"
#include "internal.h"

/* Work space of one thread.  All FFT arrays come from fftwf_malloc, so they
 * have the alignment the plans were made with and can be passed to the
 * new-array execute functions. */
typedef struct {
    float *frame;          /* cleaned (and bidi-corrected) input frame */
    float *real;           /* tapered FFT input */
    fftwf_complex *spec;   /* its spectrum */
    fftwf_complex *xspec;  /* cross-power spectrum (destroyed by the inverse) */
    float *corr;           /* correlation surface */
    fftwf_complex *xrow;   /* one row of the column-transformed xspec */
    float *crow;           /* one row of the correlation surface */
    float *tmp;            /* warp intermediate / float output */
    float *outf;           /* corrected frame before conversion */
    float *tmp2;           /* second-pass resampled frame */
    float *preal, *pcorr;  /* patch FFT input and correlation */
    fftwf_complex *pspec;
    float *pshift;         /* [npatch][2] patch shifts */
    float *ppnr;           /* [npatch] patch peak-to-noise ratios */
    unsigned char *pok;    /* [npatch] patch reliable */
    float *bre, *bcorr;    /* coarse (binned) frame and correlation */
    fftwf_complex *bspec;
    float *swy, *swx;      /* the edge taper moved with the scene */
    float *wrow;           /* per-row field, weights and integer parts: 12 * nx */
    double *acc_in, *acc_out;  /* running sums of input / corrected frames (in
                                  double, so that how the frames are shared
                                  among the threads does not change them) */
    size_t n_in, n_out;
} mc_work;

struct caimg_mc_plan {
    size_t ny, nx, npix;
    caimg_mc_params par;
    int nthr;
    int S;                 /* max shift, whole pixels */
    /* Coarse registration on B x B binned frames, which places the taper
     * of the full-resolution pass on the scene (see mc_rigid). */
    int B;
    size_t bny, bnx;
    int bS;
    float *bwy, *bwx, *bfilt;
    double bfilt_sum;
    fftwf_plan bfwd, binv;
    fftwf_complex *btspec;
    double bnu;
    int nu_known;          /* nu has been estimated */
    double nu;             /* noise power per frequency of one tapered frame (0: unknown) */

    /* The inverse transform is split into its two passes, complex DFTs of
     * the columns of the half spectrum (icol, in place) and real DFTs of the
     * rows (irow), because the fine search needs only the few rows around
     * the coarse shift (see mc_rigid).  Those rows come from a zoomed
     * column transform: with ny = zL * zM and frequency k = zM a + b, the
     * zL-point DFTs over a (izoom, in place) followed by, per wanted row y,
     * a sum over b weighted by exp(2 pi i b y / ny) (ztw, ny cos/sin
     * pairs). */
    fftwf_plan fwd, icol, irow, izoom;
    size_t zL, zM;
    float *ztw;
    /* Measuring fwd (FFTW_MEASURE) takes a few tenths of a second on one
     * core.  Where FFTW's planner is thread-safe, a thread of its own
     * measures it while the plan's quick (estimated) version serves, and it
     * replaces that between batches once ready (mc_plan_settle). */
    int measuring;         /* the planning thread was started and not joined */
    int measured;          /* it has finished (atomic) */
    void *planner;         /* its pthread_t */
    fftwf_plan mfwd, micol;
    float *mreal;          /* scratch arrays to plan on */
    fftwf_complex *mspec, *mx;
    float *wy, *wx;        /* edge tapers */
    float *filt;           /* Gaussian low-pass on the half spectrum */
    double filt_sum;       /* its sum over the full spectrum: the ideal peak */

    int have_template;
    float *tmpl;
    fftwf_complex *tspec;  /* conj(template spectrum) / |.| * filter */
    double *sat, *sat2;    /* summed-area tables of the template and its square */
    double bidi;

    /* Patch grid. */
    size_t P, npy, npx, npatch;
    size_t *py0, *px0;     /* top-left corners */
    float *pcy, *pcx;      /* centres */
    fftwf_plan pfwd, pinv;
    float *pwin;           /* P x P taper */
    float *pfilt;
    double pfilt_sum;
    fftwf_complex *ptspec; /* [npatch][P][P/2+1] */
    /* Interpolation of the patch grid to pixels: per row/column a base node
     * and four weights (Catmull-Rom, linear beyond the outer centres). */
    int *fy_base, *fx_base;
    float *fy_w, *fx_w;
    float *fxt;            /* fx weights as a dense [npx][nx] matrix */

    mc_work *work;

    /* Run state (caimg_mc_reset). */
    float last[2];
    double *sum_in, *sum_out;
    size_t n_in, n_out;
    size_t frames, unusable, clipped, filled;
    int valid[4];
};

static inline int mc_thread_num(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Result of registering one frame. */
typedef struct {
    float dy, dx;          /* rigid shift */
    float peak;            /* normalised correlation peak (1 = perfect) */
    int flags;
} mc_est;

/* motion.c */
void mc_plan_settle(caimg_mc_plan *p, int wait);
double mc_fit3(double a, double b, double c);
void mc_template_spectrum(const fftwf_complex *G, const float *filt, size_t n, int whiten,
                          double nu, fftwf_complex *out);
void mc_cross(const fftwf_complex *F, const fftwf_complex *restrict T,
              fftwf_complex *X, size_t n, int whiten);
int mc_estimate_noise(caimg_mc_plan *p, const void *frames, const void *const *ptrs,
                      caimg_dtype dt, const size_t *idx, size_t n);
void mc_transform(const caimg_mc_plan *p, mc_work *w, const float *f, float mean);

/* d x d block sums of a frame nx wide into out (by x bx); rs is scratch
 * for one row (nx floats). */
void mc_bin_frame(const float *f, size_t nx, size_t d, size_t by, size_t bx, float *rs,
                  float *out);
double mc_noise_floor(const caimg_mc_plan *p, const fftwf_complex *F);
/* acc += f over n pixels: the running sums of frames (mean images,
 * template), kept in double so that they are the same however the frames
 * were shared among the threads. */
void mc_add_frame(double *restrict acc, const float *restrict f, size_t n);
int mc_clean(const caimg_mc_plan *p, const void *src, caimg_dtype dt, float *dst,
             float *mean);
void mc_bidi_apply(const caimg_mc_plan *p, float *f, float *tmp);
void mc_rigid(const caimg_mc_plan *p, mc_work *w, const float *f, float mean, mc_est *e);
void mc_rigid_coarse(const caimg_mc_plan *p, mc_work *w, const float *f, float mean, mc_est *e);
/* Per-row consumer of corrected rows (motion.c). */
typedef struct mc_rows mc_rows;
void mc_rows_take(mc_rows *r, size_t y, const float *row);
void mc_warp_rigid(const caimg_mc_plan *p, mc_work *w, const float *src, float *dst,
                   double dy, double dx, int border, mc_rows *sink);
void mc_valid_box(const caimg_mc_plan *p, double ymin, double ymax, double xmin, double xmax,
                  int box[4]);
void mc_subpixel(const float *c, size_t ny, size_t nx, long iy, long ix,
                 double *oy, double *ox);

/* motion_pw.c */
void mc_patches_frame(const caimg_mc_plan *p, const float *ps, float *out);
int mc_grid_init(caimg_mc_plan *p);
void mc_grid_free(caimg_mc_plan *p);
int mc_grid_template(caimg_mc_plan *p);
void mc_patches(const caimg_mc_plan *p, mc_work *w, const float *f, const mc_est *e);
void mc_patches_uniform(const caimg_mc_plan *p, mc_work *w, float dy, float dx);
void mc_warp_field(const caimg_mc_plan *p, mc_work *w, const float *src, float *dst,
                   int border, float ext[4]);

/* Helpers shared between files. */
static inline float mc_keys(float t)
{
    t = t < 0 ? -t : t;
    if (t < 1) return (1.5f * t - 2.5f) * t * t + 1;
    if (t < 2) return ((-0.5f * t + 2.5f) * t - 4) * t + 2;
    return 0;
}

void mc_taper(float *w, size_t n, double width);
void mc_gauss_filter(float *filt, size_t ny, size_t nx, double sigma, double *sum);

#endif
