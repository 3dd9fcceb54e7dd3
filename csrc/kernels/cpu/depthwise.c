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
#include "ternary_gemm.h"

#include <string.h>

/* One register of the target: 16 floats with AVX-512, else 8 (two SSE
 * registers below AVX); wider vectors than the registers spill. */
#ifdef __AVX512F__
#define VL 16
#else
#define VL 8
#endif
typedef float vf __attribute__((vector_size(VL * 4)));
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

/* The phase buffer of one plane of es-byte elements (float or int16). */
static void fill_es(const geom *g, const void *plane, size_t es, void *buffer)
{
    const char *in = plane;
    char *buf = buffer;
    for (int ry = 0; ry < g->s; ++ry) {
        int y0, y1;
        valid_range(g->hq, g->h, g->s, ry, g->p, &y0, &y1);
        for (int rx = 0; rx < g->s; ++rx) {
            char *ph = buf + es * (size_t)(ry * g->s + rx) * g->phase;
            int j0, j1;
            valid_range(g->wq, g->w, g->s, rx, g->p, &j0, &j1);
            memset(ph, 0, es * (size_t)y0 * g->wq);
            for (int yq = y0; yq < y1; ++yq) {
                char *row = ph + es * (size_t)yq * g->wq;
                const char *src = in + es * (size_t)(g->s * yq + ry - g->p) * g->w;
                memset(row, 0, es * (size_t)j0);
                if (g->s == 1 && j1 > j0)
                    memcpy(row + es * j0, src + es * (j0 - g->p), es * (size_t)(j1 - j0));
                else
                    for (int j = j0; j < j1; ++j) memcpy(row + es * j, src + es * (g->s * j + rx - g->p), es);
                memset(row + es * j1, 0, es * (size_t)(g->wq - j1));
            }
            memset(ph + es * (size_t)y1 * g->wq, 0, es * (size_t)(g->hq - y1) * g->wq);
        }
    }
    memset(buf + es * (buf_floats(g) - SLACK), 0, es * SLACK);
}

static void fill(const geom *g, const float *in, float *buf) { fill_es(g, in, sizeof(float), buf); }

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

/* Tap t = ky*k + kx reads the phase buffer at off[t] + flat index. */
static void tap_offsets(const geom *g, size_t *off)
{
    for (int ky = 0; ky < g->k; ++ky)
        for (int kx = 0; kx < g->k; ++kx)
            off[ky * g->k + kx] = (size_t)(ky % g->s * g->s + kx % g->s) * g->phase +
                                  (size_t)(ky / g->s) * g->wq + kx / g->s;
}

