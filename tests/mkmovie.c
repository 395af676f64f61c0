/* mkmovie.c -- copy a movie with some frames damaged, for the CLI tests of
 * caimg mc (not installed):
 *
 *   tests/mkmovie IN -o OUT.h5 [--frames N] [--dtype float32|uint16]
 *                 [--blank A-B] [--nan A-B] [--saturate A-B] [--nan-block A-B]
 *
 * Frames A..B (0-based, inclusive) become constant 100, NaN (float32 only)
 * or 65535; --nan-block puts a 10 x 10 square of NaN in their top left
 * corner instead (a few bad pixels).  --frames keeps only the first N
 * frames.
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

int main(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    long ba = -1, bb = -2, na = -1, nb = -2, sa = -1, sb = -2, qa = -1, qb = -2, nframes = 0;
    caimg_dtype dt = CAIMG_DT_NONE;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--blank") && i + 1 < argc) range(argv[++i], &ba, &bb);
        else if (!strcmp(argv[i], "--nan") && i + 1 < argc) range(argv[++i], &na, &nb);
        else if (!strcmp(argv[i], "--saturate") && i + 1 < argc) range(argv[++i], &sa, &sb);
        else if (!strcmp(argv[i], "--nan-block") && i + 1 < argc) range(argv[++i], &qa, &qb);
        else if (!strcmp(argv[i], "--frames") && i + 1 < argc) nframes = atol(argv[++i]);
        else if (!strcmp(argv[i], "--dtype") && i + 1 < argc) dt = caimg_dtype_from_name(argv[++i]);
        else in = argv[i];
    }
    if (!in || !out) {
        fprintf(stderr, "usage: mkmovie IN -o OUT.h5 [--frames N] [--dtype T] [--blank A-B] [--nan A-B] [--saturate A-B] [--nan-block A-B]\n");
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
    caimg_h5_stream *s = f ? caimg_h5_stream_create(f, "/movie", dt, 3, inner, 0, T) : NULL;
    float *buf = malloc(sizeof(float) * Y * X);
    int rc = s && buf ? 0 : 1;
    for (size_t t = 0; t < T && !rc; t++) {
        rc = caimg_movie_read(m, t, 1, buf);
        long lt = (long)t;
        float v = lt >= ba && lt <= bb ? 100.0f : lt >= na && lt <= nb ? NAN : lt >= sa && lt <= sb ? 65535.0f : -1;
        if (v != -1 || isnan(v))
            for (size_t i = 0; i < Y * X; i++) buf[i] = v;
        if (lt >= qa && lt <= qb)
            for (size_t y = 0; y < 10 && y < Y; y++)
                for (size_t x = 0; x < 10 && x < X; x++) buf[y * X + x] = NAN;
        if (!rc) rc = caimg_h5_stream_write(s, buf, CAIMG_DT_F32, 1, NULL);
    }
    if (!rc) rc = caimg_h5_stream_close(s);
    if (!rc) rc = caimg_h5_set_attr_double(f, "/movie", "fs", caimg_movie_fs(m));
    if (!rc) rc = caimg_h5_commit(f);
    else caimg_h5_close(f);
    caimg_movie_close(m);
    free(buf);
    if (rc) fprintf(stderr, "mkmovie: %s\n", caimg_errmsg());
    return rc ? 1 : 0;
}
