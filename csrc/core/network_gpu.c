/* network_gpu.c: a network on a CUDA device (the backend behind device.c).
 *
 * Attach copies the params (and momentum) to the device and gives each
 * layer a device output and delta; forward, backward, a training step and
 * the SGD update then run on the device, layer by layer as on the host
 * (train.c): per sub-batch zero the deltas, forward (detector layers run on
 * the host and leave dL/d(input) in their host delta), backward in reverse
 * order, then one update over the flat parameter block. Host copies are made
 * at the network boundary only: the input in, the last output out, plus the
 * inputs/outputs/deltas of the host-run layers; the host net->params is
 * refreshed on demand (params_on_host) and pushed back before the next
 * device use after a host write (params_on_device).
 */
#include "gpu.h"
#include "../kernels/cuda/cuda_kernels.h"

#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

static dn_status cuda_fail(cudaError_t e, const char *what)
{
    cudaGetLastError(); /* clear it */
    return dn_error(e == cudaErrorMemoryAllocation ? DN_ERR_NOMEM : DN_ERR_STATE, "CUDA: %s: %s", what,
                    cudaGetErrorString(e));
}

dn_status dn_gpu_check(const char *what)
{
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? DN_OK : cuda_fail(e, what);
}

static dn_status dev_alloc(void *p, size_t bytes, const char *what)
{
    void **pp = p;
    *pp = NULL;
    cudaError_t e = cudaMalloc(pp, bytes ? bytes : 4);
    if (e != cudaSuccess) {
        cudaGetLastError();
        *pp = NULL;
        return dn_error(DN_ERR_NOMEM, "CUDA: out of device memory for %s (%zu bytes): %s", what, bytes,
                        cudaGetErrorString(e));
    }
    e = cudaMemset(*pp, 0, bytes ? bytes : 4);
    return e == cudaSuccess ? DN_OK : cuda_fail(e, what);
}

static void dev_free(void *p)
{
    void **pp = p;
    if (*pp) cudaFree(*pp);
    *pp = NULL;
}

static dn_status copy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind, const char *what)
{
    if (!bytes) return DN_OK;
    cudaError_t e = cudaMemcpy(dst, src, bytes, kind);
    return e == cudaSuccess ? DN_OK : cuda_fail(e, what);
}

static dn_status enter(const dn_network *net)
{
    cudaError_t e = cudaSetDevice(net->gpu->device);
    return e == cudaSuccess ? DN_OK : cuda_fail(e, "cudaSetDevice");
}

int dn_gpu_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

int dn_gpu_device(const dn_network *net) { return net->gpu->device; }

int dn_gpu_uses_cudnn(const dn_network *net) { return net->gpu->dnn != NULL; }

void dn_gpu_layer_info(const dn_network *net, int i, dn_layer_info *out)
{
    const dn_cuda_conv_plan *p = net->gpu->layers[i].plan;
    if (!p) return;
    dn_cuda_conv_plan_algos(p, &out->cudnn_forward, &out->cudnn_backward_filter, &out->cudnn_backward_data);
    out->cudnn_workspace = dn_cuda_conv_plan_workspace(p);
}

void *dn_gpu_slot(dn_layer *l, int k, size_t bytes)
{
    struct dn_gpu_layer *gl = l->gpu;
    if (bytes <= gl->slot_bytes[k] && gl->slot[k]) return gl->slot[k];
    dev_free(&gl->slot[k]);
    gl->slot_bytes[k] = 0;
    if (dev_alloc(&gl->slot[k], bytes, "layer scratch") != DN_OK) return NULL;
    gl->slot_bytes[k] = bytes;
    return gl->slot[k];
}

/* Host staging buffer of at least n floats. */
static float *host_tmp(struct dn_gpu_net *g, size_t n)
{
    if (n > g->host_tmp_cap) {
        float *p = realloc(g->host_tmp, n * sizeof(float));
        if (!p) {
            dn_error(DN_ERR_NOMEM, "out of memory for a host staging buffer (%zu floats)", n);
            return NULL;
        }
        g->host_tmp = p;
        g->host_tmp_cap = n;
    }
    return g->host_tmp;
}

static float *dev_tmp(struct dn_gpu_net *g, size_t n)
{
    if (n > g->dev_tmp_cap) {
        dev_free(&g->dev_tmp);
        g->dev_tmp_cap = 0;
        if (dev_alloc(&g->dev_tmp, n * sizeof(float), "staging") != DN_OK) return NULL;
        g->dev_tmp_cap = n;
    }
    return g->dev_tmp;
}

