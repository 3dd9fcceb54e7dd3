/* validate.c: the validation driver behind `detector map`, `detector valid`
 * and `detector recall`.
 *
 * For each path of an image list (one per line): load the image, letterbox
 * or stretch it to the network input (dn_network_letterbox, or the option),
 * forward, decode at det_thresh with boxes in pixels of the original image,
 * NMS (per class as Darknet's do_nms_sort or the cfg's AlexeyAB nms_kind, or
 * by objectness as its do_nms_obj), and read the ground truth:
 * the Darknet label file (dn_label_path; relative `class cx cy w h`, scaled
 * to pixels) and, next to it, the difficult objects in <label>.difficult.txt.
 * Every (detection, class) with prob > det_thresh becomes one scored entry,
 * as in Darknet's validate_detector_map and print_detector_detections.
 * The image is then handed to the caller's hook, and to the evaluator (map.c)
 * or the result files (valid). Nothing is printed here.
 */
#include "map.h"
#include "../core/fileio.h"
#include "../core/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void dn_validate_opts_default(dn_validate_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->eval.iou_thresh = .5f;
    o->eval.thresh = .25f;
    o->eval.points = 0;
    o->det_thresh = .005f;
    o->nms = .45f;
    o->letterbox = -1;
    o->gpu = -1;
}

static void free_list(char **paths, int n)
{
    for (int i = 0; i < n; ++i) free(paths[i]);
    free(paths);
}

