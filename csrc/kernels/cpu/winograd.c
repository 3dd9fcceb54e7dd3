/* winograd.c: Winograd F(4x4,3x3) convolution, see winograd.h.
 *
 * Transforms (cross-correlation, as in CNNs):
 *   B^T = [4  0 -5  0 1 0]   G = [ 1/4     0    0]   A^T = [1 1  1 1  1 0]
 *         [0 -4 -4  1 1 0]       [-1/6 -1/6 -1/6]         [0 1 -1 2 -2 0]
 *         [0  4 -4 -1 1 0]       [-1/6  1/6 -1/6]         [0 1  1 4  4 0]
 *         [0 -2 -1  2 1 0]       [1/24 1/12  1/6]         [0 1 -1 8 -8 1]
 *         [0  2 -1 -2 1 0]       [1/24 -1/12 1/6]
 *         [0  4  0 -5 0 1]       [   0    0    1]
 * Input and output transforms work on 8 tiles at once (one per vector
 * lane, GCC vector extensions; with AVX2 the 6x6 patches are loaded and the
 * 4x4 results stored as 128-bit rows, transposed in registers). Buffers:
 *   P [batch][c][hp][wp]    input with its zero border, hp = 4*tiles_y + 2,
 *                           so that every patch lies inside (no bounds checks)
 *   U [36][c/KCW][filters/MR][kcw][MR]  transformed filters, channel blocks of
 *                           KCW (kcw = KCW or the rest), MR-row panels inside:
 *                           each GEMM pass reads one contiguous stretch
 * and for one block of tb tiles:
 *   V [36][tbp/NR][c][NR]   transformed input, NR-column panels (GEMM B)
 *   M [36][filters][tbp]    GEMM output, row-major (tbp = tb rounded to NR)
 * Threading (parallel.h, items handed out dynamically): with many blocks
 * each thread runs whole blocks on its own scratch; with few blocks (deep
 * layers, small maps) all threads share each block: input transform items
 * are channel ranges, GEMM items (xi, filter range), output transform items
 * filter ranges.
 */
#include "winograd.h"
#include "winograd43.h"
#include "parallel.h"

#include <string.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define DN_HAVE_AVX2 1
#endif

#define NR DN_GEMM_NR
#define MR DN_GEMM_MR
/* Blocking (tunable at build time): */
#ifndef KCW
#define KCW 256            /* channels per GEMM pass: an NR x KCW panel of V is 16 KiB (L1) */
#endif
#ifndef MCW
#define MCW 48             /* filters per shared-block GEMM work item */
#endif
#ifndef BLOCK_FLOATS
#define BLOCK_FLOATS (96 * 1024)         /* per-thread block V + M (L2) */
#endif
#ifndef SHARED_FLOATS
#define SHARED_FLOATS (4 * 1024 * 1024)  /* shared block V + M (L3) */
#endif

typedef float v8 __attribute__((vector_size(32)));
typedef int i8v __attribute__((vector_size(32)));

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int round_up(int x, int m) { return (x + m - 1) / m * m; }

static inline v8 ld8(const float *p) { v8 v; memcpy(&v, p, sizeof v); return v; }
static inline void st8(float *p, const v8 *v) { memcpy(p, v, sizeof *v); }

size_t dn_winograd43_weights_size(int filters, int c)
{
    return (size_t)36 * round_up(filters, MR) * c;
}

/* t[j*ts] = (G g)[j] for the 3 values g[0], g[gs], g[2*gs] (8 lanes). */
static inline void wino_g(const v8 *g, int gs, v8 *t, int ts)
{
    v8 g0 = g[0], g1 = g[gs], g2 = g[2 * gs];
    t[0] = g0 * (1.f / 4);
    t[ts] = -(g0 + g1 + g2) * (1.f / 6);
    t[2 * ts] = -(g0 - g1 + g2) * (1.f / 6);
    t[3 * ts] = g0 * (1.f / 24) + g1 * (1.f / 12) + g2 * (1.f / 6);
    t[4 * ts] = g0 * (1.f / 24) - g1 * (1.f / 12) + g2 * (1.f / 6);
    t[5 * ts] = g2;
}

typedef struct {
    const float *weights;
    int filters, c, flip; /* flip: weights are [c][filters][3][3], rotated by 180 degrees */
    float *u;
} weights_job;

/* One MR-filter panel: per channel, the 6x6 transforms of its MR filters
 * at once (vector lane i = filter i, zeros past the last filter), stored as
 * MR consecutive floats per xi. */
