/* region.c: [region] layer, the YOLOv2 detector head.
 *
 * Input and output are w x h x num*(coords+classes+1) (the preceding layer's
 * filters). Layout of one image: anchor n, entry e, cell loc (row-major) at
 * n*w*h*(coords+classes+1) + e*w*h + loc; entries are x, y, w, h (and any
 * further coords), objectness (entry coords), then the classes.
 * Forward (Darknet's forward_region_layer, inference part): logistic on x, y
 * and objectness; softmax over the classes of each cell and anchor when
 * softmax=1, else logistic. background=1 treats entry coords as a background
 * class inside the softmax instead of an objectness. Anchors are in grid
 * cells. No saved tensors.
 * Training (net->train): the forward then computes Darknet's region loss
 * (region_loss below) into l->delta, which is dL/d(input): the logistic and
 * softmax derivatives are part of it, so backward only adds it to the input's
 * delta.
 */
#include "../core/internal.h"
#include "detector.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int num, classes, coords;
    float *anchors;          /* [num][2]: width, height in grid cells */
    int softmax, background, bias_match, rescore, absolute, random, max_boxes, log, sqrt;
    float jitter, thresh;
    float object_scale, noobject_scale, class_scale, coord_scale;
    /* Statistics of the last training forward (Darknet prints them). */
    float avg_iou, recall, avg_obj, avg_anyobj;
    int count;
} dn_region;

static dn_status region_parse(dn_layer *l, dn_cfg_section *s, dn_network *net)
{
    dn_region *p = dn_calloc(1, sizeof(dn_region));
    if (!p) return DN_ERR_NOMEM;
    l->priv = p;
    l->is_detector = 1;
    TRY(dn_cfg_dim(s, "coords", 4, &p->coords));
    TRY(dn_cfg_dim(s, "classes", 20, &p->classes));
    TRY(dn_cfg_dim(s, "num", 1, &p->num));
    TRY(dn_cfg_int(s, "softmax", 0, &p->softmax));
    TRY(dn_cfg_int(s, "background", 0, &p->background));
    TRY(dn_cfg_int(s, "bias_match", 0, &p->bias_match));
    TRY(dn_cfg_int(s, "rescore", 0, &p->rescore));
    TRY(dn_cfg_int(s, "absolute", 0, &p->absolute));
    TRY(dn_cfg_int(s, "random", 0, &p->random));
    TRY(dn_cfg_dim(s, "max", 30, &p->max_boxes));
    l->max_boxes = p->max_boxes;
    TRY(dn_cfg_int(s, "log", 0, &p->log));
    TRY(dn_cfg_int(s, "sqrt", 0, &p->sqrt));
    TRY(dn_cfg_float(s, "jitter", .2f, &p->jitter));
    TRY(dn_cfg_float(s, "thresh", .5f, &p->thresh));
    TRY(dn_cfg_float(s, "object_scale", 1, &p->object_scale));
    TRY(dn_cfg_float(s, "noobject_scale", 1, &p->noobject_scale));
    TRY(dn_cfg_float(s, "class_scale", 1, &p->class_scale));
    TRY(dn_cfg_float(s, "coord_scale", 1, &p->coord_scale));
    if (dn_cfg_has(s, "tree"))
        return dn_error(DN_ERR_UNSUPPORTED, "%s:%d: [region] tree= (softmax_tree, YOLO9000) is not supported",
                        s->file, dn_cfg_line(s, "tree"));
    if (dn_cfg_has(s, "map"))
        return dn_error(DN_ERR_UNSUPPORTED, "%s:%d: [region] map= (class map, YOLO9000) is not supported",
                        s->file, dn_cfg_line(s, "map"));
    if (p->coords < 4 || p->classes < 1 || p->num < 1)
        return dn_error(DN_ERR_PARSE, "%s:%d: [region] need coords >= 4, classes >= 1 and num >= 1 (got coords=%d classes=%d num=%d)",
                        s->file, s->line, p->coords, p->classes, p->num);
    if (p->max_boxes < 1)
        return dn_error(DN_ERR_PARSE, "%s:%d: [region] max must be positive, got %d",
                        s->file, dn_cfg_line(s, "max"), p->max_boxes);
    long long want = (long long)p->num * (p->coords + p->classes + 1);
    if (l->c != want)
        return dn_error(DN_ERR_PARSE, "%s:%d: [region] the input has %d channels: filters=%d in the preceding [convolutional] should be num*(classes+coords+1)=%lld",
                        s->file, s->line, l->c, l->c, want);
    int na = 0;
    float *a = NULL;
    TRY(dn_cfg_float_list(s, "anchors", &a, &na));
    if (a && na != 2 * p->num) {
        free(a);
        return dn_error(DN_ERR_PARSE, "%s:%d: [region] anchors has %d numbers, need 2*num=%d",
                        s->file, dn_cfg_line(s, "anchors"), na, 2 * p->num);
    }
    if (!a) {
        a = dn_calloc(2 * (size_t)p->num, sizeof(float));
        if (!a) return DN_ERR_NOMEM;
        for (int i = 0; i < 2 * p->num; ++i) a[i] = .5f;
    }
    p->anchors = a;
    net->hp.jitter = p->jitter;
    net->hp.random = p->random;
    return DN_OK;
}

