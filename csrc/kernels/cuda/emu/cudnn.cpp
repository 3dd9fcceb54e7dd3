/* cudnn.cpp: the emulator's cuDNN subset (emu/cudnn.h): descriptors as
 * plain structs, the three convolution directions as direct loops in double
 * over the emulator's device memory (host memory, ranges checked). */
#include "cudnn.h"
#include "cuda_runtime_api.h"

struct cudnnContext {
    int unused;
};
struct cudnnTensorStruct {
    int n, c, h, w;
};
struct cudnnFilterStruct {
    int k, c, h, w;
};
struct cudnnConvolutionStruct {
    int pad_h, pad_w, u, v, groups;
};

/* The API functions have C linkage from their declarations in cudnn.h. */
const char *cudnnGetErrorString(cudnnStatus_t s)
{
    switch (s) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM (emulator: bad shape, or memory outside a device allocation)";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    }
    return "unknown cuDNN status";
}

cudnnStatus_t cudnnCreate(cudnnHandle_t *h)
{
    *h = new cudnnContext();
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t h)
{
    delete h;
    return CUDNN_STATUS_SUCCESS;
}

#define DESCRIPTOR(type, create, destroy) \
    cudnnStatus_t create(type **d) { *d = new type(); return CUDNN_STATUS_SUCCESS; } \
    cudnnStatus_t destroy(type *d) { delete d; return CUDNN_STATUS_SUCCESS; }
DESCRIPTOR(cudnnTensorStruct, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor)
DESCRIPTOR(cudnnFilterStruct, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor)
DESCRIPTOR(cudnnConvolutionStruct, cudnnCreateConvolutionDescriptor, cudnnDestroyConvolutionDescriptor)
#undef DESCRIPTOR

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format, cudnnDataType_t type,
                                         int n, int c, int h, int w)
{
    if (format != CUDNN_TENSOR_NCHW || type != CUDNN_DATA_FLOAT || n <= 0 || c <= 0 || h <= 0 || w <= 0)
        return CUDNN_STATUS_BAD_PARAM;
    *d = {n, c, h, w};
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type, cudnnTensorFormat_t format,
                                         int k, int c, int h, int w)
{
    if (format != CUDNN_TENSOR_NCHW || type != CUDNN_DATA_FLOAT || k <= 0 || c <= 0 || h <= 0 || w <= 0)
        return CUDNN_STATUS_BAD_PARAM;
    *d = {k, c, h, w};
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w, int u, int v,
                                              int dilation_h, int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute_type)
{
    if (pad_h < 0 || pad_w < 0 || u <= 0 || v <= 0 || dilation_h != 1 || dilation_w != 1 ||
        mode != CUDNN_CROSS_CORRELATION || compute_type != CUDNN_DATA_FLOAT)
        return CUDNN_STATUS_NOT_SUPPORTED;  /* what dnn.cu never asks for */
    *d = {pad_h, pad_w, u, v, 1};
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groups)
{
    if (groups <= 0) return CUDNN_STATUS_BAD_PARAM;
    d->groups = groups;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t, cudnnMathType_t math)
{
    return math == CUDNN_FMA_MATH || math == CUDNN_DEFAULT_MATH ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_NOT_SUPPORTED;
}

/* The shapes of one convolution, checked against each other. */
struct shape {
    int n, c, h, w, k, cg, kg, r, s, oh, ow, pad_h, pad_w, u, v;
};

static bool make_shape(const cudnnConvolutionStruct *conv, const cudnnTensorStruct *x, const cudnnFilterStruct *f,
                       shape *o)
{
    int g = conv->groups;
    if (x->c % g || f->k % g || f->c != x->c / g) return false;
    *o = {x->n, x->c, x->h, x->w, f->k, f->c, f->k / g, f->h, f->w,
          (x->h + 2 * conv->pad_h - f->h) / conv->u + 1, (x->w + 2 * conv->pad_w - f->w) / conv->v + 1,
          conv->pad_h, conv->pad_w, conv->u, conv->v};
    return o->oh > 0 && o->ow > 0;
}

