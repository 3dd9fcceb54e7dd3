/* shortcut.c: [shortcut] layer, residual add of an earlier layer (CPU
 * forward and backward).
 *
 * Options: from = one layer reference (negative: relative to this layer),
 * activation (default linear), alpha and beta (default 1).
 * Output shape = input shape. With (w1,h1,c1) the from layer's output dims
 * and (w2,h2,c2) this layer's input dims, Darknet's shortcut_cpu:
 *   stride = max(1, w1/w2), sample = max(1, w2/w1) (h must give the same
 *   ratios), min dims over both; for k < minc, j < minh, i < minw:
 *   out[(i*sample) + w2*((j*sample) + h2*k)] = alpha*out[...] + beta*add[(i*stride) + w1*((j*stride) + h1*k)]
 * where out starts as a copy of the input; then the activation.
 * Backward (exact for that forward): after the activation gradient, the
 * input gets delta (alpha*delta where the add overlaps) and the from layer's
 * delta gets beta*delta at the matching cells. Training with swish/mish
 * keeps the pre-activation in z.
 */
#include "../core/internal.h"
#include "priv.h"

#include <stdlib.h>
#include <string.h>

/* The cells where the add happens: out[(i*sample) + w2*((j*sample) + h2*k)]
 * meets add[(i*stride) + w1*((j*stride) + h1*k)], k < minc, j < minh, i < minw. */
typedef struct {
    int w1, h1, w2, h2, stride, sample, minw, minh, minc;
} overlap;

static overlap shortcut_overlap(const dn_layer *l, const dn_layer *f)
{
    overlap o;
    o.w1 = f->out_w; o.h1 = f->out_h; o.w2 = l->w; o.h2 = l->h;
    o.stride = o.w1 > o.w2 ? o.w1 / o.w2 : 1;
    o.sample = o.w2 > o.w1 ? o.w2 / o.w1 : 1;
    o.minw = o.w1 < o.w2 ? o.w1 : o.w2;
    o.minh = o.h1 < o.h2 ? o.h1 : o.h2;
    o.minc = f->out_c < l->c ? f->out_c : l->c;
    return o;
}

static inline size_t out_at(const overlap *o, int k, int j, int i)
{
    return (size_t)i * o->sample + (size_t)o->w2 * ((size_t)j * o->sample + (size_t)o->h2 * k);
}

static inline size_t add_at(const overlap *o, int k, int j, int i)
{
    return (size_t)i * o->stride + (size_t)o->w1 * ((size_t)j * o->stride + (size_t)o->h1 * k);
}

static dn_status shortcut_parse(dn_layer *l, dn_cfg_section *s, dn_network *net)
{
    dn_shortcut *p = dn_calloc(1, sizeof(dn_shortcut));
    if (!p) return DN_ERR_NOMEM;
    l->priv = p;
    if (!dn_cfg_has(s, "from"))
        return dn_error(DN_ERR_PARSE, "%s:%d: [shortcut] needs from = a layer index", s->file, s->line);
    int from;
    TRY(dn_cfg_int(s, "from", 0, &from));
    TRY(dn_layer_ref(net, l->index, from, &p->from, s, "from"));
    TRY(dn_cfg_float(s, "alpha", 1.f, &p->alpha));
    TRY(dn_cfg_float(s, "beta", 1.f, &p->beta));
    const char *act = dn_cfg_str(s, "activation", "linear");
    int a = dn_activation_from_name(act);
    if (a < 0)
        return dn_error(DN_ERR_PARSE, "%s:%d: [shortcut] unknown activation '%s'",
                        s->file, dn_cfg_line(s, "activation"), act);
    l->act = (dn_activation)a;
    return DN_OK;
}