/* Append the labels of one file, scaled to a w x h image, to *truth. */
static dn_status add_labels(const char *path, int classes, int w, int h, int difficult,
                            dn_eval_truth **truth, int *n)
{
    dn_label *l;
    int m;
    dn_status st = dn_labels_load(path, classes, &l, &m);
    if (st != DN_OK || !m) return st;
    dn_eval_truth *t = realloc(*truth, sizeof(dn_eval_truth) * (size_t)(*n + m));
    if (!t) { free(l); return dn_error(DN_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i < m; ++i)
        t[*n + i] = (dn_eval_truth){{l[i].x * w, l[i].y * h, l[i].w * w, l[i].h * h}, l[i].id, difficult};
    *truth = t;
    *n += m;
    free(l);
    return DN_OK;
}

static dn_status load_truth(const char *image, int classes, int w, int h, dn_eval_truth **truth, int *n)
{
    char label[4096], hard[4096 + 16];
    *truth = NULL;
    *n = 0;
    dn_status st = dn_label_path(image, label, sizeof label);
    if (st != DN_OK) return st;
    size_t len = strlen(label);  /* ends in .txt */
    snprintf(hard, sizeof hard, "%.*s.difficult.txt", (int)(len - 4), label);
    st = add_labels(label, classes, w, h, 0, truth, n);
    if (st == DN_OK) st = add_labels(hard, classes, w, h, 1, truth, n);
    if (st != DN_OK) { free(*truth); *truth = NULL; *n = 0; }
    return st;
}

/* Darknet's do_nms_obj: by objectness descending (ties: decoding order), a
 * box overlapping a kept one by more than thresh loses its objectness and
 * probabilities. */
static int obj_compare(const void *pa, const void *pb)
{
    const dn_detection *a = pa, *b = pb;
    if (a->objectness != b->objectness) return a->objectness > b->objectness ? -1 : 1;
    uintptr_t u = (uintptr_t)a->prob, v = (uintptr_t)b->prob;
    return (u > v) - (u < v);
}

static void nms_objectness(dn_detections *d, float thresh)
{
    qsort(d->dets, (size_t)d->n, sizeof(dn_detection), obj_compare);
    for (int i = 0; i < d->n; ++i) {
        if (d->dets[i].objectness == 0) continue;
        for (int j = i + 1; j < d->n; ++j) {
            dn_detection *b = &d->dets[j];
            if (b->objectness == 0 || dn_box_iou(d->dets[i].bbox, b->bbox) <= thresh) continue;
            b->objectness = 0;
            memset(b->prob, 0, sizeof(float) * (size_t)d->classes);
        }
    }
}

/* The detector classes of the network (the last detector layer's). */
static dn_status network_classes(dn_network *net, const char *cfg, int *classes)
{
    *classes = 0;
    for (int i = dn_network_num_layers(net) - 1; i >= 0 && !*classes; --i) {
        dn_layer_info info;
        dn_status st = dn_network_layer_info(net, i, &info);
        if (st != DN_OK) return st;
        if (!strcmp(info.type, "region") || !strcmp(info.type, "yolo") || !strcmp(info.type, "detection"))
            *classes = info.classes;
    }
    if (*classes <= 0)
        return dn_error(DN_ERR_VALUE, "%s: the network has no [region], [yolo] or [detection] layer with classes", cfg);
    return DN_OK;
}

/* Everything one run holds; released by run_close. */
typedef struct {
    dn_data data;
    char **paths;
    int npaths;
    dn_network *net;
    int classes;
    const char *list;
    double seconds_network, seconds_decode, seconds_eval;  /* see dn_eval_result */
} run_state;

static void run_close(run_state *r)
{
    dn_network_free(r->net);
    free_list(r->paths, r->npaths);
    dn_data_free(&r->data);
    memset(r, 0, sizeof(*r));
}

static dn_status run_open(run_state *r, const dn_validate_opts *o)
{
    memset(r, 0, sizeof(*r));
    if (!o || !o->cfg) return dn_error(DN_ERR_VALUE, "validate: no cfg given");
    if (!(o->det_thresh >= 0 && o->nms >= 0 && o->nms <= 1))
        return dn_error(DN_ERR_VALUE, "validate: det_thresh must be >= 0 and nms in [0, 1]");
    if (o->gpu >= 0 && o->ternary_kernel != DN_TERNARY_OFF)
        return dn_error(DN_ERR_VALUE, "validate: the float and int8 ternary kernels run on the CPU, not on GPU %d; "
                        "use ternary kernel off on a GPU", o->gpu);
    dn_status st = DN_OK;
    if (o->data && *o->data) st = dn_data_load(&r->data, o->data);
    r->list = o->list && *o->list ? o->list : r->data.valid;
    if (st == DN_OK && !r->list)
        st = dn_error(DN_ERR_VALUE, "validate: no image list: %s has no `valid =` line",
                      o->data && *o->data ? o->data : "(no .data file)");
    if (st == DN_OK) st = dn_read_list(r->list, &r->paths, &r->npaths);
    if (st == DN_OK) st = dn_network_load(&r->net, o->cfg, 1, 0);
    if (st == DN_OK && o->weights && *o->weights) st = dn_network_load_weights(r->net, o->weights, -1);
    if (st == DN_OK) st = network_classes(r->net, o->cfg, &r->classes);
    if (st == DN_OK && r->data.classes && r->data.classes != r->classes)
        st = dn_error(DN_ERR_VALUE, "%s has classes = %d but the detector of %s has %d",
                      o->data, r->data.classes, o->cfg, r->classes);
    if (st == DN_OK && o->letterbox >= 0) dn_network_set_letterbox(r->net, o->letterbox);
    if (st == DN_OK) st = dn_network_set_ternary_kernel(r->net, (dn_ternary_kernel)o->ternary_kernel);
    if (st == DN_OK && o->gpu >= 0) st = dn_network_set_device(r->net, o->gpu);
    if (st != DN_OK) { run_close(r); return st; }
    dn_network_set_threads(r->net, o->nthreads);
    return DN_OK;
}

/* One image: forward, decode, NMS, entries, truth, then the hooks. */
typedef dn_status (*sink_fn)(const dn_valid_image *im, void *ctx);

static dn_status run_image(run_state *r, const dn_validate_opts *o, int index, sink_fn sink, void *ctx)
{
    const char *path = r->paths[index];
    double t0 = dn_seconds();
    int b, c, h, w;
    dn_network_input_shape(r->net, &b, &c, &h, &w);
    dn_image im, sized;
    dn_status st = dn_image_load(&im, path, c);
    if (st != DN_OK) return st;
    const int letterbox = dn_network_letterbox(r->net);
    st = dn_image_fit(&im, w, h, letterbox, &sized);
    if (st != DN_OK) { dn_image_free(&im); return st; }
    st = dn_network_forward(r->net, sized.data);
    dn_image_free(&sized);
    double t1 = dn_seconds();
    dn_detections dets;
    memset(&dets, 0, sizeof dets);
    if (st == DN_OK) st = dn_network_detections(r->net, 0, im.w, im.h, o->det_thresh, letterbox, 0, &dets);
    dn_eval_det *entries = NULL;
    dn_eval_truth *truth = NULL;
    int nentries = 0, ntruth = 0;
    if (st == DN_OK && o->nms > 0) {
        if (o->nms_objectness) nms_objectness(&dets, o->nms);
        else st = dn_network_nms(r->net, &dets, o->nms);
    }
    double t2 = dn_seconds();
    if (st == DN_OK) {
        size_t cnt = 0;
        for (int i = 0; i < dets.n; ++i)
            for (int k = 0; k < dets.classes; ++k) cnt += dets.dets[i].prob[k] > o->det_thresh;
        if (cnt > INT32_MAX) st = dn_error(DN_ERR_VALUE, "%s: too many detections", path);
        else if (!(entries = dn_calloc(cnt, sizeof(dn_eval_det)))) st = DN_ERR_NOMEM;
    }
    if (st == DN_OK) {
        for (int i = 0; i < dets.n; ++i)
            for (int k = 0; k < dets.classes; ++k)
                if (dets.dets[i].prob[k] > o->det_thresh)
                    entries[nentries++] = (dn_eval_det){dets.dets[i].bbox, k, dets.dets[i].prob[k]};
        st = load_truth(path, r->classes, im.w, im.h, &truth, &ntruth);
    }
    if (st == DN_OK) {
        dn_valid_image v = {index, r->npaths, path, im.w, im.h, &dets, entries, nentries, truth, ntruth};
        if (sink) st = sink(&v, ctx);
        r->seconds_network += t1 - t0;
        r->seconds_decode += t2 - t1;
        r->seconds_eval += dn_seconds() - t2;
        if (st == DN_OK && o->on_image && o->on_image(&v, o->image_user))
            st = dn_error(DN_ERR_STATE, "validate: stopped by the image callback after %d of %d images",
                          index + 1, r->npaths);
    }
    free(entries);
    free(truth);
    dn_detections_free(&dets);
    dn_image_free(&im);
    return st;
}

static dn_status run_all(run_state *r, const dn_validate_opts *o, sink_fn sink, void *ctx)
{
    for (int i = 0; i < r->npaths; ++i) {
        dn_status st = run_image(r, o, i, sink, ctx);
        if (st != DN_OK) return st;
        if (o->progress && o->progress(i + 1, r->npaths, o->progress_user))
            return dn_error(DN_ERR_STATE, "validate: stopped by the progress callback after %d of %d images",
                            i + 1, r->npaths);
    }
    return DN_OK;
}

/* ---- map ----------------------------------------------------------------- */
static dn_status to_evaluator(const dn_valid_image *im, void *ctx)
{
    return dn_evaluator_add(ctx, im->index, im->truth, im->ntruth, im->entries, im->nentries);
}

dn_status dn_validate(const dn_validate_opts *o, dn_eval_result *out)
{
    if (out) memset(out, 0, sizeof(*out));
    if (out && o && dn_eval_opts_check(&o->eval) != DN_OK) return DN_ERR_VALUE;
    run_state r;
    dn_status st = run_open(&r, o);
    if (st != DN_OK) return st;
    dn_evaluator *ev = NULL;
    if (out) st = dn_evaluator_init(&ev, r.classes);
    if (st == DN_OK) st = run_all(&r, o, out ? to_evaluator : NULL, ev);
    if (st == DN_OK && out) {
        double t = dn_seconds();
        st = dn_evaluator_compute(ev, &o->eval, out);
        out->images = r.npaths;
        out->seconds_network = r.seconds_network;
        out->seconds_decode = r.seconds_decode;
        out->seconds_eval = r.seconds_eval + dn_seconds() - t;
    }
    dn_evaluator_free(ev);
    run_close(&r);
    return st;
}

/* ---- valid: per-class result files ---------------------------------------- */
/* mkdir -p */
static dn_status make_dirs(const char *dir)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return dn_error(DN_ERR_VALUE, "%s: path too long", dir);
    for (char *s = p + 1;; ++s) {
        char ch = *s;
        if (ch != '/' && ch) continue;
        *s = 0;
        if (mkdir(p, 0777) && errno != EEXIST)
            return dn_error(DN_ERR_IO, "%s: cannot create folder: %s", p, strerror(errno));
        *s = ch;
        if (!ch) break;
    }
    struct stat sb;
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode)) return dn_error(DN_ERR_IO, "%s: not a folder", dir);
    return DN_OK;
}

