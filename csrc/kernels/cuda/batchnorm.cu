/* batchnorm.cu: layers/batchnorm.h on the device, x[batch][f][spatial].
 * One block per channel; the sums are accumulated in double per thread and
 * combined by a fixed tree (dn_block_sum), so results are deterministic. */
#include "cuda_kernels.h"
#include "common.cuh"

#define BN_EPS .000001f

/* Channel c's values are the runs x[(b*f + c)*spatial + i]. */
#define CH_LOOP(j, batch, spatial) \
    for (size_t j = threadIdx.x; j < (size_t)(batch) * (spatial); j += DN_THREADS)
#define CH_AT(j, c, f, spatial) ((j) / (spatial) * (size_t)(f) * (spatial) + (size_t)(c) * (spatial) + (j) % (spatial))

__global__ void bn_forward_kernel(float *x, int batch, int f, int spatial, const float *scale, const float *bias,
                                  float *rolling_mean, float *rolling_var, float momentum, float *var, float *x_hat)
{
    __shared__ double sh[DN_THREADS];
    int c = blockIdx.x;
    double n = (double)batch * spatial, s = 0, sq = 0;
    CH_LOOP(j, batch, spatial) s += x[CH_AT(j, c, f, spatial)];
    float mean = (float)(dn_block_sum(s, sh) / n);
    CH_LOOP(j, batch, spatial) {
        double d = x[CH_AT(j, c, f, spatial)] - mean;
        sq += d * d;
    }
    double sqs = dn_block_sum(sq, sh);
    float v = n > 1 ? (float)(sqs / (n - 1)) : 0.f;
    if (threadIdx.x == 0) {
        if (var) var[c] = v;
        rolling_mean[c] = (1 - momentum) * rolling_mean[c] + momentum * mean;
        rolling_var[c] = (1 - momentum) * rolling_var[c] + momentum * v;
    }
    float inv = 1.f / sqrtf(v + BN_EPS);
    CH_LOOP(j, batch, spatial) {
        size_t k = CH_AT(j, c, f, spatial);
        float xh = (x[k] - mean) * inv;
        if (x_hat) x_hat[k] = xh;
        x[k] = xh * scale[c] + bias[c];
    }
}

__global__ void bn_backward_kernel(float *delta, int batch, int f, int spatial, const float *x_hat,
                                   const float *var, const float *scale, float *scale_grad, float *bias_grad)
{
    __shared__ double sh[DN_THREADS];
    int c = blockIdx.x;
    double n = (double)batch * spatial, n1 = n > 1 ? n - 1 : 1, sd = 0, sdx = 0;
    CH_LOOP(j, batch, spatial) {
        size_t k = CH_AT(j, c, f, spatial);
        sd += delta[k];
        sdx += (double)delta[k] * x_hat[k];
    }
    double sum_d = dn_block_sum(sd, sh), sum_dx = dn_block_sum(sdx, sh);
    if (threadIdx.x == 0) {
        if (bias_grad) bias_grad[c] += (float)sum_d;
        if (scale_grad) scale_grad[c] += (float)sum_dx;
    }
    float inv = 1.f / sqrtf(var[c] + BN_EPS);
    float mean_g = (float)(scale[c] * sum_d / n), cov_g = (float)(scale[c] * sum_dx / n1);
    CH_LOOP(j, batch, spatial) {
        size_t k = CH_AT(j, c, f, spatial);
        delta[k] = (delta[k] * scale[c] - mean_g - x_hat[k] * cov_g) * inv;
    }
}

__global__ void bias_backward_kernel(const float *delta, int batch, int f, int spatial, float *bias_grad)
{
    __shared__ double sh[DN_THREADS];
    int c = blockIdx.x;
    double s = 0;
    CH_LOOP(j, batch, spatial) s += delta[CH_AT(j, c, f, spatial)];
    double t = dn_block_sum(s, sh);
    if (threadIdx.x == 0) bias_grad[c] += (float)t;
}

__global__ void affine_kernel(float *x, int batch, int f, int spatial, const float *scale, const float *bias,
                              const float *mean, const float *var)
{
    size_t n = (size_t)batch * f * spatial;
    DN_GRID_LOOP(i, n) {
        int c = (int)(i / spatial % f);
        float v = x[i];
        if (scale) v = (v - mean[c]) / sqrtf(var[c] + BN_EPS) * scale[c];
        x[i] = v + bias[c];
    }
}

extern "C" void dn_cuda_bn_forward_train(float *x, int batch, int f, int spatial, const float *scale,
                                         const float *bias, float *rolling_mean, float *rolling_var,
                                         float momentum, float *var, float *x_hat)
{
    if (f > 0)
        DN_LAUNCH(bn_forward_kernel, f, DN_THREADS, x, batch, f, spatial, scale, bias, rolling_mean, rolling_var, momentum,
                                             var, x_hat);
}

extern "C" void dn_cuda_bn_backward(float *delta, int batch, int f, int spatial, const float *x_hat,
                                    const float *var, const float *scale, float *scale_grad, float *bias_grad)
{
    if (f > 0)
        DN_LAUNCH(bn_backward_kernel, f, DN_THREADS, delta, batch, f, spatial, x_hat, var, scale, scale_grad, bias_grad);
}

extern "C" void dn_cuda_bias_forward(float *x, int batch, int f, int spatial, const float *bias)
{
    size_t n = (size_t)batch * f * spatial;
    if (n) DN_LAUNCH(affine_kernel, dn_blocks(n), DN_THREADS, x, batch, f, spatial, NULL, bias, NULL, NULL);
}

extern "C" void dn_cuda_bias_backward(const float *delta, int batch, int f, int spatial, float *bias_grad)
{
    if (f > 0 && bias_grad) DN_LAUNCH(bias_backward_kernel, f, DN_THREADS, delta, batch, f, spatial, bias_grad);
}

extern "C" void dn_cuda_bn_inference(float *x, int batch, int f, int spatial, const float *scale,
                                     const float *bias, const float *mean, const float *var)
{
    size_t n = (size_t)batch * f * spatial;
    if (n) DN_LAUNCH(affine_kernel, dn_blocks(n), DN_THREADS, x, batch, f, spatial, scale, bias, mean, var);
}
