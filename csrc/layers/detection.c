/* detection.c: [detection] layer, the YOLOv1 detector head.
 *
 * Input: the flat output of the preceding layer (normally a [connected]
 * layer, 1 x 1 x N) with N = side*side*((1+coords)*num + classes); the
 * output has the input's shape. Layout of one image (Darknet's): the class
 * scores of all cells first [side*side][classes], then the confidences
 * [side*side][num], then the boxes [side*side][num][4] (x, y, w, h; x, y are
 * offsets in the cell, w, h relative to the image, square-rooted when
 * sqrt=1). Forward: copy, with a softmax over each cell's classes when
 * softmax=1. No saved tensors; the training options are kept in
 * dn_detection_layer for the loss. coords must be 4 (Darknet's layout reads
 * 4 numbers per box whatever coords says), so it defaults to 4.
 */
#include "../core/internal.h"
#include "../eval/detect.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TRY(x) do { dn_status st_ = (x); if (st_ != DN_OK) return st_; } while (0)

typedef struct {
    int classes, coords, num, side;
    int rescore, softmax, sqrt, max_boxes, forced, random, reorg;
    float jitter, object_scale, noobject_scale, class_scale, coord_scale;
} dn_detection_layer;

static size_t detection_inputs(const dn_detection_layer *p)
{
    return (size_t)p->side * p->side * ((size_t)(1 + p->coords) * p->num + p->classes);
}

static dn_status detection_parse(dn_layer *l, dn_cfg_section *s, dn_network *net)
{
    dn_detection_layer *p = dn_calloc(1, sizeof(dn_detection_layer));
    if (!p) return DN_ERR_NOMEM;
    l->priv = p;
    l->is_detector = 1;
    TRY(dn_cfg_int(s, "classes", 1, &p->classes));
    TRY(dn_cfg_int(s, "coords", 4, &p->coords));
    TRY(dn_cfg_int(s, "num", 1, &p->num));
    TRY(dn_cfg_int(s, "side", 7, &p->side));
    TRY(dn_cfg_int(s, "rescore", 0, &p->rescore));
    TRY(dn_cfg_int(s, "softmax", 0, &p->softmax));
    TRY(dn_cfg_int(s, "sqrt", 0, &p->sqrt));
    TRY(dn_cfg_int(s, "max", 90, &p->max_boxes));
    l->max_boxes = p->max_boxes;
    TRY(dn_cfg_int(s, "forced", 0, &p->forced));
    TRY(dn_cfg_int(s, "random", 0, &p->random));
    TRY(dn_cfg_int(s, "reorg", 0, &p->reorg));
    TRY(dn_cfg_float(s, "jitter", .2f, &p->jitter));
    TRY(dn_cfg_float(s, "object_scale", 1, &p->object_scale));
    TRY(dn_cfg_float(s, "noobject_scale", 1, &p->noobject_scale));
    TRY(dn_cfg_float(s, "class_scale", 1, &p->class_scale));
    TRY(dn_cfg_float(s, "coord_scale", 1, &p->coord_scale));
    if (p->coords != 4)
        return dn_error(DN_ERR_PARSE, "%s:%d: [detection] coords must be 4 (x, y, w, h), got %d",
                        s->file, dn_cfg_line(s, "coords"), p->coords);
    if (p->classes < 1 || p->num < 1 || p->side < 1)
        return dn_error(DN_ERR_PARSE, "%s:%d: [detection] need classes, num and side >= 1 (got classes=%d num=%d side=%d)",
                        s->file, s->line, p->classes, p->num, p->side);
    if (p->max_boxes < 1)
        return dn_error(DN_ERR_PARSE, "%s:%d: [detection] max must be positive, got %d",
                        s->file, dn_cfg_line(s, "max"), p->max_boxes);
    if (l->inputs != detection_inputs(p))
        return dn_error(DN_ERR_PARSE, "%s:%d: [detection] the input has %zu values: output= in the preceding [connected] should be side*side*((1+coords)*num+classes)=%zu",
                        s->file, s->line, l->inputs, detection_inputs(p));
    net->hp.jitter = p->jitter;
    net->hp.random = p->random;
    return DN_OK;
}

