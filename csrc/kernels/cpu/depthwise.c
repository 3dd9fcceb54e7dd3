/* depthwise.c: see depthwise.h.
 *
 * Layout: the padded plane is split into stride x stride phases (padded
 * row Y = s*yq + ry, column X = s*j + rx goes to phase (ry, rx) at [yq][j]),
 * each hq x wq with wq = out_w + (k-1)/s. Output pixel (oy, ox) under tap
 * (ky, kx) reads phase (ky%s, kx%s) at [oy + ky/s][ox + kx/s], so over the
 * "wide" output grid (oy, j < wq; columns j >= out_w are discarded) every
 * tap reads one contiguous run of the phase: flat index oy*wq + j plus the
 * tap's offset (ky/s)*wq + kx/s. The kernels sweep that flat range in
 * blocks of 4 vectors, all taps accumulated in registers.
 */
#include "depthwise.h"
#include "parallel.h"

#include <string.h>

typedef float vf __attribute__((vector_size(64)));  /* 16 floats: one AVX-512 register, two AVX2 ones */
#define VL 16
#define BLOCK (4 * VL)
#define MAX_SIZE 8
#define SLACK (BLOCK + MAX_SIZE)  /* floats readable past the end of every buffer */

static inline vf vload(const float *p) { vf v; memcpy(&v, p, sizeof(v)); return v; }
static inline void vstore(float *p, vf v) { memcpy(p, &v, sizeof(v)); }
static inline vf vsplat(float x) { return (vf){0} + x; }

typedef struct {
    int h, w, k, s, p, oh, ow;
    int hq, wq;   /* rows and columns per phase */
    size_t n;     /* wide output floats: oh * wq */
    size_t phase; /* floats per phase: hq * wq */
} geom;

static geom geom_of(const dn_conv_shape *s)
{
    geom g = {s->h, s->w, s->size, s->stride, s->pad, s->out_h, s->out_w, 0, 0, 0, 0};
    g.hq = g.oh + (g.k - 1) / g.s;
    g.wq = g.ow + (g.k - 1) / g.s;
    g.n = (size_t)g.oh * g.wq;
    g.phase = (size_t)g.hq * g.wq;
    return g;
}

static size_t buf_floats(const geom *g) { return (size_t)g->s * g->s * g->phase + SLACK; }
static size_t wide_floats(const geom *g) { return g->n + SLACK; }

int dn_depthwise_applies(const dn_conv_shape *s)
{
    return s->groups > 1 && s->size <= MAX_SIZE && s->groups == s->c && s->groups == s->filters && s->out_h > 0 && s->out_w > 0;
}

/* per thread: the phase buffer, a second one (input gradient) and the wide grid */
size_t dn_depthwise_scratch(const dn_conv_shape *s, int nthreads)
{
    geom g = geom_of(s);
    return (2 * buf_floats(&g) + wide_floats(&g)) * (size_t)(nthreads > 0 ? nthreads : 1);
}

/* Indices q in [0, count) with s*q + r - p in [0, len): [*q0, *q1). */
static void valid_range(int count, int len, int s, int r, int p, int *q0, int *q1)
{
    int lo = p - r, hi = len - 1 + p - r; /* s*q in [lo, hi] */
    *q0 = lo <= 0 ? 0 : (lo + s - 1) / s;
    *q1 = hi < 0 ? 0 : hi / s + 1;
    if (*q1 > count) *q1 = count;
    if (*q0 > *q1) *q0 = *q1;
}

static float *phase_at(const geom *g, float *buf, int ry, int rx)
{
    return buf + (size_t)(ry * g->s + rx) * g->phase;
}

static void fill(const geom *g, const float *in, float *buf)
{
    for (int ry = 0; ry < g->s; ++ry) {
        int y0, y1;
        valid_range(g->hq, g->h, g->s, ry, g->p, &y0, &y1);
        for (int rx = 0; rx < g->s; ++rx) {
            float *ph = phase_at(g, buf, ry, rx);
            int j0, j1;
            valid_range(g->wq, g->w, g->s, rx, g->p, &j0, &j1);
            memset(ph, 0, sizeof(float) * (size_t)y0 * g->wq);
            for (int yq = y0; yq < y1; ++yq) {
                float *row = ph + (size_t)yq * g->wq;
                const float *src = in + (size_t)(g->s * yq + ry - g->p) * g->w;
                memset(row, 0, sizeof(float) * (size_t)j0);
                if (g->s == 1 && j1 > j0)
                    memcpy(row + j0, src + (j0 - g->p), sizeof(float) * (size_t)(j1 - j0));
                else
                    for (int j = j0; j < j1; ++j) row[j] = src[g->s * j + rx - g->p];
                memset(row + j1, 0, sizeof(float) * (size_t)(g->wq - j1));
            }
            memset(ph + (size_t)y1 * g->wq, 0, sizeof(float) * (size_t)(g->hq - y1) * g->wq);
        }
    }
    memset(buf + buf_floats(g) - SLACK, 0, sizeof(float) * SLACK);
}

