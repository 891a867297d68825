"""Training runs on the synthetic tasks, recorded step by step for the demonstration.

The loop is deliberately bare (the :class:`rnnkit.train.Trainer` stops on a non-finite loss,
while here a diverging run is an outcome to record, not an error): sample a batch, step, log the
loss and the global gradient norm measured *before* clipping.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from rnnkit.analysis.decay import FlowSummary
from rnnkit.analysis.gradient_flow import GradientFlow, gradient_flow
from rnnkit.analysis.spectrum import recurrent_weight_spectrum
from rnnkit.analysis.tasks import AddingTask, RecallTask, task_loss, task_score

Task = RecallTask | AddingTask


@dataclass
class TrainingHistory:
    """Per-step loss and pre-clipping gradient norm; ``diverged_at``: first non-finite step."""

    losses: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    diverged_at: int | None = None
    seconds: float = 0.0


def train_on_task(
    model: nn.Module,
    task: Task,
    optimizer: torch.optim.Optimizer,
    steps: int,
    batch_size: int,
    generator: torch.Generator,
    clip_norm: float | None = None,
) -> TrainingHistory:
    """Train ``model`` for ``steps`` batches of ``task``; stops early on a NaN/inf loss."""
    history = TrainingHistory()
    started = time.perf_counter()
    model.train()
    for step in range(steps):
        inputs, targets = task.sample(batch_size, generator)
        loss = task_loss(task, model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        limit = clip_norm if clip_norm is not None else math.inf
        norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), limit))
        history.losses.append(float(loss.detach()))
        history.grad_norms.append(norm)
        if not (math.isfinite(history.losses[-1]) and math.isfinite(norm)):
            history.diverged_at = step
            break
        optimizer.step()
    history.seconds = time.perf_counter() - started
    model.eval()
    return history


def evaluate_on_task(model: nn.Module, task: Task, size: int, seed: int) -> float:
    """Accuracy (recall) or MSE (adding) on ``size`` fresh examples drawn with ``seed``."""
    inputs, targets = task.sample(size, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        predictions = model(inputs)
    if not torch.isfinite(predictions).all():
        return math.nan
    return task_score(task, predictions, targets)


def task_gradient_flow(model: nn.Module, task: Task, size: int, seed: int) -> GradientFlow:
    """Gradient flow of the task loss on ``size`` examples drawn with ``seed``."""
    batch = task.sample(size, torch.Generator().manual_seed(seed))
    return gradient_flow(model, batch,
                         loss_fn=lambda m, b: task_loss(task, m(b[0]), b[1]))


def largest_singular_values(layer) -> dict[str, float]:
    """Largest singular value of each gate block of the first layer's ``W_hh``."""
    return {gate.gate: gate.largest for gate in recurrent_weight_spectrum(layer)
            if gate.layer == 0 and gate.direction == 0}


@dataclass
class CellRun:
    """One cell trained on one task setting, with its gradient flow before and after.

    ``flow_*``/``curve_*`` are about ``||∂L/∂h_t||`` of the top layer; ``input_*`` about
    ``||∂L/∂x_t||``, which does not depend on how a cell stores its state (an LSTM keeps its
    memory in ``c``, not ``h``), so memory lengths are read from it.
    """

    cell: str
    delay: int
    score: float
    history: TrainingHistory
    flow_before: FlowSummary
    flow_after: FlowSummary
    curve_before: list[float]
    curve_after: list[float]
    input_before: FlowSummary
    input_after: FlowSummary
    input_curve_before: list[float]
    input_curve_after: list[float]
    spectrum_before: dict[str, float] = field(default_factory=dict)
    spectrum_after: dict[str, float] = field(default_factory=dict)

    def memory_text(self, stage: str) -> str:
        """Memory length read from the input gradient at ``stage`` (``"init"`` or ``"trained"``)."""
        return (self.input_after if stage == "trained" else self.input_before).memory_text

    def to_dict(self) -> dict:
        return {
            "cell": self.cell, "delay": self.delay, "score": self.score,
            "seconds": round(self.history.seconds, 2),
            "diverged_at": self.history.diverged_at,
            "final_loss": self.history.losses[-1] if self.history.losses else None,
            "hidden_flow_before": _summary_dict(self.flow_before),
            "hidden_flow_after": _summary_dict(self.flow_after),
            "input_flow_before": _summary_dict(self.input_before),
            "input_flow_after": _summary_dict(self.input_after),
            "largest_singular_value_w_hh": {"init": self.spectrum_before,
                                            "trained": self.spectrum_after},
        }


def _summary_dict(summary: FlowSummary) -> dict:
    return {"decay_rate": summary.decay_rate, "factor_per_step": summary.factor_per_step,
            "memory_length": summary.memory_length, "censored": summary.censored,
            "verdict": summary.verdict, "span": summary.span}
