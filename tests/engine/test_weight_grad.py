"""The recurrent weight gradient sums ``dgh[t]^T h_prev[t]`` over the states each step read."""

from __future__ import annotations

import pytest
import torch

from rnnkit.engine import ops


def previous_state(y, h0, lengths, reverse, t, b):
    """The state row ``b`` read at step ``t`` (``h0`` at its first step)."""
    length = y.shape[0] if lengths is None else int(lengths[b])
    first = length - 1 if reverse else 0
    if t == first:
        return h0[b]
    return y[t + 1, b] if reverse else y[t - 1, b]


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, [5, 5, 3, 1], [5, 4, 2, 0]])
@pytest.mark.parametrize("seq_len", [1, 5])
def test_matches_the_sum_over_steps(reverse, lengths, seq_len):
    if lengths is not None and seq_len == 1:
        lengths = [min(n, 1) for n in lengths]
    generator = torch.Generator().manual_seed(2)
    batch, width, out = 4, 12, 3
    lengths = None if lengths is None else torch.tensor(lengths)
    dgh = torch.randn(seq_len, batch, width, dtype=torch.float64, generator=generator)
    y = torch.randn(seq_len, batch, out, dtype=torch.float64, generator=generator)
    h0 = torch.randn(batch, out, dtype=torch.float64, generator=generator)
    if lengths is not None:  # the kernel leaves zero gate gradients at padded steps
        steps = torch.arange(seq_len).unsqueeze(1)
        dgh = dgh * (steps < lengths).unsqueeze(2)
    expected = torch.zeros(width, out, dtype=torch.float64)
    for t in range(seq_len):
        for b in range(batch):
            if lengths is None or t < lengths[b]:
                expected += torch.outer(dgh[t, b], previous_state(y, h0, lengths, reverse, t, b))
    plan = ops._Plan("GRU", out, out, lengths, reverse, 1)
    torch.testing.assert_close(ops._recurrent_weight_grad(plan, dgh, y, h0), expected)
