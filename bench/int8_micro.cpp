// Single-core microbenchmark of the int8 streaming step at batch 1 (bench/results/streaming.md,
// "int8 floor"): how fast one core streams a weight set through vpdpbusd (the arithmetic floor
// of a step), and what each part of the int8 kernel's step costs (products, quantisation,
// gates, the whole kernel without Python), each the minimum and median over many repetitions
// of the calling thread's CPU time.
//
//   g++ -O3 -fwrapv -fPIC -std=c++20 -fno-math-errno -I src/rnnkit/engine/csrc
//       bench/int8_micro.cpp -o /tmp/int8_micro -lpthread && /tmp/int8_micro
//
// -fwrapv -fPIC as Python's extension build adds them (-fwrapv changes what the compiler may
// assume about int indices, and so the code of the gate loops). "layouts": 512 KB by input
// count K, with and without software prefetch. "huge": 4 KB pages against one 2 MB page.
//
// "/tmp/int8_micro pair": the same floor with two threads, each streaming its own half from
// its own core's L2 and meeting at a spinning barrier once per step (the best a 2-thread split
// of one step can do).
#include <pthread.h>
#include <sys/mman.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "engine.h"
#include "int8.h"

// The kernels run on the calling thread only.
namespace rnnkit {
void parallel_barrier() {}
void parallel_run(int, ParallelFn fn, void* ctx) { fn(ctx, 0, 1); }
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
Int8Buffer::Int8Buffer(size_t bytes) { data = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64); }
Int8Buffer::~Int8Buffer() { free(data); }
}  // namespace rnnkit

#include "int8_vnni.cpp"

namespace v = rnnkit::int8_isa_vnni;

