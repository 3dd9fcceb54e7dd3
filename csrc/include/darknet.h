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
/* A monotonic clock in seconds (for timing runs). */
double dn_seconds(void);
/* Warnings (e.g. unused cfg options) go to this sink; default prints to stderr.
 * Pass NULL to restore the default. */
typedef void (*dn_warning_fn)(const char *msg, void *user);
void dn_set_warning_handler(dn_warning_fn fn, void *user);

/* Run-time settings (kernel paths and switches), each a choice among named
 * values; the first value of each comes from its environment variable,
 * read once. dn_option_help(k) describes setting k (0, 1, ... until NULL).
 *   conv_algo     auto|ref|gemm|winograd|direct   (DN_CONV_ALGO)
 *   ternary_algo  auto|packed|direct|winograd     (DN_TERNARY_ALGO)
 *   simd          auto|0|1|2                      (DN_SIMD; a cap)
 *   cudnn         1|0                             (DARKNET_CUDNN)
 * dn_set_option(name, NULL) restores the default (not the environment's). */
dn_status dn_set_option(const char *name, const char *value);
const char *dn_get_option(const char *name);   /* NULL for an unknown name */
const char *dn_option_name(int k);
const char *dn_option_help(int k, char *buf, size_t n);

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
    double forward_ms;      /* wall time of this layer in the last host forward (0: not
                               run; a layer whose output the previous one wrote, fused,
                               counts there) */
    /* A conv layer on cuDNN, once it ran: cuDNN's names of its algorithms
     * (e.g. "IMPLICIT_PRECOMP_GEMM"), else NULL; and the workspace bytes they
     * need, at most [net] workspace_size_limit_MB (default 1024) or the
     * im2col buffer when that is larger. */
    const char *cudnn_forward, *cudnn_backward_filter, *cudnn_backward_data;
    size_t cudnn_workspace;
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
/* How images are placed on the network input, for inference and training:
 * 1 letterbox (aspect kept, grey borders: pjreddie's Darknet), 0 stretch to
 * the input size (AlexeyAB's, unless his cfg says letter_box=1). Decided by
 * the cfg: [net] letter_box when present, else stretch for a cfg in
 * AlexeyAB's dialect (a [yolo] option or [net] key only his fork has, see
 * README) and letterbox otherwise. The setter overrides it (1, 0; -1 goes
 * back to the cfg's choice). */
int dn_network_letterbox(const dn_network *net);
void dn_network_set_letterbox(dn_network *net, int letterbox);
/* 1 when the cfg is in AlexeyAB's dialect (see dn_network_letterbox). */
int dn_network_is_alexeyab(const dn_network *net);
void dn_network_input_shape(const dn_network *net, int *batch, int *c, int *h, int *w);
dn_status dn_network_layer_info(const dn_network *net, int i, dn_layer_info *out);
/* Output of layer i (batch*outputs floats) or NULL for a bad index. An
 * inference forward may skip an output only the next layer reads (a
 * ternary conv on the int8 kernel writes its 2x2 maxpool's output
 * directly); it is then computed here, on the first call after the forward. */
const float *dn_network_layer_output(const dn_network *net, int i);
/* (NULL when that computation fails; dn_last_error says why.) */
/* The k-th saved tensor of layer i (file order): name, data (a view into the
 * network's one parameter block) and count. DN_ERR_VALUE past the end.
 * The view may be written: from the first call on, the network's caches of
 * values derived from the weights (Winograd filters, ternary codes) check
 * the weights' content at every forward (one read of them) so as to notice
 * such writes; networks never asked for a view skip that read. */
dn_status dn_network_layer_param(dn_network *net, int i, int k, const char **name,
                                 float **data, size_t *n);
uint64_t dn_network_seen(const dn_network *net);
/* Batches done (seen / cfg batch) and the learning rate of the [net]
 * schedule (policy, steps, burn_in...) at that point. */
