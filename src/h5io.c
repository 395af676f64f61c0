/* h5io.c -- caimg HDF5 files: atomic creation, datasets, attributes,
 * provenance records and links to upstream results.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "caimg/h5io.h"
#include "caimg/version.h"
#include "internal.h"

typedef struct {
    char *path;
    long long size;
    int link;
    int is_caimg;
} h5_input;

struct caimg_h5 {
    hid_t fid;
    char *path;          /* final name */
    char *tmppath;       /* temporary name while writing; NULL for readers */
    char *stage;
    char *cmdline;
    char *params;        /* "key = value\n" lines */
    size_t params_len;
    h5_input *inputs;
    size_t ninputs;
    int failed;          /* a write failed: the message names the cause */
};

struct caimg_h5_stream {
    caimg_h5 *f;
    hid_t dset;
    caimg_dtype store;
    int rank;
    hsize_t dims[CAIMG_H5_MAXRANK];
    size_t row_elems;
    void *scratch;        /* conversion buffer */
    size_t scratch_rows;
    int direct;           /* rows are unfiltered chunks stored as in memory */
    char *name;
};

/* ---- HDF5 type mapping --------------------------------------------------- */

static hid_t mem_type(caimg_dtype dt)
{
    switch (dt) {
    case CAIMG_DT_U8:  return H5T_NATIVE_UINT8;
    case CAIMG_DT_I8:  return H5T_NATIVE_INT8;
    case CAIMG_DT_U16: return H5T_NATIVE_UINT16;
    case CAIMG_DT_I16: return H5T_NATIVE_INT16;
    case CAIMG_DT_U32: return H5T_NATIVE_UINT32;
    case CAIMG_DT_I32: return H5T_NATIVE_INT32;
    case CAIMG_DT_F32: return H5T_NATIVE_FLOAT;
    case CAIMG_DT_F64: return H5T_NATIVE_DOUBLE;
    case CAIMG_DT_I64: return H5T_NATIVE_INT64;
    default:           return H5I_INVALID_HID;
    }
}

/* On disk we always use little-endian standard types so that files are
 * identical whatever machine wrote them. */
static hid_t file_type(caimg_dtype dt)
{
    switch (dt) {
    case CAIMG_DT_U8:  return H5T_STD_U8LE;
    case CAIMG_DT_I8:  return H5T_STD_I8LE;
    case CAIMG_DT_U16: return H5T_STD_U16LE;
    case CAIMG_DT_I16: return H5T_STD_I16LE;
    case CAIMG_DT_U32: return H5T_STD_U32LE;
    case CAIMG_DT_I32: return H5T_STD_I32LE;
    case CAIMG_DT_F32: return H5T_IEEE_F32LE;
    case CAIMG_DT_F64: return H5T_IEEE_F64LE;
    case CAIMG_DT_I64: return H5T_STD_I64LE;
    default:           return H5I_INVALID_HID;
    }
}

static caimg_dtype dtype_of(hid_t type)
{
    H5T_class_t cls = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    if (cls == H5T_FLOAT)
        return size == 4 ? CAIMG_DT_F32 : size == 8 ? CAIMG_DT_F64 : CAIMG_DT_NONE;
    if (cls == H5T_INTEGER) {
        int sgn = H5Tget_sign(type) == H5T_SGN_2;
        switch (size) {
        case 1: return sgn ? CAIMG_DT_I8 : CAIMG_DT_U8;
        case 2: return sgn ? CAIMG_DT_I16 : CAIMG_DT_U16;
        case 4: return sgn ? CAIMG_DT_I32 : CAIMG_DT_U32;
        case 8: return sgn ? CAIMG_DT_I64 : CAIMG_DT_NONE;
        default: return CAIMG_DT_NONE;
        }
    }
    return CAIMG_DT_NONE;
}

/* What HDF5 says went wrong: the description of the failing API call, or
 * better, the operating system's reason when a file driver reports one. */
struct h5_why {
    char desc[200];
    int err;
};

static herr_t walk_error(unsigned n, const H5E_error2_t *e, void *data)
{
    struct h5_why *w = data;
    if (!e->desc) return 0;
    if (n == 0) snprintf(w->desc, sizeof w->desc, "%s", e->desc);
    /* The file drivers put errno in their messages ("file write failed:
     * ..., errno = 28, error message = 'No space left on device', ...").
     * That is the cause a user can act on; the API call's own description
     * ("can't write data", "unable to flush mounted file hierarchy") is
     * not. */
    const char *p = strstr(e->desc, "errno = ");
    if (p && !w->err) w->err = atoi(p + 8);
    return 0;
}

static const char *h5_reason(void)
{
    static _Thread_local char buf[200];
    struct h5_why w = {"", 0};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_error, &w);
    H5Eclear2(H5E_DEFAULT);
    if (w.err > 0) snprintf(buf, sizeof buf, "%s", strerror(w.err));
    else snprintf(buf, sizeof buf, "%s", w.desc[0] ? w.desc : "HDF5 error");
    return buf;
}

/* Report a failed write to f.  The first failure is the cause (typically a
 * full disk); the ones that follow while the caller abandons the file
 * (closing datasets whose cached chunks cannot be flushed, say) only repeat
 * it in vaguer words, so they leave the first message in place. */
static int write_error(caimg_h5 *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int write_error(caimg_h5 *f, const char *fmt, ...)
{
    if (f->failed) {
        H5Eclear2(H5E_DEFAULT);
        return CAIMG_EIO;
    }
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    f->failed = 1;
    return caimg_error(CAIMG_EIO, "%s: %s", f->path, msg);
}

/* ---- open / create / close ----------------------------------------------- */

static caimg_h5 *h5_alloc(const char *path)
{
    caimg_h5 *f = caimg_calloc(1, sizeof *f, "an HDF5 file handle");
    if (!f) return NULL;
    f->fid = H5I_INVALID_HID;
    f->path = caimg_strdup(path);
    if (!f->path) {
        free(f);
        return NULL;
    }
    return f;
}

static void h5_free(caimg_h5 *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->ninputs; i++) free(f->inputs[i].path);
    free(f->inputs);
    free(f->path);
    caimg_temp_unregister(f->tmppath);
    free(f->tmppath);
    free(f->stage);
    free(f->cmdline);
    free(f->params);
    free(f);
}

/* The metadata cache's size, for every file caimg opens or creates.
 *
 * HDF5 counts a cached entry at its size on disk, but a version-1 B-tree
 * node of a chunk index -- what streaming a movie brings into the cache,
 * one node per 64 chunks -- takes about eight times that in memory (its
 * keys are unpacked to HDF5's largest rank).  Under the default cache
 * (2 MB at first, adapting up to 32 MB, counted that way) nothing is
 * evicted from a movie of 10^4 or 10^5 frames, so every node read or
 * written stays: 0.2 KB per 128 x 128 frame in the file read and as much
 * in the file written, growing with the length of the recording.  A
 * smaller cache of 1 MB or so only moves the point where it stops.  This
 * one holds about 20 nodes (0.5 MB in memory), which streams fill within
 * the first few thousand frames.  They touch the index in order -- one
 * path from the root to the current leaf -- and a node evicted and needed
 * again is one small read from the page cache, so it costs no measurable
 * time. */