static void weights_item(void *ctx, int panel, int tid)
{
    (void)tid;
    const weights_job *j = ctx;
    const int c = j->c, nf = j->filters, kp = round_up(nf, MR), m0 = panel * MR, nm = imin(MR, nf - m0);
    for (int ch = 0; ch < c; ++ch) {
        v8 g[9], t[18], q[36];
        for (int k = 0; k < 9; ++k) g[k] = (v8){0};
        for (int i = 0; i < nm; ++i) {
            const float *w = j->flip ? j->weights + ((size_t)ch * nf + m0 + i) * 9
                                     : j->weights + ((size_t)(m0 + i) * c + ch) * 9;
            for (int k = 0; k < 9; ++k) g[k][i] = w[j->flip ? 8 - k : k];
        }
        for (int v = 0; v < 3; ++v) wino_g(g + v, 3, t + v, 3);      /* t = G g, 6x3 */
        for (int k = 0; k < 6; ++k) wino_g(t + 3 * k, 1, q + 6 * k, 1); /* q = t G^T */
        int c0 = ch / KCW * KCW, kcw = imin(KCW, c - c0);
        float *dst = j->u + (size_t)c0 * kp + (size_t)panel * MR * kcw + (size_t)(ch - c0) * MR;
        for (int xi = 0; xi < 36; ++xi) memcpy(dst + (size_t)xi * kp * c, &q[xi], sizeof(float) * MR);
    }
}

static void weights_run(const float *weights, int filters, int c, int flip, float *u)
{
    weights_job j = {weights, filters, c, flip, u};
    dn_parallel_for((filters + MR - 1) / MR, dn_parallel_threads(), weights_item, &j);
}

void dn_winograd43_weights(const float *weights, int filters, int c, float *u)
{
    weights_run(weights, filters, c, 0, u);
}

void dn_winograd43_weights_transposed(const float *weights, int filters, int c, float *u)
{
    weights_run(weights, c, filters, 1, u);
}

DN_WINO43_TRANSFORMS(v8, wino) /* wino_bt, wino_at (winograd43.h) */

DN_WINO43_LEAKY(v8, i8v, leaky8)

typedef struct {
    int th, tw, tiles;  /* tiles per image row / column, all tiles of the batch */
    int hp, wp;         /* padded input plane */
    int tb, tbp;        /* tiles per block, rounded up to NR */
    int nblocks, shared;
    size_t p_size;          /* floats of P, rounded up to 16 */
    size_t v_size, m_size;  /* floats of V and M for one block */
} wino_plan;

static void plan_make(const dn_conv_shape *s, int nthreads, wino_plan *p)
{
    p->th = (s->out_h + 3) / 4;
    p->tw = (s->out_w + 3) / 4;
    p->tiles = s->batch * p->th * p->tw;
    p->hp = 4 * p->th + 2;
    p->wp = 4 * p->tw + 2;
    p->p_size = ((size_t)s->batch * s->c * p->hp * p->wp + 15) / 16 * 16; /* keeps V aligned */
    size_t per_tile = (size_t)36 * (s->c + s->filters);
    int tb = (int)(BLOCK_FLOATS / per_tile) / NR * NR;
    if (tb < NR) tb = NR;
    if (tb > 256) tb = 256;
    int nblocks = (p->tiles + tb - 1) / tb;
    p->shared = nthreads > 1 && nblocks < 3 * nthreads;
    if (p->shared) {
        tb = (int)(SHARED_FLOATS / per_tile) / NR * NR;
        if (tb < NR) tb = NR;
        if (tb > round_up(p->tiles, NR)) tb = round_up(p->tiles, NR);
        nblocks = (p->tiles + tb - 1) / tb;
        tb = round_up((p->tiles + nblocks - 1) / nblocks, 8); /* even blocks */
    } else if (tb >= p->tiles) {
        tb = p->tiles;
    }
    p->tb = tb;
    p->tbp = round_up(tb, NR);
    p->nblocks = (p->tiles + tb - 1) / tb;
    p->v_size = (size_t)36 * s->c * p->tbp;
    p->m_size = (size_t)36 * s->filters * p->tbp;
}

size_t dn_winograd43_scratch(const dn_conv_shape *s, int nthreads)
{
    wino_plan p;
    plan_make(s, nthreads, &p);
    return p.p_size + (p.v_size + p.m_size) * (p.shared ? 1 : (size_t)nthreads);
}

