/* im2col.c: see im2col.h. im2col fills its rows and col2im its channels in
 * parallel on the thread pool (parallel.h). */
#include "im2col.h"
#include "parallel.h"

#include <string.h>

typedef struct {
    const float *src;
    float *dst;
    int c, h, w, size, stride, pad, out_h, out_w;
} unfold_args;

/* Row r of the column matrix. */
static void im2col_row(void *ctx, int r, int tid)
{
    (void)tid;
    const unfold_args *a = ctx;
    const float *im = a->src;
    float *col = a->dst;
    int h = a->h, w = a->w, size = a->size, stride = a->stride, pad = a->pad, out_h = a->out_h, out_w = a->out_w;
    int kx = r % size, ky = (r / size) % size, ch = r / size / size;
    const float *src = im + (size_t)ch * h * w;
    float *dst = col + (size_t)r * out_h * out_w;
    for (int oy = 0; oy < out_h; ++oy) {
        int iy = oy * stride + ky - pad;
        float *d = dst + (size_t)oy * out_w;
        if (iy < 0 || iy >= h) { memset(d, 0, sizeof(float) * (size_t)out_w); continue; }
        const float *s = src + (size_t)iy * w;
        if (stride == 1) {
            int ox0 = pad - kx > 0 ? pad - kx : 0;
            int ox1 = w + pad - kx < out_w ? w + pad - kx : out_w;
            if (ox1 < ox0) ox1 = ox0;
            for (int ox = 0; ox < ox0; ++ox) d[ox] = 0;
            if (ox1 > ox0) memcpy(d + ox0, s + ox0 + kx - pad, sizeof(float) * (size_t)(ox1 - ox0));
            for (int ox = ox1; ox < out_w; ++ox) d[ox] = 0;
        } else {
            for (int ox = 0; ox < out_w; ++ox) {
                int ix = ox * stride + kx - pad;
                d[ox] = (ix >= 0 && ix < w) ? s[ix] : 0;
            }
        }
    }
}

void dn_im2col(const float *im, int c, int h, int w, int size, int stride, int pad,
               int out_h, int out_w, float *col)
{
    unfold_args a = {im, col, c, h, w, size, stride, pad, out_h, out_w};
    dn_parallel_for(c * size * size, dn_parallel_threads(), im2col_row, &a);
}

/* Channel ch of the image: accumulate its size*size column rows. */
static void col2im_channel(void *ctx, int ch, int tid)
{
    (void)tid;
    const unfold_args *a = ctx;
    const float *col = a->src;
    float *im = a->dst;
    int h = a->h, w = a->w, size = a->size, stride = a->stride, pad = a->pad, out_h = a->out_h, out_w = a->out_w;
    for (int ky = 0; ky < size; ++ky)
        for (int kx = 0; kx < size; ++kx) {
            const float *src = col + ((size_t)(ch * size + ky) * size + kx) * out_h * out_w;
            float *dst = im + (size_t)ch * h * w;
            for (int oy = 0; oy < out_h; ++oy) {
                int iy = oy * stride + ky - pad;
                if (iy < 0 || iy >= h) continue;
                for (int ox = 0; ox < out_w; ++ox) {
                    int ix = ox * stride + kx - pad;
                    if (ix >= 0 && ix < w) dst[(size_t)iy * w + ix] += src[(size_t)oy * out_w + ox];
                }
            }
        }
}

void dn_col2im(const float *col, int c, int h, int w, int size, int stride, int pad,
               int out_h, int out_w, float *im)
{
    unfold_args a = {col, im, c, h, w, size, stride, pad, out_h, out_w};
    dn_parallel_for(c, dn_parallel_threads(), col2im_channel, &a);
}
