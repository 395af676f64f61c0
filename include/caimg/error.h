/* caimg/error.h -- status codes, error messages, warnings and progress.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * The contract: a library function that can fail returns an int status (0 on
 * success, one of the negative CAIMG_E* codes on failure) or NULL, and leaves
 * a one-line, human-readable message describing what went wrong with which
 * file, in terms the user can act on ("in.tif: page 17 is 256x256, expected
 * 512x512").  The message is kept per thread, so OpenMP workers do not
 * clobber each other's messages.  The library never prints, exits or asserts
 * on user data; warnings and progress go through handlers that the program
 * installs (the caimg CLI prints them on stderr).
 */
#ifndef CAIMG_ERROR_H
#define CAIMG_ERROR_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes.  Data errors (bad or unsupported input) are distinguished
 * from usage errors (a parameter out of range) so that a program can choose
 * its exit status. */
enum {
    CAIMG_OK      =  0,
    CAIMG_EFAIL   = -1,  /* anything not covered below */
    CAIMG_ENOMEM  = -2,  /* allocation failed */
    CAIMG_EIO     = -3,  /* the operating system or an I/O library failed */
    CAIMG_EFORMAT = -4,  /* input is malformed, truncated or inconsistent */
    CAIMG_EUNSUP  = -5,  /* input is well formed but uses an unsupported feature */
    CAIMG_EINVAL  = -6,  /* an argument or parameter is invalid (a usage error) */
    CAIMG_ENOENT  = -7,  /* a named file, dataset or object does not exist */
    CAIMG_ECANCEL = -8   /* a progress handler asked to stop */
};

/* The message left by the last failing call in this thread ("" if none). */
const char *caimg_errmsg(void);

/* The status recorded with that message (CAIMG_OK if none): what a
 * function that can only return NULL failed with. */
int caimg_errstatus(void);

/* The same, or `fallback` when no status was recorded: for a caller that
 * passes on why a NULL-returning function failed, whichever it was. */
int caimg_errstatus_or(int fallback);

/* The name of the library function that set the message ("" if none); the
 * CLI shows it with -v, it helps bug reports. */
const char *caimg_errfunc(void);

/* A static, generic description of a status code. */
const char *caimg_strerror(int status);

/* Record an error message for this thread and return `status`, so that
 * library code can write `return caimg_error(CAIMG_EFORMAT, "%s: ...", f)`.
 * Use the CAIMG_ERROR macro, which also records the calling function. */
int caimg_error_at(const char *func, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define caimg_error(status, ...) caimg_error_at(__func__, (status), __VA_ARGS__)

/* Prefix the current message with "prefix: " (used to add a file name that
 * a lower layer did not know about). */
void caimg_error_prefix(const char *prefix);

/* Forget the current message. */
void caimg_clear_error(void);

/* Warnings: conditions the user should know about but that do not stop the
 * computation (an ROI whose baseline is near zero, a clipped shift).  The
 * handler is process-wide and must be thread-safe; with no handler installed
 * warnings are dropped. */
typedef void (*caimg_warn_fn)(const char *msg, void *ctx);
void caimg_set_warn_handler(caimg_warn_fn fn, void *ctx);
void caimg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Progress: long operations report `done` out of `total` units (frames,
 * traces, epochs) of the named task.  The handler returns nonzero to cancel,
 * in which case the operation fails with CAIMG_ECANCEL.  Called from the
 * thread that drives the loop, never concurrently. */
typedef int (*caimg_progress_fn)(const char *task, double done, double total,
                                 void *ctx);
void caimg_set_progress_handler(caimg_progress_fn fn, void *ctx);
int caimg_progress(const char *task, double done, double total);

/* Silence the libraries caimg uses so that none of them prints or aborts
 * behind our back: GSL's abort-on-error handler is switched off, libtiff's
 * error and warning handlers are routed into caimg messages, and HDF5's
 * automatic error stack printing is disabled.  Idempotent; every entry point
 * that reads or writes files calls it, so programs need not. */
void caimg_init(void);

#ifdef __cplusplus
}
#endif
#endif /* CAIMG_ERROR_H */
