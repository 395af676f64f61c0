/* caimg/ann.h -- a small, noisy neural network that predicts neuronal responses.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * The model maps an image (C x H x W floats, row-major, channel first) to the
 * predicted responses of N neurons.  It is a stack of layers described by a
 * short text (the architecture language, below), with Gaussian noise that
 * can be injected at the input and after any named layer, as Ukita & Ohki
 * (Neural Networks 2023) did to model cortical variability.  Everything is
 * float32; dense and convolution work goes through CBLAS (OpenBLAS).
 *
 * Architecture language
 * ---------------------
 * One layer per line, or layers separated by ';' (so an architecture fits on
 * a command line).  '#' starts a comment that runs to the end of the line.
 * A layer is a type, its positional arguments, then key=value options:
 *
 *   input                        the image (optional first line; carries noise)
 *   conv C K[xK] [stride=S] [pad=same|valid|P] [smooth=L]
 *                                2-D convolution to C channels with a KxK
 *                                (rows x columns) kernel; pad=same needs odd
 *                                kernels and stride 1; default pad=valid
 *   dense N                      fully connected layer to N units
 *   pool max|avg K[xK] [stride=S]   pooling, stride defaults to K, no padding
 *   relu | elu | softplus        elementwise nonlinearities
 *   elu1                         ELU + 1, a non-negative output nonlinearity
 *   noise                        identity; names a place where noise goes
 *   readout factorised|dense [l1=L] [smooth=L]
 *                                per-neuron readout to the N neurons
 *                                (factorised: a spatial mask [H][W] times
 *                                feature weights [C] plus a bias per neuron;
 *                                "factorized" is accepted too)
 *
 * Options every layer accepts:
 *   name=ID        the layer's name (letters, digits, '_' and '-'); default
 *                  is the type plus a counter ("conv1", "elu2", "noise1");
 *                  the input is always "input" and the readout "readout"
 *   noise_rel=S    Gaussian noise added to this layer's output during
 *                  training, with per-unit standard deviation S times the
 *                  unit's standard deviation measured on clean training data
 *   noise_abs=S    the same with an absolute standard deviation S
 * Penalties (added to the training objective):
 *   smooth=L       conv: L * sum of squared Laplacians of every 2-D kernel
 *                  slice; readout factorised: the same on every mask
 *   l1=L           readout: L * sum of absolute readout weights (mask and
 *                  feature weights, or the dense weights)
 * Exactly one readout is required; only elementwise layers may follow it.
 * Presets ("mlp", "conv2", "ln", "energy") are architecture texts; see caimg_ann_preset().
 *
 * Noise and determinism
 * ---------------------
 * Noise values are a pure function of the model's seed, a caller-chosen
 * 64-bit `stream`, the sample's position and the unit (a counter-based
 * generator, Philox4x32-10), never of the thread that computes them.  Work
 * is split into fixed chunks of CAIMG_ANN_CHUNK samples and gradients are
 * summed over chunks in a fixed order, so results for a fixed seed are
 * bitwise identical whatever the number of OpenMP threads.
 *
 * Threads
 * -------
 * Functions that process a batch run OpenMP threads over the chunks (up to
 * omp_get_max_threads()), and each thread calls BLAS on its own chunk.  To
 * avoid oversubscription (OpenBLAS's own thread pool fighting OpenMP's for
 * the same cores) OpenBLAS is switched to one thread for the duration of
 * each call and restored afterwards.  A model may be used by one thread at
 * a time per work object; a const model with separate work objects may be
 * shared.
 */
#ifndef CAIMG_ANN_H
#define CAIMG_ANN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct caimg_h5 caimg_h5;    /* caimg/h5io.h */

/* Samples per chunk: the unit of parallel work and of gradient summation. */
#define CAIMG_ANN_CHUNK 8

typedef struct caimg_ann caimg_ann;
typedef struct caimg_ann_work caimg_ann_work;

/* ---- architecture and model ---------------------------------------------- */

