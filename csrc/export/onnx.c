/* onnx.c: ONNX export of a loaded network (dn_network_export_onnx).
 *
 * The graph computes the network's inference forward as the layers here
 * compute it: input "input" [batch][c][h][w] float32; one output per detector
 * layer ([yolo], [region], [detection]; named <type>_<layer index>) equal to
 * that layer's output (dn_network_layer_output), or, without a detector
 * layer, the last layer's output ("output"). Every tensor keeps Darknet's
 * NCHW shape of its layer, [batch][out_c][out_h][out_w]. With decode=1,
 * the outputs boxes, objectness and scores follow: every detector layer's
 * rows decoded as its dn_detector's decode does (detector.h), unthresholded.
 *
 * One emitter per layer type (the table at the end) adds the nodes of one
 * layer: it reads its input tensor name and writes its output tensor name.
 * Names: "input", "l<i>_<k>" for the k-th tensor made by layer i,
 * "c<k>" for constants (initializers). Weights are initializers in raw
 * little-endian float32. Batch norm is folded into the weights and bias of
 * float conv and connected layers; ternary conv layers keep their TWN values
 * (dn_conv_weights: alpha * {-1, 0, +1}) as the weights and apply the batch
 * norm after the Conv (Mul, Add), so the exported file shows the ternary
 * weights themselves. What ONNX cannot express is refused with an error
 * naming the layer, never exported differently.
 *
 * The model is assembled in memory: header fields, then the graph from its
 * parts (name, nodes, initializers, inputs and outputs), whose length is
 * their sum, written straight into an atomic file (core/fileio.c).
 */
#include "../core/fileio.h"
#include "../core/internal.h"
#include "../layers/conv.h"
#include "../layers/detector.h"
#include "../layers/priv.h"
#include "protobuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define OPSET_MIN 11
#define OPSET_MAX 21
#define OPSET_DEFAULT 13

/* ONNX protobuf field numbers (onnx.proto) and enums. */
enum { MODEL_IR_VERSION = 1, MODEL_PRODUCER = 2, MODEL_PRODUCER_VERSION = 3, MODEL_DOC = 6, MODEL_GRAPH = 7,
       MODEL_OPSET = 8, MODEL_METADATA = 14 };
enum { OPSET_DOMAIN = 1, OPSET_VERSION = 2 };
enum { ENTRY_KEY = 1, ENTRY_VALUE = 2 };
enum { GRAPH_NODE = 1, GRAPH_NAME = 2, GRAPH_INIT = 5, GRAPH_INPUT = 11, GRAPH_OUTPUT = 12 };
enum { NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP = 4, NODE_ATTR = 5 };
enum { ATTR_NAME = 1, ATTR_F = 2, ATTR_I = 3, ATTR_S = 4, ATTR_INTS = 8, ATTR_TYPE = 20 };
enum { ATTR_FLOAT = 1, ATTR_INT = 2, ATTR_STRING = 3, ATTR_INTS_TYPE = 7 };
enum { TENSOR_DIMS = 1, TENSOR_TYPE = 2, TENSOR_NAME = 8, TENSOR_RAW = 9 };
enum { ELEM_FLOAT = 1, ELEM_INT64 = 7 };
enum { VALUE_NAME = 1, VALUE_TYPE = 2, TYPE_TENSOR = 1, TTYPE_ELEM = 1, TTYPE_SHAPE = 2, SHAPE_DIM = 1,
       DIM_VALUE = 1, DIM_PARAM = 2 };

/* A tensor name. */
typedef struct { char s[32]; } tn;

typedef struct {
    dn_network *net;
    const dn_onnx_opts *opts;
    int opset;
    dn_pb nodes, inits;    /* GraphProto fields node (1) and initializer (5), in order */
    int layer, k, consts;  /* current layer, its next tensor number; constants made */
    tn *tensors;           /* per layer: the tensor holding its output */
} ox;

static const dn_detector *const detectors[] = {&dn_region_detector, &dn_yolo_detector, &dn_detection_detector};

static const dn_detector *find_detector(const dn_layer *l)
{
    for (size_t i = 0; i < sizeof detectors / sizeof detectors[0]; ++i)
        if (detectors[i]->ops == l->ops) return detectors[i];
    return NULL;
}

static tn fresh(ox *x)
{
    tn t;
    snprintf(t.s, sizeof t.s, "l%d_%d", x->layer, x->k++);
    return t;
}

static tn named(const char *s)
{
    tn t;
    snprintf(t.s, sizeof t.s, "%s", s);
    return t;
}

/* ---- constants (initializers) ---- */

static void tensor_header(ox *x, tn *name, int elem, const int64_t *dims, int ndims)
{
    snprintf(name->s, sizeof name->s, "c%d", x->consts++);
    dn_pb_begin(&x->inits, GRAPH_INIT);
    if (ndims) dn_pb_ints(&x->inits, TENSOR_DIMS, dims, ndims);
    dn_pb_int(&x->inits, TENSOR_TYPE, elem);
    dn_pb_string(&x->inits, TENSOR_NAME, name->s);
}

/* A float32 constant of shape dims[ndims] (n = their product values). */
static tn const_f(ox *x, const float *v, const int64_t *dims, int ndims)
{
    tn t;
    size_t n = 1;
    for (int i = 0; i < ndims; ++i) n *= (size_t)dims[i];
    tensor_header(x, &t, ELEM_FLOAT, dims, ndims);
    dn_pb *b = &x->inits;
    dn_pb_varint(b, (TENSOR_RAW << 3) | 2);
    dn_pb_varint(b, 4 * (uint64_t)n);
    uint8_t buf[4096];
    for (size_t i = 0; i < n;) {
        size_t m = 0;
        for (; i < n && m + 4 <= sizeof buf; ++i, m += 4) {
            uint32_t u;
            memcpy(&u, &v[i], 4);
            buf[m] = (uint8_t)u;
            buf[m + 1] = (uint8_t)(u >> 8);
            buf[m + 2] = (uint8_t)(u >> 16);
            buf[m + 3] = (uint8_t)(u >> 24);
        }
        dn_pb_raw(b, buf, m);
    }
    dn_pb_end(b);
    return t;
}

/* A float32 constant of shape [1] (broadcasts against anything). */
static tn scalar_f(ox *x, float v)
{
    int64_t one = 1;
    return const_f(x, &v, &one, 1);
}

/* A 1-D int64 constant of n values. */
static tn const_i(ox *x, const int64_t *v, int n)
{
    tn t;
    int64_t dim = n;
    tensor_header(x, &t, ELEM_INT64, &dim, 1);
    dn_pb *b = &x->inits;
    dn_pb_varint(b, (TENSOR_RAW << 3) | 2);
    dn_pb_varint(b, 8 * (uint64_t)n);
    for (int i = 0; i < n; ++i) {
        uint8_t le[8];
        for (int k = 0; k < 8; ++k) le[k] = (uint8_t)((uint64_t)v[i] >> (8 * k));
        dn_pb_raw(b, le, 8);
    }
    dn_pb_end(b);
    return t;
}

