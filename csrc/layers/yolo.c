/* yolo.c: [yolo] layer, the YOLOv3 detector head.
 *
 * Input and output are w x h x len(mask)*(classes+5). Layout of one image:
 * mask anchor n, entry e, cell loc (row-major) at
 * n*w*h*(classes+5) + e*w*h + loc; entries are x, y, w, h, objectness, then
 * the classes. Forward (Darknet's forward_yolo_layer, inference part):
 * logistic on x, y, objectness and the classes. anchors (num pairs, in input
 * pixels) are shared by all [yolo] layers; mask picks this layer's. No saved
 * tensors. The training options are kept in dn_yolo for the loss.
 */
#include "../core/internal.h"
#include "../eval/detect.h"

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
} dn_yolo;

static dn_status yolo_parse(dn_layer *l, dn_cfg_section *s, dn_network *net)
{
    dn_yolo *p = dn_calloc(1, sizeof(dn_yolo));
    if (!p) return DN_ERR_NOMEM;
    l->priv = p;
    l->is_detector = 1;
    TRY(dn_cfg_int(s, "classes", 20, &p->classes));
    TRY(dn_cfg_int(s, "num", 1, &p->total));
    TRY(dn_cfg_int(s, "max", 90, &p->max_boxes));
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
    int want = p->n * (p->classes + 5);
    if (l->c != want)
        return dn_error(DN_ERR_PARSE, "%s:%d: [yolo] the input has %d channels: filters=%d in the preceding [convolutional] should be len(mask)*(classes+5)=%d",
                        s->file, s->line, l->c, l->c, want);
    net->hp.jitter = p->jitter;
    net->hp.random = p->random;
    return DN_OK;
}

static dn_status yolo_resize(dn_layer *l, dn_network *net)
{
    (void)net;
    const dn_yolo *p = l->priv;
    if (l->c != p->n * (p->classes + 5))
        return dn_error(DN_ERR_VALUE, "layer %d [yolo]: input has %d channels, need len(mask)*(classes+5)=%d",
                        l->index, l->c, p->n * (p->classes + 5));
    l->out_c = l->c;
    l->out_h = l->h;
    l->out_w = l->w;
    l->flops = 0;
    l->workspace = 0;
    return DN_OK;
}

/* input, l->output: batch x [n][classes+5][h][w]. */
static void yolo_forward(dn_layer *l, dn_network *net, const float *input)
{
    (void)net;
    const dn_yolo *p = l->priv;
    size_t wh = (size_t)l->w * l->h, entries = (size_t)p->classes + 5;
    memcpy(l->output, input, (size_t)l->batch * l->outputs * sizeof(float));
    for (int b = 0; b < l->batch; ++b)
        for (int n = 0; n < p->n; ++n) {
            float *o = l->output + b * l->outputs + n * entries * wh;
            dn_activate(o, 2 * wh, DN_ACT_LOGISTIC);
            dn_activate(o + 4 * wh, (1 + (size_t)p->classes) * wh, DN_ACT_LOGISTIC);
        }
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
    .free_priv = yolo_free,
};

const dn_detector dn_yolo_detector = {&dn_yolo_ops, yolo_classes, yolo_decode};
