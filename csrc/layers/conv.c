/* conv.c: [convolutional] layer.
 *
 * Params (file order): biases[n], when batch_normalize scales[n],
 * rolling_mean[n], rolling_variance[n]; then weights[n][c/groups][size][size].
 * Forward per image and group: im2col (skipped for 1x1/stride 1/pad 0) then
 * GEMM out[n/g][oh*ow] = W[n/g][k] col[k][oh*ow], k = c/g*size*size; then
 * batch norm (inference: rolling statistics) or bias, then the activation.
 * ternary=1: forward (and backward) multiply by the TWN ternarisation of the
 * float weights (dn_conv_weights), per layer or per filter (ternary_scale).
 *
 * Inference forward (conv_forward) picks a kernel per layer: the direct
 * depthwise kernel of kernels/cpu/depthwise.c for groups = channels =
 * filters (forward and both backward products, also in training), the direct
 * kernel of kernels/cpu/conv_fast.c for stride-1 layers with few input
 * channels (the first layer), Winograd F(4x4,3x3) (kernels/cpu/winograd.c)
 * for 3x3 stride-1 groups=1 layers, the implicit-im2col GEMM of conv_fast.c
 * for everything else; all apply the folded BN/bias and the activation as
 * they store. The original path above (dn_conv_gemm, then separate BN and
 * activation passes) stays as the reference and as the fallback when
 * scratch cannot be allocated. The environment variable
 * DN_CONV_ALGO=auto|ref|gemm|winograd|direct (read at each forward) forces a
 * path for tests and benchmarks; winograd and direct fall back to gemm where
 * they do not apply.
 *
 * Transformed Winograd weights are cached in the layer's private data and
 * remade when the weights changed: dn_wstamp_check, defined here for the
 * three weight caches of conv layers (this one, conv_train.c's TWN values,
 * conv_ternary.c's codes), compares the weights' address and the network's
 * params_version, which the library bumps after writing the params
 * (dn_params_changed: load_weights, the optimiser...), and, once
 * Network.params() views are out, the weights' content hash (one read of
 * the weights per forward).
 */
#include "../core/internal.h"
#include "../kernels/cpu/conv_fast.h"
#include "../kernels/cpu/depthwise.h"
#include "../kernels/cpu/gemm.h"
#include "../kernels/cpu/im2col.h"
#include "../kernels/cpu/parallel.h"
#include "../kernels/cpu/winograd.h"
#include "conv.h"
#include "conv_ternary.h"
#include "priv.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The layer's private data: the public dn_conv first (other code reads
 * l->priv as a dn_conv), then what the fast forward keeps between calls. */
typedef struct {
    dn_conv conv;
    float *scale, *shift;     /* [filters]: folded BN or bias, refreshed each forward */
    float *wino;              /* dn_winograd43_weights of the weights wino_stamp names, or NULL */
    size_t wino_cap;          /* floats allocated at wino */
    dn_wstamp wino_stamp;
    float *scratch;           /* kernel scratch when net->workspace is too small */
    size_t scratch_cap;       /* floats */
    float *wt;                /* training: transposed, rotated weights for dL/dinput */
    size_t wt_cap;            /* floats */
} conv_priv;

