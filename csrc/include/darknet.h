/* darknet.h: the one public C header of the ternary-weight Darknet core.
 *
 * Conventions:
 *  - every fallible function returns a dn_status; on failure the message
 *    (naming the file and line or byte offset of the bad input) is kept for
 *    dn_last_error() in the calling thread;
 *  - the library never exits or aborts on bad input;
 *  - tensors are float32, NCHW, contiguous; "per image" sizes exclude batch;
 *  - what an _init/_load allocates, the matching _free releases.
 */
#ifndef DARKNET_H
#define DARKNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    DN_OK = 0,
    DN_ERR_IO,       /* a file is missing or unreadable/unwritable */
    DN_ERR_PARSE,    /* malformed text input (cfg, data, list, label) */
    DN_ERR_FORMAT,   /* malformed binary input (weights, packed, image) */
    DN_ERR_VALUE,    /* an argument or option value is out of range */
    DN_ERR_NOMEM,    /* an allocation failed */
    DN_ERR_STATE,    /* the call does not fit the object's state */
    DN_ERR_UNSUPPORTED
} dn_status;

const char *dn_last_error(void);
const char *dn_status_name(dn_status s);
/* Warnings (e.g. unused cfg options) go to this sink; default prints to stderr.
 * Pass NULL to restore the default. */
typedef void (*dn_warning_fn)(const char *msg, void *user);
void dn_set_warning_handler(dn_warning_fn fn, void *user);

/* ---- network ---------------------------------------------------------- */
typedef struct dn_network dn_network;

typedef struct {
    const char *type;       /* cfg section name, e.g. "convolutional" */
    int in_c, in_h, in_w;
    int out_c, out_h, out_w;
    double bflops;          /* billions of floating point operations per image */
    int ternary;            /* ternary=1 in the cfg (conv only) */
    int filters, size, stride, pad, groups, batch_normalize; /* conv/pool, else 0 */
    const char *activation; /* name, or "" */
    int classes, num;       /* detector layers: classes, anchors predicted per cell */
    size_t nparams;         /* floats saved in .weights for this layer */
} dn_layer_info;

/* Parse cfg and build a network with random (seeded) weights.
 * batch <= 0 keeps the cfg's batch (1 for inference use). */
dn_status dn_network_load(dn_network **out, const char *cfg_path, int batch, uint64_t seed);
void dn_network_free(dn_network *net);

/* Read/write Darknet .weights. upto = -1: all layers, the file must match the
 * cfg exactly; upto = -2: all layers present in the file (a prefix such as
 * darknet53.conv.74 ends on a layer boundary); upto >= 0: layers [0, upto). */
dn_status dn_network_load_weights(dn_network *net, const char *path, int upto);
dn_status dn_network_save_weights(const dn_network *net, const char *path, int upto);

/* Change batch and input size (multiple of 32 for YOLO nets is the user's job). */
dn_status dn_network_resize(dn_network *net, int batch, int w, int h);
/* input: batch*c*h*w floats. */
dn_status dn_network_forward(dn_network *net, const float *input);
void dn_network_set_threads(dn_network *net, int nthreads);

int dn_network_num_layers(const dn_network *net);
void dn_network_input_shape(const dn_network *net, int *batch, int *c, int *h, int *w);
dn_status dn_network_layer_info(const dn_network *net, int i, dn_layer_info *out);
/* Output of layer i (batch*outputs floats) or NULL for a bad index. */
const float *dn_network_layer_output(const dn_network *net, int i);
/* The k-th saved tensor of layer i (file order): name, data (a view into the
 * network's one parameter block) and count. DN_ERR_VALUE past the end. */
dn_status dn_network_layer_param(dn_network *net, int i, int k, const char **name,
                                 float **data, size_t *n);
uint64_t dn_network_seen(const dn_network *net);
/* Batches done (seen / cfg batch) and the learning rate of the [net]
 * schedule (policy, steps, burn_in...) at that point. */
