"""``rnnkit report STUDY_DIR``: a tuning study (``rnnkit tune --out STUDY_DIR``) on one page.

It reads what ``tune`` wrote, whichever engine ran it: ``study.json`` (engine, strategy,
monitored metric, best trial), ``trials.csv`` (one row per trial: state, metric, the values it
tried) and the best trial's own ``metrics.csv``. Sections: the study, the trial table, the
metric against each hyperparameter (pruned trials marked at the best value they reported) and
the best trial's training curves.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from rnnkit.analysis import plots
from rnnkit.analysis.html import Section, build_section, table, write_report
from rnnkit.analysis.run_files import metric_series, read_metrics
from rnnkit.tasks.tune_results import STUDY_FILE, TRIALS_FILE

REPORT_FILE = "report.html"
IMAGE_DIR = "report_images"
FIXED_COLUMNS = ("trial", "state", "evaluations", "seconds", "run_dir")


@dataclass(frozen=True)
class Study:
    """A study directory's summary (``study.json``) and trial rows (``trials.csv``)."""

    path: Path
    summary: dict
    rows: list[dict[str, str]]

    @property
    def monitor(self) -> str:
        return self.summary["monitor"]

    @property
    def params(self) -> list[str]:
        return [c for c in self.rows[0] if c not in (*FIXED_COLUMNS, self.monitor)] \
            if self.rows else []


def is_study(path: str | Path) -> bool:
    """True for a directory ``rnnkit tune`` wrote (it has ``study.json`` and ``trials.csv``)."""
    return (Path(path) / STUDY_FILE).is_file() and (Path(path) / TRIALS_FILE).is_file()


def read_study(path: str | Path) -> Study:
    path = Path(path)
    summary = json.loads((path / STUDY_FILE).read_text(encoding="utf-8"))
    with open(path / TRIALS_FILE, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return Study(path, summary, rows)


def _value(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def overview(study: Study):
    def build(section: Section) -> None:
        states: dict[str, int] = {}
        for row in study.rows:
            states[row["state"]] = states.get(row["state"], 0) + 1
        best = study.summary.get("best") or {}
        rows = [{"item": key, "value": study.summary.get(key, "?")}
                for key in ("engine", "strategy", "pruner", "monitor", "mode", "trials")]
        rows.append({"item": "trials by state",
                     "value": ", ".join(f"{k}: {v}" for k, v in sorted(states.items()))})
        rows.append({"item": "best trial", "value": best.get("number", "none completed")})
        rows.append({"item": f"best {study.monitor}", "value": best.get("value", "")})
        rows += [{"item": f"best {k}", "value": v} for k, v in best.get("params", {}).items()]
        section.add(table(rows))
    return build


def trial_table(study: Study):
    def build(section: Section) -> None:
        section.add(table(study.rows, ["trial", "state", study.monitor, *study.params,
                                       "evaluations", "seconds"]))
    return build


def metric_by_parameter(study: Study):
    def build(section: Section) -> None:
        if not study.params:
            raise ValueError("the study searched no hyperparameters")
        points = [(row, _value(row[study.monitor])) for row in study.rows]
        points = [(row, value) for row, value in points if value is not None]
        if not points:
            raise ValueError(f"no trial reported {study.monitor} yet")
        best = (study.summary.get("best") or {}).get("number")
        figure = plots.hyperparameter_figure(
            {name: [row[name] for row, _ in points] for name in study.params},
            [value for _, value in points], [row["state"] for row, _ in points],
            [str(row["trial"]) == str(best) for row, _ in points], study.monitor)
        section.add_figure("metric_by_parameter", figure,
                           f"{study.monitor} of each trial against each hyperparameter "
                           "(x: pruned, at the best value it reported; star: best)")
    return build


def best_curves(study: Study):
    def build(section: Section) -> None:
        best = study.summary.get("best") or {}
        if not best.get("run_dir"):
            raise ValueError("no completed trial with a run directory")
        rows = read_metrics(Path(best["run_dir"]))
        series = {"training loss": metric_series(rows, "loss")}
        if study.monitor != "loss":
            series[study.monitor] = metric_series(rows, study.monitor)
        section.add_figure("best_trial_curves", plots.series_figure(
            series, f"Best trial ({best.get('number')})", ylabel="value"),
            f"Training loss and {study.monitor} of trial {best.get('number')}")
    return build


SECTIONS = [("Study", overview), ("Trials", trial_table),
            ("Metric against each hyperparameter", metric_by_parameter),
            ("Best trial's curves", best_curves)]


def build_study_report(path: str | Path) -> Path:
    """Write ``STUDY_DIR/report.html`` (and its PNGs); returns the HTML path."""
    study = read_study(path)
    sections = [build_section(title, builder(study)) for title, builder in SECTIONS]
    return write_report(study.path / REPORT_FILE, f"rnnkit tuning report: {study.path.name}",
                        sections, subtitle=str(study.path.resolve()),
                        image_dir=study.path / IMAGE_DIR)
