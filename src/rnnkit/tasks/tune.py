"""Hyper-parameter search with Optuna over the config's ``tune:`` section.

Each trial trains a full run (``OUT/trial-<number>``) with the values ``tune.strategy`` draws
(TPE, random, or every combination of a grid); the validation metric the run monitors is
reported after every evaluation and ``tune.pruner`` (median, asha, hyperband, none) stops poor
trials early. Results go to the files :mod:`rnnkit.tasks.tune_results` describes. Any Optuna
storage URL works (SQLite file by default, PostgreSQL for several machines); workers started
on the same storage and study name share its trials.

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
from datetime import datetime
from pathlib import Path
from typing import Any

from rnnkit.tasks.config import ParamSpec, RunConfig, TuneConfig
from rnnkit.tasks.errors import ConfigError
from rnnkit.tasks.monitor import resolve_monitor
from rnnkit.tasks.registry import TASKS
from rnnkit.tasks.run import train
from rnnkit.tasks.tune_results import (
    TrialRecord,
    TrialTable,
    TuneOutcome,
    best_trial,
    write_results,
)
from rnnkit.tasks.tune_space import check_engine, describe_grid, grid, grid_size, with_values
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


def _sampler(optuna: Any, tune: TuneConfig, grid_points: dict[str, list[Any]] | None) -> Any:
    if grid_points is not None:
        return _grid_sampler(optuna)(grid_points, seed=tune.seed)
    if tune.strategy == "random":
        return optuna.samplers.RandomSampler(seed=tune.seed)
    return optuna.samplers.TPESampler(seed=tune.seed)


def _grid_sampler(optuna: Any) -> type:
    """Optuna's GridSampler without its end-of-grid ``study.stop()``, which only works inside
    ``study.optimize``: these ask/tell workers stop by the trial count (the grid's size)."""

    class AskTellGridSampler(optuna.samplers.GridSampler):
        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            pass

    return AskTellGridSampler


def _pruner(optuna: Any, name: str) -> Any:
    """Optuna's pruner for ``tune.pruner`` (its SuccessiveHalvingPruner is asynchronous: ASHA)."""
    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)


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

    # Workers started together on a new SQLite file would race to create its tables (the
    # loser failed with "table studies already exists"): one creates them at a time.
    with _database_lock(url, ".schema.lock"), warnings.catch_warnings():
        # heartbeats are "experimental" in optuna; we rely on them
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
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


def _open_study(optuna: Any, storage: Any, name: str, mode: str, sampler: Any = None,
                pruner: Any = None) -> Any:
    """Create or join the study. Workers started together race to create the study (its
    tables are created under a lock, see :func:`_storage`); the loser gets a database
    integrity error and simply joins on a retry."""
    for attempt in range(5):
        try:
            return optuna.create_study(
                study_name=name, storage=storage, load_if_exists=True,
                direction="minimize" if mode == "min" else "maximize",
                sampler=sampler, pruner=pruner or _pruner(optuna, "median"),
            )
        except Exception as error:
            if not type(error).__module__.startswith("sqlalchemy") or attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _trial_slot_lock(storage: str) -> contextlib.AbstractContextManager[Any]:
    """What makes counting the study's trials and creating one a single step among workers:
    a lock file beside an SQLite database (workers on one machine), else nothing."""
    return _database_lock(storage, ".trials.lock")


def _database_lock(storage: str, suffix: str) -> contextlib.AbstractContextManager[Any]:
    """A lock file named ``<database><suffix>`` beside an SQLite database file, else nothing
    (a database server serialises its own schema changes)."""
    from sqlalchemy.engine import make_url

    url = make_url(storage)
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return contextlib.nullcontext()
    from filelock import FileLock  # a dependency of torch

    # realpath: workers naming one database by different paths must share one lock
    return FileLock(os.path.realpath(database) + suffix)


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
        warnings.simplefilter("ignore", _optuna().exceptions.ExperimentalWarning)
        _optuna().storages.fail_stale_trials(study)  # a killed worker's trial: failed, counted
        _fail_trials_killed_before_their_first_heartbeat(study)
        if len(study.get_trials(deepcopy=False)) >= trials:
            return None
        trial = study.ask()
        # Optuna fails only trials that have a heartbeat: record one at once, then mark the
        # trial as beating; a worker killed between ask() and the mark is caught above.
        if getattr(study._storage, "get_heartbeat_interval", lambda: None)():
            study._storage.record_heartbeat(trial._trial_id)
            study._storage.set_trial_system_attr(trial._trial_id, BEATING, True)
        return trial


BEATING = "rnnkit_heartbeat"  # system attribute of a trial whose heartbeat has been recorded


