/* tiffio.c -- reading and writing TIFF stacks with libtiff.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Reading is organised around one walk over every IFD at open time.  The
 * walk validates each page against the first and records, per page, the
 * offset of its IFD (so that any page can be reached with one
 * TIFFSetSubDirectory() call) and, when the page is stored uncompressed in
 * one contiguous run of bytes -- which is how ImageJ, ScanImage, tifffile and
 * most acquisition software write raw stacks -- the offset of that run.
 * Such pages are then read with a single pread() straight into the caller's
 * buffer, bypassing libtiff's directory parsing, which would otherwise cost
 * more than copying a 512x512 frame.  Everything else goes through
 * TIFFReadEncodedStrip()/TIFFReadEncodedTile(), so any compression libtiff
 * decodes is read too.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tiffio.h>

#include "caimg/tiffio.h"
#include "caimg/version.h"
#include "internal.h"

/* A frame of more than 2^31 samples (8 GiB of float) is far beyond any
 * microscope's frame and almost certainly a corrupt header; refusing it
 * before anything is allocated keeps a bad file from exhausting memory. */
#define MAX_FRAME_SAMPLES ((uint64_t)1 << 31)

/* LZW, deflate and PackBits cannot expand data by more than about 1400:1
 * (deflate's limit is 1032:1, LZW's about 1350:1, PackBits' 64:1), so a page
 * whose decoded size exceeds 2048 times the whole file cannot be genuine. */
#define MAX_EXPANSION 2048

/* Tiles may legitimately be larger than a small image, but never by much;
 * this bounds the one tile buffer a bogus TileWidth could make us allocate. */
#define MAX_TILE_SLACK ((uint64_t)64 << 20)

/* ---------------------------------------------------------------------- */
/* Helpers shared by reader and writer                                      */

/* Copy the message libtiff left through caimg_init()'s handler into buf,
 * without a leading "name: " (callers put the file name first themselves),
 * or `fallback` if libtiff said nothing.  The copy is needed because the
 * caller's own caimg_error() overwrites the thread's message buffer. */
static const char *tiff_detail(const char *name, char *buf, size_t n,
                               const char *fallback)
{
    const char *m = caimg_errmsg();
    if (!m || !*m) m = fallback;
    size_t len = name ? strlen(name) : 0;
    if (len && strncmp(m, name, len) == 0 && m[len] == ':' && m[len + 1] == ' ')
        m += len + 2;
    snprintf(buf, n, "%s", m);
    return buf;
}

static caimg_dtype dtype_of(unsigned bits, unsigned format)
{
    /* SAMPLEFORMAT_VOID ("undefined") is what some writers put for plain
     * unsigned data; libtiff itself treats it as unsigned. */
    if (format == SAMPLEFORMAT_UINT || format == SAMPLEFORMAT_VOID) {
        if (bits == 8) return CAIMG_DT_U8;
        if (bits == 16) return CAIMG_DT_U16;
        if (bits == 32) return CAIMG_DT_U32;
    } else if (format == SAMPLEFORMAT_INT) {
        if (bits == 8) return CAIMG_DT_I8;
        if (bits == 16) return CAIMG_DT_I16;
        if (bits == 32) return CAIMG_DT_I32;
        if (bits == 64) return CAIMG_DT_I64;
    } else if (format == SAMPLEFORMAT_IEEEFP) {
        if (bits == 32) return CAIMG_DT_F32;
        if (bits == 64) return CAIMG_DT_F64;
    }
    return CAIMG_DT_NONE;
}

/* A readable name for any (bits, format) pair, including those we do not
 * read, so that messages say "1-bit" or "complex 64-bit float". */
static const char *describe_sample(unsigned bits, unsigned format, char *buf, size_t n)
{
    caimg_dtype dt = dtype_of(bits, format);
    if (dt != CAIMG_DT_NONE) return caimg_dtype_name(dt);
    const char *kind;
    switch (format) {
    case SAMPLEFORMAT_UINT: case SAMPLEFORMAT_VOID: kind = "unsigned integer"; break;
    case SAMPLEFORMAT_INT: kind = "signed integer"; break;
    case SAMPLEFORMAT_IEEEFP: kind = "float"; break;
    case SAMPLEFORMAT_COMPLEXINT: kind = "complex integer"; break;
    case SAMPLEFORMAT_COMPLEXIEEEFP: kind = "complex float"; break;
    default: kind = "unknown-format"; break;
    }
    if (bits == 1)
        snprintf(buf, n, "1-bit (bilevel)");
    else
        snprintf(buf, n, "%u-bit %s", bits, kind);
    return buf;
}

static uint64_t load_u16(const unsigned char *p, int big)
{
    return big ? (uint64_t)p[0] << 8 | p[1] : (uint64_t)p[1] << 8 | p[0];
}

static uint64_t load_uint(const unsigned char *p, int nbytes, int big)
{
    uint64_t v = 0;
    for (int i = 0; i < nbytes; i++)
        v = v << 8 | p[big ? i : nbytes - 1 - i];
    return v;
}

static void swap_samples(void *buf, size_t n, size_t size)
{
    if (size == 2) {
        uint16_t *p = buf;
        for (size_t i = 0; i < n; i++) p[i] = __builtin_bswap16(p[i]);
    } else if (size == 4) {
        uint32_t *p = buf;
        for (size_t i = 0; i < n; i++) p[i] = __builtin_bswap32(p[i]);
    } else if (size == 8) {
        uint64_t *p = buf;
        for (size_t i = 0; i < n; i++) p[i] = __builtin_bswap64(p[i]);
    }
}

int caimg_is_tiff(const char *path)
{
    unsigned char sig[4];
    caimg_init();
    if (!path) return caimg_error(CAIMG_EINVAL, "caimg_is_tiff: no file name");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return caimg_error(errno == ENOENT ? CAIMG_ENOENT : CAIMG_EIO, "%s: %s",
                           path, strerror(errno));
    ssize_t n = pread(fd, sig, sizeof sig, 0);
    int err = errno;
    close(fd);
    if (n < 0) return caimg_error(CAIMG_EIO, "%s: %s", path, strerror(err));
    if (n < 4) return 0;
    return (sig[0] == 'I' && sig[1] == 'I' && (sig[2] == 42 || sig[2] == 43) && sig[3] == 0)
        || (sig[0] == 'M' && sig[1] == 'M' && sig[2] == 0 && (sig[3] == 42 || sig[3] == 43));
}

