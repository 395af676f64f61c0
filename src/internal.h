/* internal.h -- helpers private to libcaimg; not installed.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Notes for library code:
 *  - Report failures with caimg_error() and return its status; never print.
 *  - Debian's HDF5 is not built thread-safe: call HDF5 only from the thread
 *    that drives a stage, never inside an OpenMP parallel region.  Read a
 *    chunk of frames, process it in parallel, then write it.
 *  - Allocate with the checked wrappers below so that out-of-memory becomes a
 *    CAIMG_ENOMEM message rather than a crash.
 */
#ifndef CAIMG_INTERNAL_H
#define CAIMG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "caimg/error.h"

#define CAIMG_UNUSED(x) ((void)(x))
#define CAIMG_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CAIMG_MAX(a, b) ((a) > (b) ? (a) : (b))

/* malloc/calloc that set a CAIMG_ENOMEM message (naming `what`) on failure
 * and also fail cleanly when n * size overflows. */
void *caimg_malloc(size_t n, size_t size, const char *what);
void *caimg_calloc(size_t n, size_t size, const char *what);
/* caimg_malloc for large buffers (tens of MB and more; free with free()):
 * 2 MB aligned and backed by transparent huge pages where the kernel allows
 * it, so that first touching them costs one page fault per 2 MB instead of
 * per 4 kB (page faults are expensive, especially in virtual machines). */
void *caimg_malloc_big(size_t n, size_t size, const char *what);

/* n * size, or SIZE_MAX if that overflows. */
static inline size_t caimg_mul(size_t n, size_t size)
{
    return (size && n > SIZE_MAX / size) ? SIZE_MAX : n * size;
}

/* Whether `path` can be an output: 0, or CAIMG_EIO with the message
 * "path: is a directory" (found now, not when the temporary is renamed over
 * it after all the work). */
int caimg_output_ok(const char *path);

/* The temporary files being written, for caimg_remove_temporaries() to
 * remove when a signal ends the program.  Register a name before creating
 * the file and unregister it (the same pointer, which must stay valid
 * meanwhile) once the file is renamed or removed, before freeing it.  At
 * most CAIMG_MAX_TEMPS at a time; more are not tracked. */
#define CAIMG_MAX_TEMPS 64
void caimg_temp_register(char *path);
void caimg_temp_unregister(const char *path);

/* strdup that returns NULL (with message) on failure; NULL in, NULL out. */
char *caimg_strdup(const char *s);

/* Call first in every thread the library starts that uses HDF5.  HDF5's
 * thread-safe builds keep the error stack, and whether it is printed, per
 * thread, so caimg_init() silences only the thread that called it. */
void caimg_init_thread(void);

/* Text tables (tsv.c).  Split a line in place into fields; returns the
 * count, or (size_t)-1 when out of memory (*fields grows as needed).  Tabs
 * separate; if the line has no tab, commas, then runs of spaces, do. */
size_t caimg_tsv_split(char *line, char ***fields, size_t *cap);
/* A line of `len` bytes as getline() read it, line number `lineno` of
 * `path`: an error if it holds a NUL byte (a binary file); else *line and
 * *len are moved past a UTF-8 byte order mark (first line) and the line
 * end is cut off. */
int caimg_tsv_line(char **line, size_t *len, size_t lineno, const char *path);
/* Whether a line (as caimg_tsv_line left it) holds no row: a '#' comment
 * (at the start or after spaces), empty, or whitespace only.  Every table
 * reader skips these lines, so they all read a file alike. */
int caimg_tsv_skip(const char *line, size_t len);
/* A field as a number: "nan", "NA" and empty fields are NaN (missing
 * samples); returns -1 if it is not a number. */
int caimg_tsv_number(const char *s, double *v);
/* Whether a table's first line of fields is a header: one of them is not
 * a number. */
int caimg_tsv_header(char *const *fields, size_t n);

/* Number of OpenMP threads a parallel region would use (1 without OpenMP). */
int caimg_nthreads(void);

/* Seconds on the monotonic clock, for timing work. */
double caimg_seconds(void);

/* Simple per-sample loops are vectorised by the compiler, but the baseline
 * x86-64 target allows only SSE2.  Functions marked CAIMG_SIMD_CLONES are
 * also built for AVX2 where the compiler supports it, and the better
 * version is picked when the library is loaded. */
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define CAIMG_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef CAIMG_SIMD_CLONES
#define CAIMG_SIMD_CLONES
#endif

/* Four doubles as one vector (GCC/Clang vector extensions), and the same
 * at any double's address (an unaligned load or store). */
typedef double caimg_v4d __attribute__((vector_size(32)));
typedef double caimg_v4du __attribute__((vector_size(32), aligned(8), may_alias));

#endif
