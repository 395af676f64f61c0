/* caimg/mcrun.h -- motion correction of whole movies, file to file.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * caimg_mc_run() is the library side of `caimg mc`: it reads any movie
 * caimg/movie.h can open (a caimg HDF5 file or TIFF stacks) in chunks,
 * builds or loads the template, registers every frame with caimg/motion.h
 * and streams the results into a new caimg HDF5 file laid out as in
 * caimg-h5(5):
 *   /movie              [T][Y][X] corrected frames (uint16 or float32),
 *                       attributes fs (Hz, 0 if unknown), pixel_um
 *   /mc/shifts          [T][2] float32 rigid shift (dy, dx) of each frame
 *   /mc/corr            [T] float32 correlation with the template after
 *                       correction (NaN for unusable frames)
 *   /mc/template        [Y][X] float32
 *   /mc/patch_shifts    [T][Py][Px][2] float32 total shift at each patch
 *                       centre (1 x 1, the rigid shift, for rigid runs)
 *   /mc/patch_y [Py], /mc/patch_x [Px]  float32 patch centres, pixels
 *   /mc/valid           [4] int32 y0, y1, x0, x1: half-open box of pixels
 *                       whose source was inside the frame in every frame
 *   attributes of /mc: bidi_offset, crispness_before, crispness_after, fs.
 * The output is written under a temporary name and appears only when
 * everything succeeded; memory does not depend on the number of frames.
 */
#ifndef CAIMG_MCRUN_H
#define CAIMG_MCRUN_H

#include <stddef.h>

#include "caimg/motion.h"
#include "caimg/movie.h"
#include "caimg/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    caimg_mc_params mc;        /* registration parameters (caimg_mc_params_init) */
    caimg_movie_opts movie;    /* dataset / TIFF interleaving of the inputs */
    const char *template_path; /* a template instead of one built from the data:
                                  a TIFF (first page) or an HDF5 file holding
                                  /mc/template (an earlier mc output) or
                                  /template; NULL to build one */
    size_t template_frames;    /* sample frames for the template, spread evenly
                                  over the movie; at most 256 MB of them
                                  (as float) are used [200] */
    caimg_dtype dtype;         /* stored type of /movie: CAIMG_DT_U16 or
                                  CAIMG_DT_F32; CAIMG_DT_NONE means uint16 for
                                  uint16 input, else float32 */
    int deflate;               /* deflate level of /movie, 0-9 [0] */
    size_t chunk;              /* frames per chunk; 0 means about 32 MB [0] */
    double fs;                 /* frame rate in Hz; 0 means the input's */
    const char *cmdline;       /* recorded in the provenance; may be NULL */
} caimg_mc_run_opts;

/* Defaults as shown in brackets. */
void caimg_mc_run_opts_init(caimg_mc_run_opts *o);

/* Motion-correct the movie made of inputs[0..n) (see caimg_movie_open)
 * into a new file `output`.  If `summary` is not NULL it receives the
 * run's summary.  Progress is reported through caimg_progress() (tasks
 * "reading sample", "template", "registering"); warnings (unusable frames,
 * shifts at the limit, clamped samples) through caimg_warn().  Errors:
 * CAIMG_ENOENT / CAIMG_EFORMAT for unreadable inputs or templates (also a
 * template whose size differs from the frames'), CAIMG_EFORMAT for a movie
 * with too few usable frames to build a template, CAIMG_EINVAL for bad
 * options (border NaN with integer output), CAIMG_EIO for write failures.
 * On any failure nothing is left at `output`. */
int caimg_mc_run(const char *const *inputs, size_t n, const char *output,
                 const caimg_mc_run_opts *opts, caimg_mc_summary *summary);

#ifdef __cplusplus
}
#endif
#endif
