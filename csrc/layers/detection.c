/* detection.c: [detection] layer, the YOLOv1 detector head.
 *
 * Input: the flat output of the preceding layer (normally a [connected]
 * layer, 1 x 1 x N) with N = side*side*((1+coords)*num + classes); the
 * output has the input's shape. Layout of one image (Darknet's): the class
 * scores of all cells first [side*side][classes], then the confidences
 * [side*side][num], then the boxes [side*side][num][4] (x, y, w, h; x, y are
 * offsets in the cell, w, h relative to the image, square-rooted when
 * sqrt=1). Forward: copy, with a softmax over each cell's classes when
 * softmax=1. No saved tensors. coords must be 4 (Darknet's layout reads
 * 4 numbers per box whatever coords says), so it defaults to 4.
 * Training (net->train): the forward then computes Darknet's YOLOv1 loss
 * (detection_loss below) into l->delta, which is dL/d(input), so backward
 * only adds it to the input's delta.
 */
#include "../core/internal.h"
#include "detector.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
    TRY(dn_cfg_dim(s, "classes", 1, &p->classes));
    TRY(dn_cfg_dim(s, "coords", 4, &p->coords));
    TRY(dn_cfg_dim(s, "num", 1, &p->num));
    TRY(dn_cfg_dim(s, "side", 7, &p->side));
    TRY(dn_cfg_int(s, "rescore", 0, &p->rescore));
    TRY(dn_cfg_int(s, "softmax", 0, &p->softmax));
    TRY(dn_cfg_int(s, "sqrt", 0, &p->sqrt));
    TRY(dn_cfg_dim(s, "max", 90, &p->max_boxes));
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

/* ---- loss: Darknet's forward_detection_layer, training part ----
 * Deltas are written as Darknet writes them, target - output, then the cost
 * is their squared norm and they are negated into dL/d(input). Darknet's
 * loader turns the boxes into one truth per cell (fill_truth_region): the
 * first box whose centre lies in the cell, boxes under .005 wide or high
 * skipped; detection_cell_truth does the same from the truth rows.
 * Per cell: every confidence gets noobject_scale*(0 - c); for a cell with a
 * truth (tx, ty = offsets in the cell, w, h, class):
 *  - classes: class_scale*([k == class] - p_k) (with softmax=1 the gradient
 *    of the cross-entropy w.r.t. the logits, else of the squared error);
 *  - the responsible box j: the best IoU with the truth (boxes compared as
 *    (x/side, y/side, w, h), squared w, h when sqrt=1), or the smallest RMSE
 *    while no box overlaps; forced=1: box 1 for truths under .1 of the image
 *    area, else box 0; random=1 and net->seen < 64000: a random box;
 *  - its confidence object_scale*(t - c), t = its IoU when rescore=1, else 1;
 *  - its box coord_scale*(t - o) for tx, ty, w, h (sqrt(w), sqrt(h) when
 *    sqrt=1).
 * Outputs other than the softmax classes are linear, so every delta is the
 * gradient of scale/2*(t - o)^2 (the IoU target a constant, as in Darknet). */

/* Truth row of cell `cell` of image rows[nt] (NULL when none). */
static const float *detection_cell_truth(const float *rows, int nt, int cell, int side)
{
    for (int t = 0; t < nt; ++t) {
        const float *r = rows + 5 * t;
        if (r[2] < .005f || r[3] < .005f) continue;
        if (dn_truth_cell(r[1], side) * side + dn_truth_cell(r[0], side) == cell) return r;
    }
    return NULL;
}

static float box_rmse(dn_box a, dn_box b)
{
    return sqrtf((a.x - b.x) * (a.x - b.x) + (a.y - b.y) * (a.y - b.y) +
                 (a.w - b.w) * (a.w - b.w) + (a.h - b.h) * (a.h - b.h));
}

/* bx: 4 outputs of one box; as Darknet compares it with the cell's truth. */
static dn_box detection_box(const dn_detection_layer *p, const float *bx)
{
    dn_box b = {bx[0] / p->side, bx[1] / p->side, bx[2], bx[3]};
    if (p->sqrt) {
        b.w *= b.w;
        b.h *= b.h;
    }
    return b;
}

