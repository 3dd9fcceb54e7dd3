/* map.c: the AP/mAP evaluator (PASCAL VOC devkit rules).
 *
 * The evaluator keeps every ground-truth object and every scored detection
 * it is given, each tagged with its image. dn_evaluator_compute then:
 *  - groups the objects by image (counting sort: first[image] .. first[image+1]);
 *  - groups the detections by class and sorts each class once, by score
 *    descending (ties: the order they were added; a radix sort);
 *  - walks each class's ranking, matching every detection to the same-class
 *    object of its image with the highest IoU (>= iou_thresh and free: TP;
 *    taken: FP; difficult: ignored; else FP), recording precision and recall
 *    after each counted detection;
 *  - turns the PR points into AP: the precision is made non-increasing from
 *    the right, then summed over recall steps (points = 0, VOC2010+) or read
 *    at 11 (VOC2007) or 101 evenly spaced recalls.
 * The cost is O(D log D + D * objects per image), negligible next to the
 * forward passes. Box units are the caller's; IoU is dn_box_iou.
 */
#include "map.h"
#include "../core/internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct { dn_eval_truth t; int image; } truth_row;
typedef struct { dn_eval_det d; int image; } det_row;

struct dn_evaluator {
    int classes;
    int images;                  /* highest image index + 1 */
    truth_row *truth; size_t ntruth, cap_truth;
    det_row *dets; size_t ndets, cap_dets;
};

dn_status dn_evaluator_init(dn_evaluator **out, int classes)
{
    *out = NULL;
    if (classes <= 0) return dn_error(DN_ERR_VALUE, "evaluator: classes must be positive, got %d", classes);
    dn_evaluator *ev = dn_calloc(1, sizeof(dn_evaluator));
    if (!ev) return DN_ERR_NOMEM;
    ev->classes = classes;
    *out = ev;
    return DN_OK;
}

void dn_evaluator_free(dn_evaluator *ev)
{
    if (!ev) return;
    free(ev->truth);
    free(ev->dets);
    free(ev);
}

/* Make room for n more rows of size sz in *rows (count *len, capacity *cap). */
static dn_status reserve(void **rows, size_t *cap, size_t len, size_t n, size_t sz)
{
    if (len + n <= *cap) return DN_OK;
    size_t c = *cap ? *cap : 256;
    while (c < len + n) c *= 2;
    void *p = realloc(*rows, c * sz);
    if (!p) return dn_error(DN_ERR_NOMEM, "evaluator: out of memory for %zu rows", c);
    *rows = p;
    *cap = c;
    return DN_OK;
}

dn_status dn_evaluator_add(dn_evaluator *ev, int image, const dn_eval_truth *truth, int ntruth,
                           const dn_eval_det *dets, int ndets)
{
    if (!ev) return dn_error(DN_ERR_VALUE, "evaluator: NULL");
    if (image < 0 || image == INT32_MAX)
        return dn_error(DN_ERR_VALUE, "evaluator: image index %d is out of range", image);
    if (ntruth < 0 || ndets < 0 || (ntruth && !truth) || (ndets && !dets))
        return dn_error(DN_ERR_VALUE, "evaluator: image %d: bad counts %d, %d", image, ntruth, ndets);
    for (int i = 0; i < ntruth; ++i)
        if (truth[i].class_id < 0 || truth[i].class_id >= ev->classes)
            return dn_error(DN_ERR_VALUE, "evaluator: image %d: object %d has class %d outside [0, %d)",
                            image, i, truth[i].class_id, ev->classes);
    for (int i = 0; i < ndets; ++i) {
        if (dets[i].class_id < 0 || dets[i].class_id >= ev->classes)
            return dn_error(DN_ERR_VALUE, "evaluator: image %d: detection %d has class %d outside [0, %d)",
                            image, i, dets[i].class_id, ev->classes);
        if (isnan(dets[i].score))
            return dn_error(DN_ERR_VALUE, "evaluator: image %d: detection %d has a NaN score", image, i);
    }
    dn_status st = reserve((void **)&ev->truth, &ev->cap_truth, ev->ntruth, (size_t)ntruth, sizeof(truth_row));
    if (st == DN_OK) st = reserve((void **)&ev->dets, &ev->cap_dets, ev->ndets, (size_t)ndets, sizeof(det_row));
    if (st != DN_OK) return st;
    for (int i = 0; i < ntruth; ++i) ev->truth[ev->ntruth++] = (truth_row){truth[i], image};
    for (int i = 0; i < ndets; ++i) ev->dets[ev->ndets++] = (det_row){dets[i], image};
    if (image + 1 > ev->images) ev->images = image + 1;
    return DN_OK;
}

void dn_eval_result_free(dn_eval_result *r)
{
    if (!r) return;
    free(r->per_class);
    memset(r, 0, sizeof(*r));
}

/* A detection in a class's ranking: its score and its row. */
typedef struct { float score; size_t row; } ranked;

