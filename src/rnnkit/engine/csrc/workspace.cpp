// The engine's workspace: large scratch and saved tensors (the input projection a forward
// reads, the gates a training forward keeps for backward, the gate gradients of BPTT) allocated
// from a cache of blocks that earlier calls released, instead of fresh from the C library.
//
// Why: glibc serves allocations of 32 MB and more (and smaller ones once its heap was trimmed)
// with fresh mmap pages and unmaps them on free, so every training step of a 2x256 LSTM
// language model (batch 64, 128 steps) took about 37,000 page faults (146 MB of pages zeroed by
// the kernel) for buffers of the same sizes as the step before: 70 ms of system time a step
// (bench/results/workspace.md). A block here is handed to torch as the storage of a tensor
// whose deleter gives it back to the cache, so it is reused only after torch has dropped every
// reference to it (saved tensors, views, autograd's copies of the graph).
//
// The cache keeps released blocks up to a byte limit (the least recently released go first);
// a request takes the smallest cached block that holds it and is at most twice its size.
// Blocks are 64-byte aligned, as torch's own CPU allocations are, and are handed out
// uninitialised (like torch.empty) unless zeroing is asked for.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <ATen/core/Tensor.h>
#include <ATen/ops/from_blob.h>
#include <torch/csrc/autograd/python_variable.h>

#include <cstdlib>
#include <cstring>
#include <list>
#include <mutex>
#include <new>
#include <string>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif
#ifdef _WIN32
#include <malloc.h>
#endif

#include "boundary.h"

namespace {

constexpr size_t kAlignment = 64;
constexpr int kMaxDims = 8;

#ifdef _WIN32
void* allocate(size_t bytes) { return _aligned_malloc(bytes, kAlignment); }
void deallocate(void* data) { _aligned_free(data); }
#else
void* allocate(size_t bytes) { return std::aligned_alloc(kAlignment, bytes); }
void deallocate(void* data) { std::free(data); }
#endif

struct Block {
    void* data;
    size_t bytes;  // capacity, a multiple of kAlignment
};

// Never destroyed: tensors released during interpreter shutdown still return their blocks.
struct Cache {
    std::mutex lock;
    std::list<Block> free_blocks;  // most recently released first
    size_t cached_bytes = 0;
    // rnnkit.engine.workspace sets it from RNNKIT_WORKSPACE_CACHE_MB before the first kernel
    // call; this is its default.
    size_t limit_bytes = (size_t)512 << 20;
    uint64_t hits = 0, misses = 0;

    void evict_to(size_t bytes) {  // caller holds `lock`
        while (cached_bytes > bytes && !free_blocks.empty()) {
            Block oldest = free_blocks.back();
            free_blocks.pop_back();
            cached_bytes -= oldest.bytes;
            deallocate(oldest.data);
        }
    }
};

Cache* g_cache = new Cache();

}  // namespace

void* rnnkit::workspace_acquire(size_t requested, size_t* capacity) {
    const size_t bytes = requested > 0 ? (requested + kAlignment - 1) / kAlignment * kAlignment
                                       : kAlignment;
    {
        std::lock_guard<std::mutex> guard(g_cache->lock);
        auto best = g_cache->free_blocks.end();
        for (auto it = g_cache->free_blocks.begin(); it != g_cache->free_blocks.end(); ++it)
            if (it->bytes >= bytes && it->bytes / 2 <= bytes &&
                (best == g_cache->free_blocks.end() || it->bytes < best->bytes))
                best = it;
        if (best != g_cache->free_blocks.end()) {
            void* data = best->data;
            *capacity = best->bytes;
            g_cache->cached_bytes -= best->bytes;
            g_cache->free_blocks.erase(best);
            g_cache->hits++;
            return data;
        }
        g_cache->misses++;
    }
    *capacity = bytes;
    return allocate(bytes);
}

void rnnkit::workspace_release(void* data, size_t bytes) {
    std::lock_guard<std::mutex> guard(g_cache->lock);
    if (bytes > g_cache->limit_bytes) {
        deallocate(data);
        return;
    }
    g_cache->evict_to(g_cache->limit_bytes - bytes);
    g_cache->free_blocks.push_front({data, bytes});
    g_cache->cached_bytes += bytes;
}