def _fail_trials_killed_before_their_first_heartbeat(study: Any) -> None:
    """Fail RUNNING trials that never got the :data:`BEATING` mark and started more than the
    grace period ago: their worker died between ``ask()`` and its first heartbeat, which
    Optuna's stale-trial check cannot see (it looks only at trials with heartbeats)."""
    storage = study._storage
    # Optuna wraps an RDBStorage in a cache that forwards heartbeats but not the grace period.
    grace = getattr(getattr(storage, "_backend", storage), "grace_period", None)
    if not getattr(storage, "get_heartbeat_interval", lambda: None)() or grace is None:
        return
    optuna = _optuna()
    now = datetime.now()  # Optuna stores naive local start times
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        started = trial.datetime_start
        if BEATING in trial.system_attrs or started is None:
            continue
        if (now - started).total_seconds() <= grace:
            continue
        try:
            failed = storage.set_trial_state_values(trial._trial_id,
                                                    state=optuna.trial.TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker failed it first
        callback = storage.get_heartbeat_stale_trial_callback()
        if failed and callback is not None:
            callback(study, storage.get_trial(trial._trial_id))


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

    def __init__(self, trial: Any) -> None:
        self.trial = trial

    def on_eval_end(self, trainer, metrics: dict[str, float]) -> None:
        # the trainer's monitor: the task's default or train.monitor, as the run resolved it
        self.trial.report(metrics[trainer.monitor], step=trainer.state.global_step)
        if self.trial.should_prune():
            raise _optuna().TrialPruned(f"pruned at step {trainer.state.global_step}")


def tune(
    config: RunConfig,
    out_dir: str | Path,
    trials: int | None = None,
    storage: str | None = None,
    study_name: str = "rnnkit",
    timeout_minutes: float | None = None,
    report: Callable[[str], None] = print,
    heartbeat: int = HEARTBEAT_SECONDS,
    grace: int = GRACE_SECONDS,
) -> TuneOutcome:
    """Run trials until the study (shared with other workers) holds ``trials`` of them, or
    ``timeout_minutes`` have passed; see the module docstring for the exact guarantee.
    A grid search defaults to (and never exceeds) one trial per combination. ``report``
    receives the grid size, then one table row per finished trial.
    A trial whose worker sent no ``heartbeat`` for ``grace`` seconds is marked failed."""
    optuna = _optuna()
    search = check_search(config, "optuna")
    grid_points = grid(search) if search.strategy == "grid" else None
    trials = trial_count(trials, grid_points, report)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{(out_dir / 'study.db').resolve()}"
    monitor, mode = monitor_of(config)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _open_study(optuna, _storage(optuna, storage, report, heartbeat, grace),
                        study_name, mode, _sampler(optuna, search, grid_points),
                        _pruner(optuna, search.pruner))

    def objective(trial) -> float:
        values = {key: trial.suggest_categorical(key, grid_points[key]) if grid_points
                  else suggest(trial, key, spec) for key, spec in search.params.items()}
        trial_config = with_values(config, values)
        run_dir = out_dir / f"trial-{trial.number}"
        # what the trial trains, kept in the study: best_config.yaml is written from it
        trial.set_user_attr("config", trial_config.to_dict())
        trial.set_user_attr("run_dir", str(run_dir.resolve()))
        outcome = train(trial_config, run_dir, overwrite=True,
                        callbacks=[_PruningReporter(trial)])
        if outcome.fit.best_metric is None:
            raise optuna.TrialPruned("no finite validation metric")
        return outcome.fit.best_metric

    table = TrialTable(monitor, list(search.params), report)
    slot_lock = _trial_slot_lock(storage)
    deadline = None if timeout_minutes is None else time.monotonic() + timeout_minutes * 60
    new_trials = 0
    while (trial := _claim_trial(study, trials, slot_lock, deadline)) is not None:
        table.row(_record(_run_trial(study, trial, objective), mode))
        new_trials += 1
    records = [_record(t, mode) for t in study.get_trials(deepcopy=False)]
    outcome = TuneOutcome(records, best_trial(records, mode), None, new_trials, monitor, mode,
                          study)
    settings = {"strategy": search.strategy, "pruner": search.pruner, "study": study_name}
    return write_results(out_dir, outcome, "optuna", settings)


def check_search(config: RunConfig, engine: str) -> TuneConfig:
    """The config's ``tune:`` section, refused when it has no parameters or asks ``engine``
    for something it lacks."""
    if config.tune is None or not config.tune.params:
        raise ConfigError("tune: the config has no tune: section with parameters to search")
    check_engine(config.tune, engine)
    return config.tune


def trial_count(trials: int | None, grid_points: dict[str, list[Any]] | None,
                report: Callable[[str], None]) -> int:
    """How many trials to run: ``trials``, capped by (and defaulting to) the grid's size."""
    if trials is not None and (not isinstance(trials, int) or trials < 1):
        raise ValueError(f"--trials: expected an integer >= 1, got {trials!r}")
    if grid_points is None:
        if trials is None:
            raise ValueError("--trials: expected an integer >= 1 (only a grid search, "
                             "tune.strategy: grid, has a count of its own), got none")
        return trials
    size = grid_size(grid_points)
    report(f"grid: {describe_grid(grid_points)}"
           + (f"; running {trials} of them" if trials is not None and trials < size else ""))
    return size if trials is None else min(trials, size)


def monitor_of(config: RunConfig) -> tuple[str, str]:
    """The metric the runs monitor and its mode (``min``/``max``), as training resolves it."""
    return resolve_monitor(TASKS[config.task], config.train.monitor, config.train.monitor_mode)


def _record(trial: Any, mode: str) -> TrialRecord:
    """An Optuna trial as a :class:`TrialRecord`."""
    state = trial.state.name.lower().replace("fail", "failed")
    reported = [v for v in trial.intermediate_values.values() if v == v]  # drop NaN
    value = trial.value
    if value is None and reported:
        value = min(reported) if mode == "min" else max(reported)
    seconds = None
    if trial.datetime_start is not None and trial.datetime_complete is not None:
        seconds = (trial.datetime_complete - trial.datetime_start).total_seconds()
    return TrialRecord(trial.number, state, value, dict(trial.params),
                       trial.user_attrs.get("run_dir"), len(trial.intermediate_values),
                       seconds, trial.user_attrs.get("config"))