/* P plane i (image b, channel c) from the input, with the zero border. */
static void pad_plane(const dn_conv_shape *s, const wino_plan *p, const float *in, float *P, size_t i)
{
    const float *src = in + i * s->h * s->w;
    float *dst = P + i * p->hp * p->wp;
    int left = s->pad, right = p->wp - s->pad - s->w; /* >= pad: wp >= out_w + 2 = w + 2*pad */
    for (int y = 0; y < p->hp; ++y) {
        float *d = dst + (size_t)y * p->wp;
        int iy = y - s->pad;
        if (iy < 0 || iy >= s->h) {
            memset(d, 0, sizeof(float) * (size_t)p->wp);
            continue;
        }
        memset(d, 0, sizeof(float) * (size_t)left);
        memcpy(d + left, src + (size_t)iy * s->w, sizeof(float) * (size_t)s->w);
        memset(d + left + s->w, 0, sizeof(float) * (size_t)right);
    }
}

/* Where the 8 tiles t .. t+7 (those before end) read and write; lanes past
 * end repeat the first tile and are marked invalid. */
typedef struct {
    int valid[8];
    int oh[8], ow[8];         /* output rows / columns of the tile inside the map */
    size_t in_off[8];         /* patch origin in P, channel 0 */
    size_t out_off[8];        /* tile origin in the output, filter 0 */
} tile_group;

static void tile_lanes(const dn_conv_shape *s, const wino_plan *p, int t, int end, tile_group *tg)
{
    for (int l = 0; l < 8; ++l) {
        int tt = t + l < end ? t + l : t;
        int b = tt / (p->th * p->tw), r = tt % (p->th * p->tw), ty = r / p->tw, tx = r % p->tw;
        tg->valid[l] = t + l < end;
        tg->oh[l] = imin(4, s->out_h - 4 * ty);
        tg->ow[l] = imin(4, s->out_w - 4 * tx);
        tg->in_off[l] = ((size_t)b * s->c * p->hp + 4 * ty) * p->wp + 4 * tx;
        tg->out_off[l] = ((size_t)b * s->filters * s->out_h + 4 * ty) * s->out_w + 4 * tx;
    }
}

/* d[r*6+c] = value (r, c) of the 6x6 patches at src[l] (row stride ws), lane l. */
static inline void load_patches(const float *const src[8], size_t ws, v8 *d)
{
#ifdef DN_HAVE_AVX2
    for (int r = 0; r < 6; ++r) {
        size_t o = (size_t)r * ws;
#define ROWS(i, off) _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(src[i] + o + off)), \
                                          _mm_loadu_ps(src[i + 4] + o + off), 1)
        __m256 r0 = ROWS(0, 0), r1 = ROWS(1, 0), r2 = ROWS(2, 0), r3 = ROWS(3, 0);
        __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
        __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
        d[r * 6 + 0] = _mm256_shuffle_ps(t0, t2, 0x44);
        d[r * 6 + 1] = _mm256_shuffle_ps(t0, t2, 0xEE);
        d[r * 6 + 2] = _mm256_shuffle_ps(t1, t3, 0x44);
        d[r * 6 + 3] = _mm256_shuffle_ps(t1, t3, 0xEE);
        r0 = ROWS(0, 2); r1 = ROWS(1, 2); r2 = ROWS(2, 2); r3 = ROWS(3, 2);
#undef ROWS
        t1 = _mm256_unpackhi_ps(r0, r1);
        t3 = _mm256_unpackhi_ps(r2, r3);
        d[r * 6 + 4] = _mm256_shuffle_ps(t1, t3, 0x44);
        d[r * 6 + 5] = _mm256_shuffle_ps(t1, t3, 0xEE);
    }
#else
    float buf[36 * 8];
    for (int l = 0; l < 8; ++l)
        for (int r = 0; r < 6; ++r)
            for (int c = 0; c < 6; ++c) buf[(r * 6 + c) * 8 + l] = src[l][(size_t)r * ws + c];
    for (int i = 0; i < 36; ++i) d[i] = ld8(buf + i * 8);
#endif
}

