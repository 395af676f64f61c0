/* caimg/tiffio.h -- reading and writing TIFF stacks.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Reading supports what microscopes and ImageJ write: 8/16/32-bit unsigned
 * and signed integer and 32/64-bit float samples, one sample per pixel,
 * classic TIFF and BigTIFF, either byte order, strips or tiles, and
 * uncompressed, LZW, deflate (Adobe and old-style) and PackBits data.
 * ImageJ hyperstack metadata (images=, channels=, slices=, frames=,
 * finterval=) is parsed from the ImageDescription, and ImageJ's "virtual"
 * large stacks -- one IFD followed by all frames stored contiguously -- are
 * read as the stacks they are.
 *
 * Every page must have the size and sample type of the first; a page that
 * does not is reported as "f.tif: page 17 is 256x256, expected 512x512".
 * Pages are numbered from 1 in messages, as ImageJ numbers slices, and from
 * 0 in this API.  Reduced-resolution IFDs (thumbnails, NewSubfileType bit 0)
 * after the first are not pages of the stack and are skipped with a warning.
 *
 * Threads: a caimg_tiff or caimg_tiff_writer must be used by one thread at
 * a time; different objects may be used concurrently.
 */
#ifndef CAIMG_TIFFIO_H
#define CAIMG_TIFFIO_H

#include <stddef.h>
#include <stdint.h>

#include "caimg/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct caimg_tiff caimg_tiff;

typedef struct {
    size_t width, height;       /* pixels */
    caimg_dtype dtype;          /* sample type of every page */
    size_t npages;              /* images in the file (ImageJ virtual stacks included) */
    int bigtiff;                /* 1 for BigTIFF */
    /* ImageJ hyperstack metadata; 0 where absent. */
    size_t ij_images, ij_channels, ij_slices, ij_frames;
    double ij_finterval;        /* seconds per frame, 0 if absent */
    /* Physical pixel size in micrometres (from XResolution and the ImageJ
     * unit or ResolutionUnit), 0 if unknown. */
    double pixel_um_x, pixel_um_y;
    char description[256];      /* start of ImageDescription, for `caimg info` */
} caimg_tiff_info;

/* Open a TIFF file for reading and check that it holds a stack caimg can
 * read: every IFD is walked once and validated (size, sample type,
 * samples per pixel, compression, and that every strip or tile lies inside
 * the file), so errors surface here rather than half way through a
 * conversion.  Frames of more than 2^31 samples, or larger than the file
 * could hold, are refused before anything is allocated.  Returns NULL with
 * a message on failure: CAIMG_ENOENT/CAIMG_EIO if the file cannot be opened,
 * CAIMG_EFORMAT if it is not a TIFF, is truncated or inconsistent,
 * CAIMG_EUNSUP for colour images or sample types caimg does not read. */
caimg_tiff *caimg_tiff_open(const char *path);

/* Metadata of an open file; valid until caimg_tiff_close(). */
const caimg_tiff_info *caimg_tiff_get_info(const caimg_tiff *t);

/* Read page `page` (0-based) into `buf`, which holds height*width samples
 * of the file's dtype in native byte order, row-major.  Any page can be read
 * at any time at the cost of one IFD read; uncompressed pages stored
 * contiguously (the usual case) are read with a single read() and no IFD
 * parsing.  Returns 0, CAIMG_EINVAL for a page out of range, or
 * CAIMG_EFORMAT/CAIMG_EIO with "f.tif: page 3: ..." for undecodable data. */
int caimg_tiff_read_page(caimg_tiff *t, size_t page, void *buf);

/* Close; accepts NULL. */
void caimg_tiff_close(caimg_tiff *t);

/* Writing. */
typedef enum {
    CAIMG_TIFF_NONE = 0, CAIMG_TIFF_LZW, CAIMG_TIFF_DEFLATE, CAIMG_TIFF_PACKBITS
} caimg_tiff_compression;

typedef struct {
    caimg_dtype dtype;                  /* sample type written */
    caimg_tiff_compression compression; /* default none */
    int bigtiff;                        /* 1 force, 0 never, -1 automatic (default) */
    size_t tile;                        /* 0: strips; else square tiles of this size (multiple of 16) */
    int imagej;                         /* 1: write ImageJ metadata (images=, frames=, finterval=) */
    double fs;                          /* frame rate for ImageJ finterval, 0 = unknown */
    double pixel_um;                    /* pixel size for resolution tags, 0 = unknown */
} caimg_tiff_wopts;

/* Defaults: uint16, uncompressed, automatic BigTIFF, strips, ImageJ
 * metadata on. */
void caimg_tiff_wopts_init(caimg_tiff_wopts *o, caimg_dtype dtype);

typedef struct caimg_tiff_writer caimg_tiff_writer;

/* Create a stack of `npages` pages of width x height.  The file is written
 * under a temporary name next to `path` ("<path>.tmp.<pid>") and appears at
 * `path` only when caimg_tiff_writer_close() succeeds.  With bigtiff = -1,
 * BigTIFF is used when caimg_tiff_wants_bigtiff() says so.  Pages are
 * written in the host's byte order, in strips of about 64 KiB or in tiles;
 * LZW and deflate use horizontal prediction for integer samples.  With
 * opts->imagej, page 1 carries an ImageJ description (ImageJ=, images=,
 * frames=, finterval= when fs > 0, unit=micron when pixel_um > 0).  `opts`
 * may be NULL for the defaults.  Returns NULL with a message on failure
 * (CAIMG_EINVAL for bad parameters, CAIMG_EIO if the file cannot be made). */
caimg_tiff_writer *caimg_tiff_writer_create(const char *path, size_t width,
                                            size_t height, size_t npages,
                                            const caimg_tiff_wopts *opts);

/* Append one page: height*width samples of opts->dtype, row-major, in the
 * host's byte order; `buf` is not modified.  After a failure the writer
 * accepts no more pages and close() removes the temporary file. */
int caimg_tiff_write_page(caimg_tiff_writer *w, const void *buf);

/* Finish: checks that npages pages were written, flushes and renames.  On
 * any failure the temporary file is removed.  Frees w. */
int caimg_tiff_writer_close(caimg_tiff_writer *w);

/* Give up: remove the temporary file and free w; accepts NULL. */
void caimg_tiff_writer_abort(caimg_tiff_writer *w);

/* 1 if a stack of `npages` pages of width x height written with `opts`
 * (NULL for defaults) should be BigTIFF: opts->bigtiff if it is 0 or 1,
 * else whether a worst-case estimate of the file size (data, with the
 * largest expansion the compression can cause, plus IFDs) exceeds 4e9
 * bytes, safely below classic TIFF's 4 GiB limit. */
int caimg_tiff_wants_bigtiff(size_t width, size_t height, size_t npages,
                             const caimg_tiff_wopts *opts);

/* 1 if the file starts with a TIFF or BigTIFF signature, 0 if not, negative
 * with a message if it cannot be read. */
int caimg_is_tiff(const char *path);

#ifdef __cplusplus
}
#endif
#endif
