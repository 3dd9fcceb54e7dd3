/* loader.c: the training data loader. A list of image paths; each batch picks
 * images at random (with replacement, as Darknet), loads them with their
 * labels, augments them as Darknet's detector training does (pjreddie's
 * placement or AlexeyAB's crop, dn_placement), and writes the
 * batch as images [batch][3][h][w] and truth [batch][max_boxes][5].
 * The next batch is built on a background thread while the caller computes.
 * Randomness comes from (seed, batch index), so timing never changes results.
 */
#include "../core/internal.h"
#include "augment.h"
#include "../core/fileio.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct dn_loader {
    dn_loader_opts o;
    char **paths;
    int n;
    /* prefetch of batch `next_index` at size pw x ph */
    pthread_t thread;
    int running;
    int pw, ph;
    float *pimages, *ptruth;
    dn_status pstatus;
    char perror[1024];
    int pskipped;
    uint64_t next_index;
    int skipped;
};

static float rand_range(uint64_t *s, float a, float b) { return a + (b - a) * dn_rand_uniform(s); }

static float rand_scale(uint64_t *s, float x)
{
    float v = rand_range(s, 1, x);
    return dn_rand_uniform(s) < .5f ? v : 1.f / v;
}

/* AlexeyAB's crop (DN_PLACE_CROP_*): edges moved inward (+) or outward (-)
 * by up to jitter of the image size and by resize, widened to the input's
 * aspect for letterbox. Returns the crop as left, top, width, height. */
static void crop_box(const dn_loader_opts *o, uint64_t *rng, int ow, int oh, int w, int h, float crop[4])
{
    int dw = (int)(ow * o->jitter), dh = (int)(oh * o->jitter);
    float pl = (int)rand_range(rng, -dw, dw), pr = (int)rand_range(rng, -dw, dw);
    float pt = (int)rand_range(rng, -dh, dh), pb = (int)rand_range(rng, -dh, dh);
    float rz = o->resize > 0 ? o->resize : 1;
    if (rz != 1) {
        float rd = rz > 1 ? 1 / rz : rz, ru = rz < 1 ? 1 / rz : rz;
        float minw = (int)(ow * (1 - 1 / rd) / 2), maxw = rz < 1 ? 0 : (int)(ow * (1 - 1 / ru) / 2);
        float minh = (int)(oh * (1 - 1 / rd) / 2), maxh = rz < 1 ? 0 : (int)(oh * (1 - 1 / ru) / 2);
        float r1 = dn_rand_uniform(rng), r2 = dn_rand_uniform(rng); /* left/top share r1, right/bottom r2 */
        pl += (int)(minw + (maxw - minw) * r1);
        pt += (int)(minh + (maxh - minh) * r1);
        pr += (int)(minw + (maxw - minw) * r2);
        pb += (int)(minh + (maxh - minh) * r2);
    }
    if (o->placement == DN_PLACE_CROP_LETTERBOX) {
        float img_ar = (float)ow / oh, net_ar = (float)w / h;
        if (img_ar / net_ar > 1) {
            float d = (int)((ow / net_ar - oh) / 2);
            pt -= d;
            pb -= d;
        } else {
            float d = (int)((oh * net_ar - ow) / 2);
            pl -= d;
            pr -= d;
        }
    }
    crop[0] = pl;
    crop[1] = pt;
    crop[2] = ow - pl - pr;
    crop[3] = oh - pt - pb;
    if (crop[2] < 1) crop[2] = 1;
    if (crop[3] < 1) crop[3] = 1;
}

