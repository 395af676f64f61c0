/* check_tiffio.c -- TIFF reading and writing.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Files are generated in a temporary directory with libtiff directly (and,
 * for layouts libtiff does not write, byte by byte with rawtiff.h), so the
 * reader is checked against an independent writer, not just against our
 * own.  Round trips must be bit-exact: a conversion tool that changes a
 * single sample value is wrong.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>
#include <tiffio.h>

#include "caimg/caimg.h"
#include "rawtiff.h"

static char tmpdir[1024];

/* Path of a file in the temporary directory; each call gets its own buffer
 * from a small ring so that a test can hold several names. */
static const char *tpath(const char *fmt, ...)
{
    static char ring[8][1300];
    static int next;
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    char *buf = ring[next++ % 8];
    snprintf(buf, sizeof ring[0], "%s/%s", tmpdir, name);
    return buf;
}

static int nwarn;
static char lastwarn[1024];
static void count_warning(const char *msg, void *ctx)
{
    (void)ctx;
    nwarn++;
    snprintf(lastwarn, sizeof lastwarn, "%s", msg);
}

static int host_big(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 0;
}

static const caimg_dtype all_types[] = {
    CAIMG_DT_U8, CAIMG_DT_I8, CAIMG_DT_U16, CAIMG_DT_I16,
    CAIMG_DT_U32, CAIMG_DT_I32, CAIMG_DT_F32, CAIMG_DT_F64
};
#define NTYPES 8

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A test page: a ramp (which compressors shrink and PackBits turns into
 * runs) with full-range random bits on every fourth row (which they
 * cannot), and the type's extreme values in the first two samples. */
static void *make_page(caimg_dtype dt, size_t w, size_t h, size_t page)
{
    size_t ds = caimg_dtype_size(dt), n = w * h;
    unsigned char *buf = malloc(n * ds);
    ck_assert_ptr_nonnull(buf);
    uint64_t s = 0x9E3779B97F4A7C15ull ^ (page * 7919 + dt * 104729);
    for (size_t i = 0; i < n; i++) {
        size_t y = i / w, x = i % w;
        uint64_t r = rng_next(&s);
        int noisy = y % 4 == 3;
        int64_t ramp = (int64_t)(x * 3 + y * 5 + page * 7);
        switch (dt) {
        case CAIMG_DT_U8: ((uint8_t *)buf)[i] = noisy ? (uint8_t)r : (uint8_t)ramp; break;
        case CAIMG_DT_I8: ((int8_t *)buf)[i] = noisy ? (int8_t)r : (int8_t)(ramp - 100); break;
        case CAIMG_DT_U16: ((uint16_t *)buf)[i] = noisy ? (uint16_t)r : (uint16_t)(ramp * 131); break;
        case CAIMG_DT_I16: ((int16_t *)buf)[i] = noisy ? (int16_t)r : (int16_t)(ramp * 97 - 3000); break;
        case CAIMG_DT_U32: ((uint32_t *)buf)[i] = noisy ? (uint32_t)r : (uint32_t)(ramp * 100003); break;
        case CAIMG_DT_I32: ((int32_t *)buf)[i] = noisy ? (int32_t)r : (int32_t)(ramp * 100003 - 5000000); break;
        case CAIMG_DT_F32: {
            float f = (float)ramp * 0.37f - 50.0f;
            uint32_t bits = (uint32_t)r;
            if (noisy) memcpy(&f, &bits, 4);
            ((float *)buf)[i] = f;
            break;
        }
        case CAIMG_DT_F64: {
            double f = (double)ramp * 0.37 - 50.0;
            if (noisy) memcpy(&f, &r, 8);
            ((double *)buf)[i] = f;
            break;
        }
        default: break;
        }
    }
    switch (dt) {
    case CAIMG_DT_U8: ((uint8_t *)buf)[0] = 0; ((uint8_t *)buf)[1] = UINT8_MAX; break;
    case CAIMG_DT_I8: ((int8_t *)buf)[0] = INT8_MIN; ((int8_t *)buf)[1] = INT8_MAX; break;
    case CAIMG_DT_U16: ((uint16_t *)buf)[0] = 0; ((uint16_t *)buf)[1] = UINT16_MAX; break;
    case CAIMG_DT_I16: ((int16_t *)buf)[0] = INT16_MIN; ((int16_t *)buf)[1] = INT16_MAX; break;
    case CAIMG_DT_U32: ((uint32_t *)buf)[0] = 0; ((uint32_t *)buf)[1] = UINT32_MAX; break;
    case CAIMG_DT_I32: ((int32_t *)buf)[0] = INT32_MIN; ((int32_t *)buf)[1] = INT32_MAX; break;
    case CAIMG_DT_F32: ((float *)buf)[0] = -HUGE_VALF; ((float *)buf)[1] = 3.4e38f; break;
    case CAIMG_DT_F64: ((double *)buf)[0] = -1e308; ((double *)buf)[1] = HUGE_VAL; break;
    default: break;
    }
    return buf;
}

static int sample_format(caimg_dtype dt)
{
    if (caimg_dtype_is_float(dt)) return SAMPLEFORMAT_IEEEFP;
    if (dt == CAIMG_DT_I8 || dt == CAIMG_DT_I16 || dt == CAIMG_DT_I32) return SAMPLEFORMAT_INT;
    return SAMPLEFORMAT_UINT;
}

/* How a test file is laid out when written with libtiff. */
typedef struct {
    caimg_dtype dt;
    uint16_t comp;
    int pred;          /* horizontal (integers) or floating-point predictor */
    int tile;          /* 0 for strips of `rps` rows, else tile size */
    uint32_t rps;
    int big;           /* big-endian */
    int bigtiff;
    const char *desc;  /* ImageDescription of page 1, or NULL */
} gspec;

static void swab_samples(unsigned char *p, size_t bytes, size_t ds)
{
    for (size_t i = 0; i < bytes; i += ds)
        for (size_t j = 0; j < ds / 2; j++) {
            unsigned char c = p[i + j];
            p[i + j] = p[i + ds - 1 - j];
            p[i + ds - 1 - j] = c;
        }
}

/* libtiff 4.5.0 byte-swaps the data of a non-native file before applying
 * the floating-point predictor, which expects native floats, so the file
 * it writes holds byte-swapped values (its reader, checked against a
 * hand-made file, is right).  Detect the bug once, so that test files are
 * written correctly by working around it where present. */
