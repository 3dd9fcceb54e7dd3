/* gemm.c: dn_gemm through cblas_sgemm (DN_USE_BLAS) or a cache-blocked C
 * fallback, parallel over rows on the thread pool; also the thread-count setter
 * (OpenMP, the BLAS and the kernels' pool of parallel.h). */
#include "gemm.h"
#include "parallel.h"
#include "threads.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef DN_USE_BLAS
#include <cblas.h>
#endif

void dn_threads_apply(int n)
{
    if (n <= 0) return;
    dn_parallel_set_threads(n);
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
#ifdef DN_USE_BLAS
    openblas_set_num_threads(n);
#endif
}

void dn_gemm_blas_threads(int n)
{
#ifdef DN_USE_BLAS
    if (n > 0) openblas_set_num_threads(n);
#else
    (void)n;
#endif
}

#ifdef DN_USE_BLAS
void dn_gemm(int ta, int tb, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb,
             float beta, float *C, int ldc)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
#else
#define KB 256
#define NB 512
typedef struct {
    int ta, tb, N, K;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int lda, ldb, ldc;
} gemm_args;

/* Row i of C. */
static void gemm_row(void *ctx, int i, int tid)
{
    (void)tid;
    const gemm_args *g = ctx;
    int N = g->N, K = g->K;
    float *c = g->C + (size_t)i * g->ldc;
    if (g->beta == 0) memset(c, 0, sizeof(float) * (size_t)N);
    else if (g->beta != 1) for (int j = 0; j < N; ++j) c[j] *= g->beta;
    for (int j0 = 0; j0 < N; j0 += NB) {
        int j1 = j0 + NB < N ? j0 + NB : N;
        for (int k0 = 0; k0 < K; k0 += KB) {
            int k1 = k0 + KB < K ? k0 + KB : K;
            for (int k = k0; k < k1; ++k) {
                float a = g->alpha * (g->ta ? g->A[(size_t)k * g->lda + i] : g->A[(size_t)i * g->lda + k]);
                if (a == 0) continue;
                if (!g->tb) {
                    const float *b = g->B + (size_t)k * g->ldb;
                    for (int j = j0; j < j1; ++j) c[j] += a * b[j];
                } else {
                    for (int j = j0; j < j1; ++j) c[j] += a * g->B[(size_t)j * g->ldb + k];
                }
            }
        }
    }
}

void dn_gemm(int ta, int tb, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb,
             float beta, float *C, int ldc)
{
    gemm_args g = {ta, tb, N, K, alpha, beta, A, B, C, lda, ldb, ldc};
    dn_parallel_for(M, dn_parallel_threads(), gemm_row, &g);
}
#endif
