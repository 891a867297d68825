"""The ``save_top_k`` best checkpoints by the monitored metric, as Lightning's ModelCheckpoint.

Each lives in ``checkpoints/top-step-NNNNNNNN`` (the step it was saved at, zero-padded so the
names sort by step) and holds the weights and metadata, not a trainer state: load one with
``load_run(run_dir, "top-step-00000120")`` or ``--checkpoint top-step-00000120``; resuming
uses ``last``. The ranking (metric, step) travels in the trainer state, so a resumed run goes
on pruning the same set. A checkpoint that drops out of the top is deleted by its name from
that ranking: rnnkit never deletes a directory it did not record writing.
"""

from __future__ import annotations

import math
from pathlib import Path

from rnnkit.train.checkpoint import delete_checkpoint

TOP_PREFIX = "top-step-"


def top_name(step: int) -> str:
    """The directory name of the top-k checkpoint saved at ``step``."""
    return f"{TOP_PREFIX}{step:08d}"


def rank(kept: list[list[float]], value: float, step: int, k: int,
         mode: str) -> tuple[bool, list[list[float]], list[int]]:
    """Where ``value`` (at ``step``) goes among ``kept`` ``[metric, step]`` pairs, best first.

    Returns whether it enters the top ``k``, the new ranking and the steps that leave it. A
    tie with the worst kept value does not enter (the earlier checkpoint stays), and a
    non-finite value never does, nor a step already kept (a resumed, finished run evaluates
    its last step again).
    """
    if not math.isfinite(value) or any(pair[1] == step for pair in kept):
        return False, kept, []
    sign = 1.0 if mode == "min" else -1.0
    ranking = sorted([*kept, [value, step]], key=lambda pair: (sign * pair[0], pair[1]))
    survivors, leaving = ranking[:k], ranking[k:]
    entered = any(pair[1] == step for pair in survivors)
    return entered, survivors, [int(pair[1]) for pair in leaving if pair[1] != step]


def remove(checkpoint_dir: Path, steps: list[int]) -> None:
    """Delete the top-k checkpoints saved at ``steps`` (by name; a missing one is skipped)."""
    for step in steps:
        delete_checkpoint(checkpoint_dir / top_name(step))
