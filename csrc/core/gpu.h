/* gpu.h: the CUDA backend's state and the interface between the network
 * code (network_gpu.c), the device layers (layers/..._gpu.c) and device.c.
 * Compiled only with GPU=1 (DN_GPU).
 *
 * Device state mirrors the host one: net->gpu->params/grads/momentum have
 * net->params' layout (a param's device view is params + p->offset), each
 * layer has a device output and delta of batch*outputs floats, and one
 * device workspace serves all layers (im2col). A layer type runs on the
 * device when the GPU registry (layers/registry_gpu.c) has a row for it;
 * any other layer (the detector losses, as in Darknet) runs its CPU
 * forward/backward between copies of its input, output and deltas, which
 * is only allowed for layers without params.
 */
#ifndef DN_GPU_H
#define DN_GPU_H

#include "internal.h"

/* input, input_delta: device arrays of batch*l->inputs floats (input_delta may be NULL). */
typedef struct {
    const char *section;
    dn_status (*forward)(dn_layer *l, dn_network *net, const float *input);
    dn_status (*backward)(dn_layer *l, dn_network *net, const float *input, float *input_delta);
    /* Optional: the bytes of the shared workspace the layer needs at its
     * current shape (without it: its im2col size, l->workspace floats). */
    dn_status (*workspace)(dn_layer *l, dn_network *net, size_t *bytes);
} dn_layer_gpu_ops;

#define DN_GPU_SLOTS 4

struct dn_gpu_layer {
    const dn_layer_gpu_ops *ops;  /* NULL: the layer runs on the host */
    float *output, *delta;        /* device, batch*outputs (delta: training only) */
    size_t cap;                   /* floats allocated at output (and delta) */
    int host_fresh;               /* l->output holds the device output */
    void *slot[DN_GPU_SLOTS];     /* per-type device scratch (dn_gpu_slot) */
    size_t slot_bytes[DN_GPU_SLOTS];
    unsigned long long version;   /* params_version the layer's derived weights were made from */
    struct dn_cuda_conv_plan *plan; /* conv layers on cuDNN: descriptors and algorithms (conv_gpu.c) */
};

struct dn_gpu_net {
    int device;
    void *blas;                   /* dn_cuda_blas_create */
    void *dnn;                    /* dn_cuda_dnn_create; NULL: convolutions use im2col + GEMM */
    float *params, *grads, *momentum;
    float *input, *input_delta;   /* batch*inputs */
    size_t input_cap;
    float *workspace;
    size_t workspace_cap;         /* floats */
    size_t ws_limit;              /* bytes a cuDNN plan may use: net->workspace_limit, or the
                                     largest im2col buffer when that is larger */
    float *host_tmp, *dev_tmp;    /* staging for host layers */
    size_t host_tmp_cap, dev_tmp_cap;
    int params_on_host;           /* net->params equals the device params */
    int params_on_device;         /* the device params equal net->params */
    unsigned long long params_version; /* bumped whenever the device params change (never 0) */
    struct dn_gpu_layer *layers;  /* n */
};

/* ---- for the device layers ---- */
static inline float *dn_gpu_param(dn_network *net, const dn_param *p) { return net->gpu->params + p->offset; }
/* NULL when the param has no gradient (or the net is not training). */
static inline float *dn_gpu_grad(dn_network *net, const dn_param *p)
{
    return (net->gpu->grads && (p->flags & DN_PARAM_TRAIN)) ? net->gpu->grads + p->offset : NULL;
}
/* Device scratch slot k of the layer, grown to at least bytes (kept between
 * calls, freed with the network's device state); NULL with the error set. */
void *dn_gpu_slot(dn_layer *l, int k, size_t bytes);
/* DN_OK, or the pending CUDA error as a dn_status naming `what`. */
dn_status dn_gpu_check(const char *what);
/* Registry of the device layers (layers/registry_gpu.c): NULL when the type has none. */
const dn_layer_gpu_ops *dn_layer_gpu_ops_find(const char *section);

/* ---- the backend behind device.c's hooks (network_gpu.c) ---- */
int dn_gpu_count(void);
dn_status dn_gpu_ternarize(int gpu, const float *w, int groups, size_t per, float *t, float *alphas);
int dn_gpu_device(const dn_network *net);
int dn_gpu_uses_cudnn(const dn_network *net);
dn_status dn_gpu_attach(dn_network *net, int device);
void dn_gpu_detach(dn_network *net);
dn_status dn_gpu_forward(dn_network *net, const float *input);
dn_status dn_gpu_train_step(dn_network *net, const float *images, const float *truth, int n, int max_boxes,
                            float *loss);
dn_status dn_gpu_backward(dn_network *net, const float *out_grad, float *in_grad);
void dn_gpu_zero_grads(dn_network *net);
dn_status dn_gpu_resize(dn_network *net);
void dn_gpu_output_to_host(const dn_network *net, int i);
void dn_gpu_grads_to_host(dn_network *net);
void dn_gpu_params_to_host(const dn_network *net);
void dn_gpu_params_changed(dn_network *net);
void dn_gpu_layer_info(const dn_network *net, int i, dn_layer_info *out);

#endif
