/* upsample.c: [upsample] layer (CPU forward and backward), Darknet's upsample_cpu.
 *
 * Options: stride (default 2), scale (default 1).
 * stride > 0: nearest neighbour, c x h x w -> c x h*s x w*s,
 *   out[k][y][x] = scale * in[k][y/s][x/s].
 * stride < 0 (Darknet's reverse), s = -stride: c x h x w -> c x h/s x w/s,
 *   out[k][y][x] = scale * sum of the s x s block in[k][y*s..][x*s..]
 *   (input width and height must be divisible by s).
 * Backward is the adjoint: each input cell gets scale times the deltas of
 * the outputs it fed.
 */
#include "../core/internal.h"
#include "priv.h"

#include <string.h>

static dn_status upsample_parse(dn_layer *l, dn_cfg_section *s, dn_network *net)
{
    (void)net;
    dn_upsample *p = dn_calloc(1, sizeof(dn_upsample));
    if (!p) return DN_ERR_NOMEM;
    l->priv = p;
    int stride;
    TRY(dn_cfg_dim(s, "stride", 2, &stride));
    TRY(dn_cfg_float(s, "scale", 1.f, &p->scale));
    if (stride == 0)
        return dn_error(DN_ERR_PARSE, "%s:%d: [upsample] stride must not be 0",
                        s->file, dn_cfg_line(s, "stride"));
    p->reverse = stride < 0;
    p->stride = stride < 0 ? -stride : stride;
    return DN_OK;
}

static dn_status upsample_resize(dn_layer *l, dn_network *net)
{
    const dn_upsample *p = l->priv;
    int s = p->stride;
    l->out_c = l->c;
    if (p->reverse) {
        if (l->w % s || l->h % s)
            return dn_error(DN_ERR_VALUE, "%s:%d: [upsample] layer %d: input %d x %d is not divisible by -stride=%d",
                            net->cfg_path, l->line, l->index, l->w, l->h, s);
        l->out_w = l->w / s;
        l->out_h = l->h / s;
    } else {
        if ((long long)l->w * s > DN_CFG_MAX_DIM || (long long)l->h * s > DN_CFG_MAX_DIM)
            return dn_error(DN_ERR_VALUE, "%s:%d: [upsample] layer %d: output %lld x %lld is larger than %d",
                            net->cfg_path, l->line, l->index, (long long)l->w * s, (long long)l->h * s,
                            DN_CFG_MAX_DIM);
        l->out_w = l->w * s;
        l->out_h = l->h * s;
    }
    l->flops = 0;
    l->workspace = 0;
    return DN_OK;
}

/* input[batch][c][h][w] -> output[batch][c][out_h][out_w]. */
static dn_status upsample_forward(dn_layer *l, dn_network *net, const float *input)
{
    (void)net;
    const dn_upsample *p = l->priv;
    int s = p->stride, n = l->batch * l->c;
    float scale = p->scale;
    for (int bc = 0; bc < n; ++bc) {
        const float *in = input + (size_t)bc * l->h * l->w;
        float *out = l->output + (size_t)bc * l->out_h * l->out_w;
        if (!p->reverse) { /* each input row once into its first output row, copied to the other s - 1 */
            for (int y = 0; y < l->h; ++y) {
                float *o = out + (size_t)y * s * l->out_w;
                for (int x = 0; x < l->w; ++x)
                    for (int k = 0; k < s; ++k) o[x * s + k] = scale * in[(size_t)y * l->w + x];
                for (int k = 1; k < s; ++k) memcpy(o + (size_t)k * l->out_w, o, sizeof(float) * l->out_w);
            }
        } else {
            for (int y = 0; y < l->out_h; ++y)
                for (int x = 0; x < l->out_w; ++x) {
                    float sum = 0;
                    for (int dy = 0; dy < s; ++dy)
                        for (int dx = 0; dx < s; ++dx)
                            sum += scale * in[(size_t)(y * s + dy) * l->w + x * s + dx];
                    out[(size_t)y * l->out_w + x] = sum;
                }
        }
    }
    return DN_OK;
}

/* input_delta[batch][c][h][w] += adjoint of upsample_forward applied to l->delta. */
static dn_status upsample_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta)
{
    (void)net; (void)input;
    const dn_upsample *p = l->priv;
    if (!input_delta) return DN_OK;
    int s = p->stride, n = l->batch * l->c;
    float scale = p->scale;
    for (int bc = 0; bc < n; ++bc) {
        float *id = input_delta + (size_t)bc * l->h * l->w;
        const float *d = l->delta + (size_t)bc * l->out_h * l->out_w;
        for (int y = 0; y < l->out_h; ++y)
            for (int x = 0; x < l->out_w; ++x) {
                float g = scale * d[(size_t)y * l->out_w + x];
                if (!p->reverse) {
                    id[(size_t)(y / s) * l->w + x / s] += g;
                } else {
                    for (int dy = 0; dy < s; ++dy)
                        for (int dx = 0; dx < s; ++dx)
                            id[(size_t)(y * s + dy) * l->w + x * s + dx] += g;
                }
            }
    }
    return DN_OK;
}

static void upsample_describe(const dn_layer *l, dn_layer_info *info)
{
    const dn_upsample *p = l->priv;
    info->stride = p->reverse ? -p->stride : p->stride;
}

const dn_layer_ops dn_upsample_ops = {
    .section = "upsample",
    .parse = upsample_parse,
    .resize = upsample_resize,
    .forward = upsample_forward,
    .backward = upsample_backward,
    .describe = upsample_describe,
};
