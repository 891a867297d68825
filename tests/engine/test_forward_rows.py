"""Forward recurrence split over rows (enough rows per thread, packed weights within the
budget): the same bits as one thread, for training and inference, every mode, proj_size,
both directions, lengths (shares balanced by active steps) and misaligned operands; parity
with torch.nn while split."""

from __future__ import annotations

import pytest
import torch

from rnnkit.engine import ops

from .reference import compare, direction_weights, make_module, torch_direction
from .test_determinism import CASES, misaligned, output_weights

SEQ_LEN, INPUT, HIDDEN = 7, 19, 64


def lengths_for(kind: str | None, batch: int) -> torch.Tensor | None:
    """``spread``: unsorted, zeros and full rows among them; ``one_long``: one row holds most
    of the active steps, so with two or three threads its share is that row alone (a one-row
    product inside a larger step) and a later share can be empty."""
    if kind is None:
        return None
    if kind == "spread":
        return torch.tensor([SEQ_LEN if i % 5 == 0 else (i * 3) % (SEQ_LEN + 1)
                             for i in range(batch)])
    return torch.tensor([SEQ_LEN, 1, 1, 1] + [0] * (batch - 4))


def run(mode, proj, batch, hidden, lengths, reverse, train, threads, monkeypatch, offset=0,
        dtype=torch.float32):
    """Outputs (and with ``train`` every gradient) of one direction at ``threads`` threads."""
    monkeypatch.setattr(ops, "choose_threads", lambda *args: threads)
    module = make_module(mode, INPUT, hidden, proj=proj, dtype=dtype, seed=5)
    weights = [misaligned(w.detach(), offset).requires_grad_(train) if w is not None else None
               for w in direction_weights(module, reverse)]
    generator = torch.Generator().manual_seed(2)
    out_size = proj or hidden
    x = misaligned(torch.randn(SEQ_LEN, batch, INPUT, generator=generator, dtype=dtype), offset)
    h0 = misaligned(torch.randn(batch, out_size, generator=generator, dtype=dtype), offset)
    c0 = misaligned(torch.randn(batch, hidden, generator=generator, dtype=dtype), offset) \
        if mode == "LSTM" else None
    if not train:
        with torch.no_grad():
            return [r for r in ops.recurrence(mode, x, h0, c0, *weights, lengths, reverse)
                    if r is not None]
    leaves = [t.requires_grad_() for t in (x, h0, c0) if t is not None]
    y, h_n, c_n = ops.recurrence(mode, x, h0, c0, *weights, lengths, reverse)
    loss = (y * output_weights(y)).sum() + h_n.sum() + (c_n.sum() if c_n is not None else 0)
    trainable = [w for w in weights if w is not None] + leaves
    grads = torch.autograd.grad(loss, trainable)
    return [y, h_n] + ([c_n] if c_n is not None else []) + list(grads)


def assert_same_bits(reference, got, what):
    assert len(reference) == len(got)
    for index, (a, b) in enumerate(zip(reference, got, strict=True)):
        assert torch.equal(a, b), f"result {index}: {what}"


# 31 rows: below 16 per thread at 2 threads (units split); 32: exactly 16 each; 47: rows at 2
# threads only, unevenly; 48: rows at 2 and 3 threads.
@pytest.mark.parametrize(("mode", "proj"), CASES)
@pytest.mark.parametrize(("batch", "reverse"), [(31, False), (32, True), (47, True), (48, False)])
@pytest.mark.parametrize("train", [False, True])
def test_row_split_same_bits_as_one_thread(mode, proj, batch, reverse, train, isa,
                                           monkeypatch):
    proj = min(proj, HIDDEN - 1)
    reference = run(mode, proj, batch, HIDDEN, None, reverse, train, 1, monkeypatch)
    for offset, threads in ((0, 2), (0, 3), (3, 2)):
        got = run(mode, proj, batch, HIDDEN, None, reverse, train, threads, monkeypatch, offset)
        assert_same_bits(reference, got, f"offset {offset}, {threads} threads")


@pytest.mark.parametrize(("mode", "proj"), CASES)
@pytest.mark.parametrize(("kind", "reverse"), [("spread", False), ("spread", True),
                                               ("one_long", True)])
@pytest.mark.parametrize("train", [False, True])
def test_row_split_with_lengths_same_bits_as_one_thread(mode, proj, kind, reverse, train, isa,
                                                        monkeypatch):
    proj = min(proj, HIDDEN - 1)
    lengths = lengths_for(kind, 48)
    reference = run(mode, proj, 48, HIDDEN, lengths, reverse, train, 1, monkeypatch)
    for offset, threads in ((0, 2), (0, 3), (5, 2)):
        got = run(mode, proj, 48, HIDDEN, lengths, reverse, train, threads, monkeypatch, offset)
        assert_same_bits(reference, got, f"offset {offset}, {threads} threads")


# LSTM packed weights: 4 * H * H floats, 1 MiB at H = 256 (rows split), over it at 264 (units
# split); the double kernel's are twice as large.
@pytest.mark.parametrize("hidden", [256, 264])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_panel_budget_boundary_same_bits(hidden, dtype, isa, monkeypatch):
    reference = run("LSTM", 0, 32, hidden, None, False, False, 1, monkeypatch, dtype=dtype)
    got = run("LSTM", 0, 32, hidden, None, False, False, 2, monkeypatch, dtype=dtype)
    assert_same_bits(reference, got, "2 threads")


@pytest.mark.parametrize(("mode", "proj"), CASES)
@pytest.mark.parametrize(("lengths", "reverse"), [(None, False), ("spread", True),
                                                  ("one_long", False)])
def test_row_split_training_matches_torch(mode, proj, lengths, reverse, isa, monkeypatch):
    monkeypatch.setattr(ops, "choose_threads", lambda *args: 2)
    compare(mode, seq_len=SEQ_LEN, batch=40, input_size=INPUT, hidden=HIDDEN,
            proj=min(proj, HIDDEN - 1), lengths=lengths_for(lengths, 40), reverse=reverse)


@pytest.mark.parametrize(("mode", "proj"), CASES)
@pytest.mark.parametrize(("lengths", "reverse"), [(None, True), ("spread", False)])
def test_row_split_inference_matches_torch(mode, proj, lengths, reverse, isa, monkeypatch):
    monkeypatch.setattr(ops, "choose_threads", lambda *args: 2)
    proj = min(proj, HIDDEN - 1)
    lengths = lengths_for(lengths, 40)
    module = make_module(mode, INPUT, HIDDEN, proj=proj, dtype=torch.float64, seed=7)
    generator = torch.Generator().manual_seed(8)
    x = torch.randn(SEQ_LEN, 40, INPUT, generator=generator, dtype=torch.float64)
    h0 = torch.randn(40, proj or HIDDEN, generator=generator, dtype=torch.float64)
    c0 = torch.randn(40, HIDDEN, generator=generator, dtype=torch.float64) \
        if mode == "LSTM" else None
    with torch.no_grad():
        expected = torch_direction(module, mode, x, h0, c0, lengths, reverse)
        got = ops.recurrence(mode, x, h0, c0, *direction_weights(module, reverse), lengths,
                             reverse)
    for index, (a, e) in enumerate(zip(got, expected, strict=True)):
        if e is None:
            assert a is None
            continue
        assert (a - e).abs().max() <= 1e-10 * max(1.0, float(e.abs().max())), f"result {index}"
