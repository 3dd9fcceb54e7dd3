/* dnn.cu: convolutions on cuDNN, in builds with DN_USE_CUDNN (make GPU=1
 * CUDNN=1, DARKNET_GPU=1 CUDNN=1; the emulator builds use emu/cudnn.h).
 *
 * A plan is one conv layer at one shape: NCHW float descriptors, cross-
 * correlation with the layer's padding, stride and groups, FMA math (no
 * TF32 tensor cores, so results agree with the host's float path to float
 * rounding), and for each direction the first algorithm of cuDNN's
 * heuristics that succeeds and whose workspace fits the limit ([net]
 * workspace_size_limit_MB, or the im2col buffer when larger), a
 * deterministic one when any fits, so that training runs repeat. The
 * network's workspace then grows to what the chosen algorithms need, as
 * Darknet's does. Without DN_USE_CUDNN,
 * dn_cuda_dnn_create gives NULL and the layers use im2col + GEMM. */
#include "cuda_kernels.h"

#ifdef DN_USE_CUDNN
#include <cudnn.h>

#include <stdlib.h>
#include <string.h>

#if CUDNN_MAJOR < 8
#error "CUDNN=1 needs cuDNN 8 or newer (CUDNN_FMA_MATH and the _v7 heuristics)"
#endif

struct dn_cuda_conv_plan {
    dn_cuda_conv_shape shape;
    size_t limit, need;         /* workspace bytes: allowed, and used by the algorithms */
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
};

extern "C" void *dn_cuda_dnn_create(const char **why)
{
    cudnnHandle_t h = NULL;
    cudnnStatus_t s = cudnnCreate(&h);
    if (s == CUDNN_STATUS_SUCCESS) return h;
    *why = cudnnGetErrorString(s);
    return NULL;
}

extern "C" void dn_cuda_dnn_destroy(void *dnn)
{
    if (dnn) cudnnDestroy((cudnnHandle_t)dnn);
}

extern "C" void dn_cuda_conv_plan_free(dn_cuda_conv_plan *p)
{
    if (!p) return;
    if (p->x) cudnnDestroyTensorDescriptor(p->x);
    if (p->y) cudnnDestroyTensorDescriptor(p->y);
    if (p->w) cudnnDestroyFilterDescriptor(p->w);
    if (p->conv) cudnnDestroyConvolutionDescriptor(p->conv);
    free(p);
}

/* The first usable entry of a heuristics list: succeeded, no tensor ops,
 * its workspace (asked of cuDNN by need(algo, &bytes)) at most limit;
 * deterministic when one such exists. -1 when none is usable; else *used
 * grows to its workspace. */
template <class Perf, class Need>
static int pick(const Perf *perf, int n, size_t limit, Need need, size_t *used)
{
    for (int pass = 0; pass < 2; ++pass)
        for (int i = 0; i < n; ++i) {
            const Perf &p = perf[i];
            size_t bytes;
            if (p.status == CUDNN_STATUS_SUCCESS &&
                (p.mathType == CUDNN_FMA_MATH || p.mathType == CUDNN_DEFAULT_MATH) &&
                (pass || p.determinism == CUDNN_DETERMINISTIC) &&
                need(p.algo, &bytes) == CUDNN_STATUS_SUCCESS && bytes <= limit) {
                if (bytes > *used) *used = bytes;
                return i;
            }
        }
    return -1;
}

#define ALGOS 16 /* more than any direction's algorithm count */

