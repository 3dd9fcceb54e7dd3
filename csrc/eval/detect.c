/* detect.c: decoding detector outputs, NMS -- placeholder, being written. */
#include "../core/internal.h"

#include <stdlib.h>
#include <string.h>

dn_status dn_network_detections(dn_network *net, int b, int img_w, int img_h,
                                float thresh, int letterbox, int relative, dn_detections *out)
{
    (void)net; (void)b; (void)img_w; (void)img_h; (void)thresh; (void)letterbox; (void)relative;
    memset(out, 0, sizeof(*out));
    return dn_error(DN_ERR_UNSUPPORTED, "detections: not implemented yet");
}

void dn_detections_free(dn_detections *d) { free(d->dets); free(d->prob_storage); memset(d, 0, sizeof(*d)); }
void dn_nms_sort(dn_detections *d, float iou_thresh) { (void)d; (void)iou_thresh; }
float dn_box_iou(dn_box a, dn_box b) { (void)a; (void)b; return 0; }
