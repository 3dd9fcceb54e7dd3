/* detector.c: the helpers the detector layers' losses share (detector.h):
 * truth rows and cells, Darknet's cost and delta sign, the backward pass of
 * every detector layer, and Darknet's strided softmax.
 */
#include "detector.h"

#include <float.h>
#include <math.h>

void dn_softmax_strided(const float *in, int n, int stride, float *out)
{
    float largest = -FLT_MAX, sum = 0;
    for (int i = 0; i < n; ++i)
        if (in[(size_t)i * stride] > largest) largest = in[(size_t)i * stride];
    for (int i = 0; i < n; ++i) {
        float e = (float)exp(in[(size_t)i * stride] - largest);
        sum += e;
        out[(size_t)i * stride] = e;
    }
    for (int i = 0; i < n; ++i) out[(size_t)i * stride] /= sum;
}

int dn_truth_rows(const dn_network *net, int b, const float **rows)
{
    *rows = NULL;
    if (!net->truth || b < 0 || b >= net->truth_batch || net->truths < 5) return 0;
    const float *t = net->truth + (size_t)b * net->truths;
    int n = 0, max = net->truths / 5;
    while (n < max && t[5 * n] != 0 && t[5 * n + 2] != 0) ++n;
    *rows = t;
    return n;
}

int dn_truth_cell(float v, int n)
{
    int i = (int)(v * n);
    return i < 0 ? 0 : i >= n ? n - 1 : i;
}

float dn_detector_cost(float *delta, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; ++i) {
        sum += (double)delta[i] * delta[i];
        delta[i] = -delta[i];
    }
    return (float)sum;
}

dn_status dn_detector_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta)
{
    (void)net; (void)input;
    if (!input_delta) return DN_OK;
    size_t n = (size_t)l->batch * l->outputs;
    for (size_t i = 0; i < n; ++i) input_delta[i] += l->delta[i];
    return DN_OK;
}
