// AVX-512 kernels, chosen at run time when the CPU has them.
#define RNNKIT_ISA isa_avx512
#define RNNKIT_ISA_NAME "avx512"
#define RNNKIT_ACCESSOR kernels_avx512
#define RNNKIT_VBYTES 64
#define RNNKIT_MR 12
#define RNNKIT_NV 2
#define RNNKIT_TARGET "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"
#include "isa_unit.h"
