/* movie.c -- frames from a caimg HDF5 movie or from TIFF stacks.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "caimg/h5io.h"
#include "caimg/movie.h"
#include "caimg/tiffio.h"
#include "internal.h"

struct caimg_movie {
    int is_h5;
    /* HDF5 source */
    caimg_h5 *h5;
    char *dataset;
    /* TIFF sources: pages of all files form one sequence */
    caimg_tiff **tiffs;
    size_t ntiffs;
    size_t *first_page;      /* global index of each file's first page */
    size_t npages;           /* total pages */
    size_t channels, channel, planes, plane;   /* 1-based channel/plane */
    /* shape */
    size_t T, Y, X;
    caimg_dtype dt;
    double fs, pixel_um;
    void *scratch;           /* one chunk of raw samples for conversion */
    size_t scratch_frames;
    char *sources;
};

void caimg_movie_opts_init(caimg_movie_opts *o)
{
    memset(o, 0, sizeof *o);
}

size_t caimg_movie_frames(const caimg_movie *m) { return m->T; }
size_t caimg_movie_height(const caimg_movie *m) { return m->Y; }
size_t caimg_movie_width(const caimg_movie *m) { return m->X; }
size_t caimg_movie_channels(const caimg_movie *m) { return m->channels ? m->channels : 1; }
size_t caimg_movie_planes(const caimg_movie *m) { return m->planes ? m->planes : 1; }
caimg_dtype caimg_movie_dtype(const caimg_movie *m) { return m->dt; }
double caimg_movie_fs(const caimg_movie *m) { return m->fs; }
double caimg_movie_pixel_um(const caimg_movie *m) { return m->pixel_um; }
int caimg_movie_is_h5(const caimg_movie *m) { return m->is_h5; }
const char *caimg_movie_sources(const caimg_movie *m) { return m->sources; }

void caimg_movie_close(caimg_movie *m)
{
    if (!m) return;
    caimg_h5_close(m->h5);
    for (size_t i = 0; i < m->ntiffs; i++) caimg_tiff_close(m->tiffs[i]);
    free(m->tiffs);
    free(m->first_page);
    free(m->dataset);
    free(m->scratch);
    free(m->sources);
    free(m);
}

static int join_sources(caimg_movie *m, const char *const *paths, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++) len += strlen(paths[i]) + 2;
    m->sources = caimg_malloc(len, 1, "the source list");
    if (!m->sources) return CAIMG_ENOMEM;
    m->sources[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i) strcat(m->sources, ", ");
        strcat(m->sources, paths[i]);
    }
    return 0;
}

static int open_h5(caimg_movie *m, const char *path, const caimg_movie_opts *o)
{
    int rank;
    size_t dims[CAIMG_H5_MAXRANK];
    const char *name = o->dataset ? o->dataset : "/movie";
    m->is_h5 = 1;
    m->h5 = caimg_h5_open_any(path, NULL);
    if (!m->h5) return CAIMG_EFORMAT;
    m->dataset = caimg_strdup(name);
    if (!m->dataset) return CAIMG_ENOMEM;
    int rc = caimg_h5_dims(m->h5, name, &rank, dims);
    if (rc) return rc;
    if (rank != 3)
        return caimg_error(CAIMG_EFORMAT, "%s: %s has rank %d, expected 3 ([T][Y][X])",
                           path, name, rank);
    m->T = dims[0];
    m->Y = dims[1];
    m->X = dims[2];
    m->dt = caimg_h5_dtype(m->h5, name);
    if (m->dt == CAIMG_DT_NONE)
        return caimg_error(CAIMG_EUNSUP, "%s: %s does not hold integer or float samples",
                           path, name);
    if (m->Y == 0 || m->X == 0)
        return caimg_error(CAIMG_EFORMAT, "%s: %s has empty frames (%zux%zu)", path, name,
                           m->Y, m->X);
    if (m->T == 0)
        return caimg_error(CAIMG_EFORMAT, "%s: %s has no frames", path, name);
    caimg_h5_get_attr_double(m->h5, name, "fs", &m->fs);
    caimg_h5_get_attr_double(m->h5, name, "pixel_um", &m->pixel_um);
    caimg_clear_error();
    return 0;
}