/* Load image path i and its labels into one slot of a batch. */
static dn_status load_one(dn_loader *ld, const char *path, uint64_t *rng, int w, int h,
                          float *image, float *truth)
{
    dn_image orig;
    dn_status st = dn_image_load(&orig, path, 3);
    if (st != DN_OK) return st;
    char lp[4096];
    dn_label *labels = NULL;
    int nl = 0;
    st = dn_label_path(path, lp, sizeof lp);
    if (st == DN_OK) st = dn_labels_load(lp, ld->o.classes, &labels, &nl);
    if (st != DN_OK) { dn_image_free(&orig); return st; }
    dn_image canvas = {w, h, 3, image};
    size_t npix = (size_t)3 * w * h;
    for (size_t i = 0; i < npix; ++i) image[i] = .5f;
    float sx = 1, sy = 1, dx = 0, dy = 0;
    int flip = 0;
    if (ld->o.augment && ld->o.placement != DN_PLACE_JITTER) {
        float crop[4];
        crop_box(&ld->o, rng, orig.w, orig.h, w, h, crop);
        size_t opix = (size_t)orig.w * orig.h;
        for (int c = 0; c < 3; ++c) { /* the mean colour past the image, as his OpenCV loader */
            double m = 0;
            for (size_t i = 0; i < opix; ++i) m += orig.data[c * opix + i];
            for (size_t i = 0; i < (size_t)w * h; ++i) image[c * (size_t)w * h + i] = (float)(m / opix);
        }
        /* the whole image scaled by w / crop width, shifted by the crop's left edge */
        int nw = (int)(orig.w * w / crop[2] + .5f), nh = (int)(orig.h * h / crop[3] + .5f);
        int px = (int)floorf(-crop[0] * w / crop[2] + .5f), py = (int)floorf(-crop[1] * h / crop[3] + .5f);
        dn_place_image(&orig, nw, nh, px, py, &canvas);
        flip = !ld->o.no_flip && dn_rand_uniform(rng) < .5f;
        if (flip) dn_flip_image(&canvas);
        float dhue = rand_range(rng, -ld->o.hue, ld->o.hue);
        float dsat = rand_scale(rng, ld->o.saturation), dexp = rand_scale(rng, ld->o.exposure);
        dn_distort_image(&canvas, dhue, dsat, dexp);
        sx = (float)nw / w; sy = (float)nh / h;
        dx = (float)px / w; dy = (float)py / h;
    } else if (ld->o.augment) {
        float jw = ld->o.jitter * orig.w, jh = ld->o.jitter * orig.h;
        float ar = (orig.w + rand_range(rng, -jw, jw)) / (orig.h + rand_range(rng, -jh, jh));
        float nw, nh;
        if (ar < 1) { nh = h; nw = nh * ar; } else { nw = w; nh = nw / ar; }
        float px = rand_range(rng, 0, w - nw), py = rand_range(rng, 0, h - nh);
        dn_place_image(&orig, (int)nw, (int)nh, (int)px, (int)py, &canvas);
        float dhue = rand_range(rng, -ld->o.hue, ld->o.hue);
        float dsat = rand_scale(rng, ld->o.saturation), dexp = rand_scale(rng, ld->o.exposure);
        dn_distort_image(&canvas, dhue, dsat, dexp);
        flip = !ld->o.no_flip && dn_rand_uniform(rng) < .5f;
        if (flip) dn_flip_image(&canvas);
        sx = (float)(int)nw / w; sy = (float)(int)nh / h;
        dx = (float)(int)px / w; dy = (float)(int)py / h;
    } else if (ld->o.letterbox) { /* as at inference: dn_image_letterbox */
        dn_image lb;
        st = dn_image_letterbox(&orig, w, h, &lb);
        if (st != DN_OK) { dn_image_free(&orig); free(labels); return st; }
        memcpy(image, lb.data, npix * sizeof(float));
        dn_image_free(&lb);
        int nw, nh;
        dn_letterbox_size(orig.w, orig.h, w, h, &nw, &nh);
        sx = (float)nw / w; sy = (float)nh / h;
        dx = (float)((w - nw) / 2) / w; dy = (float)((h - nh) / 2) / h;
    } else {
        dn_place_image(&orig, w, h, 0, 0, &canvas);
    }
    dn_image_free(&orig);
    /* shuffle so that truncation to max_boxes drops random boxes, as Darknet */
    for (int i = nl - 1; i > 0; --i) {
        int j = (int)(dn_rand_uniform(rng) * (i + 1));
        dn_label t = labels[i]; labels[i] = labels[j]; labels[j] = t;
    }
    nl = dn_transform_labels(labels, nl, dx, dy, sx, sy, flip);
    memset(truth, 0, sizeof(float) * 5 * (size_t)ld->o.max_boxes);
    for (int i = 0; i < nl && i < ld->o.max_boxes; ++i) {
        float *t = truth + 5 * i;
        t[0] = labels[i].x; t[1] = labels[i].y; t[2] = labels[i].w; t[3] = labels[i].h;
        t[4] = (float)labels[i].id;
    }
    free(labels);
    return DN_OK;
}