static int fp_predictor_write_bug(void)
{
    static int known = -1;
    if (known >= 0) return known;
    const char *path = tpath("fp-probe.tif");
    float v[4] = {1, 2, 3, 4}, back[4] = {0};
    TIFF *tif = TIFFOpen(path, host_big() ? "wl" : "wb");
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, 4);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, 1);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 32);
    TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_IEEEFP);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE);
    TIFFSetField(tif, TIFFTAG_PREDICTOR, PREDICTOR_FLOATINGPOINT);
    TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, 1);
    TIFFWriteEncodedStrip(tif, 0, v, sizeof v);
    TIFFClose(tif);
    tif = TIFFOpen(path, "r");
    TIFFReadEncodedStrip(tif, 0, back, sizeof back);
    TIFFClose(tif);
    unlink(path);
    known = back[1] != 2.0f;
    return known;
}

static void write_libtiff(const char *path, const gspec *g, size_t w, size_t h, size_t np,
                          void *const *pages)
{
    char mode[8] = "w";
    strcat(mode, g->big ? "b" : "l");
    if (g->bigtiff) strcat(mode, "8");
    TIFF *tif = TIFFOpen(path, mode);
    ck_assert_msg(tif != NULL, "libtiff cannot create %s", path);
    const size_t ds = caimg_dtype_size(g->dt), rowbytes = w * ds;
    /* libtiff byte-swaps the buffer it is given in place, so hand it a
     * copy: the originals are what the reader must reproduce. */
    unsigned char *tmp = malloc(g->tile ? (size_t)g->tile * g->tile * ds : h * rowbytes);
    ck_assert_ptr_nonnull(tmp);
    int preswab = g->pred && caimg_dtype_is_float(g->dt) && g->big != host_big()
                  && fp_predictor_write_bug();
    for (size_t p = 0; p < np; p++) {
        const unsigned char *src = pages[p];
        TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, (uint32_t)w);
        TIFFSetField(tif, TIFFTAG_IMAGELENGTH, (uint32_t)h);
        TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, (int)(8 * ds));
        TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, sample_format(g->dt));
        TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
        TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
        TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
        TIFFSetField(tif, TIFFTAG_COMPRESSION, g->comp);
        if (g->pred)
            TIFFSetField(tif, TIFFTAG_PREDICTOR, caimg_dtype_is_float(g->dt)
                         ? PREDICTOR_FLOATINGPOINT : PREDICTOR_HORIZONTAL);
        if (p == 0 && g->desc) TIFFSetField(tif, TIFFTAG_IMAGEDESCRIPTION, g->desc);
        if (g->tile) {
            TIFFSetField(tif, TIFFTAG_TILEWIDTH, (uint32_t)g->tile);
            TIFFSetField(tif, TIFFTAG_TILELENGTH, (uint32_t)g->tile);
            size_t ts = (size_t)g->tile, tb = ts * ts * ds;
            for (size_t y = 0; y < h; y += ts)
                for (size_t x = 0; x < w; x += ts) {
                    memset(tmp, 0xAB, tb);   /* edge padding the reader must ignore */
                    for (size_t r = 0; r < ts && y + r < h; r++)
                        memcpy(tmp + r * ts * ds, src + (y + r) * rowbytes + x * ds,
                               (x + ts <= w ? ts : w - x) * ds);
                    if (preswab) swab_samples(tmp, tb, ds);
                    uint32_t idx = TIFFComputeTile(tif, (uint32_t)x, (uint32_t)y, 0, 0);
                    ck_assert_int_eq(TIFFWriteEncodedTile(tif, idx, tmp, (tmsize_t)tb), (tmsize_t)tb);
                }
        } else {
            uint32_t rps = g->rps ? g->rps : (uint32_t)h;
            TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, rps);
            for (size_t s = 0, y = 0; y < h; s++, y += rps) {
                size_t bytes = (y + rps <= h ? rps : h - y) * rowbytes;
                memcpy(tmp, src + y * rowbytes, bytes);
                if (preswab) swab_samples(tmp, bytes, ds);
                ck_assert_int_eq(TIFFWriteEncodedStrip(tif, (uint32_t)s, tmp, (tmsize_t)bytes),
                                 (tmsize_t)bytes);
            }
        }
        ck_assert(TIFFWriteDirectory(tif));
    }
    free(tmp);
    TIFFClose(tif);
}

static void **make_pages(caimg_dtype dt, size_t w, size_t h, size_t np)
{
    void **pages = malloc(np * sizeof *pages);
    ck_assert_ptr_nonnull(pages);
    for (size_t p = 0; p < np; p++) pages[p] = make_page(dt, w, h, p);
    return pages;
}

static void free_pages(void **pages, size_t np)
{
    for (size_t p = 0; p < np; p++) free(pages[p]);
    free(pages);
}

/* Open `path` and check every page against `pages`, visiting them in the
 * order given (so random access is exercised too). */
static void check_stack(const char *path, const char *label, caimg_dtype dt, size_t w, size_t h,
                        size_t np, void *const *pages, const size_t *order)
{
    caimg_tiff *t = caimg_tiff_open(path);
    ck_assert_msg(t != NULL, "%s: open failed: %s", label, caimg_errmsg());
    const caimg_tiff_info *in = caimg_tiff_get_info(t);
    ck_assert_msg(in->width == w && in->height == h && in->dtype == dt && in->npages == np,
                  "%s: info %zux%zu %s x%zu", label, in->width, in->height,
                  caimg_dtype_name(in->dtype), in->npages);
    size_t bytes = w * h * caimg_dtype_size(dt);
    unsigned char *buf = malloc(bytes);
    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < np; i++) {
        size_t p = order ? order[i] : i;
        memset(buf, 0x5A, bytes);
        int st = caimg_tiff_read_page(t, p, buf);
        ck_assert_msg(st == 0, "%s: page %zu: %s", label, p, caimg_errmsg());
        ck_assert_msg(memcmp(buf, pages[p], bytes) == 0, "%s: page %zu differs", label, p);
    }
    free(buf);
    caimg_tiff_close(t);
}

/* ---- every sample type x layout x compression x byte order x format ---- */

static const uint16_t comps[] = {COMPRESSION_NONE, COMPRESSION_LZW, COMPRESSION_ADOBE_DEFLATE,
                                 COMPRESSION_DEFLATE, COMPRESSION_PACKBITS};
static const char *const comp_names[] = {"none", "lzw", "deflate", "old-deflate", "packbits"};
#define NCOMBOS (NTYPES * 5 * 2 * 2 * 2 * 2)

