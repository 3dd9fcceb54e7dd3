/* depthwise.h: direct depthwise convolution on the CPU (groups = channels =
 * filters: one k x k filter per channel, any stride and padding), the layer
 * kind of depthwise-separable networks (Yolo-Fastest, MobileNet), where
 * per-group im2col + one-row GEMMs spend their time on packing.
 *
 * Each plane is copied once into a zero-padded buffer split into `stride`
 * column phases (column X = stride * j + r goes to phase r, index j), so
 * that for every tap the input row under the output row is one contiguous
 * run: out[ox] += w * phase[ox + kx / stride]. The inner loops are plain
 * vectorisable loops over output columns. Work items are planes (forward)
 * or channels with the batch inside (backward), so results do not depend on
 * the thread count. Kernels never allocate: callers size scratch with
 * dn_depthwise_scratch.
 *
 * Conventions: tensors NCHW float32; weights [channels][size][size].
 */
#ifndef DN_DEPTHWISE_H
#define DN_DEPTHWISE_H

#include "conv_fast.h"

#include <stddef.h>

/* 1 when the shape is a depthwise convolution these kernels compute (size <= 8). */
int dn_depthwise_applies(const dn_conv_shape *s);

/* Scratch floats for nthreads threads (forward and backward). */
size_t dn_depthwise_scratch(const dn_conv_shape *s, int nthreads);

/* output = epilogue(weights (*) input); ep as in conv_fast.h (accumulate:
 * output += the convolution, with scale and shift NULL and act linear). */
void dn_depthwise_forward(const dn_conv_shape *s, const float *input, const float *weights,
                          const dn_epilogue *ep, float *output, float *scratch, int nthreads);

/* From delta = dL/doutput: weight_grad += dL/dweights and input_delta +=
 * dL/dinput; either may be NULL. */
void dn_depthwise_backward(const dn_conv_shape *s, const float *input, const float *weights,
                           const float *delta, float *weight_grad, float *input_delta,
                           float *scratch, int nthreads);

/* Ternary int8 (the int8 kernel of ternary_gemm.h for depthwise shapes,
 * its integers and floats exactly): each plane's activations quantised as
 * dn_quantize_s8_ref with the image's inv[b] (input) or given as int8
 * (xs8, input NULL), codes [channels][size][size] in {-1, 0, +1}, exact
 * integer sums; then out32 = the sums (out32 not NULL) or output =
 * act(sum * (sx[b] * ep->scale[c]) + ep->shift[c]) (ep->pool 0).
 * scratch: dn_depthwise_s8_scratch(s, nthreads) bytes, 64-byte aligned. */
size_t dn_depthwise_s8_scratch(const dn_conv_shape *s, int nthreads);
void dn_depthwise_s8(const dn_conv_shape *s, const float *input, const float *inv, const float *sx,
                     const int8_t *xs8, const int8_t *codes, const dn_epilogue *ep, float *output,
                     int32_t *out32, void *scratch, int nthreads);

#endif
