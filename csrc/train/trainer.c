/* trainer.c: the training loop behind `darknet detector train` and
 * darknet_py.train(): load the .data, cfg and weights; loop over batches from
 * the background loader; print Darknet's per-iteration line; write
 * checkpoints atomically in the backup folder:
 *   <base>.backup            every 100 iterations and at the end (resume
 *                            from it); ternary layers keep their float
 *                            shadow weights here
 *   <base>_<N>.weights       at N % 10000 == 0, and every 100 below 1000
 *   <base>.minloss.weights   the weights at the minimum running average loss
 *   <base>.minloss.backup    with ternary layers: the same with their float
 *                            shadow weights (a next stage starts from it)
 *   <base>_final.weights     at the end (with average_last: the average of
 *                            the weights of the last N iterations)
 *   <base>_best.weights      with map_every: the weights of the best mAP on the
 *                            valid list (computed every map_every iterations)
 *   chart.png                the average loss and mAP curves
 * The min-loss snapshot is kept in memory at every new minimum and written at
 * least every 10 iterations, at each backup and at the end. At the end of a
 * run from scratch (or with bn_recalibrate=1), the final and the min-loss
 * weights get their batch-norm statistics recalibrated to the population
 * statistics of RECAL_IMAGES un-augmented training images (Darknet's running
 * average lags behind the weights in short runs). A fine-tune (initial
 * weights, bn_recalibrate 0) does so only when it moved the weights by more
 * than RECAL_MOVED or ran more than RECAL_BATCHES batches; a short one that
 * left them in place (rate 0, burn-in) keeps the pretrained statistics as
 * Darknet's running averages left them.
 */
#include "../core/internal.h"
#include "chart.h"
#include "replicas.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RECAL_IMAGES 512
/* A fine-tune recalibrates when it moved the trained params by more than
 * this (relative L2); below, the pretrained statistics are kept. */
#define RECAL_MOVED 3e-4
/* ... or when it ran more than this many batches: by then Darknet's running
 * averages (.01 a batch) have replaced a quarter of the loaded statistics
 * with those of augmented training batches. Measured on Yolo-Fastest VOC at
 * rate 0 (test.txt mAP): 100 batches of drift -0.74, the recalibration to
 * un-augmented images -0.28; 2 batches of drift -0.05. */
#define RECAL_BATCHES 25

