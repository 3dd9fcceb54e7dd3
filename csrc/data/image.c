/* image.c: image I/O (stb_image from Debian's libstb) and Darknet's resizing.
 *
 * A dn_image is c planes of h rows of w floats (CHW), values in [0,1].
 * Decoding and PNG writing are stb's (libstb provides the implementations,
 * so no STB_*_IMPLEMENTATION here). dn_image_resize is Darknet's
 * resize_image (bilinear, a horizontal pass then a vertical pass, corners
 * mapped onto corners); dn_image_letterbox is Darknet's letterbox_image.
 * Functions that make an image write it to *out only on success (out may be
 * the input: the caller then still owns the old pixels); on failure *out is
 * zeroed unless it is the input.
 */
#include "../core/internal.h"
#include "../core/fileio.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Larger images are refused before decoding (a corrupt header must not
 * make the loader allocate gigabytes): 64 megapixels, lowered by the fuzz
 * target. */
static int64_t max_pixels = (int64_t)1 << 26;

void dn_set_image_limit(int64_t pixels) { max_pixels = pixels > 0 ? pixels : (int64_t)1 << 26; }

static dn_status check_image(const dn_image *im, const char *what)
{
    if (!im || !im->data || im->w <= 0 || im->h <= 0 || im->c <= 0)
        return dn_error(DN_ERR_VALUE, "%s: not a valid image (%d x %d x %d)", what,
                        im ? im->w : 0, im ? im->h : 0, im ? im->c : 0);
    return DN_OK;
}

static dn_status image_alloc(dn_image *im, int w, int h, int c)
{
    im->w = w;
    im->h = h;
    im->c = c;
    im->data = dn_calloc((size_t)w * h * c, sizeof(float));
    return im->data ? DN_OK : DN_ERR_NOMEM;
}

static dn_status fail(dn_image *out, const dn_image *in, dn_status st)
{
    if (out != in) memset(out, 0, sizeof(*out));
    return st;
}

dn_status dn_image_fit(const dn_image *im, int w, int h, int letterbox, dn_image *out)
{
    return letterbox ? dn_image_letterbox(im, w, h, out) : dn_image_resize(im, w, h, out);
}

void dn_image_free(dn_image *im)
{
    if (!im) return;
    free(im->data);
    memset(im, 0, sizeof(*im));
}

/* hwc: h x w x c bytes -> out: c x h x w floats, v / 255. */
static dn_status from_u8(dn_image *out, const uint8_t *hwc, int w, int h, int c)
{
    dn_image r;
    if (image_alloc(&r, w, h, c) != DN_OK) return DN_ERR_NOMEM;
    size_t hw = (size_t)w * h;
    for (size_t i = 0; i < hw; ++i)
        for (int k = 0; k < c; ++k) r.data[k * hw + i] = hwc[i * c + k] / 255.f;
    *out = r;
    return DN_OK;
}

dn_status dn_image_from_u8(dn_image *out, const uint8_t *hwc, int w, int h, int c)
{
    memset(out, 0, sizeof(*out));
    if (!hwc || w <= 0 || h <= 0 || c < 1 || c > 4)
        return dn_error(DN_ERR_VALUE, "image from bytes: need data, w, h > 0 and 1 <= c <= 4 (got %d x %d x %d)", w, h, c);
    return from_u8(out, hwc, w, h, c);
}

