/* ternary_gemm_ref.c: naive reference kernels of ternary inference (see
 * ternary_gemm_ref.h): the int8 activation quantiser, the integer GEMM and
 * the integer convolution. Plain loops, no blocking: the spec and the
 * fallback, never deleted. */
#include "ternary_gemm_ref.h"

#include <math.h>
#include <stdlib.h>

float dn_quantize_s8_ref(const float *x, size_t n, int8_t *q)
{
    float m = 0;
    for (size_t i = 0; i < n; ++i) {
        float a = fabsf(x[i]);
        m = a > m ? a : m;
    }
    float inv = m < DN_QUANT_MIN_MAX ? 0.f : 127.f / m;
    for (size_t i = 0; i < n; ++i) {
        float v = x[i] * inv;
        v = v < 127.f ? v : 127.f;
        v = v > -127.f ? v : -127.f;
        q[i] = (int8_t)lrintf(v);
    }
    return m < DN_QUANT_MIN_MAX ? 0.f : m / 127.f;
}

void dn_tgemm_ref(int M, int N, int K, const int8_t *A, const int8_t *B, int32_t *C)
{
    for (int m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n) {
            int32_t s = 0;
            for (int k = 0; k < K; ++k) s += (int32_t)A[(size_t)m * K + k] * B[(size_t)k * N + n];
            C[(size_t)m * N + n] = s;
        }
}

int dn_tconv_ref(int batch, int c, int h, int w, int filters, int size, int stride, int pad,
                 int groups, const int8_t *x, const int8_t *codes, int32_t *out)
{
    int oh = (h + 2 * pad - size) / stride + 1, ow = (w + 2 * pad - size) / stride + 1;
    int cg = c / groups, ng = filters / groups, K = cg * size * size, N = oh * ow;
    int8_t *col = malloc((size_t)K * N + 1);
    if (!col) return 0;
    for (int b = 0; b < batch; ++b)
        for (int g = 0; g < groups; ++g) {
            const int8_t *im = x + ((size_t)b * c + (size_t)g * cg) * h * w;
            for (int k = 0; k < K; ++k) {
                int ch = k / (size * size), ky = k / size % size, kx = k % size;
                for (int oy = 0; oy < oh; ++oy)
                    for (int ox = 0; ox < ow; ++ox) {
                        int iy = oy * stride + ky - pad, ix = ox * stride + kx - pad;
                        int inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
                        col[(size_t)k * N + oy * ow + ox] = inside ? im[((size_t)ch * h + iy) * w + ix] : 0;
                    }
            }
            dn_tgemm_ref(ng, N, K, codes + (size_t)g * ng * K, col,
                         out + ((size_t)b * filters + (size_t)g * ng) * N);
        }
    free(col);
    return 1;
}
