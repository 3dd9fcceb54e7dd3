/* map.h: what the validation driver (validate.c) uses of the evaluator
 * (map.c) beyond the public API. */
#ifndef DN_EVAL_MAP_H
#define DN_EVAL_MAP_H

#include "darknet.h"

/* DN_ERR_VALUE naming the bad field unless iou_thresh is in (0, 1], thresh
 * is a number and points is 0, 11 or 101. */
dn_status dn_eval_opts_check(const dn_eval_opts *opts);

#endif
