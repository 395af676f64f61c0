/* caimg/movie.h -- reading movies frame by frame from any source.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * A movie is T frames of Y x X samples.  It can come from a caimg HDF5 file
 * (dataset /movie by default, possibly an external link), or from one or
 * more TIFF stacks concatenated in the given order, optionally picking one
 * channel and plane out of interleaved pages.  Stages read frames in chunks
 * through this interface so that memory does not grow with T.
 *
 * Interleaving: pages are ordered channel fastest, then plane, then time
 * (ScanImage's order and ImageJ's default XYCZT order), so frame t (0-based)
 * of channel c and plane z (1-based) is page ((t * planes) + z-1) * channels
 * + c-1 of the concatenated stack.
 */
#ifndef CAIMG_MOVIE_H
#define CAIMG_MOVIE_H

#include <stddef.h>

#include "caimg/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct caimg_movie caimg_movie;

typedef struct {
    const char *dataset;   /* HDF5 dataset; NULL means "/movie" */
    /* Interleaving of TIFF pages.  0 means "from the ImageJ metadata of
     * the first file, else 1".  channel/plane are 1-based. */
    size_t channels, channel;
    size_t planes, plane;
} caimg_movie_opts;

void caimg_movie_opts_init(caimg_movie_opts *o);

/* Open `n` paths as one movie: either a single caimg HDF5 file or one or
 * more TIFF files (all of the same frame size and sample type).  The TIFF
 * page count must be a multiple of channels*planes in each file. */
caimg_movie *caimg_movie_open(const char *const *paths, size_t n,
                              const caimg_movie_opts *opts);

/* Convenience for one path with default options. */
caimg_movie *caimg_movie_open1(const char *path);

size_t caimg_movie_frames(const caimg_movie *m);
size_t caimg_movie_height(const caimg_movie *m);
size_t caimg_movie_width(const caimg_movie *m);
/* Interleaved channels per time point and planes per volume in the source
 * (from the options or the TIFF's metadata; 1 and 1 for HDF5 movies). */
size_t caimg_movie_channels(const caimg_movie *m);
size_t caimg_movie_planes(const caimg_movie *m);
caimg_dtype caimg_movie_dtype(const caimg_movie *m);

/* Frame rate in Hz from the file (/movie attribute fs, or ImageJ
 * finterval), 0 if unknown. */
double caimg_movie_fs(const caimg_movie *m);

/* Pixel size in micrometres, 0 if unknown. */
double caimg_movie_pixel_um(const caimg_movie *m);

/* 1 if the movie comes from an HDF5 file, 0 for TIFF. */
int caimg_movie_is_h5(const caimg_movie *m);

/* Read frames [t0, t0+n) into buf (n*Y*X samples), as float or in the
 * movie's own type.  Sequential reads are fastest.  Errors name the file
 * and the page/frame. */
int caimg_movie_read(caimg_movie *m, size_t t0, size_t n, float *buf);
int caimg_movie_read_raw(caimg_movie *m, size_t t0, size_t n, void *buf);

/* Frames t[i] (i < n) in the movie's own type without reading them:
 * ptrs[i] points at frame t[i] in place in the file (caimg_h5_map_rows()).
 * NULL if the movie's frames cannot be had in place (TIFF, compressed or
 * converted HDF5); the caller then reads them.  Valid until
 * caimg_movie_unmap(), which may come after caimg_movie_close(). */
struct caimg_h5_map *caimg_movie_map_frames(caimg_movie *m, size_t n, const size_t *t,
                                            const void **ptrs);
void caimg_movie_unmap(struct caimg_h5_map *map);

/* The source file names, joined by ", " (for provenance and messages). */
const char *caimg_movie_sources(const caimg_movie *m);

void caimg_movie_close(caimg_movie *m);

#ifdef __cplusplus
}
#endif
#endif
