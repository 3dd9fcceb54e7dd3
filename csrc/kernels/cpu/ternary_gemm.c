/* ternary_gemm.c: see ternary_gemm.h. Weight packing, the portable (generic
 * C) primitives, the run-time choice of the AVX2 ones, and the convolution
 * drivers shared by both.
 *
 * int8 driver: (1) per image, max|x| over its channels (items: image x
 * channel), then each channel is quantised into a zero-padded plane of
 * u = q + 128 (padding 128) of (h + 2 pad) x (w + 2 pad) bytes; (2) work
 * items (image, group, block of nc output pixels): for each block of
 * DN_TKB taps, the im2col rows of the block are gathered from the planes
 * (runs of bytes, no bounds checks thanks to the padding), interleaved into
 * 16-pixel panels, and every 6-filter row block of the item sweeps the
 * panels with the micro-kernel. With more than one tap block the int32
 * partial sums wait in a per-thread [filters][nc] buffer; the last block
 * applies the epilogue while storing. Items are split by filters as well
 * when the map is small (see int8_plan_make). Implicit GEMM (where
 * dn_timplicit_wanted): the planes hold 4 channels interleaved and the
 * micro-kernel reads its panels there, with no gathering. Integer Winograd
 * (where dn_twino_wanted): ternary_winograd.c on the same planes.
 *
 * Float driver: the same items over blocks of DN_TKCF taps gathered from a
 * zero-padded float copy of the input (the input itself when pad = 0);
 * partial sums wait in the output.
 */
#include "ternary_gemm.h"
#include "../../core/settings.h"
#include "conv_fast.h"
#include "depthwise.h"
#include "../ref/ternary_gemm_ref.h"
#include "parallel.h"
#include "pool.h"
#include "winograd43.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MR DN_TMR
#define NR DN_TNR
#define NRF DN_TNRF
#define NCI_MAX 512        /* pixels per int8 work item */
#define NCF_MAX 128        /* pixels per float work item */
#define C32_MAX (1 << 20)  /* bytes of int32 partial sums per thread */
#define B_MAX (192 << 10)  /* bytes of a packed pixel block (kcb x nc) */
#define SHARED_MAX (16 << 20) /* bytes of all packed blocks when shared */

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }
static inline int ceil_div(int a, int b) { return (a + b - 1) / b; }
static inline int round_up(int x, int m) { return ceil_div(x, m) * m; }
static inline int gcd(int a, int b) { return b ? gcd(b, a % b) : a; }
static inline int lcm(int a, int b) { return a / gcd(a, b) * b; }
static inline size_t align64(size_t x) { return (x + 63) / 64 * 64; }

/* ---- weight packing ---- */

int dn_tweights_init(dn_tweights *w, const int8_t *codes, int filters, int groups, int k)
{
    memset(w, 0, sizeof(*w));
    int ng = filters / groups;
    w->filters = filters;
    w->groups = groups;
    w->k = k;
    w->kg = ceil_div(k, 4);
    w->mb = ceil_div(ng, MR);
    size_t na = (size_t)groups * w->mb * w->kg * MR * 4;
    w->a = aligned_alloc(64, align64(na ? na : 1));
    w->corr = calloc((size_t)groups * w->mb * MR, sizeof(int32_t));
    if (!w->a || !w->corr) { dn_tweights_free(w); return 0; }
    memset(w->a, 0, na);
    for (int g = 0; g < groups; ++g)
        for (int f = 0; f < ng; ++f) {
            const int8_t *c = codes + ((size_t)g * ng + f) * k;
            int8_t *row = w->a + ((size_t)(g * w->mb + f / MR) * w->kg * MR + f % MR) * 4;
            int32_t sum = 0;
            for (int kk = 0; kk < k; ++kk) {
                row[(size_t)(kk / 4) * MR * 4 + kk % 4] = c[kk];
                sum += c[kk];
            }
            w->corr[(size_t)g * w->mb * MR + f] = 128 * sum;
        }
    if (groups > 1 && groups == filters && k <= 64) {
        w->dw = malloc((size_t)filters * k);
        if (!w->dw) { dn_tweights_free(w); return 0; }
        memcpy(w->dw, codes, (size_t)filters * k);
    }
    return 1;
}

int dn_tweights_implicit(dn_tweights *w, const int8_t *codes, int c, int size)
{
    free(w->ai);
    w->ai = NULL;
    if (w->groups != 1 || w->k != c * size * size) return 1;
    const int ss = size * size, c4 = ceil_div(c, 4);
    size_t n = (size_t)w->mb * ss * c4 * MR * 4;
    w->ai = aligned_alloc(64, align64(n));
    if (!w->ai) return 0;
    memset(w->ai, 0, n);
    w->c = c;
    w->kgi = ss * c4;
    for (int f = 0; f < w->filters; ++f)
        for (int ch = 0; ch < c; ++ch)
            for (int tap = 0; tap < ss; ++tap) {
                size_t q = (size_t)tap * c4 + ch / 4;
                w->ai[(((size_t)(f / MR) * w->kgi + q) * MR + f % MR) * 4 + ch % 4] = codes[((size_t)f * c + ch) * ss + tap];
            }
    return 1;
}

int dn_timplicit_wanted(const dn_conv_shape *s)
{
    if (s->groups != 1 || s->stride != 1 || (!(s->size == 1 && s->pad == 0) && s->out_w % NR)) return 0;
    const long kgi = (long)s->size * s->size * ceil_div(s->c, 4), kg = ceil_div(s->size * s->size * s->c, 4);
    /* the byte offsets of the k-groups (int32) */
    if ((long)ceil_div(s->c, 4) * (s->h + 2 * s->pad) * (s->w + 2 * s->pad) * 4 >= INT32_MAX) return 0;
    if (dn_option(DN_OPT_TERNARY_ALGO) == DN_TALGO_PACKED) return 0;
    return 20 * kgi <= 23 * kg;
}

