/* gemm.h: float GEMM, C[M][N] = alpha * op(A) op(B) + beta * C, row major.
 * A is M x K (K x M when ta), B is K x N (N x K when tb); lda/ldb/ldc are
 * row strides. Uses the BLAS (cblas_sgemm) when built with it, else a
 * blocked C kernel; dn_gemm_ref is the naive specification. */
#ifndef DN_GEMM_H
#define DN_GEMM_H

void dn_gemm(int ta, int tb, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb,
             float beta, float *C, int ldc);
/* Threads of the BLAS alone (not the pool): 1 while dn_gemm is called from
 * inside pool items, restored afterwards. No-op without the BLAS. */
void dn_gemm_blas_threads(int n);
void dn_gemm_ref(int ta, int tb, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc);
#endif
