/* conv_fast.c: see conv_fast.h. The SGEMM core (6x16 micro-kernel, fused
 * epilogue), the implicit-im2col convolution driver and the weights
 * checksum.
 *
 * Loop structure of the convolution driver (BLIS-like): work items are
 * (image, group, block of NC output pixels); per item, for each block of
 * KC rows of the im2col matrix, the pixels are packed into NR-wide panels
 * (L2), then for each block of MC filters the micro-kernel sweeps the
 * panels. The epilogue is applied when the last KC block is stored, while
 * the tile is still in registers.
 *
 * The direct driver (stride 1) pads the input once, then per item (image,
 * output row) accumulates 4 filters x 24 pixels in registers over all taps,
 * reading the padded rows with unaligned loads.
 */
#include "conv_fast.h"
#include "parallel.h"

#include <string.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define DN_HAVE_AVX2 1
#endif

#define MR DN_GEMM_MR
#define NR DN_GEMM_NR
/* Blocking (tunable at build time): */
#ifndef KC
#define KC 256     /* im2col rows per packed block: an NR x KC panel is 16 KiB (L1) */
#endif
#ifndef MC
#define MC 96      /* filters per A block: MC x KC is 96 KiB (L2) */
#endif
#ifndef NC_MAX
#define NC_MAX 384 /* pixels per work item: the packed KC x NC block is 384 KiB (L2) */
#endif

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }
static inline int round_up(int x, int m) { return (x + m - 1) / m * m; }

int dn_epilogue_fuses(dn_activation act)
{
    return act == DN_ACT_LINEAR || act == DN_ACT_LEAKY || act == DN_ACT_RELU || act == DN_ACT_RELIE;
}

/* Scalar epilogue for one value of row i (same formulas as activations.c). */
static inline float epi1(float v, const dn_epilogue *ep, int i)
{
    if (ep->scale) v *= ep->scale[i];
    if (ep->shift) v += ep->shift[i];
    switch (ep->act) {
    case DN_ACT_LEAKY: return v > 0 ? v : .1f * v;
    case DN_ACT_RELU: return v > 0 ? v : 0;
    case DN_ACT_RELIE: return v > 0 ? v : .01f * v;
    default: return v;
    }
}

/* Store an MR x NR tile held in t[MR][NR] (partial tiles, generic kernel). */
static void store_tile(const float *t, float *c, size_t ldc, int mr, int nr, int accumulate,
                       const dn_epilogue *ep)
{
    for (int i = 0; i < mr; ++i)
        for (int j = 0; j < nr; ++j) {
            float v = t[i * NR + j];
            if (accumulate) v += c[(size_t)i * ldc + j];
            if (ep) v = epi1(v, ep, i);
            c[(size_t)i * ldc + j] = v;
        }
}

#ifdef DN_HAVE_AVX2
static inline __m256 act8(__m256 x, dn_activation act)
{
    switch (act) {
    case DN_ACT_LEAKY: return _mm256_max_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(.1f)));
    case DN_ACT_RELU: return _mm256_max_ps(x, _mm256_setzero_ps());
    case DN_ACT_RELIE: return _mm256_max_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(.01f)));
    default: return x;
    }
}

static inline void store8(float *p, __m256 v, int accumulate, const dn_epilogue *ep, int i)
{
    if (accumulate) v = _mm256_add_ps(v, _mm256_loadu_ps(p));
    if (ep) {
        if (ep->scale) v = _mm256_mul_ps(v, _mm256_set1_ps(ep->scale[i]));
        if (ep->shift) v = _mm256_add_ps(v, _mm256_set1_ps(ep->shift[i]));
        v = act8(v, ep->act);
    }
    _mm256_storeu_ps(p, v);
}