static const char *make_plan(cudnnHandle_t h, dn_cuda_conv_plan *p)
{
    const dn_cuda_conv_shape *s = &p->shape;
    cudnnStatus_t st;
#define CHECK(call) do { if ((st = (call)) != CUDNN_STATUS_SUCCESS) return cudnnGetErrorString(st); } while (0)
    CHECK(cudnnCreateTensorDescriptor(&p->x));
    CHECK(cudnnCreateTensorDescriptor(&p->y));
    CHECK(cudnnCreateFilterDescriptor(&p->w));
    CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
    CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->batch, s->c, s->h, s->w));
    CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->batch, s->filters, s->out_h,
                                     s->out_w));
    CHECK(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s->filters, s->c / s->groups,
                                     s->size, s->size));
    CHECK(cudnnSetConvolution2dDescriptor(p->conv, s->pad, s->pad, s->stride, s->stride, 1, 1,
                                          CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CHECK(cudnnSetConvolutionGroupCount(p->conv, s->groups));
    CHECK(cudnnSetConvolutionMathType(p->conv, CUDNN_FMA_MATH));
    int n, c, oh, ow;
    CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &n, &c, &oh, &ow));
    if (n != s->batch || c != s->filters || oh != s->out_h || ow != s->out_w)
        return "cuDNN's output shape differs from the layer's";
    cudnnConvolutionFwdAlgoPerf_t fwd[ALGOS];
    cudnnConvolutionBwdFilterAlgoPerf_t bf[ALGOS];
    cudnnConvolutionBwdDataAlgoPerf_t bd[ALGOS];
    int nf, nbf, nbd;
    CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, p->x, p->w, p->conv, p->y, ALGOS, &nf, fwd));
    CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->x, p->y, p->conv, p->w, ALGOS, &nbf, bf));
    CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->w, p->y, p->conv, p->x, ALGOS, &nbd, bd));
#undef CHECK
    int i = pick(fwd, nf, p->limit, [&](cudnnConvolutionFwdAlgo_t a, size_t *b) {
        return cudnnGetConvolutionForwardWorkspaceSize(h, p->x, p->w, p->conv, p->y, a, b);
    }, &p->need);
    int j = pick(bf, nbf, p->limit, [&](cudnnConvolutionBwdFilterAlgo_t a, size_t *b) {
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p->x, p->y, p->conv, p->w, a, b);
    }, &p->need);
    int k = pick(bd, nbd, p->limit, [&](cudnnConvolutionBwdDataAlgo_t a, size_t *b) {
        return cudnnGetConvolutionBackwardDataWorkspaceSize(h, p->w, p->y, p->conv, p->x, a, b);
    }, &p->need);
    if (i < 0 || j < 0 || k < 0) return "no cuDNN algorithm fits the workspace";
    p->fwd = fwd[i].algo;
    p->bwd_filter = bf[j].algo;
    p->bwd_data = bd[k].algo;
    return NULL;
}

extern "C" const char *dn_cuda_conv_plan_update(void *dnn, dn_cuda_conv_plan **plan, const dn_cuda_conv_shape *s,
                                                size_t limit)
{
    if (*plan && !memcmp(&(*plan)->shape, s, sizeof(*s)) && (*plan)->limit == limit) return NULL;
    dn_cuda_conv_plan_free(*plan);
    *plan = (dn_cuda_conv_plan *)calloc(1, sizeof(dn_cuda_conv_plan));
    if (!*plan) return "out of host memory";
    (*plan)->shape = *s;
    (*plan)->limit = limit;
    const char *why = make_plan((cudnnHandle_t)dnn, *plan);
    if (why) {
        dn_cuda_conv_plan_free(*plan);
        *plan = NULL;
    }
    return why;
}

extern "C" size_t dn_cuda_conv_plan_workspace(const dn_cuda_conv_plan *p) { return p->need; }

static const char *fwd_name(cudnnConvolutionFwdAlgo_t a)
{
    switch (a) {
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM: return "IMPLICIT_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: return "IMPLICIT_PRECOMP_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_GEMM: return "GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT: return "DIRECT";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT: return "FFT";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING: return "FFT_TILING";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD: return "WINOGRAD";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED: return "WINOGRAD_NONFUSED";
    default: return "other";
    }
}