int dn_network_current_batch(const dn_network *net);
float dn_network_learning_rate(dn_network *net);
void dn_network_set_seen(dn_network *net, uint64_t seen);

/* ---- training --------------------------------------------------------- */
/* Switch training mode on (allocates gradients, momentum and deltas; every
 * layer must have a backward pass) or off. */
dn_status dn_network_set_train(dn_network *net, int on);
/* One optimiser step over a full cfg batch (batch = net batch * subdivisions
 * images, run as `subdivisions` sub-batches): images [batch][c][h][w], truth
 * [batch][max_boxes][5] (x, y, w, h, class; relative; zero rows unused).
 * *loss: the detector cost per image, as Darknet prints it. */
dn_status dn_network_train_step(dn_network *net, const float *images, const float *truth,
                                int max_boxes, float *loss);

/* Ground truth for the next training forward (the detector losses): truth
 * [batch][max_boxes][5] (x, y, w, h, class; relative centre/size), batch =
 * the network's batch. A box list ends at the first row with x == 0 or
 * w == 0. DN_ERR_VALUE for a used row with a non-finite value, a size <= 0
 * or a class that is not an integer in [0, classes). dn_network_train_step
 * calls it for each sub-batch. */
dn_status dn_network_set_truth(dn_network *net, const float *truth, int max_boxes);

/* For custom loops and gradient checks, after dn_network_forward in training
 * mode: backward from dL/d(last output) = out_grad (NULL: keep the deltas the
 * detector layers set, with the truth of dn_network_set_truth), accumulating
 * dL/dparam into the gradients and writing dL/dinput into in_grad (may be
 * NULL). A detector layer's delta is dL/d(its input) (its logistic/softmax is
 * part of the loss), so out_grad for a detector last layer is taken as that. */
dn_status dn_network_backward(dn_network *net, const float *out_grad, float *in_grad);
void dn_network_zero_grads(dn_network *net);
/* Gradient of the k-th saved tensor of layer i (NULL if not trainable or not training). */
float *dn_network_layer_grad(dn_network *net, int i, int k);
/* Sum of the detector layers' costs of the last forward (training mode). */
float dn_network_cost(const dn_network *net);

/* The whole Darknet training loop (`darknet detector train`). */
typedef struct {
    int iteration;          /* batches done (Darknet's "i") */
    float loss, avg_loss;   /* this batch; running average (0.9/0.1) */
    float learning_rate;
    double seconds;         /* this batch */
    uint64_t seen;          /* images */
    int width, height;      /* input size of this batch (random=1 changes it) */
    int skipped;            /* bad images/labels skipped so far */
} dn_train_stats;

/* Return nonzero to stop training (a checkpoint is written first). */
typedef int (*dn_train_callback)(const dn_train_stats *stats, void *user);

typedef struct {
    const char *data, *cfg;  /* .data and .cfg paths */
    const char *weights;     /* initial weights or NULL; a .conv.N prefix file is fine */
    const char *backup;      /* checkpoint folder; NULL: the .data file's backup */
    int max_batches;         /* <= 0: the cfg's */
    int clear;               /* reset `seen` to 0 */
    uint64_t seed;
    int nthreads;            /* <= 0: library default */
    int quiet;               /* no per-iteration lines on stdout */
    int max_skips;           /* bad images tolerated (< 0: unlimited) */
    dn_train_callback callback;
    void *user;
} dn_train_opts;

typedef struct {
    char final_path[4096], minloss_path[4096], backup_path[4096];
    float min_loss;          /* minimum running average loss */
    int iterations;          /* batches done at the end */
    int interrupted;         /* stopped by the callback */
} dn_train_result;

dn_status dn_train(const dn_train_opts *opts, dn_train_result *result);

/* ---- detection -------------------------------------------------------- */
typedef struct { float x, y, w, h; } dn_box; /* centre and size */

typedef struct {
    dn_box bbox;       /* in pixels of the original image (or relative, see below) */
    float objectness;
    int classes;
    float *prob;       /* classes entries, view into dn_detections storage */
} dn_detection;

