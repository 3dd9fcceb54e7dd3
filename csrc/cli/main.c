/* main.c: the ./darknet binary with Darknet's command line. The CLI is the
 * only code allowed to exit; it prints the core's error messages.
 * dn_cli_main is the whole command line; setup.py builds csrc/cli into
 * darknet_py._core with DN_NO_MAIN (no main), where it runs in-process as
 * _core.cli_main, the `darknet` command that pip installs. */
#include "args.h"
#include "darknet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s <command> ...\n"
            "  detector test <data> <cfg> <weights> [image] [-thresh t] [-out name]\n"
            "  detect <cfg> <weights> [image] [-thresh t]\n"
            "  partial <cfg> <weights> <out> <N>\n"
            "  export onnx <cfg> <weights> <out.onnx> [-opset N] [-batch N] [-decode]\n"
            "any command: -option name=value (repeatable) sets a run-time setting:\n",
            prog);
    char buf[256];
    for (int k = 0; dn_option_help(k, buf, sizeof buf); ++k) fprintf(stderr, "  %s\n", buf);
}

int cmd_partial(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: %s partial <cfg> <weights> <out> <N>\n", argv[0]);
        return 1;
    }
    int n = atoi(argv[5]);
    dn_network *net;
    if (dn_network_load(&net, argv[2], 1, 0) != DN_OK) return cli_fail("partial");
    if (dn_network_load_weights(net, argv[3], -2) != DN_OK ||
        dn_network_save_weights(net, argv[4], n) != DN_OK) {
        dn_network_free(net);
        return cli_fail("partial");
    }
    printf("Saving weights of the first %d layers to %s\n", n < dn_network_num_layers(net) ? n : dn_network_num_layers(net), argv[4]);
    dn_network_free(net);
    return 0;
}

/* Darknet's `-i N` (the GPU index, for every command): in a CUDA build it
 * is -gpus N unless -gpus is given; a CPU build ignores it, as Darknet's. */
static void gpu_index_option(int *argc, char **argv)
{
    const char *i = cli_str(argc, argv, "-i", NULL);
    if (!i || !dn_cuda_compiled()) return;
    for (int k = 0; k < *argc; ++k)
        if (!strcmp(argv[k], "-gpus")) return;
    argv[(*argc)++] = "-gpus";  /* room: cli_str removed two entries */
    argv[(*argc)++] = (char *)i;
}

/* AlexeyAB's options for windows, streams and extra printing, which this
 * binary has none of: taken out of argv (with their values), so that his
 * scripts run unchanged; those that would change what a run does get a note. */
static void foreign_options(int *argc, char **argv)
{
    static const struct { const char *name; int has_value, quiet; } opts[] = {
        {"-dont_show", 0, 1}, {"-ext_output", 0, 1}, {"-show_imgs", 0, 1},
        {"-mjpeg_port", 1, 0}, {"-json_port", 1, 0}, {"-http_post_host", 1, 0}, {"-benchmark_layers", 0, 0}};
    for (size_t k = 0; k < sizeof opts / sizeof opts[0]; ++k) {
        int found = opts[k].has_value ? cli_str(argc, argv, opts[k].name, NULL) != NULL
                                      : cli_flag(argc, argv, opts[k].name);
        if (found && !opts[k].quiet) fprintf(stderr, "darknet: %s is not supported here: ignored\n", opts[k].name);
    }
}

#define MAX_SETTINGS 16

/* -option name=value, for any command: run-time settings (dn_set_option)
 * for this command. saved[i] keeps each name and its old value, *n their
 * count, for the restore at the end (the CLI also runs in-process from
 * Python). Returns 1 (message printed) for a bad one. */
static int settings_options(int *argc, char **argv, char saved[][2][64], int *n)
{
    const char *v;
    while ((v = cli_str(argc, argv, "-option", NULL))) {
        const char *eq = strchr(v, '=');
        if (!eq || eq - v >= 64 || *n == MAX_SETTINGS) {
            fprintf(stderr, "darknet: -option %s: expected name=value (at most %d of them)\n", v, MAX_SETTINGS);
            return 1;
        }
        snprintf(saved[*n][0], 64, "%.*s", (int)(eq - v), v);
        const char *was = dn_get_option(saved[*n][0]);
        if (dn_set_option(saved[*n][0], eq + 1) != DN_OK) return cli_fail("-option");
        snprintf(saved[(*n)++][1], 64, "%s", was);
    }
    return 0;
}

static int run_command(int argc, char **argv);

int dn_cli_main(int argc, char **argv)
{
    char saved[MAX_SETTINGS][2][64];
    int n = 0;
    int r = settings_options(&argc, argv, saved, &n) ? 1 : run_command(argc, argv);
    while (n-- > 0) dn_set_option(saved[n][0], saved[n][1]);
    return r;
}

static int run_command(int argc, char **argv)
{
    gpu_index_option(&argc, argv);
    foreign_options(&argc, argv);
    if (argc < 2) {
        usage(argv[0]);
        return 1;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "detector")) return cmd_detector(argc, argv);
    if (!strcmp(cmd, "detect")) {
        /* darknet detect cfg weights [image] == detector test with VOC names */
        char **args = calloc((size_t)argc + 2, sizeof(char *));
        if (!args) return 1;
        args[0] = argv[0];
        args[1] = "detector";
        args[2] = "test";
        args[3] = "";
        for (int i = 2; i < argc; ++i) args[i + 2] = argv[i];
        int r = cmd_detector(argc + 2, args);
        free(args);
        return r;
    }
    if (!strcmp(cmd, "partial")) return cmd_partial(argc, argv);
    if (!strcmp(cmd, "ternary")) return cmd_ternary(argc, argv);
    if (!strcmp(cmd, "export")) return cmd_export(argc, argv);
    fprintf(stderr, "Not an option: %s\n", cmd);
    usage(argv[0]);
    return 1;
}

#ifndef DN_NO_MAIN
int main(int argc, char **argv)
{
    return dn_cli_main(argc, argv);
}
#endif
