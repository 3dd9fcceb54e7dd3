/* replicas.h: data-parallel training over several CUDA devices (replicas.c). */
#ifndef DN_REPLICAS_H
#define DN_REPLICAS_H

#include "../core/internal.h"

#define DN_SYNC_EVERY 4 /* steps between weight averages (Darknet's interval) */

typedef struct {
    int n;               /* replicas (devices) */
    dn_network **nets;   /* nets[0] is the caller's network */
    int steps;
} dn_replicas;

/* Put main_net on gpus[0] and one new replica on each other device. */
dn_status dn_replicas_open(dn_replicas *r, dn_network *main_net, const int *gpus, int ngpus);
/* One training step of every replica k on images[k*n ...] and truth[k*n ...]
 * (n images each); *loss the mean of their losses. Averages every DN_SYNC_EVERY steps. */
dn_status dn_replicas_step(dn_replicas *r, const float *images, const float *truth, int n, int max_boxes,
                           float *loss);
/* Average the params of all replicas into each. */
dn_status dn_replicas_sync(dn_replicas *r);
/* Free the replicas other than nets[0]. */
void dn_replicas_free(dn_replicas *r);

#endif
