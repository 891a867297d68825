"""Run a recurrent layer step by step, keeping every hidden state as a node of the autograd graph.

The fused and native kernels hide the per-step states inside one operation, so the gradient of a
loss with respect to ``h_t`` cannot be read from them. :func:`recorded_forward` computes exactly
what :meth:`rnnkit.nn.RecurrentBase.forward` computes (same weights, same step functions from
:mod:`rnnkit.nn.functional`, same ``lengths`` semantics) but returns the states of every layer,
direction and step in a :class:`LayerTrace`. :func:`recording` swaps this in for every recurrent
layer of a model for the duration of a ``with`` block, without changing the model.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from rnnkit.nn import RecurrentBase
from rnnkit.nn.functional import DirectionWeights, cell_step, input_gates
from rnnkit.nn.recurrence import dropout_mask, step_mask, zoneout_update
from rnnkit.nn.sequence import repack_like


@dataclass
class LayerTrace:
    """The per-step tensors of one call of a recurrent layer (time-major lists).

    - ``states[layer][direction][t]``: ``h`` after step ``t``, ``(batch, P)`` — for the reverse
      direction, after it has read steps ``t..end``.
    - ``cells``: the same for an LSTM's ``c`` (``None`` for RNN and GRU).
    - ``inputs[t]``: the layer's input at step ``t``, ``(batch, input_size)``.
    - ``lengths``: ``(batch,)`` valid steps per row (all ``seq_len`` when none were given).
    """

    name: str
    mode: str
    num_directions: int
    states: list[list[list[Tensor]]] = field(default_factory=list)
    cells: list[list[list[Tensor]]] | None = None
    inputs: list[Tensor] = field(default_factory=list)
    lengths: Tensor | None = None

    @property
    def num_layers(self) -> int:
        return len(self.states)

    @property
    def seq_len(self) -> int:
        return len(self.inputs)

    def hidden(self, layer: int = -1, direction: int = 0) -> Tensor:
        """States of one layer-direction as a detached ``(batch, seq, P)`` tensor."""
        return torch.stack(self.states[layer][direction], dim=1).detach()

    def valid(self) -> Tensor:
        """``(batch, seq)`` boolean mask of valid steps."""
        steps = torch.arange(self.seq_len)
        return steps.unsqueeze(0) < self.lengths.cpu().unsqueeze(1)  # type: ignore[union-attr]


def _step_inputs(x: Tensor) -> list[Tensor]:
    """Split ``x`` ``(seq, batch, input)`` into per-step nodes that the gradient can reach."""
    if torch.is_grad_enabled() and not x.requires_grad:
        # Inputs such as one-hot vectors or series values are leaves; make them differentiable so
        # the gradient reaching each input step can be measured.
        x = x.detach().requires_grad_(True)
    return list(x.unbind(0))


def _run_direction(
    layer: RecurrentBase,
    steps: list[Tensor],
    h0: Tensor,
    c0: Tensor | None,
    weights: DirectionWeights,
    valid: Tensor | None,
    reverse: bool,
) -> tuple[list[Tensor], list[Tensor] | None, list[Tensor]]:
    """One layer-direction: per-step states ``h``, ``c`` and outputs (zero at padded steps)."""
    seq_len = len(steps)
    regularisation = layer.regularisation
    recurrent_mask = None
    if layer.training and regularisation.recurrent_dropout > 0:
        recurrent_mask = dropout_mask(h0, regularisation.recurrent_dropout)
    h, c = h0, c0
    states: list[Tensor | None] = [None] * seq_len
    cells: list[Tensor | None] = [None] * seq_len
    outputs: list[Tensor | None] = [None] * seq_len
    for t in (range(seq_len - 1, -1, -1) if reverse else range(seq_len)):
        h_in = h if recurrent_mask is None else h * recurrent_mask
        h_next, c_next = cell_step(layer.mode, input_gates(steps[t], weights), h_in, c, weights)
        if regularisation.zoneout > 0:
            h_next = zoneout_update(h, h_next, regularisation.zoneout, layer.training)
            if c_next is not None:
                c_next = zoneout_update(c, c_next, regularisation.zoneout, layer.training)
        if valid is None:
            h, c, outputs[t] = h_next, c_next, h_next
        else:
            h = torch.where(valid[t], h_next, h)
            c = None if c_next is None else torch.where(valid[t], c_next, c)
            outputs[t] = torch.where(valid[t], h_next, 0.0)
        states[t], cells[t] = h, c
    return states, (cells if c0 is not None else None), outputs  # type: ignore[return-value]


def recorded_forward(
    layer: RecurrentBase, input: Tensor | PackedSequence, hx=None, *, lengths=None, name: str = ""
) -> tuple[tuple, LayerTrace]:
    """``layer(input, hx, lengths=lengths)`` computed step by step, plus its :class:`LayerTrace`.

    Returns ``((output, state), trace)`` where ``(output, state)`` equals the layer's own forward
    result (same shapes and conventions: ``batch_first``, unbatched, PackedSequence).
    """
    # The layer's own validation and state set-up, so errors and conventions match forward().
    x, lengths, packed, batched = layer._prepare_input(input, lengths)
    h0, c0 = layer._prepare_state(hx, x.shape[1], batched)
    seq_len, batch = x.shape[0], x.shape[1]
    valid = step_mask(lengths, seq_len, x.device)
    trace = LayerTrace(name, layer.mode, layer.num_directions,
                       cells=[] if c0 is not None else None,
                       lengths=(lengths.cpu() if lengths is not None
                                else torch.full((batch,), seq_len, dtype=torch.int64)))
    steps = _step_inputs(x)
    trace.inputs = steps
    h_n, c_n = [], []
    for layer_index in range(layer.num_layers):
        direction_states, direction_cells, direction_outputs = [], [], []
        for direction in range(layer.num_directions):
            index = layer_index * layer.num_directions + direction
            states, cells, outputs = _run_direction(
                layer, steps, h0[index], None if c0 is None else c0[index],
                layer.direction_weights(layer_index, direction), valid, bool(direction))
            direction_states.append(states)
            direction_cells.append(cells)
            direction_outputs.append(outputs)
            h_n.append(states[-1 if direction == 0 else 0] if seq_len else h0[index])
            if c0 is not None:
                c_n.append(cells[-1 if direction == 0 else 0] if seq_len else c0[index])
        trace.states.append(direction_states)
        if trace.cells is not None:
            trace.cells.append(direction_cells)
        steps = [torch.cat(parts, dim=-1) for parts in zip(*direction_outputs, strict=True)]
        if layer.dropout and layer.training and layer_index < layer.num_layers - 1:
            steps = [F.dropout(step, layer.dropout, training=True) for step in steps]
    return _assemble(layer, steps, h_n, c_n, packed, batched, x), trace


def _assemble(layer: RecurrentBase, steps, h_n, c_n, packed, batched, x: Tensor):
    """Shape the top layer's outputs and final states like :meth:`RecurrentBase.forward`."""
    if steps:
        output = torch.stack(steps)
    else:
        output = x.new_zeros(0, x.shape[1], layer.state_size * layer.num_directions)
    h_final = torch.stack(h_n)
    c_final = torch.stack(c_n) if c_n else None
    if packed is not None:
        output = repack_like(output, packed)
    elif not batched:
        output, h_final = output.squeeze(1), h_final.squeeze(1)
        c_final = None if c_final is None else c_final.squeeze(1)
    elif layer.batch_first:
        output = output.transpose(0, 1)
    return output, ((h_final, c_final) if layer.mode == "LSTM" else h_final)


