/* activations.cu: core/activations.c on the device, elementwise (same
 * definitions: leaky .1, relie .01, ramp x*(x>0)+.1x, softplus cut at +-20). */
#include "cuda_kernels.h"
#include "common.cuh"

__device__ static inline float logistic(float x) { return 1.f / (1.f + expf(-x)); }
__device__ static inline float softplus(float x) { return x > 20.f ? x : (x < -20.f ? expf(x) : log1pf(expf(x))); }

__device__ static float activate(float x, int a)
{
    switch (a) {
    case DN_ACT_LEAKY: return x > 0 ? x : .1f * x;
    case DN_ACT_LOGISTIC: return logistic(x);
    case DN_ACT_RELU: return x > 0 ? x : 0;
    case DN_ACT_RELIE: return x > 0 ? x : .01f * x;
    case DN_ACT_RAMP: return x * (x > 0) + .1f * x;
    case DN_ACT_TANH: return tanhf(x);
    case DN_ACT_SWISH: return x * logistic(x);
    case DN_ACT_MISH: return x * tanhf(softplus(x));
    default: return x;
    }
}

/* f'(.) from the output y (and the pre-activation x for swish and mish). */
__device__ static float derivative(float y, const float *x, size_t i, int a)
{
    switch (a) {
    case DN_ACT_LEAKY: return y > 0 ? 1.f : .1f;
    case DN_ACT_LOGISTIC: return (1 - y) * y;
    case DN_ACT_RELU: return y > 0;
    case DN_ACT_RELIE: return y > 0 ? 1.f : .01f;
    case DN_ACT_RAMP: return (y > 0) + .1f;
    case DN_ACT_TANH: return 1 - y * y;
    case DN_ACT_SWISH: {
        float s = logistic(x[i]);
        return s + x[i] * s * (1 - s);
    }
    case DN_ACT_MISH: {
        float sp = softplus(x[i]), t = tanhf(sp), s = logistic(x[i]);
        return t + x[i] * (1 - t * t) * s;
    }
    default: return 1.f;
    }
}

__global__ void activate_kernel(float *x, size_t n, int a)
{
    DN_GRID_LOOP(i, n) x[i] = activate(x[i], a);
}

__global__ void gradient_kernel(const float *y, const float *x, size_t n, int a, float *delta)
{
    DN_GRID_LOOP(i, n) delta[i] *= derivative(y[i], x, i, a);
}

extern "C" void dn_cuda_activate(float *x, size_t n, dn_activation a)
{
    if (n && a != DN_ACT_LINEAR) DN_LAUNCH(activate_kernel, dn_blocks(n), DN_THREADS, x, n, (int)a);
}

extern "C" void dn_cuda_gradient(const float *y, const float *x, size_t n, dn_activation a, float *delta)
{
    if (n && a != DN_ACT_LINEAR) DN_LAUNCH(gradient_kernel, dn_blocks(n), DN_THREADS, y, x, n, (int)a, delta);
}
