/* leak_cycle.c: the C core's load / forward / train-step / free cycle, N
 * times, for LeakSanitizer (scripts/sanitize.sh builds it against the
 * sanitized build/san/libdarknet.a and runs it with leak detection on).
 * Each cycle: build a network (float, ternary and batch-norm convs, route,
 * upsample, two yolo heads), save and reload its .weights and packed file,
 * forward, one training step, free; also load a cfg and a weights file that
 * are bad, read labels and an image, and run the data loader (its thread)
 * for one batch. Every few cycles a short dn_train run (loader thread,
 * checkpoints) is made. Exit status 1 on any unexpected result.
 *   leak_cycle [N]      (default 100)
 */
#define _GNU_SOURCE
#include "darknet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char cfg_text[] =
    "[net]\nbatch=2\nsubdivisions=1\nwidth=32\nheight=32\nchannels=3\nlearning_rate=0.001\nmax_batches=2\n"
    "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\nternary=1\n"
    "[convolutional]\nfilters=8\nsize=3\npad=1\nactivation=leaky\n"
    "[maxpool]\nsize=2\nstride=2\n"
    "[convolutional]\nfilters=21\nsize=1\nactivation=linear\n"
    "[yolo]\nmask=0,1,2\nanchors=4,4,8,8,12,12,16,16\nclasses=2\nnum=4\nmax=4\n"
    "[route]\nlayers=-4\n"
    "[upsample]\nstride=1\n"
    "[convolutional]\nfilters=7\nsize=1\nactivation=linear\n"
    "[yolo]\nmask=3\nanchors=4,4,8,8,12,12,16,16\nclasses=2\nnum=4\nmax=4\n";

static char dir[64];

static void quiet(const char *msg, void *user) { (void)msg; (void)user; }

static const char *file(const char *name, char *buf)
{
    snprintf(buf, 256, "%s/%s", dir, name);
    return buf;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    fputs(text, f);
    return fclose(f) == 0;
}

#define CHECK(x) do { dn_status st_ = (x); if (st_ != DN_OK) { \
    fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, dn_last_error()); return 1; } } while (0)
#define EXPECT_FAIL(x) do { if ((x) == DN_OK) { \
    fprintf(stderr, "%s:%d: %s should have failed\n", __FILE__, __LINE__, #x); return 1; } } while (0)

static int setup(void)
{
    char p[256], q[256];
    if (!write_text(file("net.cfg", p), cfg_text)) return 1;
    if (!write_text(file("bad.cfg", p), "[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=x\n")) return 1;
    if (!write_text(file("bad.weights", p), "tiny")) return 1;
    if (mkdir(file("images", p), 0777) || mkdir(file("labels", p), 0777)) return 1;
    unsigned char px[24 * 20 * 3];
    for (size_t i = 0; i < sizeof px; ++i) px[i] = (unsigned char)(i * 37);
    dn_image im;
    CHECK(dn_image_from_u8(&im, px, 24, 20, 3));
    CHECK(dn_image_save_png(&im, file("images/a.png", p)));
    CHECK(dn_image_save_png(&im, file("images/b.png", p)));
    dn_image_free(&im);
    if (!write_text(file("labels/a.txt", p), "0 0.5 0.5 0.3 0.4\n1 0.2 0.3 0.1 0.1\n")) return 1;
    if (!write_text(file("labels/b.txt", p), "7 0.5 0.5 0.3 0.4\n")) return 1; /* bad class: skipped */
    char list[600];
    snprintf(list, sizeof list, "%s/images/a.png\n%s/images/b.png\n%s/images/missing.png\n", dir, dir, dir);
    if (!write_text(file("list.txt", p), list)) return 1;
    char data[600];
    snprintf(data, sizeof data, "classes=2\ntrain=%s\nvalid=%s\nbackup=%s/backup\n", file("list.txt", q),
             file("list.txt", q), dir);
    return !write_text(file("x.data", p), data);
}

static int cycle(int i)
{
    char p[256], q[256];
    dn_network *net;
    CHECK(dn_network_load(&net, file("net.cfg", p), 0, (uint64_t)i));
    CHECK(dn_network_save_weights(net, file("w.weights", p), -1));
    CHECK(dn_network_save_packed(net, file("w.tpk", p)));
    CHECK(dn_network_load_weights(net, file("w.weights", p), -1));
    CHECK(dn_network_load_weights(net, file("w.tpk", p), -1));
    EXPECT_FAIL(dn_network_load_weights(net, file("bad.weights", p), -1));
    int b, c, h, w;
    dn_network_input_shape(net, &b, &c, &h, &w);
    size_t n = (size_t)b * c * h * w;
    float *x = malloc(n * sizeof(float)), truth[2 * 4 * 5] = {.5f, .5f, .3f, .4f, 1};
    for (size_t k = 0; k < n; ++k) x[k] = (float)((k * 7 + (size_t)i) % 13) / 13.f;
    CHECK(dn_network_forward(net, x));
    dn_detections d;
    CHECK(dn_network_detections(net, 0, 64, 48, .001f, 1, 0, &d));
    dn_nms_sort(&d, .45f);
    dn_detections_free(&d);
    CHECK(dn_network_set_train(net, 1));
    float loss;
    CHECK(dn_network_train_step(net, x, truth, b, 4, &loss));
    CHECK(dn_network_resize(net, b, 64, 64));
    free(x);
    dn_network_free(net);
    EXPECT_FAIL(dn_network_load(&net, file("bad.cfg", p), 1, 0));
    EXPECT_FAIL(dn_network_load(&net, file("missing.cfg", p), 1, 0));

    dn_label *labels;
    int nl;
    CHECK(dn_labels_load(file("labels/a.txt", p), 2, &labels, &nl));
    free(labels);
    EXPECT_FAIL(dn_labels_load(file("labels/b.txt", p), 2, &labels, &nl));
    dn_image im;
    CHECK(dn_image_load(&im, file("images/a.png", p), 0));
    dn_image_free(&im);
    EXPECT_FAIL(dn_image_load(&im, file("labels/a.txt", p), 3));
    dn_data data;
    CHECK(dn_data_load(&data, file("x.data", p)));
    dn_data_free(&data);

    dn_loader_opts lo = {file("list.txt", q), 4, 2, 4, 1, .2f, .1f, 1.5f, 1.5f, 0, (uint64_t)i, -1};
    dn_loader *ld;
    CHECK(dn_loader_open(&ld, &lo));
    float images[4 * 3 * 32 * 32], t[4 * 4 * 5];
    CHECK(dn_loader_next(ld, 32, 32, images, t));
    dn_loader_close(ld); /* with the next batch still being prefetched */

    if (i % 25 == 0) {
        dn_train_opts o;
        memset(&o, 0, sizeof o);
        o.data = file("x.data", p);
        o.cfg = file("net.cfg", q);
        o.max_batches = 2;
        o.seed = (uint64_t)i;
        o.quiet = 1;
        o.nthreads = 1;
        o.max_skips = -1;
        dn_train_result r;
        CHECK(dn_train(&o, &r));
    }
    return 0;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 100;
    snprintf(dir, sizeof dir, "/tmp/dn_leak_XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    dn_set_warning_handler(quiet, NULL);
    int bad = setup();
    for (int i = 0; i < n && !bad; ++i) bad = cycle(i);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) bad = 1;
    printf("leak_cycle: %d cycles %s\n", n, bad ? "FAILED" : "ok");
    return bad;
}
