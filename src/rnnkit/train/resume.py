"""Which checkpoint a resumed run continues from, when the newest one may be damaged.

A run keeps up to three checkpoints it can resume from: ``last``, the ``last`` before it
(``.last.previous``) and ``best``. :func:`find_resumable` checks each (checksums, readable
files, finite weights, trainer state present) and returns the one of the highest step, with
the damaged ones it passed over; :func:`set_damaged_aside` moves those to ``NAME.damaged`` so
no later save or load trips over them, and :func:`fallback_notice` says what happened in one
line; :func:`choose_resume_directory` does all three for the trainer. Training is
deterministic, so resuming from an older checkpoint ends with the same weights, only later.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rnnkit.train.checkpoint import TRAINER_KEY, damaged_name, load_checkpoint
from rnnkit.train.distributed import from_main
from rnnkit.train.integrity import CorruptCheckpointError
from rnnkit.train.runtime import is_main_process

RESUME_CANDIDATES = ("last", ".last.previous", "best")
"""Checkpoints a run may resume from, in order of preference at equal steps."""


@dataclass(frozen=True)
class ResumePoint:
    """The checkpoint to resume from (``path``, at ``step``) and the damaged ones skipped."""

    path: Path
    step: int
    damaged: tuple[CorruptCheckpointError, ...] = ()


def find_resumable(checkpoint_dir: str | Path) -> ResumePoint:
    """The newest undamaged checkpoint in ``checkpoint_dir`` that holds a trainer state.

    Raises ``FileNotFoundError`` when there is none at all, and
    :class:`~rnnkit.train.integrity.CorruptCheckpointError` naming each when all are damaged.
    Reads only (a trainer may be writing); nothing is moved.
    """
    checkpoint_dir = Path(checkpoint_dir)
    usable: list[tuple[int, int, Path]] = []
    damaged: list[CorruptCheckpointError] = []
    for preference, name in enumerate(RESUME_CANDIDATES):
        path = checkpoint_dir / name
        if not path.is_dir():
            continue
        try:
            checkpoint = load_checkpoint(path)
        except FileNotFoundError as error:  # a directory without weights: half of a copy
            damaged.append(CorruptCheckpointError(path, str(error)))
            continue
        except CorruptCheckpointError as error:
            damaged.append(error)
            continue
        if checkpoint.trainer_state is None:
            continue  # weights only (written by save_checkpoint directly): not resumable
        step = (checkpoint.metadata.get(TRAINER_KEY) or {}).get("step")
        usable.append((-int(step or 0), preference, path))
    if usable:
        negative_step, _, path = min(usable)
        return ResumePoint(path, -negative_step, tuple(damaged))
    if damaged:
        raise CorruptCheckpointError(
            checkpoint_dir, "no checkpoint is usable to resume from: "
            + "; ".join(f"{e.path.name}: {e.problem}" for e in damaged))
    raise FileNotFoundError(
        f"{checkpoint_dir}: no checkpoint to resume from (expected one of "
        f"{', '.join(RESUME_CANDIDATES)} with a trainer state)")


def set_damaged_aside(point: ResumePoint) -> list[Path]:
    """Move each damaged checkpoint of ``point`` to ``NAME.damaged`` (replacing an older
    one); returns the new paths. Only the process that writes the run may call this."""
    moved = []
    for error in point.damaged:
        target = damaged_name(error.path)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(error.path, target)
        moved.append(target)
    return moved


def fallback_notice(point: ResumePoint, moved: list[Path]) -> str:
    """One line: which checkpoints were damaged and why, where they went, what resumes."""
    parts = [f"{error.path.name} is damaged ({error.problem}), moved to {target.name}"
             for error, target in zip(point.damaged, moved, strict=True)]
    return (f"resume: {'; '.join(parts)}; resuming from {point.path} (step {point.step}) "
            "instead")


def choose_resume_directory(checkpoint_dir: Path | None, notice: Callable[[str], None]) -> Path:
    """The newest undamaged checkpoint of ``checkpoint_dir``: rank 0 chooses, sets damaged ones
    aside and says so through ``notice``; every data-parallel rank then loads the same one."""
    if checkpoint_dir is None:
        raise ValueError("resume: True needs a run_dir to resume from, got run_dir=None")
    chosen, refusal = None, None
    if is_main_process():
        try:
            point = find_resumable(checkpoint_dir)
            if point.damaged:
                notice(fallback_notice(point, set_damaged_aside(point)))
            chosen = str(point.path)
        except (OSError, ValueError) as error:
            refusal = error
    chosen, message = from_main((chosen, None if refusal is None else str(refusal)))
    if refusal is not None:
        raise refusal
    if chosen is None:  # another rank: rank 0's refusal, retold
        raise ValueError(message)
    return Path(chosen)