/* ---- nodes: begin (op, output, inputs), attributes, end ---- */

/* nin input names follow; "" is an omitted optional input. */
static void node_begin(ox *x, const char *op, const tn *out, int nin, ...)
{
    dn_pb *b = &x->nodes;
    dn_pb_begin(b, GRAPH_NODE);
    va_list ap;
    va_start(ap, nin);
    for (int i = 0; i < nin; ++i) dn_pb_string(b, NODE_INPUT, va_arg(ap, const char *));
    va_end(ap);
    dn_pb_string(b, NODE_OUTPUT, out->s);
    dn_pb_string(b, NODE_NAME, out->s);
    dn_pb_string(b, NODE_OP, op);
}

static void attr_i(ox *x, const char *name, int64_t v)
{
    dn_pb *b = &x->nodes;
    dn_pb_begin(b, NODE_ATTR);
    dn_pb_string(b, ATTR_NAME, name);
    dn_pb_int(b, ATTR_I, v);
    dn_pb_int(b, ATTR_TYPE, ATTR_INT);
    dn_pb_end(b);
}

static void attr_f(ox *x, const char *name, float v)
{
    dn_pb *b = &x->nodes;
    dn_pb_begin(b, NODE_ATTR);
    dn_pb_string(b, ATTR_NAME, name);
    dn_pb_float(b, ATTR_F, v);
    dn_pb_int(b, ATTR_TYPE, ATTR_FLOAT);
    dn_pb_end(b);
}

static void attr_s(ox *x, const char *name, const char *v)
{
    dn_pb *b = &x->nodes;
    dn_pb_begin(b, NODE_ATTR);
    dn_pb_string(b, ATTR_NAME, name);
    dn_pb_string(b, ATTR_S, v);
    dn_pb_int(b, ATTR_TYPE, ATTR_STRING);
    dn_pb_end(b);
}

static void attr_ints(ox *x, const char *name, const int64_t *v, int n)
{
    dn_pb *b = &x->nodes;
    dn_pb_begin(b, NODE_ATTR);
    dn_pb_string(b, ATTR_NAME, name);
    dn_pb_ints(b, ATTR_INTS, v, n);
    dn_pb_int(b, ATTR_TYPE, ATTR_INTS_TYPE);
    dn_pb_end(b);
}

static void node_end(ox *x) { dn_pb_end(&x->nodes); }

/* ---- small op helpers: each returns its output's name ---- */

static tn op1(ox *x, const char *op, tn a)
{
    tn t = fresh(x);
    node_begin(x, op, &t, 1, a.s);
    node_end(x);
    return t;
}

static tn op2(ox *x, const char *op, tn a, tn b)
{
    tn t = fresh(x);
    node_begin(x, op, &t, 2, a.s, b.s);
    node_end(x);
    return t;
}

static tn leaky(ox *x, tn a, float slope)
{
    tn t = fresh(x);
    node_begin(x, "LeakyRelu", &t, 1, a.s);
    attr_f(x, "alpha", slope);
    node_end(x);
    return t;
}

static tn reshape(ox *x, tn a, const int64_t *shape, int n)
{
    return op2(x, "Reshape", a, const_i(x, shape, n));
}

static tn reshape4(ox *x, tn a, int64_t b, int64_t c, int64_t h, int64_t w)
{
    int64_t s[4] = {b, c, h, w};
    return reshape(x, a, s, 4);
}

static tn transpose(ox *x, tn a, const int64_t *perm, int n)
{
    tn t = fresh(x);
    node_begin(x, "Transpose", &t, 1, a.s);
    attr_ints(x, "perm", perm, n);
    node_end(x);
    return t;
}

/* a[start:end:step] along the n axes given. */
static tn slice(ox *x, tn a, const int64_t *axes, const int64_t *starts, const int64_t *ends,
                const int64_t *steps, int n)
{
    tn st = const_i(x, starts, n), en = const_i(x, ends, n), ax = const_i(x, axes, n), t = fresh(x);
    if (steps) {
        tn sp = const_i(x, steps, n);
        node_begin(x, "Slice", &t, 5, a.s, st.s, en.s, ax.s, sp.s);
    } else {
        node_begin(x, "Slice", &t, 4, a.s, st.s, en.s, ax.s);
    }
    node_end(x);
    return t;
}

static tn slice1(ox *x, tn a, int64_t axis, int64_t start, int64_t end)
{
    return slice(x, a, &axis, &start, &end, NULL, 1);
}

static tn concat(ox *x, const tn *parts, int n, int64_t axis)
{
    if (n == 1) return parts[0];
    tn t = fresh(x);
    dn_pb *b = &x->nodes;
    dn_pb_begin(b, GRAPH_NODE);
    for (int i = 0; i < n; ++i) dn_pb_string(b, NODE_INPUT, parts[i].s);
    dn_pb_string(b, NODE_OUTPUT, t.s);
    dn_pb_string(b, NODE_NAME, t.s);
    dn_pb_string(b, NODE_OP, "Concat");
    attr_i(x, "axis", axis);
    node_end(x);
    return t;
}

/* Softmax over axis 1 of a [b][k][h][w] tensor. Opsets before 13 flatten
 * the input into 2-D at the axis, so there the classes go last first. */
static tn softmax_axis1(ox *x, tn a)
{
    if (x->opset >= 13) {
        tn t = fresh(x);
        node_begin(x, "Softmax", &t, 1, a.s);
        attr_i(x, "axis", 1);
        node_end(x);
        return t;
    }
    static const int64_t to_last[4] = {0, 2, 3, 1}, back[4] = {0, 3, 1, 2};
    tn u = transpose(x, a, to_last, 4), t = fresh(x);
    node_begin(x, "Softmax", &t, 1, u.s);
    attr_i(x, "axis", 3);
    node_end(x);
    return transpose(x, t, back, 4);
}

/* Softmax over the last axis of a 3-D tensor (the same in every opset). */
static tn softmax_last3(ox *x, tn a)
{
    tn t = fresh(x);
    node_begin(x, "Softmax", &t, 1, a.s);
    attr_i(x, "axis", 2);
    node_end(x);
    return t;
}

/* Zero padding at the end of each of the rank axes (after[rank]). */
static tn pad_end(ox *x, tn a, const int64_t *after, int rank)
{
    int64_t pads[12] = {0};
    for (int i = 0; i < rank; ++i) pads[rank + i] = after[i];
    return op2(x, "Pad", a, const_i(x, pads, 2 * rank));
}

