/* yolo.c: [yolo] layer, the YOLOv3 detector head.
 *
 * Input and output are w x h x len(mask)*(classes+5). Layout of one image:
 * mask anchor n, entry e, cell loc (row-major) at
 * n*w*h*(classes+5) + e*w*h + loc; entries are x, y, w, h, objectness, then
 * the classes. Forward (Darknet's forward_yolo_layer, inference part):
 * logistic on x, y, objectness and the classes. anchors (num pairs, in input
 * pixels) are shared by all [yolo] layers; mask picks this layer's. No saved
 * tensors.
 * Training (net->train): the forward then computes Darknet's yolo loss
 * (yolo_loss below) into l->delta, which is dL/d(input), so backward only
 * adds it to the input's delta (Darknet's backward_yolo_layer).
 */
#include "../core/internal.h"
#include "../eval/detect.h"
#include "../kernels/cpu/parallel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TRY(x) do { dn_status st_ = (x); if (st_ != DN_OK) return st_; } while (0)

typedef struct {
    int n;                   /* len(mask): anchors predicted here */
    int total;               /* num: anchors in the list */
    int classes;
    int *mask;               /* [n] indices into anchors */
    float *anchors;          /* [total][2]: width, height in input pixels */
    int random, max_boxes;
    float jitter, ignore_thresh, truth_thresh;
    /* Statistics of the last training forward (Darknet prints them). */
    float avg_iou, recall, recall75, avg_obj, avg_anyobj;
    int count;
} dn_yolo;

static dn_status yolo_parse(dn_layer *l, dn_cfg_section *s, dn_network *net)
{
    dn_yolo *p = dn_calloc(1, sizeof(dn_yolo));
    if (!p) return DN_ERR_NOMEM;
    l->priv = p;
    l->is_detector = 1;
    TRY(dn_cfg_dim(s, "classes", 20, &p->classes));
    TRY(dn_cfg_dim(s, "num", 1, &p->total));
    TRY(dn_cfg_dim(s, "max", 90, &p->max_boxes));
    l->max_boxes = p->max_boxes;
    TRY(dn_cfg_int(s, "random", 0, &p->random));
    TRY(dn_cfg_float(s, "jitter", .2f, &p->jitter));
    TRY(dn_cfg_float(s, "ignore_thresh", .5f, &p->ignore_thresh));
    TRY(dn_cfg_float(s, "truth_thresh", 1.f, &p->truth_thresh));
    if (dn_cfg_has(s, "map"))
        return dn_error(DN_ERR_UNSUPPORTED, "%s:%d: [yolo] map= (class map) is not supported",
                        s->file, dn_cfg_line(s, "map"));
    if (p->classes < 1 || p->total < 1)
        return dn_error(DN_ERR_PARSE, "%s:%d: [yolo] need classes >= 1 and num >= 1 (got classes=%d num=%d)",
                        s->file, s->line, p->classes, p->total);
    if (p->max_boxes < 1)
        return dn_error(DN_ERR_PARSE, "%s:%d: [yolo] max must be positive, got %d",
                        s->file, dn_cfg_line(s, "max"), p->max_boxes);
    TRY(dn_cfg_int_list(s, "mask", &p->mask, &p->n));
    if (!p->mask) {
        p->n = p->total;
        p->mask = dn_calloc((size_t)p->n, sizeof(int));
        if (!p->mask) return DN_ERR_NOMEM;
        for (int i = 0; i < p->n; ++i) p->mask[i] = i;
    }
    if (p->n < 1)
        return dn_error(DN_ERR_PARSE, "%s:%d: [yolo] mask is empty", s->file, dn_cfg_line(s, "mask"));
    for (int i = 0; i < p->n; ++i)
        if (p->mask[i] < 0 || p->mask[i] >= p->total)
            return dn_error(DN_ERR_PARSE, "%s:%d: [yolo] mask index %d is outside the num=%d anchors",
                            s->file, dn_cfg_line(s, "mask"), p->mask[i], p->total);
    int na = 0;
    TRY(dn_cfg_float_list(s, "anchors", &p->anchors, &na));
    if (p->anchors && na != 2 * p->total)
        return dn_error(DN_ERR_PARSE, "%s:%d: [yolo] anchors has %d numbers, need 2*num=%d",
                        s->file, dn_cfg_line(s, "anchors"), na, 2 * p->total);
    if (!p->anchors) {
        p->anchors = dn_calloc(2 * (size_t)p->total, sizeof(float));
        if (!p->anchors) return DN_ERR_NOMEM;
        for (int i = 0; i < 2 * p->total; ++i) p->anchors[i] = .5f;
    }
    long long want = (long long)p->n * (p->classes + 5);
    if (l->c != want)
        return dn_error(DN_ERR_PARSE, "%s:%d: [yolo] the input has %d channels: filters=%d in the preceding [convolutional] should be len(mask)*(classes+5)=%lld",
                        s->file, s->line, l->c, l->c, want);
    net->hp.jitter = p->jitter;
    net->hp.random = p->random;
    return DN_OK;
}

