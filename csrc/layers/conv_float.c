/* conv_float.c: the float paths of a [convolutional] layer, and the weights
 * a forward multiplies by (the float weights, or for ternary=1 their cached
 * TWN values, dn_conv_weights).
 *
 * The inference forward (dn_conv_forward_float) picks a kernel per layer: the direct
 * depthwise kernel of kernels/cpu/depthwise.c for groups = channels =
 * filters (forward and both backward products, also in training), the direct
 * kernel of kernels/cpu/conv_fast.c for stride-1 layers with few input
 * channels (the first layer), Winograd F(4x4,3x3) (kernels/cpu/winograd.c)
 * for 3x3 stride-1 groups=1 layers, the implicit-im2col GEMM of conv_fast.c
 * for everything else; all apply the folded BN/bias and the activation as
 * they store. The original path above (dn_conv_gemm, then separate BN and
 * activation passes) stays as the reference and as the fallback when
 * scratch cannot be allocated. The setting conv_algo
 * (auto|ref|gemm|winograd|direct, core/settings.c) forces a path for tests
 * and benchmarks; winograd and direct fall back to gemm where they do not
 * apply.
 *
 * The TWN values and the transformed Winograd weights are cached in the
 * layer's private data and remade when the weights changed:
 * dn_wstamp_check, defined here for the three weight caches of conv layers
 * (these two and conv_ternary.c's codes), compares the weights' address and the network's
 * params_version, which the library bumps after writing the params
 * (dn_params_changed: load_weights, the optimiser...), and, once
 * Network.params() views are out, the weights' content hash (one read of
 * the weights per forward).
 */
#include "../core/internal.h"
#include "../kernels/cpu/checksum.h"
#include "../kernels/cpu/conv_fast.h"
#include "../kernels/cpu/depthwise.h"
#include "../kernels/cpu/gemm.h"
#include "../kernels/cpu/im2col.h"
#include "../kernels/cpu/parallel.h"
#include "../kernels/cpu/winograd.h"
#include "../kernels/ref/ternary.h"
#include "conv.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void dn_conv_float_free(dn_conv *p)
{
    free(p->fast.scale);
    free(p->fast.shift);
    free(p->fast.wino);
    free(p->fast.scratch);
    free(p->fast.wt);
    free(p->tweights);
}

void dn_conv_gemm(const dn_layer *l, const float *weights, const float *input,
                  float *workspace, float *output)
{
    const dn_conv *p = l->priv;
    int g = p->groups, ng = p->filters / g, cg = l->c / g;
    int k = cg * p->size * p->size, hw = l->out_h * l->out_w;
    int direct = p->size == 1 && p->stride == 1 && p->pad == 0;
    for (int b = 0; b < l->batch; ++b)
        for (int j = 0; j < g; ++j) {
            const float *im = input + ((size_t)b * l->c + (size_t)j * cg) * l->h * l->w;
            const float *col = im;
            if (!direct) {
                dn_im2col(im, cg, l->h, l->w, p->size, p->stride, p->pad, l->out_h, l->out_w, workspace);
                col = workspace;
            }
            float *out = output + ((size_t)b * p->filters + (size_t)j * ng) * hw;
            dn_gemm(0, 0, ng, hw, k, 1.f, weights + (size_t)j * ng * k, k, col, hw, 0.f, out, hw);
        }
}

/* Per-filter affine epilogue out = out * a[f] + b[f] for inference. */
static void epilogue_reference(dn_layer *l)
{
    dn_conv *p = l->priv;
    const float *bias = dn_layer_param(l, "biases")->data;
    int n = p->filters, hw = l->out_h * l->out_w;
    for (int b = 0; b < l->batch; ++b)
        for (int f = 0; f < n; ++f) {
            float a = 1.f, c = bias[f];
            if (p->batch_normalize) {
                float sc = dn_layer_param(l, "scales")->data[f];
                float m = dn_layer_param(l, "rolling_mean")->data[f];
                float v = dn_layer_param(l, "rolling_variance")->data[f];
                a = sc / sqrtf(v + .000001f);
                c = bias[f] - m * a;
            }
            float *o = l->output + ((size_t)b * n + f) * hw;
            for (int i = 0; i < hw; ++i) o[i] = o[i] * a + c;
        }
}

static int winograd_applies(const dn_layer *l)
{
    const dn_conv *p = l->priv;
    return p->size == 3 && p->stride == 1 && p->groups == 1;
}

