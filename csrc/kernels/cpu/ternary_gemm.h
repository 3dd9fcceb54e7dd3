/* ternary_gemm.h: convolution kernels for ternary layers (inference).
 *
 * Two kernels, both lowering the convolution to a GEMM over implicit im2col
 * blocks (any size, stride, pad, groups), both ending in the fused
 * per-filter epilogue of conv_fast.h (BN folded into scale and shift, then
 * the activation):
 *
 *  int8   activations are quantised per image (dn_quantize_s8_ref: scale =
 *         max|x|/127 over the whole image, all channels), weights are
 *         ternary codes {-1, 0, +1}; products are summed in int32 (exact),
 *         then y = act(acc * (act_scale * scale[f]) + shift[f]) where the
 *         caller's scale[f] is alpha_f times the folded BN scale. No float
 *         weight is ever multiplied. The integers are those of
 *         dn_tconv_ref (kernels/ref/ternary_gemm_ref.c) on every path.
 *  float  float activations; per filter, the inputs at +1 taps are added
 *         and those at -1 taps subtracted (zeros skipped), then
 *         y = act(sum * scale[f] + shift[f]) with scale[f] = alpha_f * BN
 *         scale: the float GEMM with the TWN weights alpha*code, up to the
 *         order of the float additions and where alpha is applied.
 *
 * int8 GEMM: C[f][n] = sum_k code[f][k] * x[k][n] is computed as
 * sum_k code * (x + 128) - 128 * rowsum[f], so that the activation operand
 * is unsigned (u = x + 128 in [0, 255]) as _mm256_maddubs_epi16 wants it;
 * padding taps hold u = 128 (x = 0). maddubs forms u0*c0 + u1*c1 per int16
 * lane: |.| <= 2*255 = 510, never saturating for ternary codes; up to 64
 * such steps (DN_TKC = 256 k) are added in int16 (64*510 = 32640 < 32767),
 * then widened to int32 with _mm256_madd_epi16(., 1).
 *
 * Paths: _generic (portable C, any CPU), AVX2 (ternary_gemm_avx2.c) and
 * AVX-512 VNNI (ternary_gemm_vnni.c: the int8 tile on vpdpbusd, the other
 * primitives AVX2's), each compiled for its target whatever the build
 * flags and picked at run time: the best one the CPU has
 * (__builtin_cpu_supports), at most the caller's simd level;
 * dn_ternary_simd() is also capped by the setting simd (core/settings.c),
 * as the float kernels are. All give the same integers and, as the
 * epilogue does the same float operations in the same order (no FMA), the
 * same floats.
 *
 * Kernels never allocate: callers size scratch (bytes) with the _scratch
 * functions. Weights are packed once per layer (dn_tweights_init /
 * dn_tlists_init allocate; _free releases). Tensors NCHW.
 */
#ifndef DN_TERNARY_GEMM_H
#define DN_TERNARY_GEMM_H

#include "conv_fast.h"

#include <stddef.h>
#include <stdint.h>

#define DN_TMR 6    /* filters per int8 micro-tile (broadcast side) */
#define DN_TNR 16   /* pixels per int8 micro-tile: two vectors of 8 pixels x 4 k bytes */
#define DN_TKC 256  /* k per int16 accumulation block (64 groups of 4) */
#define DN_TKB 1024 /* k per packed block (a micro-tile call): 4 int16 blocks */
#define DN_TWFB 16  /* filters per block of the Winograd GEMM (its lanes) */

/* Ternary codes packed for the int8 micro-kernel. For group g, row block r
 * (filters g*ng + r*MR ... + MR-1) and k-group q (k = 4q ... 4q+3) one
 * 32-bit word per filter, the word the micro-kernel broadcasts:
 *
 *   a[(((g*mb + r)*kg + q)*MR + i)*4 + j] = code[g*ng + r*MR + i][4q + j]
 *
 *       byte:  0    1    2    3    4    5    6    7   ...  20   21   22   23
 *            +----+----+----+----+----+----+----+----+   +----+----+----+----+
 *   q:       |f0k0|f0k1|f0k2|f0k3|f1k0|f1k1|f1k2|f1k3|...|f5k0|f5k1|f5k2|f5k3|
 *            +----+----+----+----+----+----+----+----+   +----+----+----+----+
 *   q+1:     |f0k4|f0k5| ...
 *
 * int8 per code (8 bits per weight, rows past ng and k past K are 0).
 * corr[g*mb*MR + r*MR + i] = 128 * (sum of that filter's codes). */
