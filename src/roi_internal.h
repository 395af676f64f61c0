/* roi_internal.h -- helpers shared by the roi modules; not installed.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#ifndef CAIMG_ROI_INTERNAL_H
#define CAIMG_ROI_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "caimg/roi.h"
#include "internal.h"

/* Separable Gaussian blur of an h x w image with s.d. sigma (kernel cut at
 * 3 sigma), normalised at the borders: each output is the weighted mean of
 * the input pixels the kernel reaches inside the image, so borders are not
 * darkened.  `tmp` holds h*w floats; in and out may be the same. */
void roi_gauss_blur(const float *in, float *out, size_t h, size_t w, double sigma,
                    float *tmp);

/* The same on a sub-window: out[oh][ow] receives the blur of in (an h x w
 * image) at rows [oy, oy+oh) and columns [ox, ox+ow); the result equals the
 * corresponding part of roi_gauss_blur's output.  `tmp` holds
 * (oh + 2*radius) * ow floats where radius = ceil(3 sigma). */
void roi_gauss_blur_window(const float *in, size_t h, size_t w, double sigma,
                           size_t oy, size_t ox, size_t oh, size_t ow, float *out,
                           float *tmp);

/* Box mean over (2r+1) x (2r+1); beyond the borders the image is extended
 * point-symmetrically, so a linear trend does not bias the mean there.
 * `tmp` holds h*w floats; in and out must differ. */
void roi_box_mean(const float *in, float *out, size_t h, size_t w, size_t r, float *tmp);

/* The k-th smallest of n floats (0-based); reorders a. */
float roi_select(float *a, size_t n, size_t k);

/* Median of n floats (reorders a); 0 for n = 0. */
float roi_median(float *a, size_t n);

/* Squared Euclidean distance from every pixel of an h x w grid to the
 * nearest pixel with mask != 0 (Felzenszwalb and Huttenlocher's exact
 * transform); pixels are at 1e20 when the mask is empty.  Returns 0 or
 * CAIMG_ENOMEM. */
int roi_edt(const uint8_t *mask, size_t h, size_t w, float *d2);

/* The overlap rule among cells: re-flag in pix_overlap the pixels of every
 * ROI flagged in iscell, as shared only when another cell has them too
 * (rejected ROIs' flags are left as caimg_roiset_finish set them).
 * *changed receives the number of flags changed, and roi_changed[i]
 * (r->n entries, set by the caller) is set to 1 for each ROI whose flags
 * changed.  Returns 0 or CAIMG_ENOMEM. */
int roi_overlap_cells(caimg_roiset *r, uint8_t *roi_changed, size_t *changed);

/* caimg_roi_extract() for the ROIs flagged in only[] (r->n entries): their
 * F rows are rewritten in place; Fneu, which the overlap flags do not
 * change, is left as the first extraction wrote it. */
int roi_extract_only(caimg_movie *m, const caimg_roiset *r, caimg_h5 *out, double fs,
                     const uint8_t *only);

/* A cell (iscell, not a user mask) with at least ROI_CONTAINED of its pixels
 * inside a larger cell is a piece or a second outline of that soma, not a
 * second cell: its flag is cleared (prob stays).  The decisions are made on
 * the flags as given, so the order of the ROIs does not matter.
 * Returns 0 or CAIMG_ENOMEM. */
#define ROI_CONTAINED 0.7
int roi_cells_contained(caimg_roiset *r);

/* Moments of the standard normal variable z above theta for the activity
 * statistic phi(z) = z - theta for z > theta, 0 otherwise: its mean and
 * variance, from numerical integration. */
void roi_phi_moments(double theta, double *mean, double *var);

/* Fill the holes of a binary mask (h x w): every 0-pixel not connected
 * (4-connectivity) to the border through 0-pixels becomes 1.  `stack`
 * holds h*w int32. */
void roi_fill_holes(uint8_t *mask, size_t h, size_t w, int32_t *stack);

/* Keep only the 8-connected component of mask containing pixel `seed`
 * (index y*w+x); returns its size (0 if the seed is not in the mask).
 * `stack` holds h*w int32, `keep` h*w bytes. */
size_t roi_component(uint8_t *mask, size_t h, size_t w, size_t seed, int32_t *stack,
                     uint8_t *keep);

