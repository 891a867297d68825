"""Gradient flow through time: ``||∂L/∂h_t||`` for every step, layer and direction of a model.

The derivative is the *total* one: ``h_t`` is a node of the graph (see
:mod:`rnnkit.analysis.recording`), so its gradient sums every path from ``h_t`` to the loss,
through ``h_{t+1}, h_{t+2}, ...`` and through the outputs. Example::

    flow = gradient_flow(model, batch)            # loss = model.loss(batch)
    curve = flow.curve()                           # top layer, forward direction
    print(curve.summary().describe())              # vanishing: x0.71 per step ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.analysis.decay import FlowSummary, FlowThresholds, summarize
from rnnkit.analysis.recording import LayerTrace, recording

LossFn = Callable[[nn.Module, Any], Tensor]


@dataclass
class FlowCurve:
    """Gradient norms of one layer-direction (or of the inputs) of one recorded layer call.

    - ``norms``: ``(batch, seq)`` per-row ``||∂L/∂h_t||`` (NaN at padded steps).
    - ``by_distance``: ``(seq,)`` mean over rows of the norm ``d`` steps from the loss end: each
      row's last valid step for a forward direction, step 0 for a reverse one.
    """

    name: str
    layer: int | None
    direction: int
    norms: np.ndarray
    by_distance: np.ndarray
    kind: str = "hidden"  # "hidden" (h_t), "cell" (an LSTM's c_t) or "input" (x_t)

    @property
    def label(self) -> str:
        where = "input" if self.layer is None else f"layer {self.layer}"
        state = " c" if self.kind == "cell" else ""
        return f"{self.name} {where}{state}{' (reverse)' if self.direction else ''}"

    def summary(self, thresholds: FlowThresholds | None = None) -> FlowSummary:
        """Decay rate, memory length and verdict of :attr:`by_distance`."""
        return summarize(self.by_distance, thresholds)


@dataclass
class GradientFlow:
    """All curves of one measurement: ``states`` (``h_t`` per layer-direction), ``cells`` (an
    LSTM's ``c_t``, where its long memory lives) and ``inputs`` (``x_t`` of each layer call)."""

    loss: float
    states: list[FlowCurve]
    inputs: list[FlowCurve]
    cells: list[FlowCurve]

    def curve(self, name: str | None = None, layer: int = -1, direction: int = 0) -> FlowCurve:
        """The state curve of layer ``layer`` (negative counts from the top) of call ``name``."""
        candidates = [c for c in self.states if name is None or c.name == name]
        if not candidates:
            known = sorted({c.name for c in self.states})
            raise KeyError(f"name: no recorded layer {name!r}; recorded: {known}")
        first = candidates[0].name
        layers = sorted({c.layer for c in candidates if c.name == first})
        wanted = layers[layer]
        for curve in candidates:
            if curve.name == first and curve.layer == wanted and curve.direction == direction:
                return curve
        raise KeyError(f"direction: layer {wanted} of {first!r} has no direction {direction}")

    def all_curves(self) -> list[FlowCurve]:
        """States, then cells, then inputs."""
        return [*self.states, *self.cells, *self.inputs]

    def table(self, thresholds: FlowThresholds | None = None) -> list[dict[str, Any]]:
        """One row of summary numbers per curve (states then inputs), for printing."""
        rows = []
        for curve in self.all_curves():
            summary = curve.summary(thresholds)
            at_end = curve.by_distance[0]
            farthest = curve.by_distance[np.isfinite(curve.by_distance)][-1]
            rows.append({"curve": curve.label, "norm_at_loss": float(at_end),
                         "norm_farthest": float(farthest), "decay_rate": summary.decay_rate,
                         "factor": summary.factor_per_step, "memory": summary.memory_length,
                         "censored": summary.censored, "verdict": summary.verdict})
        return rows


def align_by_distance(norms: np.ndarray, lengths: np.ndarray, reverse: bool) -> np.ndarray:
    """Mean over rows of ``norms`` ``(batch, seq)`` at each distance from the loss end."""
    batch, seq_len = norms.shape
    aligned = np.full((batch, seq_len), np.nan)
    for row, length in enumerate(lengths.tolist()):
        values = norms[row, :length]
        aligned[row, :length] = values if reverse else values[::-1]
    counts = np.isfinite(aligned).sum(axis=0)
    totals = np.where(np.isfinite(aligned), aligned, 0.0).sum(axis=0)
    return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


def _row_norms(gradients: list[Tensor | None], like: list[Tensor], valid: np.ndarray) -> np.ndarray:
    """``(batch, seq)`` L2 norm per row of each step's gradient (zero if unused), NaN if padded."""
    columns = [torch.zeros(node.shape[0]) if grad is None
               else grad.detach().reshape(grad.shape[0], -1).norm(dim=1).cpu().double()
               for grad, node in zip(gradients, like, strict=True)]
    norms = torch.stack(columns, dim=1).numpy()
    return np.where(valid, norms, np.nan)


def _trace_nodes(trace: LayerTrace) -> list[tuple[str, int | None, int, list[Tensor]]]:
    """``(kind, layer, direction, per-step nodes)``: ``h`` lists, ``c`` lists, the inputs."""
    groups: list[tuple[str, int | None, int, list[Tensor]]] = [
        ("hidden", layer, direction, steps)
        for layer, directions in enumerate(trace.states)
        for direction, steps in enumerate(directions)]
    groups += [("cell", layer, direction, steps)
               for layer, directions in enumerate(trace.cells or [])
               for direction, steps in enumerate(directions)]
    if trace.inputs and trace.inputs[0].requires_grad:
        groups.append(("input", None, 0, trace.inputs))
    return groups


def gradient_flow(
    model: nn.Module, batch: Any = None, *, loss_fn: LossFn | None = None, training: bool = False
) -> GradientFlow:
    """Measure ``||∂L/∂h_t||``, ``||∂L/∂c_t||`` (LSTM) and ``||∂L/∂x_t||`` for every recurrent
    layer call of ``model``.

    - ``loss_fn(model, batch)`` returns the scalar loss (default ``model.loss(batch)``); for a
      bare layer pass e.g. ``lambda layer, x: layer(x)[0][-1].sum()``.
    - ``training``: measure in training mode (dropout on); default eval mode. The mode is restored.
    Parameters' ``.grad`` are left untouched.
    """
    if loss_fn is None:
        if not hasattr(model, "loss"):
            raise TypeError(f"loss_fn: {type(model).__name__} has no loss(batch); pass loss_fn")
        loss_fn = lambda m, b: m.loss(b)  # noqa: E731
    was_training = model.training
    model.train(training)
    try:
        with torch.enable_grad(), recording(model) as recorder:
            loss = loss_fn(model, batch)
        if not isinstance(loss, Tensor) or loss.numel() != 1 or not loss.requires_grad:
            raise ValueError("loss_fn: expected a scalar tensor that depends on the model, got "
                             f"{type(loss).__name__} {getattr(loss, 'shape', '')}")
        groups = [(trace, *group) for trace in recorder.traces for group in _trace_nodes(trace)]
        nodes = [node for *_, steps in groups for node in steps]
        gradients = list(torch.autograd.grad(loss, nodes, allow_unused=True))
    finally:
        model.train(was_training)
    return _collect(float(loss.detach()), groups, gradients)


def _collect(loss: float, groups, gradients: list[Tensor | None]) -> GradientFlow:
    flow = GradientFlow(loss, [], [], [])
    lists = {"hidden": flow.states, "cell": flow.cells, "input": flow.inputs}
    offset = 0
    for trace, kind, layer, direction, steps in groups:
        valid = trace.valid().numpy()
        norms = _row_norms(gradients[offset:offset + len(steps)], steps, valid)
        offset += len(steps)
        by_distance = align_by_distance(norms, trace.lengths.numpy(), reverse=bool(direction))
        lists[kind].append(FlowCurve(trace.name, layer, direction, norms, by_distance, kind))
    return flow
