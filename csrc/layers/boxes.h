/* boxes.h: the overlap measures of AlexeyAB's Darknet between two boxes
 * (centre/size, any common unit) and the gradient his [yolo] trainer applies
 * for the IoU-family box losses (iou_loss=iou|giou|diou|ciou). Shared by the
 * [yolo] loss (layers/yolo.c) and the NMS kinds (eval/detect.c).
 */
#ifndef DN_BOXES_H
#define DN_BOXES_H

#include "darknet.h"

typedef enum { DN_IOU_MSE = 0, DN_IOU_IOU, DN_IOU_GIOU, DN_IOU_DIOU, DN_IOU_CIOU } dn_iou_kind;

/* "mse", "iou", "giou", "diou", "ciou" -> kind; -1 for another name. */
int dn_iou_kind_parse(const char *name);

/* The measures (1 - measure is the loss):
 *   iou  = I / U
 *   giou = iou - (C - U) / C        C: area of the smallest enclosing box
 *   diou = iou - (d^2 / c^2)^0.6    d: centre distance, c: enclosing diagonal
 *                                   (his box_diou's exponent; the step uses 1)
 *   ciou = iou - d^2 / c^2 - alpha * v   v = 4/pi^2 (atan(wb/hb) - atan(wa/ha))^2,
 *                                   alpha = v / (1 - iou + v + 1e-6); b is the truth
 * DN_IOU_MSE gives the plain IoU. */
float dn_box_overlap(dn_box a, dn_box b, dn_iou_kind kind);
/* AlexeyAB's DIoU-NMS measure: iou - (d^2 / c^2)^beta. */
float dn_box_diou_nms(dn_box a, dn_box b, float beta);

/* The step AlexeyAB's trainer takes on a predicted box towards the truth for
 * an IoU-family loss: out[0..3] = increments of (x, y, w, h) that raise the
 * measure (see boxes.c for the exact form, which is not the plain gradient
 * for w and h). kind must not be DN_IOU_MSE. */
void dn_box_overlap_step(dn_box pred, dn_box truth, dn_iou_kind kind, float out[4]);

#endif
