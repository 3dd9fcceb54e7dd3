/* fuzz_weights.c: libFuzzer target for the .weights reader. The input is a
 * weights file for fuzz_net.h's network, loaded strictly (upto -1), as a
 * prefix (-2, what training does with a partial file) and for the first
 * layers only. A failed load must not change the network's params. */
#include "fuzz_net.h"
#include "../csrc/core/internal.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dn_network *net = fuzz_net();
    const char *path = fuzz_file(0, data, size);
    static const int uptos[] = {-1, -2, 2};
    float *before = malloc(net->nparams * sizeof(float));
    if (!before) return 0;
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
    return 0;
}
