// Python boundary of the int8 kernels (see int8.h). The module object is built on request by
// rnnkit_int8_module(), which rnnkit/engine/quantized.py calls once through ctypes: it lives
// in the same shared object as the rest of the engine (and shares its thread pool) without
// an entry in engine.cpp's method table. As in boundary.cpp, nothing from Python is trusted:
// every tensor's type, storage, device, layout, dtype, shape and contiguity is checked here,
// and the packed weights' row sums are bounded, before a kernel sees a pointer.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <ATen/core/Tensor.h>
#include <ATen/core/grad_mode.h>
#include <ATen/EmptyTensor.h>
#include <c10/core/DispatchKeySet.h>
#include <torch/csrc/autograd/python_variable.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "boundary.h"
#include "engine.h"
#include "int8.h"

namespace rnnkit {

Int8Buffer::Int8Buffer(size_t bytes) : capacity(0) {
    const size_t padded = (bytes + 63) / 64 * 64 + 64;
    // A whole-sequence call's projection (T x B x gates x H floats) is the same size call after
    // call: from the workspace cache, not fresh pages each time (workspace.cpp).
    data = padded >= kWorkspaceMinBytes ? workspace_acquire(padded, &capacity)
                                        : std::aligned_alloc(64, padded);
    if (!data) std::abort();  // as operator new would, without throwing through C code
}
Int8Buffer::~Int8Buffer() {
    if (capacity)
        workspace_release(data, capacity);
    else
        std::free(data);
}

}  // namespace rnnkit