/* ---------------------------------------------------------------------- */
/* Reader                                                                   */

struct caimg_tiff {
    char *path;
    TIFF *tif;
    int fd;                 /* libtiff's descriptor, also used for pread() */
    uint64_t filesize;
    caimg_tiff_info info;
    size_t sample_size, frame_bytes;
    int swapped;            /* file byte order differs from the host's */
    size_t nifd;            /* pages that have an IFD */
    size_t cap;
    uint64_t *ifd;          /* IFD offset of each page */
    uint64_t *raw;          /* offset of contiguous uncompressed data, 0 if none */
    int virtual_stack;      /* ImageJ: pages after the first follow its data */
    size_t cur;             /* page whose IFD libtiff has loaded, SIZE_MAX if none */
    unsigned char *tilebuf; /* one decoded tile, reused across pages */
    size_t tilecap;
};

/* The properties of the current IFD that decide whether and how it is read. */
typedef struct {
    uint32_t width, height;
    uint16_t bits, format, spp, compression, photometric, fillorder;
    uint32_t subfiletype;
    int tiled;
    uint32_t tw, th, rps;    /* tile size or rows per strip */
} page_props;

static void get_props(TIFF *tif, page_props *p)
{
    memset(p, 0, sizeof *p);
    TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &p->width);
    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &p->height);
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &p->bits);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &p->format);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &p->spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &p->compression);
    TIFFGetFieldDefaulted(tif, TIFFTAG_FILLORDER, &p->fillorder);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SUBFILETYPE, &p->subfiletype);
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &p->photometric))
        p->photometric = PHOTOMETRIC_MINISBLACK;
    p->tiled = TIFFIsTiled(tif);
    if (p->tiled) {
        TIFFGetField(tif, TIFFTAG_TILEWIDTH, &p->tw);
        TIFFGetField(tif, TIFFTAG_TILELENGTH, &p->th);
    } else {
        TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &p->rps);
    }
}

static const char *photometric_hint(unsigned photometric)
{
    switch (photometric) {
    case PHOTOMETRIC_RGB: return " (RGB)";
    case PHOTOMETRIC_YCBCR: return " (YCbCr colour)";
    case PHOTOMETRIC_SEPARATED: return " (CMYK)";
    case PHOTOMETRIC_CIELAB: return " (CIELab colour)";
    default: return "";
    }
}

/* Check the strips or tiles of the current IFD: that there are as many as
 * the image needs, and that each lies inside the file, so that truncation
 * is reported at open time rather than half way through an import.  For
 * uncompressed strips that follow one another without gaps, store the
 * offset of the first in *raw (0 otherwise) so the page can be read with one
 * pread(). */
static int check_striles(caimg_tiff *t, const page_props *p, size_t page, uint64_t *raw)
{
    TIFF *tif = t->tif;
    const char *f = t->path;
    const uint64_t ds = t->sample_size;
    uint64_t n_needed;
    *raw = 0;
    if (p->tiled) {
        if (p->tw == 0 || p->th == 0)
            return caimg_error(CAIMG_EFORMAT, "%s: page %zu has tiles of %ux%u pixels",
                               f, page, p->tw, p->th);
        uint64_t tb = (uint64_t)p->tw * p->th * ds;
        uint64_t limit = CAIMG_MAX(4 * (uint64_t)t->frame_bytes, MAX_TILE_SLACK);
        if (tb > limit)
            return caimg_error(CAIMG_EFORMAT, "%s: page %zu has %ux%u tiles, absurd for a "
                               "%ux%u image", f, page, p->tw, p->th, p->width, p->height);
        n_needed = ((uint64_t)p->width + p->tw - 1) / p->tw
                 * (((uint64_t)p->height + p->th - 1) / p->th);
    } else {
        if (p->rps == 0)
            return caimg_error(CAIMG_EFORMAT, "%s: page %zu has RowsPerStrip 0", f, page);
        n_needed = ((uint64_t)p->height + p->rps - 1) / p->rps;
    }
    uint64_t n_have = p->tiled ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
    if (n_have < n_needed)
        return caimg_error(CAIMG_EFORMAT, "%s: page %zu has %llu %s, the image needs %llu",
                           f, page, (unsigned long long)n_have,
                           p->tiled ? "tiles" : "strips", (unsigned long long)n_needed);

    const uint64_t rowbytes = (uint64_t)p->width * ds;
    const uint64_t rps = CAIMG_MIN((uint64_t)p->rps, (uint64_t)p->height);
    int contiguous = !p->tiled && p->compression == COMPRESSION_NONE
                     && p->fillorder == FILLORDER_MSB2LSB;
    uint64_t first = 0;
    for (uint64_t s = 0; s < n_needed; s++) {
        int err = 0;
        uint64_t off = TIFFGetStrileOffsetWithErr(tif, (uint32_t)s, &err);
        uint64_t cnt = err ? 0 : TIFFGetStrileByteCountWithErr(tif, (uint32_t)s, &err);
        if (err)
            return caimg_error(CAIMG_EFORMAT, "%s: page %zu: cannot read the location of %s %llu",
                               f, page, p->tiled ? "tile" : "strip", (unsigned long long)s);
        if (off > t->filesize || cnt > t->filesize - off)
            return caimg_error(CAIMG_EFORMAT, "%s: page %zu: %s %llu (bytes %llu to %llu) lies "
                               "past the end of the file (%llu bytes); the file is truncated",
                               f, page, p->tiled ? "tile" : "strip", (unsigned long long)s,
                               (unsigned long long)off, (unsigned long long)(off + cnt),
                               (unsigned long long)t->filesize);
        if (!p->tiled && p->compression == COMPRESSION_NONE) {
            uint64_t rows = CAIMG_MIN(rps, p->height - s * rps);
            if (cnt < rows * rowbytes)
                return caimg_error(CAIMG_EFORMAT, "%s: page %zu: strip %llu holds %llu bytes, "
                                   "expected %llu", f, page, (unsigned long long)s,
                                   (unsigned long long)cnt,
                                   (unsigned long long)(rows * rowbytes));
            if (s == 0) first = off;
            else if (off != first + s * rps * rowbytes) contiguous = 0;
        }
    }
    if (contiguous && first > 0) *raw = first;
    return CAIMG_OK;
}

/* Validate the IFD libtiff has current as page `page` (1-based); for page 1,
 * fill in the frame geometry that later pages are checked against. */
