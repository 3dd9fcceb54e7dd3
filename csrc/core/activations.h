/* activations.h: Darknet's activation functions, one table row each. */
#ifndef DN_ACTIVATIONS_H
#define DN_ACTIVATIONS_H

#include <stddef.h>

typedef enum {
    DN_ACT_LINEAR, DN_ACT_LEAKY, DN_ACT_LOGISTIC, DN_ACT_RELU, DN_ACT_RELIE,
    DN_ACT_RAMP, DN_ACT_TANH, DN_ACT_SWISH, DN_ACT_MISH, DN_ACT_COUNT
} dn_activation;

/* Returns -1 for an unknown name. */
int dn_activation_from_name(const char *name);
const char *dn_activation_name(dn_activation a);
/* x[n] = f(x[n]) in place. */
void dn_activate(float *x, size_t n, dn_activation a);
/* delta[i] *= f'(.) where y = f(x) is the output and x the pre-activation
 * (x is only read by swish and mish, may be NULL for the others). */
void dn_gradient(const float *y, const float *x, size_t n, dn_activation a, float *delta);
/* True when f' needs the pre-activation input. */
int dn_activation_needs_input(dn_activation a);

#endif
