/* version.c -- version strings.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>

#include <fftw3.h>
#include <gsl/gsl_version.h>
#include <hdf5.h>
#include <tiffio.h>

#include "caimg/version.h"

const char *caimg_version(void) { return PACKAGE_VERSION; }

const char *caimg_build_info(void)
{
    static char buf[1024];
    unsigned maj = 0, min = 0, rel = 0;
    const char *tiffv = TIFFGetVersion();
    char tiff1[128];
    /* TIFFGetVersion() returns a multi-line banner; keep its first line. */
    snprintf(tiff1, sizeof tiff1, "%s", tiffv ? tiffv : "unknown");
    for (char *p = tiff1; *p; p++) if (*p == '\n') { *p = '\0'; break; }
    H5get_libversion(&maj, &min, &rel);
    snprintf(buf, sizeof buf,
             "%s\nFFTW: %s\nHDF5: %u.%u.%u\nGSL: %s\nBLAS: %s\nOpenMP: %s\n",
             tiff1, fftwf_version, maj, min, rel, gsl_version,
#ifdef HAVE_OPENBLAS
             "OpenBLAS",
#else
             "gslcblas (reference)",
#endif
#ifdef _OPENMP
             "yes"
#else
             "no"
#endif
             );
    return buf;
}