START_TEST(read_matrix)
{
    int i = _i;
    caimg_dtype dt = all_types[i % NTYPES]; i /= NTYPES;
    int ci = i % 5; i /= 5;
    int pred = i % 2; i /= 2;
    int tiled = i % 2; i /= 2;
    int big = i % 2; i /= 2;
    int bigtiff = i % 2;
    /* The predictor applies to LZW and deflate only. */
    if (pred && (comps[ci] == COMPRESSION_NONE || comps[ci] == COMPRESSION_PACKBITS)) return;
    char label[128];
    snprintf(label, sizeof label, "%s %s %s%s %s %s", caimg_dtype_name(dt),
             tiled ? "tiles" : "strips", comp_names[ci], pred ? "+predictor" : "",
             big ? "big-endian" : "little-endian", bigtiff ? "BigTIFF" : "classic");
    /* 37x23 with 16x16 tiles gives partial tiles on both edges; 5-row
     * strips give a partial last strip. */
    const size_t w = 37, h = 23, np = 3;
    gspec g = {dt, comps[ci], pred, tiled ? 16 : 0, 5, big, bigtiff, NULL};
    void **pages = make_pages(dt, w, h, np);
    const char *path = tpath("matrix-%d.tif", _i);
    write_libtiff(path, &g, w, h, np, pages);
    const size_t order[] = {2, 0, 1};
    check_stack(path, label, dt, w, h, np, pages, order);
    caimg_tiff *t = caimg_tiff_open(path);
    ck_assert_int_eq(caimg_tiff_get_info(t)->bigtiff, bigtiff);
    caimg_tiff_close(t);
    free_pages(pages, np);
    unlink(path);
}
END_TEST

START_TEST(many_pages_random_access)
{
    /* More pages than the initial page table holds, mixed with compressed
     * pages read through libtiff. */
    const size_t w = 9, h = 7, np = 300;
    void **pages = make_pages(CAIMG_DT_U16, w, h, np);
    size_t order[300];
    for (size_t i = 0; i < np; i++) order[i] = (i * 113) % np;   /* a permutation */
    gspec g = {CAIMG_DT_U16, COMPRESSION_NONE, 0, 0, 3, 0, 0, NULL};
    write_libtiff(tpath("many.tif"), &g, w, h, np, pages);
    check_stack(tpath("many.tif"), "many uncompressed", CAIMG_DT_U16, w, h, np, pages, order);
    g.comp = COMPRESSION_LZW;
    g.big = 1;
    write_libtiff(tpath("many-lzw.tif"), &g, w, h, np, pages);
    check_stack(tpath("many-lzw.tif"), "many lzw", CAIMG_DT_U16, w, h, np, pages, order);
    free_pages(pages, np);
}
END_TEST

START_TEST(noncontiguous_strips)
{
    /* Uncompressed strips stored out of order cannot be read with one
     * pread(); the reader must notice and decode strip by strip. */
    for (int big = 0; big <= 1; big++) {
        const size_t w = 4, h = 4;
        uint16_t px[16];
        for (int i = 0; i < 16; i++) px[i] = (uint16_t)(1000 * i + 7);
        unsigned char disk[32];
        for (int i = 0; i < 16; i++) {
            disk[2 * i] = (unsigned char)(big ? px[i] >> 8 : px[i]);
            disk[2 * i + 1] = (unsigned char)(big ? px[i] : px[i] >> 8);
        }
        rawtiff r;
        rt_init(&r, big);
        uint32_t s1 = rt_append(&r, disk + 16, 16);   /* rows 2-3 first */
        uint32_t s0 = rt_append(&r, disk, 16);
        uint32_t offs[2] = {s0, s1}, cnts[2] = {16, 16};
        uint32_t oa = rt_append_uints(&r, offs, 2, 4), ca = rt_append_uints(&r, cnts, 2, 4);
        rt_entry e[] = {
            {256, RT_LONG, 1, (uint32_t)w}, {257, RT_LONG, 1, (uint32_t)h},
            {258, RT_SHORT, 1, 16}, {259, RT_SHORT, 1, 1}, {262, RT_SHORT, 1, 1},
            {273, RT_LONG, 2, oa}, {277, RT_SHORT, 1, 1}, {278, RT_LONG, 1, 2},
            {279, RT_LONG, 2, ca},
        };
        rt_ifd(&r, e, 9);
        const char *path = tpath("noncontig-%d.tif", big);
        ck_assert_int_eq(rt_save(&r, path, SIZE_MAX), 0);
        void *pages[1] = {px};
        check_stack(path, "noncontiguous", CAIMG_DT_U16, w, h, 1, pages, NULL);
    }
}
END_TEST

START_TEST(thumbnails_are_skipped)
{
    const size_t w = 24, h = 24;
    void **pages = make_pages(CAIMG_DT_U8, w, h, 3);
    TIFF *tif = TIFFOpen(tpath("thumb.tif"), "w");
    for (int p = 0; p < 3; p++) {
        uint32_t ww = p == 1 ? 12 : (uint32_t)w;
        TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, ww);
        TIFFSetField(tif, TIFFTAG_IMAGELENGTH, ww);
        TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 8);
        TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
        TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
        TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, ww);
        if (p == 1) TIFFSetField(tif, TIFFTAG_SUBFILETYPE, FILETYPE_REDUCEDIMAGE);
        ck_assert(TIFFWriteEncodedStrip(tif, 0, pages[p], (tmsize_t)(ww * ww)) > 0);
        TIFFWriteDirectory(tif);
    }
    TIFFClose(tif);
    nwarn = 0;
    void *want[2] = {pages[0], pages[2]};
    check_stack(tpath("thumb.tif"), "thumbnail", CAIMG_DT_U8, w, h, 2, want, NULL);
    ck_assert_int_eq(nwarn, 1);
    ck_assert_ptr_nonnull(strstr(lastwarn, "thumbnail"));
    free_pages(pages, 3);
}
END_TEST

/* ---- ImageJ metadata and pixel size ---- */

static const caimg_tiff_info *open_info(caimg_tiff **t, const char *path)
{
    *t = caimg_tiff_open(path);
    ck_assert_msg(*t != NULL, "%s", caimg_errmsg());
    return caimg_tiff_get_info(*t);
}