static int open_tiffs(caimg_movie *m, const char *const *paths, size_t n,
                      const caimg_movie_opts *o)
{
    m->tiffs = caimg_calloc(n, sizeof *m->tiffs, "TIFF handles");
    m->first_page = caimg_calloc(n + 1, sizeof *m->first_page, "page offsets");
    if (!m->tiffs || !m->first_page) return CAIMG_ENOMEM;
    const caimg_tiff_info *first = NULL;
    for (size_t i = 0; i < n; i++) {
        m->tiffs[i] = caimg_tiff_open(paths[i]);
        if (!m->tiffs[i]) return CAIMG_EFORMAT;
        m->ntiffs = i + 1;
        const caimg_tiff_info *ti = caimg_tiff_get_info(m->tiffs[i]);
        if (!first) first = ti;
        else if (ti->width != first->width || ti->height != first->height)
            return caimg_error(CAIMG_EFORMAT, "%s: pages are %zux%zu, but %s has %zux%zu",
                               paths[i], ti->width, ti->height, paths[0], first->width,
                               first->height);
        else if (ti->dtype != first->dtype)
            return caimg_error(CAIMG_EFORMAT, "%s: samples are %s, but %s has %s", paths[i],
                               caimg_dtype_name(ti->dtype), paths[0],
                               caimg_dtype_name(first->dtype));
        m->first_page[i] = m->npages;
        m->npages += ti->npages;
    }
    m->first_page[n] = m->npages;
    m->X = first->width;
    m->Y = first->height;
    m->dt = first->dtype;
    m->pixel_um = first->pixel_um_x;
    if (first->ij_finterval > 0) m->fs = 1.0 / first->ij_finterval;

    /* Interleaving: explicit options win, then ImageJ metadata. */
    m->channels = o->channels ? o->channels : (first->ij_channels ? first->ij_channels : 1);
    m->planes = o->planes ? o->planes : (first->ij_slices ? first->ij_slices : 1);
    m->channel = o->channel ? o->channel : 1;
    m->plane = o->plane ? o->plane : 1;
    /* A channel or plane the data lacks is a request to correct, not bad
     * data: CAIMG_EINVAL, which the command line reports as a usage error
     * (caimg(1), EXIT STATUS). */
    if (m->channel > m->channels)
        return caimg_error(CAIMG_EINVAL, "%s: channel %zu requested, the data has %zu",
                           paths[0], m->channel, m->channels);
    if (m->plane > m->planes)
        return caimg_error(CAIMG_EINVAL, "%s: plane %zu requested, the data has %zu",
                           paths[0], m->plane, m->planes);
    if (!o->channels && m->channels > 1 && !o->channel)
        caimg_warn("%s: %zu interleaved channels; reading channel 1 (use --channel)",
                   paths[0], m->channels);
    if (!o->planes && m->planes > 1 && !o->plane)
        caimg_warn("%s: %zu interleaved planes; reading plane 1 (use --plane)", paths[0],
                   m->planes);
    size_t cycle = m->channels * m->planes;
    m->T = m->npages / cycle;
    if (m->npages % cycle)
        caimg_warn("%s: %zu pages is not a multiple of %zu channels x %zu planes; "
                   "the last %zu pages (an incomplete volume) are ignored",
                   paths[n - 1], m->npages, m->channels, m->planes, m->npages % cycle);
    if (m->T == 0)
        return caimg_error(CAIMG_EFORMAT, "%s: no complete frame (%zu pages for %zu channels x %zu planes)",
                           paths[0], m->npages, m->channels, m->planes);
    return 0;
}

static int file_is_empty(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0;
}

