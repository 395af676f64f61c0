/* make-bad-corpus.c -- regenerate the bad-TIFF corpus in testdata/bad/.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Usage: testdata/bad/make-bad-corpus DIR
 *
 * Every file is small and named by what is wrong with it; README in this
 * directory lists the error caimg must report for each, and
 * tests/check_tiffio.c checks that it does.  Well-formed files that caimg
 * does not support are written with libtiff; malformed ones are assembled
 * byte by byte (tests/rawtiff.h), since libtiff refuses to write them.
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tiffio.h>

#include "../../tests/rawtiff.h"

static const char *dir;

static const char *path_of(const char *name)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

static void die(const char *what)
{
    fprintf(stderr, "make-bad-corpus: %s failed\n", what);
    exit(1);
}

static void write_bytes(const char *name, const void *data, size_t n)
{
    FILE *f = fopen(path_of(name), "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) die(name);
}

/* One page with libtiff, uncompressed unless `comp` says otherwise; the
 * pixel values are a simple ramp. */
static void lt_page(TIFF *tif, uint32_t w, uint32_t h, int bits, int format, int spp,
                    int photometric, uint16_t comp, uint32_t subfile)
{
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, bits);
    TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, format);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, spp);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, photometric);
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(tif, TIFFTAG_COMPRESSION, comp);
    TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, h);
    if (subfile) TIFFSetField(tif, TIFFTAG_SUBFILETYPE, subfile);
    tmsize_t n = TIFFStripSize(tif);
    unsigned char *buf = malloc((size_t)n);
    if (!buf) die("malloc");
    for (tmsize_t i = 0; i < n; i++) buf[i] = (unsigned char)(i * 7);
    if (TIFFWriteEncodedStrip(tif, 0, buf, n) != n || !TIFFWriteDirectory(tif))
        die("libtiff write");
    free(buf);
}

static TIFF *lt_open(const char *name)
{
    TIFF *tif = TIFFOpen(path_of(name), "w");
    if (!tif) die(name);
    return tif;
}

/* Uncompressed grayscale page entries for rawtiff: 9 entries, strip at
 * `off` with `count` bytes. */
