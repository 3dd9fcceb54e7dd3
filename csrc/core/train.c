/* train.c: one training step of a network: for each of the `subdivisions`
 * sub-batches, forward in training mode (detector layers compute their loss
 * and put dL/d(their input) in their delta), then the layers' backward passes in
 * reverse order accumulating dL/dparam in net->grads; then one SGD update.
 * Conventions: l->delta holds dL/d(l->output) (the positive gradient),
 * except that a detector layer's is dL/d(its input); the truth of a
 * sub-batch is set with dn_network_set_truth before its forward; the
 * reported loss is the sum of the detector layers' costs per image.
 */
#include "internal.h"
#include "../kernels/cpu/threads.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

dn_status dn_network_set_train(dn_network *net, int on)
{
    if (!on) { net->train = 0; return DN_OK; }
    if (!net->grads) {
        net->grads = dn_calloc(net->nparams, sizeof(float));
        net->momentum = dn_calloc(net->nparams, sizeof(float));
        if (!net->grads || !net->momentum) return DN_ERR_NOMEM;
        for (int i = 0; i < net->n; ++i)
            for (int k = 0; k < net->layers[i].nparams; ++k) {
                dn_param *p = &net->layers[i].params[k];
                p->grad = (p->flags & DN_PARAM_TRAIN) ? net->grads + p->offset : NULL;
            }
    }
    for (int i = 0; i < net->n; ++i)
        if (!net->layers[i].ops->backward)
            return dn_error(DN_ERR_UNSUPPORTED, "%s:%d: [%s] layer %d cannot be trained (no backward pass)",
                            net->cfg_path, net->layers[i].line, net->layers[i].ops->section, i);
    net->train = 1;
    int b, c, h, w;
    dn_network_input_shape(net, &b, &c, &h, &w);
    return dn_network_resize(net, b, w, h); /* allocates the deltas */
}

/* Smallest class count of the detector layers (INT_MAX when there are none). */
static int detector_classes(const dn_network *net)
{
    int classes = INT_MAX;
    for (int i = 0; i < net->n; ++i) {
        const dn_layer *l = &net->layers[i];
        if (!l->is_detector || !l->ops->describe) continue;
        dn_layer_info info;
        memset(&info, 0, sizeof info);
        l->ops->describe(l, &info);
        if (info.classes < classes) classes = info.classes;
    }
    return classes;
}

dn_status dn_network_set_truth(dn_network *net, const float *truth, int max_boxes)
{
    if (max_boxes < 0 || (max_boxes > 0 && !truth))
        return dn_error(DN_ERR_VALUE, "set_truth: need max_boxes >= 0 and a truth array (got %d)", max_boxes);
    int classes = detector_classes(net);
    for (int b = 0; b < net->batch; ++b)
        for (int k = 0; k < max_boxes; ++k) {
            const float *r = truth + ((size_t)b * max_boxes + k) * 5;
            if (r[0] == 0 || r[2] == 0) break; /* the list ends here (Darknet) */
            for (int e = 0; e < 5; ++e)
                if (!isfinite(r[e]))
                    return dn_error(DN_ERR_VALUE, "set_truth: image %d box %d: value %d is not finite", b, k, e);
            if (r[2] < 0 || r[3] <= 0)
                return dn_error(DN_ERR_VALUE, "set_truth: image %d box %d: size %g x %g is not positive",
                                b, k, r[2], r[3]);
            if (r[4] < 0 || r[4] >= classes || r[4] != floorf(r[4]))
                return dn_error(DN_ERR_VALUE, "set_truth: image %d box %d: class %g is not an integer in [0, %d)",
                                b, k, r[4], classes);
        }
    size_t n = (size_t)net->batch * max_boxes * 5;
    float *t = realloc(net->truth, (n ? n : 1) * sizeof(float));
    if (!t) return dn_error(DN_ERR_NOMEM, "out of memory for truth (%zu floats)", n);
    net->truth = t;
    net->truths = max_boxes * 5;
    net->truth_batch = net->batch;
    if (n) memcpy(net->truth, truth, n * sizeof(float));
    return DN_OK;
}