static dn_status conv_parse(dn_layer *l, dn_cfg_section *s, dn_network *net)
{
    (void)net;
    dn_conv *p = dn_calloc(1, sizeof(conv_priv));
    if (!p) return DN_ERR_NOMEM;
    l->priv = p;
    int pad;
    TRY(dn_cfg_dim(s, "filters", 1, &p->filters));
    TRY(dn_cfg_dim(s, "size", 1, &p->size));
    TRY(dn_cfg_dim(s, "stride", 1, &p->stride));
    TRY(dn_cfg_dim(s, "pad", 0, &pad));
    TRY(dn_cfg_dim(s, "padding", 0, &p->pad));
    if (pad) p->pad = p->size / 2;
    TRY(dn_cfg_dim(s, "groups", 1, &p->groups));
    TRY(dn_cfg_int(s, "batch_normalize", 0, &p->batch_normalize));
    TRY(dn_cfg_int(s, "ternary", 0, &l->ternary));
    const char *act = dn_cfg_str(s, "activation", "logistic");
    int a = dn_activation_from_name(act);
    if (a < 0)
        return dn_error(DN_ERR_PARSE, "%s:%d: [convolutional] unknown activation '%s'",
                        s->file, dn_cfg_line(s, "activation"), act);
    l->act = (dn_activation)a;
    if (p->filters <= 0 || p->size <= 0 || p->stride <= 0 || p->pad < 0 || p->groups <= 0)
        return dn_error(DN_ERR_PARSE, "%s:%d: [convolutional] filters, size, stride, groups must be positive and padding >= 0 (got %d, %d, %d, %d, %d)",
                        s->file, s->line, p->filters, p->size, p->stride, p->groups, p->pad);
    if (l->c % p->groups || p->filters % p->groups)
        return dn_error(DN_ERR_PARSE, "%s:%d: [convolutional] groups=%d must divide the input channels (%d) and filters (%d)",
                        s->file, dn_cfg_line(s, "groups"), p->groups, l->c, p->filters);
    if (l->ternary != 0 && l->ternary != 1)
        return dn_error(DN_ERR_PARSE, "%s:%d: [convolutional] ternary must be 0 or 1, got %d",
                        s->file, dn_cfg_line(s, "ternary"), l->ternary);
    const char *tscale = dn_cfg_str(s, "ternary_scale", "layer");
    if (strcmp(tscale, "layer") && strcmp(tscale, "filter"))
        return dn_error(DN_ERR_PARSE, "%s:%d: [convolutional] ternary_scale must be layer or filter, got '%s'",
                        s->file, dn_cfg_line(s, "ternary_scale"), tscale);
    p->ternary_per_filter = !strcmp(tscale, "filter");
    /* AlexeyAB's binary weights and XNOR inputs, and his other conv variants:
     * refused rather than run as a plain float conv with other results */
    const struct { const char *key; float neutral; } refused[] = {
        {"xnor", 0}, {"binary", 0}, {"bin_output", 0}, {"antialiasing", 0}, {"assisted_excitation", 0},
        {"sway", 0}, {"rotate", 0}, {"stretch", 0}, {"stretch_sway", 0}, {"coordconv", 0}, {"dilation", 1},
        {"stride_x", (float)p->stride}, {"stride_y", (float)p->stride}, {"share_index", -1e9f}};
    for (size_t k = 0; k < sizeof refused / sizeof refused[0]; ++k) {
        float v = refused[k].neutral;
        TRY(dn_cfg_float(s, refused[k].key, v, &v));
        if (!strncmp(refused[k].key, "stride_", 7) && v < 1) v = (float)p->stride; /* his: < 1 means stride */
        if (v != refused[k].neutral)
            return dn_error(DN_ERR_UNSUPPORTED, "%s:%d: [convolutional] %s=%g (AlexeyAB's) is not supported%s",
                            s->file, dn_cfg_line(s, refused[k].key), refused[k].key, (double)v,
                            k < 2 ? "; ternary=1 is this project's low-bit convolution" : "");
    }
    size_t n = (size_t)p->filters;
    TRY(dn_layer_add_param(l, "biases", n, DN_PARAM_TRAIN));
    if (p->batch_normalize) {
        TRY(dn_layer_add_param(l, "scales", n, DN_PARAM_TRAIN));
        TRY(dn_layer_add_param(l, "rolling_mean", n, 0));
        TRY(dn_layer_add_param(l, "rolling_variance", n, 0));
    }
    TRY(dn_layer_add_param(l, "weights", n * (size_t)(l->c / p->groups) * p->size * p->size,
                           DN_PARAM_TRAIN | DN_PARAM_DECAY));
    if (l->ternary) dn_layer_param(l, "weights")->ternary_groups = p->ternary_per_filter ? p->filters : 1;
    return DN_OK;
}

static dn_status conv_resize(dn_layer *l, dn_network *net)
{
    (void)net;
    dn_conv *p = l->priv;
    if (l->c % p->groups)
        return dn_error(DN_ERR_VALUE, "layer %d [convolutional]: %d input channels not divisible by groups=%d",
                        l->index, l->c, p->groups);
    l->out_w = (l->w + 2 * p->pad - p->size) / p->stride + 1;
    l->out_h = (l->h + 2 * p->pad - p->size) / p->stride + 1;
    l->out_c = p->filters;
    size_t k = (size_t)(l->c / p->groups) * p->size * p->size;
    l->flops = 2.0 * p->filters * (double)k * l->out_h * l->out_w;
    int direct = p->size == 1 && p->stride == 1 && p->pad == 0;
    l->workspace = direct ? 0 : k * (size_t)l->out_h * l->out_w;
    return DN_OK;
}