/* The `results` key of a .data file, or NULL (malloc'd). */
static dn_status results_dir(const char *data, char **out)
{
    *out = NULL;
    if (!data || !*data) return DN_OK;
    dn_cfg cfg;
    dn_status st = dn_cfg_parse_options_file(&cfg, data);
    if (st != DN_OK) return st;
    const char *v = cfg.nsections ? dn_cfg_str(&cfg.sections[0], "results", NULL) : NULL;
    if (v && !(*out = strdup(v))) st = dn_error(DN_ERR_NOMEM, "out of memory");
    dn_cfg_free(&cfg);
    return st;
}

typedef struct {
    dn_atomic_file *files;
    int classes;
} results_ctx;

static dn_status write_entries(const dn_valid_image *im, void *ctx)
{
    results_ctx *rc = ctx;
    const char *base = strrchr(im->path, '/');
    base = base ? base + 1 : im->path;
    const char *dot = strrchr(base, '.');
    int idlen = dot ? (int)(dot - base) : (int)strlen(base);
    for (int i = 0; i < im->nentries; ++i) {
        const dn_eval_det *e = &im->entries[i];
        /* VOC's 1-based pixels, as Darknet's print_detector_detections */
        float xmin = (float)(e->box.x - e->box.w / 2. + 1), xmax = (float)(e->box.x + e->box.w / 2. + 1);
        float ymin = (float)(e->box.y - e->box.h / 2. + 1), ymax = (float)(e->box.y + e->box.h / 2. + 1);
        if (xmin < 1) xmin = 1;
        if (ymin < 1) ymin = 1;
        if (xmax > im->width) xmax = (float)im->width;
        if (ymax > im->height) ymax = (float)im->height;
        if (fprintf(rc->files[e->class_id].f, "%.*s %f %f %f %f %f\n", idlen, base, e->score, xmin, ymin,
                    xmax, ymax) < 0)
            return dn_error(DN_ERR_IO, "%s: write failed: %s", rc->files[e->class_id].path, strerror(errno));
    }
    return DN_OK;
}