static void detection_loss(dn_layer *l, dn_network *net)
{
    dn_detection_layer *p = l->priv;
    int side = p->side, cells = side * side, num = p->num;
    memset(l->delta, 0, (size_t)l->batch * l->outputs * sizeof(float));
    for (int b = 0; b < l->batch; ++b) {
        const float *out = l->output + b * l->outputs, *rows;
        float *delta = l->delta + b * l->outputs;
        const float *conf = out + (size_t)cells * p->classes, *boxes = conf + (size_t)cells * num;
        float *dconf = delta + (size_t)cells * p->classes, *dboxes = dconf + (size_t)cells * num;
        int nt = dn_truth_rows(net, b, &rows);
        for (int i = 0; i < cells; ++i) {
            for (int n = 0; n < num; ++n)
                dconf[i * num + n] = p->noobject_scale * (0 - conf[i * num + n]);
            const float *r = detection_cell_truth(rows, nt, i, side);
            if (!r) continue;
            int cls = (int)r[4];
            for (int c = 0; c < p->classes; ++c)
                delta[(size_t)i * p->classes + c] = p->class_scale * ((c == cls) - out[(size_t)i * p->classes + c]);
            float tx = r[0] * side - i % side, ty = r[1] * side - i / side;
            dn_box truth = {tx / side, ty / side, r[2], r[3]};
            int best = 0;
            float best_iou = 0, best_rmse = 20;
            for (int n = 0; n < num; ++n) {
                dn_box o = detection_box(p, boxes + ((size_t)i * num + n) * 4);
                float iou = dn_box_iou(o, truth), rmse = box_rmse(o, truth);
                if (best_iou > 0 || iou > 0) {
                    if (iou > best_iou) {
                        best_iou = iou;
                        best = n;
                    }
                } else if (rmse < best_rmse) {
                    best_rmse = rmse;
                    best = n;
                }
            }
            if (p->forced) best = (truth.w * truth.h < .1f && num > 1) ? 1 : 0;
            if (p->random && net->seen < 64000) {
                best = (int)(dn_rand_uniform(&net->rng) * num);
                if (best >= num) best = num - 1;
            }
            const float *o = boxes + ((size_t)i * num + best) * 4;
            float *d = dboxes + ((size_t)i * num + best) * 4;
            float iou = dn_box_iou(detection_box(p, o), truth), c = conf[i * num + best];
            dconf[i * num + best] = p->object_scale * ((p->rescore ? iou : 1) - c);
            d[0] = p->coord_scale * (tx - o[0]);
            d[1] = p->coord_scale * (ty - o[1]);
            d[2] = p->coord_scale * ((p->sqrt ? sqrtf(r[2]) : r[2]) - o[2]);
            d[3] = p->coord_scale * ((p->sqrt ? sqrtf(r[3]) : r[3]) - o[3]);
        }
    }
    l->cost = dn_detector_cost(l->delta, (size_t)l->batch * l->outputs);
}

/* input, l->output: batch x [side*side*classes | side*side*num | side*side*num*4]. */
static dn_status detection_forward(dn_layer *l, dn_network *net, const float *input)
{
    const dn_detection_layer *p = l->priv;
    memcpy(l->output, input, (size_t)l->batch * l->outputs * sizeof(float));
    if (p->softmax)
        for (int b = 0; b < l->batch; ++b)
            for (int i = 0; i < p->side * p->side; ++i) {
                float *o = l->output + b * l->outputs + (size_t)i * p->classes;
                dn_softmax_strided(o, p->classes, 1, o);
            }
    if (net->train) detection_loss(l, net);
    return DN_OK;
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
    .backward = dn_detector_backward,
};

static void detection_head(const dn_layer *l, dn_head *h)
{
    const dn_detection_layer *p = l->priv;
    *h = (dn_head){.kind = DN_HEAD_DETECTION, .n = p->num, .classes = p->classes, .coords = 4,
                   .softmax = p->softmax, .scale_x_y = 1, .side = p->side, .sqrt = p->sqrt};
}

const dn_detector dn_detection_detector = {&dn_detection_ops, detection_head, detection_classes,
                                           detection_decode};