void dn_tweights_free(dn_tweights *w)
{
    free(w->a);
    free(w->ai);
    free(w->dw);
    free(w->u);
    free(w->corr);
    memset(w, 0, sizeof(*w));
}

int dn_tlists_init(dn_tlists *l, const int8_t *codes, int filters, int groups, int k)
{
    memset(l, 0, sizeof(*l));
    l->filters = filters;
    l->groups = groups;
    l->k = k;
    l->nkb = ceil_div(k, DN_TKCF);
    size_t nnz = 0, total = (size_t)filters * k, nl = (size_t)filters * l->nkb;
    for (size_t i = 0; i < total; ++i) nnz += codes[i] != 0;
    l->start = malloc(sizeof(int32_t) * (nl + 1));
    l->npos = malloc(sizeof(int32_t) * (nl ? nl : 1));
    l->idx = malloc(sizeof(uint16_t) * (nnz ? nnz : 1));
    if (!l->start || !l->npos || !l->idx || nnz > INT32_MAX) { dn_tlists_free(l); return 0; }
    int32_t at = 0;
    for (int kb = 0; kb < l->nkb; ++kb)
        for (int f = 0; f < filters; ++f) {
            const int8_t *c = codes + (size_t)f * k;
            int k0 = kb * DN_TKCF, k1 = imin(k, k0 + DN_TKCF);
            size_t i = (size_t)kb * filters + f;
            l->start[i] = at;
            for (int kk = k0; kk < k1; ++kk)
                if (c[kk] > 0) l->idx[at++] = (uint16_t)(kk - k0);
            l->npos[i] = at - l->start[i];
            for (int kk = k0; kk < k1; ++kk)
                if (c[kk] < 0) l->idx[at++] = (uint16_t)(kk - k0);
        }
    l->start[nl] = at;
    return 1;
}

void dn_tlists_free(dn_tlists *l)
{
    free(l->start);
    free(l->npos);
    free(l->idx);
    memset(l, 0, sizeof(*l));
}

/* ---- generic primitives ---- */

static void tile_generic(const dn_ttile *t)
{
    int32_t acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (int q = 0; q < t->kgc; ++q) {
        const int8_t *a = t->a + (size_t)q * MR * 4;
        const uint8_t *b = t->b + t->boff[q];
        for (int i = 0; i < MR; ++i)
            for (int j = 0; j < NR; ++j)
                acc[i][j] += a[4 * i] * b[4 * j] + a[4 * i + 1] * b[4 * j + 1] +
                             a[4 * i + 2] * b[4 * j + 2] + a[4 * i + 3] * b[4 * j + 3];
    }
    if (!t->first)
        for (int i = 0; i < MR; ++i)
            for (int j = 0; j < NR; ++j) acc[i][j] += t->c32[(size_t)i * t->ldc32 + j];
    if (!t->last) {
        for (int i = 0; i < MR; ++i)
            for (int j = 0; j < NR; ++j) t->c32[(size_t)i * t->ldc32 + j] = acc[i][j];
        return;
    }
    for (int i = 0; i < t->mr; ++i) {
        if (t->out32) {
            for (int j = 0; j < t->nr; ++j) t->out32[(size_t)i * t->ldo + j] = acc[i][j] - t->corr[i];
            continue;
        }
        float m = t->sx * t->scale[i];
        for (int j = 0; j < t->nr; ++j) {
            float v = (float)(acc[i][j] - t->corr[i]) * m;
            if (t->shift) v += t->shift[i];
            t->out[(size_t)i * t->ldo + j] = dn_tact1(v, t->act);
        }
    }
}

static void wgemm_generic(int kq, int nt, const int8_t *w, const int16_t *v, size_t ldv, int32_t *m)
{
    for (int t = 0; t < nt; ++t) {
        uint32_t acc[DN_TWFB] = {0};
        for (int q = 0; q < kq; ++q) {
            const int16_t *vq = v + ((size_t)q * ldv + t) * 2;
            const int8_t *wq = w + (size_t)q * DN_TWFB * 2;
            for (int f = 0; f < DN_TWFB; ++f)
                acc[f] += (uint32_t)(wq[2 * f] * vq[0]) + (uint32_t)(wq[2 * f + 1] * vq[1]);
        }
        for (int f = 0; f < DN_TWFB; ++f) m[t * DN_TWFB + f] = (int32_t)acc[f];
    }
}

static void interleave_generic(const uint8_t *r, size_t ldr, int ncp, uint8_t *dst, size_t pstride)
{
    for (int p = 0; p < ncp / NR; ++p) {
        uint8_t *d = dst + (size_t)p * pstride;
        for (int j = 0; j < NR; ++j)
            for (int u = 0; u < 4; ++u) d[4 * j + u] = r[(size_t)u * ldr + p * NR + j];
    }
}

static float absmax_generic(const float *x, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; ++i) {
        float a = fabsf(x[i]);
        m = a > m ? a : m;
    }
    return m;
}

static void quantize_generic(const float *x, size_t n, float inv, uint8_t *dst)
{
    for (size_t i = 0; i < n; ++i) {
        float v = x[i] * inv;
        v = v < 127.f ? v : 127.f;
        v = v > -127.f ? v : -127.f;
        dst[i] = (uint8_t)(lrintf(v) + 128);
    }
}

