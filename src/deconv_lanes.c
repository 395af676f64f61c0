/* deconv_lanes.c -- the AR(1) OASIS pass on eight segments at once; see
 * deconv_lanes.h.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Lane k pools frames [k S, (k + 1) S) of the trace, S = (T - 1) / 8; the
 * rest, which always includes the last frame (its z has its own offset),
 * is pooled after the segments, frame by frame.  A lane keeps its current
 * pool and the two stored pools below it in registers; the others lie in
 * rows: after frame j every lane writes its current pool's sums into row
 * j (one aligned vector store per field, with no per-lane addresses), so
 * the row of a pool's last frame holds that pool as it was when the next
 * one started after it, which is all a later merge needs.  Each stored
 * row also holds the last frame of the pool before (prev), which chains
 * a lane's pools from its last one back to its first.
 */
#include <config.h>

#include <float.h>
#include <stdlib.h>

#include "caimg/error.h"
#include "deconv_lanes.h"
#include "internal.h"

#if defined(__x86_64__) && defined(__GNUC__) && defined(__has_include)
#if __has_include(<immintrin.h>)
#include <immintrin.h>
#define LANES_AVX512 1
#endif
#endif

struct caimg_ar1_lanes {
    size_t T;
    void *block;
    double *N, *w, *gl;     /* rows: 8 lanes each */
    int32_t *prev;
    uint32_t *ends;         /* a lane's pool ends, last first */
};

int caimg_ar1_lanes_disabled = 0;

int caimg_ar1_lanes_available(void)
{
#ifdef LANES_AVX512
    return __builtin_cpu_supports("avx512f") != 0;
#else
    return 0;
#endif
}

void caimg_ar1_lanes_free(caimg_ar1_lanes *L)
{
    if (!L) return;
    free(L->block);
    free(L);
}

caimg_ar1_lanes *caimg_ar1_lanes_alloc(size_t T)
{
    if (T > (size_t)INT32_MAX / 8) {
        caimg_error(CAIMG_EINVAL, "deconv: %zu frames are too many for the segmented pass", T);
        return NULL;
    }
    caimg_ar1_lanes *L = caimg_calloc(1, sizeof *L, "the segmented OASIS pass");
    if (!L) return NULL;
    size_t rows = (T / 8 + 1) * 8;   /* doubles per field, a multiple of 8 */
    size_t bytes = 3 * rows * sizeof(double) + rows * sizeof(int32_t) + T * sizeof(uint32_t);
    if (posix_memalign(&L->block, 64, bytes) != 0) {
        free(L);
        caimg_error(CAIMG_ENOMEM, "out of memory allocating the segmented OASIS pass "
                    "(%zu bytes)", bytes);
        return NULL;
    }
    L->T = T;
    L->N = L->block;
    L->w = L->N + rows;
    L->gl = L->w + rows;
    L->prev = (int32_t *)(L->gl + rows);
    L->ends = (uint32_t *)(L->prev + rows);
    return L;
}

/* Push a pool on the stack of n, merging it into its predecessors while
 * its value is below their decayed value, or into the zero region before
 * the trace (then it is dropped).  The tests are written as in deconv.c's
 * ar1_pools() with smin = 0.  Returns the new number of pools; *merged
 * tells whether the pool was changed. */
static inline size_t push_pool(const caimg_ar1_stack *st, size_t n, double cv, double cw,
                               double cg, uint32_t ct, uint32_t cl, size_t *zend, int *merged)
{
    *merged = 0;
    for (;;) {
        if (n == 0) {
            if (cv < 0) {
                *zend = ct + cl;
                *merged = 1;
                return 0;
            }
            break;
        }
        double av = st->N[n - 1], aw = st->w[n - 1], ag = st->gl[n - 1];
        if (cv * aw >= (ag * av) * cw) break;
        cv = av + ag * cv;
        cw = aw + ag * ag * cw;
        cg = ag * cg;
        cl = st->l[n - 1] + cl;
        ct = st->t[n - 1];
        n--;
        *merged = 1;
    }
    st->N[n] = cv;
    st->w[n] = cw;
    st->gl[n] = cg;
    st->t[n] = ct;
    st->l[n] = cl;
    return n + 1;
}

