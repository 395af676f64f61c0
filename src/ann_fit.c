/* ann_fit.c -- the data-dependent scales a response model is trained with.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * caimg fit and the robustness experiment train models the same way; the
 * choices that depend on the training data live here so both share them.
 */
#include <config.h>

#include <math.h>
#include <stdlib.h>

#include "caimg/ann.h"
#include "internal.h"

int caimg_ann_fit_scales(caimg_ann *m, const float *x, const float *y, size_t n,
                         caimg_ann_loss_type loss, float *neuron_weights)
{
    const size_t insz = caimg_ann_input_size(m), N = caimg_ann_output_size(m);
    if (n == 0) return caimg_error(CAIMG_EINVAL, "no training images");
    /* Input normalisation and range over every training pixel, summed in
     * double so that large sets do not lose precision. */
    double s1 = 0, s2 = 0, lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n * insz; i++) {
        double v = x[i];
        s1 += v;
        s2 += v * v;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    double mean = s1 / (double)(n * insz);
    double sd = sqrt(fmax(0.0, s2 / (double)(n * insz) - mean * mean));
    if (!(sd > 0) || !(hi > lo))
        return caimg_error(CAIMG_EFORMAT, "the training images are all one flat grey (pixel sd 0)");
    int st = caimg_ann_set_input_norm(m, mean, sd);
    if (!st) st = caimg_ann_set_input_range(m, lo, hi);
    if (st) return st;

    /* Output scale and offset: the network predicts responses of unit
     * spread for every neuron, and loss weights make each neuron count
     * alike in the shared layers whatever its response amplitude. */
    float *scale = caimg_malloc(N, sizeof *scale, "output scales");
    float *offset = caimg_malloc(N, sizeof *offset, "output offsets");
    if (!scale || !offset) {
        free(scale);
        free(offset);
        return CAIMG_ENOMEM;
    }
    for (size_t j = 0; j < N; j++) {
        double a = 0, b = 0, mn = INFINITY;
        size_t k = 0;
        for (size_t r = 0; r < n; r++) {
            float v = y[r * N + j];
            if (isnan(v)) continue;
            a += v;
            b += (double)v * v;
            k++;
            if (v < mn) mn = v;
        }
        double s = k ? sqrt(fmax(0.0, (b - a * a / (double)k) / (double)(k > 1 ? k - 1 : 1))) : 0.0;
        scale[j] = (float)(s > 0 ? s : 1.0);
        offset[j] = (float)(mn < 0 ? mn : 0.0);
        if (neuron_weights) {
            double sw = s > 0 ? s : 1.0;
            neuron_weights[j] = (float)(loss == CAIMG_ANN_MSE ? 1.0 / (sw * sw) : 1.0 / sw);
        }
    }
    st = caimg_ann_set_output_affine(m, scale, offset);
    free(scale);
    free(offset);
    return st;
}