static dn_status region_resize(dn_layer *l, dn_network *net)
{
    (void)net;
    const dn_region *p = l->priv;
    if (l->c != (long long)p->num * (p->coords + p->classes + 1))
        return dn_error(DN_ERR_VALUE, "layer %d [region]: input has %d channels, need num*(classes+coords+1)=%lld",
                        l->index, l->c, (long long)p->num * (p->coords + p->classes + 1));
    l->out_c = l->c;
    l->out_h = l->h;
    l->out_w = l->w;
    l->flops = 0;
    l->workspace = 0;
    return DN_OK;
}

/* ---- loss: Darknet's forward_region_layer, training part ----
 * Deltas are written as Darknet writes them, target - output, assignments in
 * its order (a later one overwrites an earlier one on the same entry); at the
 * end the cost is their squared norm and they are negated into dL/d(input).
 * Per cell (i, j) and anchor n with output o (logistic x, y, objectness):
 *  - objectness: noobject_scale*(0 - o)*o*(1 - o), or 0 when the predicted
 *    box overlaps some truth with IoU > thresh;
 *  - while net->seen < 12800: the box is pulled towards the anchor centred in
 *    its cell (region_delta_box with scale .01);
 * then per truth box (x, y, w, h, class), at its cell i = (int)(x*w),
 * j = (int)(y*h) and the anchor n whose shape (bias_match=1: the anchor's,
 * else the predicted box's) overlaps the truth's best (boxes centred at 0):
 *  - box: region_delta_box with scale coord_scale*(2 - w*h);
 *  - objectness: object_scale*(t - o)*o*(1 - o), t = IoU(pred, truth) when
 *    rescore=1, else 1;
 *  - classes: class_scale*([c == class] - p_c) on the softmax outputs, which
 *    is the cross-entropy gradient w.r.t. the logits (softmax=0: logistic
 *    classes, the binary cross-entropy gradient; when another truth already
 *    set this anchor's classes only the new class is set, as Darknet does).
 * background=1 (the objectness is a background class in the softmax):
 * noobject_scale*(1 - p), object_scale*(0 - p), no logistic derivative.
 * Truth rows are 5 floats; coords > 4 extra coordinates get no delta. The
 * IoU targets and the ignore decisions are constants for the gradient, as in
 * Darknet. */

/* o: cell (i, j), anchor n: o[e*wh] is entry e. */
static dn_box region_box(const dn_region *p, const float *o, int n, int i, int j, int w, int h,
                         size_t wh)
{
    dn_box b;
    b.x = (i + o[0]) / w;
    b.y = (j + o[wh]) / h;
    b.w = expf(o[2 * wh]) * p->anchors[2 * n] / w;
    b.h = expf(o[3 * wh]) * p->anchors[2 * n + 1] / h;
    return b;
}

/* Darknet's delta_region_box (with the logistic derivative on x, y). Returns
 * the IoU of the predicted box with the truth. */
static float region_delta_box(const dn_region *p, dn_box truth, const float *o, float *d, int n,
                              int i, int j, int w, int h, size_t wh, float scale)
{
    float iou = dn_box_iou(region_box(p, o, n, i, j, w, h, wh), truth);
    float tx = truth.x * w - i, ty = truth.y * h - j;
    float tw = logf(truth.w * w / p->anchors[2 * n]), th = logf(truth.h * h / p->anchors[2 * n + 1]);
    d[0] = scale * (tx - o[0]) * o[0] * (1 - o[0]);
    d[wh] = scale * (ty - o[wh]) * o[wh] * (1 - o[wh]);
    d[2 * wh] = scale * (tw - o[2 * wh]);
    d[3 * wh] = scale * (th - o[3 * wh]);
    return iou;
}

