/* layers_gpu.c: the device forward/backward of the layer types other than
 * [convolutional] (GPU=1 builds), each the same computation as its host file
 * (layers/<type>.c, whose private struct is in priv.h) on kernels/cuda.
 * Device scratch: maxpool slot 0 = argmax indexes, dropout slot 0 = mask,
 * connected and shortcut slot 2 = training state (as conv_gpu.c).
 */
#include "../core/gpu.h"
#include "../kernels/cuda/cuda_kernels.h"
#include "priv.h"

static size_t outs(const dn_layer *l) { return (size_t)l->batch * l->outputs; }
static size_t ins(const dn_layer *l) { return (size_t)l->batch * l->inputs; }

/* ---- [maxpool] ---- */
static dn_status maxpool_forward(dn_layer *l, dn_network *net, const float *input)
{
    const dn_maxpool *p = l->priv;
    int *idx = NULL;
    if (net->train && !(idx = dn_gpu_slot(l, 0, outs(l) * sizeof(int)))) return DN_ERR_NOMEM;
    dn_cuda_maxpool_forward(input, l->batch * l->c, l->h, l->w, p->size, p->stride, p->pad, l->out_h, l->out_w,
                            l->gpu->output, idx);
    return DN_OK;
}

static dn_status maxpool_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta)
{
    (void)net; (void)input;
    if (input_delta)
        dn_cuda_maxpool_backward(l->gpu->delta, l->gpu->slot[0], l->batch * l->c, l->h, l->w, l->out_h, l->out_w,
                                 input_delta);
    return DN_OK;
}

/* ---- [avgpool] ---- */
static dn_status avgpool_forward(dn_layer *l, dn_network *net, const float *input)
{
    (void)net;
    dn_cuda_avgpool_forward(input, l->batch * l->c, l->h * l->w, l->gpu->output);
    return DN_OK;
}

static dn_status avgpool_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta)
{
    (void)net; (void)input;
    if (input_delta) dn_cuda_avgpool_backward(l->gpu->delta, l->batch * l->c, l->h * l->w, input_delta);
    return DN_OK;
}

/* ---- [route] ---- */
static dn_status route_forward(dn_layer *l, dn_network *net, const float *input)
{
    (void)input;
    const dn_route *p = l->priv;
    size_t offset = 0;
    for (int i = 0; i < p->n; ++i) {
        const dn_layer *r = &net->layers[p->layers[i]];
        size_t part = r->outputs / p->groups;
        dn_cuda_copy_rows(l->batch, part, r->gpu->output + part * p->group_id, r->outputs,
                          l->gpu->output + offset, l->outputs, 0);
        offset += part;
    }
    return DN_OK;
}

static dn_status route_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta)
{
    (void)input; (void)input_delta;
    const dn_route *p = l->priv;
    size_t offset = 0;
    for (int i = 0; i < p->n; ++i) {
        dn_layer *r = &net->layers[p->layers[i]];
        size_t part = r->outputs / p->groups;
        dn_cuda_copy_rows(l->batch, part, l->gpu->delta + offset, l->outputs,
                          r->gpu->delta + part * p->group_id, r->outputs, 1);
        offset += part;
    }
    return DN_OK;
}

/* ---- [reorg] ---- */
static dn_status reorg_forward(dn_layer *l, dn_network *net, const float *input)
{
    (void)net;
    const dn_reorg *p = l->priv;
    dn_cuda_reorg(input, l->batch, l->c, l->h, l->w, p->stride, p->reverse, 0, l->gpu->output);
    return DN_OK;
}

static dn_status reorg_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta)
{
    (void)net; (void)input;
    const dn_reorg *p = l->priv;
    if (input_delta) dn_cuda_reorg(l->gpu->delta, l->batch, l->c, l->h, l->w, p->stride, !p->reverse, 1, input_delta);
    return DN_OK;
}

/* ---- [upsample] ---- */
static dn_status upsample_forward(dn_layer *l, dn_network *net, const float *input)
{
    (void)net;
    const dn_upsample *p = l->priv;
    dn_cuda_upsample_forward(input, l->batch * l->c, l->h, l->w, p->stride, p->reverse, p->scale, l->gpu->output,
                             l->out_h, l->out_w);
    return DN_OK;
}

static dn_status upsample_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta)
{
    (void)net; (void)input;
    const dn_upsample *p = l->priv;
    if (input_delta)
        dn_cuda_upsample_backward(l->gpu->delta, l->batch * l->c, l->h, l->w, p->stride, p->reverse, p->scale,
                                  input_delta, l->out_h, l->out_w);
    return DN_OK;
}