typedef struct {
    int filters, groups, k;   /* k: taps per filter, (c/groups)*size*size */
    int kg, mb;               /* k-groups of 4 (ceil(k/4)), row blocks per group */
    int8_t *a;                /* groups*mb*kg*MR*4 bytes, owned */
    int32_t *corr;            /* groups*mb*MR, owned */
    int c;                    /* input channels of u and ai */
    int8_t *u;                /* Winograd filters (ternary_winograd.c) or NULL, owned */
    int kgi;                  /* implicit GEMM: k-groups, size^2 * ceil(c/4) */
    int8_t *ai;               /* implicit GEMM codes (as a, k-group order below) or NULL, owned */
    int8_t *dw;               /* depthwise layers (groups = filters, k <= 64): the codes [filters][k]
                                 for depthwise.h's int8 kernel, else NULL; owned */
} dn_tweights;

/* codes: [filters][k] in {-1, 0, +1}. Returns 0 when out of memory (w zeroed). */
int dn_tweights_init(dn_tweights *w, const int8_t *codes, int filters, int groups, int k);
void dn_tweights_free(dn_tweights *w);
/* Adds the integer Winograd filters (36 bytes per filter and channel) of 3x3
 * groups-1 codes [filters][c][3][3] (a no-op for other shapes). Returns 0
 * when out of memory (u stays NULL). */
int dn_tweights_winograd(dn_tweights *w, const int8_t *codes, int c);

/* Implicit GEMM (the int8 direct kernel without im2col): for stride-1
 * groups-1 layers whose 16-pixel panels stay inside output rows (pad 0 and
 * size 1, or out_w a multiple of 16), the activations are quantised into
 * planes of 4 channels interleaved, [batch][ceil(c/4)][hp][wp][4] bytes, so
 * that a panel's 16 pixels x 4 channels at one tap are 64 contiguous bytes:
 * the micro-kernel reads them from the planes. Its codes ai have the a
 * layout with k-group q = tap * ceil(c/4) + c4, byte j = channel 4*c4 + j
 * (0 past c), tap = ky*size + kx. dn_tweights_implicit adds them for
 * groups-1 codes [filters][c][size][size] (a no-op for groups > 1); 0 when
 * out of memory (ai stays NULL). dn_timplicit_wanted: the shape allows it
 * and it does fewer k-groups than about 1.15x the packed GEMM's (not for 3
 * channels: 9 instead of 7); DN_TERNARY_ALGO=packed (read at each call)
 * turns it off. */
int dn_tweights_implicit(dn_tweights *w, const int8_t *codes, int c, int size);
int dn_timplicit_wanted(const dn_conv_shape *s);

/* Nonzero taps per filter for the float kernel, in blocks of DN_TKCF taps,
 * block-major (a block's lists of all filters are contiguous): for block kb
 * and filter f, i = kb*filters + f, idx[start[i] .. start[i+1]) holds first
 * the taps with code +1 (npos[i] of them), then those with -1, as
 * k - kb*DN_TKCF. */
#define DN_TKCF 32   /* taps per block of the float kernel */
#define DN_TNRF 64   /* pixels per float micro-tile (8 vectors of 8) */
typedef struct {
    int filters, groups, k, nkb;
    int32_t *start, *npos;    /* [nkb*filters + 1], [nkb*filters], owned */
    uint16_t *idx;            /* owned */
} dn_tlists;

int dn_tlists_init(dn_tlists *l, const int8_t *codes, int filters, int groups, int k);
void dn_tlists_free(dn_tlists *l);


/* SIMD levels of the kernels' simd argument: each includes the ones below;
 * a level the CPU lacks falls back to the best one below it. */
enum { DN_TSIMD_NONE = 0, DN_TSIMD_AVX2 = 1, DN_TSIMD_VNNI = 2 };
/* The best level compiled in and supported by this CPU. */
int dn_ternary_simd_available(void);
/* dn_ternary_simd_available(), lowered to DN_TERNARY_SIMD when that is a
 * smaller digit (read at each call: "0" portable C, "1" AVX2). */
int dn_ternary_simd(void);

/* Integer Winograd F(4x4,3x3) (ternary_winograd.c): exactly the integers
 * of the direct int8 kernel, for 3x3 stride-1 groups-1 layers of at most
 * DN_TWINO_MAX_C channels (so that 576 * 128 * 9 * c < 2^31). The int8
 * driver uses it when dn_twino_wanted says it pays (the shape and rule
 * only) and the weights have u for these channels; DN_TERNARY_ALGO=
 * direct|winograd (read at each call) forces one for tests and benchmarks
 * (winograd only where it applies). */
