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

/* The ternary int8 version (dn_depthwise_s8) is internal to the int8
 * driver and declared in ternary_gemm.h. */

#endif
