/* device.c: the host/device switch of a network, compiled in every build.
 *
 * A network runs on the host unless dn_network_set_device gave it a CUDA
 * device; then net->gpu holds the backend state (core/gpu.h,
 * core/network_gpu.c) and the dn_device_* hooks that network.c, train.c and
 * weights.c call hand over to it. This file is the one place that knows
 * whether the CUDA backend was compiled (DN_GPU): a CPU build gets the stubs
 * below, so asking it for a device is a clear error, never an exit.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#ifdef DN_GPU
#include "gpu.h"
#else
static int dn_gpu_count(void) { return 0; }
static dn_status dn_gpu_attach(dn_network *net, int device)
{
    (void)net;
    return dn_error(DN_ERR_UNSUPPORTED, "GPU %d requested, but this build has no CUDA support: rebuild with "
                    "`make GPU=1` (or `DARKNET_GPU=1 pip install .`)", device);
}
/* Unreachable in a CPU build: net->gpu is never set. */
static void dn_gpu_detach(dn_network *net) { (void)net; }
static dn_status dn_gpu_ternarize(int gpu, const float *w, int groups, size_t per, float *t, float *alphas)
{
    (void)w; (void)groups; (void)per; (void)t; (void)alphas;
    return dn_gpu_attach(NULL, gpu);
}
static int dn_gpu_device(const dn_network *net) { (void)net; return -1; }
static int dn_gpu_uses_cudnn(const dn_network *net) { (void)net; return 0; }
static dn_status dn_gpu_forward(dn_network *net, const float *in) { (void)net; (void)in; return DN_ERR_STATE; }
static dn_status dn_gpu_train_step(dn_network *net, const float *im, const float *t, int n, int mb, float *loss)
{
    (void)net; (void)im; (void)t; (void)n; (void)mb; (void)loss;
    return DN_ERR_STATE;
}
static dn_status dn_gpu_backward(dn_network *net, const float *og, float *ig)
{
    (void)net; (void)og; (void)ig;
    return DN_ERR_STATE;
}
static void dn_gpu_zero_grads(dn_network *net) { (void)net; }
static dn_status dn_gpu_resize(dn_network *net) { (void)net; return DN_OK; }
static void dn_gpu_output_to_host(const dn_network *net, int i) { (void)net; (void)i; }
static void dn_gpu_grads_to_host(dn_network *net) { (void)net; }
static void dn_gpu_params_to_host(const dn_network *net) { (void)net; }
static void dn_gpu_params_changed(dn_network *net) { (void)net; }
static void dn_gpu_layer_info(const dn_network *net, int i, dn_layer_info *out) { (void)net; (void)i; (void)out; }
#endif

int dn_cuda_compiled(void)
{
#ifdef DN_GPU
    return 1;
#else
    return 0;
#endif
}

int dn_cuda_device_count(void) { return dn_gpu_count(); }

dn_status dn_cuda_ternarize(int gpu, const float *w, int groups, size_t per, float *t, float *alphas)
{
    if (groups <= 0 || !per) return dn_error(DN_ERR_VALUE, "cuda_ternarize: need groups > 0 and per > 0");
    return dn_gpu_ternarize(gpu, w, groups, per, t, alphas);
}

/* Detaching copies the device params back to the host (the host forward
 * did not run meanwhile): new to the host's weight caches. */
static void detach(dn_network *net)
{
    if (!net->gpu) return;
    dn_gpu_detach(net);
    dn_params_changed(net);
}

dn_status dn_network_set_device(dn_network *net, int gpu)
{
    detach(net);
    if (gpu >= 0 && net->teacher)
        return dn_error(DN_ERR_UNSUPPORTED, "set_device: %s distils from a teacher, which trains on the host only",
                        net->cfg_path);
    return gpu < 0 ? DN_OK : dn_gpu_attach(net, gpu);
}

int dn_network_device(const dn_network *net) { return net->gpu ? dn_gpu_device(net) : -1; }

int dn_network_uses_cudnn(const dn_network *net) { return net->gpu ? dn_gpu_uses_cudnn(net) : 0; }

dn_status dn_parse_gpus(const char *list, int *gpus, int cap, int *n)
{
    *n = 0;
    if (!list || !*list) return dn_error(DN_ERR_VALUE, "-gpus: empty list (expected e.g. 0 or 0,1)");
    const char *p = list;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 1023 || (*end && *end != ','))
            return dn_error(DN_ERR_VALUE, "-gpus '%s': expected comma-separated device numbers (e.g. 0,1) at offset %d",
                            list, (int)(p - list));
        if (*n == cap) return dn_error(DN_ERR_VALUE, "-gpus '%s': more than %d devices", list, cap);
        for (int k = 0; k < *n; ++k)
            if (gpus[k] == (int)v) return dn_error(DN_ERR_VALUE, "-gpus '%s': device %ld listed twice", list, v);
        gpus[(*n)++] = (int)v;
        p = *end ? end + 1 : end;
        if (*end && !*p) return dn_error(DN_ERR_VALUE, "-gpus '%s': trailing comma", list);
    }
    return DN_OK;
}

dn_status dn_device_forward(dn_network *net, const float *input) { return dn_gpu_forward(net, input); }

dn_status dn_device_train_step(dn_network *net, const float *images, const float *truth, int n, int max_boxes,
                               float *loss)
{
    return dn_gpu_train_step(net, images, truth, n, max_boxes, loss);
}

dn_status dn_device_backward(dn_network *net, const float *out_grad, float *in_grad)
{
    return dn_gpu_backward(net, out_grad, in_grad);
}

void dn_device_zero_grads(dn_network *net)
{
    if (net->gpu) dn_gpu_zero_grads(net);
}

dn_status dn_device_resize(dn_network *net) { return net->gpu ? dn_gpu_resize(net) : DN_OK; }

void dn_device_layer_info(const dn_network *net, int i, dn_layer_info *out) { dn_gpu_layer_info(net, i, out); }

void dn_device_free(dn_network *net)
{
    if (net->gpu) dn_gpu_detach(net);
}

void dn_device_output_to_host(const dn_network *net, int i)
{
    if (net->gpu) dn_gpu_output_to_host(net, i);
}

void dn_device_grads_to_host(dn_network *net)
{
    if (net->gpu) dn_gpu_grads_to_host(net);
}

void dn_device_params_to_host(const dn_network *net)
{
    if (net->gpu) dn_gpu_params_to_host(net);
}

void dn_device_params_changed(dn_network *net)
{
    if (net->gpu) dn_gpu_params_changed(net);
}