/* The text of a preset architecture, or NULL if there is no such preset.
 * The string is static.  Presets:
 *   mlp    one hidden layer of 256 ELUs (noise point h1), dense readout
 *   conv2  conv 16 9x9 (noise point h1 after its ELU), conv 16 7x7 (h2),
 *          factorised readout: the 2-layer conv core of Klindt et al. 2017
 *   ln     linear-nonlinear baseline: a dense readout of the pixels
 *   energy conv 64 9x9 whose last 48 channels are squared (energy units
 *          for complex cells), ELU, noise point h1, factorised readout */
const char *caimg_ann_preset(const char *name);

/* Names of the presets, NULL-terminated. */
const char *const *caimg_ann_preset_names(void);

/* Build a model from an architecture text (or a preset name) for input
 * images of `channels` x `height` x `width` and `nout` neurons, with weights
 * initialised from `seed`.  The seed also keys the noise generator.
 * Returns NULL with a message naming the offending layer on error
 * (CAIMG_EINVAL for a bad text or impossible shapes). */
caimg_ann *caimg_ann_create(const char *arch, size_t channels, size_t height,
                            size_t width, size_t nout, uint64_t seed);

/* An independent copy (weights, noise state and normalisation). */
caimg_ann *caimg_ann_clone(const caimg_ann *m);

void caimg_ann_free(caimg_ann *m);

/* Ensembles.  Networks of one input and one set of neurons (usually one
 * architecture trained from different seeds) can be joined into an
 * ensemble, which predicts the mean of its members' predictions: averaging
 * networks that differ only in their random initialisation removes much of
 * what each one learned from chance, which lifts held-out accuracy.  The
 * ensemble is the first network, which owns the others:
 * caimg_ann_ensemble_add() moves `member` (a single network, with the same
 * input shape, preprocessing and neurons) into `m`, to be freed with it.
 * For an ensemble, caimg_ann_forward() and caimg_ann_predict() give the mean
 * prediction (each member draws its own noise), caimg_ann_backward() the
 * gradient of the mean with respect to the input, caimg_ann_noise_set() and
 * caimg_ann_noise_calibrate() act on every member, and caimg_ann_save() and
 * caimg_ann_load() keep the members; every other function, and the hidden
 * layers of the forward and backward passes (activations, gradients,
 * seeds), concern the first network.  An ensemble is not trained as one
 * network: caimg_ann_train() and backward passes with want_params refuse
 * it.  Returns 0, CAIMG_EINVAL for a mismatch, or CAIMG_ENOMEM. */
int caimg_ann_ensemble_add(caimg_ann *m, caimg_ann *member);
/* Number of networks: 1 for a single network. */
size_t caimg_ann_members(const caimg_ann *m);
/* Network k (0 = m itself), or NULL when k >= caimg_ann_members(m). */
const caimg_ann *caimg_ann_member(const caimg_ann *m, size_t k);

/* The canonical architecture text: one layer per line, every option
 * explicit, noise settings included; caimg_ann_create() of this text gives
 * the same structure.  Returns a malloc'd string (free with free()). */
char *caimg_ann_arch_text(const caimg_ann *m);

uint64_t caimg_ann_seed(const caimg_ann *m);
size_t caimg_ann_input_size(const caimg_ann *m);   /* C*H*W */
size_t caimg_ann_output_size(const caimg_ann *m);  /* N */

/* Layers are numbered 0 (the input) to caimg_ann_nlayers()-1 (the output). */
size_t caimg_ann_nlayers(const caimg_ann *m);
/* Index of the layer called `name`, or -1. */
int caimg_ann_layer_find(const caimg_ann *m, const char *name);
const char *caimg_ann_layer_name(const caimg_ann *m, size_t layer);
const char *caimg_ann_layer_type(const caimg_ann *m, size_t layer);
/* Output shape of a layer as channels, height, width (dense: N, 1, 1). */
void caimg_ann_layer_shape(const caimg_ann *m, size_t layer, size_t shape[3]);
size_t caimg_ann_layer_size(const caimg_ann *m, size_t layer);

/* ---- parameters and state ------------------------------------------------ */

/* The model's tensors, for saving and loading: the trainable parameters
 * ("conv1/weight" [Cout][Cin][Kh][Kw], "conv1/bias" [Cout], "fc1/weight"
 * [out][in], "readout/mask" [N][H][W], "readout/features" [N][C],
 * "readout/bias" [N]) followed by the noise scales ("h1/noise_sd", the
 * per-unit standard deviations of a layer with relative noise, shaped like
 * the layer's output).  `data` points into the model and may be written. */
