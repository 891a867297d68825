// Single-core microbenchmark of the engine's batch-1 building blocks, for the arithmetic in
// bench/results/kernels_round2.md: cache read bandwidth by working-set size, the batch-1
// product on packed panels (sequence path), the dot products on torch's layout (streaming
// path, one and two operands) and the weight packing, each the minimum over many repetitions
// (robust to a busy machine: a repetition that was not preempted is the floor).
//
//   g++ -O3 -std=c++20 -fno-math-errno -I src/rnnkit/engine/csrc bench/kernel_micro.cpp \
//       -o /tmp/kernel_micro && /tmp/kernel_micro
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vector>

#include "engine.h"

// The kernels run on the calling thread only.
namespace rnnkit {
void parallel_barrier() {}
void parallel_run(int, ParallelFn fn, void* ctx) { fn(ctx, 0, 1); }
void* thread_scratch(size_t bytes) { return aligned_alloc(64, (bytes + 127) / 64 * 64); }
}  // namespace rnnkit

// The AVX-512 unit itself, compiled into this program.
#include "kernels_avx512.cpp"

using namespace rnnkit::isa_avx512;

static double now_ns() {
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

template <class F>
static double best_ns(F f, int reps) {
    double best = 1e18;
    for (int r = 0; r < reps; r++) {
        const double start = now_ns();
        f();
        const double elapsed = now_ns() - start;
        if (elapsed < best) best = elapsed;
    }
    return best;
}

// Four independent accumulators: enough loads in flight to measure the cache, not latency.
__attribute__((target("avx512f"))) static float read_all(const float* p, long n) {
    typedef float v16 __attribute__((vector_size(64)));
    v16 a0{}, a1{}, a2{}, a3{};
    for (long i = 0; i < n; i += 64) {
        v16 x0, x1, x2, x3;
        memcpy(&x0, p + i, 64);
        memcpy(&x1, p + i + 16, 64);
        memcpy(&x2, p + i + 32, 64);
        memcpy(&x3, p + i + 48, 64);
        a0 += x0;
        a1 += x1;
        a2 += x2;
        a3 += x3;
    }
    v16 s = a0 + a1 + a2 + a3;
    return s[0] + s[5];
}

int main() {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) {
        printf("needs AVX-512\n");
        return 1;
    }
    volatile float sink = 0;
    printf("read bandwidth, one core\n");
    for (long kb : {32, 128, 256, 512, 1024, 1536, 2048, 4096}) {
        const long n = kb * 256;
        float* p = (float*)aligned_alloc(64, n * 4);
        for (long i = 0; i < n; i++) p[i] = 1e-3f * (i % 7);
        const double t = best_ns([&] { sink = sink + read_all(p, n); }, 500);
        printf("  %5ld KB: %9.0f ns  %6.1f GB/s\n", kb, t, kb * 1024.0 / t);
        free(p);
    }
    printf("batch-1 products (K = H, N = G*H), one core\n");
    for (int H : {64, 128, 256, 512}) {
        for (int G : {1, 3, 4}) {
            const int N = G * H, K = H;
            std::vector<float> W((size_t)N * K), W2((size_t)N * K), a(K), a2(K), c(N), init(N);
            for (auto& w : W) w = (rand() % 1000) * 1e-3f - 0.5f;
            for (auto& w : W2) w = (rand() % 1000) * 1e-3f - 0.5f;
            for (auto& v : a) v = (rand() % 1000) * 1e-3f;
            for (auto& v : a2) v = (rand() % 1000) * 1e-3f;
            for (auto& v : init) v = (rand() % 1000) * 1e-3f;
            const int panels = (N + 15) / 16;
            float* P = (float*)aligned_alloc(64, packed_size<float>(K, N) * 4 + 64);
            const double pack = best_ns([&] { pack_panels<float>(W.data(), true, K, 0, K, N, 0, panels, P); }, 200);
            const double packed = best_ns([&] {
                gemm_packed<float>(1, K, a.data(), K, P, N, 0, panels, c.data(), N, init.data(), N);
            }, 3000);
            const double dot = best_ns([&] {
                gemm_nt<float>(1, K, a.data(), K, W.data(), K, 0, N, c.data(), N, init.data(), N);
            }, 3000);
            const double fused = best_ns([&] {
                dots<float>(0, N, K, a.data(), W.data(), K, K, a2.data(), W2.data(), K, c.data(),
                            init.data(), nullptr);
            }, 3000);
            const double bytes = (double)N * K * 4;
            printf("  H=%3d G=%d %5.0f KB: packed %7.0f ns %5.1f GB/s | dots %7.0f ns %5.1f GB/s | "
                   "x,h dots %7.0f ns %5.1f GB/s | pack %7.0f ns\n",
                   H, G, bytes / 1024, packed, bytes / packed, dot, bytes / dot, fused,
                   2 * bytes / fused, pack);
            free(P);
        }
    }
    return sink == 12345.0f;
}
