/* fuzz_packed.c: libFuzzer target for the packed ternary reader (.tpk). The
 * input is a packed file for fuzz_net.h's network. The header, table and
 * layer CRC-32s are recomputed over the fuzzed bytes first (when the fields
 * they cover are present), so mutations reach the checks behind the CRCs;
 * the CRC checks themselves are covered by tests/test_malformed.py. */
#include "fuzz_net.h"
#include "../csrc/core/internal.h"

#include <string.h>

static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
    uint32_t crc = ~0u;
    for (size_t i = 0; i < n; ++i) {
        crc ^= p[i];
        for (int k = 0; k < 8; ++k) crc = crc & 1 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
    }
    return ~crc;
}

static uint32_t rd32(const uint8_t *p) { return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; ++i) p[i] = (uint8_t)(v >> 8 * i); }

/* Make the checksums of f[0..n) consistent; f starts with the magic. */
static void fix_crcs(uint8_t *f, size_t n)
{
    if (n < 64) return;
    uint64_t nl = rd32(f + 20);
    if (nl <= (n - 64) / 64) {
        for (uint64_t i = 0; i < nl; ++i) {
            uint8_t *r = f + 64 + 64 * i;
            uint64_t off = rd64(r + 48), bytes = rd64(r + 56);
            if (off <= n && bytes <= n - off) wr32(r + 28, crc32_ieee(f + off, bytes));
        }
        wr32(f + 56, crc32_ieee(f + 64, 64 * nl));
    }
    wr32(f + 60, crc32_ieee(f, 60));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dn_network *net = fuzz_net();
    uint8_t *f = malloc(size + 8);
    if (!f) return 0;
    memcpy(f, "DNTERNPK", 8);
    memcpy(f + 8, data, size);
    fix_crcs(f, size + 8);
    const char *path = fuzz_file(0, f, size + 8);
    free(f);
    fuzz_load_weights(net, path, 3);
    return 0;
}
