/* conv_fast.c for x86-64-v2 (SSE4.2): see ../isa.h. */
#pragma GCC target("arch=x86-64-v2")
#define DN_ISA v2
#include "../isa.h"
#include "../conv_fast.c"