static dn_status load_batch(dn_loader *ld, uint64_t index, int w, int h, float *images, float *truth,
                            int *skipped)
{
    uint64_t rng = ld->o.seed * 0x9E3779B97F4A7C15ull + index * 0xD1B54A32D192ED03ull + 1;
    size_t isz = (size_t)3 * w * h, tsz = (size_t)5 * ld->o.max_boxes;
    for (int b = 0; b < ld->o.batch; ++b) {
        for (int fails = 0;; ++fails) {
            int i = (int)(dn_rand_uniform(&rng) * ld->n) % ld->n;
            dn_status st = load_one(ld, ld->paths[i], &rng, w, h, images + b * isz, truth + b * tsz);
            if (st == DN_OK) break;
            if (st == DN_ERR_NOMEM) return st;
            if (fails > 4 * ld->n + 16)
                return dn_error(st, "no loadable image after %d tries (is every image of the list bad?); last: %s",
                                fails + 1, dn_last_error());
            ++*skipped;
            dn_warn("skipping %s: %s", ld->paths[i], dn_last_error());
            if (ld->o.max_skips >= 0 && *skipped > ld->o.max_skips)
                return dn_error(st, "too many bad images or labels (%d skipped, limit %d); last: %s",
                                *skipped, ld->o.max_skips, dn_last_error());
        }
    }
    return DN_OK;
}

static void *prefetch_main(void *arg)
{
    dn_loader *ld = arg;
    ld->pskipped = 0;
    ld->pstatus = load_batch(ld, ld->next_index, ld->pw, ld->ph, ld->pimages, ld->ptruth, &ld->pskipped);
    if (ld->pstatus != DN_OK) snprintf(ld->perror, sizeof ld->perror, "%s", dn_last_error());
    return NULL;
}

static dn_status start_prefetch(dn_loader *ld, int w, int h)
{
    size_t isz = (size_t)ld->o.batch * 3 * w * h;
    if (w != ld->pw || h != ld->ph || !ld->pimages) {
        float *p = realloc(ld->pimages, isz * sizeof(float));
        if (!p) return dn_error(DN_ERR_NOMEM, "loader: out of memory");
        ld->pimages = p;
        ld->pw = w;
        ld->ph = h;
    }
    if (pthread_create(&ld->thread, NULL, prefetch_main, ld))
        return dn_error(DN_ERR_STATE, "loader: cannot start thread");
    ld->running = 1;
    return DN_OK;
}

static void join(dn_loader *ld)
{
    if (!ld->running) return;
    pthread_join(ld->thread, NULL);
    ld->running = 0;
    ld->skipped += ld->pskipped;
}

dn_status dn_loader_next(dn_loader *ld, int w, int h, float *images, float *truth)
{
    dn_status st;
    join(ld);
    if (ld->pimages && ld->pw == w && ld->ph == h && ld->pstatus == DN_OK) {
        memcpy(images, ld->pimages, sizeof(float) * (size_t)ld->o.batch * 3 * w * h);
        memcpy(truth, ld->ptruth, sizeof(float) * (size_t)ld->o.batch * 5 * ld->o.max_boxes);
    } else if (ld->pimages && ld->pw == w && ld->ph == h) {
        return dn_error(ld->pstatus, "%s", ld->perror);
    } else {
        int skipped = 0;
        st = load_batch(ld, ld->next_index, w, h, images, truth, &skipped);
        ld->skipped += skipped;
        if (st != DN_OK) return st;
    }
    ld->next_index++;
    return start_prefetch(ld, w, h);
}

dn_status dn_loader_open(dn_loader **out, const dn_loader_opts *opts)
{
    *out = NULL;
    if (opts->batch <= 0 || opts->max_boxes <= 0)
        return dn_error(DN_ERR_VALUE, "loader: batch and max_boxes must be positive");
    dn_loader *ld = dn_calloc(1, sizeof(dn_loader));
    if (!ld) return DN_ERR_NOMEM;
    ld->o = *opts;
    ld->o.list_path = NULL;
    ld->next_index = opts->first_batch;
    ld->ptruth = dn_calloc((size_t)opts->batch * 5 * opts->max_boxes, sizeof(float));
    dn_status st = ld->ptruth ? dn_read_list(opts->list_path, &ld->paths, &ld->n) : DN_ERR_NOMEM;
    if (st != DN_OK) { dn_loader_close(ld); return st; }
    *out = ld;
    return DN_OK;
}

int dn_loader_size(const dn_loader *ld) { return ld->n; }
int dn_loader_skipped(const dn_loader *ld) { return ld->skipped; }

void dn_loader_close(dn_loader *ld)
{
    if (!ld) return;
    join(ld);
    for (int i = 0; i < ld->n; ++i) free(ld->paths[i]);
    free(ld->paths);
    free(ld->pimages);
    free(ld->ptruth);
    free(ld);
}
