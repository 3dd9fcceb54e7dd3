/* isa.c: the plain names of the float kernels that isa.h builds per x86-64
 * level: each calls the variant of dn_isa_level(), the best level the CPU
 * has (x86-64-v2, v3 or v4) capped by the setting simd, read at each call
 * (a layer asks for its scratch size and runs at one level).
 */
#include "isa.h"
#include "conv_fast.h"
#include "depthwise.h"
#include "ternary_gemm.h"
#include "winograd.h"
#include "../../core/settings.h"

#include <pthread.h>

static int cpu_level;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void detect(void)
{
    __builtin_cpu_init();
    cpu_level = __builtin_cpu_supports("x86-64-v4") ? 4 : __builtin_cpu_supports("x86-64-v3") ? 3 : 2;
}

int dn_isa_level(void)
{
    pthread_once(&once, detect);
    int cap = dn_option(DN_OPT_SIMD); /* 0 auto, else 1 + the cap (0: v2, 1: v3, 2: v4) */
    return cap && cap + 1 < cpu_level ? cap + 1 : cpu_level;
}

#define VARIANTS(f) extern __typeof__(f) f##_v2, f##_v3, f##_v4;
#define PICK(f)                                                  \
    ({                                                           \
        int level_ = dn_isa_level();                             \
        level_ >= 4 ? f##_v4 : level_ == 3 ? f##_v3 : f##_v2;    \
    })

VARIANTS(dn_epilogue_fuses)
VARIANTS(dn_gemm_block)
VARIANTS(dn_conv_fast_gemm_scratch)
VARIANTS(dn_conv_fast_gemm)
VARIANTS(dn_conv_direct_scratch)
VARIANTS(dn_conv_direct)
VARIANTS(dn_winograd43_weights_size)
VARIANTS(dn_winograd43_weights)
VARIANTS(dn_winograd43_weights_transposed)
VARIANTS(dn_winograd43_scratch)
VARIANTS(dn_winograd43_forward)
VARIANTS(dn_depthwise_applies)
VARIANTS(dn_depthwise_scratch)
VARIANTS(dn_depthwise_forward)
VARIANTS(dn_depthwise_backward)
VARIANTS(dn_depthwise_s8_scratch)
VARIANTS(dn_depthwise_s8)

int dn_epilogue_fuses(dn_activation act) { return PICK(dn_epilogue_fuses)(act); }

void dn_gemm_block(int mc, int nc, int kc, const float *a, size_t a_ps, size_t a_rs, size_t a_ks, const float *b,
                   size_t b_ps, float *c, size_t ldc, int accumulate, const dn_epilogue *ep)
{
    PICK(dn_gemm_block)(mc, nc, kc, a, a_ps, a_rs, a_ks, b, b_ps, c, ldc, accumulate, ep);
}

size_t dn_conv_fast_gemm_scratch(const dn_conv_shape *s, int nthreads)
{
    return PICK(dn_conv_fast_gemm_scratch)(s, nthreads);
}

void dn_conv_fast_gemm(const dn_conv_shape *s, const float *input, const float *weights, const dn_epilogue *ep,
                       float *output, float *scratch, int nthreads)
{
    PICK(dn_conv_fast_gemm)(s, input, weights, ep, output, scratch, nthreads);
}

size_t dn_conv_direct_scratch(const dn_conv_shape *s) { return PICK(dn_conv_direct_scratch)(s); }

void dn_conv_direct(const dn_conv_shape *s, const float *input, const float *weights, const dn_epilogue *ep,
                    float *output, float *scratch, int nthreads)
{
    PICK(dn_conv_direct)(s, input, weights, ep, output, scratch, nthreads);
}

size_t dn_winograd43_weights_size(int filters, int c) { return PICK(dn_winograd43_weights_size)(filters, c); }

void dn_winograd43_weights(const float *weights, int filters, int c, float *u)
{
    PICK(dn_winograd43_weights)(weights, filters, c, u);
}

void dn_winograd43_weights_transposed(const float *weights, int filters, int c, float *u)
{
    PICK(dn_winograd43_weights_transposed)(weights, filters, c, u);
}

size_t dn_winograd43_scratch(const dn_conv_shape *s, int nthreads)
{
    return PICK(dn_winograd43_scratch)(s, nthreads);
}

void dn_winograd43_forward(const dn_conv_shape *s, const float *input, const float *u, const dn_epilogue *ep,
                           float *output, float *scratch, int nthreads)
{
    PICK(dn_winograd43_forward)(s, input, u, ep, output, scratch, nthreads);
}

int dn_depthwise_applies(const dn_conv_shape *s) { return PICK(dn_depthwise_applies)(s); }

size_t dn_depthwise_scratch(const dn_conv_shape *s, int nthreads) { return PICK(dn_depthwise_scratch)(s, nthreads); }

void dn_depthwise_forward(const dn_conv_shape *s, const float *input, const float *weights, const dn_epilogue *ep,
                          float *output, float *scratch, int nthreads)
{
    PICK(dn_depthwise_forward)(s, input, weights, ep, output, scratch, nthreads);
}

void dn_depthwise_backward(const dn_conv_shape *s, const float *input, const float *weights, const float *delta,
                           float *weight_grad, float *input_delta, float *scratch, int nthreads)
{
    PICK(dn_depthwise_backward)(s, input, weights, delta, weight_grad, input_delta, scratch, nthreads);
}

size_t dn_depthwise_s8_scratch(const dn_conv_shape *s, int nthreads)
{
    return PICK(dn_depthwise_s8_scratch)(s, nthreads);
}

void dn_depthwise_s8(const dn_conv_shape *s, const dn_tkernels *K, const float *input, const float *inv,
                     const float *sx, const int8_t *xs8, const int8_t *codes, const dn_epilogue *ep, float *output,
                     int32_t *out32, void *scratch, int nthreads)
{
    PICK(dn_depthwise_s8)(s, K, input, inv, sx, xs8, codes, ep, output, out32, scratch, nthreads);
}