/* Darknet's activations (core/activations.c) as ONNX ops. */
static tn activation(ox *x, tn a, dn_activation act)
{
    switch (act) {
    case DN_ACT_LINEAR: return a;
    case DN_ACT_LEAKY: return leaky(x, a, .1f);
    case DN_ACT_RELIE: return leaky(x, a, .01f);
    case DN_ACT_RELU: return op1(x, "Relu", a);
    case DN_ACT_LOGISTIC: return op1(x, "Sigmoid", a);
    case DN_ACT_TANH: return op1(x, "Tanh", a);
    case DN_ACT_RAMP: /* x*(x>0) + .1x */
        return op2(x, "Add", op1(x, "Relu", a), op2(x, "Mul", a, scalar_f(x, .1f)));
    case DN_ACT_SWISH: return op2(x, "Mul", a, op1(x, "Sigmoid", a));
    case DN_ACT_MISH: return op2(x, "Mul", a, op1(x, "Tanh", op1(x, "Softplus", a)));
    default: return a;
    }
}

static int activation_exports(dn_activation act) { return (unsigned)act < DN_ACT_COUNT; }

/* ---- layers: each adds its nodes; in = its input, *out = its output ---- */

typedef dn_status (*emit_fn)(ox *x, dn_layer *l, tn in, tn *out);

static dn_status refuse_activation(const dn_layer *l)
{
    return dn_error(DN_ERR_UNSUPPORTED, "layer %d [%s]: activation %d has no ONNX form", l->index,
                    l->ops->section, (int)l->act);
}

/* Per-filter batch norm of inference as out = conv * scale[f] + shift[f]
 * (conv_float.c's fold_epilogue), or the bias. */
static void bn_fold(const dn_layer *l, int n, int bn, float *scale, float *shift)
{
    const float *bias = dn_layer_param((dn_layer *)l, "biases")->data;
    for (int f = 0; f < n; ++f) {
        scale[f] = 1;
        shift[f] = bias[f];
    }
    if (!bn) return;
    const float *sc = dn_layer_param((dn_layer *)l, "scales")->data;
    const float *m = dn_layer_param((dn_layer *)l, "rolling_mean")->data;
    const float *v = dn_layer_param((dn_layer *)l, "rolling_variance")->data;
    for (int f = 0; f < n; ++f) {
        scale[f] = sc[f] / sqrtf(v[f] + .000001f);
        shift[f] = bias[f] - m[f] * scale[f];
    }
}

static dn_status emit_conv(ox *x, dn_layer *l, tn in, tn *out)
{
    dn_conv *p = l->priv;
    if (l->ternary && x->net->ternary_kernel == DN_TERNARY_INT8)
        return dn_error(DN_ERR_UNSUPPORTED,
                        "layer %d [convolutional]: a ternary layer on the int8 kernel (activations quantised per image) "
                        "has no ONNX form here; set the network's ternary kernel to off or float to export it",
                        l->index);
    if (!activation_exports(l->act)) return refuse_activation(l);
    const float *w = dn_conv_weights(l, x->net);
    if (!w) return DN_ERR_NOMEM;
    const dn_param *wp = dn_layer_param(l, "weights");
    int nf = p->filters;
    size_t per = wp->n / (size_t)nf;
    float *scale = malloc(sizeof(float) * (size_t)nf), *shift = malloc(sizeof(float) * (size_t)nf);
    float *folded = l->ternary ? NULL : malloc(sizeof(float) * wp->n);
    if (!scale || !shift || (!l->ternary && !folded)) {
        free(scale); free(shift); free(folded);
        return dn_error(DN_ERR_NOMEM, "layer %d [convolutional]: out of memory for the export", l->index);
    }
    bn_fold(l, nf, p->batch_normalize, scale, shift);
    int64_t wdims[4] = {nf, l->c / p->groups, p->size, p->size}, bdim = nf, cdims[4] = {1, nf, 1, 1};
    tn wt, bt;
    int affine_after = l->ternary && p->batch_normalize;
    if (l->ternary) {
        wt = const_f(x, w, wdims, 4); /* the TWN values themselves */
    } else {
        for (int f = 0; f < nf; ++f)
            for (size_t k = 0; k < per; ++k) folded[f * per + k] = w[f * per + k] * scale[f];
        wt = const_f(x, folded, wdims, 4);
    }
    tn y = fresh(x);
    if (affine_after) {
        node_begin(x, "Conv", &y, 2, in.s, wt.s);
    } else {
        bt = const_f(x, shift, &bdim, 1);
        node_begin(x, "Conv", &y, 3, in.s, wt.s, bt.s);
    }
    int64_t k2[2] = {p->size, p->size}, s2[2] = {p->stride, p->stride}, d2[2] = {1, 1};
    int64_t pads[4] = {p->pad, p->pad, p->pad, p->pad};
    attr_ints(x, "kernel_shape", k2, 2);
    attr_ints(x, "strides", s2, 2);
    attr_ints(x, "pads", pads, 4);
    attr_ints(x, "dilations", d2, 2);
    attr_i(x, "group", p->groups);
    node_end(x);
    if (affine_after) {
        y = op2(x, "Mul", y, const_f(x, scale, cdims, 4));
        y = op2(x, "Add", y, const_f(x, shift, cdims, 4));
    }
    free(scale); free(shift); free(folded);
    *out = activation(x, y, l->act);
    return DN_OK;
}

/* Darknet's maxpool: window of output (y, x) at (y*stride - pad/2, x*stride - pad/2),
 * taps outside the input ignored: ONNX's MaxPool with pads pad/2 before and
 * pad - pad/2 after (padding never wins a max). */
static dn_status emit_maxpool(ox *x, dn_layer *l, tn in, tn *out)
{
    const dn_maxpool *p = l->priv;
    int64_t k2[2] = {p->size, p->size}, s2[2] = {p->stride, p->stride};
    int64_t b = p->pad / 2, e = p->pad - p->pad / 2, pads[4] = {b, b, e, e};
    *out = fresh(x);
    node_begin(x, "MaxPool", out, 1, in.s);
    attr_ints(x, "kernel_shape", k2, 2);
    attr_ints(x, "strides", s2, 2);
    attr_ints(x, "pads", pads, 4);
    node_end(x);
    return DN_OK;
}

static dn_status emit_avgpool(ox *x, dn_layer *l, tn in, tn *out)
{
    (void)l;
    *out = op1(x, "GlobalAveragePool", in);
    return DN_OK;
}

static dn_status emit_route(ox *x, dn_layer *l, tn in, tn *out)
{
    (void)in;
    const dn_route *p = l->priv;
    tn *parts = malloc(sizeof(tn) * (size_t)p->n);
    if (!parts) return dn_error(DN_ERR_NOMEM, "layer %d [route]: out of memory", l->index);
    for (int i = 0; i < p->n; ++i) {
        const dn_layer *r = &x->net->layers[p->layers[i]];
        parts[i] = x->tensors[p->layers[i]];
        if (p->groups > 1) {
            int part = r->out_c / p->groups;
            parts[i] = slice1(x, parts[i], 1, (int64_t)part * p->group_id, (int64_t)part * (p->group_id + 1));
        }
    }
    *out = concat(x, parts, p->n, 1);
    free(parts);
    return DN_OK;
}

