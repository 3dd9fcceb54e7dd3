/* yolo.c: [yolo] layer, the YOLOv3 detector head, with AlexeyAB's options.
 *
 * Input and output are w x h x len(mask)*(classes+5). Layout of one image:
 * mask anchor n, entry e, cell loc (row-major) at
 * n*w*h*(classes+5) + e*w*h + loc; entries are x, y, w, h, objectness, then
 * the classes. Forward (Darknet's forward_yolo_layer, inference part):
 * logistic on x, y, objectness and the classes (none with new_coords=1, whose
 * preceding conv has activation=logistic), then x, y -> s*x - (s-1)/2 with
 * s = scale_x_y. anchors (num pairs, in input pixels) are shared by all
 * [yolo] layers; mask picks this layer's. No saved tensors.
 * Training (net->train): the forward then computes the yolo loss (yolo_loss
 * below) into l->delta, which is dL/d(input), so backward only adds it to the
 * input's delta (Darknet's backward_yolo_layer).
 * Two dialects: a section with any option of AlexeyAB's fork (scale_x_y,
 * iou_loss, iou_normalizer, ... see alexeyab_keys) trains as his trainer
 * (accumulating box deltas, normalizers, iou_thresh, his class rule); one
 * without trains exactly as pjreddie's.
 */
#include "../core/internal.h"
#include "detector.h"
#include "boxes.h"
#include "../kernels/cpu/parallel.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int n;                   /* len(mask): anchors predicted here */
    int total;               /* num: anchors in the list */
    int classes;
    int *mask;               /* [n] indices into anchors */
    float *anchors;          /* [total][2]: width, height in input pixels */
    int random, max_boxes;
    float jitter, ignore_thresh, truth_thresh;
    /* AlexeyAB's options (defaults: his) */
    int alexeyab;            /* the section uses his options: his loss rules */
    float scale_x_y;
    int new_coords;          /* x, y, w, h arrive through a logistic; w = (2 t_w)^2 anchor */
    dn_iou_kind iou_loss, iou_thresh_kind;
    float iou_normalizer, cls_normalizer, obj_normalizer;
    float iou_thresh;        /* extra positive anchors: shape overlap with the truth above it */
    float max_delta;         /* clip of the IoU-loss box deltas */
    float label_smooth_eps;
    int objectness_smooth;
    /* Statistics of the last training forward (Darknet prints them). */
    float avg_iou, recall, recall75, avg_obj, avg_anyobj;
    int count;
} dn_yolo;

static const char *const alexeyab_keys[] = {
    "scale_x_y", "new_coords", "iou_loss", "iou_thresh_kind", "iou_normalizer", "cls_normalizer",
    "obj_normalizer", "iou_thresh", "max_delta", "label_smooth_eps", "objectness_smooth", "resize",
    "nms_kind", "beta_nms",
};

/* A float option that must lie in [lo, hi]. */
static dn_status float_in(dn_cfg_section *s, const char *key, float def, float lo, float hi, float *out)
{
    TRY(dn_cfg_float(s, key, def, out));
    if (!(*out >= lo && *out <= hi))
        return dn_error(DN_ERR_PARSE, "%s:%d: [yolo] %s must be in [%g, %g], got %g", s->file, dn_cfg_line(s, key),
                        key, (double)lo, hi == FLT_MAX ? INFINITY : (double)hi, (double)*out);
    return DN_OK;
}

static dn_status iou_kind(dn_cfg_section *s, const char *key, const char *def, dn_iou_kind *out)
{
    const char *v = dn_cfg_str(s, key, def);
    int k = dn_iou_kind_parse(v);
    if (k < 0)
        return dn_error(DN_ERR_PARSE, "%s:%d: [yolo] unknown %s '%s' (mse, iou, giou, diou or ciou)", s->file,
                        dn_cfg_line(s, key), key, v);
    *out = (dn_iou_kind)k;
    return DN_OK;
}