namespace {

// Inputs of at most this many features: |accumulator - zero * rowsum| < 2 * 255 * 128 * K
// stays inside int32.
constexpr int64_t kMaxInputs = 32768;

bool error(PyObject* type, const std::string& message) {
    PyErr_SetString(type, ("rnnkit.engine.int8: " + message).c_str());
    return false;
}

std::string dims(c10::IntArrayRef sizes) {
    std::string text = "(";
    for (size_t i = 0; i < sizes.size(); i++) text += (i ? ", " : "") + std::to_string(sizes[i]);
    return text + (sizes.size() == 1 ? ",)" : ")");
}

// The tensor behind `obj` after every check, nullptr for an allowed None; on failure a Python
// error is set and *ok is false.
const at::Tensor* tensor_arg(PyObject* obj, const char* name, at::ScalarType dtype,
                             c10::IntArrayRef want, bool optional, bool* ok) {
    *ok = false;
    if (obj == nullptr || obj == Py_None) {
        if (optional) {
            *ok = true;
            return nullptr;
        }
        error(PyExc_TypeError, std::string(name) + ": expected a tensor, got None");
        return nullptr;
    }
    if (!THPVariable_Check(obj)) {
        error(PyExc_TypeError, std::string(name) + ": expected a tensor, got " +
                                   Py_TYPE(obj)->tp_name);
        return nullptr;
    }
    const at::Tensor& t = THPVariable_Unpack(obj);
    static const c10::DispatchKeySet wrapped({
        c10::DispatchKey::Python, c10::DispatchKey::PythonTLSSnapshot,
        c10::DispatchKey::Functionalize, c10::DispatchKey::FuncTorchBatched,
        c10::DispatchKey::FuncTorchGradWrapper,
    });
    if (!t.defined() || !(t.key_set() & wrapped).empty() || !t.has_storage()) {
        error(PyExc_TypeError, std::string(name) + ": expected a plain CPU tensor with its own "
                               "storage, got a fake, meta, functional or functorch tensor");
        return nullptr;
    }
    if (!t.device().is_cpu() || t.layout() != c10::kStrided) {
        error(PyExc_ValueError, std::string(name) + ": expected a strided CPU tensor, got " +
                                    t.device().str() + " " + c10::toString(t.layout()));
        return nullptr;
    }
    if (t.scalar_type() != dtype) {
        error(PyExc_TypeError, std::string(name) + ": expected dtype " + c10::toString(dtype) +
                                   ", got " + c10::toString(t.scalar_type()));
        return nullptr;
    }
    if (t.sizes() != want) {
        error(PyExc_ValueError, std::string(name) + ": expected shape " + dims(want) + ", got " +
                                    dims(t.sizes()));
        return nullptr;
    }
    if (!t.is_contiguous()) {
        error(PyExc_ValueError, std::string(name) + ": expected a contiguous tensor");
        return nullptr;
    }
    // Contiguous: the elements are [offset, offset + numel) of the storage.
    const size_t needed = (size_t)(t.storage_offset() + t.numel()) * t.itemsize();
    const c10::Storage& storage = t.storage();
    if (t.numel() > 0 && (!storage.device().is_cpu() || storage.data() == nullptr ||
                          storage.nbytes() < needed)) {
        error(PyExc_ValueError, std::string(name) + ": its storage (" +
                                    std::to_string(storage.nbytes()) + " bytes) does not hold the " +
                                    std::to_string(needed) + " bytes it addresses");
        return nullptr;
    }
    *ok = true;
    return &t;
}

int64_t round_up(int64_t n, int64_t to) { return (n + to - 1) / to * to; }

// Smallest and largest of n row sums (0 included). This file is compiled for the baseline
// ISA, whose SSE2 has no 32-bit integer min/max: the loop became a chain of compare-and-blend
// steps that cost ~0.8 us per LSTM H=256 step (8% of it, perf). AVX-512 and AVX2 clones,
// chosen at load time by the CPU's features, do 16 or 8 lanes with one instruction each.
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void rowsum_extremes(const int32_t* __restrict sums, int64_t n, int32_t* lo_out,
                     int32_t* hi_out) {
    int32_t lo = 0, hi = 0;
    for (int64_t r = 0; r < n; r++) {
        lo = sums[r] < lo ? sums[r] : lo;
        hi = sums[r] > hi ? sums[r] : hi;
    }
    *lo_out = lo;
    *hi_out = hi;
}

// The argument names of one packed matrix, as error messages give them (constants: no strings
// are built unless there is an error).
struct MatrixNames {
    const char *w, *s, *r;
};
constexpr MatrixNames kLinear = {"w_", "s_", "r_"}, kIh = {"w_ih", "s_ih", "r_ih"},
                      kHh = {"w_hh", "s_hh", "r_hh"}, kHr = {"w_hr", "s_hr", "r_hr"};

// Whether every one of the Rp row sums is one of int8 rows of Kp values (|sum| <= 128 Kp), so
// the kernels' int32 accumulators cannot overflow; else an error naming `name` and the row.
bool rowsums_bounded(const int32_t* sums, int64_t Rp, int64_t Kp, const char* name) {
    // The extremes first (one vectorised pass), the offending row only when one is out of bounds.
    int32_t lo, hi;
    rowsum_extremes(sums, Rp, &lo, &hi);
    for (int64_t r = 0; (hi > 128 * Kp || lo < -128 * Kp) && r < Rp; r++)
        if (sums[r] > 128 * Kp || sums[r] < -128 * Kp)
            return error(PyExc_ValueError, std::string(name) +
                                               ": expected row sums of int8 rows of " +
                                               std::to_string(Kp) + " values, got " +
                                               std::to_string(sums[r]) + " at row " +
                                               std::to_string(r));
    return true;
}

// One packed matrix (weight, scale, rowsum) of `rows` rows in `segments` padded segments and
// `inputs` inputs; fills `m` or sets an error.
bool matrix_arg(PyObject* w, PyObject* scale, PyObject* rowsum, const MatrixNames& names,
                int64_t segments, int64_t rows, int64_t inputs, rnnkit::Int8Matrix* m) {
    const int64_t Rp = segments * round_up(rows / segments, 16), Kp = round_up(inputs, 4);
    bool ok;
    const at::Tensor* wt = tensor_arg(w, names.w, at::kChar, {Rp / 16, Kp / 4, 16, 4}, false, &ok);
    if (!ok) return false;
    const at::Tensor* st = tensor_arg(scale, names.s, at::kFloat, {Rp}, false, &ok);
    if (!ok) return false;
    const at::Tensor* rt = tensor_arg(rowsum, names.r, at::kInt, {Rp}, false, &ok);
    if (!ok) return false;
    const int32_t* sums = rt->data_ptr<int32_t>();
    if (!rowsums_bounded(sums, Rp, Kp, names.r)) return false;
    *m = {(int)rows, (int)inputs, (int)Rp, (int)Kp, wt->data_ptr<int8_t>(), st->data_ptr<float>(),
          sums};
    return true;
}

bool cpu_has(const char* feature) {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (std::strcmp(feature, "vnni") == 0)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    if (std::strcmp(feature, "avx2") == 0) return __builtin_cpu_supports("avx2");
#endif
    (void)feature;
    return false;
}

// The int8 kernels for the engine's ISA name: 'avx512' runs VNNI where the CPU has it (else
// the AVX2 kernels), 'avx2' the AVX2 ones, 'generic' the portable ones.
const rnnkit::Int8Table* table_for(const char* isa) {
    const bool avx512 = std::strcmp(isa, "avx512") == 0, avx2 = std::strcmp(isa, "avx2") == 0;
    if (avx512 && rnnkit::int8_vnni() && cpu_has("vnni")) return rnnkit::int8_vnni();
    if ((avx512 || avx2) && rnnkit::int8_avx2() && cpu_has("avx2")) return rnnkit::int8_avx2();
    if (avx512 || avx2 || std::strcmp(isa, "generic") == 0) return rnnkit::int8_generic();
    PyErr_Format(PyExc_ValueError,
                 "rnnkit.engine.int8: isa: expected 'avx512', 'avx2' or 'generic', got '%s'", isa);
    return nullptr;
}

bool threads_arg(long threads) {
    if (threads >= 1 && threads <= 1024) return true;
    return error(PyExc_ValueError, "threads: expected 1-1024, got " + std::to_string(threads));
}

bool no_grad(const at::Tensor* x) {
    if (!x->requires_grad() || !at::GradMode::is_enabled()) return true;
    return error(PyExc_RuntimeError, "x requires grad, but int8 inference records no gradients; "
                                     "run it under torch.no_grad() or use the float layer");
}

PyObject* py_kernel(PyObject*, PyObject* args) {
    const char* isa;
    if (!PyArg_ParseTuple(args, "s", &isa)) return nullptr;
    const rnnkit::Int8Table* table = table_for(isa);
    return table ? PyUnicode_FromString(table->name) : nullptr;
}

PyObject* py_linear(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* names[] = {"isa", "threads", "x", "w", "scale", "rowsum", "bias", "y",
                                  nullptr};
    const char* isa;
    int threads;
    PyObject *x, *w, *scale, *rowsum, *bias, *y;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$siOOOOOO", (char**)names, &isa, &threads, &x,
                                     &w, &scale, &rowsum, &bias, &y))
        return nullptr;
    const rnnkit::Int8Table* table = table_for(isa);
    if (!table || !threads_arg(threads)) return nullptr;
    if (!THPVariable_Check(x) || THPVariable_Unpack(x).dim() != 2 || !THPVariable_Check(y) ||
        THPVariable_Unpack(y).dim() != 2) {
        error(PyExc_ValueError, "expected x (rows, inputs) and y (rows, outputs) tensors");
        return nullptr;
    }
    const int64_t M = THPVariable_Unpack(x).size(0), K = THPVariable_Unpack(x).size(1),
                  R = THPVariable_Unpack(y).size(1);
    if (M < 1 || K < 1 || R < 1 || K > kMaxInputs || M > INT32_MAX / round_up(R, 16)) {
        error(PyExc_ValueError, "x " + dims(THPVariable_Unpack(x).sizes()) + ", y " +
                                    dims(THPVariable_Unpack(y).sizes()) + ": expected 1-" +
                                    std::to_string(kMaxInputs) + " inputs and non-empty sizes");
        return nullptr;
    }
    rnnkit::Int8LinearArgs a = {};
    bool ok;
    const at::Tensor* xt = tensor_arg(x, "x", at::kFloat, {M, K}, false, &ok);
    if (!ok || !no_grad(xt)) return nullptr;
    const at::Tensor* bt = tensor_arg(bias, "bias", at::kFloat, {R}, true, &ok);
    if (!ok) return nullptr;
    const at::Tensor* yt = tensor_arg(y, "y", at::kFloat, {M, R}, false, &ok);
    if (!ok || !matrix_arg(w, scale, rowsum, kLinear, 1, R, K, &a.w)) return nullptr;
    a.M = (int)M;
    a.threads = threads;
    a.x = xt->data_ptr<float>();
    a.bias = bt ? bt->data_ptr<float>() : nullptr;
    a.y = yt->data_ptr<float>();
    Py_BEGIN_ALLOW_THREADS
    table->linear(a);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

