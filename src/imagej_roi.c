/* imagej_roi.c -- ImageJ ROI files (.roi) and RoiSet archives (.zip).
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * The .roi format is ImageJ's RoiEncoder output: a 64-byte big-endian
 * header ("Iout", version, type, bounding box, vertex count, options, an
 * offset to a second header holding the name), then the vertices as 16-bit
 * offsets from the bounding box and, for sub-pixel ROIs, as absolute 32-bit
 * floats.  Composite ("shape") ROIs store a path of move/line/curve/close
 * segments as floats relative to the bounding box.  The RoiManager saves a
 * set as a plain zip archive with one .roi entry per ROI, stored or
 * deflated; we read the central directory and inflate with zlib.
 */
#include <config.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "caimg/error.h"
#include "roi_internal.h"

/* Bigger inputs are not ROI files; refusing them early keeps a wrong
 * argument (a movie given as --masks) from eating memory. */
#define MAX_FILE ((size_t)64 << 20)

static unsigned be16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }
static int sbe16(const unsigned char *p) { return (int16_t)be16(p); }
static int32_t sbe32(const unsigned char *p)
{
    return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}
static float fbe32(const unsigned char *p)
{
    uint32_t u = (uint32_t)sbe32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static unsigned le16(const unsigned char *p) { return (unsigned)p[0] | (unsigned)p[1] << 8; }
static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

enum { IJ_POLYGON = 0, IJ_RECT, IJ_OVAL, IJ_LINE, IJ_FREELINE, IJ_POLYLINE, IJ_NOROI,
       IJ_FREEHAND, IJ_TRACED, IJ_ANGLE, IJ_POINT };
#define IJ_SUBPIXEL 128

static int add_vertex(caimg_ijroi *r, size_t *cap, double x, double y)
{
    if (r->n == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        double *nx = realloc(r->x, c * sizeof *nx);
        if (nx) r->x = nx;
        double *ny = nx ? realloc(r->y, c * sizeof *ny) : NULL;
        if (ny) r->y = ny;
        if (!nx || !ny) return CAIMG_ENOMEM;
        *cap = c;
    }
    r->x[r->n] = x;
    r->y[r->n] = y;
    r->n++;
    return 0;
}

static int close_sub(caimg_ijroi *r, size_t *capsub)
{
    size_t last = r->nsub ? r->sub_start[r->nsub] : 0;
    if (r->n == last) return 0;   /* empty subpath */
    if (r->nsub + 2 > *capsub) {
        size_t c = *capsub ? 2 * *capsub : 8;
        size_t *ns = realloc(r->sub_start, c * sizeof *ns);
        if (!ns) return CAIMG_ENOMEM;
        r->sub_start = ns;
        *capsub = c;
    }
    if (r->nsub == 0) r->sub_start[0] = 0;
    r->nsub++;
    r->sub_start[r->nsub] = r->n;
    return 0;
}

/* Parse one .roi of `len` bytes; `what` names it in messages. */
static int parse_roi_inner(const unsigned char *b, size_t len, const char *what, const char *fname,
                     caimg_ijroi *r)
{
    memset(r, 0, sizeof *r);
    if (len < 64 || memcmp(b, "Iout", 4) != 0)
        return caimg_error(CAIMG_EFORMAT, "%s: not an ImageJ ROI (no 'Iout' header)", what);
    unsigned version = be16(b + 4);
    r->type = b[6];
    r->top = sbe16(b + 8);
    r->left = sbe16(b + 10);
    r->bottom = sbe16(b + 12);
    r->right = sbe16(b + 14);
    size_t n = be16(b + 16);
    unsigned options = be16(b + 50);
    int32_t shape_size = sbe32(b + 36);
    r->position = version >= 221 ? sbe32(b + 56) : 0;
    int32_t h2 = version >= 218 ? sbe32(b + 60) : 0;
    int sub = version >= 222 && (options & IJ_SUBPIXEL);
    int rc = 0;
    size_t cap = 0, capsub = 0;

    /* The name: header 2, else the file name without .roi. */
    r->name[0] = '\0';
    if (h2 > 64 && (size_t)h2 + 64 <= len) {
        int32_t noff = sbe32(b + h2 + 16), nlen = sbe32(b + h2 + 20);
        if (noff > 0 && nlen > 0 && (size_t)noff + 2 * (size_t)nlen <= len) {
            size_t k = 0;
            for (int32_t i = 0; i < nlen && k + 1 < sizeof r->name; i++) {
                unsigned c = be16(b + noff + 2 * i);
                r->name[k++] = (c >= 32 && c < 127) ? (char)c : '_';
            }
            r->name[k] = '\0';
        }
    }
    if (!r->name[0]) {
        const char *base = strrchr(fname, '/');
        base = base ? base + 1 : fname;
        snprintf(r->name, sizeof r->name, "%s", base);
        size_t l = strlen(r->name);
        if (l > 4 && !strcasecmp(r->name + l - 4, ".roi")) r->name[l - 4] = '\0';
    }

    if (shape_size > 0) {
        /* A composite shape: segments of floats relative to the bounds. */
        if ((size_t)shape_size > (len - 64) / 4)
            return caimg_error(CAIMG_EFORMAT, "%s: ROI '%s' is truncated (shape of %d values)",
                               what, r->name, shape_size);
        const unsigned char *s = b + 64;
        size_t i = 0, ns = (size_t)shape_size;
        double cx = 0, cy = 0;
        while (!rc && i < ns) {
            int seg = (int)fbe32(s + 4 * i);
            size_t need = seg == 0 || seg == 1 ? 2 : seg == 2 ? 4 : seg == 3 ? 6 : 0;
            if (seg < 0 || seg > 4 || i + 1 + need > ns) {
                rc = caimg_error(CAIMG_EFORMAT, "%s: ROI '%s' has a malformed shape path", what,
                                 r->name);
                break;
            }
            double v[6];
            for (size_t k = 0; k < need; k++) v[k] = fbe32(s + 4 * (i + 1 + k));
            i += 1 + need;
            if (seg == 0) {
                rc = close_sub(r, &capsub);
                if (!rc) rc = add_vertex(r, &cap, r->left + v[0], r->top + v[1]);
                cx = v[0];
                cy = v[1];
            } else if (seg == 1) {
                rc = add_vertex(r, &cap, r->left + v[0], r->top + v[1]);
                cx = v[0];
                cy = v[1];
            } else if (seg == 2 || seg == 3) {
                /* Curves are flattened into 8 chords each. */
                for (int k = 1; !rc && k <= 8; k++) {
                    double t = k / 8.0, u = 1 - t, px, py;
                    if (seg == 2) {
                        px = u * u * cx + 2 * u * t * v[0] + t * t * v[2];
                        py = u * u * cy + 2 * u * t * v[1] + t * t * v[3];
                    } else {
                        px = u * u * u * cx + 3 * u * u * t * v[0] + 3 * u * t * t * v[2] + t * t * t * v[4];
                        py = u * u * u * cy + 3 * u * u * t * v[1] + 3 * u * t * t * v[3] + t * t * t * v[5];
                    }
                    rc = add_vertex(r, &cap, r->left + px, r->top + py);
                }
                cx = seg == 2 ? v[2] : v[4];
                cy = seg == 2 ? v[3] : v[5];
            } else rc = close_sub(r, &capsub);
        }
        if (!rc) rc = close_sub(r, &capsub);
        r->type = IJ_RECT;
        return rc ? (rc == CAIMG_ENOMEM ? caimg_error(rc, "%s: out of memory", what) : rc) : 0;
    }

    switch (r->type) {
    case IJ_RECT:
    case IJ_OVAL: {
        double x = r->left, y = r->top, w = r->right - r->left, h = r->bottom - r->top;
        if (sub && version >= 223) {
            x = fbe32(b + 18);
            y = fbe32(b + 22);
            w = fbe32(b + 26);
            h = fbe32(b + 30);
        }
        if (r->type == IJ_RECT) {
            rc = add_vertex(r, &cap, x, y);
            if (!rc) rc = add_vertex(r, &cap, x + w, y);
            if (!rc) rc = add_vertex(r, &cap, x + w, y + h);
            if (!rc) rc = add_vertex(r, &cap, x, y + h);
        } else {
            /* The ellipse inscribed in the bounds, kept as its box. */
            rc = add_vertex(r, &cap, x, y);
            if (!rc) rc = add_vertex(r, &cap, x + w, y + h);
        }
        break;
    }
    case IJ_LINE:
        rc = add_vertex(r, &cap, fbe32(b + 18), fbe32(b + 22));
        if (!rc) rc = add_vertex(r, &cap, fbe32(b + 26), fbe32(b + 30));
        break;
    case IJ_POLYGON: case IJ_FREEHAND: case IJ_TRACED: case IJ_POLYLINE:
    case IJ_FREELINE: case IJ_ANGLE: case IJ_POINT: {
        /* Newer ImageJ stores counts over 65535 in the `size` field. */
        if (n == 0 && version >= 228) {
            int32_t big = sbe32(b + 18);
            if (big > 0) n = (size_t)big;
        }
        size_t need = 64 + 4 * n + (sub ? 8 * n : 0);
        if (need > len)
            return caimg_error(CAIMG_EFORMAT, "%s: ROI '%s' is truncated (%zu vertices need %zu "
                               "bytes, the entry has %zu)", what, r->name, n, need, len);
        for (size_t i = 0; !rc && i < n; i++) {
            double x, y;
            if (sub) {
                x = fbe32(b + 64 + 4 * n + 4 * i);
                y = fbe32(b + 64 + 8 * n + 4 * i);
            } else {
                x = r->left + sbe16(b + 64 + 2 * i);
                y = r->top + sbe16(b + 64 + 2 * n + 2 * i);
            }
            rc = add_vertex(r, &cap, x, y);
        }
        break;
    }
    case IJ_NOROI:
        break;
    default:
        return caimg_error(CAIMG_EFORMAT, "%s: ROI '%s' has unknown type %d", what, r->name,
                           r->type);
    }
    if (rc) return caimg_error(rc, "%s: out of memory", what);
    return 0;
}

static int parse_roi(const unsigned char *b, size_t len, const char *what, const char *fname,
                     caimg_ijroi *r)
{
    int rc = parse_roi_inner(b, len, what, fname, r);
    if (rc) {
        free(r->x);
        free(r->y);
        free(r->sub_start);
        memset(r, 0, sizeof *r);
    }
    return rc;
}

void caimg_ijroi_free(caimg_ijroi *rois, size_t n)
{
    if (!rois) return;
    for (size_t i = 0; i < n; i++) {
        free(rois[i].x);
        free(rois[i].y);
        free(rois[i].sub_start);
    }
    free(rois);
}

static int read_file(const char *path, unsigned char **data, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return caimg_error(errno == ENOENT ? CAIMG_ENOENT : CAIMG_EIO, "%s: cannot open: %s",
                           path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    int rc = 0;
    while (buf) {
        if (n == cap) {
            if (cap >= MAX_FILE) {
                rc = caimg_error(CAIMG_EFORMAT, "%s: too large for an ImageJ ROI file", path);
                break;
            }
            unsigned char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0) break;
    }
    if (!buf && !rc) rc = caimg_error(CAIMG_ENOMEM, "%s: out of memory", path);
    if (!rc && ferror(fp)) rc = caimg_error(CAIMG_EIO, "%s: read error", path);
    fclose(fp);
    if (rc) { free(buf); return rc; }
    *data = buf;
    *len = n;
    return 0;
}

/* Append one parsed ROI to the growing array. */
static int push(caimg_ijroi **rois, size_t *n, size_t *cap, const caimg_ijroi *r)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 16;
        caimg_ijroi *nr = realloc(*rois, c * sizeof *nr);
        if (!nr) return caimg_error(CAIMG_ENOMEM, "out of memory reading ROIs");
        *rois = nr;
        *cap = c;
    }
    (*rois)[(*n)++] = *r;
    return 0;
}

