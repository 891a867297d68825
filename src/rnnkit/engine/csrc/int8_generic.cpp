// int8 kernels in portable C++ (any CPU).
#define RNNKIT_INT8_KIND 0
#define RNNKIT_INT8_NAME "generic"
#define RNNKIT_INT8_NS int8_isa_generic
#define RNNKIT_INT8_ACCESSOR int8_generic
#include "int8_unit.h"
