/* detect.c: decoding the detector layers into boxes, and NMS.
 *
 * dn_network_detections collects the detections of every detector layer
 * ([region], [yolo], [detection]; rows in layers/detector.h) for one image of the
 * batch, then maps the boxes from the network input back to the original
 * image as Darknet's correct_yolo_boxes does (undoing the letterbox when the
 * input was letterboxed). Boxes are centre/size. dn_nms_sort is Darknet's
 * do_nms_sort: suppressed probabilities become 0, detections are reordered.
 */
#include "../layers/boxes.h"
#include "../layers/detector.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const dn_detector *const detectors[] = {
    &dn_region_detector, &dn_yolo_detector, &dn_detection_detector,
};

static const dn_detector *find_detector(const dn_layer *l)
{
    for (size_t i = 0; i < sizeof(detectors) / sizeof(detectors[0]); ++i)
        if (detectors[i]->ops == l->ops) return detectors[i];
    return NULL;
}

/* Boxes d[n] relative to the network input (netw x neth) -> relative to, or
 * in pixels of, the w x h image. With letterbox the image was scaled to
 * new_w x new_h (dn_letterbox_size) and centred. */
static void correct_boxes(dn_detection *d, int n, int w, int h, int netw, int neth,
                          int letterbox, int relative)
{
    int new_w = netw, new_h = neth;
    if (letterbox) dn_letterbox_size(w, h, netw, neth, &new_w, &new_h);
    for (int i = 0; i < n; ++i) {
        dn_box b = d[i].bbox;
        b.x = (float)((b.x - (netw - new_w) / 2. / netw) / ((float)new_w / netw));
        b.y = (float)((b.y - (neth - new_h) / 2. / neth) / ((float)new_h / neth));
        b.w *= (float)netw / new_w;
        b.h *= (float)neth / new_h;
        if (!relative) {
            b.x *= w;
            b.w *= w;
            b.y *= h;
            b.h *= h;
        }
        d[i].bbox = b;
    }
}

dn_status dn_network_detections(dn_network *net, int b, int img_w, int img_h,
                                float thresh, int letterbox, int relative, dn_detections *out)
{
    memset(out, 0, sizeof(*out));
    if (!net) return dn_error(DN_ERR_VALUE, "detections: network is NULL");
    if (b < 0 || b >= net->batch)
        return dn_error(DN_ERR_VALUE, "detections: image %d is outside the batch of %d", b, net->batch);
    if (img_w <= 0 || img_h <= 0)
        return dn_error(DN_ERR_VALUE, "detections: image size %d x %d is not positive", img_w, img_h);
    int classes = -1;
    size_t total = 0;
    for (int i = 0; i < net->n; ++i) {
        const dn_layer *l = &net->layers[i];
        if (!l->is_detector) continue;
        const dn_detector *det = find_detector(l);
        if (!det)
            return dn_error(DN_ERR_STATE, "detections: layer %d [%s] has no box decoder", i, l->ops->section);
        int c = det->classes(l);
        if (classes >= 0 && c != classes)
            return dn_error(DN_ERR_VALUE, "detections: layer %d [%s] has classes=%d but an earlier detector layer has %d",
                            i, l->ops->section, c, classes);
        classes = c;
        total += (size_t)det->decode(l, l->output + (size_t)b * l->outputs, net->w, net->h, thresh, NULL);
    }
    if (classes < 0)
        return dn_error(DN_ERR_STATE, "detections: the network has no [region], [yolo] or [detection] layer");
    if (total > INT32_MAX)
        return dn_error(DN_ERR_VALUE, "detections: %zu detections are too many (raise thresh)", total);
    out->classes = classes;
    out->dets = dn_calloc(total, sizeof(dn_detection));
    out->prob_storage = dn_calloc(total * (size_t)classes, sizeof(float));
    if (!out->dets || !out->prob_storage) {
        dn_detections_free(out);
        return DN_ERR_NOMEM;
    }
    for (size_t k = 0; k < total; ++k) {
        out->dets[k].prob = out->prob_storage + k * classes;
        out->dets[k].classes = classes;
    }
    int n = 0;
    for (int i = 0; i < net->n; ++i) {
        const dn_layer *l = &net->layers[i];
        if (!l->is_detector) continue;
        n += find_detector(l)->decode(l, l->output + (size_t)b * l->outputs, net->w, net->h, thresh,
                                      out->dets + n);
    }
    out->n = n;
    correct_boxes(out->dets, n, img_w, img_h, net->w, net->h, letterbox, relative);
    return DN_OK;
}

void dn_detections_free(dn_detections *d)
{
    if (!d) return;
    free(d->dets);
    free(d->prob_storage);
    memset(d, 0, sizeof(*d));
}

/* qsort comparator: prob[sort_class] descending; ties keep the order the
 * detections were decoded in (their prob rows' addresses), so the result
 * does not depend on the qsort implementation. */
static _Thread_local int sort_class;

