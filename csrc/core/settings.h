/* settings.h: the run-time settings (settings.c), as the kernels and layers
 * read them: dn_option(o) is the index of the current value among the
 * setting's choices, in the order of the enums below. A leaf header: the
 * kernels include it without the rest of the core. */
#ifndef DN_SETTINGS_H
#define DN_SETTINGS_H

typedef enum { DN_OPT_CONV_ALGO, DN_OPT_TERNARY_ALGO, DN_OPT_TERNARY_SIMD, DN_OPT_CUDNN, DN_OPT_COUNT } dn_option_id;

enum { DN_CONV_AUTO, DN_CONV_REF, DN_CONV_GEMM, DN_CONV_WINOGRAD, DN_CONV_DIRECT };
enum { DN_TALGO_AUTO, DN_TALGO_PACKED, DN_TALGO_DIRECT, DN_TALGO_WINOGRAD };
/* ternary_simd: 0 auto (the best available), else a cap of level value - 1 */
enum { DN_CUDNN_ON, DN_CUDNN_OFF };

int dn_option(dn_option_id o);

#endif