void dn_gpu_detach(dn_network *net)
{
    struct dn_gpu_net *g = net->gpu;
    if (!g) return;
    if (enter(net) == DN_OK) {
        if (!g->params_on_host)
            copy(net->params, g->params, net->nparams * sizeof(float), cudaMemcpyDeviceToHost, "params to host");
        if (g->momentum && net->momentum)
            copy(net->momentum, g->momentum, net->nparams * sizeof(float), cudaMemcpyDeviceToHost,
                 "momentum to host");
    }
    for (int i = 0; i < net->n; ++i) {
        struct dn_gpu_layer *gl = &g->layers[i];
        dev_free(&gl->output);
        dev_free(&gl->delta);
        for (int k = 0; k < DN_GPU_SLOTS; ++k) dev_free(&gl->slot[k]);
        dn_cuda_conv_plan_free(gl->plan);
        net->layers[i].gpu = NULL;
    }
    dev_free(&g->params);
    dev_free(&g->grads);
    dev_free(&g->momentum);
    dev_free(&g->input);
    dev_free(&g->input_delta);
    dev_free(&g->workspace);
    dev_free(&g->dev_tmp);
    dn_cuda_blas_destroy(g->blas);
    dn_cuda_dnn_destroy(g->dnn);
    free(g->host_tmp);
    free(g->layers);
    free(g);
    net->gpu = NULL;
}

static dn_status attach(dn_network *net, int device)
{
    struct dn_gpu_net *g = net->gpu;
    g->device = device;
    TRY(enter(net));
    for (int i = 0; i < net->n; ++i) {
        net->layers[i].gpu = &g->layers[i];
        g->layers[i].ops = dn_layer_gpu_ops_find(net->layers[i].ops->section);
    }
    g->blas = dn_cuda_blas_create();
    if (!g->blas) return dn_error(DN_ERR_STATE, "CUDA: cannot create the cuBLAS handle on GPU %d", device);
    const char *why = NULL;
    if (dn_option(DN_OPT_CUDNN) == DN_CUDNN_ON) g->dnn = dn_cuda_dnn_create(&why);
    if (why)
        return dn_error(DN_ERR_STATE, "cuDNN: cannot create a handle on GPU %d: %s (the setting cudnn=0, or DARKNET_CUDNN=0, runs "
                        "the convolutions without cuDNN)", device, why);
    TRY(dev_alloc(&g->params, net->nparams * sizeof(float), "params"));
    TRY(copy(g->params, net->params, net->nparams * sizeof(float), cudaMemcpyHostToDevice, "params to device"));
    g->params_on_host = g->params_on_device = 1;
    g->params_version = 1;
    return dn_gpu_resize(net);
}

dn_status dn_gpu_attach(dn_network *net, int device)
{
    int count = dn_gpu_count();
    if (count == 0)
        return dn_error(DN_ERR_UNSUPPORTED, "GPU %d requested, but no CUDA device was found (no GPU or no "
                        "driver); train or run on the CPU instead (no -gpus, device='cpu')", device);
    if (device >= count)
        return dn_error(DN_ERR_VALUE, "GPU %d requested, but only %d CUDA device%s found (0..%d)", device, count,
                        count == 1 ? " was" : "s were", count - 1);
    for (int i = 0; i < net->n; ++i) {
        const dn_layer *l = &net->layers[i];
        if (l->nparams && !dn_layer_gpu_ops_find(l->ops->section))
            return dn_error(DN_ERR_UNSUPPORTED, "%s:%d: [%s] layer %d has no CUDA implementation", net->cfg_path,
                            l->line, l->ops->section, i);
    }
    net->gpu = calloc(1, sizeof(struct dn_gpu_net));
    if (net->gpu) net->gpu->layers = calloc((size_t)net->n, sizeof(struct dn_gpu_layer));
    if (!net->gpu || !net->gpu->layers) {
        free(net->gpu);
        net->gpu = NULL;
        return dn_error(DN_ERR_NOMEM, "out of memory");
    }
    dn_status st = attach(net, device);
    if (st != DN_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", dn_last_error());
        net->gpu->params_on_host = 1; /* nothing to copy back */
        dn_gpu_detach(net);
        return dn_error(st, "%s", msg);
    }
    return DN_OK;
}

