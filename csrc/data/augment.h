/* augment.h: detection augmentation (see augment.c). */
#ifndef DN_AUGMENT_H
#define DN_AUGMENT_H

#include "darknet.h"

/* Draw src scaled to nw x nh at (dx, dy) on canvas (bilinear, clipped). */
void dn_place_image(const dn_image *src, int nw, int nh, int dx, int dy, dn_image *canvas);
void dn_flip_image(dn_image *im);
/* Add dhue to hue (wrapping), scale saturation by dsat and value by dexp. */
void dn_distort_image(dn_image *im, float dhue, float dsat, float dexp);
/* Boxes after scaling by (sx, sy), shifting by (dx, dy) in relative units and
 * an optional flip; clipped to [0,1]; boxes thinner than 0.001 are dropped.
 * Returns the number kept (compacted in place). */
int dn_transform_labels(dn_label *b, int n, float dx, float dy, float sx, float sy, int flip);

#endif
