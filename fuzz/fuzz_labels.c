/* fuzz_labels.c: libFuzzer target for the text inputs of training: label
 * files (class cx cy w h lines), .names files and .data files. Every label
 * that loads must satisfy what the reader promises: a class id in
 * [0, classes) and a box inside [0,1] with a positive size. */
#include "fuzz_util.h"
#include "../csrc/core/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(0, data, size);
    dn_label *labels = NULL;
    int n = 0;
    dn_error(DN_OK, "%s", "");
    dn_status st = dn_labels_load(path, 20, &labels, &n);
    fuzz_check_error(st);
    for (int i = 0; st == DN_OK && i < n; ++i) {
        const dn_label *l = &labels[i];
        if (l->id < 0 || l->id >= 20 || !(l->x >= 0 && l->x <= 1 && l->y >= 0 && l->y <= 1 &&
                                          l->w > 0 && l->w <= 1 && l->h > 0 && l->h <= 1)) {
            fprintf(stderr, "label %d out of range\n", i);
            abort();
        }
    }
    free(labels);
    char **names = NULL;
    int nn = 0;
    dn_error(DN_OK, "%s", "");
    st = dn_names_load(path, &names, &nn);
    fuzz_check_error(st);
    dn_names_free(names, nn);
    dn_data d;
    dn_error(DN_OK, "%s", "");
    st = dn_data_load(&d, path);
    fuzz_check_error(st);
    if (st == DN_OK) dn_data_free(&d);
    return 0;
}
