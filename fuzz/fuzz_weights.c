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
    fuzz_load_weights(net, path, 2);
    return 0;
}
