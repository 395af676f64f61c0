/* caimg/version.h -- library version.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#ifndef CAIMG_VERSION_H
#define CAIMG_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library in use, e.g. "0.1.0". */
const char *caimg_version(void);

/* One line per linked library with its version (libtiff, FFTW, HDF5, GSL,
 * BLAS, OpenMP), for `caimg --version` and provenance records. */
const char *caimg_build_info(void);

#ifdef __cplusplus
}
#endif
#endif