static void float_block_generic(const float *rows, size_t ldr, const dn_tlists *l, int f0, int f1, int kb,
                                float *out, size_t ldo, int npan, int nx_last, int first, int last,
                                const float *scale, const float *shift, dn_activation act)
{
    for (int f = f0; f < f1; ++f) {
        size_t li = (size_t)kb * l->filters + f;
        const uint16_t *idx = l->idx + l->start[li];
        int np = l->npos[li], nt = l->start[li + 1] - l->start[li];
        float sc = scale[f], sh = shift ? shift[f] : 0.f;
        for (int pn = 0; pn < npan; ++pn) {
            const float *rp = rows + pn * NRF;
            float *o = out + (size_t)f * ldo + pn * NRF, acc[NRF];
            int nx = pn == npan - 1 ? nx_last : NRF;
            for (int j = 0; j < NRF; ++j) acc[j] = first || j >= nx ? 0.f : o[j];
            for (int i = 0; i < np; ++i) {
                const float *r = rp + (size_t)idx[i] * ldr;
                for (int j = 0; j < NRF; ++j) acc[j] += r[j];
            }
            for (int i = np; i < nt; ++i) {
                const float *r = rp + (size_t)idx[i] * ldr;
                for (int j = 0; j < NRF; ++j) acc[j] -= r[j];
            }
            for (int j = 0; j < nx; ++j) o[j] = last ? dn_tact1(acc[j] * sc + sh, act) : acc[j];
        }
    }
}

const dn_tkernels dn_tkernels_generic = {tile_generic, interleave_generic, absmax_generic,
                                         quantize_generic, wgemm_generic, float_block_generic};

int dn_ternary_simd_available(void)
{
    if (dn_vnni_available()) return DN_TSIMD_VNNI;
    return dn_tkernels_simd(DN_TSIMD_AVX2) ? DN_TSIMD_AVX2 : DN_TSIMD_NONE;
}

int dn_ternary_simd(void)
{
    int best = dn_ternary_simd_available(), cap = dn_option(DN_OPT_SIMD) - 1; /* -1: auto */
    return cap >= 0 && cap < best ? cap : best;
}

static const dn_tkernels *pick(int simd)
{
    const dn_tkernels *k = simd > 0 ? dn_tkernels_simd(simd) : NULL;
    return k ? k : &dn_tkernels_generic;
}

/* ---- im2col rows from padded planes ---- */

/* Rows [k0, k0+kc) of the im2col matrix of one group for output pixels
 * [n0, n0+nc): r[kk][j] (row stride ldr) = plane[ch][oy*stride+ky][ox*stride+kx],
 * k = (ch*size + ky)*size + kx; rows past K and columns [nc, ldr) are FILL.
 * SHORT(d, p, run) copies a stride-1 run shorter than 32 elements. */
#define DEFINE_ROWS(name, T, FILL, SHORT)                                                     \
    static void name(const T *planes, const dn_conv_shape *s, int hp, int wp, int k0, int kc, \
                     int K, int n0, int nc, int ldr, T *r)                                   \
    {                                                                                         \
        const int size = s->size, ss = size * size, stride = s->stride, ow = s->out_w;        \
        for (int kk = 0; kk < kc; ++kk) {                                                     \
            T *d = r + (size_t)kk * ldr;                                                      \
            int k = k0 + kk, j = 0;                                                           \
            if (k >= K) {                                                                     \
                for (int t = 0; t < ldr; ++t) d[t] = FILL;                                    \
                continue;                                                                     \
            }                                                                                 \
            int ch = k / ss, ky = k % ss / size, kx = k % size, oy = n0 / ow, ox = n0 % ow;   \
            const T *src = planes + (size_t)ch * hp * wp + (size_t)ky * wp + kx;              \
            while (j < nc) {                                                                  \
                int run = imin(ow - ox, nc - j);                                              \
                const T *p = src + (size_t)oy * stride * wp + (size_t)ox * stride;            \
                if (stride == 1 && run >= 32) memcpy(d + j, p, sizeof(T) * (size_t)run);      \
                else if (stride == 1) SHORT(d + j, p, run);                                   \
                else                                                                          \
                    for (int t = 0; t < run; ++t) d[j + t] = p[(size_t)t * stride];           \
                j += run;                                                                     \
                ox = 0;                                                                       \
                ++oy;                                                                         \
            }                                                                                 \
            for (int t = nc; t < ldr; ++t) d[t] = FILL;                                       \
        }                                                                                     \
    }

/* Bytes: always copy 32 (small maps give runs of 13 or 26 pixels). The
 * planes and the row buffer have 64 bytes of slack for the over-read and
 * over-write; what is written past the run is overwritten by the next run,
 * the next row or the fill, since rows are written in order. */
#define SHORT_U8(d, p, run) memcpy((d), (p), 32)
#define SHORT_F32(d, p, run)                                  \
    do {                                                      \
        for (int t_ = 0; t_ < (run); ++t_) (d)[t_] = (p)[t_]; \
    } while (0)

DEFINE_ROWS(rows_u8, uint8_t, 128, SHORT_U8)
DEFINE_ROWS(rows_f32, float, 0.f, SHORT_F32)

/* ---- int8 driver ---- */