/* The shape of a convolution from x to y by filters f, which must agree. */
static bool shapes(const cudnnConvolutionStruct *conv, const cudnnTensorStruct *x, const cudnnFilterStruct *f,
                   const cudnnTensorStruct *y, shape *s)
{
    return make_shape(conv, x, f, s) && y->n == s->n && y->c == s->k && y->h == s->oh && y->w == s->ow;
}

cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t conv,
                                                    const cudnnTensorDescriptor_t x, const cudnnFilterDescriptor_t w,
                                                    int *n, int *c, int *h, int *wd)
{
    shape s;
    if (!make_shape(conv, x, w, &s)) return CUDNN_STATUS_BAD_PARAM;
    *n = s.n;
    *c = s.k;
    *h = s.oh;
    *wd = s.ow;
    return CUDNN_STATUS_SUCCESS;
}

/* The algorithms the heuristics list, by the workspace they need: FFT
 * (named so; deterministic) 4 MiB more than the im2col buffer, GEMM (and
 * the backward ALGO_1, deterministic) the im2col buffer, the rest none. */
enum ws_kind { WS_NONE, WS_IM2COL, WS_LARGE };

static size_t workspace(const shape &s, ws_kind kind)
{
    size_t im2col = (size_t)s.cg * s.r * s.s * s.oh * s.ow * sizeof(float);
    return kind == WS_LARGE ? im2col + (4 << 20) : kind == WS_IM2COL ? im2col : 0;
}

static ws_kind kind_of(cudnnConvolutionFwdAlgo_t a)
{
    return a == CUDNN_CONVOLUTION_FWD_ALGO_FFT ? WS_LARGE : a == CUDNN_CONVOLUTION_FWD_ALGO_GEMM ? WS_IM2COL : WS_NONE;
}

static ws_kind kind_of(cudnnConvolutionBwdFilterAlgo_t a)
{
    return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT ? WS_LARGE
         : a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 ? WS_IM2COL : WS_NONE;
}

static ws_kind kind_of(cudnnConvolutionBwdDataAlgo_t a)
{
    return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT ? WS_LARGE
         : a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1 ? WS_IM2COL : WS_NONE;
}

/* The heuristics, fastest first as cuDNN ranks them: the FFT algorithm, one
 * that needs the im2col buffer (both deterministic), then one that needs
 * none (non-deterministic for the backward directions, as cuDNN's
 * atomics-based ones). The memory fields stay 0: the caller is to ask
 * cudnnGet*WorkspaceSize. */
template <class Perf, class Algo>
static cudnnStatus_t heuristics(int requested, int *returned, Perf *perf, Algo large, Algo im2col, Algo none,
                                cudnnDeterminism_t none_det)
{
    if (requested < 1) return CUDNN_STATUS_BAD_PARAM;
    Perf list[3] = {{large, CUDNN_STATUS_SUCCESS, 1.f, 0, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH, {0}},
                    {im2col, CUDNN_STATUS_SUCCESS, 2.f, 0, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH, {0}},
                    {none, CUDNN_STATUS_SUCCESS, 3.f, 0, none_det, CUDNN_FMA_MATH, {0}}};
    *returned = requested < 3 ? requested : 3;
    for (int i = 0; i < *returned; ++i) perf[i] = list[i];
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t, const cudnnTensorDescriptor_t x,
                                                     const cudnnFilterDescriptor_t w,
                                                     const cudnnConvolutionDescriptor_t conv,
                                                     const cudnnTensorDescriptor_t y, const int requested,
                                                     int *returned, cudnnConvolutionFwdAlgoPerf_t *perf)
{
    shape s;
    if (!shapes(conv, x, w, y, &s)) return CUDNN_STATUS_BAD_PARAM;
    return heuristics(requested, returned, perf, CUDNN_CONVOLUTION_FWD_ALGO_FFT, CUDNN_CONVOLUTION_FWD_ALGO_GEMM,
                      CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, CUDNN_DETERMINISTIC);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t, const cudnnTensorDescriptor_t x,
                                                            const cudnnTensorDescriptor_t dy,
                                                            const cudnnConvolutionDescriptor_t conv,
                                                            const cudnnFilterDescriptor_t dw, const int requested,
                                                            int *returned, cudnnConvolutionBwdFilterAlgoPerf_t *perf)
{
    shape s;
    if (!shapes(conv, x, dw, dy, &s)) return CUDNN_STATUS_BAD_PARAM;
    return heuristics(requested, returned, perf, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT,
                      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0,
                      CUDNN_NON_DETERMINISTIC);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t, const cudnnFilterDescriptor_t w,
                                                          const cudnnTensorDescriptor_t dy,
                                                          const cudnnConvolutionDescriptor_t conv,
                                                          const cudnnTensorDescriptor_t dx, const int requested,
                                                          int *returned, cudnnConvolutionBwdDataAlgoPerf_t *perf)
{
    shape s;
    if (!shapes(conv, dx, w, dy, &s)) return CUDNN_STATUS_BAD_PARAM;
    return heuristics(requested, returned, perf, CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT,
                      CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, CUDNN_NON_DETERMINISTIC);
}

