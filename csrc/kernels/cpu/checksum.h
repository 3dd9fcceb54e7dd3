/* checksum.h: content hash of float arrays (checksum.c). */
#ifndef DN_CHECKSUM_H
#define DN_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* Content hash of n floats (bit patterns) to notice changed weights: per
 * 32-bit lane h = (h ^ x) * M, h ^= h >> 15, so that every bit of every word
 * reaches the whole state (negated weights change it too). Fixed chunks,
 * summed: independent of the thread count. */
uint64_t dn_checksum_floats(const float *x, size_t n);

#endif
