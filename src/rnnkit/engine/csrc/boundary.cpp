// The Python <-> native boundary: every entry point takes named tensors (keywords), derives
// the sizes from the tensors themselves and checks each tensor's storage, size, dtype, device
// and layout before a kernel sees a pointer. Nothing from Python is trusted: a fake or meta
// tensor (tracing), a functorch wrapper, a wrong shape or a view past its storage is refused
// with a Python exception, so no Python path can make a kernel read or write out of bounds.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <ATen/core/Tensor.h>
#include <ATen/core/grad_mode.h>
#include <ATen/EmptyTensor.h>
#include <c10/core/InferenceMode.h>
#include <c10/core/DispatchKeySet.h>
#include <structmember.h>
#include <torch/csrc/autograd/python_variable.h>

#include <array>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "boundary.h"
#include "engine.h"

namespace {

// An expected shape of up to 3 dimensions, held inline: the streaming entry point checks
// ten tensors per call, so no heap allocation here.
struct Shape {
    int64_t dims[3] = {0, 0, 0};
    size_t ndim = 0;
    Shape(std::initializer_list<int64_t> sizes) {
        for (int64_t size : sizes) dims[ndim++] = size;
    }
    operator c10::IntArrayRef() const { return c10::IntArrayRef(dims, ndim); }
};

std::string shape_text(c10::IntArrayRef shape) {
    std::string text = "(";
    for (size_t i = 0; i < shape.size(); i++) text += (i ? ", " : "") + std::to_string(shape[i]);
    return text + (shape.size() == 1 ? ",)" : ")");
}

// Tensors whose data pointer is not real CPU memory: tracing (fake, functional) and
// functorch's wrappers (vmap, grad) carry one of these functionality keys. (Meta is a
// backend, refused by the device check: a per-backend key here would also match CPU.)
const c10::DispatchKeySet kNotPlainMemory({
    c10::DispatchKey::Python, c10::DispatchKey::PythonTLSSnapshot,
    c10::DispatchKey::Functionalize, c10::DispatchKey::FuncTorchBatched,
    c10::DispatchKey::FuncTorchGradWrapper,
});

bool fail(PyObject* type, const char* name, const std::string& what) {
    PyErr_SetString(type, (std::string("rnnkit.engine: ") + name + ": " + what).c_str());
    return false;
}

// Real CPU memory, not a tracer's or functorch's wrapper, and strided.
bool plain_memory(const at::Tensor& t, const char* name) {
    if (!t.defined()) return fail(PyExc_ValueError, name, "expected a tensor, got an undefined one");
    if (!(t.key_set() & kNotPlainMemory).empty() || !t.has_storage())
        return fail(PyExc_TypeError, name,
                    "expected a plain CPU tensor with real storage, got a fake, meta, functional "
                    "or functorch-wrapped tensor (the native kernels cannot run while tracing)");
    if (!t.device().is_cpu() || t.layout() != c10::kStrided)
        return fail(PyExc_ValueError, name, "expected a strided CPU tensor, got " +
                                                t.device().str() + " " + c10::toString(t.layout()));
    return true;
}

// The storage holds every element the sizes, strides and offset address.
bool storage_holds(const at::Tensor& t, const char* name) {
    if (t.numel() == 0) return true;
    if (t.is_contiguous()) {  // the common case, and every streaming call: no loop over strides
        const c10::Storage& storage = t.storage();
        const size_t needed = (size_t)(t.storage_offset() + t.numel()) * t.itemsize();
        if (storage.device().is_cpu() && storage.data() != nullptr && storage.nbytes() >= needed)
            return true;
    }
    int64_t last = t.storage_offset();
    for (int64_t d = 0; d < t.dim(); d++) {
        if (t.stride(d) < 0) return fail(PyExc_ValueError, name, "expected non-negative strides");
        last += (t.size(d) - 1) * t.stride(d);
    }
    const c10::Storage& storage = t.storage();
    const size_t needed = (size_t)(last + 1) * t.itemsize();
    if (!storage.device().is_cpu() || storage.data() == nullptr || storage.nbytes() < needed)
        return fail(PyExc_ValueError, name,
                    "the tensor's storage (" + std::to_string(storage.nbytes()) +
                        " bytes) does not hold the " + std::to_string(needed) +
                        " bytes its shape and offset address");
    return true;
}

// Sets a Python error and returns false when `t` is not a plain, contiguous CPU tensor of
// `dtype` and `shape` whose storage holds every element it addresses.
// `dtype_of` names what set the dtype, for the error.
bool check_tensor(const at::Tensor& t, const char* name, at::ScalarType dtype, const Shape& shape,
                  const char* dtype_of = "xg/gates") {
    if (!plain_memory(t, name)) return false;
    if (t.scalar_type() != dtype)
        return fail(PyExc_TypeError, name,
                    std::string("expected dtype ") + c10::toString(dtype) +
                        (dtype == at::kLong ? "" : std::string(" (the dtype of ") + dtype_of + ")") +
                        ", got " +
                        c10::toString(t.scalar_type()));
    const c10::IntArrayRef sizes = t.sizes();
    bool same = sizes.size() == shape.ndim;  // a loop, not memcmp: called ten times per step
    for (size_t d = 0; same && d < shape.ndim; d++) same = sizes[d] == shape.dims[d];
    if (!same)
        return fail(PyExc_ValueError, name,
                    "expected shape " + shape_text(shape) + ", got " + shape_text(t.sizes()));
    if (!t.is_contiguous()) return fail(PyExc_ValueError, name, "expected a contiguous tensor");
    return storage_holds(t, name);
}

// The tensor behind `obj` (nullptr for None when `optional`), or nullptr with an error set.
const at::Tensor* unpack(PyObject* obj, const char* name, bool optional, bool* failed) {
    *failed = false;
    if (obj == nullptr || obj == Py_None) {
        if (optional) return nullptr;
        PyErr_Format(PyExc_TypeError, "rnnkit.engine: %s: expected a tensor, got None", name);
        *failed = true;
        return nullptr;
    }
    if (!THPVariable_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "rnnkit.engine: %s: expected a tensor, got %s", name,
                     Py_TYPE(obj)->tp_name);
        *failed = true;
        return nullptr;
    }
    return &THPVariable_Unpack(obj);
}

// One argument: its name, the Python object, whether None is allowed, the shape it must have.
struct Arg {
    const char* name;
    PyObject* obj;
    bool optional;
    Shape shape;
    at::ScalarType dtype;
    const at::Tensor* tensor = nullptr;
};

// Unpack and check every argument; returns false with a Python error set on the first bad one.
template <size_t N>
bool check_all(std::array<Arg, N>& args, const char* dtype_of = "xg/gates") {
    for (Arg& arg : args) {
        bool failed;
        arg.tensor = unpack(arg.obj, arg.name, arg.optional, &failed);
        if (failed) return false;
        if (arg.tensor && !check_tensor(*arg.tensor, arg.name, arg.dtype, arg.shape, dtype_of))
            return false;
    }
    return true;
}

void* pointer(const Arg& arg) { return arg.tensor ? arg.tensor->data_ptr() : nullptr; }

int gates_of(int mode) {
    return mode == rnnkit::MODE_LSTM ? 4 : mode == rnnkit::MODE_GRU ? 3 : 1;
}

bool check_mode(int mode) {
    if (mode >= rnnkit::MODE_RNN_TANH && mode <= rnnkit::MODE_GRU) return true;
    PyErr_Format(PyExc_ValueError, "rnnkit.engine: mode: expected 0-3, got %d", mode);
    return false;
}

// The sizes every other tensor is checked against, read from `xg` (T, B, G*H) and
// `w_hh` (G*H, Hout); returns false with an error set if they are not 3-D / 2-D float.
struct Sizes {
    int64_t T, B, H, Hout, G;
    int64_t I;  // the input's width when the forward reads x (T, B, I) in place of xg
    at::ScalarType dtype;
};

// `input`: xg_obj is the input x (T, B, I), its width I free (read into s->I).
bool read_sizes(PyObject* xg_obj, const char* xg_name, PyObject* whh_obj, int mode, Sizes* s,
                bool input = false) {
    bool failed;
    const at::Tensor* xg = unpack(xg_obj, xg_name, false, &failed);
    if (failed) return false;
    const at::Tensor* whh = unpack(whh_obj, "w_hh", false, &failed);
    if (failed) return false;
    if (xg->dim() != 3 || whh->dim() != 2) {
        PyErr_Format(PyExc_ValueError,
                     "rnnkit.engine: expected %s (seq, batch, gates*hidden) and w_hh "
                     "(gates*hidden, out), got %d-D and %d-D tensors", xg_name, (int)xg->dim(),
                     (int)whh->dim());
        return false;
    }
    s->dtype = xg->scalar_type();
    if (s->dtype != at::kFloat && s->dtype != at::kDouble) {
        PyErr_Format(PyExc_TypeError, "rnnkit.engine: %s: expected float32 or float64, got %s",
                     xg_name, c10::toString(s->dtype));
        return false;
    }
    s->G = gates_of(mode);
    s->T = xg->size(0);
    s->B = xg->size(1);
    s->H = whh->size(0) / s->G;
    s->Hout = whh->size(1);
    s->I = input ? xg->size(2) : 0;
    if (s->T < 1 || s->B < 1 || s->H < 1 || s->Hout < 1 || whh->size(0) != s->G * s->H ||
        (input ? s->I < 1 || s->I > INT32_MAX || s->T * s->B > INT32_MAX / s->I
               : xg->size(2) != s->G * s->H) ||
        s->T * s->B > INT32_MAX / (s->G * s->H)) {
        PyErr_Format(PyExc_ValueError,
                     "rnnkit.engine: inconsistent sizes: %s %s, w_hh %s for %d gates", xg_name,
                     shape_text(xg->sizes()).c_str(), shape_text(whh->sizes()).c_str(),
                     (int)s->G);
        return false;
    }
    return true;
}

