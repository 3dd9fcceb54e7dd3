/* args.h: Darknet-style option lookup. Each finder removes the option (and
 * its value) from argv, so what remains are the positional arguments. */
#ifndef DN_CLI_ARGS_H
#define DN_CLI_ARGS_H

int cli_flag(int *argc, char **argv, const char *name);
/* Input placement: -letter_box (AlexeyAB's flag) 1, -no_letter_box 0,
 * neither -1 (the cfg's choice, dn_network_letterbox). */
int cli_letterbox(int *argc, char **argv);
int cli_int(int *argc, char **argv, const char *name, int def);
float cli_float(int *argc, char **argv, const char *name, float def);
const char *cli_str(int *argc, char **argv, const char *name, const char *def);
/* Print "darknet: <what>: <dn_last_error()>" and return 1. */
int cli_fail(const char *what);
/* The devices of -gpus (list, or NULL when absent) into gpus[cap], *n their
 * count: a CUDA build without -gpus takes GPU 0 when there is one (else
 * the host, with a note); -nogpu, or a CPU build without -gpus, the host.
 * Returns 1 (message printed) for a bad list. */
int cli_gpus(const char *list, int nogpu, int *gpus, int cap, int *n);
/* The device of an inference command (detector test, map, valid, recall):
 * -gpus (its first device), -nogpu or neither as cli_gpus, into *gpu (-1:
 * the host). cpu_kernel (-ternary_kernel float or int8, CPU kernels) keeps
 * the host, and with -gpus it is an error. Returns 1 (message printed) on error. */
int cli_device(int *argc, char **argv, int cpu_kernel, int *gpu);
/* The class names of a model without a .names file: PASCAL VOC's for 20
 * classes, COCO's for 80 (as Darknet's detect), else NULL. */
const char *const *cli_default_names(int classes);

/* The whole command line of ./darknet (main.c): argv[0] the program name,
 * argv[argc] NULL; returns the exit status. Commands may reorder argv's
 * pointers (never its strings) and print to C's stdout and stderr. */
int dn_cli_main(int argc, char **argv);
int cmd_detector(int argc, char **argv);
/* detector map | valid | recall (validate.c); sub is argv[2]. */
int cmd_detector_valid(int argc, char **argv, const char *sub);
int cmd_partial(int argc, char **argv);
/* detector calc_anchors (anchors.c). */
int cmd_detector_anchors(int argc, char **argv);
/* ternary pack | unpack | info (ternary.c). */
int cmd_ternary(int argc, char **argv);
/* export onnx (export.c). */
int cmd_export(int argc, char **argv);

#endif
