/* activations.c: forward and derivative of each activation (Darknet's
 * definitions: leaky slope 0.1, relie 0.01, ramp x*(x>0)+0.1x). */
#include "activations.h"

#include <math.h>
#include <string.h>

static const char *names[DN_ACT_COUNT] = {
    "linear", "leaky", "logistic", "relu", "relie", "ramp", "tanh", "swish", "mish"};

int dn_activation_from_name(const char *name)
{
    for (int i = 0; i < DN_ACT_COUNT; ++i)
        if (!strcmp(name, names[i])) return i;
    return -1;
}

const char *dn_activation_name(dn_activation a) { return names[a]; }

int dn_activation_needs_input(dn_activation a) { return a == DN_ACT_SWISH || a == DN_ACT_MISH; }

static inline float logistic(float x) { return 1.f / (1.f + expf(-x)); }
static inline float softplus(float x) { return x > 20.f ? x : (x < -20.f ? expf(x) : log1pf(expf(x))); }

void dn_activate(float *x, size_t n, dn_activation a)
{
    size_t i;
    switch (a) {
    case DN_ACT_LINEAR: break;
    case DN_ACT_LEAKY: for (i = 0; i < n; ++i) x[i] = x[i] > 0 ? x[i] : .1f * x[i]; break;
    case DN_ACT_LOGISTIC: for (i = 0; i < n; ++i) x[i] = logistic(x[i]); break;
    case DN_ACT_RELU: for (i = 0; i < n; ++i) x[i] = x[i] > 0 ? x[i] : 0; break;
    case DN_ACT_RELIE: for (i = 0; i < n; ++i) x[i] = x[i] > 0 ? x[i] : .01f * x[i]; break;
    case DN_ACT_RAMP: for (i = 0; i < n; ++i) x[i] = x[i] * (x[i] > 0) + .1f * x[i]; break;
    case DN_ACT_TANH: for (i = 0; i < n; ++i) x[i] = tanhf(x[i]); break;
    case DN_ACT_SWISH: for (i = 0; i < n; ++i) x[i] = x[i] * logistic(x[i]); break;
    case DN_ACT_MISH: for (i = 0; i < n; ++i) x[i] = x[i] * tanhf(softplus(x[i])); break;
    default: break;
    }
}

void dn_gradient(const float *y, const float *x, size_t n, dn_activation a, float *delta)
{
    size_t i;
    switch (a) {
    case DN_ACT_LINEAR: break;
    case DN_ACT_LEAKY: for (i = 0; i < n; ++i) delta[i] *= y[i] > 0 ? 1.f : .1f; break;
    case DN_ACT_LOGISTIC: for (i = 0; i < n; ++i) delta[i] *= (1 - y[i]) * y[i]; break;
    case DN_ACT_RELU: for (i = 0; i < n; ++i) delta[i] *= y[i] > 0; break;
    case DN_ACT_RELIE: for (i = 0; i < n; ++i) delta[i] *= y[i] > 0 ? 1.f : .01f; break;
    case DN_ACT_RAMP: for (i = 0; i < n; ++i) delta[i] *= (y[i] > 0) + .1f; break;
    case DN_ACT_TANH: for (i = 0; i < n; ++i) delta[i] *= 1 - y[i] * y[i]; break;
    case DN_ACT_SWISH:
        for (i = 0; i < n; ++i) {
            float s = logistic(x[i]);
            delta[i] *= s + x[i] * s * (1 - s);
        }
        break;
    case DN_ACT_MISH:
        for (i = 0; i < n; ++i) {
            float sp = softplus(x[i]), t = tanhf(sp), s = logistic(x[i]);
            delta[i] *= t + x[i] * (1 - t * t) * s;
        }
        break;
    default: break;
    }
}