static dn_status parse_alexeyab(dn_yolo *p, dn_cfg_section *s, dn_network *net)
{
    for (size_t k = 0; k < sizeof alexeyab_keys / sizeof alexeyab_keys[0]; ++k)
        if (dn_cfg_has(s, alexeyab_keys[k])) p->alexeyab = 1;
    net->alexeyab |= p->alexeyab;
    TRY(float_in(s, "scale_x_y", 1, 1e-6f, 1e6f, &p->scale_x_y));
    TRY(dn_cfg_int(s, "new_coords", 0, &p->new_coords));
    if (p->new_coords != 0 && p->new_coords != 1)
        return dn_error(DN_ERR_PARSE, "%s:%d: [yolo] new_coords must be 0 or 1, got %d", s->file,
                        dn_cfg_line(s, "new_coords"), p->new_coords);
    TRY(iou_kind(s, "iou_loss", "mse", &p->iou_loss));
    TRY(iou_kind(s, "iou_thresh_kind", "iou", &p->iou_thresh_kind));
    /* pjreddie's loss has no normalizers: 1; AlexeyAB's default box weight is .75 */
    TRY(float_in(s, "iou_normalizer", p->alexeyab ? .75f : 1, 0, FLT_MAX, &p->iou_normalizer));
    /* read and checked, but as in his source it only weighs counters_per_class (refused below) */
    TRY(float_in(s, "cls_normalizer", 1, 0, FLT_MAX, &p->cls_normalizer));
    TRY(float_in(s, "obj_normalizer", 1, 0, FLT_MAX, &p->obj_normalizer));
    TRY(float_in(s, "iou_thresh", 1, 0, 1, &p->iou_thresh));
    TRY(float_in(s, "max_delta", FLT_MAX, 0, FLT_MAX, &p->max_delta));
    TRY(float_in(s, "label_smooth_eps", 0, 0, 1, &p->label_smooth_eps));
    TRY(dn_cfg_int(s, "objectness_smooth", 0, &p->objectness_smooth));
    if (p->objectness_smooth != 0 && p->objectness_smooth != 1)
        return dn_error(DN_ERR_PARSE, "%s:%d: [yolo] objectness_smooth must be 0 or 1, got %d", s->file,
                        dn_cfg_line(s, "objectness_smooth"), p->objectness_smooth);
    TRY(float_in(s, "resize", 1, 1e-3f, 1e3f, &net->hp.resize));
    if (!(p->ignore_thresh >= 0 && p->ignore_thresh <= 1))
        return dn_error(DN_ERR_PARSE, "%s:%d: [yolo] ignore_thresh must be in [0, 1], got %g", s->file,
                        dn_cfg_line(s, "ignore_thresh"), (double)p->ignore_thresh);
    if (!(p->truth_thresh >= 0))
        return dn_error(DN_ERR_PARSE, "%s:%d: [yolo] truth_thresh must not be negative, got %g", s->file,
                        dn_cfg_line(s, "truth_thresh"), (double)p->truth_thresh);
    if (!(p->jitter >= 0 && p->jitter < 1))
        return dn_error(DN_ERR_PARSE, "%s:%d: [yolo] jitter must be in [0, 1), got %g", s->file,
                        dn_cfg_line(s, "jitter"), (double)p->jitter);
    /* cornersnms: his [yolo] parser gives it the default NMS (only his
     * [Gaussian_yolo] has corners) */
    static const char *const nms_names[] = {"default", "greedynms", "diounms", "cornersnms"};
    static const int nms_kinds[] = {DN_NMS_DEFAULT, DN_NMS_GREEDY, DN_NMS_DIOU, DN_NMS_DEFAULT};
    if (dn_cfg_has(s, "nms_kind")) {
        const char *v = dn_cfg_str(s, "nms_kind", "default");
        int k = 0;
        while (k < 4 && strcmp(v, nms_names[k])) ++k;
        if (k == 4)
            return dn_error(DN_ERR_PARSE, "%s:%d: [yolo] unknown nms_kind '%s' (default, greedynms, diounms or cornersnms)",
                            s->file, dn_cfg_line(s, "nms_kind"), v);
        net->nms_kind = nms_kinds[k];
    } else {
        net->nms_kind = DN_NMS_DEFAULT; /* the last [yolo] layer decides, as in his detector */
    }
    TRY(float_in(s, "beta_nms", .6f, 0, 1e3f, &net->beta_nms));
    static const char *const refused[] = {"focal_loss", "counters_per_class", "track_history_size",
                                          "embedding_layer", "map"};
    for (size_t k = 0; k < sizeof refused / sizeof refused[0]; ++k)
        if (dn_cfg_has(s, refused[k]))
            return dn_error(DN_ERR_UNSUPPORTED, "%s:%d: [yolo] %s (AlexeyAB's) is not supported", s->file,
                            dn_cfg_line(s, refused[k]), refused[k]);
    return DN_OK;
}

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
    return parse_alexeyab(p, s, net);
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
 *  - objectness: obj_norm*(0 - o), or 0 when the best IoU > ignore_thresh
 *    (AlexeyAB: the best IoU over truths while some class probability of the
 *    cell is > .25; with objectness_smooth the delta becomes
 *    max(that, obj_norm*(iou - o)) instead of 0);
 *  - best IoU > truth_thresh (never with Darknet's truth_thresh=1):
 *    as a positive below (with objectness_smooth, objectness and the
 *    truth's class then target iou^2);
 * then per truth box (x, y, w, h, class): the anchor among all `num` whose
 * shape overlaps the truth's best (anchor/net size vs w, h, both centred at
 * 0); when it is one of this layer's (mask), at the truth's cell
 * i = (int)(x*w), j = (int)(y*h), a positive:
 *  - box (pjreddie, and iou_loss=mse), scale s = 2 - w*h, k = iou_normalizer:
 *    s*k*(tx - o_x), s*k*(ty - o_y) with tx = x*w - i, ty = y*h - j, and
 *    s*k*(tw - o_w), s*k*(th - o_h) with tw = log(w*net_w/anchor_w) (new_coords:
 *    sqrt(w*net_w/(4 anchor_w))), th alike; AlexeyAB's adds to what is there;
 *  - box (iou_loss=iou|giou|diou|ciou): k times the step of boxes.c on the
 *    predicted box, w and h also times exp(o_w), exp(o_h) (not with
 *    new_coords), non-finite values 0, each clipped to +-max_delta, added;
 *  - objectness obj_norm*(1 - o) (objectness_smooth: only where no delta is);
 *  - classes y - o_c with y = [c == class] smoothed to y(1 - eps) + eps/2
 *    (label_smooth_eps); when this anchor already has a class delta (another
 *    truth) only the truth's class is set (pjreddie tests the first class
 *    entry, AlexeyAB the truth's own);
 * and (AlexeyAB, iou_thresh < 1) every other anchor of the mask whose shape
 * overlaps the truth's by more than iou_thresh (iou_thresh_kind) gets the
 * same positive at that cell; then the box deltas of each anchor with an
 * objectness delta are divided by its count of positive class deltas.
 * Darknet applies no logistic derivative (nor scale_x_y): for x, y,
 * objectness and classes the delta target - sigmoid(input) is exactly the
 * gradient of the binary cross-entropy (times s for x, y) w.r.t. the input;
 * for w, h with mse it is the gradient of s/2*(t - input)^2. The IoU
 * decisions are constants for the gradient, as in Darknet. */

/* o: cell (i, j), mask anchor with anchors index a: o[e*wh] is entry e. */
static dn_box yolo_box(const dn_yolo *p, const float *o, int a, int i, int j, int lw, int lh,
                       int netw, int neth, size_t wh)
{
    dn_box b;
    b.x = (i + o[0]) / lw;
    b.y = (j + o[wh]) / lh;
    if (p->new_coords) {
        b.w = o[2 * wh] * o[2 * wh] * 4 * p->anchors[2 * a] / netw;
        b.h = o[3 * wh] * o[3 * wh] * 4 * p->anchors[2 * a + 1] / neth;
    } else {
        b.w = expf(o[2 * wh]) * p->anchors[2 * a] / netw;
        b.h = expf(o[3 * wh]) * p->anchors[2 * a + 1] / neth;
    }
    return b;
}

static float fix_delta(float v, float max_delta)
{
    if (!isfinite(v)) return 0;
    return v > max_delta ? max_delta : v < -max_delta ? -max_delta : v;
}

/* Darknet's delta_yolo_box; returns the IoU of the predicted box with the truth. */
static float yolo_delta_box(const dn_yolo *p, dn_box truth, const float *o, float *d, int a, int i,
                            int j, int lw, int lh, int netw, int neth, size_t wh)
{
    dn_box pred = yolo_box(p, o, a, i, j, lw, lh, netw, neth, wh);
    float iou = dn_box_iou(pred, truth);
    float k = p->iou_normalizer;
    if (p->iou_loss == DN_IOU_MSE) {
        float s = 2 - truth.w * truth.h;
        float t[4] = {truth.x * lw - i, truth.y * lh - j, 0, 0};
        if (p->new_coords) {
            t[2] = sqrtf(truth.w * netw / (4 * p->anchors[2 * a]));
            t[3] = sqrtf(truth.h * neth / (4 * p->anchors[2 * a + 1]));
        } else {
            t[2] = logf(truth.w * netw / p->anchors[2 * a]);
            t[3] = logf(truth.h * neth / p->anchors[2 * a + 1]);
        }
        for (int e = 0; e < 4; ++e) {
            float v = s * k * (t[e] - o[e * wh]);
            d[e * wh] = p->alexeyab ? d[e * wh] + v : v;
        }
        return iou;
    }
    if (pred.w == 0) pred.w = 1; /* as AlexeyAB's, against a division by 0 */
    if (pred.h == 0) pred.h = 1;
    float step[4];
    dn_box_overlap_step(pred, truth, p->iou_loss, step);
    if (!p->new_coords) {
        step[2] *= expf(o[2 * wh]);
        step[3] *= expf(o[3 * wh]);
    }
    for (int e = 0; e < 4; ++e) d[e * wh] += fix_delta(step[e] * k, p->max_delta);
    return iou;
}

/* Darknet's delta_yolo_class; o, d: the first class entry of a cell and anchor. */
static void yolo_delta_class(const dn_yolo *p, const float *o, float *d, int cls, size_t wh)
{
    const float eps = p->label_smooth_eps, on = 1 - eps / 2, off = eps / 2; /* y(1 - eps) + eps/2 */
    if (p->alexeyab ? d[cls * wh] != 0 : d[0] != 0) {
        d[cls * wh] = on - o[cls * wh];
        return;
    }
    for (int c = 0; c < p->classes; ++c) d[c * wh] = (c == cls ? on : off) - o[c * wh];
}

/* AlexeyAB's compare_yolo_class: some class probability of the cell is > .25. */
static int some_class(const dn_yolo *p, const float *o, size_t wh)
{
    for (int c = 0; c < p->classes; ++c)
        if (o[(5 + c) * wh] > .25f) return 1;
    return 0;
}

typedef struct {
    double iou_sum, obj_sum;
    int count, recall, recall75;
} yolo_stats;

/* A positive: truth r at cell (i, j) for mask anchor n (anchors index a). */
static void yolo_positive(const dn_yolo *p, const float *r, const float *out, float *delta, int n, int i, int j,
                          int lw, int lh, int netw, int neth, yolo_stats *st)
{
    size_t wh = (size_t)lw * lh, at = n * ((size_t)p->classes + 5) * wh + (size_t)j * lw + i;
    const float *o = out + at;
    float *d = delta + at;
    dn_box tb = {r[0], r[1], r[2], r[3]};
    float iou = yolo_delta_box(p, tb, o, d, p->mask[n], i, j, lw, lh, netw, neth, wh);
    float obj = p->obj_normalizer * (1 - o[4 * wh]);
    if (!p->objectness_smooth || d[4 * wh] == 0) d[4 * wh] = obj;
    int cls = (int)r[4];
    if (cls >= 0 && cls < p->classes) yolo_delta_class(p, o + 5 * wh, d + 5 * wh, cls, wh);
    if (st) {
        st->iou_sum += iou;
        st->obj_sum += o[4 * wh];
        st->recall += iou > .5f;
        st->recall75 += iou > .75f;
        ++st->count;
    }
}

/* AlexeyAB's averaging with iou_thresh: where an anchor has an objectness
 * delta, its box deltas are divided by the number of its classes with a
 * positive delta (the truths that were added there). */
static void average_boxes(const dn_yolo *p, float *delta, size_t wh)
{
    for (int n = 0; n < p->n; ++n)
        for (size_t loc = 0; loc < wh; ++loc) {
            float *d = delta + n * ((size_t)p->classes + 5) * wh + loc;
            if (d[4 * wh] == 0) continue;
            int k = 0;
            for (int c = 0; c < p->classes; ++c) k += d[(5 + c) * wh] > 0;
            if (k > 1)
                for (int e = 0; e < 4; ++e) d[e * wh] /= k;
        }
}

static void yolo_loss(dn_layer *l, dn_network *net)
{
    dn_yolo *p = l->priv;
    int lw = l->w, lh = l->h, netw = net->w, neth = net->h;
    size_t wh = (size_t)lw * lh, entries = (size_t)p->classes + 5;
    double anyobj_sum = 0;
    yolo_stats st = {0, 0, 0, 0, 0};
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
                    d[4 * wh] = p->obj_normalizer * (0 - obj);
                    float match = p->alexeyab && !some_class(p, o, wh) ? 0 : best;
                    if (match > p->ignore_thresh) {
                        float smooth = p->obj_normalizer * (match - obj);
                        if (!p->objectness_smooth) d[4 * wh] = 0;
                        else if (smooth > d[4 * wh]) d[4 * wh] = smooth;
                    }
                    if (best > p->truth_thresh) {
                        yolo_positive(p, truth + 5 * best_t, out, delta, n, i, j, lw, lh, netw, neth, NULL);
                        if (p->objectness_smooth) { /* AlexeyAB: targets iou^2 for objectness and class */
                            int cls = (int)truth[5 * best_t + 4];
                            d[4 * wh] = p->obj_normalizer * (best * best - obj);
                            d[(5 + cls) * wh] = best * best - o[(5 + cls) * wh];
                        }
                    }
                }
        for (int t = 0; t < nt; ++t) {
            const float *r = truth + 5 * t;
            dn_box shape = {0, 0, r[2], r[3]};
            float best = 0;
            int best_a = 0;
            for (int a = 0; a < p->total; ++a) {
                float iou = dn_box_iou((dn_box){0, 0, p->anchors[2 * a] / netw, p->anchors[2 * a + 1] / neth}, shape);
                if (iou > best) {
                    best = iou;
                    best_a = a;
                }
            }
            int i = dn_truth_cell(r[0], lw), j = dn_truth_cell(r[1], lh);
            for (int n = 0; n < p->n; ++n)
                if (p->mask[n] == best_a) yolo_positive(p, r, out, delta, n, i, j, lw, lh, netw, neth, &st);
            if (p->iou_thresh >= 1) continue;
            for (int n = 0; n < p->n; ++n) {
                int a = p->mask[n];
                if (a == best_a) continue;
                dn_box ab = {0, 0, p->anchors[2 * a] / netw, p->anchors[2 * a + 1] / neth};
                if (dn_box_overlap(ab, shape, p->iou_thresh_kind) > p->iou_thresh)
                    yolo_positive(p, r, out, delta, n, i, j, lw, lh, netw, neth, &st);
            }
        }
        if (p->iou_thresh < 1) average_boxes(p, delta, wh);
    }
    l->cost = dn_detector_cost(l->delta, (size_t)l->batch * l->outputs);
    p->count = st.count;
    p->avg_iou = st.count ? (float)(st.iou_sum / st.count) : 0;
    p->recall = st.count ? (float)st.recall / st.count : 0;
    p->recall75 = st.count ? (float)st.recall75 / st.count : 0;
    p->avg_obj = st.count ? (float)(st.obj_sum / st.count) : 0;
    p->avg_anyobj = (float)(anyobj_sum / ((double)l->batch * p->n * wh));
}

