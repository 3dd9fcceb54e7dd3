/* augment.c: Darknet's detection augmentation on CHW float images in [0,1]:
 * placing a rescaled image on a canvas (jitter crop with aspect change),
 * random HSV distortion and horizontal flips; boxes follow the image. */
#include "augment.h"

#include <math.h>
#include <string.h>

static float pixel_clamped(const dn_image *im, int x, int y, int c)
{
    x = x < 0 ? 0 : x >= im->w ? im->w - 1 : x;
    y = y < 0 ? 0 : y >= im->h ? im->h - 1 : y;
    return im->data[((size_t)c * im->h + y) * im->w + x];
}

static float bilinear(const dn_image *im, float x, float y, int c)
{
    int ix = (int)floorf(x), iy = (int)floorf(y);
    float dx = x - ix, dy = y - iy;
    return (1 - dy) * (1 - dx) * pixel_clamped(im, ix, iy, c) + dy * (1 - dx) * pixel_clamped(im, ix, iy + 1, c) +
           (1 - dy) * dx * pixel_clamped(im, ix + 1, iy, c) + dy * dx * pixel_clamped(im, ix + 1, iy + 1, c);
}

void dn_place_image(const dn_image *src, int nw, int nh, int dx, int dy, dn_image *canvas)
{
    for (int c = 0; c < canvas->c && c < src->c; ++c)
        for (int y = 0; y < nh; ++y) {
            int cy = y + dy;
            if (cy < 0 || cy >= canvas->h) continue;
            float ry = (float)y / nh * src->h;
            for (int x = 0; x < nw; ++x) {
                int cx = x + dx;
                if (cx < 0 || cx >= canvas->w) continue;
                canvas->data[((size_t)c * canvas->h + cy) * canvas->w + cx] =
                    bilinear(src, (float)x / nw * src->w, ry, c);
            }
        }
}

void dn_flip_image(dn_image *im)
{
    for (int c = 0; c < im->c; ++c)
        for (int y = 0; y < im->h; ++y) {
            float *row = im->data + ((size_t)c * im->h + y) * im->w;
            for (int x = 0; x < im->w / 2; ++x) {
                float t = row[x];
                row[x] = row[im->w - 1 - x];
                row[im->w - 1 - x] = t;
            }
        }
}

/* RGB <-> HSV with h in [0,1), as Darknet's rgb_to_hsv/hsv_to_rgb (h scaled to 1). */
static void rgb_to_hsv(float r, float g, float b, float *h, float *s, float *v)
{
    float mx = fmaxf(r, fmaxf(g, b)), mn = fminf(r, fminf(g, b)), d = mx - mn;
    *v = mx;
    *s = mx > 0 ? d / mx : 0;
    if (d <= 0) { *h = 0; return; }
    float hh;
    if (r == mx) hh = (g - b) / d;
    else if (g == mx) hh = 2 + (b - r) / d;
    else hh = 4 + (r - g) / d;
    hh /= 6;
    *h = hh < 0 ? hh + 1 : hh;
}

static void hsv_to_rgb(float h, float s, float v, float *r, float *g, float *b)
{
    if (s == 0) { *r = *g = *b = v; return; }
    float hh = h * 6;
    int i = (int)floorf(hh);
    float f = hh - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    switch (((i % 6) + 6) % 6) {
    case 0: *r = v; *g = t; *b = p; break;
    case 1: *r = q; *g = v; *b = p; break;
    case 2: *r = p; *g = v; *b = t; break;
    case 3: *r = p; *g = q; *b = v; break;
    case 4: *r = t; *g = p; *b = v; break;
    default: *r = v; *g = p; *b = q; break;
    }
}

static float clamp01(float x) { return x < 0 ? 0 : x > 1 ? 1 : x; }

void dn_distort_image(dn_image *im, float dhue, float dsat, float dexp)
{
    if (im->c < 3) return;
    size_t n = (size_t)im->w * im->h;
    float *R = im->data, *G = R + n, *B = G + n;
    for (size_t i = 0; i < n; ++i) {
        float h, s, v;
        rgb_to_hsv(R[i], G[i], B[i], &h, &s, &v);
        s = s * dsat;
        v = v * dexp;
        h += dhue;
        h -= floorf(h);
        hsv_to_rgb(h, clamp01(s), v, &R[i], &G[i], &B[i]);
        R[i] = clamp01(R[i]); G[i] = clamp01(G[i]); B[i] = clamp01(B[i]);
    }
}

int dn_transform_labels(dn_label *b, int n, float dx, float dy, float sx, float sy, int flip)
{
    int k = 0;
    for (int i = 0; i < n; ++i) {
        float l = (b[i].x - b[i].w / 2) * sx + dx, r = (b[i].x + b[i].w / 2) * sx + dx;
        float t = (b[i].y - b[i].h / 2) * sy + dy, d = (b[i].y + b[i].h / 2) * sy + dy;
        if (flip) { float s = l; l = 1 - r; r = 1 - s; }
        l = clamp01(l); r = clamp01(r); t = clamp01(t); d = clamp01(d);
        dn_label o = {(l + r) / 2, (t + d) / 2, r - l, d - t, b[i].id};
        if (o.w < .001f || o.h < .001f) continue;
        b[k++] = o;
    }
    return k;
}
