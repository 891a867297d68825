"""The engine's recurrence in plain torch ops: differentiable to any order, and vmap-safe.

The native kernels compute first derivatives only, and only on plain CPU memory. This module
is the same contract as :func:`rnnkit.engine.recurrence` written with torch operators, which
autograd can differentiate again and functorch can batch. The engine uses it

- in backward when ``create_graph=True``: the gradients are obtained by differentiating this
  recomputation of the forward, so the graph of the gradients (and every higher derivative)
  is exact;
- in backward when the incoming gradients are batched (``is_grads_batched=True``, i.e. a vmap
  over backward), which the native boundary refuses;
- in forward when a functorch transform (``torch.func.grad``, ``vmap``, ``jvp`` ...) wraps the
  inputs.

It is a reference, not a fast path: one small product per step. The equations are torch's
(the engine must not import ``rnnkit.nn``, whose readable loop also has regularisers, so the
few lines of cell arithmetic are restated here). No data-dependent Python control flow on
tensor values, no in-place ops, no ``.item()``: vmap can batch every line.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _lstm_step(gates_x, h, c, w_hh, b_hh, w_hr):
    """``(B, 4H), (B, P), (B, H) -> (h' (B, P), c' (B, H))``, gate order ``i, f, g, o``."""
    i, f, g, o = (gates_x + F.linear(h, w_hh, b_hh)).chunk(4, dim=-1)
    c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_next = torch.sigmoid(o) * torch.tanh(c_next)
    return (h_next if w_hr is None else F.linear(h_next, w_hr)), c_next


def _gru_step(gates_x, h, w_hh, b_hh):
    """``(B, 3H), (B, H) -> (B, H)``; the reset gate scales ``W_hn h + b_hn`` (torch's GRU)."""
    x_r, x_z, x_n = gates_x.chunk(3, dim=-1)
    h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=-1)
    reset, update = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    candidate = torch.tanh(x_n + reset * h_n)
    return candidate + update * (h - candidate)


def step(mode: str, gates_x: Tensor, h: Tensor, c: Tensor | None, w_hh: Tensor,
         b_hh: Tensor | None, w_hr: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """One step from the input projection ``gates_x (B, G*H)``: ``(h' (B, P), c' or None)``."""
    if mode == "LSTM":
        return _lstm_step(gates_x, h, c, w_hh, b_hh, w_hr)
    if mode == "GRU":
        return _gru_step(gates_x, h, w_hh, b_hh), None
    pre_activation = gates_x + F.linear(h, w_hh, b_hh)
    return (torch.relu(pre_activation) if mode == "RNN_RELU" else torch.tanh(pre_activation)), None


def recurrence(mode: str, x: Tensor, h0: Tensor, c0: Tensor | None, w_ih: Tensor, w_hh: Tensor,
               b_ih: Tensor | None, b_hh: Tensor | None, w_hr: Tensor | None,
               lengths: Tensor | None, reverse: bool):
    """:func:`rnnkit.engine.recurrence` in torch ops: ``(y (L, N, P), h_n (N, P), c_n|None)``.

    ``x (L, N, input)``, ``h0 (N, P)``, ``c0 (N, H)`` or None, ``lengths (N,)`` int64 or None.
    A step past a row's length leaves its state unchanged and outputs zero, so the reverse
    direction starts at each row's last valid step and a row of length 0 keeps ``h0``/``c0``.
    """
    seq_len = x.shape[0]
    gates_x = F.linear(x, w_ih, b_ih)  # (L, N, G*H): one product for all steps
    valid = None
    if lengths is not None:
        steps = torch.arange(seq_len, device=x.device).unsqueeze(1)
        valid = (steps < lengths.to(x.device).unsqueeze(0)).unsqueeze(2)  # (L, N, 1)
    h, c = h0, c0
    outputs: list[Tensor] = [h0] * seq_len
    for t in (range(seq_len - 1, -1, -1) if reverse else range(seq_len)):
        h_next, c_next = step(mode, gates_x[t], h, c, w_hh, b_hh, w_hr)
        if valid is None:
            h, c, outputs[t] = h_next, c_next, h_next
            continue
        h = torch.where(valid[t], h_next, h)
        c = None if c_next is None else torch.where(valid[t], c_next, c)
        outputs[t] = torch.where(valid[t], h_next, 0.0)
    return torch.stack(outputs), h, c


def functorch_active() -> bool:
    """True inside a ``torch.func`` transform (grad, vmap, jvp, jacrev ...)."""
    return torch._C._are_functorch_transforms_active()


def any_wrapped(tensors) -> bool:
    """True when a tensor is a vmap or functorch wrapper rather than plain memory.

    functorch's wrappers (``torch.func``) and the batched tensors of the older vmap that
    ``gradcheck(check_batched_grad=True)`` and ``autograd.grad(is_grads_batched=True)`` use
    have no storage of their own.
    """
    wrapped = torch._C._functorch.is_functorch_wrapped_tensor
    return any(t is not None and (wrapped(t) or not torch._C._has_storage(t)) for t in tensors)