#define MDC_BYTES (64u << 10)

/* A file access property list with that cache (negative if none can be
 * made; if the cache cannot be set, HDF5's default, which only costs
 * memory). */
static hid_t file_access(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5AC_cache_config_t c;
    memset(&c, 0, sizeof c);
    c.version = H5AC__CURR_CACHE_CONFIG_VERSION;
    if (fapl >= 0 && H5Pget_mdc_config(fapl, &c) >= 0) {
        c.set_initial_size = 1;
        c.initial_size = c.min_size = c.max_size = MDC_BYTES;
        c.incr_mode = H5C_incr__off;
        c.flash_incr_mode = H5C_flash_incr__off;
        c.decr_mode = H5C_decr__off;
        H5Pset_mdc_config(fapl, &c);
    }
    H5Eclear2(H5E_DEFAULT);
    return fapl;
}

caimg_h5 *caimg_h5_open_any(const char *path, int *is_caimg)
{
    caimg_init();
    struct stat st;
    if (stat(path, &st) != 0) {
        caimg_error(errno == ENOENT ? CAIMG_ENOENT : CAIMG_EIO, "%s: %s", path,
                    strerror(errno));
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        caimg_error(CAIMG_EFORMAT, "%s: is a directory", path);
        return NULL;
    }
    htri_t ish5 = H5Fis_hdf5(path);
    if (ish5 <= 0) {
        H5Eclear2(H5E_DEFAULT);
        caimg_error(CAIMG_EFORMAT, "%s: not an HDF5 file", path);
        return NULL;
    }
    caimg_h5 *f = h5_alloc(path);
    if (!f) return NULL;
    hid_t fapl = file_access();
    f->fid = H5Fopen(path, H5F_ACC_RDONLY, fapl >= 0 ? fapl : H5P_DEFAULT);
    /* The reason before H5Pclose() clears HDF5's error stack. */
    const char *why = f->fid < 0 ? h5_reason() : NULL;
    if (fapl >= 0) H5Pclose(fapl);
    if (f->fid < 0) {
        caimg_error(CAIMG_EFORMAT, "%s: cannot open HDF5 file: %s", path, why);
        h5_free(f);
        return NULL;
    }
    if (is_caimg) *is_caimg = H5Aexists(f->fid, "caimg_format") > 0;
    return f;
}

caimg_h5 *caimg_h5_open(const char *path)
{
    int ok = 0;
    caimg_h5 *f = caimg_h5_open_any(path, &ok);
    if (f && !ok) {
        caimg_error(CAIMG_EFORMAT,
                    "%s: an HDF5 file but not a caimg file (no caimg_format attribute; see caimg-h5(5))",
                    path);
        caimg_h5_close(f);
        return NULL;
    }
    return f;
}

caimg_h5 *caimg_h5_create(const char *path, const char *stage, const char *cmdline)
{
    static unsigned counter;
    caimg_init();
    if (!path || !*path) {
        caimg_error(CAIMG_EINVAL, "no output file given (use -o FILE)");
        return NULL;
    }
    if (caimg_output_ok(path)) return NULL;
    caimg_h5 *f = h5_alloc(path);
    if (!f) return NULL;
    size_t n = strlen(path) + 64;
    f->tmppath = caimg_malloc(n, 1, "a file name");
    f->stage = caimg_strdup(stage ? stage : "");
    f->cmdline = caimg_strdup(cmdline ? cmdline : "");
    if (!f->tmppath || !f->stage || !f->cmdline) {
        h5_free(f);
        return NULL;
    }
    /* The temporary lives in the output's directory so that rename() is
     * atomic; pid and a counter keep parallel pipelines apart. */
    snprintf(f->tmppath, n, "%s.tmp.%ld.%u", path, (long)getpid(), counter++);
    caimg_temp_register(f->tmppath);
    hid_t fapl = file_access();
    /* The 1.8 format keeps files readable by older h5py/MATLAB. */
    H5Pset_libver_bounds(fapl, H5F_LIBVER_EARLIEST, H5F_LIBVER_LATEST);
    /* Closing the file closes whatever a failing caller left open in it:
     * otherwise HDF5 would keep the abandoned file open (and the space of
     * its removed temporary in use) until the program exits. */
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    f->fid = H5Fcreate(f->tmppath, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    /* The reason before H5Pclose() clears HDF5's error stack. */
    const char *why = f->fid < 0 ? h5_reason() : NULL;
    H5Pclose(fapl);
    if (f->fid < 0) {
        caimg_error(CAIMG_EIO, "%s: cannot create: %s", path, why);
        /* HDF5 may have created the file before failing to write its
         * superblock (a full disk); the name is ours alone. */
        unlink(f->tmppath);
        h5_free(f);
        return NULL;
    }
    if (caimg_h5_set_attr_string(f, "/", "caimg_format", CAIMG_H5_FORMAT)
        || caimg_h5_set_attr_long(f, "/", "caimg_format_version", CAIMG_H5_FORMAT_VERSION)
        || caimg_h5_set_attr_string(f, "/", "caimg_stage", f->stage)
        || caimg_h5_set_attr_string(f, "/", "caimg_version", caimg_version())) {
        caimg_h5_close(f);
        return NULL;
    }
    return f;
}

hid_t caimg_h5_hid(const caimg_h5 *f) { return f ? f->fid : H5I_INVALID_HID; }
const char *caimg_h5_path(const caimg_h5 *f) { return f ? f->path : NULL; }

void caimg_h5_close(caimg_h5 *f)
{
    if (!f) return;
    if (f->fid >= 0) H5Fclose(f->fid);
    if (f->tmppath) unlink(f->tmppath);
    h5_free(f);
}

/* ---- provenance ----------------------------------------------------------- */

/* Whether a value must be quoted to read back exactly from a config file
 * (see load_config() in src/cmd/cmdutil.c): unquoted, a value loses the
 * whitespace around it and ends at a '#' that follows whitespace (the
 * " = " before it counts), and one in double quotes is unquoted. */
static int needs_quotes(const char *v)
{
    size_t n = strlen(v);
    if (n == 0) return 0;
    if (v[0] == '#' || v[0] == '"' || isspace((unsigned char)v[0])
        || isspace((unsigned char)v[n - 1]))
        return 1;
    for (size_t i = 1; i < n; i++)
        if (v[i] == '#' && isspace((unsigned char)v[i - 1])) return 1;
    return 0;
}

/* Append "prefix key = value" to the parameters. */
static int add_param(caimg_h5 *f, const char *prefix, const char *key, const char *fmt,
                     va_list ap)
{
    /* Sized to fit: a value may be a path of any length, and a truncated
     * one would replay as another file. */
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    if (n < 0) return caimg_error(CAIMG_EFAIL, "cannot format parameter %s", key);
    char *val = malloc((size_t)n + 1);
    if (!val) return caimg_error(CAIMG_ENOMEM, "out of memory recording parameters");
    vsnprintf(val, (size_t)n + 1, fmt, ap);
    /* A config line ends at a newline: an architecture typed over several
     * lines is recorded on one (whitespace is whitespace to its parser). */
    for (char *q = val; *q; q++)
        if (*q == '\n' || *q == '\r') *q = ' ';
    /* A value the config reader would cut or trim is written in double
     * quotes, '"' and '\' escaped, so the record replays exactly; others
     * (nearly all) as they are, to stay readable. */
    int quote = needs_quotes(val);
    size_t vlen = (size_t)n;
    if (quote) {
        vlen = 2;
        for (const char *q = val; *q; q++) vlen += 1 + (*q == '"' || *q == '\\');
    }
    size_t add = strlen(prefix) + strlen(key) + vlen + 5;
    char *p = realloc(f->params, f->params_len + add + 1);
    if (!p) {
        free(val);
        return caimg_error(CAIMG_ENOMEM, "out of memory recording parameters");
    }
    f->params = p;
    p += f->params_len;
    p += sprintf(p, "%s%s = ", prefix, key);
    if (quote) {
        *p++ = '"';
        for (const char *q = val; *q; q++) {
            if (*q == '"' || *q == '\\') *p++ = '\\';
            *p++ = *q;
        }
        *p++ = '"';
    } else {
        memcpy(p, val, vlen);
        p += vlen;
    }
    *p++ = '\n';
    *p = '\0';
    f->params_len = (size_t)(p - f->params);
    free(val);
    return 0;
}

int caimg_h5_param(caimg_h5 *f, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = add_param(f, "", key, fmt, ap);
    va_end(ap);
    return rc;
}

int caimg_h5_param_derived(caimg_h5 *f, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = add_param(f, "# ", key, fmt, ap);
    va_end(ap);
    return rc;
}

int caimg_h5_param_double(caimg_h5 *f, const char *key, double v)
{
    char buf[40];
    /* The shortest of 6..17 significant digits that reads back exactly
     * (17 always does for a finite double); 0.1 stays "0.1". */
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v || !isfinite(v)) break;
    }
    return caimg_h5_param(f, key, "%s", buf);
}

