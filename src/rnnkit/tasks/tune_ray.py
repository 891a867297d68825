"""Hyper-parameter search with Ray Tune: trials as Ray tasks, ASHA or population-based training.

The ``tune:`` section is read as for Optuna (:mod:`rnnkit.tasks.tune`): the same ``ParamSpec``
syntax becomes Ray search-space domains, ``strategy: grid`` a ``grid_search`` per key, ``tpe``
Ray's Optuna searcher. Every trial trains a normal rnnkit run in ``OUT/trial-<n>`` (1 CPU
each) and, after each evaluation, reports the validation metric together with a Ray
checkpoint holding rnnkit's own ``last``/``best`` checkpoints. ASHA and the median rule stop
trials from those reports; PBT's exploit step starts a trial from another trial's checkpoint
with mutated ``train.*`` values, and rnnkit's exact resume makes that copy exact (weights,
optimizer moments, data position, RNG). Results land in the same files as Optuna's; Ray's own
records are in ``OUT/ray``. PBT draws its initial population at random.

Trials run on a local Ray runtime started for the search (all this machine's CPUs) unless
``address`` names a running cluster; ``OUT`` must then be on storage every node sees.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rnnkit.tasks.config import ParamSpec, RunConfig, TuneConfig, config_from_dict
from rnnkit.tasks.errors import ConfigError
from rnnkit.tasks.run import train
from rnnkit.tasks.tune import check_search, monitor_of, trial_count
from rnnkit.tasks.tune_results import (
    TrialRecord,
    TrialTable,
    TuneOutcome,
    best_trial,
    read_trial_config,
    write_results,
)
from rnnkit.tasks.tune_space import grid, with_values
from rnnkit.train import Callback
from rnnkit.train.interrupt import signal_handlers_restored

RAY_DIR = "ray"
CHECKPOINT_PARTS = ("last", "best")  # rnnkit checkpoints a Ray checkpoint carries


def _ray() -> Any:
    try:
        import ray
        import ray.tune  # the Tune library, in the ray[tune] extra
    except ImportError as error:
        raise ImportError("rnnkit tune --engine ray needs Ray Tune: pip install "
                          "'rnnkit[ray]'") from error
    return ray


def domain(key: str, spec: ParamSpec) -> Any:
    """The Ray Tune domain for ``spec`` (bounds inclusive, as with Optuna)."""
    from ray import tune

    if spec.type == "categorical":
        return tune.choice(list(spec.choices or []))
    low, high = spec.low, spec.high
    if spec.type == "int":
        if spec.step and spec.step > 1:
            return tune.qrandint(int(low), int(high), int(spec.step))
        return tune.lograndint(int(low), int(high) + 1) if spec.log else tune.randint(
            int(low), int(high) + 1)
    if spec.step:
        return (tune.qloguniform if spec.log else tune.quniform)(low, high, spec.step)
    return (tune.loguniform if spec.log else tune.uniform)(low, high)


def search_space(search: TuneConfig) -> dict[str, Any]:
    """``section.key`` -> Ray domain, or ``grid_search`` over the grid's values."""
    from ray import tune

    if search.strategy == "grid":
        return {key: tune.grid_search(values) for key, values in grid(search).items()}
    return {key: domain(key, spec) for key, spec in search.params.items()}


def evaluations(config: RunConfig) -> int:
    """How many evaluations a full trial makes (ASHA's ``max_t``); 100 when only a time budget
    bounds the run."""
    train_config = config.train
    if train_config.eval_every is not None and train_config.max_steps is not None:
        return max(1, math.ceil(train_config.max_steps / train_config.eval_every))
    if train_config.eval_every is None and train_config.max_epochs is not None:
        return train_config.max_epochs
    return 100


