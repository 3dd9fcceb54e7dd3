/* ternary_winograd.c: the int8 ternary kernel's exact integer Winograd
 * F(4x4,3x3) path for 3x3 stride-1 groups-1 layers (see ternary_gemm.h).
 *
 * Per 4x4 output tile Y = A^T [ (G g G^T) .* (B^T d B) ] A (Lavin & Gray
 * 2015; B, A as in winograd.c), with d the 6x6 patch of int8 activations q
 * (padding 0) and g a filter's 3x3 codes. With G = D^-1 H, H integer and
 * D = diag(4, 6, 6, 24, 24, 1), everything stays in integers:
 *   V  = B^T d B           |V| <= 100 * 128 = 12800         int16
 *   W  = H g H^T           |W| <= 7 * 7 = 49                int8, stored
 *   M  = sum over channels of W .* V, per tile position xi = 6i + j
 *        (36 GEMMs: filters x channel pairs x tiles, int16 pairs summed
 *        into int32; may wrap: all later steps are exact modulo 2^32)
 *   Y' = A'^T M A' = A^T (S .* M) A = 576 Y, A' = diag(s) A,
 *        s = 24 / D = (6, 4, 4, 1, 1, 24), S[i][j] = s_i s_j = 576 / (D_i D_j)
 *        (exact: |Y| <= 128 * 9 * c, so |576 Y| < 2^31 for c <= DN_TWINO_MAX_C)
 *   Y  = (Y' >> 6) * 9^-1 mod 2^32   (576 = 64 * 9; exact division)
 * so Y is exactly the direct kernel's sum: the same integers, then the same
 * epilogue y = act(Y * (sx * scale[f]) + shift[f]), hence the same floats.
 *
 * Layouts (FB = 16 filters per filter block, fb = ceil(filters/16) blocks,
 * cq = ceil(c/2) channel pairs, sbt tiles per super-block):
 *   W  [fb][36][cq][FB][2] int8      (dn_tweights.u; zero past filters and c)
 *   V  [36][cq][sbt][2] int16        all tiles of a super-block (shared by
 *                                    the threads); the two channels of a
 *                                    pair share a 32-bit word
 *   M  [36][M_XI] int32              per thread: a filter block, a chunk of
 *                                    CH_MAX tiles x FB ([tile][filter])
 * The GEMM has the filters in its lanes: per channel pair, a W vector (the
 * block's 16 filters, sign-extended in registers) meets each tile's V pair
 * (a broadcast), so the int8 W needs no widened copy and the tiles need
 * not fill a vector (a chunk is done in runs of 16 tiles and one of 4, 8
 * or 12). Order: per super-block of tiles (V at most V_BYTES, so that it
 * stays in L2 for the filter blocks; at least 16 tiles), the input
 * transform (items: 16 tiles x Q_ITEM channel pairs), then per filter block
 * and chunk of tiles (the items) the 36 GEMMs and the output transform of
 * its 16 filters, lanes = filters. With ep->pool the output transform also
 * does the 2x2 stride-2 max pool: the pooling windows of an even output lie
 * inside the 4x4 tiles; it pools the exact sums Y' before the epilogue (the
 * same floats: pool.h).
 * The activation planes are the int8 driver's: u = q + 128 bytes,
 * [batch*c][hp][wp] with hp >= 4*th + 2, wp >= 4*tw + 2, 128 outside the
 * image. Tiles of all images are numbered together, t = (b*th + ty)*tw + tx.
 * The transforms run on 16 tiles or filters at once (the input transform
 * on int16 lanes, both channels of a pair) in GCC vector extensions (exact
 * integer arithmetic on any CPU); only the GEMM has SIMD variants.
 */
#include "ternary_gemm.h"
#include "../../core/settings.h"
#include "parallel.h"
#include "winograd43.h"

#include <stdlib.h>
#include <string.h>

#define FB DN_TWFB
#define L 16
#define INV9 0x38E38E39u       /* 9 * INV9 = 1 mod 2^32 */
#define V_BYTES (512 << 10)     /* V of a super-block of tiles (shared; L2) */
#define M_BYTES (160 << 10)     /* M of a GEMM chunk (per thread, L2) */
#define CH_MAX ((M_BYTES / (36 * FB * 4)) / L * L) /* tiles per chunk: 64 */
#define M_XI (CH_MAX * FB + 16) /* int32 per xi of M: 64 bytes more than 4 KiB (L1 sets) */

/* Vectors of VL int32/float lanes (one per tile in the input transform,
 * one per filter in the output transform): the build target's width, so
 * that GCC keeps them in registers; a group of L tiles or FB filters is
 * done in L / VL parts. */
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