static int check_page(caimg_tiff *t, const page_props *p, size_t page, uint64_t *raw)
{
    const char *f = t->path;
    char what[64], want[64];
    if (p->spp != 1)
        return caimg_error(CAIMG_EUNSUP, "%s: page %zu has %u samples per pixel%s; caimg reads "
                           "single-channel (grayscale) images only", f, page, p->spp,
                           photometric_hint(p->photometric));
    caimg_dtype dt = dtype_of(p->bits, p->format);
    if (page == 1) {
        if (dt == CAIMG_DT_NONE)
            return caimg_error(CAIMG_EUNSUP, "%s: page 1 has %s samples; caimg reads 8/16/32-bit "
                               "integer and 32/64-bit float samples",
                               f, describe_sample(p->bits, p->format, what, sizeof what));
        if (p->width == 0 || p->height == 0)
            return caimg_error(CAIMG_EFORMAT, "%s: page 1 is %ux%u (height x width), an empty "
                               "image", f, p->height, p->width);
        uint64_t samples = (uint64_t)p->width * p->height;
        if (samples > MAX_FRAME_SAMPLES)
            return caimg_error(CAIMG_EFORMAT, "%s: page 1 claims %ux%u pixels, more than the %llu "
                               "samples per frame caimg accepts; the header is probably corrupt",
                               f, p->height, p->width, (unsigned long long)MAX_FRAME_SAMPLES);
        uint64_t bytes = samples * caimg_dtype_size(dt);
        int known = p->compression == COMPRESSION_NONE || p->compression == COMPRESSION_LZW
                 || p->compression == COMPRESSION_ADOBE_DEFLATE
                 || p->compression == COMPRESSION_DEFLATE || p->compression == COMPRESSION_PACKBITS;
        uint64_t ratio = p->compression == COMPRESSION_NONE ? 1 : MAX_EXPANSION;
        if (known && bytes / ratio > t->filesize)
            return caimg_error(CAIMG_EFORMAT, "%s: page 1 claims %ux%u %s pixels (%llu bytes%s) but "
                               "the file has only %llu bytes; the header is corrupt or the "
                               "file truncated", f, p->height, p->width, caimg_dtype_name(dt),
                               (unsigned long long)bytes,
                               ratio > 1 ? ", too many for any compression" : "",
                               (unsigned long long)t->filesize);
        t->info.width = p->width;
        t->info.height = p->height;
        t->info.dtype = dt;
        t->sample_size = caimg_dtype_size(dt);
        t->frame_bytes = (size_t)bytes;
    } else {
        if (p->width != t->info.width || p->height != t->info.height)
            return caimg_error(CAIMG_EFORMAT, "%s: page %zu is %ux%u, expected %zux%zu (height x "
                               "width)", f, page, p->height, p->width, t->info.height,
                               t->info.width);
        if (dt != t->info.dtype) {
            snprintf(want, sizeof want, "%s", caimg_dtype_name(t->info.dtype));
            return caimg_error(dt == CAIMG_DT_NONE ? CAIMG_EUNSUP : CAIMG_EFORMAT,
                               "%s: page %zu is %s, expected %s", f, page,
                               describe_sample(p->bits, p->format, what, sizeof what), want);
        }
    }
    if (!TIFFIsCODECConfigured(p->compression)) {
        const TIFFCodec *c = TIFFFindCODEC(p->compression);
        return caimg_error(CAIMG_EUNSUP, "%s: page %zu uses compression %u%s%s%s, which this "
                           "libtiff cannot decode", f, page, p->compression,
                           c ? " (" : "", c ? c->name : "", c ? ")" : "");
    }
    return check_striles(t, p, page, raw);
}

/* Micrometres per unit named by ImageJ's "unit=" value, 0 if unknown.
 * ImageJ writes the micro sign escaped as "\u00B5m"; other writers use
 * UTF-8 or Latin-1, or spell it out. */
static double unit_um(const char *u)
{
    static const struct { const char *name; double um; } units[] = {
        {"micron", 1}, {"microns", 1}, {"um", 1}, {"\\u00B5m", 1}, {"\\u00b5m", 1},
        {"\xc2\xb5m", 1}, {"\xb5m", 1}, {"\xce\xbcm", 1}, {"micrometer", 1},
        {"nm", 1e-3}, {"nanometer", 1e-3}, {"mm", 1e3}, {"millimeter", 1e3},
        {"cm", 1e4}, {"m", 1e6}, {"meter", 1e6}, {"inch", 25400},
    };
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (strcmp(u, units[i].name) == 0) return units[i].um;
    return 0;
}

/* Seconds per unit named by ImageJ's "tunit=", 0 if unknown. */
static double tunit_s(const char *u)
{
    static const struct { const char *name; double s; } units[] = {
        {"sec", 1}, {"s", 1}, {"second", 1}, {"seconds", 1}, {"ms", 1e-3}, {"msec", 1e-3},
        {"us", 1e-6}, {"\\u00B5s", 1e-6}, {"\xc2\xb5s", 1e-6}, {"min", 60}, {"hour", 3600},
    };
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (strcmp(u, units[i].name) == 0) return units[i].s;
    return 0;
}

static size_t parse_count(const char *v)
{
    char *end;
    errno = 0;
    if (*v == '-') return 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || end == v || n > SIZE_MAX) return 0;
    return (size_t)n;
}

/* Parse ImageJ's "key=value" lines.  Returns the micrometres per
 * calibration unit (0 if none or unknown). */
static double parse_imagej(const char *desc, caimg_tiff_info *info)
{
    double um = 0, finterval = 0, tscale = 1;
    const char *p = desc;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char line[256];
        if (len < sizeof line) {
            memcpy(line, p, len);
            line[len] = '\0';
            if (len && line[len - 1] == '\r') line[len - 1] = '\0';
            char *eq = strchr(line, '=');
            if (eq) {
                *eq = '\0';
                const char *k = line, *v = eq + 1;
                if (strcmp(k, "images") == 0) info->ij_images = parse_count(v);
                else if (strcmp(k, "channels") == 0) info->ij_channels = parse_count(v);
                else if (strcmp(k, "slices") == 0) info->ij_slices = parse_count(v);
                else if (strcmp(k, "frames") == 0) info->ij_frames = parse_count(v);
                else if (strcmp(k, "finterval") == 0) finterval = strtod(v, NULL);
                else if (strcmp(k, "tunit") == 0) tscale = tunit_s(v);
                else if (strcmp(k, "unit") == 0) um = unit_um(v);
            }
        }
        if (!eol) break;
        p = eol + 1;
    }
    if (isfinite(finterval) && finterval > 0) info->ij_finterval = finterval * tscale;
    return um;
}

