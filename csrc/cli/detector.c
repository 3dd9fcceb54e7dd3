/* detector.c: `darknet detector test` (and `detect`): letterbox or stretch each
 * image to the network input (the cfg's placement, or -letter_box /
 * -no_letter_box), run it, decode and NMS the boxes, print them Darknet
 * style and write predictions.png with the boxes drawn; `-out x.json` and
 * `-save_labels` also write AlexeyAB's JSON results and Darknet label files
 * (boxes clipped to the image, as darknet_py's DetectResult). `detector train`:
 * the core's training loop; SIGINT/SIGTERM stop it after a checkpoint. */
#include "args.h"
#include "darknet.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Class names for n classes: from the .data file, else VOC's or COCO's
 * (cli_default_names); entries without a name are NULL (printed as the
 * class number). */
static const char **names_for(const dn_data *d, int n)
{
    const char **names = calloc((size_t)n + 1, sizeof(char *));
    const char *const *defaults = d->names ? NULL : cli_default_names(n);
    for (int i = 0; names && i < n; ++i) {
        if (d->names && i < d->nnames) names[i] = d->names[i];
        else if (defaults) names[i] = defaults[i];
    }
    return names;
}

/* Options of detector test. */
typedef struct {
    float thresh, nms;
    const char *png;    /* the drawn image: <png>.png */
    FILE *json;         /* -out x.json: AlexeyAB's result file (a JSON array), or NULL */
    int frames;         /* images written to json so far */
    int save_labels;    /* -save_labels: Darknet label files beside the images */
} test_opts;

/* The box of d clipped to the image (left, top, right, bottom in pixels), as
 * darknet_py's Network.detect; 0 when nothing of it is inside the image. */
static int clip_box(dn_box b, int w, int h, double out[4])
{
    double l = (double)b.x - b.w / 2., t = (double)b.y - b.h / 2.;
    double r = (double)b.x + b.w / 2., bt = (double)b.y + b.h / 2.;
    out[0] = l > 0 ? l : 0;
    out[1] = t > 0 ? t : 0;
    out[2] = r < w - 1. ? r : w - 1.;
    out[3] = bt < h - 1. ? bt : h - 1.;
    return out[2] > out[0] && out[3] > out[1];
}

/* The clipped box as relative centre and size, as darknet_py's DetectResult. */
static void relative_box(const double c[4], int w, int h, double rel[4])
{
    rel[0] = (c[0] + c[2]) / 2 / w;
    rel[1] = (c[1] + c[3]) / 2 / h;
    rel[2] = (c[2] - c[0]) / w;
    rel[3] = (c[3] - c[1]) / h;
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; ++s) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 32) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

/* One frame of -out x.json: every (detection, class above thresh) whose
 * clipped box is not empty. */
static void json_frame(test_opts *o, const char *path, const dn_detections *dets, const char **names,
                       int w, int h)
{
    FILE *f = o->json;
    fprintf(f, "%s{\n \"frame_id\":%d,\n \"filename\":", o->frames ? ",\n" : "[\n", o->frames + 1);
    o->frames++;
    json_string(f, path);
    fprintf(f, ",\n \"objects\": [");
    int first = 1;
    for (int i = 0; i < dets->n; ++i) {
        const dn_detection *d = &dets->dets[i];
        double c[4], r[4];
        if (!clip_box(d->bbox, w, h, c)) continue;
        relative_box(c, w, h, r);
        for (int k = 0; k < dets->classes; ++k) {
            if (d->prob[k] <= o->thresh) continue;
            char num[16];
            snprintf(num, sizeof num, "%d", k);
            fprintf(f, "%s\n  {\"class_id\":%d, \"name\":", first ? "" : ",", k);
            json_string(f, names[k] ? names[k] : num);
            fprintf(f, ", \"relative_coordinates\":{\"center_x\":%.6f, \"center_y\":%.6f, \"width\":%.6f, "
                       "\"height\":%.6f}, \"confidence\":%.6f}", r[0], r[1], r[2], r[3], d->prob[k]);
            first = 0;
        }
    }
    fprintf(f, "\n ]\n}");
}

/* -save_labels: "class cx cy w h" lines (relative, the clipped box) in the
 * image's Darknet label file (images/ -> labels/, extension -> .txt), its
 * folder made when missing; written to a temporary file and renamed. */
static int save_labels(const char *path, const dn_detections *dets, float thresh, int w, int h)
{
    char out[4096], tmp[4200];
    if (dn_label_path(path, out, sizeof out) != DN_OK) return cli_fail("detector test -save_labels");
    char *slash = strrchr(out, '/');
    if (slash && slash != out) {
        *slash = 0;
        mkdir(out, 0777); /* an existing folder is fine; a failure shows at fopen */
        *slash = '/';
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "darknet: detector test -save_labels: %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    for (int i = 0; i < dets->n; ++i) {
        double c[4], r[4];
        if (!clip_box(dets->dets[i].bbox, w, h, c)) continue;
        relative_box(c, w, h, r);
        for (int k = 0; k < dets->classes; ++k)
            if (dets->dets[i].prob[k] > thresh) fprintf(f, "%d %.6f %.6f %.6f %.6f\n", k, r[0], r[1], r[2], r[3]);
    }
    if (fclose(f) != 0 || rename(tmp, out) != 0) {
        fprintf(stderr, "darknet: detector test -save_labels: %s: %s\n", out, strerror(errno));
        remove(tmp);
        return 1;
    }
    return 0;
}