#if defined(__has_builtin) && !defined(DN_NO_SHUFFLEVECTOR)
#if __has_builtin(__builtin_shufflevector)
#define HAVE_SHUFFLEVECTOR 1
#endif
#endif

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }
static inline int ceil_div(int a, int b) { return (a + b - 1) / b; }
static inline size_t align64(size_t x) { return (x + 63) / 64 * 64; }

/* ---- filters ---- */

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
    size_t n = (size_t)ceil_div(w->filters, FB) * 36 * cq * FB * 2;
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
                w->u[((((size_t)(f / FB) * 36 + xi) * cq + ch / 2) * FB + f % FB) * 2 + ch % 2] = (int8_t)q[xi];
        }
    return 1;
}

/* ---- plan ---- */

typedef struct {
    int th, tw, tiles, cq, fb;
    int sb;                 /* tiles per super-block (multiple of L) */
    size_t v_bytes;         /* V of a super-block (shared) */
    size_t m_bytes;         /* per thread: M of a chunk */
} wplan;

static void plan_make(const dn_conv_shape *s, wplan *p)
{
    p->th = ceil_div(s->out_h, 4);
    p->tw = ceil_div(s->out_w, 4);
    p->tiles = s->batch * p->th * p->tw;
    p->cq = ceil_div(s->c, 2);
    p->fb = ceil_div(s->filters, FB);
    int per_tile = 36 * 4 * p->cq; /* bytes of V */
    int sb = imin(ceil_div(p->tiles, L), imax(1, V_BYTES / (per_tile * L))) * L;
    p->sb = ceil_div(ceil_div(p->tiles, ceil_div(p->tiles, sb)), L) * L; /* even super-blocks */
    p->v_bytes = align64((size_t)per_tile * p->sb);
    p->m_bytes = align64((size_t)36 * M_XI * 4);
}

