/* internal.h: private structures shared by the core, the layers and the kernels.
 *
 * A network is an array of layers. Each layer has a small common struct
 * (dn_layer), a per-type private struct (l->priv) and a const ops table.
 * All saved tensors of all layers (biases, BN scales and statistics, weights)
 * live in one allocation, net->params, in .weights file order; a layer's
 * dn_param entries are views into it. Shapes: one image is C*H*W floats, a
 * batch is contiguous images (NCHW).
 */
#ifndef DN_INTERNAL_H
#define DN_INTERNAL_H

#include "darknet.h"
#include "settings.h"
#include "cfg.h"
#include "activations.h"

#include <stdio.h>

#define DN_MAX_PARAMS 6

typedef struct dn_layer dn_layer;
typedef struct dn_network dn_network;

typedef enum {
    DN_PARAM_TRAIN = 1, /* has a gradient and is updated by the optimiser */
    DN_PARAM_DECAY = 2  /* weight decay applies (conv/connected weights) */
} dn_param_flags;

typedef struct {
    const char *name;   /* "biases", "scales", "rolling_mean", "rolling_variance", "weights" */
    size_t n;           /* floats */
    size_t offset;      /* into net->params (and net->grads) */
    int flags;          /* dn_param_flags */
    int ternary_groups; /* > 0: ternary weights with this many alpha groups
                           (1 per layer, or one per filter); 0: float */
    float *data;        /* view: net->params + offset */
    float *grad;        /* view: net->grads + offset, NULL until training */
} dn_param;

typedef struct {
    const char *section;  /* cfg section name */
    /* Read options from s, declare params (dn_layer_add_param). Input shape
     * l->c,h,w and l->batch are set. May allocate l->priv. */
    dn_status (*parse)(dn_layer *l, dn_cfg_section *s, dn_network *net);
    /* (Re)compute the output shape from the input shape and (re)allocate
     * l->output (and l->delta when net->train). Also sets l->workspace and l->flops. */
    dn_status (*resize)(dn_layer *l, dn_network *net);
    /* Random initialisation of the params (after they are allocated). */
    void (*init_params)(dn_layer *l, dn_network *net);
    /* input: batch*l->inputs floats (previous layer's output or the net input).
     * forward and backward return a status (an allocation that failed). */
    dn_status (*forward)(dn_layer *l, dn_network *net, const float *input);
    /* Accumulate into the params' grads and into input_delta (may be NULL). */
    dn_status (*backward)(dn_layer *l, dn_network *net, const float *input, float *input_delta);
    /* Optional, inference on the host: compute next's output (next is the
     * following layer, the only reader of l's output) directly from input,
     * without l's output (the network then marks it stale). Returns 1 when
     * done, 0 when the pair does not fuse (both forwards then run), -1 on
     * an error (its message set). */
    int (*forward_fused)(dn_layer *l, dn_layer *next, dn_network *net, const float *input);
    /* Fill the type-specific fields of info (may be NULL). */
    void (*describe)(const dn_layer *l, dn_layer_info *info);
    void (*free_priv)(dn_layer *l);
    /* Optional, detectors (training, after forward): add the distillation
     * loss towards teacher, the teacher's matching detector layer after its
     * forward on the same input, times weight, to l->delta (dL/d(input));
     * returns that loss (core/distill.c). */
    double (*distill)(dn_layer *l, const dn_layer *teacher, float weight);
} dn_layer_ops;

struct dn_layer {
    const dn_layer_ops *ops;
    int index;
    int line;                   /* cfg line of the section header */
    int batch;
    int c, h, w;                /* input shape of one image */
    int out_c, out_h, out_w;    /* output shape of one image */
    size_t inputs, outputs;     /* c*h*w, out_c*out_h*out_w */
    float *output;              /* batch*outputs, owned */
    float *delta;               /* batch*outputs, owned, training only */
    dn_activation act;
    double flops;               /* per image */
    size_t workspace;           /* floats this layer needs in net->workspace */
    int nparams;
    dn_param params[DN_MAX_PARAMS];
    int ternary;                /* ternary=1 (conv) */
    int is_detector;            /* region/yolo/detection: contributes detections */
    int max_boxes;              /* detectors: truth boxes per image (cfg `max`) */
    float cost;                 /* loss of the last forward (detectors) */
    double forward_ms;          /* wall time in the last host forward (dn_layer_info) */
    int referenced;             /* a route or shortcut reads this output */
    int stale;                  /* output skipped by a fused forward (forward_fused):
                                   dn_network_layer_output computes it on demand */
    void *priv;
    struct dn_gpu_layer *gpu;   /* device state (core/gpu.h), NULL on the host */
};

