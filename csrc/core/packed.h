/* packed.h: the packed ternary weights format (packed.c), for weights.c's
 * format dispatch and the `ternary info` statistics. */
#ifndef DN_PACKED_H
#define DN_PACKED_H

#include "internal.h"

/* Read a packed file into net (upto as in dn_network_load_weights).
 * Nothing of net changes unless the whole read succeeds. */
dn_status dn_packed_load(dn_network *net, const char *path, int upto);
/* Bytes of layer i's data in a packed file of this network, of the given
 * format version (1, or 2: folded). */
uint64_t dn_packed_layer_bytes(const dn_network *net, int i, int version);
/* The format version of a packed file (0: unreadable or not packed). */
int dn_packed_version(const char *path);

#endif
