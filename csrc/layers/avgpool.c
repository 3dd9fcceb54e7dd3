/* avgpool.c: [avgpool] layer, Darknet's global average pooling (CPU
 * forward and backward).
 *
 * No options. Output per image: c x 1 x 1, the mean of each channel's h*w
 * values; backward spreads each delta evenly over its channel.
 */
#include "../core/internal.h"

static dn_status avgpool_parse(dn_layer *l, dn_cfg_section *s, dn_network *net)
{
    (void)l; (void)s; (void)net;
    return DN_OK;
}

static dn_status avgpool_resize(dn_layer *l, dn_network *net)
{
    (void)net;
    l->out_w = 1;
    l->out_h = 1;
    l->out_c = l->c;
    l->flops = (double)l->c * l->h * l->w;
    l->workspace = 0;
    return DN_OK;
}

/* input[batch][c][h][w] -> output[batch][c]. */
static dn_status avgpool_forward(dn_layer *l, dn_network *net, const float *input)
{
    (void)net;
    size_t hw = (size_t)l->h * l->w, n = (size_t)l->batch * l->c;
    for (size_t i = 0; i < n; ++i) {
        const float *in = input + i * hw;
        double sum = 0;
        for (size_t k = 0; k < hw; ++k) sum += in[k];
        l->output[i] = (float)(sum / (double)hw);
    }
    return DN_OK;
}

/* input_delta[batch][c][h][w] += delta[batch][c] / (h*w). */
static dn_status avgpool_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta)
{
    (void)net; (void)input;
    if (!input_delta) return DN_OK;
    size_t hw = (size_t)l->h * l->w, n = (size_t)l->batch * l->c;
    for (size_t i = 0; i < n; ++i) {
        float d = l->delta[i] / (float)hw, *id = input_delta + i * hw;
        for (size_t k = 0; k < hw; ++k) id[k] += d;
    }
    return DN_OK;
}

const dn_layer_ops dn_avgpool_ops = {
    .section = "avgpool",
    .parse = avgpool_parse,
    .resize = avgpool_resize,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
};
