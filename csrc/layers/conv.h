/* conv.h: the [convolutional] layer's private struct, shared with the
 * ternary and CUDA code that work on conv layers. */
#ifndef DN_CONV_H
#define DN_CONV_H

#include "../core/internal.h"

typedef struct {
    int filters, size, stride, pad, groups;
    int batch_normalize;
} dn_conv;

/* output[b][f][oh][ow] = sum weights * input over the layer's groups (no bias). */
void dn_conv_gemm(const dn_layer *l, const float *weights, const float *input,
                  float *workspace, float *output);

#endif
