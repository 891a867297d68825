"""Inference on small batches as one native call (``_native.infer``): the kernel projects
every step's input first, then runs the recurrence, with the gate bias, outputs and scratch
made in C. Parity with torch.nn, the same bits at every thread count and alignment, which
calls take the route, and the boundary's checks of every argument."""

from __future__ import annotations

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from rnnkit import engine
from rnnkit.engine import checks, ops

from .reference import TOLERANCE, direction_weights, make_module, torch_direction
from .test_boundary import BAD, native
from .test_determinism import misaligned

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")

INPUT = 19
MODES = [("RNN_TANH", 0), ("RNN_RELU", 0), ("GRU", 0), ("LSTM", 0), ("LSTM", 7)]


@pytest.fixture
def routes(monkeypatch):
    """The calls that ran as one ``infer`` call (the list grows by one per such call)."""
    taken = []
    infer = ops._infer

    def spy(*args):
        taken.append(args[1].shape)
        return infer(*args)

    monkeypatch.setattr(ops, "_infer", spy)
    return taken


def inputs(mode, batch, hidden, proj, dtype, seq_len=9, seed=5):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(seq_len, batch, INPUT, generator=generator, dtype=dtype)
    h0 = torch.randn(batch, proj or hidden, generator=generator, dtype=dtype)
    c0 = torch.randn(batch, hidden, generator=generator, dtype=dtype) if mode == "LSTM" else None
    return x, h0, c0


def engine_run(mode, module, x, h0, c0, reverse, threads=None, monkeypatch=None, offset=0):
    if threads is not None:
        monkeypatch.setattr(ops, "choose_threads", lambda *args: threads)
    weights = [None if w is None else misaligned(w.detach(), offset)
               for w in direction_weights(module, reverse)]
    with torch.no_grad():
        return [r for r in ops.recurrence(mode, misaligned(x, offset), h0, c0, *weights, None,
                                          reverse) if r is not None]


@pytest.mark.parametrize(("mode", "proj"), MODES)
@pytest.mark.parametrize("batch", [1, 3, 15])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_torch_nn(mode, proj, batch, reverse, dtype, bias, isa, routes):
    hidden = 40
    module = make_module(mode, INPUT, hidden, bias=bias, proj=proj, dtype=dtype, seed=2)
    x, h0, c0 = inputs(mode, batch, hidden, proj, dtype)
    got = engine_run(mode, module, x, h0, c0, reverse)
    assert routes == [x.shape]
    with torch.no_grad():
        expected = [r for r in torch_direction(module, mode, x, h0, c0, None, reverse)
                    if r is not None]
    for index, (a, e) in enumerate(zip(got, expected, strict=True)):
        torch.testing.assert_close(a, e, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype],
                                   msg=lambda text, i=index: f"result {i}: {text}")


@pytest.mark.parametrize(("mode", "proj"), MODES)
@pytest.mark.parametrize(("hidden", "batch"), [(300, 1), (64, 5), (16, 2)])
def test_same_bits_at_every_thread_count_and_alignment(mode, proj, hidden, batch, isa, routes,
                                                       monkeypatch):
    module = make_module(mode, INPUT, hidden, proj=proj, dtype=torch.float32, seed=3)
    x, h0, c0 = inputs(mode, batch, hidden, proj, torch.float32)
    reference = engine_run(mode, module, x, h0, c0, True, 1, monkeypatch)
    for offset, threads in ((0, 2), (0, 3), (3, 2), (5, 1)):
        got = engine_run(mode, module, x, h0, c0, True, threads, monkeypatch, offset)
        for index, (a, b) in enumerate(zip(reference, got, strict=True)):
            assert torch.equal(a, b), f"result {index}: {threads} threads, offset {offset}"
    assert len(routes) == 5