int dn_network_current_batch(const dn_network *net);
float dn_network_learning_rate(dn_network *net);
void dn_network_set_seen(dn_network *net, uint64_t seen);

/* ---- devices (CUDA) ---------------------------------------------------- */
/* 1 when the library was built with the CUDA backend (make GPU=1, DARKNET_GPU=1). */
int dn_cuda_compiled(void);
/* CUDA devices visible to this process: 0 in a CPU build, without a driver
 * or without a device. */
int dn_cuda_device_count(void);
/* Run the network on CUDA device gpu (>= 0) or on the host (-1): params,
 * outputs, deltas and the optimiser state move; the host arrays (params,
 * layer outputs, grads) stay readable through this API, refreshed on demand.
 * DN_ERR_UNSUPPORTED in a CPU build or for a layer type without a CUDA
 * implementation that has params; DN_ERR_VALUE when the device does not exist. */
dn_status dn_network_set_device(dn_network *net, int gpu);
/* The device of dn_network_set_device, -1 on the host. */
int dn_network_device(const dn_network *net);
/* 1 when the network's conv layers run on cuDNN: a device network of a
 * build with cuDNN (make GPU=1 CUDNN=1) unless the environment had
 * DARKNET_CUDNN=0 when the device was set; else im2col + GEMM. */
int dn_network_uses_cudnn(const dn_network *net);
/* The device quantiser (the per-layer/per-filter TWN reductions of the
 * ternary conv layers) on host arrays, for tests: w[groups*per] is copied to
 * device gpu, ternarised there, t[groups*per] and alphas[groups] copied back.
 * Same errors as dn_network_set_device. */
dn_status dn_cuda_ternarize(int gpu, const float *w, int groups, size_t per, float *t, float *alphas);
/* Parse Darknet's -gpus list ("0", "0,1") into gpus[cap]; *n the count.
 * DN_ERR_VALUE for anything but comma-separated non-negative integers. */
dn_status dn_parse_gpus(const char *list, int *gpus, int cap, int *n);

/* ---- training --------------------------------------------------------- */
/* Switch training mode on (allocates gradients, momentum and deltas; every
 * layer must have a backward pass) or off. */
dn_status dn_network_set_train(dn_network *net, int on);
/* One optimiser step over n images (a multiple of the net batch; Darknet's
 * step is n = batch*subdivisions of the cfg), run as n/batch sub-batches:
 * images [n][c][h][w], truth [n][max_boxes][5] (x, y, w, h, class; relative;
 * zero rows unused). *loss: the detector cost per image, as Darknet prints it. */
dn_status dn_network_train_step(dn_network *net, const float *images, const float *truth, int n,
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
/* Set the batch-norm rolling statistics to the plain average of the batch
 * statistics over n images (a multiple of the batch), with the weights as they
 * are now. Darknet's running average (.99/.01) lags behind weights that are
 * still moving; short trainings call this before their weights are used. */
dn_status dn_network_bn_recalibrate(dn_network *net, const float *images, int n);
/* Knowledge distillation: each training forward of net (host only) first
 * runs teacher (in inference mode, resized to net's input) on the same
 * input, and each detector layer of net adds weight * its distillation loss
 * towards the teacher's matching detector layer (the k-th detector of each;
 * same kind, classes, anchors per cell and stride, else DN_ERR_VALUE naming
 * the cfg line) to its cost and gradient. [yolo]: objectness-scaled (per
 * anchor and cell, the objectness term plus the box and class terms times
 * the teacher's objectness): soft binary cross-entropy (as KL divergence, 0
 * when equal) for the logistic outputs (x, y with scale_x_y undone,
 * objectness, classes), half the squared difference for the raw w, h
 * (new_coords: every entry, already logistic). The teacher
 * is not owned and must outlive its use; teacher NULL removes it. */
dn_status dn_network_set_teacher(dn_network *net, dn_network *teacher, float weight);
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
    float map;              /* mAP on the valid list at this iteration, or -1 */
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
    int map_every;           /* > 0: mAP on the .data valid list every N iterations,
                                <base>_best.weights for the best, chart.png */
    dn_train_callback callback;
    void *user;
    const int *gpus;         /* CUDA devices to train on (data parallel), or NULL */
    int ngpus;               /* entries in gpus; 0: train on the host */
    int letterbox;           /* input placement: 0 the cfg's (dn_network_letterbox), 1 letterbox, -1 stretch */
    int bn_recalibrate;      /* re-estimate the batch-norm statistics of the final and min-loss
                                weights at the end (population statistics of 512 un-augmented
                                training images): 0 (default) when training from scratch, and in a
                                fine-tune only when it moved the weights (relative change > 3e-4),
                                so a run that leaves them (rate 0, burn-in) keeps the pretrained
                                statistics; 1 always; -1 never */
    int average_last;        /* > 0: the final weights are the average of the weights after each of
                                the last N iterations (damps the straight-through oscillation of
                                ternary layers at the end; their float shadow weights are averaged) */
    const char *teacher;     /* distillation (dn_network_set_teacher): the teacher's weights, or NULL */
    const char *teacher_cfg; /* the teacher's cfg; NULL: cfg */
    float distill;           /* weight of the distillation loss (<= 0: 1) */
} dn_train_opts;