static int test_one(dn_network *net, const dn_data *data, const char *path, test_opts *o)
{
    dn_image im, sized;
    int b, c, h, w;
    dn_network_input_shape(net, &b, &c, &h, &w);
    if (dn_image_load(&im, path, 3) != DN_OK) return cli_fail("detector test");
    const int letterbox = dn_network_letterbox(net);
    dn_status st = dn_image_fit(&im, w, h, letterbox, &sized);
    if (st != DN_OK) { dn_image_free(&im); return cli_fail("detector test"); }
    double t0 = dn_seconds();
    st = dn_network_forward(net, sized.data);
    double t1 = dn_seconds();
    dn_image_free(&sized);
    dn_detections dets;
    if (st == DN_OK) st = dn_network_detections(net, 0, im.w, im.h, o->thresh, letterbox, 0, &dets);
    if (st == DN_OK && o->nms > 0 && (st = dn_network_nms(net, &dets, o->nms)) != DN_OK) dn_detections_free(&dets);
    if (st != DN_OK) { dn_image_free(&im); return cli_fail("detector test"); }
    printf("%s: Predicted in %f seconds.\n", path, t1 - t0);
    const char **names = names_for(data, dets.classes);
    int rc = names ? 0 : 1;
    for (int i = 0; names && i < dets.n; ++i) {
        const dn_detection *d = &dets.dets[i];
        for (int k = 0; k < dets.classes; ++k) {
            if (d->prob[k] <= o->thresh) continue;
            float l = d->bbox.x - d->bbox.w / 2, t = d->bbox.y - d->bbox.h / 2;
            if (names[k]) printf("%s", names[k]);
            else printf("%d", k);
            printf(": %.0f%%\t(left_x: %4.0f   top_y: %4.0f   width: %4.0f   height: %4.0f)\n",
                   d->prob[k] * 100, l, t, d->bbox.w, d->bbox.h);
        }
    }
    if (names && o->json) json_frame(o, path, &dets, names, im.w, im.h);
    if (!rc && o->save_labels) rc = save_labels(path, &dets, o->thresh, im.w, im.h);
    dn_image_draw_detections(&im, &dets, o->thresh, names);
    char png[4096];
    snprintf(png, sizeof png, "%s.png", o->png);
    if (!rc && dn_image_save_png(&im, png) != DN_OK) rc = cli_fail("detector test");
    free(names);
    dn_detections_free(&dets);
    dn_image_free(&im);
    return rc;
}

/* -out: a name ending in .json is AlexeyAB's result file; any other is
 * pjreddie's name of the drawn image (without .png). */
static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int detector_test(int argc, char **argv)
{
    test_opts o = {0};
    o.thresh = cli_float(&argc, argv, "-thresh", .25f);
    o.nms = cli_float(&argc, argv, "-nms", .45f);
    const char *out = cli_str(&argc, argv, "-out", "predictions");
    const char *json = ends_with(out, ".json") ? out : NULL;
    o.png = json ? "predictions" : out;
    o.save_labels = cli_flag(&argc, argv, "-save_labels");
    int nthreads = cli_int(&argc, argv, "-nthreads", 0);
    int letterbox = cli_letterbox(&argc, argv);
    dn_ternary_kernel tk;
    if (dn_ternary_kernel_parse(cli_str(&argc, argv, "-ternary_kernel", "off"), &tk) != DN_OK)
        return cli_fail("detector test");
    int gpu;
    if (cli_device(&argc, argv, tk != DN_TERNARY_OFF, &gpu)) return 1;
    if (argc < 6) {
        fprintf(stderr, "usage: %s detector test <data> <cfg> <weights> [image] [-thresh t] [-out name|result.json] [-save_labels] [-ternary_kernel off|float|int8] [-letter_box | -no_letter_box] [-gpus N | -nogpu]\n", argv[0]);
        return 1;
    }
    const char *datafile = argv[3], *cfg = argv[4], *weights = argv[5];
    const char *image = argc > 6 ? argv[6] : NULL;
    dn_data data;
    memset(&data, 0, sizeof data);
    if (*datafile && dn_data_load(&data, datafile) != DN_OK) return cli_fail("detector test");
    dn_network *net;
    if (dn_network_load(&net, cfg, 1, 0) != DN_OK) { dn_data_free(&data); return cli_fail("detector test"); }
    dn_network_set_threads(net, nthreads);
    dn_network_set_ternary_kernel(net, tk);
    dn_network_set_letterbox(net, letterbox);
    int rc = 0;
    char json_tmp[4200] = "";
    if (*weights && dn_network_load_weights(net, weights, -1) != DN_OK) rc = cli_fail("detector test");
    if (!rc && gpu >= 0 && dn_network_set_device(net, gpu) != DN_OK) rc = cli_fail("detector test");
    if (!rc && json) {
        snprintf(json_tmp, sizeof json_tmp, "%s.tmp", json);
        if (!(o.json = fopen(json_tmp, "w"))) {
            fprintf(stderr, "darknet: detector test -out: %s: %s\n", json_tmp, strerror(errno));
            rc = 1;
        }
    }
    if (!rc && image) rc = test_one(net, &data, image, &o);
    else if (!rc) {
        char line[4096];
        while (1) {
            printf("Enter Image Path: ");
            fflush(stdout);
            if (!fgets(line, sizeof line, stdin)) break;
            line[strcspn(line, "\r\n")] = 0;
            if (!*line) continue;
            rc |= test_one(net, &data, line, &o);
        }
        printf("\n");
    }
    if (o.json) {
        fputs(o.frames ? "\n]\n" : "[\n]\n", o.json);
        if (fclose(o.json) != 0 || rename(json_tmp, json) != 0) {
            fprintf(stderr, "darknet: detector test -out: %s: %s\n", json, strerror(errno));
            remove(json_tmp);
            rc = 1;
        }
    }
    dn_network_free(net);
    dn_data_free(&data);
    return rc;
}

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int stop_on_signal(const dn_train_stats *s, void *user)
{
    (void)s; (void)user;
    if (stop_requested) fprintf(stderr, "\nStopping: writing a checkpoint...\n");
    return stop_requested;
}

