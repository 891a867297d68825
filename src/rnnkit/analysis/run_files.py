"""Read what ``rnnkit train`` leaves in a run directory, each piece on its own.

Layout (see :mod:`rnnkit.tasks.run`): ``config.yaml``, ``checkpoints/{best,last}/`` with
``model.safetensors`` + ``metadata.json``, ``metrics.csv``. Nothing here needs the training data,
and a missing piece is an error about that piece only, so a report can show the rest.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"


@dataclass(frozen=True)
class RunFiles:
    """Paths of one run directory; the ``read_*`` methods parse one file each."""

    run_dir: Path

    @classmethod
    def open(cls, run_dir: str | Path) -> RunFiles:
        path = Path(run_dir)
        if not path.is_dir():
            raise FileNotFoundError(f"run_dir: no such directory {str(path)!r}")
        return cls(path)

    @property
    def checkpoint(self) -> Path:
        """``checkpoints/best`` if present, else ``checkpoints/last``."""
        for name in ("best", "last"):
            candidate = self.run_dir / "checkpoints" / name
            if (candidate / "metadata.json").is_file():
                return candidate
        raise FileNotFoundError(f"{self.run_dir}: no checkpoints/best or checkpoints/last with "
                                "metadata.json (has the run saved a checkpoint yet?)")

    def config_text(self) -> str:
        path = self.run_dir / CONFIG_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no run configuration")
        return path.read_text(encoding="utf-8")

    def config(self) -> dict[str, Any]:
        values = yaml.safe_load(self.config_text())
        return values if isinstance(values, dict) else {}

    def metadata(self) -> dict[str, Any]:
        return json.loads((self.checkpoint / "metadata.json").read_text(encoding="utf-8"))

    def metrics(self) -> list[dict[str, float]]:
        """Rows of ``metrics.csv`` with numbers parsed; empty cells are left out of each row."""
        return read_metrics(self.run_dir)


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    """Rows of ``run_dir/metrics.csv`` with numbers parsed; empty cells are left out."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics log")
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for line, raw in enumerate(csv.DictReader(handle), start=2):
            row = {}
            for key, value in raw.items():
                if value in ("", None):
                    continue
                try:
                    row[key] = float(value)
                except ValueError as error:
                    raise ValueError(f"{path}:{line}: column {key!r} is not a number: "
                                     f"{value!r}") from error
            rows.append(row)
    return rows


def metric_series(rows: list[dict[str, float]], name: str) -> tuple[list[float], list[float]]:
    """``(steps, values)`` of the rows that have a finite ``name``."""
    points = [(row["step"], row[name]) for row in rows
              if name in row and "step" in row and math.isfinite(row[name])]
    return [p[0] for p in points], [p[1] for p in points]