/* Somata in the mean image (roi_anatomy.c): sets the contrast and fit
 * statistics of every ROI of r and, when `add` is nonzero, appends the
 * somata found in the valid box (y0, y1, x0, x1) that no ROI of r covers
 * yet, with source 2.  `act` (NULL or the box's size) is the activity
 * significance left, and `own` (NULL or the box's size) the own-light map
 * of roi_detect.c (the share of each pixel's light that does not follow
 * the neuropil), each combined with the mean-image evidence.
 *
 * A soma whose fitted ellipse holds at least ROI_ABSORB of the pixels of a
 * cell found from activity (source 1) is that cell, outlined whole: an
 * outline grown from a few noisy active bins is often only the bright part
 * of a soma, and beside it the fit would make a second, false cell.  When
 * `absorbed_by` is not NULL (one entry per ROI of r on entry), such a soma
 * is added although the cell's pixels are already taken, and
 * absorbed_by[i] is set to the index of the soma that took ROI i (-1 for
 * the others); the caller drops ROI i.  With NULL, nothing is absorbed. */
#define ROI_ABSORB 0.55
int roi_anatomy(const caimg_roi_params *p, const caimg_roi_summary *s, const size_t box[4],
                caimg_roiset *r, int add, const float *act, const float *own,
                int32_t *absorbed_by);

/* Remove the ROIs i of r with drop[i] nonzero, before caimg_roiset_finish
 * (pixel lists and statistics only). */
void roi_roiset_drop(caimg_roiset *r, const uint8_t *drop);

/* The somata's diameter measured in the mean image of s over the valid box
 * of p (roi_anatomy.c), for --diameter auto, with *measured 1; or, when the
 * image shows too few somata to measure (fewer than 6 fitted well), no size
 * of its own (texture) or varies no more than its noise, *measured 0 and 12
 * pixels, or a third of the box's smaller side if that is less (at least
 * 2). */
int roi_estimate_diameter(const caimg_roi_params *p, const caimg_roi_summary *s,
                          double *diameter, int *measured);

/* Candidate cells for the refinement (roi_refine.c): each a footprint on
 * a window of the detector's crop (h x w) and a trace over its nb bins. */
typedef struct roi_comps roi_comps;

roi_comps *roi_comps_alloc(size_t nb, size_t h, size_t w);
void roi_comps_free(roi_comps *C);

/* Add a candidate of n crop pixels pix[] (index y*w+x) with footprint
 * ax[] in the units of the prepared movie (raw units divided by sig, the
 * per-pixel noise s.d. [h*w]) and trace c[nb] (NULL = zeros): ax c is what
 * has been subtracted from the prepared movie for it.  keep = 0 marks a
 * rejected candidate, to be added back to the movie by roi_refine; `roi`
 * is the index of the ROI it stands for in the set given to roi_refine.
 * fixed = 1 holds the footprint fixed (only the trace and brightness are
 * fitted) and keeps that ROI's mask and weights as they are.  A footprint
 * without a positive value is ignored unless it is fixed.  Returns 0 or
 * CAIMG_ENOMEM. */
int roi_comps_add(roi_comps *C, size_t n, const size_t *pix, const float *ax, const float *sig,
                  const float *c, int keep, int fixed, size_t roi);

/* The candidate standing for ROI `roi` leaves the model: roi_refine adds
 * it back to the movie like a rejected candidate, and its ROI is not in the
 * result. */
void roi_comps_drop(roi_comps *C, size_t roi);

/* Refine the candidates jointly (a non-negative factorisation of the
 * prepared binned movie x, which holds the residual with every candidate
 * of C subtracted, and of the mean image of s) and replace *r by the set of
 * refined ROIs, carrying over each candidate's score, source, contrast and
 * fit; candidates whose free footprint vanished are dropped.  y0, x0: the crop's
 * place in the frame.  x is modified.  Returns 0, CAIMG_ENOMEM, or the
 * status of an interrupted progress report. */
int roi_refine(const caimg_roi_params *p, const caimg_roi_summary *s, size_t y0, size_t x0,
               float *x, const float *sig, roi_comps *C, caimg_roiset **r);

/* The seeded method's type (roi_masks.c), for the method table. */
extern const caimg_roi_type roi_seeded_type;

#endif