namespace {

#if defined(__unix__) || defined(__APPLE__)
// A child forked while another thread held the lock would wait for it forever: it starts with
// a fresh lock (the cached blocks are its own copy-on-write memory and stay valid).
void after_fork_in_child() { new (&g_cache->lock) std::mutex(); }
const int g_fork_handler = pthread_atfork(nullptr, nullptr, after_fork_in_child);
#endif

bool read_sizes(PyObject* shape, int64_t* sizes, int* ndim, size_t* numel) {
    if (!PyTuple_Check(shape) || PyTuple_GET_SIZE(shape) > kMaxDims) {
        PyErr_Format(PyExc_TypeError,
                     "rnnkit.engine: workspace: shape: expected a tuple of at most %d ints",
                     kMaxDims);
        return false;
    }
    *ndim = (int)PyTuple_GET_SIZE(shape);
    *numel = 1;
    for (int i = 0; i < *ndim; i++) {
        long long size = PyLong_AsLongLong(PyTuple_GET_ITEM(shape, i));
        if (size == -1 && PyErr_Occurred()) return false;
        if (size < 0 || (size > 0 && *numel > (size_t)INT64_MAX / 8 / (size_t)size)) {
            PyErr_Format(PyExc_ValueError,
                         "rnnkit.engine: workspace: shape: expected sizes >= 0 whose product "
                         "fits in memory, got %lld at dimension %d", size, i);
            return false;
        }
        sizes[i] = size;
        *numel *= (size_t)size;
    }
    return true;
}

}  // namespace

// workspace(shape, double, zero): a new contiguous float32 (float64 when `double`) CPU tensor
// of `shape` on a cached block; zero-filled when `zero`.
PyObject* rnnkit_py_workspace(PyObject*, PyObject* args) {
    PyObject* shape;
    int is_double, zero;
    if (!PyArg_ParseTuple(args, "O!pp", &PyTuple_Type, &shape, &is_double, &zero)) return nullptr;
    int64_t sizes[kMaxDims];
    int ndim;
    size_t numel;
    if (!read_sizes(shape, sizes, &ndim, &numel)) return nullptr;
    const size_t item = is_double ? sizeof(double) : sizeof(float);
    size_t capacity;
    void* data = rnnkit::workspace_acquire(numel * item, &capacity);
    if (data == nullptr) return PyErr_NoMemory();
    if (zero) std::memset(data, 0, numel * item);
    at::Tensor tensor;
    try {
        tensor = at::from_blob(
            data, c10::IntArrayRef(sizes, ndim),
            [capacity](void* released) { rnnkit::workspace_release(released, capacity); },
            at::TensorOptions().dtype(is_double ? at::kDouble : at::kFloat));
    } catch (const std::exception& error) {
        rnnkit::workspace_release(data, capacity);
        PyErr_SetString(PyExc_RuntimeError, error.what());
        return nullptr;
    }
    return THPVariable_Wrap(std::move(tensor));
}

// workspace_limit(bytes): keep at most `bytes` of released blocks (0: none), releasing the
// least recently used beyond it.
PyObject* rnnkit_py_workspace_limit(PyObject*, PyObject* args) {
    unsigned long long bytes;
    if (!PyArg_ParseTuple(args, "K", &bytes)) return nullptr;
    std::lock_guard<std::mutex> guard(g_cache->lock);
    g_cache->limit_bytes = (size_t)bytes;
    g_cache->evict_to(g_cache->limit_bytes);
    Py_RETURN_NONE;
}

// workspace_stats() -> (cached bytes, limit bytes, cached blocks, hits, misses).
PyObject* rnnkit_py_workspace_stats(PyObject*, PyObject*) {
    std::lock_guard<std::mutex> guard(g_cache->lock);
    return Py_BuildValue("(KKnKK)", (unsigned long long)g_cache->cached_bytes,
                         (unsigned long long)g_cache->limit_bytes,
                         (Py_ssize_t)g_cache->free_blocks.size(),
                         (unsigned long long)g_cache->hits, (unsigned long long)g_cache->misses);
}
