/* dropout.c: [dropout] layer (CPU forward, inference).
 *
 * Option: probability (default .5), in [0, 1). Darknet drops and rescales
 * only while training, so the inference forward is an identity copy; the
 * output shape is the input shape. The training path comes with backward.
 */
#include "../core/internal.h"

#include <string.h>

typedef struct {
    float probability;
} dn_dropout;

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
    (void)net;
    l->out_c = l->c;
    l->out_h = l->h;
    l->out_w = l->w;
    l->flops = 0;
    l->workspace = 0;
    return DN_OK;
}

/* input[batch][inputs] -> output[batch][inputs], a copy. */
static void dropout_forward(dn_layer *l, dn_network *net, const float *input)
{
    (void)net;
    memcpy(l->output, input, (size_t)l->batch * l->inputs * sizeof(float));
}

const dn_layer_ops dn_dropout_ops = {
    .section = "dropout",
    .parse = dropout_parse,
    .resize = dropout_resize,
    .forward = dropout_forward,
};