static void conv_init(dn_layer *l, dn_network *net)
{
    dn_conv *p = l->priv;
    dn_param *w = dn_layer_param(l, "weights");
    float scale = sqrtf(2.f / (p->size * p->size * (l->c / p->groups)));
    for (size_t i = 0; i < w->n; ++i) w->data[i] = scale * dn_rand_normal(&net->rng);
    if (p->batch_normalize) {
        dn_param *sc = dn_layer_param(l, "scales"), *v = dn_layer_param(l, "rolling_variance");
        for (int i = 0; i < p->filters; ++i) { sc->data[i] = 1; v->data[i] = 1; }
    }
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
static void conv_epilogue_inference(dn_layer *l)
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

static void conv_free_priv(dn_layer *l)
{
    conv_priv *cp = l->priv;
    if (!cp) return;
    free(cp->scale);
    free(cp->shift);
    free(cp->wino);
    free(cp->scratch);
    free(cp->wt);
    free(cp->conv.train_state);
    free(cp->conv.bwd_scratch);
    free(cp->conv.tweights);
    dn_conv_ternary_free(l);
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
static float *scratch(conv_priv *cp, dn_network *net, size_t n)
{
    if (net->workspace && net->workspace_size >= n + 16) {
        uintptr_t a = (uintptr_t)net->workspace;
        return net->workspace + ((64 - a % 64) % 64) / sizeof(float);
    }
    if (n > cp->scratch_cap) {
        free(cp->scratch);
        cp->scratch = alloc_aligned(n);
        cp->scratch_cap = cp->scratch ? n : 0;
    }
    return cp->scratch;
}

/* Folded inference epilogue: out = out * scale[f] + shift[f]. */
static int fold_epilogue(dn_layer *l, dn_epilogue *ep)
{
    conv_priv *cp = l->priv;
    const dn_conv *p = &cp->conv;
    int n = p->filters;
    if (!cp->scale) cp->scale = dn_malloc(sizeof(float) * (size_t)n);
    if (!cp->shift) cp->shift = dn_malloc(sizeof(float) * (size_t)n);
    if (!cp->scale || !cp->shift) return 0;
    const float *bias = dn_layer_param(l, "biases")->data;
    if (p->batch_normalize) {
        const float *sc = dn_layer_param(l, "scales")->data;
        const float *m = dn_layer_param(l, "rolling_mean")->data;
        const float *v = dn_layer_param(l, "rolling_variance")->data;
        for (int f = 0; f < n; ++f) {
            cp->scale[f] = sc[f] / sqrtf(v[f] + .000001f);
            cp->shift[f] = bias[f] - m[f] * cp->scale[f];
        }
        ep->scale = cp->scale;
    } else {
        memcpy(cp->shift, bias, sizeof(float) * (size_t)n);
        ep->scale = NULL;
    }
    ep->shift = cp->shift;
    ep->act = dn_epilogue_fuses(l->act) ? l->act : DN_ACT_LINEAR;
    ep->accumulate = 0;
    ep->pool = 0;
    return 1;
}

/* U for the weights in use (float or ternary): cached, remade when they
 * changed. */
static const float *winograd_weights(dn_layer *l, const dn_network *net, const float *weights)
{
    conv_priv *cp = l->priv;
    const dn_param *w = dn_layer_param(l, "weights");
    if (dn_wstamp_check(&cp->wino_stamp, net, weights, w->n)) return cp->wino;
    size_t n = dn_winograd43_weights_size(cp->conv.filters, l->c);
    if (n > cp->wino_cap) {
        free(cp->wino);
        cp->wino = alloc_aligned(n);
        cp->wino_cap = cp->wino ? n : 0;
        if (!cp->wino) return NULL;
    }
    dn_winograd43_weights(weights, cp->conv.filters, l->c, cp->wino);
    cp->wino_stamp.valid = 1;
    return cp->wino;
}

int dn_conv_forward_fast(dn_layer *l, dn_network *net, const float *input, const float *weights,
                         const dn_epilogue *ep, float *output)
{
    int algo = dn_option(DN_OPT_CONV_ALGO);
    if (algo == DN_CONV_REF) return 0;
    conv_priv *cp = l->priv;
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
    conv_priv *cp = l->priv;
    const dn_conv *p = &cp->conv;
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
        if (n > cp->wino_cap) {
            free(cp->wino);
            cp->wino = alloc_aligned(n);
            cp->wino_cap = cp->wino ? n : 0;
        }
        cp->wino_stamp.valid = 0;
        float *ws = cp->wino ? scratch(cp, net, dn_winograd43_scratch(&s, nth)) : NULL;
        if (!ws) return 0;
        dn_winograd43_weights_transposed(weights, p->filters, l->c, cp->wino);
        dn_winograd43_forward(&s, delta, cp->wino, &ep, input_delta, ws, nth);
        return 1;
    }
    size_t nw = (size_t)p->filters * l->c * p->size * p->size;
    if (nw > cp->wt_cap) {
        free(cp->wt);
        cp->wt = dn_malloc(nw * sizeof(float));
        cp->wt_cap = cp->wt ? nw : 0;
        if (!cp->wt) return 0;
    }
    float *ws = scratch(cp, net, dn_conv_fast_gemm_scratch(&s, nth));
    if (!ws) return 0;
    transpose_job tj = {weights, cp->wt, p->filters, l->c, p->size * p->size};
    dn_parallel_for(l->c, nth, transpose_item, &tj);
    dn_conv_fast_gemm(&s, delta, cp->wt, &ep, input_delta, ws, nth);
    return 1;
}

int dn_conv_backward_depthwise(dn_layer *l, dn_network *net, const float *input, const float *weights,
                               const float *delta, float *weight_grad, float *input_delta)
{
    int algo = dn_option(DN_OPT_CONV_ALGO);
    conv_priv *cp = l->priv;
    dn_conv_shape s = conv_shape(l);
    if (!dn_depthwise_applies(&s) || !(algo == DN_CONV_AUTO || algo == DN_CONV_DIRECT)) return 0;
    int nth = dn_parallel_threads();
    float *ws = scratch(cp, net, dn_depthwise_scratch(&s, nth));
    if (!ws) return 0;
    dn_depthwise_backward(&s, input, weights, delta, weight_grad, input_delta, ws, nth);
    return 1;
}

static dn_status conv_forward(dn_layer *l, dn_network *net, const float *input)
{
    if (net->train) return dn_conv_forward_train(l, net, input);
    /* Ternary layers on the int8 or add/subtract kernel when the network
     * asks for it (dn_network_set_ternary_kernel); else the float path. */
    int done = l->ternary && net->ternary_kernel != DN_TERNARY_OFF ? dn_conv_forward_ternary(l, net, input) : 0;
    if (done) return done > 0 ? DN_OK : DN_ERR_NOMEM; /* the message is set */
    const float *weights = dn_conv_weights(l, net);
    if (!weights) return DN_ERR_NOMEM; /* the message is set */
    dn_epilogue ep;
    if (fold_epilogue(l, &ep) && dn_conv_forward_fast(l, net, input, weights, &ep, l->output)) {
        if (!dn_epilogue_fuses(l->act)) dn_activate(l->output, (size_t)l->batch * l->outputs, l->act);
        return DN_OK;
    }
    dn_conv_gemm(l, weights, input, net->workspace, l->output);
    conv_epilogue_inference(l);
    dn_activate(l->output, (size_t)l->batch * l->outputs, l->act);
    return DN_OK;
}

/* A ternary conv on the int8 kernel followed by a 2x2 stride-2 maxpool
 * (padding 0 or 1: the same windows on an even output): the kernel writes
 * the pooled output. */
static int conv_forward_fused(dn_layer *l, dn_layer *next, dn_network *net, const float *input)
{
    if (strcmp(next->ops->section, "maxpool")) return 0;
    const dn_maxpool *m = next->priv;
    if (m->size != 2 || m->stride != 2 || m->pad > 1 || next->out_h * 2 != l->out_h || next->out_w * 2 != l->out_w)
        return 0;
    return dn_conv_forward_ternary_pooled(l, net, input, next->output);
}

static void conv_describe(const dn_layer *l, dn_layer_info *info)
{
    const dn_conv *p = l->priv;
    info->filters = p->filters;
    info->size = p->size;
    info->stride = p->stride;
    info->pad = p->pad;
    info->groups = p->groups;
    info->batch_normalize = p->batch_normalize;
    info->activation = dn_activation_name(l->act);
}

const dn_layer_ops dn_conv_ops = {
    .section = "convolutional",
    .parse = conv_parse,
    .resize = conv_resize,
    .init_params = conv_init,
    .forward = conv_forward,
    .forward_fused = conv_forward_fused,
    .backward = dn_conv_backward,
    .describe = conv_describe,
    .free_priv = conv_free_priv,
};
