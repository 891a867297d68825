"""How many threads a recurrence uses: all of torch's for big steps, one for tiny ones."""

from __future__ import annotations

import torch

from rnnkit.engine.checks import GATES

# Multiply-adds per time step below which a second thread costs more (one barrier per step,
# ~0.3 us here) than it saves. Measured with bench/layers.py on a 2-core Xeon.
MIN_WORK_PER_THREAD = 48 * 1024


def choose_threads(mode: str, batch: int, hidden: int, out_size: int) -> int:
    """Thread count for one layer-direction: ``torch.get_num_threads()`` capped by work size."""
    work = batch * GATES[mode] * hidden * out_size
    useful = max(1, work // MIN_WORK_PER_THREAD)
    return int(max(1, min(torch.get_num_threads(), useful, hidden)))