static double now_ns() {
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

struct Stat {
    double min, median;
};

// Each repetition times `inner` calls, so the clock's own cost (~50 ns) is amortised.
template <class F>
static Stat time_ns(F f, int reps = 301, int inner = 50) {
    std::vector<double> t(reps);
    for (int r = 0; r < reps; r++) {
        const double start = now_ns();
        for (int i = 0; i < inner; i++) f();
        t[r] = (now_ns() - start) / inner;
    }
    std::sort(t.begin(), t.end());
    return {t[0], t[reps / 2]};
}

// The floor: `bytes` of packed weights (blocks of 16 rows x kg groups of 4 inputs) through
// vpdpbusd against one broadcast activation row, `chains` independent accumulators, blocks
// walked in order. Nothing else (no quantisation, no stores but one per block).
template <int chains>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void floor_pass(
    const int8_t* w, long blocks, int kg, const uint8_t* act, int32_t* out) {
    for (long b = 0; b < blocks; b += chains / 4) {
        __m512i c[chains];
        for (int i = 0; i < chains; i++) c[i] = _mm512_setzero_si512();
        for (int k = 0; k < kg; k += 4)
            for (int j = 0; j < chains / 4; j++)
                for (int i = 0; i < 4; i++) {
                    const __m512i a = _mm512_set1_epi32(v::load4(act + 4 * (k + i)));
                    c[4 * j + i] = _mm512_dpbusd_epi32(
                        c[4 * j + i], a,
                        _mm512_loadu_si512(w + ((b + j) * kg + k + i) * 64));
                }
        for (int j = 0; j < chains / 4; j++)
            _mm512_storeu_si512(out + (b + j) * 16,
                                _mm512_add_epi32(_mm512_add_epi32(c[4 * j], c[4 * j + 1]),
                                                 _mm512_add_epi32(c[4 * j + 2], c[4 * j + 3])));
    }
}

// floor_pass<8> (two blocks per broadcast) with a software prefetch of the block pair
// `ahead` pairs on, one line per line read: a packed block of K = 256 inputs is one whole 4 KB
// page, where the L2 streamer (which stops at page ends) might start cold at every block. It
// does not pay (the prefetches take load slots; 512 KB runs at the same speed for every K).
template <int ahead>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void prefetch_pass(
    const int8_t* w, long blocks, int kg, const uint8_t* act, int32_t* out) {
    const long step = (long)kg * 64;
    for (long b = 0; b < blocks; b += 2) {
        const int8_t* w0 = w + b * step;
        const int8_t* w1 = w0 + step;
        const int8_t* p0 = w0 + (b + 2 * ahead < blocks ? 2 * ahead * step : 0);
        __m512i c[8];
        for (int i = 0; i < 8; i++) c[i] = _mm512_setzero_si512();
        for (int k = 0; k < kg; k += 4) {
            for (int i = 0; i < 4; i++) {
                _mm_prefetch((const char*)p0 + (k + i) * 64, _MM_HINT_T0);
                _mm_prefetch((const char*)p0 + step + (k + i) * 64, _MM_HINT_T0);
                const __m512i a = _mm512_set1_epi32(v::load4(act + 4 * (k + i)));
                c[i] = _mm512_dpbusd_epi32(c[i], a, _mm512_loadu_si512(w0 + (k + i) * 64));
                c[4 + i] = _mm512_dpbusd_epi32(c[4 + i], a, _mm512_loadu_si512(w1 + (k + i) * 64));
            }
        }
        _mm512_storeu_si512(out + b * 16, _mm512_add_epi32(_mm512_add_epi32(c[0], c[1]),
                                                           _mm512_add_epi32(c[2], c[3])));
        _mm512_storeu_si512(out + b * 16 + 16, _mm512_add_epi32(_mm512_add_epi32(c[4], c[5]),
                                                                _mm512_add_epi32(c[6], c[7])));
    }
}

// One block at a time (a single sequential stream), `chains` accumulators over k.
template <int chains>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void seq_pass(
    const int8_t* w, long blocks, int kg, const uint8_t* act, int32_t* out) {
    for (long b = 0; b < blocks; b++) {
        const int8_t* wb = w + b * kg * 64;
        __m512i c[chains];
        for (int i = 0; i < chains; i++) c[i] = _mm512_setzero_si512();
        for (int k = 0; k < kg; k += chains)
            for (int i = 0; i < chains; i++)
                c[i] = _mm512_dpbusd_epi32(c[i], _mm512_set1_epi32(v::load4(act + 4 * (k + i))),
                                           _mm512_loadu_si512(wb + (k + i) * 64));
        for (int i = 1; i < chains; i++) c[0] = _mm512_add_epi32(c[0], c[i]);
        _mm512_storeu_si512(out + b * 16, c[0]);
    }
}

// 64-byte aligned, as torch's CPU allocator aligns the packed tensors (a vector's 16-byte
// alignment splits every 64-byte load over two lines and halves the bandwidth).
template <class T>
struct Aligned {
    T* p = nullptr;
    size_t n = 0;
    void resize(size_t count) {
        free(p);
        n = count;
        p = (T*)aligned_alloc(64, (count * sizeof(T) + 63) / 64 * 64);
    }
    void assign(size_t count, T value) {
        resize(count);
        for (size_t i = 0; i < count; i++) p[i] = value;
    }
    T* data() { return p; }
    T* begin() { return p; }
    T* end() { return p + n; }
    T& operator[](size_t i) { return p[i]; }
    ~Aligned() { free(p); }
};

struct Weights {
    Aligned<int8_t> w;
    std::vector<uint8_t> act;
    std::vector<int32_t> out;
    long blocks;
    int kg;
    Weights(long bytes, int K) : kg(K / 4) {
        blocks = bytes / (64L * kg);
        w.resize(bytes + 64);
        for (auto& e : w) e = (int8_t)(rand() % 255 - 127);
        act.resize(K);
        for (auto& e : act) e = (uint8_t)(rand() % 256);
        out.resize(blocks * 16 + 64);
    }
};

static void floors() {
    printf("int8 floor, one core: packed weights through vpdpbusd, batch 1 (ns per pass)\n");
    struct Case {
        const char* name;
        long bytes;
        int K;
    };
    const Case cases[] = {{"GRU128 (3*128 rows x 2*128)", 96 * 1024, 128},
                          {"GRU128 half", 48 * 1024, 128},
                          {"LSTM256 (4*256 rows x 2*256)", 512 * 1024, 256},
                          {"LSTM256 half", 256 * 1024, 256}};
    for (const Case& c : cases) {
        Weights wt(c.bytes, c.K);
        auto run = [&](auto pass) {
            return time_ns(
                [&] { pass(wt.w.data(), wt.blocks, wt.kg, wt.act.data(), wt.out.data()); });
        };
        const Stat s4 = run(floor_pass<4>), s8 = run(floor_pass<8>), s16 = run(floor_pass<16>);
        const Stat q8 = run(seq_pass<8>), q16 = run(seq_pass<16>);
        const Stat dot = time_ns([&] {
            v::dot_blocks(wt.w.data(), wt.kg, 0, (int)wt.blocks, wt.act.data(), 0, 1,
                          wt.out.data(), 0);
        });
        const double kb = c.bytes / 1024.0;
        auto gbs = [&](Stat s) { return c.bytes / s.min; };
        printf("  %-30s %4.0f KB: 4 chains %6.0f ns (%5.1f GB/s, median %6.0f) | 8 chains %6.0f "
               "(%5.1f) | 16 chains %6.0f (%5.1f) | seq 8 %6.0f (%5.1f) | seq 16 %6.0f (%5.1f) | "
               "dot_blocks %6.0f (%5.1f)\n",
               c.name, kb, s4.min, gbs(s4), s4.median, s8.min, gbs(s8), s16.min, gbs(s16),
               q8.min, gbs(q8), q16.min, gbs(q16), dot.min, gbs(dot));
    }
}

// ------------------------------------------------------------------ parts of the kernel
// Random packed matrices of one layer (mode, H, input = H) and the stream() arguments.
struct Layer {
    int G, H;
    Aligned<int8_t> wih, whh;
    std::vector<float> sih, shh, bias, bhn, x, h, c, hn, cn;
    std::vector<int32_t> rih, rhh;
    rnnkit::Int8StreamLayer L = {};
    rnnkit::Int8StreamArgs a = {};
    Layer(int mode, int H_) : G(v::gate_count(mode)), H(H_) {
        const int Rp = G * ((H + 15) / 16 * 16), Kp = (H + 3) / 4 * 4;
        auto mat = [&](Aligned<int8_t>& w, std::vector<float>& s, std::vector<int32_t>& r,
                       rnnkit::Int8Matrix* m) {
            w.assign((size_t)Rp * Kp, 0);
            s.assign(Rp, 0.0f);
            r.assign(Rp, 0);
            for (auto& e : w) e = (int8_t)(rand() % 255 - 127);
            for (auto& e : s) e = 1e-3f * (1 + rand() % 100);
            for (int blk = 0; blk < Rp / 16; blk++)
                for (int k = 0; k < Kp / 4; k++)
                    for (int row = 0; row < 16; row++)
                        for (int i = 0; i < 4; i++)
                            r[blk * 16 + row] += w[((size_t)(blk * Kp / 4 + k) * 16 + row) * 4 + i];
            *m = {G * H, H, Rp, Kp, w.data(), s.data(), r.data()};
        };
        mat(wih, sih, rih, &L.ih);
        mat(whh, shh, rhh, &L.hh);
        auto fill = [](std::vector<float>& f, size_t n) {
            f.resize(n);
            for (auto& e : f) e = (rand() % 2000) * 1e-3f - 1.0f;
        };
        fill(bias, G * H);
        fill(bhn, H);
        fill(x, H);
        fill(h, H);
        fill(c, H);
        hn.resize(H);
        cn.resize(H);
        L.bias = bias.data();
        L.bhn = mode == rnnkit::MODE_GRU ? bhn.data() : nullptr;
        a = {mode, 1, 1, H, H, H, 1, &L, x.data(), h.data(),
             mode == rnnkit::MODE_LSTM ? c.data() : nullptr, hn.data(),
             mode == rnnkit::MODE_LSTM ? cn.data() : nullptr};
    }
};

static void parts() {
    printf("int8 streaming step, one core, batch 1, parts (ns: min / median)\n");
    for (auto [mode, H] : {std::pair{rnnkit::MODE_GRU, 128}, std::pair{rnnkit::MODE_LSTM, 256}}) {
        Layer l(mode, H);
        const int G = l.G, nb = l.L.hh.Rp / G / 16;
        std::vector<uint8_t> q(l.L.hh.Kp);
        std::vector<int32_t> acc(l.L.hh.Rp);
        std::vector<float> pre(G * H), out(H), c(l.c);
        const Stat quant = time_ns([&] { v::quantize_row(l.h.data(), H, l.L.hh.Kp, q.data()); });
        const Stat dots = time_ns([&] {
            for (int g = 0; g < G; g++)
                v::dot_blocks(l.L.ih.w, l.L.ih.Kp / 4, g * nb, (g + 1) * nb, q.data(), 0, 1,
                              acc.data(), 0);
            for (int g = 0; g < G; g++)
                v::dot_blocks(l.L.hh.w, l.L.hh.Kp / 4, g * nb, (g + 1) * nb, q.data(), 0, 1,
                              acc.data(), 0);
        });
        // The same products with the matrices and gates walked backwards every other step: the
        // weights read last (still in L1) are read first.
        int parity = 0;
        const Stat serpentine = time_ns([&] {
            parity ^= 1;
            for (int i = 0; i < 2 * G; i++) {
                const int s = parity ? 2 * G - 1 - i : i, g = s % G;
                const rnnkit::Int8Matrix& m = s < G ? l.L.ih : l.L.hh;
                v::dot_blocks(m.w, m.Kp / 4, g * nb, (g + 1) * nb, q.data(), 0, 1, acc.data(), 0);
            }
        });
        for (auto& p : pre) p = (rand() % 2000) * 4e-3f - 4.0f;
        const Stat gates = time_ns([&] {
            if (mode == rnnkit::MODE_LSTM)
                v::lstm_gates(pre.data(), H, c.data(), out.data());
            else
                v::gru_gates(pre.data(), pre.data() + H, l.bhn.data(), l.h.data(), H, out.data());
        });
        const Stat step = time_ns([&] { v::stream(l.a); });
        printf("  %s H=%d: quantize_row %5.0f / %5.0f | products (ih + hh) %5.0f / %5.0f | gates "
               "%5.0f / %5.0f | whole kernel step %5.0f / %5.0f | serpentine products %5.0f / "
               "%5.0f\n",
               mode == rnnkit::MODE_LSTM ? "LSTM" : "GRU", H, quant.min, quant.median, dots.min,
               dots.median, gates.min, gates.median, step.min, step.median, serpentine.min,
               serpentine.median);
    }
}

// ------------------------------------------------------------------ two threads
// Thread 1 pinned to core 1, thread 0 to core 0; each step both stream their half of the
// weights through dot_blocks and meet at a sense-reversing spin barrier (as the engine's
// parallel_barrier).
static void pair_floor() {
    printf("int8 floor, two threads (each its half, one barrier per step; wall ns per step)\n");
    for (auto [name, bytes, K] : {std::tuple{"GRU128", 96L * 1024, 128},
                                  std::tuple{"LSTM256", 512L * 1024, 256}}) {
        Weights halves[2] = {Weights(bytes / 2, K), Weights(bytes / 2, K)};
        std::atomic<int> count{0}, sense{0};
        auto barrier = [&](int& mine) {
            mine = !mine;
            if (count.fetch_add(1, std::memory_order_acq_rel) + 1 == 2) {
                count.store(0, std::memory_order_relaxed);
                sense.store(mine, std::memory_order_release);
            } else {
                while (sense.load(std::memory_order_acquire) != mine) _mm_pause();
            }
        };
        auto pin = [](int core) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(core, &set);
            pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
        };
        const int steps = 200000;
        std::thread worker([&] {
            pin(1);
            int mine = 0;
            Weights& w = halves[1];
            for (int s = 0; s < steps; s++) {
                v::dot_blocks(w.w.data(), w.kg, 0, (int)w.blocks, w.act.data(), 0, 1, w.out.data(),
                              0);
                barrier(mine);
            }
        });
        pin(0);
        int mine = 0;
        Weights& w = halves[0];
        std::vector<double> per;
        timespec t0, t1;
        for (int s = 0; s < steps; s += 1000) {
            clock_gettime(CLOCK_MONOTONIC, &t0);
            for (int i = 0; i < 1000; i++) {
                v::dot_blocks(w.w.data(), w.kg, 0, (int)w.blocks, w.act.data(), 0, 1, w.out.data(),
                              0);
                barrier(mine);
            }
            clock_gettime(CLOCK_MONOTONIC, &t1);
            per.push_back(((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1000);
        }
        worker.join();
        std::sort(per.begin(), per.end());
        printf("  %-8s %4ld KB (each %ld KB): min %6.0f ns, median %6.0f ns per step\n", name,
               bytes / 1024, bytes / 2048, per[0], per[per.size() / 2]);
        pin(0);
    }
}

static void huge() {
    printf("512 KB, K = 256, 4 KB pages against one 2 MB page (madvise), floor_pass<8> / <16>\n");
    for (int hp : {0, 1}) {
        int8_t* w = (int8_t*)aligned_alloc(2 << 20, 2 << 20);
        if (hp) madvise(w, 2 << 20, MADV_HUGEPAGE);
        for (int i = 0; i < (2 << 20); i++) w[i] = (int8_t)(rand() % 255 - 127);
        Weights wt(64 * 1024, 256);
        const long blocks = 512 * 1024 / (64 * 64);
        std::vector<int32_t> out(blocks * 16);
        const Stat a = time_ns([&] { floor_pass<8>(w, blocks, 64, wt.act.data(), out.data()); });
        const Stat b = time_ns([&] { floor_pass<16>(w, blocks, 64, wt.act.data(), out.data()); });
        printf("  %s: %6.0f ns (%5.1f GB/s) | %6.0f ns (%5.1f GB/s)\n",
               hp ? "2 MB page" : "4 KB pages",
               a.min, 524288 / a.min, b.min, 524288 / b.min);
        free(w);
    }
}

static void layouts() {
    printf("512 KB through floor_pass<16> / prefetch_pass by input count K (block = K * 16 B)\n");
    for (int K : {64, 128, 256, 512, 1024}) {
        Weights wt(512 * 1024, K);
        auto run = [&](auto pass) {
            return time_ns(
                [&] { pass(wt.w.data(), wt.blocks, wt.kg, wt.act.data(), wt.out.data()); });
        };
        const Stat a = run(floor_pass<16>), b = run(prefetch_pass<1>), c = run(prefetch_pass<2>);
        printf("  K=%4d: 16 chains %6.0f ns (%5.1f GB/s) | prefetch 1 pair ahead %6.0f (%5.1f) | "
               "2 pairs %6.0f (%5.1f)\n", K, a.min, 524288 / a.min, b.min, 524288 / b.min, c.min,
               524288 / c.min);
    }
}

int main(int argc, char** argv) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512vnni")) {
        printf("needs AVX-512 VNNI\n");
        return 1;
    }
    if (argc > 1 && !strcmp(argv[1], "pair")) {
        pair_floor();
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "huge")) {
        huge();
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "layouts")) {
        layouts();
        return 0;
    }
    floors();
    parts();
    return 0;
}