// Every length must lie in [0, T]: the kernels index steps by them. They are copied first and
// the copy is checked and handed to the kernel, which runs without the GIL: another Python
// thread writing the caller's tensor then cannot move a value past the check.
bool copy_lengths(const Arg& lengths, int64_t T, std::vector<int64_t>* copy) {
    if (!lengths.tensor) return true;
    const int64_t* source = lengths.tensor->data_ptr<int64_t>();
    copy->assign(source, source + lengths.tensor->numel());
    const int64_t* values = copy->data();
    for (int64_t i = 0; i < (int64_t)copy->size(); i++) {
        if (values[i] < 0 || values[i] > T) {
            PyErr_Format(PyExc_ValueError,
                         "rnnkit.engine: lengths: expected values in [0, %lld], got %lld at row "
                         "%lld", (long long)T, (long long)values[i], (long long)i);
            return false;
        }
    }
    return true;
}

// The packed layout (PackedSequence.data's): step t's rows are rows [offsets[t], offsets[t+1])
// of xg, y and the saved tensors, the first offsets[t+1] - offsets[t] rows of the batch
// (longest first). Reads T from `offsets` (T + 1,), B from `h0` (B, Hout) and the row count
// from `rows_obj` (rows, G*H), then checks every offset and copies them into `copy`: the kernel
// runs without the GIL, so it reads a copy no other thread can change under it. Every row the
// kernel addresses, offsets[t] + b for b < its step's count, is then below offsets[T] <= rows.
bool read_packed_sizes(PyObject* rows_obj, const char* rows_name, PyObject* whh_obj,
                       PyObject* h0_obj, PyObject* offsets_obj, int mode, Sizes* s,
                       int64_t* rows, std::vector<int64_t>* copy) {
    const char* h0_name = "h0";
    bool failed;
    const at::Tensor* xg = unpack(rows_obj, rows_name, false, &failed);
    if (failed) return false;
    const at::Tensor* whh = unpack(whh_obj, "w_hh", false, &failed);
    if (failed) return false;
    const at::Tensor* h0 = unpack(h0_obj, h0_name, false, &failed);
    if (failed) return false;
    const at::Tensor* offsets = unpack(offsets_obj, "offsets", false, &failed);
    if (failed) return false;
    if (xg->dim() != 2 || whh->dim() != 2 || h0->dim() != 2) {
        PyErr_Format(PyExc_ValueError,
                     "rnnkit.engine: with offsets, expected %s (rows, gates*hidden), w_hh "
                     "(gates*hidden, out) and %s (batch, out), got %d-D, %d-D and %d-D tensors",
                     rows_name, h0_name, (int)xg->dim(), (int)whh->dim(), (int)h0->dim());
        return false;
    }
    if (!plain_memory(*offsets, "offsets")) return false;
    if (offsets->scalar_type() != at::kLong || offsets->dim() != 1 || offsets->size(0) < 2)
        return fail(PyExc_ValueError, "offsets",
                    std::string("expected an int64 tensor (steps + 1,) with steps >= 1, got ") +
                        c10::toString(offsets->scalar_type()) + " of shape " +
                        shape_text(offsets->sizes()));
    if (!offsets->is_contiguous())
        return fail(PyExc_ValueError, "offsets", "expected a contiguous tensor");
    if (!storage_holds(*offsets, "offsets")) return false;
    s->dtype = xg->scalar_type();
    if (s->dtype != at::kFloat && s->dtype != at::kDouble) {
        PyErr_Format(PyExc_TypeError, "rnnkit.engine: %s: expected float32 or float64, got %s",
                     rows_name, c10::toString(s->dtype));
        return false;
    }
    s->G = gates_of(mode);
    s->T = offsets->size(0) - 1;
    s->B = h0->size(0);
    s->H = whh->size(0) / s->G;
    s->Hout = whh->size(1);
    *rows = xg->size(0);
    if (s->B < 1 || s->H < 1 || s->Hout < 1 || whh->size(0) != s->G * s->H ||
        xg->size(1) != s->G * s->H || s->T > INT32_MAX || *rows > INT32_MAX / (s->G * s->H) ||
        s->B > INT32_MAX / (s->G * s->H)) {
        PyErr_Format(PyExc_ValueError,
                     "rnnkit.engine: inconsistent sizes: %s %s, w_hh %s, %s %s for %d gates",
                     rows_name, shape_text(xg->sizes()).c_str(), shape_text(whh->sizes()).c_str(),
                     h0_name, shape_text(h0->sizes()).c_str(), (int)s->G);
        return false;
    }
    const int64_t* values = offsets->data_ptr<int64_t>();
    copy->assign(values, values + s->T + 1);
    const std::vector<int64_t>& o = *copy;
    if (o[0] != 0)
        return fail(PyExc_ValueError, "offsets",
                    "expected the first offset to be 0, got " + std::to_string(o[0]));
    for (int64_t t = 0; t < s->T; t++) {
        const int64_t count = o[t + 1] - o[t];
        if (count < 0 || count > s->B)
            return fail(PyExc_ValueError, "offsets",
                        "expected each step's row count (offsets[t + 1] - offsets[t]) in [0, " +
                            std::to_string(s->B) + "] (the batch), got " +
                            std::to_string(count) + " at step " + std::to_string(t));
        if (t > 0 && count > o[t] - o[t - 1])
            return fail(PyExc_ValueError, "offsets",
                        "expected non-increasing row counts (rows longest first), got " +
                            std::to_string(o[t] - o[t - 1]) + " then " + std::to_string(count) +
                            " at step " + std::to_string(t));
    }
    if (o[s->T] > *rows)
        return fail(PyExc_ValueError, "offsets",
                    "expected the last offset to be at most " + std::to_string(*rows) + " (the "
                    "rows of " + rows_name + "), got " + std::to_string(o[s->T]));
    return true;
}

// The sizes of either layout, read from `rows_obj` (xg or gates) and checked as above; the
// packed one (offsets given) takes no lengths.
bool read_layout(PyObject* rows_obj, const char* rows_name, PyObject* whh_obj, PyObject* h0_obj,
                 PyObject* offsets_obj, PyObject* lengths_obj, int mode, Sizes* s, int64_t* rows,
                 std::vector<int64_t>* copy) {
    if (!check_mode(mode)) return false;
    if (offsets_obj == Py_None) return read_sizes(rows_obj, rows_name, whh_obj, mode, s);
    if (!read_packed_sizes(rows_obj, rows_name, whh_obj, h0_obj, offsets_obj, mode, s, rows,
                           copy))
        return false;
    if (lengths_obj != Py_None) {
        PyErr_SetString(PyExc_ValueError, "rnnkit.engine: lengths, offsets: expected at most "
                                          "one of them, got both");
        return false;
    }
    return true;
}

// The forward projects the input itself (x and w_ih given, see ForwardArgs::x) only in the
// padded layout without lengths, on packed weights, and not for GRU (whose n gate keeps its
// input part apart, in xg).
bool check_fused(PyObject* xg, PyObject* x, PyObject* wih, PyObject* offsets, PyObject* lengths,
                 int mode, int pack) {
    const char* problem = x == Py_None || wih == Py_None ? "expected both x and w_ih, or neither"
                          : xg != Py_None               ? "expected xg = None with x and w_ih"
                          : offsets != Py_None || lengths != Py_None
                              ? "x and w_ih take no lengths or offsets"
                          : !pack                       ? "x and w_ih need pack = 1"
                          : mode == rnnkit::MODE_GRU    ? "x and w_ih do not serve GRU"
                                                        : nullptr;
    if (problem == nullptr) return check_mode(mode);
    PyErr_Format(PyExc_ValueError, "rnnkit.engine: forward: %s", problem);
    return false;
}

// A kernel's thread count, refused outside 1-1024 (the pool would start that many threads).
bool threads_in_range(long threads) {
    if (threads >= 1 && threads <= 1024) return true;
    PyErr_Format(PyExc_ValueError, "rnnkit.engine: threads: expected 1-1024, got %ld", threads);
    return false;
}