/* Forward and backward of one sub-batch (net->batch images); *cost += its loss sum. */
static dn_status train_sub_batch(dn_network *net, const float *images, double *cost)
{
    for (int i = 0; i < net->n; ++i)
        memset(net->layers[i].delta, 0, (size_t)net->layers[i].batch * net->layers[i].outputs * sizeof(float));
    TRY(dn_network_forward(net, images));
    *cost += dn_network_cost(net);
    for (int i = net->n - 1; i >= 0; --i) {
        dn_layer *l = &net->layers[i];
        const float *in = i ? net->layers[i - 1].output : net->input;
        float *in_delta = i ? net->layers[i - 1].delta : NULL;
        TRY(l->ops->backward(l, net, in, in_delta));
    }
    return DN_OK;
}

dn_status dn_network_train_step(dn_network *net, const float *images, const float *truth, int n,
                                int max_boxes, float *loss)
{
    if (!net->train) return dn_error(DN_ERR_STATE, "train_step: call dn_network_set_train first");
    if (n <= 0 || n % net->batch)
        return dn_error(DN_ERR_VALUE, "train_step: %d images is not a multiple of the batch (%d)", n, net->batch);
    if (net->gpu) return dn_device_train_step(net, images, truth, n, max_boxes, loss);
    dn_threads_apply(net->nthreads);
    int subs = n / net->batch;
    size_t isz = (size_t)net->batch * net->inputs, tsz = (size_t)net->batch * max_boxes * 5;
    double sum = 0;
    for (int s = 0; s < subs; ++s) {
        dn_status st = dn_network_set_truth(net, truth + s * tsz, max_boxes);
        if (st != DN_OK) return st;
        st = train_sub_batch(net, images + s * isz, &sum);
        if (st != DN_OK) return st;
        net->seen += (uint64_t)net->batch;
    }
    dn_sgd_update(net, dn_network_learning_rate(net), (float)n);
    *loss = (float)(sum / n);
    return DN_OK;
}

/* ---- batch-norm recalibration: population statistics ----
 * Sub-batch k (from 1) runs with BN momentum 1/k, so the rolling mean and
 * variance become the plain averages of the sub-batches' means m_k and
 * variances v_k. The population variance also needs the spread of the
 * means: var = mean_k(v_k) + mean_k(m_k^2) - mean_k(m_k)^2. m_k is read back
 * from the rolling mean after each sub-batch (m_k = k*r_k - (k-1)*r_{k-1});
 * the sums of m_k^2 are kept here and added at the end. */

/* Visit every rolling mean / variance pair: fn(mean, var, n, offset of the
 * pair's first channel among all BN channels, ctx). Returns the channel count. */
static size_t bn_pairs(dn_network *net, void (*fn)(float *, float *, size_t, size_t, void *), void *ctx)
{
    size_t at = 0;
    for (int i = 0; i < net->n; ++i) {
        dn_param *m = dn_layer_param(&net->layers[i], "rolling_mean");
        dn_param *v = dn_layer_param(&net->layers[i], "rolling_variance");
        if (!m || !v) continue;
        if (fn) fn(m->data, v->data, m->n, at, ctx);
        at += m->n;
    }
    return at;
}

static void bn_add_squares(float *mean, float *var, size_t n, size_t at, void *ctx)
{
    (void)var;
    dn_bn_recal *r = ctx;
    for (size_t c = 0; c < n; ++c) {
        double m = (double)r->k * mean[c] - (double)(r->k - 1) * r->prev[at + c];
        r->sum_sq[at + c] += m * m;
        r->prev[at + c] = mean[c];
    }
}

