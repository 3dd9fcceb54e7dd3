/* export.c: `darknet export onnx <cfg> <weights> <out.onnx> [-opset N]
 * [-batch N] [-decode]`, the network as loaded written as an ONNX model
 * (dn_network_export_onnx, csrc/export/onnx.c). */
#include "args.h"
#include "darknet.h"

#include <stdio.h>
#include <string.h>

static int usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s export onnx <cfg> <weights|packed|\"\"> <out.onnx> [-opset N] [-batch N] [-decode [-nms IOU [-thresh T] [-max N]]]\n"
            "  writes the network (weights as loaded; \"\": the cfg's random initialisation) as an ONNX\n"
            "  model: input \"input\" N x C x H x W, one output per detector layer (opset 11-21, default 13;\n"
            "  batch default 1); -decode adds the outputs boxes, objectness and scores of every detector layer\n",
            prog);
    return 1;
}

int cmd_export(int argc, char **argv)
{
    dn_onnx_opts o;
    dn_onnx_opts_default(&o);
    o.opset = cli_int(&argc, argv, "-opset", o.opset);
    int batch = cli_int(&argc, argv, "-batch", 1);
    o.decode = cli_flag(&argc, argv, "-decode");
    o.nms = cli_float(&argc, argv, "-nms", 0);
    o.thresh = cli_float(&argc, argv, "-thresh", o.thresh);
    o.max_per_class = cli_int(&argc, argv, "-max", o.max_per_class);
    if (argc != 6 || strcmp(argv[2], "onnx")) return usage(argv[0]);
    const char *cfg = argv[3], *weights = argv[4], *out = argv[5];
    if (batch < 1) {
        fprintf(stderr, "darknet export: -batch must be positive, got %d\n", batch);
        return 1;
    }
    dn_network *net;
    if (dn_network_load(&net, cfg, batch, 0) != DN_OK) return cli_fail("export onnx");
    int rc = 0;
    if ((*weights && dn_network_load_weights(net, weights, -1) != DN_OK) ||
        dn_network_export_onnx(net, out, &o) != DN_OK)
        rc = cli_fail("export onnx");
    else
        printf("Exported %s (%s) to %s (ONNX opset %d, batch %d)\n", cfg, *weights ? weights : "random weights", out,
               o.opset, batch);
    dn_network_free(net);
    return rc;
}
