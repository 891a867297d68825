"""StreamStep: stacked layers advanced one step in one native call, against torch.nn."""

from __future__ import annotations

import pytest
import torch

from rnnkit import engine
from rnnkit.engine import stream

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")

MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")


def torch_stack(mode, input_size, hidden, layers, *, bias=True, proj=0, dtype=torch.float64):
    cls = {"RNN_TANH": torch.nn.RNN, "RNN_RELU": torch.nn.RNN}.get(mode)
    options = {"nonlinearity": mode[4:].lower()} if cls else {}
    if proj:
        options["proj_size"] = proj
    cls = cls or getattr(torch.nn, mode)
    return cls(input_size, hidden, layers, bias=bias, dtype=dtype, **options)


def layer_weights(module):
    suffixes = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
    return [tuple(getattr(module, f"{name}_l{layer}", None) for name in suffixes)
            for layer in range(module.num_layers)]


def run_both(mode, batch, layers, *, bias=True, proj=0, dtype=torch.float64, steps=3,
             packed=False):
    """Feed ``steps`` steps through torch.nn and through one StreamStep; return both."""
    module = torch_stack(mode, 7, 33, layers, bias=bias, proj=proj, dtype=dtype)
    plan = engine.StreamStep(mode, layer_weights(module), packed=packed)
    out = proj or 33
    x = torch.randn(steps, batch, 7, dtype=dtype)
    h = torch.randn(layers, batch, out, dtype=dtype)
    c = torch.randn(layers, batch, 33, dtype=dtype) if mode == "LSTM" else None
    with torch.no_grad():
        want_y, want_state = module(x, (h, c) if c is not None else h)
        state = (h, c)
        for t in range(steps):
            state = plan(x[t], *state)
    want = want_state if isinstance(want_state, tuple) else (want_state, None)
    return state, want, want_y[-1]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("packed", [False, True])