def test_batch_first_layer_takes_the_route_and_matches_torch(routes):
    torch.manual_seed(0)
    reference = torch.nn.GRU(INPUT, 24, num_layers=2, batch_first=True, bidirectional=True)
    from rnnkit import nn as rnn

    layer = rnn.GRU(INPUT, 24, num_layers=2, batch_first=True, bidirectional=True,
                    backend="native")
    layer.load_state_dict(reference.state_dict())
    x = torch.randn(4, 11, INPUT)  # (batch, seq, feature): the kernel reads a transposed view
    with torch.no_grad():
        for _ in range(2):  # the general path, then the remembered fast path
            output, h_n = layer(x)
            expected, expected_h = reference(x)
            torch.testing.assert_close(output, expected, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(h_n, expected_h, rtol=1e-5, atol=1e-5)
    assert len(routes) == 8  # 2 calls x 2 layers x 2 directions


@pytest.mark.parametrize(("batch", "seq_len", "lengths", "grad", "expected"), [
    (1, 100, None, False, True),
    (15, 3, None, False, True),
    (16, 3, None, False, False),  # wider batches: per-step projection or torch's GEMM
    (1, 2, None, False, False),  # two rows: dot products on unpacked weights
    (4, 5, [5, 4, 3, 1], False, False),  # lengths
    (4, 5, None, True, False),  # training saves the gates: the autograd route
])
def test_route_choice(batch, seq_len, lengths, grad, expected, routes):
    module = make_module("LSTM", INPUT, 8, dtype=torch.float32)
    weights = [w.detach().requires_grad_(grad) for w in direction_weights(module, False)[:4]]
    x, h0, c0 = inputs("LSTM", batch, 8, 0, torch.float32, seq_len=seq_len)
    ops.recurrence("LSTM", x, h0, c0, *weights, None,
                   None if lengths is None else torch.tensor(lengths), False)
    assert bool(routes) == expected


def infer_kwargs(mode: str = "LSTM", dtype=torch.float32) -> dict:
    """Valid arguments of ``_native.infer``: seq 3, batch 2, input 5, hidden 4."""
    gates = checks.GATES[mode]
    return dict(
        mode=checks.MODE_IDS[mode], reverse=False, threads=1, x=torch.randn(3, 2, 5, dtype=dtype),
        h0=torch.zeros(2, 4, dtype=dtype),
        c0=torch.zeros(2, 4, dtype=dtype) if mode == "LSTM" else None,
        w_ih=torch.randn(gates * 4, 5, dtype=dtype), w_hh=torch.randn(gates * 4, 4, dtype=dtype),
        b_ih=torch.randn(gates * 4, dtype=dtype), b_hh=torch.randn(gates * 4, dtype=dtype),
        w_hr=None)


def test_infer_returns_fresh_outputs():
    kwargs = infer_kwargs()
    y, h_n, c_n = native().infer(**kwargs)
    assert (y.shape, h_n.shape, c_n.shape) == ((3, 2, 4), (2, 4), (2, 4))
    assert torch.equal(y[-1], h_n)
    y2, _, _ = native().infer(**kwargs)
    assert torch.equal(y, y2) and y.data_ptr() != y2.data_ptr()
    _, _, c_gru = native().infer(**infer_kwargs("GRU"))
    assert c_gru is None


@pytest.mark.parametrize("name", ["x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh"])
@pytest.mark.parametrize("bad", sorted(set(BAD) - {"non-contiguous"}))
def test_infer_refuses_each_bad_tensor_by_name(name, bad):
    kwargs = infer_kwargs()
    kwargs[name] = BAD[bad](kwargs[name])
    with pytest.raises((TypeError, ValueError), match=rf"rnnkit\.engine: .*\b{name}\b"):
        native().infer(**kwargs)


@pytest.mark.parametrize("name", ["h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh"])
def test_infer_refuses_non_contiguous_tensors(name):
    kwargs = infer_kwargs()
    kwargs[name] = BAD["non-contiguous"](kwargs[name])
    with pytest.raises(ValueError, match=rf"{name}: expected"):
        native().infer(**kwargs)


def test_infer_copies_a_strided_input_after_checking_its_storage():
    kwargs = infer_kwargs()
    batch_first = torch.randn(2, 3, 5)
    kwargs["x"] = batch_first.transpose(0, 1)
    strided = native().infer(**kwargs)
    kwargs["x"] = batch_first.transpose(0, 1).contiguous()
    for a, b in zip(strided, native().infer(**kwargs), strict=True):
        assert torch.equal(a, b)
    shrunk = torch.randn(2, 3, 5)
    view = shrunk.transpose(0, 1)
    shrunk.untyped_storage().resize_(4 * 5)
    kwargs["x"] = view
    with pytest.raises(ValueError, match="x: the tensor's storage"):
        native().infer(**kwargs)


def test_infer_refuses_fake_tensors():
    kwargs = infer_kwargs()
    with FakeTensorMode() as mode:
        kwargs["w_hh"] = mode.from_tensor(kwargs["w_hh"])
    with pytest.raises(TypeError, match="expected a plain CPU tensor with real storage"):
        native().infer(**kwargs)


@pytest.mark.parametrize(("replace", "error", "message"), [
    ({"c0": None}, TypeError, "c0: expected a tensor, got None"),
    ({"b_hh": None}, ValueError, "b_ih, b_hh: expected both or neither"),
    ({"w_hr": torch.randn(3, 4)}, ValueError, r"w_hr: expected shape \(4, 4\), got \(3, 4\)"),
    ({"w_hh": torch.randn(16, 3), "h0": torch.zeros(2, 3)}, ValueError,
     "out size differs from hidden size without w_hr"),
    ({"x": torch.randn(3, 5)}, ValueError, "expected x"),
    ({"x": torch.randn(3, 2, 5, dtype=torch.float64)}, TypeError, "dtype"),
    ({"w_hh": torch.randn(17, 4)}, ValueError, "inconsistent sizes"),
    ({"mode": 7}, ValueError, "mode: expected 0-3, got 7"),
])
def test_infer_refuses_inconsistent_arguments(replace, error, message):
    kwargs = infer_kwargs()
    kwargs.update(replace)
    with pytest.raises(error, match=message):
        native().infer(**kwargs)


def test_infer_refuses_a_projection_outside_lstm_and_positional_calls():
    kwargs = infer_kwargs("GRU")
    kwargs["w_hr"] = torch.randn(4, 4)
    with pytest.raises(ValueError, match="projections exist only for LSTM"):
        native().infer(**kwargs)
    with pytest.raises(TypeError, match="keyword"):
        native().infer(*infer_kwargs().values())


def test_layer_whose_weight_became_non_contiguous_still_matches_torch(routes):
    from rnnkit import nn as rnn

    torch.manual_seed(1)
    reference = torch.nn.LSTM(INPUT, 12)
    layer = rnn.LSTM(INPUT, 12, backend="native")
    layer.load_state_dict(reference.state_dict())
    x = torch.randn(7, 1, INPUT)
    with torch.no_grad():
        layer(x)
        layer(x)  # the fast path, remembered
        # Same shape and values, another layout, set behind the layer's back: the boundary
        # refuses it and the general path runs.
        layer.weight_ih_l0.data = layer.weight_ih_l0.data.t().contiguous().t()
        assert not layer.weight_ih_l0.is_contiguous()
        output, (h_n, c_n) = layer(x)
        expected, (expected_h, expected_c) = reference(x)
    torch.testing.assert_close(output, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h_n, expected_h, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(c_n, expected_c, rtol=1e-5, atol=1e-5)
    assert len(routes) >= 3
