/* batchnorm.c: training batch normalisation and bias over x[batch][f][spatial]
 * (see batchnorm.h for the formulas), with the piecewise-linear activations
 * fused in (forward: applied to the output; backward: their gradient taken
 * first).
 *
 * Channels are the work items on the thread pool (parallel.h). Within a
 * channel, each contiguous run of spatial values goes through 8-lane
 * vectors (GCC vector extensions): sums are kept per lane in float over
 * blocks of at most BLOCK values and added into double per block, so the
 * statistics keep close to double accuracy. The forward takes the mean and
 * variance in one pass, of values shifted by the channel's first value
 * (which keeps the cancellation in sum(d^2) - sum(d)^2/N small).
 */
#include "batchnorm.h"
#include "../kernels/cpu/parallel.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define BN_EPS .000001f
/* Below this many values a parallel region costs more than it saves. */
#define BN_PARALLEL_MIN 32768
/* Values per float partial sum (per 8 lanes) before it is added in double. */
#define BLOCK 512

typedef float v8 __attribute__((vector_size(32)));
typedef int i8v __attribute__((vector_size(32)));

static inline v8 ld8(const float *p) { v8 v; memcpy(&v, p, sizeof v); return v; }
static inline void st8(float *p, v8 v) { memcpy(p, &v, sizeof v); }
static inline v8 splat(float x) { return (v8){x, x, x, x, x, x, x, x}; }
static inline double hsum(v8 v)
{
    double s = 0;
    for (int i = 0; i < 8; ++i) s += v[i];
    return s;
}

/* Start of the spatial run of channel c in image b. */
static inline size_t at(int b, int c, int f, int spatial)
{
    return ((size_t)b * f + c) * spatial;
}

int dn_bn_act_fuses(dn_activation act)
{
    return act == DN_ACT_LINEAR || act == DN_ACT_LEAKY || act == DN_ACT_RELU || act == DN_ACT_RELIE;
}

/* Negative-side slope of a fused activation; 1 for linear. */
static float act_slope(dn_activation act)
{
    switch (act) {
    case DN_ACT_LEAKY: return .1f;
    case DN_ACT_RELU: return 0.f;
    case DN_ACT_RELIE: return .01f;
    default: return 1.f;
    }
}

/* max(v, slope*v) = v > 0 ? v : slope*v for slope <= 1 (bit-identical to
 * activations.c for leaky, relu and relie). */
static inline v8 act8(v8 v, float slope)
{
    v8 y = v * slope;
    i8v gt = v > y;
    return (v8)((gt & (i8v)v) | (~gt & (i8v)y));
}

static inline float act1(float v, float slope) { return v > slope * v ? v : slope * v; }

/* delta * f'(y): 1 where y > 0, else slope. */
static inline v8 grad8(v8 d, v8 y, float slope)
{
    i8v pos = y > splat(0.f);
    return (v8)((pos & (i8v)d) | (~pos & (i8v)(d * slope)));
}

static inline float grad1(float d, float y, float slope) { return y > 0 ? d : d * slope; }

typedef struct {
    const float *x, *scale, *bias, *x_hat_in, *var_in, *y;
    float *x_hat, *out, *delta;
    float *rolling_mean, *rolling_var, *var_out, *scale_grad, *bias_grad;
    float momentum, slope;
    int fused; /* apply the activation (forward) / its gradient (backward) */
    int batch, f, spatial;
} bn_args;

/* ---- forward ---- */