typedef struct {
    const char *name;
    int rank;
    size_t dims[4];
    size_t size;        /* product of dims */
    int trainable;      /* 1 for parameters, 0 for noise scales */
    float *data;
} caimg_ann_tensor;

size_t caimg_ann_ntensors(const caimg_ann *m);
/* Fill `t` with tensor k (0 <= k < caimg_ann_ntensors()). */
int caimg_ann_tensor_get(caimg_ann *m, size_t k, caimg_ann_tensor *t);
/* Index of the tensor called `name`, or -1. */
int caimg_ann_tensor_find(const caimg_ann *m, const char *name);

/* Number of trainable parameters. */
size_t caimg_ann_nparams(const caimg_ann *m);

/* Per-neuron output scale and offset: predictions are
 * scale[n] * net[n] + offset[n], where net is the network's non-negative
 * output.  They let one network serve neurons of very different response
 * amplitudes, and responses that can be negative (dF/F), without changing
 * the loss, which is always computed on the predictions.  Defaults 1 and 0;
 * scale must be positive and finite.  Either pointer may be NULL to leave
 * that part unchanged.  Saved as the tensors "output/scale" and
 * "output/offset". */
int caimg_ann_set_output_affine(caimg_ann *m, const float *scale, const float *offset);

/* Input normalisation applied inside the model: the network sees
 * (x - mean) / sd, so gradients and attacks work in the caller's pixel
 * units.  Defaults 0 and 1.  sd must be positive. */
int caimg_ann_set_input_norm(caimg_ann *m, double mean, double sd);
void caimg_ann_get_input_norm(const caimg_ann *m, double *mean, double *sd);

/* The valid range of input pixels (caller's units), e.g. the smallest and
 * largest pixel of the training images: attacks keep perturbed images
 * inside it.  NaN, NaN clears it (the default: unknown); otherwise lo < hi,
 * both finite.  Saved as the attributes input_min and input_max.
 * caimg_ann_get_input_range() returns 0, or -1 when the range is unknown
 * (then *lo and *hi are NaN). */
int caimg_ann_set_input_range(caimg_ann *m, double lo, double hi);
int caimg_ann_get_input_range(const caimg_ann *m, double *lo, double *hi);

/* ---- image preprocessing ---------------------------------------------------- */

/* How stimulus images become model inputs: crop a box out of each
 * src_h x src_w image, then resample it to the model's height x width with
 * a triangle (bilinear, area-weighted when shrinking) filter.  Recorded with
 * the model so that prediction and attacks see what training saw. */
typedef struct {
    size_t src_h, src_w;                      /* image size the model expects */
    size_t crop_y, crop_x, crop_h, crop_w;    /* crop box in source pixels */
} caimg_ann_prep;

/* The identity preprocessing for images of h x w (no crop). */
void caimg_ann_prep_init(caimg_ann_prep *p, size_t h, size_t w);

/* Record the preprocessing in the model; the crop box must lie inside the
 * source image.  The default is the identity for the model's input size. */
int caimg_ann_set_prep(caimg_ann *m, const caimg_ann_prep *p);
const caimg_ann_prep *caimg_ann_get_prep(const caimg_ann *m);

/* Apply the model's preprocessing to n single-channel images
 * in [n][src_h][src_w], writing out [n][C][H][W] model inputs (C = 1). */
int caimg_ann_preprocess(const caimg_ann *m, const float *in, size_t n, float *out);

/* Resample one h x w image to oh x ow (triangle filter; the support widens
 * with the shrink factor so that downsampling averages, as area methods do).
 * Returns 0 or CAIMG_ENOMEM. */
int caimg_ann_resize(const float *in, size_t h, size_t w, float *out, size_t oh, size_t ow);

/* ---- saving and loading ------------------------------------------------------- */

