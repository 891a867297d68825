// Shared declarations between the ISA-specific kernel translation units and the
// Python module. Only plain C types cross this boundary, so every kernel unit can be
// compiled for a different instruction set without any ODR hazard.
#ifndef RNNKIT_ENGINE_H
#define RNNKIT_ENGINE_H

#include <stddef.h>
#include <stdint.h>

namespace rnnkit {

enum Mode { MODE_RNN_TANH = 0, MODE_RNN_RELU = 1, MODE_LSTM = 2, MODE_GRU = 3 };

// Words of a PanelCache key: mode, I, H, Hout, then (data pointer, version counter) of w_ih,
// w_hh and w_hr, a fingerprint of sampled weight values, and the packing layout (lanes and
// element size, set by the kernel entry).
constexpr int kPanelKeyWords = 12;
// Bytes before a cache's panels: the key of what they hold, then a seal word.
constexpr long kPanelHeaderBytes = 128;

// A caller-owned buffer of packed weights reused while its sources do not change: header
// (kPanelHeaderBytes, 64-byte aligned) then `capacity` elements of panels. The kernel entry
// packs into it when the header's key differs from `key` (which the boundary fills but for
// the layout word), and reuses it unpacked otherwise.
struct PanelCache {
    int64_t* header;
    void* panels;
    long capacity;
    int64_t key[kPanelKeyWords];
};

// Forward recurrence of one layer and one direction. All tensors are contiguous,
// time-major, with element type float or double (chosen by the caller's entry point).
struct ForwardArgs {
    int mode, T, B, H, Hout;  // Hout == proj size when whr != nullptr, else H
    int reverse, save, threads;
    int pack;          // 1: pack the weights into column panels first (see gemm_packed);
                       // 0: dot products on torch's layout (one step of a tiny batch)
    const void* xg;    // (T, B, G*H): input projection x W_ih^T, or null when x is given
    // Or the input itself (padded layout, no lengths, pack = 1, not GRU): x (T, B, I) and
    // w_ih (G*H, I) as stored by torch; the kernel then projects each step itself (Forward).
    const void* x;
    const void* wih;
    int I;
    // With x given: 1 = first project every step's input into xg, then run the recurrence on
    // it (xg is then scratch the kernel writes, (T, B, G*H) padded, and holds bx too: pointwise
    // adds no bias); 0 = project each step's input inside its step (xg null). Whole-sequence
    // calls on small batches take 1: one pass over W_ih for all steps, on the packed tile.
    int project_first;
    // With project_first and at least 2 threads: 1 = thread 0 runs the recurrence over every
    // unit and row while the others project the input a chunk of steps ahead of it, instead
    // of splitting the units of every step between the threads (a barrier per step). For
    // steps too small to split: the bits are one thread's.
    int pipeline;
    const void* bx;    // (G*H): bias added to each gate (b_ih + b_hh; GRU n gate: b_in only)
    const void* h0;    // (B, Hout)
    const void* c0;    // (B, H), LSTM only
    const void* whh;   // (G*H, Hout): weight_hh as stored by torch
    const void* bhn;   // (H): GRU b_hn, or null
    const void* whr;   // (Hout, H): weight_hr as stored by torch, or null
    const int64_t* lengths;  // (B) or null
    // (T + 1) or null: the packed layout (PackedSequence.data's order). Step t's rows are
    // rows [offsets[t], offsets[t+1]) of xg, y and (save) gates, aux, m: the first
    // offsets[t+1] - offsets[t] rows of the batch, longest first, only active rows stored.
    // Those tensors are then (rows, width) instead of (T, B, width); lengths is null.
    const int64_t* offsets;
    void* y;      // (T, B, Hout)
    void* hn;     // (B, Hout)
    void* cn;     // (B, H), LSTM only
    void* gates;  // save ? (T, B, G*H) activated gates : (B, G*H) scratch
    void* aux;    // save ? (T, B, H) : (B, H): LSTM cell state c_t, GRU (W_hn h + b_hn)
    void* m;      // save ? (T, B, H) : (B, H): LSTM-with-projection o * tanh(c_t)
    void* work;   // 2 * B * Hout + B * H elements of scratch
    void* panels; // packed weights: set by the kernel entry, callers leave it null
    // Packed weights kept by the caller between calls (infer's `panels`), or null: the entry
    // then packs into thread scratch on every call.
    PanelCache* cache;
    int prepacked;  // set by the kernel entry: 1 = the cache's panels hold these weights
};

// Backward recurrence (BPTT) matching ForwardArgs with save=1.
struct BackwardArgs {
    int mode, T, B, H, Hout;
    int reverse, threads;
    const void* whh;  // (G*H, Hout) as stored by torch
    const void* whr;  // (Hout, H) as stored by torch, or null
    const void* dy;   // (T, B, Hout)
    const void* dhn;  // (B, Hout)
    const void* dcn;  // (B, H), LSTM only
    const void* y;    // forward outputs (T, B, Hout)
    const void* h0;
    const void* c0;
    const void* gates;  // saved activated gates (T, B, G*H)
    const void* aux;    // saved (T, B, H)
    const int64_t* lengths;
    const int64_t* offsets;  // (T + 1) or null: packed layout, as ForwardArgs::offsets
    void* dgx;    // (T, B, G*H): gradient of the gate pre-activations (input side)
    void* dgh;    // (T, B, G*H): GRU recurrent side (differs in the n gate); may equal dgx
    void* dh0;    // (B, Hout)
    void* dc0;    // (B, H)
    void* dhtot;  // (T, B, Hout): total gradient of h_t per step, projection only, else null
    void* work;   // 3 * B * Hout + 2 * B * H elements of scratch
    void* panels; // packed weights: set by the kernel entry, callers leave it null
};

// Stacked unidirectional layers advanced by one time step (streaming inference): the
// input projection, recurrence and gate arithmetic of every layer in one call, weights
// read in torch's own layout (no transposed copies), each thread owning a slice of the
// hidden units and one barrier per layer.
struct StreamArgs {
    int mode, layers, B, I, H, Hout, threads;
    int packed;     // 0: weights in torch's layout; 1: packed panels (below)
    const void* x;  // (B, I): input of layer 0; layer l > 0 reads layer l-1's new h
    const void* h;  // (layers, B, Hout)
    const void* c;  // (layers, B, H), LSTM only
    const uintptr_t* weights;  // 5 per layer: w_ih (G*H, in), w_hh (G*H, Hout), b_ih, b_hh
                               // (G*H) or 0, w_hr (Hout, H) or 0. packed: panels
                               // (G * ceil(H/16), in + Hout, 16): 16 units of one gate each,
                               // [W_ih | W_hh] transposed, zero rows past H; bias (G*H), the
                               // summed gate biases (GRU n gate: b_in only); b_hn (H) or 0;
                               // 0; w_hr
    void* hn;       // (layers, B, Hout)
    void* cn;       // (layers, B, H), LSTM only
    void* work;     // stream_work_elements(...) elements of scratch
};

// Scratch a StreamArgs call needs, in elements of its dtype.
inline long stream_work_elements(int gates, int B, int H) {
    return (long)gates * H + 2L * B * gates * H + 2L * B * H;
}

// C (M x N) = A (M x K) * B: the large products around the recurrence (the input projection,
// the input and weight gradients), on the engine's packed tile instead of torch's BLAS.
struct GemmArgs {
    int M, N, K, threads;
    const void* a;  // a_km ? A[m][k] = a[k * lda + m] : a[m * lda + k]
    int a_km;
    long lda;
    const void* b;  // b_nk ? B[k][n] = b[n * ldb + k] : b[k * ldb + n]
    int b_nk;
    long ldb;
    void* c;        // (M, N), rows ldc apart
    long ldc;
    void* panels;   // packed B: set by the kernel entry, callers leave it null
};

struct KernelTable {
    const char* name;
    void (*stream_f32)(const StreamArgs&);
    void (*stream_f64)(const StreamArgs&);
    void (*forward_f32)(const ForwardArgs&);
    void (*forward_f64)(const ForwardArgs&);
    void (*backward_f32)(const BackwardArgs&);
    void (*backward_f64)(const BackwardArgs&);
    void (*gemm_f32)(const GemmArgs&);
    void (*gemm_f64)(const GemmArgs&);
};

// Thread pool (engine.cpp): runs fn(ctx, tid, nthreads) on nthreads threads, the
// caller being thread 0, and returns when all are done.
typedef void (*ParallelFn)(void* ctx, int tid, int nthreads);
void parallel_run(int nthreads, ParallelFn fn, void* ctx);
// Forward calls under way in the process (any Python thread's): a pipelined call's helper
// stops taking work when the caller is not alone, so concurrent calls keep a core each.
void calls_enter();
void calls_leave();
int calls_in_flight();
// parallel_run if no other parallel_run is under way (another Python thread's call), else
// fn(ctx, 0, 1) on the caller alone: for work whose extra threads are optional.
void parallel_run_or_alone(int nthreads, ParallelFn fn, void* ctx);
// Barrier among the threads of the current parallel_run.
void parallel_barrier();
// One round of waiting for another thread of the current parallel_run: a pause, or a yield
// of the core once the wait has lasted long enough that the other is probably descheduled.
void wait_pause(int& spins);
// Bytes of one core's L2 cache (the OS's figure, 1 MiB if it gives none), or as last set.
long l2_bytes();
void set_l2_bytes(long bytes);
// At least `bytes` of 64-byte aligned scratch owned by the calling thread, valid until its
// next call. It only grows, so repeated calls of one shape never touch fresh pages.
void* thread_scratch(size_t bytes);

const KernelTable* kernels_generic();
const KernelTable* kernels_avx2();
const KernelTable* kernels_avx512();

}  // namespace rnnkit

#endif
