"""The LSTM layer (``torch.nn.LSTM``, one layer, one direction), with optional projection.

At every time step ``t`` (``σ`` the sigmoid, ``*`` elementwise)::

    i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)      input gate
    f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)      forget gate
    g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)   candidate cell
    o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)      output gate
    c_t = f_t * c_{t-1} + i_t * g_t
    m_t = o_t * tanh(c_t)
    h_t = m_t                  (or W_hr m_t when proj_size > 0)

``weight_ih`` stacks ``[W_ii; W_if; W_ig; W_io]`` ``(4H, I)`` in torch's order i, f, g, o, and
likewise ``weight_hh`` ``(4H, P)``, ``bias_ih`` and ``bias_hh`` ``(4H,)``; ``weight_hr`` is
``(P, H)``. ``c_t`` is ``(batch, H)``, ``h_t`` is ``(batch, P)`` with ``P = proj_size or H``.

Backpropagation through time carries two gradients back, ``dh`` and ``dc``. At step ``t``::

    dm   = dh_t (@ W_hr if projected)       dW_hr += dh_t.T @ m_t
    do   = dm * tanh(c_t)
    dc_t = carry_c + dm * o_t * (1 - tanh(c_t)**2)
    di   = dc_t * g_t      df = dc_t * c_{t-1}      dg = dc_t * i_t
    carry_c for step t-1 = dc_t * f_t
    gate pre-activations: di*i(1-i), df*f(1-f), dg*(1-g**2), do*o(1-o)  ->  da (batch, 4H)
    dW_hh += da.T @ h_{t-1};  carry_h for step t-1 = da @ W_hh

The forget gate passes ``dc`` back multiplied only by ``f_t``: this additive path is why LSTMs
carry gradients over long spans better than the plain RNN's repeated ``W_hh`` products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnkit.scratch._validate import check_array
from rnnkit.scratch.functional import sigmoid, sigmoid_grad_from_output, tanh_grad_from_output
from rnnkit.scratch.layer import Params, RecurrentLayer

LSTMState = tuple[np.ndarray, np.ndarray]
"""``(h, c)``: ``h`` ``(batch, P)``, ``c`` ``(batch, H)``."""


@dataclass
class LSTMTape:
    """Forward record, one row per step: gates ``(seq, batch, H)`` each, states, ``tanh(c_t)``."""

    h0: np.ndarray
    c0: np.ndarray
    input_gate: np.ndarray
    forget_gate: np.ndarray
    candidate: np.ndarray
    output_gate: np.ndarray
    cell: np.ndarray
    tanh_cell: np.ndarray
    unprojected: np.ndarray  # m_t = o_t * tanh(c_t)
    hidden: np.ndarray

    @classmethod
    def empty(cls, seq: int, h0: np.ndarray, c0: np.ndarray) -> LSTMTape:
        """A tape with room for ``seq`` steps, sized from the initial state."""
        per_cell = [np.empty((seq, *c0.shape)) for _ in range(7)]
        return cls(h0, c0, *per_cell, hidden=np.empty((seq, *h0.shape)))


class LSTMLayer(RecurrentLayer):
    """One LSTM layer over a sequence; ``proj_size > 0`` adds torch's output projection.

    ``forward(inputs (seq, batch, I), (h0 (batch, P), c0 (batch, H)) | None) -> (outputs
    (seq, batch, P), (h_n, c_n), cache)``; ``backward(cache, grad_outputs, (grad_h_n,
    grad_c_n)) -> (grad_inputs, (grad_h0, grad_c0), grads)``.
    """

    gate_count = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        proj_size: int = 0,
        bias: bool = True,
        rng: np.random.Generator | None = None,
    ) -> None:
        if isinstance(proj_size, bool) or not isinstance(proj_size, (int, np.integer)):
            raise TypeError(f"proj_size must be an int, got {type(proj_size).__name__}")
        if not 0 <= proj_size < hidden_size:
            raise ValueError(
                f"proj_size must be in [0, hidden_size={hidden_size}), got {proj_size}"
            )
        self.proj_size = int(proj_size)
        super().__init__(input_size, hidden_size, bias=bias, rng=rng)

    @property
    def state_size(self) -> int:
        return self.proj_size or self.hidden_size

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = super().param_shapes()
        if self.proj_size:
            shapes["weight_hr"] = (self.proj_size, self.hidden_size)
        return shapes

    def _zero_state(self, batch: int) -> LSTMState:
        return np.zeros((batch, self.state_size)), np.zeros((batch, self.hidden_size))

    def _check_state(self, state: object, batch: int, name: str) -> LSTMState:
        if not isinstance(state, tuple) or len(state) != 2:
            raise TypeError(
                f"{name} must be a tuple (h, c) for an LSTM, got {type(state).__name__}"
            )
        h, c = state
        zero_h, zero_c = self._zero_state(batch)
        h = zero_h if h is None else check_array(f"{name}[0] (h)", h, zero_h.shape)
        c = zero_c if c is None else check_array(f"{name}[1] (c)", c, zero_c.shape)
        return h, c

    def _recur(
        self, projected: np.ndarray, state: LSTMState
    ) -> tuple[np.ndarray, LSTMState, LSTMTape]:
        H = self.hidden_size
        tape = LSTMTape.empty(projected.shape[0], *state)
        h, c = state
        for t in range(projected.shape[0]):
            gates = projected[t] + h @ self.params["weight_hh"].T  # (batch, 4H): i, f, g, o
            if self.bias:
                gates = gates + self.params["bias_hh"]
            i = sigmoid(gates[:, :H])
            f = sigmoid(gates[:, H : 2 * H])
            g = np.tanh(gates[:, 2 * H : 3 * H])
            o = sigmoid(gates[:, 3 * H :])
            c = f * c + i * g
            tanh_c = np.tanh(c)
            m = o * tanh_c
            h = m @ self.params["weight_hr"].T if self.proj_size else m
            tape.input_gate[t], tape.forget_gate[t] = i, f
            tape.candidate[t], tape.output_gate[t] = g, o
            tape.cell[t], tape.tanh_cell[t], tape.unprojected[t], tape.hidden[t] = c, tanh_c, m, h
        return tape.hidden, (h, c), tape

    def _recur_backward(
        self, tape: LSTMTape, grad_outputs: np.ndarray, grad_final_state: LSTMState
    ) -> tuple[np.ndarray, LSTMState, Params]:
        weight_hh = self.params["weight_hh"]
        grads = {"weight_hh": np.zeros_like(weight_hh)}
        if self.proj_size:
            grads["weight_hr"] = np.zeros_like(self.params["weight_hr"])
        grad_projected = np.empty((*grad_outputs.shape[:2], 4 * self.hidden_size))
        grad_h, grad_c = grad_final_state  # carried back from step t+1
        for t in reversed(range(grad_outputs.shape[0])):
            h_prev = tape.hidden[t - 1] if t > 0 else tape.h0
            c_prev = tape.cell[t - 1] if t > 0 else tape.c0
            i, f = tape.input_gate[t], tape.forget_gate[t]
            g, o = tape.candidate[t], tape.output_gate[t]
            grad_h_t = grad_outputs[t] + grad_h
            if self.proj_size:
                grads["weight_hr"] += grad_h_t.T @ tape.unprojected[t]
                grad_m = grad_h_t @ self.params["weight_hr"]
            else:
                grad_m = grad_h_t
            grad_o = grad_m * tape.tanh_cell[t]
            grad_c_t = grad_c + grad_m * o * tanh_grad_from_output(tape.tanh_cell[t])
            grad_gates = np.concatenate(
                [
                    grad_c_t * g * sigmoid_grad_from_output(i),
                    grad_c_t * c_prev * sigmoid_grad_from_output(f),
                    grad_c_t * i * tanh_grad_from_output(g),
                    grad_o * sigmoid_grad_from_output(o),
                ],
                axis=1,
            )
            grads["weight_hh"] += grad_gates.T @ h_prev
            grad_projected[t] = grad_gates
            grad_h = grad_gates @ weight_hh
            grad_c = grad_c_t * f
        if self.bias:
            grads["bias_hh"] = grad_projected.sum(axis=(0, 1))
        return grad_projected, (grad_h, grad_c), grads

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", proj_size={self.proj_size})"