/* Metadata from the first IFD: ImageJ description and pixel size. */
static void read_metadata(caimg_tiff *t)
{
    TIFF *tif = t->tif;
    caimg_tiff_info *info = &t->info;
    char *desc = NULL;
    double ij_um = 0;
    if (TIFFGetField(tif, TIFFTAG_IMAGEDESCRIPTION, &desc) && desc) {
        snprintf(info->description, sizeof info->description, "%s", desc);
        if (strncmp(desc, "ImageJ=", 7) == 0) ij_um = parse_imagej(desc, info);
    }
    float xres = 0, yres = 0;
    uint16_t resunit = RESUNIT_INCH;
    int hx = TIFFGetField(tif, TIFFTAG_XRESOLUTION, &xres);
    int hy = TIFFGetField(tif, TIFFTAG_YRESOLUTION, &yres);
    TIFFGetFieldDefaulted(tif, TIFFTAG_RESOLUTIONUNIT, &resunit);
    double per_unit = 0;
    if (ij_um > 0) per_unit = ij_um;
    else if (resunit == RESUNIT_CENTIMETER) per_unit = 1e4;
    /* 72 dpi is the placeholder that image libraries write when they know
     * nothing about the pixel size; a 353 um pixel is not a microscope's. */
    else if (resunit == RESUNIT_INCH && !(hx && xres == 72.0f)) per_unit = 25400;
    if (per_unit > 0) {
        if (hx && isfinite(xres) && xres > 0) info->pixel_um_x = per_unit / xres;
        if (hy && isfinite(yres) && yres > 0) info->pixel_um_y = per_unit / yres;
    }
}

static int grow_pages(caimg_tiff *t)
{
    size_t cap = t->cap ? 2 * t->cap : 64;
    uint64_t *ifd = realloc(t->ifd, caimg_mul(cap, sizeof *ifd));
    if (!ifd) return caimg_error(CAIMG_ENOMEM, "%s: out of memory listing pages", t->path);
    t->ifd = ifd;
    uint64_t *raw = realloc(t->raw, caimg_mul(cap, sizeof *raw));
    if (!raw) return caimg_error(CAIMG_ENOMEM, "%s: out of memory listing pages", t->path);
    t->raw = raw;
    t->cap = cap;
    return CAIMG_OK;
}

/* Check the fixed-size header ourselves, because libtiff's messages for
 * the commonest mistakes (an empty file, a PNG renamed .tif) are cryptic. */
static int check_header(const char *f, int fd, uint64_t size)
{
    unsigned char h[16];
    if (size == 0)
        return caimg_error(CAIMG_EFORMAT, "%s: empty file (0 bytes), not a TIFF", f);
    ssize_t n = pread(fd, h, sizeof h, 0);
    if (n < 0) return caimg_error(CAIMG_EIO, "%s: %s", f, strerror(errno));
    int little = n >= 2 && h[0] == 'I' && h[1] == 'I';
    int big = n >= 2 && h[0] == 'M' && h[1] == 'M';
    if ((n >= 1 && h[0] != 'I' && h[0] != 'M') || (n >= 2 && !little && !big))
        return caimg_error(CAIMG_EFORMAT, "%s: not a TIFF file (it does not start with II or MM)", f);
    if (n < 4)
        return caimg_error(CAIMG_EFORMAT, "%s: truncated TIFF header (%zd bytes)", f, n);
    uint64_t version = load_u16(h + 2, big);
    if (version != 42 && version != 43)
        return caimg_error(CAIMG_EFORMAT, "%s: not a TIFF file (version %llu, expected 42 or 43)",
                           f, (unsigned long long)version);
    uint64_t ifd;
    if (version == 42) {
        if (n < 8)
            return caimg_error(CAIMG_EFORMAT, "%s: truncated TIFF header (%zd bytes)", f, n);
        ifd = load_uint(h + 4, 4, big);
    } else {
        if (n < 16)
            return caimg_error(CAIMG_EFORMAT, "%s: truncated BigTIFF header (%zd bytes)", f, n);
        if (load_u16(h + 4, big) != 8 || load_u16(h + 6, big) != 0)
            return caimg_error(CAIMG_EFORMAT, "%s: malformed BigTIFF header", f);
        ifd = load_uint(h + 8, 8, big);
    }
    if (ifd == 0)
        return caimg_error(CAIMG_EFORMAT, "%s: the TIFF has no pages (its first IFD offset is 0)", f);
    if (ifd >= size)
        return caimg_error(CAIMG_EFORMAT, "%s: the first IFD is at byte %llu but the file has "
                           "only %llu bytes; the file is truncated", f,
                           (unsigned long long)ifd, (unsigned long long)size);
    return CAIMG_OK;
}

/* ImageJ writes stacks too large for a classic TIFF's 32-bit offsets -- and,
 * in "virtual stack" mode, any stack -- as one IFD whose description says
 * images=N, followed by all N frames back to back.  Decide whether this
 * file is such a stack and, if so, check that all frames are there. */
static int check_imagej_stack(caimg_tiff *t)
{
    size_t n = t->info.ij_images;
    if (n <= t->nifd) return CAIMG_OK;
    /* Such a stack has one IFD, written before the data.  A file of more
     * pages than one, or whose IFD follows its data, is a plain TIFF whose
     * description was copied from a larger stack (tiffcp, a cropped
     * export): its pages are what there is, and the frames the
     * description claims after the first page's data would be other
     * pages' headers and data. */
    if (t->nifd > 1 || !t->raw[0] || t->ifd[0] > t->raw[0]) {
        caimg_warn("%s: the ImageJ description says %zu images but the file has %zu pages; "
                   "reading %zu", t->path, n, t->nifd, t->nifd);
        /* Channels and slices that do not fit in the file even once came
         * with the stale description too (a single page described as one
         * of 3500 slices): the pages are then plain frames. */
        size_t c = t->info.ij_channels ? t->info.ij_channels : 1;
        size_t z = t->info.ij_slices ? t->info.ij_slices : 1;
        if (c * z > t->nifd) {
            t->info.ij_channels = t->info.ij_slices = 0;
            t->info.ij_frames = 0;
        }
        return CAIMG_OK;
    }
    uint64_t avail = t->filesize - t->raw[0];
    if (avail / t->frame_bytes < n)
        return caimg_error(CAIMG_EFORMAT, "%s: ImageJ stack of %zu images of %zu bytes, but the "
                           "file holds only %llu complete images after byte %llu; it is "
                           "truncated", t->path, n, t->frame_bytes,
                           (unsigned long long)(avail / t->frame_bytes),
                           (unsigned long long)t->raw[0]);
    t->virtual_stack = 1;
    t->info.npages = n;
    return CAIMG_OK;
}