/* ---- outputs that would destroy an input --------------------------------- */

/* The file an external link names, looked for from the file `parent` where
 * HDF5 looks for it (H5Pset_elink_prefix aside, which caimg does not use):
 * an absolute name as given, else its last component as a relative name;
 * the directories in HDF5_EXT_PREFIX; the directory of `parent`; the
 * working directory.  Returns 0 with the path in buf and its stat in st,
 * or -1 if there is no such file (the link dangles). */
static int elink_file(const char *parent, const char *name, char *buf, size_t n,
                      struct stat *st)
{
    if (name[0] == '/') {
        snprintf(buf, n, "%s", name);
        if (stat(buf, st) == 0) return 0;
        name = strrchr(name, '/') + 1;
    }
    for (const char *p = getenv("HDF5_EXT_PREFIX"); p && *p;) {
        size_t len = strcspn(p, ":");
        snprintf(buf, n, "%.*s/%s", (int)len, p, name);
        if (len && stat(buf, st) == 0) return 0;
        p += len + (p[len] == ':');
    }
    const char *slash = strrchr(parent, '/');
    if (slash) {
        snprintf(buf, n, "%.*s/%s", (int)(slash - parent), parent, name);
        if (stat(buf, st) == 0) return 0;
    }
    snprintf(buf, n, "%s", name);
    return stat(buf, st) == 0 ? 0 : -1;
}

struct elink_walk {
    struct stat out;        /* the output */
    const char *file;       /* the file whose links are being walked */
    int depth;
    dev_t *dev;             /* files walked already */
    ino_t *ino;
    size_t nseen;
    char hit[PATH_MAX];     /* the linking file, once a link leads to out */
    int nomem;
};

static int walk_links(struct elink_walk *w, const char *file);

static herr_t check_link(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    struct elink_walk *w = data;
    if (info->type != H5L_TYPE_EXTERNAL) return 0;
    size_t size = info->u.val_size;
    char *val = malloc(size ? size : 1);
    const char *fname = NULL, *obj = NULL;
    unsigned flags;
    if (!val) {
        w->nomem = 1;
        return -1;
    }
    int stop = 0;
    char target[PATH_MAX];
    struct stat st;
    if (H5Lget_val(g, name, val, size, H5P_DEFAULT) >= 0 &&
        H5Lunpack_elink_val(val, size, &flags, &fname, &obj) >= 0 &&
        elink_file(w->file, fname, target, sizeof target, &st) == 0) {
        if (st.st_dev == w->out.st_dev && st.st_ino == w->out.st_ino) {
            snprintf(w->hit, sizeof w->hit, "%s", w->file);
            stop = 1;
        } else {
            /* The target may link further (a dF/F file's /movie leads
             * through the roi file to the mc file). */
            stop = walk_links(w, target);
        }
    }
    free(val);
    return stop;
}

/* Walk the external links at the root of `file` and, recursively, of the
 * files they lead to (caimg makes links only there).  Returns 1 once one
 * leads to the output, 0 if none does, -1 if out of memory. */
static int walk_links(struct elink_walk *w, const char *file)
{
    struct stat st;
    if (stat(file, &st) != 0 || w->depth >= 32) return 0;
    for (size_t i = 0; i < w->nseen; i++)
        if (w->dev[i] == st.st_dev && w->ino[i] == st.st_ino) return 0;
    dev_t *dev = realloc(w->dev, (w->nseen + 1) * sizeof *dev);
    if (dev) w->dev = dev;
    ino_t *ino = dev ? realloc(w->ino, (w->nseen + 1) * sizeof *ino) : NULL;
    if (ino) w->ino = ino;
    if (!dev || !ino) return -1;
    w->dev[w->nseen] = st.st_dev;
    w->ino[w->nseen++] = st.st_ino;
    if (H5Fis_hdf5(file) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return 0;
    }
    hid_t fid = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fid < 0) {
        H5Eclear2(H5E_DEFAULT);
        return 0;
    }
    const char *up = w->file;
    w->file = file;
    w->depth++;
    herr_t r = H5Literate(fid, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, check_link, w);
    w->depth--;
    w->file = up;
    H5Fclose(fid);
    H5Eclear2(H5E_DEFAULT);
    return w->nomem ? -1 : r > 0 ? 1 : 0;
}

int caimg_h5_check_output(const char *output, const char *input)
{
    caimg_init();
    struct elink_walk w;
    memset(&w, 0, sizeof w);
    /* A new output cannot be anyone's input. */
    if (!output || strcmp(output, "-") == 0 || stat(output, &w.out) != 0) return 0;
    /* The same file, however named (./, symbolic or hard links): the stage
     * contract says inputs are never modified. */
    struct stat st;
    if (stat(input, &st) == 0 && st.st_dev == w.out.st_dev && st.st_ino == w.out.st_ino)
        return caimg_error(CAIMG_EINVAL, "%s: output would overwrite an input", output);
    /* A file that the input reaches through its external links is as much
     * an input: a roi file's /movie is the mc file's. */
    int rc = walk_links(&w, input);
    free(w.dev);
    free(w.ino);
    if (rc < 0) return caimg_error(CAIMG_ENOMEM, "out of memory following the links of %s", input);
    if (rc > 0)
        return caimg_error(CAIMG_EINVAL, "%s: output would overwrite an input (%s links to it)",
                           output, w.hit);
    return 0;
}

