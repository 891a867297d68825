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

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RNNKIT_PAUSE() _mm_pause()
#else
#define RNNKIT_PAUSE() ((void)0)
#endif

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

}  // namespace

void parallel_run(int nthreads, ParallelFn fn, void* ctx) {
    if (nthreads <= 1) {
        tl_nthreads = 1;
        fn(ctx, 0, 1);
        return;
    }
    Pool& p = pool();
    std::lock_guard<std::mutex> guard(p.run_mutex);
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

static PyObject* py_supported_isas(PyObject*, PyObject*) {
    auto tables = rnnkit::supported_tables();
    PyObject* list = PyList_New((Py_ssize_t)tables.size());
    if (!list) return nullptr;
    for (size_t i = 0; i < tables.size(); i++)
        PyList_SET_ITEM(list, (Py_ssize_t)i, PyUnicode_FromString(tables[i]->name));
    return list;
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

#define RNNKIT_PTR(field, type) args.field = (type)(uintptr_t)ptr[i++]

static PyObject* py_forward(PyObject*, PyObject* pyargs) {
    rnnkit::ForwardArgs args;
    int is_double;
    unsigned long long ptr[16];
    if (!PyArg_ParseTuple(pyargs, "iiiiiiiiiiKKKKKKKKKKKKKKK", &is_double, &args.mode, &args.T,
                          &args.B, &args.H, &args.Hout, &args.reverse, &args.save, &args.threads,
                          &args.transposed, &ptr[0], &ptr[1], &ptr[2], &ptr[3], &ptr[4], &ptr[5],
                          &ptr[6], &ptr[7], &ptr[8], &ptr[9], &ptr[10], &ptr[11], &ptr[12], &ptr[13],
                          &ptr[14]))
        return nullptr;
    int i = 0;
    RNNKIT_PTR(xg, const void*);
    RNNKIT_PTR(bx, const void*);
    RNNKIT_PTR(h0, const void*);
    RNNKIT_PTR(c0, const void*);
    RNNKIT_PTR(whhT, const void*);
    RNNKIT_PTR(bhn, const void*);
    RNNKIT_PTR(whrT, const void*);
    RNNKIT_PTR(lengths, const int64_t*);
    RNNKIT_PTR(y, void*);
    RNNKIT_PTR(hn, void*);
    RNNKIT_PTR(cn, void*);
    RNNKIT_PTR(gates, void*);
    RNNKIT_PTR(aux, void*);
    RNNKIT_PTR(m, void*);
    RNNKIT_PTR(work, void*);
    if (args.threads < 1) args.threads = 1;
    const rnnkit::KernelTable* table = g_table;
    Py_BEGIN_ALLOW_THREADS
    if (is_double)
        table->forward_f64(args);
    else
        table->forward_f32(args);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject* py_backward(PyObject*, PyObject* pyargs) {
    rnnkit::BackwardArgs args;
    int is_double;
    unsigned long long ptr[20];
    if (!PyArg_ParseTuple(pyargs, "iiiiiiiiKKKKKKKKKKKKKKKKK", &is_double, &args.mode, &args.T,
                          &args.B, &args.H, &args.Hout, &args.reverse, &args.threads, &ptr[0],
                          &ptr[1], &ptr[2], &ptr[3], &ptr[4], &ptr[5], &ptr[6], &ptr[7], &ptr[8],
                          &ptr[9], &ptr[10], &ptr[11], &ptr[12], &ptr[13], &ptr[14], &ptr[15],
                          &ptr[16]))
        return nullptr;
    int i = 0;
    RNNKIT_PTR(whh, const void*);
    RNNKIT_PTR(whr, const void*);
    RNNKIT_PTR(dy, const void*);
    RNNKIT_PTR(dhn, const void*);
    RNNKIT_PTR(dcn, const void*);
    RNNKIT_PTR(y, const void*);
    RNNKIT_PTR(h0, const void*);
    RNNKIT_PTR(c0, const void*);
    RNNKIT_PTR(gates, const void*);
    RNNKIT_PTR(aux, const void*);
    RNNKIT_PTR(lengths, const int64_t*);
    RNNKIT_PTR(dgx, void*);
    RNNKIT_PTR(dgh, void*);
    RNNKIT_PTR(dh0, void*);
    RNNKIT_PTR(dc0, void*);
    RNNKIT_PTR(dhtot, void*);
    RNNKIT_PTR(work, void*);
    if (args.threads < 1) args.threads = 1;
    const rnnkit::KernelTable* table = g_table;
    Py_BEGIN_ALLOW_THREADS
    if (is_double)
        table->backward_f64(args);
    else
        table->backward_f32(args);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject* py_step(PyObject*, PyObject* pyargs) {
    rnnkit::StepArgs args;
    int is_double;
    unsigned long long ptr[11];
    if (!PyArg_ParseTuple(pyargs, "iiiiiiKKKKKKKKKKK", &is_double, &args.mode, &args.B, &args.I,
                          &args.H, &args.Hout, &ptr[0], &ptr[1], &ptr[2], &ptr[3], &ptr[4],
                          &ptr[5], &ptr[6], &ptr[7], &ptr[8], &ptr[9], &ptr[10]))
        return nullptr;
    int i = 0;
    RNNKIT_PTR(x, const void*);
    RNNKIT_PTR(h, const void*);
    RNNKIT_PTR(c, const void*);
    RNNKIT_PTR(wih, const void*);
    RNNKIT_PTR(whh, const void*);
    RNNKIT_PTR(bih, const void*);
    RNNKIT_PTR(bhh, const void*);
    RNNKIT_PTR(whr, const void*);
    RNNKIT_PTR(hn, void*);
    RNNKIT_PTR(cn, void*);
    RNNKIT_PTR(work, void*);
    const rnnkit::KernelTable* table = g_table;
    // Single-step work is microseconds: keeping the GIL is cheaper than releasing it.
    if (is_double)
        table->step_f64(args);
    else
        table->step_f32(args);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"step", py_step, METH_VARARGS, "One time step over raw pointers (internal)."},
    {"isa", py_isa, METH_NOARGS, "Name of the instruction set the kernels currently use."},
    {"supported_isas", py_supported_isas, METH_NOARGS, "Instruction sets usable on this CPU."},
    {"set_isa", py_set_isa, METH_VARARGS, "Select the kernels' instruction set (for testing)."},
    {"forward", py_forward, METH_VARARGS, "Forward recurrence over raw pointers (internal)."},
    {"backward", py_backward, METH_VARARGS, "Backward recurrence over raw pointers (internal)."},
    {nullptr, nullptr, 0, nullptr},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native", "rnnkit native CPU recurrence kernels.", -1, methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    g_table = rnnkit::best_table();
    const char* forced = std::getenv("RNNKIT_ENGINE_ISA");
    if (forced && *forced) {
        for (const rnnkit::KernelTable* t : rnnkit::supported_tables())
            if (std::strcmp(t->name, forced) == 0) g_table = t;
    }
    return PyModule_Create(&module);
}
