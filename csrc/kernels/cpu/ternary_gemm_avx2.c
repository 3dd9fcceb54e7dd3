/* ternary_gemm_avx2.c: the AVX2 primitives of the ternary kernels (see
 * ternary_gemm.h for the formats and the int16 bound that makes maddubs
 * exact here). Compiled with __attribute__((target("avx2"))) whatever the
 * build's -march, and only used when the CPU reports AVX2; no FMA, so the
 * epilogue rounds exactly as the generic C one.
 *
 * int8 micro-kernel, one k-group (4 taps) per step, 6 filters x 16 pixels:
 *
 *   b0 = 8 pixels x 4 bytes u   b1 = next 8 pixels        (two loads)
 *   a_i = broadcast 4 code bytes of filter i               (i = 0..5)
 *   acc[i][v] += maddubs(b_v, a_i)   int16 lanes: pixel p of b_v has lanes
 *                                    2p (taps 0,1) and 2p+1 (taps 2,3)
 *
 * 12 int16 accumulators; after the block (<= 64 steps) madd(acc, 1) sums
 * each pixel's two lanes into int32.
 */
#include "ternary_gemm.h"

#include <math.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>

#define MR DN_TMR
#define NR DN_TNR
#define NRF DN_TNRF
#define AVX2 __attribute__((target("avx2")))

AVX2 static inline __m256 act8(__m256 x, dn_activation act)
{
    switch (act) {
    case DN_ACT_LEAKY: return _mm256_max_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(.1f)));
    case DN_ACT_RELU: return _mm256_max_ps(x, _mm256_setzero_ps());
    case DN_ACT_RELIE: return _mm256_max_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(.01f)));
    default: return x;
    }
}

/* Store n (<= 8) lanes. */
AVX2 static inline void store_ps(float *p, __m256 v, int n)
{
    if (n == 8) { _mm256_storeu_ps(p, v); return; }
    float t[8];
    _mm256_storeu_ps(t, v);
    memcpy(p, t, sizeof(float) * (size_t)n);
}

AVX2 static inline void store_epi32(int32_t *p, __m256i v, int n)
{
    if (n == 8) { _mm256_storeu_si256((__m256i *)p, v); return; }
    int32_t t[8];
    _mm256_storeu_si256((__m256i *)t, v);
    memcpy(p, t, sizeof(int32_t) * (size_t)n);
}

/* One filter row of a step: a = broadcast of its 4 code bytes; acc_0 +=
 * maddubs(b0, a); acc_1 += maddubs(b1, a). In asm so that the compiler
 * keeps the 12 accumulators, b0, b1, a and the temporary in the 16 ymm
 * registers (left to itself it hoists all six broadcasts and spills). */
#define STEP_ROW(i)                                                               \
    do {                                                                          \
        __m256i a_, t_;                                                           \
        __asm__ volatile("vpbroadcastd %[p], %[a]\n\t"                            \
                         "vpmaddubsw %[a], %[b0], %[t]\n\t"                        \
                         "vpaddw %[t], %[c0], %[c0]\n\t"                           \
                         "vpmaddubsw %[a], %[b1], %[a]\n\t"                        \
                         "vpaddw %[a], %[c1], %[c1]"                                \
                         : [c0] "+x"(c[i][0]), [c1] "+x"(c[i][1]), [a] "=&x"(a_),  \
                           [t] "=&x"(t_)                                          \
                         : [b0] "x"(b0), [b1] "x"(b1), [p] "m"(*(const int32_t *)(ap + 4 * (i)))); \
    } while (0)

