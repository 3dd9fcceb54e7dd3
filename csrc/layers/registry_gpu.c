/* registry_gpu.c: the layer types that run on the device (GPU=1 builds),
 * one row per cfg section name (the canonical name of registry.c). Types
 * not listed ([region], [yolo], [detection]: the losses, as in Darknet)
 * run their host code between copies (core/network_gpu.c). */
#include "../core/gpu.h"

#include <string.h>

extern const dn_layer_gpu_ops dn_conv_gpu_ops;
extern const dn_layer_gpu_ops dn_maxpool_gpu_ops;
extern const dn_layer_gpu_ops dn_avgpool_gpu_ops;
extern const dn_layer_gpu_ops dn_route_gpu_ops;
extern const dn_layer_gpu_ops dn_reorg_gpu_ops;
extern const dn_layer_gpu_ops dn_shortcut_gpu_ops;
extern const dn_layer_gpu_ops dn_upsample_gpu_ops;
extern const dn_layer_gpu_ops dn_connected_gpu_ops;
extern const dn_layer_gpu_ops dn_softmax_gpu_ops;
extern const dn_layer_gpu_ops dn_dropout_gpu_ops;

static const dn_layer_gpu_ops *const table[] = {
    &dn_conv_gpu_ops, &dn_maxpool_gpu_ops, &dn_avgpool_gpu_ops, &dn_route_gpu_ops, &dn_reorg_gpu_ops,
    &dn_shortcut_gpu_ops, &dn_upsample_gpu_ops, &dn_connected_gpu_ops, &dn_softmax_gpu_ops, &dn_dropout_gpu_ops,
};

const dn_layer_gpu_ops *dn_layer_gpu_ops_find(const char *section)
{
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); ++i)
        if (!strcmp(table[i]->section, section)) return table[i];
    return NULL;
}