dn_status dn_gpu_resize(dn_network *net)
{
    struct dn_gpu_net *g = net->gpu;
    TRY(enter(net));
    size_t ws = 0;
    for (int i = 0; i < net->n; ++i) {
        dn_layer *l = &net->layers[i];
        struct dn_gpu_layer *gl = l->gpu;
        size_t m = (size_t)l->batch * l->outputs;
        if (m > gl->cap || !gl->output || (net->train && !gl->delta)) {
            dev_free(&gl->output);
            dev_free(&gl->delta);
            gl->cap = 0;
            TRY(dev_alloc(&gl->output, m * sizeof(float), "layer output"));
            if (net->train) TRY(dev_alloc(&gl->delta, m * sizeof(float), "layer delta"));
            gl->cap = m;
        }
        gl->host_fresh = 0;
        if (l->workspace > ws) ws = l->workspace;
    }
    /* cuDNN's algorithms may use up to the limit; the workspace grows to
     * what the chosen ones need (the layers' plans are made here) */
    g->ws_limit = net->workspace_limit > ws * sizeof(float) ? net->workspace_limit : ws * sizeof(float);
    for (int i = 0; i < net->n; ++i) {
        dn_layer *l = &net->layers[i];
        size_t bytes;
        if (!g->layers[i].ops || !g->layers[i].ops->workspace) continue;
        TRY(g->layers[i].ops->workspace(l, net, &bytes));
        if ((bytes + sizeof(float) - 1) / sizeof(float) > ws) ws = (bytes + sizeof(float) - 1) / sizeof(float);
    }
    if (ws > g->workspace_cap || !g->workspace) {
        dev_free(&g->workspace);
        g->workspace_cap = 0;
        TRY(dev_alloc(&g->workspace, ws * sizeof(float), "workspace"));
        g->workspace_cap = ws;
    }
    size_t in = (size_t)net->batch * net->inputs;
    if (in > g->input_cap || !g->input) {
        dev_free(&g->input);
        dev_free(&g->input_delta);
        g->input_cap = 0;
        TRY(dev_alloc(&g->input, in * sizeof(float), "input"));
        g->input_cap = in;
    }
    if (net->train && !g->grads) {
        TRY(dev_alloc(&g->grads, net->nparams * sizeof(float), "grads"));
        TRY(dev_alloc(&g->momentum, net->nparams * sizeof(float), "momentum"));
        if (net->momentum)
            TRY(copy(g->momentum, net->momentum, net->nparams * sizeof(float), cudaMemcpyHostToDevice,
                     "momentum to device"));
    }
    return DN_OK;
}

static dn_status push_params(dn_network *net)
{
    struct dn_gpu_net *g = net->gpu;
    if (g->params_on_device) return DN_OK;
    TRY(copy(g->params, net->params, net->nparams * sizeof(float), cudaMemcpyHostToDevice, "params to device"));
    g->params_on_device = 1;
    ++g->params_version;
    return DN_OK;
}

void dn_gpu_params_to_host(const dn_network *net)
{
    struct dn_gpu_net *g = net->gpu;
    if (g->params_on_host || enter(net) != DN_OK) return;
    if (copy(net->params, g->params, net->nparams * sizeof(float), cudaMemcpyDeviceToHost, "params to host") == DN_OK)
        g->params_on_host = 1;
}

void dn_gpu_params_changed(dn_network *net) { net->gpu->params_on_device = 0; }

void dn_gpu_grads_to_host(dn_network *net)
{
    struct dn_gpu_net *g = net->gpu;
    if (!g->grads || !net->grads || enter(net) != DN_OK) return;
    copy(net->grads, g->grads, net->nparams * sizeof(float), cudaMemcpyDeviceToHost, "grads to host");
}

static dn_status output_to_host(const dn_network *net, int i)
{
    dn_layer *l = &net->layers[i];
    struct dn_gpu_layer *gl = l->gpu;
    if (gl->host_fresh) return DN_OK;
    TRY(copy(l->output, gl->output, (size_t)l->batch * l->outputs * sizeof(float), cudaMemcpyDeviceToHost,
             "layer output to host"));
    gl->host_fresh = 1;
    return DN_OK;
}

void dn_gpu_output_to_host(const dn_network *net, int i)
{
    if (enter(net) == DN_OK) output_to_host(net, i);
}

/* The host input of layer i (the previous layer's output, or the net input). */
static const float *host_input(dn_network *net, int i)
{
    if (i == 0) return net->input;
    return output_to_host(net, i - 1) == DN_OK ? net->layers[i - 1].output : NULL;
}

/* A layer without device ops: its CPU forward between copies. */
static dn_status host_forward(dn_network *net, int i)
{
    dn_layer *l = &net->layers[i];
    const float *in = host_input(net, i);
    if (!in) return DN_ERR_STATE;
    TRY(l->ops->forward(l, net, in));
    TRY(copy(l->gpu->output, l->output, (size_t)l->batch * l->outputs * sizeof(float), cudaMemcpyHostToDevice,
             "layer output to device"));
    l->gpu->host_fresh = 1;
    return DN_OK;
}

