/* conv_gpu.c: [convolutional] on the device (GPU=1 builds): the same
 * computation as conv_float.c (inference) and conv_train.c (training) with the
 * kernels of kernels/cuda: the convolution on cuDNN when the network has a
 * handle (CUDNN=1 builds; the layer's plan is remade when its shape or the
 * workspace changes), else per image and group im2col (skipped for 1x1
 * stride 1 pad 0) and GEMM; batch norm with batch statistics in training,
 * rolling statistics in inference, or bias; the activation. Backward is
 * conv_train.c's list reversed.
 *
 * ternary=1: the TWN weights (per layer or per filter) are computed on the
 * device from the float weights in the device parameter block
 * (dn_cuda_ternarize_groups) whenever those changed (params_version), so
 * training never copies weights to the host; the GEMMs multiply by them and
 * the weight gradient goes to the float weights (straight-through).
 * Device scratch slots: 0 the TWN weights, 1 the quantiser's scratch,
 * 2 the training state var[filters], x_hat[batch*outputs] (batch_normalize)
 * and z[batch*outputs] (swish, mish).
 */
#include "../core/gpu.h"
#include "../kernels/cuda/cuda_kernels.h"
#include "conv.h"

/* The weights the GEMMs use: float, or the TWN weights of the current ones. */
static const float *weights_for(dn_layer *l, dn_network *net)
{
    const dn_param *w = dn_layer_param(l, "weights");
    float *d = dn_gpu_param(net, w);
    if (!l->ternary) return d;
    size_t per = w->n / (size_t)w->ternary_groups;
    float *t = dn_gpu_slot(l, 0, w->n * sizeof(float));
    void *sc = t ? dn_gpu_slot(l, 1, dn_cuda_ternary_scratch(w->ternary_groups, per)) : NULL;
    if (!t || !sc) return NULL;
    if (l->gpu->version != net->gpu->params_version) {
        dn_cuda_ternarize_groups(d, w->ternary_groups, per, t, NULL, sc);
        l->gpu->version = net->gpu->params_version;
    }
    return t;
}

static int is_direct(const dn_conv *p) { return p->size == 1 && p->stride == 1 && p->pad == 0; }

static void conv_gemm(dn_layer *l, dn_network *net, const float *weights, const float *input, float *output)
{
    const dn_conv *p = l->priv;
    int g = p->groups, ng = p->filters / g, cg = l->c / g;
    int k = cg * p->size * p->size, hw = l->out_h * l->out_w;
    float *ws = net->gpu->workspace;
    for (int b = 0; b < l->batch; ++b)
        for (int j = 0; j < g; ++j) {
            const float *im = input + ((size_t)b * l->c + (size_t)j * cg) * l->h * l->w;
            const float *col = im;
            if (!is_direct(p)) {
                dn_cuda_im2col(im, cg, l->h, l->w, p->size, p->stride, p->pad, l->out_h, l->out_w, ws);
                col = ws;
            }
            float *out = output + ((size_t)b * p->filters + (size_t)j * ng) * hw;
            dn_cuda_gemm(net->gpu->blas, 0, 0, ng, hw, k, 1.f, weights + (size_t)j * ng * k, k, col, hw, 0.f, out, hw);
        }
}

static dn_status dnn_check(const dn_layer *l, const char *why)
{
    return why ? dn_error(DN_ERR_STATE, "layer %d [convolutional]: cuDNN: %s", l->index, why) : DN_OK;
}

/* The layer's cuDNN plan for its current shape and the network's workspace
 * limit (made when the network's buffers are sized, so the workspace fits it). */
static dn_status dnn_plan(dn_layer *l, dn_network *net)
{
    const dn_conv *p = l->priv;
    dn_cuda_conv_shape s = {l->batch, l->c, l->h, l->w, p->filters, p->size, p->stride, p->pad, p->groups,
                            l->out_h, l->out_w};
    return dnn_check(l, dn_cuda_conv_plan_update(net->gpu->dnn, &l->gpu->plan, &s, net->gpu->ws_limit));
}

/* The workspace the layer needs: its plan's on cuDNN, else the im2col buffer. */
static dn_status conv_workspace_gpu(dn_layer *l, dn_network *net, size_t *bytes)
{
    *bytes = l->workspace * sizeof(float);
    if (!net->gpu->dnn) return DN_OK;
    dn_status rc = dnn_plan(l, net);
    if (rc == DN_OK) *bytes = dn_cuda_conv_plan_workspace(l->gpu->plan);
    return rc;
}

static dn_status conv_run(dn_layer *l, dn_network *net, const float *weights, const float *input, float *output)
{
    if (!net->gpu->dnn) {
        conv_gemm(l, net, weights, input, output);
        return DN_OK;
    }
    dn_status rc = dnn_plan(l, net);
    if (rc != DN_OK) return rc;
    return dnn_check(l, dn_cuda_conv_forward(net->gpu->dnn, l->gpu->plan, input, weights, output,
                                             net->gpu->workspace));
}

typedef struct {
    float *var, *x_hat, *z;
} state;

/* The training state for the current size; 0 when out of device memory. */
static int state_get(dn_layer *l, int grow, state *st)
{
    const dn_conv *p = l->priv;
    size_t m = (size_t)l->batch * l->outputs, n = 0;
    int bn = p->batch_normalize, keep_z = dn_activation_needs_input(l->act);
    if (bn) n += (size_t)p->filters + m;
    if (keep_z) n += m;
    st->var = st->x_hat = st->z = NULL;
    if (!n) return 1;
    if (!grow && l->gpu->slot_bytes[2] < n * sizeof(float)) return 0;
    float *f = dn_gpu_slot(l, 2, n * sizeof(float));
    if (!f) return 0;
    if (bn) { st->var = f; f += p->filters; st->x_hat = f; f += m; }
    if (keep_z) st->z = f;
    return 1;
}

