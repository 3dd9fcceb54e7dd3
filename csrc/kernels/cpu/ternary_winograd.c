/* ternary_winograd.c: the int8 ternary kernel's exact integer Winograd
 * F(4x4,3x3) path for 3x3 stride-1 groups-1 layers (see ternary_gemm.h).
 *
 * Per 4x4 output tile Y = A^T [ (G g G^T) .* (B^T d B) ] A (Lavin & Gray
 * 2015; B, A as in winograd.c), with d the 6x6 patch of int8 activations q
 * (padding 0) and g a filter's 3x3 codes. With G = D^-1 H, H integer and
 * D = diag(4, 6, 6, 24, 24, 1), everything stays in integers:
 *   V  = B^T d B           |V| <= 100 * 128 = 12800         int16
 *   W  = H g H^T           |W| <= 7 * 7 = 49                int8, stored
 *   M  = sum over channels of (S .* W) .* V, per tile position xi = 6i + j
 *        (36 GEMMs: filters x channel pairs x tiles, int16 pairs summed
 *        into int32; may wrap: all later steps are exact modulo 2^32),
 *        S[i][j] = 576 / (D_i D_j) (integers; |S .* W| <= 576)
 *   Y' = A^T M A = 576 Y
 *        (exact: |Y| <= 128 * 9 * c, so |576 Y| < 2^31 for c <= DN_TWINO_MAX_C)
 *   Y  = (Y' >> 6) * 9^-1 mod 2^32   (576 = 64 * 9; exact division)
 * so Y is exactly the direct kernel's sum: the same integers, then the same
 * epilogue y = act(Y * (sx * scale[f]) + shift[f]), hence the same floats.
 *
 * Layouts (MR = DN_TMR filters per row block, cq = ceil(c/2) channel pairs,
 * na = panel_stride(cq) >= cq*MR*2, L = 16 tiles per panel, one int32 lane
 * each):
 *   W  [mb][36][na] int8             (dn_tweights.u, [cq][MR][2] inside;
 *                                    zero past filters and c)
 *   V  [36][npan][cq][L][2] int16    all tiles of a super-block (shared by
 *                                    the threads); the two channels of a
 *                                    pair share a 32-bit word
 *   M  [36][MR][pc*L] int32          per thread: one row block, pc panels
 * Order: per super-block of tiles (V at most V_BYTES), the input transform
 * (items: 16 tiles x Q_ITEM channel pairs), then per row block (items: rpi
 * row blocks) and chunk of pc panels, the 36 GEMMs (each W panel widened to
 * int16 in L1 first; a last panel of at most 8 tiles on the half-width
 * tile) and the output transform of its MR filters. With ep->pool the
 * output transform also does the 2x2 stride-2 max pool: the pooling
 * windows of an even output lie inside the 4x4 tiles; it pools the exact
 * sums Y' before the epilogue (the same floats: pool.h).
 * The activation planes are the int8 driver's: u = q + 128 bytes,
 * [batch*c][hp][wp] with hp >= 4*th + 2, wp >= 4*tw + 2, 128 outside the
 * image. Tiles of all images are numbered together, t = (b*th + ty)*tw + tx.
 * The transforms run on 16 tiles at once in GCC vector extensions (exact
 * integer arithmetic on any CPU); only the GEMM tile has SIMD variants.
 */
#include "ternary_gemm.h"
#include "parallel.h"
#include "winograd43.h"

#include <stdlib.h>
#include <string.h>

#define MR DN_TMR
#define L 16
#define INV9 0x38E38E39u       /* 9 * INV9 = 1 mod 2^32 */
#define V_BYTES (4 << 20)       /* V of a super-block of tiles (shared, L2/L3) */
#define M_BYTES (160 << 10)     /* M of a GEMM chunk (per thread, L2) */

/* Vectors of VL int32/float lanes (one per tile): the build target's
 * width, so that GCC keeps them in registers; a group of L tiles is done
 * in L / VL parts. */
