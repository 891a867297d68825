// Body of one int8 ISA translation unit (compare isa_unit.h). The including file defines
// RNNKIT_INT8_KIND (see int8_impl.h), RNNKIT_INT8_NAME, RNNKIT_INT8_NS (namespace),
// RNNKIT_INT8_ACCESSOR and, for x86 extensions, RNNKIT_INT8_TARGET (a GCC target string).
// Standard headers come first, so no library code is compiled for the extension.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine.h"
#include "int8.h"

#define RNNKIT_INT8_PRAGMA(x) _Pragma(#x)
#define RNNKIT_INT8_GCC_TARGET(t) RNNKIT_INT8_PRAGMA(GCC target(t))
#define RNNKIT_INT8_CLANG_TARGET(t) \
    RNNKIT_INT8_PRAGMA(clang attribute push(__attribute__((target(t))), apply_to = function))

#if !defined(RNNKIT_INT8_TARGET) || (defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)))
#define RNNKIT_INT8_BUILD 1
#endif

#if defined(RNNKIT_INT8_BUILD) && defined(RNNKIT_INT8_TARGET)
#include <immintrin.h>
#if defined(__clang__)
RNNKIT_INT8_CLANG_TARGET(RNNKIT_INT8_TARGET)
#else
#pragma GCC push_options
// No FMA contraction: the quantisation and gates must round as the portable unit does.
#pragma GCC optimize("fp-contract=off")
RNNKIT_INT8_GCC_TARGET(RNNKIT_INT8_TARGET)
#endif
#endif

#ifdef RNNKIT_INT8_BUILD
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 intrinsics (min_ps, max_ps, cvtps_epi32, ...) start from
// _mm512_undefined_*(), which -Wall reports as used uninitialized once inlined (GCC bug
// 105593, fixed in later releases): a false positive in the system header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
namespace rnnkit {
namespace RNNKIT_INT8_NS {
#include "int8_impl.h"
}  // namespace RNNKIT_INT8_NS
}  // namespace rnnkit
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

#if defined(RNNKIT_INT8_BUILD) && defined(RNNKIT_INT8_TARGET)
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

#ifdef RNNKIT_INT8_BUILD
const rnnkit::Int8Table* rnnkit::RNNKIT_INT8_ACCESSOR() { return &RNNKIT_INT8_NS::table; }
#else
const rnnkit::Int8Table* rnnkit::RNNKIT_INT8_ACCESSOR() { return nullptr; }
#endif
