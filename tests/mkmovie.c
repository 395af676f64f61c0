/* mkmovie.c -- copy a movie with some frames damaged, for the CLI tests of
 * caimg mc (not installed):
 *
 *   tests/mkmovie IN -o OUT.h5 [--frames N] [--dtype float32|uint16]
 *                 [--blank A-B] [--nan A-B] [--saturate A-B] [--nan-block A-B]
 *                 [--frame-chunks]
 *
 * Frames A..B (0-based, inclusive) become constant 100, NaN (float32 only)
 * or 65535; --nan-block puts a 10 x 10 square of NaN in their top left
 * corner instead (a few bad pixels).  --frames keeps only the first N
 * frames.  --frame-chunks stores every frame as a chunk of its own, as
 * other writers (h5py, say) may store small frames that caimg would group
 * into 64 KB chunks: many chunks for few bytes, for the memory test of
 * caimg mc.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caimg/caimg.h"

static void range(const char *s, long *a, long *b)
{
    if (sscanf(s, "%ld-%ld", a, b) != 2) *a = *b = atol(s);
}

/* /movie [T][Y][X] of type dt (uint16 or float32), extensible like caimg's
 * movies, one chunk per frame. */
static hid_t frame_chunked(caimg_h5 *f, caimg_dtype dt, size_t T, size_t Y, size_t X)
{
    hsize_t dims[3] = {T, Y, X}, maxd[3] = {H5S_UNLIMITED, Y, X}, chunk[3] = {1, Y, X};
    hid_t type = dt == CAIMG_DT_U16 ? H5T_STD_U16LE : H5T_IEEE_F32LE;
    hid_t sp = H5Screate_simple(3, dims, maxd);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 3, chunk);
    hid_t d = H5Dcreate2(caimg_h5_hid(f), "/movie", type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return d;
}

/* Frame t of d from floats (HDF5 converts; the values are whole numbers
 * when the movie is of integers). */
static int write_frame(hid_t d, size_t t, size_t Y, size_t X, const float *buf)
{
    hsize_t start[3] = {t, 0, 0}, count[3] = {1, Y, X};
    hid_t fs = H5Dget_space(d);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    hid_t ms = H5Screate_simple(3, count, NULL);
    herr_t e = H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, buf);
    H5Sclose(ms);
    H5Sclose(fs);
    return e < 0;
}

int main(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    long ba = -1, bb = -2, na = -1, nb = -2, sa = -1, sb = -2, qa = -1, qb = -2, nframes = 0;
    caimg_dtype dt = CAIMG_DT_NONE;
    int frame_chunks = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--blank") && i + 1 < argc) range(argv[++i], &ba, &bb);
        else if (!strcmp(argv[i], "--nan") && i + 1 < argc) range(argv[++i], &na, &nb);
        else if (!strcmp(argv[i], "--saturate") && i + 1 < argc) range(argv[++i], &sa, &sb);
        else if (!strcmp(argv[i], "--nan-block") && i + 1 < argc) range(argv[++i], &qa, &qb);
        else if (!strcmp(argv[i], "--frames") && i + 1 < argc) nframes = atol(argv[++i]);
        else if (!strcmp(argv[i], "--dtype") && i + 1 < argc) dt = caimg_dtype_from_name(argv[++i]);
        else if (!strcmp(argv[i], "--frame-chunks")) frame_chunks = 1;
        else in = argv[i];
    }
    if (!in || !out) {
        fprintf(stderr, "usage: mkmovie IN -o OUT.h5 [--frames N] [--dtype T] [--blank A-B] [--nan A-B] [--saturate A-B] [--nan-block A-B] [--frame-chunks]\n");
        return 2;
    }
    caimg_init();
    caimg_movie *m = caimg_movie_open1(in);
    if (!m) {
        fprintf(stderr, "mkmovie: %s\n", caimg_errmsg());
        return 1;
    }
    size_t T = caimg_movie_frames(m), Y = caimg_movie_height(m), X = caimg_movie_width(m);
    if (nframes > 0 && (size_t)nframes < T) T = (size_t)nframes;
    if (dt == CAIMG_DT_NONE) dt = caimg_movie_dtype(m);
    caimg_h5 *f = caimg_h5_create(out, "mkmovie", "tests/mkmovie");
    size_t inner[2] = {Y, X};
    caimg_h5_stream *s = NULL;
    hid_t d = H5I_INVALID_HID;
    if (f && frame_chunks) d = frame_chunked(f, dt, T, Y, X);
    else if (f) s = caimg_h5_stream_create(f, "/movie", dt, 3, inner, 0, T);
    float *buf = malloc(sizeof(float) * Y * X);
    int rc = (s || d >= 0) && buf ? 0 : 1;
    for (size_t t = 0; t < T && !rc; t++) {
        rc = caimg_movie_read(m, t, 1, buf);
        long lt = (long)t;
        float v = lt >= ba && lt <= bb ? 100.0f : lt >= na && lt <= nb ? NAN : lt >= sa && lt <= sb ? 65535.0f : -1;
        if (v != -1 || isnan(v))
            for (size_t i = 0; i < Y * X; i++) buf[i] = v;
        if (lt >= qa && lt <= qb)
            for (size_t y = 0; y < 10 && y < Y; y++)
                for (size_t x = 0; x < 10 && x < X; x++) buf[y * X + x] = NAN;
        if (!rc && s) rc = caimg_h5_stream_write(s, buf, CAIMG_DT_F32, 1, NULL);
        if (!rc && d >= 0) rc = write_frame(d, t, Y, X, buf);
    }
    if (s && caimg_h5_stream_close(s)) rc = 1;
    if (d >= 0 && H5Dclose(d) < 0) rc = 1;
    if (!rc) rc = caimg_h5_set_attr_double(f, "/movie", "fs", caimg_movie_fs(m));
    if (!rc) rc = caimg_h5_commit(f);
    else caimg_h5_close(f);
    caimg_movie_close(m);
    free(buf);
    if (rc) fprintf(stderr, "mkmovie: %s\n", caimg_errmsg());
    return rc ? 1 : 0;
}