PyObject* py_layer(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* names[] = {"mode", "reverse", "threads", "isa", "hidden", "x", "h0", "c0",
                                  "w_ih", "s_ih", "r_ih", "w_hh", "s_hh", "r_hh", "w_hr", "s_hr",
                                  "r_hr", "bias", "b_hn", "lengths", "y", "h_n", "c_n", nullptr};
    int mode, reverse, threads, hidden;
    const char* isa;
    PyObject *x, *h0, *c0, *wih, *sih, *rih, *whh, *shh, *rhh, *whr, *shr, *rhr, *bias, *bhn,
        *lengths, *y, *hn, *cn;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$ipisiOOOOOOOOOOOOOOOOOO", (char**)names,
                                     &mode, &reverse, &threads, &isa, &hidden, &x, &h0, &c0, &wih,
                                     &sih, &rih, &whh, &shh, &rhh, &whr, &shr, &rhr, &bias, &bhn,
                                     &lengths, &y, &hn, &cn))
        return nullptr;
    const rnnkit::Int8Table* table = table_for(isa);
    if (!table || !threads_arg(threads)) return nullptr;
    if (mode < rnnkit::MODE_RNN_TANH || mode > rnnkit::MODE_GRU) {
        error(PyExc_ValueError, "mode: expected 0-3, got " + std::to_string(mode));
        return nullptr;
    }
    const bool lstm = mode == rnnkit::MODE_LSTM, gru = mode == rnnkit::MODE_GRU;
    const bool proj = whr != Py_None;
    if (proj && !lstm) {
        error(PyExc_ValueError, "w_hr: only LSTM layers have a projection");
        return nullptr;
    }
    if (!THPVariable_Check(x) || THPVariable_Unpack(x).dim() != 3 || !THPVariable_Check(h0) ||
        THPVariable_Unpack(h0).dim() != 2) {
        error(PyExc_ValueError, "expected x (seq, batch, input) and h0 (batch, out) tensors");
        return nullptr;
    }
    const at::Tensor& xr = THPVariable_Unpack(x);
    const int64_t T = xr.size(0), B = xr.size(1), I = xr.size(2), H = hidden,
                  Hout = THPVariable_Unpack(h0).size(1), G = lstm ? 4 : gru ? 3 : 1;
    if (T < 1 || B < 1 || I < 1 || H < 1 || Hout < 1 || I > kMaxInputs || H > kMaxInputs ||
        Hout > kMaxInputs || T * B > INT32_MAX / (G * round_up(H, 16)) ||
        (!proj && Hout != H) || (proj && Hout >= H)) {
        error(PyExc_ValueError, "inconsistent sizes: x " + dims(xr.sizes()) + ", h0 " +
                                    dims(THPVariable_Unpack(h0).sizes()) + ", hidden " +
                                    std::to_string(H) + (proj ? " with" : " without") +
                                    " projection (expected non-empty sizes up to " +
                                    std::to_string(kMaxInputs) + ")");
        return nullptr;
    }
    rnnkit::Int8LayerArgs a = {};
    bool ok;
    const at::Tensor* xt = tensor_arg(x, "x", at::kFloat, {T, B, I}, false, &ok);
    if (!ok || !no_grad(xt)) return nullptr;
    struct Spec {
        PyObject* obj;
        const char* name;
        at::ScalarType dtype;
        int64_t shape[3];
        size_t ndim;
        bool optional;
        const void** out;
    };
    const void *ph0, *pc0, *pbias, *pbhn, *plen, *py, *phn, *pcn;
    const Spec specs[] = {
        {h0, "h0", at::kFloat, {B, Hout}, 2, false, &ph0},
        {c0, "c0", at::kFloat, {B, H}, 2, !lstm, &pc0},
        {bias, "bias", at::kFloat, {G * H}, 1, false, &pbias},
        {bhn, "b_hn", at::kFloat, {H}, 1, !gru, &pbhn},
        {lengths, "lengths", at::kLong, {B}, 1, true, &plen},
        {y, "y", at::kFloat, {T, B, Hout}, 3, false, &py},
        {hn, "h_n", at::kFloat, {B, Hout}, 2, false, &phn},
        {cn, "c_n", at::kFloat, {B, H}, 2, !lstm, &pcn},
    };
    for (const Spec& s : specs) {
        const at::Tensor* t = tensor_arg(s.obj, s.name, s.dtype, c10::IntArrayRef(s.shape, s.ndim), s.optional, &ok);
        if (!ok) return nullptr;
        *s.out = t ? t->data_ptr() : nullptr;
    }
    if ((lstm && (!pc0 || !pcn)) || (!lstm && (c0 != Py_None || cn != Py_None)) ||
        (gru && !pbhn) || (!gru && bhn != Py_None)) {
        error(PyExc_ValueError, "c0 and c_n are for LSTM only and needed there; b_hn is for GRU "
                                "only and needed there");
        return nullptr;
    }
    if (!matrix_arg(wih, sih, rih, kIh, G, G * H, I, &a.ih) ||
        !matrix_arg(whh, shh, rhh, kHh, G, G * H, Hout, &a.hh))
        return nullptr;
    if (proj && !matrix_arg(whr, shr, rhr, kHr, 1, Hout, H, &a.hr)) return nullptr;
    if (!proj && (shr != Py_None || rhr != Py_None)) {
        error(PyExc_ValueError, "s_hr, r_hr: expected None without w_hr");
        return nullptr;
    }
    // Checked and used as a copy: the layer runs without the GIL (see boundary.cpp).
    std::vector<int64_t> length_copy;
    if (plen) length_copy.assign((const int64_t*)plen, (const int64_t*)plen + B);
    const int64_t* lens = plen ? length_copy.data() : nullptr;
    for (int64_t b = 0; lens && b < B; b++)
        if (lens[b] < 0 || lens[b] > T) {
            error(PyExc_ValueError, "lengths: expected values in [0, " + std::to_string(T) +
                                        "], got " + std::to_string(lens[b]) + " at row " +
                                        std::to_string(b));
            return nullptr;
        }
    a.mode = mode;
    a.T = (int)T;
    a.B = (int)B;
    a.I = (int)I;
    a.H = (int)H;
    a.Hout = (int)Hout;
    a.reverse = reverse;
    a.threads = threads;
    a.x = xt->data_ptr<float>();
    a.h0 = (const float*)ph0;
    a.c0 = (const float*)pc0;
    a.bias = (const float*)pbias;
    a.bhn = (const float*)pbhn;
    a.lengths = lens;
    a.y = (float*)py;
    a.hn = (float*)phn;
    a.cn = (float*)pcn;
    Py_BEGIN_ALLOW_THREADS
    table->layer(a);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