// A kernel's argument struct with the sizes and options both directions share.
template <typename Args>
Args with_sizes(int mode, const Sizes& s, int reverse, int threads) {
    Args a = {};
    a.mode = mode;
    a.T = (int)s.T;
    a.B = (int)s.B;
    a.H = (int)s.H;
    a.Hout = (int)s.Hout;
    a.reverse = reverse;
    a.threads = threads;
    return a;
}

// Binds a vectorcall's arguments to `names`, every one required and passed by keyword, into
// `values` (borrowed). Keyword names in the caller's code are interned, as are `interned`'s,
// so the usual call costs one pointer comparison per argument; any order still works.
// Keywords from index `required` on may be left out (they read as None).
bool bind_keywords(const char* function, PyObject* const* args, Py_ssize_t nargs,
                   PyObject* kwnames, const char* const* names, PyObject** interned, int count,
                   PyObject** values, int required) {
    const Py_ssize_t given = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs != 0 || given < required || given > count) {
        PyErr_Format(PyExc_TypeError, "%s: expected %d keyword arguments and no positional "
                     "ones, got %zd positional and %zd keyword", function, required, nargs,
                     given);
        return false;
    }
    for (int i = 0; i < count; i++) {
        if (!interned[i] && !(interned[i] = PyUnicode_InternFromString(names[i]))) return false;
        values[i] = nullptr;
    }
    for (Py_ssize_t k = 0; k < given; k++) {
        PyObject* key = PyTuple_GET_ITEM(kwnames, k);
        int slot = (k < count && key == interned[k]) ? (int)k : -1;
        for (int i = 0; slot < 0 && i < count; i++)
            if (PyUnicode_Compare(key, interned[i]) == 0) slot = i;
        if (slot < 0 || values[slot]) {
            PyErr_Format(PyExc_TypeError, "%s: unexpected or repeated keyword argument '%U'",
                         function, key);
            return false;
        }
        values[slot] = args[k];
    }
    for (int i = 0; i < required; i++)
        if (!values[i]) {
            PyErr_Format(PyExc_TypeError, "%s: missing keyword argument '%s'", function,
                         names[i]);
            return false;
        }
    return true;
}

// An int argument (0/1 for flags), or -1 with a TypeError naming it.
bool int_arg(PyObject* value, const char* name, int* out) {
    if (PyBool_Check(value) || PyLong_Check(value)) {
        long v = PyLong_AsLong(value);
        if (v == -1 && PyErr_Occurred()) return false;
        if (v < INT_MIN || v > INT_MAX) {
            PyErr_Format(PyExc_ValueError, "rnnkit.engine: %s: expected a value that fits an "
                         "int, got %ld", name, v);
            return false;
        }
        *out = (int)v;
        return true;
    }
    PyErr_Format(PyExc_TypeError, "rnnkit.engine: %s: expected an int or bool, got %s", name,
                 Py_TYPE(value)->tp_name);
    return false;
}

}  // namespace

PyObject* rnnkit_py_forward(PyObject*, PyObject* const* args, Py_ssize_t nargs,
                            PyObject* kwnames) {
    static const char* names[] = {"mode", "reverse", "save", "threads", "pack", "xg", "bias",
                                  "h0", "c0", "w_hh", "b_hn", "w_hr", "lengths", "y", "h_n",
                                  "c_n", "gates", "aux", "m", "work", "offsets", "x", "w_ih"};
    constexpr int kCount = sizeof(names) / sizeof(names[0]);
    static PyObject* interned[kCount];
    PyObject* v[kCount];
    if (!bind_keywords("forward", args, nargs, kwnames, names, interned, kCount, v, kCount - 3))
        return nullptr;
    int mode, reverse, save, threads, pack;
    if (!int_arg(v[0], "mode", &mode) || !int_arg(v[1], "reverse", &reverse) ||
        !int_arg(v[2], "save", &save) || !int_arg(v[3], "threads", &threads) ||
        !int_arg(v[4], "pack", &pack) || !threads_in_range(threads))
        return nullptr;
    PyObject *xg = v[5], *bias = v[6], *h0 = v[7], *c0 = v[8], *whh = v[9], *bhn = v[10],
             *whr = v[11], *lengths = v[12], *y = v[13], *hn = v[14], *cn = v[15],
             *gates = v[16], *aux = v[17], *m = v[18], *work = v[19];
    PyObject* offsets = v[20] ? v[20] : Py_None;
    PyObject* x = v[21] ? v[21] : Py_None;
    PyObject* wih = v[22] ? v[22] : Py_None;
    const bool packed = offsets != Py_None;
    const bool fused = x != Py_None || wih != Py_None;
    Sizes s;
    int64_t rows = 0;
    std::vector<int64_t> offset_copy, length_copy;
    if (fused ? !check_fused(xg, x, wih, offsets, lengths, mode, pack) ||
                    !read_sizes(x, "x", whh, mode, &s, true)
              : !read_layout(xg, "xg", whh, h0, offsets, lengths, mode, &s, &rows, &offset_copy))
        return nullptr;
    const bool lstm = mode == rnnkit::MODE_LSTM, gru = mode == rnnkit::MODE_GRU;
    const bool projected = whr != Py_None;
    if (projected && !lstm) {
        PyErr_SetString(PyExc_ValueError, "rnnkit.engine: w_hr: projections exist only for LSTM");
        return nullptr;
    }
    const int64_t steps = save ? s.T : 1, GH = s.G * s.H;
    const at::ScalarType f = s.dtype;
    // Per-step tensors: (T, B, width) padded, (rows, width) packed; saved ones with save=0
    // are one step's scratch.
    auto per_step = [&](int64_t width) {
        return packed ? Shape{rows, width} : Shape{s.T, s.B, width};
    };
    auto saved = [&](int64_t width) {
        return packed ? Shape{save ? rows : s.B, width} : Shape{steps, s.B, width};
    };
    std::array<Arg, 17> checked = {{
        {"xg", xg, fused, per_step(GH), f},
        {"bias", bias, false, {GH}, f},
        {"h0", h0, false, {s.B, s.Hout}, f},
        {"c0", c0, !lstm, {s.B, s.H}, f},
        {"w_hh", whh, false, {GH, s.Hout}, f},
        {"b_hn", bhn, true, {s.H}, f},
        {"w_hr", whr, true, {s.Hout, s.H}, f},
        {"lengths", lengths, true, {s.B}, at::kLong},
        {"y", y, false, per_step(s.Hout), f},
        {"h_n", hn, false, {s.B, s.Hout}, f},
        {"c_n", cn, !lstm, {s.B, s.H}, f},
        {"gates", gates, false, saved(GH), f},
        {"aux", aux, !(lstm || gru), saved(s.H), f},
        {"m", m, !projected, saved(s.H), f},
        {"work", work, false, {2 * s.B * s.Hout + s.B * s.H}, f},
        {"x", x, !fused, {s.T, s.B, s.I}, f},
        {"w_ih", wih, !fused, {GH, s.I}, f},
    }};
    if (!check_all(checked) || !copy_lengths(checked[7], s.T, &length_copy)) return nullptr;
    if (!projected && s.Hout != s.H) {
        PyErr_SetString(PyExc_ValueError, "rnnkit.engine: w_hh: out size differs from hidden "
                                          "size without w_hr");
        return nullptr;
    }
    if ((lstm && (c0 == Py_None || cn == Py_None)) || ((lstm || gru) && aux == Py_None) ||
        (projected && m == Py_None)) {
        PyErr_SetString(PyExc_ValueError, "rnnkit.engine: c0, c_n, aux or m missing for mode");
        return nullptr;
    }
    auto a = with_sizes<rnnkit::ForwardArgs>(mode, s, reverse, threads);
    a.save = save;
    a.pack = pack;
    a.xg = pointer(checked[0]);
    a.bx = pointer(checked[1]);
    a.h0 = pointer(checked[2]);
    a.c0 = pointer(checked[3]);
    a.whh = pointer(checked[4]);
    a.bhn = pointer(checked[5]);
    a.whr = pointer(checked[6]);
    a.lengths = checked[7].tensor ? length_copy.data() : nullptr;
    a.y = pointer(checked[8]);
    a.hn = pointer(checked[9]);
    a.cn = pointer(checked[10]);
    a.gates = pointer(checked[11]);
    a.aux = pointer(checked[12]);
    a.m = pointer(checked[13]);
    a.work = pointer(checked[14]);
    a.offsets = packed ? offset_copy.data() : nullptr;
    a.x = pointer(checked[15]);
    a.wih = pointer(checked[16]);
    a.I = (int)s.I;
    rnnkit::run_forward(s.dtype == at::kDouble, a);
    Py_RETURN_NONE;
}

