/* conv_train.c: training forward and backward of the [convolutional] layer.
 *
 * Forward (training): out = W (*) input on the fast kernels of the
 * inference path (dn_conv_forward_fast: direct / Winograd / packed GEMM;
 * dn_conv_gemm, im2col + GEMM, with conv_algo=ref),
 * weights[filters][c/groups][size][size]; then batch norm with the batch
 * statistics (batchnorm.h: 1/(N-1) variance, rolling statistics updated;
 * the conv output is written straight into x_hat) or + bias (fused into
 * the kernel's epilogue); then the activation (fused into the BN pass or
 * the epilogue for linear/leaky/relu/relie).
 * Backward, the same list reversed, from l->delta = dL/doutput (turned in
 * place into dL/d(pre-activation), then dL/d(GEMM output)):
 *   activation gradient and bias (and scale) grads and the batch-norm
 *   backward (one pass pair for the fused activations);
 *   per image and group g: dW_g += delta_g col_g^T and
 *   input_delta_g += col2im(W_g^T delta_g); depthwise layers on the direct
 *   kernel instead (dn_conv_backward_depthwise).
 * Training state, allocated by the first training forward at a given size:
 *   var[filters] and x_hat[batch][filters][out_h*out_w] (batch_normalize),
 *   z[batch][filters][out_h*out_w], the pre-activation (swish, mish only).
 * It lives in dn_conv.train_state (train_floats floats), grown here and
 * released by conv.c's free_priv.
 */
#include "../core/internal.h"
#include "../kernels/cpu/conv_fast.h"
#include "../kernels/cpu/gemm.h"
#include "../kernels/cpu/im2col.h"
#include "../kernels/cpu/parallel.h"
#include "batchnorm.h"
#include "conv.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float *var;    /* filters (batch_normalize), else NULL */
    float *x_hat;  /* batch*outputs (batch_normalize), else NULL */
    float *z;      /* batch*outputs (swish, mish), else NULL */
} conv_state;

/* Forward computes the weights once; backward reuses them (for ternary
 * layers the TWN values: the gradient is taken through t and applied to the
 * float weights, the straight-through estimator). */
static const float *conv_weights(dn_layer *l)
{
    dn_conv *p = l->priv;
    return l->ternary ? p->tweights : dn_layer_param(l, "weights")->data;
}

static size_t state_floats(const dn_layer *l)
{
    const dn_conv *p = l->priv;
    size_t m = (size_t)l->batch * l->outputs, n = 0;
    if (p->batch_normalize) n += (size_t)p->filters + m;
    if (dn_activation_needs_input(l->act)) n += m;
    return n;
}

/* Point st into the state block; 0 when it is smaller than the layer's
 * current size needs (no training forward at this size). */
static int state_get(dn_layer *l, conv_state *st)
{
    dn_conv *p = l->priv;
    size_t need = state_floats(l), m = (size_t)l->batch * l->outputs;
    memset(st, 0, sizeof(*st));
    if (need == 0) return 1;
    if (p->train_floats < need) return 0;
    float *f = p->train_state;
    if (p->batch_normalize) {
        st->var = f; f += p->filters;
        st->x_hat = f; f += m;
    }
    if (dn_activation_needs_input(l->act)) st->z = f;
    return 1;
}

/* Grow the training state; 0 (error set) when out of memory. */
static int state_reserve(dn_layer *l)
{
    size_t need = state_floats(l);
    dn_conv *p = l->priv;
    if (p->train_floats >= need) return 1;
    float *q = dn_realloc(p->train_state, need * sizeof(float));
    if (!q) {
        dn_error(DN_ERR_NOMEM, "layer %d [convolutional]: out of memory for the training state (%zu floats)",
                 l->index, need);
        return 0;
    }
    p->train_state = q;
    p->train_floats = need;
    return 1;
}

