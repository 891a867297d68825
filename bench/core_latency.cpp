// Cost of handing data between two cores on this machine: what a recurrence split between
// two threads pays every step, at least once (each thread needs the other's half of h_t).
//
//   g++ -O2 -pthread bench/core_latency.cpp -o /tmp/core_latency && /tmp/core_latency
//
// Prints, in ns per step (mean over 200,000 steps, two threads, no work between steps):
// - round trip: one thread writes a counter, the other answers, the first sees the answer;
// - flags: each thread publishes its step counter and waits for the other's (the cheapest
//   per-step synchronisation of two threads);
// - barrier: a sense-reversing barrier on a shared counter (the engine's parallel_barrier).
#include <immintrin.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

namespace {

constexpr long kSteps = 200000;
alignas(64) std::atomic<long> first{0};
alignas(64) std::atomic<long> second{0};
alignas(64) std::atomic<int> arrived{0};
alignas(64) std::atomic<int> sense{0};

template <typename Body>
double ns_per_step(Body peer, Body self) {
    first = 0;
    second = 0;
    std::thread other(peer);
    const auto start = std::chrono::steady_clock::now();
    self();
    const auto stop = std::chrono::steady_clock::now();
    other.join();
    return std::chrono::duration<double, std::nano>(stop - start).count() / kSteps;
}

void wait_until(const std::atomic<long>& counter, long value) {
    while (counter.load(std::memory_order_acquire) < value) _mm_pause();
}

void barrier(int& local_sense) {
    local_sense = !local_sense;
    if (arrived.fetch_add(1, std::memory_order_acq_rel) + 1 == 2) {
        arrived.store(0, std::memory_order_relaxed);
        sense.store(local_sense, std::memory_order_release);
    } else {
        while (sense.load(std::memory_order_acquire) != local_sense) _mm_pause();
    }
}

}  // namespace

int main() {
    using Body = void (*)();
    const double round_trip = ns_per_step(
        (Body)[] { for (long i = 1; i <= kSteps; i++) { wait_until(first, i); second.store(i, std::memory_order_release); } },
        (Body)[] { for (long i = 1; i <= kSteps; i++) { first.store(i, std::memory_order_release); wait_until(second, i); } });
    const double flags = ns_per_step(
        (Body)[] { for (long i = 1; i <= kSteps; i++) { second.store(i, std::memory_order_release); wait_until(first, i); } },
        (Body)[] { for (long i = 1; i <= kSteps; i++) { first.store(i, std::memory_order_release); wait_until(second, i); } });
    const double shared_barrier = ns_per_step(
        (Body)[] { int s = 0; for (long i = 0; i < kSteps; i++) barrier(s); },
        (Body)[] { int s = 0; for (long i = 0; i < kSteps; i++) barrier(s); });
    std::printf("round trip %.0f ns, flags %.0f ns, barrier %.0f ns per step\n", round_trip, flags,
                shared_barrier);
}
