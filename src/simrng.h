/* simrng.h -- counter-based random numbers for the simulator; not installed.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Every random quantity of a simulation is drawn from its own stream, named
 * by a key (seed, stream kind, a, b) -- for example (seed, NOISE, frame, row).
 * A stream is the splitmix64 sequence started at a hash of its key, so the
 * value drawn for a given pixel of a given frame depends only on the seed and
 * on where it is, never on which thread computed it or in which order frames
 * were made.  That is what makes simulated movies byte-identical whatever the
 * thread count.  splitmix64's output function is a strong 64-bit mixer; keys
 * are hashed, so streams start at unrelated points of the 2^64 cycle and the
 * short runs we draw from each (at most a few thousand values) do not overlap
 * in practice.
 */
#ifndef CAIMG_SIMRNG_H
#define CAIMG_SIMRNG_H

#include <math.h>
#include <stdint.h>

/* Stream kinds: one per kind of random quantity, so that adding a draw of
 * one kind never changes the values of another (a new neuron parameter does
 * not change the noise of frame 17). */
enum {
    SIMRNG_PLACE = 1, SIMRNG_NEURON, SIMRNG_SPIKES, SIMRNG_RATEMOD, SIMRNG_MOTION,
    SIMRNG_JUMP, SIMRNG_DEFORM, SIMRNG_NPFIELD, SIMRNG_TEXTURE, SIMRNG_VESSEL,
    SIMRNG_DRIFT, SIMRNG_NOISE, SIMRNG_STIMSET, SIMRNG_SCHEDULE, SIMRNG_RF,
    SIMRNG_BASEDRIFT, SIMRNG_SMOOTH
};

typedef struct {
    uint64_t s;        /* splitmix64 counter */
    double spare;      /* second normal deviate of a Box-Muller pair */
    int has_spare;
} simrng;

static inline uint64_t simrng_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The stream named by (seed, kind, a, b).  Each component goes through the
 * mixer so that neighbouring keys (frame t and t+1) give unrelated streams. */
static inline simrng simrng_key(uint64_t seed, uint64_t kind, uint64_t a, uint64_t b)
{
    simrng r;
    uint64_t k = simrng_mix(seed ^ 0x243f6a8885a308d3ULL);
    k = simrng_mix(k ^ (kind * 0x9e3779b97f4a7c15ULL + 0x13198a2e03707344ULL));
    k = simrng_mix(k ^ (a * 0xc2b2ae3d27d4eb4fULL + 0xa4093822299f31d0ULL));
    k = simrng_mix(k ^ (b * 0x165667b19e3779f9ULL + 0x082efa98ec4e6c89ULL));
    r.s = k;
    r.spare = 0;
    r.has_spare = 0;
    return r;
}

static inline uint64_t simrng_u64(simrng *r)
{
    r->s += 0x9e3779b97f4a7c15ULL;
    return simrng_mix(r->s);
}

/* Uniform on [0, 1) with 53 random bits. */
static inline double simrng_uniform(simrng *r)
{
    return (double)(simrng_u64(r) >> 11) * 0x1.0p-53;
}

/* Uniform on (0, 1): never 0, so its logarithm is finite. */
static inline double simrng_uniform_pos(simrng *r)
{
    return ((double)(simrng_u64(r) >> 11) + 0.5) * 0x1.0p-53;
}

/* Standard normal deviate (Box-Muller; the pair's second value is kept). */
static inline double simrng_normal(simrng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u = simrng_uniform_pos(r), v = simrng_uniform(r);
    double rad = sqrt(-2.0 * log(u));
    double ang = 6.283185307179586 * v;
    r->spare = rad * sin(ang);
    r->has_spare = 1;
    return rad * cos(ang);
}

/* Single-precision variants for the per-pixel noise, where libm's double
 * exp/log/sin/cos would dominate the cost of a frame.  Float resolution
 * (2^-24) is far below anything a photon count or read noise can show. */
static inline float simrng_uniformf_pos(simrng *r)
{
    return ((float)(simrng_u64(r) >> 40) + 0.5f) * 0x1.0p-24f;
}

static inline float simrng_normalf(simrng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return (float)r->spare;
    }
    uint64_t u = simrng_u64(r);
    float u1 = ((float)(u >> 40) + 0.5f) * 0x1.0p-24f;
    float u2 = (float)((u >> 16) & 0xffffff) * 0x1.0p-24f;
    float rad = sqrtf(-2.0f * logf(u1));
    float ang = 6.2831853f * u2;
    r->spare = rad * sinf(ang);
    r->has_spare = 1;
    return rad * cosf(ang);
}

