// Portable kernels (SSE2 / NEON width, or scalar code where the compiler has no vectors).
#define RNNKIT_ISA isa_generic
#define RNNKIT_ISA_NAME "generic"
#define RNNKIT_ACCESSOR kernels_generic
#define RNNKIT_VBYTES 16
#define RNNKIT_MR 4
#define RNNKIT_NV 2
#include "isa_unit.h"
