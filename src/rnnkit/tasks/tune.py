"""Hyper-parameter search with Optuna over the config's ``tune:`` section.

Each trial trains a full run (``OUT/trial-<number>``) with the sampled values; the validation
metric the task monitors is reported after every evaluation and a median pruner stops poor
trials early. Any Optuna storage URL works (SQLite file by default, PostgreSQL for several
machines); workers started on the same storage and study name share its trials.

``trials`` is the study's total over every worker and every state (running, complete, pruned,
failed): a worker starts a trial only while the study holds fewer. With SQLite storage, "count,
then create" is one step under a lock file beside the database (``DB.trials.lock``), so the
workers never take the study past ``trials`` trials; it ends with exactly ``trials`` unless
every worker stopped early (``--timeout``, a failing trial, Ctrl-C). A worker records a
heartbeat every 30 s while its trial runs; a trial silent for 120 s (its worker was killed) is
marked failed, with one line, by the next worker that looks for a trial to start, and still
counts, so the other workers and a restarted one go on to ``trials`` in total. With a
server database (PostgreSQL) there is no lock across
machines: workers whose counts fall in the same few milliseconds (before the first of them has
created its trial) may each start one, so the total there is at most ``trials + workers - 1``,
and exceeds ``trials`` only in such a race.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnkit.tasks.config import ParamSpec, RunConfig, config_from_dict, save_config
from rnnkit.tasks.errors import ConfigError
from rnnkit.tasks.registry import TASKS
from rnnkit.tasks.run import train
from rnnkit.train import Callback


def _optuna():
    try:
        import optuna
    except ImportError as error:  # pragma: no cover - optuna is an optional dependency
        raise ImportError("rnnkit tune needs optuna: pip install 'rnnkit[full]'") from error
    return optuna


def suggest(trial: Any, key: str, spec: ParamSpec) -> Any:
    """Draw ``key``'s value from ``spec`` with the trial's sampler."""
    if spec.type == "categorical":
        return trial.suggest_categorical(key, spec.choices)
    if spec.type == "int":
        step = int(spec.step) if spec.step else 1
        return trial.suggest_int(key, int(spec.low), int(spec.high), step=step, log=spec.log)
    return trial.suggest_float(key, spec.low, spec.high, step=spec.step, log=spec.log)


def with_values(config: RunConfig, values: dict[str, Any]) -> RunConfig:
    """``config`` with ``section.key`` values replaced (types checked again)."""
    raw = config.to_dict()
    for key, value in values.items():
        section, _, name = key.partition(".")
        if name not in raw[section]:
            raise ConfigError(f"tune.{key}: {section} has no key {name!r}")
        raw[section][name] = value
    return config_from_dict(raw)


HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120


def _storage(optuna: Any, url: str, report: Callable[[str], None],
             heartbeat: int = HEARTBEAT_SECONDS, grace: int = GRACE_SECONDS) -> Any:
    """The RDB storage with heartbeats: a running trial's worker records one every
    ``heartbeat`` s, and a trial silent for ``grace`` s (its worker was killed) is marked
    failed by the next worker that looks for a trial to start."""

    def lost(study: Any, trial: Any) -> None:
        report(f"trial {trial.number}: failed (its worker stopped sending heartbeats for "
               f"{grace} s: killed or lost)")

    return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat, grace_period=grace,
                                      heartbeat_stale_trial_callback=lost)


class _Heartbeat:
    """Records ``trial``'s heartbeat every ``interval`` s in a thread while the block runs
    (``study.optimize`` does this itself; ask/tell workers must)."""

    def __init__(self, storage: Any, trial: Any, interval: float) -> None:
        self.storage, self.trial_id, self.interval = storage, trial._trial_id, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name="tune-heartbeat")

    def _beat(self) -> None:
        while True:
            self.storage.record_heartbeat(self.trial_id)
            if self.stop.wait(self.interval):
                return

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _open_study(optuna: Any, storage: Any, name: str, mode: str) -> Any:
    """Create or join the study. Workers started together on a new database race to create
    its schema; the loser gets a database integrity error and simply joins on a retry."""
    for attempt in range(5):
        try:
            return optuna.create_study(
                study_name=name, storage=storage, load_if_exists=True,
                direction="minimize" if mode == "min" else "maximize",
                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
            )
        except Exception as error:
            if not type(error).__module__.startswith("sqlalchemy") or attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _trial_slot_lock(storage: str) -> contextlib.AbstractContextManager[Any]:
    """What makes counting the study's trials and creating one a single step among workers:
    a lock file beside an SQLite database (workers on one machine), else nothing."""
    from sqlalchemy.engine import make_url

    url = make_url(storage)
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return contextlib.nullcontext()
    from filelock import FileLock  # a dependency of torch

    # realpath: workers naming one database by different paths must share one lock
    return FileLock(os.path.realpath(database) + ".trials.lock")


def _claim_trial(study: Any, trials: int, slot_lock: contextlib.AbstractContextManager[Any],
                 deadline: float | None) -> Any | None:
    """A new trial of ``study``, or ``None`` when the time is up or the study already holds
    ``trials`` trials (any state, any worker)."""
    if deadline is not None and time.monotonic() >= deadline:
        return None
    with slot_lock, warnings.catch_warnings():
        # optuna flags heartbeats outside Study.optimize and fail_stale_trials as experimental;
        # both are what an ask/tell worker needs, so the notes are silenced here
        warnings.simplefilter("ignore", UserWarning)
        _optuna().storages.fail_stale_trials(study)  # a killed worker's trial: failed, counted
        if len(study.get_trials(deepcopy=False)) >= trials:
            return None
        return study.ask()


def _run_trial(study: Any, trial: Any, objective: Callable[[Any], float]) -> Any:
    """Run ``objective`` on ``trial`` and record how it ended (complete, pruned or failed, as
    ``study.optimize`` does); returns the finished trial. A failure is re-raised."""
    optuna = _optuna()
    storage = study._storage
    interval = getattr(storage, "get_heartbeat_interval", lambda: None)()
    beating = _Heartbeat(storage, trial, interval) if interval else contextlib.nullcontext()
    try:
        with beating:
            value = objective(trial)
    except optuna.TrialPruned:
        return study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    except BaseException:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        raise
    return study.tell(trial, value)


class _PruningReporter(Callback):
    """Reports the monitored metric to the trial after each evaluation; prunes when told."""

    def __init__(self, trial: Any, monitor: str) -> None:
        self.trial, self.monitor = trial, monitor

    def on_eval_end(self, trainer, metrics: dict[str, float]) -> None:
        self.trial.report(metrics[self.monitor], step=trainer.state.global_step)
        if self.trial.should_prune():
            raise _optuna().TrialPruned(f"pruned at step {trainer.state.global_step}")


@dataclass
class TuneOutcome:
    """The study, its best value and parameters, and the written best config."""

    study: Any
    best_value: float | None
    best_params: dict[str, Any]
    best_config: Path | None


def tune(
    config: RunConfig,
    out_dir: str | Path,
    trials: int,
    storage: str | None = None,
    study_name: str = "rnnkit",
    timeout_minutes: float | None = None,
    report: Callable[[str], None] = print,
    heartbeat: int = HEARTBEAT_SECONDS,
    grace: int = GRACE_SECONDS,
) -> TuneOutcome:
    """Run trials until the study (shared with other workers) holds ``trials`` of them, or
    ``timeout_minutes`` have passed; see the module docstring for the exact guarantee.
    A trial whose worker sent no ``heartbeat`` for ``grace`` seconds is marked failed."""
    optuna = _optuna()
    if config.tune is None or not config.tune.params:
        raise ConfigError("tune: the config has no tune: section with parameters to search")
    if trials < 1:
        raise ValueError(f"--trials: expected an integer >= 1, got {trials}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{(out_dir / 'study.db').resolve()}"
    task = TASKS[config.task]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _open_study(optuna, _storage(optuna, storage, report, heartbeat, grace),
                        study_name, task.monitor_mode)
    params = config.tune.params

    def objective(trial) -> float:
        values = {key: suggest(trial, key, spec) for key, spec in params.items()}
        trial_config = with_values(config, values)
        outcome = train(trial_config, out_dir / f"trial-{trial.number}", overwrite=True,
                        callbacks=[_PruningReporter(trial, task.monitor)])
        if outcome.fit.best_metric is None:
            raise optuna.TrialPruned("no finite validation metric")
        return outcome.fit.best_metric

    def log_trial(trial) -> None:
        value = "pruned" if trial.value is None else f"{task.monitor}={trial.value:.4f}"
        report(f"trial {trial.number}: {trial.state.name.lower()} {value} {trial.params}")

    slot_lock = _trial_slot_lock(storage)
    deadline = None if timeout_minutes is None else time.monotonic() + timeout_minutes * 60
    while (trial := _claim_trial(study, trials, slot_lock, deadline)) is not None:
        log_trial(_run_trial(study, trial, objective))
    return _best(study, config, out_dir)


def _best(study: Any, config: RunConfig, out_dir: Path) -> TuneOutcome:
    # Only finished trials count: a pruned trial can carry its last reported value, but
    # study.best_trial considers COMPLETE trials alone (and raises when there are none).
    finished = _optuna().trial.TrialState.COMPLETE
    complete = [t for t in study.trials if t.state == finished and t.value is not None]
    if not complete:
        return TuneOutcome(study, None, {}, None)
    best = study.best_trial
    best_config = with_values(config, best.params)
    best_config.tune = None
    path = save_config(best_config, out_dir / "best_config.yaml")
    return TuneOutcome(study, best.value, dict(best.params), path)
