// Single-core microbenchmark of the engine's batch-1 building blocks, for the arithmetic in
// bench/results/kernels_round2.md: cache read bandwidth by working-set size, the batch-1
// product on packed panels (sequence path), the dot products on torch's layout (streaming
// path, one and two operands) and the weight packing, each the minimum over many repetitions
// (robust to a busy machine: a repetition that was not preempted is the floor).
//
//   g++ -O3 -std=c++20 -fno-math-errno -I src/rnnkit/engine/csrc bench/kernel_micro.cpp
//       -o /tmp/kernel_micro && /tmp/kernel_micro
//
// "/tmp/kernel_micro peak": one core's FMA peak. "/tmp/kernel_micro steps": where a batched
// LSTM/GRU forward step goes (product, activations, packing, whole call; thread CPU time).
// "ab": the batched forward of this tree against another revision's, compiled into the same
// program and timed in alternation (paired ratios, medians), e.g. against HEAD:
//
//   mkdir -p /tmp/old && git archive HEAD src/rnnkit/engine/csrc | tar -x -C /tmp/old
//   g++ -O3 -std=c++20 -fno-math-errno -I src/rnnkit/engine/csrc
//       -DRNNKIT_AB_OLD='"/tmp/old/src/rnnkit/engine/csrc/kernels_avx512.cpp"'
//       bench/kernel_micro.cpp -o /tmp/kernel_ab && /tmp/kernel_ab ab
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <algorithm>
#include <vector>

#include "engine.h"

// The kernels run on the calling thread only.
namespace rnnkit {
void parallel_barrier() {}
// A whole call in "steps" mode does thread 0's share of a two-thread run (barriers are no-ops).
int g_share = 1;
void parallel_run(int, ParallelFn fn, void* ctx) { fn(ctx, 0, g_share); }
// Grown and reused like the engine's per-thread scratch, so calls do not time page faults.
void* thread_scratch(size_t bytes) {
    static void* buf = nullptr;
    static size_t size = 0;
    if (bytes > size) {
        free(buf);
        size = (bytes + 127) / 64 * 64;
        buf = aligned_alloc(64, size);
    }
    return buf;
}
}  // namespace rnnkit

// The AVX-512 unit itself, compiled into this program.
#include "kernels_avx512.cpp"

using namespace rnnkit::isa_avx512;
namespace cur = rnnkit::isa_avx512;

#ifdef RNNKIT_AB_OLD
// A second copy of the AVX-512 unit, from another revision, in its own namespace (see "ab").
namespace rnnkit {
const KernelTable* old_kernels_avx512();
}
#undef RNNKIT_ISA
#undef RNNKIT_ISA_NAME
#undef RNNKIT_ACCESSOR
#undef RNNKIT_VBYTES
#undef RNNKIT_MR
#undef RNNKIT_NV
#undef RNNKIT_TARGET
#undef RNNKIT_L1_PANEL_BYTES
#undef RNNKIT_SHUFFLEVECTOR
#undef RNNKIT_BUILD_UNIT
#define isa_avx512 old_avx512
#define kernels_avx512 old_kernels_avx512
#include RNNKIT_AB_OLD
#undef isa_avx512
#undef kernels_avx512
namespace old = rnnkit::old_avx512;
#endif
using rnnkit::MODE_LSTM;
using rnnkit::MODE_GRU;

