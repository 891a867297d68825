"""Decisions and records computed from a run's :class:`~rnnkit.train.trainer.TrainerState`:
which budget is used up, whether a metric improved, and the two records a checkpoint keeps (the
JSON summary in ``metadata.json``, the progress a resumed run continues from)."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from rnnkit.train.config import TrainConfig

if TYPE_CHECKING:  # the trainer imports this module
    from rnnkit.train.trainer import TrainerState


def metadata_summary(state: TrainerState, monitor: str, monitor_mode: str,
                     config: TrainConfig) -> dict[str, Any]:
    """The trainer's summary in a checkpoint's ``metadata.json`` (non-finite numbers as null,
    so the file stays strict JSON)."""
    return json_safe({
        "step": state.global_step,
        "epoch": state.epoch,
        "batch_in_epoch": state.batch_in_epoch,
        "monitor": monitor,
        "monitor_mode": monitor_mode,
        "best_metric": state.best_metric,
        "best_step": state.best_step,
        "stop_reason": state.stop_reason,
        "metrics": dict(state.last_metrics),
        "config": config.to_dict(),
    })


def progress_of(state: TrainerState) -> dict[str, Any]:
    """The fields a resumed run restores (the stop reason belongs to the run that stopped)."""
    progress = asdict(state)
    progress.pop("stop_reason")
    return progress


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats (also inside dicts) replaced by ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    return value


def budget_reached(config: TrainConfig, state: TrainerState) -> str | None:
    """The budget (``max_steps``, ``max_epochs``, ``max_time``) the run has used up, if any."""
    if config.max_steps is not None and state.global_step >= config.max_steps:
        return "max_steps"
    if config.max_epochs is not None and state.epoch >= config.max_epochs:
        return "max_epochs"
    if config.max_time is not None and state.elapsed_seconds >= config.max_time * 60:
        return "max_time"
    return None


def is_improvement(value: float, best: float | None, monitor_mode: str, min_delta: float) -> bool:
    """Whether a monitored ``value`` beats ``best`` by more than ``min_delta`` (a non-finite
    value never does; any finite one beats no best at all)."""
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if monitor_mode == "min" else value > best + min_delta


def total_steps(config: TrainConfig, batches_per_epoch: int) -> int | None:
    """The step count the budgets allow (``None`` when only time limits the run)."""
    horizons = [config.max_steps] if config.max_steps is not None else []
    if config.max_epochs is not None:
        horizons.append(config.max_epochs * batches_per_epoch)
    return min(horizons) if horizons else None