caimg_tiff *caimg_tiff_open(const char *path)
{
    caimg_init();
    if (!path) {
        caimg_error(CAIMG_EINVAL, "caimg_tiff_open: no file name");
        return NULL;
    }
    caimg_tiff *t = caimg_calloc(1, sizeof *t, "a TIFF reader");
    if (!t) return NULL;
    t->fd = -1;
    t->cur = SIZE_MAX;
    t->path = caimg_strdup(path);
    if (!t->path) goto fail;

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        caimg_error(errno == ENOENT ? CAIMG_ENOENT : CAIMG_EIO, "%s: %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        caimg_error(CAIMG_EIO, "%s: %s", path, fstat(fd, &st) != 0 ? strerror(errno)
                    : S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
        close(fd);
        goto fail;
    }
    t->filesize = (uint64_t)st.st_size;
    if (check_header(path, fd, t->filesize) != CAIMG_OK) {
        close(fd);
        goto fail;
    }

    /* "m": no memory mapping, so that uncompressed strips are read straight
     * into our buffer and a file truncated behind our back gives an error,
     * not SIGBUS.  "c": no strip chopping, so we see the strips on disk. */
    char detail[768];
    caimg_clear_error();
    t->tif = TIFFFdOpen(fd, path, "rmc");
    if (!t->tif) {
        caimg_error(CAIMG_EFORMAT, "%s: cannot read the first IFD: %s", path,
                    tiff_detail(path, detail, sizeof detail, "libtiff failed"));
        close(fd);
        goto fail;
    }
    t->fd = fd;
    t->info.bigtiff = TIFFIsBigTIFF(t->tif) ? 1 : 0;
    t->swapped = TIFFIsByteSwapped(t->tif) ? 1 : 0;

    /* Walk every IFD once.  Reduced-resolution IFDs (thumbnails, which some
     * writers append) are not pages of the stack and are skipped. */
    size_t skipped = 0;
    for (;;) {
        page_props p;
        get_props(t->tif, &p);
        int thumbnail = (p.subfiletype & FILETYPE_REDUCEDIMAGE) && t->nifd > 0;
        if (thumbnail) {
            skipped++;
            t->cur = SIZE_MAX;
        } else {
            if (t->nifd == t->cap && grow_pages(t) != CAIMG_OK) goto fail;
            uint64_t raw;
            if (check_page(t, &p, t->nifd + 1, &raw) != CAIMG_OK) goto fail;
            if (t->nifd == 0) {
                read_metadata(t);
                /* Values are returned as stored; say so when the file asks
                 * for them to be shown otherwise. */
                if (p.photometric == PHOTOMETRIC_MINISWHITE)
                    caimg_warn("%s: the image is stored inverted (0 = white); values are read "
                               "as stored", path);
                else if (p.photometric == PHOTOMETRIC_PALETTE)
                    caimg_warn("%s: the image has a colour palette; its indices are read as "
                               "values", path);
            }
            t->ifd[t->nifd] = TIFFCurrentDirOffset(t->tif);
            t->raw[t->nifd] = raw;
            t->cur = t->nifd;
            t->nifd++;
        }
        if (TIFFLastDirectory(t->tif)) break;
        caimg_clear_error();
        if (!TIFFReadDirectory(t->tif)) {
            caimg_error(CAIMG_EFORMAT, "%s: cannot read the IFD after page %zu: %s", path,
                        t->nifd, tiff_detail(path, detail, sizeof detail,
                                             "it is corrupt or the IFDs form a loop"));
            goto fail;
        }
    }
    if (skipped)
        caimg_warn("%s: skipped %zu reduced-resolution (thumbnail) IFDs", path, skipped);
    t->info.npages = t->nifd;
    if (check_imagej_stack(t) != CAIMG_OK) goto fail;
    return t;

fail:
    caimg_tiff_close(t);
    return NULL;
}

const caimg_tiff_info *caimg_tiff_get_info(const caimg_tiff *t)
{
    return t ? &t->info : NULL;
}

/* Read one page stored as contiguous uncompressed bytes at `off`. */
static int read_raw(caimg_tiff *t, size_t page, uint64_t off, void *buf)
{
    unsigned char *dst = buf;
    size_t left = t->frame_bytes;
    while (left) {
        ssize_t n = pread(t->fd, dst, CAIMG_MIN(left, (size_t)1 << 30), (off_t)off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return caimg_error(CAIMG_EIO, "%s: page %zu: read error: %s", t->path, page + 1,
                               strerror(errno));
        }
        if (n == 0)
            return caimg_error(CAIMG_EFORMAT, "%s: page %zu: the file ends inside the image data; "
                               "it is truncated", t->path, page + 1);
        dst += n;
        off += (uint64_t)n;
        left -= (size_t)n;
    }
    if (t->swapped && t->sample_size > 1)
        swap_samples(buf, t->frame_bytes / t->sample_size, t->sample_size);
    return CAIMG_OK;
}

static int decode_error(caimg_tiff *t, size_t page, const char *what, uint64_t index)
{
    char detail[768];
    uint16_t c = COMPRESSION_NONE;
    TIFFGetFieldDefaulted(t->tif, TIFFTAG_COMPRESSION, &c);
    const TIFFCodec *codec = TIFFFindCODEC(c);
    tiff_detail(t->path, detail, sizeof detail, "libtiff gave no reason");
    return caimg_error(CAIMG_EFORMAT, "%s: page %zu: cannot decode %s %llu (%s data): %s",
                       t->path, page + 1, what, (unsigned long long)index,
                       codec ? codec->name : "unknown", detail);
}

/* Decode the current IFD's strips straight into the output: strip s holds
 * rows [s*rps, (s+1)*rps), which are contiguous in a row-major frame. */