typedef struct {
    int n, k, kp;                 /* pixels, taps per group, taps rounded up to 4 */
    int kblocks, kcb;             /* tap blocks, taps per block (multiple of 4, <= DN_TKB) */
    int nc, nblk;                 /* pixels per item (multiple of NR), pixel blocks */
    int rpb, mblk;                /* row blocks (MR filters) per item, filter blocks per group */
    int hp, wp;
    size_t plane;                 /* bytes per padded channel plane (implicit: 4-channel plane) */
    int nplanes;                  /* planes per image */
    int shared;                   /* packed blocks made once, before the items (filter split) */
    int wino;                     /* integer Winograd (ternary_winograd.c) instead of the GEMM */
    int implicit;                 /* implicit GEMM: planes of 4 channels, no packing (ternary_gemm.h) */
    int pool;                     /* ep->pool: pixel blocks of whole row pairs, a band per thread */
    size_t off_sx, off_pmax, off_boff, off_shared, off_thread, r_bytes, b_bytes, band_bytes, per_thread, total;
} int8_plan;

/* Work items: (image, group, pixel block, filter block). Pixel blocks of
 * up to NCI_MAX; when that leaves fewer than two items per thread (small
 * maps: the deep layers), the filters are split too, so that each item
 * streams only its own share of the packed weights; the pixel blocks are
 * then packed once, in a first parallel pass, and shared by the items
 * (unless they would take more than SHARED_MAX bytes). */
static void int8_plan_make(const dn_conv_shape *s, int nthreads, int wino, int implicit, int pool, int8_plan *p)
{
    p->wino = wino;
    p->implicit = implicit = !wino && implicit;
    p->pool = pool;
    int g = s->groups, ng = s->filters / g, mb = ceil_div(ng, MR);
    p->n = s->out_h * s->out_w;
    p->k = s->c / g * s->size * s->size;
    p->kp = implicit ? 4 * s->size * s->size * ceil_div(s->c, 4) : round_up(p->k, 4);
    p->kblocks = ceil_div(p->kp, DN_TKB);
    p->kcb = round_up(ceil_div(p->kp, p->kblocks), 4); /* balanced blocks */
    int jobs = s->batch * g, want = 2 * nthreads;
    int nblk = ceil_div(p->n, NCI_MAX);
    p->mblk = 1;
    if (nthreads > 1 && jobs * nblk < want) p->mblk = imin(mb, ceil_div(want, jobs * nblk));
    p->rpb = ceil_div(mb, p->mblk);
    p->mblk = ceil_div(mb, p->rpb);
    /* the packed block (kcb x nc bytes) should stay in L2 */
    int ncmax = imin(NCI_MAX, imax(NR, B_MAX / p->kcb / NR * NR));
    if (p->kblocks > 1) {
        int cap = C32_MAX / (p->rpb * MR * 4) / NR * NR;
        ncmax = imin(ncmax, cap < NR ? NR : cap);
    }
    nblk = ceil_div(p->n, ncmax);
    if (nthreads > 1 && jobs * nblk * p->mblk < want)
        nblk = imin(ceil_div(want, jobs * p->mblk), ceil_div(p->n, NR));
    /* pooled: blocks of whole row pairs (and of whole panels) */
    int unit = pool ? lcm(2 * s->out_w, NR) : NR;
    p->nc = round_up(ceil_div(p->n, nblk), unit);
    p->nblk = ceil_div(p->n, p->nc);
    p->hp = s->h + 2 * s->pad;
    p->wp = s->w + 2 * s->pad;
    if (wino) dn_twino_plane_dims(s, &p->hp, &p->wp);
    p->plane = (size_t)p->hp * p->wp * (implicit ? 4 : 1);
    p->nplanes = implicit ? ceil_div(s->c, 4) : s->c;
    p->off_sx = align64((size_t)s->batch * p->nplanes * p->plane + 64);
    p->off_pmax = p->off_sx + align64(sizeof(float) * 2 * (size_t)s->batch);
    p->off_boff = p->off_pmax + align64(sizeof(float) * (size_t)s->batch * s->c);
    p->off_shared = p->off_boff + align64(sizeof(int32_t) * (size_t)(implicit ? p->kp / 4 : DN_TKB / 4));
    p->r_bytes = implicit ? 0 : align64((size_t)4 * p->nc + 64);
    p->b_bytes = implicit ? 0 : align64((size_t)p->kcb * p->nc);
    size_t slots = (size_t)jobs * p->nblk * p->kblocks;
    p->shared = !implicit && p->mblk > 1 && slots * p->b_bytes <= SHARED_MAX;
    p->off_thread = p->off_shared + (p->shared ? slots * p->b_bytes : 0);
    p->band_bytes = pool ? align64(sizeof(int32_t) * MR * (size_t)p->nc) : 0;
    p->per_thread = p->r_bytes + (p->shared ? 0 : p->b_bytes) +
                    (p->kblocks > 1 ? align64((size_t)p->rpb * MR * p->nc * 4) : 0) + p->band_bytes;
    p->total = p->off_thread + (size_t)nthreads * p->per_thread;
    if (wino) {
        p->shared = 0;
        p->total = p->off_shared + dn_twino_scratch(s, nthreads);
    }
}

/* Enough for any path (which one runs also depends on the weights),
 * pooled or not. */
size_t dn_tconv_int8_scratch(const dn_conv_shape *s, int nthreads)
{
    size_t most = 0;
    for (int i = 0; i < 8; ++i) {
        int8_plan p;
        int8_plan_make(s, nthreads, i & 1 ? dn_twino_wanted(s) : 0, i & 2 ? dn_timplicit_wanted(s) : 0, i >> 2, &p);
        most = p.total > most ? p.total : most;
    }
    if (dn_depthwise_applies(s)) {
        int8_plan p;
        int8_plan_make(s, nthreads, 0, 0, 0, &p);
        size_t dw = p.off_boff + dn_depthwise_s8_scratch(s, nthreads);
        most = dw > most ? dw : most;
    }
    return most;
}

