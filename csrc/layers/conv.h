/* conv.h: the [convolutional] layer's private struct, shared with the
 * ternary and CUDA code that work on conv layers. */
#ifndef DN_CONV_H
#define DN_CONV_H

#include "../core/internal.h"

typedef struct {
    int filters, size, stride, pad, groups;
    int batch_normalize;
    /* conv_train.c: training state (batch-norm variance, x_hat, pre-activation)
     * of train_floats floats, freed by conv.c's free_priv. */
    float *train_state;
    size_t train_floats;
    /* ternary=1: ternary_scale=filter gives one alpha per filter (else one
     * per layer); tweights holds the TWN weights of the last forward. */
    int ternary_per_filter;
    float *tweights;
    /* conv_ternary.c: codes and packed weights for the ternary kernels,
     * freed by dn_conv_ternary_free. */
    struct dn_tcache *tcache;
} dn_conv;

/* The weights a forward multiplies by: the float weights, or for ternary=1
 * their TWN ternarisation (recomputed from the float shadow weights, which
 * the optimiser keeps updating: straight-through). NULL when out of memory. */
const float *dn_conv_weights(dn_layer *l);

/* output[b][f][oh][ow] = sum weights * input over the layer's groups (no bias). */
void dn_conv_gemm(const dn_layer *l, const float *weights, const float *input,
                  float *workspace, float *output);

/* Training (conv_train.c). Forward in training mode: GEMM, then batch norm
 * with the batch statistics (or bias), then the activation, keeping what
 * backward needs. Backward: from l->delta = dL/doutput (modified in place),
 * adds the biases/scales/weights grads and dL/dinput into input_delta (may
 * be NULL). */
void dn_conv_forward_train(dn_layer *l, dn_network *net, const float *input);
void dn_conv_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta);

#endif
