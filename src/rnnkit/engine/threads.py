"""How many threads a recurrence uses: all of torch's for big steps, one for tiny ones.

The kernels run their threads on torch's own OpenMP team when torch's OpenMP runtime is
loaded (``_native.thread_backend() == 'openmp'``, the usual case), so they do not compete
with torch's threads for cores; a step then pays for a second thread once it has a few
microseconds of work and enough gate units to split (``python bench/threads.py``, results in
``bench/results/threads.md``).
"""

from __future__ import annotations

import torch

from rnnkit.engine.checks import GATES

# Multiply-adds per time step each thread must get before a second thread pays off
# (a barrier per step costs ~0.3 us; bench/results/threads.md).
MIN_WORK_PER_THREAD = 8 * 1024
# Gate units per thread below which the split leaves each thread too few vector columns.
MIN_UNITS_PER_THREAD = 128


def choose_threads(mode: str, batch: int, hidden: int, out_size: int) -> int:
    """Thread count for one layer-direction: ``torch.get_num_threads()`` capped by work size."""
    units = GATES[mode] * hidden
    work = batch * units * out_size
    useful = max(1, min(work // MIN_WORK_PER_THREAD, units // MIN_UNITS_PER_THREAD))
    return int(max(1, min(torch.get_num_threads(), useful, hidden)))
