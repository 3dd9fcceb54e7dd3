/* distill.c: knowledge distillation from a teacher network on the detector
 * outputs. With a teacher set (dn_network_set_teacher), each training
 * forward of the student first runs the teacher (inference mode: its own
 * rolling statistics) on the same input; after each of the student's
 * detector layers computed its loss, the layer's distill op adds
 * weight * (its loss towards the teacher's matching detector output) to its
 * cost and the gradient to its delta. The k-th detector layer of the student
 * matches the k-th of the teacher: same section, classes, anchors per cell,
 * channels and stride (the teacher may otherwise be any network, e.g. the
 * float model of a ternary student). Host only.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Two detector layers have the same classes and anchors per cell. */
static int same_head(const dn_layer *a, const dn_layer *b)
{
    dn_layer_info x, y;
    memset(&x, 0, sizeof x);
    memset(&y, 0, sizeof y);
    if (a->ops->describe) a->ops->describe(a, &x);
    if (b->ops->describe) b->ops->describe(b, &y);
    return x.classes == y.classes && x.num == y.num;
}

dn_status dn_network_set_teacher(dn_network *net, dn_network *teacher, float weight)
{
    if (!teacher) {
        free(net->teacher_layer);
        net->teacher_layer = NULL;
        net->teacher = NULL;
        net->distill = 0;
        return DN_OK;
    }
    if (!(weight >= 0) || !isfinite(weight))
        return dn_error(DN_ERR_VALUE, "set_teacher: the distillation weight must be finite and >= 0, got %g", weight);
    if (teacher == net) return dn_error(DN_ERR_VALUE, "set_teacher: a network cannot be its own teacher");
    if (net->gpu || teacher->gpu)
        return dn_error(DN_ERR_UNSUPPORTED, "set_teacher: distillation trains on the host only (%s on a device)",
                        net->gpu ? net->cfg_path : teacher->cfg_path);
    if (net->c != teacher->c)
        return dn_error(DN_ERR_VALUE, "set_teacher: %s takes %d input channels, the teacher %s %d", net->cfg_path,
                        net->c, teacher->cfg_path, teacher->c);
    int *map = malloc((size_t)net->n * sizeof(int));
    if (!map) return DN_ERR_NOMEM;
    int t = 0;
    for (int i = 0; i < net->n; ++i) {
        const dn_layer *l = &net->layers[i];
        map[i] = -1;
        if (!l->is_detector) continue;
        while (t < teacher->n && !teacher->layers[t].is_detector) ++t;
        const dn_layer *tl = t < teacher->n ? &teacher->layers[t] : NULL;
        const char *why = NULL;
        if (!l->ops->distill) why = "this kind of detector layer cannot be distilled (only [yolo])";
        else if (!tl) why = "the teacher has fewer detector layers";
        else if (tl->ops != l->ops) why = "the teacher's matching detector layer is of another kind";
        else if (!same_head(l, tl))
            why = "the teacher's matching detector layer has other classes or anchors per cell";
        else if (l->out_c != tl->out_c || (size_t)l->out_w * teacher->w != (size_t)tl->out_w * net->w ||
                 (size_t)l->out_h * teacher->h != (size_t)tl->out_h * net->h)
            why = "the teacher's matching detector layer has another shape or stride";
        if (why) {
            free(map);
            return dn_error(DN_ERR_VALUE, "%s:%d: [%s] layer %d: %s (teacher %s)", net->cfg_path, l->line,
                            l->ops->section, i, why, teacher->cfg_path);
        }
        map[i] = t++;
    }
    while (t < teacher->n && !teacher->layers[t].is_detector) ++t;
    if (t < teacher->n) {
        free(map);
        return dn_error(DN_ERR_VALUE, "set_teacher: the teacher %s has more detector layers than %s",
                        teacher->cfg_path, net->cfg_path);
    }
    free(net->teacher_layer);
    net->teacher_layer = map;
    net->teacher = teacher;
    net->distill = weight;
    return DN_OK;
}

dn_status dn_distill_teacher_forward(dn_network *net, const float *input)
{
    dn_network *t = net->teacher;
    if (t->batch != net->batch || t->w != net->w || t->h != net->h) {
        dn_status st = dn_network_resize(t, net->batch, net->w, net->h);
        if (st != DN_OK) return st;
    }
    if (t->train) dn_network_set_train(t, 0);
    return dn_network_forward(t, input);
}

void dn_distill_layer(dn_network *net, dn_layer *l)
{
    const dn_layer *t = &net->teacher->layers[net->teacher_layer[l->index]];
    l->cost += (float)l->ops->distill(l, t, net->distill);
}