static int read_strips(caimg_tiff *t, size_t page, unsigned char *dst)
{
    uint32_t rps = 0;
    TIFFGetFieldDefaulted(t->tif, TIFFTAG_ROWSPERSTRIP, &rps);
    const size_t h = t->info.height, rowbytes = t->info.width * t->sample_size;
    const size_t r = CAIMG_MIN((size_t)rps, h);
    for (size_t s = 0, y = 0; y < h; s++, y += r) {
        size_t bytes = CAIMG_MIN(r, h - y) * rowbytes;
        caimg_clear_error();
        tmsize_t got = TIFFReadEncodedStrip(t->tif, (uint32_t)s, dst + y * rowbytes,
                                            (tmsize_t)bytes);
        if (got != (tmsize_t)bytes) return decode_error(t, page, "strip", s);
    }
    return CAIMG_OK;
}

/* Decode tiles into a reusable buffer and copy their inside-the-image part;
 * tiles on the right and bottom edges extend past the image. */
static int read_tiles(caimg_tiff *t, size_t page, unsigned char *dst)
{
    uint32_t tw = 0, th = 0;
    TIFFGetField(t->tif, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(t->tif, TIFFTAG_TILELENGTH, &th);
    const size_t ds = t->sample_size, w = t->info.width, h = t->info.height;
    const size_t tb = (size_t)tw * th * ds, rowbytes = w * ds;
    if (tb > t->tilecap) {
        unsigned char *b = realloc(t->tilebuf, tb);
        if (!b)
            return caimg_error(CAIMG_ENOMEM, "%s: out of memory for a %ux%u tile", t->path, tw, th);
        t->tilebuf = b;
        t->tilecap = tb;
    }
    for (size_t y = 0; y < h; y += th) {
        size_t rows = CAIMG_MIN((size_t)th, h - y);
        for (size_t x = 0; x < w; x += tw) {
            size_t cols = CAIMG_MIN((size_t)tw, w - x);
            uint32_t idx = TIFFComputeTile(t->tif, (uint32_t)x, (uint32_t)y, 0, 0);
            caimg_clear_error();
            tmsize_t got = TIFFReadEncodedTile(t->tif, idx, t->tilebuf, (tmsize_t)tb);
            if (got != (tmsize_t)tb) return decode_error(t, page, "tile", idx);
            for (size_t r = 0; r < rows; r++)
                memcpy(dst + (y + r) * rowbytes + x * ds, t->tilebuf + r * tw * ds, cols * ds);
        }
    }
    return CAIMG_OK;
}

int caimg_tiff_read_page(caimg_tiff *t, size_t page, void *buf)
{
    if (!t || !buf) return caimg_error(CAIMG_EINVAL, "caimg_tiff_read_page: NULL argument");
    if (page >= t->info.npages)
        return caimg_error(CAIMG_EINVAL, "%s: page %zu does not exist (the file has %zu pages)",
                           t->path, page + 1, t->info.npages);
    if (t->virtual_stack)
        return read_raw(t, page, t->raw[0] + (uint64_t)page * t->frame_bytes, buf);
    if (t->raw[page]) return read_raw(t, page, t->raw[page], buf);

    if (t->cur != page) {
        caimg_clear_error();
        if (!TIFFSetSubDirectory(t->tif, t->ifd[page])) {
            char detail[768];
            t->cur = SIZE_MAX;
            return caimg_error(CAIMG_EFORMAT, "%s: page %zu: cannot read its IFD: %s", t->path,
                               page + 1, tiff_detail(t->path, detail, sizeof detail,
                                                     "libtiff failed"));
        }
        t->cur = page;
    }
    return TIFFIsTiled(t->tif) ? read_tiles(t, page, buf) : read_strips(t, page, buf);
}

void caimg_tiff_close(caimg_tiff *t)
{
    if (!t) return;
    if (t->tif) TIFFClose(t->tif);   /* also closes t->fd */
    free(t->path);
    free(t->ifd);
    free(t->raw);
    free(t->tilebuf);
    free(t);
}

/* ---------------------------------------------------------------------- */
/* Writer                                                                   */

/* Past this many bytes a classic TIFF's 32-bit offsets may no longer
 * reach the end of the file; the margin below 2^32 covers our estimate's
 * error (IFDs, descriptions, compression overhead). */
#define BIGTIFF_THRESHOLD 4.0e9

struct caimg_tiff_writer {
    char *path, *tmp;
    TIFF *tif;
    caimg_tiff_wopts o;
    size_t width, height, npages, written;
    size_t ds;              /* bytes per sample */
    size_t rps;             /* rows per strip */
    unsigned char *buf;     /* one strip or one tile, reused for every page */
    size_t bufsize;
    char *desc;             /* ImageJ description, NULL if none */
    int failed;
};

void caimg_tiff_wopts_init(caimg_tiff_wopts *o, caimg_dtype dtype)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->dtype = dtype == CAIMG_DT_NONE ? CAIMG_DT_U16 : dtype;
    o->compression = CAIMG_TIFF_NONE;
    o->bigtiff = -1;
    o->tile = 0;
    o->imagej = 1;
}

/* Rows per strip giving strips of about 64 KiB: big enough that per-strip
 * overhead is negligible, small enough for readers that load whole strips. */
static size_t strip_rows(size_t width, size_t height, size_t ds)
{
    size_t rowbytes = CAIMG_MAX(width * ds, (size_t)1);
    size_t r = CAIMG_MAX((size_t)65536 / rowbytes, (size_t)1);
    return CAIMG_MIN(r, height);
}

int caimg_tiff_wants_bigtiff(size_t width, size_t height, size_t npages,
                             const caimg_tiff_wopts *opts)
{
    caimg_tiff_wopts def;
    if (!opts) {
        caimg_tiff_wopts_init(&def, CAIMG_DT_U16);
        opts = &def;
    }
    if (opts->bigtiff >= 0) return opts->bigtiff ? 1 : 0;
    double ds = (double)caimg_dtype_size(opts->dtype);
    double data, nstriles;
    if (opts->tile) {
        /* Edge tiles are stored whole, padding included. */
        double tx = ceil((double)width / opts->tile), ty = ceil((double)height / opts->tile);
        nstriles = tx * ty;
        data = nstriles * (double)opts->tile * (double)opts->tile * ds;
    } else {
        size_t r = strip_rows(width, height, (size_t)ds);
        nstriles = ceil((double)height / (double)CAIMG_MAX(r, (size_t)1));
        data = (double)width * (double)height * ds;
    }
    /* Compressed data can be larger than raw: LZW by up to 12 bits per
     * byte on incompressible noise, PackBits by one byte per 128, deflate
     * by a few bytes per 16 KiB block.  Plan for the worst case. */
    static const double expansion[] = {1.0, 1.5, 1.001, 1.0 + 1.0 / 128};
    unsigned c = (unsigned)opts->compression;
    data *= c < sizeof expansion / sizeof *expansion ? expansion[c] : 1.5;
    /* An IFD of ~20 entries, its StripOffsets/StripByteCounts arrays, and
     * slack for the description on page 1. */
    double per_page = data + 512 + 16 * nstriles;
    return 4096 + (double)npages * per_page > BIGTIFF_THRESHOLD;
}

