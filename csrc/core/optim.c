/* optim.c: the learning-rate schedule of [net] and Darknet's SGD update
 * (momentum and weight decay) over the one flat parameter block.
 *
 * Gradients in net->grads are dL/dparam summed over the images of a full
 * batch (batch = hp.batch = net batch * subdivisions). Darknet's update, in
 * its own variables u (momentum buffer) and B (images in the step):
 *   u -= g;  u -= decay*B*w (weights only);  w += lr/B * u;  u *= momentum.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

int dn_network_current_batch(const dn_network *net)
{
    return (int)(net->seen / (uint64_t)(net->hp.batch > 0 ? net->hp.batch : 1));
}

float dn_network_learning_rate(dn_network *net)
{
    const dn_hparams *hp = &net->hp;
    int b = dn_network_current_batch(net);
    if (b < hp->burn_in) return hp->learning_rate * powf((float)b / hp->burn_in, hp->power);
    switch (hp->policy) {
    case DN_POLICY_CONSTANT: return hp->learning_rate;
    case DN_POLICY_STEP: return hp->learning_rate * powf(hp->scale, (float)(b / (hp->step > 0 ? hp->step : 1)));
    case DN_POLICY_STEPS: {
        float rate = hp->learning_rate;
        for (int i = 0; i < hp->nsteps; ++i) {
            if (hp->steps[i] > b) return rate;
            rate *= hp->scales[i];
        }
        return rate;
    }
    case DN_POLICY_EXP: return hp->learning_rate * powf(hp->gamma, (float)b);
    case DN_POLICY_POLY:
        return hp->max_batches > 0 ? hp->learning_rate * powf(1.f - (float)b / hp->max_batches, hp->power)
                                   : hp->learning_rate;
    case DN_POLICY_RANDOM: return hp->learning_rate * powf(dn_rand_uniform(&net->rng), hp->power);
    case DN_POLICY_SIGMOID: return hp->learning_rate * (1.f / (1.f + expf(hp->gamma * (b - hp->step))));
    }
    return hp->learning_rate;
}

void dn_sgd_update(dn_network *net, float lr, float B)
{
    const float mom = net->hp.momentum, decay = net->hp.decay;
    for (int i = 0; i < net->n; ++i) {
        dn_layer *l = &net->layers[i];
        for (int k = 0; k < l->nparams; ++k) {
            dn_param *p = &l->params[k];
            if (!(p->flags & DN_PARAM_TRAIN)) continue;
            float *w = p->data, *g = p->grad, *u = net->momentum + p->offset;
            float wd = (p->flags & DN_PARAM_DECAY) ? decay * B : 0.f;
            for (size_t j = 0; j < p->n; ++j) {
                u[j] -= g[j] + wd * w[j];
                w[j] += lr / B * u[j];
                u[j] *= mom;
                g[j] = 0;
            }
        }
    }
    dn_params_changed(net); /* the caches of TWN / Winograd weights are remade */
}
