"""How many threads a recurrence uses: all of torch's for big steps, one for tiny ones."""

from __future__ import annotations

import torch

from rnnkit.engine.checks import GATES

# Multiply-adds per time step each thread must get before a second thread pays off. A
# barrier costs ~0.3 us on an idle machine, but when the cores are oversubscribed (other
# processes, DataLoader workers) a barrier can wait a whole scheduler time slice for a
# descheduled peer, so threads are only used where a step is long (>= ~10 us).
MIN_WORK_PER_THREAD = 512 * 1024


def choose_threads(mode: str, batch: int, hidden: int, out_size: int) -> int:
    """Thread count for one layer-direction: ``torch.get_num_threads()`` capped by work size."""
    work = batch * GATES[mode] * hidden * out_size
    useful = max(1, work // MIN_WORK_PER_THREAD)
    return int(max(1, min(torch.get_num_threads(), useful, hidden)))
