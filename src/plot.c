/* plot.c -- SVG charts and PNG images for self-contained HTML reports.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "internal.h"
#include "plot.h"

/* ---- strings ------------------------------------------------------------- */

void caimg_str_init(caimg_str *b) { memset(b, 0, sizeof *b); }

void caimg_str_free(caimg_str *b)
{
    free(b->s);
    caimg_str_init(b);
}

static int reserve(caimg_str *b, size_t extra)
{
    if (b->failed) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t nc = b->cap ? b->cap : 4096;
    while (nc < b->len + extra + 1) nc *= 2;
    char *p = realloc(b->s, nc);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->s = p;
    b->cap = nc;
    return 0;
}

void caimg_str_append(caimg_str *b, const char *s, size_t n)
{
    if (reserve(b, n)) return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void caimg_str_printf(caimg_str *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void caimg_str_escape(caimg_str *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': caimg_str_append(b, "&amp;", 5); break;
        case '<': caimg_str_append(b, "&lt;", 4); break;
        case '>': caimg_str_append(b, "&gt;", 4); break;
        case '"': caimg_str_append(b, "&quot;", 6); break;
        default: caimg_str_append(b, s, 1);
        }
    }
}

void caimg_str_base64(caimg_str *b, const unsigned char *d, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (reserve(b, (n + 2) / 3 * 4)) return;
    char *o = b->s + b->len;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        *o++ = tab[v >> 18]; *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63]; *o++ = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0);
        *o++ = tab[v >> 18]; *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->len = (size_t)(o - b->s);
    b->s[b->len] = '\0';
}

/* ---- PNG ------------------------------------------------------------------ */

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

/* Append one chunk: length, type, data, CRC over type and data. */
static unsigned char *chunk(unsigned char *o, const char *type, const unsigned char *d, size_t n)
{
    put32(o, (uint32_t)n);
    memcpy(o + 4, type, 4);
    if (n) memcpy(o + 8, d, n);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, o + 4, (uInt)(n + 4));
    put32(o + 8 + n, (uint32_t)crc);
    return o + 12 + n;
}

unsigned char *caimg_png_encode(const uint8_t *pix, size_t h, size_t w, int channels, size_t *n)
{
    size_t row = w * (size_t)channels + 1;   /* filter byte + samples */
    size_t raw_n = row * h;
    unsigned char *raw = malloc(raw_n);
    uLongf zn = compressBound((uLong)raw_n);
    unsigned char *z = malloc(zn);
    unsigned char *out = malloc(zn + 64);
    if (!raw || !z || !out) goto fail;
    for (size_t y = 0; y < h; y++) {
        raw[y * row] = 0;   /* filter type None: small images, simple code */
        memcpy(raw + y * row + 1, pix + y * w * (size_t)channels, row - 1);
    }
    if (compress2(z, &zn, raw, (uLong)raw_n, 6) != Z_OK) goto fail;
    static const unsigned char sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    unsigned char ihdr[13];
    put32(ihdr, (uint32_t)w);
    put32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8;                          /* bit depth */
    ihdr[9] = channels == 3 ? 2 : 0;      /* RGB or grey */
    ihdr[10] = ihdr[11] = ihdr[12] = 0;   /* deflate, adaptive filter, no interlace */
    unsigned char *o = out;
    memcpy(o, sig, 8);
    o = chunk(o + 8, "IHDR", ihdr, 13);
    o = chunk(o, "IDAT", z, zn);
    o = chunk(o, "IEND", NULL, 0);
    *n = (size_t)(o - out);
    free(raw);
    free(z);
    return out;
fail:
    free(raw);
    free(z);
    free(out);
    return NULL;
}

/* ---- axes ------------------------------------------------------------------ */

static const char *const palette[] = {
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"
};