/* Write the model into group `group` (e.g. "/model") of an HDF5 file being
 * created: attributes arch (the canonical text), seed, input_channels,
 * input_height, input_width, nneurons, input_mean, input_sd, image_height,
 * image_width, crop_y, crop_x, crop_h, crop_w; one float32 dataset per
 * tensor, named as the tensor ("/model/conv1/weight").  An ensemble of K
 * networks also gets the attribute members = K, and its networks 2..K go
 * to the groups `group`_member1 .. `group`_member(K-1) ("/model_member1"),
 * written the same way.  See caimg-h5(5). */
int caimg_ann_save(const caimg_ann *m, caimg_h5 *f, const char *group);

/* Read a model saved by caimg_ann_save(); errors name the file and the
 * missing or mis-shaped object. */
caimg_ann *caimg_ann_load(caimg_h5 *f, const char *group);

/* ---- noise ---------------------------------------------------------------- */

enum { CAIMG_ANN_NOISE_REL = 0, CAIMG_ANN_NOISE_ABS = 1 };

/* Set the noise after layer `name` ("input" for the input): standard
 * deviation `sigma` (>= 0; 0 switches it off) that is relative (per-unit
 * standard deviation on clean data times sigma) or absolute. */
int caimg_ann_noise_set(caimg_ann *m, const char *name, double sigma, int mode);
/* Noise of a layer: sigma and mode; returns 0, or -1 if layer is out of range. */
int caimg_ann_noise_get(const caimg_ann *m, size_t layer, double *sigma, int *mode);
/* 1 if any layer has noise. */
int caimg_ann_is_noisy(const caimg_ann *m);

/* Measure the per-unit standard deviation of every layer with relative
 * noise, on a clean (noise-free) forward pass over `n` images `x`
 * [n][C][H][W].  Training calls it itself; call it after loading weights by
 * other means.  Units that never vary get scale 0 (no noise). */
int caimg_ann_noise_calibrate(caimg_ann *m, const float *x, size_t n);

/* Which noise a forward pass draws.  Sample i of the call gets the noise
 * numbered (stream, index0 + i); identical numbers give identical noise,
 * different ones independent noise. */
typedef struct {
    uint64_t stream;
    uint64_t index0;
} caimg_ann_noise_draw;

/* ---- forward and backward passes ----------------------------------------- */

/* A workspace for batches of up to `max_batch` images: it holds every
 * layer's activations and gradients for the last batch. */
caimg_ann_work *caimg_ann_work_alloc(const caimg_ann *m, size_t max_batch);
void caimg_ann_work_free(caimg_ann_work *w);

/* Forward pass of `n` images x [n][C][H][W] (caller's pixel units).
 * `noise` NULL switches all noise off; otherwise noise is drawn as
 * described above.  Predictions go to out [n][N] when out is not NULL; the
 * activations stay in `w` for caimg_ann_backward() and
 * caimg_ann_work_activation(). */
int caimg_ann_forward(const caimg_ann *m, caimg_ann_work *w, const float *x,
                      size_t n, const caimg_ann_noise_draw *noise, float *out);

/* An extra gradient injected at a layer's output, [n][layer size]: backward
 * adds it to the gradient arriving from above, which is how an objective
 * on a hidden layer (a feature-space distance) is differentiated. */
typedef struct {
    int layer;
    const float *grad;
} caimg_ann_grad_seed;

/* Backward pass for the batch of the last caimg_ann_forward() on `w`:
 * `dout` [n][N] is the gradient of some objective with respect to the
 * predictions (NULL for none), `seeds` add gradients at hidden layers.
 * dx [n][C][H][W], if not NULL, receives the gradient with respect to the
 * input images (in the caller's pixel units).  With want_params the
 * gradient with respect to the trainable parameters is summed over the
 * batch and left in the workspace (caimg_ann_work_param_grad()). */
int caimg_ann_backward(const caimg_ann *m, caimg_ann_work *w, const float *dout,
                       const caimg_ann_grad_seed *seeds, size_t nseeds, float *dx,
                       int want_params);

/* Activations [n][size] of a layer after the last forward pass (for the
 * output layer, the predictions), and the gradient with respect to them
 * after the last backward pass (zeros where backward did not reach; for the
 * output layer, the gradient with respect to the network's output before
 * the output scale, i.e. dout times scale).  NULL if `layer` is out of
 * range or nothing was computed yet. */
