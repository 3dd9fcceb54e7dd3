/* fuzz_image.c: libFuzzer target for the image loader (stb_image behind
 * dn_image_load): the input is an image file of any format, loaded as 3
 * channels (what training and detection do) and as stored; an image that
 * loads is letterboxed and resized as the detector does. */
#include "fuzz_util.h"
#include "../csrc/core/internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    dn_set_image_limit((int64_t)1 << 20); /* a 100-byte file may claim 64 megapixels: keep executions fast */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(0, data, size);
    for (int channels = 0; channels <= 3; channels += 3) {
        dn_image im, lb, rs;
        dn_error(DN_OK, "%s", "");
        dn_status st = dn_image_load(&im, path, channels);
        fuzz_check_error(st);
        if (st != DN_OK) continue;
        if (im.w <= 0 || im.h <= 0 || im.c < 1 || im.c > 4 || (channels && im.c != channels)) abort();
        if (dn_image_letterbox(&im, 13, 9, &lb) == DN_OK) dn_image_free(&lb);
        if (dn_image_resize(&im, 5, 17, &rs) == DN_OK) dn_image_free(&rs);
        dn_image_free(&im);
    }
    return 0;
}
