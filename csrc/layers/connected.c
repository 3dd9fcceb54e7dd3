/* connected.c: [connected] layer, fully connected (CPU forward and backward).
 *
 * Options: output (default 1), activation (default logistic),
 * batch_normalize (default 0). The input image is flattened to
 * inputs = c*h*w floats; output shape is outputs x 1 x 1.
 * Params (Darknet file order): biases[outputs], weights[outputs][inputs],
 * then when batch_normalize scales[outputs], rolling_mean[outputs],
 * rolling_variance[outputs].
 * Forward: out = W x, then bias (or inference batch norm:
 * (out - mean)/sqrt(var + 1e-6)*scale + bias), then the activation.
 * Training forward: batch norm uses the statistics of the batch
 * (batchnorm.h, spatial = 1). Backward, the same list reversed, from
 * l->delta (modified in place): activation gradient, bias/BN, then
 * dW += delta^T x and input_delta += delta W.
 */
#include "../core/internal.h"
#include "priv.h"
#include "../kernels/cpu/gemm.h"
#include "batchnorm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static dn_status connected_parse(dn_layer *l, dn_cfg_section *s, dn_network *net)
{
    (void)net;
    dn_connected *p = dn_calloc(1, sizeof(dn_connected));
    if (!p) return DN_ERR_NOMEM;
    l->priv = p;
    TRY(dn_cfg_dim(s, "output", 1, &p->outputs));
    TRY(dn_cfg_int(s, "batch_normalize", 0, &p->batch_normalize));
    const char *act = dn_cfg_str(s, "activation", "logistic");
    int a = dn_activation_from_name(act);
    if (a < 0)
        return dn_error(DN_ERR_PARSE, "%s:%d: [connected] unknown activation '%s'",
                        s->file, dn_cfg_line(s, "activation"), act);
    l->act = (dn_activation)a;
    if (p->outputs <= 0)
        return dn_error(DN_ERR_PARSE, "%s:%d: [connected] output must be positive, got %d",
                        s->file, dn_cfg_line(s, "output"), p->outputs);
    p->inputs = l->inputs;
    size_t n = (size_t)p->outputs;
    TRY(dn_layer_add_param(l, "biases", n, DN_PARAM_TRAIN));
    TRY(dn_layer_add_param(l, "weights", n * p->inputs, DN_PARAM_TRAIN | DN_PARAM_DECAY));
    if (p->batch_normalize) {
        TRY(dn_layer_add_param(l, "scales", n, DN_PARAM_TRAIN));
        TRY(dn_layer_add_param(l, "rolling_mean", n, 0));
        TRY(dn_layer_add_param(l, "rolling_variance", n, 0));
    }
    return DN_OK;
}

/* Allocate the training buffers for the current batch. */
static dn_status connected_alloc_train(dn_layer *l)
{
    dn_connected *p = l->priv;
    size_t m = (size_t)l->batch * p->outputs, n = 0;
    int bn = p->batch_normalize, keep_z = dn_activation_needs_input(l->act);
    if (bn) n += (size_t)p->outputs + m;
    if (keep_z) n += m;
    free(p->train);
    p->train = p->var = p->x_hat = p->z = NULL;
    if (!n) return DN_OK;
    p->train = dn_calloc(n, sizeof(float));
    if (!p->train) return DN_ERR_NOMEM;
    float *f = p->train;
    if (bn) { p->var = f; f += p->outputs; p->x_hat = f; f += m; }
    if (keep_z) p->z = f;
    return DN_OK;
}

static dn_status connected_resize(dn_layer *l, dn_network *net)
{
    const dn_connected *p = l->priv;
    if (l->inputs != p->inputs)
        return dn_error(DN_ERR_VALUE, "%s:%d: [connected] layer %d: input %d x %d x %d = %zu values, but the weights were made for %zu",
                        net->cfg_path, l->line, l->index, l->c, l->h, l->w, l->inputs, p->inputs);
    l->out_c = p->outputs;
    l->out_h = 1;
    l->out_w = 1;
    l->flops = 2.0 * (double)p->inputs * p->outputs;
    l->workspace = 0;
    return net->train ? connected_alloc_train(l) : DN_OK;
}

