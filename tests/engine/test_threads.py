"""The engine's threads: torch's OpenMP team by default, rnnkit's own pool on request."""

from __future__ import annotations

import pytest
import torch

from rnnkit import engine
from rnnkit.engine import ops, threads

from .reference import direction_weights, make_module, torch_direction

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")


@pytest.fixture(params=["openmp", "pool"])
def thread_backend(request):
    previous = engine.thread_backend()
    engine.set_thread_backend(request.param)
    yield request.param
    engine.set_thread_backend(previous)


def test_torch_openmp_team_is_the_default():
    """With torch on OpenMP (the pinned CPU wheel) the kernels borrow its team."""
    on_openmp = "ATen parallel backend: OpenMP" in torch.__config__.parallel_info()
    assert engine.thread_backend() == ("openmp" if on_openmp else "pool")


@pytest.mark.parametrize("mode", ["GRU", "LSTM"])
def test_both_thread_backends_match_torch(mode, thread_backend, monkeypatch):
    monkeypatch.setattr(ops, "choose_threads", lambda *args: 2)
    torch.manual_seed(0)
    module = make_module(mode, 5, 70, bias=True, proj=0, dtype=torch.float64)
    weights = direction_weights(module, False)
    x = torch.randn(9, 3, 5, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(3, 70, dtype=torch.float64)
    c0 = torch.randn(3, 70, dtype=torch.float64) if mode == "LSTM" else None
    want_y, _, _ = torch_direction(module, mode, x, h0, c0, None, False)
    y, _, _ = engine.recurrence(mode, x, h0, c0, *weights, None, False)
    torch.testing.assert_close(y, want_y, rtol=1e-10, atol=1e-12)
    (want_dx,) = torch.autograd.grad(want_y.sum(), x)
    (dx,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(dx, want_dx, rtol=1e-10, atol=1e-12)


def test_unknown_thread_backend_is_refused():
    with pytest.raises(ValueError, match=r"expected 'pool' or 'openmp'.*got 'tbb'"):
        engine.set_thread_backend("tbb")


def test_thread_choice_follows_work_and_units(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    # 64 units are too few to split, but 128 rows give each thread whole rows...
    assert threads.choose_threads("RNN_TANH", 128, 64, 64) == 2
    assert threads.choose_threads("RNN_TANH", 31, 64, 64) == 1  # ...from 16 rows per thread
    assert threads.choose_threads("RNN_TANH", 32, 64, 64) == 2
    # ...unless BPTT must split units (training with lengths or packed input)
    assert threads.choose_threads("RNN_TANH", 128, 64, 64, whole_rows=False) == 1
    assert threads.choose_threads("RNN_TANH", 32, 16, 16) == 1  # 8K multiply-adds: 1 thread's
    assert threads.choose_threads("GRU", 1, 48, 48) == 1  # 7K multiply-adds per step
    assert threads.choose_threads("LSTM", 1, 64, 64) == 1  # 16K: a barrier per step loses
    assert threads.choose_threads("LSTM", 1, 80, 80) == 2  # 25K per step
    assert threads.choose_threads("GRU", 1, 128, 128) == 2
    assert threads.choose_threads("GRU", 1, 512, 512) == 2
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert threads.choose_threads("GRU", 128, 512, 512) == 1
