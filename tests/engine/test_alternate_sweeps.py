"""Each step's products read a thread's weight panels in the direction opposite to the step
before when the panels take at least 3/4 of L2 (and at batch 1 also when they take at most a
few times L1; ``gate_products``). The order is for speed only: the bits must be the same
whichever the engine assumes of the L2 cache, at every batch and thread split."""

from __future__ import annotations

import pytest
import torch

from rnnkit import engine
from rnnkit.engine import checks

from .test_pipeline import call

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")


@pytest.fixture
def l2_size():
    """Set the L2 size the kernels plan for; the detected one is restored afterwards."""
    yield engine.set_l2_cache_bytes
    engine.set_l2_cache_bytes(0)


def infer_all(kwargs: dict) -> list[torch.Tensor]:
    from rnnkit.engine._loader import require_native

    return [t for t in require_native().infer(**kwargs) if t is not None]


@pytest.mark.parametrize(("mode", "proj"), [("RNN_TANH", 0), ("GRU", 0), ("LSTM", 0),
                                            ("LSTM", 24)])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(("threads", "pipeline"), [(1, 0), (2, 0), (2, 1)])
@pytest.mark.parametrize("batch", [1, 3])
def test_alternate_sweeps_keep_the_bits(mode, proj, reverse, threads, pipeline, batch, l2_size,
                                        isa):
    kwargs = {**call(mode, 21, batch, 200, 48, proj=proj, reverse=reverse),
              "threads": threads, "pipeline": pipeline}
    l2_size(1 << 40)  # never past 3/4 of L2: one direction beyond a few times L1
    expected = infer_all(kwargs)
    l2_size(1024)  # every panel set past 3/4 of L2: alternate sweeps
    for want, got in zip(expected, infer_all(kwargs), strict=True):
        assert torch.equal(want, got)


@pytest.mark.parametrize("batch", [20, 40])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_wide_batches_keep_the_bits(batch, dtype, l2_size):
    """Units split between threads (batch 20) and whole rows per thread (batch 40)."""
    torch.manual_seed(0)
    hidden = 96
    rows = checks.GATES["LSTM"] * hidden
    args = (torch.randn(13, batch, 30, dtype=dtype), torch.randn(batch, hidden, dtype=dtype),
            torch.randn(batch, hidden, dtype=dtype), torch.randn(rows, 30, dtype=dtype) * 0.2,
            torch.randn(rows, hidden, dtype=dtype) * 0.2, torch.randn(rows, dtype=dtype),
            torch.randn(rows, dtype=dtype), None)
    results = []
    with torch.no_grad():
        for size in (1 << 40, 1024):
            l2_size(size)
            results.append(engine.recurrence("LSTM", *args, lengths=None, reverse=False))
    for want, got in zip(*results, strict=True):
        assert torch.equal(want, got)


def test_training_forward_keeps_the_bits(l2_size):
    """The same products run in a training forward at batch 1 (saved activations)."""
    torch.manual_seed(0)
    layer = engine.recurrence
    x = torch.randn(15, 1, 40, dtype=torch.float64, requires_grad=True)
    rows = checks.GATES["GRU"] * 160
    weights = [torch.randn(rows, 40, dtype=torch.float64, requires_grad=True) * 0.2,
               torch.randn(rows, 160, dtype=torch.float64) * 0.2, None, None, None]
    h0 = torch.zeros(1, 160, dtype=torch.float64)
    results = []
    for size in (1 << 40, 1024):
        l2_size(size)
        y, h_n, _ = layer("GRU", x, h0, None, *weights, lengths=None, reverse=False)
        (grad,) = torch.autograd.grad(y.square().sum(), x)
        results.append((y.detach(), h_n.detach(), grad))
    for want, got in zip(*results, strict=True):
        assert torch.equal(want, got)


def test_the_l2_size_is_reported_and_set(l2_size):
    detected = engine.l2_cache_bytes()
    assert detected > 0
    l2_size(3 << 20)
    assert engine.l2_cache_bytes() == 3 << 20
    l2_size(0)
    assert engine.l2_cache_bytes() == detected
    with pytest.raises(ValueError, match=r"bytes: expected 0 .* got -5"):
        engine.set_l2_cache_bytes(-5)


@pytest.mark.parametrize("mode", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize(("batch", "layers"), [(1, 1), (1, 2), (3, 2)])
def test_streaming_steps_keep_the_bits(mode, batch, layers, l2_size):
    """A streamer's steps alternate too (a parity kept per thread): every step's output must
    be the one of a streamer that never alternates."""
    from rnnkit import nn as rnn

    torch.manual_seed(0)
    layer = getattr(rnn, mode)(24, 40, num_layers=layers)
    inputs = torch.randn(9, batch, 24)
    results = []
    for size in (1 << 40, 1024):
        l2_size(size)
        streamer = layer.streamer(batch)
        results.append(torch.stack([streamer(x) for x in inputs]))
    assert torch.equal(*results)
