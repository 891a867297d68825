// Body of one ISA translation unit. The including file defines RNNKIT_ISA (namespace
// name), RNNKIT_ISA_NAME, RNNKIT_ACCESSOR, RNNKIT_VBYTES, RNNKIT_MR, RNNKIT_NV and, for
// x86 extensions, RNNKIT_TARGET (a GCC target string). Standard headers come first so no
// inline library code is compiled for the extension.
#include <math.h>
#include <stdint.h>

#include "engine.h"

#define RNNKIT_PRAGMA(x) _Pragma(#x)
#define RNNKIT_PRAGMA_TARGET(t) RNNKIT_PRAGMA(GCC target(t))
#define RNNKIT_PRAGMA_CLANG_TARGET(t) \
    RNNKIT_PRAGMA(clang attribute push(__attribute__((target(t))), apply_to = function))

#if !defined(RNNKIT_TARGET) || (defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)))
#define RNNKIT_BUILD_UNIT 1
#endif

#if defined(RNNKIT_BUILD_UNIT) && defined(RNNKIT_TARGET)
#if defined(__clang__)
RNNKIT_PRAGMA_CLANG_TARGET(RNNKIT_TARGET)
#else
#pragma GCC push_options
RNNKIT_PRAGMA_TARGET(RNNKIT_TARGET)
#endif
#endif

#ifdef RNNKIT_BUILD_UNIT
namespace rnnkit {
namespace RNNKIT_ISA {
#include "kernels_impl.h"
}  // namespace RNNKIT_ISA
}  // namespace rnnkit
#endif

#if defined(RNNKIT_BUILD_UNIT) && defined(RNNKIT_TARGET)
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

#ifdef RNNKIT_BUILD_UNIT
const rnnkit::KernelTable* rnnkit::RNNKIT_ACCESSOR() { return &RNNKIT_ISA::table; }
#else
const rnnkit::KernelTable* rnnkit::RNNKIT_ACCESSOR() { return nullptr; }
#endif