/* V for tiles [t0, t0+nt) of the block, channels [c0, c1). */
static void input_transform(const dn_conv_shape *s, const wino_plan *p, const float *P,
                            int t0, int nt, int c0, int c1, float *V)
{
    const size_t plane = (size_t)p->hp * p->wp, xi_stride = (size_t)s->c * p->tbp;
    for (int g = 0; g < nt; g += 8) {
        tile_group tg;
        tile_lanes(s, p, t0 + g, t0 + nt, &tg);
        float *vg = V + (size_t)(g / NR) * s->c * NR + g % NR;
        for (int ch = c0; ch < c1; ++ch) {
            const float *src[8];
            for (int l = 0; l < 8; ++l) src[l] = P + tg.in_off[l] + ch * plane;
            v8 d[36], t[36];
            load_patches(src, (size_t)p->wp, d);
            for (int c = 0; c < 6; ++c) wino_bt(d + c, 6, t + c, 6);
            for (int r = 0; r < 6; ++r) wino_bt(t + 6 * r, 1, d + 6 * r, 1);
            float *dst = vg + (size_t)ch * NR;
            for (int xi = 0; xi < 36; ++xi) st8(dst + xi * xi_stride, &d[xi]);
        }
    }
}

/* M[xi][m0:m1][*] = U[xi][m0:m1][:] V[xi] for one block of nt tiles. */
static void block_gemm(const dn_conv_shape *s, const wino_plan *p, const float *u, const float *V,
                       float *M, int nt, int xi, int m0, int m1)
{
    const int C = s->c, K = s->filters, kp = round_up(K, MR);
    const float *ux = u + (size_t)xi * kp * C;
    const float *vx = V + (size_t)xi * C * p->tbp;
    float *mx = M + ((size_t)xi * K + m0) * p->tbp;
    for (int c0 = 0; c0 < C; c0 += KCW) {
        int kc = imin(KCW, C - c0);
        dn_gemm_block(m1 - m0, nt, kc, ux + (size_t)c0 * kp + (size_t)(m0 / MR) * MR * kc,
                      (size_t)MR * kc, 1, MR,
                      vx + (size_t)c0 * NR, (size_t)C * NR, mx, (size_t)p->tbp, c0 > 0, NULL);
    }
}

/* Write the 4x4 results y[r*4+c] (lane l: tile l of tg) at filter plane o. */
static inline void store_tiles(const v8 *y, const tile_group *tg, float *o, size_t ow_stride, int add)
{
#ifdef DN_HAVE_AVX2
    for (int r = 0; r < 4; ++r) {
        __m256 y0 = y[r * 4], y1 = y[r * 4 + 1], y2 = y[r * 4 + 2], y3 = y[r * 4 + 3];
        __m256 u0 = _mm256_unpacklo_ps(y0, y1), u1 = _mm256_unpackhi_ps(y0, y1);
        __m256 u2 = _mm256_unpacklo_ps(y2, y3), u3 = _mm256_unpackhi_ps(y2, y3);
        __m256 v[4] = {_mm256_shuffle_ps(u0, u2, 0x44), _mm256_shuffle_ps(u0, u2, 0xEE),
                       _mm256_shuffle_ps(u1, u3, 0x44), _mm256_shuffle_ps(u1, u3, 0xEE)};
        for (int l = 0; l < 8; ++l) {
            if (!tg->valid[l] || r >= tg->oh[l]) continue;
            __m128 row = l < 4 ? _mm256_castps256_ps128(v[l]) : _mm256_extractf128_ps(v[l - 4], 1);
            float *dst = o + tg->out_off[l] + (size_t)r * ow_stride;
            if (tg->ow[l] == 4) {
                _mm_storeu_ps(dst, add ? _mm_add_ps(row, _mm_loadu_ps(dst)) : row);
            } else {
                float tmp[4];
                _mm_storeu_ps(tmp, row);
                for (int c = 0; c < tg->ow[l]; ++c) dst[c] = add ? dst[c] + tmp[c] : tmp[c];
            }
        }
    }
#else
    float buf[16 * 8];
    for (int i = 0; i < 16; ++i) st8(buf + i * 8, &y[i]);
    for (int l = 0; l < 8; ++l) {
        if (!tg->valid[l]) continue;
        for (int r = 0; r < tg->oh[l]; ++r)
            for (int c = 0; c < tg->ow[l]; ++c) {
                float *d = o + tg->out_off[l] + (size_t)r * ow_stride + c;
                *d = add ? *d + buf[(r * 4 + c) * 8 + l] : buf[(r * 4 + c) * 8 + l];
            }
    }
#endif
}