static dn_status detection_resize(dn_layer *l, dn_network *net)
{
    (void)net;
    const dn_detection_layer *p = l->priv;
    if ((size_t)l->c * l->h * l->w != detection_inputs(p))
        return dn_error(DN_ERR_VALUE, "layer %d [detection]: input has %d x %d x %d values, need side*side*((1+coords)*num+classes)=%zu (a [detection] network cannot change input size)",
                        l->index, l->w, l->h, l->c, detection_inputs(p));
    l->out_c = l->c;
    l->out_h = l->h;
    l->out_w = l->w;
    l->flops = 0;
    l->workspace = 0;
    return DN_OK;
}

/* input, l->output: batch x [side*side*classes | side*side*num | side*side*num*4]. */
static void detection_forward(dn_layer *l, dn_network *net, const float *input)
{
    (void)net;
    const dn_detection_layer *p = l->priv;
    memcpy(l->output, input, (size_t)l->batch * l->outputs * sizeof(float));
    if (!p->softmax) return;
    for (int b = 0; b < l->batch; ++b)
        for (int i = 0; i < p->side * p->side; ++i) {
            float *o = l->output + b * l->outputs + (size_t)i * p->classes;
            dn_softmax_strided(o, p->classes, 1, o);
        }
}

static int detection_classes(const dn_layer *l)
{
    return ((const dn_detection_layer *)l->priv)->classes;
}

/* out: one image, layout as above. Darknet's get_detection_detections, in its
 * order (cell, then box): x = (col + bx)/side, y = (row + by)/side,
 * w = bw^(sqrt ? 2 : 1), h likewise; objectness = the confidence;
 * prob[c] = confidence*class, kept when > thresh. A detection is dropped
 * when its confidence is <= thresh and no prob is kept. */
static int detection_decode(const dn_layer *l, const float *out, int netw, int neth, float thresh,
                            dn_detection *dets)
{
    (void)netw; (void)neth;
    const dn_detection_layer *p = l->priv;
    int cells = p->side * p->side, count = 0;
    float pw = p->sqrt ? 2.f : 1.f;
    for (int i = 0; i < cells; ++i)
        for (int n = 0; n < p->num; ++n) {
            float scale = out[(size_t)cells * p->classes + (size_t)i * p->num + n];
            const float *cls = out + (size_t)i * p->classes;
            int keep = scale > thresh;
            for (int c = 0; c < p->classes && !keep; ++c) keep = scale * cls[c] > thresh;
            if (!keep) continue;
            if (dets) {
                dn_detection *d = &dets[count];
                const float *bx = out + (size_t)cells * (p->classes + p->num) + ((size_t)i * p->num + n) * 4;
                int row = i / p->side, col = i % p->side;
                d->bbox.x = (bx[0] + col) / p->side;
                d->bbox.y = (bx[1] + row) / p->side;
                d->bbox.w = (float)pow(bx[2], pw);
                d->bbox.h = (float)pow(bx[3], pw);
                d->objectness = scale;
                d->classes = p->classes;
                for (int c = 0; c < p->classes; ++c) {
                    float prob = scale * cls[c];
                    d->prob[c] = prob > thresh ? prob : 0;
                }
            }
            ++count;
        }
    return count;
}

static void detection_describe(const dn_layer *l, dn_layer_info *info)
{
    const dn_detection_layer *p = l->priv;
    info->classes = p->classes;
    info->num = p->num;
}

const dn_layer_ops dn_detection_ops = {
    .describe = detection_describe,
    .section = "detection",
    .parse = detection_parse,
    .resize = detection_resize,
    .forward = detection_forward,
};

const dn_detector dn_detection_detector = {&dn_detection_ops, detection_classes, detection_decode};
