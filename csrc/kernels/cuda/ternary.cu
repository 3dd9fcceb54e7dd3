/* ternary.cu: the TWN quantiser of kernels/ref/ternary_ref.c on the device,
 * per group of `per` consecutive weights (one group per layer, or one per
 * filter for ternary_scale=filter):
 *   delta = 0.7 * mean|w|;  alpha = mean of |w| over |w| > delta;
 *   t = +alpha where w > delta, -alpha where w < -delta, else 0.
 * Each group is split into B chunks (B blocks); each block sums its chunk in
 * double by a fixed tree, and one thread per group adds the B partial sums in
 * order, so the result does not depend on scheduling. The float delta and
 * alpha are rounded from the double sums as the CPU rounds them; the double
 * sums differ from the CPU's sequential ones only in summation order, far
 * below float resolution, so alpha and the codes come out identical.
 * Scratch (bytes from dn_cuda_ternary_scratch):
 *   double s[groups*B], a[groups*B]; unsigned long long cnt[groups*B];
 *   float delta[groups], alpha[groups]. */
#include "cuda_kernels.h"
#include "common.cuh"

#define CHUNK_MIN (DN_THREADS * 8)
#define MAX_BLOCKS 64

static int blocks_per_group(size_t per)
{
    size_t b = (per + CHUNK_MIN - 1) / CHUNK_MIN;
    return (int)(b < 1 ? 1 : (b > MAX_BLOCKS ? MAX_BLOCKS : b));
}

typedef struct {
    double *s, *a;
    unsigned long long *cnt;
    float *delta, *alpha;
} tscratch;

static tscratch carve(void *scratch, int groups, int nb)
{
    tscratch t;
    size_t m = (size_t)groups * nb;
    t.s = (double *)scratch;
    t.a = t.s + m;
    t.cnt = (unsigned long long *)(t.a + m);
    t.delta = (float *)(t.cnt + m);
    t.alpha = t.delta + groups;
    return t;
}

extern "C" size_t dn_cuda_ternary_scratch(int groups, size_t per)
{
    size_t m = (size_t)groups * blocks_per_group(per);
    return m * (2 * sizeof(double) + sizeof(unsigned long long)) + 2 * sizeof(float) * (size_t)groups;
}

/* Block (g, j) = blockIdx.x = g*nb + j: its chunk of group g. */
__device__ static void chunk(size_t per, int nb, size_t *lo, size_t *hi)
{
    size_t len = (per + nb - 1) / nb, j = blockIdx.x % nb;
    *lo = j * len;
    *hi = *lo + len < per ? *lo + len : per;
}

__global__ void abs_sum_kernel(const float *w, size_t per, int nb, double *s)
{
    __shared__ double sh[DN_THREADS];
    size_t lo, hi;
    chunk(per, nb, &lo, &hi);
    const float *p = w + (size_t)(blockIdx.x / nb) * per;
    double v = 0;
    for (size_t i = lo + threadIdx.x; i < hi; i += DN_THREADS) v += fabs((double)p[i]);
    double t = dn_block_sum(v, sh);
    if (threadIdx.x == 0) s[blockIdx.x] = t;
}

__global__ void delta_kernel(const double *s, int groups, int nb, size_t per, float *delta)
{
    int g = blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= groups) return;
    double sum = 0;
    for (int j = 0; j < nb; ++j) sum += s[(size_t)g * nb + j];
    delta[g] = (float)(0.7 * sum / (double)per);
}

__global__ void above_sum_kernel(const float *w, size_t per, int nb, const float *delta, double *a,
                                 unsigned long long *cnt)
{
    __shared__ double sh[DN_THREADS];
    size_t lo, hi;
    chunk(per, nb, &lo, &hi);
    int g = blockIdx.x / nb;
    const float *p = w + (size_t)g * per;
    float d = delta[g];
    double v = 0, c = 0;
    for (size_t i = lo + threadIdx.x; i < hi; i += DN_THREADS)
        if (fabsf(p[i]) > d) { v += fabs((double)p[i]); c += 1; }
    double tv = dn_block_sum(v, sh), tc = dn_block_sum(c, sh);
    if (threadIdx.x == 0) {
        a[blockIdx.x] = tv;
        cnt[blockIdx.x] = (unsigned long long)tc;
    }
}

__global__ void alpha_kernel(const double *a, const unsigned long long *cnt, int groups, int nb, float *alpha,
                             float *alphas)
{
    int g = blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= groups) return;
    double sa = 0;
    unsigned long long na = 0;
    for (int j = 0; j < nb; ++j) {
        sa += a[(size_t)g * nb + j];
        na += cnt[(size_t)g * nb + j];
    }
    float al = na ? (float)(sa / (double)na) : 0.f;
    alpha[g] = al;
    if (alphas) alphas[g] = al;
}

__global__ void ternary_write_kernel(const float *w, size_t n, size_t per, const float *delta, const float *alpha,
                                     float *t)
{
    DN_GRID_LOOP(i, n) {
        size_t g = i / per;
        float d = delta[g], al = alpha[g], v = w[i];
        t[i] = v > d ? al : (v < -d ? -al : 0.f);
    }
}

extern "C" void dn_cuda_ternarize_groups(const float *w, int groups, size_t per, float *t, float *alphas,
                                         void *scratch)
{
    if (groups <= 0 || !per) return;
    int nb = blocks_per_group(per);
    tscratch sc = carve(scratch, groups, nb);
    unsigned gb = (unsigned)((groups + 127) / 128);
    DN_LAUNCH(abs_sum_kernel, groups * nb, DN_THREADS, w, per, nb, sc.s);
    DN_LAUNCH(delta_kernel, gb, 128, sc.s, groups, nb, per, sc.delta);
    DN_LAUNCH(above_sum_kernel, groups * nb, DN_THREADS, w, per, nb, sc.delta, sc.a, sc.cnt);
    DN_LAUNCH(alpha_kernel, gb, 128, sc.a, sc.cnt, groups, nb, sc.alpha, alphas);
    size_t n = (size_t)groups * per;
    DN_LAUNCH(ternary_write_kernel, dn_blocks(n), DN_THREADS, w, n, per, sc.delta, sc.alpha, t);
}