namespace {

// Scratch of an `infer` call, carved from one buffer, each part 64-byte aligned.
struct InferScratch {
    int64_t xg, gates, aux, m, work, bias, total;
};

InferScratch infer_scratch(const Sizes& s) {
    auto round = [](int64_t n) { return (n + 15) / 16 * 16; };
    const int64_t GH = s.G * s.H;
    InferScratch part;
    part.xg = 0;
    part.gates = part.xg + round(s.T * s.B * GH);
    part.aux = part.gates + round(s.B * GH);
    part.m = part.aux + round(s.B * s.H);
    part.work = part.m + round(s.B * s.H);
    part.bias = part.work + round(2 * s.B * s.Hout + s.B * s.H);
    part.total = part.bias + round(GH);
    return part;
}

// The gate bias the kernels add: b_ih + b_hh, except GRU's n gate (b_in only: b_hn is
// multiplied by the reset gate and stays apart). The same additions torch's ops make.
template <typename T>
void sum_gate_bias(const at::Tensor& bih, const at::Tensor& bhh, bool gru, int64_t H, T* out) {
    const T* bi = bih.data_ptr<T>();
    const T* bh = bhh.data_ptr<T>();
    const int64_t GH = bih.size(0), summed = gru ? 2 * H : GH;
    for (int64_t j = 0; j < GH; j++) out[j] = j < summed ? bi[j] + bh[j] : bi[j];
}

// x as a contiguous tensor: a checked view is copied (batch-first input arrives transposed).
bool contiguous_input(PyObject* x_obj, at::Tensor* out) {
    bool failed;
    const at::Tensor* x = unpack(x_obj, "x", false, &failed);
    if (failed || !plain_memory(*x, "x") || !storage_holds(*x, "x")) return false;
    try {
        *out = x->contiguous();
    } catch (const std::exception& error) {
        PyErr_SetString(PyExc_RuntimeError, error.what());
        return false;
    }
    return true;
}

}  // namespace

namespace {

// A 2-D operand of `gemm`: checked, and its layout read off its strides. `unit_dim` is the
// dimension with stride 1 (or -1: neither, and the tensor was copied contiguous).
struct Operand {
    at::Tensor tensor;
    int unit_dim = 1;
    int64_t ld = 0;
};

bool gemm_operand(PyObject* obj, const char* name, Operand* out) {
    bool failed;
    const at::Tensor* t = unpack(obj, name, false, &failed);
    if (failed || !plain_memory(*t, name) || !storage_holds(*t, name)) return false;
    if (t->dim() != 2)
        return fail(PyExc_ValueError, name,
                    "expected a 2-D tensor, got shape " + shape_text(t->sizes()));
    if (t->scalar_type() != at::kFloat && t->scalar_type() != at::kDouble)
        return fail(PyExc_TypeError, name, std::string("expected float32 or float64, got ") +
                                               c10::toString(t->scalar_type()));
    // A size-1 dimension's stride is arbitrary: take it as packed.
    const int64_t rows = t->size(0), cols = t->size(1);
    const int64_t s0 = rows > 1 ? t->stride(0) : cols, s1 = cols > 1 ? t->stride(1) : 1;
    const int64_t r0 = cols > 1 ? t->stride(0) : 1, r1 = rows > 1 ? t->stride(1) : rows;
    if (s1 == 1 && s0 >= cols) {
        out->tensor = *t;
        out->unit_dim = 1;
        out->ld = s0 > 0 ? s0 : 1;
    } else if (r0 == 1 && r1 >= rows) {
        out->tensor = *t;
        out->unit_dim = 0;
        out->ld = r1 > 0 ? r1 : 1;
    } else {
        try {
            out->tensor = t->contiguous();
        } catch (const std::exception& error) {
            PyErr_SetString(PyExc_RuntimeError, error.what());
            return false;
        }
        out->unit_dim = 1;
        out->ld = cols > 0 ? cols : 1;
    }
    return true;
}

}  // namespace

// Whether the bytes `out` addresses lie apart from the storages of `a` and `b` (a product
// written over its own operands would read what it already wrote).
bool apart_from(const at::Tensor& out, const at::Tensor& a, const at::Tensor& b) {
    const char* lo = (const char*)out.data_ptr();
    const char* hi = lo + out.numel() * out.itemsize();
    for (const at::Tensor* operand : {&a, &b}) {
        const char* start = (const char*)operand->storage().data();
        const char* end = start + operand->storage().nbytes();
        if (lo < end && start < hi)
            return fail(PyExc_ValueError, "out",
                        "expected memory apart from a's and b's storage, got an overlap");
    }
    return true;
}

// a @ b for 2-D float tensors on the engine's packed tile (GemmArgs): a (M, K) and b (K, N),
// each with either dimension contiguous (a transposed view is read in place; any other
// layout is copied first). Returns a new contiguous (M, N) tensor, or writes the optional
// `out`: a contiguous (M, N) tensor of a's dtype apart from a and b, returned.
PyObject* rnnkit_py_gemm(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    static const char* names[] = {"a", "b", "threads", "out"};
    constexpr int kCount = sizeof(names) / sizeof(names[0]);
    static PyObject* interned[kCount];
    PyObject* v[kCount];
    if (!bind_keywords("gemm", args, nargs, kwnames, names, interned, kCount, v, kCount - 1))
        return nullptr;
    int threads;
    Operand a, b;
    if (!int_arg(v[2], "threads", &threads) || !gemm_operand(v[0], "a", &a) ||
        !gemm_operand(v[1], "b", &b) || !threads_in_range(threads))
        return nullptr;
    const int64_t M = a.tensor.size(0), K = a.tensor.size(1), N = b.tensor.size(1);
    if (b.tensor.size(0) != K) {
        PyErr_Format(PyExc_ValueError, "rnnkit.engine: a, b: expected b to have a's %lld "
                     "columns as rows, got a %s and b %s", (long long)K,
                     shape_text(a.tensor.sizes()).c_str(), shape_text(b.tensor.sizes()).c_str());
        return nullptr;
    }
    if (a.tensor.scalar_type() != b.tensor.scalar_type()) {
        PyErr_Format(PyExc_TypeError, "rnnkit.engine: a, b: expected one dtype, got a %s and b %s",
                     c10::toString(a.tensor.scalar_type()), c10::toString(b.tensor.scalar_type()));
        return nullptr;
    }
    constexpr int64_t kMax = (int64_t)1 << 30;  // the kernels index rows and columns with int
    if (M >= kMax || N >= kMax || K >= kMax) {
        PyErr_Format(PyExc_ValueError, "rnnkit.engine: a, b: expected every size below 2^30, "
                     "got a %s and b %s", shape_text(a.tensor.sizes()).c_str(),
                     shape_text(b.tensor.sizes()).c_str());
        return nullptr;
    }
    const at::ScalarType f = a.tensor.scalar_type();
    at::Tensor c;
    bool failed;
    const at::Tensor* out = unpack(v[3], "out", true, &failed);
    if (failed) return nullptr;
    if (out != nullptr) {
        if (!check_tensor(*out, "out", f, {M, N}, "a") || !apart_from(*out, a.tensor, b.tensor))
            return nullptr;
        c = *out;
        if (K == 0) c.zero_();
    }
    try {
        if (out == nullptr)
            c = K == 0 ? at::detail::empty_cpu({M, N}, f).zero_() : at::detail::empty_cpu({M, N}, f);
    } catch (const std::exception&) {
        PyErr_NoMemory();
        return nullptr;
    }
    if (K > 0) {
        rnnkit::GemmArgs g = {};
        g.M = (int)M;
        g.N = (int)N;
        g.K = (int)K;
        g.threads = threads;
        g.a = a.tensor.data_ptr();
        g.a_km = a.unit_dim == 0;
        g.lda = a.ld;
        g.b = b.tensor.data_ptr();
        g.b_nk = b.unit_dim == 0;
        g.ldb = b.ld;
        g.c = c.data_ptr();
        g.ldc = N > 0 ? N : 1;
        rnnkit::run_gemm(f == at::kDouble, g);
    }
    return THPVariable_Wrap(std::move(c));
}

namespace {

// Elements of infer's `panels` for one layer-direction in `dtype`: the PanelCache header,
// then room for packed W_hh, W_hr and one copy of W_ih at 16 lanes, the widest packing of
// any ISA's kernels (each kernel entry checks the room it needs itself).
int64_t panel_elements(int mode, int64_t I, int64_t H, int64_t Hout, bool projected,
                       at::ScalarType dtype) {
    const int64_t G = gates_of(mode), width = (H + 15) / 16 * 16;
    const int64_t panels = G * Hout * width + (projected ? H * ((Hout + 15) / 16 * 16) : 0) +
                           G * I * width;
    return rnnkit::kPanelHeaderBytes / (int64_t)c10::elementSize(dtype) + panels;
}

// A cheap fingerprint of a weight's values: 8 words sampled across it. It catches most
// rewrites the version counter cannot see (through `.data` or NumPy), not every one.
uint64_t sample_values(const at::Tensor* t) {
    if (t == nullptr || t->numel() == 0) return 0;
    const uint32_t* words = (const uint32_t*)t->data_ptr();
    const int64_t count = t->numel() * (int64_t)t->itemsize() / 4;
    uint64_t hash = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 8; i++) {
        hash ^= words[count * i / 8] + 0x9e3779b97f4a7c15ull + (hash << 6) + (hash >> 2);
        hash *= 0xff51afd7ed558ccdull;
    }
    return hash;
}

