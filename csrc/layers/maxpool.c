/* maxpool.c: [maxpool] layer (Darknet's max pooling, CPU forward and backward).
 *
 * Options: size (default stride), stride (default 1), padding (default
 * size-1). Output per image: c x out_h x out_w with
 * out_w = (w + padding - size)/stride + 1 (same for h). The window of output
 * cell (y, x) starts at (y*stride - padding/2, x*stride - padding/2); taps
 * outside the image are ignored, so each output is the max over the window's
 * valid taps (the first of equal maxima). Padding is limited to 2*(size-1)
 * so that no window is empty.
 * Training: forward records, per output, where its max lies in its input
 * plane (y*w + x); backward sends each output's delta to that input.
 */
#include "../core/internal.h"
#include "priv.h"
#include "../kernels/cpu/parallel.h"
#include "../kernels/cpu/pool.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

static dn_status maxpool_parse(dn_layer *l, dn_cfg_section *s, dn_network *net)
{
    (void)net;
    dn_maxpool *p = dn_calloc(1, sizeof(dn_maxpool));
    if (!p) return DN_ERR_NOMEM;
    l->priv = p;
    TRY(dn_cfg_dim(s, "stride", 1, &p->stride));
    TRY(dn_cfg_dim(s, "size", p->stride, &p->size));
    TRY(dn_cfg_dim(s, "padding", p->size - 1, &p->pad));
    if (p->stride <= 0)
        return dn_error(DN_ERR_PARSE, "%s:%d: [maxpool] stride must be positive, got %d",
                        s->file, dn_cfg_line(s, "stride"), p->stride);
    if (p->size <= 0)
        return dn_error(DN_ERR_PARSE, "%s:%d: [maxpool] size must be positive, got %d",
                        s->file, dn_cfg_line(s, "size"), p->size);
    if (p->pad < 0 || p->pad > 2 * (p->size - 1))
        return dn_error(DN_ERR_PARSE, "%s:%d: [maxpool] padding must be in [0, 2*(size-1)] = [0, %d] so no window lies outside the image, got %d",
                        s->file, dn_cfg_line(s, "padding"), 2 * (p->size - 1), p->pad);
    return DN_OK;
}

static dn_status maxpool_resize(dn_layer *l, dn_network *net)
{
    dn_maxpool *p = l->priv;
    l->out_w = (l->w + p->pad - p->size) / p->stride + 1;
    l->out_h = (l->h + p->pad - p->size) / p->stride + 1;
    l->out_c = l->c;
    l->flops = (double)p->size * p->size * l->out_c * l->out_h * l->out_w;
    l->workspace = 0;
    if (net->train) {
        free(p->indexes);
        p->indexes = dn_calloc((size_t)l->batch * l->out_c * l->out_h * l->out_w, sizeof(int));
        if (!p->indexes) return DN_ERR_NOMEM;
    }
    return DN_OK;
}

typedef struct {
    dn_layer *l;
    const float *input;
    float *input_delta;
    int *indexes;
} pool_args;

/* o[x] = max of the size x size window at row[x * stride] (rows w apart)
 * for xa <= x < xb; inlined with size = 2 as a constant, the common case.
 * 2x2 stride 2 (the Darknet downsampler) is dn_max2x2_rows; 2x2 stride 1
 * runs 8 outputs per step, taking the taps in the scalar loop's order. */
static inline void window_max(const float *row, int w, int size, int stride, float *o, int xa, int xb)
{
    if (size == 2 && stride == 2) {
        dn_max2x2_rows(row + 2 * (size_t)xa, row + (size_t)w + 2 * (size_t)xa, o + xa, xb - xa);
        return;
    }
    if (size == 2 && stride == 1) /* yolov3-tiny's 13x13 one */
        for (; xa + 8 <= xb; xa += 8) {
            dn_pool_f8 v, m = {-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX};
            const float *taps[4] = {row + xa, row + xa + 1, row + (size_t)w + xa, row + (size_t)w + xa + 1};
            for (int i = 0; i < 4; ++i) {
                memcpy(&v, taps[i], sizeof v);
                m = dn_pool_vmax(v, m);
            }
            memcpy(o + xa, &m, sizeof m);
        }
    for (int x = xa; x < xb; ++x) {
        const float *win = row + (size_t)x * stride;
        float m = -FLT_MAX;
        for (int n = 0; n < size; ++n)
            for (int k = 0; k < size; ++k) {
                float v = win[(size_t)n * w + k];
                m = v > m ? v : m;
            }
        o[x] = m;
    }
}

#define ITEM_OUTPUTS 4096 /* outputs per item at least (whole planes): small planes are too little work to claim one by one */

static int planes_per_item(const dn_layer *l)
{
    const int hw = l->out_h * l->out_w;
    return hw >= ITEM_OUTPUTS ? 1 : ITEM_OUTPUTS / hw;
}

