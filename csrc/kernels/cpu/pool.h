/* pool.h: the 2x2 stride-2 max pool of a pair of rows: of floats for the
 * [maxpool] layer, of the exact integer sums for the int8 ternary kernel's
 * fused pooling (below), which give the same floats.
 *
 * o[x] = max of r0[2x], r0[2x+1], r1[2x], r1[2x+1] for 0 <= x < n, taken in
 * that order from -FLT_MAX with m = v > m ? v : m (the first of equal
 * maxima; NaN never taken). 8 outputs per step where the compiler has
 * __builtin_shufflevector (GCC 12+, clang), the scalar loop otherwise.
 */
#ifndef DN_POOL_H
#define DN_POOL_H

#include <float.h>
#include <stdint.h>
#include <string.h>

typedef float dn_pool_f8 __attribute__((vector_size(32)));
typedef int32_t dn_pool_i8 __attribute__((vector_size(32)));

/* v > m ? v : m lane by lane. */
static inline dn_pool_f8 dn_pool_vmax(dn_pool_f8 v, dn_pool_f8 m)
{
    dn_pool_i8 gt = v > m;
    return (dn_pool_f8)((gt & (dn_pool_i8)v) | (~gt & (dn_pool_i8)m));
}

static inline void dn_max2x2_rows(const float *r0, const float *r1, float *o, int n)
{
    int x = 0;
#if defined(__has_builtin) && !defined(DN_NO_SHUFFLEVECTOR)
#if __has_builtin(__builtin_shufflevector)
    for (; x + 8 <= n; x += 8) {
        /* one 32-byte load per vector (a 64-byte copy into an array of two
         * can go through the stack and stall store forwarding) */
        dn_pool_f8 a0, a1, b0, b1, m = {-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX};
        memcpy(&a0, r0 + 2 * (size_t)x, sizeof a0);
        memcpy(&a1, r0 + 2 * (size_t)x + 8, sizeof a1);
        memcpy(&b0, r1 + 2 * (size_t)x, sizeof b0);
        memcpy(&b1, r1 + 2 * (size_t)x + 8, sizeof b1);
        m = dn_pool_vmax(__builtin_shufflevector(a0, a1, 0, 2, 4, 6, 8, 10, 12, 14), m);
        m = dn_pool_vmax(__builtin_shufflevector(a0, a1, 1, 3, 5, 7, 9, 11, 13, 15), m);
        m = dn_pool_vmax(__builtin_shufflevector(b0, b1, 0, 2, 4, 6, 8, 10, 12, 14), m);
        m = dn_pool_vmax(__builtin_shufflevector(b0, b1, 1, 3, 5, 7, 9, 11, 13, 15), m);
        memcpy(o + x, &m, sizeof m);
    }
#endif
#endif
    for (; x < n; ++x) {
        const float v[4] = {r0[2 * x], r0[2 * x + 1], r1[2 * x], r1[2 * x + 1]};
        float m = -FLT_MAX;
        for (int i = 0; i < 4; ++i) m = v[i] > m ? v[i] : m;
        o[x] = m;
    }
}

/* The int8 ternary kernel pools its exact integer sums e before its
 * epilogue y = act(e * m + shift), which is monotone in e (non-decreasing
 * when m >= 0, non-increasing when m < 0), so y of the max (m < 0: of the
 * min) is the max of the y: the same floats as dn_max2x2_rows after the
 * epilogue, for a quarter of the epilogues.
 * dn_pool_sel(a, b, lo): the max (lo: the min) of a and b;
 * dn_pool2x2_s32x8(r0, r1, lo): lanes x < 8 of the max (lo: min) of r0[2x],
 * r0[2x+1], r1[2x], r1[2x+1] (where DN_POOL_HAVE_VEC). */
static inline int32_t dn_pool_sel(int32_t a, int32_t b, int lo) { return (lo ? a < b : a > b) ? a : b; }

#if defined(__has_builtin) && !defined(DN_NO_SHUFFLEVECTOR)
#if __has_builtin(__builtin_shufflevector)
#define DN_POOL_HAVE_VEC 1
static inline dn_pool_i8 dn_pool2x2_s32x8(const int32_t *r0, const int32_t *r1, int lo)
{
    /* the min as the max of the complements (~a = -1 - a reverses the order) */
    const dn_pool_i8 flip = {-lo, -lo, -lo, -lo, -lo, -lo, -lo, -lo};
    dn_pool_i8 a0, a1, b0, b1, m, v[4];
    memcpy(&a0, r0, sizeof a0);
    memcpy(&a1, r0 + 8, sizeof a1);
    memcpy(&b0, r1, sizeof b0);
    memcpy(&b1, r1 + 8, sizeof b1);
    v[0] = __builtin_shufflevector(a0, a1, 0, 2, 4, 6, 8, 10, 12, 14) ^ flip;
    v[1] = __builtin_shufflevector(a0, a1, 1, 3, 5, 7, 9, 11, 13, 15) ^ flip;
    v[2] = __builtin_shufflevector(b0, b1, 0, 2, 4, 6, 8, 10, 12, 14) ^ flip;
    v[3] = __builtin_shufflevector(b0, b1, 1, 3, 5, 7, 9, 11, 13, 15) ^ flip;
    m = v[0];
    for (int i = 1; i < 4; ++i) {
        dn_pool_i8 gt = v[i] > m;
        m = (gt & v[i]) | (~gt & m);
    }
    return m ^ flip;
}
#endif
#endif

#endif