/* A one-page 4x3 uint16 file with the given description and resolution. */
static void write_meta(const char *path, const char *desc, double xres, double yres, int unit,
                       size_t np)
{
    TIFF *tif = TIFFOpen(path, "w");
    uint16_t px[12] = {0};
    for (size_t p = 0; p < np; p++) {
        TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, 4);
        TIFFSetField(tif, TIFFTAG_IMAGELENGTH, 3);
        TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 16);
        TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
        TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
        TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, 3);
        if (p == 0 && desc) TIFFSetField(tif, TIFFTAG_IMAGEDESCRIPTION, desc);
        if (p == 0 && xres > 0) {
            TIFFSetField(tif, TIFFTAG_XRESOLUTION, xres);
            TIFFSetField(tif, TIFFTAG_YRESOLUTION, yres);
            TIFFSetField(tif, TIFFTAG_RESOLUTIONUNIT, unit);
        }
        TIFFWriteEncodedStrip(tif, 0, px, sizeof px);
        TIFFWriteDirectory(tif);
    }
    TIFFClose(tif);
}

START_TEST(imagej_hyperstack_metadata)
{
    const char *path = tpath("ij.tif");
    write_meta(path, "ImageJ=1.53t\nimages=6\nchannels=2\nslices=1\nframes=3\nhyperstack=true\n"
               "mode=grayscale\nunit=micron\nfinterval=0.5\nspacing=2.0\nloop=false\n",
               2.0, 4.0, RESUNIT_NONE, 6);
    caimg_tiff *t;
    const caimg_tiff_info *in = open_info(&t, path);
    ck_assert_uint_eq(in->npages, 6);
    ck_assert_uint_eq(in->ij_images, 6);
    ck_assert_uint_eq(in->ij_channels, 2);
    ck_assert_uint_eq(in->ij_slices, 1);
    ck_assert_uint_eq(in->ij_frames, 3);
    ck_assert_double_eq_tol(in->ij_finterval, 0.5, 1e-12);
    ck_assert_double_eq_tol(in->pixel_um_x, 0.5, 1e-6);
    ck_assert_double_eq_tol(in->pixel_um_y, 0.25, 1e-6);
    ck_assert_int_eq(strncmp(in->description, "ImageJ=1.53t\nimages=6", 21), 0);
    ck_assert_int_eq(in->bigtiff, 0);
    caimg_tiff_close(t);
}
END_TEST

START_TEST(imagej_units)
{
    /* ImageJ escapes the micro sign; times may be in ms. */
    caimg_tiff *t;
    write_meta(tpath("u1.tif"), "ImageJ=1.53t\nimages=1\nunit=\\u00B5m\nfinterval=33\ntunit=ms\n",
               1.25, 1.25, RESUNIT_NONE, 1);
    const caimg_tiff_info *in = open_info(&t, tpath("u1.tif"));
    ck_assert_double_eq_tol(in->pixel_um_x, 0.8, 1e-6);
    ck_assert_double_eq_tol(in->ij_finterval, 0.033, 1e-12);
    caimg_tiff_close(t);

    write_meta(tpath("u2.tif"), "ImageJ=1.53t\nunit=nm\n", 0.01, 0.01, RESUNIT_NONE, 1);
    in = open_info(&t, tpath("u2.tif"));
    ck_assert_double_eq_tol(in->pixel_um_x, 0.1, 1e-6);   /* 100 nm */
    ck_assert_uint_eq(in->ij_images, 0);                  /* absent, not guessed */
    caimg_tiff_close(t);

    /* "pixel" is ImageJ's uncalibrated unit: no physical size. */
    write_meta(tpath("u3.tif"), "ImageJ=1.53t\nunit=pixel\n", 1.0, 1.0, RESUNIT_NONE, 1);
    in = open_info(&t, tpath("u3.tif"));
    ck_assert_double_eq(in->pixel_um_x, 0.0);
    caimg_tiff_close(t);
}
END_TEST

START_TEST(resolution_tags)
{
    caimg_tiff *t;
    const caimg_tiff_info *in;
    write_meta(tpath("cm.tif"), NULL, 10000 / 0.8, 10000 / 1.6, RESUNIT_CENTIMETER, 1);
    in = open_info(&t, tpath("cm.tif"));
    ck_assert_double_eq_tol(in->pixel_um_x, 0.8, 1e-5);
    ck_assert_double_eq_tol(in->pixel_um_y, 1.6, 1e-5);
    ck_assert_double_eq(in->ij_finterval, 0.0);
    caimg_tiff_close(t);

    write_meta(tpath("inch.tif"), NULL, 25400 / 1.27, 25400 / 1.27, RESUNIT_INCH, 1);
    in = open_info(&t, tpath("inch.tif"));
    ck_assert_double_eq_tol(in->pixel_um_x, 1.27, 1e-5);
    caimg_tiff_close(t);

    /* 72 dpi is an image library's placeholder, not a measurement. */
    write_meta(tpath("72.tif"), NULL, 72, 72, RESUNIT_INCH, 1);
    in = open_info(&t, tpath("72.tif"));
    ck_assert_double_eq(in->pixel_um_x, 0.0);
    caimg_tiff_close(t);

    write_meta(tpath("none.tif"), "not ImageJ\nimages=5\n", 0, 0, 0, 1);
    in = open_info(&t, tpath("none.tif"));
    ck_assert_double_eq(in->pixel_um_x, 0.0);
    ck_assert_uint_eq(in->ij_images, 0);       /* only ImageJ descriptions are parsed */
    ck_assert_str_eq(in->description, "not ImageJ\nimages=5\n");
    caimg_tiff_close(t);
}
END_TEST

/* An ImageJ large ("virtual") stack: one IFD describing the first frame,
 * images=n in the description, and `nstored` frames back to back. */
static void write_ij_virtual(const char *path, int big, caimg_dtype dt, size_t w, size_t h,
                             size_t n, size_t nstored, void *const *pages)
{
    char desc[128];
    snprintf(desc, sizeof desc, "ImageJ=1.53t\nimages=%zu\nframes=%zu\nfinterval=0.1\n", n, n);
    size_t ds = caimg_dtype_size(dt), fb = w * h * ds;
    rawtiff r;
    rt_init(&r, big);
    uint32_t d = rt_append(&r, desc, strlen(desc) + 1);
    uint32_t ifd = (uint32_t)r.n + (r.n & 1);
    uint32_t data = ifd + 2 + 11 * 12 + 4;
    rt_entry e[] = {
        {256, RT_LONG, 1, (uint32_t)w}, {257, RT_LONG, 1, (uint32_t)h},
        {258, RT_SHORT, 1, (uint32_t)(8 * ds)}, {259, RT_SHORT, 1, 1}, {262, RT_SHORT, 1, 1},
        {270, RT_ASCII, (uint32_t)strlen(desc) + 1, d},
        {273, RT_LONG, 1, data}, {277, RT_SHORT, 1, 1}, {278, RT_LONG, 1, (uint32_t)h},
        {279, RT_LONG, 1, (uint32_t)fb}, {339, RT_SHORT, 1, (uint32_t)sample_format(dt)},
    };
    ck_assert_uint_eq(rt_ifd(&r, e, 11), ifd);
    ck_assert_uint_eq(r.n, data);
    unsigned char *tmp = malloc(fb);
    for (size_t k = 0; k < nstored; k++) {
        memcpy(tmp, pages[k], fb);
        if (big != host_big()) swab_samples(tmp, fb, ds);
        rt_append(&r, tmp, fb);
    }
    free(tmp);
    ck_assert_int_eq(rt_save(&r, path, SIZE_MAX), 0);
}

