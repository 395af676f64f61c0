/* plot.h -- SVG charts and PNG images for self-contained HTML reports.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Private to libcaimg.  Everything is written into a growable string so a
 * report is one file with inline SVG and base64 PNG: it opens offline, in any
 * browser, and can be mailed as it is.
 */
#ifndef CAIMG_PLOT_H
#define CAIMG_PLOT_H

#include <stddef.h>
#include <stdint.h>

/* A growable string.  After an allocation failure `failed` is set and
 * further appends are ignored, so callers check once at the end. */
typedef struct {
    char *s;
    size_t len, cap;
    int failed;
} caimg_str;

void caimg_str_init(caimg_str *b);
void caimg_str_free(caimg_str *b);
void caimg_str_printf(caimg_str *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void caimg_str_append(caimg_str *b, const char *s, size_t n);
/* Append text with &, <, >, " escaped for HTML. */
void caimg_str_escape(caimg_str *b, const char *s);

/* A data series of a line chart.  x may be NULL, meaning x[i] = x0 + i*dx. */
typedef struct {
    const char *label;
    const double *x, *y;
    size_t n;
    double x0, dx;
    const char *color;     /* CSS colour; NULL picks from the palette */
    int markers;           /* draw points as well as the line */
    int nolines;           /* points only */
} caimg_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    int width, height;     /* pixels; 0 = 640 x 220 */
    int stacked;           /* line charts: one panel per series, shared x */
    int logx;              /* logarithmic x axis */
    int diagonal;          /* scatter: draw y = x */
    double ymin, ymax;     /* fixed y range when ymin < ymax */
} caimg_plot_opts;

/* Line chart of `ns` series.  Long series are reduced to at most ~1200
 * points per panel by min/max decimation, which keeps every spike visible. */
void caimg_svg_lines(caimg_str *b, const caimg_plot_opts *o, const caimg_series *s, size_t ns);

/* The same chart as a bare <svg> placed at (x, y) inside a document made
 * with caimg_svg_document_begin(), instead of an HTML <figure>; the title
 * is not drawn (the composer places it). */
void caimg_svg_lines_at(caimg_str *b, const caimg_plot_opts *o, const caimg_series *s, size_t ns,
                        double x, double y);

/* A standalone SVG document of width x height pixels (with the styles the
 * charts use and a heading `title`, may be NULL) to hold nested charts;
 * close it with caimg_svg_document_end(). */
void caimg_svg_document_begin(caimg_str *b, int width, int height, const char *title);
void caimg_svg_document_end(caimg_str *b);

/* Histogram of the finite values of v with `nbins` bins (0 = automatic). */
void caimg_svg_histogram(caimg_str *b, const caimg_plot_opts *o, const double *v, size_t n,
                         int nbins, const char *color);

/* Scatter plot. */
void caimg_svg_scatter(caimg_str *b, const caimg_plot_opts *o, const double *x,
                       const double *y, size_t n, const char *color);

/* An image [h][w] shown in grey between lo and hi (lo >= hi: the 0.5th and
 * 99.5th percentiles), scaled to `width` pixels wide, with optional outlines
 * of the labelled regions of `labels` [h][w] (0 = none; NULL for no
 * outlines); `flag[k-1]` nonzero draws region k in the accent colour and
 * zero in a muted one (NULL: all accent). */
void caimg_svg_image(caimg_str *b, const char *title, const float *img, size_t h, size_t w,
                     double lo, double hi, int width, const int32_t *labels,
                     const uint8_t *flag, size_t nlabels);

/* PNG (8-bit grey or RGB) of `pix` [h][w][channels]; returns a malloc'd
 * buffer and its size in *n, or NULL. */
unsigned char *caimg_png_encode(const uint8_t *pix, size_t h, size_t w, int channels, size_t *n);

/* Append base64 of `data`. */
void caimg_str_base64(caimg_str *b, const unsigned char *data, size_t n);

#endif