/* input_delta plane += the phase buffer's inner part */
static void unfill_add(const geom *g, const float *buf, float *in_delta)
{
    for (int ry = 0; ry < g->s; ++ry) {
        int y0, y1;
        valid_range(g->hq, g->h, g->s, ry, g->p, &y0, &y1);
        for (int rx = 0; rx < g->s; ++rx) {
            const float *ph = phase_at(g, (float *)buf, ry, rx);
            int j0, j1;
            valid_range(g->wq, g->w, g->s, rx, g->p, &j0, &j1);
            for (int yq = y0; yq < y1; ++yq) {
                const float *row = ph + (size_t)yq * g->wq;
                float *dst = in_delta + (size_t)(g->s * yq + ry - g->p) * g->w;
                for (int j = j0; j < j1; ++j) dst[g->s * j + rx - g->p] += row[j];
            }
        }
    }
}

/* Tap t = ky*k + kx reads buf + off[t] + flat index. */
static void tap_offsets(const geom *g, const float *buf, const float **taps)
{
    for (int ky = 0; ky < g->k; ++ky)
        for (int kx = 0; kx < g->k; ++kx)
            taps[ky * g->k + kx] = phase_at(g, (float *)buf, ky % g->s, kx % g->s) +
                                   (size_t)(ky / g->s) * g->wq + kx / g->s;
}

/* wide[i] = sum_t w[t] * taps[t][i] for i < n (rounded up to BLOCK). */
static void conv_wide(const float *const *taps, const float *w, int kk, size_t n, float *wide)
{
    for (size_t i = 0; i < n; i += BLOCK) {
        vf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (int t = 0; t < kk; ++t) {
            const float *x = taps[t] + i;
            vf wv = vsplat(w[t]);
            a0 += wv * vload(x);
            a1 += wv * vload(x + VL);
            a2 += wv * vload(x + 2 * VL);
            a3 += wv * vload(x + 3 * VL);
        }
        vstore(wide + i, a0);
        vstore(wide + i + VL, a1);
        vstore(wide + i + 2 * VL, a2);
        vstore(wide + i + 3 * VL, a3);
    }
}

/* y = act(x * a + b) (the formulas of activations.c), accumulate: y += x */
static void store_row(float *o, const float *x, int n, float a, float b, dn_activation act, int accumulate)
{
    if (accumulate) {
        for (int i = 0; i < n; ++i) o[i] += x[i];
        return;
    }
    switch (act) {
    case DN_ACT_LEAKY:
        for (int i = 0; i < n; ++i) { float v = x[i] * a + b; o[i] = v > 0 ? v : .1f * v; }
        break;
    case DN_ACT_RELU:
        for (int i = 0; i < n; ++i) { float v = x[i] * a + b; o[i] = v > 0 ? v : 0; }
        break;
    case DN_ACT_RELIE:
        for (int i = 0; i < n; ++i) { float v = x[i] * a + b; o[i] = v > 0 ? v : .01f * v; }
        break;
    default:
        for (int i = 0; i < n; ++i) o[i] = x[i] * a + b;
    }
}

typedef struct {
    const dn_conv_shape *s;
    geom g;
    const float *input, *weights, *delta;
    const dn_epilogue *ep;
    float *output, *weight_grad, *input_delta, *scratch;
    size_t per_thread;
} job;

static void forward_plane(void *ctx, int item, int tid)
{
    const job *j = ctx;
    const geom *g = &j->g;
    int ch = item % j->s->c, kk = g->k * g->k;
    float *buf = j->scratch + (size_t)tid * j->per_thread, *wide = buf + 2 * buf_floats(g);
    const float *taps[MAX_SIZE * MAX_SIZE];
    fill(g, j->input + (size_t)item * g->h * g->w, buf);
    tap_offsets(g, buf, taps);
    conv_wide(taps, j->weights + (size_t)ch * kk, kk, g->n, wide);
    const dn_epilogue *ep = j->ep;
    float a = ep && ep->scale ? ep->scale[ch] : 1.f, b = ep && ep->shift ? ep->shift[ch] : 0.f;
    dn_activation act = ep ? ep->act : DN_ACT_LINEAR;
    float *out = j->output + (size_t)item * g->oh * g->ow;
    for (int oy = 0; oy < g->oh; ++oy)
        store_row(out + (size_t)oy * g->ow, wide + (size_t)oy * g->wq, g->ow, a, b, act, ep && ep->accumulate);
}