def test_matches_torch_over_several_steps(mode, batch, packed, isa):
    """H = 33: two full 16-unit panels and one of a single unit when packed."""
    for layers, proj, bias in ((1, 0, True), (3, 0, False), (2, 5 if mode == "LSTM" else 0, True)):
        (h, c), (want_h, want_c), last_y = run_both(mode, batch, layers, bias=bias, proj=proj,
                                                    packed=packed)
        torch.testing.assert_close(h, want_h, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(h[-1], last_y, rtol=1e-10, atol=1e-12)
        if mode == "LSTM":
            torch.testing.assert_close(c, want_c, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("packed", [False, True])
def test_two_threads_match_one(mode, packed, monkeypatch):
    """Above the size threshold the hidden units are split between threads; same numbers."""
    monkeypatch.setattr(stream, "MIN_WEIGHTS_FOR_THREADS", 0)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    (h, c), (want_h, want_c), _ = run_both(mode, 2, 2, proj=5 if mode == "LSTM" else 0,
                                           dtype=torch.float32, packed=packed)
    torch.testing.assert_close(h, want_h, rtol=1e-5, atol=1e-6)
    if mode == "LSTM":
        torch.testing.assert_close(c, want_c, rtol=1e-5, atol=1e-6)


def test_inputs_are_not_modified_and_outputs_are_new():
    module = torch_stack("LSTM", 7, 33, 2)
    plan = engine.StreamStep("LSTM", layer_weights(module))
    x, h, c = torch.randn(1, 7, dtype=torch.float64), torch.zeros(2, 1, 33,
                                                                  dtype=torch.float64), None
    c = torch.zeros_like(h)
    with torch.no_grad():
        h_n, c_n = plan(x, h, c)
    assert not h.any() and not c.any()
    assert h_n.data_ptr() != h.data_ptr() and c_n.data_ptr() != c.data_ptr()


def test_in_place_weight_updates_are_seen():
    module = torch_stack("GRU", 7, 33, 1)
    plan = engine.StreamStep("GRU", layer_weights(module))
    x, h = torch.randn(1, 7, dtype=torch.float64), torch.randn(1, 1, 33, dtype=torch.float64)
    with torch.no_grad():
        before, _ = plan(x, h)
        module.weight_hh_l0.mul_(0.5)
        after, _ = plan(x, h)
        want = module(x.unsqueeze(0), h)[1]
    assert not torch.equal(before, after)
    torch.testing.assert_close(after, want, rtol=1e-10, atol=1e-12)


def test_a_replaced_weight_storage_is_refused():
    module = torch_stack("RNN_TANH", 7, 33, 1)
    plan = engine.StreamStep("RNN_TANH", layer_weights(module))
    x, h = torch.randn(1, 7, dtype=torch.float64), torch.zeros(1, 1, 33, dtype=torch.float64)
    module.weight_hh_l0.data = torch.zeros(33, 33, dtype=torch.float64)
    with torch.no_grad(), pytest.raises(engine.StaleWeightsError, match="build a new plan"):
        plan(x, h)


def test_errors_name_the_argument():
    module = torch_stack("LSTM", 7, 33, 2)
    weights = layer_weights(module)
    plan = engine.StreamStep("LSTM", weights)
    h = torch.zeros(2, 1, 33, dtype=torch.float64)
    with torch.no_grad():
        with pytest.raises(ValueError, match=r"x: expected shape \(batch, 7\), got \(1, 6\)"):
            plan(torch.zeros(1, 6, dtype=torch.float64), h, h)
        with pytest.raises(TypeError, match=r"x: expected dtype torch\.float64"):
            plan(torch.zeros(1, 7), h, h)
        with pytest.raises(ValueError, match=r"h: expected shape \(2, 1, 33\), got \(1, 1, 33\)"):
            plan(torch.zeros(1, 7, dtype=torch.float64), h[:1], h)
        with pytest.raises(ValueError, match="c: expected a cell state for mode 'LSTM'"):
            plan(torch.zeros(1, 7, dtype=torch.float64), h, None)
    with pytest.raises(RuntimeError, match=r"under torch\.no_grad"):
        plan(torch.zeros(1, 7, dtype=torch.float64, requires_grad=True), h, h)
    with pytest.raises(ValueError,
                       match=r"weights\[1\]: expected \(w_ih, w_hh, b_ih, b_hh, w_hr\)"):
        engine.StreamStep("LSTM", [weights[0], weights[1][:4]])
    wrong = (torch.zeros(132, 5, dtype=torch.float64), *weights[1][1:])
    with pytest.raises(ValueError, match=r"weight_ih: expected shape \(132, 33\), got \(132, 5\)"):
        engine.StreamStep("LSTM", [weights[0], wrong])
    with pytest.raises(ValueError, match=r"weights\[0\].w_hh: expected a contiguous tensor"):
        engine.StreamStep("GRU", [(torch.zeros(9, 4), torch.zeros(3, 9).t(), None, None, None)])
    with pytest.raises(TypeError, match="float32 or float64"):
        engine.StreamStep("GRU", [(torch.zeros(9, 4, dtype=torch.float16),) + (None,) * 4])


def test_a_packed_plan_refuses_weights_changed_in_place_until_rebuilt():
    module = torch_stack("GRU", 7, 33, 1)
    plan = engine.StreamStep("GRU", layer_weights(module), packed=True)
    x, h = torch.randn(1, 7, dtype=torch.float64), torch.randn(1, 1, 33, dtype=torch.float64)
    with torch.no_grad():
        plan(x, h)
        module.bias_hh_l0.add_(0.0)  # in place: the version counter moves even if no value does
        with pytest.raises(engine.StaleWeightsError, match="build a new plan"):
            plan(x, h)
        plan = engine.StreamStep("GRU", layer_weights(module), packed=True)
        got, _ = plan(x, h)
        want = module(x.unsqueeze(0), h)[1]
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_packed_weights_of_a_wrong_shape_are_refused_by_name():
    module = torch_stack("LSTM", 7, 33, 1)
    plan = engine.StreamStep("LSTM", layer_weights(module), packed=True)
    panels, *rest = plan._plan[7]
    bad = (*plan._plan[:7], (panels[:, :-1].contiguous(), *rest), *plan._plan[8:])
    x, h = torch.zeros(1, 7, dtype=torch.float64), torch.zeros(1, 1, 33, dtype=torch.float64)
    with torch.no_grad(), pytest.raises(ValueError, match=r"panels: expected shape \(12, 40, 16\)"):
        plan._native_stream(bad, x, h, h, torch.empty_like(h), torch.empty_like(h))
