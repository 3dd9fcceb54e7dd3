/* fuzz_net.h: the small network the weights and packed-file targets load
 * into: float and ternary convolutions (one alpha per layer and per filter,
 * with and without batch norm), a pool, a connected layer and a detector, so
 * every kind of layer record and param appears. */
#ifndef DN_FUZZ_NET_H
#define DN_FUZZ_NET_H

#include "fuzz_util.h"
#include "../csrc/core/internal.h"

#include <string.h>

static const char fuzz_net_cfg[] =
    "[net]\nbatch=1\nwidth=8\nheight=8\nchannels=3\n"
    "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\nactivation=leaky\nternary=1\n"
    "[maxpool]\nsize=2\nstride=2\n"
    "[convolutional]\nfilters=5\nsize=3\npad=1\nactivation=leaky\nternary=1\nternary_scale=filter\n"
    "[convolutional]\nbatch_normalize=1\nfilters=3\nsize=1\nactivation=linear\n"
    "[connected]\noutput=12\nactivation=linear\n"
    "[reorg]\nstride=1\n";

/* The network, built once (slot 3 holds its cfg). */
static dn_network *fuzz_net(void)
{
    static dn_network *net;
    if (!net) {
        const char *cfg = fuzz_file(3, (const uint8_t *)fuzz_net_cfg, sizeof fuzz_net_cfg - 1);
        if (dn_network_load(&net, cfg, 1, 1) != DN_OK) {
            fprintf(stderr, "fuzz_net: %s\n", dn_last_error());
            abort();
        }
    }
    return net;
}

/* Load path into net whole (-1), as a prefix (-2) and up to layer upto: an
 * error must be clean (fuzz_check_error) and leave the params as they were. */
static void fuzz_load_weights(dn_network *net, const char *path, int upto)
{
    const int uptos[] = {-1, -2, upto};
    float *before = malloc(net->nparams * sizeof(float));
    if (!before) return;
    for (int k = 0; k < 3; ++k) {
        memcpy(before, net->params, net->nparams * sizeof(float));
        dn_error(DN_OK, "%s", "");
        dn_status st = dn_network_load_weights(net, path, uptos[k]);
        fuzz_check_error(st);
        if (st != DN_OK && memcmp(before, net->params, net->nparams * sizeof(float))) {
            fprintf(stderr, "failed load (upto %d) changed the params: %s\n", uptos[k], dn_last_error());
            abort();
        }
    }
    free(before);
}

#endif