class Recorder:
    """Collects a :class:`LayerTrace` for every call of every recurrent layer while recording."""

    def __init__(self) -> None:
        self.traces: list[LayerTrace] = []

    def trace(self, name: str | None = None) -> LayerTrace:
        """The first trace of the layer called ``name`` (any layer when ``None``)."""
        for trace in self.traces:
            if name is None or trace.name == name or trace.name.startswith(f"{name}#"):
                return trace
        known = sorted({t.name for t in self.traces})
        raise KeyError(f"name: no recorded recurrent layer {name!r}; recorded: {known}")


def recurrent_layers(model: nn.Module) -> list[tuple[str, RecurrentBase]]:
    """Every :class:`rnnkit.nn.RecurrentBase` inside ``model`` (``model`` itself included)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    return [(name or "rnn", module) for name, module in model.named_modules()
            if isinstance(module, RecurrentBase)]


@contextmanager
def recording(model: nn.Module) -> Iterator[Recorder]:
    """Within the block, every recurrent layer of ``model`` runs step by step and records a trace.

    The swap replaces each layer's ``forward`` on the instance only and is undone on exit; the
    weights are the layer's own, so gradients reach the model's parameters as usual. Calls of
    ``layer.step()`` (streaming decoders) are not recorded.
    """
    layers = recurrent_layers(model)
    if not layers:
        raise ValueError(f"model: expected a model with rnnkit.nn recurrent layers, found none in "
                         f"{type(model).__name__}")
    recorder = Recorder()
    calls: dict[str, int] = {}

    def make_forward(name: str, layer: RecurrentBase):
        def forward(input, hx=None, *, lengths=None):
            calls[name] = calls.get(name, 0) + 1
            label = name if calls[name] == 1 else f"{name}#{calls[name]}"
            result, trace = recorded_forward(layer, input, hx, lengths=lengths, name=label)
            recorder.traces.append(trace)
            return result
        return forward

    for name, layer in layers:
        layer.forward = make_forward(name, layer)  # type: ignore[method-assign]
    try:
        yield recorder
    finally:
        for _, layer in layers:
            del layer.forward