#ifdef __AVX512F__
#define VL 16
#else
#define VL 8
#endif
typedef int32_t vi __attribute__((vector_size(4 * VL)));
typedef uint32_t vu __attribute__((vector_size(4 * VL)));
typedef float vf __attribute__((vector_size(4 * VL)));
/* The same for unaligned loads and stores (memcpy of a whole vector is
 * split into halves on some targets, which then stall store forwarding). */
typedef vu vu_ua __attribute__((aligned(4), may_alias));

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }
static inline int ceil_div(int a, int b) { return (a + b - 1) / b; }
static inline size_t align64(size_t x) { return (x + 63) / 64 * 64; }

/* ---- filters ---- */

/* Values per code plane and per W panel of a row block: cq x MR x 2, padded
 * to a multiple of 32. */
static size_t panel_stride(int cq) { return ((size_t)cq * MR * 2 + 31) / 32 * 32; }

/* S[xi] = 576 / (D_i D_j), D = (4, 6, 6, 24, 24, 1). */
static const int16_t S576[36] = {36, 24, 24, 6, 6, 144, 24, 16, 16, 4, 4, 96, 24, 16, 16, 4, 4, 96,
                                  6, 4, 4, 1, 1, 24, 6, 4, 4, 1, 1, 24, 144, 96, 96, 24, 24, 576};

/* t[j*ts] = (H g)[j] for g[0], g[gs], g[2 gs]; H = [1 0 0; -1 -1 -1;
 * -1 1 -1; 1 2 4; 1 -2 4; 0 0 1]. */
static void hg(const int *g, int gs, int *t, int ts)
{
    int g0 = g[0], g1 = g[gs], g2 = g[2 * gs];
    t[0] = g0;
    t[ts] = -(g0 + g1 + g2);
    t[2 * ts] = -(g0 - g1 + g2);
    t[3 * ts] = g0 + 2 * g1 + 4 * g2;
    t[4 * ts] = g0 - 2 * g1 + 4 * g2;
    t[5 * ts] = g2;
}

int dn_tweights_winograd(dn_tweights *w, const int8_t *codes, int c)
{
    free(w->u);
    w->u = NULL;
    if (w->groups != 1 || w->k != 9 * c) return 1;
    int cq = ceil_div(c, 2);
    size_t na = panel_stride(cq), n = (size_t)w->mb * 36 * na;
    w->u = aligned_alloc(64, align64(n));
    if (!w->u) return 0;
    memset(w->u, 0, n);
    w->c = c;
    for (int f = 0; f < w->filters; ++f)
        for (int ch = 0; ch < c; ++ch) {
            int g[9], t[18], q[36];
            for (int i = 0; i < 9; ++i) g[i] = codes[((size_t)f * c + ch) * 9 + i];
            for (int x = 0; x < 3; ++x) hg(g + x, 3, t + x, 3);      /* t = H g, 6x3 */
            for (int y = 0; y < 6; ++y) hg(t + 3 * y, 1, q + 6 * y, 1); /* q = t H^T */
            for (int xi = 0; xi < 36; ++xi)
                w->u[((size_t)(f / MR) * 36 + xi) * na + ((size_t)(ch / 2) * MR + f % MR) * 2 + ch % 2] =
                    (int8_t)q[xi];
        }
    return 1;
}

/* W panel (r, xi) times S[xi], in int16 (the tile16 A layout; |S W| <= 576:
 * S is large only where W is a single code), into an L1-sized buffer; the
 * compiler vectorises the loop. */
static void widen_w(const dn_tweights *w, int r, int xi, int cq, int16_t *a16)
{
    const size_t na = panel_stride(cq);
    const int8_t *u = w->u + ((size_t)r * 36 + xi) * na;
    const int16_t sc = S576[xi];
    for (size_t i = 0; i < na; ++i) a16[i] = (int16_t)(u[i] * sc);
}