/* The tile on its first R rows (R >= t->mr), as the VNNI one. */
AVX2 static inline __attribute__((always_inline)) void tile_rows(const int R, const dn_ttile *t)
{
    const __m256i one = _mm256_set1_epi16(1);
    __m256i d[MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) d[i][0] = d[i][1] = _mm256_setzero_si256();
    const int8_t *ap = t->a;
    const int32_t *boff = t->boff;
    for (int q0 = 0; q0 < t->kgc; q0 += DN_TKC / 4) {
        int qn = t->kgc - q0 < DN_TKC / 4 ? t->kgc - q0 : DN_TKC / 4;
        __m256i c[MR][2];
#pragma GCC unroll 6
        for (int i = 0; i < R; ++i) c[i][0] = c[i][1] = _mm256_setzero_si256();
        for (int q = 0; q < qn; ++q, ap += MR * 4) {
            const uint8_t *bp = t->b + *boff++;
            __m256i b0 = _mm256_loadu_si256((const __m256i *)bp);
            __m256i b1 = _mm256_loadu_si256((const __m256i *)(bp + 32));
#pragma GCC unroll 6
            for (int i = 0; i < R; ++i) STEP_ROW(i);
        }
#pragma GCC unroll 6
        for (int i = 0; i < R; ++i)
            for (int v = 0; v < 2; ++v) d[i][v] = _mm256_add_epi32(d[i][v], _mm256_madd_epi16(c[i][v], one));
    }
    if (!t->first)
#pragma GCC unroll 6
        for (int i = 0; i < R; ++i)
            for (int v = 0; v < 2; ++v)
                d[i][v] = _mm256_add_epi32(d[i][v], _mm256_loadu_si256((const __m256i *)(t->c32 + (size_t)i * t->ldc32 + 8 * v)));
    if (!t->last) {
#pragma GCC unroll 6
        for (int i = 0; i < R; ++i)
            for (int v = 0; v < 2; ++v)
                _mm256_storeu_si256((__m256i *)(t->c32 + (size_t)i * t->ldc32 + 8 * v), d[i][v]);
        return;
    }
    int n0 = t->nr < 8 ? t->nr : 8, n1 = t->nr - n0;
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) {
        if (i >= t->mr) break;
        __m256i corr = _mm256_set1_epi32(t->corr[i]);
        __m256i e0 = _mm256_sub_epi32(d[i][0], corr), e1 = _mm256_sub_epi32(d[i][1], corr);
        if (t->out32) {
            int32_t *o = t->out32 + (size_t)i * t->ldo;
            store_epi32(o, e0, n0);
            if (n1 > 0) store_epi32(o + 8, e1, n1);
            continue;
        }
        __m256 m = _mm256_set1_ps(t->sx * t->scale[i]);
        __m256 f0 = _mm256_mul_ps(_mm256_cvtepi32_ps(e0), m), f1 = _mm256_mul_ps(_mm256_cvtepi32_ps(e1), m);
        if (t->shift) {
            __m256 s = _mm256_set1_ps(t->shift[i]);
            f0 = _mm256_add_ps(f0, s);
            f1 = _mm256_add_ps(f1, s);
        }
        float *o = t->out + (size_t)i * t->ldo;
        store_ps(o, act8(f0, t->act), n0);
        if (n1 > 0) store_ps(o + 8, act8(f1, t->act), n1);
    }
}

AVX2 static void tile_avx2(const dn_ttile *t)
{
    if (t->mr <= 2) tile_rows(2, t);
    else if (t->mr <= 4) tile_rows(4, t);
    else tile_rows(MR, t);
}

/* Winograd-domain GEMM: per group of 4 tiles and channel pair, the block's
 * 16 filters' int8 pairs sign-extended into two vectors of 8 filters x 2
 * int16, each tile's V pair broadcast; madd gives the int32 of each
 * filter's two products (exact: |.| <= 2 * 49 * 12800), add_epi32 wraps
 * modulo 2^32 as the contract allows. */
#define WSTEP(t)                                                             \
    do {                                                                     \
        __m256i v_ = _mm256_set1_epi32(vp[t]);                               \
        c##t##0 = _mm256_add_epi32(c##t##0, _mm256_madd_epi16(w0, v_));     \
        c##t##1 = _mm256_add_epi32(c##t##1, _mm256_madd_epi16(w1, v_));     \
    } while (0)

