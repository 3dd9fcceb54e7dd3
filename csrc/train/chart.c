/* chart.c: the training chart (Darknet's chart.png): the running average
 * loss (blue) and the mAP (red, right axis 0..100%) against iterations, drawn
 * into an RGB image with plain line drawing and stb_easy_font text, saved
 * as PNG. */
#include "chart.h"

#include "../data/font.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W 800
#define H 500
#define L 70   /* margins: left, right, top, bottom */
#define R 70
#define T 40
#define B 50

static void pixel(dn_image *im, int x, int y, const float c[3])
{
    if (x < 0 || y < 0 || x >= im->w || y >= im->h) return;
    for (int k = 0; k < 3; ++k) im->data[((size_t)k * im->h + y) * im->w + x] = c[k];
}

/* Bresenham line, two pixels thick. */
static void line(dn_image *im, int x0, int y0, int x1, int y1, const float c[3])
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, e = dx + dy;
    while (1) {
        pixel(im, x0, y0, c);
        pixel(im, x0, y0 + 1, c);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * e;
        if (e2 >= dy) { e += dy; x0 += sx; }
        if (e2 <= dx) { e += dx; y0 += sy; }
    }
}

static void text(dn_image *im, int x, int y, const char *s, const float c[3])
{
    float quads[4096];
    int nq = stb_easy_font_print(0, 0, (char *)s, NULL, quads, sizeof quads);
    for (int q = 0; q < nq; ++q) {
        const float *v = quads + q * 16;
        for (int yy = (int)v[1]; yy < (int)v[9]; ++yy)
            for (int xx = (int)v[0]; xx < (int)v[4]; ++xx) pixel(im, x + xx, y + yy, c);
    }
}

dn_status dn_chart_save(const char *path, int first, const float *loss, int n, const int *map_iters,
                        const float *maps, int m)
{
    static const float white[3] = {1, 1, 1}, grey[3] = {.8f, .8f, .8f}, black[3] = {0, 0, 0},
                       blue[3] = {.1f, .3f, .9f}, red[3] = {.85f, .1f, .1f};
    dn_image im = {W, H, 3, malloc(sizeof(float) * 3 * W * H)};
    if (!im.data) return dn_error(DN_ERR_NOMEM, "chart: out of memory");
    for (size_t i = 0; i < (size_t)3 * W * H; ++i) im.data[i] = white[0];
    float top = 0;
    for (int i = 0; i < n; ++i)
        if (isfinite(loss[i]) && loss[i] > top) top = loss[i];
    top = top > 0 ? top * 1.05f : 1;
    int pw = W - L - R, ph = H - T - B, last = first + n - 1 > 1 ? first + n - 1 : 2;
    char buf[64];
    for (int k = 0; k <= 4; ++k) {
        int y = T + ph - ph * k / 4;
        line(&im, L, y, W - R, y, grey);
        snprintf(buf, sizeof buf, "%.3g", top * k / 4);
        text(&im, 8, y - 4, buf, blue);
        snprintf(buf, sizeof buf, "%d%%", 25 * k);
        text(&im, W - R + 8, y - 4, buf, red);
        snprintf(buf, sizeof buf, "%d", last * k / 4);
        text(&im, L + pw * k / 4 - 8, H - B + 10, buf, black);
    }
    line(&im, L, T, L, T + ph, black);
    line(&im, L, T + ph, W - R, T + ph, black);
    text(&im, L, 12, "avg loss (blue), mAP (red) against iterations", black);
    for (int i = 1; i < n; ++i) /* a non-finite loss (a diverged run) leaves a gap */
        if (isfinite(loss[i - 1]) && isfinite(loss[i]))
            line(&im, L + pw * (first + i - 1) / last, T + ph - (int)(ph * loss[i - 1] / top),
                 L + pw * (first + i) / last, T + ph - (int)(ph * loss[i] / top), blue);
    for (int i = 0; i < m; ++i) {
        int x = L + pw * map_iters[i] / last, y = T + ph - (int)(ph * maps[i]);
        if (i) line(&im, L + pw * map_iters[i - 1] / last, T + ph - (int)(ph * maps[i - 1]), x, y, red);
        for (int d = -2; d <= 2; ++d) line(&im, x - 2, y + d, x + 2, y + d, red);
    }
    dn_status st = dn_image_save_png(&im, path);
    free(im.data);
    return st;
}