/* ---- [shortcut] ---- */
/* shortcut.c's overlap: w1, h1, w2, h2, stride, sample, minw, minh, minc. */
static void overlap(const dn_layer *l, const dn_layer *f, int o[9])
{
    o[0] = f->out_w; o[1] = f->out_h; o[2] = l->w; o[3] = l->h;
    o[4] = o[0] > o[2] ? o[0] / o[2] : 1;
    o[5] = o[2] > o[0] ? o[2] / o[0] : 1;
    o[6] = o[0] < o[2] ? o[0] : o[2];
    o[7] = o[1] < o[3] ? o[1] : o[3];
    o[8] = f->out_c < l->c ? f->out_c : l->c;
}

static dn_status shortcut_forward(dn_layer *l, dn_network *net, const float *input)
{
    const dn_shortcut *p = l->priv;
    const dn_layer *f = &net->layers[p->from];
    int o[9];
    overlap(l, f, o);
    size_t m = outs(l);
    dn_cuda_copy_rows(1, m, input, 0, l->gpu->output, 0, 0);
    dn_cuda_shortcut_forward(l->gpu->output, l->outputs, f->gpu->output, f->outputs, l->batch, o, p->alpha, p->beta);
    if (net->train && dn_activation_needs_input(l->act)) {
        float *z = dn_gpu_slot(l, 2, m * sizeof(float));
        if (!z) return DN_ERR_NOMEM;
        dn_cuda_copy_rows(1, m, l->gpu->output, 0, z, 0, 0);
    }
    dn_cuda_activate(l->gpu->output, m, l->act);
    return DN_OK;
}

static dn_status shortcut_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta)
{
    (void)input;
    const dn_shortcut *p = l->priv;
    dn_layer *f = &net->layers[p->from];
    int o[9];
    overlap(l, f, o);
    size_t m = outs(l);
    dn_cuda_gradient(l->gpu->output, l->gpu->slot[2], m, l->act, l->gpu->delta);
    if (input_delta) dn_cuda_axpy(m, 1.f, l->gpu->delta, input_delta);
    dn_cuda_shortcut_backward(l->gpu->delta, l->outputs, input_delta, f->gpu->delta, f->outputs, l->batch, o,
                              p->alpha, p->beta);
    return DN_OK;
}

/* ---- [connected] ---- */
static dn_status connected_forward(dn_layer *l, dn_network *net, const float *input)
{
    const dn_connected *p = l->priv;
    int n = p->outputs, k = (int)p->inputs;
    size_t m = outs(l);
    float *out = l->gpu->output;
    dn_cuda_gemm(net->gpu->blas, 0, 1, l->batch, n, k, 1.f, input, k, dn_gpu_param(net, dn_layer_param(l, "weights")),
                 k, 0.f, out, n);
    const float *bias = dn_gpu_param(net, dn_layer_param(l, "biases"));
    float *sc = NULL, *mean = NULL, *var = NULL;
    if (p->batch_normalize) {
        sc = dn_gpu_param(net, dn_layer_param(l, "scales"));
        mean = dn_gpu_param(net, dn_layer_param(l, "rolling_mean"));
        var = dn_gpu_param(net, dn_layer_param(l, "rolling_variance"));
    }
    if (!net->train) {
        dn_cuda_bn_inference(out, l->batch, n, 1, sc, bias, mean, var);
    } else {
        int keep_z = dn_activation_needs_input(l->act), bn = p->batch_normalize;
        size_t floats = (bn ? (size_t)n + m : 0) + (keep_z ? m : 0);
        float *st = floats ? dn_gpu_slot(l, 2, floats * sizeof(float)) : NULL;
        if (floats && !st) return DN_ERR_NOMEM;
        if (bn) dn_cuda_bn_forward_train(out, l->batch, n, 1, sc, bias, mean, var, dn_bn_momentum(net), st, st + n);
        else dn_cuda_bias_forward(out, l->batch, n, 1, bias);
        if (keep_z) dn_cuda_copy_rows(1, m, out, 0, st + (bn ? (size_t)n + m : 0), 0, 0);
    }
    dn_cuda_activate(out, m, l->act);
    return DN_OK;
}