/* A "nice" tick step of about (hi - lo) / n: 1, 2 or 5 times a power of 10. */
static double nice_step(double lo, double hi, int n)
{
    double raw = (hi - lo) / n;
    if (!(raw > 0)) return 1;
    double p = pow(10, floor(log10(raw)));
    double f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static void fmt_num(char *buf, size_t n, double v)
{
    if (fabs(v) < 1e-12) v = 0;
    if (v != 0 && (fabs(v) >= 1e5 || fabs(v) < 1e-3)) snprintf(buf, n, "%.1e", v);
    else snprintf(buf, n, "%g", v);
}

typedef struct {
    double x0, x1, y0, y1;      /* data range */
    double px0, px1, py0, py1;  /* pixel box (py0 is the top) */
    int logx;
} frame;

static double fx(const frame *f, double x)
{
    if (f->logx) {
        x = log10(x > 0 ? x : 1e-300);
        double a = log10(f->x0), b = log10(f->x1);
        return f->px0 + (x - a) / (b - a) * (f->px1 - f->px0);
    }
    return f->px0 + (x - f->x0) / (f->x1 - f->x0) * (f->px1 - f->px0);
}

static double fy(const frame *f, double y)
{
    return f->py1 - (y - f->y0) / (f->y1 - f->y0) * (f->py1 - f->py0);
}

static void widen(double *lo, double *hi)
{
    if (!isfinite(*lo) || !isfinite(*hi)) { *lo = 0; *hi = 1; }
    if (*hi <= *lo) { double c = *lo; *lo = c - 0.5 - fabs(c) * 0.05; *hi = c + 0.5 + fabs(c) * 0.05; }
}

static void axes(caimg_str *b, const frame *f, const char *xlabel, const char *ylabel,
                 int xticks)
{
    char t[32];
    caimg_str_printf(b, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='none' stroke='#999'/>\n",
                     f->px0, f->py0, f->px1 - f->px0, f->py1 - f->py0);
    double st = nice_step(f->y0, f->y1, 4);
    for (double v = ceil(f->y0 / st) * st; v <= f->y1 + st * 1e-9; v += st) {
        double y = fy(f, v);
        fmt_num(t, sizeof t, v);
        caimg_str_printf(b, "<line x1='%.1f' x2='%.1f' y1='%.1f' y2='%.1f' stroke='#eee'/>"
                         "<text x='%.1f' y='%.1f' text-anchor='end' class='tick'>%s</text>\n",
                         f->px0, f->px1, y, y, f->px0 - 4, y + 3.5, t);
    }
    if (xticks) {
        if (f->logx) {
            for (double v = pow(10, ceil(log10(f->x0))); v <= f->x1 * 1.0001; v *= 10) {
                fmt_num(t, sizeof t, v);
                caimg_str_printf(b, "<text x='%.1f' y='%.1f' text-anchor='middle' class='tick'>%s</text>\n",
                                 fx(f, v), f->py1 + 13, t);
            }
        } else {
            double sx = nice_step(f->x0, f->x1, 6);
            for (double v = ceil(f->x0 / sx) * sx; v <= f->x1 + sx * 1e-9; v += sx) {
                fmt_num(t, sizeof t, v);
                caimg_str_printf(b, "<text x='%.1f' y='%.1f' text-anchor='middle' class='tick'>%s</text>\n",
                                 fx(f, v), f->py1 + 13, t);
            }
        }
    }
    if (xlabel && xticks) {
        caimg_str_printf(b, "<text x='%.1f' y='%.1f' text-anchor='middle' class='lab'>",
                         (f->px0 + f->px1) / 2, f->py1 + 28);
        caimg_str_escape(b, xlabel);
        caimg_str_printf(b, "</text>\n");
    }
    if (ylabel) {
        caimg_str_printf(b, "<text transform='translate(12,%.1f) rotate(-90)' text-anchor='middle' class='lab'>",
                         (f->py0 + f->py1) / 2);
        caimg_str_escape(b, ylabel);
        caimg_str_printf(b, "</text>\n");
    }
}

/* A chart opens as an HTML <figure> holding an <svg> (the title is its
 * caption), or, when `at` gives a position, as a bare <svg> placed there
 * inside a standalone document, whose composer writes the titles. */
static void open_svg(caimg_str *b, const double *at, int w, int h, const char *title)
{
    if (at) {
        caimg_str_printf(b, "<svg x='%.1f' y='%.1f' width='%d' height='%d' viewBox='0 0 %d %d'>\n",
                         at[0], at[1], w, h, w, h);
        return;
    }
    caimg_str_printf(b, "<figure><svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
                     "viewBox='0 0 %d %d' role='img'>\n", w, h, w, h);
    if (title) {
        caimg_str_printf(b, "<title>");
        caimg_str_escape(b, title);
        caimg_str_printf(b, "</title>\n");
    }
}

static void close_svg(caimg_str *b, const double *at, const char *title)
{
    caimg_str_printf(b, "</svg>");
    if (at) {
        caimg_str_printf(b, "\n");
        return;
    }
    if (title) {
        caimg_str_printf(b, "<figcaption>");
        caimg_str_escape(b, title);
        caimg_str_printf(b, "</figcaption>");
    }
    caimg_str_printf(b, "</figure>\n");
}

void caimg_svg_document_begin(caimg_str *b, int width, int height, const char *title)
{
    caimg_str_printf(b, "<?xml version='1.0' encoding='UTF-8'?>\n"
                     "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
                     "viewBox='0 0 %d %d' font-family='sans-serif'>\n"
                     "<style>.tick{font-size:10px;fill:#555}.lab{font-size:11px;fill:#333}"
                     ".head{font-size:14px;fill:#111}</style>\n"
                     "<rect width='100%%' height='100%%' fill='white'/>\n", width, height, width, height);
    if (title) {
        caimg_str_printf(b, "<title>");
        caimg_str_escape(b, title);
        caimg_str_printf(b, "</title>\n<text x='12' y='20' class='head'>");
        caimg_str_escape(b, title);
        caimg_str_printf(b, "</text>\n");
    }
}

void caimg_svg_document_end(caimg_str *b)
{
    caimg_str_printf(b, "</svg>\n");
}

static double sx_at(const caimg_series *s, size_t i)
{
    return s->x ? s->x[i] : s->x0 + (double)i * s->dx;
}

/* One polyline of a series, decimated to about `maxpts` points by keeping
 * the minimum and maximum of each bucket, in time order. */
static void polyline(caimg_str *b, const frame *f, const caimg_series *s, const char *color,
                     size_t maxpts)
{
    caimg_str_printf(b, "<polyline fill='none' stroke='%s' stroke-width='1.2' points='", color);
    size_t bucket = s->n > maxpts ? (s->n + maxpts / 2 - 1) / (maxpts / 2) : 1;
    for (size_t i = 0; i < s->n; i += bucket) {
        size_t e = i + bucket < s->n ? i + bucket : s->n, imin = i, imax = i;
        for (size_t k = i; k < e; k++) {
            if (!isfinite(s->y[k])) continue;
            if (!isfinite(s->y[imin]) || s->y[k] < s->y[imin]) imin = k;
            if (!isfinite(s->y[imax]) || s->y[k] > s->y[imax]) imax = k;
        }
        size_t a = imin < imax ? imin : imax, c = imin < imax ? imax : imin;
        if (isfinite(s->y[a]))
            caimg_str_printf(b, "%.1f,%.1f ", fx(f, sx_at(s, a)), fy(f, s->y[a]));
        if (c != a && isfinite(s->y[c]))
            caimg_str_printf(b, "%.1f,%.1f ", fx(f, sx_at(s, c)), fy(f, s->y[c]));
    }
    caimg_str_printf(b, "'/>\n");
}

static void range_of(const caimg_series *s, size_t ns, double *x0, double *x1, double *y0,
                     double *y1, int logx)
{
    *x0 = *y0 = INFINITY;
    *x1 = *y1 = -INFINITY;
    for (size_t k = 0; k < ns; k++)
        for (size_t i = 0; i < s[k].n; i++) {
            double x = sx_at(&s[k], i), y = s[k].y[i];
            if (isfinite(x) && (!logx || x > 0)) { if (x < *x0) *x0 = x; if (x > *x1) *x1 = x; }
            if (isfinite(y)) { if (y < *y0) *y0 = y; if (y > *y1) *y1 = y; }
        }
    widen(x0, x1);
    widen(y0, y1);
}

static void svg_lines(caimg_str *b, const caimg_plot_opts *o, const caimg_series *s, size_t ns,
                      const double *at)
{
    int W = o->width ? o->width : 640;
    int panel = o->height ? o->height : 220;
    size_t np = o->stacked ? ns : 1;
    int H = o->stacked ? (int)(np * (size_t)(panel * 0.6)) + 40 : panel;
    open_svg(b, at, W, H, o->title);
    double gx0, gx1, gy0, gy1;
    range_of(s, ns, &gx0, &gx1, &gy0, &gy1, o->logx);
    for (size_t p = 0; p < np; p++) {
        /* Room above the plot for the legend of overlaid series. */
        double top = (!o->stacked && ns > 1) ? 24 : 8;
        frame f = {gx0, gx1, gy0, gy1, 58, W - 12.0, top, 0, o->logx};
        if (o->stacked) {
            double ph = (H - 40.0) / (double)np;
            f.py0 = 8 + ph * (double)p;
            f.py1 = f.py0 + ph - 6;
            range_of(&s[p], 1, &f.x0, &f.x1, &f.y0, &f.y1, o->logx);
            f.x0 = gx0;
            f.x1 = gx1;
        } else {
            f.py1 = H - 40.0;
            if (o->ymin < o->ymax) { f.y0 = o->ymin; f.y1 = o->ymax; }
        }
        int last = p + 1 == np;
        axes(b, &f, o->xlabel, o->stacked ? s[p].label : o->ylabel, last);
        size_t k0 = o->stacked ? p : 0, k1 = o->stacked ? p + 1 : ns;
        for (size_t k = k0; k < k1; k++) {
            const char *col = s[k].color ? s[k].color : palette[k % 8];
            if (!s[k].nolines) polyline(b, &f, &s[k], col, 1200);
            if (s[k].markers || s[k].nolines)
                for (size_t i = 0; i < s[k].n; i++)
                    if (isfinite(s[k].y[i]))
                        caimg_str_printf(b, "<circle cx='%.1f' cy='%.1f' r='2.5' fill='%s'/>\n",
                                         fx(&f, sx_at(&s[k], i)), fy(&f, s[k].y[i]), col);
        }
    }
    /* Legend for overlaid series. */
    if (!o->stacked && ns > 1) {
        double x = 66;
        for (size_t k = 0; k < ns; k++) {
            const char *col = s[k].color ? s[k].color : palette[k % 8];
            caimg_str_printf(b, "<rect x='%.0f' y='6' width='10' height='10' fill='%s'/>"
                             "<text x='%.0f' y='15' class='tick'>", x, col, x + 14);
            caimg_str_escape(b, s[k].label ? s[k].label : "");
            caimg_str_printf(b, "</text>\n");
            x += 24 + 7.0 * (double)strlen(s[k].label ? s[k].label : "");
        }
    }
    close_svg(b, at, o->title);
}

void caimg_svg_lines(caimg_str *b, const caimg_plot_opts *o, const caimg_series *s, size_t ns)
{
    svg_lines(b, o, s, ns, NULL);
}

void caimg_svg_lines_at(caimg_str *b, const caimg_plot_opts *o, const caimg_series *s, size_t ns,
                        double x, double y)
{
    const double at[2] = {x, y};
    svg_lines(b, o, s, ns, at);
}

void caimg_svg_histogram(caimg_str *b, const caimg_plot_opts *o, const double *v, size_t n,
                         int nbins, const char *color)
{
    int W = o->width ? o->width : 320, H = o->height ? o->height : 200;
    double lo = INFINITY, hi = -INFINITY;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i])) { m++; if (v[i] < lo) lo = v[i]; if (v[i] > hi) hi = v[i]; }
    widen(&lo, &hi);
    if (nbins <= 0) nbins = m < 20 ? 5 : m < 200 ? 15 : 30;
    size_t *cnt = calloc((size_t)nbins, sizeof *cnt);
    if (!cnt) { b->failed = 1; return; }
    size_t top = 1;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) continue;
        int k = (int)((v[i] - lo) / (hi - lo) * nbins);
        if (k >= nbins) k = nbins - 1;
        if (k < 0) k = 0;
        if (++cnt[k] > top) top = cnt[k];
    }
    open_svg(b, NULL, W, H, o->title);
    frame f = {lo, hi, 0, (double)top * 1.05, 48, W - 10.0, 8, H - 40.0, 0};
    axes(b, &f, o->xlabel, o->ylabel ? o->ylabel : "count", 1);
    for (int k = 0; k < nbins; k++) {
        double a = lo + (hi - lo) * k / nbins, c = lo + (hi - lo) * (k + 1) / nbins;
        caimg_str_printf(b, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='%s'/>\n",
                         fx(&f, a) + 0.5, fy(&f, (double)cnt[k]), fx(&f, c) - fx(&f, a) - 1,
                         fy(&f, 0) - fy(&f, (double)cnt[k]), color ? color : palette[0]);
    }
    free(cnt);
    close_svg(b, NULL, o->title);
}

