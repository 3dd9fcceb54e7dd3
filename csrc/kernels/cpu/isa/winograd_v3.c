/* winograd.c for x86-64-v3 (AVX2, FMA): see ../isa.h. */
#pragma GCC target("arch=x86-64-v3")
#define DN_ISA v3
#include "../isa.h"
#include "../winograd.c"
