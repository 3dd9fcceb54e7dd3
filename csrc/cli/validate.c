/* validate.c: `darknet detector map | valid | recall` over the .data file's
 * valid list, with Darknet's settings (map/valid: the cfg's input placement
 * (dn_network_letterbox; -letter_box / -no_letter_box override it), decode at
 * .005, per-class NMS .45 of the cfg's nms_kind; recall: plain resize, decode
 * at .001, NMS .4 by objectness). The work is the core's dn_validate*; this
 * file parses the options and prints. */
#include "args.h"
#include "darknet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Class names: the .data file's, else VOC's or COCO's (cli_default_names). */
static const char *const *class_names(const dn_data *d, int classes, int *n)
{
    if (d->names) { *n = d->nnames; return (const char *const *)d->names; }
    const char *const *names = cli_default_names(classes);
    *n = names ? classes : 0;
    return names;
}

static int progress_line(int done, int total, void *user)
{
    (void)user;
    if (done % 100 == 0 || done == total) fprintf(stderr, "\r%d / %d", done, total);
    if (done == total) fprintf(stderr, "\n");
    return 0;
}

static int recall_line(const dn_valid_image *im, void *user)
{
    dn_recall_stats *s = user;
    dn_recall_update(s, im, .001f, .5f);
    printf("%5d %5d %5d\tRPs/Img: %.2f\tIOU: %.2f%%\tRecall:%.2f%%\n", im->index, s->correct, s->total,
           (double)s->proposals / s->images, s->total ? s->iou_sum * 100 / s->total : 0.0,
           s->total ? 100. * s->correct / s->total : 0.0);
    fflush(stdout);
    return 0;
}

static int usage(const char *prog, const char *sub)
{
    fprintf(stderr, "usage: %s detector %s <data> <cfg> <weights>%s [-ternary_kernel off|float|int8] [-letter_box | -no_letter_box] [-gpus N | -nogpu]\n",
            prog, sub, !strcmp(sub, "map") ? " [-thresh t] [-iou_thresh 0.5] [-points 0|11|101]"
            : !strcmp(sub, "valid") ? " [-out prefix]" : "");
    return 1;
}

int cmd_detector_valid(int argc, char **argv, const char *sub)
{
    dn_validate_opts o;
    dn_validate_opts_default(&o);
    o.eval.thresh = cli_float(&argc, argv, "-thresh", .25f);
    o.eval.iou_thresh = cli_float(&argc, argv, "-iou_thresh", .5f);
    o.eval.points = cli_int(&argc, argv, "-points", 0);
    o.nthreads = cli_int(&argc, argv, "-nthreads", 0);
    dn_ternary_kernel tk;
    if (dn_ternary_kernel_parse(cli_str(&argc, argv, "-ternary_kernel", "off"), &tk) != DN_OK)
        return cli_fail("detector");
    o.ternary_kernel = tk;
    o.letterbox = cli_letterbox(&argc, argv);
    const char *prefix = cli_str(&argc, argv, "-out", NULL);
    int quiet = cli_flag(&argc, argv, "-quiet");
    if (cli_device(&argc, argv, tk != DN_TERNARY_OFF, &o.gpu)) return 1;
    if (argc < 6) return usage(argv[0], sub);
    if (o.eval.points != 0 && o.eval.points != 11 && o.eval.points != 101) {
        fprintf(stderr, "darknet detector %s: -points must be 0, 11 or 101\n", sub);
        return 1;
    }
    o.data = argv[3];
    o.cfg = argv[4];
    o.weights = argv[5];
    if (!quiet) o.progress = progress_line;
    char what[64];
    snprintf(what, sizeof what, "detector %s", sub);
    dn_data data;
    memset(&data, 0, sizeof data);
    if (dn_data_load(&data, o.data) != DN_OK) return cli_fail(what);
    int rc = 0, nnames;
    double t0 = dn_seconds();
    if (!strcmp(sub, "map")) {
        dn_eval_result r;
        if (dn_validate(&o, &r) != DN_OK) rc = cli_fail(what);
        else {
            const char *const *names = class_names(&data, r.classes, &nnames);
            size_t n = dn_eval_result_format(&r, names, nnames, NULL, 0);
            char *text = malloc(n + 1);
            if (!text) rc = 1;
            else {
                dn_eval_result_format(&r, names, nnames, text, n + 1);
                printf("\n calculation mAP (mean average precision)...\n%s", text);
                double all = r.seconds_network + r.seconds_decode + r.seconds_eval + 1e-12;
                printf("Total Detection Time: %.0f Seconds (images and network %.1f s = %.1f%%, decoding "
                       "and NMS %.1f s = %.1f%%, labels, matching and AP %.1f s = %.1f%%)\n",
                       dn_seconds() - t0, r.seconds_network, 100 * r.seconds_network / all, r.seconds_decode,
                       100 * r.seconds_decode / all, r.seconds_eval, 100 * r.seconds_eval / all);
                free(text);
            }
            dn_eval_result_free(&r);
        }
    } else if (!strcmp(sub, "valid")) {
        const char *const *names = class_names(&data, data.classes, &nnames);
        if (dn_validate_write_results(&o, NULL, prefix, names, nnames) != DN_OK) rc = cli_fail(what);
        else fprintf(stderr, "Total Detection Time: %f Seconds\n", dn_seconds() - t0);
    } else if (!strcmp(sub, "recall")) {
        dn_recall_stats s;
        memset(&s, 0, sizeof s);
        o.det_thresh = .001f;
        o.nms = .4f;
        o.nms_objectness = 1;
        if (o.letterbox < 0) o.letterbox = 0;
        o.progress = NULL;
        o.on_image = recall_line;
        o.image_user = &s;
        if (dn_validate(&o, NULL) != DN_OK) rc = cli_fail(what);
    } else {
        rc = usage(argv[0], sub);
    }
    dn_data_free(&data);
    return rc;
}
