/* draw.c: drawing detections on an image, as Darknet's draw_detections.
 *
 * Images are CHW floats in [0,1]; boxes are centre/size in pixels of the
 * image drawn on (dn_network_detections with relative=0). Each detection
 * with a class prob > thresh gets a box (im->h * .006 pixels wide, at least
 * 1) in its first such class's colour (Darknet's 6-colour ramp at
 * class*123457 % classes), and a label "name[, name...]" in black on a
 * filled box of that colour, above the box (inside it at the image top).
 * Text comes from stb_easy_font (header-only: quads on a unit grid, which
 * are filled here scaled by an integer factor).
 */
#include "../core/internal.h"

#include "font.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LABEL_MAX 256

/* Darknet's get_color: channel c (0 blue, 1 green, 2 red) of colour x of max. */
static float class_color(int c, int x, int max)
{
    static const float colors[6][3] = {{1, 0, 1}, {0, 0, 1}, {0, 1, 1}, {0, 1, 0}, {1, 1, 0}, {1, 0, 0}};
    float ratio = ((float)x / max) * 5;
    int i = (int)floorf(ratio), j = (int)ceilf(ratio);
    ratio -= i;
    return (1 - ratio) * colors[i][c] + ratio * colors[j][c];
}

static void set_rgb(dn_image *im, int x, int y, const float rgb[3])
{
    size_t hw = (size_t)im->w * im->h;
    for (int k = 0; k < im->c && k < 3; ++k) im->data[k * hw + (size_t)y * im->w + x] = rgb[k];
}

/* A box edge in pixels, truncated as Darknet's (int) cast, kept within
 * [-1, size] so the cast is defined. */
static int to_pixel(double v, int size)
{
    return v < -1 ? -1 : v > size ? size : (int)v;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Darknet's draw_box: the outline of [x1,x2] x [y1,y2], clamped to the image. */
static void draw_box(dn_image *im, int x1, int y1, int x2, int y2, const float rgb[3])
{
    x1 = clampi(x1, 0, im->w - 1); x2 = clampi(x2, 0, im->w - 1);
    y1 = clampi(y1, 0, im->h - 1); y2 = clampi(y2, 0, im->h - 1);
    for (int x = x1; x <= x2; ++x) { set_rgb(im, x, y1, rgb); set_rgb(im, x, y2, rgb); }
    for (int y = y1; y <= y2; ++y) { set_rgb(im, x1, y, rgb); set_rgb(im, x2, y, rgb); }
}

/* Fill [x0,x1) x [y0,y1), clipped to the image. */
static void fill_rect(dn_image *im, int x0, int y0, int x1, int y1, const float rgb[3])
{
    x0 = clampi(x0, 0, im->w); x1 = clampi(x1, 0, im->w);
    y0 = clampi(y0, 0, im->h); y1 = clampi(y1, 0, im->h);
    for (int y = y0; y < y1; ++y)
        for (int x = x0; x < x1; ++x) set_rgb(im, x, y, rgb);
}

/* The label: a filled box of rgb with the text in black (one font unit is
 * scale pixels), left edge at column col. As Darknet's draw_label, its top
 * is row moved up by the label's height when that stays in the image. */
static void draw_label(dn_image *im, int row, int col, char *text, const float rgb[3])
{
    static const float black[3] = {0, 0, 0};
    int scale = (int)(im->h * .03f / 9 + .5f); /* Darknet: labels about h*.03 high */
    if (scale < 1) scale = 1;
    size_t len = strlen(text);
    int vsize = (int)(len * 600 + 64);
    float *quads = malloc((size_t)vsize);
    if (!quads) return;
    int nq = stb_easy_font_print(0, 0, text, NULL, quads, vsize);
    float maxy = 0;
    for (int q = 0; q < nq * 4; ++q)
        if (quads[q * 4 + 1] > maxy) maxy = quads[q * 4 + 1];
    int lw = (stb_easy_font_width(text) + 2) * scale, lh = ((int)ceilf(maxy) + 2) * scale;
    if (row - lh >= 0) row -= lh;
    fill_rect(im, col, row, col + lw, row + lh, rgb);
    for (int q = 0; q < nq; ++q) {
        const float *v = quads + q * 16; /* 4 vertices of x, y, z, colour */
        float x0 = v[0], y0 = v[1], x1 = v[0], y1 = v[1];
        for (int k = 1; k < 4; ++k) {
            x0 = fminf(x0, v[k * 4]); x1 = fmaxf(x1, v[k * 4]);
            y0 = fminf(y0, v[k * 4 + 1]); y1 = fmaxf(y1, v[k * 4 + 1]);
        }
        fill_rect(im, col + (int)lroundf((x0 + 1) * scale), row + (int)lroundf((y0 + 1) * scale),
                  col + (int)lroundf((x1 + 1) * scale), row + (int)lroundf((y1 + 1) * scale), black);
    }
    free(quads);
}

/* Append s to the label (printable ASCII only; the font has nothing else). */
static void label_append(char *label, const char *s)
{
    size_t n = strlen(label);
    for (; *s && n + 1 < LABEL_MAX; ++s, ++n)
        label[n] = (*s >= 32 && *s < 127) ? *s : '?';
    label[n] = 0;
}

void dn_image_draw_box(dn_image *im, double left, double top, double right, double bottom, int cls,
                       int classes, const char *label)
{
    if (!im || !im->data || im->w <= 0 || im->h <= 0 || im->c <= 0 || classes <= 0 || cls < 0) return;
    if (!isfinite(left) || !isfinite(top) || !isfinite(right) || !isfinite(bottom)) return;
    int width = (int)(im->h * .006f);
    if (width < 1) width = 1;
    int offset = (int)((long long)cls * 123457 % classes);
    float rgb[3] = {class_color(2, offset, classes), class_color(1, offset, classes),
                    class_color(0, offset, classes)};
    int l = to_pixel(left, im->w), r = to_pixel(right, im->w);
    int t = to_pixel(top, im->h), b = to_pixel(bottom, im->h);
    if (l < 0) l = 0;
    if (r > im->w - 1) r = im->w - 1;
    if (t < 0) t = 0;
    if (b > im->h - 1) b = im->h - 1;
    if (l > r || t > b) return;
    char text[LABEL_MAX] = {0};
    label_append(text, label ? label : "");
    for (int k = 0; k < width; ++k) draw_box(im, l + k, t + k, r - k, b - k, rgb);
    draw_label(im, t + width, l, text, rgb);
}

void dn_image_draw_detections(dn_image *im, const dn_detections *d, float thresh,
                              const char *const *names)
{
    if (!d || !d->dets) return;
    for (int i = 0; i < d->n; ++i) {
        const dn_detection *det = &d->dets[i];
        char label[LABEL_MAX] = {0};
        int cls = -1;
        for (int j = 0; j < det->classes; ++j) {
            if (!(det->prob[j] > thresh)) continue;
            char num[16];
            snprintf(num, sizeof num, "%d", j);
            if (cls >= 0) label_append(label, ", ");
            label_append(label, names && names[j] ? names[j] : num);
            if (cls < 0) cls = j;
        }
        if (cls < 0) continue;
        dn_box b = det->bbox;
        dn_image_draw_box(im, b.x - b.w / 2., b.y - b.h / 2., b.x + b.w / 2., b.y + b.h / 2., cls,
                          det->classes, label);
    }
}
