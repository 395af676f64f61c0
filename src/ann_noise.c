/* ann_noise.c -- Gaussian noise for the network's noise layers, generated
 * in vectorised blocks.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Unit u of sample g in layer l gets the Philox4x32-10 output for the
 * counter (u / 4, low and high words of g, l) under a key derived from the
 * model seed and the caller's stream, word u % 4, turned into a standard
 * normal by Box-Muller (pairs of words).  This is a pure function of those
 * numbers, so noise does not depend on threads or batching.  Built with
 * -fno-trapping-math -fno-math-errno (configure: ANN_KERNEL_CFLAGS) so that
 * the block loop vectorises: drawing the noise of a conv layer used to cost
 * as much as the layer itself.
 */
#include <config.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ann_internal.h"
#include "internal.h"

/* The helpers must be inlined into the vector loop for it to vectorise. */
#if defined(__GNUC__)
#define ANN_INLINE static inline __attribute__((always_inline))
#else
#define ANN_INLINE static inline
#endif

/* One Philox round with the round's key words. */
#define PHILOX_ROUND(K0, K1) do {                                               \
        uint64_t p0_ = (uint64_t)0xD2511F53u * c0, p1_ = (uint64_t)0xCD9E8D57u * c2; \
        uint32_t n0_ = (uint32_t)(p1_ >> 32) ^ c1 ^ (K0);                       \
        uint32_t n2_ = (uint32_t)(p0_ >> 32) ^ c3 ^ (K1);                       \
        c1 = (uint32_t)p1_; c3 = (uint32_t)p0_; c0 = n0_; c2 = n2_;             \
    } while (0)

#define PHILOX10(ka, kb) do {                                                  \
        PHILOX_ROUND(ka[0], kb[0]); PHILOX_ROUND(ka[1], kb[1]);                 \
        PHILOX_ROUND(ka[2], kb[2]); PHILOX_ROUND(ka[3], kb[3]);                 \
        PHILOX_ROUND(ka[4], kb[4]); PHILOX_ROUND(ka[5], kb[5]);                 \
        PHILOX_ROUND(ka[6], kb[6]); PHILOX_ROUND(ka[7], kb[7]);                 \
        PHILOX_ROUND(ka[8], kb[8]); PHILOX_ROUND(ka[9], kb[9]);                 \
    } while (0)

/* The key schedule: round r uses key + r * (Weyl constants). */
static void key_schedule(const uint32_t key[2], uint32_t ka[10], uint32_t kb[10])
{
    for (uint32_t r = 0; r < 10; r++) {
        ka[r] = key[0] + r * 0x9E3779B9u;
        kb[r] = key[1] + r * 0xBB67AE85u;
    }
}

void ann_philox_blocks(const uint32_t key[2], uint32_t b0, uint32_t w1, uint32_t w2,
                       uint32_t w3, size_t nblk, uint32_t *out)
{
    uint32_t ka[10], kb[10];
    key_schedule(key, ka, kb);
    #pragma omp simd
    for (size_t b = 0; b < nblk; b++) {
        uint32_t c0 = b0 + (uint32_t)b, c1 = w1, c2 = w2, c3 = w3;
        PHILOX10(ka, kb);
        out[4 * b] = c0; out[4 * b + 1] = c1; out[4 * b + 2] = c2; out[4 * b + 3] = c3;
    }
}

/* ln x for normal x in (0, 1]: x = 2^e m with m in [sqrt(1/2), sqrt(2)),
 * ln m = 2 atanh(s), s = (m - 1)/(m + 1), |s| < 0.172, series to s^9
 * (absolute error below 2e-6 over the range). */
ANN_INLINE float fast_logf(float x)
{
    union { float f; int32_t i; } u = {x};
    int32_t e = ((u.i >> 23) & 0xff) - 127;
    u.i = (u.i & 0x007fffff) | 0x3f800000;
    float m = u.f;
    int big = m > 1.41421356f;
    m = big ? 0.5f * m : m;
    e = big ? e + 1 : e;
    float s = (m - 1.0f) / (m + 1.0f), s2 = s * s;
    float p = s * (2.0f + s2 * (0.666666667f + s2 * (0.4f + s2 * (0.285714286f +
              s2 * 0.222222222f))));
    return (float)e * 0.693147181f + p;
}

/* sin and cos of 2 pi t, t in [0, 1): reduce to the nearest quarter turn,
 * |r| <= pi/4, Taylor polynomials (error below 1e-7), then rotate. */
ANN_INLINE void fast_sincos2pi(float t, float *s, float *c)
{
    float q = (t * 4.0f + 12582912.0f) - 12582912.0f;
    float r = (t - 0.25f * q) * 6.28318531f;
    int qi = (int)q & 3;
    float r2 = r * r;
    float sr = r * (1.0f + r2 * (-0.166666667f + r2 * (0.00833333333f + r2 * (-0.000198412698f +
               r2 * 2.75573192e-6f))));
    float cr = 1.0f + r2 * (-0.5f + r2 * (0.0416666667f + r2 * (-0.00138888889f +
               r2 * (2.48015873e-5f - r2 * 2.75573192e-7f))));
    *s = qi == 0 ? sr : qi == 1 ? cr : qi == 2 ? -sr : -cr;
    *c = qi == 0 ? cr : qi == 1 ? -sr : qi == 2 ? -cr : sr;
}

/* Two standard normals from two 32-bit words (24-bit uniforms: noise
 * models variability, it is not a Monte Carlo integral). */
ANN_INLINE void box_muller(uint32_t a, uint32_t b, float *z0, float *z1)
{
    float u1 = (float)((a >> 8) + 1) * (1.0f / 16777216.0f);     /* (0, 1] */
    float t = (float)(b >> 8) * (1.0f / 16777216.0f);            /* [0, 1) */
    float rad = sqrtf(-2.0f * fast_logf(u1));
    float s, c;
    fast_sincos2pi(t, &s, &c);
    *z0 = rad * c;
    *z1 = rad * s;
}

#define NOISE_BLOCKS 64     /* Philox blocks per pass: 256 normals on the stack */

void ann_normals(const uint32_t key[2], uint64_t g, uint32_t layer, size_t u0, size_t n,
                 float *z)
{
    uint32_t ka[10], kb[10];
    key_schedule(key, ka, kb);
    const uint32_t w1 = (uint32_t)g, w2 = (uint32_t)(g >> 32);
    /* u0 is a multiple of 4; whole blocks are drawn, the tail discarded. */
    for (size_t u = u0; u < u0 + n; u += 4 * NOISE_BLOCKS) {
        float buf[4 * NOISE_BLOCKS];
        size_t cnt = CAIMG_MIN((size_t)(4 * NOISE_BLOCKS), u0 + n - u);
        size_t nblk = (cnt + 3) / 4;
        const uint32_t b0 = (uint32_t)(u >> 2);
        #pragma omp simd
        for (size_t b = 0; b < nblk; b++) {
            uint32_t c0 = b0 + (uint32_t)b, c1 = w1, c2 = w2, c3 = layer;
            PHILOX10(ka, kb);
            box_muller(c0, c1, &buf[4 * b], &buf[4 * b + 1]);
            box_muller(c2, c3, &buf[4 * b + 2], &buf[4 * b + 3]);
        }
        memcpy(z + (u - u0), buf, cnt * sizeof *buf);
    }
}