// ---------------------------------------------------------------- stream plans
// stream_plan(plan) -> a callable StreamPlan: stacked unidirectional int8 layers advanced by
// one step (streaming inference), one call per step. plan = (isa, mode, layers, input_size,
// hidden, out_size, threads, packed, sources, expected): `packed` holds 11 entries per layer
// (w_ih, s_ih, r_ih, w_hh, s_hh, r_hh, w_hr, s_hr, r_hr, bias, b_hn; the hr ones and b_hn may
// be None), `sources` the float tensors the packed weights were made from and `expected` their
// (data pointer, version counter) pairs at packing time, flattened.
//
// The packed tensors are checked once, here, and copied into memory the plan owns: Python can
// resize, replace or overwrite the tensors it handed in (they stay reachable as attributes)
// without the plan reading anything it did not check, and no step re-checks them or re-scans
// their row sums (~0.4 us of a ~2.3 us GRU H=128 step, perf). A step,
// plan(x, h, c, h_n, c_n), checks only what it is handed (every tensor, every call).

// What a plan owns: the kernels, the sizes, the copies of the packed tensors and the sources'
// marks. Immutable after stream_plan() built it.
struct PlanState {
    const rnnkit::Int8Table* table;
    int mode, threads;
    int64_t layers, I, H, Hout;
    std::unique_ptr<rnnkit::Int8Buffer> block;  // every layer's packed tensors, copied
    std::vector<rnnkit::Int8StreamLayer> layer;  // points into `block`
    std::vector<at::Tensor> sources;             // held, only their pointer and version read
    std::vector<std::pair<uintptr_t, int64_t>> marks;
};