/* Output tiles [t0, t0+nt) for filters [k0, k1) from M, with the epilogue. */
static void output_transform(const dn_conv_shape *s, const wino_plan *p, const float *M,
                             int t0, int nt, int k0, int k1, const dn_epilogue *ep, float *out)
{
    const size_t xi_stride = (size_t)s->filters * p->tbp, plane = (size_t)s->out_h * s->out_w;
    float slope;
    const int act = dn_wino43_slope(ep->act, &slope);
    for (int g = 0; g < nt; g += 8) {
        tile_group tg;
        tile_lanes(s, p, t0 + g, t0 + nt, &tg);
        for (int k = k0; k < k1; ++k) {
            const float *mk = M + (size_t)k * p->tbp + g;
            v8 m[36], t[24], y[16];
            for (int xi = 0; xi < 36; ++xi) m[xi] = ld8(mk + xi * xi_stride);
            for (int c = 0; c < 6; ++c) wino_at(m + c, 6, t + c, 6);
            for (int r = 0; r < 4; ++r) wino_at(t + 6 * r, 1, y + 4 * r, 1);
            float sc = ep->scale ? ep->scale[k] : 1.f, sh = ep->shift ? ep->shift[k] : 0.f;
            for (int i = 0; i < 16; ++i) {
                y[i] = y[i] * sc + sh;
                if (act) y[i] = leaky8(y[i], slope);
            }
            store_tiles(y, &tg, out + k * plane, (size_t)s->out_w, ep->accumulate);
        }
    }
}

#define CH_ITEM 8   /* channels per shared-block input transform item */
#define K_ITEM 8    /* filters per shared-block output transform item */

typedef struct {
    const dn_conv_shape *s;
    const wino_plan *p;
    const float *input, *u;
    const dn_epilogue *ep;
    float *output, *P, *blocks;
    int t0, nt, mchunks;  /* shared mode: the current block */
} wino_job;

static void pad_item(void *ctx, int i, int tid)
{
    (void)tid;
    const wino_job *j = ctx;
    pad_plane(j->s, j->p, j->input, j->P, (size_t)i);
}

/* Independent mode: one whole block on this thread's V and M. */
static void block_item(void *ctx, int blk, int tid)
{
    const wino_job *j = ctx;
    const dn_conv_shape *s = j->s;
    const wino_plan *p = j->p;
    float *V = j->blocks + (size_t)tid * (p->v_size + p->m_size), *M = V + p->v_size;
    int t0 = blk * p->tb, nt = imin(p->tb, p->tiles - t0);
    input_transform(s, p, j->P, t0, nt, 0, s->c, V);
    for (int xi = 0; xi < 36; ++xi) block_gemm(s, p, j->u, V, M, nt, xi, 0, s->filters);
    output_transform(s, p, M, t0, nt, 0, s->filters, j->ep, j->output);
}

/* Shared mode: the three phases of the current block. */
static void input_item(void *ctx, int i, int tid)
{
    (void)tid;
    const wino_job *j = ctx;
    input_transform(j->s, j->p, j->P, j->t0, j->nt, i * CH_ITEM, imin(j->s->c, (i + 1) * CH_ITEM), j->blocks);
}

static void gemm_item(void *ctx, int it, int tid)
{
    (void)tid;
    const wino_job *j = ctx;
    int xi = it / j->mchunks, m0 = it % j->mchunks * MCW;
    block_gemm(j->s, j->p, j->u, j->blocks, j->blocks + j->p->v_size, j->nt, xi, m0,
               imin(j->s->filters, m0 + MCW));
}

static void output_item(void *ctx, int i, int tid)
{
    (void)tid;
    const wino_job *j = ctx;
    output_transform(j->s, j->p, j->blocks + j->p->v_size, j->t0, j->nt, i * K_ITEM,
                     imin(j->s->filters, (i + 1) * K_ITEM), j->ep, j->output);
}

void dn_winograd43_forward(const dn_conv_shape *s, const float *input, const float *u,
                           const dn_epilogue *ep, float *output, float *scratch, int nthreads)
{
    wino_plan p;
    plan_make(s, nthreads, &p);
    wino_job j = {s, &p, input, u, ep, output, scratch, scratch + p.p_size, 0, 0,
                  (s->filters + MCW - 1) / MCW};
    dn_parallel_for(s->batch * s->c, nthreads, pad_item, &j);
    if (!p.shared) {
        dn_parallel_for(p.nblocks, nthreads, block_item, &j);
        return;
    }
    for (int blk = 0; blk < p.nblocks; ++blk) {
        j.t0 = blk * p.tb;
        j.nt = imin(p.tb, p.tiles - j.t0);
        dn_parallel_for((s->c + CH_ITEM - 1) / CH_ITEM, nthreads, input_item, &j);
        dn_parallel_for(36 * j.mchunks, nthreads, gemm_item, &j);
        dn_parallel_for((s->filters + K_ITEM - 1) / K_ITEM, nthreads, output_item, &j);
    }
}
