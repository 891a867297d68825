// int8 kernels: AVX2 (vpmaddwd), chosen when the CPU has AVX2 but not AVX-512 VNNI.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine.h"
#include "int8.h"
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RNNKIT_INT8_BUILD 1
#include <immintrin.h>
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
// No FMA contraction: the quantisation and gates must round as the portable unit does.
#pragma GCC optimize("fp-contract=off")
#pragma GCC target("avx2,fma")
#endif
#endif


#ifdef RNNKIT_INT8_BUILD
#define RNNKIT_INT8_KIND 1
#define RNNKIT_INT8_NAME "avx2"
namespace rnnkit {
namespace int8_isa_avx2 {
#include "int8_impl.h"
}  // namespace int8_isa_avx2
}  // namespace rnnkit
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
const rnnkit::Int8Table* rnnkit::int8_avx2() { return &int8_isa_avx2::table; }
#else
const rnnkit::Int8Table* rnnkit::int8_avx2() { return nullptr; }
#endif