// Whether two tensors' storages share memory.
bool share_memory(const at::Tensor& a, const at::Tensor& b) {
    const char* a0 = (const char*)a.storage().data();
    const char* b0 = (const char*)b.storage().data();
    return a0 < b0 + b.storage().nbytes() && b0 < a0 + a.storage().nbytes();
}

// infer's `panels`: a contiguous 1-D tensor of the layer's dtype and panel_elements' size,
// 64-byte aligned, sharing no memory with the tensors the call reads. Fills `cache` with its
// key: what these weights are now.
bool panel_cache(PyObject* obj, int mode, const Sizes& s, std::array<Arg, 7>& weights,
                 const at::Tensor& x, rnnkit::PanelCache* cache) {
    bool failed;
    const at::Tensor* panels = unpack(obj, "panels", false, &failed);
    if (failed) return false;
    const bool projected = weights[6].tensor != nullptr;
    const int64_t n = panel_elements(mode, s.I, s.H, s.Hout, projected, s.dtype);
    if (!check_tensor(*panels, "panels", s.dtype, {n}, "w_hh")) return false;
    if ((uintptr_t)panels->data_ptr() % 64 != 0)
        return fail(PyExc_ValueError, "panels", "expected a 64-byte aligned data pointer");
    bool shared = share_memory(*panels, x);
    for (const Arg& arg : weights) shared = shared || (arg.tensor && share_memory(*panels, *arg.tensor));
    if (shared)
        return fail(PyExc_ValueError, "panels", "expected memory of its own, got a tensor sharing "
                                                "storage with x, a state or a weight");
    const int64_t header = rnnkit::kPanelHeaderBytes / (int64_t)panels->itemsize();
    cache->header = (int64_t*)panels->data_ptr();
    cache->panels = (char*)panels->data_ptr() + rnnkit::kPanelHeaderBytes;
    cache->capacity = (long)(n - header);
    const at::Tensor* sources[3] = {weights[2].tensor, weights[3].tensor, weights[6].tensor};
    int64_t* key = cache->key;
    key[0] = mode;
    key[1] = s.I;
    key[2] = s.H;
    key[3] = s.Hout;
    uint64_t fingerprint = 0;
    for (int i = 0; i < 3; i++) {
        key[4 + 2 * i] = sources[i] ? (int64_t)(uintptr_t)sources[i]->data_ptr() : 0;
        key[5 + 2 * i] = sources[i] ? (int64_t)sources[i]->_version() : 0;
        fingerprint = fingerprint * 31 + sample_values(sources[i]);
    }
    key[10] = (int64_t)fingerprint;
    return true;
}

}  // namespace

// Whole-sequence inference of one layer and direction in one call: checks, the gate bias,
// outputs and scratch, the input projection and the recurrence (see ForwardArgs::project_first).
// Returns (y (T, B, Hout), h_n (B, Hout), c_n (B, H) or None).
PyObject* rnnkit_py_infer(PyObject*, PyObject* const* args, Py_ssize_t nargs,
                          PyObject* kwnames) {
    static const char* names[] = {"mode", "reverse", "threads", "x", "h0", "c0",
                                  "w_ih", "w_hh", "b_ih", "b_hh", "w_hr", "pipeline", "panels",
                                  "layered"};
    constexpr int kCount = sizeof(names) / sizeof(names[0]);
    static PyObject* interned[kCount];
    PyObject* v[kCount];
    // Optional: pipeline (ForwardArgs::pipeline, 0 unless given), panels (packed weights
    // kept between calls, see PanelCache; None or absent: packed into scratch) and layered
    // (1: h_n and c_n get a leading axis of 1, as a one-layer torch.nn state).
    if (!bind_keywords("infer", args, nargs, kwnames, names, interned, kCount, v, kCount - 3))
        return nullptr;
    int mode, reverse, threads, pipeline = 0, layered = 0;
    if (!int_arg(v[0], "mode", &mode) || !int_arg(v[1], "reverse", &reverse) ||
        !int_arg(v[2], "threads", &threads) || !check_mode(mode) || !threads_in_range(threads) ||
        (v[11] && !int_arg(v[11], "pipeline", &pipeline)) ||
        (v[13] && !int_arg(v[13], "layered", &layered)))
        return nullptr;
    if (pipeline != 0 && pipeline != 1) {
        PyErr_Format(PyExc_ValueError, "rnnkit.engine: infer: pipeline: expected 0 or 1, got %d",
                     pipeline);
        return nullptr;
    }
    if (layered != 0 && layered != 1) {
        PyErr_Format(PyExc_ValueError, "rnnkit.engine: infer: layered: expected 0 or 1, got %d",
                     layered);
        return nullptr;
    }
    PyObject *x = v[3], *h0 = v[4], *c0 = v[5], *wih = v[6], *whh = v[7], *bih = v[8],
             *bhh = v[9], *whr = v[10];
    Sizes s;
    at::Tensor xc;
    if (!read_sizes(x, "x", whh, mode, &s, true) || !contiguous_input(x, &xc)) return nullptr;
    s.dtype = THPVariable_Unpack(whh).scalar_type();  // the layer's dtype: its weights'
    if (s.dtype != at::kFloat && s.dtype != at::kDouble) {
        PyErr_Format(PyExc_TypeError, "rnnkit.engine: w_hh: expected float32 or float64, got %s",
                     c10::toString(s.dtype));
        return nullptr;
    }
    if (xc.scalar_type() != s.dtype) {
        PyErr_Format(PyExc_TypeError, "rnnkit.engine: x, w_hh: expected one dtype, got x %s "
                     "and w_hh %s", c10::toString(xc.scalar_type()), c10::toString(s.dtype));
        return nullptr;
    }
    const bool lstm = mode == rnnkit::MODE_LSTM, gru = mode == rnnkit::MODE_GRU;
    const bool projected = whr != Py_None;
    const at::ScalarType f = s.dtype;
    const int64_t GH = s.G * s.H;
    std::array<Arg, 7> checked = {{
        {"h0", h0, false, {s.B, s.Hout}, f},
        {"c0", c0, !lstm, {s.B, s.H}, f},
        {"w_ih", wih, false, {GH, s.I}, f},
        {"w_hh", whh, false, {GH, s.Hout}, f},
        {"b_ih", bih, true, {GH}, f},
        {"b_hh", bhh, true, {GH}, f},
        {"w_hr", whr, true, {s.Hout, s.H}, f},
    }};
    if (!check_tensor(xc, "x", f, {s.T, s.B, s.I}, "w_hh") || !check_all(checked, "w_hh"))
        return nullptr;
    const char* problem = projected && !lstm                   ? "w_hr: projections exist only for LSTM"
                          : !projected && s.Hout != s.H       ? "w_hh: out size differs from hidden size without w_hr"
                          : (bih == Py_None) != (bhh == Py_None) ? "b_ih, b_hh: expected both or neither"
                                                              : nullptr;
    if (problem) {
        PyErr_Format(PyExc_ValueError, "rnnkit.engine: infer: %s", problem);
        return nullptr;
    }
    rnnkit::PanelCache cache;
    const bool cached = v[12] && v[12] != Py_None;
    if (cached && !panel_cache(v[12], mode, s, checked, xc, &cache)) return nullptr;
    const InferScratch part = infer_scratch(s);
    at::Tensor y, hn, cn, scratch;
    try {
        y = at::detail::empty_cpu({s.T, s.B, s.Hout}, f);
        hn = layered ? at::detail::empty_cpu({1, s.B, s.Hout}, f)
                     : at::detail::empty_cpu({s.B, s.Hout}, f);
        if (lstm)
            cn = layered ? at::detail::empty_cpu({1, s.B, s.H}, f) : at::detail::empty_cpu({s.B, s.H}, f);
        scratch = at::detail::empty_cpu({part.total}, f);
    } catch (const std::exception&) {
        PyErr_NoMemory();
        return nullptr;
    }
    const bool is_double = f == at::kDouble;
    char* base = (char*)scratch.data_ptr();
    auto at_part = [&](int64_t offset) { return (void*)(base + offset * scratch.itemsize()); };
    const bool biased = bih != Py_None;
    if (biased && is_double)
        sum_gate_bias<double>(*checked[4].tensor, *checked[5].tensor, gru, s.H,
                              (double*)at_part(part.bias));
    else if (biased)
        sum_gate_bias<float>(*checked[4].tensor, *checked[5].tensor, gru, s.H,
                             (float*)at_part(part.bias));
    auto a = with_sizes<rnnkit::ForwardArgs>(mode, s, reverse, threads);
    a.pack = 1;
    a.project_first = 1;
    a.pipeline = pipeline;
    a.x = xc.data_ptr();
    a.wih = pointer(checked[2]);
    a.I = (int)s.I;
    a.xg = at_part(part.xg);
    a.bx = biased ? at_part(part.bias) : nullptr;
    a.h0 = pointer(checked[0]);
    a.c0 = pointer(checked[1]);
    a.whh = pointer(checked[3]);
    a.bhn = gru && biased ? (const char*)pointer(checked[5]) + 2 * s.H * scratch.itemsize()
                          : nullptr;
    a.whr = pointer(checked[6]);
    a.y = y.data_ptr();
    a.hn = hn.data_ptr();
    a.cn = lstm ? cn.data_ptr() : nullptr;
    a.gates = at_part(part.gates);
    a.aux = at_part(part.aux);
    a.m = at_part(part.m);
    a.work = at_part(part.work);
    a.cache = cached ? &cache : nullptr;
    rnnkit::run_forward(is_double, a);
    PyObject* c_out = lstm ? THPVariable_Wrap(std::move(cn)) : Py_NewRef(Py_None);
    PyObject* y_out = THPVariable_Wrap(std::move(y));
    PyObject* h_out = THPVariable_Wrap(std::move(hn));
    if (!c_out || !y_out || !h_out) {
        Py_XDECREF(c_out);
        Py_XDECREF(y_out);
        Py_XDECREF(h_out);
        return nullptr;
    }
    PyObject* result = PyTuple_Pack(3, y_out, h_out, c_out);
    Py_DECREF(c_out);
    Py_DECREF(y_out);
    Py_DECREF(h_out);
    return result;
}

