/* detect.h: the private interface between the detector layers ([region],
 * [yolo], [detection]) and the decoding in detect.c.
 *
 * Each detector layer file exports one dn_detector row: how many classes it
 * predicts and how to decode one image of its output into detections. A
 * decoder writes boxes as centre/size relative to the network input ([0,1]
 * of net->w, net->h); detect.c then undoes the letterbox and scales to the
 * image, as Darknet's correct_{region,yolo}_boxes do.
 */
#ifndef DN_DETECT_H
#define DN_DETECT_H

#include "../core/internal.h"

typedef struct {
    const dn_layer_ops *ops;
    int (*classes)(const dn_layer *l);
    /* out: one image of l->output (l->outputs floats). netw, neth: network
     * input size. Writes the detections whose objectness is kept at thresh
     * into dets (each dets[i].prob already points at classes zeroed floats)
     * and returns their count; dets == NULL only counts. */
    int (*decode)(const dn_layer *l, const float *out, int netw, int neth, float thresh,
                  dn_detection *dets);
} dn_detector;

extern const dn_detector dn_region_detector, dn_yolo_detector, dn_detection_detector;

/* Darknet's softmax (temperature 1) over n values spaced stride apart:
 * out[i*stride] = exp(in[i*stride] - max) / sum. in may equal out. */
void dn_softmax_strided(const float *in, int n, int stride, float *out);

#endif
