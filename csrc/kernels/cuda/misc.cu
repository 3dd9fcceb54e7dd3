/* misc.cu: [softmax] (one block per row: max, sum of exponentials in
 * double, normalise; backward the Jacobian-vector product) and [dropout]
 * (the mask drawn from a counter-based hash of a per-forward seed, so no
 * generator state lives on the device). */
#include "cuda_kernels.h"
#include "common.cuh"

#include <float.h>

__global__ void softmax_kernel(const float *in, int n, float t, float *out)
{
    __shared__ double sh[DN_THREADS];
    __shared__ float mx[DN_THREADS];
    const float *x = in + (size_t)blockIdx.x * n;
    float *y = out + (size_t)blockIdx.x * n;
    float m = -FLT_MAX;
    for (int i = threadIdx.x; i < n; i += DN_THREADS) m = fmaxf(m, x[i]);
    mx[threadIdx.x] = m;
    __syncthreads();
    for (unsigned s = DN_THREADS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) mx[threadIdx.x] = fmaxf(mx[threadIdx.x], mx[threadIdx.x + s]);
        __syncthreads();
    }
    float largest = mx[0];
    double s = 0;
    for (int i = threadIdx.x; i < n; i += DN_THREADS) {
        float e = expf(x[i] / t - largest / t);
        y[i] = e;
        s += e;
    }
    float sum = (float)dn_block_sum(s, sh);
    for (int i = threadIdx.x; i < n; i += DN_THREADS) y[i] /= sum;
}

__global__ void softmax_backward_kernel(const float *yy, const float *dd, int n, float t, float *id)
{
    __shared__ double sh[DN_THREADS];
    size_t off = (size_t)blockIdx.x * n;
    const float *y = yy + off, *d = dd + off;
    double s = 0;
    for (int i = threadIdx.x; i < n; i += DN_THREADS) s += (double)d[i] * y[i];
    float dot = (float)dn_block_sum(s, sh);
    for (int i = threadIdx.x; i < n; i += DN_THREADS) id[off + i] += y[i] * (d[i] - dot) / t;
}

__device__ static inline unsigned long long mix64(unsigned long long z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

__global__ void dropout_kernel(const float *x, size_t n, float p, unsigned long long seed, float *mask, float *y)
{
    float scale = 1.f / (1.f - p);
    DN_GRID_LOOP(i, n) {
        float u = (float)((mix64(seed + 0x9E3779B97F4A7C15ull * (i + 1)) >> 40) * (1.0 / 16777216.0));
        float m = u < p ? 0.f : scale;
        mask[i] = m;
        y[i] = x[i] * m;
    }
}

__global__ void mul_add_kernel(const float *x, const float *m, size_t n, float *y)
{
    DN_GRID_LOOP(i, n) y[i] += x[i] * m[i];
}

extern "C" void dn_cuda_softmax(const float *in, int rows, int n, float temperature, float *out)
{
    if (rows > 0 && n > 0) DN_LAUNCH(softmax_kernel, rows, DN_THREADS, in, n, temperature, out);
}

extern "C" void dn_cuda_softmax_backward(const float *y, const float *d, int rows, int n, float temperature,
                                         float *in_delta)
{
    if (rows > 0 && n > 0) DN_LAUNCH(softmax_backward_kernel, rows, DN_THREADS, y, d, n, temperature, in_delta);
}

extern "C" void dn_cuda_dropout(const float *x, size_t n, float p, unsigned long long seed, float *mask, float *y)
{
    if (n) DN_LAUNCH(dropout_kernel, dn_blocks(n), DN_THREADS, x, n, p, seed, mask, y);
}

extern "C" void dn_cuda_mul_add(const float *x, const float *m, size_t n, float *y)
{
    if (n) DN_LAUNCH(mul_add_kernel, dn_blocks(n), DN_THREADS, x, m, n, y);
}
