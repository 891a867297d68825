"""A run: load a config, train it into a directory, and load the directory back for inference.

Run directory layout::

    DIR/config.yaml            the resolved configuration (every key)
    DIR/task.json              task name and fitted artifacts (vocabularies, labels, scaling)
    DIR/checkpoints/best|last  safetensors + JSON; metadata holds model type/config + artifacts
    DIR/metrics.csv            per-step and per-evaluation metrics
    DIR/summary.json           how training ended, best metric, test metrics
    DIR/.rnnkit-run            marker: made by rnnkit (what --overwrite may replace, run_dir.py)
    DIR/.rnnkit-lock           held while a process trains into DIR (run_lock.py)
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

import rnnkit
from rnnkit.models import describe, load_model
from rnnkit.tasks.base import Task
from rnnkit.tasks.config import (
    RunConfig,
    apply_overrides,
    config_from_dict,
    read_config_file,
    save_config,
)
from rnnkit.tasks.data_files import dataset_defaults, resolve_paths
from rnnkit.tasks.errors import RunDirError
from rnnkit.tasks.memory_check import check_model_fits_memory
from rnnkit.tasks.monitor import resolve_monitor
from rnnkit.tasks.registry import TASKS, reject_foreign_fields
from rnnkit.tasks.run_dir import (
    CONFIG_FILE,
    SUMMARY_FILE,
    TASK_FILE,
    check_run_dir,
    clear_run_files,
    write_marker,
)
from rnnkit.tasks.run_lock import RunLock, acquire_run_lock, raise_if_locked
from rnnkit.train import Callback, FitResult, Trainer, is_main_process, seed_everything
from rnnkit.train.checkpoint import read_metadata
from rnnkit.train.distributed import barrier, from_main, main_process_first
from rnnkit.train.durable import replace_file
from rnnkit.train.integrity import check_finite_weights
from rnnkit.train.state_io import finite_json, read_json

DEFAULT_CONFIG: dict[str, Any] = {"task": "language_model", "data": {"dataset": "shakespeare"}}


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """The run configuration from a YAML/TOML file (``None``: the default char-level LSTM on the
    bundled Shakespeare sample), with ``section.key=value`` overrides, task defaults filled in."""
    raw = read_config_file(path) if path is not None else copy.deepcopy(DEFAULT_CONFIG)
    raw = apply_overrides(raw, list(overrides))
    task = raw.get("task", "language_model")
    defaults = copy.deepcopy(TASKS[task].defaults) if task in TASKS else {}
    data = raw.get("data") or {}
    if isinstance(data, dict) and data.get("dataset") is not None:
        defaults["data"] = {**defaults.get("data", {}), **dataset_defaults(data["dataset"])}
    return config_from_dict(raw, _own_budget_only(raw, defaults))


BUDGETS = ("max_steps", "max_epochs", "max_time")


def _own_budget_only(raw: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Drop the task's default budgets when the config sets one of its own: `max_steps: 200`
    means 200 steps, not "200 steps or the language model's 3 minutes, whichever is first"."""
    train = raw.get("train")
    if isinstance(train, dict) and any(train.get(name) is not None for name in BUDGETS):
        defaults = {**defaults, "train": {k: v for k, v in defaults.get("train", {}).items()
                                          if k not in BUDGETS}}
    return defaults


@dataclass
class TrainOutcome:
    """What :func:`train` produced: the run directory, the trainer's result, metrics.

    ``valid_metrics`` and ``test_metrics`` describe ``checkpoint`` (``best`` when an evaluation
    made one, else ``last``), the model that ``load_run`` and every command use;
    ``checkpoint_step`` is the step it was saved at. ``last_metrics`` are the final
    evaluation's, which differ when the run went on past its best step.
    """

    run_dir: Path
    fit: FitResult
    monitor: str
    valid_metrics: dict[str, float]
    test_metrics: dict[str, float] | None = None
    checkpoint: Path | None = None
    checkpoint_step: int | None = None
    last_metrics: dict[str, float] = field(default_factory=dict)


def _to_stderr(message: str) -> None:
    print(f"rnnkit: {message}", file=sys.stderr, flush=True)