dn_status dn_conv_forward_train(dn_layer *l, dn_network *net, const float *input)
{
    conv_state st;
    if (!state_reserve(l) || !state_get(l, &st)) return DN_ERR_NOMEM; /* the message is set */
    const dn_conv *p = l->priv;
    size_t m = (size_t)l->batch * l->outputs;
    int hw = l->out_h * l->out_w, fuse = dn_bn_act_fuses(l->act);
    dn_activation act = fuse ? l->act : DN_ACT_LINEAR;
    const float *weights = dn_conv_weights(l, net);
    if (!weights) return DN_ERR_NOMEM;
    const float *bias = dn_layer_param(l, "biases")->data;
    if (p->batch_normalize) {
        /* the conv output goes straight into x_hat, normalised there in place */
        float *raw = st.x_hat ? st.x_hat : l->output;
        dn_epilogue ep = {NULL, NULL, DN_ACT_LINEAR, 0, 0};
        if (!dn_conv_forward_fast(l, net, input, weights, &ep, raw))
            dn_conv_gemm(l, weights, input, net->workspace, raw);
        dn_bn_forward_train_act(raw, l->batch, p->filters, hw, dn_layer_param(l, "scales")->data, bias,
                                dn_layer_param(l, "rolling_mean")->data,
                                dn_layer_param(l, "rolling_variance")->data, dn_bn_momentum(net), st.var,
                                st.x_hat, l->output, act);
    } else {
        dn_epilogue ep = {NULL, bias, act, 0, 0};
        if (!dn_conv_forward_fast(l, net, input, weights, &ep, l->output)) {
            dn_conv_gemm(l, weights, input, net->workspace, l->output);
            dn_bias_forward(l->output, l->batch, p->filters, hw, bias);
            if (fuse) dn_activate(l->output, m, l->act);
        }
    }
    if (!fuse) {
        if (st.z) memcpy(st.z, l->output, m * sizeof(float));
        dn_activate(l->output, m, l->act);
    }
    return DN_OK;
}

/* Image b (all groups) of the backward GEMMs: weight_grad += delta col^T,
 * input_delta += col2im(W^T delta); col: k*out_h*out_w floats. */
static void backward_image(const dn_layer *l, int b, const float *weights, const float *input,
                           const float *delta, float *col_buf, float *weight_grad, float *input_delta)
{
    const dn_conv *p = l->priv;
    int g = p->groups, ng = p->filters / g, cg = l->c / g;
    int k = cg * p->size * p->size, hw = l->out_h * l->out_w;
    size_t img = (size_t)l->h * l->w;
    int direct = p->size == 1 && p->stride == 1 && p->pad == 0;
    for (int j = 0; j < g; ++j) {
        const float *im = input + ((size_t)b * l->c + (size_t)j * cg) * img;
        const float *d = delta + ((size_t)b * p->filters + (size_t)j * ng) * hw;
        const float *wj = weights + (size_t)j * ng * k;
        if (weight_grad) {
            const float *col = im;
            if (!direct) {
                dn_im2col(im, cg, l->h, l->w, p->size, p->stride, p->pad, l->out_h, l->out_w, col_buf);
                col = col_buf;
            }
            dn_gemm(0, 1, ng, k, hw, 1.f, d, hw, col, hw, 1.f, weight_grad + (size_t)j * ng * k, k);
        }
        if (input_delta) {
            float *id = input_delta + ((size_t)b * l->c + (size_t)j * cg) * img;
            if (direct) {
                dn_gemm(1, 0, k, hw, ng, 1.f, wj, k, d, hw, 1.f, id, hw);
            } else {
                dn_gemm(1, 0, k, hw, ng, 1.f, wj, k, d, hw, 0.f, col_buf, hw);
                dn_col2im(col_buf, cg, l->h, l->w, p->size, p->stride, p->pad, l->out_h, l->out_w, id);
            }
        }
    }
}

typedef struct {
    const dn_layer *l;
    const float *weights, *input, *delta;
    float *weight_grad, *input_delta, *cols, *partials;
    size_t col_floats, wsize;
    int slots;
} backward_job;

/* Slot s: images s, s + slots, ... in order, on this thread's columns,
 * into the weight gradient (slot 0) or partial s; the partials are added in
 * slot order afterwards, so the sums do not depend on which thread ran
 * what (runs with the same seed stay identical). */
static void backward_item(void *ctx, int slot, int tid)
{
    const backward_job *j = ctx;
    float *col = j->cols + (size_t)tid * j->col_floats;
    float *wg = j->weight_grad ? (slot ? j->partials + (size_t)(slot - 1) * j->wsize : j->weight_grad) : NULL;
    for (int b = slot; b < j->l->batch; b += j->slots)
        backward_image(j->l, b, j->weights, j->input, j->delta, col, wg, j->input_delta);
}