/* A wide copy of one delta plane, zero in the discarded columns. */
static void widen(const geom *g, const float *d, float *wide)
{
    for (int oy = 0; oy < g->oh; ++oy) {
        float *row = wide + (size_t)oy * g->wq;
        memcpy(row, d + (size_t)oy * g->ow, sizeof(float) * (size_t)g->ow);
        memset(row + g->ow, 0, sizeof(float) * (size_t)(g->wq - g->ow));
    }
    memset(wide + g->n, 0, sizeof(float) * SLACK);
}

/* Channel ch over the whole batch, in order: the weight gradient's sums
 * never depend on the thread count. */
static void backward_channel(void *ctx, int ch, int tid)
{
    const job *j = ctx;
    const geom *g = &j->g;
    int kk = g->k * g->k, c = j->s->c;
    size_t in_plane = (size_t)g->h * g->w, out_plane = (size_t)g->oh * g->ow;
    float *buf = j->scratch + (size_t)tid * j->per_thread, *gbuf = buf + buf_floats(g), *wide = gbuf + buf_floats(g);
    const float *w = j->weights + (size_t)ch * kk;
    const float *taps[MAX_SIZE * MAX_SIZE], *gtaps[MAX_SIZE * MAX_SIZE];
    tap_offsets(g, buf, taps);
    tap_offsets(g, gbuf, gtaps);
    vf acc[MAX_SIZE * MAX_SIZE];
    for (int t = 0; t < kk; ++t) acc[t] = (vf){0};
    for (int b = 0; b < j->s->batch; ++b) {
        size_t plane = (size_t)b * c + ch;
        widen(g, j->delta + plane * out_plane, wide);
        if (j->weight_grad) {
            /* dW[t] += sum_i d[i] * x_t[i]; one vector accumulator per tap */
            fill(g, j->input + plane * in_plane, buf);
            for (size_t i = 0; i < g->n; i += VL) {
                vf d = vload(wide + i);
                for (int t = 0; t < kk; ++t) acc[t] += d * vload(taps[t] + i);
            }
        }
        if (j->input_delta) {
            /* g_t[i] += w[t] * d[i], tap by tap (the taps' runs overlap) */
            memset(gbuf, 0, sizeof(float) * buf_floats(g));
            size_t n = (g->n + VL - 1) / VL * VL;
            for (int t = 0; t < kk; ++t) {
                float *gx = (float *)gtaps[t];
                vf wv = vsplat(w[t]);
                for (size_t i = 0; i < n; i += VL) vstore(gx + i, vload(gx + i) + wv * vload(wide + i));
            }
            unfill_add(g, gbuf, j->input_delta + plane * in_plane);
        }
    }
    if (j->weight_grad)
        for (int t = 0; t < kk; ++t) {
            float sum = 0;
            for (int l = 0; l < VL; ++l) sum += acc[t][l];
            j->weight_grad[(size_t)ch * kk + t] += sum;
        }
}

static void run(const dn_conv_shape *s, job *j, int items, dn_parallel_fn fn, int nthreads)
{
    j->g = geom_of(s);
    j->per_thread = dn_depthwise_scratch(s, 1);
    dn_parallel_for(items, nthreads, fn, j);
}

void dn_depthwise_forward(const dn_conv_shape *s, const float *input, const float *weights,
                          const dn_epilogue *ep, float *output, float *scratch, int nthreads)
{
    job j = {s, {0}, input, weights, NULL, ep, output, NULL, NULL, scratch, 0};
    run(s, &j, s->batch * s->c, forward_plane, nthreads);
}

void dn_depthwise_backward(const dn_conv_shape *s, const float *input, const float *weights,
                           const float *delta, float *weight_grad, float *input_delta,
                           float *scratch, int nthreads)
{
    if (!weight_grad && !input_delta) return;
    job j = {s, {0}, input, weights, delta, NULL, NULL, weight_grad, input_delta, scratch, 0};
    run(s, &j, s->c, backward_channel, nthreads);
}
