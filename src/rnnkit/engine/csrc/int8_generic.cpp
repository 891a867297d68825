// int8 kernels: portable C++ (any CPU).
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine.h"
#include "int8.h"

#define RNNKIT_INT8_BUILD 1
#ifdef RNNKIT_INT8_BUILD
#define RNNKIT_INT8_KIND 0
#define RNNKIT_INT8_NAME "generic"
namespace rnnkit {
namespace int8_isa_generic {
#include "int8_impl.h"
}  // namespace int8_isa_generic
}  // namespace rnnkit
const rnnkit::Int8Table* rnnkit::int8_generic() { return &int8_isa_generic::table; }
#else
const rnnkit::Int8Table* rnnkit::int8_generic() { return nullptr; }
#endif