/* Darknet's shortcut_cpu (shortcut.c): out = alpha*in + beta*from on the
 * cells where they meet (from subsampled by stride, placed every sample
 * cells, min channels/rows/columns), in elsewhere; then the activation. */
static dn_status emit_shortcut(ox *x, dn_layer *l, tn in, tn *out)
{
    const dn_shortcut *p = l->priv;
    if (!activation_exports(l->act)) return refuse_activation(l);
    const dn_layer *f = &x->net->layers[p->from];
    tn add = x->tensors[p->from], y = in;
    int64_t B = l->batch;
    if (f->out_c == l->c && f->out_h == l->h && f->out_w == l->w) {
        if (p->alpha != 1) y = op2(x, "Mul", y, scalar_f(x, p->alpha));
        if (p->beta != 1) add = op2(x, "Mul", add, scalar_f(x, p->beta));
        *out = activation(x, op2(x, "Add", y, add), l->act);
        return DN_OK;
    }
    int w1 = f->out_w, h1 = f->out_h, c1 = f->out_c, w2 = l->w, h2 = l->h, c2 = l->c;
    int stride = w1 > w2 ? w1 / w2 : 1, sample = w2 > w1 ? w2 / w1 : 1;
    int minw = w1 < w2 ? w1 : w2, minh = h1 < h2 ? h1 : h2, minc = c1 < c2 ? c1 : c2;
    if (minc != c1 || minh * stride != h1 || minw * stride != w1 || stride > 1) {
        int64_t axes[3] = {1, 2, 3}, st[3] = {0, 0, 0}, en[3] = {minc, (int64_t)minh * stride, (int64_t)minw * stride};
        int64_t steps[3] = {1, stride, stride};
        add = slice(x, add, axes, st, en, steps, 3);
    }
    if (sample > 1) { /* from cell (j, i) goes to (j*sample, i*sample): zeros between */
        int64_t s6[6] = {B, minc, minh, 1, minw, 1}, after[6] = {0, 0, 0, sample - 1, 0, sample - 1};
        add = pad_end(x, reshape(x, add, s6, 6), after, 6);
        add = reshape4(x, add, B, minc, (int64_t)minh * sample, (int64_t)minw * sample);
    }
    int64_t after[4] = {0, c2 - minc, h2 - (int64_t)minh * sample, w2 - (int64_t)minw * sample};
    if (after[1] || after[2] || after[3]) add = pad_end(x, add, after, 4);
    if (p->beta != 1) add = op2(x, "Mul", add, scalar_f(x, p->beta));
    if (p->alpha != 1) { /* alpha on the overlap, 1 elsewhere */
        size_t n = (size_t)c2 * h2 * w2;
        float *m = malloc(sizeof(float) * n);
        if (!m) return dn_error(DN_ERR_NOMEM, "layer %d [shortcut]: out of memory", l->index);
        for (size_t i = 0; i < n; ++i) m[i] = 1;
        for (int k = 0; k < minc; ++k)
            for (int j = 0; j < minh; ++j)
                for (int i = 0; i < minw; ++i)
                    m[(size_t)i * sample + (size_t)w2 * ((size_t)j * sample + (size_t)h2 * k)] = p->alpha;
        int64_t dims[4] = {1, c2, h2, w2};
        y = op2(x, "Mul", y, const_f(x, m, dims, 4));
        free(m);
    }
    *out = activation(x, op2(x, "Add", y, add), l->act);
    return DN_OK;
}

static dn_status emit_upsample(ox *x, dn_layer *l, tn in, tn *out)
{
    const dn_upsample *p = l->priv;
    float s = (float)p->stride;
    tn y;
    if (p->reverse) { /* the sum of each s x s block: their mean times s*s */
        int64_t k2[2] = {p->stride, p->stride};
        y = fresh(x);
        node_begin(x, "AveragePool", &y, 1, in.s);
        attr_ints(x, "kernel_shape", k2, 2);
        attr_ints(x, "strides", k2, 2);
        node_end(x);
        y = op2(x, "Mul", y, scalar_f(x, s * s * p->scale));
    } else { /* nearest: out[y][x] = in[y/s][x/s] */
        float scales[4] = {1, 1, s, s};
        int64_t four = 4, none = 0;
        tn sc = const_f(x, scales, &four, 1);
        y = fresh(x);
        if (x->opset < 13) {
            tn roi = const_f(x, NULL, &none, 1);
            node_begin(x, "Resize", &y, 3, in.s, roi.s, sc.s);
        } else {
            node_begin(x, "Resize", &y, 3, in.s, "", sc.s);
        }
        attr_s(x, "mode", "nearest");
        attr_s(x, "coordinate_transformation_mode", "asymmetric");
        attr_s(x, "nearest_mode", "floor");
        node_end(x);
        if (p->scale != 1) y = op2(x, "Mul", y, scalar_f(x, p->scale));
    }
    *out = y;
    return DN_OK;
}

/* Darknet's reorg_cpu (reorg.c) is a permutation of each image: with
 * s = stride and c2 = c/(s*s), its flat input read as [c2][h][s][w][s]
 * (indexes c2, j, dy, i, dx) lands in the output as [dy][dx][c2][h][w];
 * reverse is the other way round. */
static dn_status emit_reorg(ox *x, dn_layer *l, tn in, tn *out)
{
    const dn_reorg *p = l->priv;
    int64_t s = p->stride, B = l->batch, c2 = l->c / (s * s), h = l->h, w = l->w;
    int64_t fwd[6] = {B, c2, h, s, w, s}, rev[6] = {B, s, s, c2, h, w};
    static const int64_t perm_fwd[6] = {0, 3, 5, 1, 2, 4}, perm_rev[6] = {0, 3, 4, 1, 5, 2};
    tn y = reshape(x, in, p->reverse ? rev : fwd, 6);
    y = transpose(x, y, p->reverse ? perm_rev : perm_fwd, 6);
    *out = reshape4(x, y, B, l->out_c, l->out_h, l->out_w);
    return DN_OK;
}

static dn_status emit_connected(ox *x, dn_layer *l, tn in, tn *out)
{
    const dn_connected *p = l->priv;
    if (!activation_exports(l->act)) return refuse_activation(l);
    int n = p->outputs;
    const dn_param *wp = dn_layer_param(l, "weights");
    float *scale = malloc(sizeof(float) * (size_t)n), *shift = malloc(sizeof(float) * (size_t)n);
    float *folded = malloc(sizeof(float) * wp->n);
    if (!scale || !shift || !folded) {
        free(scale); free(shift); free(folded);
        return dn_error(DN_ERR_NOMEM, "layer %d [connected]: out of memory for the export", l->index);
    }
    bn_fold(l, n, p->batch_normalize, scale, shift);
    for (int f = 0; f < n; ++f)
        for (size_t k = 0; k < p->inputs; ++k) folded[f * p->inputs + k] = wp->data[f * p->inputs + k] * scale[f];
    int64_t wdims[2] = {n, (int64_t)p->inputs}, bdim = n;
    tn wt = const_f(x, folded, wdims, 2), bt = const_f(x, shift, &bdim, 1);
    free(scale); free(shift); free(folded);
    tn flat = fresh(x);
    node_begin(x, "Flatten", &flat, 1, in.s);
    attr_i(x, "axis", 1);
    node_end(x);
    tn y = fresh(x);
    node_begin(x, "Gemm", &y, 3, flat.s, wt.s, bt.s);
    attr_i(x, "transB", 1);
    node_end(x);
    y = activation(x, y, l->act);
    *out = reshape4(x, y, l->batch, l->out_c, l->out_h, l->out_w);
    return DN_OK;
}

