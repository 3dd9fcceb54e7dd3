/* conv_ternary.c: ternary [convolutional] layers on the ternary kernels of
 * kernels/cpu/ternary_gemm.h, and the per-network kernel setting.
 *
 * Per layer a cache holds the TWN codes {-1, 0, +1} and alpha of each
 * filter (dn_ternarize_groups of the float weights, so exactly the values
 * the float path multiplies by), packed for the kernel in use (int8 panels
 * or the float kernel's tap lists). It is remade when the weights changed
 * (dn_wstamp_check, as the Winograd cache of conv_float.c): load_weights,
 * training and, once they are out, writes through Network.params() views
 * are all noticed.
 *
 * Batch norm is folded into the per-filter epilogue at each forward:
 * scale[f] = alpha_f * gamma_f / sqrt(var_f + 1e-6), shift[f] = beta_f -
 * mean_f * gamma_f / sqrt(var_f + 1e-6) (or the bias without BN); the int8
 * kernel multiplies by the image's activation scale as well. So a ternary
 * layer is one integer (or add/subtract) GEMM and one fused epilogue.
 */
#include "conv_ternary.h"
#include "conv.h"
#include "../kernels/cpu/parallel.h"
#include "../kernels/cpu/ternary_gemm.h"
#include "../kernels/cpu/conv_fast.h"
#include "../kernels/ref/ternary.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct dn_tcache {
    dn_wstamp stamp;          /* the weights the codes were made from */
    int8_t *codes;            /* [filters][k] */
    float *alpha;             /* [filters] */
    dn_tweights tw;           /* int8 panels, when tw.a */
    dn_tlists tl;             /* float tap lists, when tl.idx */
    float *scale, *shift;     /* [filters] folded epilogue */
    void *scratch;            /* 64-byte aligned */
    size_t scratch_cap;       /* bytes */
};

static void drop_packed(struct dn_tcache *c)
{
    dn_tweights_free(&c->tw);
    dn_tlists_free(&c->tl);
}

void dn_conv_ternary_free(dn_layer *l)
{
    dn_conv *p = l->priv;
    struct dn_tcache *c = p ? p->tcache : NULL;
    if (!c) return;
    drop_packed(c);
    free(c->codes);
    free(c->alpha);
    free(c->scale);
    free(c->shift);
    free(c->scratch);
    free(c);
    p->tcache = NULL;
}

/* Codes and alphas of the current weights; 0 when out of memory. */
static int refresh_codes(dn_layer *l, const dn_network *net, struct dn_tcache *c)
{
    const dn_conv *p = l->priv;
    const dn_param *w = dn_layer_param(l, "weights");
    if (dn_wstamp_check(&c->stamp, net, w->data, w->n)) return 1;
    drop_packed(c);
    int groups = w->ternary_groups, nf = p->filters;
    if (!c->codes) c->codes = dn_malloc(w->n);
    if (!c->alpha) c->alpha = dn_malloc(sizeof(float) * (size_t)nf);
    float *t = dn_malloc(sizeof(float) * w->n), *ga = dn_malloc(sizeof(float) * (size_t)groups);
    int ok = c->codes && c->alpha && t && ga;
    if (ok) {
        dn_ternarize_groups(w->data, groups, w->n / (size_t)groups, t, ga);
        for (size_t i = 0; i < w->n; ++i) c->codes[i] = (int8_t)(t[i] > 0 ? 1 : t[i] < 0 ? -1 : 0);
        for (int f = 0; f < nf; ++f) c->alpha[f] = ga[groups == 1 ? 0 : f * groups / nf];
        c->stamp.valid = 1;
    }
    free(t);
    free(ga);
    return ok;
}

