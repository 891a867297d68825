// Entry points of the Python module (boundary.cpp, which checks every tensor it is handed)
// and the kernel runners they call (engine.cpp, which owns the ISA dispatch).
#ifndef RNNKIT_BOUNDARY_H
#define RNNKIT_BOUNDARY_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <c10/core/DispatchKeySet.h>

#include "engine.h"

PyObject* rnnkit_py_forward(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                            PyObject* kwnames);
PyObject* rnnkit_py_infer(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                          PyObject* kwnames);
PyObject* rnnkit_py_backward(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                             PyObject* kwnames);
PyObject* rnnkit_py_gemm(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                         PyObject* kwnames);
PyObject* rnnkit_py_panels_size(PyObject* self, PyObject* args);
PyObject* rnnkit_py_stream(PyObject* self, PyObject* const* args, Py_ssize_t nargs);
// The workspace cache (workspace.cpp): large tensors on reused blocks.
PyObject* rnnkit_py_workspace(PyObject* self, PyObject* args);
PyObject* rnnkit_py_workspace_limit(PyObject* self, PyObject* args);
PyObject* rnnkit_py_workspace_stats(PyObject* self, PyObject* args);
// A new (rows, cols) float32/float64 tensor holding a copy of `src`: the output of a
// streaming step (both the float and the int8 entry points), allocated cheaply.
PyObject* rnnkit_stream_output(const void* src, int64_t rows, int64_t cols, bool is_double);
// The data of `y` (a tensor rnnkit_stream_output made, then with dispatch keys `keys`) to
// write a step's next output into, or nullptr when y cannot be handed out again as a new
// (rows, cols) tensor: when anything but the caller's one reference can observe it (other
// references, weak ones, views, shared storage, attributes, hooks) or it is no longer as made
// (in-place ops, resized, another dtype, requires_grad). Streaming plans keep their last
// output and reuse it when nobody else holds it: no allocation, no Python object.
void* rnnkit_stream_output_reuse(PyObject* y, c10::DispatchKeySet keys, int64_t rows,
                                 int64_t cols, bool is_double);
// Whether any of the tensors `sources` (a tuple) moved since `marks` (their data pointers and
// version counters, flattened) were taken: the staleness check of the packed streaming plans
// (float and int8). Returns false with a Python error set on malformed arguments.
bool rnnkit_sources_moved(PyObject* sources, PyObject* marks, bool* moved);
// The type rnnkit.nn.streaming.Streamer derives from (its call is C), set as
// ``_native.StreamerBase`` at import.
PyObject* rnnkit_streamer_type();
// The int8 kernels' module (int8.cpp), set as ``_native.int8`` at import.
PyObject* rnnkit_int8_module();

namespace rnnkit {
// Native users of the workspace cache (workspace.cpp): a 64-byte aligned block of at least
// `bytes` (its size in *capacity, to hand back), or nullptr when memory is out.
constexpr size_t kWorkspaceMinBytes = (size_t)1 << 20;
void* workspace_acquire(size_t bytes, size_t* capacity);
void workspace_release(void* data, size_t capacity);
void run_forward(bool is_double, const ForwardArgs& args);
void run_backward(bool is_double, const BackwardArgs& args);
void run_stream(bool is_double, const StreamArgs& args);
void run_gemm(bool is_double, const GemmArgs& args);
}  // namespace rnnkit
#endif