static dn_status conv_forward_gpu(dn_layer *l, dn_network *net, const float *input)
{
    const dn_conv *p = l->priv;
    const float *weights = weights_for(l, net);
    if (!weights) return DN_ERR_NOMEM;
    dn_status rc = conv_run(l, net, weights, input, l->gpu->output);
    if (rc != DN_OK) return rc;
    float *out = l->gpu->output;
    size_t m = (size_t)l->batch * l->outputs;
    int hw = l->out_h * l->out_w;
    const float *bias = dn_gpu_param(net, dn_layer_param(l, "biases"));
    const float *sc = NULL, *mean = NULL, *var = NULL;
    if (p->batch_normalize) {
        sc = dn_gpu_param(net, dn_layer_param(l, "scales"));
        mean = dn_gpu_param(net, dn_layer_param(l, "rolling_mean"));
        var = dn_gpu_param(net, dn_layer_param(l, "rolling_variance"));
    }
    if (!net->train) {
        dn_cuda_bn_inference(out, l->batch, p->filters, hw, sc, bias, mean, var);
    } else {
        state st;
        if (!state_get(l, 1, &st)) return DN_ERR_NOMEM;
        if (p->batch_normalize)
            dn_cuda_bn_forward_train(out, l->batch, p->filters, hw, sc, bias, (float *)mean, (float *)var,
                                     dn_bn_momentum(net), st.var, st.x_hat);
        else
            dn_cuda_bias_forward(out, l->batch, p->filters, hw, bias);
        if (st.z) dn_cuda_copy_rows(1, m, out, 0, st.z, 0, 0);
    }
    dn_cuda_activate(out, m, l->act);
    return DN_OK;
}

static dn_status conv_backward_gpu(dn_layer *l, dn_network *net, const float *input, float *input_delta)
{
    const dn_conv *p = l->priv;
    state st;
    if (!state_get(l, 0, &st))
        return dn_error(DN_ERR_STATE, "layer %d [convolutional]: backward without a training forward", l->index);
    size_t m = (size_t)l->batch * l->outputs;
    int hw = l->out_h * l->out_w;
    float *delta = l->gpu->delta;
    dn_cuda_gradient(l->gpu->output, st.z, m, l->act, delta);
    const dn_param *bias = dn_layer_param(l, "biases");
    if (p->batch_normalize) {
        const dn_param *scales = dn_layer_param(l, "scales");
        dn_cuda_bn_backward(delta, l->batch, p->filters, hw, st.x_hat, st.var, dn_gpu_param(net, scales),
                            dn_gpu_grad(net, scales), dn_gpu_grad(net, bias));
    } else {
        dn_cuda_bias_backward(delta, l->batch, p->filters, hw, dn_gpu_grad(net, bias));
    }
    const float *weights = weights_for(l, net);
    if (!weights) return DN_ERR_NOMEM;
    float *wgrad = dn_gpu_grad(net, dn_layer_param(l, "weights")), *ws = net->gpu->workspace;
    void *dnn = net->gpu->dnn;
    if (dnn) {
        dn_status rc = dnn_plan(l, net);
        if (rc == DN_OK && wgrad)
            rc = dnn_check(l, dn_cuda_conv_backward_filter(dnn, l->gpu->plan, input, delta, wgrad, ws));
        if (rc == DN_OK && input_delta)
            rc = dnn_check(l, dn_cuda_conv_backward_data(dnn, l->gpu->plan, weights, delta, input_delta, ws));
        return rc;
    }
    int g = p->groups, ng = p->filters / g, cg = l->c / g;
    int k = cg * p->size * p->size;
    size_t img = (size_t)l->h * l->w;
    int direct = is_direct(p);
    for (int b = 0; b < l->batch; ++b)
        for (int j = 0; j < g; ++j) {
            const float *im = input + ((size_t)b * l->c + (size_t)j * cg) * img;
            const float *d = delta + ((size_t)b * p->filters + (size_t)j * ng) * hw;
            const float *wj = weights + (size_t)j * ng * k;
            if (wgrad) {
                const float *col = im;
                if (!direct) {
                    dn_cuda_im2col(im, cg, l->h, l->w, p->size, p->stride, p->pad, l->out_h, l->out_w, ws);
                    col = ws;
                }
                dn_cuda_gemm(net->gpu->blas, 0, 1, ng, k, hw, 1.f, d, hw, col, hw, 1.f, wgrad + (size_t)j * ng * k, k);
            }
            if (input_delta) {
                float *id = input_delta + ((size_t)b * l->c + (size_t)j * cg) * img;
                if (direct) {
                    dn_cuda_gemm(net->gpu->blas, 1, 0, k, hw, ng, 1.f, wj, k, d, hw, 1.f, id, hw);
                } else {
                    dn_cuda_gemm(net->gpu->blas, 1, 0, k, hw, ng, 1.f, wj, k, d, hw, 0.f, ws, hw);
                    dn_cuda_col2im(ws, cg, l->h, l->w, p->size, p->stride, p->pad, l->out_h, l->out_w, id);
                }
            }
        }
    return DN_OK;
}

const dn_layer_gpu_ops dn_conv_gpu_ops = {"convolutional", conv_forward_gpu, conv_backward_gpu, conv_workspace_gpu};
