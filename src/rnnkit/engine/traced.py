"""The engine's recurrence as ``torch.library`` custom ops, for code that traces.

``torch.compile`` and ``torch.export`` run a model on fake tensors (no memory behind them)
to record its graph. They cannot look inside a C++ function, and the native kernels refuse
fake tensors, so while tracing :func:`rnnkit.engine.recurrence` calls these ops instead:
their fake implementations give the output shapes, the compiled graph calls the real
kernels, and ``register_autograd`` gives the same gradients as eager mode. In eager mode
the ops are not used: the dispatcher adds ~10-50 µs per call, more than a small layer's
whole forward pass.

- ``rnnkit::recurrence(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, lengths, mode, reverse,
  threads, save) -> (y, h_n, c_n, gates, aux, m)``; tensors a mode does not have are
  returned empty (shape ``(0,)``); ``threads=0`` picks the thread count when the op runs.
- ``rnnkit::recurrence_backward(...) -> (dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr)``,
  likewise.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnkit.engine import checks, differentiable
from rnnkit.engine.ops import _forward_all, _Plan, gradients, recomputed_gradients
from rnnkit.engine.threads import choose_threads

Outputs = tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]
Grads = tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]


def _plan(mode: str, x: Tensor, w_hh: Tensor, lengths: Tensor | None, reverse: bool,
          threads: int) -> _Plan:
    """The call's plan; ``threads <= 0`` chooses the count now, as eager mode does."""
    hidden, out_size = w_hh.shape[0] // checks.GATES[mode], w_hh.shape[1]
    if threads <= 0:
        threads = choose_threads(mode, x.shape[1], hidden, out_size, lengths is None)
    return _Plan(mode, hidden, out_size, lengths, reverse, threads)


def _or_empty(tensor: Tensor | None, like: Tensor) -> Tensor:
    return like.new_empty(0) if tensor is None else tensor


def _none_if_empty(tensor: Tensor | None) -> Tensor | None:
    return None if tensor is None or tensor.numel() == 0 else tensor


@torch.library.custom_op("rnnkit::recurrence", mutates_args=())
def recurrence_op(x: Tensor, h0: Tensor, c0: Tensor | None, w_ih: Tensor, w_hh: Tensor,
                  b_ih: Tensor | None, b_hh: Tensor | None, w_hr: Tensor | None,
                  lengths: Tensor | None, mode: str, reverse: bool, threads: int,
                  save: bool) -> Outputs:
    """One layer-direction over ``x (seq, batch, input)``; see :func:`rnnkit.engine.recurrence`."""
    plan = _plan(mode, x, w_hh, lengths, reverse, threads)
    y, h_n, c_n, saved = _forward_all(plan, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, save)
    if not save:  # nothing for backward (inference may keep no scratch): the fake's shapes
        saved = tuple(x.new_zeros(shape) for shape in _saved_shapes(x, w_hh, w_hr, mode, save))
    gates, aux, m = saved
    return y, h_n, _or_empty(c_n, x), gates, _or_empty(aux, x), _or_empty(m, x)


def _saved_shapes(x, w_hh, w_hr, mode: str, save: bool) -> tuple[tuple[int, ...], ...]:
    """Shapes of what :func:`recurrence_op` keeps for backward, ``(gates, aux, m)``: every
    step's with ``save``, else one step's; ``(0,)`` for what the cell does not have."""
    seq_len, batch, _ = x.shape
    gates = checks.GATES[mode]
    hidden = w_hh.shape[0] // gates
    steps = seq_len if save else 1
    return ((steps, batch, gates * hidden),
            (steps, batch, hidden) if mode in ("LSTM", "GRU") else (0,),
            (steps, batch, hidden) if w_hr is not None else (0,))


@recurrence_op.register_fake
def _recurrence_fake(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, lengths, mode, reverse, threads,
                     save):
    seq_len, batch, _ = x.shape
    hidden, out_size = w_hh.shape[0] // checks.GATES[mode], w_hh.shape[1]
    new = x.new_empty
    return (new(seq_len, batch, out_size), new(batch, out_size),
            new(batch, hidden) if mode == "LSTM" else new(0),
            *(new(shape) for shape in _saved_shapes(x, w_hh, w_hr, mode, save)))