def scheduler(search: TuneConfig, config: RunConfig) -> Any:
    """Ray's trial scheduler for ``tune.pruner``; time is counted in evaluations."""
    from ray.tune import schedulers

    common = {"time_attr": "training_iteration"}
    last = evaluations(config)
    if search.pruner in ("asha", "hyperband"):
        brackets = 3 if search.pruner == "hyperband" else 1
        # max_t one past the run's own end: a trial that trains its whole budget ends by
        # itself (and writes its summary) rather than being stopped at its last report
        return finishing_last_evaluation(schedulers.AsyncHyperBandScheduler, last)(
            **common, max_t=last + 1, grace_period=1, reduction_factor=2, brackets=brackets)
    if search.pruner == "median":
        return finishing_last_evaluation(schedulers.MedianStoppingRule, last)(
            **common, grace_period=1, min_samples_required=2)
    if search.pruner == "pbt":
        return schedulers.PopulationBasedTraining(
            **common, perturbation_interval=search.perturbation_interval,
            hyperparam_mutations={key: _mutation(key, spec) for key, spec in search.params.items()},
            quantile_fraction=0.5,  # small populations: the worse half copies the better
            # every trial reaches each interval before anyone exploits: the same exploit
            # decisions on every run, however the 2 cores schedule the trials
            synch=True)
    return schedulers.FIFOScheduler()


def finishing_last_evaluation(base: type, last: int) -> type:
    """``base``, a Ray stopping scheduler, that never stops a trial at its ``last`` evaluation
    or after: stopping there saves no training, and the trial would lose its summary and count
    as pruned although it trained its whole budget (ASHA has a rung at 4 evaluations, so a
    4-evaluation trial in the worse half there was recorded as pruned)."""

    class Scheduler(base):
        def on_trial_result(self, tune_controller, trial, result):
            decision = super().on_trial_result(tune_controller, trial, result)
            if decision == self.STOP and result.get("training_iteration", 0) >= last:
                return self.CONTINUE
            return decision

    Scheduler.__name__ = Scheduler.__qualname__ = base.__name__
    return Scheduler


def _mutation(key: str, spec: ParamSpec) -> Any:
    """What PBT's explore step draws from: a list for categoricals (it shifts to a neighbour;
    a choice domain it would multiply), else the domain (resampled or scaled by 0.8/1.2)."""
    return list(spec.choices or []) if spec.type == "categorical" else domain(key, spec)


def fit_to_spec(spec: ParamSpec, value: Any) -> Any:
    """``value`` back inside ``spec``: PBT scales numbers by 0.8/1.2, which can leave the range
    and turns an int into a float."""
    if spec.type == "categorical":
        return value
    value = min(max(value, spec.low), spec.high)  # type: ignore[type-var]
    return round(value) if spec.type == "int" else float(value)


def searcher(search: TuneConfig) -> Any:
    """Ray's search algorithm: Optuna's TPE for ``tpe``, else Ray's own (random or grid)."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    if search.strategy == "tpe" and search.pruner != "pbt":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(sampler=optuna.samplers.TPESampler(seed=search.seed))
    return BasicVariantGenerator(random_state=search.seed)


class _RayReporter(Callback):
    """Reports each evaluation's metrics to Ray with a checkpoint of the run at that step.

    ``last`` is saved just after the evaluation callbacks run, so the report waits for the next
    step (or the end of the run), when ``last`` on disk is the evaluated model."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir, self.pending = run_dir, None

    def on_eval_end(self, trainer, metrics: dict[str, float]) -> None:
        self.pending = {**metrics, "step": trainer.state.global_step}

    def on_batch_end(self, trainer, record) -> None:
        self._report()

    def on_fit_end(self, trainer) -> None:
        self._report()

    def _report(self) -> None:
        if self.pending is None:
            return
        from ray import tune

        metrics, self.pending = self.pending, None
        with tempfile.TemporaryDirectory(prefix="rnnkit-ray-") as directory:
            pack_checkpoint(self.run_dir, Path(directory))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))