/* "cfg/yolov2-voc.cfg" -> "yolov2-voc" */
static void cfg_base(const char *cfg, char *out, size_t cap)
{
    const char *b = strrchr(cfg, '/');
    b = b ? b + 1 : cfg;
    snprintf(out, cap, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
}

static dn_status ensure_dir(const char *dir)
{
    if (mkdir(dir, 0777) && errno != EEXIST)
        return dn_error(DN_ERR_IO, "%s: cannot create backup folder: %s", dir, strerror(errno));
    return DN_OK;
}

typedef struct {
    dn_network *net;
    dn_network *teacher;     /* distillation, or NULL */
    dn_loader *loader;
    dn_loader *recal_loader; /* un-augmented batches for the BN recalibration, or NULL */
    int recalibrate;
    float *start;            /* a fine-tune's initial params (bn_recalibrate 0), or NULL */
    float *avg;              /* with average_last: the running average of the params, or NULL */
    int navg_params;         /* iterations averaged into avg */
    dn_data data;
    float *images, *truth, *best;
    uint64_t best_seen;
    int best_dirty, last_flush;
    int max_boxes;
    char prefix[4000];  /* <backup>/<cfg base> */
    char dir[4000];     /* <backup> */
    float *avg_hist;    /* running average loss per iteration from first_iter (for the chart) */
    int navg, cap_avg, first_iter;
    int *map_iters;     /* iterations and mAPs of the map_every evaluations */
    float *maps;
    int nmaps;
    dn_replicas reps;   /* -gpus with more than one device */
    int ngpus;          /* images per step = ngpus * hp.batch (1 on the host) */
} trainer;

static void trainer_free(trainer *t)
{
    dn_loader_close(t->loader);
    dn_loader_close(t->recal_loader);
    dn_replicas_free(&t->reps);
    dn_network_free(t->net);
    dn_network_free(t->teacher);
    dn_data_free(&t->data);
    free(t->images);
    free(t->truth);
    free(t->best);
    free(t->start);
    free(t->avg);
    free(t->avg_hist);
    free(t->map_iters);
    free(t->maps);
}

static dn_status flush_minloss(trainer *t, const dn_train_result *r, int iteration)
{
    if (!t->best_dirty) return DN_OK;
    dn_status st = dn_weights_write(t->net, r->minloss_path, -1, t->best, t->best_seen, 1);
    if (st == DN_OK && *r->minloss_backup_path)
        st = dn_weights_write(t->net, r->minloss_backup_path, -1, t->best, t->best_seen, 0);
    if (st == DN_OK) { t->best_dirty = 0; t->last_flush = iteration; }
    return st;
}

static dn_status setup(trainer *t, const dn_train_opts *o, dn_train_result *r)
{
    dn_status st = dn_data_load(&t->data, o->data);
    if (st != DN_OK) return st;
    if (!t->data.train) return dn_error(DN_ERR_PARSE, "%s: no 'train' list in the .data file", o->data);
    if ((st = dn_network_load(&t->net, o->cfg, 0, o->seed)) != DN_OK) return st;
    dn_network *net = t->net;
    dn_network_set_threads(net, o->nthreads);
    if (o->weights && *o->weights && (st = dn_network_load_weights(net, o->weights, -2)) != DN_OK) return st;
    if (o->teacher && *o->teacher) {
        const char *tcfg = o->teacher_cfg && *o->teacher_cfg ? o->teacher_cfg : o->cfg;
        if ((st = dn_network_load(&t->teacher, tcfg, 1, o->seed)) != DN_OK) return st;
        dn_network_set_threads(t->teacher, o->nthreads);
        if ((st = dn_network_load_weights(t->teacher, o->teacher, -1)) != DN_OK) return st;
        if ((st = dn_network_set_teacher(net, t->teacher, o->distill > 0 ? o->distill : 1)) != DN_OK) return st;
    }
    if (o->clear) net->seen = 0;
    if (o->max_batches > 0) net->hp.max_batches = o->max_batches;
    if ((st = dn_network_set_train(net, 1)) != DN_OK) return st;
    t->ngpus = o->ngpus > 1 ? o->ngpus : 1;
    if (o->ngpus == 1 && (st = dn_network_set_device(net, o->gpus[0])) != DN_OK) return st;
    if (o->ngpus > 1 && (st = dn_replicas_open(&t->reps, net, o->gpus, o->ngpus)) != DN_OK) return st;
    const char *backup = o->backup ? o->backup : (t->data.backup ? t->data.backup : "backup");
    if ((st = ensure_dir(backup)) != DN_OK) return st;
    char base[512];
    cfg_base(o->cfg, base, sizeof base);
    snprintf(t->prefix, sizeof t->prefix, "%s/%s", backup, base);
    snprintf(t->dir, sizeof t->dir, "%s", backup);
    snprintf(r->best_path, sizeof r->best_path, "%s_best.weights", t->prefix);
    snprintf(r->backup_path, sizeof r->backup_path, "%s.backup", t->prefix);
    snprintf(r->minloss_path, sizeof r->minloss_path, "%s.minloss.weights", t->prefix);
    for (int i = 0; i < net->n && !*r->minloss_backup_path; ++i)
        if (net->layers[i].ternary)
            snprintf(r->minloss_backup_path, sizeof r->minloss_backup_path, "%s.minloss.backup", t->prefix);
    snprintf(r->final_path, sizeof r->final_path, "%s_final.weights", t->prefix);
    for (int i = 0; i < net->n; ++i)
        if (net->layers[i].is_detector && net->layers[i].max_boxes > t->max_boxes) t->max_boxes = net->layers[i].max_boxes;
    if (!t->max_boxes) return dn_error(DN_ERR_VALUE, "%s: the network has no detector layer to train", o->cfg);
    if (o->letterbox) dn_network_set_letterbox(net, o->letterbox > 0);
    int lb = dn_network_letterbox(net);
    dn_loader_opts lo = {.list_path = t->data.train, .batch = net->hp.batch, .classes = t->data.classes,
                         .max_boxes = t->max_boxes, .augment = 1, .jitter = net->hp.jitter, .hue = net->hp.hue,
                         .saturation = net->hp.saturation, .exposure = net->hp.exposure, .seed = o->seed,
                         .max_skips = o->max_skips, .resize = net->hp.resize, .no_flip = !net->hp.flip,
                         .first_batch = (uint64_t)dn_network_current_batch(net) * (uint64_t)t->ngpus,
                         .placement = !lb ? DN_PLACE_CROP_STRETCH
                                    : net->alexeyab ? DN_PLACE_CROP_LETTERBOX : DN_PLACE_JITTER};
    if ((st = dn_loader_open(&t->loader, &lo)) != DN_OK) return st;
    /* the recalibration batches: training images placed as at inference, no augmentation */
    dn_loader_opts ro = lo;
    ro.augment = 0;
    ro.letterbox = lb;
    ro.seed = o->seed + 1;
    t->recalibrate = o->bn_recalibrate > 0 || (o->bn_recalibrate == 0 && !(o->weights && *o->weights));
    if (o->bn_recalibrate == 0 && !t->recalibrate) { /* a fine-tune: decided at the end by how far it went */
        t->start = malloc(net->nparams * sizeof(float));
        if (!t->start) return dn_error(DN_ERR_NOMEM, "out of memory for a copy of the weights");
        memcpy(t->start, net->params, net->nparams * sizeof(float));
    }
    if ((t->recalibrate || t->start) && (st = dn_loader_open(&t->recal_loader, &ro)) != DN_OK) return st;
    t->truth = dn_calloc((size_t)t->ngpus * net->hp.batch * t->max_boxes * 5, sizeof(float));
    t->best = dn_calloc(net->nparams, sizeof(float));
    if (!t->truth || !t->best) return DN_ERR_NOMEM;
    return DN_OK;
}

/* Recalibrate the BN statistics of the current params at the cfg input size
 * to the population statistics of RECAL_IMAGES un-augmented training images. */
static dn_status recalibrate(trainer *t, int w0, int h0)
{
    dn_network *net = t->net;
    dn_status st = dn_network_resize(net, net->batch, w0, h0);
    size_t n = (size_t)net->hp.batch * net->inputs;
    float *images = st == DN_OK ? malloc(n * sizeof(float)) : NULL;
    if (st == DN_OK && !images) st = dn_error(DN_ERR_NOMEM, "out of memory for recalibration");
    dn_bn_recal r;
    if (st == DN_OK) st = dn_bn_recal_begin(net, &r);
    else memset(&r, 0, sizeof r);
    for (int k = 0; st == DN_OK && k * net->hp.batch < RECAL_IMAGES; ++k) {
        st = dn_loader_next(t->recal_loader, w0, h0, images, t->truth);
        for (int s = 0; st == DN_OK && s < net->hp.batch / net->batch; ++s)
            st = dn_bn_recal_step(net, &r, images + (size_t)s * net->batch * net->inputs);
    }
    dn_status end = r.prev ? dn_bn_recal_end(net, &r) : DN_OK;
    free(images);
    return st != DN_OK ? st : end;
}

/* Relative L2 change of the trained params from t->start (rolling
 * statistics aside): how far a fine-tune moved the weights. */
static double weights_moved(trainer *t, const float *params)
{
    const dn_network *net = t->net;
    double d = 0, w = 0;
    for (int i = 0; i < net->n; ++i)
        for (int k = 0; k < net->layers[i].nparams; ++k) {
            const dn_param *p = &net->layers[i].params[k];
            if (!(p->flags & DN_PARAM_TRAIN)) continue;
            for (size_t j = p->offset; j < p->offset + p->n; ++j) {
                d += ((double)params[j] - t->start[j]) * ((double)params[j] - t->start[j]);
                w += (double)t->start[j] * t->start[j];
            }
        }
    return w > 0 ? sqrt(d / w) : 0;
}

/* The same for the min-loss snapshot: swap it in, recalibrate, keep the result. */
static dn_status recalibrate_best(trainer *t, int w0, int h0)
{
    dn_network *net = t->net;
    size_t bytes = net->nparams * sizeof(float);
    float *cur = malloc(bytes);
    if (!cur) return dn_error(DN_ERR_NOMEM, "out of memory for recalibration");
    dn_device_params_to_host(net);
    memcpy(cur, net->params, bytes);
    memcpy(net->params, t->best, bytes);
    dn_params_changed(net);
    dn_status st = recalibrate(t, w0, h0);
    dn_device_params_to_host(net);
    memcpy(t->best, net->params, bytes);
    memcpy(net->params, cur, bytes);
    dn_params_changed(net);
    free(cur);
    t->best_dirty = 1;
    return st;
}

/* mAP of the current weights on the valid list (written to a temporary file,
 * kept as <base>_best.weights when it is the best so far). */
static dn_status evaluate_map(trainer *t, const dn_train_opts *o, dn_train_result *r, int iteration,
                              float *map)
{
    char tmp[4100];
    snprintf(tmp, sizeof tmp, "%s.map.weights", t->prefix);
    dn_status st = dn_network_save_weights(t->net, tmp, -1);
    dn_validate_opts vo;
    dn_validate_opts_default(&vo);
    vo.data = o->data;
    vo.cfg = o->cfg;
    vo.weights = tmp;
    vo.nthreads = o->nthreads;
    vo.gpu = o->ngpus > 0 ? o->gpus[0] : -1;
    dn_eval_result er;
    if (st == DN_OK) st = dn_validate(&vo, &er);
    if (st != DN_OK) { remove(tmp); return st; }
    *map = (float)er.map;
    dn_eval_result_free(&er);
    if (*map > r->best_map) {
        r->best_map = *map;
        if (rename(tmp, r->best_path))
            return dn_error(DN_ERR_IO, "%s: cannot rename to %s: %s", tmp, r->best_path, strerror(errno));
    } else {
        remove(tmp);
    }
    int *mi = realloc(t->map_iters, sizeof(int) * (size_t)(t->nmaps + 1));
    if (mi) t->map_iters = mi;
    float *mv = realloc(t->maps, sizeof(float) * (size_t)(t->nmaps + 1));
    if (mv) t->maps = mv;
    if (!mi || !mv) return dn_error(DN_ERR_NOMEM, "out of memory");
    t->map_iters[t->nmaps] = iteration;
    t->maps[t->nmaps++] = *map;
    return DN_OK;
}

static dn_status save_chart(trainer *t)
{
    char path[4100];
    snprintf(path, sizeof path, "%s/chart.png", t->dir);
    return dn_chart_save(path, t->first_iter, t->avg_hist, t->navg, t->map_iters, t->maps, t->nmaps);
}

static dn_status record_loss(trainer *t, float avg)
{
    if (t->navg == t->cap_avg) {
        int cap = t->cap_avg ? 2 * t->cap_avg : 1024;
        float *p = realloc(t->avg_hist, sizeof(float) * (size_t)cap);
        if (!p) return dn_error(DN_ERR_NOMEM, "out of memory");
        t->avg_hist = p;
        t->cap_avg = cap;
    }
    t->avg_hist[t->navg++] = avg;
    return DN_OK;
}

/* Darknet's multi-scale training: a new input size every 10 batches. */
static dn_status maybe_resize(trainer *t, int iteration, int w0, int h0)
{
    dn_network *net = t->net;
    if (!net->hp.random || iteration % 10) return DN_OK;
    float f = .7f + .8f * dn_rand_uniform(&net->rng); /* 0.7 .. 1.5 of the cfg size */
    int w = (int)(w0 * f / 32 + .5f) * 32, h = (int)(h0 * f / 32 + .5f) * 32;
    if (w < 32) w = 32;
    if (h < 32) h = 32;
    for (int k = 1; k < t->reps.n; ++k) {
        dn_status st = dn_network_resize(t->reps.nets[k], net->batch, w, h);
        if (st != DN_OK) return st;
    }
    return dn_network_resize(net, net->batch, w, h);
}

dn_status dn_train(const dn_train_opts *o, dn_train_result *r)
{
    memset(r, 0, sizeof(*r));
    r->best_map = -1;
    trainer t;
    memset(&t, 0, sizeof t);
    dn_status st = setup(&t, o, r);
    if (st != DN_OK) { trainer_free(&t); return st; }
    dn_network *net = t.net;
    const int w0 = net->w, h0 = net->h;
    float avg = -1, best = 1e30f;
    size_t cap = 0;
    int iteration = dn_network_current_batch(net);
    t.first_iter = iteration + 1;
    while (st == DN_OK && iteration < net->hp.max_batches) {
        if ((st = maybe_resize(&t, iteration, w0, h0)) != DN_OK) break;
        size_t need = (size_t)t.ngpus * net->hp.batch * net->inputs;
        if (need > cap) {
            float *p = realloc(t.images, need * sizeof(float));
            if (!p) { st = dn_error(DN_ERR_NOMEM, "out of memory for a batch"); break; }
            t.images = p;
            cap = need;
        }
        double t0 = dn_seconds();
        for (int k = 0; k < t.ngpus && st == DN_OK; ++k)
            st = dn_loader_next(t.loader, net->w, net->h, t.images + (size_t)k * net->hp.batch * net->inputs,
                                t.truth + (size_t)k * net->hp.batch * t.max_boxes * 5);
        if (st != DN_OK) break;
        float loss;
        st = t.reps.n > 1 ? dn_replicas_step(&t.reps, t.images, t.truth, net->hp.batch, t.max_boxes, &loss)
                          : dn_network_train_step(net, t.images, t.truth, net->hp.batch, t.max_boxes, &loss);
        if (st != DN_OK) break;
        iteration = dn_network_current_batch(net);
        avg = avg < 0 ? loss : avg * .9f + loss * .1f;
        if ((st = record_loss(&t, avg)) != DN_OK) break;
        float map = -1;
        if (o->map_every > 0 && (iteration % o->map_every == 0 || iteration == net->hp.max_batches)) {
            if ((st = evaluate_map(&t, o, r, iteration, &map)) != DN_OK) break;
            if (!o->quiet) printf("mAP@0.5 at iteration %d: %.4f (best %.4f)\n", iteration, map, r->best_map);
        }
        dn_train_stats s = {iteration, loss, avg, dn_network_learning_rate(net), dn_seconds() - t0,
                            net->seen, net->w, net->h, dn_loader_skipped(t.loader), map};
        if (!o->quiet)
            printf("%d: %f, %f avg, %f rate, %lf seconds, %llu images\n", iteration, loss, avg,
                   s.learning_rate, s.seconds, (unsigned long long)net->seen);
        if (avg < best) {
            best = avg;
            dn_device_params_to_host(net);
            memcpy(t.best, net->params, net->nparams * sizeof(float));
            t.best_seen = net->seen;
            t.best_dirty = 1;
            if (iteration - t.last_flush >= 10) st = flush_minloss(&t, r, iteration);
        }
        if (o->average_last > 0 && iteration > net->hp.max_batches - o->average_last) {
            if (!t.avg && !(t.avg = malloc(net->nparams * sizeof(float)))) {
                st = dn_error(DN_ERR_NOMEM, "out of memory for the weight average");
                break;
            }
            dn_device_params_to_host(net);
            float k = (float)++t.navg_params;
            for (size_t j = 0; j < net->nparams; ++j)
                t.avg[j] = k == 1 ? net->params[j] : t.avg[j] + (net->params[j] - t.avg[j]) / k;
        }
        int stop = o->callback ? o->callback(&s, o->user) : 0;
        if (st == DN_OK && (iteration % 100 == 0 || stop)) {
            st = dn_replicas_sync(&t.reps);
            dn_device_params_to_host(net);
            if (st == DN_OK) st = dn_weights_write(net, r->backup_path, -1, net->params, net->seen, 0);
            if (st == DN_OK) st = flush_minloss(&t, r, iteration);
            if (st == DN_OK) st = save_chart(&t);
        }
        if (st == DN_OK && (iteration % 10000 == 0 || (iteration < 1000 && iteration % 100 == 0))) {
            char path[4200];
            snprintf(path, sizeof path, "%s_%d.weights", t.prefix, iteration);
            st = dn_network_save_weights(net, path, -1);
        }
        if (stop) { r->interrupted = 1; break; }
    }
    if (st == DN_OK && !r->interrupted) {
        st = dn_replicas_sync(&t.reps);
        if (t.navg_params > 1) {
            memcpy(net->params, t.avg, net->nparams * sizeof(float));
            dn_params_changed(net);
        }
        if (t.start) { /* a fine-tune that moved the weights or ran long: Darknet's running averages lag or drift */
            dn_device_params_to_host(net);
            t.recalibrate = iteration - t.first_iter + 1 > RECAL_BATCHES ||
                            weights_moved(&t, net->params) > RECAL_MOVED;
            if (!t.recalibrate && best < 1e30f) t.recalibrate = weights_moved(&t, t.best) > RECAL_MOVED;
        }
        if (st == DN_OK && t.recalibrate) st = recalibrate(&t, w0, h0);
        if (st == DN_OK) st = dn_network_save_weights(net, r->final_path, -1);
        dn_device_params_to_host(net); /* the end state, float shadow weights included */
        if (st == DN_OK) st = dn_weights_write(net, r->backup_path, -1, net->params, net->seen, 0);
        if (st == DN_OK && t.recalibrate && best < 1e30f) st = recalibrate_best(&t, w0, h0);
    }
    if (st == DN_OK) st = flush_minloss(&t, r, iteration);
    if (st == DN_OK && t.navg) st = save_chart(&t);
    r->min_loss = best;
    r->iterations = iteration;
    trainer_free(&t);
    return st;
}
