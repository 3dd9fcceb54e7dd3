/* im2col.cu: kernels/cpu/im2col.h on the device. im2col: one thread per
 * col element, row r = (c*size + ky)*size + kx, out-of-image taps 0.
 * col2im: one thread per image pixel, gathering (and adding) the col cells
 * that read it, so no atomics are needed. */
#include "cuda_kernels.h"
#include "common.cuh"

__global__ void im2col_kernel(const float *im, int c, int h, int w, int size, int stride, int pad,
                              int out_h, int out_w, float *col)
{
    size_t hw = (size_t)out_h * out_w, n = (size_t)c * size * size * hw;
    DN_GRID_LOOP(i, n) {
        size_t r = i / hw, o = i % hw;
        int kx = (int)(r % size), ky = (int)(r / size % size), ch = (int)(r / size / size);
        int y = (int)(o / out_w) * stride - pad + ky, x = (int)(o % out_w) * stride - pad + kx;
        col[i] = (y >= 0 && y < h && x >= 0 && x < w) ? im[((size_t)ch * h + y) * w + x] : 0.f;
    }
}

__global__ void col2im_kernel(const float *col, int c, int h, int w, int size, int stride, int pad,
                              int out_h, int out_w, float *im)
{
    size_t n = (size_t)c * h * w, hw = (size_t)out_h * out_w;
    DN_GRID_LOOP(i, n) {
        int x = (int)(i % w), y = (int)(i / w % h), ch = (int)(i / w / h);
        float sum = 0.f;
        for (int ky = 0; ky < size; ++ky) {
            int ty = y + pad - ky;
            if (ty < 0 || ty % stride) continue;
            int oy = ty / stride;
            if (oy >= out_h) continue;
            for (int kx = 0; kx < size; ++kx) {
                int tx = x + pad - kx;
                if (tx < 0 || tx % stride) continue;
                int ox = tx / stride;
                if (ox >= out_w) continue;
                size_t r = ((size_t)ch * size + ky) * size + kx;
                sum += col[r * hw + (size_t)oy * out_w + ox];
            }
        }
        im[i] += sum;
    }
}

extern "C" void dn_cuda_im2col(const float *im, int c, int h, int w, int size, int stride, int pad,
                               int out_h, int out_w, float *col)
{
    size_t n = (size_t)c * size * size * out_h * out_w;
    if (n) DN_LAUNCH(im2col_kernel, dn_blocks(n), DN_THREADS, im, c, h, w, size, stride, pad, out_h, out_w, col);
}

extern "C" void dn_cuda_col2im(const float *col, int c, int h, int w, int size, int stride, int pad,
                               int out_h, int out_w, float *im)
{
    size_t n = (size_t)c * h * w;
    if (n) DN_LAUNCH(col2im_kernel, dn_blocks(n), DN_THREADS, col, c, h, w, size, stride, pad, out_h, out_w, im);
}