def pack_checkpoint(run_dir: Path, target: Path) -> None:
    """Copy what resuming ``run_dir`` needs (``task.json``, ``checkpoints/last|best``)."""
    shutil.copy2(run_dir / "task.json", target / "task.json")
    for part in CHECKPOINT_PARTS:
        if (run_dir / "checkpoints" / part).is_dir():
            shutil.copytree(run_dir / "checkpoints" / part, target / part)


def unpack_checkpoint(source: Path, run_dir: Path) -> None:
    """Make ``run_dir`` resume from a packed checkpoint (another trial's, under PBT): its
    ``last``/``best`` replace the run's own."""
    from rnnkit.tasks.run_dir import write_marker

    checkpoints = run_dir / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    write_marker(run_dir)
    shutil.copy2(source / "task.json", run_dir / "task.json")
    for part in (*CHECKPOINT_PARTS, ".last.previous"):
        shutil.rmtree(checkpoints / part, ignore_errors=True)
    for part in CHECKPOINT_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, checkpoints / part)


def _trial_number(trial_id: str) -> int:
    """Ray names trials ``<experiment>_<5-digit index>``; the index is the trial's number."""
    return int(trial_id.rsplit("_", 1)[-1])


def run_trial(params: dict[str, Any], base: dict[str, Any], out_dir: str,
              specs: dict[str, ParamSpec], cwd: str, env: dict[str, str]) -> None:
    """One Ray trial: train ``base`` with ``params`` into ``OUT/trial-<n>``, resuming from the
    checkpoint Ray hands over (a restart, or PBT's exploit step)."""
    from ray import tune

    os.environ.update(env)
    if os.path.isdir(cwd):  # relative data paths mean what they meant to the caller
        os.chdir(cwd)
    number = _trial_number(tune.get_context().get_trial_id())
    values = {key: fit_to_spec(spec, params[key]) for key, spec in specs.items()}
    config = with_values(config_from_dict(base), values)
    run_dir = Path(out_dir) / f"trial-{number}"
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            unpack_checkpoint(Path(directory), run_dir)
    train(config, run_dir, resume=checkpoint is not None, overwrite=checkpoint is None,
          callbacks=[_RayReporter(run_dir)], notice=lambda message: None)


def _table_callback(monitor: str, mode: str, keys: list[str], out_dir: Path,
                    table: TrialTable) -> Any:
    """A Ray Tune callback (driver side) that keeps a :class:`TrialRecord` per trial and prints
    its row when the trial ends."""
    from ray.tune import Callback as RayCallback

    class TrialRows(RayCallback):
        def __init__(self) -> None:
            self.records: dict[str, TrialRecord] = {}

        def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
            record = self._record(trial)
            value = result.get(monitor)
            if value is not None and math.isfinite(value):
                better = record.value is None or (value < record.value if mode == "min"
                                                  else value > record.value)
                record.value = value if better else record.value
            record.evaluations = int(result.get("training_iteration", record.evaluations))
            record.seconds = result.get("time_total_s", record.seconds)

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            self._finish(trial, failed=False)

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            self._finish(trial, failed=True)

        def _record(self, trial) -> TrialRecord:
            if trial.trial_id not in self.records:
                number = _trial_number(trial.trial_id)
                self.records[trial.trial_id] = TrialRecord(
                    number, "running", None, {}, str(out_dir / f"trial-{number}"))
            return self.records[trial.trial_id]

        def _finish(self, trial, failed: bool) -> None:
            record = self._record(trial)
            record.params = {key: trial.config[key] for key in keys}  # PBT: the final values
            _settle(record, failed)
            table.row(record)

    return TrialRows()


def _settle(record: TrialRecord, failed: bool) -> None:
    """State and value of a finished trial: complete when its run wrote ``summary.json`` (then
    its best metric, as the run recorded it), pruned when Ray stopped it before."""
    import json

    summary = Path(record.run_dir or "") / "summary.json"
    if failed:
        record.state = "failed"
    elif summary.is_file():
        record.state = "complete"
        record.value = json.loads(summary.read_text(encoding="utf-8"))["best_metric"]
    else:
        record.state = "pruned"
    record.config = read_trial_config(record.run_dir) if record.run_dir else None