static dn_status emit_softmax(ox *x, dn_layer *l, tn in, tn *out)
{
    const dn_softmax *p = l->priv;
    int64_t s3[3] = {l->batch, p->groups, (int64_t)(l->inputs / (size_t)p->groups)};
    tn y = reshape(x, in, s3, 3);
    if (p->temperature != 1) y = op2(x, "Div", y, scalar_f(x, p->temperature));
    y = softmax_last3(x, y);
    *out = reshape4(x, y, l->batch, l->out_c, l->out_h, l->out_w);
    return DN_OK;
}

static dn_status emit_dropout(ox *x, dn_layer *l, tn in, tn *out)
{
    (void)x; (void)l;
    *out = in; /* inference: identity */
    return DN_OK;
}

/* [yolo] and [region]: per channel (anchor a, entry e = channel % entries)
 * what the forward does; channels in runs of the same treatment are
 * sliced out, treated and concatenated back. */
enum { CH_KEEP, CH_LOGISTIC, CH_SOFTMAX };

static int head_entries(const dn_head *h)
{
    return h->kind == DN_HEAD_YOLO ? h->classes + 5 : h->coords + h->classes + 1;
}

/* The treatment of entry e: yolo.c's yolo_forward_item, region.c's region_forward. */
static int entry_kind(const dn_head *h, int e)
{
    if (h->kind == DN_HEAD_YOLO) return (e == 2 || e == 3 || h->new_coords) ? CH_KEEP : CH_LOGISTIC;
    if (e < 2) return CH_LOGISTIC;
    if (e < h->coords) return CH_KEEP;
    if (e == h->coords && !h->background) return CH_LOGISTIC;
    if (e == h->coords) return h->softmax ? CH_SOFTMAX : CH_KEEP;
    return h->softmax ? CH_SOFTMAX : CH_LOGISTIC;
}

static int entry_affine(const dn_head *h, int e)
{
    return h->kind == DN_HEAD_YOLO && e < 2 && h->scale_x_y != 1;
}

static dn_status emit_head_channels(ox *x, dn_layer *l, const dn_head *h, tn in, tn *out)
{
    int entries = head_entries(h), nc = l->c, nparts = 0;
    tn *parts = malloc(sizeof(tn) * (size_t)nc);
    if (!parts) return dn_error(DN_ERR_NOMEM, "layer %d [%s]: out of memory", l->index, l->ops->section);
    for (int c0 = 0, c1; c0 < nc; c0 = c1) {
        int kind = entry_kind(h, c0 % entries), affine = entry_affine(h, c0 % entries);
        /* a run of equal treatment; a softmax run ends with its anchor */
        for (c1 = c0 + 1; c1 < nc; ++c1) {
            int e = c1 % entries;
            if (entry_kind(h, e) != kind || entry_affine(h, e) != affine || (kind == CH_SOFTMAX && e == 0)) break;
        }
        tn y = (c0 == 0 && c1 == nc) ? in : slice1(x, in, 1, c0, c1);
        if (kind == CH_LOGISTIC) y = op1(x, "Sigmoid", y);
        if (kind == CH_SOFTMAX) y = softmax_axis1(x, y);
        if (affine) {
            y = op2(x, "Mul", y, scalar_f(x, h->scale_x_y));
            y = op2(x, "Add", y, scalar_f(x, -.5f * (h->scale_x_y - 1)));
        }
        parts[nparts++] = y;
    }
    *out = concat(x, parts, nparts, 1);
    free(parts);
    return DN_OK;
}

/* [detection]: the flat output, with a softmax over each cell's classes
 * (the first side*side*classes values) when softmax=1. */
static dn_status emit_detection_head(ox *x, dn_layer *l, const dn_head *h, tn in, tn *out)
{
    if (!h->softmax) {
        *out = in;
        return DN_OK;
    }
    int64_t B = l->batch, n = (int64_t)l->inputs, cells = (int64_t)h->side * h->side, cls = cells * h->classes;
    int64_t flat[2] = {B, n}, s3[3] = {B, cells, h->classes}, back[2] = {B, cls};
    tn f = reshape(x, in, flat, 2);
    tn parts[2];
    parts[0] = reshape(x, softmax_last3(x, reshape(x, slice1(x, f, 1, 0, cls), s3, 3)), back, 2);
    int np = 1;
    if (n > cls) parts[np++] = slice1(x, f, 1, cls, n);
    *out = reshape4(x, concat(x, parts, np, 1), B, l->out_c, l->out_h, l->out_w);
    return DN_OK;
}

static dn_status emit_detector(ox *x, dn_layer *l, tn in, tn *out)
{
    const dn_detector *d = find_detector(l);
    dn_head h;
    d->head(l, &h);
    return h.kind == DN_HEAD_DETECTION ? emit_detection_head(x, l, &h, in, out) : emit_head_channels(x, l, &h, in, out);
}

static const struct {
    const char *section;
    emit_fn emit;
} emitters[] = {
    {"convolutional", emit_conv}, {"maxpool", emit_maxpool},     {"avgpool", emit_avgpool},
    {"route", emit_route},        {"shortcut", emit_shortcut},   {"upsample", emit_upsample},
    {"reorg", emit_reorg},        {"connected", emit_connected}, {"softmax", emit_softmax},
    {"dropout", emit_dropout},    {"yolo", emit_detector},       {"region", emit_detector},
    {"detection", emit_detector},
};

static emit_fn find_emitter(const dn_layer *l)
{
    for (size_t i = 0; i < sizeof emitters / sizeof emitters[0]; ++i)
        if (!strcmp(emitters[i].section, l->ops->section)) return emitters[i].emit;
    return NULL;
}

/* ---- the model ---- */

/* ValueInfoProto of a float32 tensor [b][c][h][w] as GraphProto field `field`. */
static void value_info(dn_pb *b, int field, const char *name, const int64_t *dims, int ndims)
{
    dn_pb_begin(b, field);
    dn_pb_string(b, VALUE_NAME, name);
    dn_pb_begin(b, VALUE_TYPE);
    dn_pb_begin(b, TYPE_TENSOR);
    dn_pb_int(b, TTYPE_ELEM, ELEM_FLOAT);
    dn_pb_begin(b, TTYPE_SHAPE);
    for (int i = 0; i < ndims; ++i) { /* a negative dim: not known before a run ("n") */
        dn_pb_begin(b, SHAPE_DIM);
        if (dims[i] < 0) dn_pb_string(b, DIM_PARAM, "n");
        else dn_pb_int(b, DIM_VALUE, dims[i]);
        dn_pb_end(b);
    }
    dn_pb_end(b);
    dn_pb_end(b);
    dn_pb_end(b);
    dn_pb_end(b);
}