def _lock(run_dir: Path, resume: bool, overwrite: bool,
          notice: Callable[[str], None]) -> RunLock | None:
    """Rank 0 checks ``run_dir`` and locks it (the lock lives there); every data-parallel rank
    then raises what rank 0 raised, so none waits for a rank that gave up."""
    lock, refusal = None, None
    if is_main_process():
        try:
            raise_if_locked(run_dir)  # a live holder is named first, whatever else is wrong
            check_run_dir(run_dir, resume, overwrite)  # refuse before writing the lock file
            lock = acquire_run_lock(run_dir, notice)
            check_run_dir(run_dir, resume, overwrite)  # again: it may have changed meanwhile
        except Exception as error:
            if lock is not None:
                lock.release()
            refusal = error
    refusal = from_main(refusal)
    if refusal is not None:
        raise refusal
    return lock


def _prepare_run_dir(run_dir: Path, resume: bool, notice: Callable[[str], None]) -> None:
    """A fresh run replaces rnnkit's files (checked by ``check_run_dir``), never others."""
    if not resume:
        left = clear_run_files(run_dir)
        if left:
            notice(f"kept {run_dir} and what rnnkit did not write there: {', '.join(left)}")
    write_marker(run_dir)


def _task_for(config: RunConfig, run_dir: Path, resume: bool, train_path: Path) -> Task:
    task_class = TASKS[config.task]
    if not resume:
        return task_class.fit(config, train_path)
    saved = read_json(run_dir / TASK_FILE)
    if saved["task"] != config.task:
        raise RunDirError(f"{run_dir} holds a {saved['task']} run; the config says {config.task}")
    return task_class(config, saved["artifacts"])


def _metadata(task: Task, model: nn.Module) -> dict[str, Any]:
    return {**describe(model), "task": task.name, "artifacts": task.artifacts,
            "rnnkit_version": rnnkit.__version__}


def train(
    config: RunConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: Sequence[Callback] = (),
    notice: Callable[[str], None] = _to_stderr,
) -> TrainOutcome:
    """Train ``config`` into ``run_dir``; evaluate the best checkpoint on the test file if any.

    ``run_dir`` is locked for the call (:class:`RunLockedError` names a live holder's PID and
    host). ``overwrite`` replaces only a run rnnkit made (see :mod:`rnnkit.tasks.run_dir`); a
    run with no checkpoint yet is started afresh without it. ``notice`` receives one-line
    notes (a stale lock taken over, files kept). A stop signal ends training with
    :class:`~rnnkit.train.interrupt.TrainingInterrupted` after saving ``last``.
    """
    run_dir = Path(run_dir)
    check_model_fits_memory(config.model)  # before anything is read, locked or written
    reject_foreign_fields(config)
    lock = _lock(run_dir, resume, overwrite, notice)
    try:
        return _train_locked(config, run_dir, resume, callbacks, notice)
    finally:
        if lock is not None:
            lock.release()


def _train_locked(config: RunConfig, run_dir: Path, resume: bool,
                  callbacks: Sequence[Callback], notice: Callable[[str], None]) -> TrainOutcome:
    with main_process_first():  # generated samples are written to the cache once
        paths = resolve_paths(config.data)
    task = _task_for(config, run_dir, resume, paths["train"])
    monitor, monitor_mode = resolve_monitor(task, config.train.monitor, config.train.monitor_mode)
    train_part = task.read(paths["train"])
    if paths["valid"] is not None:
        valid_part = task.read(paths["valid"])
    else:
        train_part, valid_part = task.hold_out(train_part)
    task.fit_on_split(train_part, valid_part)
    valid_part = task.limit(valid_part)
    seed_everything(config.train.seed)  # the initial weights depend on the seed alone
    model = task.build_model()
    barrier()  # data-parallel: every rank has read run_dir (task.json) before rank 0 changes it
    if is_main_process():
        _prepare_run_dir(run_dir, resume, notice)
        save_config(config, run_dir / CONFIG_FILE)
        replace_file(run_dir / TASK_FILE,
                     json.dumps({"task": task.name, "artifacts": task.artifacts}), "task file")
    barrier()

    def evaluate(m: nn.Module) -> dict[str, float]:
        return {f"valid_{k}": v for k, v in task.evaluate(m, valid_part).items()}

    trainer = Trainer(
        model, task.train_source(train_part, config.train.seed), config.train.trainer_config(),
        loss_fn=task.loss_fn(), evaluate=evaluate, monitor=monitor, monitor_mode=monitor_mode,
        run_dir=run_dir, metadata=_metadata(task, model), callbacks=callbacks, notice=notice,
    )
    fit = trainer.fit(resume=resume)
    if is_main_process() and (fit.best_checkpoint or fit.last_checkpoint):
        task.finish_training(fit.best_checkpoint or fit.last_checkpoint, notice)
    outcome = TrainOutcome(run_dir, fit, monitor, dict(fit.metrics),
                           checkpoint=fit.best_checkpoint or fit.last_checkpoint,
                           last_metrics=dict(fit.metrics))
    if not is_main_process():  # rank 0 alone tests and writes the summary
        return outcome
    _score_checkpoint(outcome, paths["test"])
    _write_summary(outcome)
    return outcome