static void reduce_item(void *ctx, int f, int tid)
{
    (void)tid;
    const backward_job *j = ctx;
    size_t row = j->wsize / (size_t)((const dn_conv *)j->l->priv)->filters;
    float *d = j->weight_grad + (size_t)f * row;
    for (int t = 1; t < j->slots; ++t) {
        const float *s = j->partials + (size_t)(t - 1) * j->wsize + (size_t)f * row;
        for (size_t i = 0; i < row; ++i) d[i] += s[i];
    }
}

/* delta[batch][filters][out_h*out_w] (dL/d GEMM output) -> weight_grad +=
 * delta col^T, input_delta += col2im(W^T delta), per image and group. With
 * several threads and images, slots of images (2 per thread) are the
 * pool's work items, each on a single-threaded BLAS call (the BLAS's own
 * threads spin next to the pool's); else image by image on the BLAS's
 * threads. */
static void conv_backward_gemm(dn_layer *l, const float *weights, const float *input,
                               const float *delta, float *workspace, float *weight_grad,
                               float *input_delta)
{
    dn_conv *p = l->priv;
    int nth = dn_parallel_threads();
    if (nth > 1 && l->batch > 1) {
        int slots = 2 * nth < l->batch ? 2 * nth : l->batch;
        size_t col = (size_t)(l->c / p->groups) * p->size * p->size * l->out_h * l->out_w;
        size_t wsize = weight_grad ? dn_layer_param(l, "weights")->n : 0;
        size_t need = (size_t)nth * col + (size_t)(slots - 1) * wsize;
        if (p->bwd_floats < need) {
            float *q = dn_realloc(p->bwd_scratch, need * sizeof(float));
            if (q) { p->bwd_scratch = q; p->bwd_floats = need; }
        }
        if (p->bwd_floats >= need) {
            backward_job j = {l, weights, input, delta, weight_grad, input_delta, p->bwd_scratch,
                              p->bwd_scratch + (size_t)nth * col, col, wsize, slots};
            if (weight_grad) memset(j.partials, 0, (size_t)(slots - 1) * wsize * sizeof(float));
            dn_gemm_blas_threads(1);
            dn_parallel_for(slots, nth, backward_item, &j);
            dn_gemm_blas_threads(dn_parallel_threads());
            if (weight_grad) dn_parallel_for(p->filters, nth, reduce_item, &j);
            return;
        }
    }
    for (int b = 0; b < l->batch; ++b) backward_image(l, b, weights, input, delta, workspace, weight_grad, input_delta);
}

dn_status dn_conv_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta)
{
    conv_state st;
    if (!state_get(l, &st))
        return dn_error(DN_ERR_STATE, "layer %d [convolutional]: backward without a training forward at this size",
                        l->index);
    const dn_conv *p = l->priv;
    size_t m = (size_t)l->batch * l->outputs;
    int hw = l->out_h * l->out_w;
    int fuse = dn_bn_act_fuses(l->act);
    dn_activation act = fuse ? l->act : DN_ACT_LINEAR;
    if (!fuse) dn_gradient(l->output, st.z, m, l->act, l->delta);
    dn_param *bias = dn_layer_param(l, "biases");
    if (p->batch_normalize) {
        dn_param *scales = dn_layer_param(l, "scales");
        dn_bn_backward_act(l->delta, l->output, l->batch, p->filters, hw, st.x_hat, st.var, scales->data,
                           scales->grad, bias->grad, act);
    } else {
        dn_bias_backward_act(l->delta, l->output, l->batch, p->filters, hw, bias->grad, act);
    }
    const float *weights = conv_weights(l);
    float *weight_grad = dn_layer_param(l, "weights")->grad;
    if (dn_conv_backward_depthwise(l, net, input, weights, l->delta, weight_grad, input_delta)) return DN_OK;
    if (input_delta && dn_conv_backward_input_fast(l, net, weights, l->delta, input_delta)) input_delta = NULL;
    conv_backward_gemm(l, weights, input, l->delta, net->workspace, weight_grad, input_delta);
    return DN_OK;
}
