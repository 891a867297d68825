"""The GRU layer (``torch.nn.GRU``, one layer, one direction), in torch's formulation.

At every time step ``t`` (``σ`` the sigmoid, ``*`` elementwise)::

    r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)             reset gate
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)             update gate
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))  candidate
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

Note that the reset gate multiplies ``W_hn h_{t-1} + b_hn`` *including its bias*, which is why
torch keeps two bias vectors: ``b_in`` and ``b_hn`` are not interchangeable as in the RNN and
LSTM. ``weight_ih`` stacks ``[W_ir; W_iz; W_in]`` ``(3H, I)`` in torch's order r, z, n, and
likewise ``weight_hh`` ``(3H, H)``, ``bias_ih`` and ``bias_hh`` ``(3H,)``.

Backpropagation through time, at step ``t`` (``s = W_hn h_{t-1} + b_hn``)::

    dh_t  = grad_output_t + carry_t
    dn    = dh_t * (1 - z_t)        dz = dh_t * (h_{t-1} - n_t)
    da_n  = dn * (1 - n_t**2)       dr = da_n * s
    da_r  = dr * r(1 - r)           da_z = dz * z(1 - z)
    input-side gate gradients  [da_r, da_z, da_n]       -> dW_ih, db_ih, dx_t
    hidden-side gate gradients [da_r, da_z, da_n * r_t] -> dW_hh, db_hh
    carry_t-1 = dh_t * z_t + (hidden-side gradients) @ W_hh
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnkit.scratch.functional import sigmoid, sigmoid_grad_from_output, tanh_grad_from_output
from rnnkit.scratch.layer import Params, RecurrentLayer


@dataclass
class GRUTape:
    """Forward record: gates ``(seq, batch, H)`` each, ``W_hn h_{t-1} + b_hn``, every ``h_t``."""

    h0: np.ndarray
    reset_gate: np.ndarray
    update_gate: np.ndarray
    candidate: np.ndarray
    hidden_candidate_term: np.ndarray  # s_t = W_hn h_{t-1} + b_hn, before the reset gate
    hidden: np.ndarray

    @classmethod
    def empty(cls, seq: int, h0: np.ndarray) -> GRUTape:
        """A tape with room for ``seq`` steps, sized from the initial state."""
        return cls(h0, *(np.empty((seq, *h0.shape)) for _ in range(5)))


class GRULayer(RecurrentLayer):
    """One GRU layer over a sequence.

    ``forward(inputs (seq, batch, I), h0 (batch, H) | None) -> (outputs (seq, batch, H),
    h_n (batch, H), cache)``; ``backward(cache, grad_outputs, grad_h_n) -> (grad_inputs,
    grad_h0, grads)``.
    """

    gate_count = 3

    def _recur(
        self, projected: np.ndarray, h0: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, GRUTape]:
        H = self.hidden_size
        tape = GRUTape.empty(projected.shape[0], h0)
        h = h0
        for t in range(projected.shape[0]):
            from_input = projected[t]  # (batch, 3H): r, z, n
            from_hidden = h @ self.params["weight_hh"].T
            if self.bias:
                from_hidden = from_hidden + self.params["bias_hh"]
            r = sigmoid(from_input[:, :H] + from_hidden[:, :H])
            z = sigmoid(from_input[:, H : 2 * H] + from_hidden[:, H : 2 * H])
            n = np.tanh(from_input[:, 2 * H :] + r * from_hidden[:, 2 * H :])
            h = (1.0 - z) * n + z * h
            tape.reset_gate[t], tape.update_gate[t], tape.candidate[t] = r, z, n
            tape.hidden_candidate_term[t], tape.hidden[t] = from_hidden[:, 2 * H :], h
        return tape.hidden, h, tape

    def _recur_backward(
        self, tape: GRUTape, grad_outputs: np.ndarray, grad_h_n: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, Params]:
        weight_hh = self.params["weight_hh"]
        grad_weight_hh = np.zeros_like(weight_hh)
        grad_from_hidden_sum = np.zeros(weight_hh.shape[0])
        grad_projected = np.empty((*grad_outputs.shape[:2], weight_hh.shape[0]))
        grad_h = grad_h_n  # carried back from step t+1
        for t in reversed(range(grad_outputs.shape[0])):
            h_prev = tape.hidden[t - 1] if t > 0 else tape.h0
            r, z, n = tape.reset_gate[t], tape.update_gate[t], tape.candidate[t]
            grad_h_t = grad_outputs[t] + grad_h
            grad_n_pre = grad_h_t * (1.0 - z) * tanh_grad_from_output(n)
            grad_z_pre = grad_h_t * (h_prev - n) * sigmoid_grad_from_output(z)
            grad_r_pre = grad_n_pre * tape.hidden_candidate_term[t] * sigmoid_grad_from_output(r)
            grad_projected[t] = np.concatenate([grad_r_pre, grad_z_pre, grad_n_pre], axis=1)
            grad_from_hidden = np.concatenate([grad_r_pre, grad_z_pre, grad_n_pre * r], axis=1)
            grad_weight_hh += grad_from_hidden.T @ h_prev
            grad_from_hidden_sum += grad_from_hidden.sum(axis=0)
            grad_h = grad_h_t * z + grad_from_hidden @ weight_hh
        grads = {"weight_hh": grad_weight_hh}
        if self.bias:
            grads["bias_hh"] = grad_from_hidden_sum
        return grad_projected, grad_h, grads
