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
 * Forward: in training conv_train.c; ternary layers on the ternary
 * kernels when the network asks for them (conv_ternary.c); else the float
 * paths of conv_float.c. The private struct dn_conv (conv.h) has a part
 * for each of them.
 */
#include "../core/internal.h"
#include "conv.h"
#include "conv_ternary.h"
#include "priv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static dn_status conv_parse(dn_layer *l, dn_cfg_section *s, dn_network *net)
{
    (void)net;
    dn_conv *p = dn_calloc(1, sizeof(dn_conv));
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

static void conv_free_priv(dn_layer *l)
{
    dn_conv *p = l->priv;
    if (!p) return;
    dn_conv_float_free(p);
    free(p->train_state);
    free(p->bwd_scratch);
    dn_conv_ternary_free(l);
}

static dn_status conv_forward(dn_layer *l, dn_network *net, const float *input)
{
    if (net->train) return dn_conv_forward_train(l, net, input);
    /* Ternary layers on the int8 or add/subtract kernel when the network
     * asks for it (dn_network_set_ternary_kernel); else the float path. */
    int done = l->ternary && net->ternary_kernel != DN_TERNARY_OFF ? dn_conv_forward_ternary(l, net, input) : 0;
    if (done) return done > 0 ? DN_OK : DN_ERR_NOMEM; /* the message is set */
    return dn_conv_forward_float(l, net, input);
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