static void raw_page(rawtiff *r, uint32_t w, uint32_t h, int bits, uint32_t off, uint32_t count)
{
    rt_entry e[] = {
        {256, RT_LONG, 1, w},                 /* ImageWidth */
        {257, RT_LONG, 1, h},                 /* ImageLength */
        {258, RT_SHORT, 1, (uint32_t)bits},   /* BitsPerSample */
        {259, RT_SHORT, 1, 1},                /* Compression: none */
        {262, RT_SHORT, 1, 1},                /* Photometric: min-is-black */
        {273, RT_LONG, 1, off},               /* StripOffsets */
        {277, RT_SHORT, 1, 1},                /* SamplesPerPixel */
        {278, RT_LONG, 1, h},                 /* RowsPerStrip */
        {279, RT_LONG, 1, count},             /* StripByteCounts */
    };
    rt_ifd(r, e, (int)(sizeof e / sizeof *e));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make-bad-corpus DIR\n");
        return 2;
    }
    dir = argv[1];
    TIFFSetWarningHandler(NULL);

    const char text[] = "This is a text file with a .tif name, not a TIFF.\n";
    write_bytes("not-a-tiff.tif", text, sizeof text - 1);
    write_bytes("empty.tif", "", 0);
    write_bytes("truncated-header.tif", "II*\0\010\0", 6);
    write_bytes("zero-pages.tif", "II*\0\0\0\0\0", 8);

    rawtiff r;
    /* The IFD claims 12 entries; the file ends after two of them. */
    rt_init(&r, 0);
    raw_page(&r, 16, 16, 8, 200, 256);
    rt_put(&r, 8, 12, 2);
    if (rt_save(&r, path_of("truncated-ifd.tif"), 8 + 2 + 2 * 12) != 0) die("truncated-ifd");

    /* A 64x64 uint16 strip of 8192 bytes that starts 1000 bytes too late:
     * the file is long enough for the image but the strip runs past its end,
     * as when a file is cut short after its IFD. */
    rt_init(&r, 0);
    raw_page(&r, 64, 64, 16, 8 + 2 + 9 * 12 + 4 + 1000, 8192);
    rt_append(&r, NULL, 8192);
    if (rt_save(&r, path_of("truncated-strip.tif"), SIZE_MAX) != 0) die("truncated-strip");

    /* 100000 x 100000 uint16 (20 GB) claimed by a 138-byte file. */
    rt_init(&r, 0);
    raw_page(&r, 100000, 100000, 16, 122, 16);
    rt_append(&r, NULL, 16);
    if (rt_save(&r, path_of("absurd-dims.tif"), SIZE_MAX) != 0) die("absurd-dims");

    /* 40000 x 40000 uint8: within caimg's frame limit, but 1.6 GB that a
     * tiny uncompressed file cannot hold. */
    rt_init(&r, 0);
    raw_page(&r, 40000, 40000, 8, 122, 16);
    rt_append(&r, NULL, 16);
    if (rt_save(&r, path_of("too-large-for-file.tif"), SIZE_MAX) != 0) die("too-large");

    /* Two valid pages, the second pointing back to the first. */
    rt_init(&r, 0);
    {
        unsigned char px[16];
        for (int i = 0; i < 16; i++) px[i] = (unsigned char)i;
        uint32_t d1 = rt_append(&r, px, 16), d2 = rt_append(&r, px, 16);
        raw_page(&r, 4, 4, 8, d1, 16);
        raw_page(&r, 4, 4, 8, d2, 16);
        rt_put(&r, r.link, 8 + 32, 4);   /* next IFD of page 2 = page 1 */
    }
    if (rt_save(&r, path_of("ifd-loop.tif"), SIZE_MAX) != 0) die("ifd-loop");

    /* ImageJ description promising 10 contiguous 8x8 uint16 images; the
     * file holds 3. */
    rt_init(&r, 0);
    {
        const char desc[] = "ImageJ=1.53t\nimages=10\nslices=10\nloop=false\n";
        uint32_t d = rt_append(&r, desc, sizeof desc);
        uint32_t ifd = 8 + (uint32_t)sizeof desc;
        ifd += ifd & 1;
        uint32_t data = ifd + 2 + 10 * 12 + 4;
        rt_entry e[] = {
            {256, RT_LONG, 1, 8}, {257, RT_LONG, 1, 8}, {258, RT_SHORT, 1, 16},
            {259, RT_SHORT, 1, 1}, {262, RT_SHORT, 1, 1},
            {270, RT_ASCII, (uint32_t)sizeof desc, d},
            {273, RT_LONG, 1, data}, {277, RT_SHORT, 1, 1}, {278, RT_LONG, 1, 8},
            {279, RT_LONG, 1, 128},
        };
        if (rt_ifd(&r, e, 10) != ifd || r.n != data) die("imagej-truncated layout");
        rt_append(&r, NULL, 3 * 128);
    }
    if (rt_save(&r, path_of("imagej-truncated.tif"), SIZE_MAX) != 0) die("imagej-truncated");

    TIFF *tif = lt_open("mixed-size.tif");
    lt_page(tif, 16, 16, 16, SAMPLEFORMAT_UINT, 1, PHOTOMETRIC_MINISBLACK, COMPRESSION_NONE, 0);
    lt_page(tif, 16, 16, 16, SAMPLEFORMAT_UINT, 1, PHOTOMETRIC_MINISBLACK, COMPRESSION_NONE, 0);
    lt_page(tif, 8, 8, 16, SAMPLEFORMAT_UINT, 1, PHOTOMETRIC_MINISBLACK, COMPRESSION_NONE, 0);
    TIFFClose(tif);

    tif = lt_open("mixed-type.tif");
    lt_page(tif, 16, 16, 16, SAMPLEFORMAT_UINT, 1, PHOTOMETRIC_MINISBLACK, COMPRESSION_NONE, 0);
    lt_page(tif, 16, 16, 16, SAMPLEFORMAT_UINT, 1, PHOTOMETRIC_MINISBLACK, COMPRESSION_NONE, 0);
    lt_page(tif, 16, 16, 32, SAMPLEFORMAT_IEEEFP, 1, PHOTOMETRIC_MINISBLACK, COMPRESSION_NONE, 0);
    TIFFClose(tif);

    tif = lt_open("rgb.tif");
    lt_page(tif, 8, 8, 8, SAMPLEFORMAT_UINT, 3, PHOTOMETRIC_RGB, COMPRESSION_NONE, 0);
    TIFFClose(tif);

    tif = lt_open("1bit.tif");
    lt_page(tif, 16, 16, 1, SAMPLEFORMAT_UINT, 1, PHOTOMETRIC_MINISBLACK, COMPRESSION_NONE, 0);
    TIFFClose(tif);

    tif = lt_open("complex.tif");
    lt_page(tif, 8, 8, 64, SAMPLEFORMAT_COMPLEXIEEEFP, 1, PHOTOMETRIC_MINISBLACK,
            COMPRESSION_NONE, 0);
    TIFFClose(tif);

    tif = lt_open("float16.tif");
    lt_page(tif, 8, 8, 16, SAMPLEFORMAT_IEEEFP, 1, PHOTOMETRIC_MINISBLACK, COMPRESSION_NONE, 0);
    TIFFClose(tif);

    /* Two LZW pages; the second page's data is replaced by 0xFF bytes, whose
     * first 9-bit code (511) refers to a table entry that does not exist. */
    tif = lt_open("corrupt-lzw.tif");
    lt_page(tif, 32, 32, 16, SAMPLEFORMAT_UINT, 1, PHOTOMETRIC_MINISBLACK, COMPRESSION_LZW, 0);
    lt_page(tif, 32, 32, 16, SAMPLEFORMAT_UINT, 1, PHOTOMETRIC_MINISBLACK, COMPRESSION_LZW, 0);
    TIFFClose(tif);
    tif = TIFFOpen(path_of("corrupt-lzw.tif"), "r");
    if (!tif || !TIFFSetDirectory(tif, 1)) die("corrupt-lzw reopen");
    uint64_t off = TIFFGetStrileOffset(tif, 0), cnt = TIFFGetStrileByteCount(tif, 0);
    TIFFClose(tif);
    FILE *f = fopen(path_of("corrupt-lzw.tif"), "r+b");
    if (!f || fseek(f, (long)off, SEEK_SET) != 0) die("corrupt-lzw patch");
    for (uint64_t i = 0; i < cnt; i++) fputc(0xFF, f);
    if (fclose(f) != 0) die("corrupt-lzw patch");
    return 0;
}
