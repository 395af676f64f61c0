/* error.c -- per-thread error messages, warning and progress handlers.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include <gsl/gsl_errno.h>
#include <hdf5.h>
#include <tiffio.h>

#include "caimg/error.h"
#include "internal.h"

/* One message per thread: OpenMP workers report errors independently and the
 * driving thread picks the first. */
static _Thread_local char errbuf[1024];
static _Thread_local const char *errfunc = "";
static _Thread_local int errstatus = CAIMG_OK;

static caimg_warn_fn warn_fn;
static void *warn_ctx;
static caimg_progress_fn progress_fn;
static void *progress_ctx;

const char *caimg_errmsg(void) { return errbuf; }
const char *caimg_errfunc(void) { return errfunc; }
int caimg_errstatus(void) { return errstatus; }

int caimg_errstatus_or(int fallback) { return errstatus != CAIMG_OK ? errstatus : fallback; }

const char *caimg_strerror(int status)
{
    switch (status) {
    case CAIMG_OK:      return "success";
    case CAIMG_ENOMEM:  return "out of memory";
    case CAIMG_EIO:     return "input/output error";
    case CAIMG_EFORMAT: return "malformed input";
    case CAIMG_EUNSUP:  return "unsupported input";
    case CAIMG_EINVAL:  return "invalid argument";
    case CAIMG_ENOENT:  return "no such file or object";
    case CAIMG_ECANCEL: return "cancelled";
    default:            return "failure";
    }
}

int caimg_error_at(const char *func, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    errfunc = func ? func : "";
    errstatus = status;
    return status;
}

void caimg_error_prefix(const char *prefix)
{
    /* Build in a larger buffer, then truncate to the message size. */
    char tmp[2 * sizeof errbuf + 8];
    snprintf(tmp, sizeof tmp, "%s: %s", prefix, errbuf);
    memcpy(errbuf, tmp, sizeof errbuf - 1);
    errbuf[sizeof errbuf - 1] = '\0';
}

void caimg_clear_error(void)
{
    errbuf[0] = '\0';
    errfunc = "";
    errstatus = CAIMG_OK;
}

void caimg_set_warn_handler(caimg_warn_fn fn, void *ctx)
{
    warn_fn = fn;
    warn_ctx = ctx;
}

void caimg_warn(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    if (!warn_fn) return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    warn_fn(buf, warn_ctx);
}

void caimg_set_progress_handler(caimg_progress_fn fn, void *ctx)
{
    progress_fn = fn;
    progress_ctx = ctx;
}

int caimg_progress(const char *task, double done, double total)
{
    if (progress_fn && progress_fn(task, done, total, progress_ctx))
        return caimg_error(CAIMG_ECANCEL, "%s: cancelled", task);
    return CAIMG_OK;
}

/* libtiff reports through handlers, with the module (usually the file name)
 * first.  Errors become the thread's message; the reader code then adds its
 * own context.  Warnings about unknown tags are routine in ScanImage and
 * ImageJ files and are dropped. */
static void tiff_error_handler(const char *module, const char *fmt, va_list ap)
{
    char msg[768];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (module)
        caimg_error_at("libtiff", CAIMG_EFORMAT, "%s: %s", module, msg);
    else
        caimg_error_at("libtiff", CAIMG_EFORMAT, "%s", msg);
}

static void tiff_warning_handler(const char *module, const char *fmt, va_list ap)
{
    (void)module; (void)fmt; (void)ap;
}

void caimg_init(void)
{
    static int done;
    if (done) return;
    done = 1;
    gsl_set_error_handler_off();
    TIFFSetErrorHandler(tiff_error_handler);
    TIFFSetWarningHandler(tiff_warning_handler);
    H5open();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void caimg_init_thread(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}