struct PlanObject {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PlanState* state;
    // The last two outputs and their dispatch keys when made: one is handed out again when
    // nobody else holds it (rnnkit_stream_output_reuse), so a step usually allocates nothing.
    // Two, because a loop `y = plan(...)` still holds the last output during the call, and
    // releases it only when y is rebound to the new one.
    PyObject* out[2];
    c10::DispatchKeySet out_keys[2];
    int newest;  // the slot of the last output handed out
};

constexpr int64_t kMaxLayers = 64;

// The plan's sizes from plan[0:7] into `p`; false with an error set when they are inconsistent.
bool plan_sizes(PyObject* plan, PlanState* p) {
    const char* isa = PyUnicode_AsUTF8(PyTuple_GET_ITEM(plan, 0));
    if (isa == nullptr) return false;
    p->table = table_for(isa);
    if (!p->table) return false;
    long v[6];
    for (int i = 0; i < 6; i++) {
        v[i] = PyLong_AsLong(PyTuple_GET_ITEM(plan, i + 1));
        if (v[i] == -1 && PyErr_Occurred()) return false;
    }
    if (v[0] < rnnkit::MODE_RNN_TANH || v[0] > rnnkit::MODE_GRU)
        return error(PyExc_ValueError, "mode: expected 0-3, got " + std::to_string(v[0]));
    if (!threads_arg(v[5])) return false;
    p->mode = (int)v[0];
    p->layers = v[1], p->I = v[2], p->H = v[3], p->Hout = v[4];
    p->threads = (int)v[5];
    const bool lstm = p->mode == rnnkit::MODE_LSTM;
    if (p->layers < 1 || p->layers > kMaxLayers || p->I < 1 || p->H < 1 || p->Hout < 1 ||
        p->I > kMaxInputs || p->H > kMaxInputs || p->Hout > kMaxInputs || p->Hout > p->H ||
        (p->Hout < p->H && !lstm))
        return error(PyExc_ValueError,
                     "stream: inconsistent plan sizes: layers " + std::to_string(p->layers) +
                         " (expected 1-" + std::to_string(kMaxLayers) + "), input " +
                         std::to_string(p->I) + ", hidden " + std::to_string(p->H) + ", out " +
                         std::to_string(p->Hout) + " (expected up to " +
                         std::to_string(kMaxInputs) + ", out < hidden for an LSTM only)");
    return true;
}

// One layer's packed entries `e` (11) checked into `s`, pointing at the caller's tensors.
bool plan_layer(PyObject* const* e, const PlanState& p, int64_t l, rnnkit::Int8StreamLayer* s) {
    const bool lstm = p.mode == rnnkit::MODE_LSTM, gru = p.mode == rnnkit::MODE_GRU;
    const int64_t G = lstm ? 4 : gru ? 3 : 1, in = l == 0 ? p.I : p.Hout;
    const bool proj = e[6] != Py_None;
    if ((proj && !lstm) || proj != (p.Hout < p.H))
        return error(PyExc_ValueError, "stream: w_hr: expected for (and only for) an LSTM "
                                       "with out size < hidden");
    *s = {};
    if (!matrix_arg(e[0], e[1], e[2], kIh, G, G * p.H, in, &s->ih) ||
        !matrix_arg(e[3], e[4], e[5], kHh, G, G * p.H, p.Hout, &s->hh) ||
        (proj && !matrix_arg(e[6], e[7], e[8], kHr, 1, p.Hout, p.H, &s->hr)))
        return false;
    if (!proj && (e[7] != Py_None || e[8] != Py_None))
        return error(PyExc_ValueError, "s_hr, r_hr: expected None without w_hr");
    bool ok;
    const at::Tensor* bias = tensor_arg(e[9], "bias", at::kFloat, {G * p.H}, false, &ok);
    if (!ok) return false;
    const at::Tensor* bhn = tensor_arg(e[10], "b_hn", at::kFloat, {p.H}, !gru, &ok);
    if (!ok) return false;
    if (gru != (bhn != nullptr)) return error(PyExc_ValueError, "b_hn: expected for GRU only");
    s->bias = bias->data_ptr<float>();
    s->bhn = bhn ? bhn->data_ptr<float>() : nullptr;
    return true;
}

