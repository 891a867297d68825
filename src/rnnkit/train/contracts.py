"""What the trainer expects of the code it drives: the batch source, the loss, the evaluation."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class BatchSource(Protocol):
    """Training batches: deterministic given the source's seed and ``epoch``.

    ``len()`` is the number of batches per epoch. Batches need ``.to(device)`` (tensors, tuples,
    lists and dicts of them also work). ``iter_epoch`` may take an optional ``start`` keyword to
    begin at that batch index without building the ones before it; a resumed run uses it.
    """

    def iter_epoch(self, epoch: int) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


LossFn = Callable[[torch.nn.Module, Any], torch.Tensor]
"""``loss_fn(model, batch) -> scalar tensor``; optional ``reset()``, ``state_dict()`` and
``load_state_dict(state)`` make a stateful loss (e.g. truncated BPTT) resume exactly. A state of
per-row tensors (``{name: tensor}``, one entry per batch row along one dimension) is declared by
an integer attribute ``state_row_dim``, so data-parallel ranks' rows are checkpointed together
(:mod:`rnnkit.train.row_state`); a state that is the same on every rank (a step count driving a
schedule) is declared by ``state_replicated = True`` and checkpointed and restored as is."""

Evaluate = Callable[[torch.nn.Module], Mapping[str, float]]
"""``evaluate(model) -> {"valid_loss": ..., ...}``, called under ``torch.no_grad()``."""


# A loss may offer any subset of these three, so each is its own protocol (a loss that saves
# its state but cannot load it still has it checkpointed, as before).
@runtime_checkable
class SavesState(Protocol):
    """A loss whose state is checkpointed: ``state_dict() -> {name: tensor or value}``."""

    def state_dict(self) -> dict[str, Any]: ...


@runtime_checkable
class LoadsState(Protocol):
    """A loss that takes its checkpointed state back on resume."""

    def load_state_dict(self, state: dict[str, Any]) -> Any: ...


@runtime_checkable
class Resettable(Protocol):
    """A loss whose state starts afresh at every epoch (and when none was restored)."""

    def reset(self) -> Any: ...