typedef struct {
    const dn_conv_shape *s;
    const int8_plan *p;
    const dn_tkernels *K;
    const float *input;
    const int8_t *xs8;
    const dn_tweights *w;
    const dn_epilogue *ep;
    float *output;
    int32_t *out32;
    uint8_t *scratch;
    float *sx, *inv, *pmax;
    int32_t *boff;                /* the micro-kernel's B offsets per k-group */
} int8_job;

static void absmax_item(void *ctx, int it, int tid)
{
    (void)tid;
    int8_job *j = ctx;
    size_t hw = (size_t)j->s->h * j->s->w;
    j->pmax[it] = j->K->absmax(j->input + (size_t)it * hw, hw);
}

/* u[i] = q + 128 of pixels n0 .. n0+cn of image b, channel ch (the
 * quantiser in runs: rows of a small map are too short for its vectors). */
#define QRUN 2048
static void quantize_run(const int8_job *j, int b, int ch, size_t n0, int cn, uint8_t *u)
{
    const size_t src = ((size_t)b * j->s->c + ch) * j->s->h * j->s->w + n0;
    if (j->input) j->K->quantize(j->input + src, (size_t)cn, j->inv[b], u);
    else
        for (int i = 0; i < cn; ++i) u[i] = (uint8_t)(j->xs8[src + i] + 128);
}

/* Plane it (image b, channel ch): padding 128, inside u = q + 128. */
static void plane_item(void *ctx, int it, int tid)
{
    (void)tid;
    const int8_job *j = ctx;
    const dn_conv_shape *s = j->s;
    const int8_plan *p = j->p;
    const size_t hw = (size_t)s->h * s->w;
    uint8_t *dst = j->scratch + (size_t)it * p->plane, u[QRUN];
    memset(dst, 128, p->plane);
    for (size_t n0 = 0; n0 < hw; n0 += QRUN) {
        const int cn = (int)(hw - n0 < QRUN ? hw - n0 : QRUN);
        quantize_run(j, it / s->c, it % s->c, n0, cn, u);
        for (int i = 0, run; i < cn; i += run) { /* row segments */
            const int y = (int)((n0 + i) / s->w), x = (int)((n0 + i) % s->w);
            run = imin(s->w - x, cn - i);
            memcpy(dst + (size_t)(y + s->pad) * p->wp + s->pad + x, u + i, (size_t)run);
        }
    }
}

/* Implicit GEMM: 4-channel plane it (image b, channels 4 c4 ..): padding
 * and missing channels 128, inside the 4 channels' u = q + 128 of a pixel
 * in one 32-bit word. */
static void quad_item(void *ctx, int it, int tid)
{
    (void)tid;
    const int8_job *j = ctx;
    const dn_conv_shape *s = j->s;
    const int8_plan *p = j->p;
    const int b = it / p->nplanes, ch0 = it % p->nplanes * 4, nch = imin(4, s->c - ch0);
    const size_t hw = (size_t)s->h * s->w;
    uint32_t *dst = (uint32_t *)(void *)(j->scratch + (size_t)it * p->plane);
    uint8_t u[4][QRUN];
    memset(dst, 128, p->plane);
    memset(u, 128, sizeof u);
    for (size_t n0 = 0; n0 < hw; n0 += QRUN) {
        const int cn = (int)(hw - n0 < QRUN ? hw - n0 : QRUN);
        for (int c = 0; c < nch; ++c) quantize_run(j, b, ch0 + c, n0, cn, u[c]);
        for (int i = 0, run; i < cn; i += run) { /* row segments */
            const int y = (int)((n0 + i) / s->w), x = (int)((n0 + i) % s->w);
            run = imin(s->w - x, cn - i);
            uint32_t *d = dst + (size_t)(y + s->pad) * p->wp + s->pad + x;
            for (int k = 0; k < run; ++k)
                d[k] = u[0][i + k] | (uint32_t)u[1][i + k] << 8 | (uint32_t)u[2][i + k] << 16 | (uint32_t)u[3][i + k] << 24;
        }
    }
}

/* Pack taps [k0, k0+kc) x pixels of block jb of image b, group gi into
 * the panels Bp, gathering 4 im2col rows at a time into R. */
static void pack_block(const int8_job *j, int b, int gi, int jb, int k0, int kc, uint8_t *R, uint8_t *Bp)
{
    const dn_conv_shape *s = j->s;
    const int8_plan *p = j->p;
    const int n0 = jb * p->nc, nc = imin(p->nc, p->n - n0), ncp = round_up(nc, NR);
    const uint8_t *planes = j->scratch + ((size_t)b * s->c + (size_t)gi * (s->c / s->groups)) * p->plane;
    for (int q = 0; q < kc / 4; ++q) {
        rows_u8(planes, s, p->hp, p->wp, k0 + 4 * q, 4, p->k, n0, nc, ncp, R);
        j->K->interleave(R, (size_t)ncp, ncp, Bp + (size_t)q * NR * 4, (size_t)kc * NR);
    }
}

/* Shared packed block of (image, group, pixel block, tap block). */
static uint8_t *shared_block(const int8_job *j, int b, int gi, int jb, int kb)
{
    const int8_plan *p = j->p;
    size_t slot = (((size_t)b * j->s->groups + gi) * p->nblk + jb) * p->kblocks + kb;
    return j->scratch + p->off_shared + slot * p->b_bytes;
}

