/* ternary_gemm_vnni.c: the int8 micro-kernel on AVX-512 VNNI (vpdpbusd),
 * same tile contract and packed formats as the AVX2 one (ternary_gemm.h).
 * Compiled with __attribute__((target(...))) whatever the build flags and
 * only used when the CPU reports avx512f/bw/vl/vnni.
 *
 * One k-group (4 taps) per step, 6 filters x 16 pixels:
 *
 *   b   = 16 pixels x 4 bytes u      (one 64-byte load)
 *   acc[i] += dpbusd(b, bcast(a_i))  int32 lane p: sum of the 4 products
 *                                    u[p][t] * code[i][t] of pixel p
 *
 * vpdpbusd adds the four u8 x s8 products of each lane to its int32 with
 * no intermediate saturation, so there is no int16 block: the sums are
 * exact as long as they fit in int32 (|.| <= 255 * k < 2^31 for k < 8.4M).
 * Epilogue as the generic one: (float)(acc - corr) * m, + shift, act, no FMA.
 * Each step prefetches the codes 1 KiB ahead (they stream from memory on
 * the deep layers, where a row block's codes are used for few pixels).
 */
#include "ternary_gemm.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>

#define MR DN_TMR
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

VNNI static inline __m512 act16(__m512 x, dn_activation act)
{
    switch (act) {
    case DN_ACT_LEAKY: return _mm512_max_ps(x, _mm512_mul_ps(x, _mm512_set1_ps(.1f)));
    case DN_ACT_RELU: return _mm512_max_ps(x, _mm512_setzero_ps());
    case DN_ACT_RELIE: return _mm512_max_ps(x, _mm512_mul_ps(x, _mm512_set1_ps(.01f)));
    default: return x;
    }
}

/* acc_i += dpbusd(b, broadcast of filter i's 4 code bytes), the broadcast
 * folded into the instruction's memory operand ({1to16}). Written in asm
 * because GCC (12) loads it with a separate vpbroadcastd (on Zen 4 up to
 * 15% more cycles for a tile). */
#define STEP(i) __asm__("vpdpbusd %[a]%{1to16%}, %[x], %[c]" : [c] "+v"(c[i]) : [x] "v"(b), [a] "m"(ap[i]))

/* The tile on its first R rows (R >= t->mr): a row block's last filters
 * (32 filters = 5 x 6 + 2) cost no products for the rows past them. */
VNNI static inline __attribute__((always_inline)) void tile_rows(const int R, const dn_ttile *t)
{
    __m512i c[MR];
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) c[i] = _mm512_setzero_si512();
    const int32_t *ap = (const int32_t *)(const void *)t->a;
    for (int q = 0; q < t->kgc; ++q, ap += MR) {
        _mm_prefetch((const char *)(ap + 256), _MM_HINT_T0);
        __m512i b = _mm512_loadu_si512(t->b + t->boff[q]);
#pragma GCC unroll 6
        for (int i = 0; i < R; ++i) STEP(i);
    }
    if (!t->first)
#pragma GCC unroll 6
        for (int i = 0; i < R; ++i) c[i] = _mm512_add_epi32(c[i], _mm512_loadu_si512(t->c32 + (size_t)i * t->ldc32));
    if (!t->last) {
#pragma GCC unroll 6
        for (int i = 0; i < R; ++i) _mm512_storeu_si512(t->c32 + (size_t)i * t->ldc32, c[i]);
        return;
    }
    __mmask16 keep = (__mmask16)((1u << t->nr) - 1);
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) {
        if (i >= t->mr) break;
        __m512i e = _mm512_sub_epi32(c[i], _mm512_set1_epi32(t->corr[i]));
        if (t->out32) {
            _mm512_mask_storeu_epi32(t->out32 + (size_t)i * t->ldo, keep, e);
            continue;
        }
        __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(e), _mm512_set1_ps(t->sx * t->scale[i]));
        if (t->shift) f = _mm512_add_ps(f, _mm512_set1_ps(t->shift[i]));
        _mm512_mask_storeu_ps(t->out + (size_t)i * t->ldo, keep, act16(f, t->act));
    }
}

VNNI void dn_ttile_vnni(const dn_ttile *t)
{
    if (t->mr <= 2) tile_rows(2, t);
    else if (t->mr <= 4) tile_rows(4, t);
    else tile_rows(MR, t);
}

/* Winograd-domain GEMM, nt tiles: acc_t += dpwssd(w, bcast(v_t)), w = the
 * block's 16 filters x 2 int8 sign-extended to int16 (one vpmovsxbw per
 * channel pair for all the tiles), v_t = tile t's 2 int16 (embedded
 * broadcast); dpwssd wraps modulo 2^32. The next W is prefetched 1 KiB
 * ahead (it streams from memory on the deep layers). */
VNNI static inline __attribute__((always_inline)) void wgemm(int T, int kq, const int8_t *w, const int32_t *vp,
                                                           size_t ldv, int32_t *m)
{
    __m512i acc[16];
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_si512();
    for (int q = 0; q < kq; ++q, w += 32, vp += ldv) {
        _mm_prefetch((const char *)w + 1024, _MM_HINT_T0);
        __m512i wv = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(const void *)w));
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t)
            __asm__("vpdpwssd %[v]%{1to16%}, %[w], %[c]" : [c] "+v"(acc[t]) : [w] "v"(wv), [v] "m"(vp[t]));
    }
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) _mm512_storeu_si512(m + 16 * t, acc[t]);
}

VNNI void dn_twgemm_vnni(int kq, int nt, const int8_t *w, const int16_t *v, size_t ldv, int32_t *m)
{
    const int32_t *vp = (const int32_t *)(const void *)v;
    switch (nt) {
    case 4: wgemm(4, kq, w, vp, ldv, m); break;
    case 8: wgemm(8, kq, w, vp, ldv, m); break;
    case 12: wgemm(12, kq, w, vp, ldv, m); break;
    default: wgemm(16, kq, w, vp, ldv, m); break;
    }
}

int dn_vnni_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512vnni");
}

#else

int dn_vnni_available(void) { return 0; }

#endif