#define ENTRY_BLOCK 8 /* entries (w x h planes) per item of the forward */

typedef struct {
    const dn_layer *l;
    const float *input;
} yolo_job;

/* Item it: entries [e0, e0 + ENTRY_BLOCK) of one image and anchor, copied,
 * then the logistic on all but w and h (entries 2 and 3; none with
 * new_coords), and x, y scaled by scale_x_y about 0.5. */
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
    const float s = p->scale_x_y, shift = -.5f * (s - 1);
    for (int e = e0; e < e1; ++e) {
        float *v = o + (size_t)(e - e0) * wh;
        if (e != 2 && e != 3 && !p->new_coords) dn_activate(v, wh, DN_ACT_LOGISTIC);
        if (e < 2 && s != 1)
            for (size_t k = 0; k < wh; ++k) v[k] = v[k] * s + shift;
    }
}

/* input, l->output: batch x [n][classes+5][h][w]. */
static dn_status yolo_forward(dn_layer *l, dn_network *net, const float *input)
{
    const dn_yolo *p = l->priv;
    yolo_job j = {l, input};
    const int nblk = (p->classes + 5 + ENTRY_BLOCK - 1) / ENTRY_BLOCK;
    dn_parallel_for(l->batch * p->n * nblk, dn_parallel_threads(), yolo_forward_item, &j);
    if (net->train) yolo_loss(l, net);
    return DN_OK;
}

