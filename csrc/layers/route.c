/* route.c: [route] layer, concatenation of earlier layers' outputs (CPU
 * forward and backward).
 *
 * Options: layers = comma list of layer references (negative: relative to
 * this layer, else absolute); groups (default 1) and group_id (default 0),
 * AlexeyAB's extension: take channel slice group_id of groups equal parts of
 * each referenced output. All referenced outputs must share out_h x out_w.
 * Output per image: the slices concatenated along channels, in list order.
 * The layer ignores its own input (the previous layer's output); backward
 * adds each slice of its delta into the referenced layer's delta.
 */
#include "../core/internal.h"
#include "priv.h"

#include <stdlib.h>
#include <string.h>

static dn_status route_parse(dn_layer *l, dn_cfg_section *s, dn_network *net)
{
    dn_route *p = dn_calloc(1, sizeof(dn_route));
    if (!p) return DN_ERR_NOMEM;
    l->priv = p;
    TRY(dn_cfg_int_list(s, "layers", &p->layers, &p->n));
    if (p->n == 0)
        return dn_error(DN_ERR_PARSE, "%s:%d: [route] needs layers = a comma list of layer indexes",
                        s->file, dn_cfg_line(s, "layers"));
    for (int i = 0; i < p->n; ++i) TRY(dn_layer_ref(net, l->index, p->layers[i], &p->layers[i], s, "layers"));
    TRY(dn_cfg_dim(s, "groups", 1, &p->groups));
    TRY(dn_cfg_dim(s, "group_id", 0, &p->group_id));
    if (p->groups <= 0)
        return dn_error(DN_ERR_PARSE, "%s:%d: [route] groups must be positive, got %d",
                        s->file, dn_cfg_line(s, "groups"), p->groups);
    if (p->group_id < 0 || p->group_id >= p->groups)
        return dn_error(DN_ERR_PARSE, "%s:%d: [route] group_id must be in [0, groups=%d), got %d",
                        s->file, dn_cfg_line(s, "group_id"), p->groups, p->group_id);
    return DN_OK;
}

static dn_status route_resize(dn_layer *l, dn_network *net)
{
    dn_route *p = l->priv;
    const dn_layer *first = &net->layers[p->layers[0]];
    l->out_w = first->out_w;
    l->out_h = first->out_h;
    l->out_c = 0;
    for (int i = 0; i < p->n; ++i) {
        const dn_layer *r = &net->layers[p->layers[i]];
        if (r->out_w != first->out_w || r->out_h != first->out_h)
            return dn_error(DN_ERR_VALUE, "%s:%d: [route] layer %d: layers %d (%d x %d x %d) and %d (%d x %d x %d) differ in width or height",
                            net->cfg_path, l->line, l->index, p->layers[0], first->out_w, first->out_h,
                            first->out_c, p->layers[i], r->out_w, r->out_h, r->out_c);
        if (r->out_c % p->groups)
            return dn_error(DN_ERR_VALUE, "%s:%d: [route] layer %d: groups=%d does not divide the %d channels of layer %d",
                            net->cfg_path, l->line, l->index, p->groups, r->out_c, p->layers[i]);
        l->out_c += r->out_c / p->groups;
    }
    l->flops = 0;
    l->workspace = 0;
    return DN_OK;
}

/* For each referenced layer r (outputs[batch][c_r][out_h][out_w]) copy the
 * channel slice [group_id*c_r/groups, (group_id+1)*c_r/groups) into
 * output[batch][out_c][out_h][out_w] at the running channel offset. */
static dn_status route_forward(dn_layer *l, dn_network *net, const float *input)
{
    (void)input;
    const dn_route *p = l->priv;
    size_t offset = 0;
    for (int i = 0; i < p->n; ++i) {
        const dn_layer *r = &net->layers[p->layers[i]];
        size_t part = r->outputs / p->groups;
        const float *src = r->output + part * p->group_id;
        for (int b = 0; b < l->batch; ++b)
            memcpy(l->output + (size_t)b * l->outputs + offset, src + (size_t)b * r->outputs,
                   part * sizeof(float));
        offset += part;
    }
    return DN_OK;
}

/* The adjoint of route_forward: referenced delta slices += slices of l->delta. */
static dn_status route_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta)
{
    (void)input; (void)input_delta;
    const dn_route *p = l->priv;
    size_t offset = 0;
    for (int i = 0; i < p->n; ++i) {
        dn_layer *r = &net->layers[p->layers[i]];
        size_t part = r->outputs / p->groups;
        float *dst = r->delta + part * p->group_id;
        for (int b = 0; b < l->batch; ++b) {
            const float *d = l->delta + (size_t)b * l->outputs + offset;
            float *o = dst + (size_t)b * r->outputs;
            for (size_t k = 0; k < part; ++k) o[k] += d[k];
        }
        offset += part;
    }
    return DN_OK;
}

static void route_describe(const dn_layer *l, dn_layer_info *info)
{
    info->groups = ((const dn_route *)l->priv)->groups;
}

static void route_free(dn_layer *l)
{
    dn_route *p = l->priv;
    if (p) free(p->layers);
}

const dn_layer_ops dn_route_ops = {
    .section = "route",
    .parse = route_parse,
    .resize = route_resize,
    .forward = route_forward,
    .backward = route_backward,
    .describe = route_describe,
    .free_priv = route_free,
};
