/* detector.h: what the detector layers ([region], [yolo], [detection])
 * share: their decoding row, read by eval/detect.c, and the training
 * helpers of their losses (detector.c).
 *
 * Each detector layer file exports one dn_detector row: how many classes it
 * predicts and how to decode one image of its output into detections. A
 * decoder writes boxes as centre/size relative to the network input ([0,1]
 * of net->w, net->h); eval/detect.c then undoes the letterbox and scales to
 * the image, as Darknet's correct_{region,yolo}_boxes do.
 */
#ifndef DN_DETECTOR_H
#define DN_DETECTOR_H

#include "../core/internal.h"

/* What a detector layer's inference forward does to its input and how its
 * output decodes, for code that rebuilds them elsewhere (the ONNX exporter,
 * export/onnx.c). Views into the layer's data. */
typedef enum { DN_HEAD_REGION, DN_HEAD_YOLO, DN_HEAD_DETECTION } dn_head_kind;
typedef struct {
    dn_head_kind kind;
    int n;                  /* boxes per cell: yolo len(mask), region and detection num */
    int classes, coords;    /* coords: region's (>= 4), else 4 */
    int softmax;            /* region, detection: softmax over each cell's classes, else logistic (region) */
    int background;         /* region: entry coords is a background class inside the softmax */
    float scale_x_y;        /* yolo: x, y -> s*x - (s-1)/2 after the logistic (1: none) */
    int new_coords;         /* yolo: no logistic (the preceding conv has it); w = (2 t_w)^2 anchor */
    int side, sqrt;         /* detection: grid side; w, h square-rooted */
    const float *anchors;   /* (w, h) pairs: yolo in input pixels (total of them), region in grid cells (n) */
    int total;              /* yolo: anchors in the list; region: n */
    const int *mask;        /* yolo: the n anchors of this layer; else NULL */
} dn_head;

typedef struct {
    const dn_layer_ops *ops;
    void (*head)(const dn_layer *l, dn_head *out);
    int (*classes)(const dn_layer *l);
    /* out: one image of l->output (l->outputs floats). netw, neth: network
     * input size. Writes the detections whose objectness is kept at thresh
     * into dets (each dets[i].prob already points at classes zeroed floats)
     * and returns their count; dets == NULL only counts. */
    int (*decode)(const dn_layer *l, const float *out, int netw, int neth, float thresh,
                  dn_detection *dets);
} dn_detector;

extern const dn_detector dn_region_detector, dn_yolo_detector, dn_detection_detector;

/* ---- training: shared by the detector losses ----
 * Truth rows (x, y, w, h, class; relative centre/size) of image b and how many
 * are used: Darknet's lists end at the first row with x == 0 or w == 0. 0 when
 * no truth was set for this batch (dn_network_set_truth). */
int dn_truth_rows(const dn_network *net, int b, const float **rows);
/* Darknet's cell of a relative coordinate, (int)(v*n), kept inside [0, n). */
int dn_truth_cell(float v, int n);
/* delta holds n deltas in Darknet's sign (target - output). Returns Darknet's
 * cost, the squared norm, and flips delta to this project's dL/d(input). */
float dn_detector_cost(float *delta, size_t n);
/* Backward of every detector layer: its delta already is dL/d(its input)
 * (the logistic/softmax derivatives are part of the loss), so it is added to
 * input_delta. */
dn_status dn_detector_backward(dn_layer *l, dn_network *net, const float *input, float *input_delta);

/* Darknet's softmax (temperature 1) over n values spaced stride apart:
 * out[i*stride] = exp(in[i*stride] - max) / sum. in may equal out. */
void dn_softmax_strided(const float *in, int n, int stride, float *out);

#endif