static void pack_item(void *ctx, int it, int tid)
{
    const int8_job *j = ctx;
    const int8_plan *p = j->p;
    const int kb = it % p->kblocks, jb = it / p->kblocks % p->nblk, gi = it / p->kblocks / p->nblk % j->s->groups;
    const int b = it / p->kblocks / p->nblk / j->s->groups, k0 = kb * p->kcb;
    uint8_t *R = j->scratch + p->off_thread + (size_t)tid * p->per_thread;
    pack_block(j, b, gi, jb, k0, imin(p->kcb, p->kp - k0), R, shared_block(j, b, gi, jb, kb));
}

#ifdef DN_POOL_HAVE_VEC
DN_WINO43_LEAKY(dn_pool_f8, dn_pool_i8, pool_leaky)
#endif

/* o[x] = act(e * m + *shift) for e the pool (pool.h) of r0[2x], r0[2x+1],
 * r1[2x], r1[2x+1], as the tiles compute it (shift NULL: no add). */
static void pool_epilogue_rows(const int32_t *r0, const int32_t *r1, float *o, int n, float m, const float *shift,
                               dn_activation act)
{
    const int lo = m < 0;
    int x = 0;
#ifdef DN_POOL_HAVE_VEC
    float sl;
    const int fused = dn_wino43_slope(act, &sl);
    for (; x + 8 <= n; x += 8) {
        dn_pool_f8 v = __builtin_convertvector(dn_pool2x2_s32x8(r0 + 2 * x, r1 + 2 * x, lo), dn_pool_f8) * m;
        if (shift) v += *shift;
        if (fused) v = pool_leaky(v, sl); /* = dn_tact1 lane by lane */
        memcpy(o + x, &v, sizeof v);
    }
#endif
    for (; x < n; ++x) {
        int32_t e = dn_pool_sel(dn_pool_sel(r0[2 * x], r0[2 * x + 1], lo), dn_pool_sel(r1[2 * x], r1[2 * x + 1], lo), lo);
        float v = (float)e * m;
        if (shift) v += *shift;
        o[x] = dn_tact1(v, act);
    }
}

/* The band's rows i < mr (filters f + i; exact sums of pixels n0 .. n0+nc
 * of image b, whole row pairs, row stride ld) pooled, then the epilogue. */
static void pool_band(const int8_job *j, int b, int f, int mr, int n0, int nc, const int32_t *band, size_t ld)
{
    const dn_conv_shape *s = j->s;
    const dn_epilogue *ep = j->ep;
    const int ow = s->out_w, pw = ow / 2, y0 = n0 / ow;
    const size_t pplane = (size_t)(s->out_h / 2) * pw;
    const float sx = j->sx ? j->sx[b] : 1.f;
    for (int i = 0; i < mr; ++i) {
        const float m = sx * ep->scale[f + i];
        for (int y = 0; y < nc / ow; y += 2) {
            const int32_t *r0 = band + i * ld + (size_t)y * ow;
            float *o = j->output + ((size_t)b * s->filters + f + i) * pplane + (size_t)(y0 + y) / 2 * pw;
            pool_epilogue_rows(r0, r0 + ow, o, pw, m, ep->shift ? ep->shift + f + i : NULL, ep->act);
        }
    }
}

static void int8_item(void *ctx, int it, int tid)
{
    const int8_job *j = ctx;
    const dn_conv_shape *s = j->s;
    const int8_plan *p = j->p;
    const dn_tweights *w = j->w;
    const int g = s->groups, ng = s->filters / g;
    const int mk = it % p->mblk, jb = it / p->mblk % p->nblk, gi = it / p->mblk / p->nblk % g;
    const int b = it / p->mblk / p->nblk / g;
    const int n0 = jb * p->nc, nc = imin(p->nc, p->n - n0), ncp = round_up(nc, NR);
    const int r0 = mk * p->rpb, r1 = imin(w->mb, r0 + p->rpb);
    uint8_t *R = j->scratch + p->off_thread + (size_t)tid * p->per_thread, *Bp = R + p->r_bytes;
    int32_t *C32 = (int32_t *)(Bp + (p->shared ? 0 : p->b_bytes));
    /* pooled: a row block's exact sums go to the band (MR x ncp, L1/L2), then
     * are pooled and go through the epilogue */
    int32_t *band = p->pool ? (int32_t *)(void *)(R + p->per_thread - p->band_bytes) : NULL;
    /* implicit: the panels' first bytes in the 4-channel planes of image b */
    const uint8_t *quad = j->scratch + (size_t)b * p->nplanes * p->plane;
    for (int k0 = 0; k0 < p->kp; k0 += p->kcb) {
        int kc = imin(p->kcb, p->kp - k0);
        if (p->shared) Bp = shared_block(j, b, gi, jb, k0 / p->kcb);
        else if (!p->implicit) pack_block(j, b, gi, jb, k0, kc, R, Bp);
        dn_ttile t;
        memset(&t, 0, sizeof t);
        t.boff = j->boff + (p->implicit ? k0 / 4 : 0);
        t.kgc = kc / 4;
        t.first = k0 == 0;
        t.last = k0 + kc >= p->kp;
        t.ldc32 = (size_t)ncp;
        t.ldo = band ? (size_t)ncp : (size_t)p->n;
        t.sx = j->sx ? j->sx[b] : 1.f;
        t.act = j->ep ? j->ep->act : DN_ACT_LINEAR;
        /* the A panel of a row block (MR x kc bytes) stays in L1 while it
         * sweeps the block's pixel panels (kc x ncp bytes, L2) */
        for (int r = r0; r < r1; ++r) {
            int f0 = r * MR, f = gi * ng + f0;
            t.mr = imin(MR, ng - f0);
            t.a = p->implicit ? w->ai + ((size_t)r * w->kgi + k0 / 4) * MR * 4
                              : w->a + ((size_t)(gi * w->mb + r) * w->kg + k0 / 4) * MR * 4;
            t.corr = w->corr + (size_t)(gi * w->mb + r) * MR;
            if (j->ep) {
                t.scale = j->ep->scale + f;
                t.shift = j->ep->shift ? j->ep->shift + f : NULL;
            }
            for (int pn = 0; pn < ncp / NR; ++pn) {
                const int px = n0 + pn * NR;
                t.b = p->implicit ? quad + 4 * ((size_t)(px / s->out_w) * p->wp + px % s->out_w)
                                  : Bp + (size_t)pn * kc * NR;
                t.nr = imin(NR, nc - pn * NR);
                t.c32 = p->kblocks > 1 ? C32 + (size_t)(r - r0) * MR * ncp + pn * NR : NULL;
                size_t o = ((size_t)b * s->filters + f) * p->n + n0 + pn * NR;
                if (band) t.out32 = band + pn * NR;
                else if (j->out32) t.out32 = j->out32 + o;
                else t.out = j->output + o;
                j->K->tile(&t);
            }
            if (band && t.last) pool_band(j, b, f, t.mr, n0, nc, band, (size_t)ncp);
        }
    }
}