/* Its CPU backward: host delta += device delta (what later layers added),
 * then the input delta it computes is added to the device one. */
static dn_status host_backward(dn_network *net, int i, float *input_delta)
{
    dn_layer *l = &net->layers[i];
    struct dn_gpu_net *g = net->gpu;
    size_t m = (size_t)l->batch * l->outputs, nin = (size_t)l->batch * l->inputs;
    float *tmp = host_tmp(g, m + nin);
    if (!tmp) return DN_ERR_NOMEM;
    TRY(copy(tmp, l->gpu->delta, m * sizeof(float), cudaMemcpyDeviceToHost, "layer delta to host"));
    for (size_t k = 0; k < m; ++k) l->delta[k] += tmp[k];
    const float *in = host_input(net, i);
    if (!in) return DN_ERR_STATE;
    float *hid = input_delta ? tmp + m : NULL;
    if (hid) memset(hid, 0, nin * sizeof(float));
    TRY(l->ops->backward(l, net, in, hid));
    if (!hid) return DN_OK;
    float *d = dev_tmp(g, nin);
    if (!d) return DN_ERR_NOMEM;
    TRY(copy(d, hid, nin * sizeof(float), cudaMemcpyHostToDevice, "input delta to device"));
    dn_cuda_axpy(nin, 1.f, d, input_delta);
    return DN_OK;
}

/* Forward of the input already in g->input (and net->input). */
static dn_status run_forward(dn_network *net)
{
    struct dn_gpu_net *g = net->gpu;
    const float *x = g->input;
    for (int i = 0; i < net->n; ++i) {
        dn_layer *l = &net->layers[i];
        struct dn_gpu_layer *gl = l->gpu;
        if (gl->ops) {
            TRY(gl->ops->forward(l, net, x));
            gl->host_fresh = 0;
        } else {
            TRY(host_forward(net, i));
        }
        x = gl->output;
    }
    TRY(dn_gpu_check("forward"));
    if (net->train) {
        net->bn_fresh = 0;
        g->params_on_host = 0; /* batch-norm rolling statistics moved */
    }
    return DN_OK;
}

static dn_status run_backward(dn_network *net, float *in_grad)
{
    struct dn_gpu_net *g = net->gpu;
    for (int i = net->n - 1; i >= 0; --i) {
        dn_layer *l = &net->layers[i];
        const float *x = i ? net->layers[i - 1].gpu->output : g->input;
        float *xd = i ? net->layers[i - 1].gpu->delta : in_grad;
        if (l->gpu->ops) TRY(l->gpu->ops->backward(l, net, x, xd));
        else TRY(host_backward(net, i, xd));
    }
    return dn_gpu_check("backward");
}

static dn_status set_input(dn_network *net, const float *input)
{
    size_t n = (size_t)net->batch * net->inputs;
    memcpy(net->input, input, n * sizeof(float));
    return copy(net->gpu->input, input, n * sizeof(float), cudaMemcpyHostToDevice, "input to device");
}

dn_status dn_gpu_forward(dn_network *net, const float *input)
{
    TRY(enter(net));
    TRY(push_params(net));
    TRY(set_input(net, input));
    TRY(run_forward(net));
    return output_to_host(net, net->n - 1);
}

/* Zero the device deltas (and the host ones of host-run layers); keep: a
 * layer index whose deltas stay, or -1. */
static dn_status zero_deltas(dn_network *net, int keep)
{
    for (int i = 0; i < net->n; ++i) {
        dn_layer *l = &net->layers[i];
        size_t m = (size_t)l->batch * l->outputs;
        if (i == keep) continue;
        cudaMemset(l->gpu->delta, 0, m * sizeof(float));
        if (!l->gpu->ops && !(keep == -2 && l->is_detector)) memset(l->delta, 0, m * sizeof(float));
    }
    return dn_gpu_check("zeroing deltas");
}

static void sgd_update(dn_network *net, float lr, float B)
{
    struct dn_gpu_net *g = net->gpu;
    const float mom = net->hp.momentum, decay = net->hp.decay;
    for (int i = 0; i < net->n; ++i)
        for (int k = 0; k < net->layers[i].nparams; ++k) {
            const dn_param *p = &net->layers[i].params[k];
            if (!(p->flags & DN_PARAM_TRAIN)) continue;
            float wd = (p->flags & DN_PARAM_DECAY) ? decay * B : 0.f;
            dn_cuda_sgd(g->params + p->offset, g->grads + p->offset, g->momentum + p->offset, p->n, lr / B, wd, mom);
        }
    g->params_on_host = 0;
    ++g->params_version;
}