#define DN_TWINO_MAX_C 3200
int dn_twino_wanted(const dn_conv_shape *s);

/* int8 kernel. Depthwise shapes (channels = groups = filters) run
 * depthwise.h's int8 kernel (the same integers and floats), except pooled
 * or with the setting ternary_algo=packed. input float NCHW, output float NCHW; ep->scale must be set
 * (alpha * BN scale per filter), ep->shift may be NULL; ep->act is applied
 * when dn_epilogue_fuses(act), else the caller activates afterwards.
 * act_scale (may be NULL) receives each image's activation scale.
 * scratch: dn_tconv_int8_scratch(s, nthreads) bytes, 64-byte aligned. */
size_t dn_tconv_int8_scratch(const dn_conv_shape *s, int nthreads);
void dn_tconv_int8(const dn_conv_shape *s, const float *input, const dn_tweights *w,
                   const dn_epilogue *ep, float *output, float *act_scale, void *scratch,
                   int nthreads, int simd);
/* The same integer machinery on int8 input, int32 output (no quantisation,
 * no epilogue): out = sum code * x, as dn_tconv_ref. Scratch as above. */
void dn_tconv_s32(const dn_conv_shape *s, const int8_t *x, const dn_tweights *w, int32_t *out,
                  void *scratch, int nthreads, int simd);

/* Plan once per layer and shape, then run: the weights the kernel needs
 * for shape s (the int8 panels, and the Winograd or implicit-GEMM variants
 * where they are wanted; the float kernel's tap lists), made from codes
 * [filters][c/groups*size*size] unless w (l) already has them, and the
 * scratch bytes a run at this shape and thread count needs. 0 when out of
 * memory (a Winograd or implicit variant that cannot be allocated is left
 * out: the direct path runs, with the same results). */
int dn_tconv_int8_plan(dn_tweights *w, const int8_t *codes, const dn_conv_shape *s, int nthreads,
                       size_t *scratch_bytes);
int dn_tconv_float_plan(dn_tlists *l, const int8_t *codes, const dn_conv_shape *s, int nthreads,
                        size_t *scratch_bytes);

/* Float kernel (add/subtract). scratch: dn_tconv_float_scratch bytes. */
size_t dn_tconv_float_scratch(const dn_conv_shape *s, int nthreads);
void dn_tconv_float(const dn_conv_shape *s, const float *input, const dn_tlists *l,
                    const dn_epilogue *ep, float *output, void *scratch, int nthreads, int simd);

/* ---- per-path primitives (ternary_gemm.c: generic, ternary_gemm_avx2.c) ---- */

/* One int8 micro-tile over kgc (<= DN_TKB/4) k-groups, summed in int16
 * over runs of at most DN_TKC/4 k-groups, in int32 across them: a = MR x 4 bytes per
 * k-group (dn_tweights layout), b + boff[q] = 16 pixels x 4 bytes of
 * k-group q (u = x + 128). Not last: the int32 sums are stored (first) or added to
 * c32 [MR][ldc32] (at least rows < mr). Last: acc (+ c32 unless first) - corr[i] is stored
 * as int32 into out32, or as float y = act(v * (sx * scale[i]) + shift[i])
 * into out; rows < mr, columns < nr, row stride ldo. */
typedef struct {
    int kgc, mr, nr, first, last;
    const int8_t *a;
    const uint8_t *b;
    const int32_t *boff;      /* k-group q's 64 bytes at b + boff[q] */
    int32_t *c32;
    size_t ldc32;
    const int32_t *corr;
    float *out;
    int32_t *out32;
    size_t ldo;
    float sx;
    const float *scale, *shift;
    dn_activation act;
} dn_ttile;

