/* pool.cu: [maxpool] (Darknet's window offset -pad/2, first maximum in scan
 * order wins, as layers/maxpool.c) and global [avgpool] on the device. */
#include "cuda_kernels.h"
#include "common.cuh"

#include <float.h>

__global__ void maxpool_forward_kernel(const float *in, int bc, int h, int w, int size, int stride, int pad,
                                       int out_h, int out_w, float *out, int *indexes)
{
    size_t ohw = (size_t)out_h * out_w, n = (size_t)bc * ohw;
    int off = -pad / 2;
    DN_GRID_LOOP(i, n) {
        size_t plane = i / ohw;
        int y = (int)(i % ohw / out_w), x = (int)(i % out_w);
        const float *p = in + plane * h * w;
        float m = -FLT_MAX;
        int arg = 0;
        for (int dy = 0; dy < size; ++dy) {
            int iy = off + y * stride + dy;
            if (iy < 0 || iy >= h) continue;
            for (int dx = 0; dx < size; ++dx) {
                int ix = off + x * stride + dx;
                if (ix < 0 || ix >= w) continue;
                int k = iy * w + ix;
                if (p[k] > m) { m = p[k]; arg = k; }
            }
        }
        out[i] = m;
        if (indexes) indexes[i] = arg;
    }
}

__global__ void maxpool_backward_kernel(const float *delta, const int *indexes, int bc, int h, int w,
                                        int out_h, int out_w, float *in_delta)
{
    size_t ohw = (size_t)out_h * out_w, n = (size_t)bc * ohw;
    DN_GRID_LOOP(i, n) atomicAdd(in_delta + i / ohw * h * w + indexes[i], delta[i]);
}

/* One block per plane. */
__global__ void avgpool_forward_kernel(const float *in, int hw, float *out)
{
    __shared__ double sh[DN_THREADS];
    const float *p = in + (size_t)blockIdx.x * hw;
    double s = 0;
    for (int k = threadIdx.x; k < hw; k += DN_THREADS) s += p[k];
    double t = dn_block_sum(s, sh);
    if (threadIdx.x == 0) out[blockIdx.x] = (float)(t / (double)hw);
}

__global__ void avgpool_backward_kernel(const float *delta, int n, int hw, float *in_delta)
{
    size_t total = (size_t)n * hw;
    DN_GRID_LOOP(i, total) in_delta[i] += delta[i / hw] / (float)hw;
}

extern "C" void dn_cuda_maxpool_forward(const float *in, int bc, int h, int w, int size, int stride, int pad,
                                        int out_h, int out_w, float *out, int *indexes)
{
    size_t n = (size_t)bc * out_h * out_w;
    if (n)
        DN_LAUNCH(maxpool_forward_kernel, dn_blocks(n), DN_THREADS, in, bc, h, w, size, stride, pad, out_h, out_w, out,
                                                             indexes);
}

extern "C" void dn_cuda_maxpool_backward(const float *delta, const int *indexes, int bc, int h, int w,
                                         int out_h, int out_w, float *in_delta)
{
    size_t n = (size_t)bc * out_h * out_w;
    if (n) DN_LAUNCH(maxpool_backward_kernel, dn_blocks(n), DN_THREADS, delta, indexes, bc, h, w, out_h, out_w, in_delta);
}

extern "C" void dn_cuda_avgpool_forward(const float *in, int n, int hw, float *out)
{
    if (n > 0) DN_LAUNCH(avgpool_forward_kernel, n, DN_THREADS, in, hw, out);
}

extern "C" void dn_cuda_avgpool_backward(const float *delta, int n, int hw, float *in_delta)
{
    size_t total = (size_t)n * hw;
    if (total) DN_LAUNCH(avgpool_backward_kernel, dn_blocks(total), DN_THREADS, delta, n, hw, in_delta);
}