/* ---- plan ---- */

typedef struct {
    int th, tw, tiles, cq, mb;
    int sb;                 /* tiles per super-block (multiple of L) */
    int pc;                 /* panels per GEMM chunk */
    int rpi;                /* row blocks per GEMM item */
    size_t v_bytes;         /* V of a super-block (shared) */
    size_t w_bytes, m_bytes, thread_bytes; /* per thread: a W panel in int16, M of a chunk */
} wplan;

static void plan_make(const dn_conv_shape *s, int nthreads, wplan *p)
{
    p->th = ceil_div(s->out_h, 4);
    p->tw = ceil_div(s->out_w, 4);
    p->tiles = s->batch * p->th * p->tw;
    p->cq = ceil_div(s->c, 2);
    p->mb = ceil_div(s->filters, MR);
    int per_tile = 36 * 4 * p->cq; /* bytes of V */
    int sb = imin(ceil_div(p->tiles, L), imax(1, V_BYTES / (per_tile * L))) * L;
    p->sb = ceil_div(ceil_div(p->tiles, ceil_div(p->tiles, sb)), L) * L; /* even super-blocks */
    p->pc = imin(p->sb / L, imax(1, M_BYTES / (36 * MR * L * 4)));
    p->rpi = imax(1, p->mb / (4 * nthreads));
    p->v_bytes = align64((size_t)per_tile * p->sb);
    p->w_bytes = align64(sizeof(int16_t) * panel_stride(p->cq));
    p->m_bytes = align64((size_t)36 * MR * L * 4 * p->pc);
    p->thread_bytes = p->w_bytes + p->m_bytes;
}

size_t dn_twino_scratch(const dn_conv_shape *s, int nthreads)
{
    wplan p;
    plan_make(s, nthreads, &p);
    return p.v_bytes + p.thread_bytes * (size_t)nthreads;
}

void dn_twino_plane_dims(const dn_conv_shape *s, int *hp, int *wp)
{
    *hp = 4 * ceil_div(s->out_h, 4) + 2;
    *wp = 4 * ceil_div(s->out_w, 4) + 2;
}

static int shape_ok(const dn_conv_shape *s)
{
    return s->size == 3 && s->stride == 1 && s->groups == 1 && s->c <= DN_TWINO_MAX_C &&
           s->out_h == s->h + 2 * s->pad - 2 && s->out_w == s->w + 2 * s->pad - 2;
}

int dn_twino_wanted(const dn_conv_shape *s)
{
    if (!shape_ok(s)) return 0;
    const char *e = getenv("DN_TERNARY_ALGO");
    if (e && !strcmp(e, "direct")) return 0;
    if (e && !strcmp(e, "winograd")) return 1;
    /* Measured (bench/README.md): it pays from 32 channels up (fewer: the
     * transforms cost more than the saved multiplications) when the tile
     * panels, 36 products per 16 tiles, need at most 0.4x the 9 products
     * per pixel of the direct kernel (a vpdpwssd does half the work of a
     * vpdpbusd). */
    long tiles = (long)s->batch * ((s->out_h + 3) / 4) * ((s->out_w + 3) / 4);
    long pixels = (long)s->batch * s->out_h * s->out_w;
    return s->c >= 32 && 36 * 10 * ((tiles + L - 1) / L * L) <= 4 * 9 * pixels;
}

/* ---- the phases: input transform; GEMMs and output transform ---- */

typedef struct {
    const dn_conv_shape *s;
    const wplan *p;
    const dn_tkernels *K;
    const dn_tweights *w;
    const uint8_t *planes;
    int hp, wp;
    const float *sx;
    const dn_epilogue *ep;
    float *out;
    int32_t *out32;
    uint8_t *scratch;              /* V, then per thread W and M */
    int t0, nt;                    /* the current super-block */
} wjob;

/* Per lane of the 16 tiles t .. t+15 (lanes past end repeat tile t):
 * image, tile row and column. */