typedef struct {
    void (*tile)(const dn_ttile *t);
    /* 4 rows of r (stride ldr, ncp bytes each, ncp a multiple of 16) ->
     * for each 16-pixel panel p, 16 pixels x 4 bytes at dst + p*pstride. */
    void (*interleave)(const uint8_t *r, size_t ldr, int ncp, uint8_t *dst, size_t pstride);
    /* max|x[i]| over n floats (NaN ignored). */
    float (*absmax)(const float *x, size_t n);
    /* dst[i] = clamp(rint(x[i]*inv)) + 128 as in dn_quantize_s8_ref. */
    void (*quantize)(const float *x, size_t n, float inv, uint8_t *dst);
    /* Float kernel, filters [f0, f1) of l over tap block kb and npan
     * panels of DN_TNRF pixels: row r of the block at rows + r*ldr
     * (DN_TNRF*npan readable floats). Per filter f and panel p:
     * acc[DN_TNRF] (0 when first, else read from out) += the rows of its +1
     * taps, -= those of its -1 taps (in list order); then out + f*ldo +
     * DN_TNRF*p [0, nx) = acc (not last) or act(acc*scale[f] + shift[f])
     * (shift NULL: 0); nx = DN_TNRF but nx_last in the last panel. */
    /* Winograd-domain GEMM (ternary_winograd.c layouts), the DN_TWFB
     * filters of a block in the lanes: for nt (4, 8, 12 or 16) tiles t,
     * m[t*DN_TWFB + f] = sum over kq channel pairs q and u = 0, 1 of
     * w[(q*DN_TWFB + f)*2 + u] * v[(q*ldv + t)*2 + u], int8 x int16
     * products summed in int32 modulo 2^32. */
    void (*wgemm)(int kq, int nt, const int8_t *w, const int16_t *v, size_t ldv, int32_t *m);
    void (*float_block)(const float *rows, size_t ldr, const dn_tlists *l, int f0, int f1, int kb,
                        float *out, size_t ldo, int npan, int nx_last, int first, int last,
                        const float *scale, const float *shift, dn_activation act);
} dn_tkernels;

extern const dn_tkernels dn_tkernels_generic;
/* The fused activations of the epilogue, as every path computes them. */
static inline float dn_tact1(float v, dn_activation act)
{
    switch (act) {
    case DN_ACT_LEAKY: return v > 0 ? v : .1f * v;
    case DN_ACT_RELU: return v > 0 ? v : 0;
    case DN_ACT_RELIE: return v > 0 ? v : .01f * v;
    default: return v;
    }
}
/* The SIMD primitives of the given level (AVX2; VNNI: the AVX2 ones with
 * the AVX-512 VNNI tile), or the best level below it that the CPU has;
 * NULL when not even AVX2 is there (__builtin_cpu_supports). */
const dn_tkernels *dn_tkernels_simd(int level);
/* ternary_gemm_vnni.c: the VNNI tile (x86 builds only) and whether the CPU
 * can run it (AVX2 and avx512f/bw/vl/vnni). */
void dn_ttile_vnni(const dn_ttile *t);
void dn_twgemm_vnni(int kq, int nt, const int8_t *w, const int16_t *v, size_t ldv, int32_t *m);
int dn_vnni_available(void);

/* Internal to the int8 driver: the Winograd path over its activation planes
 * (u = q + 128, [batch*c][hp][wp], 128 outside the image) of at least
 * dn_twino_plane_dims; sx[b] per image (NULL: 1); ep NULL with out32. */
void dn_twino_plane_dims(const dn_conv_shape *s, int *hp, int *wp);
size_t dn_twino_scratch(const dn_conv_shape *s, int nthreads);
void dn_twino_run(const dn_conv_shape *s, const uint8_t *planes, int hp, int wp, const dn_tweights *w,
                  const float *sx, const dn_epilogue *ep, float *out, int32_t *out32, void *scratch,
                  int nthreads, const dn_tkernels *K);

/* Internal to the int8 driver: depthwise shapes (depthwise.c). Each
 * plane's activations quantised as dn_quantize_s8_ref with the image's
 * inv[b] (by K->quantize; input) or given as int8 (xs8, input NULL), codes
 * [channels][size][size] in {-1, 0, +1}, exact integer sums; then out32 =
 * the sums (out32 not NULL) or output = act(sum * (sx[b] * ep->scale[c]) +
 * ep->shift[c]) (ep->pool 0): the int8 GEMM's integers and floats.
 * scratch: dn_depthwise_s8_scratch(s, nthreads) bytes, 64-byte aligned. */
size_t dn_depthwise_s8_scratch(const dn_conv_shape *s, int nthreads);
void dn_depthwise_s8(const dn_conv_shape *s, const dn_tkernels *K, const float *input, const float *inv,
                     const float *sx, const int8_t *xs8, const int8_t *codes, const dn_epilogue *ep, float *output,
                     int32_t *out32, void *scratch, int nthreads);

#endif
