/* isa.h: the float kernels built once per x86-64 level and picked at run
 * time. conv_fast.c, winograd.c and depthwise.c are each compiled three
 * times (isa/<file>_v2.c, _v3.c, _v4.c: x86-64-v2 = SSE4.2, v3 = AVX2 and
 * FMA, v4 = AVX-512), each with its exported names suffixed _v2, _v3 or
 * _v4 by the defines below (DN_ISA set by the wrapper); isa.c defines the
 * plain names, which call the variant of dn_isa_level(). So one build runs
 * on any x86-64 CPU with SSE4.2 and uses what the CPU has, whatever -march
 * built the rest. */
#ifndef DN_ISA_H
#define DN_ISA_H

/* The level the float kernels run at: 2, 3 or 4, the best the CPU has,
 * capped by the setting simd (0: 2, 1: 3, 2: 4). */
int dn_isa_level(void);

#ifdef DN_ISA
#define DN_ISA_NAME2(f, v) f##_##v
#define DN_ISA_NAME(f, v) DN_ISA_NAME2(f, v)
/* conv_fast.c */
#define dn_epilogue_fuses DN_ISA_NAME(dn_epilogue_fuses, DN_ISA)
#define dn_gemm_block DN_ISA_NAME(dn_gemm_block, DN_ISA)
#define dn_conv_fast_gemm_scratch DN_ISA_NAME(dn_conv_fast_gemm_scratch, DN_ISA)
#define dn_conv_fast_gemm DN_ISA_NAME(dn_conv_fast_gemm, DN_ISA)
#define dn_conv_direct_scratch DN_ISA_NAME(dn_conv_direct_scratch, DN_ISA)
#define dn_conv_direct DN_ISA_NAME(dn_conv_direct, DN_ISA)
/* winograd.c */
#define dn_winograd43_weights_size DN_ISA_NAME(dn_winograd43_weights_size, DN_ISA)
#define dn_winograd43_weights DN_ISA_NAME(dn_winograd43_weights, DN_ISA)
#define dn_winograd43_weights_transposed DN_ISA_NAME(dn_winograd43_weights_transposed, DN_ISA)
#define dn_winograd43_scratch DN_ISA_NAME(dn_winograd43_scratch, DN_ISA)
#define dn_winograd43_forward DN_ISA_NAME(dn_winograd43_forward, DN_ISA)
/* depthwise.c */
#define dn_depthwise_applies DN_ISA_NAME(dn_depthwise_applies, DN_ISA)
#define dn_depthwise_scratch DN_ISA_NAME(dn_depthwise_scratch, DN_ISA)
#define dn_depthwise_forward DN_ISA_NAME(dn_depthwise_forward, DN_ISA)
#define dn_depthwise_backward DN_ISA_NAME(dn_depthwise_backward, DN_ISA)
#define dn_depthwise_s8_scratch DN_ISA_NAME(dn_depthwise_s8_scratch, DN_ISA)
#define dn_depthwise_s8 DN_ISA_NAME(dn_depthwise_s8, DN_ISA)
#endif

#endif
