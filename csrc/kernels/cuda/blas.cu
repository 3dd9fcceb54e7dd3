/* blas.cu: GEMM (cuBLAS when built with DN_USE_CUBLAS, else a tiled
 * shared-memory kernel) and the elementwise vector kernels the layers and
 * the optimiser share. GEMM takes row-major operands like kernels/cpu/gemm.h;
 * cuBLAS is column-major, so C = op(A) op(B) is computed as
 * C^T = op(B)^T op(A)^T. */
#include "cuda_kernels.h"
#include "common.cuh"

#ifdef DN_USE_CUBLAS
#include <cublas_v2.h>
#endif

#define TM 64
#define TN 64
#define TK 16

/* Each block computes a 64x64 tile of C; thread (ty, tx) of 16x16 owns the
 * cells (ty + 16r, tx + 16c), r, c < 4, so stores are coalesced. */
__global__ void gemm_tiled(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                           const float *b, int ldb, float beta, float *c, int ldc)
{
    __shared__ float as[TK][TM + 1];
    __shared__ float bs[TK][TN + 1];
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    int row0 = blockIdx.y * TM, col0 = blockIdx.x * TN;
    float acc[4][4] = {{0}};
    for (int p0 = 0; p0 < k; p0 += TK) {
        for (int e = threadIdx.x; e < TM * TK; e += 256) {
            int i = ta ? e % TM : e / TK, p = ta ? e / TM : e % TK;
            int gi = row0 + i, gp = p0 + p;
            float v = 0.f;
            if (gi < m && gp < k) v = ta ? a[(size_t)gp * lda + gi] : a[(size_t)gi * lda + gp];
            as[p][i] = v;
        }
        for (int e = threadIdx.x; e < TN * TK; e += 256) {
            int j = tb ? e / TK : e % TN, p = tb ? e % TK : e / TN;
            int gj = col0 + j, gp = p0 + p;
            float v = 0.f;
            if (gj < n && gp < k) v = tb ? b[(size_t)gj * ldb + gp] : b[(size_t)gp * ldb + gj];
            bs[p][j] = v;
        }
        __syncthreads();
#pragma unroll
        for (int p = 0; p < TK; ++p) {
            float ar[4], br[4];
#pragma unroll
            for (int r = 0; r < 4; ++r) ar[r] = as[p][ty + 16 * r];
#pragma unroll
            for (int q = 0; q < 4; ++q) br[q] = bs[p][tx + 16 * q];
#pragma unroll
            for (int r = 0; r < 4; ++r)
#pragma unroll
                for (int q = 0; q < 4; ++q) acc[r][q] += ar[r] * br[q];
        }
        __syncthreads();
    }
    for (int r = 0; r < 4; ++r)
        for (int q = 0; q < 4; ++q) {
            int i = row0 + ty + 16 * r, j = col0 + tx + 16 * q;
            if (i >= m || j >= n) continue;
            float *cc = c + (size_t)i * ldc + j;
            *cc = alpha * acc[r][q] + (beta != 0.f ? beta * *cc : 0.f);
        }
}

extern "C" void *dn_cuda_blas_create(void)
{
#ifdef DN_USE_CUBLAS
    cublasHandle_t h;
    return cublasCreate(&h) == CUBLAS_STATUS_SUCCESS ? (void *)h : NULL;
#else
    static int dummy;
    return &dummy;
#endif
}

extern "C" void dn_cuda_blas_destroy(void *blas)
{
#ifdef DN_USE_CUBLAS
    if (blas) cublasDestroy((cublasHandle_t)blas);
#else
    (void)blas;
#endif
}

extern "C" int dn_cuda_blas_is_cublas(void)
{
#ifdef DN_USE_CUBLAS
    return 1;
#else
    return 0;
#endif
}

extern "C" void dn_cuda_gemm(void *blas, int ta, int tb, int m, int n, int k, float alpha,
                             const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0) return;
#ifdef DN_USE_CUBLAS
    cublasSgemm((cublasHandle_t)blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k,
                &alpha, b, ldb, a, lda, &beta, c, ldc);
#else
    (void)blas;
    dim3 grid((n + TN - 1) / TN, (m + TM - 1) / TM);
    DN_LAUNCH(gemm_tiled, grid, 256, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}

__global__ void fill_kernel(float *x, size_t n, float v)
{
    DN_GRID_LOOP(i, n) x[i] = v;
}

extern "C" void dn_cuda_fill(float *x, size_t n, float v)
{
    if (n) DN_LAUNCH(fill_kernel, dn_blocks(n), DN_THREADS, x, n, v);
}

__global__ void axpy_kernel(size_t n, float a, const float *x, float *y)
{
    DN_GRID_LOOP(i, n) y[i] += a * x[i];
}

extern "C" void dn_cuda_axpy(size_t n, float a, const float *x, float *y)
{
    if (n) DN_LAUNCH(axpy_kernel, dn_blocks(n), DN_THREADS, n, a, x, y);
}

__global__ void copy_rows_kernel(int batch, size_t part, const float *src, size_t ss, float *dst, size_t ds,
                                 int add)
{
    size_t n = (size_t)batch * part;
    DN_GRID_LOOP(i, n) {
        size_t b = i / part, k = i % part;
        float v = src[b * ss + k];
        float *d = dst + b * ds + k;
        *d = add ? *d + v : v;
    }
}

extern "C" void dn_cuda_copy_rows(int batch, size_t part, const float *src, size_t src_stride,
                                  float *dst, size_t dst_stride, int add)
{
    size_t n = (size_t)batch * part;
    if (n) DN_LAUNCH(copy_rows_kernel, dn_blocks(n), DN_THREADS, batch, part, src, src_stride, dst, dst_stride, add);
}

__global__ void sgd_kernel(float *w, float *g, float *u, size_t n, float rate, float decay, float momentum)
{
    DN_GRID_LOOP(i, n) {
        float v = u[i] - (g[i] + decay * w[i]);
        w[i] += rate * v;
        u[i] = v * momentum;
        g[i] = 0.f;
    }
}

extern "C" void dn_cuda_sgd(float *w, float *g, float *u, size_t n, float rate, float decay, float momentum)
{
    if (n) DN_LAUNCH(sgd_kernel, dn_blocks(n), DN_THREADS, w, g, u, n, rate, decay, momentum);
}
