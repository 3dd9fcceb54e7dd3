/* batchnorm.h: Darknet's training batch normalisation and bias, shared by
 * the conv and connected layers.
 *
 * Layout: x[batch][f][spatial] (spatial = out_h*out_w for conv, 1 for
 * connected). Statistics are per channel f over its N = batch*spatial values:
 *   mean = sum x / N,  var = sum (x - mean)^2 / (N - 1)   (Darknet's variance_cpu;
 *   N = 1 gives var = 0),
 *   x_hat = (x - mean) / sqrt(var + .000001),  out = x_hat * scale + bias.
 * Backward is the exact gradient of that forward (the 1/(N-1) variance
 * included); with g = dL/dout * scale:
 *   dL/dx = (g - sum g / N - x_hat * sum(g x_hat) / (N - 1)) / sqrt(var + .000001).
 */
#ifndef DN_BATCHNORM_H
#define DN_BATCHNORM_H

#include "../core/activations.h"

/* True for the activations the _act functions apply themselves (linear,
 * leaky, relu, relie); for the others pass DN_ACT_LINEAR and run
 * dn_activate / dn_gradient separately. */
int dn_bn_act_fuses(dn_activation act);

/* Batch norm with the batch statistics and then the activation:
 * reads x[batch][f][spatial] (the conv output), writes x_hat (when not NULL;
 * may alias x) and out = act(x_hat * scale + bias) (may alias x when x_hat
 * does not); var and the rolling statistics as dn_bn_forward_train.
 * act must satisfy dn_bn_act_fuses. */
void dn_bn_forward_train_act(const float *x, int batch, int f, int spatial,
                             const float *scale, const float *bias,
                             float *rolling_mean, float *rolling_var, float momentum,
                             float *var, float *x_hat, float *out, dn_activation act);

/* delta = dL/d(activation output) in; first delta *= act'(y) (y = the
 * activation's output, may be NULL for linear), then as dn_bn_backward. */
void dn_bn_backward_act(float *delta, const float *y, int batch, int f, int spatial,
                        const float *x_hat, const float *var, const float *scale,
                        float *scale_grad, float *bias_grad, dn_activation act);

/* delta *= act'(y), then bias_grad[f] += sum of delta over batch and spatial
 * (bias_grad may be NULL). */
void dn_bias_backward_act(float *delta, const float *y, int batch, int f, int spatial, float *bias_grad,
                          dn_activation act);

/* x[batch][f][spatial] -> scale * x_hat + bias, in place. Writes (each when
 * not NULL) the batch variance var[f] and x_hat[batch][f][spatial];
 * updates rolling_mean/rolling_var[f] = (1 - momentum) * old + momentum * batch
 * statistic (Darknet: momentum .01). */
void dn_bn_forward_train(float *x, int batch, int f, int spatial,
                         const float *scale, const float *bias,
                         float *rolling_mean, float *rolling_var, float momentum,
                         float *var, float *x_hat);

/* delta[batch][f][spatial]: dL/dout in, dL/dx out (in place). Adds
 * sum(dL/dout * x_hat) to scale_grad[f] and sum dL/dout to bias_grad[f]
 * (either may be NULL). x_hat and var as written by dn_bn_forward_train. */
void dn_bn_backward(float *delta, int batch, int f, int spatial,
                    const float *x_hat, const float *var, const float *scale,
                    float *scale_grad, float *bias_grad);

/* x[batch][f][spatial] += bias[f]. */
void dn_bias_forward(float *x, int batch, int f, int spatial, const float *bias);

/* bias_grad[f] += sum over batch and spatial of delta[batch][f][spatial]. */
void dn_bias_backward(const float *delta, int batch, int f, int spatial, float *bias_grad);

#endif
