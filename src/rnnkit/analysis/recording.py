"""Run a recurrent layer step by step, keeping every hidden state as a node of the autograd graph.

The fused and native kernels hide the per-step states inside one operation, so the gradient of a
loss with respect to ``h_t`` cannot be read from them. :func:`recorded_forward` runs the layer's
own forward on its python backend with a state observer
(:meth:`rnnkit.nn.RecurrentBase.observing`) and returns the states of every layer, direction
and step in a :class:`LayerTrace`. :func:`recording` swaps this in for every recurrent
layer of a model for the duration of a ``with`` block, without changing the model.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from rnnkit.nn import RecurrentBase
from rnnkit.nn.sequence import repack_like, unpack


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


def _differentiable(x: Tensor) -> Tensor:
    """Inputs such as one-hot vectors or series values are leaves: make them differentiable so
    the gradient reaching each input step can be measured."""
    if torch.is_grad_enabled() and not x.requires_grad:
        return x.detach().requires_grad_(True)
    return x


def _per_step(x: Tensor, time_axis: int) -> tuple[list[Tensor], Tensor]:
    """Split ``x`` into per-step graph nodes and rebuild it from them, so that the gradient of
    each step can be read while the layer still sees one tensor."""
    steps = list(_differentiable(x).unbind(time_axis))
    return steps, torch.stack(steps, time_axis)


def recorded_forward(
    layer: RecurrentBase, input: Tensor | PackedSequence, hx=None, *, lengths=None, name: str = ""
) -> tuple[tuple, LayerTrace]:
    """``layer(input, hx, lengths=lengths)`` with every per-step state recorded in a trace.

    Returns ``((output, state), trace)``; ``(output, state)`` is the layer's own result (it runs
    the layer, through :meth:`~rnnkit.nn.RecurrentBase.observing`, on the python backend).
    """
    packed = input if isinstance(input, PackedSequence) else None
    if packed is not None:
        if lengths is not None:
            raise ValueError(f"{type(layer).__name__}: pass either a PackedSequence or lengths=, "
                             "not both")
        input, lengths = unpack(packed)  # time-major (seq, batch, feature)
        time_axis = 0
    else:
        time_axis = 1 if input.dim() == 3 and layer.batch_first else 0
    steps, rebuilt = _per_step(input, time_axis)
    if packed is not None and layer.batch_first:
        rebuilt = rebuilt.transpose(0, 1)
    seq_len = len(steps)
    batch = 1 if input.dim() == 2 else input.shape[1 - time_axis]
    trace = LayerTrace(
        name, layer.mode, layer.num_directions,
        states=[[[None] * seq_len for _ in range(layer.num_directions)]
                for _ in range(layer.num_layers)],
        cells=None, inputs=[s if s.dim() == 2 else s.unsqueeze(0) for s in steps],
        lengths=(torch.full((batch,), seq_len, dtype=torch.int64) if lengths is None
                 else torch.as_tensor(lengths).detach().to("cpu", torch.int64)))
    if layer.mode == "LSTM":
        trace.cells = [[[None] * seq_len for _ in range(layer.num_directions)]
                       for _ in range(layer.num_layers)]

    def observe(layer_index: int, direction: int, t: int, h: Tensor, c: Tensor | None) -> None:
        trace.states[layer_index][direction][t] = h
        if trace.cells is not None:
            trace.cells[layer_index][direction][t] = c

    with layer.observing(observe):
        # The class's forward: `recording` replaces the instance's with this very function.
        output, state = type(layer).forward(layer, rebuilt, hx, lengths=lengths)
    if packed is not None:
        output = repack_like(output.transpose(0, 1) if layer.batch_first else output, packed)
    return (output, state), trace


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
