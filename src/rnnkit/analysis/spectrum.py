"""Recurrent Jacobian spectrum: how much one step can stretch or shrink the state.

Back-propagation through ``T`` steps multiplies ``T`` step Jacobians ``∂h_t/∂h_{t-1}``; when their
largest singular value stays below 1 the gradient vanishes geometrically, when it stays above 1
it can explode. For a ``tanh`` RNN ``∂h_t/∂h_{t-1} = diag(1 - h_t²) W_hh``, so ``σ_max(W_hh) < 1``
is sufficient for vanishing (Pascanu et al., 2013).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rnnkit.analysis.recording import recorded_forward
from rnnkit.nn import RecurrentBase
from rnnkit.nn.functional import cell_step, input_gates

GATE_NAMES = {
    "RNN_TANH": ("hidden",),
    "RNN_RELU": ("hidden",),
    "LSTM": ("input", "forget", "cell", "output"),
    "GRU": ("reset", "update", "new"),
}


@dataclass(frozen=True)
class GateSpectrum:
    """Singular values (descending) of one gate block of ``W_hh`` of one layer-direction."""

    layer: int
    direction: int
    gate: str
    singular_values: np.ndarray

    @property
    def largest(self) -> float:
        return float(self.singular_values[0])


def _singular_values(matrix: np.ndarray) -> np.ndarray:
    """Descending singular values (LAPACK through NumPy: much faster than torch's on a busy CPU)."""
    return np.linalg.svd(matrix, compute_uv=False)


def _check_layer(layer) -> RecurrentBase:
    if not isinstance(layer, RecurrentBase):
        raise TypeError(f"layer: expected an rnnkit.nn recurrent layer, got {type(layer).__name__}")
    return layer


def recurrent_weight_spectrum(layer: RecurrentBase) -> list[GateSpectrum]:
    """Singular values of each gate block ``(H, P)`` of ``W_hh`` for every layer and direction."""
    _check_layer(layer)
    spectra = []
    for layer_index in range(layer.num_layers):
        for direction in range(layer.num_directions):
            weight = layer.direction_weights(layer_index, direction).weight_hh.detach()
            blocks = np.split(weight.cpu().double().numpy(), len(GATE_NAMES[layer.mode]))
            for gate, block in zip(GATE_NAMES[layer.mode], blocks, strict=True):
                spectra.append(GateSpectrum(layer_index, direction, gate, _singular_values(block)))
    return spectra


def _state_map(layer: RecurrentBase, layer_index: int, gates_x: Tensor):
    """The step as a function of the flat state (``h``, or ``[h; c]`` for an LSTM)."""
    weights = layer.direction_weights(layer_index, 0)
    size = layer.state_size

    def step(state: Tensor) -> Tensor:
        h = state[:size].unsqueeze(0)
        c = state[size:].unsqueeze(0) if layer.mode == "LSTM" else None
        h_next, c_next = cell_step(layer.mode, gates_x, h, c, weights)
        parts = [h_next] if c_next is None else [h_next, c_next]
        return torch.cat(parts, dim=-1).squeeze(0)

    return step


def step_jacobian_spectrum(
    layer: RecurrentBase, sequence: Tensor, layer_index: int = 0
) -> np.ndarray:
    """Singular values of ``∂s_t/∂s_{t-1}`` at every step of a trajectory, ``(seq, state)``.

    ``sequence`` is one input sequence ``(seq, input_size)``; the state ``s`` is ``h`` (and
    ``[h; c]`` for an LSTM, whose memory runs through ``c``). Forward direction; evaluated in
    eval mode without regularisation noise. Rows are sorted descending.
    """
    _check_layer(layer)
    if sequence.dim() != 2 or sequence.shape[1] != layer.input_size:
        raise ValueError(f"sequence: expected shape (seq, {layer.input_size}), "
                         f"got {tuple(sequence.shape)}")
    if not 0 <= layer_index < layer.num_layers:
        raise ValueError(f"layer_index: expected 0..{layer.num_layers - 1}, got {layer_index}")
    was_training = layer.training
    layer.eval()
    try:
        return _trajectory_spectrum(layer, sequence, layer_index)
    finally:
        layer.train(was_training)


def _trajectory_spectrum(layer: RecurrentBase, sequence: Tensor, layer_index: int) -> np.ndarray:
    batched = sequence.unsqueeze(1)  # (seq, 1, input): time-major for the recording
    if layer.batch_first:
        batched = batched.transpose(0, 1)
    with torch.no_grad():
        _, trace = recorded_forward(layer, batched)
    inputs = trace.inputs if layer_index == 0 else [
        torch.cat([trace.states[layer_index - 1][d][t] for d in range(trace.num_directions)], -1)
        for t in range(trace.seq_len)]
    weights = layer.direction_weights(layer_index, 0)
    states = trace.states[layer_index][0]
    cells = trace.cells[layer_index][0] if trace.cells is not None else None
    size = layer.state_size
    previous = torch.zeros(size + (layer.hidden_size if cells is not None else 0),
                           dtype=sequence.dtype, device=sequence.device)
    rows = []
    for t in range(trace.seq_len):
        gates_x = input_gates(inputs[t], weights).detach()
        jacobian = torch.autograd.functional.jacobian(_state_map(layer, layer_index, gates_x),
                                                      previous, vectorize=True)
        rows.append(_singular_values(jacobian.detach().cpu().double().numpy()))
        current = [states[t][0]] if cells is None else [states[t][0], cells[t][0]]
        previous = torch.cat(current).detach()
    return np.stack(rows) if rows else np.zeros((0, previous.numel()))