static int detector_train(int argc, char **argv)
{
    dn_train_opts o;
    memset(&o, 0, sizeof o);
    o.clear = cli_flag(&argc, argv, "-clear");
    int map_every = cli_int(&argc, argv, "-map_every", 100);
    o.map_every = cli_flag(&argc, argv, "-map") ? map_every : 0;
    o.nthreads = cli_int(&argc, argv, "-nthreads", 0);
    o.seed = (uint64_t)cli_int(&argc, argv, "-seed", 0);
    o.max_batches = cli_int(&argc, argv, "-max_batches", 0);
    o.backup = cli_str(&argc, argv, "-backup", NULL);
    o.max_skips = cli_int(&argc, argv, "-max_skips", -1);
    int lb = cli_letterbox(&argc, argv);
    o.letterbox = lb < 0 ? 0 : lb ? 1 : -1;
    int recal = cli_int(&argc, argv, "-bn_recalibrate", -2);
    o.bn_recalibrate = recal == -2 ? 0 : recal ? 1 : -1;
    o.average_last = cli_int(&argc, argv, "-average_last", 0);
    o.teacher = cli_str(&argc, argv, "-teacher", NULL);
    o.teacher_cfg = cli_str(&argc, argv, "-teacher_cfg", NULL);
    o.distill = cli_float(&argc, argv, "-distill", 1);
    const char *gpus_arg = cli_str(&argc, argv, "-gpus", NULL);
    int nogpu = cli_flag(&argc, argv, "-nogpu");
    if (argc < 5) {
        fprintf(stderr, "usage: %s detector train <data> <cfg> [weights] [-clear] [-map [-map_every N]] [-nthreads N] [-seed S] [-backup dir] [-max_skips N] [-letter_box | -no_letter_box] [-bn_recalibrate 0|1] [-average_last N] [-teacher weights [-teacher_cfg cfg] [-distill W]] [-gpus 0,1 | -nogpu]\n", argv[0]);
        return 1;
    }
    int gpus[16];
    if (cli_gpus(gpus_arg, nogpu, gpus, 16, &o.ngpus)) return 1;
    o.gpus = gpus;
    o.data = argv[3];
    o.cfg = argv[4];
    o.weights = argc > 5 ? argv[5] : NULL;
    o.callback = stop_on_signal;
    stop_requested = 0;  /* in-process (_core.cli_main) a second run starts afresh */
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    dn_train_result r;
    if (dn_train(&o, &r) != DN_OK) return cli_fail("detector train");
    printf("Saved %s\nMin-loss weights (avg loss %f): %s\n", r.interrupted ? r.backup_path : r.final_path,
           r.min_loss, r.minloss_path);
    if (r.best_map >= 0) printf("Best mAP %.4f: %s\n", r.best_map, r.best_path);
    return 0;
}

int cmd_detector(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s detector [test] ...\n", argv[0]);
        return 1;
    }
    if (!strcmp(argv[2], "test")) return detector_test(argc, argv);
    if (!strcmp(argv[2], "train")) return detector_train(argc, argv);
    if (!strcmp(argv[2], "map") || !strcmp(argv[2], "valid") || !strcmp(argv[2], "recall")) return cmd_detector_valid(argc, argv, argv[2]);
    if (!strcmp(argv[2], "calc_anchors")) return cmd_detector_anchors(argc, argv);
    fprintf(stderr, "darknet detector: unknown subcommand '%s'\n", argv[2]);
    return 1;
}