dn_status dn_gpu_train_step(dn_network *net, const float *images, const float *truth, int n, int max_boxes,
                            float *loss)
{
    TRY(enter(net));
    TRY(push_params(net));
    int subs = n / net->batch;
    size_t isz = (size_t)net->batch * net->inputs, tsz = (size_t)net->batch * max_boxes * 5;
    double sum = 0;
    for (int s = 0; s < subs; ++s) {
        TRY(dn_network_set_truth(net, truth + s * tsz, max_boxes));
        TRY(zero_deltas(net, -1));
        TRY(set_input(net, images + s * isz));
        TRY(run_forward(net));
        sum += dn_network_cost(net);
        TRY(run_backward(net, NULL));
        net->seen += (uint64_t)net->batch;
    }
    sgd_update(net, dn_network_learning_rate(net), (float)n);
    TRY(dn_gpu_check("update"));
    *loss = (float)(sum / n);
    return DN_OK;
}

dn_status dn_gpu_backward(dn_network *net, const float *out_grad, float *in_grad)
{
    struct dn_gpu_net *g = net->gpu;
    TRY(enter(net));
    dn_layer *last = &net->layers[net->n - 1];
    if (out_grad) {
        TRY(zero_deltas(net, -1));
        TRY(copy(last->gpu->delta, out_grad, (size_t)last->batch * last->outputs * sizeof(float),
                 cudaMemcpyHostToDevice, "output gradient to device"));
    } else {
        TRY(zero_deltas(net, -2)); /* keep the losses the detector layers left in their host deltas */
    }
    float *d_in = NULL;
    if (in_grad) {
        if (!g->input_delta) TRY(dev_alloc(&g->input_delta, g->input_cap * sizeof(float), "input delta"));
        cudaMemset(g->input_delta, 0, (size_t)net->batch * net->inputs * sizeof(float));
        d_in = g->input_delta;
    }
    TRY(run_backward(net, d_in));
    if (in_grad)
        TRY(copy(in_grad, d_in, (size_t)net->batch * net->inputs * sizeof(float), cudaMemcpyDeviceToHost,
                 "input gradient to host"));
    return DN_OK;
}

void dn_gpu_zero_grads(dn_network *net)
{
    struct dn_gpu_net *g = net->gpu;
    if (g->grads && enter(net) == DN_OK) cudaMemset(g->grads, 0, net->nparams * sizeof(float));
}

dn_status dn_gpu_ternarize(int gpu, const float *w, int groups, size_t per, float *t, float *alphas)
{
    int count = dn_gpu_count();
    if (gpu < 0 || gpu >= count)
        return dn_error(count ? DN_ERR_VALUE : DN_ERR_UNSUPPORTED, "GPU %d requested, but %d CUDA device%s found",
                        gpu, count, count == 1 ? " was" : "s were");
    cudaError_t e = cudaSetDevice(gpu);
    if (e != cudaSuccess) return cuda_fail(e, "cudaSetDevice");
    size_t n = (size_t)groups * per;
    float *dw = NULL, *dt = NULL, *da = NULL;
    void *sc = NULL;
    dn_status st = dev_alloc(&dw, n * sizeof(float), "weights");
    if (st == DN_OK) st = dev_alloc(&dt, n * sizeof(float), "ternary weights");
    if (st == DN_OK) st = dev_alloc(&da, (size_t)groups * sizeof(float), "alphas");
    if (st == DN_OK) st = dev_alloc(&sc, dn_cuda_ternary_scratch(groups, per), "quantiser scratch");
    if (st == DN_OK) st = copy(dw, w, n * sizeof(float), cudaMemcpyHostToDevice, "weights to device");
    if (st == DN_OK) {
        dn_cuda_ternarize_groups(dw, groups, per, dt, da, sc);
        st = dn_gpu_check("ternarize");
    }
    if (st == DN_OK) st = copy(t, dt, n * sizeof(float), cudaMemcpyDeviceToHost, "ternary weights to host");
    if (st == DN_OK && alphas) st = copy(alphas, da, (size_t)groups * sizeof(float), cudaMemcpyDeviceToHost, "alphas");
    dev_free(&dw);
    dev_free(&dt);
    dev_free(&da);
    dev_free(&sc);
    return st;
}