static int nms_compare(const void *pa, const void *pb)
{
    const dn_detection *a = pa, *b = pb;
    float x = a->prob[sort_class], y = b->prob[sort_class];
    if (x > y) return -1;
    if (x < y) return 1;
    uintptr_t u = (uintptr_t)a->prob, v = (uintptr_t)b->prob;
    return (u > v) - (u < v);
}

/* One candidate of one class: its probability, decode-order key, index. */
typedef struct { float p; uintptr_t key; int i; } nms_cand;

static int cand_compare(const void *pa, const void *pb)
{
    const nms_cand *a = pa, *b = pb;
    if (a->p != b->p) return a->p > b->p ? -1 : 1;
    return (a->key > b->key) - (a->key < b->key);
}

/* Darknet's do_nms_sort sorts all detections by each class in turn and
 * compares every pair. The result only depends on the detections whose
 * probability for that class is nonzero, so each class sorts and compares
 * just those (same order, same pairs); the array ends in Darknet's order, by
 * the last class's probability before its NMS. The candidates' edges and
 * areas are computed as dn_box_iou computes them, and the inner loop repeats
 * its arithmetic (vectorisable: no branches, the division always defined),
 * so every IoU is the same float. GCC vectorises the loop only when told
 * that no floating-point trap is watched (results are unchanged).
 * AlexeyAB's diounms_sort compares the same pairs in the same order as
 * do_nms_sort; greedynms suppresses by his box_diou, iou - (d^2/c^2)^0.6
 * (whatever beta_nms says), diounms by iou - (d^2/c^2)^beta_nms. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-trapping-math")))
#endif
dn_status dn_nms(dn_detections *d, float iou_thresh, dn_nms_kind kind, float beta)
{
    if (!d || d->n <= 0 || d->classes <= 0) return DN_OK;
    /* Detections with objectness 0 go to the end and are ignored. */
    int total = d->n;
    for (int i = 0; i < total; ++i)
        if (d->dets[i].objectness == 0) {
            dn_detection t = d->dets[i];
            d->dets[i--] = d->dets[--total];
            d->dets[total] = t;
        }
    sort_class = d->classes - 1;
    qsort(d->dets, (size_t)total, sizeof(dn_detection), nms_compare);
    size_t cap = total ? (size_t)total : 1;
    nms_cand *c = dn_calloc(cap, sizeof(nms_cand));
    float *edges = dn_calloc(6 * cap, sizeof(float));
    if (!c || !edges) {
        free(c);
        free(edges);
        return DN_ERR_NOMEM;
    }
    float *L = edges, *T = L + cap, *R = T + cap, *B = R + cap, *A = B + cap, *live = A + cap;
    for (int k = 0; k < d->classes; ++k) {
        int n = 0;
        for (int i = 0; i < total; ++i)
            if (d->dets[i].prob[k] != 0)
                c[n++] = (nms_cand){d->dets[i].prob[k], (uintptr_t)d->dets[i].prob, i};
        qsort(c, (size_t)n, sizeof(nms_cand), cand_compare);
        for (int a = 0; a < n; ++a) {
            dn_box x = d->dets[c[a].i].bbox;
            L[a] = x.x - x.w / 2, T[a] = x.y - x.h / 2, R[a] = x.x + x.w / 2, B[a] = x.y + x.h / 2;
            A[a] = x.w * x.h;
            live[a] = 1;
        }
        const int diou = kind == DN_NMS_GREEDY || kind == DN_NMS_DIOU;
        const float exponent = kind == DN_NMS_GREEDY ? .6f : beta;
        for (int a = 0; a < n && diou; ++a) {
            if (live[a] == 0) continue;
            for (int b = a + 1; b < n; ++b)
                if (dn_box_diou_nms(d->dets[c[a].i].bbox, d->dets[c[b].i].bbox, exponent) > iou_thresh) live[b] = 0;
        }
        for (int a = 0; a < n && !diou; ++a) {
            if (live[a] == 0) continue;
            const float l = L[a], t = T[a], r = R[a], bo = B[a], area = A[a];
            for (int b = a + 1; b < n; ++b) {
                float w = (r < R[b] ? r : R[b]) - (l > L[b] ? l : L[b]);
                float h = (bo < B[b] ? bo : B[b]) - (t > T[b] ? t : T[b]);
                float inter = (w > 0 ? w : 0) * (h > 0 ? h : 0);  /* dn_box_iou's up to the sign of 0 */
                float uni = area + A[b] - inter;
                float q = inter / (uni > 0 ? uni : 1);
                live[b] = (uni > 0 ? q : 0) > iou_thresh ? 0 : live[b];
            }
        }
        for (int a = 0; a < n; ++a)
            if (live[a] == 0) d->dets[c[a].i].prob[k] = 0;
    }
    free(c);
    free(edges);
    return DN_OK;
}

dn_status dn_nms_sort(dn_detections *d, float iou_thresh)
{
    return dn_nms(d, iou_thresh, DN_NMS_DEFAULT, 0);
}

dn_status dn_network_nms(const dn_network *net, dn_detections *d, float iou_thresh)
{
    return dn_nms(d, iou_thresh, (dn_nms_kind)net->nms_kind, net->beta_nms);
}