START_TEST(imagej_virtual_stack)
{
    /* ImageJ writes big-endian by default, so both orders matter. */
    int big = _i % 2;
    caimg_dtype dt = _i / 2 ? CAIMG_DT_F32 : CAIMG_DT_U16;
    const size_t w = 13, h = 6, n = 7;
    void **pages = make_pages(dt, w, h, n);
    const char *path = tpath("virtual-%d.tif", _i);
    write_ij_virtual(path, big, dt, w, h, n, n, pages);
    const size_t order[] = {6, 0, 3, 1, 2, 5, 4};
    check_stack(path, "virtual", dt, w, h, n, pages, order);
    caimg_tiff *t;
    const caimg_tiff_info *in = open_info(&t, path);
    ck_assert_uint_eq(in->ij_images, n);
    ck_assert_double_eq_tol(in->ij_finterval, 0.1, 1e-12);
    caimg_tiff_close(t);

    /* Two frames short: refused at open, naming the problem. */
    write_ij_virtual(path, big, dt, w, h, n, n - 2, pages);
    ck_assert_ptr_null(caimg_tiff_open(path));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "truncated"));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "5 complete images"));
    free_pages(pages, n);
}
END_TEST

START_TEST(imagej_images_without_data)
{
    /* A compressed single page cannot be a contiguous stack: the reader
     * trusts the pages, with a warning. */
    void **pages = make_pages(CAIMG_DT_U16, 8, 8, 1);
    gspec g = {CAIMG_DT_U16, COMPRESSION_LZW, 1, 0, 8, 0, 0, "ImageJ=1.53t\nimages=5\n"};
    write_libtiff(tpath("ij-short.tif"), &g, 8, 8, 1, pages);
    nwarn = 0;
    check_stack(tpath("ij-short.tif"), "ij-short", CAIMG_DT_U16, 8, 8, 1, pages, NULL);
    ck_assert_int_eq(nwarn, 1);
    ck_assert_ptr_nonnull(strstr(lastwarn, "says 5 images but the file has 1 pages"));
    free_pages(pages, 1);
}
END_TEST

/* ---- errors ---- */

START_TEST(page_mismatch_messages)
{
    char want[1400];
    /* Page 17 smaller than the first 16. */
    const char *path = tpath("mixed17.tif");
    TIFF *tif = TIFFOpen(path, "w");
    uint16_t px[24 * 24] = {0};
    for (int p = 0; p < 18; p++) {
        uint32_t s = p == 16 ? 12 : 24;
        TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, s);
        TIFFSetField(tif, TIFFTAG_IMAGELENGTH, s);
        TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 16);
        TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
        TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
        TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, s);
        TIFFWriteEncodedStrip(tif, 0, px, (tmsize_t)(s * s * 2));
        TIFFWriteDirectory(tif);
    }
    TIFFClose(tif);
    ck_assert_ptr_null(caimg_tiff_open(path));
    snprintf(want, sizeof want, "%s: page 17 is 12x12, expected 24x24 (height x width)", path);
    ck_assert_str_eq(caimg_errmsg(), want);

    /* Page 3 float among uint16. */
    path = tpath("mixedtype.tif");
    tif = TIFFOpen(path, "w");
    for (int p = 0; p < 3; p++) {
        TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, 4);
        TIFFSetField(tif, TIFFTAG_IMAGELENGTH, 4);
        TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, p == 2 ? 32 : 16);
        TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, p == 2 ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT);
        TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
        TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
        TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, 4);
        TIFFWriteEncodedStrip(tif, 0, px, p == 2 ? 64 : 32);
        TIFFWriteDirectory(tif);
    }
    TIFFClose(tif);
    ck_assert_ptr_null(caimg_tiff_open(path));
    snprintf(want, sizeof want, "%s: page 3 is float32, expected uint16", path);
    ck_assert_str_eq(caimg_errmsg(), want);
}
END_TEST

START_TEST(missing_file_and_bad_page)
{
    ck_assert_ptr_null(caimg_tiff_open(tpath("does-not-exist.tif")));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "does-not-exist.tif: No such file"));
    ck_assert_int_eq(caimg_is_tiff(tpath("does-not-exist.tif")), CAIMG_ENOENT);
    ck_assert_ptr_null(caimg_tiff_open(tmpdir));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "is a directory"));

    void **pages = make_pages(CAIMG_DT_U8, 5, 5, 2);
    gspec g = {CAIMG_DT_U8, COMPRESSION_NONE, 0, 0, 5, 0, 0, NULL};
    write_libtiff(tpath("two.tif"), &g, 5, 5, 2, pages);
    caimg_tiff *t = caimg_tiff_open(tpath("two.tif"));
    unsigned char buf[25];
    ck_assert_int_eq(caimg_tiff_read_page(t, 2, buf), CAIMG_EINVAL);
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "page 3 does not exist (the file has 2 pages)"));
    ck_assert_int_eq(caimg_tiff_read_page(t, 0, NULL), CAIMG_EINVAL);
    caimg_tiff_close(t);
    caimg_tiff_close(NULL);
    ck_assert_int_eq(caimg_is_tiff(tpath("two.tif")), 1);
    free_pages(pages, 2);
}
END_TEST

/* A file cut short after it was opened: the page that lost its data fails
 * with a message naming the file and the page; earlier pages still read. */