/* What cudnnGet*WorkspaceSize answer: the bytes of an algorithm of that kind. */
static cudnnStatus_t workspace_size(const cudnnConvolutionStruct *conv, const cudnnTensorStruct *x,
                                    const cudnnFilterStruct *w, const cudnnTensorStruct *y, ws_kind kind,
                                    size_t *bytes)
{
    shape s;
    if (!shapes(conv, x, w, y, &s)) return CUDNN_STATUS_BAD_PARAM;
    *bytes = workspace(s, kind);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t, const cudnnTensorDescriptor_t x,
                                                     const cudnnFilterDescriptor_t w,
                                                     const cudnnConvolutionDescriptor_t conv,
                                                     const cudnnTensorDescriptor_t y, cudnnConvolutionFwdAlgo_t algo,
                                                     size_t *bytes)
{
    return workspace_size(conv, x, w, y, kind_of(algo), bytes);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t, const cudnnTensorDescriptor_t x,
                                                            const cudnnTensorDescriptor_t dy,
                                                            const cudnnConvolutionDescriptor_t conv,
                                                            const cudnnFilterDescriptor_t dw,
                                                            cudnnConvolutionBwdFilterAlgo_t algo, size_t *bytes)
{
    return workspace_size(conv, x, dw, dy, kind_of(algo), bytes);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t, const cudnnFilterDescriptor_t w,
                                                          const cudnnTensorDescriptor_t dy,
                                                          const cudnnConvolutionDescriptor_t conv,
                                                          const cudnnTensorDescriptor_t dx,
                                                          cudnnConvolutionBwdDataAlgo_t algo, size_t *bytes)
{
    return workspace_size(conv, dx, w, dy, kind_of(algo), bytes);
}

/* The checks every direction makes: shapes agree, the operands lie in device
 * memory, and the algorithm's workspace was given. */
static bool operands_ok(const shape &s, const void *x, const void *w, const void *y, ws_kind kind, const void *ws,
                        size_t ws_bytes)
{
    size_t xn = (size_t)s.n * s.c * s.h * s.w, wn = (size_t)s.k * s.cg * s.r * s.s,
           yn = (size_t)s.n * s.k * s.oh * s.ow;
    size_t need = workspace(s, kind);
    return dn_emu_on_device(x, xn * sizeof(float)) && dn_emu_on_device(w, wn * sizeof(float)) &&
           dn_emu_on_device(y, yn * sizeof(float)) && ws_bytes >= need && (!need || dn_emu_on_device(ws, need));
}

/* f(y index, x index, w index) for every tap of the convolution that lands
 * inside the input. */
