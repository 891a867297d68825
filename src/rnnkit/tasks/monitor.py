"""Which validation metric picks the ``best`` checkpoint and drives early stopping.

``train.monitor`` names it (``valid_bleu`` or just ``bleu``); without it each task has a
default. ``train.monitor_mode`` says whether lower (``min``) or higher (``max``) is better;
without it the mode follows from the name (losses and errors: ``min``; scores: ``max``), as
Keras' ``mode="auto"`` does. A name the task never reports is a :class:`ConfigError` listing
the ones it does, before any training.
"""

from __future__ import annotations

from rnnkit.annotations import closest
from rnnkit.tasks.errors import ConfigError

PREFIX = "valid_"

# What each task's ``evaluate`` returns (before the ``valid_`` prefix). Forecasting's
# probabilistic scores exist only for models with a likelihood; the trainer names the
# metrics it got if one is monitored on a point forecaster.
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "language_model": ("loss", "perplexity", "bpc", "oov_tokens", "oov_rate"),
    "classification": ("loss", "accuracy", "macro_f1"),
    "tagging": ("loss", "accuracy"),
    "seq2seq": ("loss", "exact_match", "bleu", "chrf"),
    "forecasting": ("loss", "mae", "rmse", "smape", "mase", "naive_smape", "naive_mase",
                    "theta_smape", "theta_mase", "ets_smape", "ets_mase", "coverage", "wql",
                    "crps"),
    "conditional_generation": ("loss", "perplexity"),
}
ENTITY_METRICS = ("precision", "recall", "f1", "macro_precision", "macro_recall", "macro_f1")
ENTITY_SUFFIXES = ("_precision", "_recall", "_f1")  # per entity type: PER_f1, ...

# Metrics where lower is better; every other metric (accuracy, F1, BLEU, ...) is "max".
LOWER_IS_BETTER = ("loss", "perplexity", "bpc", "oov_tokens", "oov_rate", "mae", "rmse",
                   "smape", "mase", "wql", "crps")


def known_metrics(task_name: str, entity_scores: bool = False) -> tuple[str, ...]:
    """The validation metric names (``valid_...``) of a task; ``entity_scores`` adds the
    chunk-level scores a tagging run with IOB/BIOES tags reports."""
    names = TASK_METRICS.get(task_name, ("loss",))
    if entity_scores:
        names = (*names, *ENTITY_METRICS)
    return tuple(PREFIX + name for name in names)


def mode_for(metric: str) -> str:
    """``"min"`` for losses and errors (``valid_loss``, ``valid_naive_mase``), else ``"max"``."""
    base = metric.removeprefix(PREFIX)
    lower = any(base == name or base.endswith("_" + name) for name in LOWER_IS_BETTER)
    return "min" if lower else "max"


def resolve_monitor(task, monitor: str | None, mode: str | None) -> tuple[str, str]:
    """The metric to monitor and its mode for ``task`` (a :class:`~rnnkit.tasks.base.Task`),
    from ``train.monitor``/``train.monitor_mode`` or the task's defaults.

    Raises :class:`ConfigError` for a metric the task does not report, listing those it does.
    """
    if monitor is None:
        name = task.monitor
        return name, mode or task.monitor_mode
    name = monitor if monitor.startswith(PREFIX) else PREFIX + monitor
    entity = bool(getattr(task, "scheme", None))
    known = known_metrics(task.name, entity)
    per_type = entity and name.endswith(ENTITY_SUFFIXES)
    if name not in known and not per_type:
        raise ConfigError(
            f"train.monitor: expected one of {', '.join(known)} (the validation metrics of "
            f"task {task.name}), got {monitor!r}" + closest(name, known)
        )
    return name, mode or mode_for(name)