static dn_status connected_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta)
{
    const dn_connected *p = l->priv;
    int n = p->outputs, k = (int)p->inputs, bn = p->batch_normalize;
    size_t m = outs(l);
    float *st = l->gpu->slot[2], *delta = l->gpu->delta;
    if ((bn || dn_activation_needs_input(l->act)) && !st)
        return dn_error(DN_ERR_STATE, "layer %d [connected]: backward without a training forward", l->index);
    const float *z = dn_activation_needs_input(l->act) ? st + (bn ? (size_t)n + m : 0) : NULL;
    dn_cuda_gradient(l->gpu->output, z, m, l->act, delta);
    const dn_param *bias = dn_layer_param(l, "biases"), *w = dn_layer_param(l, "weights");
    if (bn) {
        const dn_param *scales = dn_layer_param(l, "scales");
        dn_cuda_bn_backward(delta, l->batch, n, 1, st + n, st, dn_gpu_param(net, scales), dn_gpu_grad(net, scales),
                            dn_gpu_grad(net, bias));
    } else {
        dn_cuda_bias_backward(delta, l->batch, n, 1, dn_gpu_grad(net, bias));
    }
    float *wg = dn_gpu_grad(net, w);
    if (wg) dn_cuda_gemm(net->gpu->blas, 1, 0, n, k, l->batch, 1.f, delta, n, input, k, 1.f, wg, k);
    if (input_delta)
        dn_cuda_gemm(net->gpu->blas, 0, 0, l->batch, k, n, 1.f, delta, n, dn_gpu_param(net, w), k, 1.f, input_delta, k);
    return DN_OK;
}

/* ---- [softmax] ---- */
static dn_status softmax_forward(dn_layer *l, dn_network *net, const float *input)
{
    (void)net;
    const dn_softmax *p = l->priv;
    dn_cuda_softmax(input, l->batch * p->groups, (int)(l->inputs / (size_t)p->groups), p->temperature,
                    l->gpu->output);
    return DN_OK;
}

static dn_status softmax_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta)
{
    (void)net; (void)input;
    const dn_softmax *p = l->priv;
    if (input_delta)
        dn_cuda_softmax_backward(l->gpu->output, l->gpu->delta, l->batch * p->groups,
                                 (int)(l->inputs / (size_t)p->groups), p->temperature, input_delta);
    return DN_OK;
}

/* ---- [dropout] ---- */
static dn_status dropout_forward(dn_layer *l, dn_network *net, const float *input)
{
    const dn_dropout *p = l->priv;
    size_t n = ins(l);
    if (!net->train || net->bn_average) { /* inference, or a BN recalibration (dropout.c) */
        dn_cuda_copy_rows(1, n, input, 0, l->gpu->output, 0, 0);
        return DN_OK;
    }
    float *mask = dn_gpu_slot(l, 0, n * sizeof(float));
    if (!mask) return DN_ERR_NOMEM;
    unsigned long long seed = ((unsigned long long)(dn_rand_uniform(&net->rng) * 16777216.f) << 24) ^
                              (unsigned long long)(dn_rand_uniform(&net->rng) * 16777216.f);
    dn_cuda_dropout(input, n, p->probability, seed, mask, l->gpu->output);
    return DN_OK;
}

static dn_status dropout_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta)
{
    (void)net; (void)input;
    if (input_delta) dn_cuda_mul_add(l->gpu->delta, l->gpu->slot[0], ins(l), input_delta);
    return DN_OK;
}

const dn_layer_gpu_ops dn_maxpool_gpu_ops = {"maxpool", maxpool_forward, maxpool_backward, NULL};
const dn_layer_gpu_ops dn_avgpool_gpu_ops = {"avgpool", avgpool_forward, avgpool_backward, NULL};
const dn_layer_gpu_ops dn_route_gpu_ops = {"route", route_forward, route_backward, NULL};
const dn_layer_gpu_ops dn_reorg_gpu_ops = {"reorg", reorg_forward, reorg_backward, NULL};
const dn_layer_gpu_ops dn_upsample_gpu_ops = {"upsample", upsample_forward, upsample_backward, NULL};
const dn_layer_gpu_ops dn_shortcut_gpu_ops = {"shortcut", shortcut_forward, shortcut_backward, NULL};
const dn_layer_gpu_ops dn_connected_gpu_ops = {"connected", connected_forward, connected_backward, NULL};
const dn_layer_gpu_ops dn_softmax_gpu_ops = {"softmax", softmax_forward, softmax_backward, NULL};
const dn_layer_gpu_ops dn_dropout_gpu_ops = {"dropout", dropout_forward, dropout_backward, NULL};
