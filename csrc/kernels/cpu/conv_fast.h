/* conv_fast.h: fast CPU forward kernels for convolution (inference).
 *
 * A register-blocked SGEMM core: a 6x16 micro-kernel (AVX2/FMA when the
 * compiler targets it, a generic C version otherwise) over packed panels,
 * with a fused per-row epilogue y = act(x * scale[m] + shift[m]). Threading
 * is OpenMP only (no BLAS threads), so both cores stay in one thread pool.
 * On top of it: the im2col/1x1 convolution driver (any size, stride, pad,
 * groups), which packs im2col panels on the fly instead of materialising
 * the whole column matrix. Winograd F(4x4,3x3) (winograd.h) uses the same
 * core. Kernels never allocate: callers size scratch with the _scratch
 * functions and own it.
 *
 * Conventions: tensors NCHW float32; weights [filters][c/groups][size][size].
 */
#ifndef DN_CONV_FAST_H
#define DN_CONV_FAST_H

#include "../../core/activations.h"

#include <stddef.h>
#include <stdint.h>

#define DN_GEMM_MR 6   /* rows of C per micro-kernel (broadcast side, filters) */
#define DN_GEMM_NR 16  /* columns of C per micro-kernel (vector side, pixels/tiles) */

/* Per output row (filter) m: y = act(x * scale[m] + shift[m]). scale or
 * shift NULL: 1 or 0. The activation is applied in the kernels when
 * dn_epilogue_fuses(act); otherwise the caller runs dn_activate afterwards.
 * accumulate (the convolution drivers only; scale and shift NULL, act
 * linear): y = old output + x. pool (the int8 ternary kernel only, with a
 * fused act): 2 writes the 2x2 stride-2 max pool of y instead of y
 * (kernels/cpu/pool.h; out_h and out_w even), 0 writes y. */
typedef struct {
    const float *scale;
    const float *shift;
    dn_activation act;
    int accumulate;
    int pool;
} dn_epilogue;

int dn_epilogue_fuses(dn_activation act);

/* Shape of one convolution: input batch x c x h x w, output
 * batch x filters x out_h x out_w. */
typedef struct {
    int batch, c, h, w;
    int filters, size, stride, pad, groups;
    int out_h, out_w;
} dn_conv_shape;

/* One block of C[mc][nc] (+)= A[mc][kc] B[kc][nc], then the epilogue when ep
 * is not NULL (its arrays indexed from this block's first row).
 * A(m,k) = a[(m/MR)*a_ps + (m%MR)*a_rs + k*a_ks]: row-major A with leading
 *   dimension lda is a_ps = MR*lda, a_rs = lda, a_ks = 1; MR-row packed
 *   panels [M/MR][K][MR] are a_ps = MR*K, a_rs = 1, a_ks = MR.
 * B(k,n) = b[(n/NR)*b_ps + k*NR + n%NR]: NR-column panels, columns past nc
 *   inside the last panel must be readable (zeros).
 * C(m,n) = c[m*ldc + n]; accumulate: C += instead of C =. Rows past mc of A
 * are never read. */
void dn_gemm_block(int mc, int nc, int kc,
                   const float *a, size_t a_ps, size_t a_rs, size_t a_ks,
                   const float *b, size_t b_ps,
                   float *c, size_t ldc, int accumulate, const dn_epilogue *ep);

/* Convolution by implicit im2col + dn_gemm_block with the epilogue fused.
 * weights [filters][c/groups][size][size]; output as in dn_conv_shape.
 * scratch: dn_conv_fast_gemm_scratch(s, nthreads) floats. */
size_t dn_conv_fast_gemm_scratch(const dn_conv_shape *s, int nthreads);
void dn_conv_fast_gemm(const dn_conv_shape *s, const float *input, const float *weights,
                       const dn_epilogue *ep, float *output, float *scratch, int nthreads);

/* Direct convolution for stride 1, groups 1 (any size and pad), meant for
 * few input channels (the first layer: c = 3), where im2col packing costs
 * more than the arithmetic: 4 filters x 24 pixels per register block over
 * a zero-padded copy of the input.
 * scratch: dn_conv_direct_scratch(s) floats. */
size_t dn_conv_direct_scratch(const dn_conv_shape *s);
void dn_conv_direct(const dn_conv_shape *s, const float *input, const float *weights,
                    const dn_epilogue *ep, float *output, float *scratch, int nthreads);

#endif
