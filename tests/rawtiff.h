/* rawtiff.h -- build small classic TIFF files byte by byte, for tests.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * libtiff writes well-formed files with the image data before the IFD.
 * Tests also need what libtiff will not write: an IFD followed by frames
 * stored back to back (ImageJ's large stacks), strips out of order, and
 * deliberately broken files (offsets past the end, an IFD that points to
 * itself).  This header assembles such files in memory; it is shared by
 * tests/check_tiffio.c and testdata/bad/make-bad-corpus.c.  Test-only code:
 * allocation failure aborts.
 */
#ifndef CAIMG_TESTS_RAWTIFF_H
#define CAIMG_TESTS_RAWTIFF_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { RT_ASCII = 2, RT_SHORT = 3, RT_LONG = 4, RT_RATIONAL = 5 };

typedef struct {
    uint16_t tag, type;
    uint32_t count;
    uint32_t value;   /* the value if it fits in 4 bytes, else its offset */
} rt_entry;

typedef struct {
    unsigned char *b;
    size_t n, cap;
    int big;          /* big-endian ("MM") file */
    size_t link;      /* where the offset of the next IFD is to be stored */
} rawtiff;

static inline void rt_reserve(rawtiff *r, size_t more)
{
    if (r->n + more <= r->cap) return;
    size_t cap = r->cap ? r->cap : 256;
    while (cap < r->n + more) cap *= 2;
    r->b = realloc(r->b, cap);
    if (!r->b) abort();
    memset(r->b + r->cap, 0, cap - r->cap);
    r->cap = cap;
}

static inline void rt_put(rawtiff *r, size_t at, uint32_t v, int nbytes)
{
    for (int i = 0; i < nbytes; i++) {
        int shift = 8 * (r->big ? nbytes - 1 - i : i);
        r->b[at + (size_t)i] = (unsigned char)(v >> shift);
    }
}

/* Append n bytes (zeros if data is NULL); returns their offset. */
static inline uint32_t rt_append(rawtiff *r, const void *data, size_t n)
{
    rt_reserve(r, n);
    size_t at = r->n;
    if (data) memcpy(r->b + at, data, n);
    else memset(r->b + at, 0, n);
    r->n += n;
    return (uint32_t)at;
}

/* Append n unsigned values of `size` bytes each in the file's byte order. */
static inline uint32_t rt_append_uints(rawtiff *r, const uint32_t *v, size_t n, int size)
{
    rt_reserve(r, n * (size_t)size);
    size_t at = r->n;
    for (size_t i = 0; i < n; i++) rt_put(r, at + i * (size_t)size, v[i], size);
    r->n += n * (size_t)size;
    return (uint32_t)at;
}

static inline void rt_init(rawtiff *r, int big)
{
    memset(r, 0, sizeof *r);
    r->big = big;
    rt_append(r, big ? "MM" : "II", 2);
    rt_reserve(r, 6);
    rt_put(r, 2, 42, 2);
    rt_put(r, 4, 0, 4);
    r->n = 8;
    r->link = 4;
}

/* Append an IFD with entries sorted by tag, link it from the previous one
 * (or the header), and return its offset. */
static inline uint32_t rt_ifd(rawtiff *r, const rt_entry *e, int n)
{
    if (r->n & 1) rt_append(r, NULL, 1);
    size_t at = r->n;
    rt_reserve(r, 2 + 12 * (size_t)n + 4);
    rt_put(r, r->link, (uint32_t)at, 4);
    rt_put(r, at, (uint32_t)n, 2);
    for (int i = 0; i < n; i++) {
        size_t p = at + 2 + 12 * (size_t)i;
        rt_put(r, p, e[i].tag, 2);
        rt_put(r, p + 2, e[i].type, 2);
        rt_put(r, p + 4, e[i].count, 4);
        if (e[i].type == RT_SHORT && e[i].count == 1) {
            rt_put(r, p + 8, e[i].value, 2);
            rt_put(r, p + 10, 0, 2);
        } else {
            rt_put(r, p + 8, e[i].value, 4);
        }
    }
    rt_put(r, at + 2 + 12 * (size_t)n, 0, 4);
    r->link = at + 2 + 12 * (size_t)n;
    r->n = at + 2 + 12 * (size_t)n + 4;
    return (uint32_t)at;
}

/* Write the first `len` bytes (all if len is SIZE_MAX) and free. */
static inline int rt_save(rawtiff *r, const char *path, size_t len)
{
    FILE *f = fopen(path, "wb");
    size_t n = len < r->n ? len : r->n;
    int ok = f && fwrite(r->b, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = 0;
    free(r->b);
    memset(r, 0, sizeof *r);
    return ok ? 0 : -1;
}

#endif