static void bn_forward_channel(void *ctx, int c, int tid)
{
    (void)tid;
    const bn_args *a = ctx;
    const int batch = a->batch, f = a->f, spatial = a->spatial;
    const float k = a->x[at(0, c, f, spatial)]; /* shift */
    double s1 = 0, s2 = 0;
    for (int b = 0; b < batch; ++b) {
        const float *v = a->x + at(b, c, f, spatial);
        int i = 0;
        while (i + 8 <= spatial) {
            v8 p1 = splat(0.f), p2 = splat(0.f), kv = splat(k);
            int end = i + BLOCK < spatial ? i + BLOCK : spatial;
            for (; i + 8 <= end; i += 8) {
                v8 d = ld8(v + i) - kv;
                p1 += d;
                p2 += d * d;
            }
            s1 += hsum(p1);
            s2 += hsum(p2);
        }
        for (; i < spatial; ++i) {
            double d = (double)v[i] - k;
            s1 += d;
            s2 += d * d;
        }
    }
    double n = (double)batch * spatial;
    float mean = (float)(k + s1 / n);
    float v_c = n > 1 ? (float)fmax((s2 - s1 * s1 / n) / (n - 1), 0.) : 0.f;
    if (a->var_out) a->var_out[c] = v_c;
    a->rolling_mean[c] = (1 - a->momentum) * a->rolling_mean[c] + a->momentum * mean;
    a->rolling_var[c] = (1 - a->momentum) * a->rolling_var[c] + a->momentum * v_c;
    const float inv_std = 1.f / sqrtf(v_c + BN_EPS), sc = a->scale[c], bi = a->bias[c], slope = a->slope;
    const int fused = a->fused;
    for (int b = 0; b < batch; ++b) {
        size_t o = at(b, c, f, spatial);
        const float *v = a->x + o;
        float *h = a->x_hat ? a->x_hat + o : NULL, *out = a->out + o;
        int i = 0;
        for (; i + 8 <= spatial; i += 8) {
            v8 xh = (ld8(v + i) - mean) * inv_std;
            if (h) st8(h + i, xh);
            v8 y = xh * sc + bi;
            st8(out + i, fused ? act8(y, slope) : y);
        }
        for (; i < spatial; ++i) {
            float xh = (v[i] - mean) * inv_std;
            if (h) h[i] = xh;
            float y = xh * sc + bi;
            out[i] = fused ? act1(y, slope) : y;
        }
    }
}

static int threads_for(int batch, int f, int spatial)
{
    return (double)batch * spatial * f >= BN_PARALLEL_MIN ? dn_parallel_threads() : 1;
}

void dn_bn_forward_train_act(const float *x, int batch, int f, int spatial,
                             const float *scale, const float *bias,
                             float *rolling_mean, float *rolling_var, float momentum,
                             float *var, float *x_hat, float *out, dn_activation act)
{
    bn_args a = {.x = x, .scale = scale, .bias = bias, .rolling_mean = rolling_mean, .rolling_var = rolling_var,
                 .var_out = var, .x_hat = x_hat, .out = out, .momentum = momentum,
                 .fused = act != DN_ACT_LINEAR && dn_bn_act_fuses(act), .slope = act_slope(act),
                 .batch = batch, .f = f, .spatial = spatial};
    dn_parallel_for(f, threads_for(batch, f, spatial), bn_forward_channel, &a);
}

void dn_bn_forward_train(float *x, int batch, int f, int spatial,
                         const float *scale, const float *bias,
                         float *rolling_mean, float *rolling_var, float momentum,
                         float *var, float *x_hat)
{
    dn_bn_forward_train_act(x, batch, f, spatial, scale, bias, rolling_mean, rolling_var, momentum, var, x_hat,
                            x, DN_ACT_LINEAR);
}

/* ---- backward ---- */

static void bn_backward_channel(void *ctx, int c, int tid)
{
    (void)tid;
    const bn_args *a = ctx;
    const int batch = a->batch, f = a->f, spatial = a->spatial, fused = a->fused;
    const float slope = a->slope;
    double sum_d = 0, sum_dx = 0; /* sum g, sum g * x_hat, g = dL/d(BN output) */
    for (int b = 0; b < batch; ++b) {
        size_t o = at(b, c, f, spatial);
        float *d = a->delta + o;
        const float *h = a->x_hat_in + o, *y = fused ? a->y + o : NULL;
        int i = 0;
        while (i + 8 <= spatial) {
            v8 p1 = splat(0.f), p2 = splat(0.f);
            int end = i + BLOCK < spatial ? i + BLOCK : spatial;
            for (; i + 8 <= end; i += 8) {
                v8 g = ld8(d + i);
                if (fused) {
                    g = grad8(g, ld8(y + i), slope);
                    st8(d + i, g);
                }
                p1 += g;
                p2 += g * ld8(h + i);
            }
            sum_d += hsum(p1);
            sum_dx += hsum(p2);
        }
        for (; i < spatial; ++i) {
            float g = fused ? (d[i] = grad1(d[i], y[i], slope)) : d[i];
            sum_d += g;
            sum_dx += (double)g * h[i];
        }
    }
    if (a->bias_grad) a->bias_grad[c] += (float)sum_d;
    if (a->scale_grad) a->scale_grad[c] += (float)sum_dx;
    double n = (double)batch * spatial, n1 = n > 1 ? n - 1 : 1;
    const float inv_std = 1.f / sqrtf(a->var_in[c] + BN_EPS), sc = a->scale[c];
    const float mean_g = (float)(sc * sum_d / n), cov_g = (float)(sc * sum_dx / n1);
    for (int b = 0; b < batch; ++b) {
        size_t o = at(b, c, f, spatial);
        float *d = a->delta + o;
        const float *h = a->x_hat_in + o;
        int i = 0;
        for (; i + 8 <= spatial; i += 8) st8(d + i, (ld8(d + i) * sc - mean_g - ld8(h + i) * cov_g) * inv_std);
        for (; i < spatial; ++i) d[i] = (d[i] * sc - mean_g - h[i] * cov_g) * inv_std;
    }
}

