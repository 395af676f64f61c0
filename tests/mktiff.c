/* mktiff.c -- write test TIFF stacks with libtiff directly (independently of
 * caimg's own writer), with a known value in every pixel:
 *     value(page, y, x) = (page * 1000 + y * width + x) mod 2^bits
 * (negated for odd pages with signed types; scaled by 0.5 for floats), so
 * tests can check which page landed where.  --fill V writes V in every
 * sample instead, and --first V puts V in the first sample (page 1, y 0,
 * x 0), both parsed by strtod so "inf" and "nan" are values: a label image
 * with one bad pixel.  Also prints a checksum of a
 * TIFF's samples (--sum), to compare round trips without our reader.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tiffio.h>

static void die(const char *m)
{
    fprintf(stderr, "mktiff: %s\n", m);
    exit(2);
}

static int sum_file(const char *path)
{
    TIFF *t = TIFFOpen(path, "r");
    if (!t) die("cannot open");
    unsigned long long h = 1469598103934665603ull;
    int pages = 0;
    do {
        uint32_t w, hgt;
        uint16_t bps;
        TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
        TIFFGetField(t, TIFFTAG_IMAGELENGTH, &hgt);
        TIFFGetField(t, TIFFTAG_BITSPERSAMPLE, &bps);
        size_t px = (size_t)bps / 8, row = (size_t)w * px;
        uint8_t *img = calloc((size_t)hgt, row);
        if (TIFFIsTiled(t)) {
            uint32_t tw, th;
            TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw);
            TIFFGetField(t, TIFFTAG_TILELENGTH, &th);
            uint8_t *tb = malloc((size_t)TIFFTileSize(t));
            for (uint32_t ty = 0; ty < hgt; ty += th)
                for (uint32_t tx = 0; tx < w; tx += tw) {
                    if (TIFFReadTile(t, tb, tx, ty, 0, 0) < 0) die("read error");
                    for (uint32_t y = ty; y < hgt && y < ty + th; y++)
                        for (uint32_t x = tx; x < w && x < tx + tw; x++)
                            memcpy(img + y * row + x * px, tb + ((size_t)(y - ty) * tw + (x - tx)) * px, px);
                }
            free(tb);
        } else {
            for (uint32_t y = 0; y < hgt; y++)
                if (TIFFReadScanline(t, img + y * row, y, 0) < 0) die("read error");
        }
        for (size_t i = 0; i < (size_t)hgt * row; i++)
            h = (h ^ img[i]) * 1099511628211ull;
        free(img);
        pages++;
    } while (TIFFReadDirectory(t));
    TIFFClose(t);
    printf("%d %016llx\n", pages, h);
    return 0;
}

int main(int argc, char **argv)
{
    uint32_t w = 16, h = 8, pages = 4, tile = 0;
    int bits = 16, fmt = SAMPLEFORMAT_UINT, comp = COMPRESSION_NONE, big = 0, be = 0;
    const char *desc = NULL, *out = NULL;
    double fill = NAN, first = NAN;
    int have_fill = 0, have_first = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--sum") && v) return sum_file(v);
        if (!v) die("option needs a value");
        i++;
        if (!strcmp(a, "-o")) out = v;
        else if (!strcmp(a, "-w")) w = (uint32_t)atoi(v);
        else if (!strcmp(a, "-h")) h = (uint32_t)atoi(v);
        else if (!strcmp(a, "-n")) pages = (uint32_t)atoi(v);
        else if (!strcmp(a, "--tile")) tile = (uint32_t)atoi(v);
        else if (!strcmp(a, "--bigtiff")) big = atoi(v);
        else if (!strcmp(a, "--bigendian")) be = atoi(v);
        else if (!strcmp(a, "--description")) desc = v;
        else if (!strcmp(a, "--fill")) { fill = strtod(v, NULL); have_fill = 1; }
        else if (!strcmp(a, "--first")) { first = strtod(v, NULL); have_first = 1; }
        else if (!strcmp(a, "-t")) {
            if (!strcmp(v, "uint8")) { bits = 8; fmt = SAMPLEFORMAT_UINT; }
            else if (!strcmp(v, "int8")) { bits = 8; fmt = SAMPLEFORMAT_INT; }
            else if (!strcmp(v, "uint16")) { bits = 16; fmt = SAMPLEFORMAT_UINT; }
            else if (!strcmp(v, "int16")) { bits = 16; fmt = SAMPLEFORMAT_INT; }
            else if (!strcmp(v, "uint32")) { bits = 32; fmt = SAMPLEFORMAT_UINT; }
            else if (!strcmp(v, "int32")) { bits = 32; fmt = SAMPLEFORMAT_INT; }
            else if (!strcmp(v, "float32")) { bits = 32; fmt = SAMPLEFORMAT_IEEEFP; }
            else if (!strcmp(v, "float64")) { bits = 64; fmt = SAMPLEFORMAT_IEEEFP; }
            else die("unknown type");
        } else if (!strcmp(a, "-c")) {
            if (!strcmp(v, "none")) comp = COMPRESSION_NONE;
            else if (!strcmp(v, "lzw")) comp = COMPRESSION_LZW;
            else if (!strcmp(v, "deflate")) comp = COMPRESSION_ADOBE_DEFLATE;
            else if (!strcmp(v, "packbits")) comp = COMPRESSION_PACKBITS;
            else die("unknown compression");
        } else die("unknown option");
    }
    if (!out) die("no -o");
    char mode[8] = "w";
    if (big) strcat(mode, "8");
    if (be) strcat(mode, "b");
    TIFF *t = TIFFOpen(out, mode);
    if (!t) die("cannot create");
    size_t bps = (size_t)bits / 8;
    uint8_t *img = malloc((size_t)w * h * bps);
    for (uint32_t p = 0; p < pages; p++) {
        TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
        TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
        TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, bits);
        TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, fmt);
        TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
        TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
        TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
        TIFFSetField(t, TIFFTAG_COMPRESSION, comp);
        if (desc && p == 0) TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, desc);
        if (tile) {
            TIFFSetField(t, TIFFTAG_TILEWIDTH, tile);
            TIFFSetField(t, TIFFTAG_TILELENGTH, tile);
        } else TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 3);
        if (pages > 1) {
            TIFFSetField(t, TIFFTAG_SUBFILETYPE, FILETYPE_PAGE);
            TIFFSetField(t, TIFFTAG_PAGENUMBER, p, pages);
        }
        for (uint32_t y = 0; y < h; y++)
            for (uint32_t x = 0; x < w; x++) {
                uint64_t v = (uint64_t)p * 1000 + (uint64_t)y * w + x;
                size_t k = ((size_t)y * w + x) * bps;
                int neg = fmt == SAMPLEFORMAT_INT && (p % 2);
                if (have_fill || (have_first && p == 0 && y == 0 && x == 0)) {
                    /* A chosen value, converted as C converts (floats keep
                     * NaN and infinities). */
                    double d = have_first && p == 0 && y == 0 && x == 0 ? first : fill;
                    if (fmt == SAMPLEFORMAT_IEEEFP && bits == 64) memcpy(img + k, &d, 8);
                    else if (fmt == SAMPLEFORMAT_IEEEFP) { float f = (float)d; memcpy(img + k, &f, 4); }
                    else if (bits == 8) { uint8_t u = (uint8_t)d; memcpy(img + k, &u, 1); }
                    else if (bits == 16) { uint16_t u = (uint16_t)d; memcpy(img + k, &u, 2); }
                    else { uint32_t u = (uint32_t)d; memcpy(img + k, &u, 4); }
                    continue;
                }
                switch (bits) {
                case 8: { uint8_t u = (uint8_t)v; if (neg) u = (uint8_t)-(int8_t)(u & 0x7f); memcpy(img + k, &u, 1); break; }
                case 16: { uint16_t u = (uint16_t)v; if (neg) u = (uint16_t)-(int16_t)(u & 0x7fff); memcpy(img + k, &u, 2); break; }
                case 64: { double d = (double)v * 0.5; memcpy(img + k, &d, 8); break; }
                default:
                    if (fmt == SAMPLEFORMAT_IEEEFP) { float f = (float)v * 0.5f; memcpy(img + k, &f, 4); }
                    else { uint32_t u = (uint32_t)v; if (neg) u = (uint32_t)-(int32_t)u; memcpy(img + k, &u, 4); }
                }
            }
        if (tile) {
            uint8_t *tb = calloc((size_t)tile * tile, bps);
            for (uint32_t ty = 0; ty < h; ty += tile)
                for (uint32_t tx = 0; tx < w; tx += tile) {
                    memset(tb, 0, (size_t)tile * tile * bps);
                    for (uint32_t y = ty; y < h && y < ty + tile; y++)
                        for (uint32_t x = tx; x < w && x < tx + tile; x++)
                            memcpy(tb + ((size_t)(y - ty) * tile + (x - tx)) * bps,
                                   img + ((size_t)y * w + x) * bps, bps);
                    if (TIFFWriteTile(t, tb, tx, ty, 0, 0) < 0) die("write tile");
                }
            free(tb);
        } else {
            for (uint32_t y = 0; y < h; y++)
                if (TIFFWriteScanline(t, img + (size_t)y * w * bps, y, 0) < 0) die("write");
        }
        if (!TIFFWriteDirectory(t)) die("write directory");
    }
    TIFFClose(t);
    free(img);
    return 0;
}
