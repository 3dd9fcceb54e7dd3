/* cuda_kernels.h: the launchers of the CUDA kernels (the .cu files of kernels/cuda),
 * callable from C. Every pointer is device memory; shapes are those of the
 * CPU kernels they mirror (NCHW, one image C*H*W floats, batches contiguous).
 * Launchers queue work on the calling thread's default stream and return at
 * once; launch errors surface at the caller's next cudaGetLastError. */
#ifndef DN_CUDA_KERNELS_H
#define DN_CUDA_KERNELS_H

#include <stddef.h>

#include "../../core/activations.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- blas.cu ---- */
/* A GEMM context for the calling thread's current device (a cuBLAS handle
 * when built with cuBLAS, else a dummy); NULL on failure. */
void *dn_cuda_blas_create(void);
void dn_cuda_blas_destroy(void *blas);
/* 1 when GEMM runs on cuBLAS, 0 on the built-in tiled kernel. */
int dn_cuda_blas_is_cublas(void);
/* Row-major C[m][n] = alpha * op(A)[m][k] op(B)[k][n] + beta * C, as dn_gemm. */
void dn_cuda_gemm(void *blas, int ta, int tb, int m, int n, int k, float alpha,
                  const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
void dn_cuda_fill(float *x, size_t n, float v);
/* y[n] += a * x[n]. */
void dn_cuda_axpy(size_t n, float a, const float *x, float *y);
/* For b < batch: dst[b*dst_stride + i] (+)= src[b*src_stride + i], i < part. */
void dn_cuda_copy_rows(int batch, size_t part, const float *src, size_t src_stride,
                       float *dst, size_t dst_stride, int add);
/* Darknet's SGD step over n params: u -= g + decay*w; w += rate*u; u *= momentum; g = 0. */
void dn_cuda_sgd(float *w, float *g, float *u, size_t n, float rate, float decay, float momentum);

/* ---- activations.cu (activations.h semantics) ---- */
void dn_cuda_activate(float *x, size_t n, dn_activation a);
void dn_cuda_gradient(const float *y, const float *x, size_t n, dn_activation a, float *delta);

/* ---- im2col.cu (kernels/cpu/im2col.h semantics; col2im accumulates) ---- */
void dn_cuda_im2col(const float *im, int c, int h, int w, int size, int stride, int pad,
                    int out_h, int out_w, float *col);
void dn_cuda_col2im(const float *col, int c, int h, int w, int size, int stride, int pad,
                    int out_h, int out_w, float *im);

/* ---- batchnorm.cu (layers/batchnorm.h semantics, x[batch][f][spatial]) ---- */
void dn_cuda_bn_forward_train(float *x, int batch, int f, int spatial, const float *scale,
                              const float *bias, float *rolling_mean, float *rolling_var,
                              float momentum, float *var, float *x_hat);
void dn_cuda_bn_backward(float *delta, int batch, int f, int spatial, const float *x_hat,
                         const float *var, const float *scale, float *scale_grad, float *bias_grad);
void dn_cuda_bias_forward(float *x, int batch, int f, int spatial, const float *bias);
void dn_cuda_bias_backward(const float *delta, int batch, int f, int spatial, float *bias_grad);
/* Inference: x = (x - mean)/sqrt(var + 1e-6)*scale + bias, or x += bias when scale is NULL. */
void dn_cuda_bn_inference(float *x, int batch, int f, int spatial, const float *scale,
                          const float *bias, const float *mean, const float *var);

/* ---- pool.cu ---- */
/* Darknet maxpool (offset -pad/2); indexes[batch*c][out_h*out_w] the argmax in
 * the plane (may be NULL). */
void dn_cuda_maxpool_forward(const float *in, int bc, int h, int w, int size, int stride, int pad,
                             int out_h, int out_w, float *out, int *indexes);
void dn_cuda_maxpool_backward(const float *delta, const int *indexes, int bc, int h, int w,
                              int out_h, int out_w, float *in_delta);
/* Global average pool of n = batch*c planes of hw values. */
void dn_cuda_avgpool_forward(const float *in, int n, int hw, float *out);
void dn_cuda_avgpool_backward(const float *delta, int n, int hw, float *in_delta);

/* ---- shape.cu ---- */
/* layers/reorg.c's mapping over batch images of c*h*w (input shape). */
void dn_cuda_reorg(const float *x, int batch, int c, int h, int w, int stride, int reverse, int add,
                   float *y);
/* layers/upsample.c: forward (reverse = stride was negative) and its adjoint (accumulates). */
void dn_cuda_upsample_forward(const float *in, int bc, int h, int w, int s, int reverse, float scale,
                              float *out, int out_h, int out_w);
void dn_cuda_upsample_backward(const float *delta, int bc, int h, int w, int s, int reverse,
                               float scale, float *in_delta, int out_h, int out_w);
/* layers/shortcut.c's overlap: geometry o[9] = w1,h1,w2,h2,stride,sample,minw,minh,minc. */
void dn_cuda_shortcut_forward(float *out, size_t out_n, const float *add, size_t add_n, int batch,
                              const int *o, float alpha, float beta);
void dn_cuda_shortcut_backward(const float *delta, size_t out_n, float *in_delta, float *add_delta,
                               size_t add_n, int batch, const int *o, float alpha, float beta);

/* ---- misc.cu ---- */
/* Stable softmax of each of rows rows of n values, by temperature. */
void dn_cuda_softmax(const float *in, int rows, int n, float temperature, float *out);
/* in_delta[rows][n] += y (d - sum d*y) / temperature, per row. */
void dn_cuda_softmax_backward(const float *y, const float *d, int rows, int n, float temperature,
                              float *in_delta);
/* mask[n] = 0 with probability p else 1/(1-p), from a counter-based hash of seed;
 * y = x * mask. */
void dn_cuda_dropout(const float *x, size_t n, float p, unsigned long long seed, float *mask, float *y);
/* y[n] += x[n] * m[n]. */
void dn_cuda_mul_add(const float *x, const float *m, size_t n, float *y);

/* ---- ternary.cu ---- */
/* kernels/ref/ternary_ref.c on the device: per group of `per` consecutive
 * weights, delta = 0.7 mean|w|, alpha = mean |w| over |w| > delta, t = +-alpha
 * or 0; alphas[groups] (may be NULL). scratch: dn_cuda_ternary_scratch(groups,
 * per) bytes. Sums in double, in a fixed order (deterministic). */
size_t dn_cuda_ternary_scratch(int groups, size_t per);
void dn_cuda_ternarize_groups(const float *w, int groups, size_t per, float *t, float *alphas,
                              void *scratch);

/* ---- dnn.cu (convolutions on cuDNN, builds with DN_USE_CUDNN) ----
 * Unlike the launchers above these report cuDNN's errors themselves: each
 * returns NULL on success, else a message (static storage). */
/* A cuDNN handle for the current device; NULL with *why NULL in a build
 * without cuDNN, NULL with *why the reason when it cannot be created. */
void *dn_cuda_dnn_create(const char **why);
void dn_cuda_dnn_destroy(void *dnn);
typedef struct {
    int batch, c, h, w;                     /* input */
    int filters, size, stride, pad, groups;
    int out_h, out_w;
} dn_cuda_conv_shape;
typedef struct dn_cuda_conv_plan dn_cuda_conv_plan;
/* Make *plan fit shape s with algorithms using at most limit bytes of
 * workspace (kept when it already does; *plan NULL after a failure). */
const char *dn_cuda_conv_plan_update(void *dnn, dn_cuda_conv_plan **plan, const dn_cuda_conv_shape *s,
                                     size_t limit);
void dn_cuda_conv_plan_free(dn_cuda_conv_plan *plan);
/* The workspace bytes the plan's algorithms need (<= its limit). */
size_t dn_cuda_conv_plan_workspace(const dn_cuda_conv_plan *plan);
/* cuDNN's names of the plan's forward, backward-filter and backward-data algorithms. */
void dn_cuda_conv_plan_algos(const dn_cuda_conv_plan *plan, const char **fwd, const char **bwd_filter,
                             const char **bwd_data);
/* y = conv(x, w); dw += dL/dw (from x, dy); dx += dL/dx (from w, dy). ws:
 * dn_cuda_conv_plan_workspace(p) bytes of device workspace. */
const char *dn_cuda_conv_forward(void *dnn, const dn_cuda_conv_plan *p, const float *x, const float *w, float *y,
                                 void *ws);
const char *dn_cuda_conv_backward_filter(void *dnn, const dn_cuda_conv_plan *p, const float *x, const float *dy,
                                         float *dw, void *ws);
const char *dn_cuda_conv_backward_data(void *dnn, const dn_cuda_conv_plan *p, const float *w, const float *dy,
                                       float *dx, void *ws);

#ifdef __cplusplus
}
#endif

#endif