caimg_movie *caimg_movie_open(const char *const *paths, size_t n,
                              const caimg_movie_opts *opts)
{
    caimg_movie_opts defaults;
    caimg_init();
    if (!opts) {
        caimg_movie_opts_init(&defaults);
        opts = &defaults;
    }
    if (n == 0) {
        caimg_error(CAIMG_EINVAL, "no input files");
        return NULL;
    }
    caimg_movie *m = caimg_calloc(1, sizeof *m, "a movie");
    if (!m) return NULL;
    int rc = join_sources(m, paths, n);
    int tiff = rc ? 0 : caimg_is_tiff(paths[0]);
    if (rc || tiff < 0) {
        caimg_movie_close(m);
        return NULL;
    }
    if (tiff) {
        for (size_t i = 1; i < n && !rc; i++) {
            int t = caimg_is_tiff(paths[i]);
            if (t == 0)
                rc = caimg_error(CAIMG_EFORMAT, "%s: not a TIFF file (%s is one; inputs "
                                 "must all be TIFF stacks)", paths[i], paths[0]);
            else if (t < 0) rc = t;
        }
        if (!rc) rc = open_tiffs(m, paths, n, opts);
    } else if (n > 1) {
        rc = caimg_error(CAIMG_EINVAL, "%s: several inputs can only be TIFF stacks", paths[0]);
    } else if (file_is_empty(paths[0])) {
        rc = caimg_error(CAIMG_EFORMAT, "%s: empty file", paths[0]);
    } else if (opts && (opts->channels || opts->channel || opts->planes || opts->plane)) {
        /* An HDF5 movie holds one channel and plane already; taking the
         * options as done would record a selection that was not made. */
        rc = caimg_error(CAIMG_EINVAL, "%s: channels and planes can only be chosen in TIFF "
                         "stacks (an HDF5 movie holds one of each)", paths[0]);
    } else {
        rc = open_h5(m, paths[0], opts);
        if (rc == CAIMG_EFORMAT && H5Fis_hdf5(paths[0]) <= 0) {
            H5Eclear2(H5E_DEFAULT);
            caimg_error(CAIMG_EFORMAT, "%s: neither a TIFF nor an HDF5 file", paths[0]);
        }
    }
    if (rc) {
        caimg_movie_close(m);
        return NULL;
    }
    return m;
}

caimg_movie *caimg_movie_open1(const char *path)
{
    return caimg_movie_open(&path, 1, NULL);
}

/* Read the TIFF page holding frame t into buf (native type). */
static int read_tiff_frame(caimg_movie *m, size_t t, void *buf)
{
    size_t g = (t * m->planes + (m->plane - 1)) * m->channels + (m->channel - 1);
    size_t f = 0;
    /* Files are few; a linear scan is cheaper than it looks. */
    while (f + 1 < m->ntiffs && g >= m->first_page[f + 1]) f++;
    return caimg_tiff_read_page(m->tiffs[f], g - m->first_page[f], buf);
}

int caimg_movie_read_raw(caimg_movie *m, size_t t0, size_t n, void *buf)
{
    if (t0 + n > m->T || t0 + n < t0)
        return caimg_error(CAIMG_EINVAL, "%s: frames %zu-%zu requested, the movie has %zu",
                           m->sources, t0, t0 + n, m->T);
    if (m->is_h5) return caimg_h5_read_rows(m->h5, m->dataset, m->dt, t0, n, buf);
    size_t fb = m->Y * m->X * caimg_dtype_size(m->dt);
    for (size_t i = 0; i < n; i++) {
        int rc = read_tiff_frame(m, t0 + i, (char *)buf + i * fb);
        if (rc) return rc;
    }
    return 0;
}

caimg_h5_map *caimg_movie_map_frames(caimg_movie *m, size_t n, const size_t *t,
                                     const void **ptrs)
{
    if (!m->is_h5) return NULL;
    return caimg_h5_map_rows(m->h5, m->dataset, m->dt, n, t, ptrs);
}

void caimg_movie_unmap(caimg_h5_map *map) { caimg_h5_unmap(map); }

int caimg_movie_read(caimg_movie *m, size_t t0, size_t n, float *buf)
{
    if (m->dt == CAIMG_DT_F32) return caimg_movie_read_raw(m, t0, n, buf);
    size_t per = m->Y * m->X;
    /* Convert in slices of at most 16 frames to keep the scratch small. */
    size_t step = n < 16 ? n : 16;
    if (m->scratch_frames < step) {
        void *p = realloc(m->scratch, caimg_mul(step * per, caimg_dtype_size(m->dt)));
        if (!p) return caimg_error(CAIMG_ENOMEM, "out of memory reading %s", m->sources);
        m->scratch = p;
        m->scratch_frames = step;
    }
    for (size_t i = 0; i < n; i += step) {
        size_t k = n - i < step ? n - i : step;
        int rc = caimg_movie_read_raw(m, t0 + i, k, m->scratch);
        if (rc) return rc;
        caimg_to_float(m->scratch, m->dt, buf + i * per, k * per);
    }
    return 0;
}