dn_status dn_validate_write_results(const dn_validate_opts *o, const char *dir, const char *prefix,
                                    const char *const *names, int nnames)
{
    run_state r;
    dn_status st = run_open(&r, o);
    if (st != DN_OK) return st;
    char *data_dir = NULL;
    if (!dir) {
        st = results_dir(o->data, &data_dir);
        dir = data_dir ? data_dir : "results";
    }
    if (!prefix) prefix = "comp4_det_test_";
    if (st == DN_OK) st = make_dirs(dir);
    results_ctx rc = {NULL, r.classes};
    if (st == DN_OK && !(rc.files = dn_calloc((size_t)r.classes, sizeof(dn_atomic_file)))) st = DN_ERR_NOMEM;
    int opened = 0;
    for (; st == DN_OK && opened < r.classes; ++opened) {
        char path[4096], num[16];
        snprintf(num, sizeof num, "%d", opened);
        const char *name = names && opened < nnames && names[opened] ? names[opened] : num;
        if (snprintf(path, sizeof path, "%s/%s%s.txt", dir, prefix, name) >= (int)sizeof path)
            st = dn_error(DN_ERR_VALUE, "%s/%s%s.txt: path too long", dir, prefix, name);
        else st = dn_atomic_open(&rc.files[opened], path);
        if (st != DN_OK) break;
    }
    if (st == DN_OK) st = run_all(&r, o, write_entries, &rc);
    for (int k = 0; k < opened; ++k) {
        if (st == DN_OK) st = dn_atomic_commit(&rc.files[k]);
        else dn_atomic_abort(&rc.files[k]);
    }
    free(rc.files);
    free(data_dir);
    run_close(&r);
    return st;
}

/* ---- recall ----------------------------------------------------------- */
void dn_recall_update(dn_recall_stats *s, const dn_valid_image *im, float thresh, float iou_thresh)
{
    const dn_detections *d = im->dets;
    s->images++;
    for (int k = 0; k < d->n; ++k) s->proposals += d->dets[k].objectness > thresh;
    for (int j = 0; j < im->ntruth; ++j) {
        if (im->truth[j].difficult) continue;
        float best = 0;
        for (int k = 0; k < d->n; ++k) {
            float iou = dn_box_iou(d->dets[k].bbox, im->truth[j].box);
            if (d->dets[k].objectness > thresh && iou > best) best = iou;
        }
        s->total++;
        s->iou_sum += best;
        s->correct += best > iou_thresh;
    }
}
