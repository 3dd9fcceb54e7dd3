/* anchors.c: `darknet detector calc_anchors <data> [-num_of_clusters 9]
 * [-width 416] [-height 416]`, as AlexeyAB's: anchors for the .data file's
 * train list, printed for [yolo] (pixels) and [region] (32-pixel cells). */
#include "args.h"
#include "darknet.h"

#include <stdio.h>
#include <stdlib.h>

int cmd_detector_anchors(int argc, char **argv)
{
    int n = cli_int(&argc, argv, "-num_of_clusters", 9);
    int width = cli_int(&argc, argv, "-width", 416), height = cli_int(&argc, argv, "-height", 416);
    cli_flag(&argc, argv, "-show");
    if (argc < 4) {
        fprintf(stderr, "usage: %s detector calc_anchors <data> [-num_of_clusters 9] [-width 416] [-height 416]\n",
                argv[0]);
        return 1;
    }
    dn_data data = {0};
    if (dn_data_load(&data, argv[3]) != DN_OK) return cli_fail("detector calc_anchors");
    int rc = 0, nboxes = 0;
    float avg_iou = 0, *a = n > 0 ? malloc(2 * sizeof(float) * (size_t)n) : NULL;
    if (!data.train) {
        fprintf(stderr, "darknet: detector calc_anchors: %s has no train list\n", argv[3]);
        rc = 1;
    } else if (n > 0 && !a) {
        fprintf(stderr, "darknet: detector calc_anchors: out of memory\n");
        rc = 1;
    } else if (dn_anchors_compute(data.train, data.classes, n, width, height, a, &avg_iou, &nboxes) != DN_OK) {
        rc = cli_fail("detector calc_anchors");
    } else {
        printf("%d boxes of %s, %d anchors at %d x %d, avg IoU = %.2f%%\n", nboxes, data.train, n, width, height,
               100 * avg_iou);
        printf("[yolo] anchors = ");
        for (int k = 0; k < n; ++k) printf("%s%.0f,%.0f", k ? ", " : "", a[2 * k], a[2 * k + 1]);
        printf("\n[region] anchors = ");
        for (int k = 0; k < n; ++k) printf("%s%.4f,%.4f", k ? ", " : "", a[2 * k] / 32, a[2 * k + 1] / 32);
        printf("\n");
    }
    free(a);
    dn_data_free(&data);
    return rc;
}