/* log(k!) for the Poisson rejection step: exact table up to 127, then
 * Stirling's series (error below 1e-12 there). */
double caimg_simrng_logfact(long k);

/* Poisson deviate of mean lam >= 0: inversion by sequential search for
 * small means (exact, about lam+1 steps), Hormann's transformed rejection
 * with squeeze (PTRS, 1993) from lam = 10 on, which takes about 1.1
 * iterations whatever the mean. */
static inline long simrng_poisson(simrng *r, double lam)
{
    if (!(lam > 0)) return 0;
    if (lam < 10.0) {
        double p = exp(-lam), f = p, u = simrng_uniform(r);
        long k = 0;
        /* The cap only guards against u rounding to 1 - 2^-53 with p
         * underflowing; it is never reached for lam < 10 in practice. */
        while (u > f && k < 200) {
            k++;
            p *= lam / (double)k;
            f += p;
        }
        return k;
    }
    double slam = sqrt(lam), loglam = log(lam);
    double b = 0.931 + 2.53 * slam;
    double a = -0.059 + 0.02483 * b;
    double invalpha = 1.1239 + 1.1328 / (b - 3.4);
    double vr = 0.9277 - 3.6224 / (b - 2.0);
    for (;;) {
        double u = simrng_uniform(r) - 0.5;
        double v = simrng_uniform_pos(r);
        double us = 0.5 - fabs(u);
        long k = (long)floor((2.0 * a / us + b) * u + lam + 0.43);
        if (us >= 0.07 && v <= vr) return k;
        if (k < 0 || (us < 0.013 && v > us)) continue;
        if (log(v) + log(invalpha) - log(a / (us * us) + b)
            <= -lam + (double)k * loglam - caimg_simrng_logfact(k))
            return k;
    }
}

/* Poisson deviate for the pixel noise: float inversion below a mean of 10,
 * the exact PTRS sampler above. */
static inline long simrng_poissonf(simrng *r, float lam)
{
    if (!(lam > 0)) return 0;
    if (lam >= 10.0f) return simrng_poisson(r, lam);
    /* Reciprocals as constants: a multiply in the search loop instead of a
     * division, which is what the loop's dependency chain waits on. */
    static const float inv[33] = {
        0.0f,
        1.0f / 1, 1.0f / 2, 1.0f / 3, 1.0f / 4, 1.0f / 5, 1.0f / 6, 1.0f / 7, 1.0f / 8,
        1.0f / 9, 1.0f / 10, 1.0f / 11, 1.0f / 12, 1.0f / 13, 1.0f / 14, 1.0f / 15,
        1.0f / 16, 1.0f / 17, 1.0f / 18, 1.0f / 19, 1.0f / 20, 1.0f / 21, 1.0f / 22,
        1.0f / 23, 1.0f / 24, 1.0f / 25, 1.0f / 26, 1.0f / 27, 1.0f / 28, 1.0f / 29,
        1.0f / 30, 1.0f / 31, 1.0f / 32};
    float p = expf(-lam), f = p, u = simrng_uniformf_pos(r);
    long k = 0;
    while (u > f && k < 32) {
        k++;
        p *= lam * inv[k];
        f += p;
    }
    while (u > f && k < 200) {
        k++;
        p *= lam / (float)k;
        f += p;
    }
    return k;
}

/* Fast exact Poisson deviates for small means, used per pixel.  A mean
 * lam < 10 is split as lam = g/4 + r with g an integer and 0 <= r < 1/4;
 * Poisson(lam) = Poisson(g/4) + Poisson(r) exactly, because sums of
 * independent Poisson variables are Poisson.  Poisson(g/4) is drawn by
 * inversion of a tabulated CDF with a guide table (about one comparison);
 * Poisson(r) is 0 with probability exp(-r) >= 0.78, so its search is short,
 * and exp(-r) for r < 1/4 is a degree-6 polynomial accurate to 1e-8. */
#define SIMRNG_PG 40          /* grid means 0, 0.25, ..., 9.75 */
#define SIMRNG_PK 48          /* tabulated counts per grid mean */
#define SIMRNG_GUIDE 64
typedef struct {
    float cdf[SIMRNG_PG][SIMRNG_PK];
    unsigned char guide[SIMRNG_PG][SIMRNG_GUIDE];
    /* Ziggurat tables for normal deviates (Marsaglia and Tsang 2000, 128
     * layers): about one multiply and one comparison per deviate. */
    uint32_t kn[128];
    float wn[128], fn[128];
} simrng_ptab;

