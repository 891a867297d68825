"""Hooks into the training loop: a base class to override and the record each step produces."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rnnkit.train.trainer import Trainer


@dataclass(frozen=True)
class StepRecord:
    """What one optimizer step produced.

    ``step`` counts optimizer steps taken so far (1 after the first); ``epoch`` is 0-based;
    ``batch`` counts the batches of this epoch consumed so far; ``lr`` is the rate the step used;
    ``grad_norm`` is the global L2 norm of the gradients *before* clipping.
    """

    step: int
    epoch: int
    batch: int
    lr: float
    loss: float
    grad_norm: float


class Callback:
    """Override any of these; the trainer calls them in the order the callbacks were given.

    Order within a run: ``on_fit_start`` once; per step ``on_batch_end``; after each evaluation
    ``on_eval_end``; ``on_fit_end`` once, also when the run stops on an error or Ctrl-C (read
    ``trainer.state.stop_reason``), so files can be closed.
    """

    def on_fit_start(self, trainer: Trainer) -> None:
        """Called once before the first step (after a resumed state is loaded)."""

    def on_batch_end(self, trainer: Trainer, record: StepRecord) -> None:
        """Called after every optimizer step."""

    def on_eval_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        """Called after each evaluation with the metrics it returned."""

    def on_fit_end(self, trainer: Trainer) -> None:
        """Called once when the run ends, however it ends."""


class CallbackList(Callback):
    """Dispatches each hook to several callbacks, in order."""

    def __init__(self, callbacks: Sequence[Callback]) -> None:
        for index, callback in enumerate(callbacks):
            if not isinstance(callback, Callback):
                raise TypeError(
                    f"callbacks[{index}]: expected a rnnkit.train.Callback, "
                    f"got {type(callback).__name__}"
                )
        self.callbacks = list(callbacks)

    def on_fit_start(self, trainer: Trainer) -> None:
        for callback in self.callbacks:
            callback.on_fit_start(trainer)

    def on_batch_end(self, trainer: Trainer, record: StepRecord) -> None:
        for callback in self.callbacks:
            callback.on_batch_end(trainer, record)

    def on_eval_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        for callback in self.callbacks:
            callback.on_eval_end(trainer, metrics)

    def on_fit_end(self, trainer: Trainer) -> None:
        # Every callback gets to close its files even if an earlier one fails.
        errors = []
        for callback in self.callbacks:
            try:
                callback.on_fit_end(trainer)
            except Exception as error:
                errors.append(error)
        if errors:
            raise errors[0]