/* MR x (8*NV) tile: C (+)= A B over kc, rows of A past mr alias row mr-1. */
#define UK_ROW(i)                                                         \
    do {                                                                  \
        __m256 av = _mm256_broadcast_ss(a + o##i);                        \
        c##i##0 = _mm256_fmadd_ps(av, b0, c##i##0);                       \
        if (nv == 2) c##i##1 = _mm256_fmadd_ps(av, b1, c##i##1);          \
    } while (0)
#define UK_STORE(i)                                                       \
    do {                                                                  \
        store8(c + (size_t)(i) * ldc, c##i##0, accumulate, ep, i);         \
        if (nv == 2) store8(c + (size_t)(i) * ldc + 8, c##i##1, accumulate, ep, i); \
    } while (0)
#define UK_SPILL(i)                                                       \
    do {                                                                  \
        _mm256_storeu_ps(t + (i) * NR, c##i##0);                          \
        _mm256_storeu_ps(t + (i) * NR + 8, c##i##1);                      \
    } while (0)

#define DEFINE_UKERNEL(name, NV)                                                               \
    static void name(int kc, const float *a, size_t a_rs, size_t a_ks, const float *b,         \
                     float *c, size_t ldc, int mr, int nr, int accumulate, const dn_epilogue *ep) \
    {                                                                                          \
        const size_t o0 = 0, o1 = (size_t)imin(1, mr - 1) * a_rs,                              \
                     o2 = (size_t)imin(2, mr - 1) * a_rs, o3 = (size_t)imin(3, mr - 1) * a_rs, \
                     o4 = (size_t)imin(4, mr - 1) * a_rs, o5 = (size_t)imin(5, mr - 1) * a_rs; \
        const int nv = NV;                                                                     \
        __m256 z = _mm256_setzero_ps();                                                        \
        __m256 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z;                           \
        __m256 c30 = z, c31 = z, c40 = z, c41 = z, c50 = z, c51 = z;                           \
        for (int k = 0; k < kc; ++k) {                                                         \
            __m256 b0 = _mm256_loadu_ps(b), b1 = nv == 2 ? _mm256_loadu_ps(b + 8) : z;        \
            UK_ROW(0); UK_ROW(1); UK_ROW(2); UK_ROW(3); UK_ROW(4); UK_ROW(5);                  \
            a += a_ks;                                                                         \
            b += NR;                                                                           \
        }                                                                                      \
        if (nr == 8 * nv) {                                                                    \
            UK_STORE(0);                                                                       \
            if (mr > 1) UK_STORE(1);                                                           \
            if (mr > 2) UK_STORE(2);                                                           \
            if (mr > 3) UK_STORE(3);                                                           \
            if (mr > 4) UK_STORE(4);                                                           \
            if (mr > 5) UK_STORE(5);                                                           \
        } else {                                                                               \
            float t[MR * NR] __attribute__((aligned(32)));                                     \
            UK_SPILL(0); UK_SPILL(1); UK_SPILL(2); UK_SPILL(3); UK_SPILL(4); UK_SPILL(5);      \
            store_tile(t, c, ldc, mr, nr, accumulate, ep);                                     \
        }                                                                                      \
    }

DEFINE_UKERNEL(ukernel_6x16, 2)
DEFINE_UKERNEL(ukernel_6x8, 1)

#else /* generic micro-kernel: 4-float vectors (SSE on x86-64-v2) */

typedef float v4f __attribute__((vector_size(16)));
typedef int v4i __attribute__((vector_size(16)));

/* store8 on 4 floats: epi1's formulas, the same floats */
static inline void store4(float *p, v4f v, int accumulate, const dn_epilogue *ep, int i)
{
    const v4f zero = {0, 0, 0, 0};
    if (accumulate) {
        v4f old;
        memcpy(&old, p, sizeof old);
        v += old;
    }
    if (ep) {
        if (ep->scale) v *= zero + ep->scale[i];
        if (ep->shift) v += zero + ep->shift[i];
        if (ep->act == DN_ACT_LEAKY || ep->act == DN_ACT_RELU || ep->act == DN_ACT_RELIE) {
            v4f neg = ep->act == DN_ACT_RELU ? zero : v * (zero + (ep->act == DN_ACT_LEAKY ? .1f : .01f));
            v4i pos = v > zero;
            v = (v4f)((pos & (v4i)v) | (~pos & (v4i)neg));
        }
    }
    memcpy(p, &v, sizeof v);
}

/* MR x NR in two halves of 8 columns, so that the 12 accumulators, two
 * vectors of B and one of A fit in 16 registers. Whole tiles are stored
 * from the accumulators, partial ones through t and store_tile. */
static void ukernel_generic(int kc, const float *a, size_t a_rs, size_t a_ks, const float *b,
                            float *c, size_t ldc, int mr, int nr, int accumulate, const dn_epilogue *ep)
{
    float t[MR * NR];
    size_t o[MR];
    for (int i = 0; i < MR; ++i) o[i] = (size_t)imin(i, mr - 1) * a_rs;
    for (int h = 0; h < NR; h += 8) {
        v4f acc[MR][2];
        for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = (v4f){0, 0, 0, 0};
        const float *ak = a, *bk = b + h;
        for (int k = 0; k < kc; ++k, ak += a_ks, bk += NR) {
            v4f b0, b1;
            memcpy(&b0, bk, sizeof b0);
            memcpy(&b1, bk + 4, sizeof b1);
            for (int i = 0; i < MR; ++i) {
                v4f ai = (v4f){0, 0, 0, 0} + ak[o[i]];
                acc[i][0] += ai * b0;
                acc[i][1] += ai * b1;
            }
        }
        for (int i = 0; i < MR; ++i) {
            if (nr == NR) {
                if (i >= mr) break;
                store4(c + (size_t)i * ldc + h, acc[i][0], accumulate, ep, i);
                store4(c + (size_t)i * ldc + h + 4, acc[i][1], accumulate, ep, i);
            } else {
                memcpy(t + i * NR + h, &acc[i][0], sizeof acc[i][0]);
                memcpy(t + i * NR + h + 4, &acc[i][1], sizeof acc[i][1]);
            }
        }
    }
    if (nr < NR) store_tile(t, c, ldc, mr, nr, accumulate, ep);
}
#define ukernel_6x16 ukernel_generic
#define ukernel_6x8 ukernel_generic
#endif

void dn_gemm_block(int mc, int nc, int kc,
                   const float *a, size_t a_ps, size_t a_rs, size_t a_ks,
                   const float *b, size_t b_ps,
                   float *c, size_t ldc, int accumulate, const dn_epilogue *ep)
{
    for (int n0 = 0; n0 < nc; n0 += NR) {
        int nr = imin(NR, nc - n0);
        const float *bp = b + (size_t)(n0 / NR) * b_ps;
        for (int m0 = 0; m0 < mc; m0 += MR) {
            int mr = imin(MR, mc - m0);
            dn_epilogue e, *pe = NULL;
            if (ep) {
                e.scale = ep->scale ? ep->scale + m0 : NULL;
                e.shift = ep->shift ? ep->shift + m0 : NULL;
                e.act = ep->act;
                pe = &e;
            }
            const float *ap = a + (size_t)(m0 / MR) * a_ps;
            float *cp = c + (size_t)m0 * ldc + n0;
            if (nr > 8) ukernel_6x16(kc, ap, a_rs, a_ks, bp, cp, ldc, mr, nr, accumulate, pe);
            else ukernel_6x8(kc, ap, a_rs, a_ks, bp, cp, ldc, mr, nr, accumulate, pe);
        }
    }
}

/* ---- implicit im2col ---- */

/* Panel-layout writers: position j of a packed row lives at
 * d[(j/NR)*ps + j%NR]. */
static void put_run(float *d, size_t ps, int j, const float *src, int len)
{
    while (len > 0) {
        int lane = j % NR, n = imin(len, NR - lane);
        memcpy(d + (size_t)(j / NR) * ps + lane, src, sizeof(float) * (size_t)n);
        j += n; src += n; len -= n;
    }
}

static void put_strided(float *d, size_t ps, int j, const float *src, int stride, int len)
{
    while (len > 0) {
        int lane = j % NR, n = imin(len, NR - lane);
        float *dst = d + (size_t)(j / NR) * ps + lane;
        for (int i = 0; i < n; ++i) dst[i] = src[(size_t)i * stride];
        j += n; src += (size_t)n * stride; len -= n;
    }
}

static void put_zero(float *d, size_t ps, int j, int len)
{
    while (len > 0) {
        int lane = j % NR, n = imin(len, NR - lane);
        memset(d + (size_t)(j / NR) * ps + lane, 0, sizeof(float) * (size_t)n);
        j += n; len -= n;
    }
}

/* Pack rows [k0, k0+kc) and output pixels [n0, n0+nc) of the im2col matrix
 * of im (cg x h x w) into NR-column panels dst[(j/NR)*kc*NR + (k-k0)*NR + j%NR],
 * j = n - n0, zero-filled to whole panels. Row k = (ch*size + ky)*size + kx. */
static void pack_im2col(const float *im, const dn_conv_shape *s, int k0, int kc, int n0, int nc,
                        float *dst)
{
    const int size = s->size, stride = s->stride, pad = s->pad, h = s->h, w = s->w, ow = s->out_w;
    const size_t ps = (size_t)kc * NR;
    const int ncp = round_up(nc, NR);
    for (int kk = 0; kk < kc; ++kk) {
        int k = k0 + kk, kx = k % size, ky = (k / size) % size, ch = k / (size * size);
        const float *src = im + (size_t)ch * h * w;
        float *d = dst + (size_t)kk * NR;
        int oy = n0 / ow, ox = n0 % ow, j = 0;
        while (j < nc) {
            int run = imin(ow - ox, nc - j);
            int iy = oy * stride + ky - pad;
            if (iy < 0 || iy >= h) {
                put_zero(d, ps, j, run);
            } else if (stride == 1) {
                const float *srow = src + (size_t)iy * w + kx - pad;
                int r0 = imin(run, imax(0, pad - kx - ox)), r1 = imax(r0, imin(run, w + pad - kx - ox));
                put_zero(d, ps, j, r0);
                put_run(d, ps, j + r0, srow + ox + r0, r1 - r0);
                put_zero(d, ps, j + r1, run - r1);
            } else {
                /* ix = (ox + r)*stride + kx - pad lies in [0, w) for r in [r0, r1) */
                int lo = pad - kx - ox * stride, hi = w + pad - kx - ox * stride;
                int r0 = imin(run, lo <= 0 ? 0 : (lo + stride - 1) / stride);
                int r1 = imax(r0, imin(run, hi <= 0 ? 0 : (hi - 1) / stride + 1));
                put_zero(d, ps, j, r0);
                put_strided(d, ps, j + r0, src + (size_t)iy * w + (ox + r0) * stride + kx - pad, stride, r1 - r0);
                put_zero(d, ps, j + r1, run - r1);
            }
            j += run;
            ox = 0;
            ++oy;
        }
        put_zero(d, ps, nc, ncp - nc);
    }
}

typedef struct {
    int n, k;       /* pixels per image, im2col rows per group */
    int nc, nblk;   /* pixels per work item, items per image and group */
    int kc;         /* packed rows per block */
} gemm_plan;

static void gemm_plan_make(const dn_conv_shape *s, int nthreads, gemm_plan *p)
{
    p->n = s->out_h * s->out_w;
    p->k = s->c / s->groups * s->size * s->size;
    p->kc = imin(p->k, KC);
    int jobs = s->batch * s->groups;
    int nblk = (p->n + NC_MAX - 1) / NC_MAX;
    int want = (2 * nthreads + jobs - 1) / jobs; /* at least two items per thread */
    if (nthreads > 1 && nblk < want) nblk = imin(want, (p->n + NR - 1) / NR);
    p->nc = round_up((p->n + nblk - 1) / nblk, NR);
    p->nblk = (p->n + p->nc - 1) / p->nc;
}

size_t dn_conv_fast_gemm_scratch(const dn_conv_shape *s, int nthreads)
{
    gemm_plan p;
    gemm_plan_make(s, nthreads, &p);
    return (size_t)nthreads * p.kc * p.nc;
}

typedef struct {
    const dn_conv_shape *s;
    const gemm_plan *p;
    const float *input, *weights;
    const dn_epilogue *ep;
    float *output, *scratch;
} gemm_job;

/* Item: (image, group, block of pixels). */
static void gemm_item(void *ctx, int it, int tid)
{
    const gemm_job *j = ctx;
    const dn_conv_shape *s = j->s;
    const gemm_plan *p = j->p;
    const int g = s->groups, ng = s->filters / g, cg = s->c / g, N = p->n, K = p->k;
    float *buf = j->scratch + (size_t)tid * p->kc * p->nc;
    int jb = it % p->nblk, gi = (it / p->nblk) % g, b = it / p->nblk / g;
    int n0 = jb * p->nc, nc = imin(p->nc, N - n0);
    const float *im = j->input + ((size_t)b * s->c + (size_t)gi * cg) * s->h * s->w;
    const float *wg = j->weights + (size_t)gi * ng * K;
    float *out = j->output + ((size_t)b * s->filters + (size_t)gi * ng) * N + n0;
    for (int k0 = 0; k0 < K; k0 += p->kc) {
        int kc = imin(p->kc, K - k0), last = k0 + kc >= K;
        pack_im2col(im, s, k0, kc, n0, nc, buf);
        for (int m0 = 0; m0 < ng; m0 += MC) {
            dn_epilogue e = {0};
            if (last) {
                e.scale = j->ep->scale ? j->ep->scale + gi * ng + m0 : NULL;
                e.shift = j->ep->shift ? j->ep->shift + gi * ng + m0 : NULL;
                e.act = j->ep->act;
            }
            dn_gemm_block(imin(MC, ng - m0), nc, kc,
                          wg + (size_t)m0 * K + k0, (size_t)MR * K, (size_t)K, 1,
                          buf, (size_t)kc * NR, out + (size_t)m0 * N, (size_t)N,
                          k0 > 0 || j->ep->accumulate, last && !j->ep->accumulate ? &e : NULL);
        }
    }
}

void dn_conv_fast_gemm(const dn_conv_shape *s, const float *input, const float *weights,
                       const dn_epilogue *ep, float *output, float *scratch, int nthreads)
{
    gemm_plan p;
    gemm_plan_make(s, nthreads, &p);
    gemm_job j = {s, &p, input, weights, ep, output, scratch};
    dn_parallel_for(s->batch * s->groups * p.nblk, nthreads, gemm_item, &j);
}

/* ---- direct convolution (stride 1) ---- */

#define DF 4    /* filters per register block */
#define DX 24   /* pixels per register block (3 vectors) */

typedef struct {
    int hp, wp;       /* padded plane: out_h + size - 1 rows, round_up(out_w, 8) + size - 1 columns */
    size_t plane;
} direct_plan;

static void direct_plan_make(const dn_conv_shape *s, direct_plan *p)
{
    p->hp = s->out_h + s->size - 1;
    p->wp = round_up(s->out_w, 8) + s->size - 1;
    p->plane = (size_t)p->hp * p->wp;
}

size_t dn_conv_direct_scratch(const dn_conv_shape *s)
{
    direct_plan p;
    direct_plan_make(s, &p);
    return (size_t)s->batch * s->c * p.plane;
}

typedef struct {
    const dn_conv_shape *s;
    const direct_plan *p;
    const float *input, *weights;
    const dn_epilogue *ep;
    float *output, *P;
} direct_job;

/* Padded plane i: P[y][x] = in[y - pad][x - pad], zero outside. */
static void direct_pad_item(void *ctx, int i, int tid)
{
    (void)tid;
    const direct_job *j = ctx;
    const dn_conv_shape *s = j->s;
    const float *src = j->input + (size_t)i * s->h * s->w;
    float *dst = j->P + (size_t)i * j->p->plane;
    const int wp = j->p->wp;
    for (int y = 0; y < j->p->hp; ++y) {
        float *d = dst + (size_t)y * wp;
        int iy = y - s->pad;
        memset(d, 0, sizeof(float) * (size_t)wp);
        if (iy < 0 || iy >= s->h) continue;
        int x0 = imax(0, s->pad), x1 = imin(wp, s->w + s->pad); /* columns that hold input */
        if (x1 > x0) memcpy(d + x0, src + (size_t)iy * s->w + (x0 - s->pad), sizeof(float) * (size_t)(x1 - x0));
    }
}

/* nf (<= DF) filters from f0 (w: their rows, K taps each), nv (1..3)
 * vectors of pixels from row pointer in (channel 0, tap origin); writes
 * nx (<= 8*nv) pixels per filter at out (filter f0's row), plane stride op. */
static inline __attribute__((always_inline)) void
direct_block_impl(const float *in, size_t plane, int wp, int c, int size,
                  const float *w, int K, int nf, int nv, float *out, size_t op, int nx,
                  const dn_epilogue *ep, int f0)
{
#ifdef DN_HAVE_AVX2
    const float *w0 = w, *w1 = w + (size_t)imin(1, nf - 1) * K, *w2 = w + (size_t)imin(2, nf - 1) * K,
                *w3 = w + (size_t)imin(3, nf - 1) * K;
    __m256 z = _mm256_setzero_ps();
    __m256 a00 = z, a01 = z, a02 = z, a10 = z, a11 = z, a12 = z;
    __m256 a20 = z, a21 = z, a22 = z, a30 = z, a31 = z, a32 = z;
    int t = 0;
    for (int ch = 0; ch < c; ++ch)
        for (int ky = 0; ky < size; ++ky) {
            const float *row = in + ch * plane + (size_t)ky * wp;
            for (int kx = 0; kx < size; ++kx, ++t) {
                __m256 i0 = _mm256_loadu_ps(row + kx);
                __m256 i1 = nv > 1 ? _mm256_loadu_ps(row + kx + 8) : z;
                __m256 i2 = nv > 2 ? _mm256_loadu_ps(row + kx + 16) : z;
#define DIRECT_F(f)                                                  \
                {                                                    \
                    __m256 wv = _mm256_broadcast_ss(w##f + t);       \
                    a##f##0 = _mm256_fmadd_ps(wv, i0, a##f##0);      \
                    if (nv > 1) a##f##1 = _mm256_fmadd_ps(wv, i1, a##f##1); \
                    if (nv > 2) a##f##2 = _mm256_fmadd_ps(wv, i2, a##f##2); \
                }
                DIRECT_F(0) DIRECT_F(1) DIRECT_F(2) DIRECT_F(3)
#undef DIRECT_F
            }
        }
    __m256 acc[DF][3] = {{a00, a01, a02}, {a10, a11, a12}, {a20, a21, a22}, {a30, a31, a32}};
    const int add = ep->accumulate;
    for (int f = 0; f < nf; ++f) {
        dn_epilogue e = {ep->scale ? ep->scale + f0 + f : NULL, ep->shift ? ep->shift + f0 + f : NULL, ep->act, 0, 0};
        float *o = out + (size_t)f * op;
        for (int v = 0; v < nv; ++v) {
            int n = imin(8, nx - 8 * v);
            if (n == 8) {
                store8(o + 8 * v, acc[f][v], add, &e, 0);
            } else if (n > 0) {
                float tmp[8];
                _mm256_storeu_ps(tmp, acc[f][v]);
                for (int x = 0; x < n; ++x) o[8 * v + x] = add ? o[8 * v + x] + tmp[x] : epi1(tmp[x], &e, 0);
            }
        }
    }
#else
    for (int f = 0; f < nf; ++f) {
        const float *wf = w + (size_t)f * K;
        for (int x = 0; x < nx; ++x) {
            float acc = 0;
            int t = 0;
            for (int ch = 0; ch < c; ++ch)
                for (int ky = 0; ky < size; ++ky)
                    for (int kx = 0; kx < size; ++kx, ++t)
                        acc += wf[t] * in[ch * plane + (size_t)ky * wp + kx + x];
            float *o = out + (size_t)f * op + x;
            *o = ep->accumulate ? *o + acc : epi1(acc, ep, f0 + f);
        }
    }
    (void)nv;
#endif
}

/* Specialised for the common 3x3 taps and full 24-pixel blocks. */
static void direct_block(const float *in, size_t plane, int wp, int c, int size,
                         const float *w, int K, int nf, int nv, float *out, size_t op, int nx,
                         const dn_epilogue *ep, int f0)
{
    if (size == 3 && nv == 3)
        direct_block_impl(in, plane, wp, c, 3, w, K, nf, 3, out, op, nx, ep, f0);
    else
        direct_block_impl(in, plane, wp, c, size, w, K, nf, nv, out, op, nx, ep, f0);
}

/* Item: one output row of one image, all filters. */
static void direct_item(void *ctx, int it, int tid)
{
    (void)tid;
    const direct_job *j = ctx;
    const dn_conv_shape *s = j->s;
    const int b = it / s->out_h, y = it % s->out_h, K = s->c * s->size * s->size;
    const size_t op = (size_t)s->out_h * s->out_w;
    const float *in = j->P + (size_t)b * s->c * j->p->plane + (size_t)y * j->p->wp;
    for (int f0 = 0; f0 < s->filters; f0 += DF) {
        int nf = imin(DF, s->filters - f0);
        float *out = j->output + ((size_t)b * s->filters + f0) * op + (size_t)y * s->out_w;
        for (int x0 = 0; x0 < s->out_w; x0 += DX) {
            int nx = imin(DX, s->out_w - x0);
            direct_block(in + x0, j->p->plane, j->p->wp, s->c, s->size, j->weights + (size_t)f0 * K, K,
                         nf, (nx + 7) / 8, out + x0, op, nx, j->ep, f0);
        }
    }
}

void dn_conv_direct(const dn_conv_shape *s, const float *input, const float *weights,
                    const dn_epilogue *ep, float *output, float *scratch, int nthreads)
{
    direct_plan p;
    direct_plan_make(s, &p);
    direct_job j = {s, &p, input, weights, ep, output, scratch};
    dn_parallel_for(s->batch * s->c, nthreads, direct_pad_item, &j);
    dn_parallel_for(s->batch * s->out_h, nthreads, direct_item, &j);
}