static void metadata(dn_pb *b, const char *key, const char *value)
{
    dn_pb_begin(b, MODEL_METADATA);
    dn_pb_string(b, ENTRY_KEY, key);
    dn_pb_string(b, ENTRY_VALUE, value);
    dn_pb_end(b);
}

/* "v0,v1,..." of n floats or ints into buf (cap bytes; cut short when full). */
static void join_floats(char *buf, size_t cap, const float *v, int n)
{
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < n && len + 1 < cap; ++i)
        len += (size_t)snprintf(buf + len, cap - len, "%s%g", i ? "," : "", (double)v[i]);
}

static void join_ints(char *buf, size_t cap, const int *v, int n)
{
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < n && len + 1 < cap; ++i) len += (size_t)snprintf(buf + len, cap - len, "%s%d", i ? "," : "", v[i]);
}

/* What a decoder needs of a detector output, as one metadata line. */
static void head_metadata(dn_pb *b, const char *name, const dn_layer *l)
{
    dn_head h;
    find_detector(l)->head(l, &h);
    char anchors[2048] = "", mask[512] = "", value[3072];
    if (h.anchors) join_floats(anchors, sizeof anchors, h.anchors, 2 * h.total);
    if (h.mask) join_ints(mask, sizeof mask, h.mask, h.n);
    snprintf(value, sizeof value,
             "type=%s classes=%d num=%d coords=%d softmax=%d background=%d scale_x_y=%g new_coords=%d side=%d "
             "sqrt=%d mask=%s anchors=%s",
             l->ops->section, h.classes, h.n, h.coords, h.softmax, h.background, (double)h.scale_x_y, h.new_coords,
             h.side, h.sqrt, mask, anchors);
    metadata(b, name, value);
}

/* ---- decode=1: boxes, objectness and scores of every detector layer ----
 * Per head, rows in Darknet's decoding order (yolo: cell, then anchor;
 * region: anchor, then cell; detection: cell, then box), heads in layer
 * order: boxes [batch][rows][4] (centre x, y, width, height relative to the
 * network input, the layers' decode of detector.h), objectness
 * [batch][rows] and scores [batch][rows][classes] = objectness * class
 * probability, neither thresholded. */

typedef struct {
    tn boxes, obj, scores;
    int64_t rows;
} decoded;

/* A constant [1][rows][1]. */
static tn per_row(ox *x, const float *v, int64_t rows)
{
    int64_t dims[3] = {1, rows, 1};
    return const_f(x, v, dims, 3);
}

/* [b][rows][entries] -> entries [e0, e1) as [b][rows][e1-e0]. */
static tn cols(ox *x, tn d, int64_t e0, int64_t e1) { return slice1(x, d, 2, e0, e1); }

static dn_status decode_grid_head(ox *x, const dn_layer *l, const dn_head *h, decoded *out)
{
    int64_t B = l->batch, n = h->n, E = h->kind == DN_HEAD_YOLO ? h->classes + 5 : h->coords + h->classes + 1;
    int64_t W = l->w, H = l->h, hw = W * H, rows = n * hw;
    int yolo = h->kind == DN_HEAD_YOLO;
    int64_t s4[4] = {B, n, E, hw}, s3[3] = {B, rows, E};
    static const int64_t cell_anchor[4] = {0, 3, 1, 2}, anchor_cell[4] = {0, 1, 3, 2};
    tn d = reshape(x, transpose(x, reshape(x, x->tensors[l->index], s4, 4), yolo ? cell_anchor : anchor_cell, 4),
                   s3, 3);
    float *col = malloc(sizeof(float) * (size_t)rows * 4);
    if (!col) return dn_error(DN_ERR_NOMEM, "layer %d [%s]: out of memory", l->index, l->ops->section);
    float *row = col + rows, *aw = row + rows, *ah = aw + rows;
    for (int64_t r = 0; r < rows; ++r) {
        int64_t loc = yolo ? r / n : r % hw, a = yolo ? r % n : r / hw;
        col[r] = (float)(loc % W);
        row[r] = (float)(loc / W);
        if (yolo) { /* exp(tw) * anchor / netw (new_coords: tw^2 * 4 * anchor / netw) */
            float k = h->new_coords ? 4.f : 1.f;
            aw[r] = (float)(k * h->anchors[2 * h->mask[a]] / x->net->w);
            ah[r] = (float)(k * h->anchors[2 * h->mask[a] + 1] / x->net->h);
        } else { /* exp(tw) * anchor / w, anchors in grid cells */
            aw[r] = (float)(h->anchors[2 * a] / W);
            ah[r] = (float)(h->anchors[2 * a + 1] / H);
        }
    }
    tn bx = op2(x, "Div", op2(x, "Add", per_row(x, col, rows), cols(x, d, 0, 1)), scalar_f(x, (float)W));
    tn by = op2(x, "Div", op2(x, "Add", per_row(x, row, rows), cols(x, d, 1, 2)), scalar_f(x, (float)H));
    tn tw = cols(x, d, 2, 3), th = cols(x, d, 3, 4);
    tn fw = yolo && h->new_coords ? op2(x, "Mul", tw, tw) : op1(x, "Exp", tw);
    tn fh = yolo && h->new_coords ? op2(x, "Mul", th, th) : op1(x, "Exp", th);
    tn bw = op2(x, "Mul", fw, per_row(x, aw, rows)), bh = op2(x, "Mul", fh, per_row(x, ah, rows));
    free(col);
    tn parts[4] = {bx, by, bw, bh};
    out->boxes = concat(x, parts, 4, 2);
    int64_t e_obj = yolo ? 4 : h->coords;
    tn cls = cols(x, d, e_obj + 1, e_obj + 1 + h->classes);
    if (!yolo && h->background) { /* no objectness: the scale is 1 */
        float *ones = malloc(sizeof(float) * (size_t)(B * rows));
        if (!ones) return dn_error(DN_ERR_NOMEM, "layer %d [region]: out of memory", l->index);
        for (int64_t r = 0; r < B * rows; ++r) ones[r] = 1;
        int64_t dims[3] = {B, rows, 1};
        out->obj = const_f(x, ones, dims, 3);
        free(ones);
        out->scores = cls;
    } else {
        out->obj = cols(x, d, e_obj, e_obj + 1);
        out->scores = op2(x, "Mul", out->obj, cls);
    }
    out->rows = rows;
    return DN_OK;
}