/* o, d: the first class entry of a cell and anchor. */
static void region_delta_class(const dn_region *p, const float *o, float *d, int cls, size_t wh)
{
    if (!p->softmax && d[0] != 0) {
        d[cls * wh] = p->class_scale * (1 - o[cls * wh]);
        return;
    }
    for (int c = 0; c < p->classes; ++c)
        d[c * wh] = p->class_scale * ((c == cls) - o[c * wh]);
}

static void region_loss(dn_layer *l, dn_network *net)
{
    dn_region *p = l->priv;
    int w = l->w, h = l->h;
    size_t wh = (size_t)w * h, entries = (size_t)(p->coords + p->classes + 1), co = (size_t)p->coords;
    double iou_sum = 0, obj_sum = 0, anyobj_sum = 0;
    int count = 0, recall = 0;
    memset(l->delta, 0, (size_t)l->batch * l->outputs * sizeof(float));
    for (int b = 0; b < l->batch; ++b) {
        const float *out = l->output + b * l->outputs, *truth;
        float *delta = l->delta + b * l->outputs;
        int nt = dn_truth_rows(net, b, &truth);
        for (int j = 0; j < h; ++j)
            for (int i = 0; i < w; ++i)
                for (int n = 0; n < p->num; ++n) {
                    size_t at = n * entries * wh + (size_t)j * w + i;
                    const float *o = out + at;
                    float *d = delta + at;
                    dn_box pred = region_box(p, o, n, i, j, w, h, wh);
                    float best = 0;
                    for (int t = 0; t < nt; ++t) {
                        const float *r = truth + 5 * t;
                        float iou = dn_box_iou(pred, (dn_box){r[0], r[1], r[2], r[3]});
                        if (iou > best) best = iou;
                    }
                    float obj = o[co * wh];
                    anyobj_sum += obj;
                    d[co * wh] = p->background ? p->noobject_scale * (1 - obj)
                                               : p->noobject_scale * (0 - obj) * obj * (1 - obj);
                    if (best > p->thresh) d[co * wh] = 0;
                    if (net->seen < 12800) {
                        dn_box prior = {(i + .5f) / w, (j + .5f) / h, p->anchors[2 * n] / w,
                                        p->anchors[2 * n + 1] / h};
                        region_delta_box(p, prior, o, d, n, i, j, w, h, wh, .01f);
                    }
                }
        for (int t = 0; t < nt; ++t) {
            const float *r = truth + 5 * t;
            dn_box tb = {r[0], r[1], r[2], r[3]}, shape = {0, 0, r[2], r[3]};
            int i = dn_truth_cell(tb.x, w), j = dn_truth_cell(tb.y, h), best_n = 0;
            float best = 0;
            for (int n = 0; n < p->num; ++n) {
                dn_box pred = region_box(p, out + n * entries * wh + (size_t)j * w + i, n, i, j, w, h, wh);
                if (p->bias_match) {
                    pred.w = p->anchors[2 * n] / w;
                    pred.h = p->anchors[2 * n + 1] / h;
                }
                pred.x = pred.y = 0;
                float iou = dn_box_iou(pred, shape);
                if (iou > best) {
                    best = iou;
                    best_n = n;
                }
            }
            size_t at = best_n * entries * wh + (size_t)j * w + i;
            const float *o = out + at;
            float *d = delta + at;
            float iou = region_delta_box(p, tb, o, d, best_n, i, j, w, h, wh,
                                         p->coord_scale * (2 - tb.w * tb.h));
            float obj = o[co * wh], target = p->rescore ? iou : 1;
            d[co * wh] = p->background ? p->object_scale * (0 - obj)
                                       : p->object_scale * (target - obj) * obj * (1 - obj);
            int cls = (int)r[4];
            if (cls >= 0 && cls < p->classes) region_delta_class(p, o + (co + 1) * wh, d + (co + 1) * wh, cls, wh);
            iou_sum += iou;
            obj_sum += obj;
            recall += iou > .5f;
            ++count;
        }
    }
    l->cost = dn_detector_cost(l->delta, (size_t)l->batch * l->outputs);
    p->count = count;
    p->avg_iou = count ? (float)(iou_sum / count) : 0;
    p->recall = count ? (float)recall / count : 0;
    p->avg_obj = count ? (float)(obj_sum / count) : 0;
    p->avg_anyobj = (float)(anyobj_sum / ((double)l->batch * p->num * wh));
}