/* An unsigned key that orders scores descending (-0 counts as +0). */
static uint32_t descending_key(float score)
{
    uint32_t u;
    if (score == 0) score = 0;
    memcpy(&u, &score, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);  /* ascending in score */
    return ~u;
}

/* Sorts r[0..n) by score descending; equal scores keep their order (the
 * rows are added in order, so ties go by row). A stable LSD radix sort, 8
 * bits a pass, through tmp (n entries): linear in n, unlike qsort, which
 * mattered with millions of low-score detections. */
static void sort_ranking(ranked *r, ranked *tmp, size_t n)
{
    for (int shift = 0; shift < 32; shift += 8) {
        size_t count[257] = {0};
        for (size_t i = 0; i < n; ++i) count[((descending_key(r[i].score) >> shift) & 255) + 1]++;
        for (int b = 0; b < 256; ++b) count[b + 1] += count[b];
        for (size_t i = 0; i < n; ++i) tmp[count[(descending_key(r[i].score) >> shift) & 255]++] = r[i];
        ranked *t = r;
        r = tmp;
        tmp = t;
    }
}

/* AP from n PR points in ranking order (rec non-decreasing); prec is made
 * monotone in place. points = 0: area; else precision at points recalls
 * 0, 1/(points-1), ..., 1 (the highest precision at recall >= r; 0 past the
 * last recall), averaged. */
static double average_precision(double *prec, const double *rec, size_t n, int points)
{
    for (size_t i = n; i-- > 1;)
        if (prec[i - 1] < prec[i]) prec[i - 1] = prec[i];
    double ap = 0;
    if (points == 0) {
        double prev = 0;
        for (size_t i = 0; i < n; ++i) {
            ap += (rec[i] - prev) * prec[i];
            prev = rec[i];
        }
        return ap;
    }
    size_t i = 0;
    for (int p = 0; p < points; ++p) {
        double r = (double)p / (points - 1);  /* exact for the decimal recalls of tp/npos */
        while (i < n && rec[i] < r) ++i;
        if (i < n) ap += prec[i];
    }
    return ap / points;
}

dn_status dn_eval_opts_check(const dn_eval_opts *opts)
{
    if (!opts) return dn_error(DN_ERR_VALUE, "evaluator: no options");
    if (!(opts->iou_thresh > 0 && opts->iou_thresh <= 1))
        return dn_error(DN_ERR_VALUE, "evaluator: iou_thresh must be in (0, 1], got %g", opts->iou_thresh);
    if (opts->points != 0 && opts->points != 11 && opts->points != 101)
        return dn_error(DN_ERR_VALUE, "evaluator: points must be 0 (area), 11 or 101, got %d", opts->points);
    if (isnan(opts->thresh)) return dn_error(DN_ERR_VALUE, "evaluator: thresh is NaN");
    return DN_OK;
}

static double ratio(double a, double b) { return b > 0 ? a / b : 0; }