def _score_checkpoint(outcome: TrainOutcome, test_path: Path | None) -> None:
    """Fill the outcome's validation and test metrics from the checkpoint commands will use.

    The validation metrics are those the trainer recorded when it saved that checkpoint (its
    metadata), so nothing is evaluated twice; the test file is scored with its model."""
    if outcome.checkpoint is None:
        return
    trainer_record = read_metadata(outcome.checkpoint).get("trainer", {})
    outcome.checkpoint_step = trainer_record.get("step")
    if trainer_record.get("metrics"):
        outcome.valid_metrics = dict(trainer_record["metrics"])
    if test_path is not None:
        run = load_run(outcome.run_dir, outcome.checkpoint.name)
        test_part = run.task.limit(run.task.read(test_path))
        outcome.test_metrics = run.task.evaluate(run.model, test_part)


def _write_summary(outcome: TrainOutcome) -> None:
    fit = outcome.fit
    summary = {
        "stop_reason": fit.stop_reason, "steps": fit.global_step, "epochs": fit.epoch,
        "monitor": outcome.monitor, "best_metric": fit.best_metric, "best_step": fit.best_step,
        "valid_metrics": outcome.valid_metrics, "test_metrics": outcome.test_metrics,
        "checkpoint": str(outcome.checkpoint) if outcome.checkpoint else None,
        "checkpoint_step": outcome.checkpoint_step, "last_valid_metrics": outcome.last_metrics,
    }
    # Strict JSON: a NaN metric is written as null (json.dumps would write the literal NaN).
    text = json.dumps(finite_json(summary), indent=2, allow_nan=False) + "\n"
    replace_file(outcome.run_dir / SUMMARY_FILE, text, "run summary")


@dataclass
class Run:
    """A trained run loaded for inference: its config, task (with artifacts) and model (CPU)."""

    run_dir: Path
    config: RunConfig
    task: Task
    model: nn.Module
    metadata: dict[str, Any] = field(default_factory=dict)

    def evaluate(self, path: str | Path, progress: bool = False) -> dict[str, float]:
        """The task's metrics on a file in the training format."""
        return self.task.evaluate(self.model, self.task.read(path), progress)

    def predict(self, inputs: list[Any]) -> list[dict[str, Any]]:
        """One record per input (see the task's ``predict``)."""
        return self.task.predict(self.model, inputs)

    def generate(self, **options: Any) -> str:
        """Sampled text (language models and conditional generators)."""
        return self.task.generate(self.model, **options)


def load_run(run_dir: str | Path, checkpoint: str = "best", device: str = "cpu") -> Run:
    """Load ``run_dir``'s ``best`` (or ``last``) checkpoint; falls back to ``last`` when no
    evaluation produced a ``best``. Never unpickles; loads on CPU whatever trained it."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: no such run directory")
    checkpoints = run_dir / "checkpoints"
    if not (run_dir / CONFIG_FILE).is_file() or not checkpoints.is_dir():
        raise RunDirError(f"{run_dir} is not an rnnkit run (expected {CONFIG_FILE} and "
                          "checkpoints/ made by `rnnkit train`)")
    chosen = checkpoints / checkpoint
    if not chosen.is_dir() and checkpoint == "best":
        chosen = checkpoints / "last"
    if not chosen.is_dir():
        raise RunDirError(f"{run_dir}: no {checkpoint} checkpoint yet")
    config = config_from_dict(read_config_file(run_dir / CONFIG_FILE))
    metadata = read_metadata(chosen)  # checks every file against the checkpoint's checksums
    if metadata.get("task") not in TASKS:
        raise RunDirError(f"{chosen}: metadata names no known task ({metadata.get('task')!r})")
    model = load_model(chosen, device=device)
    check_finite_weights(chosen, model.state_dict())
    task = TASKS[metadata["task"]](config, metadata["artifacts"])
    return Run(run_dir, config, task, model, metadata)
