// AVX-512 kernels, chosen at run time when the CPU has them.
#define RNNKIT_ISA isa_avx512
#define RNNKIT_ISA_NAME "avx512"
#define RNNKIT_ACCESSOR kernels_avx512
#define RNNKIT_VBYTES 64
#define RNNKIT_MR 12
#define RNNKIT_NV 2
// Larger K-chunks than the default 24 KB: K <= 320 (H <= 256 in forward) needs no chunking
// and longer ones fewer passes over C. The chunk exceeds what L1 keeps next to the A rows,
// but its 2 vectors per k (10 bytes a cycle) are well within what L2 delivers. Measured
// 2-6% faster per forward step at B=32-128, H=256-512 (kernels_round3.md).
#define RNNKIT_L1_PANEL_BYTES (40 * 1024)
#define RNNKIT_TARGET "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"
#include "isa_unit.h"
