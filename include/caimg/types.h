/* caimg/types.h -- sample types shared by the TIFF and HDF5 layers.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#ifndef CAIMG_TYPES_H
#define CAIMG_TYPES_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The sample types a movie, image or array may have on disk.  Computation is
 * done in float (movies) or double (traces); these name what is stored. */
typedef enum {
    CAIMG_DT_NONE = 0,
    CAIMG_DT_U8, CAIMG_DT_I8,
    CAIMG_DT_U16, CAIMG_DT_I16,
    CAIMG_DT_U32, CAIMG_DT_I32,
    CAIMG_DT_F32, CAIMG_DT_F64,
    CAIMG_DT_I64          /* offsets into ragged arrays (pixel lists) */
} caimg_dtype;

/* Bytes per sample (0 for CAIMG_DT_NONE). */
size_t caimg_dtype_size(caimg_dtype dt);

/* Lower-case names as used on the command line and by caimg info:
 * "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64",
 * "int64". */
const char *caimg_dtype_name(caimg_dtype dt);

/* The type with that name (also accepts "u16", "f32", "float", "double"),
 * or CAIMG_DT_NONE. */
caimg_dtype caimg_dtype_from_name(const char *name);

/* 1 for the two floating-point types. */
int caimg_dtype_is_float(caimg_dtype dt);

/* Convert n samples of type `dt` at src to float at dst. */
void caimg_to_float(const void *src, caimg_dtype dt, float *dst, size_t n);

/* Convert n floats to type `dt`, rounding to nearest and clamping to the
 * type's range; NaN becomes 0 for integer types.  Returns the number of
 * samples that were clamped or were NaN, so callers can warn. */
size_t caimg_from_float(const float *src, void *dst, caimg_dtype dt, size_t n);

#ifdef __cplusplus
}
#endif
#endif