// Every array a layer points at, with its size: what the plan copies.
struct Piece {
    const void** at;
    size_t bytes;
};

void layer_pieces(rnnkit::Int8StreamLayer& s, const PlanState& p, std::vector<Piece>* out) {
    for (rnnkit::Int8Matrix* m : {&s.ih, &s.hh, &s.hr}) {
        if (m->w == nullptr) continue;
        out->push_back({(const void**)&m->w, (size_t)m->Rp * m->Kp});
        out->push_back({(const void**)&m->scale, (size_t)m->Rp * sizeof(float)});
        out->push_back({(const void**)&m->rowsum, (size_t)m->Rp * sizeof(int32_t)});
    }
    const int64_t G = p.mode == rnnkit::MODE_LSTM ? 4 : p.mode == rnnkit::MODE_GRU ? 3 : 1;
    out->push_back({(const void**)&s.bias, (size_t)(G * p.H) * sizeof(float)});
    if (s.bhn) out->push_back({(const void**)&s.bhn, (size_t)p.H * sizeof(float)});
}

// Copies every piece into one block (each piece 64-byte aligned, as torch's allocator aligns
// the originals: the products' 64-byte loads must not span two lines) and points the layers
// at the copies; then checks the copies' row sums, so what the kernels read is what was checked.
bool own_copies(PlanState* p) {
    std::vector<Piece> pieces;
    for (rnnkit::Int8StreamLayer& s : p->layer) layer_pieces(s, *p, &pieces);
    size_t total = 0;
    for (const Piece& piece : pieces) total += (piece.bytes + 63) / 64 * 64;
    p->block = std::make_unique<rnnkit::Int8Buffer>(total);
    char* at = (char*)p->block->data;
    for (const Piece& piece : pieces) {
        std::memcpy(at, *piece.at, piece.bytes);
        *piece.at = at;
        at += (piece.bytes + 63) / 64 * 64;
    }
    for (const rnnkit::Int8StreamLayer& s : p->layer)
        if (!rowsums_bounded(s.ih.rowsum, s.ih.Rp, s.ih.Kp, kIh.r) ||
            !rowsums_bounded(s.hh.rowsum, s.hh.Rp, s.hh.Kp, kHh.r) ||
            (s.hr.w && !rowsums_bounded(s.hr.rowsum, s.hr.Rp, s.hr.Kp, kHr.r)))
            return false;
    return true;
}

// The sources (plan[8]) and their marks (plan[9]) into `p`.
bool plan_sources(PyObject* sources, PyObject* marks, PlanState* p) {
    if (!PyTuple_Check(sources) || !PyTuple_Check(marks) ||
        PyTuple_GET_SIZE(marks) != 2 * PyTuple_GET_SIZE(sources))
        return error(PyExc_ValueError, "stream: expected a (pointer, version) pair per source "
                                       "tensor");
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(sources); i++) {
        PyObject* obj = PyTuple_GET_ITEM(sources, i);
        if (!THPVariable_Check(obj))
            return error(PyExc_TypeError, std::string("stream: sources: expected tensors, got ") +
                                              Py_TYPE(obj)->tp_name);
        const unsigned long long ptr = PyLong_AsUnsignedLongLongMask(PyTuple_GET_ITEM(marks, 2 * i));
        const long long version = PyLong_AsLongLong(PyTuple_GET_ITEM(marks, 2 * i + 1));
        if (PyErr_Occurred()) return false;
        p->sources.push_back(THPVariable_Unpack(obj));
        p->marks.push_back({(uintptr_t)ptr, (int64_t)version});
    }
    return true;
}

// Whether a source was replaced (its data pointer moved) or changed in place through itself
// (its version counter moved) since packing. Writes through .data bump no counter and are
// not seen.
bool sources_moved(const PlanState& p) {
    for (size_t i = 0; i < p.sources.size(); i++) {
        const at::Tensor& t = p.sources[i];
        uintptr_t ptr;
        try {
            ptr = t.defined() ? (uintptr_t)t.data_ptr() : 0;
        } catch (const std::exception&) {
            return true;  // no storage any more (cannot be a packed weight's source)
        }
        if (ptr != p.marks[i].first ||
            (int64_t)t.unsafeGetTensorImpl()->version_counter().current_version() !=
                p.marks[i].second)
            return true;
    }
    return false;
}

PyObject* plan_step(PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames);

// The kept output can hold the plan through its attributes (set while a caller held it): the
// plan takes part in garbage collection.
int plan_traverse(PyObject* self, visitproc visit, void* arg) {
    Py_VISIT(((PlanObject*)self)->out[0]);
    Py_VISIT(((PlanObject*)self)->out[1]);
    return 0;
}

int plan_clear(PyObject* self) {
    Py_CLEAR(((PlanObject*)self)->out[0]);
    Py_CLEAR(((PlanObject*)self)->out[1]);
    return 0;
}

void plan_dealloc(PyObject* self) {
    PyObject_GC_UnTrack(self);
    plan_clear(self);
    delete ((PlanObject*)self)->state;
    Py_TYPE(self)->tp_free(self);
}