/* scale[f] = alpha_f * BN scale, shift[f] = folded BN shift or bias. */
static int fold(dn_layer *l, struct dn_tcache *c, dn_epilogue *ep)
{
    const dn_conv *p = l->priv;
    int n = p->filters;
    if (!c->scale) c->scale = dn_malloc(sizeof(float) * (size_t)n);
    if (!c->shift) c->shift = dn_malloc(sizeof(float) * (size_t)n);
    if (!c->scale || !c->shift) return 0;
    const float *bias = dn_layer_param(l, "biases")->data, *sc = NULL, *mean = NULL, *var = NULL;
    if (p->batch_normalize) {
        sc = dn_layer_param(l, "scales")->data;
        mean = dn_layer_param(l, "rolling_mean")->data;
        var = dn_layer_param(l, "rolling_variance")->data;
    }
    for (int f = 0; f < n; ++f) {
        float a = 1.f, b = bias[f];
        if (sc) {
            a = sc[f] / sqrtf(var[f] + .000001f);
            b = bias[f] - mean[f] * a;
        }
        c->scale[f] = c->alpha[f] * a;
        c->shift[f] = b;
    }
    *ep = (dn_epilogue){c->scale, c->shift, dn_epilogue_fuses(l->act) ? l->act : DN_ACT_LINEAR, 0, 0};
    return 1;
}

static void *scratch(struct dn_tcache *c, size_t bytes)
{
    if (bytes > c->scratch_cap || !c->scratch) {
        free(c->scratch);
        c->scratch = dn_aligned_alloc(64, bytes);
        c->scratch_cap = c->scratch ? bytes : 0;
    }
    return c->scratch;
}

/* The forward into out; pool: the int8 kernel's fused 2x2 max pool (ep->pool).
 * 1 done, 0 not a ternary kernel's layer, -1 out of memory (error set). */
static int forward(dn_layer *l, dn_network *net, const float *input, float *out, int pool)
{
    dn_conv *p = l->priv;
    int mode = net->ternary_kernel;
    if (!l->ternary || (mode != DN_TERNARY_FLOAT && mode != DN_TERNARY_INT8)) return 0;
    /* from here on a failure is an error: the kernel asked for, or none */
    if (!p->tcache && !(p->tcache = dn_calloc(1, sizeof(struct dn_tcache)))) return -1;
    struct dn_tcache *c = p->tcache;
    if (!refresh_codes(l, net, c)) return -1;
    dn_epilogue ep;
    if (!fold(l, c, &ep)) return -1;
    ep.pool = pool;
    dn_conv_shape s = {l->batch, l->c, l->h, l->w, p->filters, p->size, p->stride, p->pad,
                       p->groups, l->out_h, l->out_w};
    int nth = dn_parallel_threads(), simd = dn_ternary_simd();
    size_t bytes;
    int planned = mode == DN_TERNARY_INT8 ? dn_tconv_int8_plan(&c->tw, c->codes, &s, nth, &bytes)
                                          : dn_tconv_float_plan(&c->tl, c->codes, &s, nth, &bytes);
    if (!planned) { /* the kernel file allocates with plain malloc: no message of its own */
        dn_error(DN_ERR_NOMEM, "layer %d [convolutional]: out of memory for the ternary kernel's weights", l->index);
        return -1;
    }
    void *ws = scratch(c, bytes);
    if (!ws) return -1;
    if (mode == DN_TERNARY_INT8) dn_tconv_int8(&s, input, &c->tw, &ep, out, NULL, ws, nth, simd);
    else dn_tconv_float(&s, input, &c->tl, &ep, l->output, ws, nth, simd);
    if (!dn_epilogue_fuses(l->act)) dn_activate(l->output, (size_t)l->batch * l->outputs, l->act);
    return 1;
}

int dn_conv_forward_ternary(dn_layer *l, dn_network *net, const float *input)
{
    return forward(l, net, input, l->output, 0);
}

int dn_conv_forward_ternary_pooled(dn_layer *l, dn_network *net, const float *input, float *pooled)
{
    if (!l->ternary || net->ternary_kernel != DN_TERNARY_INT8 || !dn_epilogue_fuses(l->act) || l->out_h % 2 ||
        l->out_w % 2)
        return 0;
    return forward(l, net, input, pooled, 2);
}
