/* checksum.c: a content hash of float arrays (their bit patterns), with
 * which the conv layers' weight caches notice changed weights (see
 * checksum.h). Fixed chunks of HASH_CHUNK floats, hashed on the thread
 * pool and summed: the result does not depend on the thread count.
 */
#include "checksum.h"
#include "parallel.h"

#include <string.h>

typedef uint32_t u32x8 __attribute__((vector_size(32)));
#define HASH_CHUNK (1 << 16)

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t hash_chunk(const float *x, size_t n, size_t ci)
{
    size_t i0 = ci * HASH_CHUNK, i1 = i0 + HASH_CHUNK < n ? i0 + HASH_CHUNK : n, i = i0;
    const uint32_t M = 0x9E3779B1u;
    u32x8 h[4];
    for (int v = 0; v < 4; ++v)
        for (int l = 0; l < 8; ++l) h[v][l] = (uint32_t)(8 * v + l + 1);
    for (; i + 32 <= i1; i += 32)
        for (int v = 0; v < 4; ++v) {
            u32x8 w;
            memcpy(&w, x + i + 8 * v, 32);
            h[v] = (h[v] ^ w) * M;
            h[v] ^= h[v] >> 15;
        }
    uint64_t hc = mix64(ci + 1);
    for (int v = 0; v < 4; ++v)
        for (int l = 0; l < 8; ++l) hc = mix64(hc ^ h[v][l]);
    for (; i < i1; ++i) {
        uint32_t w;
        memcpy(&w, x + i, 4);
        hc = mix64(hc ^ w);
    }
    return hc;
}

typedef struct {
    const float *x;
    size_t n, nchunks;
    int nitems;
    uint64_t part[DN_PARALLEL_MAX_THREADS];
} hash_job;

static void hash_item(void *ctx, int it, int tid)
{
    hash_job *j = ctx;
    size_t c0 = j->nchunks * it / j->nitems, c1 = j->nchunks * (it + 1) / j->nitems;
    for (size_t ci = c0; ci < c1; ++ci) j->part[tid] += hash_chunk(j->x, j->n, ci);
}

uint64_t dn_checksum_floats(const float *x, size_t n)
{
    hash_job j;
    memset(&j, 0, sizeof j);
    j.x = x;
    j.n = n;
    j.nchunks = (n + HASH_CHUNK - 1) / HASH_CHUNK;
    j.nitems = j.nchunks < 64 ? (int)j.nchunks : 64;
    dn_parallel_for(j.nitems, j.nchunks >= 8 ? dn_parallel_threads() : 1, hash_item, &j);
    uint64_t total = mix64(n);
    for (int t = 0; t < DN_PARALLEL_MAX_THREADS; ++t) total += j.part[t];
    return total;
}

