/* batchnorm.c: training batch normalisation and bias over x[batch][f][spatial]
 * (see batchnorm.h for the formulas). Sums are accumulated in double. */
#include "batchnorm.h"
#include "../kernels/cpu/parallel.h"

#include <math.h>
#include <stddef.h>

#define BN_EPS .000001f
/* Below this many values a parallel region costs more than it saves. */
#define BN_PARALLEL_MIN 32768

/* Start of the spatial run of channel c in image b. */
static inline size_t at(int b, int c, int f, int spatial)
{
    return ((size_t)b * f + c) * spatial;
}

typedef struct {
    float *x, *delta;
    const float *scale, *bias, *x_hat, *var;
    float *rolling_mean, *rolling_var, *var_out, *x_hat_out, *scale_grad, *bias_grad;
    float momentum;
    int batch, f, spatial;
} bn_args;

static void bn_forward_channel(void *ctx, int c, int tid)
{
    (void)tid;
    const bn_args *a = ctx;
    float *x = a->x, *rolling_mean = a->rolling_mean, *rolling_var = a->rolling_var;
    float *var = a->var_out, *x_hat = a->x_hat_out, momentum = a->momentum;
    const float *scale = a->scale, *bias = a->bias;
    int batch = a->batch, f = a->f, spatial = a->spatial;
    double n = (double)batch * spatial, sum = 0, sq = 0;
    for (int b = 0; b < batch; ++b) {
        const float *v = x + at(b, c, f, spatial);
        for (int i = 0; i < spatial; ++i) sum += v[i];
    }
    float mean = (float)(sum / n);
    for (int b = 0; b < batch; ++b) {
        const float *v = x + at(b, c, f, spatial);
        for (int i = 0; i < spatial; ++i) sq += (double)(v[i] - mean) * (v[i] - mean);
    }
    float v_c = n > 1 ? (float)(sq / (n - 1)) : 0.f;
    if (var) var[c] = v_c;
    rolling_mean[c] = (1 - momentum) * rolling_mean[c] + momentum * mean;
    rolling_var[c] = (1 - momentum) * rolling_var[c] + momentum * v_c;
    float inv_std = 1.f / sqrtf(v_c + BN_EPS);
    for (int b = 0; b < batch; ++b) {
        float *v = x + at(b, c, f, spatial);
        float *h = x_hat ? x_hat + at(b, c, f, spatial) : NULL;
        for (int i = 0; i < spatial; ++i) {
            float xh = (v[i] - mean) * inv_std;
            if (h) h[i] = xh;
            v[i] = xh * scale[c] + bias[c];
        }
    }
}

void dn_bn_forward_train(float *x, int batch, int f, int spatial,
                         const float *scale, const float *bias,
                         float *rolling_mean, float *rolling_var, float momentum,
                         float *var, float *x_hat)
{
    bn_args a = {.x = x, .scale = scale, .bias = bias, .rolling_mean = rolling_mean, .rolling_var = rolling_var,
                 .var_out = var, .x_hat_out = x_hat, .momentum = momentum, .batch = batch, .f = f,
                 .spatial = spatial};
    dn_parallel_for(f, (double)batch * spatial * f >= BN_PARALLEL_MIN ? dn_parallel_threads() : 1,
                    bn_forward_channel, &a);
}

static void bn_backward_channel(void *ctx, int c, int tid)
{
    (void)tid;
    const bn_args *a = ctx;
    float *delta = a->delta, *scale_grad = a->scale_grad, *bias_grad = a->bias_grad;
    const float *x_hat = a->x_hat, *var = a->var, *scale = a->scale;
    int batch = a->batch, f = a->f, spatial = a->spatial;
    double n = (double)batch * spatial, n1 = n > 1 ? n - 1 : 1;
    double sum_d = 0, sum_dx = 0; /* sum dL/dout, sum dL/dout * x_hat */
    for (int b = 0; b < batch; ++b) {
        const float *d = delta + at(b, c, f, spatial);
        const float *h = x_hat + at(b, c, f, spatial);
        for (int i = 0; i < spatial; ++i) {
            sum_d += d[i];
            sum_dx += (double)d[i] * h[i];
        }
    }
    if (bias_grad) bias_grad[c] += (float)sum_d;
    if (scale_grad) scale_grad[c] += (float)sum_dx;
    float inv_std = 1.f / sqrtf(var[c] + BN_EPS);
    float mean_g = (float)(scale[c] * sum_d / n), cov_g = (float)(scale[c] * sum_dx / n1);
    for (int b = 0; b < batch; ++b) {
        float *d = delta + at(b, c, f, spatial);
        const float *h = x_hat + at(b, c, f, spatial);
        for (int i = 0; i < spatial; ++i)
            d[i] = (d[i] * scale[c] - mean_g - h[i] * cov_g) * inv_std;
    }
}

void dn_bn_backward(float *delta, int batch, int f, int spatial,
                    const float *x_hat, const float *var, const float *scale,
                    float *scale_grad, float *bias_grad)
{
    bn_args a = {.delta = delta, .scale = scale, .x_hat = x_hat, .var = var, .scale_grad = scale_grad,
                 .bias_grad = bias_grad, .batch = batch, .f = f, .spatial = spatial};
    dn_parallel_for(f, (double)batch * spatial * f >= BN_PARALLEL_MIN ? dn_parallel_threads() : 1,
                    bn_backward_channel, &a);
}

void dn_bias_forward(float *x, int batch, int f, int spatial, const float *bias)
{
    for (int b = 0; b < batch; ++b)
        for (int c = 0; c < f; ++c) {
            float *v = x + at(b, c, f, spatial);
            for (int i = 0; i < spatial; ++i) v[i] += bias[c];
        }
}

void dn_bias_backward(const float *delta, int batch, int f, int spatial, float *bias_grad)
{
    if (!bias_grad) return;
    for (int c = 0; c < f; ++c) {
        double sum = 0;
        for (int b = 0; b < batch; ++b) {
            const float *d = delta + at(b, c, f, spatial);
            for (int i = 0; i < spatial; ++i) sum += d[i];
        }
        bias_grad[c] += (float)sum;
    }
}