int caimg_h5_add_input(caimg_h5 *f, const char *path, int link)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return caimg_error(CAIMG_ENOENT, "%s: %s", path, strerror(errno));
    int rc = caimg_h5_check_output(f->path, path);
    if (rc) return rc;
    h5_input *in = realloc(f->inputs, (f->ninputs + 1) * sizeof *in);
    if (!in) return caimg_error(CAIMG_ENOMEM, "out of memory recording inputs");
    f->inputs = in;
    in = &f->inputs[f->ninputs];
    memset(in, 0, sizeof *in);
    in->path = caimg_strdup(path);
    if (!in->path) return CAIMG_ENOMEM;
    in->size = (long long)st.st_size;
    in->link = link;
    if (H5Fis_hdf5(path) > 0) {
        hid_t fid = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (fid >= 0) {
            in->is_caimg = H5Aexists(fid, "caimg_format") > 0;
            H5Fclose(fid);
        }
    }
    H5Eclear2(H5E_DEFAULT);
    f->ninputs++;
    return 0;
}

/* The path of `target` relative to the directory holding `from`, so that a
 * directory of results can be moved or copied as a whole and its links
 * still resolve (HDF5 looks for a relative external file name next to the
 * file holding the link). */
static char *relative_path(const char *target, const char *from)
{
    char rt[PATH_MAX], rf[PATH_MAX], fdir[PATH_MAX];
    snprintf(fdir, sizeof fdir, "%s", from);
    char *slash = strrchr(fdir, '/');
    if (slash) *slash = '\0';
    else snprintf(fdir, sizeof fdir, ".");
    if (!realpath(target, rt) || !realpath(fdir, rf)) return caimg_strdup(target);
    /* Common directory prefix. */
    size_t i = 0, last = 0;
    while (rt[i] && rf[i] && rt[i] == rf[i]) {
        if (rt[i] == '/') last = i;
        i++;
    }
    if (rf[i] == '\0' && rt[i] == '/') last = i;
    char out[2 * PATH_MAX];
    size_t o = 0;
    /* One "../" per directory of `rf` below the common prefix. */
    for (const char *p = rf + last; *p; p++)
        if (*p == '/' && p[1]) o += (size_t)snprintf(out + o, sizeof out - o, "../");
    if (rf[last] == '/' && rf[last + 1] == '\0') o = 0;
    snprintf(out + o, sizeof out - o, "%s", rt + last + 1);
    return caimg_strdup(out);
}

static int copy_provenance(caimg_h5 *f, hid_t src)
{
    if (H5Lexists(src, "provenance", H5P_DEFAULT) <= 0) return 0;
    hid_t g = H5Gopen2(src, "provenance", H5P_DEFAULT);
    if (g < 0) return 0;
    int rc = caimg_h5_mkgroup(f, "/provenance");
    H5G_info_t gi;
    H5Gget_info(g, &gi);
    for (hsize_t i = 0; !rc && i < gi.nlinks; i++) {
        char name[256];
        if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name,
                               sizeof name, H5P_DEFAULT) < 0) continue;
        char dst[300];
        snprintf(dst, sizeof dst, "provenance/%s", name);
        if (H5Lexists(f->fid, dst, H5P_DEFAULT) > 0) continue;
        if (H5Ocopy(g, name, f->fid, dst, H5P_DEFAULT, H5P_DEFAULT) < 0)
            rc = write_error(f, "cannot copy provenance: %s", h5_reason());
    }
    H5Gclose(g);
    return rc;
}

struct link_ctx { caimg_h5 *f; const char *rel; int rc; };

static herr_t link_one(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    struct link_ctx *c = data;
    (void)g; (void)info;
    if (strcmp(name, "provenance") == 0) return 0;
    if (H5Lexists(c->f->fid, name, H5P_DEFAULT) > 0) return 0;
    char obj[300];
    snprintf(obj, sizeof obj, "/%s", name);
    if (H5Lcreate_external(c->rel, obj, c->f->fid, name, H5P_DEFAULT, H5P_DEFAULT) < 0) {
        c->rc = write_error(c->f, "cannot link %s from %s: %s", obj, c->rel, h5_reason());
        return -1;
    }
    return 0;
}

static int inherit_inputs(caimg_h5 *f)
{
    for (size_t i = 0; i < f->ninputs; i++) {
        h5_input *in = &f->inputs[i];
        if (!in->is_caimg) continue;
        hid_t src = H5Fopen(in->path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (src < 0)
            return caimg_error(CAIMG_EIO, "%s: cannot reopen: %s", in->path, h5_reason());
        int rc = copy_provenance(f, src);
        if (!rc && in->link) {
            char *rel = relative_path(in->path, f->path);
            struct link_ctx c = {f, rel, 0};
            if (!rel) rc = CAIMG_ENOMEM;
            else {
                H5Literate(src, H5_INDEX_NAME, H5_ITER_INC, NULL, link_one, &c);
                rc = c.rc;
            }
            free(rel);
        }
        H5Fclose(src);
        if (rc) return rc;
    }
    return 0;
}

/* Records are named NN_stage so that they sort in pipeline order. */
static int next_record_index(caimg_h5 *f)
{
    int next = 0;
    char **names;
    size_t n;
    if (caimg_h5_list(f, "/provenance", &names, &n)) {
        caimg_clear_error();
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        int k = atoi(names[i]);
        if (k + 1 > next) next = k + 1;
    }
    caimg_h5_list_free(names, n);
    return next;
}

static int write_record(caimg_h5 *f)
{
    char grp[300], date[64];
    snprintf(grp, sizeof grp, "/provenance/%02d_%s", next_record_index(f), f->stage);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);

    size_t cap = 256;
    for (size_t i = 0; i < f->ninputs; i++) cap += strlen(f->inputs[i].path) + 32;
    char *inputs = caimg_malloc(cap, 1, "the input list");
    if (!inputs) return CAIMG_ENOMEM;
    size_t o = 0;
    inputs[0] = '\0';
    for (size_t i = 0; i < f->ninputs; i++)
        o += (size_t)snprintf(inputs + o, cap - o, "%s\t%lld\n", f->inputs[i].path,
                              f->inputs[i].size);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = '\0';
    char program[64];
    snprintf(program, sizeof program, "caimg %s", caimg_version());
    int rc = caimg_h5_mkgroup(f, grp);
    if (!rc) rc = caimg_h5_set_attr_string(f, grp, "stage", f->stage);
    if (!rc) rc = caimg_h5_set_attr_string(f, grp, "program", program);
    if (!rc) rc = caimg_h5_set_attr_string(f, grp, "command_line", f->cmdline);
    if (!rc) rc = caimg_h5_set_attr_string(f, grp, "date", date);
    if (!rc) rc = caimg_h5_set_attr_string(f, grp, "working_directory", cwd);
    if (!rc) rc = caimg_h5_set_attr_string(f, grp, "parameters", f->params ? f->params : "");
    if (!rc) rc = caimg_h5_set_attr_string(f, grp, "inputs", inputs);
    if (!rc) rc = caimg_h5_set_attr_string(f, grp, "libraries", caimg_build_info());
    free(inputs);
    return rc;
}