template <class F>
static void taps(const shape &s, F f)
{
    for (int n = 0; n < s.n; ++n)
        for (int k = 0; k < s.k; ++k) {
            int g = k / s.kg;
            for (int oh = 0; oh < s.oh; ++oh)
                for (int ow = 0; ow < s.ow; ++ow) {
                    size_t yi = (((size_t)n * s.k + k) * s.oh + oh) * s.ow + ow;
                    for (int c = 0; c < s.cg; ++c)
                        for (int r = 0; r < s.r; ++r) {
                            int ih = oh * s.u - s.pad_h + r;
                            if (ih < 0 || ih >= s.h) continue;
                            for (int q = 0; q < s.s; ++q) {
                                int iw = ow * s.v - s.pad_w + q;
                                if (iw < 0 || iw >= s.w) continue;
                                size_t xi = (((size_t)n * s.c + g * s.cg + c) * s.h + ih) * s.w + iw;
                                size_t wi = (((size_t)k * s.cg + c) * s.r + r) * s.s + q;
                                f(yi, xi, wi);
                            }
                        }
                }
        }
}

enum target { TO_Y, TO_W, TO_X };

/* One direction: the operand `to` (y, w or x) = alpha * (its sums over the
 * taps of the other two) + beta * itself; beta 0: not read. */
static cudnnStatus_t convolve(target to, const cudnnConvolutionStruct *conv, const cudnnTensorStruct *xd,
                              const cudnnFilterStruct *wd, const cudnnTensorStruct *yd, const void *x, const void *w,
                              const void *y, ws_kind kind, const void *ws, size_t ws_bytes, const void *alpha,
                              const void *beta)
{
    shape s;
    if (!shapes(conv, xd, wd, yd, &s) || !operands_ok(s, x, w, y, kind, ws, ws_bytes))
        return CUDNN_STATUS_BAD_PARAM;
    float *xf = (float *)x, *wf = (float *)w, *yf = (float *)y;
    float *out = to == TO_Y ? yf : to == TO_W ? wf : xf;
    size_t n = to == TO_Y ? (size_t)s.n * s.k * s.oh * s.ow
             : to == TO_W ? (size_t)s.k * s.cg * s.r * s.s : (size_t)s.n * s.c * s.h * s.w;
    double *acc = new double[n]();
    taps(s, [&](size_t yi, size_t xi, size_t wi) {
        if (to == TO_Y) acc[yi] += (double)xf[xi] * wf[wi];
        else if (to == TO_W) acc[wi] += (double)yf[yi] * xf[xi];
        else acc[xi] += (double)yf[yi] * wf[wi];
    });
    float a = *static_cast<const float *>(alpha), b = *static_cast<const float *>(beta);
    for (size_t i = 0; i < n; ++i) out[i] = (float)(a * acc[i] + (b != 0.f ? (double)b * out[i] : 0.0));
    delete[] acc;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t, const void *alpha, const cudnnTensorDescriptor_t xd,
                                      const void *x, const cudnnFilterDescriptor_t wd, const void *w,
                                      const cudnnConvolutionDescriptor_t conv, cudnnConvolutionFwdAlgo_t algo,
                                      void *ws, size_t ws_bytes, const void *beta,
                                      const cudnnTensorDescriptor_t yd, void *y)
{
    return convolve(TO_Y, conv, xd, wd, yd, x, w, y, kind_of(algo), ws, ws_bytes, alpha,
                    beta);
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t, const void *alpha, const cudnnTensorDescriptor_t xd,
                                             const void *x, const cudnnTensorDescriptor_t dyd, const void *dy,
                                             const cudnnConvolutionDescriptor_t conv,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void *ws, size_t ws_bytes,
                                             const void *beta, const cudnnFilterDescriptor_t dwd, void *dw)
{
    return convolve(TO_W, conv, xd, dwd, dyd, x, dw, dy, kind_of(algo), ws, ws_bytes,
                    alpha, beta);
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t, const void *alpha, const cudnnFilterDescriptor_t wd,
                                           const void *w, const cudnnTensorDescriptor_t dyd, const void *dy,
                                           const cudnnConvolutionDescriptor_t conv,
                                           cudnnConvolutionBwdDataAlgo_t algo, void *ws, size_t ws_bytes,
                                           const void *beta, const cudnnTensorDescriptor_t dxd, void *dx)
{
    return convolve(TO_X, conv, dxd, wd, dyd, dx, w, dy, kind_of(algo), ws, ws_bytes,
                    alpha, beta);
}