typedef struct {
    char final_path[4096], minloss_path[4096], backup_path[4096], best_path[4096];
    /* with ternary layers: <base>.minloss.backup, the min-loss weights with the
     * float shadow weights of the ternary layers (minloss_path holds their TWN
     * values), to train on from; else "" */
    char minloss_backup_path[4096];
    float min_loss;          /* minimum running average loss */
    float best_map;          /* with map_every: the best mAP (-1: none computed) */
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
/* Darknet's per-class sort NMS: suppressed probabilities are set to 0 and
 * the detections end in Darknet's order. Fails only without memory. */
dn_status dn_nms_sort(dn_detections *d, float iou_thresh);
/* AlexeyAB's NMS kinds ([yolo] nms_kind), per class by probability as
 * dn_nms_sort, suppressing when a measure exceeds iou_thresh: DEFAULT the
 * IoU (dn_nms_sort), GREEDY (his greedynms) iou - (d^2/c^2)^0.6, DIOU
 * iou - (d^2/c^2)^beta (d: centre distance, c: enclosing diagonal). */
typedef enum { DN_NMS_DEFAULT = 0, DN_NMS_GREEDY, DN_NMS_DIOU } dn_nms_kind;
dn_status dn_nms(dn_detections *d, float iou_thresh, dn_nms_kind kind, float beta);
/* The network's NMS: the kind and beta_nms of its last [yolo] layer that
 * names one (as AlexeyAB's detector), else DEFAULT. */
dn_status dn_network_nms(const dn_network *net, dn_detections *d, float iou_thresh);
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

/* ---- evaluation: AP/mAP and validation over an image list ------------ */
/* One ground-truth object and one scored detection (a detection box counts
 * once per class whose probability passes the decoding threshold). Boxes are
 * centre/size in any unit, the same for both (the validation driver uses
 * pixels of the original image). Image indices are the caller's (>= 0). */
typedef struct { dn_box box; int class_id; int difficult; } dn_eval_truth;
typedef struct { dn_box box; int class_id; float score; } dn_eval_det;

typedef struct dn_evaluator dn_evaluator;

typedef struct {
    float iou_thresh;   /* a detection matches an object at IoU >= iou_thresh (0.5) */
    float thresh;       /* confidence threshold of TP/FP/FN, precision, recall: score > thresh */
    int points;         /* AP: 0 area under the monotone PR curve (VOC2010+), 11 (VOC2007), 101 */
} dn_eval_opts;

typedef struct {
    double ap;          /* 0 when the class has no (non-difficult) ground truth */
    int truth;          /* non-difficult objects */
    int difficult;      /* difficult objects: neither misses nor false positives */
    int detections;     /* entries of this class, any score */
    int tp, fp, fn;     /* at opts.thresh */
    double avg_iou;     /* mean IoU of those true positives (0 if none) */
} dn_class_eval;

typedef struct {
    int classes, images;
    dn_class_eval *per_class;  /* classes entries, owned */
    int classes_with_truth;    /* classes averaged into map */
    double map;                /* mean AP over classes that have ground truth */
    int truth, detections;     /* over all classes */
    int tp, fp, fn;            /* at opts.thresh, over all classes */
    double precision, recall, f1, avg_iou;
    dn_eval_opts opts;
    /* dn_validate only: seconds spent loading images and in the network's
     * forward, decoding its output and in NMS, and reading labels, matching
     * and computing AP */
    double seconds_network, seconds_decode, seconds_eval;
} dn_eval_result;

/* VOC-devkit matching: per class, detections of all images by score
 * descending; each goes to the same-class object of its image with the
 * highest IoU: >= iou_thresh and not yet taken -> TP (taken), taken -> FP
 * (duplicate), difficult -> ignored; otherwise FP. */
dn_status dn_evaluator_init(dn_evaluator **out, int classes);
void dn_evaluator_free(dn_evaluator *ev);
/* Add the objects and detections of one image (may be called more than
 * once per image). Class ids must be in [0, classes). */
dn_status dn_evaluator_add(dn_evaluator *ev, int image, const dn_eval_truth *truth, int ntruth,
                           const dn_eval_det *dets, int ndets);
dn_status dn_evaluator_compute(const dn_evaluator *ev, const dn_eval_opts *opts, dn_eval_result *out);
void dn_eval_result_free(dn_eval_result *r);
/* The result as `./darknet detector map` prints it (per-class AP lines,
 * precision/recall/F1, TP/FP/FN/average IoU, mAP) with nnames class names
 * (classes past nnames, or NULL names, print as numbers). Writes at most cap
 * bytes with a NUL and returns the length of the whole text, as snprintf. */
size_t dn_eval_result_format(const dn_eval_result *r, const char *const *names, int nnames,
                             char *buf, size_t cap);

/* The validation driver: run a network over a list of images (one path per
 * line; labels found by dn_label_path, difficult objects in the label path
 * with .txt -> .difficult.txt), decode, NMS, and hand each image over. */
typedef struct {
    int index, total;             /* position in the list */
    const char *path;
    int width, height;            /* original image size */
    const dn_detections *dets;    /* after NMS; boxes in pixels of the image */
    const dn_eval_det *entries;   /* one per (detection, class) with prob > det_thresh */
    int nentries;
    const dn_eval_truth *truth;   /* labels in pixels, difficult ones flagged */
    int ntruth;
} dn_valid_image;

/* Return nonzero to stop (the driver then fails with DN_ERR_STATE). */
typedef int (*dn_progress_fn)(int done, int total, void *user);
typedef int (*dn_valid_image_fn)(const dn_valid_image *im, void *user);

typedef struct {
    const char *data;           /* .data file: classes, valid, names (may be NULL with list) */
    const char *list;           /* image list; NULL: the .data file's valid */
    const char *cfg;
    const char *weights;        /* NULL or "": the cfg's random initialisation */
    dn_eval_opts eval;
    float det_thresh;           /* decoding threshold (Darknet's map/valid: .005) */
    float nms;                  /* NMS IoU, 0: none (Darknet: .45, per class) */
    int nms_objectness;         /* 1: class-agnostic NMS by objectness (Darknet's recall) */
    int letterbox;              /* input placement: -1 (default) the network's (dn_network_letterbox),
                                 * 1 letterbox, 0 plain resize (recall) */
    int nthreads;               /* <= 0: library default */
    dn_progress_fn progress;    /* after each image, or NULL */
    void *progress_user;
    dn_valid_image_fn on_image; /* after each image, before progress, or NULL */
    void *image_user;
    int ternary_kernel;         /* dn_ternary_kernel of the network (0: off) */
    int gpu;                    /* CUDA device to run the network on; -1 (default): the host.
                                 * The ternary kernels are CPU kernels: a device needs kernel off */
} dn_validate_opts;

/* Darknet's `detector map` settings: iou .5, thresh .25, points 0,
 * det_thresh .005, nms .45 per class (the cfg's nms_kind), the cfg's input placement. */
void dn_validate_opts_default(dn_validate_opts *o);
/* Run the list and evaluate; out may be NULL (only the callbacks run). */
dn_status dn_validate(const dn_validate_opts *o, dn_eval_result *out);
/* `detector valid`: Darknet's per-class result files <dir>/<prefix><name>.txt,
 * lines `image_id score xmin ymin xmax ymax` (VOC's 1-based pixels, clipped to
 * [1, w] x [1, h]); image_id = basename without extension. dir NULL: the
 * .data file's `results`, else "results" (created if needed); prefix NULL:
 * "comp4_det_test_"; class names as in dn_eval_result_format. Files are
 * replaced atomically when the run succeeds. */
dn_status dn_validate_write_results(const dn_validate_opts *o, const char *dir, const char *prefix,
                                    const char *const *names, int nnames);

/* Darknet's validate_detector_recall, image by image: proposals are
 * detections with objectness > thresh; a non-difficult object is found when
 * its best IoU over the proposals is > iou_thresh. */
typedef struct {
    int images, proposals, correct, total;
    double iou_sum;             /* sum over objects of the best IoU */
} dn_recall_stats;
void dn_recall_update(dn_recall_stats *s, const dn_valid_image *im, float thresh, float iou_thresh);

/* ---- ternary inference and packed ternary weights -------------------- */
/* The kernel of the inference forward of ternary=1 conv layers (training
 * always runs the float path):
 *  OFF    the float path with the TWN weights alpha*code (the default);
 *  FLOAT  float activations: per output, the inputs at +1 taps are added
 *         and those at -1 taps subtracted (zeros skipped), times alpha and
 *         the folded batch norm; equal to OFF up to the order of the float
 *         additions and where alpha is applied;
 *  INT8   activations quantised to int8 per image (scale = max|x|/127 over
 *         the layer's whole input for that image, round half to even),
 *         products summed exactly in int32, then one fused epilogue:
 *         act(sum * scale * alpha * bn_scale + bn_shift).
 * Both use AVX2 when the CPU has it (INT8 its AVX-512 VNNI tile when there);
 * DN_TERNARY_SIMD=0 (environment, read at each forward) forces the portable
 * C code, which gives the same integers and the same floats. */
typedef enum { DN_TERNARY_OFF = 0, DN_TERNARY_FLOAT = 1, DN_TERNARY_INT8 = 2 } dn_ternary_kernel;
dn_status dn_network_set_ternary_kernel(dn_network *net, dn_ternary_kernel k);
dn_ternary_kernel dn_network_ternary_kernel(const dn_network *net);
/* "off", "float", "int8" <-> the enum (DN_ERR_VALUE for another name). */
const char *dn_ternary_kernel_name(dn_ternary_kernel k);
dn_status dn_ternary_kernel_parse(const char *name, dn_ternary_kernel *out);
/* The SIMD level the ternary kernels would run now: 0 portable C, 1 AVX2,
 * 2 AVX-512 VNNI (the int8 tile); the best the CPU has, lowered by
 * DN_TERNARY_SIMD=0|1 (environment, read at each forward). */
int dn_ternary_simd(void);

/* Packed ternary weights (header and records documented in
 * csrc/core/packed.c): every ternary param as 5 trits per byte plus its
 * alpha(s) as float32, every other param float32, with the .weights header
 * (version, seen) kept. dn_network_load_weights reads either format (it
 * looks at the magic); loading a packed file and writing .weights gives back
 * the ternarised .weights (dn_network_save_weights) byte for byte. Written
 * atomically. fold: format version 2 for deployment, where each ternary
 * conv with batch norm stores its batch norm and alphas folded into a
 * float16 scale and shift per filter (the same layer up to float16
 * rounding; it no longer round-trips byte for byte), and param-less layers
 * have no record. */
dn_status dn_network_save_packed(const dn_network *net, const char *path, int fold);
/* 1 when the file starts with the packed magic, or with a damaged copy of
 * it (the loader then says what is wrong); 0 otherwise or unreadable. */
int dn_weights_is_packed(const char *path);

/* One layer of a weights file, as `darknet ternary info` prints it. */
typedef struct {
    const char *type;        /* cfg section name */
    int ternary;             /* has ternary params (stored as codes when packed) */
    size_t params;           /* floats of all its params in a .weights file */
    size_t weights;          /* ternary weights (0 when not ternary) */
    size_t zeros;            /* of those, zero after ternarisation */
    int alphas;              /* alpha groups: 1 per layer or 1 per filter */
    float alpha_min, alpha_mean, alpha_max;
    uint64_t bytes;          /* bytes of the layer's data in this file */
} dn_ternary_layer_stats;

/* Load path (.weights or packed, by its magic) into net and describe each
 * layer: out has dn_network_num_layers(net) entries; *packed (may be NULL)
 * says which format the file is. */
dn_status dn_ternary_stats(dn_network *net, const char *path, dn_ternary_layer_stats *out, int *packed);

/* ---- ONNX export -------------------------------------------------------- */
typedef struct {
    int opset;     /* ONNX opset of the file, 11 to 21 (0: 13) */
    int decode;    /* 1: also the outputs "boxes" [batch][rows][4] (centre x, y, width,
                      height relative to the network input, as Darknet decodes them
                      before placing them on the image), "objectness" [batch][rows] and
                      "scores" [batch][rows][classes] (objectness * class probability),
                      rows of every detector layer in Darknet's order, not thresholded */
    float nms;     /* > 0 (needs decode): also "detections" [n][7], each row batch, class,
                      score, centre x, y, width, height (as "boxes"), after ONNX's
                      NonMaxSuppression per image and class at this IoU over the rows
                      whose score is above thresh, at most max_per_class per class */
    float thresh;
    int max_per_class;
} dn_onnx_opts;

/* opset 13, no decode, thresh .25, max_per_class 100. */
void dn_onnx_opts_default(dn_onnx_opts *o);
/* Write the network as loaded (its weights, batch and input size) as an
 * ONNX model, atomically: input "input" [batch][c][h][w] float32; one
 * output per detector layer ([yolo], [region], [detection]) named
 * <type>_<layer index>, equal to dn_network_layer_output of that layer
 * after an inference forward (so Darknet's decoding applies to it
 * unchanged), or, without detector layers, the last layer's output as
 * "output"; every output [batch][out_c][out_h][out_w]. Ternary conv
 * layers export their TWN values (alpha * {-1, 0, +1}) as float weights;
 * batch norm is folded into float layers. Metadata: letterbox, width,
 * height and, per output, what a decoder needs (classes, mask, anchors,
 * scale_x_y...). DN_ERR_UNSUPPORTED naming the layer for what ONNX cannot
 * express (a ternary layer on the int8 kernel); DN_ERR_VALUE for an
 * opset out of range; opts NULL: defaults. */
dn_status dn_network_export_onnx(dn_network *net, const char *path, const dn_onnx_opts *opts);

/* ---- images ----------------------------------------------------------- */
typedef struct { int w, h, c; float *data; } dn_image; /* CHW, values in [0,1] */

dn_status dn_image_load(dn_image *out, const char *path, int channels);
dn_status dn_image_from_u8(dn_image *out, const uint8_t *hwc, int w, int h, int c);
dn_status dn_image_save_png(const dn_image *im, const char *path);
dn_status dn_image_letterbox(const dn_image *im, int w, int h, dn_image *out);
dn_status dn_image_resize(const dn_image *im, int w, int h, dn_image *out);
/* An image placed on a w x h network input: letterboxed or stretched
 * (dn_network_letterbox says which a network wants). */
dn_status dn_image_fit(const dn_image *im, int w, int h, int letterbox, dn_image *out);
void dn_image_free(dn_image *im);
/* Draw one box, corners in pixels (clipped to the image), in the colour of
 * class cls of classes, with label (printable ASCII) above it. */
void dn_image_draw_box(dn_image *im, double left, double top, double right, double bottom, int cls,
                       int classes, const char *label);
/* Draw detections above thresh with their class names (may be NULL): one box
 * per detection, labelled "name[, name...]" for its classes above thresh. */
void dn_image_draw_detections(dn_image *im, const dn_detections *d, float thresh,
                              const char *const *names);

/* ---- labels and the training data loader ----------------------------- */
typedef struct { float x, y, w, h; int id; } dn_label; /* relative centre/size */

/* Darknet's label path: images/ and JPEGImages/ -> labels/, extension -> .txt. */
dn_status dn_label_path(const char *image_path, char *out, size_t cap);
/* Read `class cx cy w h` lines. A missing file gives 0 labels (an image
 * without objects). A bad line is an error naming file and line. */
dn_status dn_labels_load(const char *label_path, int classes, dn_label **out, int *n);

/* Anchor boxes for the images of a list (AlexeyAB's `detector calc_anchors`):
 * k-means with distance 1 - IoU over the sizes of every labelled box, in
 * pixels of a width x height input. anchors: 2n floats (w, h pairs, sorted
 * by area); avg_iou: the mean over the boxes of their best IoU with an
 * anchor; nboxes (may be NULL): the boxes used. Deterministic. */
dn_status dn_anchors_compute(const char *list_path, int classes, int n, int width, int height, float *anchors,
                             float *avg_iou, int *nboxes);

typedef struct dn_loader dn_loader;
/* Training placement: JITTER is pjreddie's (random aspect change, scaled to
 * fit, random offset, grey around: a letterbox with jitter); CROP_STRETCH is
 * AlexeyAB's (a crop whose four edges move by up to jitter of the image
 * size, and by [yolo] resize, stretched to the input, the mean colour where
 * it extends past the image); CROP_LETTERBOX the same with the crop widened
 * to the input's aspect (his letter_box=1). */
typedef enum { DN_PLACE_JITTER = 0, DN_PLACE_CROP_STRETCH, DN_PLACE_CROP_LETTERBOX } dn_placement;
typedef struct {
    const char *list_path;  /* file with one image path per line */
    int batch;              /* images per batch */
    int classes, max_boxes; /* truth rows per image (Darknet: 90 for yolo, 30 region) */
    int augment;            /* 1: jitter/flip/HSV as Darknet's detector training */
    float jitter, hue, saturation, exposure;
    int letterbox;          /* augment=0 only: letterbox instead of plain resize */
    uint64_t seed;
    int max_skips;          /* unreadable images/labels tolerated before an error (<0: unlimited) */
    int placement;          /* augment=1: dn_placement, how the image lands on the input */
    float resize;           /* DN_PLACE_CROP_*: AlexeyAB's [yolo] resize (0 or 1: none) */
    int no_flip;            /* 1: no random horizontal flips ([net] flip=0) */
    uint64_t first_batch;   /* index of the first batch (a resumed run goes on with the same batches) */
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

/* Tests: the n-th allocation from now of the core's checked allocator (the
 * conv layers' caches, scratch and training state) fails, once; n < 0: off. */
void dn_test_fail_allocation(long n);

#ifdef __cplusplus
}
#endif
#endif
