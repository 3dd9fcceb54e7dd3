/* settings.h: the run-time settings (settings.c), as the kernels and layers
 * read them: dn_option(o) is the index of the current value among the
 * setting's choices, in the order of the enums below. A leaf header: the
 * kernels include it without the rest of the core. */
#ifndef DN_SETTINGS_H
#define DN_SETTINGS_H

typedef enum { DN_OPT_CONV_ALGO, DN_OPT_TERNARY_ALGO, DN_OPT_SIMD, DN_OPT_CUDNN, DN_OPT_COUNT } dn_option_id;

enum { DN_CONV_AUTO, DN_CONV_REF, DN_CONV_GEMM, DN_CONV_WINOGRAD, DN_CONV_DIRECT };
enum { DN_TALGO_AUTO, DN_TALGO_PACKED, DN_TALGO_DIRECT, DN_TALGO_WINOGRAD };
/* simd: 0 auto (the best the CPU has), else 1 + the highest level used:
 * 0 portable (x86-64-v2), 1 AVX2 + FMA (v3), 2 AVX-512 (v4, and VNNI for
 * the ternary kernels) */
enum { DN_CUDNN_ON, DN_CUDNN_OFF };

int dn_option(dn_option_id o);

#endif
