/* softmax.c: [softmax] layer (CPU forward and backward), Darknet's softmax_cpu.
 *
 * Options: groups (default 1), temperature (default 1); tree (hierarchical
 * softmax) is refused. Each image's inputs split into groups runs of
 * inputs/groups consecutive values; each run becomes
 * exp((x - max)/t) / sum exp((x - max)/t). Output shape = input shape.
 * Backward is the softmax's own Jacobian (Darknet passes the delta through
 * unchanged because its cost layers fold the softmax into the loss; here
 * l->delta is dL/doutput, so the Jacobian applies): per run,
 *   dL/dx_i = y_i (g_i - sum_j g_j y_j) / t,  g = dL/dy.
 */
#include "../core/internal.h"
#include "priv.h"

#include <float.h>
#include <math.h>

static dn_status softmax_parse(dn_layer *l, dn_cfg_section *s, dn_network *net)
{
    (void)net;
    dn_softmax *p = dn_calloc(1, sizeof(dn_softmax));
    if (!p) return DN_ERR_NOMEM;
    l->priv = p;
    TRY(dn_cfg_dim(s, "groups", 1, &p->groups));
    TRY(dn_cfg_float(s, "temperature", 1.f, &p->temperature));
    if (dn_cfg_has(s, "tree"))
        return dn_error(DN_ERR_UNSUPPORTED, "%s:%d: [softmax] tree (hierarchical softmax) is not supported",
                        s->file, dn_cfg_line(s, "tree"));
    if (p->groups <= 0)
        return dn_error(DN_ERR_PARSE, "%s:%d: [softmax] groups must be positive, got %d",
                        s->file, dn_cfg_line(s, "groups"), p->groups);
    if (!(p->temperature > 0.f))
        return dn_error(DN_ERR_PARSE, "%s:%d: [softmax] temperature must be positive, got %g",
                        s->file, dn_cfg_line(s, "temperature"), p->temperature);
    if (l->inputs % (size_t)p->groups)
        return dn_error(DN_ERR_PARSE, "%s:%d: [softmax] groups=%d does not divide the %zu inputs",
                        s->file, dn_cfg_line(s, "groups"), p->groups, l->inputs);
    return DN_OK;
}

static dn_status softmax_resize(dn_layer *l, dn_network *net)
{
    const dn_softmax *p = l->priv;
    if (l->inputs % (size_t)p->groups)
        return dn_error(DN_ERR_VALUE, "%s:%d: [softmax] layer %d: groups=%d does not divide the %zu inputs",
                        net->cfg_path, l->line, l->index, p->groups, l->inputs);
    l->out_c = l->c;
    l->out_h = l->h;
    l->out_w = l->w;
    l->flops = 0;
    l->workspace = 0;
    return DN_OK;
}

/* x[n] -> y[n], one stable softmax with temperature t. */
static void softmax_run(const float *x, size_t n, float t, float *y)
{
    float largest = -FLT_MAX, sum = 0;
    for (size_t i = 0; i < n; ++i)
        if (x[i] > largest) largest = x[i];
    for (size_t i = 0; i < n; ++i) {
        float e = expf(x[i] / t - largest / t);
        sum += e;
        y[i] = e;
    }
    for (size_t i = 0; i < n; ++i) y[i] /= sum;
}

/* input[batch][groups][inputs/groups] -> output of the same shape. */
static dn_status softmax_forward(dn_layer *l, dn_network *net, const float *input)
{
    (void)net;
    const dn_softmax *p = l->priv;
    size_t g = (size_t)p->groups, n = l->inputs / g;
    for (size_t r = 0; r < (size_t)l->batch * g; ++r)
        softmax_run(input + r * n, n, p->temperature, l->output + r * n);
    return DN_OK;
}

/* input_delta[batch][groups][inputs/groups] += the Jacobian applied to l->delta. */
static dn_status softmax_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta)
{
    (void)net; (void)input;
    const dn_softmax *p = l->priv;
    if (!input_delta) return DN_OK;
    size_t g = (size_t)p->groups, n = l->inputs / g;
    for (size_t r = 0; r < (size_t)l->batch * g; ++r) {
        const float *y = l->output + r * n, *d = l->delta + r * n;
        float *id = input_delta + r * n;
        double dot = 0;
        for (size_t i = 0; i < n; ++i) dot += (double)d[i] * y[i];
        for (size_t i = 0; i < n; ++i) id[i] += y[i] * (d[i] - (float)dot) / p->temperature;
    }
    return DN_OK;
}

static void softmax_describe(const dn_layer *l, dn_layer_info *info)
{
    info->groups = ((const dn_softmax *)l->priv)->groups;
}

const dn_layer_ops dn_softmax_ops = {
    .section = "softmax",
    .parse = softmax_parse,
    .resize = softmax_resize,
    .forward = softmax_forward,
    .backward = softmax_backward,
    .describe = softmax_describe,
};