void caimg_svg_scatter(caimg_str *b, const caimg_plot_opts *o, const double *x,
                       const double *y, size_t n, const char *color)
{
    int W = o->width ? o->width : 320, H = o->height ? o->height : 300;
    caimg_series s = {NULL, x, y, n, 0, 0, color, 1, 1};
    double x0, x1, y0, y1;
    range_of(&s, 1, &x0, &x1, &y0, &y1, 0);
    if (o->diagonal) {
        double lo = x0 < y0 ? x0 : y0, hi = x1 > y1 ? x1 : y1;
        x0 = y0 = lo;
        x1 = y1 = hi;
    }
    open_svg(b, NULL, W, H, o->title);
    frame f = {x0, x1, y0, y1, 48, W - 10.0, 8, H - 40.0, 0};
    axes(b, &f, o->xlabel, o->ylabel, 1);
    if (o->diagonal)
        caimg_str_printf(b, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#aaa' stroke-dasharray='4 3'/>\n",
                         fx(&f, x0), fy(&f, y0), fx(&f, x1), fy(&f, y1));
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(y[i]))
            caimg_str_printf(b, "<circle cx='%.1f' cy='%.1f' r='2' fill='%s' fill-opacity='0.6'/>\n",
                             fx(&f, x[i]), fy(&f, y[i]), color ? color : palette[0]);
    close_svg(b, NULL, o->title);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void caimg_svg_image(caimg_str *b, const char *title, const float *img, size_t h, size_t w,
                     double lo, double hi, int width, const int32_t *labels,
                     const uint8_t *flag, size_t nlabels)
{
    size_t n = h * w;
    if (!(lo < hi)) {
        float *s = malloc(n * sizeof *s);
        size_t m = 0;
        if (!s) { b->failed = 1; return; }
        for (size_t i = 0; i < n; i++) if (isfinite(img[i])) s[m++] = img[i];
        qsort(s, m, sizeof *s, cmp_float);
        lo = m ? s[(size_t)(0.005 * (double)(m - 1))] : 0;
        hi = m ? s[(size_t)(0.995 * (double)(m - 1))] : 1;
        if (!(hi > lo)) hi = lo + 1;
        free(s);
    }
    uint8_t *pix = malloc(n);
    if (!pix) { b->failed = 1; return; }
    for (size_t i = 0; i < n; i++) {
        double v = isfinite(img[i]) ? (img[i] - lo) / (hi - lo) : 0;
        pix[i] = (uint8_t)(v <= 0 ? 0 : v >= 1 ? 255 : v * 255 + 0.5);
    }
    size_t pn;
    unsigned char *png = caimg_png_encode(pix, h, w, 1, &pn);
    free(pix);
    if (!png) { b->failed = 1; return; }
    double scale = (double)width / (double)w;
    int H = (int)((double)h * scale + 0.5);
    open_svg(b, NULL, width, H, title);
    caimg_str_printf(b, "<image width='%d' height='%d' preserveAspectRatio='none' "
                     "style='image-rendering:pixelated' href='data:image/png;base64,", width, H);
    caimg_str_base64(b, png, pn);
    caimg_str_printf(b, "'/>\n");
    free(png);
    if (labels && nlabels) {
        /* Outlines along pixel edges where the label changes: exact, and
         * crisp at any zoom.  Bounding boxes first, so each region is
         * traced within its own box. */
        size_t *box = malloc(nlabels * 4 * sizeof *box);
        if (!box) { b->failed = 1; return; }
        for (size_t k = 0; k < nlabels; k++) {
            box[4 * k] = h; box[4 * k + 1] = 0; box[4 * k + 2] = w; box[4 * k + 3] = 0;
        }
        for (size_t y = 0; y < h; y++)
            for (size_t x = 0; x < w; x++) {
                int32_t l = labels[y * w + x];
                if (l < 1 || (size_t)l > nlabels) continue;
                size_t *bx = box + 4 * (size_t)(l - 1);
                if (y < bx[0]) bx[0] = y;
                if (y + 1 > bx[1]) bx[1] = y + 1;
                if (x < bx[2]) bx[2] = x;
                if (x + 1 > bx[3]) bx[3] = x + 1;
            }
        for (size_t k = 1; k <= nlabels; k++) {
            const size_t *bx = box + 4 * (k - 1);
            if (bx[0] >= bx[1]) continue;
            caimg_str_printf(b, "<path fill='none' stroke='%s' stroke-width='1.2' d='",
                             !flag || flag[k - 1] ? "#ffcc00" : "#5fa8d3");
            for (size_t y = bx[0]; y < bx[1]; y++)
                for (size_t x = bx[2]; x < bx[3]; x++) {
                    if (labels[y * w + x] != (int32_t)k) continue;
                    double X0 = (double)x * scale, Y0 = (double)y * scale;
                    double X1 = X0 + scale, Y1 = Y0 + scale;
                    if (y == 0 || labels[(y - 1) * w + x] != (int32_t)k)
                        caimg_str_printf(b, "M%.1f %.1fH%.1f", X0, Y0, X1);
                    if (y + 1 == h || labels[(y + 1) * w + x] != (int32_t)k)
                        caimg_str_printf(b, "M%.1f %.1fH%.1f", X0, Y1, X1);
                    if (x == 0 || labels[y * w + x - 1] != (int32_t)k)
                        caimg_str_printf(b, "M%.1f %.1fV%.1f", X0, Y0, Y1);
                    if (x + 1 == w || labels[y * w + x + 1] != (int32_t)k)
                        caimg_str_printf(b, "M%.1f %.1fV%.1f", X1, Y0, Y1);
                }
            caimg_str_printf(b, "'><title>ROI %zu</title></path>\n", k - 1);
        }
        free(box);
    }
    close_svg(b, NULL, title);
}