static int direct_applies(const dn_layer *l)
{
    const dn_conv *p = l->priv;
    return p->stride == 1 && p->groups == 1;
}

/* Auto choice of Winograd: it computes 36 products per 4x4 tile where
 * direct computes 9 per pixel; partial edge tiles waste some, and with few
 * input channels the transforms cost more than the GEMM saves. Layers with
 * few channels (the first layer) go to the direct kernel instead, where
 * packing im2col panels would cost more than the arithmetic. */
static int winograd_pays_shape(int c, int out_h, int out_w)
{
    int tiles = ((out_h + 3) / 4) * ((out_w + 3) / 4);
    return c >= 8 && 36.0 * tiles <= .6 * 9.0 * out_h * out_w;
}

static int winograd_pays(const dn_layer *l)
{
    return winograd_pays_shape(l->c, l->out_h, l->out_w);
}

/* In training the filter transform is remade at every step (the weights
 * change), once for the forward and once for dL/dinput: it pays only when
 * the multiplications Winograd saves per filter and channel over the batch,
 * (9 * pixels - 36 * tiles) * batch, outweigh writing its 36 floats, which
 * costs about as long as TRANSFORM_MACS multiply-adds of the GEMM (so at
 * batch 1 the 13x13 layers stay on the packed GEMM). */
#define TRANSFORM_MACS 1500.0
static int winograd_pays_train(int batch, int out_h, int out_w)
{
    int tiles = ((out_h + 3) / 4) * ((out_w + 3) / 4);
    return (9.0 * out_h * out_w - 36.0 * tiles) * batch > TRANSFORM_MACS;
}

/* The TWN values of the float weights, from the cache when it is valid. */
static const float *ternary_weights(dn_layer *l, const dn_network *net)
{
    dn_conv *p = l->priv;
    dn_param *w = dn_layer_param(l, "weights");
    if (dn_wstamp_check(&p->tweights_stamp, net, w->data, w->n)) return p->tweights;
    if (!p->tweights && !(p->tweights = dn_malloc(w->n * sizeof(float)))) {
        dn_error(DN_ERR_NOMEM, "layer %d [convolutional]: out of memory for ternary weights", l->index);
        return NULL;
    }
    dn_ternarize_groups(w->data, w->ternary_groups, w->n / (size_t)w->ternary_groups, p->tweights, NULL);
    p->tweights_stamp.valid = 1;
    return p->tweights;
}

const float *dn_conv_weights(dn_layer *l, const dn_network *net)
{
    return l->ternary ? ternary_weights(l, net) : dn_layer_param(l, "weights")->data;
}

int dn_wstamp_check(dn_wstamp *s, const dn_network *net, const float *w, size_t n)
{
    int hash = net->params_views;
    uint64_t sum = hash ? dn_checksum_floats(w, n) : 0;
    if (s->valid && s->src == w && s->version == net->params_version && (!hash || (s->hashed && s->sum == sum)))
        return 1;
    *s = (dn_wstamp){w, net->params_version, sum, hash, 0};
    return 0;
}

static float *alloc_aligned(size_t n) { return dn_aligned_alloc(64, n * sizeof(float)); }

static dn_conv_shape conv_shape(const dn_layer *l)
{
    const dn_conv *p = l->priv;
    return (dn_conv_shape){l->batch, l->c, l->h, l->w, p->filters, p->size, p->stride, p->pad,
                           p->groups, l->out_h, l->out_w};
}

/* Kernel scratch of n floats, 64-byte aligned: the network's shared
 * workspace (sized for im2col, which needs more than the fast paths for
 * the usual shapes) when it is large enough, else the layer's own buffer. */
static float *scratch(dn_conv *cp, dn_network *net, size_t n)
{
    if (net->workspace && net->workspace_size >= n + 16) {
        uintptr_t a = (uintptr_t)net->workspace;
        return net->workspace + ((64 - a % 64) % 64) / sizeof(float);
    }
    if (n > cp->fast.scratch_cap) {
        free(cp->fast.scratch);
        cp->fast.scratch = alloc_aligned(n);
        cp->fast.scratch_cap = cp->fast.scratch ? n : 0;
    }
    return cp->fast.scratch;
}

