/* args.c: option lookup for the CLI (see args.h). */
#include "args.h"
#include "darknet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void drop(int *argc, char **argv, int i, int n)
{
    for (int j = i; j + n < *argc; ++j) argv[j] = argv[j + n];
    *argc -= n;
}

static int find(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; ++i)
        if (!strcmp(argv[i], name)) return i;
    return -1;
}

int cli_flag(int *argc, char **argv, const char *name)
{
    int i = find(*argc, argv, name);
    if (i < 0) return 0;
    drop(argc, argv, i, 1);
    return 1;
}

int cli_letterbox(int *argc, char **argv)
{
    int on = cli_flag(argc, argv, "-letter_box"), off = cli_flag(argc, argv, "-no_letter_box");
    return on ? 1 : off ? 0 : -1;
}

const char *cli_str(int *argc, char **argv, const char *name, const char *def)
{
    int i = find(*argc, argv, name);
    if (i < 0 || i + 1 >= *argc) return def;
    const char *v = argv[i + 1];
    drop(argc, argv, i, 2);
    return v;
}

int cli_int(int *argc, char **argv, const char *name, int def)
{
    const char *v = cli_str(argc, argv, name, NULL);
    return v ? atoi(v) : def;
}

float cli_float(int *argc, char **argv, const char *name, float def)
{
    const char *v = cli_str(argc, argv, name, NULL);
    return v ? (float)atof(v) : def;
}

static const char *const voc_names[20] = {
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor"};

/* Darknet's data/coco.names order. */
static const char *const coco_names[80] = {
    "person", "bicycle", "car", "motorbike", "aeroplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "sofa",
    "pottedplant", "bed", "diningtable", "toilet", "tvmonitor", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush"};

const char *const *cli_default_names(int classes)
{
    return classes == 20 ? voc_names : classes == 80 ? coco_names : NULL;
}

int cli_fail(const char *what)
{
    fprintf(stderr, "darknet: %s: %s\n", what, dn_last_error());
    return 1;
}

int cli_gpus(const char *list, int nogpu, int *gpus, int cap, int *n)
{
    *n = 0;
    if (nogpu) return 0;
    if (list) return dn_parse_gpus(list, gpus, cap, n) == DN_OK ? 0 : cli_fail("-gpus");
    if (!dn_cuda_compiled()) return 0;
    if (dn_cuda_device_count() == 0) {
        fprintf(stderr, "darknet: no CUDA device found: running on the CPU\n");
        return 0;
    }
    gpus[0] = 0;
    *n = 1;
    return 0;
}

int cli_device(int *argc, char **argv, int cpu_kernel, int *gpu)
{
    const char *list = cli_str(argc, argv, "-gpus", NULL);
    int nogpu = cli_flag(argc, argv, "-nogpu"), gpus[16], n;
    *gpu = -1;
    if (cpu_kernel && list && !nogpu) {
        fprintf(stderr, "darknet: -ternary_kernel float and int8 run on the CPU: drop -gpus, or use -ternary_kernel off on the GPU\n");
        return 1;
    }
    if (cpu_kernel) return 0;
    if (cli_gpus(list, nogpu, gpus, 16, &n)) return 1;
    if (n) *gpu = gpus[0];
    return 0;
}