/* input, l->output: batch x [num][coords+classes+1][h][w]. */
static dn_status region_forward(dn_layer *l, dn_network *net, const float *input)
{
    const dn_region *p = l->priv;
    size_t wh = (size_t)l->w * l->h, entries = (size_t)(p->coords + p->classes + 1);
    memcpy(l->output, input, (size_t)l->batch * l->outputs * sizeof(float));
    for (int b = 0; b < l->batch; ++b)
        for (int n = 0; n < p->num; ++n) {
            float *o = l->output + b * l->outputs + n * entries * wh;
            dn_activate(o, 2 * wh, DN_ACT_LOGISTIC);
            if (!p->background) dn_activate(o + p->coords * wh, wh, DN_ACT_LOGISTIC);
            if (!p->softmax) {
                dn_activate(o + (p->coords + 1) * wh, p->classes * wh, DN_ACT_LOGISTIC);
                continue;
            }
            size_t first = (size_t)p->coords + !p->background;
            for (size_t loc = 0; loc < wh; ++loc)
                dn_softmax_strided(o + first * wh + loc, p->classes + p->background, (int)wh,
                                   o + first * wh + loc);
        }
    if (net->train) region_loss(l, net);
    return DN_OK;
}

static int region_classes(const dn_layer *l) { return ((const dn_region *)l->priv)->classes; }

/* out: one image [num][coords+classes+1][h][w]. Darknet's get_region_detections:
 * x = (col + out_x)/w, y = (row + out_y)/h, bw = exp(tw)*anchor_w/w,
 * bh = exp(th)*anchor_h/h; prob[c] = objectness*class, kept when > thresh.
 * Detections come in Darknet's order (anchor, then cell); those with
 * objectness <= thresh are dropped. */
static int region_decode(const dn_layer *l, const float *out, int netw, int neth, float thresh,
                         dn_detection *dets)
{
    (void)netw; (void)neth;
    const dn_region *p = l->priv;
    int wh = l->w * l->h, entries = p->coords + p->classes + 1, count = 0;
    for (int n = 0; n < p->num; ++n)
        for (int loc = 0; loc < wh; ++loc) {
            const float *e = out + (size_t)n * entries * wh + loc;
            float scale = p->background ? 1.f : e[(size_t)p->coords * wh];
            if (!(scale > thresh)) continue;
            if (dets) {
                dn_detection *d = &dets[count];
                int row = loc / l->w, col = loc % l->w;
                d->bbox.x = (col + e[0]) / l->w;
                d->bbox.y = (row + e[wh]) / l->h;
                d->bbox.w = (float)(exp(e[2 * (size_t)wh]) * p->anchors[2 * n] / l->w);
                d->bbox.h = (float)(exp(e[3 * (size_t)wh]) * p->anchors[2 * n + 1] / l->h);
                d->objectness = scale;
                d->classes = p->classes;
                for (int c = 0; c < p->classes; ++c) {
                    float prob = scale * e[(size_t)(p->coords + 1 + c) * wh];
                    d->prob[c] = prob > thresh ? prob : 0;
                }
            }
            ++count;
        }
    return count;
}

static void region_free(dn_layer *l)
{
    dn_region *p = l->priv;
    if (p) free(p->anchors);
}

static void region_describe(const dn_layer *l, dn_layer_info *info)
{
    const dn_region *p = l->priv;
    info->classes = p->classes;
    info->num = p->num;
}

const dn_layer_ops dn_region_ops = {
    .describe = region_describe,
    .section = "region",
    .parse = region_parse,
    .resize = region_resize,
    .forward = region_forward,
    .backward = dn_detector_backward,
    .free_priv = region_free,
};

static void region_head(const dn_layer *l, dn_head *h)
{
    const dn_region *p = l->priv;
    *h = (dn_head){.kind = DN_HEAD_REGION, .n = p->num, .classes = p->classes, .coords = p->coords,
                   .softmax = p->softmax, .background = p->background, .scale_x_y = 1, .anchors = p->anchors,
                   .total = p->num};
}

const dn_detector dn_region_detector = {&dn_region_ops, region_head, region_classes, region_decode};