static dn_status decode_detection_head(ox *x, const dn_layer *l, const dn_head *h, decoded *out)
{
    int64_t B = l->batch, cells = (int64_t)h->side * h->side, n = h->n, C = h->classes, rows = cells * n;
    int64_t flat[2] = {B, (int64_t)l->inputs}, s_cls[4] = {B, cells, 1, C}, s_conf[4] = {B, cells, n, 1};
    int64_t s_box[3] = {B, rows, 4}, s_rows[3] = {B, rows, 1}, s_scores[3] = {B, rows, C};
    tn f = reshape(x, x->tensors[l->index], flat, 2);
    tn cls = reshape(x, slice1(x, f, 1, 0, cells * C), s_cls, 4);
    tn conf = reshape(x, slice1(x, f, 1, cells * C, cells * (C + n)), s_conf, 4);
    tn box = reshape(x, slice1(x, f, 1, cells * (C + n), cells * (C + n) + rows * 4), s_box, 3);
    out->scores = reshape(x, op2(x, "Mul", conf, cls), s_scores, 3);
    out->obj = reshape(x, conf, s_rows, 3);
    float *col = malloc(sizeof(float) * (size_t)rows * 2);
    if (!col) return dn_error(DN_ERR_NOMEM, "layer %d [detection]: out of memory", l->index);
    float *row = col + rows;
    for (int64_t r = 0; r < rows; ++r) {
        col[r] = (float)(r / n % h->side);
        row[r] = (float)(r / n / h->side);
    }
    tn side = scalar_f(x, (float)h->side);
    tn bx = op2(x, "Div", op2(x, "Add", cols(x, box, 0, 1), per_row(x, col, rows)), side);
    tn by = op2(x, "Div", op2(x, "Add", cols(x, box, 1, 2), per_row(x, row, rows)), side);
    free(col);
    tn bw = cols(x, box, 2, 3), bh = cols(x, box, 3, 4);
    if (h->sqrt) {
        bw = op2(x, "Mul", bw, bw);
        bh = op2(x, "Mul", bh, bh);
    }
    tn parts[4] = {bx, by, bw, bh};
    out->boxes = concat(x, parts, 4, 2);
    out->rows = rows;
    return DN_OK;
}

/* The outputs boxes, objectness and scores (ValueInfos into io). */
/* nms > 0: "detections" [n][7] = batch, class, score, centre x, y, width,
 * height (the boxes' frame) of ONNX's NonMaxSuppression per image and
 * class (IoU > nms suppresses, rows with a score > thresh, at most
 * max_per_class per class and image), from the decoded boxes and scores. */
static void add_nms(ox *x, dn_pb *io, tn boxes, tn scores)
{
    const dn_onnx_opts *o = x->opts;
    int64_t perm[3] = {0, 2, 1}, keep = o->max_per_class > 0 ? o->max_per_class : 100;
    tn st = transpose(x, scores, perm, 3); /* batch x classes x rows */
    tn sel = fresh(x);                     /* n x 3: batch, class, row */
    node_begin(x, "NonMaxSuppression", &sel, 5, boxes.s, st.s, const_i(x, &keep, 1).s, scalar_f(x, o->nms).s,
               scalar_f(x, o->thresh).s);
    attr_i(x, "center_point_box", 1);
    node_end(x);
    tn b = slice1(x, sel, 1, 0, 1), c = slice1(x, sel, 1, 1, 2), r = slice1(x, sel, 1, 2, 3);
    tn br[2] = {b, r}, brc[3] = {b, r, c};
    tn box = op2(x, "GatherND", boxes, concat(x, br, 2, 1));
    tn score = op2(x, "GatherND", scores, concat(x, brc, 3, 1));
    int64_t col[2] = {-1, 1};
    tn bf = fresh(x), cf = fresh(x);
    node_begin(x, "Cast", &bf, 1, b.s);
    attr_i(x, "to", ELEM_FLOAT);
    node_end(x);
    node_begin(x, "Cast", &cf, 1, c.s);
    attr_i(x, "to", ELEM_FLOAT);
    node_end(x);
    tn parts[4] = {bf, cf, reshape(x, score, col, 2), box};
    tn det = concat(x, parts, 4, 1), out = named("detections");
    node_begin(x, "Identity", &out, 1, det.s);
    node_end(x);
    int64_t dims[2] = {-1, 7};
    value_info(io, GRAPH_OUTPUT, "detections", dims, 2);
}

static dn_status add_decode(ox *x, dn_pb *io)
{
    dn_network *net = x->net;
    int nheads = 0, classes = -1;
    for (int i = 0; i < net->n; ++i) nheads += net->layers[i].is_detector;
    if (!nheads) return dn_error(DN_ERR_VALUE, "export onnx: decode needs a [yolo], [region] or [detection] layer");
    tn *parts = malloc(sizeof(tn) * 3 * (size_t)nheads);
    if (!parts) return dn_error(DN_ERR_NOMEM, "export onnx: out of memory");
    int k = 0;
    int64_t rows = 0;
    dn_status st = DN_OK;
    for (int i = 0; i < net->n && st == DN_OK; ++i) {
        const dn_layer *l = &net->layers[i];
        if (!l->is_detector) continue;
        dn_head h;
        find_detector(l)->head(l, &h);
        if (classes >= 0 && h.classes != classes) {
            st = dn_error(DN_ERR_VALUE, "layer %d [%s]: classes=%d but an earlier detector layer has %d; "
                          "decode needs one class list", i, l->ops->section, h.classes, classes);
            break;
        }
        classes = h.classes;
        x->layer = i;
        x->k = 1000; /* after the layer's own tensors */
        decoded d = {.rows = 0};
        st = h.kind == DN_HEAD_DETECTION ? decode_detection_head(x, l, &h, &d) : decode_grid_head(x, l, &h, &d);
        parts[k] = d.boxes;
        parts[nheads + k] = d.obj;
        parts[2 * nheads + k] = d.scores;
        rows += d.rows;
        ++k;
    }
    if (st == DN_OK) {
        x->layer = net->n;
        x->k = 0;
        tn boxes = named("boxes"), obj = named("objectness"), scores = named("scores");
        tn b = concat(x, parts, nheads, 1), o = concat(x, parts + nheads, nheads, 1);
        tn s = concat(x, parts + 2 * nheads, nheads, 1);
        int64_t B = net->batch, s2[2] = {B, rows};
        node_begin(x, "Identity", &boxes, 1, b.s);
        node_end(x);
        node_begin(x, "Reshape", &obj, 2, o.s, const_i(x, s2, 2).s);
        node_end(x);
        node_begin(x, "Identity", &scores, 1, s.s);
        node_end(x);
        int64_t db[3] = {B, rows, 4}, ds[3] = {B, rows, classes};
        value_info(io, GRAPH_OUTPUT, "boxes", db, 3);
        value_info(io, GRAPH_OUTPUT, "objectness", s2, 2);
        value_info(io, GRAPH_OUTPUT, "scores", ds, 3);
        if (x->opts->nms > 0) add_nms(x, io, boxes, scores);
    }
    free(parts);
    return st;
}