// panels_size(mode, input_size, hidden, out_size, projected, double): the elements of
// infer's `panels` for one layer-direction.
PyObject* rnnkit_py_panels_size(PyObject*, PyObject* args) {
    int mode, projected, is_double;
    long long I, H, Hout;
    if (!PyArg_ParseTuple(args, "iLLLpp", &mode, &I, &H, &Hout, &projected, &is_double) ||
        !check_mode(mode))
        return nullptr;
    if (I < 1 || H < 1 || Hout < 1 || I > (1LL << 24) || H > (1LL << 24) || Hout > (1LL << 24)) {
        PyErr_Format(PyExc_ValueError, "rnnkit.engine: panels_size: expected sizes in 1-2^24, "
                     "got input_size %lld, hidden %lld, out_size %lld", I, H, Hout);
        return nullptr;
    }
    return PyLong_FromLongLong(panel_elements(mode, I, H, Hout, projected,
                                              is_double ? at::kDouble : at::kFloat));
}

PyObject* rnnkit_py_backward(PyObject*, PyObject* const* args, Py_ssize_t nargs,
                             PyObject* kwnames) {
    static const char* names[] = {"mode", "reverse", "threads", "w_hh", "w_hr", "dy", "dh_n",
                                  "dc_n", "y", "h0", "c0", "gates", "aux", "lengths", "dgx",
                                  "dgh", "dh0", "dc0", "dhtot", "work", "offsets"};
    constexpr int kCount = sizeof(names) / sizeof(names[0]);
    static PyObject* interned[kCount];
    PyObject* v[kCount];
    if (!bind_keywords("backward", args, nargs, kwnames, names, interned, kCount, v, kCount - 1))
        return nullptr;
    int mode, reverse, threads;
    if (!int_arg(v[0], "mode", &mode) || !int_arg(v[1], "reverse", &reverse) ||
        !int_arg(v[2], "threads", &threads) || !threads_in_range(threads))
        return nullptr;
    PyObject *whh = v[3], *whr = v[4], *dy = v[5], *dhn = v[6], *dcn = v[7], *y = v[8],
             *h0 = v[9], *c0 = v[10], *gates = v[11], *aux = v[12], *lengths = v[13],
             *dgx = v[14], *dgh = v[15], *dh0 = v[16], *dc0 = v[17], *dhtot = v[18],
             *work = v[19];
    PyObject* offsets = v[20] ? v[20] : Py_None;
    const bool packed = offsets != Py_None;
    Sizes s;
    int64_t rows = 0;
    std::vector<int64_t> offset_copy, length_copy;
    if (!read_layout(gates, "gates", whh, h0, offsets, lengths, mode, &s, &rows, &offset_copy))
        return nullptr;
    const bool lstm = mode == rnnkit::MODE_LSTM, gru = mode == rnnkit::MODE_GRU;
    const bool projected = whr != Py_None;
    const int64_t GH = s.G * s.H;
    const at::ScalarType f = s.dtype;
    auto per_step = [&](int64_t width) {
        return packed ? Shape{rows, width} : Shape{s.T, s.B, width};
    };
    std::array<Arg, 17> checked = {{
        {"w_hh", whh, false, {GH, s.Hout}, f},
        {"w_hr", whr, true, {s.Hout, s.H}, f},
        {"dy", dy, false, per_step(s.Hout), f},
        {"dh_n", dhn, false, {s.B, s.Hout}, f},
        {"dc_n", dcn, !lstm, {s.B, s.H}, f},
        {"y", y, false, per_step(s.Hout), f},
        {"h0", h0, false, {s.B, s.Hout}, f},
        {"c0", c0, !lstm, {s.B, s.H}, f},
        {"gates", gates, false, per_step(GH), f},
        {"aux", aux, !(lstm || gru), per_step(s.H), f},
        {"lengths", lengths, true, {s.B}, at::kLong},
        {"dgx", dgx, false, per_step(GH), f},
        {"dgh", dgh, false, per_step(GH), f},
        {"dh0", dh0, false, {s.B, s.Hout}, f},
        {"dc0", dc0, !lstm, {s.B, s.H}, f},
        {"dhtot", dhtot, !projected, per_step(s.Hout), f},
        {"work", work, false, {3 * s.B * s.Hout + 2 * s.B * s.H}, f},
    }};
    if (!check_all(checked) || !copy_lengths(checked[10], s.T, &length_copy)) return nullptr;
    if ((projected && (!lstm || dhtot == Py_None)) || (!projected && s.Hout != s.H) ||
        (lstm && (dcn == Py_None || c0 == Py_None || dc0 == Py_None)) ||
        ((lstm || gru) && aux == Py_None)) {
        PyErr_SetString(PyExc_ValueError,
                        "rnnkit.engine: backward: w_hr, dhtot, dc_n, c0, dc0 or aux missing or "
                        "unexpected for mode");
        return nullptr;
    }
    auto a = with_sizes<rnnkit::BackwardArgs>(mode, s, reverse, threads);
    a.whh = pointer(checked[0]);
    a.whr = pointer(checked[1]);
    a.dy = pointer(checked[2]);
    a.dhn = pointer(checked[3]);
    a.dcn = pointer(checked[4]);
    a.y = pointer(checked[5]);
    a.h0 = pointer(checked[6]);
    a.c0 = pointer(checked[7]);
    a.gates = pointer(checked[8]);
    a.aux = pointer(checked[9]);
    a.lengths = checked[10].tensor ? length_copy.data() : nullptr;
    a.dgx = pointer(checked[11]);
    a.dgh = pointer(checked[12]);
    a.dh0 = pointer(checked[13]);
    a.dc0 = pointer(checked[14]);
    a.dhtot = pointer(checked[15]);
    a.work = pointer(checked[16]);
    a.offsets = packed ? offset_copy.data() : nullptr;
    rnnkit::run_backward(s.dtype == at::kDouble, a);
    Py_RETURN_NONE;
}

