/* ann_internal.h -- structures shared by the ann_*.c modules; not installed.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#ifndef CAIMG_ANN_INTERNAL_H
#define CAIMG_ANN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "caimg/ann.h"

typedef enum {
    ANN_INPUT = 0, ANN_CONV, ANN_DENSE, ANN_POOLMAX, ANN_POOLAVG,
    ANN_RELU, ANN_ELU, ANN_ELU1, ANN_SOFTPLUS, ANN_NOISE,
    ANN_READOUT_DENSE, ANN_READOUT_FACT, ANN_SQUARE
} ann_ltype;

enum { ANN_PAD_VALID = 0, ANN_PAD_SAME, ANN_PAD_EXPLICIT };

#define ANN_NAME_MAX 32

typedef struct {
    ann_ltype type;
    char name[ANN_NAME_MAX];
    /* Shapes: input is the previous layer's output. */
    size_t ic, ih, iw, oc, oh, ow;
    size_t isize, osize;
    /* conv and pool geometry */
    size_t kh, kw, stride;
    int pad_mode;             /* ANN_PAD_* as written, for the canonical text */
    size_t pad;               /* explicit padding (pad=P) */
    size_t pad_t, pad_l;      /* resolved top and left padding */
    int stride_given;
    /* square: the number of trailing channels squared (0: all of them) */
    size_t nsq;
    /* penalties */
    double smooth, l1;
    /* noise on the output */
    double sigma;
    int noise_mode;           /* CAIMG_ANN_NOISE_REL or _ABS */
    float *noise_sd;          /* [osize] per-unit sd (relative noise), or NULL */
    char sd_name[ANN_NAME_MAX + 16];  /* "<name>/noise_sd" */
    /* offsets of the parameters in the model's theta (SIZE_MAX if none) */
    size_t p_w, p_b, p_mask, p_feat;
    /* scratch floats one sample needs for im2col (conv) */
    size_t col_size;
} ann_layer;

/* Kinds of trainable tensors, which decide the penalties that apply. */
enum { ANN_T_WEIGHT = 0, ANN_T_BIAS, ANN_T_MASK, ANN_T_FEAT };

typedef struct {
    char name[2 * ANN_NAME_MAX];
    int rank;
    size_t dims[4];
    size_t off, size;
    int layer, kind;
} ann_tensor_info;

struct caimg_ann {
    size_t nl;                /* layers including the input (index 0) */
    ann_layer *L;
    size_t nparam;            /* trainable floats */
    float *theta;             /* all trainable parameters, contiguous */
    size_t ntens;
    ann_tensor_info *tens;
    size_t nout;
    uint64_t seed;
    double in_mean, in_sd;
    double in_lo, in_hi;      /* valid pixel range; NaN when unknown */
    size_t readout;           /* index of the readout layer */
    float *out_scale, *out_offset;   /* [nout] output affine */
    caimg_ann_prep prep;
    size_t max_col;           /* largest conv col buffer (floats per sample) */
    /* An ensemble: the further networks whose predictions are averaged
     * with this one's (caimg_ann_ensemble_add()); they have none of their
     * own.  Everything else in this struct describes the first network. */
    size_t nmem;
    caimg_ann **mem;
};

struct caimg_ann_work {
    const caimg_ann *m;
    size_t cap, n;
    float **act;              /* [nl] cap * osize */
    float **grad;             /* [nl] cap * osize */
    float *aux;               /* factorised readout intermediate: cap * C * N */
    int have_fwd, have_bwd;
    int nscratch;             /* per-thread scratch buffers */
    float **scratch;
    size_t scratch_size;
    size_t nchunk_grad;       /* chunk gradient buffers allocated */
    float *cgrad;             /* nchunk_grad * nparam */
    float *pgrad;             /* nparam: the summed parameter gradient */
    /* For an ensemble: the other members' work spaces, the mean
     * prediction [cap][nout], and room for a member's share of the output
     * gradient [cap][nout] and its input gradient [cap][input size]. */
    caimg_ann_work **sub;
    float *ens_out, *ens_dout, *ens_dx;
};

/* ---- random numbers (ann.c) --------------------------------------------- */

/* Philox4x32-10: four 32-bit outputs for a 128-bit counter and 64-bit key. */
void ann_philox(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* A 64-bit mixing function (splitmix64's finaliser) used to derive keys. */
uint64_t ann_mix64(uint64_t x);

/* A simple sequential generator on top of Philox for initialisation and
 * shuffling: `key` fixed, `counter` advanced by every call. */
typedef struct {
    uint32_t key[2];
    uint64_t counter;
    uint32_t buf[4];
    int left;
} ann_rng;

void ann_rng_init(ann_rng *r, uint64_t seed, uint64_t purpose);
uint32_t ann_rng_u32(ann_rng *r);
double ann_rng_uniform(ann_rng *r);        /* [0, 1) */
double ann_rng_normal(ann_rng *r);
size_t ann_rng_below(ann_rng *r, size_t n); /* uniform in [0, n) */

/* Philox4x32-10 of nblk consecutive counters (b0 + b, w1, w2, w3), the same
 * function as ann_philox(), vectorised (ann_noise.c): out[4*b + k]. */
void ann_philox_blocks(const uint32_t key[2], uint32_t b0, uint32_t w1, uint32_t w2,
                       uint32_t w3, size_t nblk, uint32_t *out);

/* n standard normals z for units u0 .. u0+n-1 (u0 a multiple of 4) of
 * sample g in layer `layer` under `key` (ann_noise.c). */
void ann_normals(const uint32_t key[2], uint64_t g, uint32_t layer, size_t u0, size_t n,
                 float *z);

/* Add noise to the output of layer l for samples [b0, b0+nb) of a call. */
void ann_add_noise(const caimg_ann *m, size_t l, float *out, size_t nb,
                   uint64_t stream, uint64_t index0);

/* ---- layer kernels (ann_layers.c) ---------------------------------------- */

/* Forward of layer l for nb samples: in [nb][isize] -> out [nb][osize].
 * `aux` is the layer's per-sample intermediate storage (factorised readout)
 * and `scratch` a per-thread buffer of at least the layer's col_size. */
void ann_layer_forward(const caimg_ann *m, size_t l, const float *in, float *out,
                       float *aux, size_t nb, float *scratch);

/* Backward of layer l for nb samples: given gout [nb][osize], add the
 * parameter gradient into g (the model-sized gradient buffer, may be NULL)
 * and, when gin is not NULL, write the input gradient gin [nb][isize]. */
void ann_layer_backward(const caimg_ann *m, size_t l, const float *in,
                        const float *out, const float *aux, const float *gout,
                        float *gin, float *g, size_t nb, float *scratch);

/* Floats of scratch one thread needs for the layers of m. */
size_t ann_scratch_size(const caimg_ann *m);

/* Floats of auxiliary storage per sample a layer needs. */
size_t ann_aux_size(const caimg_ann *m, size_t l);

/* ---- BLAS threads (ann.c) ------------------------------------------------ */

/* Switch OpenBLAS to one thread (it is called from our OpenMP threads) and
 * restore the previous setting afterwards. */
int ann_blas_single_begin(void);
void ann_blas_single_end(int saved);

/* Number of OpenMP threads to use for `nchunks` chunks of work. */
int ann_threads_for(size_t nchunks, int nscratch);

/* ---- penalties (ann_train.c) ---------------------------------------------- */

/* The penalty terms of the architecture plus l2 weight decay, and their
 * gradient added to g (may be NULL). */
double ann_penalty(const caimg_ann *m, double l2, float *g);

#endif
