/* check_types.c -- sample type names and conversions.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include <check.h>

#include "caimg/caimg.h"
#include "testutil.h"

START_TEST(names_round_trip)
{
    for (int dt = CAIMG_DT_U8; dt <= CAIMG_DT_I64; dt++)
        ck_assert_int_eq(caimg_dtype_from_name(caimg_dtype_name(dt)), dt);
    ck_assert_int_eq(caimg_dtype_from_name("u16"), CAIMG_DT_U16);
    ck_assert_int_eq(caimg_dtype_from_name("complex"), CAIMG_DT_NONE);
    ck_assert_uint_eq(caimg_dtype_size(CAIMG_DT_I16), 2);
}
END_TEST

START_TEST(from_float_rounds_and_clamps)
{
    float src[] = {-3.0f, 0.4f, 0.5f, 65535.4f, 70000.0f, NAN, 1.5f};
    uint16_t u[7];
    size_t clamped = caimg_from_float(src, u, CAIMG_DT_U16, 7);
    ck_assert_uint_eq(u[0], 0);
    ck_assert_uint_eq(u[1], 0);
    ck_assert_uint_eq(u[2], 1);
    ck_assert_uint_eq(u[3], 65535);
    ck_assert_uint_eq(u[4], 65535);
    ck_assert_uint_eq(u[5], 0);
    ck_assert_uint_eq(u[6], 2);
    ck_assert_uint_eq(clamped, 3);   /* -3, 70000, NaN */
    int8_t s[3];
    float src2[] = {-200.0f, -1.5f, 127.0f};
    caimg_from_float(src2, s, CAIMG_DT_I8, 3);
    ck_assert_int_eq(s[0], -128);
    ck_assert_int_eq(s[1], -2);
    ck_assert_int_eq(s[2], 127);
}
END_TEST

START_TEST(to_float_every_type)
{
    uint32_t u32[] = {0, 4000000000u};
    int32_t i32[] = {-5, 7};
    double f64[] = {1.25, -2.5};
    float out[2];
    caimg_to_float(u32, CAIMG_DT_U32, out, 2);
    ck_assert_float_eq_tol(out[1], 4e9f, 1e3f);
    caimg_to_float(i32, CAIMG_DT_I32, out, 2);
    ck_assert_float_eq(out[0], -5.0f);
    caimg_to_float(f64, CAIMG_DT_F64, out, 2);
    ck_assert_float_eq(out[1], -2.5f);
    int64_t i64[2] = {-7, 1ll << 40};
    caimg_to_float(i64, CAIMG_DT_I64, out, 2);
    ck_assert_float_eq(out[0], -7.0f);
    ck_assert_float_eq(out[1], 1099511627776.0f);
    float big[3] = {2.5f, -1e30f, 1e30f};
    int64_t back[3];
    ck_assert_uint_eq(caimg_from_float(big, back, CAIMG_DT_I64, 3), 2);
    ck_assert_int_eq(back[0], 3);
    ck_assert(back[1] == INT64_MIN);
    ck_assert(back[2] > 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("types");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, names_round_trip);
    tcase_add_test(tc, from_float_rounds_and_clamps);
    tcase_add_test(tc, to_float_every_type);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