static int yolo_classes(const dn_layer *l) { return ((const dn_yolo *)l->priv)->classes; }

/* out: one image [n][classes+5][h][w]. Darknet's get_yolo_detections, in its
 * order (cell, then anchor), keeping objectness > thresh, boxes as yolo_box:
 * x = (col + out_x)/w, y = (row + out_y)/h, bw = exp(tw)*anchor_w[mask[n]]/netw
 * (new_coords: tw^2*4*anchor_w/netw), bh alike; prob[c] = objectness*class,
 * kept when > thresh. */
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
                double tw = e[2 * (size_t)wh], th = e[3 * (size_t)wh];
                d->bbox.w = (float)((p->new_coords ? tw * tw * 4 : exp(tw)) * p->anchors[2 * a] / netw);
                d->bbox.h = (float)((p->new_coords ? th * th * 4 : exp(th)) * p->anchors[2 * a + 1] / neth);
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

/* Distillation towards the teacher's matching [yolo] output (same layout),
 * objectness-scaled (Mehta and Ozturk, arXiv 1805.06361): per anchor and
 * cell, the objectness term, plus the box and class terms times the
 * teacher's objectness there (a constant), so that the background's
 * arbitrary boxes and classes are not taught. A term is, for an entry
 * through the logistic (x, y with scale_x_y undone, objectness, classes),
 * the soft binary cross-entropy as KL divergence t log(t/s) +
 * (1-t) log((1-t)/(1-s)), whose gradient w.r.t. the input logit is s - t;
 * for w, h (new_coords: every entry, already logistic from the conv) half
 * the squared difference, gradient s - t. */