static dn_status yolo_resize(dn_layer *l, dn_network *net)
{
    (void)net;
    const dn_yolo *p = l->priv;
    if (l->c != (long long)p->n * (p->classes + 5))
        return dn_error(DN_ERR_VALUE, "layer %d [yolo]: input has %d channels, need len(mask)*(classes+5)=%lld",
                        l->index, l->c, (long long)p->n * (p->classes + 5));
    l->out_c = l->c;
    l->out_h = l->h;
    l->out_w = l->w;
    l->flops = 0;
    l->workspace = 0;
    return DN_OK;
}

/* ---- loss: Darknet's forward_yolo_layer, training part ----
 * Deltas are written as Darknet writes them, target - output, assignments in
 * its order (a later one overwrites an earlier one on the same entry); at the
 * end the cost is their squared norm and they are negated into dL/d(input).
 * Per cell (i, j) and mask anchor n with output o (logistic x, y,
 * objectness, classes) and best IoU of its predicted box with any truth:
 *  - objectness: 0 - o, or 0 when best IoU > ignore_thresh;
 *  - best IoU > truth_thresh (never with Darknet's truth_thresh=1):
 *    objectness 1 - o, classes and box towards that truth as below;
 * then per truth box (x, y, w, h, class): the anchor among all `num` whose
 * shape overlaps the truth's best (anchor/net size vs w, h, both centred at
 * 0); when it is one of this layer's (mask), at the truth's cell
 * i = (int)(x*w), j = (int)(y*h):
 *  - box, scale s = 2 - w*h: s*(tx - o_x), s*(ty - o_y) with tx = x*w - i,
 *    ty = y*h - j, and s*(tw - o_w), s*(th - o_h) with
 *    tw = log(w*net_w/anchor_w), th = log(h*net_h/anchor_h);
 *  - objectness 1 - o; classes [c == class] - o_c (when another truth
 *    already set this anchor's classes, only the new class is set).
 * Darknet applies no logistic derivative: for x, y, objectness and classes
 * the delta target - sigmoid(input) is exactly the gradient of the binary
 * cross-entropy (times s for x, y) w.r.t. the input; for w, h it is the
 * gradient of s/2*(t - input)^2. The IoU decisions are constants for the
 * gradient, as in Darknet. */

/* o: cell (i, j), mask anchor with anchors index a: o[e*wh] is entry e. */
static dn_box yolo_box(const dn_yolo *p, const float *o, int a, int i, int j, int lw, int lh,
                       int netw, int neth, size_t wh)
{
    dn_box b;
    b.x = (i + o[0]) / lw;
    b.y = (j + o[wh]) / lh;
    b.w = expf(o[2 * wh]) * p->anchors[2 * a] / netw;
    b.h = expf(o[3 * wh]) * p->anchors[2 * a + 1] / neth;
    return b;
}

/* Darknet's delta_yolo_box; returns the IoU of the predicted box with the truth. */
static float yolo_delta_box(const dn_yolo *p, dn_box truth, const float *o, float *d, int a, int i,
                            int j, int lw, int lh, int netw, int neth, size_t wh, float scale)
{
    float iou = dn_box_iou(yolo_box(p, o, a, i, j, lw, lh, netw, neth, wh), truth);
    float tx = truth.x * lw - i, ty = truth.y * lh - j;
    float tw = logf(truth.w * netw / p->anchors[2 * a]), th = logf(truth.h * neth / p->anchors[2 * a + 1]);
    d[0] = scale * (tx - o[0]);
    d[wh] = scale * (ty - o[wh]);
    d[2 * wh] = scale * (tw - o[2 * wh]);
    d[3 * wh] = scale * (th - o[3 * wh]);
    return iou;
}