def _start_ray(ray: Any, address: str | None) -> bool:
    """Connect to ``address`` or start a local runtime; True when this call did (and so must
    shut it down)."""
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR",
             "configure_logging": True}
    if address is not None:
        ray.init(address=address, **quiet)
    else:  # a local runtime talks to itself over loopback only
        ray.init(num_cpus=os.cpu_count() or 1, _node_ip_address="127.0.0.1", **quiet)
    return True


def tune_ray(
    config: RunConfig,
    out_dir: str | Path,
    trials: int | None = None,
    address: str | None = None,
    study_name: str = "rnnkit",
    timeout_minutes: float | None = None,
    report: Callable[[str], None] = print,
) -> TuneOutcome:
    """Run ``trials`` trials (a grid: one per combination) with Ray Tune; see the module
    docstring. ``report`` receives the grid size, then one table row per finished trial."""
    ray = _ray()
    search = check_search(config, "ray")
    if search.pruner == "pbt" and config.train.checkpoint_every is not None:
        raise ConfigError("train.checkpoint_every: expected null with tune.pruner: pbt (the "
                          "checkpoint PBT copies must be the evaluated model), got "
                          f"{config.train.checkpoint_every}")
    grid_points = grid(search) if search.strategy == "grid" else None
    trials = trial_count(trials, grid_points, report)
    monitor, mode = monitor_of(config)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    keys = list(search.params)
    table = TrialTable(monitor, keys, report)
    rows = _table_callback(monitor, mode, keys, out_dir, table)
    # ray.init installs its own stop-signal handlers in this process and leaves them behind
    with signal_handlers_restored():
        started = _start_ray(ray, address)
        try:
            with warnings.catch_warnings():
                # Ray suggests actor reuse for PBT; rnnkit trials restart from checkpoints
                warnings.filterwarnings("ignore", message=".*reuse_actors", category=UserWarning)
                results = _tuner(config, search, out_dir, study_name, trials,
                                 grid_points is not None, monitor, mode, timeout_minutes,
                                 rows).fit()
        finally:
            if started:
                ray.shutdown()
    records = sorted(rows.records.values(), key=lambda record: record.number)
    outcome = TuneOutcome(records, best_trial(records, mode), None, len(records), monitor, mode,
                          results)
    settings = {"strategy": search.strategy, "pruner": search.pruner, "study": study_name}
    return write_results(out_dir, outcome, "ray", settings)


def _tuner(config: RunConfig, search: TuneConfig, out_dir: Path, name: str, trials: int,
           is_grid: bool, monitor: str, mode: str, timeout_minutes: float | None,
           rows: Any) -> Any:
    """The Ray ``Tuner``: 1 CPU per trial, checkpoints kept by Ray under ``OUT/ray``."""
    from ray import tune

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the classic reporter honours verbose=0
    env = {k: v for k, v in os.environ.items() if k.startswith("RNNKIT_")}
    trainable = tune.with_resources(tune.with_parameters(
        run_trial, base=config.to_dict(), out_dir=str(out_dir), specs=search.params,
        cwd=os.getcwd(), env=env), {"cpu": 1})
    return tune.Tuner(
        trainable,
        param_space=search_space(search),
        tune_config=tune.TuneConfig(
            metric=monitor, mode=mode, num_samples=1 if is_grid else trials,
            scheduler=scheduler(search, config), search_alg=searcher(search),
            time_budget_s=None if timeout_minutes is None else timeout_minutes * 60),
        run_config=tune.RunConfig(
            name=name, storage_path=str(out_dir / RAY_DIR), callbacks=[rows], verbose=0,
            # PBT clones a trial from another one's recent checkpoints: keep a few more
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=4 if search.pruner == "pbt" else 2)),
    )
