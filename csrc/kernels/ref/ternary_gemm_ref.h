/* ternary_gemm_ref.h: the specification of the ternary inference kernels
 * (ternary_gemm_ref.c). The fast kernels of kernels/cpu/ternary_gemm*.c
 * must give exactly these integers; the tests compare them. */
#ifndef DN_TERNARY_GEMM_REF_H
#define DN_TERNARY_GEMM_REF_H

#include <stddef.h>
#include <stdint.h>

/* Below this max|x| an input counts as all zeros (scale 0, codes 0):
 * 127/max would overflow to inf for subnormal max. */
#define DN_QUANT_MIN_MAX 1e-30f

/* Symmetric int8 quantisation of x[n] (one image): m = max|x|, inv =
 * 127/m (0 when m < DN_QUANT_MIN_MAX), v = x*inv clamped to [-127, 127]
 * (min then max, so NaN gives 127), q = round half to even (lrintf in the
 * default rounding mode). Returns the dequantisation scale m/127. */
float dn_quantize_s8_ref(const float *x, size_t n, int8_t *q);

/* C[M][N] = A[M][K] B[K][N] in exact int32 arithmetic. A: ternary codes in
 * {-1, 0, +1}; B: int8. */
void dn_tgemm_ref(int M, int N, int K, const int8_t *A, const int8_t *B, int32_t *C);

/* Integer convolution, zero padding: x int8 [batch][c][h][w], codes int8
 * [filters][c/groups][size][size] in {-1, 0, +1}, out int32
 * [batch][filters][out_h][out_w] with out_h = (h + 2 pad - size)/stride + 1
 * (out_w alike). Written as im2col + dn_tgemm_ref; allocates the column
 * matrix, returns 0 when out of memory. */
int dn_tconv_ref(int batch, int c, int h, int w, int filters, int size, int stride, int pad,
                 int groups, const int8_t *x, const int8_t *codes, int32_t *out);

#endif