int caimg_h5_commit(caimg_h5 *f)
{
    if (!f) return caimg_error(CAIMG_EINVAL, "no file to commit");
    if (!f->tmppath) {
        caimg_h5_close(f);
        return caimg_error(CAIMG_EINVAL, "file was opened for reading");
    }
    int rc = inherit_inputs(f);
    if (!rc) rc = write_record(f);
    if (!rc && H5Fflush(f->fid, H5F_SCOPE_GLOBAL) < 0)
        rc = write_error(f, "cannot write: %s", h5_reason());
    if (H5Fclose(f->fid) < 0 && !rc)
        rc = write_error(f, "cannot close: %s", h5_reason());
    f->fid = H5I_INVALID_HID;
    if (!rc && rename(f->tmppath, f->path) != 0)
        rc = caimg_error(CAIMG_EIO, "%s: cannot rename from %s: %s", f->path,
                         f->tmppath, strerror(errno));
    if (!rc) {
        caimg_temp_unregister(f->tmppath);
        free(f->tmppath);
        f->tmppath = NULL;
    }
    caimg_h5_close(f);
    return rc;
}

/* ---- objects ------------------------------------------------------------- */

int caimg_h5_exists(caimg_h5 *f, const char *name)
{
    /* Check each component so that a missing parent is not an error. */
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", name);
    if (strcmp(buf, "/") == 0) return 1;
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            htri_t e = H5Lexists(f->fid, buf, H5P_DEFAULT);
            if (e > 0) e = H5Oexists_by_name(f->fid, buf, H5P_DEFAULT);
            if (e <= 0) {
                H5Eclear2(H5E_DEFAULT);
                return 0;
            }
            if (c == '\0') break;
            *p = c;
        }
    }
    return 1;
}

void caimg_h5_list_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++) free(names[i]);
    free(names);
}

int caimg_h5_list(caimg_h5 *f, const char *name, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    if (!caimg_h5_exists(f, name))
        return caimg_error(CAIMG_ENOENT, "%s: no group %s", f->path, name);
    hid_t g = H5Gopen2(f->fid, name, H5P_DEFAULT);
    H5G_info_t gi;
    if (g < 0 || H5Gget_info(g, &gi) < 0) {
        if (g >= 0) H5Gclose(g);
        return caimg_error(CAIMG_EFORMAT, "%s: %s is not a group: %s", f->path, name,
                           h5_reason());
    }
    int rc = 0;
    char **v = caimg_calloc(gi.nlinks + 1, sizeof *v, "a list of names");
    if (!v) rc = CAIMG_ENOMEM;
    for (hsize_t i = 0; !rc && i < gi.nlinks; i++) {
        ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, NULL, 0,
                                         H5P_DEFAULT);
        if (len < 0) continue;
        v[*n] = caimg_malloc((size_t)len + 1, 1, "a name");
        if (!v[*n]) { rc = CAIMG_ENOMEM; break; }
        H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, v[*n], (size_t)len + 1,
                           H5P_DEFAULT);
        (*n)++;
    }
    H5Gclose(g);
    if (rc) {
        caimg_h5_list_free(v, *n);
        *n = 0;
        return rc;
    }
    *names = v;
    return 0;
}

int caimg_h5_mkgroup(caimg_h5 *f, const char *name)
{
    if (caimg_h5_exists(f, name)) return 0;
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t g = H5Gcreate2(f->fid, name, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) {
        int rc = write_error(f, "cannot create group %s: %s", name, h5_reason());
        H5Pclose(lcpl);
        return rc;
    }
    H5Pclose(lcpl);
    H5Gclose(g);
    return 0;
}

/* Open a dataset; on failure sets the message and *status. */
static hid_t open_dataset(caimg_h5 *f, const char *name, int *status)
{
    if (!caimg_h5_exists(f, name)) {
        *status = caimg_error(CAIMG_ENOENT, "%s: no dataset %s", f->path, name);
        return H5I_INVALID_HID;
    }
    hid_t d = H5Dopen2(f->fid, name, H5P_DEFAULT);
    if (d < 0)
        *status = caimg_error(CAIMG_EFORMAT, "%s: %s is not a readable dataset: %s",
                              f->path, name, h5_reason());
    return d;
}

int caimg_h5_dims(caimg_h5 *f, const char *name, int *rank, size_t *dims)
{
    int rc = 0;
    hid_t d = open_dataset(f, name, &rc);
    if (d < 0) return rc;
    hid_t sp = H5Dget_space(d);
    int r = H5Sget_simple_extent_ndims(sp);
    hsize_t hd[CAIMG_H5_MAXRANK];
    if (r < 0 || r > CAIMG_H5_MAXRANK)
        rc = caimg_error(CAIMG_EUNSUP, "%s: %s has unsupported rank %d", f->path, name, r);
    else {
        H5Sget_simple_extent_dims(sp, hd, NULL);
        *rank = r;
        for (int i = 0; i < r; i++) dims[i] = (size_t)hd[i];
    }
    H5Sclose(sp);
    H5Dclose(d);
    return rc;
}

caimg_dtype caimg_h5_dtype(caimg_h5 *f, const char *name)
{
    int rc;
    hid_t d = open_dataset(f, name, &rc);
    if (d < 0) return CAIMG_DT_NONE;
    hid_t t = H5Dget_type(d);
    caimg_dtype dt = dtype_of(t);
    H5Tclose(t);
    H5Dclose(d);
    return dt;
}

