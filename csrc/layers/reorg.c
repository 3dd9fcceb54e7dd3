/* reorg.c: [reorg] layer with Darknet's own element order (CPU forward and backward).
 *
 * Options: stride (default 1), reverse (default 0); flatten and extra are
 * read and refused (not supported). Shapes, s = stride:
 *   forward  c x h x w -> c*s*s x h/s x w/s
 *   reverse  c x h x w -> c/(s*s) x h*s x w*s
 * Both use Darknet's reorg_cpu mapping over the INPUT dims (w, h, c), per
 * image: for k < c, j < h, i < w, with c2 = k % (c/(s*s)), o = k / (c/(s*s)):
 *   in  = i + w*(j + h*k)
 *   out = (i*s + o%s) + w*s*((j*s + o/s) + h*s*c2)
 * forward: output[in] = input[out]; reverse: output[out] = input[in].
 * Backward is the inverse permutation applied to the deltas (added).
 * This is not a plain space-to-depth; pretrained yolov2 weights expect it.
 * The mapping is a permutation only when c % (s*s) == 0 (and, forward,
 * w % s == h % s == 0), which parse/resize check.
 */
#include "../core/internal.h"
#include "priv.h"

#include <limits.h>

static dn_status reorg_parse(dn_layer *l, dn_cfg_section *s, dn_network *net)
{
    (void)net;
    dn_reorg *p = dn_calloc(1, sizeof(dn_reorg));
    if (!p) return DN_ERR_NOMEM;
    l->priv = p;
    int flatten, extra;
    TRY(dn_cfg_dim(s, "stride", 1, &p->stride));
    TRY(dn_cfg_int(s, "reverse", 0, &p->reverse));
    TRY(dn_cfg_int(s, "flatten", 0, &flatten));
    TRY(dn_cfg_int(s, "extra", 0, &extra));
    if (p->stride <= 0)
        return dn_error(DN_ERR_PARSE, "%s:%d: [reorg] stride must be positive, got %d",
                        s->file, dn_cfg_line(s, "stride"), p->stride);
    if (flatten || extra)
        return dn_error(DN_ERR_UNSUPPORTED, "%s:%d: [reorg] %s is not supported",
                        s->file, dn_cfg_line(s, flatten ? "flatten" : "extra"), flatten ? "flatten" : "extra");
    return DN_OK;
}

static dn_status reorg_resize(dn_layer *l, dn_network *net)
{
    const dn_reorg *p = l->priv;
    int s = p->stride;
    long long s2 = (long long)s * s;
    if (l->c % s2)
        return dn_error(DN_ERR_VALUE, "%s:%d: [reorg] layer %d: input channels (%d) must be divisible by stride*stride = %lld",
                        net->cfg_path, l->line, l->index, l->c, s2);
    if (p->reverse ? (long long)l->w * s > DN_CFG_MAX_DIM || (long long)l->h * s > DN_CFG_MAX_DIM
                   : l->c * s2 > INT_MAX)
        return dn_error(DN_ERR_VALUE, "%s:%d: [reorg] layer %d: stride=%d makes the output too large",
                        net->cfg_path, l->line, l->index, s);
    if (p->reverse) {
        l->out_w = l->w * s;
        l->out_h = l->h * s;
        l->out_c = (int)(l->c / s2);
    } else {
        if (l->w % s || l->h % s)
            return dn_error(DN_ERR_VALUE, "%s:%d: [reorg] layer %d: input %d x %d is not divisible by stride=%d",
                            net->cfg_path, l->line, l->index, l->w, l->h, s);
        l->out_w = l->w / s;
        l->out_h = l->h / s;
        l->out_c = (int)(l->c * s2);
    }
    l->flops = 0;
    l->workspace = 0;
    return DN_OK;
}

/* Darknet's reorg_cpu over one batch: reverse == 0: out[a] (+)= in[z],
 * else out[z] (+)= in[a], for (a, z) the mapping above; add selects +=. */
static void reorg_map(const dn_layer *l, int reverse, int add, const float *x, float *y)
{
    const dn_reorg *p = l->priv;
    int s = p->stride, w = l->w, h = l->h, c = l->c, c2n = c / (s * s);
    size_t n = l->inputs;
    for (int b = 0; b < l->batch; ++b) {
        const float *in = x + (size_t)b * n;
        float *out = y + (size_t)b * n;
        for (int k = 0; k < c; ++k) {
            int c2 = k % c2n, o = k / c2n;
            for (int j = 0; j < h; ++j) {
                int h2 = j * s + o / s;
                for (int i = 0; i < w; ++i) {
                    int w2 = i * s + o % s;
                    size_t a = (size_t)i + (size_t)w * (j + (size_t)h * k);
                    size_t z = (size_t)w2 + (size_t)w * s * (h2 + (size_t)h * s * c2);
                    size_t dst = reverse ? z : a, src = reverse ? a : z;
                    out[dst] = add ? out[dst] + in[src] : in[src];
                }
            }
        }
    }
}

/* input and output: batch images of c*h*w floats each (see the mapping above). */
static dn_status reorg_forward(dn_layer *l, dn_network *net, const float *input)
{
    (void)net;
    reorg_map(l, ((const dn_reorg *)l->priv)->reverse, 0, input, l->output);
    return DN_OK;
}

/* The permutation's inverse: the other direction of the same mapping. */
static dn_status reorg_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta)
{
    (void)net; (void)input;
    if (input_delta) reorg_map(l, !((const dn_reorg *)l->priv)->reverse, 1, l->delta, input_delta);
    return DN_OK;
}

static void reorg_describe(const dn_layer *l, dn_layer_info *info)
{
    info->stride = ((const dn_reorg *)l->priv)->stride;
}

const dn_layer_ops dn_reorg_ops = {
    .section = "reorg",
    .parse = reorg_parse,
    .resize = reorg_resize,
    .forward = reorg_forward,
    .backward = reorg_backward,
    .describe = reorg_describe,
};
