/* conv_ternary.h: the inference forward of ternary [convolutional] layers
 * on the ternary kernels (conv_ternary.c), chosen per network with
 * dn_network_set_ternary_kernel. */
#ifndef DN_CONV_TERNARY_H
#define DN_CONV_TERNARY_H

#include "../core/internal.h"

/* Forward of a ternary=1 conv layer (inference) with net->ternary_kernel.
 * Returns 1 when done, 0 when the caller should run the float path
 * instead (kernel off, not a ternary layer), -1 out of memory (the error
 * set: the kernel asked for runs or the forward fails). */
int dn_conv_forward_ternary(dn_layer *l, dn_network *net, const float *input);
/* The same on the int8 kernel with its fused 2x2 stride-2 max pool: pooled
 * (batch x filters x out_h/2 x out_w/2) receives the pool of the layer's
 * output, which is not computed. Returns 0 (nothing done) unless the
 * kernel is int8 and the activation fuses (pooling after it) and the
 * output size is even; -1 out of memory. */
int dn_conv_forward_ternary_pooled(dn_layer *l, dn_network *net, const float *input, float *pooled);
/* Release the layer's ternary cache (called by the conv layer's free). */
void dn_conv_ternary_free(dn_layer *l);

#endif