/* Training hyperparameters of [net]. */
typedef enum {
    DN_POLICY_CONSTANT, DN_POLICY_STEP, DN_POLICY_STEPS, DN_POLICY_EXP,
    DN_POLICY_POLY, DN_POLICY_SIGMOID, DN_POLICY_RANDOM
} dn_policy;

typedef struct {
    int batch, subdivisions;
    float learning_rate, momentum, decay;
    int burn_in; float power;
    int max_batches;
    dn_policy policy;
    int step; float gamma, scale;  /* step/exp/sigmoid */
    int nsteps; int *steps; float *scales;
    float angle, saturation, exposure, hue, aspect;
    int min_crop, max_crop;
    float jitter; int random;      /* from the detector layer, for the loader */
    float resize;                  /* AlexeyAB's [yolo] resize: random scale of the crop (1: none) */
    int flip;                      /* random horizontal flips (AlexeyAB's [net] flip, default 1) */
} dn_hparams;

struct dn_network {
    char *cfg_path;
    int n;
    dn_layer *layers;
    int batch, c, h, w;        /* input shape */
    size_t inputs;             /* c*h*w */
    float *input;              /* batch*inputs, owned copy of the last input */
    float *params;             /* all saved floats, .weights order */
    float *grads;              /* same size, training only */
    float *momentum;           /* same size, training only */
    size_t nparams;
    float *workspace;          /* shared scratch (im2col...) */
    size_t workspace_size;     /* floats */
    size_t workspace_limit;    /* bytes a cuDNN algorithm may use ([net] workspace_size_limit_MB) */
    int train;                 /* 1: keep deltas, compute losses */
    int bn_fresh;              /* BN rolling statistics still at their random-init
                                  values: the first training batch sets them */
    int bn_average;            /* > 0: recalibrating, this is batch k of a plain average */
    int nthreads;
    int ternary_kernel;        /* dn_ternary_kernel of ternary conv inference */
    int alexeyab;              /* the cfg uses AlexeyAB's options ([yolo] or [net] keys of his fork) */
    int letterbox;             /* input placement: 1 letterbox, 0 stretch (dn_network_letterbox) */
    int cfg_letterbox;         /* the cfg's choice (dn_network_set_letterbox(net, -1) goes back to it) */
    int nms_kind;              /* dn_nms_kind of the last [yolo] layer that names one */
    float beta_nms;            /* its beta_nms (DIoU-NMS) */
    /* What the caches derived from the params (conv.h: dn_wstamp) compare:
     * params_version is bumped by dn_params_changed after the library writes
     * net->params (see there); params_views is set once writable views
     * have been handed out (dn_network_layer_param), after which the caches
     * also hash the weights to notice writes through those views. */
    uint64_t params_version;
    int params_views;
    int major, minor, revision;
    uint64_t seen;
    uint64_t rng;              /* state for init / dropout */
    dn_hparams hp;
    float *truth;              /* training labels, truth_batch*truths */
    int truths;                /* floats per image: max_boxes*5 */
    int truth_batch;           /* images in truth (dn_network_set_truth) */
    struct dn_gpu_net *gpu;    /* CUDA backend state (core/gpu.h), NULL on the host */
    dn_network *teacher;       /* distillation (dn_network_set_teacher), not owned, or NULL */
    int *teacher_layer;        /* per layer: the teacher's matching detector layer, or -1 */
    float distill;             /* weight of the distillation loss */
};

/* Training forward with a teacher (core/distill.c): the teacher's forward
 * on the same input, before the student's layers run. */
dn_status dn_distill_teacher_forward(dn_network *net, const float *input);
/* After detector layer l's training forward: its distillation loss added. */
void dn_distill_layer(dn_network *net, dn_layer *l);

/* Return from the calling function with x's status when it is not DN_OK. */
#define TRY(x) do { dn_status st_ = (x); if (st_ != DN_OK) return st_; } while (0)

/* ---- helpers shared by layers ---- */
dn_status dn_layer_add_param(dn_layer *l, const char *name, size_t n, int flags);
dn_param *dn_layer_param(dn_layer *l, const char *name); /* NULL if absent */
/* Allocate (or reallocate) l->output/l->delta for batch*outputs floats. */
dn_status dn_layer_alloc_output(dn_layer *l, dn_network *net);
/* Largest tensor a layer may declare or output, in floats (default and 0:
 * INT_MAX, as the kernels index with int); the fuzz targets lower it. */