// stream(plan, x, h, c, h_n, c_n) with plan = (is_double, mode, layers, input_size, hidden,
// out_size, threads, weights, expected): `weights` 5 tensors or None per layer, `expected`
// their data pointers when the plan was built. Every tensor is checked here on every call
// (a few nanoseconds each). Writes the new states into h_n, c_n and returns a new tensor
// (batch, out_size) holding the last layer's output; returns False, computing nothing, when
// a weight's storage has changed since the plan was built. Never records gradients: an
// input that requires grad is refused.
// A packed plan (11 items) adds (sources, marks): the weights are then (panels, bias, b_hn,
// None, w_hr) per layer (StreamArgs::packed), made from `sources`, whose (data pointer,
// version counter) pairs at packing time are `marks`; False when any moved (repack).
PyObject* rnnkit_py_stream(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs != 6 || !PyTuple_Check(args[0]) ||
        (PyTuple_GET_SIZE(args[0]) != 9 && PyTuple_GET_SIZE(args[0]) != 11)) {
        PyErr_SetString(PyExc_TypeError, "stream: expected (plan, x, h, c, h_n, c_n)");
        return nullptr;
    }
    const bool packed = PyTuple_GET_SIZE(args[0]) == 11;
    if (packed) {
        bool moved = false;
        if (!rnnkit_sources_moved(PyTuple_GET_ITEM(args[0], 9), PyTuple_GET_ITEM(args[0], 10),
                                  &moved))
            return nullptr;
        if (moved) Py_RETURN_FALSE;
    }
    PyObject* plan = args[0];
    long v[7];
    for (int i = 0; i < 7; i++) {
        v[i] = PyLong_AsLong(PyTuple_GET_ITEM(plan, i));
        if (v[i] == -1 && PyErr_Occurred()) return nullptr;
    }
    const int mode = (int)v[1];
    const int64_t layers = v[2], I = v[3], H = v[4], Hout = v[5];
    if (!check_mode(mode) || !threads_in_range(v[6])) return nullptr;
    const bool lstm = mode == rnnkit::MODE_LSTM;
    const at::ScalarType f = v[0] ? at::kDouble : at::kFloat;
    bool failed;
    const at::Tensor* h = unpack(args[2], "h", false, &failed);
    if (failed) return nullptr;
    const at::Tensor* x = unpack(args[1], "x", false, &failed);
    if (failed) return nullptr;
    if (h->dim() != 3 || layers < 1 || H < 1 || Hout < 1 || I < 1) {
        PyErr_SetString(PyExc_ValueError, "rnnkit.engine: stream: expected h (layers, batch, "
                                          "out) and a plan with positive sizes");
        return nullptr;
    }
    const int64_t B = h->size(1), G = gates_of(mode);
    // A strided x (a column of a (batch, seq, feature) tensor) is copied once; its storage is
    // checked first, as the copy reads through its strides.
    at::Tensor x_contiguous;
    if (x->dim() == 2 && !x->is_contiguous() && plain_memory(*x, "x") && storage_holds(*x, "x")) {
        x_contiguous = x->contiguous();
        x = &x_contiguous;
    } else if (PyErr_Occurred()) {
        return nullptr;
    }
    if (!check_tensor(*x, "x", f, {B, I})) return nullptr;
    std::array<Arg, 4> io = {{
        {"h", args[2], false, {layers, B, Hout}, f},
        {"c", args[3], !lstm, {layers, B, H}, f},
        {"h_n", args[4], false, {layers, B, Hout}, f},
        {"c_n", args[5], !lstm, {layers, B, H}, f},
    }};
    if (!check_all(io)) return nullptr;
    if (x->requires_grad() && at::GradMode::is_enabled()) {
        PyErr_SetString(PyExc_RuntimeError,
                        "rnnkit.engine: stream: x requires grad, but streaming steps record no "
                        "gradients; call it under torch.no_grad() or use forward() for training");
        return nullptr;
    }
    if (lstm && (args[3] == Py_None || args[5] == Py_None)) {
        PyErr_SetString(PyExc_ValueError, "rnnkit.engine: stream: c and c_n are needed for LSTM");
        return nullptr;
    }
    PyObject* weights = PyTuple_GET_ITEM(plan, 7);
    PyObject* expected = PyTuple_GET_ITEM(plan, 8);
    const Py_ssize_t count = 5 * (Py_ssize_t)layers;
    if (!PyTuple_Check(weights) || !PyTuple_Check(expected) ||
        PyTuple_GET_SIZE(weights) != count || PyTuple_GET_SIZE(expected) != count) {
        PyErr_SetString(PyExc_ValueError, "stream: expected 5 weights and pointers per layer");
        return nullptr;
    }
    struct Scratch {
        std::vector<uintptr_t> pointers;
        std::vector<double> work;  // double-aligned, sized in elements
    };
    static thread_local Scratch scratch;  // one thread-local lookup per call, not two
    std::vector<uintptr_t>& pointers = scratch.pointers;
    std::vector<double>& work = scratch.work;
    pointers.resize((size_t)count);
    bool stale = false;
    for (int64_t layer = 0; layer < layers; layer++) {
        const bool projected = PyTuple_GET_ITEM(weights, 5 * layer + 4) != Py_None;
        if (projected && !lstm) {
            PyErr_SetString(PyExc_ValueError, "rnnkit.engine: w_hr: only LSTM has projections");
            return nullptr;
        }
        const int64_t in = layer == 0 ? I : Hout, out = projected ? Hout : H;
        if (out != Hout) {
            PyErr_SetString(PyExc_ValueError, "rnnkit.engine: stream: out size != hidden size "
                                              "without w_hr");
            return nullptr;
        }
        const bool gru = mode == rnnkit::MODE_GRU;
        std::array<Arg, 5> layer_args = {{
            {"w_ih", PyTuple_GET_ITEM(weights, 5 * layer), false, {G * H, in}, f},
            {"w_hh", PyTuple_GET_ITEM(weights, 5 * layer + 1), false, {G * H, Hout}, f},
            {"b_ih", PyTuple_GET_ITEM(weights, 5 * layer + 2), true, {G * H}, f},
            {"b_hh", PyTuple_GET_ITEM(weights, 5 * layer + 3), true, {G * H}, f},
            {"w_hr", PyTuple_GET_ITEM(weights, 5 * layer + 4), true, {Hout, H}, f},
        }};
        if (packed) {
            layer_args[0] = {"panels", PyTuple_GET_ITEM(weights, 5 * layer), false,
                             {G * ((H + 15) / 16), in + Hout, 16}, f};
            layer_args[1] = {"bias", PyTuple_GET_ITEM(weights, 5 * layer + 1), false, {G * H}, f};
            layer_args[2] = {"b_hn", PyTuple_GET_ITEM(weights, 5 * layer + 2), true, {H}, f};
            if ((layer_args[2].obj != Py_None && !gru) || PyTuple_GET_ITEM(weights, 5 * layer + 3) != Py_None) {
                PyErr_SetString(PyExc_ValueError, "rnnkit.engine: stream: packed weights: b_hn "
                                                  "only for GRU, and no fourth entry");
                return nullptr;
            }
            layer_args[3] = {"unused", Py_None, true, {1}, f};
        }
        if (!check_all(layer_args)) return nullptr;
        if (!packed && (layer_args[2].tensor == nullptr) != (layer_args[3].tensor == nullptr)) {
            PyErr_SetString(PyExc_ValueError, "rnnkit.engine: b_ih, b_hh: both or neither");
            return nullptr;
        }
        for (int i = 0; i < 5; i++) {
            const size_t k = (size_t)(5 * layer + i);
            pointers[k] = (uintptr_t)pointer(layer_args[i]);
            const uintptr_t want =
                (uintptr_t)PyLong_AsUnsignedLongLongMask(PyTuple_GET_ITEM(expected, k));
            if (want == (uintptr_t)-1 && PyErr_Occurred()) return nullptr;
            stale = stale || pointers[k] != want;
        }
    }
    if (stale) Py_RETURN_FALSE;
    rnnkit::StreamArgs s;
    s.mode = mode;
    s.layers = (int)layers;
    s.B = (int)B;
    s.I = (int)I;
    s.H = (int)H;
    s.Hout = (int)Hout;
    s.threads = (int)v[6];
    s.packed = packed;
    s.x = x->data_ptr();
    s.h = pointer(io[0]);
    s.c = pointer(io[1]);
    s.hn = pointer(io[2]);
    s.cn = pointer(io[3]);
    const size_t need = (size_t)rnnkit::stream_work_elements((int)G, s.B, s.H);
    if (work.size() < need) work.resize(need);  // double-sized elements cover float too
    s.weights = pointers.data();
    s.work = work.data();
    rnnkit::run_stream(v[0] != 0, s);
    // The output is a fresh tensor (the last layer's new state), so the caller needs no
    // Python-side indexing or allocation.
    const size_t row_bytes = (size_t)(B * Hout) * (v[0] ? sizeof(double) : sizeof(float));
    return rnnkit_stream_output((const char*)s.hn + (size_t)(layers - 1) * row_bytes, B, Hout,
                                v[0] != 0);
}

bool rnnkit_sources_moved(PyObject* sources, PyObject* marks, bool* moved) {
    *moved = false;
    if (!PyTuple_Check(sources) || !PyTuple_Check(marks) ||
        PyTuple_GET_SIZE(marks) != 2 * PyTuple_GET_SIZE(sources)) {
        PyErr_SetString(PyExc_ValueError, "rnnkit.engine: stream: expected a (pointer, version) "
                                          "pair per source tensor");
        return false;
    }
    // In place (the version counter moves) or replaced (the data pointer moves). Writes
    // through .data bump no counter and are not seen.
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(sources); i++) {
        PyObject* obj = PyTuple_GET_ITEM(sources, i);
        if (!THPVariable_Check(obj)) {
            PyErr_SetString(PyExc_TypeError, "rnnkit.engine: stream: sources: expected tensors");
            return false;
        }
        const at::Tensor& t = THPVariable_Unpack(obj);
        const unsigned long long ptr = PyLong_AsUnsignedLongLongMask(PyTuple_GET_ITEM(marks, 2 * i));
        const long long version = PyLong_AsLongLong(PyTuple_GET_ITEM(marks, 2 * i + 1));
        if (PyErr_Occurred()) return false;
        if (!t.defined() || (unsigned long long)(uintptr_t)t.data_ptr() != ptr ||
            (long long)t.unsafeGetTensorImpl()->version_counter().current_version() != version) {
            *moved = true;
            return true;
        }
    }
    return true;
}

