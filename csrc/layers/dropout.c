/* dropout.c: [dropout] layer (CPU forward and backward).
 *
 * Option: probability p (default .5), in [0, 1). Output shape = input shape.
 * Inference: identity copy. Training (Darknet's rule): per value, r uniform
 * from net->rng; dropped (0) when r < p, else scaled by 1/(1-p). The
 * multipliers are kept in mask; backward multiplies the delta by them.
 */
#include "../core/internal.h"
#include "priv.h"

#include <stdlib.h>
#include <string.h>

static dn_status dropout_parse(dn_layer *l, dn_cfg_section *s, dn_network *net)
{
    (void)net;
    dn_dropout *p = dn_calloc(1, sizeof(dn_dropout));
    if (!p) return DN_ERR_NOMEM;
    l->priv = p;
    dn_status st = dn_cfg_float(s, "probability", .5f, &p->probability);
    if (st != DN_OK) return st;
    if (!(p->probability >= 0.f && p->probability < 1.f))
        return dn_error(DN_ERR_PARSE, "%s:%d: [dropout] probability must be in [0, 1), got %g",
                        s->file, dn_cfg_line(s, "probability"), p->probability);
    return DN_OK;
}

static dn_status dropout_resize(dn_layer *l, dn_network *net)
{
    dn_dropout *p = l->priv;
    l->out_c = l->c;
    l->out_h = l->h;
    l->out_w = l->w;
    l->flops = 0;
    l->workspace = 0;
    if (net->train) {
        free(p->mask);
        p->mask = dn_calloc((size_t)l->batch * l->inputs, sizeof(float));
        if (!p->mask) return DN_ERR_NOMEM;
    }
    return DN_OK;
}

/* input[batch][inputs] -> output[batch][inputs]: a copy, or in training
 * input * mask with a fresh mask. A batch-norm recalibration
 * (net->bn_average) estimates the statistics inference sees: a copy. */
static dn_status dropout_forward(dn_layer *l, dn_network *net, const float *input)
{
    dn_dropout *p = l->priv;
    size_t n = (size_t)l->batch * l->inputs;
    if (!net->train || net->bn_average) {
        memcpy(l->output, input, n * sizeof(float));
        return DN_OK;
    }
    float scale = 1.f / (1.f - p->probability);
    for (size_t i = 0; i < n; ++i) {
        p->mask[i] = dn_rand_uniform(&net->rng) < p->probability ? 0.f : scale;
        l->output[i] = input[i] * p->mask[i];
    }
    return DN_OK;
}

/* input_delta += delta * mask. */
static dn_status dropout_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta)
{
    (void)net; (void)input;
    const dn_dropout *p = l->priv;
    if (!input_delta) return DN_OK;
    size_t n = (size_t)l->batch * l->inputs;
    for (size_t i = 0; i < n; ++i) input_delta[i] += l->delta[i] * p->mask[i];
    return DN_OK;
}

static void dropout_free(dn_layer *l)
{
    dn_dropout *p = l->priv;
    if (p) free(p->mask);
}

const dn_layer_ops dn_dropout_ops = {
    .section = "dropout",
    .parse = dropout_parse,
    .resize = dropout_resize,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .free_priv = dropout_free,
};
