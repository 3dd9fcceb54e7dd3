/* chart.h: the training chart (see chart.c). */
#ifndef DN_CHART_H
#define DN_CHART_H

#include "../core/internal.h"

/* loss[i]: running average loss after iteration first+i (n points);
 * maps[j]: mAP in [0,1] at iteration map_iters[j] (m points). */
dn_status dn_chart_save(const char *path, int first, const float *loss, int n, const int *map_iters,
                        const float *maps, int m);

#endif
