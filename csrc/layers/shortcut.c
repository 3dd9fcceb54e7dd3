/* shortcut.c: [shortcut] layer, residual add of an earlier layer (CPU forward).
 *
 * Options: from = one layer reference (negative: relative to this layer),
 * activation (default linear), alpha and beta (default 1).
 * Output shape = input shape. With (w1,h1,c1) the from layer's output dims
 * and (w2,h2,c2) this layer's input dims, Darknet's shortcut_cpu:
 *   stride = max(1, w1/w2), sample = max(1, w2/w1) (h must give the same
 *   ratios), min dims over both; for k < minc, j < minh, i < minw:
 *   out[(i*sample) + w2*((j*sample) + h2*k)] = alpha*out[...] + beta*add[(i*stride) + w1*((j*stride) + h1*k)]
 * where out starts as a copy of the input; then the activation.
 */
#include "../core/internal.h"

#include <string.h>

#define TRY(x) do { dn_status st_ = (x); if (st_ != DN_OK) return st_; } while (0)

typedef struct {
    int from;
    float alpha, beta;
} dn_shortcut;

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
    const dn_shortcut *p = l->priv;
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
    return DN_OK;
}

/* input[batch][c2][h2][w2], from output[batch][c1][h1][w1] -> output[batch][c2][h2][w2]. */
static void shortcut_forward(dn_layer *l, dn_network *net, const float *input)
{
    const dn_shortcut *p = l->priv;
    const dn_layer *f = &net->layers[p->from];
    int w1 = f->out_w, h1 = f->out_h, c1 = f->out_c, w2 = l->w, h2 = l->h, c2 = l->c;
    int stride = w1 > w2 ? w1 / w2 : 1, sample = w2 > w1 ? w2 / w1 : 1;
    int minw = w1 < w2 ? w1 : w2, minh = h1 < h2 ? h1 : h2, minc = c1 < c2 ? c1 : c2;
    float alpha = p->alpha, beta = p->beta;
    memcpy(l->output, input, (size_t)l->batch * l->inputs * sizeof(float));
    for (int b = 0; b < l->batch; ++b) {
        float *out = l->output + (size_t)b * l->outputs;
        const float *add = f->output + (size_t)b * f->outputs;
        for (int k = 0; k < minc; ++k)
            for (int j = 0; j < minh; ++j)
                for (int i = 0; i < minw; ++i) {
                    size_t oi = (size_t)i * sample + (size_t)w2 * ((size_t)j * sample + (size_t)h2 * k);
                    size_t ai = (size_t)i * stride + (size_t)w1 * ((size_t)j * stride + (size_t)h1 * k);
                    out[oi] = alpha * out[oi] + beta * add[ai];
                }
    }
    dn_activate(l->output, (size_t)l->batch * l->outputs, l->act);
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
    .describe = shortcut_describe,
};
