// AVX2 + FMA kernels, chosen at run time when the CPU has them.
#define RNNKIT_ISA isa_avx2
#define RNNKIT_ISA_NAME "avx2"
#define RNNKIT_ACCESSOR kernels_avx2
#define RNNKIT_VBYTES 32
#define RNNKIT_MR 6
#define RNNKIT_NV 2
#define RNNKIT_TARGET "avx2,fma"
#include "isa_unit.h"