PyTypeObject plan_type = {PyVarObject_HEAD_INIT(nullptr, 0)};

PyTypeObject* plan_type_ready() {
    if (plan_type.tp_name == nullptr) {
        plan_type.tp_name = "rnnkit.engine._native.int8.StreamPlan";
        plan_type.tp_doc = "plan(x, h, c, h_n, c_n) -> y, or False when a source weight moved: "
                           "one int8 streaming step over weights checked and copied when the "
                           "plan was built (int8.stream_plan).";
        plan_type.tp_basicsize = sizeof(PlanObject);
        plan_type.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_HAVE_GC;
        plan_type.tp_vectorcall_offset = offsetof(PlanObject, vectorcall);
        plan_type.tp_call = PyVectorcall_Call;
        plan_type.tp_dealloc = plan_dealloc;
        plan_type.tp_traverse = plan_traverse;
        plan_type.tp_clear = plan_clear;
        if (PyType_Ready(&plan_type) < 0) {
            plan_type.tp_name = nullptr;
            return nullptr;
        }
    }
    return &plan_type;
}

PyObject* py_stream_plan(PyObject*, PyObject* plan) {
    if (!PyTuple_Check(plan) || PyTuple_GET_SIZE(plan) != 10) {
        error(PyExc_TypeError, std::string("stream_plan: expected a 10-item plan tuple, got ") +
                                   Py_TYPE(plan)->tp_name);
        return nullptr;
    }
    PyTypeObject* type = plan_type_ready();
    if (type == nullptr) return nullptr;
    auto p = std::make_unique<PlanState>();
    if (!plan_sizes(plan, p.get())) return nullptr;
    PyObject* packed = PyTuple_GET_ITEM(plan, 7);
    if (!PyTuple_Check(packed) || PyTuple_GET_SIZE(packed) != 11 * p->layers) {
        error(PyExc_ValueError, "stream: expected 11 packed entries per layer (" +
                                    std::to_string(11 * p->layers) + "), got " +
                                    (PyTuple_Check(packed) ? std::to_string(PyTuple_GET_SIZE(packed))
                                                           : std::string("no tuple")));
        return nullptr;
    }
    p->layer.resize(p->layers);
    for (int64_t l = 0; l < p->layers; l++)
        if (!plan_layer(&PyTuple_GET_ITEM(packed, 11 * l), *p, l, &p->layer[l])) return nullptr;
    if (!own_copies(p.get()) ||
        !plan_sources(PyTuple_GET_ITEM(plan, 8), PyTuple_GET_ITEM(plan, 9), p.get()))
        return nullptr;
    PlanObject* obj = PyObject_GC_New(PlanObject, type);
    if (obj == nullptr) return nullptr;
    obj->vectorcall = plan_step;
    obj->state = p.release();
    for (int slot = 0; slot < 2; slot++) {
        obj->out[slot] = nullptr;
        new (&obj->out_keys[slot]) c10::DispatchKeySet();
    }
    obj->newest = 0;
    PyObject_GC_Track((PyObject*)obj);
    return (PyObject*)obj;
}

// The per-call tensors of a step, checked: x (B, I), h and h_n (layers, B, Hout), c and c_n
// (layers, B, H) for LSTM, else None. Fills `a` or sets an error.
bool step_args(const PlanState& p, PyObject* const* args, rnnkit::Int8StreamArgs* a) {
    const bool lstm = p.mode == rnnkit::MODE_LSTM;
    const int64_t G = lstm ? 4 : p.mode == rnnkit::MODE_GRU ? 3 : 1;
    // The batch comes from the state, so a wrong x is what the error names.
    if (!THPVariable_Check(args[1]))
        return error(PyExc_TypeError, std::string("h: expected a tensor (layers, batch, out), "
                                                  "got ") + Py_TYPE(args[1])->tp_name);
    if (THPVariable_Unpack(args[1]).dim() != 3)
        return error(PyExc_ValueError, "h: expected a tensor (layers, batch, out), got shape " +
                                           dims(THPVariable_Unpack(args[1]).sizes()));
    const int64_t B = THPVariable_Unpack(args[1]).size(1);
    if (B < 1 || B > INT32_MAX / (G * round_up(p.H, 16)))
        return error(PyExc_ValueError, "h: expected 1 or more rows, got " + std::to_string(B));
    bool ok;
    const at::Tensor* xt = tensor_arg(args[0], "x", at::kFloat, {B, p.I}, false, &ok);
    if (!ok || !no_grad(xt)) return false;
    const at::Tensor* ht = tensor_arg(args[1], "h", at::kFloat, {p.layers, B, p.Hout}, false, &ok);
    if (!ok) return false;
    const at::Tensor* ct = tensor_arg(args[2], "c", at::kFloat, {p.layers, B, p.H}, !lstm, &ok);
    if (!ok) return false;
    const at::Tensor* hnt = tensor_arg(args[3], "h_n", at::kFloat, {p.layers, B, p.Hout}, false,
                                       &ok);
    if (!ok) return false;
    const at::Tensor* cnt = tensor_arg(args[4], "c_n", at::kFloat, {p.layers, B, p.H}, !lstm, &ok);
    if (!ok) return false;
    if (lstm != (ct != nullptr) || lstm != (cnt != nullptr))
        return error(PyExc_ValueError, "c, c_n: expected tensors for LSTM and None otherwise");
    *a = {};
    a->mode = p.mode;
    a->layers = (int)p.layers;
    a->B = (int)B;
    a->I = (int)p.I;
    a->H = (int)p.H;
    a->Hout = (int)p.Hout;
    a->threads = p.threads;
    a->layer = p.layer.data();
    a->x = xt->data_ptr<float>();
    a->h = ht->data_ptr<float>();
    a->c = lstm ? ct->data_ptr<float>() : nullptr;
    a->hn = hnt->data_ptr<float>();
    a->cn = lstm ? cnt->data_ptr<float>() : nullptr;
    // Threads read every row of the old state while others write the new one. Each pair
    // holds `n` contiguous floats (checked above).
    auto overlap = [](const float* u, const float* v, int64_t n) { return u < v + n && v < u + n; };
    if (overlap(a->h, a->hn, p.layers * B * p.Hout) ||
        (lstm && overlap(a->c, a->cn, p.layers * B * p.H)))
        return error(PyExc_ValueError, "h_n, c_n: expected memory apart from h, c");
    return true;
}