/* Darknet's delta_yolo_class; o, d: the first class entry of a cell and anchor. */
static void yolo_delta_class(const float *o, float *d, int cls, int classes, size_t wh)
{
    if (d[0] != 0) {
        d[cls * wh] = 1 - o[cls * wh];
        return;
    }
    for (int c = 0; c < classes; ++c) d[c * wh] = (c == cls) - o[c * wh];
}

static void yolo_loss(dn_layer *l, dn_network *net)
{
    dn_yolo *p = l->priv;
    int lw = l->w, lh = l->h, netw = net->w, neth = net->h;
    size_t wh = (size_t)lw * lh, entries = (size_t)p->classes + 5;
    double iou_sum = 0, obj_sum = 0, anyobj_sum = 0;
    int count = 0, recall = 0, recall75 = 0;
    memset(l->delta, 0, (size_t)l->batch * l->outputs * sizeof(float));
    for (int b = 0; b < l->batch; ++b) {
        const float *out = l->output + b * l->outputs, *truth;
        float *delta = l->delta + b * l->outputs;
        int nt = dn_truth_rows(net, b, &truth);
        for (int j = 0; j < lh; ++j)
            for (int i = 0; i < lw; ++i)
                for (int n = 0; n < p->n; ++n) {
                    size_t at = n * entries * wh + (size_t)j * lw + i;
                    const float *o = out + at;
                    float *d = delta + at;
                    dn_box pred = yolo_box(p, o, p->mask[n], i, j, lw, lh, netw, neth, wh);
                    float best = 0;
                    int best_t = 0;
                    for (int t = 0; t < nt; ++t) {
                        const float *r = truth + 5 * t;
                        float iou = dn_box_iou(pred, (dn_box){r[0], r[1], r[2], r[3]});
                        if (iou > best) {
                            best = iou;
                            best_t = t;
                        }
                    }
                    float obj = o[4 * wh];
                    anyobj_sum += obj;
                    d[4 * wh] = 0 - obj;
                    if (best > p->ignore_thresh) d[4 * wh] = 0;
                    if (best > p->truth_thresh) {
                        const float *r = truth + 5 * best_t;
                        int cls = (int)r[4];
                        d[4 * wh] = 1 - obj;
                        if (cls >= 0 && cls < p->classes) yolo_delta_class(o + 5 * wh, d + 5 * wh, cls, p->classes, wh);
                        yolo_delta_box(p, (dn_box){r[0], r[1], r[2], r[3]}, o, d, p->mask[n], i, j, lw, lh,
                                       netw, neth, wh, 2 - r[2] * r[3]);
                    }
                }
        for (int t = 0; t < nt; ++t) {
            const float *r = truth + 5 * t;
            dn_box tb = {r[0], r[1], r[2], r[3]}, shape = {0, 0, r[2], r[3]};
            float best = 0;
            int best_a = 0, n = -1;
            for (int a = 0; a < p->total; ++a) {
                float iou = dn_box_iou((dn_box){0, 0, p->anchors[2 * a] / netw, p->anchors[2 * a + 1] / neth}, shape);
                if (iou > best) {
                    best = iou;
                    best_a = a;
                }
            }
            for (int k = 0; k < p->n && n < 0; ++k)
                if (p->mask[k] == best_a) n = k;
            if (n < 0) continue;
            int i = dn_truth_cell(tb.x, lw), j = dn_truth_cell(tb.y, lh);
            size_t at = n * entries * wh + (size_t)j * lw + i;
            const float *o = out + at;
            float *d = delta + at;
            float iou = yolo_delta_box(p, tb, o, d, best_a, i, j, lw, lh, netw, neth, wh, 2 - tb.w * tb.h);
            d[4 * wh] = 1 - o[4 * wh];
            int cls = (int)r[4];
            if (cls >= 0 && cls < p->classes) yolo_delta_class(o + 5 * wh, d + 5 * wh, cls, p->classes, wh);
            iou_sum += iou;
            obj_sum += o[4 * wh];
            recall += iou > .5f;
            recall75 += iou > .75f;
            ++count;
        }
    }
    l->cost = dn_detector_cost(l->delta, (size_t)l->batch * l->outputs);
    p->count = count;
    p->avg_iou = count ? (float)(iou_sum / count) : 0;
    p->recall = count ? (float)recall / count : 0;
    p->recall75 = count ? (float)recall75 / count : 0;
    p->avg_obj = count ? (float)(obj_sum / count) : 0;
    p->avg_anyobj = (float)(anyobj_sum / ((double)l->batch * p->n * wh));
}