static int ir_version(int opset)
{
    return opset <= 11 ? 6 : opset <= 14 ? 7 : opset <= 18 ? 8 : opset <= 20 ? 9 : 10;
}

void dn_onnx_opts_default(dn_onnx_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->opset = OPSET_DEFAULT;
    o->thresh = .25f;
    o->max_per_class = 100;
}

/* The graph's nodes and initializers, layer by layer. */
static dn_status build_graph(ox *x)
{
    dn_network *net = x->net;
    tn prev = named("input");
    for (int i = 0; i < net->n; ++i) {
        dn_layer *l = &net->layers[i];
        emit_fn emit = find_emitter(l);
        if (!emit)
            return dn_error(DN_ERR_UNSUPPORTED, "layer %d [%s]: this layer type has no ONNX export", i,
                            l->ops->section);
        x->layer = i;
        x->k = 0;
        TRY(emit(x, l, prev, &x->tensors[i]));
        if (x->nodes.failed || x->inits.failed)
            return dn_error(DN_ERR_NOMEM, "layer %d [%s]: out of memory building the ONNX graph", i, l->ops->section);
        prev = x->tensors[i];
    }
    return DN_OK;
}

/* Outputs: an Identity per output onto its name; their ValueInfos into io
 * and their metadata into head. */
static void add_outputs(ox *x, dn_pb *io, dn_pb *head)
{
    dn_network *net = x->net;
    int any = 0;
    for (int i = 0; i < net->n; ++i) any |= net->layers[i].is_detector;
    for (int i = 0; i < net->n; ++i) {
        const dn_layer *l = &net->layers[i];
        if (any ? !l->is_detector : i != net->n - 1) continue;
        tn name;
        if (any) snprintf(name.s, sizeof name.s, "%s_%d", l->ops->section, i);
        else name = named("output");
        x->layer = i;
        node_begin(x, "Identity", &name, 1, x->tensors[i].s);
        node_end(x);
        int64_t dims[4] = {net->batch, l->out_c, l->out_h, l->out_w};
        value_info(io, GRAPH_OUTPUT, name.s, dims, 4);
        if (any) head_metadata(head, name.s, l);
    }
}

dn_status dn_network_export_onnx(dn_network *net, const char *path, const dn_onnx_opts *opts)
{
    dn_onnx_opts def;
    dn_onnx_opts_default(&def);
    if (!opts) opts = &def;
    if (!net || !path || !*path) return dn_error(DN_ERR_VALUE, "export onnx: network or path missing");
    int opset = opts->opset ? opts->opset : OPSET_DEFAULT;
    if (opset < OPSET_MIN || opset > OPSET_MAX)
        return dn_error(DN_ERR_VALUE, "export onnx: opset %d is not supported (%d to %d)", opset, OPSET_MIN,
                        OPSET_MAX);
    if (opts->nms != 0 && !(opts->nms > 0 && opts->nms <= 1))
        return dn_error(DN_ERR_VALUE, "export onnx: nms (an IoU) must be in (0, 1], got %g", (double)opts->nms);
    if (opts->nms > 0 && !opts->decode)
        return dn_error(DN_ERR_VALUE, "export onnx: nms needs decode (the boxes and scores it selects from)");
    if (opts->nms > 0 && (!(opts->thresh >= 0 && opts->thresh <= 1) || opts->max_per_class < 1))
        return dn_error(DN_ERR_VALUE, "export onnx: thresh must be in [0, 1] and max_per_class at least 1 "
                        "(got %g and %d)", (double)opts->thresh, opts->max_per_class);
    dn_device_params_to_host(net);
    ox x = {.net = net, .opts = opts, .opset = opset};
    x.tensors = dn_calloc((size_t)net->n, sizeof(tn));
    if (!x.tensors) return DN_ERR_NOMEM;
    dn_pb head = {0}, ghead = {0}, io = {0};
    dn_status st = build_graph(&x);
    if (st == DN_OK) {
        char text[256];
        dn_pb_int(&head, MODEL_IR_VERSION, ir_version(opset));
        dn_pb_string(&head, MODEL_PRODUCER, "darknet_py");
        dn_pb_string(&head, MODEL_PRODUCER_VERSION, "0.1.0");
        snprintf(text, sizeof text, "Darknet network %s exported as loaded (inference forward)",
                 net->cfg_path ? net->cfg_path : "");
        dn_pb_string(&head, MODEL_DOC, text);
        dn_pb_begin(&head, MODEL_OPSET);
        dn_pb_string(&head, OPSET_DOMAIN, "");
        dn_pb_int(&head, OPSET_VERSION, opset);
        dn_pb_end(&head);
        metadata(&head, "letterbox", dn_network_letterbox(net) ? "1" : "0");
        snprintf(text, sizeof text, "%d", net->w);
        metadata(&head, "width", text);
        snprintf(text, sizeof text, "%d", net->h);
        metadata(&head, "height", text);
        int64_t in_dims[4] = {net->batch, net->c, net->h, net->w};
        value_info(&io, GRAPH_INPUT, "input", in_dims, 4);
        add_outputs(&x, &io, &head);
        if (opts->decode) st = add_decode(&x, &io);
        dn_pb_string(&ghead, GRAPH_NAME, "darknet");
        if (head.failed || ghead.failed || io.failed || x.nodes.failed || x.inits.failed)
            st = dn_error(DN_ERR_NOMEM, "export onnx: out of memory");
    }
    uint64_t glen = (uint64_t)ghead.len + x.nodes.len + x.inits.len + io.len;
    if (st == DN_OK && glen + head.len + 16 > ((uint64_t)1 << 31) - 1)
        st = dn_error(DN_ERR_UNSUPPORTED, "export onnx: the model takes %.2f GiB, more than the 2 GiB of one "
                      "protobuf file (external data is not supported)", (double)glen / (1 << 30));
    if (st == DN_OK) {
        dn_pb glen_key = {0};
        dn_pb_varint(&glen_key, (MODEL_GRAPH << 3) | 2);
        dn_pb_varint(&glen_key, glen);
        dn_atomic_file af;
        st = dn_atomic_open(&af, path);
        if (st == DN_OK) {
            const dn_pb *parts[6] = {&head, &glen_key, &ghead, &x.nodes, &x.inits, &io};
            int ok = !glen_key.failed;
            for (int i = 0; i < 6 && ok; ++i)
                ok = parts[i]->len == 0 || fwrite(parts[i]->data, 1, parts[i]->len, af.f) == parts[i]->len;
            if (ok) {
                st = dn_atomic_commit(&af);
            } else {
                dn_atomic_abort(&af);
                st = dn_error(DN_ERR_IO, "%s: write failed", path);
            }
        }
        dn_pb_free(&glen_key);
    }
    dn_pb_free(&head);
    dn_pb_free(&ghead);
    dn_pb_free(&io);
    dn_pb_free(&x.nodes);
    dn_pb_free(&x.inits);
    free(x.tensors);
    return st;
}