static void connected_init(dn_layer *l, dn_network *net)
{
    const dn_connected *p = l->priv;
    dn_param *w = dn_layer_param(l, "weights");
    float scale = sqrtf(2.f / (float)p->inputs);
    for (size_t i = 0; i < w->n; ++i) w->data[i] = scale * (2.f * dn_rand_uniform(&net->rng) - 1.f);
    if (p->batch_normalize) {
        dn_param *sc = dn_layer_param(l, "scales"), *v = dn_layer_param(l, "rolling_variance");
        for (int i = 0; i < p->outputs; ++i) { sc->data[i] = 1; v->data[i] = 1; }
    }
}

/* input[batch][inputs], weights[outputs][inputs] -> output[batch][outputs]. */
static dn_status connected_forward(dn_layer *l, dn_network *net, const float *input)
{
    const dn_connected *p = l->priv;
    int n = p->outputs, k = (int)p->inputs;
    size_t m = (size_t)l->batch * n;
    dn_gemm(0, 1, l->batch, n, k, 1.f, input, k, dn_layer_param(l, "weights")->data, k,
            0.f, l->output, n);
    const float *bias = dn_layer_param(l, "biases")->data;
    if (net->train) {
        if (p->batch_normalize)
            dn_bn_forward_train(l->output, l->batch, n, 1, dn_layer_param(l, "scales")->data, bias,
                                dn_layer_param(l, "rolling_mean")->data,
                                dn_layer_param(l, "rolling_variance")->data, dn_bn_momentum(net), p->var,
                                p->x_hat);
        else
            dn_bias_forward(l->output, l->batch, n, 1, bias);
        if (p->z) memcpy(p->z, l->output, m * sizeof(float));
        dn_activate(l->output, m, l->act);
        return DN_OK;
    }
    const float *sc = NULL, *mean = NULL, *var = NULL;
    if (p->batch_normalize) {
        sc = dn_layer_param(l, "scales")->data;
        mean = dn_layer_param(l, "rolling_mean")->data;
        var = dn_layer_param(l, "rolling_variance")->data;
    }
    for (int b = 0; b < l->batch; ++b) {
        float *o = l->output + (size_t)b * n;
        for (int f = 0; f < n; ++f) {
            if (p->batch_normalize) o[f] = (o[f] - mean[f]) / sqrtf(var[f] + .000001f) * sc[f];
            o[f] += bias[f];
        }
    }
    dn_activate(l->output, m, l->act);
    return DN_OK;
}

/* l->delta[batch][outputs] -> grads of biases (scales) and weights[outputs][inputs],
 * input_delta[batch][inputs] += delta W. */
static dn_status connected_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta)
{
    (void)net;
    const dn_connected *p = l->priv;
    int n = p->outputs, k = (int)p->inputs;
    dn_gradient(l->output, p->z, (size_t)l->batch * n, l->act, l->delta);
    dn_param *bias = dn_layer_param(l, "biases"), *w = dn_layer_param(l, "weights");
    if (p->batch_normalize) {
        dn_param *scales = dn_layer_param(l, "scales");
        dn_bn_backward(l->delta, l->batch, n, 1, p->x_hat, p->var, scales->data, scales->grad, bias->grad);
    } else {
        dn_bias_backward(l->delta, l->batch, n, 1, bias->grad);
    }
    if (w->grad) dn_gemm(1, 0, n, k, l->batch, 1.f, l->delta, n, input, k, 1.f, w->grad, k);
    if (input_delta) dn_gemm(0, 0, l->batch, k, n, 1.f, l->delta, n, w->data, k, 1.f, input_delta, k);
    return DN_OK;
}

static void connected_free(dn_layer *l)
{
    dn_connected *p = l->priv;
    if (p) free(p->train);
}

static void connected_describe(const dn_layer *l, dn_layer_info *info)
{
    const dn_connected *p = l->priv;
    info->filters = p->outputs;
    info->batch_normalize = p->batch_normalize;
    info->activation = dn_activation_name(l->act);
}

const dn_layer_ops dn_connected_ops = {
    .section = "connected",
    .parse = connected_parse,
    .resize = connected_resize,
    .init_params = connected_init,
    .forward = connected_forward,
    .backward = connected_backward,
    .describe = connected_describe,
    .free_priv = connected_free,
};