/* wide[i] = sum_t w[t] * buf[off[t] + i] for i < n (rounded up to BLOCK). */
static void conv_wide(const float *buf, const size_t *off, const float *w, int kk, size_t n, float *wide)
{
    for (size_t i = 0; i < n; i += BLOCK) {
        vf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (int t = 0; t < kk; ++t) {
            const float *x = buf + off[t] + i;
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

/* y = act(y) in place for the fused activations (dn_tact1's formulas) */
static void activate_row(float *y, int n, dn_activation act)
{
    switch (act) {
    case DN_ACT_LEAKY:
        for (int i = 0; i < n; ++i) y[i] = y[i] > 0 ? y[i] : .1f * y[i];
        break;
    case DN_ACT_RELU:
        for (int i = 0; i < n; ++i) y[i] = y[i] > 0 ? y[i] : 0;
        break;
    case DN_ACT_RELIE:
        for (int i = 0; i < n; ++i) y[i] = y[i] > 0 ? y[i] : .01f * y[i];
        break;
    default:
        break;
    }
}

/* y = act(x * a + b) (the formulas of activations.c), accumulate: y += x */
static void store_row(float *o, const float *x, int n, float a, float b, dn_activation act, int accumulate)
{
    if (accumulate) {
        for (int i = 0; i < n; ++i) o[i] += x[i];
        return;
    }
    for (int i = 0; i < n; ++i) o[i] = x[i] * a + b;
    activate_row(o, n, act);
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
    size_t off[MAX_SIZE * MAX_SIZE];
    fill(g, j->input + (size_t)item * g->h * g->w, buf);
    tap_offsets(g, off);
    conv_wide(buf, off, j->weights + (size_t)ch * kk, kk, g->n, wide);
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
    size_t off[MAX_SIZE * MAX_SIZE];
    tap_offsets(g, off);
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
                for (int t = 0; t < kk; ++t) acc[t] += d * vload(buf + off[t] + i);
            }
        }
        if (j->input_delta) {
            /* g_t[i] += w[t] * d[i], tap by tap (the taps' runs overlap) */
            memset(gbuf, 0, sizeof(float) * buf_floats(g));
            size_t n = (g->n + VL - 1) / VL * VL;
            for (int t = 0; t < kk; ++t) {
                float *gx = gbuf + off[t];
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

/* ---- int8 (ternary codes, quantised activations) ---- */

typedef short vs __attribute__((vector_size(64)));  /* 32 int16 */
#define VS 32

static inline vs vsload(const short *p) { vs v; memcpy(&v, p, sizeof(v)); return v; }

/* bytes per thread: an int16 plane, its phase buffer and the int16 wide
 * sums, then the plane's bytes u = q + 128 */
static size_t s8_per_thread(const geom *g)
{
    size_t hw = (size_t)g->h * g->w, b = sizeof(short) * (hw + buf_floats(g) + wide_floats(g)) + hw;
    return (b + 63) / 64 * 64;
}

size_t dn_depthwise_s8_scratch(const dn_conv_shape *s, int nthreads)
{
    geom g = geom_of(s);
    return s8_per_thread(&g) * (size_t)(nthreads > 0 ? nthreads : 1);
}

typedef struct {
    const dn_conv_shape *s;
    geom g;
    const dn_tkernels *K;
    const float *input, *inv, *sx;
    const int8_t *xs8, *codes;
    const dn_epilogue *ep;
    float *output;
    int32_t *out32;
    char *scratch;
    size_t per_thread;
} s8_job;

static void s8_plane(void *ctx, int item, int tid)
{
    const s8_job *j = ctx;
    const geom *g = &j->g;
    int b = item / j->s->c, ch = item % j->s->c, kk = g->k * g->k;
    size_t hw = (size_t)g->h * g->w;
    short *q = (short *)(j->scratch + (size_t)tid * j->per_thread), *buf = q + hw, *wide = buf + buf_floats(g);
    /* the plane's codes: quantised by the int8 GEMM's own primitive (u = q + 128), or given */
    if (j->input) {
        uint8_t *u = (uint8_t *)(wide + wide_floats(g));
        j->K->quantize(j->input + (size_t)item * hw, hw, j->inv[b], u);
        for (size_t i = 0; i < hw; ++i) q[i] = (short)(u[i] - 128);
    } else {
        const int8_t *x = j->xs8 + (size_t)item * hw;
        for (size_t i = 0; i < hw; ++i) q[i] = x[i];
    }
    fill_es(g, q, sizeof(short), buf);
    const int8_t *code = j->codes + (size_t)ch * kk;
    size_t off[MAX_SIZE * MAX_SIZE];
    tap_offsets(g, off);
    /* exact sums: |sum| <= 64 taps * 128 fits int16 */
    for (size_t i = 0; i < g->n; i += VS) {
        vs acc = {0};
        for (int t = 0; t < kk; ++t) {
            if (code[t] > 0) acc += vsload(buf + off[t] + i);
            else if (code[t] < 0) acc -= vsload(buf + off[t] + i);
        }
        memcpy(wide + i, &acc, sizeof(acc));
    }
    size_t o = (size_t)item * g->oh * g->ow;
    if (j->out32) {
        for (int oy = 0; oy < g->oh; ++oy)
            for (int ox = 0; ox < g->ow; ++ox) j->out32[o + (size_t)oy * g->ow + ox] = wide[(size_t)oy * g->wq + ox];
        return;
    }
    /* the int8 GEMM's epilogue, the same float operations in the same order */
    const dn_epilogue *ep = j->ep;
    float m = j->sx[b] * ep->scale[ch];
    for (int oy = 0; oy < g->oh; ++oy) {
        const short *a = wide + (size_t)oy * g->wq;
        float *y = j->output + o + (size_t)oy * g->ow;
        if (ep->shift) {
            float sh = ep->shift[ch];
            for (int ox = 0; ox < g->ow; ++ox) y[ox] = (float)a[ox] * m + sh;
        } else {
            for (int ox = 0; ox < g->ow; ++ox) y[ox] = (float)a[ox] * m;
        }
        activate_row(y, g->ow, ep->act);
    }
}

void dn_depthwise_s8(const dn_conv_shape *s, const dn_tkernels *K, const float *input, const float *inv,
                     const float *sx, const int8_t *xs8, const int8_t *codes, const dn_epilogue *ep, float *output,
                     int32_t *out32, void *scratch, int nthreads)
{
    s8_job j = {s, geom_of(s), K, input, inv, sx, xs8, codes, ep, output, out32, scratch, 0};
    j.per_thread = s8_per_thread(&j.g);
    dn_parallel_for(s->batch * s->c, nthreads, s8_plane, &j);
}
