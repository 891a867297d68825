// Python entry points, run-time ISA dispatch and the thread pool of rnnkit's native
// engine. The kernels themselves live in kernels_impl.h (one copy per ISA).
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#include <unistd.h>  // sysconf
#define RNNKIT_HAVE_DLSYM 1
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RNNKIT_PAUSE() _mm_pause()
#else
#define RNNKIT_PAUSE() ((void)0)
#endif

#include "boundary.h"
#include "engine.h"

namespace rnnkit {

// ---------------------------------------------------------------- thread pool
// Workers spin briefly for the next job (the time loop issues one job per call) and then
// sleep, so an idle engine never competes with torch's own threads for the cores.
namespace {

constexpr int kSpinBeforeSleep = 20000;
// Barrier waits on an idle machine take well under 1000 pauses; beyond that the peer is
// probably descheduled, so give the core away instead of spinning through its time slice.
constexpr int kSpinBeforeYield = 1000;

struct Pool {
    std::vector<std::thread> workers;
    std::mutex run_mutex;  // one parallel_run at a time (callers release the GIL)
    std::mutex sleep_mutex;
    std::condition_variable wake;
    std::atomic<uint64_t> generation{0};
    std::atomic<int> pending{0};
    std::atomic<int> sleepers{0};
    std::atomic<int> barrier_count{0};
    std::atomic<int> barrier_sense{0};
    ParallelFn fn = nullptr;
    void* ctx = nullptr;
    int nthreads = 1;
};

Pool& pool() {
    static Pool* p = new Pool();  // never destroyed: workers are detached at exit
    return *p;
}

thread_local int tl_sense = 0;
thread_local int tl_nthreads = 1;

void spin_pause(int& spins) {
    if (++spins < kSpinBeforeYield)
        RNNKIT_PAUSE();
    else
        std::this_thread::yield();
}

void run_share(Pool& p, int tid) {
    tl_sense = p.barrier_sense.load(std::memory_order_acquire);
    tl_nthreads = p.nthreads;
    p.fn(p.ctx, tid, p.nthreads);
    tl_nthreads = 1;
}

void worker_main(int tid) {
    Pool& p = pool();
    uint64_t seen = 0;
    for (;;) {
        int spins = 0;
        uint64_t gen;
        while ((gen = p.generation.load(std::memory_order_acquire)) == seen) {
            if (spins++ < kSpinBeforeSleep) {
                RNNKIT_PAUSE();
                continue;
            }
            std::unique_lock<std::mutex> lock(p.sleep_mutex);
            p.sleepers.fetch_add(1);
            p.wake.wait(lock, [&] { return p.generation.load(std::memory_order_acquire) != seen; });
            p.sleepers.fetch_sub(1);
        }
        seen = gen;
        if (tid < p.nthreads) {
            run_share(p, tid);
            p.pending.fetch_sub(1, std::memory_order_acq_rel);
        }
    }
}

// ---------------------------------------------------------------- torch's OpenMP team
// torch runs its own operators on an OpenMP team whose threads keep spinning for a while
// after each operator. A second pool of ours would then fight them for the same cores (a
// barrier can wait a whole scheduler slice), so when torch's OpenMP runtime is loaded in the
// process we borrow its team instead: the threads are hot, and never oversubscribed.
typedef void (*GompParallel)(void (*)(void*), void*, unsigned, unsigned);
typedef int (*OmpQuery)();

struct OpenMP {
    GompParallel parallel = nullptr;
    OmpQuery thread_num = nullptr;
    OmpQuery num_threads = nullptr;
};
OpenMP g_openmp;
bool g_use_openmp = false;

struct Region {
    ParallelFn fn;
    void* ctx;
};

void openmp_share(void* data) {
    const Region* region = (const Region*)data;
    Pool& p = pool();
    const int nt = g_openmp.num_threads();
    tl_sense = p.barrier_sense.load(std::memory_order_acquire);
    tl_nthreads = nt;
    region->fn(region->ctx, g_openmp.thread_num(), nt);
    tl_nthreads = 1;
}

}  // namespace

bool resolve_openmp() {
#ifdef RNNKIT_HAVE_DLSYM
    g_openmp.parallel = (GompParallel)dlsym(RTLD_DEFAULT, "GOMP_parallel");
    g_openmp.thread_num = (OmpQuery)dlsym(RTLD_DEFAULT, "omp_get_thread_num");
    g_openmp.num_threads = (OmpQuery)dlsym(RTLD_DEFAULT, "omp_get_num_threads");
#endif
    return g_openmp.parallel && g_openmp.thread_num && g_openmp.num_threads;
}

bool set_thread_backend(const char* name) {
    if (std::strcmp(name, "pool") == 0) {
        g_use_openmp = false;
        return true;
    }
    if (std::strcmp(name, "openmp") == 0 && resolve_openmp()) {
        g_use_openmp = true;
        return true;
    }
    return false;
}

const char* thread_backend() { return g_use_openmp ? "openmp" : "pool"; }

namespace {

void run_locked(Pool& p, int nthreads, ParallelFn fn, void* ctx);

}  // namespace

void parallel_run(int nthreads, ParallelFn fn, void* ctx) {
    if (nthreads <= 1) {
        tl_nthreads = 1;
        fn(ctx, 0, 1);
        return;
    }
    Pool& p = pool();
    std::lock_guard<std::mutex> guard(p.run_mutex);  // the barrier state is shared
    run_locked(p, nthreads, fn, ctx);
}

namespace {
std::atomic<int> g_calls{0};
}  // namespace

void calls_enter() { g_calls.fetch_add(1, std::memory_order_relaxed); }
void calls_leave() { g_calls.fetch_sub(1, std::memory_order_relaxed); }
int calls_in_flight() { return g_calls.load(std::memory_order_relaxed); }

void parallel_run_or_alone(int nthreads, ParallelFn fn, void* ctx) {
    Pool& p = pool();
    std::unique_lock<std::mutex> guard(p.run_mutex, std::try_to_lock);
    if (nthreads <= 1 || !guard.owns_lock()) {
        tl_nthreads = 1;
        fn(ctx, 0, 1);
        return;
    }
    run_locked(p, nthreads, fn, ctx);
}

namespace {

// parallel_run's work, with run_mutex held by the caller.
void run_locked(Pool& p, int nthreads, ParallelFn fn, void* ctx) {
    if (g_use_openmp) {
        // The team may be smaller than asked (e.g. nested in a parallel region): the
        // kernels split their work by the team size they are given.
        Region region = {fn, ctx};
        g_openmp.parallel(&openmp_share, &region, (unsigned)nthreads, 0);
        return;
    }
    while ((int)p.workers.size() < nthreads - 1) {
        p.workers.emplace_back(worker_main, (int)p.workers.size() + 1);
        p.workers.back().detach();
    }
    p.fn = fn;
    p.ctx = ctx;
    p.nthreads = nthreads;
    p.pending.store(nthreads - 1, std::memory_order_release);
    {
        std::lock_guard<std::mutex> lock(p.sleep_mutex);
        p.generation.fetch_add(1, std::memory_order_acq_rel);
    }
    if (p.sleepers.load() > 0) p.wake.notify_all();
    run_share(p, 0);
    int spins = 0;
    while (p.pending.load(std::memory_order_acquire) > 0) spin_pause(spins);
}

}  // namespace

void parallel_barrier() {
    if (tl_nthreads <= 1) return;
    Pool& p = pool();
    tl_sense = !tl_sense;
    if (p.barrier_count.fetch_add(1, std::memory_order_acq_rel) + 1 == tl_nthreads) {
        p.barrier_count.store(0, std::memory_order_relaxed);
        p.barrier_sense.store(tl_sense, std::memory_order_release);
    } else {
        int spins = 0;
        while (p.barrier_sense.load(std::memory_order_acquire) != tl_sense) spin_pause(spins);
    }
}

void wait_pause(int& spins) { spin_pause(spins); }

namespace {
long detected_l2_bytes() {
#ifdef _SC_LEVEL2_CACHE_SIZE
    const long bytes = sysconf(_SC_LEVEL2_CACHE_SIZE);
    if (bytes > 0) return bytes;
#endif
    return 1L << 20;
}
std::atomic<long> g_l2_bytes{detected_l2_bytes()};
}  // namespace

long l2_bytes() { return g_l2_bytes.load(std::memory_order_relaxed); }

void set_l2_bytes(long bytes) { g_l2_bytes.store(bytes > 0 ? bytes : detected_l2_bytes()); }

void* thread_scratch(size_t bytes) {
    static thread_local std::vector<unsigned char> buffer;
    if (buffer.size() < bytes + 64) buffer.resize(bytes + 64);
    uintptr_t address = (uintptr_t)buffer.data();
    return (void*)((address + 63) & ~(uintptr_t)63);
}

// ---------------------------------------------------------------- ISA dispatch
namespace {

const KernelTable* best_table() {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (kernels_avx512() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
        return kernels_avx512();
    if (kernels_avx2() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return kernels_avx2();
#endif
    return kernels_generic();
}

const KernelTable* g_table = nullptr;

std::vector<const KernelTable*> supported_tables() {
    std::vector<const KernelTable*> out{kernels_generic()};
    const KernelTable* best = best_table();
    if (best == kernels_avx2() || best == kernels_avx512()) out.push_back(kernels_avx2());
    if (best == kernels_avx512()) out.push_back(kernels_avx512());
    return out;
}

}  // namespace
}  // namespace rnnkit

// ---------------------------------------------------------------- Python module
using rnnkit::g_table;

static PyObject* py_isa(PyObject*, PyObject*) { return PyUnicode_FromString(g_table->name); }

// The CPU's vendor: torch's BLAS (MKL) chooses its kernels by it (see rnnkit/engine/gemm.py).
static PyObject* py_cpu_vendor(PyObject*, PyObject*) {
    const char* vendor = "other";
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_is("intel"))
        vendor = "intel";
    else if (__builtin_cpu_is("amd"))
        vendor = "amd";
#endif
    return PyUnicode_FromString(vendor);
}

static PyObject* py_supported_isas(PyObject*, PyObject*) {
    auto tables = rnnkit::supported_tables();
    PyObject* list = PyList_New((Py_ssize_t)tables.size());
    if (!list) return nullptr;
    for (size_t i = 0; i < tables.size(); i++)
        PyList_SET_ITEM(list, (Py_ssize_t)i, PyUnicode_FromString(tables[i]->name));
    return list;
}

static PyObject* py_l2_bytes(PyObject*, PyObject*) { return PyLong_FromLong(rnnkit::l2_bytes()); }

static PyObject* py_set_l2_bytes(PyObject*, PyObject* args) {
    long bytes;
    if (!PyArg_ParseTuple(args, "l", &bytes)) return nullptr;
    if (bytes < 0) {
        PyErr_Format(PyExc_ValueError, "bytes: expected 0 (the detected size) or more, got %ld",
                     bytes);
        return nullptr;
    }
    rnnkit::set_l2_bytes(bytes);
    Py_RETURN_NONE;
}

static PyObject* py_set_isa(PyObject*, PyObject* args) {
    const char* name;
    if (!PyArg_ParseTuple(args, "s", &name)) return nullptr;
    for (const rnnkit::KernelTable* t : rnnkit::supported_tables()) {
        if (std::strcmp(t->name, name) == 0) {
            g_table = t;
            Py_RETURN_NONE;
        }
    }
    PyErr_Format(PyExc_ValueError, "isa: expected one of the CPU's supported ISAs, got '%s'", name);
    return nullptr;
}

// The kernels of the selected ISA, run without the GIL (the boundary has checked the args).
namespace rnnkit {
void run_forward(bool is_double, const ForwardArgs& args) {
    const KernelTable* table = g_table;
    Py_BEGIN_ALLOW_THREADS
    if (is_double)
        table->forward_f64(args);
    else
        table->forward_f32(args);
    Py_END_ALLOW_THREADS
}

void run_backward(bool is_double, const BackwardArgs& args) {
    const KernelTable* table = g_table;
    Py_BEGIN_ALLOW_THREADS
    if (is_double)
        table->backward_f64(args);
    else
        table->backward_f32(args);
    Py_END_ALLOW_THREADS
}

void run_gemm(bool is_double, const GemmArgs& args) {
    const KernelTable* table = g_table;
    Py_BEGIN_ALLOW_THREADS
    if (is_double)
        table->gemm_f64(args);
    else
        table->gemm_f32(args);
    Py_END_ALLOW_THREADS
}

// A streaming step is a few microseconds: releasing the GIL would cost more than it frees.
void run_stream(bool is_double, const StreamArgs& args) {
    if (is_double)
        g_table->stream_f64(args);
    else
        g_table->stream_f32(args);
}
}  // namespace rnnkit

static PyObject* py_thread_backend(PyObject*, PyObject*) {
    return PyUnicode_FromString(rnnkit::thread_backend());
}

static PyObject* py_set_thread_backend(PyObject*, PyObject* args) {
    const char* name;
    if (!PyArg_ParseTuple(args, "s", &name)) return nullptr;
    if (!rnnkit::set_thread_backend(name)) {
        PyErr_Format(PyExc_ValueError,
                     "thread backend: expected 'pool' or 'openmp' (when torch's OpenMP runtime "
                     "is loaded), got '%s'", name);
        return nullptr;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"thread_backend", py_thread_backend, METH_NOARGS,
     "Where multi-threaded kernels run: 'openmp' (torch's team) or 'pool' (rnnkit's own)."},
    {"set_thread_backend", py_set_thread_backend, METH_VARARGS,
     "Choose 'openmp' or 'pool' (testing and benchmarking)."},
    {"stream", (PyCFunction)(void (*)(void))rnnkit_py_stream, METH_FASTCALL,
     "Stacked layers advanced one step; every tensor checked (internal)."},
    {"isa", py_isa, METH_NOARGS, "Name of the instruction set the kernels currently use."},
    {"cpu_vendor", py_cpu_vendor, METH_NOARGS, "'intel', 'amd' or 'other'."},
    {"supported_isas", py_supported_isas, METH_NOARGS, "Instruction sets usable on this CPU."},
    {"set_isa", py_set_isa, METH_VARARGS, "Select the kernels' instruction set (for testing)."},
    {"l2_bytes", py_l2_bytes, METH_NOARGS, "Bytes of one core's L2 cache the kernels assume."},
    {"set_l2_bytes", py_set_l2_bytes, METH_VARARGS,
     "Set the L2 size the kernels assume; 0: the detected one (for testing)."},
    {"forward", (PyCFunction)(void (*)(void))rnnkit_py_forward, METH_FASTCALL | METH_KEYWORDS,
     "Forward recurrence over named, checked tensors (internal)."},
    {"infer", (PyCFunction)(void (*)(void))rnnkit_py_infer, METH_FASTCALL | METH_KEYWORDS,
     "Whole-sequence inference of one layer-direction, outputs allocated (internal)."},
    {"panels_size", rnnkit_py_panels_size, METH_VARARGS,
     "Elements of infer's panels for one layer-direction (internal)."},
    {"gemm", (PyCFunction)(void (*)(void))rnnkit_py_gemm, METH_FASTCALL | METH_KEYWORDS,
     "a @ b on the packed tile, a new (M, N) tensor; every tensor checked (internal)."},
    {"backward", (PyCFunction)(void (*)(void))rnnkit_py_backward, METH_FASTCALL | METH_KEYWORDS,
     "Backward recurrence over named, checked tensors (internal)."},
    {"workspace", rnnkit_py_workspace, METH_VARARGS,
     "workspace(shape, double, zero): a tensor on a cached block (internal)."},
    {"workspace_limit", rnnkit_py_workspace_limit, METH_VARARGS,
     "Bytes of released blocks the workspace cache keeps (0: none)."},
    {"workspace_stats", rnnkit_py_workspace_stats, METH_NOARGS,
     "(cached bytes, limit bytes, cached blocks, hits, misses) of the workspace cache."},
    {nullptr, nullptr, 0, nullptr},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native", "rnnkit native CPU recurrence kernels.", -1, methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    g_table = rnnkit::best_table();
    const char* pool_choice = std::getenv("RNNKIT_ENGINE_THREADS");
    if (!rnnkit::set_thread_backend(pool_choice && *pool_choice ? pool_choice : "openmp"))
        rnnkit::set_thread_backend("pool");
    const char* forced = std::getenv("RNNKIT_ENGINE_ISA");
    if (forced && *forced) {
        for (const rnnkit::KernelTable* t : rnnkit::supported_tables())
            if (std::strcmp(t->name, forced) == 0) g_table = t;
    }
    PyObject* self = PyModule_Create(&module);
    if (self == nullptr) return nullptr;
    PyObject* streamer = rnnkit_streamer_type();
    if (streamer == nullptr || PyModule_AddObject(self, "StreamerBase", streamer) < 0) {
        Py_XDECREF(streamer);
        Py_DECREF(self);
        return nullptr;
    }
    // The int8 kernels share this extension's thread pool: their module is an attribute.
    PyObject* int8 = rnnkit_int8_module();
    if (int8 == nullptr || PyModule_AddObject(self, "int8", int8) < 0) {
        Py_XDECREF(int8);
        Py_DECREF(self);
        return nullptr;
    }
    return self;
}