typedef struct {
    int b[L], ty[L], tx[L], valid[L];
} lanes;

static void lanes_of(const wplan *p, int t, int end, lanes *ln)
{
    for (int l = 0; l < L; ++l) {
        int tt = t + l < end ? t + l : t, per = p->th * p->tw;
        ln->valid[l] = t + l < end;
        ln->b[l] = tt / per;
        ln->ty[l] = tt % per / p->tw;
        ln->tx[l] = tt % per % p->tw;
    }
}

DN_WINO43_TRANSFORMS(vi, in) /* in_bt (winograd43.h); in_at is not used */

/* V (36 vectors, lane = tile) of one channel: base[l] = the patch origin of
 * lane l in that channel's plane. Each patch row is read as two 32-bit
 * words per lane (columns 0-3 and 4-7; 6 and 7 unused). */
static void patch_transform(const uint8_t *plane, const size_t *base, int wp, vi *v)
{
    vi t[36];
    for (int r = 0; r < 6; ++r) {
        uint32_t w0[VL], w1[VL];
        for (int l = 0; l < VL; ++l) {
            memcpy(&w0[l], plane + base[l] + (size_t)r * wp, 4);
            memcpy(&w1[l], plane + base[l] + (size_t)r * wp + 4, 4);
        }
        vu a, b;
        memcpy(&a, w0, sizeof a);
        memcpy(&b, w1, sizeof b);
        vi d[6] = {(vi)(a & 255) - 128, (vi)(a >> 8 & 255) - 128, (vi)(a >> 16 & 255) - 128,
                   (vi)(a >> 24) - 128, (vi)(b & 255) - 128, (vi)(b >> 8 & 255) - 128};
        in_bt(d, 1, t + 6 * r, 1);                     /* row r: d B */
    }
    for (int c = 0; c < 6; ++c) in_bt(t + c, 6, v + c, 6); /* B^T (d B) */
}

/* V of the super-block's tile group g (tiles t0 + g ... + L-1), channel
 * pairs [q0, q1). */
static void input_transform(const wjob *j, int g, int q0, int q1, uint8_t *V)
{
    const dn_conv_shape *s = j->s;
    const wplan *p = j->p;
    const size_t plane = (size_t)j->hp * j->wp, xi_stride = (size_t)(p->sb / L) * p->cq * L;
    uint32_t *v32 = (uint32_t *)(void *)V;
    lanes ln;
    lanes_of(p, j->t0 + g, j->t0 + j->nt, &ln);
    size_t base[L];
    for (int l = 0; l < L; ++l)
        base[l] = (size_t)ln.b[l] * s->c * plane + (size_t)4 * ln.ty[l] * j->wp + 4 * (size_t)ln.tx[l];
    for (int q = q0; q < q1; ++q)
        for (int h = 0; h < L; h += VL) {
            vi v0[36], v1[36];
            patch_transform(j->planes + (size_t)2 * q * plane, base + h, j->wp, v0);
            if (2 * q + 1 < s->c) patch_transform(j->planes + (size_t)(2 * q + 1) * plane, base + h, j->wp, v1);
            else memset(v1, 0, sizeof v1);
            uint32_t *dst = v32 + ((size_t)(g / L) * p->cq + q) * L + h;
            for (int xi = 0; xi < 36; ++xi)
                *(vu_ua *)(dst + xi * xi_stride) = ((vu)v0[xi] & 0xFFFF) | (vu)v1[xi] << 16;
        }
}

DN_WINO43_TRANSFORMS(vu, out) /* out_at (winograd43.h), modulo 2^32 on unsigned lanes */

#if defined(__has_builtin) && !defined(DN_NO_SHUFFLEVECTOR)
#if __has_builtin(__builtin_shufflevector)
#define HAVE_SHUFFLEVECTOR 1
#endif
#endif

