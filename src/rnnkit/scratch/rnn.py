"""The Elman RNN layer (``torch.nn.RNN``, one layer, one direction).

At every time step ``t``::

    h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)     (or relu instead of tanh)

Shapes: ``x_t`` ``(batch, I)``, ``h_t`` ``(batch, H)``, ``W_ih`` ``(H, I)``, ``W_hh`` ``(H, H)``,
``b_ih`` and ``b_hh`` ``(H,)``.

Backpropagation through time, from the last step to the first. The loss reaches ``h_t`` by two
roads, the output at step ``t`` and the next step ``h_{t+1}``; their sum goes back through the
nonlinearity (``a_t`` is the pre-activation, rows are batch entries)::

    dh_t      = grad_output_t + carry_t         carry_T = grad of h_n (zero if unused)
    da_t      = dh_t * f'(a_t)                   f' = 1 - h_t**2 (tanh), [h_t > 0] (relu)
    dW_hh    += da_t.T @ h_{t-1}                 db_hh += sum over batch of da_t
    carry_t-1 = da_t @ W_hh                      the gradient of h_{t-1}; carry_0 is dh0

``da_t`` is also the gradient of the input projection, from which ``dW_ih``, ``db_ih`` and
``dx_t = da_t @ W_ih`` follow (see :mod:`rnnkit.scratch.layer`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnkit.scratch.functional import relu, relu_grad_from_output, tanh_grad_from_output
from rnnkit.scratch.layer import Params, RecurrentLayer

_ACTIVATIONS = {
    "tanh": (np.tanh, tanh_grad_from_output),
    "relu": (relu, relu_grad_from_output),
}


@dataclass
class RNNTape:
    """Forward record: ``h0`` ``(batch, H)`` and every ``h_t`` in ``hidden`` ``(seq, batch, H)``."""

    h0: np.ndarray
    hidden: np.ndarray


class RNNLayer(RecurrentLayer):
    """One Elman RNN layer over a sequence; ``nonlinearity`` is ``"tanh"`` or ``"relu"``.

    ``forward(inputs (seq, batch, I), h0 (batch, H) | None) -> (outputs (seq, batch, H),
    h_n (batch, H), cache)``; ``backward(cache, grad_outputs, grad_h_n) -> (grad_inputs,
    grad_h0, grads)``. Parameters ``weight_ih (H, I)``, ``weight_hh (H, H)``, ``bias_ih (H,)``,
    ``bias_hh (H,)`` as in torch.
    """

    gate_count = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        nonlinearity: str = "tanh",
        bias: bool = True,
        rng: np.random.Generator | None = None,
    ) -> None:
        if nonlinearity not in _ACTIVATIONS:
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias=bias, rng=rng)

    def _recur(
        self, projected: np.ndarray, h0: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, RNNTape]:
        activation, _ = _ACTIVATIONS[self.nonlinearity]
        weight_hh = self.params["weight_hh"]
        hidden = np.empty((*projected.shape[:2], self.hidden_size))
        h = h0
        for t in range(projected.shape[0]):
            pre_activation = projected[t] + h @ weight_hh.T
            if self.bias:
                pre_activation = pre_activation + self.params["bias_hh"]
            h = activation(pre_activation)
            hidden[t] = h
        return hidden, h, RNNTape(h0=h0, hidden=hidden)

    def _recur_backward(
        self, tape: RNNTape, grad_outputs: np.ndarray, grad_h_n: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, Params]:
        _, activation_grad = _ACTIVATIONS[self.nonlinearity]
        weight_hh = self.params["weight_hh"]
        grad_projected = np.empty_like(grad_outputs)
        grad_weight_hh = np.zeros_like(weight_hh)
        grad_h = grad_h_n  # dL/dh_t arriving from step t+1 (from h_n at the last step)
        for t in reversed(range(grad_outputs.shape[0])):
            h_prev = tape.hidden[t - 1] if t > 0 else tape.h0
            grad_pre = (grad_outputs[t] + grad_h) * activation_grad(tape.hidden[t])
            grad_weight_hh += grad_pre.T @ h_prev
            grad_projected[t] = grad_pre
            grad_h = grad_pre @ weight_hh
        grads = {"weight_hh": grad_weight_hh}
        if self.bias:
            # b_hh is added exactly where the projection's b_ih is: same gradient.
            grads["bias_hh"] = grad_projected.sum(axis=(0, 1))
        return grad_projected, grad_h, grads

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", nonlinearity={self.nonlinearity!r})"
