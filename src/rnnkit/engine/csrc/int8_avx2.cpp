// int8 kernels for AVX2 (vpmaddwd), chosen when the CPU has AVX2 but not AVX-512 VNNI.
#define RNNKIT_INT8_KIND 1
#define RNNKIT_INT8_NAME "avx2"
#define RNNKIT_INT8_NS int8_isa_avx2
#define RNNKIT_INT8_ACCESSOR int8_avx2
#define RNNKIT_INT8_TARGET "avx2,fma"
#include "int8_unit.h"