typedef struct {
    int n, classes;
    dn_detection *dets;
    float *prob_storage;
} dn_detections;

/* Decode the detector layers of image b after dn_network_forward.
 * img_w/img_h: original image size; letterbox: the input was letterboxed.
 * relative != 0 gives boxes in [0,1] of the image instead of pixels. */
dn_status dn_network_detections(dn_network *net, int b, int img_w, int img_h,
                                float thresh, int letterbox, int relative,
                                dn_detections *out);
void dn_detections_free(dn_detections *d);
/* Darknet's per-class sort NMS: suppressed probabilities are set to 0. */
void dn_nms_sort(dn_detections *d, float iou_thresh);
float dn_box_iou(dn_box a, dn_box b);

/* ---- .data and .names files ---------------------------------------- */
typedef struct {
    int classes;
    char *train, *valid, *names_path, *backup; /* NULL when absent */
    char **names;                              /* from names_path, or NULL */
    int nnames;
} dn_data;

/* Read a Darknet .data file (key = value lines) and its names file. */
dn_status dn_data_load(dn_data *d, const char *path);
void dn_data_free(dn_data *d);
/* One name per line, blank lines skipped. */
dn_status dn_names_load(const char *path, char ***names, int *n);
void dn_names_free(char **names, int n);

/* ---- images ----------------------------------------------------------- */
typedef struct { int w, h, c; float *data; } dn_image; /* CHW, values in [0,1] */

dn_status dn_image_load(dn_image *out, const char *path, int channels);
dn_status dn_image_from_u8(dn_image *out, const uint8_t *hwc, int w, int h, int c);
dn_status dn_image_save_png(const dn_image *im, const char *path);
dn_status dn_image_letterbox(const dn_image *im, int w, int h, dn_image *out);
dn_status dn_image_resize(const dn_image *im, int w, int h, dn_image *out);
void dn_image_free(dn_image *im);
/* Draw detections above thresh with their class names (may be NULL). */
void dn_image_draw_detections(dn_image *im, const dn_detections *d, float thresh,
                              const char *const *names);

/* ---- labels and the training data loader ----------------------------- */
typedef struct { float x, y, w, h; int id; } dn_label; /* relative centre/size */

/* Darknet's label path: images/ and JPEGImages/ -> labels/, extension -> .txt. */
dn_status dn_label_path(const char *image_path, char *out, size_t cap);
/* Read `class cx cy w h` lines. A missing file gives 0 labels (an image
 * without objects). A bad line is an error naming file and line. */
dn_status dn_labels_load(const char *label_path, int classes, dn_label **out, int *n);

typedef struct dn_loader dn_loader;
typedef struct {
    const char *list_path;  /* file with one image path per line */
    int batch;              /* images per batch */
    int classes, max_boxes; /* truth rows per image (Darknet: 90 for yolo, 30 region) */
    int augment;            /* 1: jitter/flip/HSV as Darknet's detector training */
    float jitter, hue, saturation, exposure;
    int letterbox;          /* augment=0 only: letterbox instead of plain resize */
    uint64_t seed;
    int max_skips;          /* unreadable images/labels tolerated before an error (<0: unlimited) */
} dn_loader_opts;

dn_status dn_loader_open(dn_loader **out, const dn_loader_opts *opts);
/* Blocks for the next batch at input size w x h: images batch*3*h*w,
 * truth batch*max_boxes*5 floats (x, y, w, h, class; zero rows unused).
 * The next batch is prepared on a background thread meanwhile. Batches depend
 * only on the seed and their index, not on timing. */
dn_status dn_loader_next(dn_loader *ld, int w, int h, float *images, float *truth);
int dn_loader_size(const dn_loader *ld);     /* images in the list */
int dn_loader_skipped(const dn_loader *ld);  /* bad images/labels skipped so far */
void dn_loader_close(dn_loader *ld);

#ifdef __cplusplus
}
#endif
#endif