static const char *bwd_filter_name(cudnnConvolutionBwdFilterAlgo_t a)
{
    switch (a) {
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0: return "ALGO_0";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1: return "ALGO_1";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT: return "FFT";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3: return "ALGO_3";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED: return "WINOGRAD_NONFUSED";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING: return "FFT_TILING";
    default: return "other";
    }
}

static const char *bwd_data_name(cudnnConvolutionBwdDataAlgo_t a)
{
    switch (a) {
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_0: return "ALGO_0";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_1: return "ALGO_1";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT: return "FFT";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING: return "FFT_TILING";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD: return "WINOGRAD";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED: return "WINOGRAD_NONFUSED";
    default: return "other";
    }
}

extern "C" void dn_cuda_conv_plan_algos(const dn_cuda_conv_plan *p, const char **fwd, const char **bwd_filter,
                                        const char **bwd_data)
{
    *fwd = fwd_name(p->fwd);
    *bwd_filter = bwd_filter_name(p->bwd_filter);
    *bwd_data = bwd_data_name(p->bwd_data);
}

static const float one = 1.f, zero = 0.f;

static const char *status(cudnnStatus_t s) { return s == CUDNN_STATUS_SUCCESS ? NULL : cudnnGetErrorString(s); }

extern "C" const char *dn_cuda_conv_forward(void *dnn, const dn_cuda_conv_plan *p, const float *x, const float *w,
                                            float *y, void *ws)
{
    return status(cudnnConvolutionForward((cudnnHandle_t)dnn, &one, p->x, x, p->w, w, p->conv, p->fwd, ws,
                                          p->need, &zero, p->y, y));
}

extern "C" const char *dn_cuda_conv_backward_filter(void *dnn, const dn_cuda_conv_plan *p, const float *x,
                                                    const float *dy, float *dw, void *ws)
{
    return status(cudnnConvolutionBackwardFilter((cudnnHandle_t)dnn, &one, p->x, x, p->y, dy, p->conv,
                                                 p->bwd_filter, ws, p->need, &one, p->w, dw));
}

extern "C" const char *dn_cuda_conv_backward_data(void *dnn, const dn_cuda_conv_plan *p, const float *w,
                                                  const float *dy, float *dx, void *ws)
{
    return status(cudnnConvolutionBackwardData((cudnnHandle_t)dnn, &one, p->w, w, p->y, dy, p->conv, p->bwd_data,
                                               ws, p->need, &one, p->x, dx));
}

#else /* no cuDNN: the layers never get a handle, so the rest is unreachable */

static const char *const no_cudnn = "this build has no cuDNN (make GPU=1 CUDNN=1)";

extern "C" void *dn_cuda_dnn_create(const char **why)
{
    *why = NULL;
    return NULL;
}

extern "C" void dn_cuda_dnn_destroy(void *) {}
extern "C" void dn_cuda_conv_plan_free(dn_cuda_conv_plan *) {}
extern "C" size_t dn_cuda_conv_plan_workspace(const dn_cuda_conv_plan *) { return 0; }
extern "C" void dn_cuda_conv_plan_algos(const dn_cuda_conv_plan *, const char **, const char **, const char **) {}

extern "C" const char *dn_cuda_conv_plan_update(void *, dn_cuda_conv_plan **, const dn_cuda_conv_shape *, size_t)
{
    return no_cudnn;
}

extern "C" const char *dn_cuda_conv_forward(void *, const dn_cuda_conv_plan *, const float *, const float *, float *,
                                            void *)
{
    return no_cudnn;
}

extern "C" const char *dn_cuda_conv_backward_filter(void *, const dn_cuda_conv_plan *, const float *, const float *,
                                                    float *, void *)
{
    return no_cudnn;
}

extern "C" const char *dn_cuda_conv_backward_data(void *, const dn_cuda_conv_plan *, const float *, const float *,
                                                  float *, void *)
{
    return no_cudnn;
}

#endif