static int depthwise_wanted(const dn_conv_shape *s, const dn_tweights *w, const dn_epilogue *ep)
{
    return w->dw && dn_depthwise_applies(s) && s->size * s->size == w->k && !(ep && ep->pool) &&
           dn_option(DN_OPT_TERNARY_ALGO) != DN_TALGO_PACKED;
}

static void int8_run(const dn_conv_shape *s, const float *input, const int8_t *xs8,
                     const dn_tweights *w, const dn_epilogue *ep, float *output, int32_t *out32,
                     float *act_scale, void *scratch, int nthreads, int simd)
{
    int8_plan p;
    int8_plan_make(s, nthreads, dn_twino_wanted(s) && w->u && w->c == s->c,
                   dn_timplicit_wanted(s) && w->ai && w->c == s->c, ep && ep->pool, &p);
    uint8_t *sc = scratch;
    int8_job j = {s, &p, pick(simd), input, xs8, w, ep, output, out32, sc, NULL, NULL, NULL, NULL};
    if (input) {
        j.sx = (float *)(sc + p.off_sx);
        j.inv = j.sx + s->batch;
        j.pmax = (float *)(sc + p.off_pmax);
        dn_parallel_for(s->batch * s->c, nthreads, absmax_item, &j);
        for (int b = 0; b < s->batch; ++b) {
            float m = 0;
            for (int c = 0; c < s->c; ++c) {
                float a = j.pmax[(size_t)b * s->c + c];
                m = a > m ? a : m;
            }
            j.inv[b] = m < DN_QUANT_MIN_MAX ? 0.f : 127.f / m;
            j.sx[b] = m < DN_QUANT_MIN_MAX ? 0.f : m / 127.f;
            if (act_scale) act_scale[b] = j.sx[b];
        }
    }
    if (depthwise_wanted(s, w, ep)) {
        dn_depthwise_s8(s, j.K, input, j.inv, j.sx, xs8, w->dw, ep, output, out32, sc + p.off_boff, nthreads);
        return;
    }
    dn_parallel_for(s->batch * p.nplanes, nthreads, p.implicit ? quad_item : plane_item, &j);
    /* k-group q's bytes: implicit, tap (ky, kx) and 4-channel plane c4 of
     * q = tap * nplanes + c4; packed, the 64 bytes after q's predecessor */
    j.boff = (int32_t *)(void *)(sc + p.off_boff);
    for (int q = 0; q < (p.implicit ? p.kp / 4 : DN_TKB / 4); ++q) {
        int tap = q / p.nplanes, c4 = q % p.nplanes;
        j.boff[q] = p.implicit ? (int32_t)(c4 * p.plane + 4 * ((size_t)(tap / s->size) * p.wp + tap % s->size)) : 64 * q;
    }
    if (p.wino) {
        dn_twino_run(s, sc, p.hp, p.wp, w, j.sx, ep, output, out32, sc + p.off_shared, nthreads, j.K);
        return;
    }
    if (p.shared) dn_parallel_for(s->batch * s->groups * p.nblk * p.kblocks, nthreads, pack_item, &j);
    dn_parallel_for(s->batch * s->groups * p.nblk * p.mblk, nthreads, int8_item, &j);
}

void dn_tconv_int8(const dn_conv_shape *s, const float *input, const dn_tweights *w,
                   const dn_epilogue *ep, float *output, float *act_scale, void *scratch,
                   int nthreads, int simd)
{
    int8_run(s, input, NULL, w, ep, output, NULL, act_scale, scratch, nthreads, simd);
}

void dn_tconv_s32(const dn_conv_shape *s, const int8_t *x, const dn_tweights *w, int32_t *out,
                  void *scratch, int nthreads, int simd)
{
    int8_run(s, NULL, x, w, NULL, NULL, out, NULL, scratch, nthreads, simd);
}

/* ---- float driver ---- */

typedef struct {
    int n, k, nkb, nc, nblk, hp, wp;
    size_t plane;                 /* floats per padded channel plane */
    size_t planes, per_thread, total; /* floats */
} float_plan;