size_t dn_twino_scratch(const dn_conv_shape *s, int nthreads)
{
    wplan p;
    plan_make(s, &p);
    return p.v_bytes + p.m_bytes * (size_t)nthreads;
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
    int algo = dn_option(DN_OPT_TERNARY_ALGO);
    if (algo == DN_TALGO_DIRECT) return 0;
    if (algo == DN_TALGO_WINOGRAD) return 1;
    /* Measured (bench/README.md): it pays from 32 channels up (fewer: the
     * transforms cost more than the saved multiplications) when the tiles,
     * 36 products each (in runs of 4), need at most 0.4x the 9 products
     * per pixel of the direct kernel (a vpdpwssd does half the work of a
     * vpdpbusd). */
    long tiles = (long)s->batch * ((s->out_h + 3) / 4) * ((s->out_w + 3) / 4);
    long pixels = (long)s->batch * s->out_h * s->out_w;
    return s->c >= 32 && 36 * 10 * ((tiles + 3) / 4 * 4) <= 4 * 9 * pixels;
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

/* The input transform works on int16 lanes (|V| <= 12800 and every
 * intermediate fits): a vector vh holds VL tiles x the two channels of a
 * pair, interleaved as V stores them (lane 2l: channel 2q of tile l,
 * lane 2l+1: channel 2q+1). */
typedef int16_t vh __attribute__((vector_size(4 * VL)));
typedef vh vh_ua __attribute__((aligned(4), may_alias));
DN_WINO43_TRANSFORMS(vh, in) /* in_bt (winograd43.h); in_at is not used */

/* Per lane l, the 32-bit word at p + base[l]. Lanes come in runs of 4:
 * where bit k of run is set, lanes 4k .. 4k+3 are 4 neighbouring tiles of
 * one tile row (base 4 bytes apart) and their words are one 16-byte load. */
typedef uint32_t v4u __attribute__((vector_size(16)));
typedef v4u v4u_ua __attribute__((aligned(1), may_alias));
static inline vu words(const uint8_t *p, const size_t *base, unsigned run)
{
    v4u c[VL / 4];
    for (int k = 0; k < VL / 4; ++k) {
        if (run >> k & 1) {
            c[k] = *(const v4u_ua *)(p + base[4 * k]);
            continue;
        }
        uint32_t x[4];
        for (int m = 0; m < 4; ++m) memcpy(&x[m], p + base[4 * k + m], 4);
        c[k] = (v4u){x[0], x[1], x[2], x[3]};
    }
    vu v;
#ifdef HAVE_SHUFFLEVECTOR
    typedef uint32_t v8u __attribute__((vector_size(32)));
    v8u lo = __builtin_shufflevector(c[0], c[1], 0, 1, 2, 3, 4, 5, 6, 7);
#if VL == 16
    v8u hi = __builtin_shufflevector(c[2], c[3], 0, 1, 2, 3, 4, 5, 6, 7);
    v = __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#else
    v = lo;
#endif
#else
    memcpy(&v, c, sizeof v);
#endif
    return v;
}

/* V (36 vectors) of channels 2q (plane p0) and 2q+1 (p1; NULL: none, q = 0)
 * for the lanes' tiles: base[l] = the patch origin of lane l in a plane.
 * Each patch row is read as two 32-bit words per lane and channel (columns
 * 0-3 and 4-7; 6 and 7 unused). */
static void patch_transform(const uint8_t *p0, const uint8_t *p1, const size_t *base, unsigned run, int wp,
                            vh *v)
{
    const vu lo = (vu){0} + 255, hi = (vu){0} + 0xFF0000, none = (vu){0} + 0x80808080u;
    vh t[36];
    for (int r = 0; r < 6; ++r, p0 += wp, p1 = p1 ? p1 + wp : NULL) {
        vu a0 = words(p0, base, run), b0 = words(p0 + 4, base, run);
        vu a1 = p1 ? words(p1, base, run) : none, b1 = p1 ? words(p1 + 4, base, run) : none;
        vh d[6] = {(vh)((a0 & lo) | (a1 << 16 & hi)),      (vh)((a0 >> 8 & lo) | (a1 << 8 & hi)),
                   (vh)((a0 >> 16 & lo) | (a1 & hi)),      (vh)((a0 >> 24) | (a1 >> 8 & hi)),
                   (vh)((b0 & lo) | (b1 << 16 & hi)),      (vh)((b0 >> 8 & lo) | (b1 << 8 & hi))};
        for (int k = 0; k < 6; ++k) d[k] -= 128;
        in_bt(d, 1, t + 6 * r, 1);                     /* row r: d B */
    }
    for (int c = 0; c < 6; ++c) in_bt(t + c, 6, v + c, 6); /* B^T (d B) */
}

/* V of the super-block's tiles g .. g+L-1 (tiles t0 + g ...), channel
 * pairs [q0, q1). */
static void input_transform(const wjob *j, int g, int q0, int q1, uint8_t *V)
{
    const dn_conv_shape *s = j->s;
    const wplan *p = j->p;
    const size_t plane = (size_t)j->hp * j->wp, xi_stride = (size_t)p->cq * p->sb;
    uint32_t *v32 = (uint32_t *)(void *)V;
    size_t base[L]; /* lane l: tile t0 + g + l (past the super-block: tile t0 + g again) */
    for (int l = 0; l < L; ++l) {
        int t = j->t0 + g + (g + l < j->nt ? l : 0), per = p->th * p->tw;
        base[l] = (size_t)(t / per) * s->c * plane + (size_t)4 * (t % per / p->tw) * j->wp + 4 * (size_t)(t % p->tw);
    }
    unsigned run[L / VL] = {0};
    for (int k = 0; k < L / 4; ++k)
        if (base[4 * k + 3] == base[4 * k] + 12 && base[4 * k + 1] == base[4 * k] + 4 && base[4 * k + 2] == base[4 * k] + 8)
            run[k / (VL / 4)] |= 1u << k % (VL / 4);
    for (int q = q0; q < q1; ++q)
        for (int h = 0; h < L; h += VL) {
            vh v[36];
            const uint8_t *p0 = j->planes + (size_t)2 * q * plane;
            patch_transform(p0, 2 * q + 1 < s->c ? p0 + plane : NULL, base + h, run[h / VL], j->wp, v);
            uint32_t *dst = v32 + (size_t)q * p->sb + g + h;
            for (int xi = 0; xi < 36; ++xi) *(vh_ua *)(dst + xi * xi_stride) = v[xi];
        }
}

/* y[i*ys] = (A'^T m)[i] for m[0], m[ms], ..., m[5 ms], A' = diag(s) A:
 * A'^T = [6 4  4 1  1  0]
 *        [0 4 -4 2 -2  0]
 *        [0 4  4 4  4  0]
 *        [0 4 -4 8 -8 24]   (modulo 2^32 on unsigned lanes) */
static inline void out_at(const vu *m, int ms, vu *y, int ys)
{
    vu a = (m[ms] + m[2 * ms]) << 2, b = (m[ms] - m[2 * ms]) << 2;
    vu c = m[3 * ms] + m[4 * ms], d = m[3 * ms] - m[4 * ms];
    y[0] = m[0] * 6 + a + c;
    y[ys] = b + (d << 1);
    y[2 * ys] = a + (c << 2);
    y[3 * ys] = b + (d << 3) + m[5 * ms] * 24;
}

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

/* The lanes' 4x4 output tiles (r[4i + j] = row i, column j): lanes l < nl
 * (filters) at o + l*ls, the part inside the output (oh x ow) by rows of
 * 16 bytes at i*orow. */
static inline void store_tiles(vf *r, char *o, size_t ls, int nl, int oh, int ow, size_t orow)
{
    for (int k = 0; k < 4; ++k) transpose4(r + 4 * k);
    if (nl == VL && oh == 4 && ow == 4) { /* unrolled: each store takes its bytes from a register */
#pragma GCC unroll 16
        for (int l = 0; l < VL; ++l)
#pragma GCC unroll 4
            for (int i = 0; i < 4; ++i) memcpy(o + l * ls + i * orow, (const char *)&r[4 * i + l % 4] + 16 * (l / 4), 16);
        return;
    }
    for (int l = 0; l < nl; ++l, o += ls) { /* row i of lane l: r[4i + l%4], bytes 16(l/4) on */
        const char *src = (const char *)&r[l % 4] + 16 * (l / 4);
        if (oh == 4 && ow == 4)
            for (int i = 0; i < 4; ++i) memcpy(o + i * orow, src + 4 * i * sizeof(vf), 16);
        else
            for (int i = 0; i < oh; ++i)
                for (int c = 0; c < ow; ++c) memcpy(o + i * orow + 4 * c, src + 4 * i * sizeof(vf) + 4 * c, 4);
    }
}

/* The same for the pooled 2x2 tiles q[2i + j] (after the 2x2 stride-2 pool
 * inside each tile); oh and ow are the tile's before pooling. */
static inline void store_pooled(vf *q, char *o, size_t ls, int nl, int oh, int ow, size_t orow)
{
    transpose4(q);
    if (nl == VL && oh == 4 && ow == 4) { /* unrolled, as in store_tiles */
#pragma GCC unroll 16
        for (int l = 0; l < VL; ++l)
#pragma GCC unroll 2
            for (int i = 0; i < 2; ++i) memcpy(o + l * ls + i * orow, (const char *)&q[l % 4] + 16 * (l / 4) + 8 * i, 8);
        return;
    }
    for (int l = 0; l < nl; ++l, o += ls) {
        const char *src = (const char *)&q[l % 4] + 16 * (l / 4);
        for (int i = 0; i < oh / 2; ++i) { /* constant sizes: one 8- or 4-byte store */
            if (ow == 4) memcpy(o + i * orow, src + 8 * i, 8);
            else memcpy(o + i * orow, src + 8 * i, 4);
        }
    }
}

/* The max of a and b lane by lane. */
static inline vi vmaxi(vi a, vi b)
{
    vi gt = a > b;
    return (gt & a) | (~gt & b);
}

/* Output tiles [t0, t0+nt) of filter block fk from M (M[xi*M_XI + (t -
 * t0)*FB + filter - FB fk]), with the epilogue (or the exact sums into
 * out32). Per tile and VL filters: A'^T M A' in lanes, the exact division,
 * the epilogue, then the stores (the compiler keeps the vectors in
 * registers: the M loads go straight into the column transforms, the
 * activation's switch is out of the loops). */
static void output_transform(const wjob *j, int fk, int t0, int nt, const int32_t *M)
{
    const dn_conv_shape *s = j->s;
    const wplan *p = j->p;
    const dn_epilogue *ep = j->ep;
    const int pool = !j->out32 && ep->pool, ow_all = pool ? s->out_w / 2 : s->out_w;
    const int f0 = fk * FB, nf = imin(FB, s->filters - f0);
    const size_t oplane = (size_t)(pool ? s->out_h / 2 : s->out_h) * ow_all, orow = 4 * (size_t)ow_all;
    float slope;
    const int act = !j->out32 && dn_wino43_slope(ep->act, &slope);
    /* the block's scale and shift, 0 past the filters */
    float scale[FB] = {0}, shift[FB] = {0};
    for (int l = 0; l < nf && !j->out32; ++l) {
        scale[l] = ep->scale[f0 + l];
        shift[l] = ep->shift ? ep->shift[f0 + l] : 0.f;
    }
    /* out32 and out hold 4-byte values at the same offsets */
    char *dst = j->out32 ? (char *)j->out32 : (char *)j->out;
    int b = t0 / (p->th * p->tw), ty = t0 % (p->th * p->tw) / p->tw, tx = t0 % p->tw; /* of tile t */
    for (int t = t0; t < t0 + nt; ++t, ++tx) {
        if (tx == p->tw) tx = 0, ++ty;
        if (ty == p->th) ty = 0, ++b;
        int oy = 4 * ty, ox = 4 * tx;
        const int oh = imin(4, s->out_h - oy), ow = imin(4, s->out_w - ox);
        const float sx = j->sx ? j->sx[b] : 1.f;
        if (pool) oy /= 2, ox /= 2;
        const size_t o0 = 4 * ((size_t)b * s->filters * oplane + (size_t)oy * ow_all + ox);
        for (int h = 0; h < FB && h < nf; h += VL) {
            const int32_t *mt = M + (size_t)(t - t0) * FB + h;
            vu tr[24], y[16];
            vf r[16], mul, sh;
            char *o = dst + o0 + 4 * (size_t)(f0 + h) * oplane;
            const int nl = imin(VL, nf - h);
            for (int c = 0; c < 6; ++c) {
                vu m[6];
                for (int i = 0; i < 6; ++i) m[i] = *(const vu_ua *)(mt + (size_t)(6 * i + c) * M_XI);
                out_at(m, 1, tr + c, 6);
            }
            for (int k = 0; k < 4; ++k) out_at(tr + 6 * k, 1, y + 4 * k, 1);
            memcpy(&mul, scale + h, sizeof mul);
            memcpy(&sh, shift + h, sizeof sh);
            mul *= sx;
            int n = 16;
            if (pool) { /* pool.h: the max (scale < 0: the min) of the exact sums, then the epilogue */
                vi flip = (vi)(mul < 0), q[4]; /* the min as the max of the complements */
                for (int i = 0; i < 4; ++i) {
                    const vu *w = y + 8 * (i / 2) + 2 * (i % 2);
                    q[i] = vmaxi(vmaxi((vi)w[0] ^ flip, (vi)w[1] ^ flip), vmaxi((vi)w[4] ^ flip, (vi)w[5] ^ flip)) ^ flip;
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
                if (ep->shift) r[i] = r[i] + sh;
                if (act) r[i] = leaky(r[i], slope);
            }
            if (pool) store_pooled(r, o, 4 * oplane, nl, oh, ow, orow);
            else store_tiles(r, o, 4 * oplane, nl, oh, ow, orow);
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

/* Item it: filter block it / nch, chunk it % nch of the super-block's
 * tiles: the 36 GEMMs into M (runs of 16 tiles, the last one rounded up to
 * 4: V has whole groups of 16), then the output transform. */
static void gemm_item(void *ctx, int it, int tid)
{
    const wjob *j = ctx;
    const wplan *p = j->p;
    const int nch = ceil_div(j->nt, CH_MAX), fk = it / nch, c0 = it % nch * CH_MAX;
    const int nt = imin(CH_MAX, j->nt - c0);
    int32_t *M = (int32_t *)(void *)(j->scratch + p->v_bytes + (size_t)tid * p->m_bytes);
    const int16_t *V = (const int16_t *)(const void *)j->scratch;
    for (int xi = 0; xi < 36; ++xi) {
        const int8_t *w = j->w->u + ((size_t)fk * 36 + xi) * p->cq * FB * 2;
        for (int t = 0; t < nt; t += L)
            j->K->wgemm(p->cq, imin(L, (nt - t + 3) / 4 * 4), w, V + ((size_t)xi * p->cq * p->sb + c0 + t) * 2,
                        (size_t)p->sb, M + (size_t)xi * M_XI + (size_t)t * FB);
    }
    output_transform(j, fk, j->t0 + c0, nt, M);
}

void dn_twino_run(const dn_conv_shape *s, const uint8_t *planes, int hp, int wp, const dn_tweights *w,
                  const float *sx, const dn_epilogue *ep, float *out, int32_t *out32, void *scratch,
                  int nthreads, const dn_tkernels *K)
{
    wplan p;
    plan_make(s, &p);
    wjob j = {s, &p, K, w, planes, hp, wp, sx, ep, out, out32, scratch, 0, 0};
    for (int t0 = 0; t0 < p.tiles; t0 += p.sb) {
        j.t0 = t0;
        j.nt = imin(p.sb, p.tiles - t0);
        dn_parallel_for(ceil_div(j.nt, L) * ceil_div(p.cq, Q_ITEM), nthreads, input_item, &j);
        dn_parallel_for(p.fb * ceil_div(j.nt, CH_MAX), nthreads, gemm_item, &j);
    }
}
