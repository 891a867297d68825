"""One recurrent step of each cell, as plain functions of tensors.

These are the equations every rnnkit layer runs (the ``python`` backend runs them directly; the
native engine must agree with them). ``gates_x`` is the input projection ``W_ih x_t + b_ih``,
computed outside the step so that a whole sequence needs one large matrix product.

Shape legend: ``B`` batch, ``H`` hidden size, ``P`` output size of the recurrent state
(``proj_size`` for a projected LSTM, else ``H``), ``G`` number of gates (RNN 1, GRU 3, LSTM 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

GATE_COUNT = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


@dataclass(frozen=True)
class DirectionWeights:
    """The parameters of one layer in one direction, named as in ``torch.nn``.

    - ``weight_ih``: ``(G*H, input)``; ``weight_hh``: ``(G*H, P)``
    - ``bias_ih``, ``bias_hh``: ``(G*H,)`` or ``None``
    - ``weight_hr``: ``(P, H)`` for a projected LSTM, else ``None``
    - ``norm``: layer-normalisation parameters when the layer uses ``layer_norm``
    """

    weight_ih: Tensor
    weight_hh: Tensor
    bias_ih: Tensor | None
    bias_hh: Tensor | None
    weight_hr: Tensor | None = None
    norm: GateNorm | None = None


@dataclass(frozen=True)
class GateNorm:
    """Gains and biases of the layer normalisations of one layer-direction (Ba et al., 2016).

    The input and recurrent projections are normalised separately, each over all its gates;
    an LSTM also normalises its cell state before the output ``tanh``.
    """

    ih_weight: Tensor
    ih_bias: Tensor
    hh_weight: Tensor
    hh_bias: Tensor
    cell_weight: Tensor | None = None
    cell_bias: Tensor | None = None


def _normalise(values: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    return F.layer_norm(values, (values.shape[-1],), weight, bias)


def input_gates(x: Tensor, weights: DirectionWeights) -> Tensor:
    """``W_ih x + b_ih`` for any leading shape: ``(..., input)`` -> ``(..., G*H)``."""
    if weights.norm is None:
        return F.linear(x, weights.weight_ih, weights.bias_ih)
    projected = _normalise(F.linear(x, weights.weight_ih), weights.norm.ih_weight,
                           weights.norm.ih_bias)
    return projected if weights.bias_ih is None else projected + weights.bias_ih


def hidden_gates(h: Tensor, weights: DirectionWeights) -> Tensor:
    """``W_hh h + b_hh``: ``(B, P)`` -> ``(B, G*H)``."""
    if weights.norm is None:
        return F.linear(h, weights.weight_hh, weights.bias_hh)
    projected = _normalise(F.linear(h, weights.weight_hh), weights.norm.hh_weight,
                           weights.norm.hh_bias)
    return projected if weights.bias_hh is None else projected + weights.bias_hh


def rnn_step(gates_x: Tensor, h: Tensor, weights: DirectionWeights, relu: bool = False) -> Tensor:
    """Elman step: ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` (or ReLU).

    ``gates_x`` ``(B, H)``, ``h`` ``(B, H)`` -> ``(B, H)``.
    """
    pre_activation = gates_x + hidden_gates(h, weights)
    return torch.relu(pre_activation) if relu else torch.tanh(pre_activation)


def lstm_step(
    gates_x: Tensor, h: Tensor, c: Tensor, weights: DirectionWeights
) -> tuple[Tensor, Tensor]:
    """LSTM step with torch's gate order ``i, f, g, o``::

        i = σ(W_ii x + b_ii + W_hi h + b_hi)      f = σ(W_if x + b_if + W_hf h + b_hf)
        g = tanh(W_ig x + b_ig + W_hg h + b_hg)   o = σ(W_io x + b_io + W_ho h + b_ho)
        c' = f ⊙ c + i ⊙ g                        h' = o ⊙ tanh(c')   (then h' = W_hr h')

    ``gates_x`` ``(B, 4H)``, ``h`` ``(B, P)``, ``c`` ``(B, H)`` -> ``(h' (B, P), c' (B, H))``.
    """
    gates = gates_x + hidden_gates(h, weights)
    input_gate, forget_gate, candidate, output_gate = gates.chunk(4, dim=-1)
    c_next = torch.sigmoid(forget_gate) * c + torch.sigmoid(input_gate) * torch.tanh(candidate)
    cell_for_output = c_next
    if weights.norm is not None and weights.norm.cell_weight is not None:
        cell_for_output = _normalise(c_next, weights.norm.cell_weight, weights.norm.cell_bias)
    h_next = torch.sigmoid(output_gate) * torch.tanh(cell_for_output)
    if weights.weight_hr is not None:
        h_next = F.linear(h_next, weights.weight_hr)
    return h_next, c_next


def gru_step(gates_x: Tensor, h: Tensor, weights: DirectionWeights) -> Tensor:
    """GRU step in torch's formulation (the reset gate scales ``W_hn h + b_hn``)::

        r = σ(W_ir x + b_ir + W_hr h + b_hr)      z = σ(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
        h' = (1 - z) ⊙ n + z ⊙ h

    ``gates_x`` ``(B, 3H)``, ``h`` ``(B, H)`` -> ``(B, H)``.
    """
    gates_h = hidden_gates(h, weights)
    x_reset, x_update, x_new = gates_x.chunk(3, dim=-1)
    h_reset, h_update, h_new = gates_h.chunk(3, dim=-1)
    reset = torch.sigmoid(x_reset + h_reset)
    update = torch.sigmoid(x_update + h_update)
    candidate = torch.tanh(x_new + reset * h_new)
    return candidate + update * (h - candidate)


def cell_step(
    mode: str, gates_x: Tensor, h: Tensor, c: Tensor | None, weights: DirectionWeights
) -> tuple[Tensor, Tensor | None]:
    """Dispatch one step by ``mode`` (``'RNN_TANH' | 'RNN_RELU' | 'LSTM' | 'GRU'``).

    Returns ``(h_next, c_next)``; ``c_next`` is ``None`` except for LSTM.
    """
    if mode == "LSTM":
        return lstm_step(gates_x, h, c, weights)
    if mode == "GRU":
        return gru_step(gates_x, h, weights), None
    return rnn_step(gates_x, h, weights, relu=mode == "RNN_RELU"), None