static void float_plan_make(const dn_conv_shape *s, int nthreads, float_plan *p)
{
    p->n = s->out_h * s->out_w;
    p->k = s->c / s->groups * s->size * s->size;
    p->nkb = ceil_div(p->k, DN_TKCF);
    int jobs = s->batch * s->groups, nblk = ceil_div(p->n, NCF_MAX);
    int want = ceil_div(2 * nthreads, jobs);
    if (nthreads > 1 && nblk < want) nblk = imin(want, ceil_div(p->n, NRF));
    p->nc = round_up(ceil_div(p->n, nblk), NRF);
    p->nblk = ceil_div(p->n, p->nc);
    p->hp = s->h + 2 * s->pad;
    p->wp = s->w + 2 * s->pad;
    p->plane = (size_t)p->hp * p->wp;
    p->planes = s->pad ? align64(sizeof(float) * (size_t)s->batch * s->c * p->plane) / sizeof(float) : 0;
    p->per_thread = align64(sizeof(float) * (size_t)DN_TKCF * p->nc) / sizeof(float);
    p->total = sizeof(float) * (p->planes + (size_t)nthreads * p->per_thread);
}

size_t dn_tconv_float_scratch(const dn_conv_shape *s, int nthreads)
{
    float_plan p;
    float_plan_make(s, nthreads, &p);
    return p.total;
}

typedef struct {
    const dn_conv_shape *s;
    const float_plan *p;
    const dn_tkernels *K;
    const float *input, *planes;
    const dn_tlists *l;
    const dn_epilogue *ep;
    float *output, *scratch;
} float_job;

static void fplane_item(void *ctx, int it, int tid)
{
    (void)tid;
    float_job *j = ctx;
    const dn_conv_shape *s = j->s;
    const float_plan *p = j->p;
    float *dst = j->scratch + (size_t)it * p->plane;
    int pad = s->pad;
    memset(dst, 0, sizeof(float) * (size_t)pad * p->wp);
    memset(dst + (size_t)(pad + s->h) * p->wp, 0, sizeof(float) * (size_t)pad * p->wp);
    for (int y = 0; y < s->h; ++y) {
        float *d = dst + (size_t)(y + pad) * p->wp;
        memset(d, 0, sizeof(float) * (size_t)pad);
        memcpy(d + pad, j->input + ((size_t)it * s->h + y) * s->w, sizeof(float) * (size_t)s->w);
        memset(d + pad + s->w, 0, sizeof(float) * (size_t)pad);
    }
}

static void float_item(void *ctx, int it, int tid)
{
    const float_job *j = ctx;
    const dn_conv_shape *s = j->s;
    const float_plan *p = j->p;
    const dn_tlists *l = j->l;
    const int g = s->groups, ng = s->filters / g, cg = s->c / g;
    const int jb = it % p->nblk, gi = it / p->nblk % g, b = it / p->nblk / g;
    const int n0 = jb * p->nc, nc = imin(p->nc, p->n - n0), ncp = round_up(nc, NRF);
    float *R = j->scratch + p->planes + (size_t)tid * p->per_thread;
    const float *planes = j->planes + ((size_t)b * s->c + (size_t)gi * cg) * p->plane;
    for (int kb = 0; kb < p->nkb; ++kb) {
        int k0 = kb * DN_TKCF, kc = imin(DN_TKCF, p->k - k0);
        rows_f32(planes, s, p->hp, p->wp, k0, kc, p->k, n0, nc, ncp, R);
        j->K->float_block(R, (size_t)ncp, l, gi * ng, (gi + 1) * ng, kb,
                          j->output + (size_t)b * s->filters * p->n + n0, (size_t)p->n, ncp / NRF,
                          nc - (ncp / NRF - 1) * NRF, kb == 0, kb == p->nkb - 1, j->ep->scale,
                          j->ep->shift, j->ep->act);
    }
}

void dn_tconv_float(const dn_conv_shape *s, const float *input, const dn_tlists *l,
                    const dn_epilogue *ep, float *output, void *scratch, int nthreads, int simd)
{
    float_plan p;
    float_plan_make(s, nthreads, &p);
    float_job j = {s, &p, pick(simd), input, input, l, ep, output, scratch};
    if (s->pad) {
        j.planes = j.scratch;
        dn_parallel_for(s->batch * s->c, nthreads, fplane_item, &j);
    }
    dn_parallel_for(s->batch * s->groups * p.nblk, nthreads, float_item, &j);
}

/* ---- plans ---- */

int dn_tconv_int8_plan(dn_tweights *w, const int8_t *codes, const dn_conv_shape *s, int nthreads,
                       size_t *scratch_bytes)
{
    int k = s->c / s->groups * s->size * s->size;
    if (!w->a && !dn_tweights_init(w, codes, s->filters, s->groups, k)) return 0;
    if (!w->u && dn_twino_wanted(s)) dn_tweights_winograd(w, codes, s->c);
    if (!w->ai && dn_timplicit_wanted(s)) dn_tweights_implicit(w, codes, s->c, s->size);
    *scratch_bytes = dn_tconv_int8_scratch(s, nthreads);
    return 1;
}

int dn_tconv_float_plan(dn_tlists *l, const int8_t *codes, const dn_conv_shape *s, int nthreads,
                        size_t *scratch_bytes)
{
    int k = s->c / s->groups * s->size * s->size;
    if (!l->idx && !dn_tlists_init(l, codes, s->filters, s->groups, k)) return 0;
    *scratch_bytes = dn_tconv_float_scratch(s, nthreads);
    return 1;
}
