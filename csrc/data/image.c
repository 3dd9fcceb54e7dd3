/* image.c: image I/O and resizing -- placeholder, being written. */
#include "../core/internal.h"

#include <stdlib.h>
#include <string.h>

dn_status dn_image_load(dn_image *out, const char *path, int channels)
{ (void)channels; memset(out, 0, sizeof(*out)); return dn_error(DN_ERR_UNSUPPORTED, "%s: image loading not implemented yet", path); }
dn_status dn_image_from_u8(dn_image *out, const uint8_t *hwc, int w, int h, int c)
{ (void)hwc; (void)w; (void)h; (void)c; memset(out, 0, sizeof(*out)); return dn_error(DN_ERR_UNSUPPORTED, "not implemented yet"); }
dn_status dn_image_save_png(const dn_image *im, const char *path)
{ (void)im; return dn_error(DN_ERR_UNSUPPORTED, "%s: not implemented yet", path); }
dn_status dn_image_letterbox(const dn_image *im, int w, int h, dn_image *out)
{ (void)im; (void)w; (void)h; memset(out, 0, sizeof(*out)); return dn_error(DN_ERR_UNSUPPORTED, "not implemented yet"); }
dn_status dn_image_resize(const dn_image *im, int w, int h, dn_image *out)
{ (void)im; (void)w; (void)h; memset(out, 0, sizeof(*out)); return dn_error(DN_ERR_UNSUPPORTED, "not implemented yet"); }
void dn_image_free(dn_image *im) { free(im->data); memset(im, 0, sizeof(*im)); }
void dn_image_draw_detections(dn_image *im, const dn_detections *d, float thresh, const char *const *names)
{ (void)im; (void)d; (void)thresh; (void)names; }
