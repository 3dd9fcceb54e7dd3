/* registry.c: the table of layer types, one row per cfg section name. */
#include "../core/internal.h"

#include <string.h>

extern const dn_layer_ops dn_conv_ops;
extern const dn_layer_ops dn_maxpool_ops;
extern const dn_layer_ops dn_avgpool_ops;
extern const dn_layer_ops dn_route_ops;
extern const dn_layer_ops dn_reorg_ops;
extern const dn_layer_ops dn_shortcut_ops;
extern const dn_layer_ops dn_upsample_ops;
extern const dn_layer_ops dn_connected_ops;
extern const dn_layer_ops dn_softmax_ops;
extern const dn_layer_ops dn_dropout_ops;
extern const dn_layer_ops dn_region_ops;
extern const dn_layer_ops dn_yolo_ops;
extern const dn_layer_ops dn_detection_ops;

static const dn_layer_ops *const table[] = {
    &dn_conv_ops,
    &dn_maxpool_ops,
    &dn_avgpool_ops,
    &dn_route_ops,
    &dn_reorg_ops,
    &dn_shortcut_ops,
    &dn_upsample_ops,
    &dn_connected_ops,
    &dn_softmax_ops,
    &dn_dropout_ops,
    &dn_region_ops,
    &dn_yolo_ops,
    &dn_detection_ops,
};

const dn_layer_ops *dn_layer_ops_find(const char *section)
{
    static const struct { const char *alias, *name; } aliases[] = {
        {"conv", "convolutional"}, {"max", "maxpool"}, {"avg", "avgpool"},
        {"conn", "connected"}, {"soft", "softmax"},
    };
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); ++i)
        if (!strcmp(section, aliases[i].alias)) section = aliases[i].name;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); ++i)
        if (!strcmp(table[i]->section, section)) return table[i];
    return NULL;
}
