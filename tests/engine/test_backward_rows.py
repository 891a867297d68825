"""BPTT split over rows (enough rows per thread, small packed weights, no lengths) gives the
same bits as one thread, at any alignment, with an even or uneven share of rows."""

from __future__ import annotations

import pytest
import torch

from .test_determinism import CASES, run

# 16 rows per thread or more at 2 and 3 threads (47: 2 threads only, an uneven split), and
# packed weights of a few tens of KB: the backward kernel takes whole rows per thread.
HIDDEN = 64


@pytest.mark.parametrize(("mode", "proj"), CASES)
@pytest.mark.parametrize("batch", [47, 48])
def test_row_split_same_bits_as_one_thread(mode, proj, batch, isa, monkeypatch):
    proj = min(proj, HIDDEN - 1)
    reference = run(mode, proj, None, 0, 1, monkeypatch, batch=batch, hidden=HIDDEN)
    for offset, threads in ((0, 2), (0, 3), (3, 2)):
        got = run(mode, proj, None, offset, threads, monkeypatch, batch=batch, hidden=HIDDEN)
        for index, (a, b) in enumerate(zip(reference, got, strict=True)):
            assert torch.equal(a, b), f"result {index}: offset {offset}, {threads} threads"
