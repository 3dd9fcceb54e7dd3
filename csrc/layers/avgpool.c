/* avgpool.c: [avgpool] layer -- placeholder, being written. */
#include "../core/internal.h"

static dn_status avgpool_parse(dn_layer *l, dn_cfg_section *s, dn_network *net)
{
    (void)l; (void)net;
    return dn_error(DN_ERR_UNSUPPORTED, "%s:%d: [avgpool] is not implemented yet", s->file, s->line);
}

const dn_layer_ops dn_avgpool_ops = {.section = "avgpool", .parse = avgpool_parse};