static int werror(caimg_tiff_writer *w, int status, const char *what)
{
    char detail[768];
    /* libtiff's messages ("Write error at scanline 0") do not say why; the
     * operating system's reason (a full disk) does.  errno is cleared
     * before each page and flush, so a value here came from their I/O. */
    if (errno) snprintf(detail, sizeof detail, "%s", strerror(errno));
    else tiff_detail(w->tmp, detail, sizeof detail, "libtiff failed");
    w->failed = 1;
    return caimg_error(status, "%s: %s: %s", w->path, what, detail);
}

caimg_tiff_writer *caimg_tiff_writer_create(const char *path, size_t width,
                                            size_t height, size_t npages,
                                            const caimg_tiff_wopts *opts)
{
    caimg_init();
    caimg_tiff_wopts def;
    if (!opts) {
        caimg_tiff_wopts_init(&def, CAIMG_DT_U16);
        opts = &def;
    }
    if (!path || !*path) {
        caimg_error(CAIMG_EINVAL, "caimg_tiff_writer_create: no file name");
        return NULL;
    }
    if (caimg_output_ok(path)) return NULL;
    if (width == 0 || height == 0 || npages == 0) {
        caimg_error(CAIMG_EINVAL, "%s: cannot write a %zux%zu stack of %zu pages", path, width,
                    height, npages);
        return NULL;
    }
    if ((uint64_t)width * height > MAX_FRAME_SAMPLES || width > UINT32_MAX || height > UINT32_MAX) {
        caimg_error(CAIMG_EINVAL, "%s: frames of %zux%zu are too large to write", path, width,
                    height);
        return NULL;
    }
    size_t ds = caimg_dtype_size(opts->dtype);
    if (ds == 0) {
        caimg_error(CAIMG_EINVAL, "%s: no sample type given for writing", path);
        return NULL;
    }
    if (opts->tile % 16 != 0 || opts->tile > 65536) {
        caimg_error(CAIMG_EINVAL, "%s: tile size %zu is not a multiple of 16 up to 65536", path,
                    opts->tile);
        return NULL;
    }
    if ((unsigned)opts->compression > CAIMG_TIFF_PACKBITS) {
        caimg_error(CAIMG_EINVAL, "%s: unknown compression %d", path, (int)opts->compression);
        return NULL;
    }
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        caimg_error(CAIMG_EINVAL, "%s: is a directory", path);
        return NULL;
    }

    caimg_tiff_writer *w = caimg_calloc(1, sizeof *w, "a TIFF writer");
    if (!w) return NULL;
    w->o = *opts;
    w->width = width;
    w->height = height;
    w->npages = npages;
    w->ds = ds;
    w->path = caimg_strdup(path);
    size_t n = strlen(path) + 32;
    w->tmp = caimg_malloc(n, 1, "a file name");
    if (!w->path || !w->tmp) goto fail;
    snprintf(w->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    caimg_temp_register(w->tmp);

    if (opts->tile) {
        w->bufsize = opts->tile * opts->tile * ds;
    } else {
        w->rps = strip_rows(width, height, ds);
        w->bufsize = w->rps * width * ds;
    }
    w->buf = caimg_malloc(w->bufsize, 1, "a TIFF strip buffer");
    if (!w->buf) goto fail;

    if (opts->imagej) {
        char d[512];
        int len = snprintf(d, sizeof d, "ImageJ=1.53t\nimages=%zu\n", npages);
        if (npages > 1) len += snprintf(d + len, sizeof d - len, "frames=%zu\n", npages);
        if (opts->fs > 0 && isfinite(opts->fs))
            len += snprintf(d + len, sizeof d - len, "finterval=%.17g\n", 1.0 / opts->fs);
        if (opts->pixel_um > 0 && isfinite(opts->pixel_um))
            len += snprintf(d + len, sizeof d - len, "unit=micron\n");
        snprintf(d + len, sizeof d - len, "loop=false\n");
        w->desc = caimg_strdup(d);
        if (!w->desc) goto fail;
    }

    int bigtiff = caimg_tiff_wants_bigtiff(width, height, npages, opts);
    int fd = open(w->tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        caimg_error(errno == ENOENT ? CAIMG_ENOENT : CAIMG_EIO, "%s: cannot create %s: %s",
                    path, w->tmp, strerror(errno));
        goto fail;
    }
    caimg_clear_error();
    w->tif = TIFFFdOpen(fd, w->tmp, bigtiff ? "w8" : "w");
    if (!w->tif) {
        close(fd);
        werror(w, CAIMG_EIO, "cannot start the TIFF");
        unlink(w->tmp);
        goto fail;
    }
    return w;

fail:
    if (w->tif) {
        TIFFClose(w->tif);
        unlink(w->tmp);
    }
    w->tif = NULL;
    free(w->path);
    caimg_temp_unregister(w->tmp);
    free(w->tmp);
    free(w->buf);
    free(w->desc);
    free(w);
    return NULL;
}