static dn_status shortcut_resize(dn_layer *l, dn_network *net)
{
    dn_shortcut *p = l->priv;
    const dn_layer *f = &net->layers[p->from];
    int w1 = f->out_w, h1 = f->out_h, w2 = l->w, h2 = l->h;
    int stride = w1 / w2, sample = w2 / w1;
    if (stride != h1 / h2 || sample != h2 / h1)
        return dn_error(DN_ERR_VALUE, "%s:%d: [shortcut] layer %d: from layer %d is %d x %d but the input is %d x %d; width and height must scale by the same factor",
                        net->cfg_path, l->line, l->index, p->from, w1, h1, w2, h2);
    l->out_c = l->c;
    l->out_h = l->h;
    l->out_w = l->w;
    l->flops = 2.0 * l->inputs;
    l->workspace = 0;
    if (net->train && dn_activation_needs_input(l->act)) {
        free(p->z);
        p->z = dn_calloc((size_t)l->batch * l->inputs, sizeof(float));
        if (!p->z) return DN_ERR_NOMEM;
    }
    return DN_OK;
}

/* input[batch][c2][h2][w2], from output[batch][c1][h1][w1] -> output[batch][c2][h2][w2]. */
static dn_status shortcut_forward(dn_layer *l, dn_network *net, const float *input)
{
    const dn_shortcut *p = l->priv;
    const dn_layer *f = &net->layers[p->from];
    overlap o = shortcut_overlap(l, f);
    float alpha = p->alpha, beta = p->beta;
    size_t m = (size_t)l->batch * l->outputs;
    memcpy(l->output, input, m * sizeof(float));
    for (int b = 0; b < l->batch; ++b) {
        float *out = l->output + (size_t)b * l->outputs;
        const float *add = f->output + (size_t)b * f->outputs;
        for (int k = 0; k < o.minc; ++k)
            for (int j = 0; j < o.minh; ++j)
                for (int i = 0; i < o.minw; ++i) {
                    size_t oi = out_at(&o, k, j, i);
                    out[oi] = alpha * out[oi] + beta * add[add_at(&o, k, j, i)];
                }
    }
    if (net->train && p->z) memcpy(p->z, l->output, m * sizeof(float));
    dn_activate(l->output, m, l->act);
    return DN_OK;
}

/* l->delta (dL/doutput, turned into dL/d pre-activation in place) ->
 * input_delta += delta (alpha*delta on the overlap), from->delta += beta*delta. */
static dn_status shortcut_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta)
{
    (void)input;
    const dn_shortcut *p = l->priv;
    dn_layer *f = &net->layers[p->from];
    overlap o = shortcut_overlap(l, f);
    size_t m = (size_t)l->batch * l->outputs;
    dn_gradient(l->output, p->z, m, l->act, l->delta);
    if (input_delta)
        for (size_t i = 0; i < m; ++i) input_delta[i] += l->delta[i];
    for (int b = 0; b < l->batch; ++b) {
        const float *d = l->delta + (size_t)b * l->outputs;
        float *id = input_delta ? input_delta + (size_t)b * l->outputs : NULL;
        float *fd = f->delta + (size_t)b * f->outputs;
        for (int k = 0; k < o.minc; ++k)
            for (int j = 0; j < o.minh; ++j)
                for (int i = 0; i < o.minw; ++i) {
                    size_t oi = out_at(&o, k, j, i);
                    if (id) id[oi] += (p->alpha - 1.f) * d[oi];
                    fd[add_at(&o, k, j, i)] += p->beta * d[oi];
                }
    }
    return DN_OK;
}

static void shortcut_free(dn_layer *l)
{
    dn_shortcut *p = l->priv;
    if (p) free(p->z);
}

static void shortcut_describe(const dn_layer *l, dn_layer_info *info)
{
    info->activation = dn_activation_name(l->act);
}

const dn_layer_ops dn_shortcut_ops = {
    .section = "shortcut",
    .parse = shortcut_parse,
    .resize = shortcut_resize,
    .forward = shortcut_forward,
    .backward = shortcut_backward,
    .describe = shortcut_describe,
    .free_priv = shortcut_free,
};
