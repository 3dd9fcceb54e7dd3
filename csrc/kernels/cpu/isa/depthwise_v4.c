/* depthwise.c for x86-64-v4 (AVX-512): see ../isa.h. */
#pragma GCC target("arch=x86-64-v4")
#define DN_ISA v4
#include "../isa.h"
#include "../depthwise.c"