dn_status dn_image_load(dn_image *out, const char *path, int channels)
{
    memset(out, 0, sizeof(*out));
    if (!path) return dn_error(DN_ERR_VALUE, "load image: path is NULL");
    if (channels < 0 || channels > 4)
        return dn_error(DN_ERR_VALUE, "%s: cannot load an image with %d channels (0 = as stored, 1 to 4)", path, channels);
    FILE *f = fopen(path, "rb");
    if (!f) return dn_error(DN_ERR_IO, "%s: cannot open image: %s", path, strerror(errno));
    int w = 0, h = 0, c = 0;
    if (stbi_info_from_file(f, &w, &h, &c) && (int64_t)w * h > max_pixels) {
        fclose(f);
        return dn_error(DN_ERR_FORMAT, "%s: image header says %d x %d pixels, more than the limit of %lld",
                        path, w, h, (long long)max_pixels);
    }
    uint8_t *data = stbi_load_from_file(f, &w, &h, &c, channels);
    fclose(f);
    if (!data) {
        const char *why = stbi_failure_reason();
        return dn_error(DN_ERR_FORMAT, "%s: cannot decode image (stb_image: %s)", path, why ? why : "unknown reason");
    }
    if (w <= 0 || h <= 0) {
        stbi_image_free(data);
        return dn_error(DN_ERR_FORMAT, "%s: image has zero size (%d x %d)", path, w, h);
    }
    if (channels) c = channels;
    dn_status st = from_u8(out, data, w, h, c);
    stbi_image_free(data);
    return st;
}

static void write_fn(void *ctx, void *data, int size)
{
    dn_atomic_file *af = ctx;
    fwrite(data, 1, (size_t)size, af->f);
}