START_TEST(truncated_after_open)
{
    for (int comp = 0; comp <= 1; comp++) {
        const size_t w = 64, h = 64, np = 4;
        void **pages = make_pages(CAIMG_DT_U16, w, h, np);
        gspec g = {CAIMG_DT_U16, comp ? COMPRESSION_LZW : COMPRESSION_NONE, 0, 0, 16, 0, 0, NULL};
        const char *path = tpath("cut-%d.tif", comp);
        write_libtiff(path, &g, w, h, np, pages);
        caimg_tiff *t = caimg_tiff_open(path);
        ck_assert_ptr_nonnull(t);
        struct stat st;
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_eq(truncate(path, st.st_size * 5 / 8), 0);
        uint16_t buf[64 * 64];
        ck_assert_int_eq(caimg_tiff_read_page(t, 0, buf), 0);
        ck_assert_int_eq(memcmp(buf, pages[0], sizeof buf), 0);
        int st4 = caimg_tiff_read_page(t, 3, buf);
        ck_assert_int_lt(st4, 0);
        ck_assert_msg(strstr(caimg_errmsg(), path) && strstr(caimg_errmsg(), ": page 4: "),
                      "message: %s", caimg_errmsg());
        ck_assert_ptr_null(strchr(caimg_errmsg(), '\n'));
        caimg_tiff_close(t);
        free_pages(pages, np);
    }
}
END_TEST

/* Headers whose sizes cannot be genuine are refused before any buffer of
 * that size is allocated. */
START_TEST(absurd_sizes_refused)
{
    /* 40000x40000 LZW in a file of a few hundred bytes: no compression
     * shrinks 1.6 GB that far. */
    rawtiff r;
    rt_init(&r, 0);
    uint32_t d = rt_append(&r, "\x80\x00\x00\x00\x00\x00\x00\x00", 8);
    rt_entry e1[] = {
        {256, RT_LONG, 1, 40000}, {257, RT_LONG, 1, 40000}, {258, RT_SHORT, 1, 8},
        {259, RT_SHORT, 1, 5}, {262, RT_SHORT, 1, 1}, {273, RT_LONG, 1, d},
        {277, RT_SHORT, 1, 1}, {278, RT_LONG, 1, 40000}, {279, RT_LONG, 1, 8},
    };
    rt_ifd(&r, e1, 9);
    ck_assert_int_eq(rt_save(&r, tpath("huge-lzw.tif"), SIZE_MAX), 0);
    ck_assert_ptr_null(caimg_tiff_open(tpath("huge-lzw.tif")));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "40000x40000 uint8 pixels (1600000000 bytes, "
                                 "too many for any compression)"));

    /* An 8x8 image in 32768x32768 tiles (a 1 GiB tile buffer). */
    rt_init(&r, 0);
    d = rt_append(&r, NULL, 64);
    rt_entry e2[] = {
        {256, RT_LONG, 1, 8}, {257, RT_LONG, 1, 8}, {258, RT_SHORT, 1, 8},
        {259, RT_SHORT, 1, 1}, {262, RT_SHORT, 1, 1}, {277, RT_SHORT, 1, 1},
        {322, RT_LONG, 1, 32768}, {323, RT_LONG, 1, 32768}, {324, RT_LONG, 1, d},
        {325, RT_LONG, 1, 64},
    };
    rt_ifd(&r, e2, 10);
    ck_assert_int_eq(rt_save(&r, tpath("huge-tile.tif"), SIZE_MAX), 0);
    ck_assert_ptr_null(caimg_tiff_open(tpath("huge-tile.tif")));
    ck_assert_msg(strstr(caimg_errmsg(), "huge-tile.tif: page 1 has 32768x32768 tiles, absurd "
                         "for a 8x8 image") != NULL, "%s", caimg_errmsg());
}
END_TEST

/* The committed corpus: each file fails, at open or at the latest when its
 * pages are read, with a one-line message naming the file and the problem. */
static const struct {
    const char *file, *expect;
    int status;
} corpus[] = {
    {"not-a-tiff.tif", "not a TIFF file", CAIMG_EFORMAT},
    {"empty.tif", "empty file (0 bytes)", CAIMG_EFORMAT},
    {"truncated-header.tif", "truncated TIFF header (6 bytes)", CAIMG_EFORMAT},
    {"truncated-ifd.tif", "cannot read the first IFD", CAIMG_EFORMAT},
    {"truncated-strip.tif", "page 1: strip 0 (bytes 1122 to 9314) lies past the end of the file "
     "(8314 bytes); the file is truncated", CAIMG_EFORMAT},
    {"mixed-size.tif", "page 3 is 8x8, expected 16x16", CAIMG_EFORMAT},
    {"mixed-type.tif", "page 3 is float32, expected uint16", CAIMG_EFORMAT},
    {"rgb.tif", "page 1 has 3 samples per pixel (RGB)", CAIMG_EUNSUP},
    {"1bit.tif", "page 1 has 1-bit (bilevel) samples", CAIMG_EUNSUP},
    {"complex.tif", "page 1 has 64-bit complex float samples", CAIMG_EUNSUP},
    {"float16.tif", "page 1 has 16-bit float samples", CAIMG_EUNSUP},
    {"absurd-dims.tif", "page 1 claims 100000x100000 pixels", CAIMG_EFORMAT},
    {"too-large-for-file.tif", "page 1 claims 40000x40000 uint8 pixels (1600000000 bytes) but "
     "the file has only 138 bytes", CAIMG_EFORMAT},
    {"zero-pages.tif", "the TIFF has no pages", CAIMG_EFORMAT},
    {"ifd-loop.tif", "cannot read the IFD after page 2", CAIMG_EFORMAT},
    {"corrupt-lzw.tif", "page 2: cannot decode strip 0 (LZW data)", CAIMG_EFORMAT},
    {"imagej-truncated.tif", "ImageJ stack of 10 images of 128 bytes, but the file holds only 3 "
     "complete images", CAIMG_EFORMAT},
};

START_TEST(bad_corpus)
{
    const char *top = getenv("top_srcdir");
    char path[2048];
    snprintf(path, sizeof path, "%s/testdata/bad/%s", top ? top : ".", corpus[_i].file);
    ck_assert_msg(access(path, R_OK) == 0, "%s missing (is top_srcdir set?)", path);
    caimg_clear_error();
    caimg_tiff *t = caimg_tiff_open(path);
    int status = CAIMG_OK;
    if (t) {
        const caimg_tiff_info *in = caimg_tiff_get_info(t);
        ck_assert(in->width * in->height <= 1u << 20);
        void *buf = malloc(in->width * in->height * caimg_dtype_size(in->dtype));
        for (size_t k = 0; k < in->npages && status == CAIMG_OK; k++)
            status = caimg_tiff_read_page(t, k, buf);
        free(buf);
        caimg_tiff_close(t);
        ck_assert_msg(status < 0, "%s: read without error", corpus[_i].file);
    } else {
        /* The status is not returned with NULL; the message is what users
         * see, so that is what is checked, with the code where we have it. */
        status = corpus[_i].status;
    }
    const char *msg = caimg_errmsg();
    ck_assert_int_eq(status, corpus[_i].status);
    ck_assert_msg(strncmp(msg, path, strlen(path)) == 0 && msg[strlen(path)] == ':',
                  "%s: message does not start with the file name: %s", corpus[_i].file, msg);
    ck_assert_msg(strstr(msg, corpus[_i].expect) != NULL, "%s: message: %s", corpus[_i].file, msg);
    ck_assert_msg(strchr(msg, '\n') == NULL, "%s: multi-line message: %s", corpus[_i].file, msg);
    if (strcmp(corpus[_i].file, "not-a-tiff.tif") == 0 || strcmp(corpus[_i].file, "empty.tif") == 0)
        ck_assert_int_eq(caimg_is_tiff(path), 0);
}
END_TEST

