/* replicas.c: data-parallel training on several CUDA devices, as Darknet's
 * -gpus 0,1 does it: one replica of the network per device, each training
 * step gives every replica its own batch (in its own thread), and every
 * DN_SYNC_EVERY steps (and before checkpoints) the params of all replicas
 * are averaged on the host and copied back to each. As in Darknet, each
 * replica's learning rate is scaled by the number of devices. Replica 0 is
 * the trainer's own network; the others are built from the same cfg and
 * start from its params. Compiled in every build: without devices it is
 * never opened (dn_network_set_device fails first).
 */
#include "../core/internal.h"
#include "replicas.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

void dn_replicas_free(dn_replicas *r)
{
    for (int k = 1; k < r->n; ++k) dn_network_free(r->nets[k]);
    free(r->nets);
    memset(r, 0, sizeof(*r));
}

dn_status dn_replicas_open(dn_replicas *r, dn_network *main_net, const int *gpus, int ngpus)
{
    memset(r, 0, sizeof(*r));
    r->nets = calloc((size_t)ngpus, sizeof(dn_network *));
    if (!r->nets) return dn_error(DN_ERR_NOMEM, "out of memory");
    r->n = ngpus;
    r->nets[0] = main_net;
    dn_status st = dn_network_set_device(main_net, gpus[0]);
    dn_device_params_to_host(main_net);
    for (int k = 1; k < ngpus && st == DN_OK; ++k) {
        dn_network *net = NULL;
        st = dn_network_load(&net, main_net->cfg_path, main_net->batch, main_net->rng + (uint64_t)k);
        if (st != DN_OK) break;
        r->nets[k] = net;
        memcpy(net->params, main_net->params, main_net->nparams * sizeof(float));
        dn_params_changed(net);
        net->seen = main_net->seen;
        net->hp.max_batches = main_net->hp.max_batches;
        net->bn_fresh = main_net->bn_fresh;
        net->nthreads = main_net->nthreads;
        st = dn_network_set_train(net, 1);
        if (st == DN_OK) st = dn_network_set_device(net, gpus[k]);
    }
    if (st != DN_OK) {
        for (int k = 1; k < ngpus; ++k) dn_network_free(r->nets[k]);
        free(r->nets);
        memset(r, 0, sizeof(*r));
        return st;
    }
    for (int k = 0; k < ngpus; ++k) r->nets[k]->hp.learning_rate *= (float)ngpus;
    return DN_OK;
}

typedef struct {
    dn_network *net;
    const float *images, *truth;
    int n, max_boxes;
    float loss;
    dn_status st;
    char msg[1024];
} step_args;

static void *step_thread(void *p)
{
    step_args *a = p;
    a->st = dn_network_train_step(a->net, a->images, a->truth, a->n, a->max_boxes, &a->loss);
    if (a->st != DN_OK) snprintf(a->msg, sizeof a->msg, "%s", dn_last_error());
    return NULL;
}

dn_status dn_replicas_step(dn_replicas *r, const float *images, const float *truth, int n, int max_boxes,
                           float *loss)
{
    dn_network *m = r->nets[0];
    step_args *a = calloc((size_t)r->n, sizeof(step_args));
    pthread_t *th = calloc((size_t)r->n, sizeof(pthread_t));
    int *started = calloc((size_t)r->n, sizeof(int));
    if (!a || !th || !started) {
        free(a); free(th); free(started);
        return dn_error(DN_ERR_NOMEM, "out of memory");
    }
    size_t isz = (size_t)n * m->inputs, tsz = (size_t)n * max_boxes * 5;
    for (int k = 0; k < r->n; ++k) {
        a[k] = (step_args){r->nets[k], images + k * isz, truth + k * tsz, n, max_boxes, 0, DN_OK, ""};
        started[k] = pthread_create(&th[k], NULL, step_thread, &a[k]) == 0;
        if (!started[k]) step_thread(&a[k]);
    }
    dn_status st = DN_OK;
    double sum = 0;
    for (int k = 0; k < r->n; ++k) {
        if (started[k]) pthread_join(th[k], NULL);
        if (a[k].st != DN_OK && st == DN_OK) st = dn_error(a[k].st, "GPU replica %d: %s", k, a[k].msg);
        sum += a[k].loss;
    }
    *loss = (float)(sum / r->n);
    free(a); free(th); free(started);
    if (st == DN_OK && ++r->steps % DN_SYNC_EVERY == 0) st = dn_replicas_sync(r);
    return st;
}

dn_status dn_replicas_sync(dn_replicas *r)
{
    if (r->n < 2) return DN_OK;
    dn_network *m = r->nets[0];
    size_t np = m->nparams;
    for (int k = 0; k < r->n; ++k) dn_device_params_to_host(r->nets[k]);
    for (size_t i = 0; i < np; ++i) {
        double s = 0;
        for (int k = 0; k < r->n; ++k) s += r->nets[k]->params[i];
        m->params[i] = (float)(s / r->n);
    }
    for (int k = 0; k < r->n; ++k) {
        if (k) memcpy(r->nets[k]->params, m->params, np * sizeof(float));
        dn_params_changed(r->nets[k]);
    }
    return DN_OK;
}