// "steps" mode times this thread's CPU time: the machine is shared, and preemption would
// otherwise dominate the longer calls.
static clockid_t g_clock = CLOCK_MONOTONIC;
static double now_ns() {
    timespec t;
    clock_gettime(g_clock, &t);
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

// Inputs of a T-step forward call without projection, and its arguments (panels unset).
struct ForwardCase {
    std::vector<float> whh, xg, h0, c0, bias, y, hn, cn, gates, aux, work;
    rnnkit::ForwardArgs a = {};
    ForwardCase(int mode, int H, int B, int T, int save) {
        const int GH = gate_count(mode) * H;
        auto fill = [](std::vector<float>& v, size_t n, float scale, float shift) {
            v.resize(n);
            for (auto& e : v) e = (rand() % 1000) * scale - shift;
        };
        fill(whh, (size_t)GH * H, 1e-4f, 0.05f);
        fill(xg, (size_t)T * B * GH, 2e-3f, 1.0f);
        fill(h0, (size_t)B * H, 2e-3f, 1.0f);
        fill(c0, (size_t)B * H, 2e-3f, 1.0f);
        fill(bias, GH, 2e-4f, 0.1f);
        y.resize((size_t)T * B * H);
        hn.resize((size_t)B * H);
        cn.resize((size_t)B * H);
        gates.resize((size_t)(save ? T : 1) * B * GH);
        aux.resize((size_t)(save ? T : 1) * B * H);
        work.resize((size_t)3 * B * H);
        a.mode = mode; a.T = T; a.B = B; a.H = H; a.Hout = H; a.save = save; a.threads = 1;
        a.pack = 1; a.xg = xg.data(); a.bx = bias.data(); a.h0 = h0.data(); a.c0 = c0.data();
        a.whh = whh.data(); a.y = y.data(); a.hn = hn.data(); a.cn = cn.data();
        a.gates = gates.data(); a.aux = aux.data(); a.m = nullptr; a.work = work.data();
    }
};

// Per-step cost of the batched forward (LSTM/GRU, one core doing what one of two threads does:
// half the hidden units of every gate): the product (h W_hh^T + xg on packed panels), the
// gate activations and state update, and a whole T-step call including the packing.
static void sequence_steps(int mode, int H, int B, int save, int share = 2, int T = 8) {
    const int G = gate_count(mode), GH = G * H, k1 = H / share;
    ForwardCase fc(mode, H, B, T, save);
    rnnkit::ForwardArgs& a = fc.a;
    std::vector<float>&h0 = fc.h0, &c0 = fc.c0;
    a.panels = aligned_alloc(64, (size_t)G * packed_size<float>(H, H) * 4 + 64);
    const Forward<float> f(a);
    f.pack(0, k1, 0, k1);
    std::vector<float> c(c0), hnew((size_t)B * H);
    // Sub-microsecond parts are timed 50 at a time: reading the thread CPU clock is a syscall.
    const double prod = best_ns([&] {
        for (int i = 0; i < 50; i++) f.gate_products(1, h0.data(), f.gates_at(1), 0, k1);
    }, 60) / 50;
    const double point = best_ns([&] {
        for (int i = 0; i < 50; i++) f.pointwise(1, h0.data(), hnew.data(), c.data(), 0, k1);
    }, 60) / 50;
    const double pack = best_ns([&] { f.pack(0, k1, 0, k1); }, 30);
    rnnkit::g_share = share;
    const double whole = best_ns([&] { forward_entry<float>(a); }, 20);
    const double flop = 2.0 * B * H * (double)GH / share;  // this thread's flops per step
    printf("  %s H=%3d B=%3d save=%d  per step, 1/%d of the units: product %8.3f us (%5.1f GFLOP/s)"
           " | pointwise %6.3f us | pack (once) %6.2f us | whole call per step (T=%d) %8.3f us "
           "(%5.1f GFLOP/s)\n",
           mode == MODE_LSTM ? "LSTM" : "GRU ", H, B, save, share, prod / 1e3, flop / prod,
           point / 1e3, pack / 1e3, T, whole / T / 1e3, flop * T / whole);
    rnnkit::g_share = 1;
    free(a.panels);
}

// FMA peak of one core: 12 independent vector FMA chains in registers, no memory operands.
// Run two copies at once to see whether the two CPUs share one core's FMA units.
__attribute__((target("avx512f"))) static double fma_peak() {
    typedef float v16 __attribute__((vector_size(64)));
    v16 a0 = v16{} + 0.1f, a1 = a0 + 0.01f, a2 = a0 + 0.02f, a3 = a0 + 0.03f, a4 = a0 + 0.04f,
        a5 = a0 + 0.05f, a6 = a0 + 0.06f, a7 = a0 + 0.07f, a8 = a0 + 0.08f, a9 = a0 + 0.09f,
        a10 = a0 + 0.1f, a11 = a0 + 0.11f;
    const v16 m = v16{} + 0.999f, b = v16{} + 1e-4f;
    const long iters = 4000000;
    const double start = now_ns();
    for (long it = 0; it < iters; it++) {
        a0 = a0 * m + b; a1 = a1 * m + b; a2 = a2 * m + b; a3 = a3 * m + b;
        a4 = a4 * m + b; a5 = a5 * m + b; a6 = a6 * m + b; a7 = a7 * m + b;
        a8 = a8 * m + b; a9 = a9 * m + b; a10 = a10 * m + b; a11 = a11 * m + b;
    }
    const double ns = now_ns() - start;
    const v16 s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
    return s[0] == 12345.0f ? 0 : iters * 12.0 * 32 / ns;
}

#ifdef RNNKIT_AB_OLD
static int g_pairs = 31;  // timed pairs per case ("b1ab": 151, the calls are short)
// Thread 0's share of a two-thread forward call (T steps, packing included), timed for the
// old and the current kernels in alternation; prints the median of the paired ratios.
template <class OldF, class CurF>
static void ab_forward(int mode, int H, int B, int save, OldF old_entry, CurF cur_entry,
                       int share = 2, int T = 8) {
    const int G = gate_count(mode), GH = G * H;
    ForwardCase fc(mode, H, B, T, save);
    rnnkit::ForwardArgs& a = fc.a;
    std::vector<float>&h0 = fc.h0, &c0 = fc.c0, &y = fc.y;
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    {  // the gate activations and state update alone (step 1, thread 0's units)
        a.panels = rnnkit::thread_scratch((size_t)G * packed_size<float>(H, H) * 4);
        const old::Forward<float> fo(a);
        const cur::Forward<float> fc(a);
        std::vector<float> c(c0), hnew((size_t)B * H);
        std::vector<double> po, pc;
        for (int r = 0; r < 41; r++) {
            double s0 = now_ns();
            for (int i = 0; i < 20; i++) fo.pointwise(1, h0.data(), hnew.data(), c.data(), 0, H / share);
            double s1 = now_ns();
            for (int i = 0; i < 20; i++) fc.pointwise(1, h0.data(), hnew.data(), c.data(), 0, H / share);
            double s2 = now_ns();
            po.push_back(s1 - s0);
            pc.push_back(s2 - s1);
        }
        printf("  pointwise only: old %.3f us new %.3f us; ", median(po) / 20e3, median(pc) / 20e3);
        a.panels = nullptr;
    }
    rnnkit::g_share = share;
    std::vector<double> ratios, t_old, t_cur;
    double max_diff = 0;
    for (int r = 0; r < g_pairs; r++) {
        // Alternate which runs first, so neither always finds the other's data in cache.
        double s0, s1, s2, s3;
        std::vector<float> y_old;
        if (r % 2) {
            s2 = now_ns();
            cur_entry(a);
            s3 = now_ns();
            std::vector<float> y_cur(y);
            s0 = now_ns();
            old_entry(a);
            s1 = now_ns();
            y_old = y;
            y = y_cur;
        } else {
            s0 = now_ns();
            old_entry(a);
            s1 = now_ns();
            y_old = y;
            s2 = now_ns();
            cur_entry(a);
            s3 = now_ns();
        }
        for (size_t i = 0; i < (size_t)T * B * H; i++)
            if ((i % H) < (size_t)H / share) max_diff = fmax(max_diff, fabs(y[i] - y_old[i]));
        t_old.push_back(s1 - s0);
        t_cur.push_back(s3 - s2);
        ratios.push_back((s1 - s0) / (s3 - s2));
    }
    rnnkit::g_share = 1;
    const double flop = 2.0 * B * H * (double)GH / share * T;
    printf("  %s H=%3d B=%3d save=%d 1/%d  per step: old %8.3f us (%5.1f GFLOP/s)  new %8.3f us "
           "(%5.1f GFLOP/s)  old/new median %.3fx (range %.3f-%.3f)  max |y diff| %.1e\n",
           mode == MODE_LSTM ? "LSTM" : "GRU ", H, B, save, share, median(t_old) / T / 1e3,
           flop / median(t_old), median(t_cur) / T / 1e3, flop / median(t_cur), median(ratios),
           *std::min_element(ratios.begin(), ratios.end()),
           *std::max_element(ratios.begin(), ratios.end()), max_diff);
}
#endif

int main(int argc, char** argv) {
    __builtin_cpu_init();
    if (argc > 1 && !strcmp(argv[1], "peak")) {
        g_clock = CLOCK_THREAD_CPUTIME_ID;
        double best = 0;
        for (int r = 0; r < 20; r++) best = fma_peak() > best ? fma_peak() : best;
        printf("FMA peak, one core: %.1f GFLOP/s\n", best);
        return 0;
    }
#ifdef RNNKIT_AB_OLD
    if (argc > 1 && !strcmp(argv[1], "ab")) {
        g_clock = CLOCK_THREAD_CPUTIME_ID;
        for (int mode : {MODE_LSTM, MODE_GRU})
            for (int H : {256, 512})
                for (int B : {32, 128})
                    for (int save : {0, 1})
                        ab_forward(mode, H, B, save, &old::forward_entry<float>,
                                   &cur::forward_entry<float>);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "b1ab")) {  // batch 1, T = 100: one thread, thread 0 of 2
        g_clock = CLOCK_THREAD_CPUTIME_ID;
        g_pairs = 151;
        for (int mode : {MODE_LSTM, MODE_GRU})
            for (int H : {64, 128, 256})
                for (int share : {1, 2})
                    ab_forward(mode, H, 1, 0, &old::forward_entry<float>,
                               &cur::forward_entry<float>, share, 100);
        return 0;
    }
#endif
    if (argc > 1 && !strcmp(argv[1], "b1")) {  // batch 1, small sizes: 1 thread, thread 0 of 2
        g_clock = CLOCK_THREAD_CPUTIME_ID;
        for (int mode : {MODE_LSTM, MODE_GRU})
            for (int H : {64, 128, 256})
                for (int share : {1, 2}) sequence_steps(mode, H, 1, 0, share, 100);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "steps")) {
        g_clock = CLOCK_THREAD_CPUTIME_ID;
        for (int mode : {MODE_LSTM, MODE_GRU})
            for (int H : {256, 512})
                for (int B : {32, 128})
                    for (int save : {0, 1}) sequence_steps(mode, H, B, save);
        return 0;
    }
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