/* transpose4(y): in each group of 4 lanes (4c .. 4c+3) of the 4 vectors
 * y[0..3], a 4x4 transpose: afterwards y[m] holds in lanes 4c .. 4c+3 the
 * values y[0..3] had in lane 4c+m (so each lane's 4 values are contiguous). */
#ifdef HAVE_SHUFFLEVECTOR
#if VL == 16
#define UNPACKLO(a, b) __builtin_shufflevector(a, b, 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29)
#define UNPACKHI(a, b) __builtin_shufflevector(a, b, 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31)
#define MOVELH(a, b) __builtin_shufflevector(a, b, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29)
#define MOVEHL(a, b) __builtin_shufflevector(a, b, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31)
#else
#define UNPACKLO(a, b) __builtin_shufflevector(a, b, 0, 8, 1, 9, 4, 12, 5, 13)
#define UNPACKHI(a, b) __builtin_shufflevector(a, b, 2, 10, 3, 11, 6, 14, 7, 15)
#define MOVELH(a, b) __builtin_shufflevector(a, b, 0, 1, 8, 9, 4, 5, 12, 13)
#define MOVEHL(a, b) __builtin_shufflevector(a, b, 2, 3, 10, 11, 6, 7, 14, 15)
#endif

static inline void transpose4(vf *y)
{
    vf t0 = UNPACKLO(y[0], y[1]), t1 = UNPACKHI(y[0], y[1]);
    vf t2 = UNPACKLO(y[2], y[3]), t3 = UNPACKHI(y[2], y[3]);
    y[0] = MOVELH(t0, t2);
    y[1] = MOVEHL(t0, t2);
    y[2] = MOVELH(t1, t3);
    y[3] = MOVEHL(t1, t3);
}
#else
/* The same through memory, for compilers without __builtin_shufflevector
 * (GCC before 12). */
static inline void transpose4(vf *y)
{
    float in[4][VL], out[4][VL];
    memcpy(in, y, sizeof in);
    for (int l = 0; l < VL; ++l)
        for (int c = 0; c < 4; ++c) out[l % 4][4 * (l / 4) + c] = in[c][l];
    memcpy(y, out, sizeof out);
}
#endif

DN_WINO43_LEAKY(vf, vi, leaky) /* = dn_tact1 lane by lane */

/* The lanes' 4x4 output tiles (r[4i + j] = row i, column j), by four
 * 16-byte rows per tile (the part inside the output) at o[lane] + i*orow. */
static inline void store_tiles(vf *r, char *const *o, const int *oh, const int *ow, size_t orow)
{
    for (int k = 0; k < 4; ++k) transpose4(r + 4 * k);
    for (int l = 0; l < VL; ++l) { /* row i of lane l: r[4i + l%4], bytes 16(l/4) on */
        const char *src = (const char *)&r[l % 4] + 16 * (l / 4);
        if (oh[l] == 4 && ow[l] == 4)
            for (int i = 0; i < 4; ++i) memcpy(o[l] + i * orow, src + 4 * i * sizeof(vf), 16);
        else
            for (int i = 0; i < oh[l]; ++i)
                for (int c = 0; c < ow[l]; ++c) memcpy(o[l] + i * orow + 4 * c, src + 4 * i * sizeof(vf) + 4 * c, 4);
    }
}

/* The lanes' pooled 2x2 tiles q[2i + j] (after the 2x2 stride-2 pool inside
 * each tile): oh and ow halved. */
static inline void store_pooled(vf *q, char *const *o, const int *oh, const int *ow, size_t orow)
{
    transpose4(q);
    for (int l = 0; l < VL; ++l) {
        const char *src = (const char *)&q[l % 4] + 16 * (l / 4);
        for (int i = 0; i < oh[l] / 2; ++i) {
            if (ow[l] == 4) memcpy(o[l] + i * orow, src + 8 * i, 8);
            else memcpy(o[l] + i * orow, src + 8 * i, 4);
        }
    }
}

