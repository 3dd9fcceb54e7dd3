/* anchors.c: anchor boxes for a data set, as AlexeyAB's `detector
 * calc_anchors`: k-means over the sizes (w, h) of every labelled box of an
 * image list, in pixels of a width x height network input, with YOLOv2's
 * distance 1 - IoU of two boxes sharing a centre.
 *
 * Deterministic: the first centroids are the boxes at the area quantiles
 * (i + 0.5) / n of the boxes sorted by (area, w, h); Lloyd's iterations
 * (each box to the first centroid of largest IoU; a centroid becomes the
 * mean w and mean h of its boxes, an empty one stays) run until no box
 * changes cluster. The anchors come out sorted by area.
 */
#include "../core/internal.h"
#include "../core/fileio.h"

#include <stdlib.h>

typedef struct { double w, h; } wh;

static double iou(wh a, wh b)
{
    double i = (a.w < b.w ? a.w : b.w) * (a.h < b.h ? a.h : b.h);
    return i / (a.w * a.h + b.w * b.h - i);
}

static int by_area(const void *pa, const void *pb)
{
    const wh *a = pa, *b = pb;
    double x = a->w * a->h, y = b->w * b->h;
    if (x != y) return x < y ? -1 : 1;
    if (a->w != b->w) return a->w < b->w ? -1 : 1;
    return (a->h > b->h) - (a->h < b->h);
}

/* The sizes of every box of the list's label files, in pixels. */
static dn_status read_boxes(const char *list_path, int classes, int width, int height, wh **out, int *n,
                            int *images)
{
    char **paths;
    dn_status st = dn_read_list(list_path, &paths, images);
    if (st != DN_OK) return st;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    for (int i = 0; i < *images && st == DN_OK; ++i) {
        char lp[4096];
        dn_label *l = NULL;
        int nl = 0;
        st = dn_label_path(paths[i], lp, sizeof lp);
        if (st == DN_OK) st = dn_labels_load(lp, classes, &l, &nl);
        if (st == DN_OK && (size_t)(*n + nl) > cap) {
            cap = 2 * cap + (size_t)nl + 64;
            wh *grown = realloc(*out, cap * sizeof(wh));
            if (grown) *out = grown;
            else st = dn_error(DN_ERR_NOMEM, "out of memory for %zu boxes", cap);
        }
        for (int k = 0; st == DN_OK && k < nl; ++k)
            if (l[k].w > 0 && l[k].h > 0) (*out)[(*n)++] = (wh){(double)l[k].w * width, (double)l[k].h * height};
        free(l);
    }
    for (int i = 0; i < *images; ++i) free(paths[i]);
    free(paths);
    if (st != DN_OK) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return st;
}

dn_status dn_anchors_compute(const char *list_path, int classes, int n, int width, int height, float *anchors,
                             float *avg_iou, int *nboxes)
{
    if (n < 1 || width < 1 || height < 1)
        return dn_error(DN_ERR_VALUE, "anchors: need clusters >= 1 and a positive width and height (got %d, %d x %d)",
                        n, width, height);
    wh *box;
    int nb, images;
    dn_status st = read_boxes(list_path, classes, width, height, &box, &nb, &images);
    if (st != DN_OK) return st;
    if (nb < n) {
        free(box);
        return dn_error(DN_ERR_VALUE, "%s: %d labelled boxes in %d images, fewer than the %d anchors asked for",
                        list_path, nb, images, n);
    }
    wh *c = malloc((size_t)n * sizeof(wh)), *sum = malloc((size_t)n * sizeof(wh));
    int *of = malloc((size_t)nb * sizeof(int)), *count = malloc((size_t)n * sizeof(int));
    if (!c || !sum || !of || !count) {
        free(box); free(c); free(sum); free(of); free(count);
        return dn_error(DN_ERR_NOMEM, "out of memory for %d boxes", nb);
    }
    qsort(box, (size_t)nb, sizeof(wh), by_area);
    for (int k = 0; k < n; ++k) c[k] = box[(int)((k + .5) * nb / n)];
    for (int i = 0; i < nb; ++i) of[i] = -1;
    for (int iter = 0, changed = 1; changed && iter < 1000; ++iter) {
        changed = 0;
        for (int k = 0; k < n; ++k) { sum[k] = (wh){0, 0}; count[k] = 0; }
        for (int i = 0; i < nb; ++i) {
            int best = 0;
            for (int k = 1; k < n; ++k)
                if (iou(box[i], c[k]) > iou(box[i], c[best])) best = k;
            changed += best != of[i];
            of[i] = best;
            sum[best].w += box[i].w;
            sum[best].h += box[i].h;
            count[best]++;
        }
        for (int k = 0; k < n; ++k)
            if (count[k]) c[k] = (wh){sum[k].w / count[k], sum[k].h / count[k]};
    }
    qsort(c, (size_t)n, sizeof(wh), by_area);
    double total = 0;
    for (int i = 0; i < nb; ++i) {
        double best = 0;
        for (int k = 0; k < n; ++k)
            if (iou(box[i], c[k]) > best) best = iou(box[i], c[k]);
        total += best;
    }
    for (int k = 0; k < n; ++k) {
        anchors[2 * k] = (float)c[k].w;
        anchors[2 * k + 1] = (float)c[k].h;
    }
    *avg_iou = (float)(total / nb);
    if (nboxes) *nboxes = nb;
    free(box); free(c); free(sum); free(of); free(count);
    return DN_OK;
}
