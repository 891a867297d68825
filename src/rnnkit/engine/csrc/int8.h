// int8 dynamically quantised inference (int8.cpp is the Python boundary; int8_impl.h holds
// the kernels, compiled once per ISA by int8_generic.cpp, int8_avx2.cpp, int8_vnni.cpp).
//
// Weights: symmetric int8 per output row (scale s_w[r] = max|w_r| / 127), packed in blocks of
// 16 rows: block b, group k (4 consecutive inputs) holds 16 rows x 4 bytes, so one 64-byte
// load feeds vpdpbusd. Each gate's rows are padded to a multiple of 16 (zero rows) and the
// inputs to a multiple of 4 (zero columns). Activations: asymmetric uint8 per row and step
// (scale s_a, zero point z), so  x . w_r  ~=  s_a s_w[r] (sum_k q_k w_rk - z rowsum_r).
// Integer sums are exact, so every ISA produces the same int32 accumulators.
#ifndef RNNKIT_INT8_H
#define RNNKIT_INT8_H

#include <stddef.h>
#include <stdint.h>

namespace rnnkit {

// One packed matrix: rows R (padded to Rp, a multiple of 16), inputs K (padded to Kp, a
// multiple of 4), w (Rp/16, Kp/4, 16, 4) int8, scale (Rp) float, rowsum (Rp) int32.
struct Int8Matrix {
    int R, K, Rp, Kp;
    const int8_t* w;
    const float* scale;
    const int32_t* rowsum;
};

// One layer in one direction over a whole sequence, inference only. Time-major, contiguous
// float32 tensors. Weight rows of gate g are rows [g*Hp, g*Hp + H) of the packed matrices.
struct Int8LayerArgs {
    int mode, T, B, I, H, Hout, reverse, threads;
    Int8Matrix ih;      // (G*Hp rows, I inputs)
    Int8Matrix hh;      // (G*Hp rows, Hout inputs)
    Int8Matrix hr;      // (Hout rows, H inputs), LSTM with proj_size only (w == nullptr else)
    const float* x;     // (T, B, I)
    const float* h0;    // (B, Hout)
    const float* c0;    // (B, H), LSTM only
    const float* bias;  // (G*H): b_ih + b_hh (GRU n gate: b_in only)
    const float* bhn;   // (H): GRU b_hn
    const int64_t* lengths;  // (B) or null
    float* y;           // (T, B, Hout)
    float* hn;          // (B, Hout)
    float* cn;          // (B, H), LSTM only
};

// y (M, R) = dequantised (packed W) . quantised(x (M, K)) + bias (R, or null).
struct Int8LinearArgs {
    int M, threads;
    Int8Matrix w;
    const float* x;
    const float* bias;
    float* y;
};

// Stacked unidirectional layers advanced by one time step (streaming inference): the same
// arithmetic as Int8LayerArgs on a length-1 sequence, every layer in one parallel run, no
// allocation but the engine's per-thread scratch.
struct Int8StreamLayer {
    Int8Matrix ih, hh, hr;  // as Int8LayerArgs; hr.w == nullptr without projection
    const float* bias;      // (G*H)
    const float* bhn;       // (H), GRU only
};
struct Int8StreamArgs {
    int mode, layers, B, I, H, Hout, threads;
    const Int8StreamLayer* layer;  // (layers)
    const float* x;  // (B, I): input of layer 0; layer l > 0 reads layer l-1's new h
    const float* h;  // (layers, B, Hout)
    const float* c;  // (layers, B, H), LSTM only
    float* hn;       // (layers, B, Hout); must not overlap h
    float* cn;       // (layers, B, H), LSTM only; must not overlap c
};

struct Int8Table {
    const char* name;
    void (*layer)(const Int8LayerArgs&);
    void (*linear)(const Int8LinearArgs&);
    void (*stream)(const Int8StreamArgs&);
};

// 64-byte aligned scratch, freed on scope exit; from 1 MB on a block of the workspace cache
// (workspace.cpp), returned to it on scope exit. Allocation lives in int8.cpp so the ISA
// units instantiate no library templates (which the linker could merge across targets).
struct Int8Buffer {
    void* data;
    size_t capacity;  // of a workspace block, or 0
    explicit Int8Buffer(size_t bytes);
    ~Int8Buffer();
    Int8Buffer(const Int8Buffer&) = delete;
    Int8Buffer& operator=(const Int8Buffer&) = delete;
};

const Int8Table* int8_generic();
const Int8Table* int8_avx2();
const Int8Table* int8_vnni();

}  // namespace rnnkit
#endif
