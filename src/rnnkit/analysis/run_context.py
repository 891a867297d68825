"""Lazy access to a run's model, task glue and a batch of its own data, for the report.

Each piece is loaded on first use; a failure is remembered and re-raised for every section
that needs that piece, so the report can explain it in place.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnkit.analysis.run_files import RunFiles
from rnnkit.data.batch import IGNORE_INDEX, TokenBatch
from rnnkit.models import load_model

EXAMPLE_LIMIT = 256
TOKEN_LIMIT = 20_000


class RunContext:
    """The run directory, and on demand its model, :class:`rnnkit.tasks.Run` and data."""

    def __init__(self, run_dir: str | Path, data: str | Path | None = None, seed: int = 0):
        self.files = RunFiles.open(run_dir)
        self.data = Path(data) if data is not None else None
        self.seed = seed

    @functools.cached_property
    def model(self) -> nn.Module:
        """The checkpoint's model (best, else last), on CPU in eval mode."""
        return load_model(self.files.checkpoint)

    @functools.cached_property
    def run(self) -> Any:
        """The :class:`rnnkit.tasks.Run` (task glue with vocabularies, labels, scaling)."""
        from rnnkit.tasks import load_run  # task glue is optional for the weights-only sections

        run = load_run(self.files.run_dir)
        run.model = self.model  # one model object for every section
        return run

    def _candidate_paths(self) -> list[Path]:
        """``--data`` if given, else the run's validation, test and training files."""
        if self.data is not None:
            if not self.data.is_file():
                raise FileNotFoundError(f"--data: no such file {str(self.data)!r}")
            return [self.data]
        from rnnkit.tasks.data_files import resolve_paths

        paths = resolve_paths(self.run.config.data)
        found = [Path(paths[key]) for key in ("valid", "test", "train")
                 if paths.get(key) is not None and Path(paths[key]).is_file()]
        if not found:
            raise FileNotFoundError("data: the run's config names no readable data file; "
                                    "pass --data")
        return found

    def _read(self, path: Path) -> Any:
        """The task's examples of ``path``; a series is joined to the training context stored
        with the run when it continues the training series."""
        examples = self.run.task.read(path)
        context = getattr(examples, "context", None)
        if context is not None:
            examples = replace(examples, values=np.concatenate([context, examples.values]),
                               times=None, context=None)
        if isinstance(examples, np.ndarray):  # a language model's token ids, stored narrow
            return examples[:TOKEN_LIMIT].astype(np.int64)
        if isinstance(examples, list):
            limit = TOKEN_LIMIT if examples and isinstance(examples[0], int) else EXAMPLE_LIMIT
            return examples[:limit]
        return examples

    def _usable(self, examples: Any) -> bool:
        if hasattr(examples, "values"):  # a series needs one whole window
            data = self.run.config.data
            return len(examples.values) >= data.lookback + data.horizon
        return len(examples) > 0

    @functools.cached_property
    def _data(self) -> tuple[Path, Any]:
        candidates = self._candidate_paths()
        for path in candidates:
            examples = self._read(path)
            if self._usable(examples):
                return path, examples
        raise ValueError(f"data: no file long enough for one example among "
                         f"{[str(p) for p in candidates]}")

    @property
    def data_path(self) -> Path:
        """The file the data-dependent sections use (see :meth:`_candidate_paths`)."""
        return self._data[0]

    @property
    def examples(self) -> Any:
        """The first examples of :attr:`data_path`, as the task reads them."""
        return self._data[1]

    @functools.cached_property
    def batch(self) -> Any:
        """One training-format batch of :attr:`examples` (seeded)."""
        source = self.run.task.train_source(self.examples, self.seed)
        batch = next(iter(source.iter_epoch(0)), None)
        if batch is None:
            raise ValueError(f"{self.data_path}: too little data for one batch")
        return batch

    @property
    def task_name(self) -> str:
        return str(self.files.metadata().get("task") or self.files.config().get("task", ""))


def last_position_only(batch: TokenBatch) -> TokenBatch:
    """The batch with every target but each row's last valid one ignored, so the loss sits at
    the end of the sequence and ``∂L/∂h_t`` shows how far back the model's memory reaches."""
    targets = torch.full_like(batch.targets, IGNORE_INDEX)
    rows = torch.arange(len(batch))
    last = (batch.lengths - 1).clamp(min=0).to(targets.device)
    targets[rows, last] = batch.targets[rows, last]
    return replace(batch, targets=targets)