static int read_zip(const char *path, const unsigned char *b, size_t len, caimg_ijroi **rois,
                    size_t *nrois)
{
    size_t cap = 0;
    /* End of central directory: within the last 64 KiB + 22 bytes. */
    size_t e = len >= 22 ? len - 22 : 0;
    size_t stop = len > 22 + 65535 ? len - 22 - 65535 : 0;
    int found = 0;
    for (;; e--) {
        if (len >= 22 && le32(b + e) == 0x06054b50) { found = 1; break; }
        if (e == stop) break;
    }
    if (!found)
        return caimg_error(CAIMG_EFORMAT, "%s: not a zip archive or truncated (no central "
                           "directory)", path);
    size_t nent = le16(b + e + 10);
    uint32_t cdoff = le32(b + e + 16);
    if (cdoff == 0xFFFFFFFFu || le16(b + e + 10) == 0xFFFF)
        return caimg_error(CAIMG_EUNSUP, "%s: ZIP64 archives are not supported", path);
    size_t p = cdoff;
    int rc = 0;
    for (size_t k = 0; !rc && k < nent; k++) {
        if (p + 46 > len || le32(b + p) != 0x02014b50) {
            rc = caimg_error(CAIMG_EFORMAT, "%s: corrupt zip central directory (entry %zu)",
                             path, k + 1);
            break;
        }
        unsigned method = le16(b + p + 10);
        uint32_t crc = le32(b + p + 16), csize = le32(b + p + 20), usize = le32(b + p + 24);
        size_t nlen = le16(b + p + 28), xlen = le16(b + p + 30), clen = le16(b + p + 32);
        uint32_t loff = le32(b + p + 42);
        if (p + 46 + nlen > len) {
            rc = caimg_error(CAIMG_EFORMAT, "%s: corrupt zip central directory", path);
            break;
        }
        char name[256];
        size_t nl = CAIMG_MIN(nlen, sizeof name - 1);
        memcpy(name, b + p + 46, nl);
        name[nl] = '\0';
        p += 46 + nlen + xlen + clen;
        if (nl < 4 || strcasecmp(name + nl - 4, ".roi") != 0) continue;
        char what[600];
        snprintf(what, sizeof what, "%s: %s", path, name);
        if ((size_t)loff + 30 > len || le32(b + loff) != 0x04034b50) {
            rc = caimg_error(CAIMG_EFORMAT, "%s: bad local header", what);
            break;
        }
        size_t data = (size_t)loff + 30 + le16(b + loff + 26) + le16(b + loff + 28);
        if (data + csize > len || usize > MAX_FILE) {
            rc = caimg_error(CAIMG_EFORMAT, "%s: truncated", what);
            break;
        }
        unsigned char *u = malloc(usize ? usize : 1);
        if (!u) { rc = caimg_error(CAIMG_ENOMEM, "%s: out of memory", what); break; }
        if (method == 0) {
            if (csize != usize) rc = caimg_error(CAIMG_EFORMAT, "%s: stored entry sizes differ", what);
            else memcpy(u, b + data, usize);
        } else if (method == 8) {
            z_stream zs;
            memset(&zs, 0, sizeof zs);
            if (inflateInit2(&zs, -MAX_WBITS) != Z_OK)
                rc = caimg_error(CAIMG_ENOMEM, "%s: cannot start zlib", what);
            else {
                zs.next_in = (Bytef *)(b + data);
                zs.avail_in = csize;
                zs.next_out = u;
                zs.avail_out = usize;
                int z = inflate(&zs, Z_FINISH);
                if (z != Z_STREAM_END || zs.total_out != usize)
                    rc = caimg_error(CAIMG_EFORMAT, "%s: corrupt deflate data", what);
                inflateEnd(&zs);
            }
        } else rc = caimg_error(CAIMG_EUNSUP, "%s: zip compression method %u is not supported",
                                what, method);
        if (!rc && crc32(0L, u, usize) != crc)
            rc = caimg_error(CAIMG_EFORMAT, "%s: CRC mismatch (corrupt archive)", what);
        caimg_ijroi r;
        if (!rc) rc = parse_roi(u, usize, what, name, &r);
        free(u);
        if (!rc) {
            rc = push(rois, nrois, &cap, &r);
            if (rc) {
                free(r.x);
                free(r.y);
                free(r.sub_start);
            }
        }
    }
    return rc;
}

