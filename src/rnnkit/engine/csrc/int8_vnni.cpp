// int8 kernels for AVX-512 VNNI (vpdpbusd), chosen when the CPU has it.
#define RNNKIT_INT8_KIND 2
#define RNNKIT_INT8_NAME "vnni"
#define RNNKIT_INT8_NS int8_isa_vnni
#define RNNKIT_INT8_ACCESSOR int8_vnni
#define RNNKIT_INT8_TARGET "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma"
#include "int8_unit.h"