@torch.library.custom_op("rnnkit::recurrence_backward", mutates_args=())
def recurrence_backward_op(x: Tensor, y: Tensor, h0: Tensor, c0: Tensor | None, w_ih: Tensor,
                           w_hh: Tensor, w_hr: Tensor | None, gates: Tensor, aux: Tensor | None,
                           m: Tensor | None, lengths: Tensor | None, dy: Tensor, dh_n: Tensor,
                           dc_n: Tensor | None, mode: str, reverse: bool, threads: int) -> Grads:
    """Every gradient of :func:`recurrence_op` (empty where the input was ``None``)."""
    plan = _plan(mode, x, w_hh, lengths, reverse, threads)
    grads = gradients(plan, x, y, h0, c0, w_ih, w_hh, w_hr, gates, aux, m, dy, dh_n, dc_n)
    return tuple(_or_empty(g, x) for g in grads)  # type: ignore[return-value]


@recurrence_backward_op.register_fake
def _backward_fake(x, y, h0, c0, w_ih, w_hh, w_hr, gates, aux, m, lengths, dy, dh_n, dc_n, mode,
                   reverse, threads):
    width = w_hh.shape[0]
    new, empty = x.new_empty, x.new_empty(0)  # contiguous, as the real gradients are
    return (new(x.shape), new(h0.shape), empty if c0 is None else new(c0.shape), new(w_ih.shape),
            new(w_hh.shape), new(width), new(width), empty if w_hr is None else new(w_hr.shape))


def _setup_context(ctx, inputs, output) -> None:
    x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, lengths, mode, reverse, threads, _ = inputs
    y, _, _, gates, aux, m = output
    ctx.save_for_backward(x, y, h0, c0, w_ih, w_hh, w_hr, gates, aux, m, lengths, b_ih, b_hh)
    ctx.options = (mode, reverse, threads, b_ih is not None)


def _backward(ctx, dy, dh_n, dc_n, *unused):
    x, y, h0, c0, w_ih, w_hh, w_hr, gates, aux, m, lengths, b_ih, b_hh = ctx.saved_tensors
    mode, reverse, threads, has_bias = ctx.options
    if torch.is_grad_enabled() or differentiable.any_wrapped((dy, dh_n, dc_n)):
        # create_graph=True or a vmapped backward: recurrence_backward_op is not
        # differentiable (and the kernels refuse batched tensors), so differentiate the
        # torch-op recomputation, as eager mode does (rnnkit.engine.ops._Recurrence.backward).
        plan = _Plan(mode, w_hh.shape[0] // checks.GATES[mode], w_hh.shape[1], lengths, reverse,
                     threads)
        grads = recomputed_gradients(plan, (x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr),
                                     ctx.needs_input_grad[:8], (dy, dh_n, dc_n))
        return (*grads, None, None, None, None, None)
    dy = torch.zeros_like(y) if dy is None else dy.contiguous()
    dh_n = torch.zeros_like(h0) if dh_n is None else dh_n.contiguous()
    if mode == "LSTM" and dc_n is None:
        dc_n = torch.zeros_like(c0)
    dc_n = dc_n.contiguous() if mode == "LSTM" else None
    grads = recurrence_backward_op(x, y, h0, c0, w_ih, w_hh, w_hr, gates,
                                   _none_if_empty(aux), _none_if_empty(m), lengths, dy, dh_n,
                                   dc_n, mode, reverse, threads)
    dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr = grads
    return (dx, dh0, dc0 if c0 is not None else None, dw_ih, dw_hh,
            db_ih if has_bias else None, db_hh if has_bias else None,
            dw_hr if w_hr is not None else None, None, None, None, None, None)


recurrence_op.register_autograd(_backward, setup_context=_setup_context)