/* The max (flip all ones: the min) of a and b lane by lane. */
static inline vi vsel(vi a, vi b, vi flip)
{
    a ^= flip;
    b ^= flip;
    vi gt = a > b;
    return ((gt & a) | (~gt & b)) ^ flip;
}

/* Output tiles [t0, t0+nt) for filters [f0, f1) from M (M[xi*xi_stride +
 * (f - f0)*ld + tile - t0]), with the epilogue (or the exact sums into
 * out32). Per filter and 16 tiles: A^T M A in lanes, the exact division,
 * the epilogue, then the stores (the compiler keeps the vectors in
 * registers: the M loads go straight into the column transforms, the
 * activation's switch is out of the loops). */
static void output_transform(const wjob *j, int t0, int nt, int f0, int f1, const int32_t *M,
                             size_t xi_stride, size_t ld)
{
    const dn_conv_shape *s = j->s;
    const wplan *p = j->p;
    const dn_epilogue *ep = j->ep;
    const int pool = !j->out32 && ep->pool, ow_all = pool ? s->out_w / 2 : s->out_w;
    const size_t oplane = (size_t)(pool ? s->out_h / 2 : s->out_h) * ow_all, orow = 4 * (size_t)ow_all;
    float slope;
    const int act = !j->out32 && dn_wino43_slope(ep->act, &slope);
    /* out32 and out hold 4-byte values at the same offsets */
    char *dst = j->out32 ? (char *)j->out32 : (char *)j->out;
    for (int g = 0; g < nt; g += L) {
        lanes ln;
        lanes_of(p, t0 + g, t0 + nt, &ln);
        float sxl[L];
        size_t o0[L];
        int oh[L], ow[L];
        for (int l = 0; l < L; ++l) {
            int oy = 4 * ln.ty[l], ox = 4 * ln.tx[l];
            sxl[l] = j->sx ? j->sx[ln.b[l]] : 1.f;
            oh[l] = ln.valid[l] ? imin(4, s->out_h - oy) : 0;
            ow[l] = imin(4, s->out_w - ox);
            if (pool) oy /= 2, ox /= 2;
            o0[l] = 4 * ((size_t)ln.b[l] * s->filters * oplane + (size_t)oy * ow_all + ox);
        }
        for (int f = f0; f < f1; ++f) {
            char *of = dst + 4 * (size_t)f * oplane;
            for (int h = 0; h < L; h += VL) {
                const int32_t *mf = M + (size_t)(f - f0) * ld + g + h;
                vu t[24], y[16];
                vf r[16], mul;
                char *o[VL];
                for (int l = 0; l < VL; ++l) o[l] = of + o0[h + l];
                for (int c = 0; c < 6; ++c) {
                    vu m[6];
                    for (int i = 0; i < 6; ++i) m[i] = *(const vu_ua *)(mf + (6 * i + c) * xi_stride);
                    out_at(m, 1, t + c, 6);
                }
                for (int k = 0; k < 4; ++k) out_at(t + 6 * k, 1, y + 4 * k, 1);
                memcpy(&mul, sxl + h, sizeof mul);
                mul *= j->out32 ? 1.f : ep->scale[f];
                int n = 16;
                if (pool) { /* pool.h: the max (scale < 0: the min) of the exact sums, then the epilogue */
                    vi flip = (vi){0} - (ep->scale[f] < 0), q[4];
                    for (int i = 0; i < 4; ++i) {
                        const vu *w = y + 8 * (i / 2) + 2 * (i % 2);
                        q[i] = vsel(vsel((vi)w[0], (vi)w[1], flip), vsel((vi)w[4], (vi)w[5], flip), flip);
                    }
                    memcpy(y, q, sizeof q);
                    n = 4;
                }
                for (int i = 0; i < n; ++i) {
                    vi yi = (vi)((vu)((vi)y[i] >> 6) * INV9); /* Y' / 576, exact */
                    if (j->out32) {
                        memcpy(&r[i], &yi, sizeof yi);
                        continue;
                    }
                    r[i] = __builtin_convertvector(yi, vf) * mul;
                    if (ep->shift) r[i] = r[i] + ep->shift[f];
                    if (act) r[i] = leaky(r[i], slope);
                }
                if (pool) store_pooled(r, o, oh + h, ow + h, orow);
                else store_tiles(r, o, oh + h, ow + h, orow);
            }
        }
    }
}