namespace {

// Small outputs of the streaming steps come from malloc (its per-thread cache, no lock)
// instead of torch's CPU allocator, whose posix_memalign takes the arena lock and splits a
// chunk on every call (~0.15 us of a ~1 us step). Over-allocating keeps the 64-byte alignment
// torch's allocator gives; the storage frees the block with free().
struct SmallAllocator final : c10::Allocator {
    c10::DataPtr allocate(size_t n) override {
        void* raw = std::malloc(n + 64);
        if (raw == nullptr) throw std::bad_alloc();
        void* data = (void*)(((uintptr_t)raw + 64) & ~(uintptr_t)63);
        return {data, raw, &std::free, c10::Device(c10::DeviceType::CPU)};
    }
    void copy_data(void* dest, const void* src, std::size_t count) const override {
        std::memcpy(dest, src, count);
    }
};

SmallAllocator small_allocator;

}  // namespace

PyObject* rnnkit_stream_output(const void* src, int64_t rows, int64_t cols, bool is_double) {
    const int64_t sizes[2] = {rows, cols};
    at::Tensor y;
    try {
        // empty_generic skips the dispatcher (~0.3 us): a plain CPU buffer by construction.
        y = at::detail::empty_generic(c10::IntArrayRef(sizes, 2), &small_allocator,
                                      c10::DispatchKeySet(c10::DispatchKey::CPU),
                                      is_double ? at::kDouble : at::kFloat, std::nullopt);
    } catch (const std::exception&) {
        PyErr_NoMemory();
        return nullptr;
    }
    std::memcpy(y.data_ptr(), src, (size_t)(rows * cols) * y.itemsize());
    return THPVariable_Wrap(std::move(y));
}

void* rnnkit_stream_output_reuse(PyObject* y, c10::DispatchKeySet keys, int64_t rows,
                                 int64_t cols, bool is_double) {
    // Python's view: the one reference is the caller's; the object is still exactly a
    // torch.Tensor, has no weak references, no attributes and no hooks.
    PyTypeObject* type = Py_TYPE(y);
    if (Py_REFCNT(y) != 1 || (PyObject*)type != THPVariableClass ||
        type->tp_weaklistoffset <= 0 || *(PyObject**)((char*)y + type->tp_weaklistoffset))
        return nullptr;
    PyObject** dict = _PyObject_GetDictPtr(y);
    if (dict == nullptr || (*dict && PyDict_GET_SIZE(*dict) != 0)) return nullptr;
    const THPVariable* var = (const THPVariable*)y;
    if (var->backward_hooks || var->post_accumulate_grad_hooks) return nullptr;
    // C++'s view: no other tensor, view, storage object or DLPack capsule shares it, no
    // in-place op ran on it (an inference tensor has no counter: never reused), it is still
    // plain (keys as made: no conj/neg bit; no autograd data) and still this
    // shape on the block rnnkit_stream_output allocated (not shared memory, not resized).
    const at::Tensor& t = var->cdata;
    c10::TensorImpl* impl = t.unsafeGetTensorImpl();
    if (c10::InferenceMode::is_enabled() || impl->key_set() != keys || impl->is_inference() ||
        t.use_count() != 1 || t.weak_use_count() != 1 || impl->autograd_meta() != nullptr ||
        !impl->has_storage())
        return nullptr;
    const c10::Storage& storage = impl->storage();
    const size_t bytes = (size_t)(rows * cols) * (is_double ? sizeof(double) : sizeof(float));
    if (storage.use_count() != 1 || storage.data_ptr().get_deleter() != &std::free ||
        storage.nbytes() < bytes || impl->version_counter().current_version() != 0 ||
        impl->dtype() != (is_double ? caffe2::TypeMeta::Make<double>()
                                    : caffe2::TypeMeta::Make<float>()) ||
        impl->dim() != 2 || impl->size(0) != rows || impl->size(1) != cols ||
        impl->storage_offset() != 0 || !impl->is_contiguous())
        return nullptr;
    return storage.mutable_data();
}

// ---------------------------------------------------------------- StreamerBase
// The base type of rnnkit.nn.streaming's Streamer: calling a streamer is this C function, not
// a Python frame (a Python __call__ cost ~0.2 us of a ~1 us step). It holds the plan's native
// function (`_run`, called as _run(x, h, c, h_n, c_n), which checks every tensor itself) and
// the two state buffers, swapped after each step. When `_run` returns False (the weights
// moved since the plan was built) it calls the subclass's `_build()` and retries once.
namespace {

struct StreamerObject {
    PyObject_HEAD
    PyObject* run;
    PyObject* h;
    PyObject* h_next;
    PyObject* c;
    PyObject* c_next;
};

PyObject* streamer_call(PyObject* self_obj, PyObject* args, PyObject* kwargs) {
    StreamerObject* self = (StreamerObject*)self_obj;
    if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) != 1 ||
        (kwargs && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "streamer: expected one argument, x (batch, input)");
        return nullptr;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!self->run || !self->h || !self->h_next) {
            PyErr_SetString(PyExc_RuntimeError, "streamer: not initialised (no plan or state)");
            return nullptr;
        }
        PyObject* none = Py_None;
        PyObject* stack[5] = {PyTuple_GET_ITEM(args, 0), self->h, self->c ? self->c : none,
                              self->h_next, self->c_next ? self->c_next : none};
        // The callee may run Python code (which could reassign these attributes): keep what
        // it is handed alive through the call.
        PyObject* run = self->run;
        Py_INCREF(run);
        for (PyObject* item : stack) Py_INCREF(item);
        PyObject* y = PyObject_Vectorcall(run, stack, 5, nullptr);
        for (PyObject* item : stack) Py_DECREF(item);
        Py_DECREF(run);
        if (y == nullptr) return nullptr;
        if (y != Py_False) {
            std::swap(self->h, self->h_next);
            std::swap(self->c, self->c_next);
            return y;
        }
        Py_DECREF(y);
        PyObject* built = PyObject_CallMethod(self_obj, "_build", nullptr);
        if (built == nullptr) return nullptr;
        Py_DECREF(built);
    }
    PyErr_SetString(PyExc_RuntimeError,
                    "streamer: the weights changed again while the plan was being rebuilt");
    return nullptr;
}

int streamer_traverse(PyObject* self_obj, visitproc visit, void* arg) {
    StreamerObject* self = (StreamerObject*)self_obj;
    Py_VISIT(self->run);
    Py_VISIT(self->h);
    Py_VISIT(self->h_next);
    Py_VISIT(self->c);
    Py_VISIT(self->c_next);
    return 0;
}

int streamer_clear(PyObject* self_obj) {
    StreamerObject* self = (StreamerObject*)self_obj;
    Py_CLEAR(self->run);
    Py_CLEAR(self->h);
    Py_CLEAR(self->h_next);
    Py_CLEAR(self->c);
    Py_CLEAR(self->c_next);
    return 0;
}

void streamer_dealloc(PyObject* self_obj) {
    PyObject_GC_UnTrack(self_obj);
    streamer_clear(self_obj);
    Py_TYPE(self_obj)->tp_free(self_obj);
}

PyMemberDef streamer_members[] = {
    {"_run", T_OBJECT, offsetof(StreamerObject, run), 0,
     "The plan's native step: _run(x, h, c, h_n, c_n) -> y, or False when weights moved."},
    {"_h", T_OBJECT, offsetof(StreamerObject, h), 0, "Current state h (layers, batch, out)."},
    {"_h_next", T_OBJECT, offsetof(StreamerObject, h_next), 0, "Buffer the next h goes to."},
    {"_c", T_OBJECT, offsetof(StreamerObject, c), 0, "Current cell state (LSTM) or None."},
    {"_c_next", T_OBJECT, offsetof(StreamerObject, c_next), 0, "Buffer the next c goes to."},
    {nullptr, 0, 0, 0, nullptr},
};

PyTypeObject streamer_type = {
    PyVarObject_HEAD_INIT(nullptr, 0)
};

}  // namespace

PyObject* rnnkit_streamer_type() {
    if (streamer_type.tp_name == nullptr) {
        streamer_type.tp_name = "rnnkit.engine._native.StreamerBase";
        streamer_type.tp_doc = "Base of rnnkit.nn.streaming.Streamer: the per-step call in C.";
        streamer_type.tp_basicsize = sizeof(StreamerObject);
        streamer_type.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC;
        streamer_type.tp_new = PyType_GenericNew;
        streamer_type.tp_call = streamer_call;
        streamer_type.tp_traverse = streamer_traverse;
        streamer_type.tp_clear = streamer_clear;
        streamer_type.tp_dealloc = streamer_dealloc;
        streamer_type.tp_members = streamer_members;
        if (PyType_Ready(&streamer_type) < 0) return nullptr;
    }
    Py_INCREF(&streamer_type);
    return (PyObject*)&streamer_type;
}
