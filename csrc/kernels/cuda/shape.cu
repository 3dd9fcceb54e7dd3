/* shape.cu: the data-movement layers on the device: [reorg] (the mapping of
 * layers/reorg.c, a permutation, so one thread per element and no races),
 * [upsample] (forward and adjoint, gathering per destination cell) and the
 * overlap add of [shortcut] (each overlap cell is met once per image). */
#include "cuda_kernels.h"
#include "common.cuh"

__global__ void reorg_kernel(const float *x, int batch, int c, int h, int w, int s, int reverse, int add, float *y)
{
    size_t per = (size_t)c * h * w, n = (size_t)batch * per;
    int c2n = c / (s * s);
    DN_GRID_LOOP(t, n) {
        size_t b = t / per, a = t % per;
        int i = (int)(a % w), j = (int)(a / w % h), k = (int)(a / w / h);
        int c2 = k % c2n, o = k / c2n;
        int h2 = j * s + o / s, w2 = i * s + o % s;
        size_t z = (size_t)w2 + (size_t)w * s * (h2 + (size_t)h * s * c2);
        size_t dst = b * per + (reverse ? z : a), src = b * per + (reverse ? a : z);
        y[dst] = add ? y[dst] + x[src] : x[src];
    }
}

__global__ void upsample_forward_kernel(const float *in, int bc, int h, int w, int s, int reverse, float scale,
                                        float *out, int out_h, int out_w)
{
    size_t ohw = (size_t)out_h * out_w, n = (size_t)bc * ohw;
    DN_GRID_LOOP(t, n) {
        const float *p = in + t / ohw * h * w;
        int y = (int)(t % ohw / out_w), x = (int)(t % out_w);
        if (!reverse) {
            out[t] = scale * p[(size_t)(y / s) * w + x / s];
        } else {
            float sum = 0;
            for (int dy = 0; dy < s; ++dy)
                for (int dx = 0; dx < s; ++dx) sum += scale * p[(size_t)(y * s + dy) * w + x * s + dx];
            out[t] = sum;
        }
    }
}

/* One thread per input cell. */
__global__ void upsample_backward_kernel(const float *delta, int bc, int h, int w, int s, int reverse,
                                         float scale, float *in_delta, int out_h, int out_w)
{
    size_t ihw = (size_t)h * w, n = (size_t)bc * ihw;
    DN_GRID_LOOP(t, n) {
        const float *d = delta + t / ihw * out_h * out_w;
        int y = (int)(t % ihw / w), x = (int)(t % w);
        if (!reverse) {
            float sum = 0;
            for (int dy = 0; dy < s; ++dy)
                for (int dx = 0; dx < s; ++dx) sum += scale * d[(size_t)(y * s + dy) * out_w + x * s + dx];
            in_delta[t] += sum;
        } else {
            in_delta[t] += scale * d[(size_t)(y / s) * out_w + x / s];
        }
    }
}

struct overlap { int w1, h1, w2, h2, stride, sample, minw, minh, minc; };

__device__ static void overlap_cell(const overlap &o, size_t t, size_t *b, size_t *oi, size_t *ai)
{
    size_t per = (size_t)o.minc * o.minh * o.minw, r = t % per;
    int i = (int)(r % o.minw), j = (int)(r / o.minw % o.minh), k = (int)(r / o.minw / o.minh);
    *b = t / per;
    *oi = (size_t)i * o.sample + (size_t)o.w2 * ((size_t)j * o.sample + (size_t)o.h2 * k);
    *ai = (size_t)i * o.stride + (size_t)o.w1 * ((size_t)j * o.stride + (size_t)o.h1 * k);
}

__global__ void shortcut_forward_kernel(float *out, size_t out_n, const float *add, size_t add_n, int batch,
                                        overlap o, float alpha, float beta)
{
    size_t n = (size_t)batch * o.minc * o.minh * o.minw;
    DN_GRID_LOOP(t, n) {
        size_t b, oi, ai;
        overlap_cell(o, t, &b, &oi, &ai);
        float *p = out + b * out_n + oi;
        *p = alpha * *p + beta * add[b * add_n + ai];
    }
}

__global__ void shortcut_backward_kernel(const float *delta, size_t out_n, float *in_delta, float *add_delta,
                                         size_t add_n, int batch, overlap o, float alpha, float beta)
{
    size_t n = (size_t)batch * o.minc * o.minh * o.minw;
    DN_GRID_LOOP(t, n) {
        size_t b, oi, ai;
        overlap_cell(o, t, &b, &oi, &ai);
        float d = delta[b * out_n + oi];
        if (in_delta) in_delta[b * out_n + oi] += (alpha - 1.f) * d;
        add_delta[b * add_n + ai] += beta * d;
    }
}

extern "C" void dn_cuda_reorg(const float *x, int batch, int c, int h, int w, int stride, int reverse, int add,
                              float *y)
{
    size_t n = (size_t)batch * c * h * w;
    if (n) DN_LAUNCH(reorg_kernel, dn_blocks(n), DN_THREADS, x, batch, c, h, w, stride, reverse, add, y);
}

extern "C" void dn_cuda_upsample_forward(const float *in, int bc, int h, int w, int s, int reverse, float scale,
                                         float *out, int out_h, int out_w)
{
    size_t n = (size_t)bc * out_h * out_w;
    if (n) DN_LAUNCH(upsample_forward_kernel, dn_blocks(n), DN_THREADS, in, bc, h, w, s, reverse, scale, out, out_h, out_w);
}

extern "C" void dn_cuda_upsample_backward(const float *delta, int bc, int h, int w, int s, int reverse,
                                          float scale, float *in_delta, int out_h, int out_w)
{
    size_t n = (size_t)bc * h * w;
    if (n)
        DN_LAUNCH(upsample_backward_kernel, dn_blocks(n), DN_THREADS, delta, bc, h, w, s, reverse, scale, in_delta, out_h,
                                                               out_w);
}

static overlap make_overlap(const int *g)
{
    overlap o = {g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8]};
    return o;
}

extern "C" void dn_cuda_shortcut_forward(float *out, size_t out_n, const float *add, size_t add_n, int batch,
                                         const int *o, float alpha, float beta)
{
    overlap ov = make_overlap(o);
    size_t n = (size_t)batch * ov.minc * ov.minh * ov.minw;
    if (n) DN_LAUNCH(shortcut_forward_kernel, dn_blocks(n), DN_THREADS, out, out_n, add, add_n, batch, ov, alpha, beta);
}

extern "C" void dn_cuda_shortcut_backward(const float *delta, size_t out_n, float *in_delta, float *add_delta,
                                          size_t add_n, int batch, const int *o, float alpha, float beta)
{
    overlap ov = make_overlap(o);
    size_t n = (size_t)batch * ov.minc * ov.minh * ov.minw;
    if (n)
        DN_LAUNCH(shortcut_backward_kernel, dn_blocks(n), DN_THREADS, delta, out_n, in_delta, add_delta, add_n, batch, ov,
                                                               alpha, beta);
}