int caimg_h5_write(caimg_h5 *f, const char *name, caimg_dtype dt, int rank,
                   const size_t *dims, const void *data)
{
    if (rank < 0 || rank > CAIMG_H5_MAXRANK || mem_type(dt) < 0)
        return caimg_error(CAIMG_EINVAL, "%s: bad shape or type for %s", f->path, name);
    hsize_t hd[CAIMG_H5_MAXRANK], chunk[CAIMG_H5_MAXRANK];
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        hd[i] = dims[i];
        chunk[i] = dims[i] ? dims[i] : 1;
        n *= dims[i];
    }
    hid_t sp = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, hd, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    /* Big arrays are chunked along the first axis (a frame or a trace per
     * chunk, the unit in which stages read them) and compressed. */
    if (rank > 0 && n * caimg_dtype_size(dt) > (1u << 20) && dims[0] > 1) {
        chunk[0] = 1;
        size_t rowbytes = n / dims[0] * caimg_dtype_size(dt);
        if (rowbytes < (256u << 10)) {
            size_t rows = (256u << 10) / (rowbytes ? rowbytes : 1);
            chunk[0] = rows < dims[0] ? rows : dims[0];
        }
        H5Pset_chunk(dcpl, rank, chunk);
        H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, 4);
    }
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    int rc = 0;
    hid_t d = H5Dcreate2(f->fid, name, file_type(dt), sp, lcpl, dcpl, H5P_DEFAULT);
    if (d < 0)
        rc = write_error(f, "cannot create %s: %s", name, h5_reason());
    else if (n && H5Dwrite(d, mem_type(dt), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        rc = write_error(f, "cannot write %s: %s", name, h5_reason());
    /* Closing flushes the chunk cache: on a full disk, this is where the
     * write of a compressed array fails. */
    if (d >= 0 && H5Dclose(d) < 0 && !rc)
        rc = write_error(f, "cannot write %s: %s", name, h5_reason());
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return rc;
}

int caimg_h5_read(caimg_h5 *f, const char *name, caimg_dtype dt, int expect_rank,
                  int *rank, size_t *dims, void **data)
{
    int r;
    size_t d[CAIMG_H5_MAXRANK];
    *data = NULL;
    int rc = caimg_h5_dims(f, name, &r, d);
    if (rc) return rc;
    if (expect_rank > 0 && r != expect_rank)
        return caimg_error(CAIMG_EFORMAT, "%s: %s has rank %d, expected %d", f->path,
                           name, r, expect_rank);
    if (caimg_h5_dtype(f, name) == CAIMG_DT_NONE)
        return caimg_error(CAIMG_EFORMAT, "%s: %s is not a numeric dataset", f->path, name);
    size_t n = 1;
    for (int i = 0; i < r; i++) n = caimg_mul(n, d[i]);
    void *buf = caimg_malloc(n, caimg_dtype_size(dt), name);
    if (!buf) return CAIMG_ENOMEM;
    hid_t ds = H5Dopen2(f->fid, name, H5P_DEFAULT);
    if (n && H5Dread(ds, mem_type(dt), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        rc = caimg_error(CAIMG_EFORMAT, "%s: cannot read %s: %s", f->path, name, h5_reason());
        free(buf);
        buf = NULL;
    }
    H5Dclose(ds);
    if (!rc) {
        if (rank) *rank = r;
        if (dims) memcpy(dims, d, (size_t)r * sizeof *d);
        *data = buf;
    }
    return rc;
}

/* A dataset access list without a chunk cache.  Rows are read and written
 * once each, in order, so a cache gains nothing for unfiltered chunks, and
 * bypassing it saves a copy of every chunk through it (HDF5 then moves the
 * data between the file and the caller's buffer directly). */
static hid_t no_chunk_cache(void)
{
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    if (dapl >= 0) H5Pset_chunk_cache(dapl, 0, 0, H5D_CHUNK_CACHE_W0_DEFAULT);
    return dapl;
}

/* Reopen an unfiltered chunked dataset without its chunk cache (filtered
 * chunks keep it: they must be decoded whole anyway).  Returns d itself if
 * nothing changes or the reopening fails. */
static hid_t reopen_uncached(caimg_h5 *f, const char *name, hid_t d)
{
    hid_t dcpl = H5Dget_create_plist(d);
    int plain = dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_nfilters(dcpl) == 0;
    if (dcpl >= 0) H5Pclose(dcpl);
    if (!plain) return d;
    hid_t dapl = no_chunk_cache();
    hid_t e = dapl >= 0 ? H5Dopen2(f->fid, name, dapl) : H5I_INVALID_HID;
    if (dapl >= 0) H5Pclose(dapl);
    if (e < 0) return d;
    H5Dclose(d);
    return e;
}

/* Whether every row of d is one unfiltered chunk stored exactly as dt lies
 * in memory (the layout caimg-h5(5) gives movies).  Such rows move between
 * the file and the caller's buffer directly, a chunk at a time
 * (H5Dread_chunk, H5Dwrite_chunk): HDF5's selection machinery and its copy of
 * every row are skipped, which is most of the I/O thread's time in mc. */
static int rows_are_chunks(hid_t d, caimg_dtype dt, int rank, const hsize_t *dims)
{
    hid_t mt = mem_type(dt);
    hid_t dcpl = H5Dget_create_plist(d);
    if (dcpl < 0 || mt < 0) {
        if (dcpl >= 0) H5Pclose(dcpl);
        return 0;
    }
    hsize_t ch[CAIMG_H5_MAXRANK];
    int ok = H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_nfilters(dcpl) == 0 &&
             H5Pget_chunk(dcpl, rank, ch) == rank && ch[0] == 1;
    for (int i = 1; ok && i < rank; i++) ok = ch[i] == dims[i];
    H5Pclose(dcpl);
    if (ok) {
        hid_t ft = H5Dget_type(d);
        ok = ft >= 0 && H5Tequal(ft, mt) > 0;
        if (ft >= 0) H5Tclose(ft);
    }
    return ok;
}

/* Read rows r0..r0+n-1 chunk by chunk into buf; 0 if any chunk is not there
 * whole (never written, or of another size), for the caller to fall back to
 * an ordinary read. */
static int read_chunks(hid_t d, size_t r0, size_t n, size_t rowbytes, void *buf)
{
    hsize_t off[CAIMG_H5_MAXRANK] = {0};
    for (size_t i = 0; i < n; i++) {
        off[0] = r0 + i;
        hsize_t sz = 0;
        uint32_t filt = 0;
        if (H5Dget_chunk_storage_size(d, off, &sz) < 0 || sz != rowbytes ||
            H5Dread_chunk(d, H5P_DEFAULT, off, &filt, (char *)buf + i * rowbytes) < 0 || filt) {
            H5Eclear2(H5E_DEFAULT);
            return 0;
        }
    }
    return 1;
}

int caimg_h5_read_rows(caimg_h5 *f, const char *name, caimg_dtype dt, size_t r0,
                       size_t n, void *buf)
{
    int rc = 0;
    hid_t d = open_dataset(f, name, &rc);
    if (d < 0) return rc;
    d = reopen_uncached(f, name, d);
    hid_t sp = H5Dget_space(d);
    int rank = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[CAIMG_H5_MAXRANK], start[CAIMG_H5_MAXRANK] = {0}, count[CAIMG_H5_MAXRANK];
    if (rank < 1 || rank > CAIMG_H5_MAXRANK) {
        rc = caimg_error(CAIMG_EFORMAT, "%s: %s is a scalar", f->path, name);
        goto out;
    }
    H5Sget_simple_extent_dims(sp, dims, NULL);
    if (r0 + n > dims[0]) {
        rc = caimg_error(CAIMG_EINVAL, "%s: rows %zu-%zu of %s requested, it has %llu",
                         f->path, r0, r0 + n, name, (unsigned long long)dims[0]);
        goto out;
    }
    if (n == 0) goto out;
    if (rows_are_chunks(d, dt, rank, dims)) {
        size_t rowbytes = caimg_dtype_size(dt);
        for (int i = 1; i < rank; i++) rowbytes *= (size_t)dims[i];
        if (read_chunks(d, r0, n, rowbytes, buf)) goto out;
    }
    for (int i = 0; i < rank; i++) count[i] = dims[i];
    start[0] = r0;
    count[0] = n;
    H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, count, NULL);
    hid_t ms = H5Screate_simple(rank, count, NULL);
    if (H5Dread(d, mem_type(dt), ms, sp, H5P_DEFAULT, buf) < 0)
        rc = caimg_error(CAIMG_EFORMAT, "%s: cannot read rows %zu-%zu of %s: %s", f->path,
                         r0, r0 + n - 1, name, h5_reason());
    H5Sclose(ms);
out:
    H5Sclose(sp);
    H5Dclose(d);
    return rc;
}

/* ---- rows in place -------------------------------------------------------- */

struct caimg_h5_map {
    void *base;
    size_t len;
};

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22   /* Linux 5.14 */
#endif

caimg_h5_map *caimg_h5_map_rows(caimg_h5 *f, const char *name, caimg_dtype dt, size_t n,
                                const size_t *rows, const void **ptrs)
{
    caimg_h5_map *map = NULL;
    hid_t d = H5Dopen2(f->fid, name, H5P_DEFAULT);
    if (d < 0) {
        H5Eclear2(H5E_DEFAULT);
        return NULL;
    }
    hid_t sp = H5Dget_space(d);
    int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    hsize_t dims[CAIMG_H5_MAXRANK];
    haddr_t *addr = caimg_malloc(n ? n : 1, sizeof *addr, "chunk addresses");
    int fd = -1;
    int ok = addr && rank >= 2 && rank <= CAIMG_H5_MAXRANK &&
             H5Sget_simple_extent_dims(sp, dims, NULL) == rank && rows_are_chunks(d, dt, rank, dims);
    size_t rowbytes = caimg_dtype_size(dt);
    for (int i = 1; ok && i < rank; i++) rowbytes *= (size_t)dims[i];
    hsize_t off[CAIMG_H5_MAXRANK] = {0};
    for (size_t i = 0; ok && i < n; i++) {
        unsigned mask = 0;
        hsize_t sz = 0;
        off[0] = rows[i];
        ok = rows[i] < dims[0] &&
             H5Dget_chunk_info_by_coord(d, off, &mask, &addr[i], &sz) >= 0 && mask == 0 &&
             addr[i] != HADDR_UNDEF && sz == rowbytes && addr[i] % caimg_dtype_size(dt) == 0;
    }
    /* The file as the operating system sees it: the chunks must lie inside
     * it (a damaged file must not make the mapping fault). */
    struct stat st;
    if (ok) {
        fd = open(f->path, O_RDONLY | O_CLOEXEC);
        ok = fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0;
    }
    for (size_t i = 0; ok && i < n; i++) ok = addr[i] + rowbytes <= (haddr_t)st.st_size;
    if (ok) {
        map = caimg_calloc(1, sizeof *map, "a file mapping");
        ok = map != NULL;
    }
    if (ok) {
        map->len = (size_t)st.st_size;
        map->base = mmap(NULL, map->len, PROT_READ, MAP_SHARED, fd, 0);
        ok = map->base != MAP_FAILED;
        if (!ok) map->base = NULL;
    }
    if (ok) {
        /* Map the rows' pages now, in one call each, rather than by a
         * fault every few pages when they are first read. */
        long pg = sysconf(_SC_PAGESIZE);
        size_t page = pg > 0 ? (size_t)pg : 4096;
        for (size_t i = 0; i < n; i++) {
            char *p = (char *)map->base + addr[i];
            ptrs[i] = p;
            char *a = (char *)map->base + ((size_t)addr[i] / page) * page;
            madvise(a, (size_t)(p + rowbytes - a), MADV_POPULATE_READ);
        }
    }
    if (!ok && map) {
        free(map);
        map = NULL;
    }
    if (fd >= 0) close(fd);
    free(addr);
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(d);
    H5Eclear2(H5E_DEFAULT);
    return map;
}

void caimg_h5_unmap(caimg_h5_map *map)
{
    if (!map) return;
    munmap(map->base, map->len);
    free(map);
}

/* ---- streams ------------------------------------------------------------- */

caimg_h5_stream *caimg_h5_stream_create(caimg_h5 *f, const char *name,
                                        caimg_dtype store, int rank,
                                        const size_t *inner, int deflate,
                                        size_t nrows_hint)
{
    if (rank < 1 || rank > CAIMG_H5_MAXRANK || file_type(store) < 0) {
        caimg_error(CAIMG_EINVAL, "%s: bad shape or type for %s", f->path, name);
        return NULL;
    }
    caimg_h5_stream *s = caimg_calloc(1, sizeof *s, "a dataset stream");
    if (!s) return NULL;
    s->f = f;
    s->store = store;
    s->rank = rank;
    s->row_elems = 1;
    s->name = caimg_strdup(name);
    hsize_t maxd[CAIMG_H5_MAXRANK], chunk[CAIMG_H5_MAXRANK];
    s->dims[0] = 0;
    maxd[0] = H5S_UNLIMITED;
    chunk[0] = 1;
    for (int i = 1; i < rank; i++) {
        s->dims[i] = maxd[i] = chunk[i] = inner[i - 1];
        s->row_elems *= inner[i - 1];
        if (inner[i - 1] == 0) {
            caimg_error(CAIMG_EINVAL, "%s: %s would have a zero dimension", f->path, name);
            free(s->name);
            free(s);
            return NULL;
        }
    }
    /* Small rows (a trace of a short recording, a frame under 64 KB) are
     * grouped so chunks are not absurdly small; a larger movie frame is
     * one chunk. */
    size_t rowbytes = s->row_elems * caimg_dtype_size(store);
    if (rowbytes < (64u << 10)) {
        size_t rows = (64u << 10) / rowbytes;
        if (nrows_hint && rows > nrows_hint) rows = nrows_hint;
        chunk[0] = rows ? rows : 1;
    }
    hid_t sp = H5Screate_simple(rank, s->dims, maxd);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, rank, chunk);
    if (deflate > 0) {
        H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, (unsigned)(deflate > 9 ? 9 : deflate));
    }
    /* Chunks of one row are always written whole: without fill values and
     * without a chunk cache, HDF5 writes them straight from the caller's
     * buffer instead of copying each through its cache. */
    hid_t dapl = H5P_DEFAULT;
    if (deflate <= 0 && chunk[0] == 1) {
        H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
        dapl = no_chunk_cache();
        if (dapl < 0) dapl = H5P_DEFAULT;
        s->direct = H5Tequal(file_type(store), mem_type(store)) > 0;
    }
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    s->dset = H5Dcreate2(f->fid, name, file_type(store), sp, lcpl, dcpl, dapl);
    /* Before the next HDF5 call clears the error stack. */
    const char *why = s->dset < 0 ? h5_reason() : NULL;
    if (dapl != H5P_DEFAULT) H5Pclose(dapl);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(sp);
    if (s->dset < 0 || !s->name) {
        if (s->dset >= 0) H5Dclose(s->dset);
        else write_error(f, "cannot create %s: %s", name, why);
        free(s->name);
        free(s);
        return NULL;
    }
    return s;
}

