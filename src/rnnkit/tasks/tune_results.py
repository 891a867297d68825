"""What a search leaves behind, whichever engine ran it: the trial table (printed as trials
finish), ``trials.csv``, ``study.json`` and ``best_config.yaml``.

``best_config.yaml`` is the configuration the best trial trained, read back from what the trial
recorded (not rebuilt from today's config file and ``--set`` values), so training it again with
its seed gives the same validation metric on CPU.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rnnkit.tasks.config import config_from_dict, save_config
from rnnkit.train.durable import replace_file

TRIALS_FILE = "trials.csv"
STUDY_FILE = "study.json"
BEST_CONFIG_FILE = "best_config.yaml"
STATES = ("complete", "pruned", "failed", "running")


@dataclass
class TrialRecord:
    """One trial: ``state`` one of :data:`STATES`; ``value`` its best monitored metric (for a
    pruned trial, the best one reported before it was stopped); ``config`` the full run
    configuration it trained (a dict as :meth:`RunConfig.to_dict` gives)."""

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    run_dir: str | None = None
    evaluations: int = 0
    seconds: float | None = None
    config: dict[str, Any] | None = field(default=None, repr=False)


@dataclass
class TuneOutcome:
    """How a search ended: its trials, the best of them, the files written, and how many
    trials this call ran (a shared study may hold more, from earlier calls or other workers)."""

    trials: list[TrialRecord]
    best: TrialRecord | None
    best_config: Path | None
    new_trials: int
    monitor: str
    mode: str
    study: Any = None  # the engine's own object (an optuna.Study, a ray ResultGrid)

    @property
    def best_value(self) -> float | None:
        return None if self.best is None else self.best.value

    @property
    def best_params(self) -> dict[str, Any]:
        return {} if self.best is None else dict(self.best.params)


def best_trial(trials: list[TrialRecord], mode: str) -> TrialRecord | None:
    """The complete trial with the best finite value (``mode`` ``min`` or ``max``); ties go to
    the earlier trial. Pruned trials never win: they did not train their whole budget."""
    done = [t for t in trials if t.state == "complete" and t.value is not None
            and math.isfinite(t.value)]
    if not done:
        return None
    sign = 1 if mode == "min" else -1
    return min(done, key=lambda t: (sign * t.value, t.number))  # type: ignore[operator]


class TrialTable:
    """Prints one aligned row per finished trial, under a header printed with the first."""

    def __init__(self, monitor: str, keys: list[str], write: Callable[[str], None]) -> None:
        self.columns = ["trial", "state", monitor, *keys, "evals", "time"]
        self.keys, self.write, self.started = keys, write, False
        self.widths = [max(len(c), 8) for c in self.columns]

    def row(self, trial: TrialRecord) -> None:
        if not self.started:
            self.write(self._line(self.columns))
            self.started = True
        value = "-" if trial.value is None else f"{trial.value:.4f}"
        seconds = "-" if trial.seconds is None else f"{trial.seconds:.1f}s"
        cells = [str(trial.number), trial.state, value,
                 *(_cell(trial.params.get(k, "-")) for k in self.keys),
                 str(trial.evaluations), seconds]
        self.write(self._line(cells))

    def _line(self, cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, self.widths, strict=True)).rstrip()


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_results(out_dir: Path, outcome: TuneOutcome, engine: str, settings: dict[str, Any],
                  ) -> TuneOutcome:
    """Write ``trials.csv``, ``study.json`` and (when a trial completed) ``best_config.yaml``
    into ``out_dir``; returns ``outcome`` with ``best_config`` set."""
    keys = sorted({k for t in outcome.trials for k in t.params})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["trial", "state", outcome.monitor, *keys, "evaluations", "seconds",
                     "run_dir"])
    for t in sorted(outcome.trials, key=lambda t: t.number):
        writer.writerow([t.number, t.state, "" if t.value is None else repr(t.value),
                         *(t.params.get(k, "") for k in keys), t.evaluations,
                         "" if t.seconds is None else f"{t.seconds:.3f}", t.run_dir or ""])
    replace_file(out_dir / TRIALS_FILE, buffer.getvalue(), "trial table")
    best = outcome.best
    study = {"engine": engine, "monitor": outcome.monitor, "mode": outcome.mode, **settings,
             "trials": len(outcome.trials), "new_trials": outcome.new_trials,
             "best": None if best is None else {k: v for k, v in asdict(best).items()
                                                if k != "config"}}
    replace_file(out_dir / STUDY_FILE, json.dumps(study, indent=2, default=str) + "\n",
                 "study summary")
    if best is not None and best.config is not None:
        outcome.best_config = save_config(config_from_dict(best.config),
                                          out_dir / BEST_CONFIG_FILE)
    return outcome


def read_trial_config(run_dir: str | Path) -> dict[str, Any] | None:
    """The configuration a trial's run directory recorded (``config.yaml``), or ``None``."""
    from rnnkit.tasks.config import read_config_file

    path = Path(run_dir) / "config.yaml"
    return read_config_file(path) if path.is_file() else None