dn_status dn_evaluator_compute(const dn_evaluator *ev, const dn_eval_opts *opts, dn_eval_result *out)
{
    memset(out, 0, sizeof(*out));
    if (!ev) return dn_error(DN_ERR_VALUE, "evaluator: NULL argument");
    dn_status st = dn_eval_opts_check(opts);
    if (st != DN_OK) return st;

    const int C = ev->classes, I = ev->images;
    const size_t T = ev->ntruth, D = ev->ndets;
    size_t *first = dn_calloc((size_t)I + 1, sizeof(size_t));     /* objects of image i: by_image[first[i]..first[i+1]) */
    size_t *by_image = dn_calloc(T, sizeof(size_t));
    size_t *class_first = dn_calloc((size_t)C + 1, sizeof(size_t)); /* detections of class c: rank[class_first[c]..) */
    ranked *rank = dn_calloc(D, sizeof(ranked)), *scratch = dn_calloc(D, sizeof(ranked));
    unsigned char *taken = dn_calloc(T, 1);
    double *prec = dn_calloc(D, sizeof(double)), *rec = dn_calloc(D, sizeof(double));
    out->per_class = dn_calloc((size_t)C, sizeof(dn_class_eval));
    if (!first || !by_image || !class_first || !rank || !scratch || !taken || !prec || !rec || !out->per_class) {
        st = DN_ERR_NOMEM;
        goto done;
    }
    out->classes = C;
    out->images = I;
    out->opts = *opts;
    out->detections = (int)D;

    /* Objects by image (stable counting sort), and per-class counts. */
    for (size_t t = 0; t < T; ++t) {
        first[ev->truth[t].image + 1]++;
        dn_class_eval *c = &out->per_class[ev->truth[t].t.class_id];
        if (ev->truth[t].t.difficult) c->difficult++;
        else c->truth++;
    }
    for (int i = 0; i < I; ++i) first[i + 1] += first[i];
    for (size_t t = 0; t < T; ++t) by_image[first[ev->truth[t].image]++] = t;
    for (int i = I; i > 0; --i) first[i] = first[i - 1];
    first[0] = 0;

    /* Detections by class, then each class sorted once by score. */
    for (size_t d = 0; d < D; ++d) class_first[ev->dets[d].d.class_id + 1]++;
    for (int c = 0; c < C; ++c) class_first[c + 1] += class_first[c];
    for (size_t d = 0; d < D; ++d) {
        size_t k = class_first[ev->dets[d].d.class_id]++;
        rank[k] = (ranked){ev->dets[d].d.score, d};
    }
    for (int c = C; c > 0; --c) class_first[c] = class_first[c - 1];
    class_first[0] = 0;

    double map_sum = 0, iou_sum = 0;
    for (int c = 0; c < C; ++c) {
        dn_class_eval *ce = &out->per_class[c];
        ranked *r = rank + class_first[c];
        size_t n = class_first[c + 1] - class_first[c], counted = 0;
        sort_ranking(r, scratch, n);
        ce->detections = (int)n;
        int tp = 0, fp = 0;
        double class_iou = 0;
        for (size_t k = 0; k < n; ++k) {
            const det_row *dr = &ev->dets[r[k].row];
            float best = 0;
            size_t best_t = 0;
            int found = 0;
            for (size_t j = first[dr->image]; j < first[dr->image + 1]; ++j) {
                const truth_row *tr = &ev->truth[by_image[j]];
                if (tr->t.class_id != c) continue;
                float iou = dn_box_iou(dr->d.box, tr->t.box);
                if (!found || iou > best) { best = iou; best_t = by_image[j]; found = 1; }
            }
            int is_tp = 0;
            if (found && best >= opts->iou_thresh) {
                if (ev->truth[best_t].t.difficult) continue;  /* neither TP nor FP */
                if (!taken[best_t]) { taken[best_t] = 1; is_tp = 1; }
            }
            tp += is_tp;
            fp += !is_tp;
            if (dr->d.score > opts->thresh) {
                if (is_tp) { ce->tp++; class_iou += best; }
                else ce->fp++;
            }
            rec[counted] = ratio(tp, ce->truth);
            prec[counted] = (double)tp / (tp + fp);
            counted++;
        }
        ce->fn = ce->truth - ce->tp;
        ce->avg_iou = ratio(class_iou, ce->tp);
        ce->ap = ce->truth ? average_precision(prec, rec, counted, opts->points) : 0;
        if (ce->truth) { map_sum += ce->ap; out->classes_with_truth++; }
        out->truth += ce->truth;
        out->tp += ce->tp;
        out->fp += ce->fp;
        out->fn += ce->fn;
        iou_sum += class_iou;
    }
    out->map = ratio(map_sum, out->classes_with_truth);
    out->precision = ratio(out->tp, out->tp + out->fp);
    out->recall = ratio(out->tp, out->tp + out->fn);
    out->f1 = ratio(2 * out->precision * out->recall, out->precision + out->recall);
    out->avg_iou = ratio(iou_sum, out->tp);

done:
    free(first); free(by_image); free(class_first); free(rank); free(scratch); free(taken); free(prec); free(rec);
    if (st != DN_OK) dn_eval_result_free(out);
    return st;
}

/* ---- text ---------------------------------------------------------------- */
typedef struct { char *buf; size_t cap, len; } text;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void put(text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = t->len < t->cap ? t->cap - t->len : 0;
    int n = vsnprintf(room ? t->buf + t->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) t->len += (size_t)n;
}

size_t dn_eval_result_format(const dn_eval_result *r, const char *const *names, int nnames,
                             char *buf, size_t cap)
{
    text t = {buf, cap, 0};
    if (buf && cap) buf[0] = 0;
    put(&t, " detections_count = %d, unique_truth_count = %d\n", r->detections, r->truth);
    for (int c = 0; c < r->classes; ++c) {
        const dn_class_eval *ce = &r->per_class[c];
        if (names && c < nnames && names[c]) put(&t, "class_id = %d, name = %s, ", c, names[c]);
        else put(&t, "class_id = %d, name = %d, ", c, c);
        put(&t, "ap = %.2f%%   \t (TP = %d, FP = %d)%s\n", ce->ap * 100, ce->tp, ce->fp,
            ce->truth ? "" : " no ground truth, not in mAP");
    }
    float th = r->opts.thresh;
    put(&t, "\n for conf_thresh = %.2f, precision = %.2f, recall = %.2f, F1-score = %.2f\n",
        th, r->precision, r->recall, r->f1);
    put(&t, " for conf_thresh = %.2f, TP = %d, FP = %d, FN = %d, average IoU = %.2f %%\n\n",
        th, r->tp, r->fp, r->fn, r->avg_iou * 100);
    if (r->opts.points) put(&t, " IoU threshold = %.0f %%, used %d Recall-points\n",
                            r->opts.iou_thresh * 100, r->opts.points);
    else put(&t, " IoU threshold = %.0f %%, used Area-Under-Curve for each unique Recall\n",
             r->opts.iou_thresh * 100);
    put(&t, " mean average precision (mAP@%.2f) = %f, or %.2f %%\n", r->opts.iou_thresh, r->map,
        r->map * 100);
    return t.len;
}