int caimg_h5_stream_write(caimg_h5_stream *s, const void *buf, caimg_dtype src,
                          size_t n, size_t *nclamped)
{
    if (n == 0) return 0;
    const void *wbuf = buf;
    hid_t mt = mem_type(src);
    /* Float data stored as integers goes through our converter, which
     * rounds (HDF5 truncates) and counts clamped samples. */
    if (src == CAIMG_DT_F32 && s->store != CAIMG_DT_F32) {
        if (s->scratch_rows < n) {
            void *p = realloc(s->scratch, caimg_mul(n * s->row_elems, caimg_dtype_size(s->store)));
            if (!p) return caimg_error(CAIMG_ENOMEM, "out of memory writing %s", s->name);
            s->scratch = p;
            s->scratch_rows = n;
        }
        size_t c = caimg_from_float(buf, s->scratch, s->store, n * s->row_elems);
        if (nclamped) *nclamped += c;
        wbuf = s->scratch;
        mt = mem_type(s->store);
    }
    hsize_t start[CAIMG_H5_MAXRANK] = {0}, count[CAIMG_H5_MAXRANK];
    start[0] = s->dims[0];
    s->dims[0] += n;
    if (H5Dset_extent(s->dset, s->dims) < 0)
        return write_error(s->f, "cannot extend %s: %s", s->name,
                           h5_reason());
    if (s->direct && mt == mem_type(s->store)) {
        /* Each row is a whole chunk, in the file's layout already. */
        size_t rowbytes = s->row_elems * caimg_dtype_size(s->store);
        hsize_t off[CAIMG_H5_MAXRANK] = {0};
        for (size_t i = 0; i < n; i++) {
            off[0] = start[0] + i;
            if (H5Dwrite_chunk(s->dset, H5P_DEFAULT, 0, off, rowbytes,
                               (const char *)wbuf + i * rowbytes) < 0)
                return write_error(s->f, "cannot write %s: %s", s->name,
                                   h5_reason());
        }
        return 0;
    }
    for (int i = 0; i < s->rank; i++) count[i] = s->dims[i];
    count[0] = n;
    hid_t fs = H5Dget_space(s->dset);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    hid_t ms = H5Screate_simple(s->rank, count, NULL);
    int rc = 0;
    /* The reason is taken before closing the spaces: every HDF5 call
     * starts by clearing the error stack. */
    if (H5Dwrite(s->dset, mt, ms, fs, H5P_DEFAULT, wbuf) < 0)
        rc = write_error(s->f, "cannot write %s: %s", s->name, h5_reason());
    H5Sclose(ms);
    H5Sclose(fs);
    return rc;
}

