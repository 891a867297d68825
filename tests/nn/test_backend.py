"""Backend selection: global default, per-layer choice, native fallback and dispatch."""

from __future__ import annotations

import types
import warnings

import pytest
import torch

import rnnkit.nn as rnn
from rnnkit.nn import backend as backends
from rnnkit.nn.functional import DirectionWeights, cell_step, input_gates
from rnnkit.nn.recurrence import run_direction


def _fake_engine(calls: list, prefer: bool = True):
    """An engine stand-in that records calls and computes with the python loop."""

    def recurrence(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, lengths, reverse):
        calls.append(("recurrence", mode, reverse, None if lengths is None else lengths.tolist()))
        weights = DirectionWeights(w_ih, w_hh, b_ih, b_hh, w_hr)
        return run_direction(mode, x, h0, c0, weights, lengths, reverse)

    def step(mode, x, h, c, w_ih, w_hh, b_ih, b_hh, w_hr):
        calls.append(("cell_step", mode))
        weights = DirectionWeights(w_ih, w_hh, b_ih, b_hh, w_hr)
        return cell_step(mode, input_gates(x, weights), h, c, weights)

    def should_use(mode, **shape):
        calls.append(("should_use", mode, shape["batch"], shape["training"]))
        return prefer

    return types.SimpleNamespace(available=lambda: True, recurrence=recurrence,
                                 cell_step=step, should_use=should_use)


def test_set_backend_and_context_manager():
    assert rnn.get_backend() == "auto"
    with rnn.use_backend("python"):
        assert rnn.get_backend() == "python"
    assert rnn.get_backend() == "auto"
    with pytest.raises(ValueError, match="backend must be one of"):
        rnn.set_backend("fast")


def test_native_requests_reach_the_engine_for_every_layer_and_direction(monkeypatch):
    calls: list = []
    monkeypatch.setattr(backends, "native_engine", lambda: _fake_engine(calls))
    torch.manual_seed(0)
    reference = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    layer = rnn.LSTM(3, 4, num_layers=2, bidirectional=True, backend="native")
    layer.load_state_dict(reference.state_dict())
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(layer(x)[0], reference(x)[0], rtol=1e-5, atol=1e-6)
    directions = [c[2] for c in calls if c[0] == "recurrence"]
    assert directions == [False, True, False, True]
    calls.clear()
    layer(x, lengths=[5, 3])
    assert all(c[3] == [5, 3] for c in calls if c[0] == "recurrence")


def test_auto_asks_the_engine_and_respects_its_answer(monkeypatch):
    calls: list = []
    monkeypatch.setattr(backends, "native_engine", lambda: _fake_engine(calls, prefer=False))
    layer = rnn.GRU(3, 4)
    layer(torch.randn(5, 2, 3))
    assert calls == [("should_use", "GRU", 2, True)]
    calls.clear()
    with torch.no_grad():
        layer(torch.randn(5, 2, 3))
    assert calls == [("should_use", "GRU", 2, False)]


def test_step_uses_the_engine_cell_step(monkeypatch):
    calls: list = []
    monkeypatch.setattr(backends, "native_engine", lambda: _fake_engine(calls))
    layer = rnn.RNN(3, 4, num_layers=2, backend="native")
    layer.step(torch.randn(1, 3))
    assert [c for c in calls if c[0] == "cell_step"] == [("cell_step", "RNN_TANH")] * 2


def test_regularised_layers_never_use_the_engine(monkeypatch):
    calls: list = []
    monkeypatch.setattr(backends, "native_engine", lambda: _fake_engine(calls))
    rnn.GRU(3, 4, zoneout=0.1)(torch.randn(5, 2, 3))
    assert calls == []


def test_missing_engine_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setattr(backends, "native_engine", lambda: None)
    monkeypatch.setattr(backends, "_fallback_warned", False)
    torch.manual_seed(0)
    reference = torch.nn.GRU(3, 4)
    layer = rnn.GRU(3, 4, backend="native")
    layer.load_state_dict(reference.state_dict())
    x = torch.randn(5, 2, 3)
    with pytest.warns(RuntimeWarning, match="backend='native' requested but the compiled engine "
                                            "is not available; using torch kernels instead"):
        output, _ = layer(x)
    torch.testing.assert_close(output, reference(x)[0], rtol=0, atol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer(x)  # warned once per process only


def test_non_cpu_tensors_go_to_torch(monkeypatch):
    calls: list = []
    monkeypatch.setattr(backends, "native_engine", lambda: _fake_engine(calls))
    layer = rnn.RNN(3, 4, backend="native", device="meta")
    assert layer._choose_path(torch.empty(5, 2, 3, device="meta")) == "torch"
    assert calls == []


def test_observing_reports_every_state_as_a_graph_node():
    layer = rnn.LSTM(3, 4, num_layers=2, bidirectional=True, backend="torch")
    x = torch.randn(5, 2, 3)
    expected, _ = layer(x, lengths=[5, 3])
    seen: dict = {}
    with layer.observing(lambda lay, direction, t, h, c: seen.__setitem__((lay, direction, t),
                                                                          (h, c))):
        output, _ = layer(x, lengths=[5, 3])
    assert layer._state_observer is None
    assert sorted(seen) == [(lay, d, t) for lay in range(2) for d in range(2) for t in range(5)]
    torch.testing.assert_close(output, expected, rtol=1e-6, atol=1e-6)
    top_forward = torch.stack([seen[(1, 0, t)][0] for t in range(5)])
    torch.testing.assert_close(top_forward[:3, 1], output[:3, 1, :4])
    h_2, c_2 = seen[(0, 0, 2)]
    assert h_2.requires_grad and c_2.shape == (2, 4)
    (grad,) = torch.autograd.grad(output.sum(), h_2)
    assert grad.abs().sum() > 0
