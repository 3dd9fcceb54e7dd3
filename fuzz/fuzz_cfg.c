/* fuzz_cfg.c: libFuzzer target for the cfg parser and the network builder.
 * The input is a .cfg file: parse it, build the network (batch 1), and when
 * it builds and is small, run a forward pass and one training step on zeros.
 * Every failure must be a status with a message, never a crash. */
#include "fuzz_util.h"
#include "../csrc/core/internal.h"

#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    dn_set_tensor_limit((size_t)1 << 22); /* 16 MB per tensor keeps executions fast */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(0, data, size);
    dn_error(DN_OK, "%s", "");
    dn_network *net = NULL;
    dn_status st = dn_network_load(&net, path, 1, 1);
    fuzz_check_error(st);
    if (st != DN_OK) return 0;
    double flops = 0;
    for (int i = 0; i < net->n; ++i) flops += net->layers[i].flops;
    if (flops < 2e6 && net->inputs < 100000) {
        float *x = calloc(net->inputs * (size_t)net->batch + 1, sizeof(float));
        if (x) {
            for (size_t i = 0; i < net->inputs; ++i) x[i] = (float)(i % 7) / 7.f;
            fuzz_check_error(dn_network_forward(net, x));
            if (dn_network_set_train(net, 1) == DN_OK) {
                float truth[5] = {.5f, .5f, .2f, .3f, 0}, loss;
                fuzz_check_error(dn_network_train_step(net, x, truth, 1, 1, &loss));
            }
            free(x);
        }
    }
    dn_network_free(net);
    return 0;
}
