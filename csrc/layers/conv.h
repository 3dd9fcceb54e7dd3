/* conv.h: the [convolutional] layer's private struct and what its files
 * give each other: conv.c (the layer: cfg, dispatch) over conv_train.c
 * (training), conv_ternary.c (ternary kernels) and conv_gpu.c (device),
 * all over conv_float.c (float paths, weight caches). */
#ifndef DN_CONV_H
#define DN_CONV_H

#include "../core/internal.h"
#include "../kernels/cpu/conv_fast.h"

#include <stdint.h>

/* What a cache derived from a layer's weights (Winograd filters, TWN
 * values, ternary codes and panels) was made from: the weights' address,
 * net->params_version and, when hashed, their content hash. */
typedef struct {
    const float *src;
    uint64_t version;
    uint64_t sum;     /* dn_checksum_floats(src, n), when hashed */
    int hashed, valid;
} dn_wstamp;

/* 1 when the cache stamped *s still holds for the n weights at w: valid,
 * the same address and net->params_version and, once writable views of the
 * params are out (net->params_views), the same content hash (one read of
 * the weights, so that writes through the views are noticed). Otherwise 0,
 * and *s describes w now but stays invalid: the caller remakes the cache
 * and then sets s->valid = 1. */
int dn_wstamp_check(dn_wstamp *s, const dn_network *net, const float *w, size_t n);

/* The layer's private data (l->priv), one part per file that works on it. */
typedef struct {
    /* conv.c: the cfg's options */
    int filters, size, stride, pad, groups;
    int batch_normalize;
    int ternary_per_filter;   /* ternary_scale=filter: one alpha per filter (else per layer) */
    /* conv_float.c: the TWN values of the float weights (dn_conv_weights),
     * made from what tweights_stamp says */
    float *tweights;
    dn_wstamp tweights_stamp;
    /* conv_float.c: what the fast float paths keep between calls */
    struct {
        float *scale, *shift;   /* [filters]: folded BN or bias, refreshed each forward */
        float *wino;            /* dn_winograd43_weights of the weights wino_stamp names, or NULL */
        size_t wino_cap;        /* floats allocated at wino */
        dn_wstamp wino_stamp;
        float *scratch;         /* kernel scratch when net->workspace is too small */
        size_t scratch_cap;     /* floats */
        float *wt;              /* training: transposed, rotated weights for dL/dinput */
        size_t wt_cap;          /* floats */
    } fast;
    /* conv_train.c: training state (batch-norm variance, x_hat, pre-activation)
     * of train_floats floats; per-thread im2col columns and partial weight
     * gradients of the batch-parallel backward (bwd_floats floats) */
    float *train_state;
    size_t train_floats;
    float *bwd_scratch;
    size_t bwd_floats;
    /* conv_ternary.c: codes and packed weights for the ternary kernels */
    struct dn_tcache *tcache;
} dn_conv;

/* The weights a forward multiplies by: the float weights, or for ternary=1
 * their TWN ternarisation of the float shadow weights (which the optimiser
 * keeps updating: straight-through). The TWN values are cached and remade
 * only when the float weights changed (dn_wstamp_check). NULL when out of
 * memory. */
const float *dn_conv_weights(dn_layer *l, const dn_network *net);

/* output = ep(conv(input, weights)) on the fast kernels (conv_float.c's choice
 * of direct / Winograd / implicit-im2col GEMM, the setting conv_algo); the caller
 * runs the activation when !dn_epilogue_fuses(ep->act). Returns 0, writing
 * nothing, when conv_algo=ref or scratch cannot be allocated (then use
 * dn_conv_gemm). The Winograd filters are cached (dn_wstamp_check). */
int dn_conv_forward_fast(dn_layer *l, dn_network *net, const float *input, const float *weights,
                         const dn_epilogue *ep, float *output);

/* Training: input_delta += dL/dinput of delta = dL/d(conv output) as the
 * transposed convolution on the fast kernels (rotated, transposed weights;
 * Winograd for 3x3, else the packed GEMM), for stride-1 groups-1 layers
 * with pad <= size - 1. Returns 0 (nothing done) for other layers, with
 * conv_algo=ref or without memory. Leaves the forward's Winograd cache
 * invalid (its buffer is reused). */
int dn_conv_backward_input_fast(dn_layer *l, dn_network *net, const float *weights, const float *delta,
                                float *input_delta);

/* Training, depthwise layers (groups = channels = filters): weight_grad +=
 * dL/dweights and input_delta += dL/dinput (either NULL) on the direct
 * kernel. Returns 0 (nothing done) for other layers, with
 * conv_algo=ref|gemm|winograd or without memory. */
int dn_conv_backward_depthwise(dn_layer *l, dn_network *net, const float *input, const float *weights,
                               const float *delta, float *weight_grad, float *input_delta);

/* Inference forward on the float paths (the fast kernels, else the
 * reference GEMM with separate epilogue passes). */
dn_status dn_conv_forward_float(dn_layer *l, dn_network *net, const float *input);
/* Release conv_float.c's part of the private data. */
void dn_conv_float_free(dn_conv *p);

/* output[b][f][oh][ow] = sum weights * input over the layer's groups (no bias). */
void dn_conv_gemm(const dn_layer *l, const float *weights, const float *input,
                  float *workspace, float *output);

/* Training (conv_train.c). Forward in training mode: GEMM, then batch norm
 * with the batch statistics (or bias), then the activation, keeping what
 * backward needs. Backward: from l->delta = dL/doutput (modified in place),
 * adds the biases/scales/weights grads and dL/dinput into input_delta (may
 * be NULL). */
dn_status dn_conv_forward_train(dn_layer *l, dn_network *net, const float *input);
dn_status dn_conv_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta);

#endif
