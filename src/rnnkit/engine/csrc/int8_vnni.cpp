// int8 kernels: AVX-512 VNNI (vpdpbusd), chosen when the CPU has it.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine.h"
#include "int8.h"
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RNNKIT_INT8_BUILD 1
#include <immintrin.h>
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
// No FMA contraction: the quantisation and gates must round as the portable unit does.
#pragma GCC optimize("fp-contract=off")
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")
#endif
#endif


#ifdef RNNKIT_INT8_BUILD
#define RNNKIT_INT8_KIND 2
#define RNNKIT_INT8_NAME "vnni"
namespace rnnkit {
namespace int8_isa_vnni {
#include "int8_impl.h"
}  // namespace int8_isa_vnni
}  // namespace rnnkit
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
const rnnkit::Int8Table* rnnkit::int8_vnni() { return &int8_isa_vnni::table; }
#else
const rnnkit::Int8Table* rnnkit::int8_vnni() { return nullptr; }
#endif
