/* conv.c: [convolutional] layer.
 *
 * Params (file order): biases[n], when batch_normalize scales[n],
 * rolling_mean[n], rolling_variance[n]; then weights[n][c/groups][size][size].
 * Forward per image and group: im2col (skipped for 1x1/stride 1/pad 0) then
 * GEMM out[n/g][oh*ow] = W[n/g][k] col[k][oh*ow], k = c/g*size*size; then
 * batch norm (inference: rolling statistics) or bias, then the activation.
 * ternary=1: forward (and backward) multiply by the TWN ternarisation of the
 * float weights (dn_conv_weights), per layer or per filter (ternary_scale).
 */
#include "../core/internal.h"
#include "../kernels/cpu/gemm.h"
#include "../kernels/cpu/im2col.h"
#include "conv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TRY(x) do { dn_status st_ = (x); if (st_ != DN_OK) return st_; } while (0)

static dn_status conv_parse(dn_layer *l, dn_cfg_section *s, dn_network *net)
{
    (void)net;
    dn_conv *p = dn_calloc(1, sizeof(dn_conv));
    if (!p) return DN_ERR_NOMEM;
    l->priv = p;
    int pad;
    TRY(dn_cfg_int(s, "filters", 1, &p->filters));
    TRY(dn_cfg_int(s, "size", 1, &p->size));
    TRY(dn_cfg_int(s, "stride", 1, &p->stride));
    TRY(dn_cfg_int(s, "pad", 0, &pad));
    TRY(dn_cfg_int(s, "padding", 0, &p->pad));
    if (pad) p->pad = p->size / 2;
    TRY(dn_cfg_int(s, "groups", 1, &p->groups));
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

static void conv_forward(dn_layer *l, dn_network *net, const float *input)
{
    if (net->train) { dn_conv_forward_train(l, net, input); return; }
    const float *weights = dn_conv_weights(l);
    if (!weights) return;
    dn_conv_gemm(l, weights, input, net->workspace, l->output);
    conv_epilogue_inference(l);
    dn_activate(l->output, (size_t)l->batch * l->outputs, l->act);
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

static void conv_free_priv(dn_layer *l)
{
    dn_conv *p = l->priv;
    if (!p) return;
    free(p->train_state);
    free(p->tweights);
}

const dn_layer_ops dn_conv_ops = {
    .section = "convolutional",
    .parse = conv_parse,
    .resize = conv_resize,
    .init_params = conv_init,
    .forward = conv_forward,
    .backward = dn_conv_backward,
    .describe = conv_describe,
    .free_priv = conv_free_priv,
};