size_t caimg_h5_stream_rows(const caimg_h5_stream *s) { return s ? (size_t)s->dims[0] : 0; }

int caimg_h5_stream_close(caimg_h5_stream *s)
{
    if (!s) return 0;
    int rc = 0;
    if (H5Dclose(s->dset) < 0)
        rc = write_error(s->f, "cannot write %s: %s", s->name,
                         h5_reason());
    free(s->scratch);
    free(s->name);
    free(s);
    return rc;
}

int caimg_h5_stream_close_all(caimg_h5_stream **s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = caimg_h5_stream_close(s[i]);
        s[i] = NULL;
        if (rc) return rc;
    }
    return 0;
}

/* ---- attributes ---------------------------------------------------------- */

static int set_attr(caimg_h5 *f, const char *obj, const char *name, hid_t type,
                    hid_t space, const void *v)
{
    int rc = 0;
    if (H5Aexists_by_name(f->fid, obj, name, H5P_DEFAULT) > 0)
        H5Adelete_by_name(f->fid, obj, name, H5P_DEFAULT);
    hid_t a = H5Acreate_by_name(f->fid, obj, name, type, space, H5P_DEFAULT,
                                H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, type, v) < 0)
        rc = write_error(f, "cannot write attribute %s of %s: %s", name, obj, h5_reason());
    if (a >= 0) H5Aclose(a);
    return rc;
}

int caimg_h5_set_attr_double(caimg_h5 *f, const char *obj, const char *name, double v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    int rc = set_attr(f, obj, name, H5T_NATIVE_DOUBLE, sp, &v);
    H5Sclose(sp);
    return rc;
}

int caimg_h5_set_attr_doubles(caimg_h5 *f, const char *obj, const char *name,
                              const double *v, size_t n)
{
    hsize_t d = n;
    hid_t sp = H5Screate_simple(1, &d, NULL);
    int rc = set_attr(f, obj, name, H5T_NATIVE_DOUBLE, sp, v);
    H5Sclose(sp);
    return rc;
}

int caimg_h5_set_attr_long(caimg_h5 *f, const char *obj, const char *name, long v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    long long x = v;
    int rc = set_attr(f, obj, name, H5T_NATIVE_LLONG, sp, &x);
    H5Sclose(sp);
    return rc;
}

/* Strings are variable-length UTF-8, which h5py returns as str. */
int caimg_h5_set_attr_string(caimg_h5 *f, const char *obj, const char *name, const char *v)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    const char *p = v ? v : "";
    int rc = set_attr(f, obj, name, t, sp, &p);
    H5Sclose(sp);
    H5Tclose(t);
    return rc;
}

static hid_t open_attr(caimg_h5 *f, const char *obj, const char *name)
{
    if (!caimg_h5_exists(f, obj) || H5Aexists_by_name(f->fid, obj, name, H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        caimg_error(CAIMG_ENOENT, "%s: %s has no attribute %s", f->path, obj, name);
        return H5I_INVALID_HID;
    }
    return H5Aopen_by_name(f->fid, obj, name, H5P_DEFAULT, H5P_DEFAULT);
}

static int get_attr_num(caimg_h5 *f, const char *obj, const char *name, hid_t mt, void *v)
{
    hid_t a = open_attr(f, obj, name);
    if (a < 0) return CAIMG_ENOENT;
    hid_t t = H5Aget_type(a);
    hid_t sp = H5Aget_space(a);
    int rc = 0;
    H5T_class_t cls = H5Tget_class(t);
    if ((cls != H5T_INTEGER && cls != H5T_FLOAT) || H5Sget_simple_extent_npoints(sp) != 1)
        rc = caimg_error(CAIMG_EFORMAT, "%s: attribute %s of %s is not a number", f->path,
                         name, obj);
    else if (H5Aread(a, mt, v) < 0)
        rc = caimg_error(CAIMG_EFORMAT, "%s: cannot read attribute %s of %s", f->path,
                         name, obj);
    H5Sclose(sp);
    H5Tclose(t);
    H5Aclose(a);
    return rc;
}

int caimg_h5_get_attr_double(caimg_h5 *f, const char *obj, const char *name, double *v)
{
    return get_attr_num(f, obj, name, H5T_NATIVE_DOUBLE, v);
}

int caimg_h5_get_attr_long(caimg_h5 *f, const char *obj, const char *name, long *v)
{
    long long x;
    int rc = get_attr_num(f, obj, name, H5T_NATIVE_LLONG, &x);
    if (!rc) *v = (long)x;
    return rc;
}

int caimg_h5_get_attr_string(caimg_h5 *f, const char *obj, const char *name, char **v)
{
    hid_t a = open_attr(f, obj, name);
    if (a < 0) return CAIMG_ENOENT;
    hid_t t = H5Aget_type(a);
    int rc = 0;
    *v = NULL;
    if (H5Tget_class(t) != H5T_STRING) {
        rc = caimg_error(CAIMG_EFORMAT, "%s: attribute %s of %s is not a string", f->path,
                         name, obj);
    } else if (H5Tis_variable_str(t) > 0) {
        char *s = NULL;
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(t));
        if (H5Aread(a, mt, &s) < 0)
            rc = caimg_error(CAIMG_EFORMAT, "%s: cannot read attribute %s", f->path, name);
        else {
            *v = caimg_strdup(s ? s : "");
            if (s) H5free_memory(s);
            if (!*v) rc = CAIMG_ENOMEM;
        }
        H5Tclose(mt);
    } else {
        size_t n = H5Tget_size(t);
        char *s = caimg_calloc(n + 1, 1, "an attribute");
        if (!s) rc = CAIMG_ENOMEM;
        else if (H5Aread(a, t, s) < 0) {
            free(s);
            rc = caimg_error(CAIMG_EFORMAT, "%s: cannot read attribute %s", f->path, name);
        } else *v = s;
    }
    H5Tclose(t);
    H5Aclose(a);
    return rc;
}
