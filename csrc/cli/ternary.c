/* ternary.c: `darknet ternary pack | unpack | info`, the packed ternary
 * weights format (csrc/core/packed.c) from the command line. */
#include "args.h"
#include "darknet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s ternary pack <cfg> <weights> <out.tpk> [-fold] write packed ternary weights\n"
            "           (-fold: batch norm folded into float16 scale and shift, for deployment)\n"
            "       %s ternary unpack <cfg> <packed> <out.weights>  write them back as .weights\n"
            "       %s ternary info <cfg> <weights|packed>          per-layer summary\n",
            prog, prog, prog);
    return 1;
}

static long long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) ? -1 : (long long)sb.st_size;
}

static int info(dn_network *net, const char *path)
{
    int n = dn_network_num_layers(net), packed = 0;
    dn_ternary_layer_stats *s = calloc((size_t)n, sizeof(*s));
    if (!s) return 1;
    if (dn_ternary_stats(net, path, s, &packed) != DN_OK) { free(s); return cli_fail("ternary info"); }
    printf("%s: %s, %lld bytes\n", path, packed ? "packed ternary weights" : "Darknet .weights", file_size(path));
    printf("%5s %-15s %-7s %10s %10s %7s %6s  %-32s %10s\n", "layer", "type", "weights", "params", "ternary",
           "zeros", "alphas", "alpha min / mean / max", "bytes");
    unsigned long long total = 0, tw = 0, tz = 0;
    for (int i = 0; i < n; ++i) {
        total += s[i].bytes;
        if (!s[i].params) continue;
        char alpha[64] = "";
        if (s[i].ternary)
            snprintf(alpha, sizeof alpha, "%.5g / %.5g / %.5g", s[i].alpha_min, s[i].alpha_mean, s[i].alpha_max);
        char zeros[16] = "";
        if (s[i].weights) snprintf(zeros, sizeof zeros, "%.1f%%", 100.0 * s[i].zeros / s[i].weights);
        printf("%5d %-15s %-7s %10zu %10zu %7s %6d  %-32s %10llu\n", i, s[i].type,
               s[i].ternary ? "ternary" : "float", s[i].params, s[i].weights, zeros, s[i].alphas, alpha,
               (unsigned long long)s[i].bytes);
        tw += s[i].weights;
        tz += s[i].zeros;
    }
    printf("ternary weights: %llu (%.1f%% zeros); layer data: %llu bytes\n", tw, tw ? 100.0 * tz / tw : 0.0, total);
    free(s);
    return 0;
}

int cmd_ternary(int argc, char **argv)
{
    int fold = cli_flag(&argc, argv, "-fold");
    if (argc < 5) return usage(argv[0]);
    const char *sub = argv[2], *cfg = argv[3], *in = argv[4];
    int is_info = !strcmp(sub, "info");
    if (!is_info && strcmp(sub, "pack") && strcmp(sub, "unpack")) return usage(argv[0]);
    if (!is_info && argc < 6) return usage(argv[0]);
    char what[32];
    snprintf(what, sizeof what, "ternary %s", sub);
    dn_network *net;
    if (dn_network_load(&net, cfg, 1, 0) != DN_OK) return cli_fail(what);
    int rc = 0;
    if (is_info) {
        rc = info(net, in);
    } else if (!strcmp(sub, "pack")) {
        if (dn_network_load_weights(net, in, -1) != DN_OK || dn_network_save_packed(net, argv[5], fold) != DN_OK)
            rc = cli_fail(what);
        else
            printf("Packed %s (%lld bytes) into %s (%lld bytes)\n", in, file_size(in), argv[5], file_size(argv[5]));
    } else {
        if (!dn_weights_is_packed(in))
            fprintf(stderr, "darknet ternary unpack: warning: %s is not a packed file; writing its ternarised weights\n", in);
        if (dn_network_load_weights(net, in, -1) != DN_OK || dn_network_save_weights(net, argv[5], -1) != DN_OK)
            rc = cli_fail(what);
        else
            printf("Unpacked %s into %s (%lld bytes)\n", in, argv[5], file_size(argv[5]));
    }
    dn_network_free(net);
    return rc;
}
