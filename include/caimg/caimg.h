/* caimg/caimg.h -- the whole public interface of libcaimg.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Naming: functions are caimg_<module>_<verb>; objects are created with
 * _alloc/_open/_create and released with _free/_close (which accept NULL);
 * reusable precomputation follows FFTW's plan / execute / destroy.
 * Errors: see caimg/error.h.
 */
#ifndef CAIMG_CAIMG_H
#define CAIMG_CAIMG_H

#include "caimg/error.h"
#include "caimg/h5io.h"
#include "caimg/movie.h"
#include "caimg/report.h"
#include "caimg/tiffio.h"
#include "caimg/tsv.h"
#include "caimg/types.h"
#include "caimg/version.h"
#include "caimg/stimulus.h"
#include "caimg/simulate.h"
#include "caimg/eval.h"
#include "caimg/motion.h"
#include "caimg/mcrun.h"
#include "caimg/dff.h"
#include "caimg/deconv.h"
#include "caimg/ann.h"
#include "caimg/attack.h"

#endif