START_TEST(corpus_files_are_small)
{
    const char *top = getenv("top_srcdir");
    for (size_t i = 0; i < sizeof corpus / sizeof *corpus; i++) {
        char path[2048];
        struct stat st;
        snprintf(path, sizeof path, "%s/testdata/bad/%s", top ? top : ".", corpus[i].file);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_lt(st.st_size, 50 * 1024);
    }
}
END_TEST

/* ---- writer ---- */

static int dir_has_tmp_files(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) found = 1;
    closedir(d);
    return found;
}

static const caimg_tiff_compression wcomps[] = {CAIMG_TIFF_NONE, CAIMG_TIFF_LZW,
                                                CAIMG_TIFF_DEFLATE, CAIMG_TIFF_PACKBITS};

START_TEST(writer_round_trip)
{
    int i = _i;
    caimg_dtype dt = all_types[i % NTYPES]; i /= NTYPES;
    caimg_tiff_compression comp = wcomps[i % 4]; i /= 4;
    int tiled = i % 2; i /= 2;
    int bigtiff = i % 2;
    char label[96];
    snprintf(label, sizeof label, "writer %s comp %d %s %s", caimg_dtype_name(dt), (int)comp,
             tiled ? "tiles" : "strips", bigtiff ? "BigTIFF" : "classic");
    const size_t w = 45, h = 33, np = 4;
    void **pages = make_pages(dt, w, h, np);
    void **copy = make_pages(dt, w, h, np);
    caimg_tiff_wopts o;
    caimg_tiff_wopts_init(&o, dt);
    o.compression = comp;
    o.tile = tiled ? 16 : 0;
    o.bigtiff = bigtiff;
    o.fs = 30.0;
    o.pixel_um = 0.8;
    const char *path = tpath("w-%d.tif", _i);
    caimg_tiff_writer *wr = caimg_tiff_writer_create(path, w, h, np, &o);
    ck_assert_msg(wr != NULL, "%s: %s", label, caimg_errmsg());
    for (size_t p = 0; p < np; p++) {
        ck_assert_int_eq(caimg_tiff_write_page(wr, pages[p]), 0);
        /* Nothing appears at the final name until close. */
        ck_assert_int_ne(access(path, F_OK), 0);
    }
    ck_assert_int_eq(caimg_tiff_writer_close(wr), 0);
    ck_assert_int_eq(access(path, F_OK), 0);
    /* The pages given to the writer are unchanged. */
    for (size_t p = 0; p < np; p++)
        ck_assert_int_eq(memcmp(pages[p], copy[p], w * h * caimg_dtype_size(dt)), 0);
    const size_t order[] = {3, 1, 0, 2};
    check_stack(path, label, dt, w, h, np, pages, order);
    caimg_tiff *t;
    const caimg_tiff_info *in = open_info(&t, path);
    ck_assert_int_eq(in->bigtiff, bigtiff);
    ck_assert_uint_eq(in->ij_images, np);
    ck_assert_uint_eq(in->ij_frames, np);
    ck_assert_double_eq_tol(in->ij_finterval, 1.0 / 30, 1e-12);
    ck_assert_double_eq_tol(in->pixel_um_x, 0.8, 1e-6);
    ck_assert_double_eq_tol(in->pixel_um_y, 0.8, 1e-6);
    caimg_tiff_close(t);
    /* libtiff, reading independently, sees the same first page. */
    TIFF *tif = TIFFOpen(path, "r");
    ck_assert_int_eq(TIFFNumberOfDirectories(tif), np);
    uint16_t bits = 0, fmt = 0;
    TIFFGetField(tif, TIFFTAG_BITSPERSAMPLE, &bits);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &fmt);
    ck_assert_uint_eq(bits, 8 * caimg_dtype_size(dt));
    ck_assert_uint_eq(fmt, sample_format(dt));
    TIFFClose(tif);
    ck_assert(!dir_has_tmp_files());
    unlink(path);
    free_pages(pages, np);
    free_pages(copy, np);
}
END_TEST

START_TEST(writer_without_imagej)
{
    uint16_t px[6] = {1, 2, 3, 4, 5, 6};
    caimg_tiff_wopts o;
    caimg_tiff_wopts_init(&o, CAIMG_DT_U16);
    o.imagej = 0;
    o.pixel_um = 1.5;
    const char *path = tpath("plain.tif");
    caimg_tiff_writer *wr = caimg_tiff_writer_create(path, 3, 2, 1, &o);
    ck_assert_int_eq(caimg_tiff_write_page(wr, px), 0);
    ck_assert_int_eq(caimg_tiff_writer_close(wr), 0);
    caimg_tiff *t;
    const caimg_tiff_info *in = open_info(&t, path);
    ck_assert_uint_eq(in->ij_images, 0);
    ck_assert_str_eq(in->description, "");
    ck_assert_double_eq_tol(in->pixel_um_x, 1.5, 1e-5);   /* from centimetre units */
    ck_assert_int_eq(in->bigtiff, 0);                      /* automatic: small */
    caimg_tiff_close(t);
}
END_TEST