/* Folded inference epilogue: out = out * scale[f] + shift[f]. */
static int fold_epilogue(dn_layer *l, dn_epilogue *ep)
{
    dn_conv *cp = l->priv;
    const dn_conv *p = cp;
    int n = p->filters;
    if (!cp->fast.scale) cp->fast.scale = dn_malloc(sizeof(float) * (size_t)n);
    if (!cp->fast.shift) cp->fast.shift = dn_malloc(sizeof(float) * (size_t)n);
    if (!cp->fast.scale || !cp->fast.shift) return 0;
    const float *bias = dn_layer_param(l, "biases")->data;
    if (p->batch_normalize) {
        const float *sc = dn_layer_param(l, "scales")->data;
        const float *m = dn_layer_param(l, "rolling_mean")->data;
        const float *v = dn_layer_param(l, "rolling_variance")->data;
        for (int f = 0; f < n; ++f) {
            cp->fast.scale[f] = sc[f] / sqrtf(v[f] + .000001f);
            cp->fast.shift[f] = bias[f] - m[f] * cp->fast.scale[f];
        }
        ep->scale = cp->fast.scale;
    } else {
        memcpy(cp->fast.shift, bias, sizeof(float) * (size_t)n);
        ep->scale = NULL;
    }
    ep->shift = cp->fast.shift;
    ep->act = dn_epilogue_fuses(l->act) ? l->act : DN_ACT_LINEAR;
    ep->accumulate = 0;
    ep->pool = 0;
    return 1;
}

/* U for the weights in use (float or ternary): cached, remade when they
 * changed. */
static const float *winograd_weights(dn_layer *l, const dn_network *net, const float *weights)
{
    dn_conv *cp = l->priv;
    const dn_param *w = dn_layer_param(l, "weights");
    if (dn_wstamp_check(&cp->fast.wino_stamp, net, weights, w->n)) return cp->fast.wino;
    size_t n = dn_winograd43_weights_size(cp->filters, l->c);
    if (n > cp->fast.wino_cap) {
        free(cp->fast.wino);
        cp->fast.wino = alloc_aligned(n);
        cp->fast.wino_cap = cp->fast.wino ? n : 0;
        if (!cp->fast.wino) return NULL;
    }
    dn_winograd43_weights(weights, cp->filters, l->c, cp->fast.wino);
    cp->fast.wino_stamp.valid = 1;
    return cp->fast.wino;
}

int dn_conv_forward_fast(dn_layer *l, dn_network *net, const float *input, const float *weights,
                         const dn_epilogue *ep, float *output)
{
    int algo = dn_option(DN_OPT_CONV_ALGO);
    if (algo == DN_CONV_REF) return 0;
    dn_conv *cp = l->priv;
    dn_conv_shape s = conv_shape(l);
    int nth = dn_parallel_threads();
    if (dn_depthwise_applies(&s) && (algo == DN_CONV_AUTO || algo == DN_CONV_DIRECT)) {
        float *ws = scratch(cp, net, dn_depthwise_scratch(&s, nth));
        if (!ws) return 0;
        dn_depthwise_forward(&s, input, weights, ep, output, ws, nth);
        return 1;
    }
    int wino = winograd_applies(l) &&
               (algo == DN_CONV_WINOGRAD ||
                (algo == DN_CONV_AUTO && winograd_pays(l) &&
                 (!net->train || winograd_pays_train(l->batch, l->out_h, l->out_w))));
    int direct = !wino && direct_applies(l) && (algo == DN_CONV_DIRECT || (algo == DN_CONV_AUTO && l->c <= 4));
    if (direct) {
        float *ws = scratch(cp, net, dn_conv_direct_scratch(&s));
        if (!ws) return 0;
        dn_conv_direct(&s, input, weights, ep, output, ws, nth);
    } else if (wino) {
        const float *u = winograd_weights(l, net, weights);
        float *ws = u ? scratch(cp, net, dn_winograd43_scratch(&s, nth)) : NULL;
        if (!ws) return 0;
        dn_winograd43_forward(&s, input, u, ep, output, ws, nth);
    } else {
        float *ws = scratch(cp, net, dn_conv_fast_gemm_scratch(&s, nth));
        if (!ws) return 0;
        dn_conv_fast_gemm(&s, input, weights, ep, output, ws, nth);
    }
    return 1;
}

/* wt[ch][f][ky][kx] = w[f][ch][size-1-ky][size-1-kx]. */
typedef struct {
    const float *w;
    float *wt;
    int filters, c, kk;
} transpose_job;