AVX2 static void wgemm_avx2(int kq, int nt, const int8_t *w, const int16_t *v, size_t ldv, int32_t *m)
{
    for (int t0 = 0; t0 < nt; t0 += 4) {
        __m256i z = _mm256_setzero_si256();
        __m256i c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
        const int8_t *wq = w;
        const int32_t *vp = (const int32_t *)(const void *)v + t0;
        for (int q = 0; q < kq; ++q, wq += 32, vp += ldv) {
            __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)wq));
            __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(wq + 16)));
            WSTEP(0); WSTEP(1); WSTEP(2); WSTEP(3);
        }
        __m256i d[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
        for (int t = 0; t < 4; ++t)
            for (int h = 0; h < 2; ++h) _mm256_storeu_si256((__m256i *)(void *)(m + (t0 + t) * 16 + 8 * h), d[t][h]);
    }
}

/* 4 rows x 16 pixels -> 16 pixels x 4 bytes, with byte/word unpacks. */
AVX2 static void interleave_avx2(const uint8_t *r, size_t ldr, int ncp, uint8_t *dst, size_t pstride)
{
    const uint8_t *r0 = r, *r1 = r0 + ldr, *r2 = r1 + ldr, *r3 = r2 + ldr;
    for (int p = 0; p < ncp / NR; ++p) {
        __m128i x0 = _mm_loadu_si128((const __m128i *)(r0 + p * NR));
        __m128i x1 = _mm_loadu_si128((const __m128i *)(r1 + p * NR));
        __m128i x2 = _mm_loadu_si128((const __m128i *)(r2 + p * NR));
        __m128i x3 = _mm_loadu_si128((const __m128i *)(r3 + p * NR));
        __m128i t0 = _mm_unpacklo_epi8(x0, x1), t1 = _mm_unpackhi_epi8(x0, x1);
        __m128i t2 = _mm_unpacklo_epi8(x2, x3), t3 = _mm_unpackhi_epi8(x2, x3);
        uint8_t *d = dst + (size_t)p * pstride;
        _mm_storeu_si128((__m128i *)d, _mm_unpacklo_epi16(t0, t2));
        _mm_storeu_si128((__m128i *)(d + 16), _mm_unpackhi_epi16(t0, t2));
        _mm_storeu_si128((__m128i *)(d + 32), _mm_unpacklo_epi16(t1, t3));
        _mm_storeu_si128((__m128i *)(d + 48), _mm_unpackhi_epi16(t1, t3));
    }
}

AVX2 static float absmax_avx2(const float *x, size_t n)
{
    const __m256 mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 m0 = _mm256_setzero_ps(), m1 = m0, m2 = m0, m3 = m0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        m0 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), mask), m0);
        m1 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i + 8), mask), m1);
        m2 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i + 16), mask), m2);
        m3 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i + 24), mask), m3);
    }
    for (; i + 8 <= n; i += 8) m0 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), mask), m0);
    m0 = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
    float t[8], m = 0;
    _mm256_storeu_ps(t, m0);
    for (int k = 0; k < 8; ++k) m = t[k] > m ? t[k] : m;
    for (; i < n; ++i) {
        float a = fabsf(x[i]);
        m = a > m ? a : m;
    }
    return m;
}

AVX2 static void quantize_avx2(const float *x, size_t n, float inv, uint8_t *dst)
{
    const __m256 vi = _mm256_set1_ps(inv), hi = _mm256_set1_ps(127.f), lo = _mm256_set1_ps(-127.f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7), off = _mm256_set1_epi8((char)0x80);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i q[4];
        for (int k = 0; k < 4; ++k) {
            __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * k), vi);
            v = _mm256_max_ps(_mm256_min_ps(v, hi), lo);
            q[k] = _mm256_cvtps_epi32(v);
        }
        __m256i w01 = _mm256_packs_epi32(q[0], q[1]), w23 = _mm256_packs_epi32(q[2], q[3]);
        __m256i b = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w01, w23), perm);
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_xor_si256(b, off));
    }
    for (; i + 8 <= n; i += 8) { /* per 128-bit lane, bytes 0-3 hold its 4 values */
        __m256 v = _mm256_max_ps(_mm256_min_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vi), hi), lo);
        __m256i q = _mm256_cvtps_epi32(v), w = _mm256_packs_epi32(q, q);
        __m256i b = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w, w), perm);
        _mm_storel_epi64((__m128i *)(dst + i), _mm256_castsi256_si128(_mm256_xor_si256(b, off)));
    }
    for (; i < n; ++i) {
        __m128 v = _mm_mul_ss(_mm_set_ss(x[i]), _mm_set_ss(inv));
        v = _mm_max_ss(_mm_min_ss(v, _mm_set_ss(127.f)), _mm_set_ss(-127.f));
        dst[i] = (uint8_t)(_mm_cvtss_si32(v) + 128);
    }
}