static void bn_finish(float *mean, float *var, size_t n, size_t at, void *ctx)
{
    dn_bn_recal *r = ctx;
    for (size_t c = 0; c < n; ++c) {
        double v = var[c] + r->sum_sq[at + c] / r->k - (double)mean[c] * mean[c];
        var[c] = (float)(v > 0 ? v : 0);
    }
}

dn_status dn_bn_recal_begin(dn_network *net, dn_bn_recal *r)
{
    memset(r, 0, sizeof(*r));
    r->was_train = net->train;
    if (!r->was_train) {
        dn_status st = dn_network_set_train(net, 1);
        if (st != DN_OK) return st;
    }
    size_t n = bn_pairs(net, NULL, NULL);
    r->prev = dn_calloc(n ? n : 1, sizeof(float));
    r->sum_sq = dn_calloc(n ? n : 1, sizeof(double));
    if (!r->prev || !r->sum_sq) {
        dn_bn_recal_end(net, r);
        return DN_ERR_NOMEM;
    }
    return DN_OK;
}

dn_status dn_bn_recal_step(dn_network *net, dn_bn_recal *r, const float *images)
{
    net->bn_average = ++r->k;
    dn_status st = dn_network_forward(net, images);
    net->bn_average = 0;
    if (st != DN_OK) return st;
    dn_device_params_to_host(net);
    bn_pairs(net, bn_add_squares, r);
    return DN_OK;
}

dn_status dn_bn_recal_end(dn_network *net, dn_bn_recal *r)
{
    if (r->k > 0 && r->sum_sq) {
        bn_pairs(net, bn_finish, r);
        dn_params_changed(net);
    }
    free(r->prev);
    free(r->sum_sq);
    int was_train = r->was_train;
    memset(r, 0, sizeof(*r));
    return was_train ? DN_OK : dn_network_set_train(net, 0);
}

dn_status dn_network_bn_recalibrate(dn_network *net, const float *images, int n)
{
    if (n <= 0 || n % net->batch)
        return dn_error(DN_ERR_VALUE, "bn_recalibrate: %d images is not a multiple of the batch (%d)", n, net->batch);
    dn_bn_recal r;
    dn_status st = dn_bn_recal_begin(net, &r);
    for (int s = 0; st == DN_OK && s < n / net->batch; ++s)
        st = dn_bn_recal_step(net, &r, images + (size_t)s * net->batch * net->inputs);
    dn_status end = dn_bn_recal_end(net, &r);
    return st != DN_OK ? st : end;
}

dn_status dn_network_backward(dn_network *net, const float *out_grad, float *in_grad)
{
    if (!net->train) return dn_error(DN_ERR_STATE, "backward: call dn_network_set_train first");
    if (net->gpu) return dn_device_backward(net, out_grad, in_grad);
    dn_layer *last = &net->layers[net->n - 1];
    if (out_grad) memcpy(last->delta, out_grad, (size_t)last->batch * last->outputs * sizeof(float));
    for (int i = 0; i < net->n - 1; ++i)
        if (out_grad || !net->layers[i].is_detector) /* keep the losses of inner detectors (yolov3) */
            memset(net->layers[i].delta, 0, (size_t)net->layers[i].batch * net->layers[i].outputs * sizeof(float));
    if (in_grad) memset(in_grad, 0, (size_t)net->batch * net->inputs * sizeof(float));
    for (int i = net->n - 1; i >= 0; --i) {
        dn_layer *l = &net->layers[i];
        const float *in = i ? net->layers[i - 1].output : net->input;
        float *in_delta = i ? net->layers[i - 1].delta : in_grad;
        TRY(l->ops->backward(l, net, in, in_delta));
    }
    return DN_OK;
}

void dn_network_zero_grads(dn_network *net)
{
    if (net->grads) memset(net->grads, 0, net->nparams * sizeof(float));
    dn_device_zero_grads(net);
}

float dn_network_cost(const dn_network *net)
{
    float cost = 0;
    for (int i = 0; i < net->n; ++i)
        if (net->layers[i].is_detector) cost += net->layers[i].cost;
    return cost;
}