static void transpose_item(void *ctx, int ch, int tid)
{
    (void)tid;
    const transpose_job *j = ctx;
    for (int f = 0; f < j->filters; ++f) {
        const float *src = j->w + ((size_t)f * j->c + ch) * j->kk;
        float *dst = j->wt + ((size_t)ch * j->filters + f) * j->kk;
        for (int t = 0; t < j->kk; ++t) dst[t] = src[j->kk - 1 - t];
    }
}

int dn_conv_backward_input_fast(dn_layer *l, dn_network *net, const float *weights, const float *delta,
                                float *input_delta)
{
    int algo = dn_option(DN_OPT_CONV_ALGO);
    dn_conv *cp = l->priv;
    const dn_conv *p = cp;
    if (algo == DN_CONV_REF || p->stride != 1 || p->groups != 1 || p->pad > p->size - 1) return 0;
    /* the transposed convolution: filters -> c channels, padding size-1-pad */
    dn_conv_shape s = {l->batch, p->filters, l->out_h, l->out_w, l->c, p->size, 1, p->size - 1 - p->pad,
                       1, l->h, l->w};
    dn_epilogue ep = {NULL, NULL, DN_ACT_LINEAR, 1, 0};
    int nth = dn_parallel_threads();
    int wino = p->size == 3 &&
               (algo == DN_CONV_WINOGRAD || (algo == DN_CONV_AUTO && winograd_pays_shape(p->filters, l->h, l->w) &&
                                          winograd_pays_train(l->batch, l->h, l->w)));
    if (wino) {
        /* the forward's cache is stale after the next update anyway: reuse its buffer */
        size_t n = dn_winograd43_weights_size(l->c, p->filters);
        if (n > cp->fast.wino_cap) {
            free(cp->fast.wino);
            cp->fast.wino = alloc_aligned(n);
            cp->fast.wino_cap = cp->fast.wino ? n : 0;
        }
        cp->fast.wino_stamp.valid = 0;
        float *ws = cp->fast.wino ? scratch(cp, net, dn_winograd43_scratch(&s, nth)) : NULL;
        if (!ws) return 0;
        dn_winograd43_weights_transposed(weights, p->filters, l->c, cp->fast.wino);
        dn_winograd43_forward(&s, delta, cp->fast.wino, &ep, input_delta, ws, nth);
        return 1;
    }
    size_t nw = (size_t)p->filters * l->c * p->size * p->size;
    if (nw > cp->fast.wt_cap) {
        free(cp->fast.wt);
        cp->fast.wt = dn_malloc(nw * sizeof(float));
        cp->fast.wt_cap = cp->fast.wt ? nw : 0;
        if (!cp->fast.wt) return 0;
    }
    float *ws = scratch(cp, net, dn_conv_fast_gemm_scratch(&s, nth));
    if (!ws) return 0;
    transpose_job tj = {weights, cp->fast.wt, p->filters, l->c, p->size * p->size};
    dn_parallel_for(l->c, nth, transpose_item, &tj);
    dn_conv_fast_gemm(&s, delta, cp->fast.wt, &ep, input_delta, ws, nth);
    return 1;
}

int dn_conv_backward_depthwise(dn_layer *l, dn_network *net, const float *input, const float *weights,
                               const float *delta, float *weight_grad, float *input_delta)
{
    int algo = dn_option(DN_OPT_CONV_ALGO);
    dn_conv *cp = l->priv;
    dn_conv_shape s = conv_shape(l);
    if (!dn_depthwise_applies(&s) || !(algo == DN_CONV_AUTO || algo == DN_CONV_DIRECT)) return 0;
    int nth = dn_parallel_threads();
    float *ws = scratch(cp, net, dn_depthwise_scratch(&s, nth));
    if (!ws) return 0;
    dn_depthwise_backward(&s, input, weights, delta, weight_grad, input_delta, ws, nth);
    return 1;
}

dn_status dn_conv_forward_float(dn_layer *l, dn_network *net, const float *input)
{
    const float *weights = dn_conv_weights(l, net);
    if (!weights) return DN_ERR_NOMEM; /* the message is set */
    dn_epilogue ep;
    if (fold_epilogue(l, &ep) && dn_conv_forward_fast(l, net, input, weights, &ep, l->output)) {
        if (!dn_epilogue_fuses(l->act)) dn_activate(l->output, (size_t)l->batch * l->outputs, l->act);
        return DN_OK;
    }
    dn_conv_gemm(l, weights, input, net->workspace, l->output);
    epilogue_reference(l);
    dn_activate(l->output, (size_t)l->batch * l->outputs, l->act);
    return DN_OK;
}