/* Float kernel: 8 accumulators (64 pixels) per filter and panel, so that
 * each listed tap costs 8 independent loads + adds. */
AVX2 static void float_block_avx2(const float *rows, size_t ldr, const dn_tlists *l, int f0, int f1, int kb,
                                  float *out, size_t ldo, int npan, int nx_last, int first, int last,
                                  const float *scale, const float *shift, dn_activation act)
{
    for (int f = f0; f < f1; ++f) {
        size_t li = (size_t)kb * l->filters + f;
        const uint16_t *idx = l->idx + l->start[li];
        int np = l->npos[li], nt = l->start[li + 1] - l->start[li];
        __m256 m = _mm256_set1_ps(scale[f]), s = _mm256_set1_ps(shift ? shift[f] : 0.f);
        for (int pn = 0; pn < npan; ++pn) {
            const float *rp = rows + pn * NRF;
            float *o = out + (size_t)f * ldo + pn * NRF;
            int nx = pn == npan - 1 ? nx_last : NRF;
            float t[NRF];
            __m256 a[8];
            if (first) {
                for (int v = 0; v < 8; ++v) a[v] = _mm256_setzero_ps();
            } else if (nx == NRF) {
                for (int v = 0; v < 8; ++v) a[v] = _mm256_loadu_ps(o + 8 * v);
            } else {
                memcpy(t, o, sizeof(float) * (size_t)nx);
                memset(t + nx, 0, sizeof(float) * (size_t)(NRF - nx));
                for (int v = 0; v < 8; ++v) a[v] = _mm256_loadu_ps(t + 8 * v);
            }
            for (int i = 0; i < np; ++i) {
                const float *r = rp + (size_t)idx[i] * ldr;
                for (int v = 0; v < 8; ++v) a[v] = _mm256_add_ps(a[v], _mm256_loadu_ps(r + 8 * v));
            }
            for (int i = np; i < nt; ++i) {
                const float *r = rp + (size_t)idx[i] * ldr;
                for (int v = 0; v < 8; ++v) a[v] = _mm256_sub_ps(a[v], _mm256_loadu_ps(r + 8 * v));
            }
            if (last)
                for (int v = 0; v < 8; ++v) a[v] = act8(_mm256_add_ps(_mm256_mul_ps(a[v], m), s), act);
            if (nx == NRF) {
                for (int v = 0; v < 8; ++v) _mm256_storeu_ps(o + 8 * v, a[v]);
                continue;
            }
            for (int v = 0; v < 8; ++v) _mm256_storeu_ps(t + 8 * v, a[v]);
            memcpy(o, t, sizeof(float) * (size_t)nx);
        }
    }
}

static const dn_tkernels kernels_avx2 = {tile_avx2, interleave_avx2, absmax_avx2, quantize_avx2,
                                         wgemm_avx2, float_block_avx2};
static const dn_tkernels kernels_vnni = {dn_ttile_vnni, interleave_avx2, absmax_avx2, quantize_avx2,
                                         dn_twgemm_vnni, float_block_avx2};

const dn_tkernels *dn_tkernels_simd(int level)
{
    __builtin_cpu_init();
    if (level >= DN_TSIMD_VNNI && dn_vnni_available()) return &kernels_vnni;
    return level >= DN_TSIMD_AVX2 && __builtin_cpu_supports("avx2") ? &kernels_avx2 : NULL;
}

#else

const dn_tkernels *dn_tkernels_simd(int level) { (void)level; return NULL; }

#endif