// The step's output (rows, cols), a copy of `src`: one of the plan's two kept outputs when
// nobody else holds it (indistinguishable from a new tensor: nothing can observe the old one),
// else a new tensor, kept in place of the older one. Saves ~0.15-0.3 us of a ~2 us GRU H=128
// step (allocating the tensor and its Python object, and torch releasing the GIL to free the
// previous one).
PyObject* step_output(PlanObject* plan, const float* src, int64_t rows, int64_t cols) {
    for (int slot = 0; slot < 2; slot++) {
        PyObject* kept = plan->out[slot];
        if (kept == nullptr) continue;
        void* data = rnnkit_stream_output_reuse(kept, plan->out_keys[slot], rows, cols, false);
        if (data) {
            std::memcpy(data, src, (size_t)(rows * cols) * sizeof(float));
            plan->newest = slot;
            return Py_NewRef(kept);
        }
    }
    PyObject* y = rnnkit_stream_output(src, rows, cols, false);
    if (y == nullptr) return nullptr;
    // The keys and the slot first: freeing the output replaced can release the GIL (torch
    // does, to free the tensor), and another thread's step on this plan must find every slot
    // with its keys.
    const int slot = 1 - plan->newest;
    plan->newest = slot;
    plan->out_keys[slot] = THPVariable_Unpack(y).unsafeGetTensorImpl()->key_set();
    Py_XSETREF(plan->out[slot], Py_NewRef(y));
    return y;
}

// plan(x, h, c, h_n, c_n): writes the new states into h_n, c_n ((layers, batch, out),
// (layers, batch, hidden), apart from h and c) and returns a new tensor (batch, out), the last
// layer's output; or False, computing nothing, when a source moved (the caller repacks). The
// kernel repeats layer()'s arithmetic, so a streamed step equals the same step of layer().
PyObject* plan_step(PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
    if (PyVectorcall_NARGS(nargsf) != 5 || (kwnames && PyTuple_GET_SIZE(kwnames) != 0)) {
        error(PyExc_TypeError, "stream plan: expected 5 positional arguments (x, h, c, h_n, "
                               "c_n), got " + std::to_string(PyVectorcall_NARGS(nargsf)));
        return nullptr;
    }
    const PlanState& p = *((PlanObject*)self)->state;
    if (sources_moved(p)) Py_RETURN_FALSE;
    rnnkit::Int8StreamArgs a;
    if (!step_args(p, args, &a)) return nullptr;
    // A step is microseconds: releasing the GIL would cost more than it frees.
    p.table->stream(a);
    return step_output((PlanObject*)self, a.hn + (p.layers - 1) * a.B * p.Hout, a.B, p.Hout);
}

PyMethodDef int8_methods[] = {
    {"kernel", py_kernel, METH_VARARGS,
     "Name of the int8 kernels ('vnni', 'avx2', 'generic') run for an engine ISA name."},
    {"linear", (PyCFunction)(void (*)(void))py_linear, METH_VARARGS | METH_KEYWORDS,
     "y = dequantised(packed w . quantised x) + bias over checked tensors (internal)."},
    {"layer", (PyCFunction)(void (*)(void))py_layer, METH_VARARGS | METH_KEYWORDS,
     "One int8 recurrent layer-direction over a sequence, checked tensors (internal)."},
    {"stream_plan", py_stream_plan, METH_O,
     "A StreamPlan: stacked int8 layers advanced one step per call (streaming), its packed "
     "weights checked and copied once (internal)."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef int8_module = {
    PyModuleDef_HEAD_INIT, "rnnkit.engine._native.int8",
    "int8 dynamically quantised recurrent kernels.", -1, int8_methods,
};

}  // namespace

// Called once by PyInit__native, which sets the result as ``_native.int8``.
PyObject* rnnkit_int8_module() {
    return PyModule_Create(&int8_module);
}
