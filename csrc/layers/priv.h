/* priv.h: the private structs of the small layer types, shared by each
 * layer's host file (layers/<type>.c) and its device implementation
 * (layers/layers_gpu.c, GPU=1 builds). */
#ifndef DN_LAYERS_PRIV_H
#define DN_LAYERS_PRIV_H

#include <stddef.h>

/* [maxpool] */
typedef struct {
    int size, stride, pad;
    int *indexes;   /* [batch][c][out_h][out_w], training only: argmax in the h*w plane */
} dn_maxpool;

/* [route] */
typedef struct {
    int n;          /* number of referenced layers */
    int *layers;    /* their indexes, n */
    int groups, group_id;
} dn_route;

/* [reorg] */
typedef struct {
    int stride, reverse;
} dn_reorg;

/* [shortcut] */
typedef struct {
    int from;
    float alpha, beta;
    float *z;   /* batch*outputs pre-activation, training with swish/mish only */
} dn_shortcut;

/* [upsample] */
typedef struct {
    int stride;   /* s > 0 */
    int reverse;  /* 1: stride was negative */
    float scale;
} dn_upsample;

/* [softmax] */
typedef struct {
    int groups;
    float temperature;
} dn_softmax;

/* [dropout] */
typedef struct {
    float probability;
    float *mask;    /* batch*inputs multipliers (0 or 1/(1-p)), training only */
} dn_dropout;

/* [connected] */
typedef struct {
    int outputs;
    int batch_normalize;
    size_t inputs;  /* fixed by the weights' shape */
    /* Training only, one allocation (train) holding: */
    float *train;
    float *var;     /* outputs: batch variance (batch_normalize) */
    float *x_hat;   /* batch*outputs: normalised (batch_normalize) */
    float *z;       /* batch*outputs: pre-activation (swish, mish) */
} dn_connected;

#endif
