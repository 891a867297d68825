"""The engine's torch-op recurrence: same values as the kernels, and what it makes possible
(second derivatives and batched gradients through the eager and custom-op paths, functorch)."""

from __future__ import annotations

import pytest
import torch
from tests.engine.reference import direction_weights, make_module

from rnnkit import engine
from rnnkit.engine import differentiable

MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")
LENGTHS = torch.tensor([3, 1, 0])


def _inputs(mode, proj=0):
    """``(module, x (3, 3, 2), h0, c0|None)`` in float64, every tensor requiring grad."""
    module = make_module(mode, 2, 3, proj=proj)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 3, 2, dtype=torch.float64, generator=generator, requires_grad=True)
    h0 = torch.randn(3, proj or 3, dtype=torch.float64, generator=generator, requires_grad=True)
    c0 = None
    if mode == "LSTM":
        c0 = torch.randn(3, 3, dtype=torch.float64, generator=generator, requires_grad=True)
    return module, x, h0, c0


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, LENGTHS])
@pytest.mark.parametrize("mode", MODES)
def test_torch_ops_match_the_kernels(mode, lengths, reverse):
    module, x, h0, c0 = _inputs(mode, proj=2 if mode == "LSTM" else 0)
    weights = direction_weights(module, reverse)
    with torch.no_grad():
        native = engine.recurrence(mode, x, h0, c0, *weights, lengths, reverse)
        reference = differentiable.recurrence(mode, x, h0, c0, *weights, lengths, reverse)
    for have, want in zip(reference, native, strict=True):
        if want is not None:
            torch.testing.assert_close(have, want, atol=1e-12, rtol=0)


def _as_function(call, mode, c0):
    """``f(x, h0, [c0,] w_ih, w_hh, b_ih, b_hh) -> (y, h_n[, c_n])`` over ``call``."""
    def run(x, h0, *rest):
        c = rest[0] if c0 is not None else None
        outputs = call(x, h0, c, *rest[1 if c0 is not None else 0:])
        return tuple(t for t in outputs if t is not None)
    return run


@pytest.mark.parametrize("path", ["eager", "custom_op"])
@pytest.mark.parametrize("mode", MODES)
def test_second_and_batched_derivatives(mode, path):
    """gradgradcheck and gradcheck(check_batched_grad) through both autograd paths."""
    module, x, h0, c0 = _inputs(mode)
    w_ih, w_hh, b_ih, b_hh, _ = direction_weights(module, True)

    def eager(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        return engine.recurrence(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, None, LENGTHS, True)

    def custom_op(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        return torch.ops.rnnkit.recurrence(x, h0, c0, w_ih, w_hh, b_ih, b_hh, None, LENGTHS,
                                           mode, True, 0, True)[:3]

    run = _as_function(eager if path == "eager" else custom_op, mode, c0)
    inputs = tuple(t for t in (x, h0, c0, w_ih, w_hh, b_ih, b_hh) if t is not None)
    assert torch.autograd.gradcheck(run, inputs, check_batched_grad=True)
    assert torch.autograd.gradgradcheck(run, inputs)


def test_functorch_grad_through_the_engine_entry_point():
    """engine.recurrence under torch.func.grad runs the torch ops (no boundary refusal)."""
    module, x, h0, _ = _inputs("GRU")
    weights = direction_weights(module, False)

    def loss(x):
        return engine.recurrence("GRU", x, h0, None, *weights, LENGTHS, False)[0].square().sum()

    expected = torch.autograd.grad(loss(x), x)[0]
    torch.testing.assert_close(torch.func.grad(loss)(x.detach()), expected, atol=1e-12, rtol=0)