static inline void simrng_ptab_init(simrng_ptab *t)
{
    for (int g = 0; g < SIMRNG_PG; g++) {
        double lam = 0.25 * g, p = exp(-lam), f = p;
        for (int k = 0; k < SIMRNG_PK; k++) {
            if (k) {
                p *= lam / k;
                f += p;
            }
            t->cdf[g][k] = (float)(f < 1.0 ? f : 1.0);
        }
        t->cdf[g][SIMRNG_PK - 1] = 1.0f;
        int k = 0;
        for (int i = 0; i < SIMRNG_GUIDE; i++) {
            while ((double)t->cdf[g][k] < (double)i / SIMRNG_GUIDE && k < SIMRNG_PK - 1) k++;
            t->guide[g][i] = (unsigned char)k;
        }
    }
    const double m1 = 2147483648.0, vn = 9.91256303526217e-3;
    double dn = 3.442619855899, tn = dn;
    double q = vn / exp(-0.5 * dn * dn);
    t->kn[0] = (uint32_t)((dn / q) * m1);
    t->kn[1] = 0;
    t->wn[0] = (float)(q / m1);
    t->wn[127] = (float)(dn / m1);
    t->fn[0] = 1.0f;
    t->fn[127] = (float)exp(-0.5 * dn * dn);
    for (int i = 126; i >= 1; i--) {
        dn = sqrt(-2.0 * log(vn / dn + exp(-0.5 * dn * dn)));
        t->kn[i + 1] = (uint32_t)((dn / tn) * m1);
        tn = dn;
        t->fn[i] = (float)exp(-0.5 * dn * dn);
        t->wn[i] = (float)(dn / m1);
    }
}

/* Standard normal deviate by the ziggurat.  The layer index and the
 * deviate's bits come from different parts of one 64-bit draw, avoiding the
 * correlation of the original 32-bit version (Doornik 2005). */
static inline float simrng_normal_zig(simrng *r, const simrng_ptab *t)
{
    for (;;) {
        uint64_t bits = simrng_u64(r);
        int iz = (int)(bits & 127);
        int32_t hz = (int32_t)(uint32_t)(bits >> 32);
        uint32_t ahz = hz < 0 ? (uint32_t)(-(int64_t)hz) : (uint32_t)hz;
        float x = (float)hz * t->wn[iz];
        if (ahz < t->kn[iz]) return x;
        if (iz == 0) {
            /* The tail beyond r = 3.4426, by Marsaglia's exponential method. */
            const float rr = 3.442620f;
            float xx, yy;
            do {
                xx = -logf(simrng_uniformf_pos(r)) / rr;
                yy = -logf(simrng_uniformf_pos(r));
            } while (yy + yy < xx * xx);
            return hz > 0 ? rr + xx : -rr - xx;
        }
        float u = ((float)((bits >> 7) & 0xffffff) + 0.5f) * 0x1.0p-24f;
        if (t->fn[iz] + u * (t->fn[iz - 1] - t->fn[iz]) < expf(-0.5f * x * x)) return x;
    }
}

static inline long simrng_poisson_tab(simrng *r, const simrng_ptab *t, float lam)
{
    if (!(lam > 0)) return 0;
    if (lam >= 10.0f) return simrng_poisson(r, lam);
    int g = (int)(lam * 4.0f);
    if (g > SIMRNG_PG - 1) g = SIMRNG_PG - 1;
    float rr = lam - 0.25f * (float)g;
    if (rr < 0) rr = 0;
    uint64_t bits = simrng_u64(r);
    float u1 = ((float)(bits >> 40) + 0.5f) * 0x1.0p-24f;
    float u2 = ((float)((bits >> 16) & 0xffffff) + 0.5f) * 0x1.0p-24f;
    const float *cdf = t->cdf[g];
    /* u1 can round up to exactly 1.0f in single precision; keep the guide
     * index inside the table. */
    int gi = (int)(u1 * SIMRNG_GUIDE);
    if (gi > SIMRNG_GUIDE - 1) gi = SIMRNG_GUIDE - 1;
    long k = t->guide[g][gi];
    while (u1 > cdf[k] && k < SIMRNG_PK - 1) k++;
    float e = 1.0f - rr * (1.0f - rr * (0.5f - rr * (1.0f / 6 - rr * (1.0f / 24 - rr * (1.0f / 120 - rr * (1.0f / 720))))));
    if (u2 <= e) return k;
    float p = rr * e, f = e + p;
    long j = 1;
    while (u2 > f && j < 30) {
        j++;
        p *= rr / (float)j;
        f += p;
    }
    return k + j;
}

#endif
