/* winograd43.h: what the float (winograd.c) and the exact integer
 * (ternary_winograd.c) Winograd F(4x4,3x3) share, as macros that define
 * static inline functions for their vector types.
 *
 * DN_WINO43_TRANSFORMS(T, prefix), for any vector (or scalar) type T with
 * + - and integer scaling, defines the data transforms (Lavin & Gray 2015)
 *
 *   prefix_bt(d, ds, t, ts): t[j*ts] = (B^T d)[j] for d[0], d[ds], ..., d[5 ds]
 *   prefix_at(m, ms, y, ys): y[i*ys] = (A^T m)[i] for m[0], m[ms], ..., m[5 ms]
 *
 *   B^T = [4  0 -5  0 1 0]     A^T = [1 1  1 1  1 0]
 *         [0 -4 -4  1 1 0]           [0 1 -1 2 -2 0]
 *         [0  4 -4 -1 1 0]           [0 1  1 4  4 0]
 *         [0 -2 -1  2 1 0]           [0 1 -1 8 -8 1]
 *         [0  2 -1 -2 1 0]
 *         [0  4  0 -5 0 1]
 */
#ifndef DN_WINOGRAD43_H
#define DN_WINOGRAD43_H

#include "conv_fast.h" /* dn_activation */

#define DN_WINO43_TRANSFORMS(T, prefix)                                                          \
    static inline void prefix##_bt(const T *d, int ds, T *t, int ts)                             \
    {                                                                                            \
        T d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds], d4 = d[4 * ds], d5 = d[5 * ds]; \
        T p = d4 - 4 * d2, q = 4 * d1 - d3, r = d4 - d2, s = 2 * (d1 - d3);                      \
        t[0] = 4 * d0 - 5 * d2 + d4;                                                             \
        t[ts] = p - q;                                                                           \
        t[2 * ts] = p + q;                                                                       \
        t[3 * ts] = r - s;                                                                       \
        t[4 * ts] = r + s;                                                                       \
        t[5 * ts] = 4 * d1 - 5 * d3 + d5;                                                        \
    }                                                                                            \
    static inline void prefix##_at(const T *m, int ms, T *y, int ys)                             \
    {                                                                                            \
        T a = m[ms] + m[2 * ms], b = m[ms] - m[2 * ms];                                          \
        T c = m[3 * ms] + m[4 * ms], d = m[3 * ms] - m[4 * ms];                                  \
        y[0] = m[0] + a + c;                                                                     \
        y[ys] = b + 2 * d;                                                                       \
        y[2 * ys] = a + 4 * c;                                                                   \
        y[3 * ys] = b + 8 * d + m[5 * ms];                                                       \
    }

/* The fused activations that are max(x, slope * x), lane by lane as the
 * scalar v > 0 ? v : slope * v (relu, slope 0: v > 0 ? v : 0, so +0 and
 * not 0 * v = -0 for v < 0, as dn_activate and dn_tact1): dn_wino43_slope
 * gives 1 and the slope for those, 0 for the others (left unchanged); the
 * switch stays out of the loops. DN_WINO43_LEAKY(T, TI, name) defines
 * name(x, slope) for float vectors T (TI: the int vector of the same size). */
static inline int dn_wino43_slope(dn_activation act, float *slope)
{
    switch (act) {
    case DN_ACT_LEAKY: *slope = .1f; return 1;
    case DN_ACT_RELU: *slope = 0.f; return 1;
    case DN_ACT_RELIE: *slope = .01f; return 1;
    default: *slope = 1.f; return 0;
    }
}

#define DN_WINO43_LEAKY(T, TI, name)               \
    static inline T name(T x, float slope)         \
    {                                              \
        T y = slope == 0 ? (T){0} : slope * x;    \
        TI gt = x > y;                             \
        return (T)((gt & (TI)x) | (~gt & (TI)y)); \
    }

#endif