const float *caimg_ann_work_activation(const caimg_ann_work *w, size_t layer);
const float *caimg_ann_work_gradient(const caimg_ann_work *w, size_t layer);

/* The parameter gradient of the last backward pass with want_params, laid
 * out like the trainable tensors in order (caimg_ann_nparams() floats). */
const float *caimg_ann_work_param_grad(const caimg_ann_work *w);

/* Predict responses to n images: out [n][N].  samples = 0 switches noise
 * off; K > 0 averages K noise draws (draw k of image i is numbered
 * (stream0 + k, i)). */
int caimg_ann_predict(const caimg_ann *m, const float *x, size_t n,
                      size_t samples, uint64_t stream0, float *out);

/* ---- training --------------------------------------------------------------- */

typedef enum { CAIMG_ANN_POISSON = 0, CAIMG_ANN_MSE = 1 } caimg_ann_loss_type;

/* The data loss and its gradient: targets y [n][N] (NaN marks a missing
 * value, which contributes nothing), predictions p [n][N].  The value is
 * summed over neurons and averaged over the n samples; Poisson is
 * p - y log(p + 1e-6), MSE is (p - y)^2 / 2.  `dp` (may be NULL) receives
 * the gradient with respect to p.  Returns the loss. */
double caimg_ann_loss(caimg_ann_loss_type type, const float *p, const float *y,
                      size_t n, size_t nout, float *dp);

/* One epoch of training as reported to the caller. */
typedef struct {
    size_t epoch;          /* 1-based */
    double train_loss;     /* mean data loss per sample and neuron (neuron-weighted) */
    double penalty;        /* penalty terms at the end of the epoch */
    double val_loss;       /* the same on the validation stimuli (noise off) */
    double val_corr;       /* mean over neurons of the validation correlation */
    double seconds;        /* wall time of the epoch */
    double lr;             /* the learning rate of the epoch */
} caimg_ann_epoch;

typedef int (*caimg_ann_epoch_fn)(const caimg_ann_epoch *e, void *ctx);

typedef struct {
    caimg_ann_loss_type loss;   /* default Poisson */
    const float *neuron_weights; /* [N] weight of each neuron's loss (NULL: 1) */
    size_t batch;               /* mini-batch size [64] */
    double lr;                  /* Adam learning rate [0.002] */
    double beta1, beta2, eps;   /* Adam [0.9, 0.999, 1e-8] */
    double l2;                  /* weight decay on weights (not biases) [1e-4] */
    size_t max_epochs;          /* [200] */
    size_t min_epochs;          /* never stop before this many [5] */
    size_t patience;            /* epochs without a better validation correlation [10] */
    double val_fraction;        /* fraction of stimuli held out for validation [0.1] */
    const unsigned char *val_mask;  /* [n] 1 = validation; overrides val_fraction */
    uint64_t seed;              /* shuffling and the validation split [1] */
    size_t calib_max;           /* images used to measure noise scales (the sd of a
                                   unit is then known to about 3%) [512] */
    int init_bias;              /* set readout biases from the mean targets [1] */
    double ema;                 /* Polyak averaging: decay per step of an exponential
                                   moving average of the weights, which validation
                                   and the returned model use; 0 = off [0] */
    size_t lr_decays;           /* when patience runs out, go back to the best weights
                                   and multiply the learning rate by lr_factor, up to
                                   this many times, before stopping [0] */
    double lr_factor;           /* [0.3] */
    caimg_ann_epoch_fn epoch_fn;  /* called after every epoch (may be NULL);
                                     a nonzero return stops training */
    void *epoch_ctx;
} caimg_ann_train_opts;

void caimg_ann_train_opts_init(caimg_ann_train_opts *o);

/* What training did. */
typedef struct {
    size_t nepochs;
    caimg_ann_epoch *epochs;    /* [nepochs], the training curve */
    size_t best_epoch;          /* 1-based epoch whose weights were kept */
    double best_val_corr;
    size_t nstim;
    unsigned char *val_mask;    /* [nstim] the split used: 1 = validation */
    int stopped_early;          /* 1 if patience ran out */
} caimg_ann_history;