/* ---- drivers ---- */

#define Q_ITEM 8   /* channel pairs per input transform item */

static void input_item(void *ctx, int it, int tid)
{
    (void)tid;
    const wjob *j = ctx;
    int nq = ceil_div(j->p->cq, Q_ITEM), q0 = it % nq * Q_ITEM;
    input_transform(j, it / nq * L, q0, imin(j->p->cq, q0 + Q_ITEM), j->scratch);
}

/* Row blocks [r0, r0 + rpi): per chunk of pc tile panels, the 36 GEMMs
 * (each W panel widened once per chunk) into M, then the output transform
 * of the row block's filters. */
static void gemm_item(void *ctx, int it, int tid)
{
    const wjob *j = ctx;
    const wplan *p = j->p;
    const size_t na = panel_stride(p->cq), ldm = (size_t)p->pc * L, xi_m = MR * ldm;
    const size_t xi_v = (size_t)(p->sb / L) * p->cq * L * 2; /* int16 per xi of V */
    int16_t *a16 = (int16_t *)(void *)(j->scratch + p->v_bytes + (size_t)tid * p->thread_bytes);
    int32_t *M = (int32_t *)(void *)((uint8_t *)a16 + p->w_bytes);
    const int16_t *V = (const int16_t *)(const void *)j->scratch;
    const int npan = ceil_div(j->nt, L);
    for (int r = it * p->rpi; r < imin(p->mb, (it + 1) * p->rpi); ++r) {
        int f0 = r * MR, f1 = imin(j->s->filters, f0 + MR);
        for (int c0 = 0; c0 < npan; c0 += p->pc) {
            int nc = imin(p->pc, npan - c0);
            for (int xi = 0; xi < 36; ++xi) {
                widen_w(j->w, r, xi, p->cq, a16);
                /* the first tile prefetches the next W panel (streamed from memory); a
                 * last panel of at most 8 tiles takes the half-width tile */
                const int8_t *next = j->w->u + ((size_t)r * 36 + xi + 1) * na;
                for (int pn = 0; pn < nc; ++pn)
                    j->K->tile16(p->cq, j->nt - (c0 + pn) * L <= L / 2 ? L / 2 : L, a16,
                                 V + xi * xi_v + (size_t)(c0 + pn) * p->cq * L * 2, M + xi * xi_m + pn * L, ldm,
                                 pn ? (const void *)a16 : (const void *)next);
            }
            output_transform(j, j->t0 + c0 * L, imin(nc * L, j->nt - c0 * L), f0, f1, M, xi_m, ldm);
        }
    }
}

void dn_twino_run(const dn_conv_shape *s, const uint8_t *planes, int hp, int wp, const dn_tweights *w,
                  const float *sx, const dn_epilogue *ep, float *out, int32_t *out32, void *scratch,
                  int nthreads, const dn_tkernels *K)
{
    wplan p;
    plan_make(s, nthreads, &p);
    wjob j = {s, &p, K, w, planes, hp, wp, sx, ep, out, out32, scratch, 0, 0};
    for (int t0 = 0; t0 < p.tiles; t0 += p.sb) {
        j.t0 = t0;
        j.nt = imin(p.sb, p.tiles - t0);
        dn_parallel_for(ceil_div(j.nt, L) * ceil_div(p.cq, Q_ITEM), nthreads, input_item, &j);
        dn_parallel_for(ceil_div(p.mb, p.rpi), nthreads, gemm_item, &j);
    }
}