/* Plane bc of input[batch][c][h][w] -> output[batch][c][out_h][out_w]; in
 * training also indexes[batch][c][out_h][out_w]. */
static void maxpool_plane(void *ctx, int bc, int tid)
{
    (void)tid;
    const pool_args *a = ctx;
    const dn_layer *l = a->l;
    const dn_maxpool *p = l->priv;
    int off = -p->pad / 2;
    size_t in_hw = (size_t)l->h * l->w, out_hw = (size_t)l->out_h * l->out_w;
    const float *in = a->input + (size_t)bc * in_hw;
    float *out = l->output + (size_t)bc * out_hw;
    /* Outputs whose window lies inside the input: xa <= x < xb. */
    int xa = off < 0 ? (-off + p->stride - 1) / p->stride : 0;
    int xb = l->w - p->size - off < 0 ? 0 : (l->w - p->size - off) / p->stride + 1;
    if (xb > l->out_w) xb = l->out_w;
    if (xa > xb) xa = xb;
    for (int y = 0; y < l->out_h; ++y)
        for (int x = 0; x < l->out_w; ++x) {
            int iy0 = off + y * p->stride;
            if (!a->indexes && x == xa && iy0 >= 0 && iy0 + p->size <= l->h) {
                /* inference, inside: no bounds checks, no argmax (vectorisable) */
                const float *row = in + (size_t)iy0 * l->w + off;
                float *o = out + (size_t)y * l->out_w;
                if (p->size == 2) window_max(row, l->w, 2, p->stride, o, x, xb);
                else window_max(row, l->w, p->size, p->stride, o, x, xb);
                x = xb;
                if (x == l->out_w) break;
            }
            float m = -FLT_MAX;
            int arg = 0;
            for (int n = 0; n < p->size; ++n) {
                int iy = off + y * p->stride + n;
                if (iy < 0 || iy >= l->h) continue;
                for (int k = 0; k < p->size; ++k) {
                    int ix = off + x * p->stride + k;
                    if (ix < 0 || ix >= l->w) continue;
                    int i = iy * l->w + ix;
                    if (in[i] > m) { m = in[i]; arg = i; }
                }
            }
            out[(size_t)y * l->out_w + x] = m;
            if (a->indexes) a->indexes[(size_t)bc * out_hw + (size_t)y * l->out_w + x] = arg;
        }
}

static void maxpool_planes(void *ctx, int it, int tid)
{
    const pool_args *a = ctx;
    const dn_layer *l = a->l;
    const int per = planes_per_item(l), n = l->batch * l->c;
    for (int bc = it * per; bc < n && bc < (it + 1) * per; ++bc) maxpool_plane(ctx, bc, tid);
}

static dn_status maxpool_forward(dn_layer *l, dn_network *net, const float *input)
{
    const dn_maxpool *p = l->priv;
    pool_args a = {l, input, NULL, net->train ? p->indexes : NULL};
    const int per = planes_per_item(l);
    dn_parallel_for((l->batch * l->c + per - 1) / per, dn_parallel_threads(), maxpool_planes, &a);
    return DN_OK;
}

/* For plane bc and each output o in it: input_delta[bc][indexes[bc][o]] += delta[bc][o]. */
static void maxpool_plane_backward(void *ctx, int bc, int tid)
{
    (void)tid;
    const pool_args *a = ctx;
    const dn_layer *l = a->l;
    size_t in_hw = (size_t)l->h * l->w, out_hw = (size_t)l->out_h * l->out_w;
    float *id = a->input_delta + (size_t)bc * in_hw;
    const float *d = l->delta + (size_t)bc * out_hw;
    const int *idx = a->indexes + (size_t)bc * out_hw;
    for (size_t o = 0; o < out_hw; ++o) id[idx[o]] += d[o];
}

static dn_status maxpool_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta)
{
    (void)net;
    const dn_maxpool *p = l->priv;
    if (!input_delta) return DN_OK;
    pool_args a = {l, input, input_delta, p->indexes};
    size_t work = (size_t)l->batch * l->c * l->out_h * l->out_w;
    dn_parallel_for(l->batch * l->c, work >= 32768 ? dn_parallel_threads() : 1, maxpool_plane_backward, &a);
    return DN_OK;
}

static void maxpool_describe(const dn_layer *l, dn_layer_info *info)
{
    const dn_maxpool *p = l->priv;
    info->size = p->size;
    info->stride = p->stride;
    info->pad = p->pad;
}

static void maxpool_free(dn_layer *l)
{
    dn_maxpool *p = l->priv;
    if (p) free(p->indexes);
}

const dn_layer_ops dn_maxpool_ops = {
    .section = "maxpool",
    .parse = maxpool_parse,
    .resize = maxpool_resize,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
    .describe = maxpool_describe,
    .free_priv = maxpool_free,
};