static float yolo_plain(const dn_yolo *p, float o, int e)
{
    return e < 2 && p->scale_x_y != 1 ? (o + .5f * (p->scale_x_y - 1)) / p->scale_x_y : o;
}

static double kl_bernoulli(double t, double s)
{
    const double eps = 1e-7;
    s = s < eps ? eps : s > 1 - eps ? 1 - eps : s;
    return (t > 0 ? t * log(t / s) : 0) + (t < 1 ? (1 - t) * log((1 - t) / (1 - s)) : 0);
}

static double yolo_distill(dn_layer *l, const dn_layer *teacher, float weight)
{
    const dn_yolo *p = l->priv, *tp = teacher->priv;
    const int entries = p->classes + 5;
    const size_t wh = (size_t)l->w * l->h;
    double loss = 0;
    for (size_t a = 0; a < (size_t)l->batch * p->n; ++a) /* image and anchor */
        for (size_t loc = 0; loc < wh; ++loc) {
            const size_t at = a * entries * wh + loc;
            const float tobj = teacher->output[at + 4 * wh];
            for (int e = 0; e < entries; ++e) {
                const size_t k = at + (size_t)e * wh;
                float s = yolo_plain(p, l->output[k], e), t = yolo_plain(tp, teacher->output[k], e);
                float scale = e == 4 ? 1 : tobj;
                double term = e == 2 || e == 3 || p->new_coords ? .5 * ((double)s - t) * ((double)s - t)
                                                                 : kl_bernoulli(t, s);
                loss += scale * term;
                l->delta[k] += weight * scale * (s - t);
            }
        }
    return weight * loss;
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
    .distill = yolo_distill,
};

static void yolo_head(const dn_layer *l, dn_head *h)
{
    const dn_yolo *p = l->priv;
    *h = (dn_head){.kind = DN_HEAD_YOLO, .n = p->n, .classes = p->classes, .coords = 4, .scale_x_y = p->scale_x_y,
                   .new_coords = p->new_coords, .anchors = p->anchors, .total = p->total, .mask = p->mask};
}

const dn_detector dn_yolo_detector = {&dn_yolo_ops, yolo_head, yolo_classes, yolo_decode};