void dn_set_tensor_limit(size_t floats);
/* Largest image dn_image_load decodes, in pixels (default and <= 0: 2^26). */
void dn_set_image_limit(int64_t pixels);
/* Resolve a cfg layer reference (negative: relative to index) and mark
 * that layer referenced. */
dn_status dn_layer_ref(dn_network *net, int index, int v, int *out,
                       const dn_cfg_section *s, const char *key);

/* Weight of the current batch in the BN rolling statistics: Darknet's .01,
 * 1 for the first batch of a network that was never loaded or trained, and
 * 1/k for batch k of a recalibration (dn_network_bn_recalibrate). */
static inline float dn_bn_momentum(const dn_network *net)
{
    return net->bn_average > 0 ? 1.f / net->bn_average : (net->bn_fresh ? 1.f : .01f);
}

/* Batch-norm recalibration to the population statistics of some images
 * (train.c): begin, one step per sub-batch (net->batch images), end (which
 * writes the variances and restores the training mode). */
typedef struct {
    int k, was_train;
    float *prev;     /* rolling means after the previous step, all BN channels */
    double *sum_sq;  /* sum over steps of the step's mean squared */
} dn_bn_recal;
dn_status dn_bn_recal_begin(dn_network *net, dn_bn_recal *r);
dn_status dn_bn_recal_step(dn_network *net, dn_bn_recal *r, const float *images);
dn_status dn_bn_recal_end(dn_network *net, dn_bn_recal *r);

/* Darknet's letterbox size (image.c): an iw x ih image scaled to fit w x h
 * keeping its aspect, in its integer arithmetic (at least 1 x 1). */
void dn_letterbox_size(int iw, int ih, int w, int h, int *new_w, int *new_h);

/* Uniform float in [0,1) and standard normal from net->rng. */
float dn_rand_uniform(uint64_t *state);
float dn_rand_normal(uint64_t *state);

/* Error reporting (status.c). */
dn_status dn_error(dn_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void dn_warn(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* Allocation with the failure reported (NULL and the error set) and the
 * tests' failure hook (dn_test_fail_allocation); free() releases. */
void *dn_calloc(size_t n, size_t size);
void *dn_malloc(size_t bytes);
void *dn_realloc(void *p, size_t bytes);
void *dn_aligned_alloc(size_t align, size_t bytes); /* bytes rounded up to align */

/* Write .weights from a parameter block laid out as net->params (weights.c).
 * ternarize: ternary params are written as their TWN values (the standard
 * .weights of a ternary net); 0 writes the float shadow weights (.backup). */
dn_status dn_weights_write(const dn_network *net, const char *path, int upto,
                           const float *block, uint64_t seen, int ternarize);

/* Optimiser (optim.c): apply and clear net->grads with the SGD rule; B is
 * the number of images the grads were summed over. */
void dn_sgd_update(dn_network *net, float lr, float B);

/* Every write the library makes to net->params (weights loading, the
 * optimiser, batch-norm recalibration, copies between networks or back from
 * a device) is followed by this call: it bumps net->params_version, which
 * the caches derived from the weights compare, and marks the device copy
 * stale (dn_device_params_changed). One exception: the running averages of
 * the batch-norm statistics that each training forward updates as it goes
 * (no cache is derived from them, the inference forward folds them anew
 * each time; bumping there would remake the caches at every sub-batch). */
void dn_params_changed(dn_network *net);

/* Device hooks (device.c). The network runs on a CUDA device when net->gpu
 * is set (dn_network_set_device); these entry points hand over to the CUDA
 * backend then, and are no-ops (or unreachable) on the host. The host
 * net->params is a mirror: call dn_device_params_to_host before reading it
 * and dn_params_changed after writing it. */
dn_status dn_device_forward(dn_network *net, const float *input);
dn_status dn_device_train_step(dn_network *net, const float *images, const float *truth, int n,
                               int max_boxes, float *loss);
dn_status dn_device_backward(dn_network *net, const float *out_grad, float *in_grad);
void dn_device_zero_grads(dn_network *net);
dn_status dn_device_resize(dn_network *net);
/* The device-side fields of layer i's info (its cuDNN algorithms). */
void dn_device_layer_info(const dn_network *net, int i, dn_layer_info *out);
void dn_device_free(dn_network *net);
void dn_device_output_to_host(const dn_network *net, int i);
void dn_device_grads_to_host(dn_network *net);
void dn_device_params_to_host(const dn_network *net);
void dn_device_params_changed(dn_network *net);

/* Layer registry (layers/registry.c): lookup by section name. */
const dn_layer_ops *dn_layer_ops_find(const char *section);

#endif