#ifdef LANES_AVX512
/* Pool frames j < S of every lane into the rows (z = y - zoff). */
__attribute__((target("avx512f")))
static void lanes_pass(caimg_ar1_lanes *L, const double *y, size_t S, double g, double zoff)
{
    double *RN = L->N, *Rw = L->w, *Rg = L->gl;
    int32_t *Rp = L->prev;
    const __m256i lane = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
    const __m256i at = _mm256_mullo_epi32(_mm256_set1_epi32((int)S), lane);
    const __m512d vz = _mm512_set1_pd(zoff), vg = _mm512_set1_pd(g), one = _mm512_set1_pd(1);
    const __m512d zero = _mm512_setzero_pd(), none = _mm512_set1_pd(-DBL_MAX);
    /* Current pool: N, w, g^l and first frame (as doubles: exact).  a is
     * the stored pool below it, b the one below a; an empty level holds a
     * pool of value -DBL_MAX, which nothing merges into, starting at 0. */
    __m512d cN = _mm512_sub_pd(_mm512_i32gather_pd(at, y, 8), vz), cw = one, cg = vg, cs = zero;
    __m512d aN = none, aw = one, ag = one, as = zero;
    __m512d bN = none, bw = one, bg = one, bs = zero;
    for (size_t j = 1; j < S; j++) {
        __m512d z = _mm512_sub_pd(_mm512_i32gather_pd(at, y + j, 8), vz);
        /* Lanes whose frame j starts a pool (its value is at least the
         * decayed current one). */
        __mmask8 m = _mm512_cmp_pd_mask(_mm512_mul_pd(z, cw), _mm512_mul_pd(cg, cN), _CMP_GE_OQ);
        _mm512_store_pd(RN + 8 * (j - 1), cN);
        _mm512_store_pd(Rw + 8 * (j - 1), cw);
        _mm512_store_pd(Rg + 8 * (j - 1), cg);
        _mm256_store_si256((__m256i *)(Rp + 8 * (j - 1)), _mm512_cvttpd_epi32(_mm512_sub_pd(cs, one)));
        bN = _mm512_mask_mov_pd(bN, m, aN);
        bw = _mm512_mask_mov_pd(bw, m, aw);
        bg = _mm512_mask_mov_pd(bg, m, ag);
        bs = _mm512_mask_mov_pd(bs, m, as);
        aN = _mm512_mask_mov_pd(aN, m, cN);
        aw = _mm512_mask_mov_pd(aw, m, cw);
        ag = _mm512_mask_mov_pd(ag, m, cg);
        as = _mm512_mask_mov_pd(as, m, cs);
        __m512d gN = _mm512_fmadd_pd(cg, z, cN), gw = _mm512_fmadd_pd(cg, cg, cw);
        cN = _mm512_mask_mov_pd(gN, m, z);
        cw = _mm512_mask_mov_pd(gw, m, one);
        cg = _mm512_mask_mov_pd(_mm512_mul_pd(cg, vg), m, vg);
        cs = _mm512_mask_mov_pd(cs, m, _mm512_set1_pd((double)j));
        /* The grown pools merge into the stored ones while below them. */
        __mmask8 mm = _mm512_mask_cmp_pd_mask((__mmask8)~m, _mm512_mul_pd(cN, aw),
                                              _mm512_mul_pd(_mm512_mul_pd(ag, aN), cw), _CMP_LT_OQ);
        while (mm) {
            cN = _mm512_mask_mov_pd(cN, mm, _mm512_fmadd_pd(ag, cN, aN));
            cw = _mm512_mask_mov_pd(cw, mm, _mm512_fmadd_pd(_mm512_mul_pd(ag, ag), cw, aw));
            cg = _mm512_mask_mul_pd(cg, mm, ag, cg);
            cs = _mm512_mask_mov_pd(cs, mm, as);
            aN = _mm512_mask_mov_pd(aN, mm, bN);
            aw = _mm512_mask_mov_pd(aw, mm, bw);
            ag = _mm512_mask_mov_pd(ag, mm, bg);
            as = _mm512_mask_mov_pd(as, mm, bs);
            __mmask8 next = _mm512_mask_cmp_pd_mask(mm, _mm512_mul_pd(cN, aw),
                                                    _mm512_mul_pd(_mm512_mul_pd(ag, aN), cw),
                                                    _CMP_LT_OQ);
            /* Refill b from its row (the frame before a's first); the
             * load is off the path of the next test, which needs a only. */
            __m512d row = _mm512_sub_pd(bs, one);
            __mmask8 has = _mm512_mask_cmp_pd_mask(mm, row, zero, _CMP_GE_OQ), empty = mm & ~has;
            __m256i ri = _mm256_add_epi32(
                _mm256_slli_epi32(_mm512_cvttpd_epi32(_mm512_maskz_mov_pd(has, row)), 3), lane);
            bN = _mm512_mask_mov_pd(bN, empty, none);
            bw = _mm512_mask_mov_pd(bw, empty, one);
            bg = _mm512_mask_mov_pd(bg, empty, one);
            bs = _mm512_mask_mov_pd(bs, empty, zero);
            /* One or two lanes at a time need it: element by element is
             * cheaper than four gathers of all eight. */
            if (has) {
                int32_t at[8];
                _mm256_storeu_si256((__m256i *)at, ri);
                for (unsigned h = has; h; h &= h - 1) {
                    int k = __builtin_ctz(h);
                    __mmask8 one_k = (__mmask8)(1u << k);
                    int32_t r = at[k];
                    bN = _mm512_mask_broadcastsd_pd(bN, one_k, _mm_load_sd(RN + r));
                    bw = _mm512_mask_broadcastsd_pd(bw, one_k, _mm_load_sd(Rw + r));
                    bg = _mm512_mask_broadcastsd_pd(bg, one_k, _mm_load_sd(Rg + r));
                    bs = _mm512_mask_broadcastsd_pd(bs, one_k, _mm_set_sd((double)Rp[r] + 1));
                }
            }
            mm = next;
        }
    }
    _mm512_store_pd(RN + 8 * (S - 1), cN);
    _mm512_store_pd(Rw + 8 * (S - 1), cw);
    _mm512_store_pd(Rg + 8 * (S - 1), cg);
    _mm256_store_si256((__m256i *)(Rp + 8 * (S - 1)), _mm512_cvttpd_epi32(_mm512_sub_pd(cs, one)));
}
#endif