int caimg_ijroi_read(const char *path, caimg_ijroi **rois, size_t *n)
{
    *rois = NULL;
    *n = 0;
    unsigned char *b = NULL;
    size_t len = 0;
    int rc = read_file(path, &b, &len);
    if (rc) return rc;
    if (len >= 4 && !memcmp(b, "Iout", 4)) {
        caimg_ijroi r;
        rc = parse_roi(b, len, path, path, &r);
        size_t cap = 0;
        if (!rc) {
            rc = push(rois, n, &cap, &r);
            if (rc) {
                free(r.x);
                free(r.y);
                free(r.sub_start);
            }
        }
    } else if (len >= 4 && b[0] == 'P' && b[1] == 'K') {
        rc = read_zip(path, b, len, rois, n);
    } else
        rc = caimg_error(CAIMG_EFORMAT, "%s: neither an ImageJ .roi nor a RoiSet .zip", path);
    free(b);
    if (rc) {
        caimg_ijroi_free(*rois, *n);
        *rois = NULL;
        *n = 0;
    }
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

long caimg_ijroi_rasterize(const caimg_ijroi *r, size_t height, size_t width, uint8_t *mask)
{
    long count = 0;
    if (r->type == IJ_OVAL && r->nsub == 0) {
        if (r->n < 2) return 0;
        double x0 = r->x[0], y0 = r->y[0], x1 = r->x[1], y1 = r->y[1];
        double cx = (x0 + x1) / 2, cy = (y0 + y1) / 2, rx = (x1 - x0) / 2, ry = (y1 - y0) / 2;
        if (rx <= 0 || ry <= 0) return 0;
        long ya = CAIMG_MAX(0, (long)floor(y0)), yb = CAIMG_MIN((long)height, (long)ceil(y1));
        long xa = CAIMG_MAX(0, (long)floor(x0)), xb = CAIMG_MIN((long)width, (long)ceil(x1));
        for (long y = ya; y < yb; y++)
            for (long x = xa; x < xb; x++) {
                double u = (x + 0.5 - cx) / rx, v = (y + 0.5 - cy) / ry;
                if (u * u + v * v <= 1.0) {
                    uint8_t *m = mask + (size_t)y * width + (size_t)x;
                    if (!*m) { *m = 1; count++; }
                }
            }
        return count;
    }
    if (r->nsub == 0 && r->type != IJ_POLYGON && r->type != IJ_RECT && r->type != IJ_FREEHAND
        && r->type != IJ_TRACED)
        return caimg_error(CAIMG_EUNSUP, "ROI '%s' is a line or point selection, not an area",
                           r->name);
    if (r->n < 3) return 0;
    /* Subpaths: the whole vertex list when there is only one. */
    size_t one[2] = {0, r->n};
    const size_t *ss = r->nsub ? r->sub_start : one;
    size_t nsub = r->nsub ? r->nsub : 1;
    double ymin = HUGE_VAL, ymax = -HUGE_VAL;
    for (size_t i = 0; i < r->n; i++) {
        ymin = r->y[i] < ymin ? r->y[i] : ymin;
        ymax = r->y[i] > ymax ? r->y[i] : ymax;
    }
    double *xs = malloc(r->n * sizeof *xs);
    if (!xs) return caimg_error(CAIMG_ENOMEM, "out of memory rasterizing ROI '%s'", r->name);
    long ya = CAIMG_MAX(0, (long)floor(ymin)), yb = CAIMG_MIN((long)height, (long)ceil(ymax) + 1);
    for (long y = ya; y < yb; y++) {
        double yc = y + 0.5;
        size_t nx = 0;
        for (size_t s = 0; s < nsub; s++)
            for (size_t i = ss[s]; i < ss[s + 1]; i++) {
                size_t j = i + 1 < ss[s + 1] ? i + 1 : ss[s];
                double ay = r->y[i], by = r->y[j];
                if ((ay > yc) != (by > yc))
                    xs[nx++] = r->x[i] + (yc - ay) * (r->x[j] - r->x[i]) / (by - ay);
            }
        qsort(xs, nx, sizeof *xs, cmp_double);
        /* Even-odd: pixels whose centre lies in [xs[k], xs[k+1]). */
        for (size_t k = 0; k + 1 < nx; k += 2) {
            long xa = (long)ceil(xs[k] - 0.5), xb = (long)ceil(xs[k + 1] - 0.5);
            xa = CAIMG_MAX(0, xa);
            xb = CAIMG_MIN((long)width, xb);
            for (long x = xa; x < xb; x++) {
                uint8_t *m = mask + (size_t)y * width + (size_t)x;
                if (!*m) { *m = 1; count++; }
            }
        }
    }
    free(xs);
    return count;
}
