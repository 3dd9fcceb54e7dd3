/* dropout.c: [dropout] layer -- placeholder, being written. */
#include "../core/internal.h"

static dn_status dropout_parse(dn_layer *l, dn_cfg_section *s, dn_network *net)
{
    (void)l; (void)net;
    return dn_error(DN_ERR_UNSUPPORTED, "%s:%d: [dropout] is not implemented yet", s->file, s->line);
}

const dn_layer_ops dn_dropout_ops = {.section = "dropout", .parse = dropout_parse};