static int set_tags(caimg_tiff_writer *w)
{
    TIFF *tif = w->tif;
    const caimg_tiff_wopts *o = &w->o;
    int isfloat = caimg_dtype_is_float(o->dtype);
    int issigned = o->dtype == CAIMG_DT_I8 || o->dtype == CAIMG_DT_I16 || o->dtype == CAIMG_DT_I32
                   || o->dtype == CAIMG_DT_I64;
    static const uint16_t comp[] = {COMPRESSION_NONE, COMPRESSION_LZW,
                                    COMPRESSION_ADOBE_DEFLATE, COMPRESSION_PACKBITS};
    int ok = TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, (uint32_t)w->width)
        && TIFFSetField(tif, TIFFTAG_IMAGELENGTH, (uint32_t)w->height)
        && TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, (int)(8 * w->ds))
        && TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1)
        && TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, isfloat ? SAMPLEFORMAT_IEEEFP
                        : issigned ? SAMPLEFORMAT_INT : SAMPLEFORMAT_UINT)
        && TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK)
        && TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG)
        && TIFFSetField(tif, TIFFTAG_COMPRESSION, comp[o->compression]);
    /* Horizontal differencing makes LZW and deflate several times more
     * effective on smooth integer images.  Floats are left unpredicted:
     * ImageJ does not read the floating-point predictor. */
    if (ok && !isfloat && (o->compression == CAIMG_TIFF_LZW || o->compression == CAIMG_TIFF_DEFLATE))
        ok = TIFFSetField(tif, TIFFTAG_PREDICTOR, PREDICTOR_HORIZONTAL);
    if (ok && o->tile)
        ok = TIFFSetField(tif, TIFFTAG_TILEWIDTH, (uint32_t)o->tile)
          && TIFFSetField(tif, TIFFTAG_TILELENGTH, (uint32_t)o->tile);
    else if (ok)
        ok = TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, (uint32_t)w->rps);
    if (ok && o->pixel_um > 0 && isfinite(o->pixel_um)) {
        /* ImageJ stores pixels per unit with ResolutionUnit "none" and the
         * unit in its description; other readers need a real unit. */
        double per = o->imagej ? 1.0 / o->pixel_um : 1e4 / o->pixel_um;
        ok = TIFFSetField(tif, TIFFTAG_XRESOLUTION, per)
          && TIFFSetField(tif, TIFFTAG_YRESOLUTION, per)
          && TIFFSetField(tif, TIFFTAG_RESOLUTIONUNIT, o->imagej ? RESUNIT_NONE : RESUNIT_CENTIMETER);
    }
    if (ok && w->written == 0) {
        char sw[64];
        snprintf(sw, sizeof sw, "caimg %s", caimg_version());
        ok = TIFFSetField(tif, TIFFTAG_SOFTWARE, sw)
          && (!w->desc || TIFFSetField(tif, TIFFTAG_IMAGEDESCRIPTION, w->desc));
    }
    return ok ? CAIMG_OK : werror(w, CAIMG_EFAIL, "cannot set TIFF tags");
}

int caimg_tiff_write_page(caimg_tiff_writer *w, const void *buf)
{
    if (!w || !buf) return caimg_error(CAIMG_EINVAL, "caimg_tiff_write_page: NULL argument");
    if (w->failed)
        return caimg_error(CAIMG_EFAIL, "%s: an earlier write failed", w->path);
    if (w->written >= w->npages)
        return caimg_error(CAIMG_EINVAL, "%s: all %zu pages were already written", w->path,
                           w->npages);
    caimg_clear_error();
    errno = 0;
    char what[64];
    snprintf(what, sizeof what, "cannot write page %zu", w->written + 1);
    if (set_tags(w) != CAIMG_OK) return CAIMG_EFAIL;
    const unsigned char *src = buf;
    const size_t rowbytes = w->width * w->ds;
    /* Data go through our buffer because libtiff may modify what it is
     * given (byte swapping, prediction), and the caller's page is const. */
    if (!w->o.tile) {
        for (size_t s = 0, y = 0; y < w->height; s++, y += w->rps) {
            size_t bytes = CAIMG_MIN(w->rps, w->height - y) * rowbytes;
            memcpy(w->buf, src + y * rowbytes, bytes);
            if (TIFFWriteEncodedStrip(w->tif, (uint32_t)s, w->buf, (tmsize_t)bytes) < 0)
                return werror(w, CAIMG_EIO, what);
        }
    } else {
        const size_t ts = w->o.tile, ds = w->ds;
        for (size_t y = 0; y < w->height; y += ts) {
            size_t rows = CAIMG_MIN(ts, w->height - y);
            for (size_t x = 0; x < w->width; x += ts) {
                size_t cols = CAIMG_MIN(ts, w->width - x);
                if (rows < ts || cols < ts) memset(w->buf, 0, w->bufsize);
                for (size_t r = 0; r < rows; r++)
                    memcpy(w->buf + r * ts * ds, src + (y + r) * rowbytes + x * ds, cols * ds);
                uint32_t idx = TIFFComputeTile(w->tif, (uint32_t)x, (uint32_t)y, 0, 0);
                if (TIFFWriteEncodedTile(w->tif, idx, w->buf, (tmsize_t)w->bufsize) < 0)
                    return werror(w, CAIMG_EIO, what);
            }
        }
    }
    if (!TIFFWriteDirectory(w->tif)) return werror(w, CAIMG_EIO, what);
    w->written++;
    return CAIMG_OK;
}

static void writer_free(caimg_tiff_writer *w, int remove_tmp)
{
    if (w->tif) {
        /* Closing an abandoned file writes its last directory, which fails
         * again on a full disk; libtiff's complaint must not replace the
         * message saying why the file was abandoned. */
        char keep[1024];
        const char *func = caimg_errfunc();
        snprintf(keep, sizeof keep, "%s", caimg_errmsg());
        TIFFClose(w->tif);
        if (keep[0]) caimg_error_at(func, CAIMG_EIO, "%s", keep);
        else caimg_clear_error();
    }
    if (remove_tmp) unlink(w->tmp);
    caimg_temp_unregister(w->tmp);
    free(w->path);
    free(w->tmp);
    free(w->buf);
    free(w->desc);
    free(w);
}

int caimg_tiff_writer_close(caimg_tiff_writer *w)
{
    if (!w) return caimg_error(CAIMG_EINVAL, "caimg_tiff_writer_close: NULL writer");
    int status = CAIMG_OK;
    if (w->failed) {
        status = caimg_error(CAIMG_EFAIL, "%s: not written because an earlier write failed",
                             w->path);
    } else if (w->written != w->npages) {
        status = caimg_error(CAIMG_EINVAL, "%s: only %zu of %zu pages were written", w->path,
                             w->written, w->npages);
    } else {
        caimg_clear_error();
        errno = 0;
        if (!TIFFFlush(w->tif)) status = werror(w, CAIMG_EIO, "cannot finish the file");
    }
    if (status != CAIMG_OK) {
        writer_free(w, 1);
        return status;
    }
    TIFFClose(w->tif);
    w->tif = NULL;
    if (rename(w->tmp, w->path) != 0) {
        status = caimg_error(CAIMG_EIO, "%s: cannot rename %s into place: %s", w->path, w->tmp,
                             strerror(errno));
        writer_free(w, 1);
        return status;
    }
    writer_free(w, 0);
    return CAIMG_OK;
}

void caimg_tiff_writer_abort(caimg_tiff_writer *w)
{
    if (w) writer_free(w, 1);
}