size_t caimg_ar1_pools_lanes(caimg_ar1_lanes *L, const double *y, size_t T, double g,
                             double zoff, double zlast, caimg_ar1_stack *st, size_t *zend)
{
    size_t n = 0, S = 0;
    int merged;
    *zend = 0;
#ifdef LANES_AVX512
    if (T >= CAIMG_AR1_LANES_MIN_T && T <= L->T && caimg_ar1_lanes_available()) S = (T - 1) / 8;
    if (S) {
        lanes_pass(L, y, S, g, zoff);
        /* Each lane's pool ends, from its last pool back along prev; the
         * eight chains are followed together, their loads overlapping. */
        size_t cnt[8] = {0};
        long e[8];
        for (int k = 0; k < 8; k++) e[k] = (long)S - 1;
        for (int live = 1; live;) {
            live = 0;
            for (int k = 0; k < 8; k++) {
                if (e[k] < 0) continue;
                live = 1;
                L->ends[(size_t)k * S + cnt[k]++] = (uint32_t)e[k];
                e[k] = L->prev[8 * e[k] + k];
            }
        }
        /* The segments' pools in order, merged like frames.  Within a
         * segment no pool is below its predecessor's decay, so once one
         * goes on the stack unchanged, the rest of its segment follows
         * unchanged too. */
        const double *RN = L->N, *Rw = L->w, *Rg = L->gl;
        const int32_t *Rp = L->prev;
        double *N = st->N, *w = st->w, *gl = st->gl;
        uint32_t *pt = st->t, *pl = st->l;
        for (size_t k = 0; k < 8; k++) {
            const uint32_t *ek = L->ends + k * S;
            size_t i = cnt[k];
            while (i > 0) {
                i--;
                size_t r = 8 * (size_t)ek[i] + k;
                uint32_t ct = (uint32_t)(k * S + (size_t)(Rp[r] + 1));
                uint32_t cl = (uint32_t)(k * S + ek[i] + 1 - ct);
                n = push_pool(st, n, RN[r], Rw[r], Rg[r], ct, cl, zend, &merged);
                if (!merged) break;
            }
            for (; i > 0; n++) {
                i--;
                size_t r = 8 * (size_t)ek[i] + k;
                uint32_t ct = (uint32_t)(k * S + (size_t)(Rp[r] + 1));
                N[n] = RN[r];
                w[n] = Rw[r];
                gl[n] = Rg[r];
                pt[n] = ct;
                pl[n] = (uint32_t)(k * S + ek[i] + 1 - ct);
            }
        }
    }
#else
    (void)L;
#endif
    for (size_t t = 8 * S; t < T; t++)
        n = push_pool(st, n, y[t] - (t + 1 < T ? zoff : zlast), 1, g, (uint32_t)t, 1, zend,
                      &merged);
    return n;
}
