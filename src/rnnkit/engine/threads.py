"""How many threads a recurrence uses: all of torch's for big steps, one for tiny ones.

The kernels run their threads on torch's own OpenMP team when torch's OpenMP runtime is
loaded (``_native.thread_backend() == 'openmp'``, the usual case), so they do not compete
with torch's threads for cores; a step then pays for a second thread once it has a few
microseconds of work and enough gate units to split (``python bench/threads.py``, results in
``bench/results/threads.md``), or enough rows: with at least :data:`ROWS_PER_THREAD` rows per
thread the kernels give each thread whole rows and every unit (no barrier per step), so small
hidden sizes gain from a second thread too (GRU H=64 and RNN H=64-128 at batch 32-128, 2
threads against 1: inference 1.31-1.67x, training 1.22-1.46x on the project's 2-core machine
with no other job; ``python bench/thread_count_ab.py``). A whole-sequence inference call kept on
one thread can still take a second one to project its input ahead of the recurrence
(:func:`pipelines`).
"""

from __future__ import annotations

import torch

from rnnkit.engine.checks import GATES

# Multiply-adds per time step each thread must get before a second thread pays off
# (a barrier per step costs ~0.3 us; bench/results/threads.md). LSTM H=64 at batch 1 (16K per
# step) lost on two threads: 0.85-0.95x of one, T=100, with the input projected first
# (python bench/project_first_ab.py threads).
MIN_WORK_PER_THREAD = 12 * 1024
# Gate units per thread below which the split leaves each thread too few vector columns.
MIN_UNITS_PER_THREAD = 128
# Rows per thread from which the kernels split whole rows instead of units (the C++ kernels'
# kForwardRowsPerThread / kRowsPerThread).
ROWS_PER_THREAD = 16
# Multiply-adds of a whole-sequence input projection from which a call too small to split
# runs it on a second thread, a chunk of steps ahead of the recurrence (ForwardArgs::pipeline).
# Below, the second thread's start and its own copy of the packed weights cost more than it
# saves: batch 1, 2 threads against 1, the break-even was 10-16 steps at GRU/LSTM H=64
# (150-200K multiply-adds), 40 at RNN H=64 (python bench/pipeline_ab.py).
PIPELINE_MIN_MACS = 256 * 1024


def choose_threads(mode: str, batch: int, hidden: int, out_size: int,
                   whole_rows: bool = True) -> int:
    """Thread count for one layer-direction: ``torch.get_num_threads()`` capped by work size.

    ``whole_rows``: both directions of the computation may split rows between threads (false
    when training with lengths or packed input: BPTT then splits units)."""
    units = GATES[mode] * hidden
    work = batch * units * out_size
    splittable = units // MIN_UNITS_PER_THREAD
    if whole_rows:
        splittable = max(splittable, batch // ROWS_PER_THREAD)
    useful = max(1, min(work // MIN_WORK_PER_THREAD, splittable))
    return int(max(1, min(torch.get_num_threads(), useful, hidden)))


def pipelines(mode: str, steps: int, batch: int, hidden: int, input_size: int) -> bool:
    """Whether a whole-sequence inference call that :func:`choose_threads` keeps on one
    thread projects its input on a second one instead, a chunk of steps ahead of the
    recurrence (the bits are one thread's): with torch allowed two threads or more and enough
    projection work. The kernel still runs it on one thread while another call is under way
    in the process (concurrent callers keep a core each)."""
    work = steps * batch * GATES[mode] * hidden * input_size
    return work >= PIPELINE_MIN_MACS and torch.get_num_threads() >= 2
