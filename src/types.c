/* types.c -- sample types and conversions.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "caimg/types.h"

size_t caimg_dtype_size(caimg_dtype dt)
{
    switch (dt) {
    case CAIMG_DT_U8: case CAIMG_DT_I8: return 1;
    case CAIMG_DT_U16: case CAIMG_DT_I16: return 2;
    case CAIMG_DT_U32: case CAIMG_DT_I32: case CAIMG_DT_F32: return 4;
    case CAIMG_DT_F64: case CAIMG_DT_I64: return 8;
    default: return 0;
    }
}

static const char *const names[] = {
    "none", "uint8", "int8", "uint16", "int16", "uint32", "int32",
    "float32", "float64", "int64"
};

const char *caimg_dtype_name(caimg_dtype dt)
{
    return (unsigned)dt < sizeof names / sizeof *names ? names[dt] : "none";
}

caimg_dtype caimg_dtype_from_name(const char *name)
{
    static const struct { const char *alias; caimg_dtype dt; } aliases[] = {
        {"u8", CAIMG_DT_U8}, {"i8", CAIMG_DT_I8}, {"u16", CAIMG_DT_U16},
        {"i16", CAIMG_DT_I16}, {"u32", CAIMG_DT_U32}, {"i32", CAIMG_DT_I32},
        {"f32", CAIMG_DT_F32}, {"float", CAIMG_DT_F32}, {"single", CAIMG_DT_F32},
        {"f64", CAIMG_DT_F64}, {"double", CAIMG_DT_F64}, {"i64", CAIMG_DT_I64},
    };
    if (!name) return CAIMG_DT_NONE;
    for (size_t i = 1; i < sizeof names / sizeof *names; i++)
        if (strcmp(name, names[i]) == 0) return (caimg_dtype)i;
    for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
        if (strcmp(name, aliases[i].alias) == 0) return aliases[i].dt;
    return CAIMG_DT_NONE;
}

int caimg_dtype_is_float(caimg_dtype dt)
{
    return dt == CAIMG_DT_F32 || dt == CAIMG_DT_F64;
}

void caimg_to_float(const void *src, caimg_dtype dt, float *dst, size_t n)
{
#define CONV(T) do { const T *s = src; for (size_t i = 0; i < n; i++) dst[i] = (float)s[i]; } while (0)
    switch (dt) {
    case CAIMG_DT_U8:  CONV(uint8_t); break;
    case CAIMG_DT_I8:  CONV(int8_t); break;
    case CAIMG_DT_U16: CONV(uint16_t); break;
    case CAIMG_DT_I16: CONV(int16_t); break;
    case CAIMG_DT_U32: CONV(uint32_t); break;
    case CAIMG_DT_I32: CONV(int32_t); break;
    case CAIMG_DT_F32: memmove(dst, src, n * sizeof *dst); break;
    case CAIMG_DT_F64: CONV(double); break;
    case CAIMG_DT_I64: CONV(int64_t); break;
    default: memset(dst, 0, n * sizeof *dst); break;
    }
#undef CONV
}

size_t caimg_from_float(const float *src, void *dst, caimg_dtype dt, size_t n)
{
    size_t clamped = 0;
    /* Round half away from zero, clamp to [lo, hi], NaN -> 0. */
#define CONV(T, lo, hi) do {                                              \
        T *d = dst;                                                       \
        for (size_t i = 0; i < n; i++) {                                  \
            double v = src[i];                                            \
            if (isnan(v)) { d[i] = 0; clamped++; }                        \
            else if (v <= (double)(lo)) { d[i] = (lo); clamped += v < (double)(lo) - 0.5; } \
            else if (v >= (double)(hi)) { d[i] = (hi); clamped += v > (double)(hi) + 0.5; } \
            else d[i] = (T)lround(v);                                     \
        }                                                                 \
    } while (0)
    switch (dt) {
    case CAIMG_DT_U8:  CONV(uint8_t, 0, UINT8_MAX); break;
    case CAIMG_DT_I8:  CONV(int8_t, INT8_MIN, INT8_MAX); break;
    case CAIMG_DT_U16: CONV(uint16_t, 0, UINT16_MAX); break;
    case CAIMG_DT_I16: CONV(int16_t, INT16_MIN, INT16_MAX); break;
    case CAIMG_DT_U32: CONV(uint32_t, 0, UINT32_MAX); break;
    case CAIMG_DT_I32: CONV(int32_t, INT32_MIN, INT32_MAX); break;
    /* 2^63 is not representable in a double: clamp just inside. */
    case CAIMG_DT_I64: CONV(int64_t, INT64_MIN, 9223372036854774784.0); break;
    case CAIMG_DT_F32: memmove(dst, src, n * sizeof *src); break;
    case CAIMG_DT_F64: {
        double *d = dst;
        for (size_t i = 0; i < n; i++) d[i] = src[i];
        break;
    }
    default: break;
    }
#undef CONV
    return clamped;
}