START_TEST(writer_failures_leave_nothing)
{
    uint8_t px[16] = {0};
    caimg_tiff_wopts o;
    caimg_tiff_wopts_init(&o, CAIMG_DT_U8);
    const char *path = tpath("partial.tif");

    /* Too few pages: close fails and nothing is left. */
    caimg_tiff_writer *wr = caimg_tiff_writer_create(path, 4, 4, 3, &o);
    ck_assert_int_eq(caimg_tiff_write_page(wr, px), 0);
    ck_assert_int_eq(caimg_tiff_writer_close(wr), CAIMG_EINVAL);
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "only 1 of 3 pages were written"));
    ck_assert_int_ne(access(path, F_OK), 0);
    ck_assert(!dir_has_tmp_files());

    /* Too many pages: refused, the file is still fine. */
    wr = caimg_tiff_writer_create(path, 4, 4, 1, &o);
    ck_assert_int_eq(caimg_tiff_write_page(wr, px), 0);
    ck_assert_int_eq(caimg_tiff_write_page(wr, px), CAIMG_EINVAL);
    ck_assert_int_eq(caimg_tiff_writer_close(wr), 0);
    ck_assert_int_eq(access(path, F_OK), 0);
    unlink(path);

    /* Abort. */
    wr = caimg_tiff_writer_create(path, 4, 4, 2, &o);
    ck_assert_int_eq(caimg_tiff_write_page(wr, px), 0);
    caimg_tiff_writer_abort(wr);
    caimg_tiff_writer_abort(NULL);
    ck_assert_int_ne(access(path, F_OK), 0);
    ck_assert(!dir_has_tmp_files());

    /* An existing file is replaced only on success. */
    FILE *f = fopen(path, "w");
    fputs("old", f);
    fclose(f);
    wr = caimg_tiff_writer_create(path, 4, 4, 2, &o);
    caimg_tiff_writer_abort(wr);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, 3);
    unlink(path);

    /* Unwritable places and bad parameters. */
    ck_assert_ptr_null(caimg_tiff_writer_create(tpath("no-such-dir/x.tif"), 4, 4, 1, &o));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "no-such-dir/x.tif: cannot create"));
    ck_assert_ptr_null(caimg_tiff_writer_create(tmpdir, 4, 4, 1, &o));
    ck_assert_ptr_null(caimg_tiff_writer_create(path, 0, 4, 1, &o));
    ck_assert_ptr_null(caimg_tiff_writer_create(path, 4, 4, 0, &o));
    o.tile = 10;
    ck_assert_ptr_null(caimg_tiff_writer_create(path, 4, 4, 1, &o));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "not a multiple of 16"));
    ck_assert(!dir_has_tmp_files());
}
END_TEST

START_TEST(bigtiff_decision)
{
    caimg_tiff_wopts o;
    caimg_tiff_wopts_init(&o, CAIMG_DT_U16);
    /* 512x512 uint16 is 512 KiB a frame: 7000 frames are 3.67 GB, 8000
     * are 4.19 GB. */
    ck_assert_int_eq(caimg_tiff_wants_bigtiff(512, 512, 7000, &o), 0);
    ck_assert_int_eq(caimg_tiff_wants_bigtiff(512, 512, 8000, &o), 1);
    ck_assert_int_eq(caimg_tiff_wants_bigtiff(512, 512, 8000, NULL), 1);
    /* Compression may expand incompressible data; LZW by up to 1.5x. */
    o.compression = CAIMG_TIFF_LZW;
    ck_assert_int_eq(caimg_tiff_wants_bigtiff(512, 512, 6000, &o), 1);
    o.compression = CAIMG_TIFF_DEFLATE;
    ck_assert_int_eq(caimg_tiff_wants_bigtiff(512, 512, 7000, &o), 0);
    /* Padding of edge tiles counts: 500x500 frames in 512x512 tiles. */
    o.compression = CAIMG_TIFF_NONE;
    ck_assert_int_eq(caimg_tiff_wants_bigtiff(500, 500, 7900, &o), 0);
    o.tile = 512;
    ck_assert_int_eq(caimg_tiff_wants_bigtiff(500, 500, 7900, &o), 1);
    o.tile = 0;
    /* float32 doubles the size. */
    caimg_tiff_wopts_init(&o, CAIMG_DT_F32);
    ck_assert_int_eq(caimg_tiff_wants_bigtiff(512, 512, 4000, &o), 1);
    /* Forced either way. */
    o.bigtiff = 1;
    ck_assert_int_eq(caimg_tiff_wants_bigtiff(4, 4, 1, &o), 1);
    o.bigtiff = 0;
    ck_assert_int_eq(caimg_tiff_wants_bigtiff(512, 512, 100000, &o), 0);
}
END_TEST

START_TEST(is_tiff_signatures)
{
    static const struct { const char *bytes; int n, want; } cases[] = {
        {"II*\0", 4, 1}, {"MM\0*", 4, 1}, {"II+\0", 4, 1}, {"MM\0+", 4, 1},
        {"II*", 3, 0}, {"\x89PNG", 4, 0}, {"MM*\0", 4, 0}, {"", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *path = tpath("sig-%zu", i);
        FILE *f = fopen(path, "wb");
        fwrite(cases[i].bytes, 1, (size_t)cases[i].n, f);
        fclose(f);
        ck_assert_msg(caimg_is_tiff(path) == cases[i].want, "case %zu", i);
    }
}
END_TEST

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (!d) return;
    struct dirent *e;
    char p[2048];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(tmpdir);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/check_tiffio.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    caimg_init();   /* route libtiff messages away from stderr, as the library does */
    caimg_set_warn_handler(count_warning, NULL);

    Suite *s = suite_create("tiffio");
    TCase *tc = tcase_create("read");
    tcase_add_loop_test(tc, read_matrix, 0, NCOMBOS);
    tcase_add_test(tc, many_pages_random_access);
    tcase_add_test(tc, noncontiguous_strips);
    tcase_add_test(tc, thumbnails_are_skipped);
    suite_add_tcase(s, tc);

    tc = tcase_create("imagej");
    tcase_add_test(tc, imagej_hyperstack_metadata);
    tcase_add_test(tc, imagej_units);
    tcase_add_test(tc, resolution_tags);
    tcase_add_loop_test(tc, imagej_virtual_stack, 0, 4);
    tcase_add_test(tc, imagej_images_without_data);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, page_mismatch_messages);
    tcase_add_test(tc, missing_file_and_bad_page);
    tcase_add_test(tc, truncated_after_open);
    tcase_add_test(tc, absurd_sizes_refused);
    tcase_add_loop_test(tc, bad_corpus, 0, (int)(sizeof corpus / sizeof *corpus));
    tcase_add_test(tc, corpus_files_are_small);
    tcase_add_test(tc, is_tiff_signatures);
    suite_add_tcase(s, tc);

    tc = tcase_create("write");
    tcase_add_loop_test(tc, writer_round_trip, 0, NTYPES * 4 * 2 * 2);
    tcase_add_test(tc, writer_without_imagej);
    tcase_add_test(tc, writer_failures_leave_nothing);
    tcase_add_test(tc, bigtiff_decision);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_tmpdir();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