dn_status dn_image_save_png(const dn_image *im, const char *path)
{
    if (!path) return dn_error(DN_ERR_VALUE, "save PNG: path is NULL");
    dn_status st = check_image(im, path);
    if (st != DN_OK) return st;
    if (im->c > 4) return dn_error(DN_ERR_VALUE, "%s: a PNG holds 1 to 4 channels, the image has %d", path, im->c);
    size_t hw = (size_t)im->w * im->h;
    uint8_t *buf = dn_calloc(hw * im->c, 1);
    if (!buf) return DN_ERR_NOMEM;
    for (size_t i = 0; i < hw; ++i)
        for (int k = 0; k < im->c; ++k) {
            float v = im->data[k * hw + i] * 255.f + .5f;
            buf[i * im->c + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    /* through a temp file and rename, like every file the library writes */
    dn_atomic_file af;
    st = dn_atomic_open(&af, path);
    if (st != DN_OK) { free(buf); return st; }
    int ok = stbi_write_png_to_func(write_fn, &af, im->w, im->h, im->c, buf, im->w * im->c);
    free(buf);
    if (!ok || ferror(af.f)) {
        dn_atomic_abort(&af);
        return dn_error(DN_ERR_IO, "%s: cannot write PNG", path);
    }
    st = dn_atomic_commit(&af);
    if (st != DN_OK) return st;
    return DN_OK;
}

/* im: c x ih x iw -> out: c x h x w, Darknet's resize_image. Horizontal pass
 * into part (c x ih x w): column x samples sx = x*(iw-1)/(w-1) linearly, the
 * last column takes the last source column. Vertical pass likewise with
 * sy = y*(ih-1)/(h-1). Darknet computes the last row as (1-dy)*row[iy] with
 * iy, dy from the rounded sy, which can darken it when sy rounds below ih-1;
 * here the last row takes the last source row, as the last column does. */
static void resize_into(const dn_image *im, dn_image *out, float *part, int *ix0, int *ix1, float *fx)
{
    int iw = im->w, ih = im->h, w = out->w, h = out->h;
    float w_scale = w > 1 ? (float)(iw - 1) / (w - 1) : 0;
    float h_scale = h > 1 ? (float)(ih - 1) / (h - 1) : 0;
    /* Column c reads ix0, ix1 with weight fx on ix1; a column that takes the
     * last source column reads it twice with weight 0 (the same float). */
    for (int c = 0; c < w; ++c) {
        float sx = c * w_scale;
        int ix = (int)sx;
        int last = c == w - 1 || iw == 1 || ix >= iw - 1;
        ix0[c] = last ? iw - 1 : ix;
        ix1[c] = last ? iw - 1 : ix + 1;
        fx[c] = last ? 0 : sx - ix;
    }
    for (int k = 0; k < im->c; ++k)
        for (int r = 0; r < ih; ++r) {
            const float *src = im->data + ((size_t)k * ih + r) * iw;
            float *dst = part + ((size_t)k * ih + r) * w;
            for (int c = 0; c < w; ++c) dst[c] = (1 - fx[c]) * src[ix0[c]] + fx[c] * src[ix1[c]];
        }
    for (int k = 0; k < im->c; ++k)
        for (int r = 0; r < h; ++r) {
            float sy = r * h_scale;
            int iy = (int)sy;
            float *dst = out->data + ((size_t)k * h + r) * w;
            if (r == h - 1 || ih == 1 || iy >= ih - 1) {
                memcpy(dst, part + ((size_t)k * ih + ih - 1) * w, (size_t)w * sizeof(float));
                continue;
            }
            const float *p0 = part + ((size_t)k * ih + iy) * w;
            float dy = sy - iy;
            for (int c = 0; c < w; ++c) dst[c] = (1 - dy) * p0[c] + dy * p0[w + c];
        }
}

dn_status dn_image_resize(const dn_image *im, int w, int h, dn_image *out)
{
    dn_status st = check_image(im, "resize");
    if (st != DN_OK) return fail(out, im, st);
    if (w <= 0 || h <= 0)
        return fail(out, im, dn_error(DN_ERR_VALUE, "resize: target size %d x %d is not positive", w, h));
    dn_image r;
    float *part = dn_calloc((size_t)w * im->h * im->c + 2 * (size_t)w, sizeof(float));
    int *ix = dn_calloc(2 * (size_t)w, sizeof(int));
    if (!part || !ix || image_alloc(&r, w, h, im->c) != DN_OK) {
        free(part);
        free(ix);
        return fail(out, im, DN_ERR_NOMEM);
    }
    float *fx = part + (size_t)w * im->h * im->c;
    resize_into(im, &r, part, ix, ix + w, fx);
    free(part);
    free(ix);
    *out = r;
    return DN_OK;
}

void dn_letterbox_size(int iw, int ih, int w, int h, int *new_w, int *new_h)
{
    if ((float)w / iw < (float)h / ih) {
        *new_w = w;
        *new_h = (int)(((int64_t)ih * w) / iw);
    } else {
        *new_h = h;
        *new_w = (int)(((int64_t)iw * h) / ih);
    }
    if (*new_w < 1) *new_w = 1;
    if (*new_h < 1) *new_h = 1;
}

/* im: c x ih x iw -> out: c x h x w. Scale to fit keeping the aspect ratio
 * (dn_letterbox_size), paste centred on a canvas of 0.5. */
dn_status dn_image_letterbox(const dn_image *im, int w, int h, dn_image *out)
{
    dn_status st = check_image(im, "letterbox");
    if (st != DN_OK) return fail(out, im, st);
    if (w <= 0 || h <= 0)
        return fail(out, im, dn_error(DN_ERR_VALUE, "letterbox: target size %d x %d is not positive", w, h));
    int new_w, new_h;
    dn_letterbox_size(im->w, im->h, w, h, &new_w, &new_h);
    dn_image resized, r;
    st = dn_image_resize(im, new_w, new_h, &resized);
    if (st != DN_OK) return fail(out, im, st);
    if (image_alloc(&r, w, h, im->c) != DN_OK) {
        dn_image_free(&resized);
        return fail(out, im, DN_ERR_NOMEM);
    }
    size_t n = (size_t)w * h * im->c;
    for (size_t i = 0; i < n; ++i) r.data[i] = .5f;
    int dx = (w - new_w) / 2, dy = (h - new_h) / 2;
    for (int k = 0; k < im->c; ++k)
        for (int y = 0; y < new_h; ++y)
            memcpy(r.data + ((size_t)k * h + y + dy) * w + dx,
                   resized.data + ((size_t)k * new_h + y) * new_w, (size_t)new_w * sizeof(float));
    dn_image_free(&resized);
    *out = r;
    return DN_OK;
}