#define ENTRY_BLOCK 8 /* entries (w x h planes) per item of the forward */

typedef struct {
    const dn_layer *l;
    const float *input;
} yolo_job;

/* Item it: entries [e0, e0 + ENTRY_BLOCK) of one image and anchor, copied,
 * then the logistic on all but w and h (entries 2 and 3). */
static void yolo_forward_item(void *ctx, int it, int tid)
{
    (void)tid;
    const yolo_job *j = ctx;
    const dn_yolo *p = j->l->priv;
    const int entries = p->classes + 5, nblk = (entries + ENTRY_BLOCK - 1) / ENTRY_BLOCK;
    const int e0 = it % nblk * ENTRY_BLOCK, e1 = e0 + ENTRY_BLOCK < entries ? e0 + ENTRY_BLOCK : entries;
    const size_t wh = (size_t)j->l->w * j->l->h, off = ((size_t)(it / nblk) * entries + e0) * wh; /* it / nblk = b*n + anchor */
    float *o = j->l->output + off;
    memcpy(o, j->input + off, (size_t)(e1 - e0) * wh * sizeof(float));
    for (int e = e0; e < e1; ++e)
        if (e != 2 && e != 3) dn_activate(o + (size_t)(e - e0) * wh, wh, DN_ACT_LOGISTIC);
}

/* input, l->output: batch x [n][classes+5][h][w]. */
static void yolo_forward(dn_layer *l, dn_network *net, const float *input)
{
    const dn_yolo *p = l->priv;
    yolo_job j = {l, input};
    const int nblk = (p->classes + 5 + ENTRY_BLOCK - 1) / ENTRY_BLOCK;
    dn_parallel_for(l->batch * p->n * nblk, dn_parallel_threads(), yolo_forward_item, &j);
    if (net->train) yolo_loss(l, net);
}

static int yolo_classes(const dn_layer *l) { return ((const dn_yolo *)l->priv)->classes; }

/* out: one image [n][classes+5][h][w]. Darknet's get_yolo_detections, in its
 * order (cell, then anchor), keeping objectness > thresh:
 * x = (col + out_x)/w, y = (row + out_y)/h,
 * bw = exp(tw)*anchor_w[mask[n]]/netw, bh = exp(th)*anchor_h[mask[n]]/neth;
 * prob[c] = objectness*class, kept when > thresh. */
static int yolo_decode(const dn_layer *l, const float *out, int netw, int neth, float thresh,
                       dn_detection *dets)
{
    const dn_yolo *p = l->priv;
    int wh = l->w * l->h, entries = p->classes + 5, count = 0;
    for (int loc = 0; loc < wh; ++loc)
        for (int n = 0; n < p->n; ++n) {
            const float *e = out + (size_t)n * entries * wh + loc;
            float obj = e[4 * (size_t)wh];
            if (!(obj > thresh)) continue;
            if (dets) {
                dn_detection *d = &dets[count];
                int row = loc / l->w, col = loc % l->w, a = p->mask[n];
                d->bbox.x = (col + e[0]) / l->w;
                d->bbox.y = (row + e[wh]) / l->h;
                d->bbox.w = (float)(exp(e[2 * (size_t)wh]) * p->anchors[2 * a] / netw);
                d->bbox.h = (float)(exp(e[3 * (size_t)wh]) * p->anchors[2 * a + 1] / neth);
                d->objectness = obj;
                d->classes = p->classes;
                for (int c = 0; c < p->classes; ++c) {
                    float prob = obj * e[(size_t)(5 + c) * wh];
                    d->prob[c] = prob > thresh ? prob : 0;
                }
            }
            ++count;
        }
    return count;
}

static void yolo_free(dn_layer *l)
{
    dn_yolo *p = l->priv;
    if (!p) return;
    free(p->mask);
    free(p->anchors);
}

static void yolo_describe(const dn_layer *l, dn_layer_info *info)
{
    const dn_yolo *p = l->priv;
    info->classes = p->classes;
    info->num = p->n;
}

const dn_layer_ops dn_yolo_ops = {
    .describe = yolo_describe,
    .section = "yolo",
    .parse = yolo_parse,
    .resize = yolo_resize,
    .forward = yolo_forward,
    .backward = dn_detector_backward,
    .free_priv = yolo_free,
};

const dn_detector dn_yolo_detector = {&dn_yolo_ops, yolo_classes, yolo_decode};