void dn_bn_backward_act(float *delta, const float *y, int batch, int f, int spatial,
                        const float *x_hat, const float *var, const float *scale,
                        float *scale_grad, float *bias_grad, dn_activation act)
{
    bn_args a = {.delta = delta, .y = y, .scale = scale, .x_hat_in = x_hat, .var_in = var,
                 .scale_grad = scale_grad, .bias_grad = bias_grad,
                 .fused = act != DN_ACT_LINEAR && dn_bn_act_fuses(act), .slope = act_slope(act),
                 .batch = batch, .f = f, .spatial = spatial};
    dn_parallel_for(f, threads_for(batch, f, spatial), bn_backward_channel, &a);
}

void dn_bn_backward(float *delta, int batch, int f, int spatial,
                    const float *x_hat, const float *var, const float *scale,
                    float *scale_grad, float *bias_grad)
{
    dn_bn_backward_act(delta, NULL, batch, f, spatial, x_hat, var, scale, scale_grad, bias_grad, DN_ACT_LINEAR);
}

/* ---- bias ---- */

void dn_bias_forward(float *x, int batch, int f, int spatial, const float *bias)
{
    for (int b = 0; b < batch; ++b)
        for (int c = 0; c < f; ++c) {
            float *v = x + at(b, c, f, spatial);
            for (int i = 0; i < spatial; ++i) v[i] += bias[c];
        }
}

static void bias_backward_channel(void *ctx, int c, int tid)
{
    (void)tid;
    const bn_args *a = ctx;
    const int batch = a->batch, f = a->f, spatial = a->spatial, fused = a->fused;
    const float slope = a->slope;
    double sum = 0;
    for (int b = 0; b < batch; ++b) {
        size_t o = at(b, c, f, spatial);
        float *d = a->delta + o;
        const float *y = fused ? a->y + o : NULL;
        int i = 0;
        while (i + 8 <= spatial) {
            v8 p = splat(0.f);
            int end = i + BLOCK < spatial ? i + BLOCK : spatial;
            for (; i + 8 <= end; i += 8) {
                v8 g = ld8(d + i);
                if (fused) {
                    g = grad8(g, ld8(y + i), slope);
                    st8(d + i, g);
                }
                p += g;
            }
            sum += hsum(p);
        }
        for (; i < spatial; ++i) sum += fused ? (d[i] = grad1(d[i], y[i], slope)) : d[i];
    }
    if (a->bias_grad) a->bias_grad[c] += (float)sum;
}

void dn_bias_backward_act(float *delta, const float *y, int batch, int f, int spatial, float *bias_grad,
                          dn_activation act)
{
    bn_args a = {.delta = delta, .y = y, .bias_grad = bias_grad,
                 .fused = act != DN_ACT_LINEAR && dn_bn_act_fuses(act), .slope = act_slope(act),
                 .batch = batch, .f = f, .spatial = spatial};
    dn_parallel_for(f, threads_for(batch, f, spatial), bias_backward_channel, &a);
}

void dn_bias_backward(const float *delta, int batch, int f, int spatial, float *bias_grad)
{
    if (!bias_grad) return;
    dn_bias_backward_act((float *)delta, NULL, batch, f, spatial, bias_grad, DN_ACT_LINEAR);
}