/* Free what a history holds (not the struct itself). */
void caimg_ann_history_clear(caimg_ann_history *h);

/* Train on n stimuli: images x [n][C][H][W] (caller's pixel units) and
 * targets y [n][N] (per-stimulus responses, e.g. trial averages; NaN =
 * missing); `weights` [n] (may be NULL) weighs each stimulus, e.g. by its
 * number of repeats.  A validation subset (by seed, or opts->val_mask) is
 * taken out of these n; the test set must not be passed here.  Training
 * stops early when the mean validation correlation has not improved for
 * `patience` epochs, and the best weights (and noise scales) are restored.
 * Progress is reported through caimg_progress("fit", epoch, max_epochs).
 * `h` (may be NULL) receives the curve and split. */
int caimg_ann_train(caimg_ann *m, const float *x, const float *y,
                    const float *weights, size_t n,
                    const caimg_ann_train_opts *opts, caimg_ann_history *h);

/* Set the data-dependent scales a model is trained with, from its n
 * training images x [n][C][H][W] and targets y [n][N] (NaN = missing), as
 * caimg fit does before caimg_ann_train():
 *   input normalisation: the mean and sd of all training pixels;
 *   input range: their smallest and largest value;
 *   output scale: each neuron's sd of y across stimuli (1 if it has none);
 *   output offset: its most negative target (0 if none is negative);
 *   neuron_weights [N] (may be NULL): 1/sd^2 for MSE, 1/sd for Poisson,
 *   so that every neuron shapes the shared layers alike.
 * Returns 0, CAIMG_EFORMAT when the images are one flat grey, or
 * CAIMG_ENOMEM. */
int caimg_ann_fit_scales(caimg_ann *m, const float *x, const float *y, size_t n,
                         caimg_ann_loss_type loss, float *neuron_weights);

/* ---- evaluation ---------------------------------------------------------- */

/* Held-out evaluation of predictions against recorded responses.
 * pred [S][N]: predictions for S stimuli.  resp [P][N]: P single-trial
 * responses (presentations), stim [P] the stimulus (0..S-1) of each; NaN
 * responses are skipped.  Stimuli with no presentation are ignored.
 *   corr_avg    correlation across stimuli of prediction and trial average
 *   corr_trial  correlation across presentations of prediction and single
 *               trial (NaN unless some stimulus has >= 2 repeats)
 *   ev_frac     explainable variance fraction: (Var[r] - noise var) / Var[r],
 *               where noise var is the mean over stimuli of the variance
 *               across repeats (unbiased), Var[r] the variance over all trials
 *   feve        fraction of explainable variance explained (Cadena et al.
 *               2019): 1 - (MSE - noise var) / (Var[r] - noise var), with
 *               MSE over all trials; NaN where ev_frac < ev_threshold
 * A neuron whose responses (or predictions) do not vary gets NaN
 * correlations.  Population summaries average over non-NaN values. */
typedef struct {
    size_t nneurons;
    double *corr_avg, *corr_trial, *ev_frac, *feve;   /* [N] each */
    double mean_corr_avg, median_corr_avg, mean_corr_trial, mean_feve;
    size_t n_corr_avg, n_corr_trial, n_feve;          /* neurons averaged */
} caimg_ann_eval;

int caimg_ann_evaluate(const float *pred, size_t nstim, size_t nneur,
                       const float *resp, const size_t *stim, size_t npres,
                       double ev_threshold, caimg_ann_eval *ev);
void caimg_ann_eval_clear(caimg_ann_eval *ev);

/* Pearson correlation of two float vectors with strides (NaN pairs are
 * skipped; NaN if fewer than 2 pairs or either side has no variance). */
double caimg_ann_corr(const float *a, size_t sa, const float *b, size_t sb,
                      size_t n);

/* Mean over the N neurons of the correlation across the n samples of
 * predictions p[n][N] and responses y[n][N] (caimg_ann_corr per column;
 * neurons whose correlation is NaN are left out; NaN if all are). */
double caimg_ann_mean_corr(const float *p, const float *y, size_t n, size_t N);

#ifdef __cplusplus
}
#endif
#endif
