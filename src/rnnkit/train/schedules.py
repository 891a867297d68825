"""Learning-rate schedules: constant, cosine and reduce-on-plateau, each with linear warm-up.

One small class rather than torch's schedulers because warm-up must compose with
reduce-on-plateau (torch's ``LambdaLR`` would overwrite plateau reductions each step), and
because the whole state is two numbers that go into a checkpoint's JSON.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from rnnkit.train.config import TrainConfig


class LRSchedule:
    """Sets each parameter group's lr before every optimizer step.

    With ``base`` the group's configured lr and ``step`` the 0-based index of the step about to
    be taken:

    - warm-up (any schedule): ``lr = base * (step + 1) / warmup_steps`` while
      ``step < warmup_steps``;
    - ``constant``: ``lr = base``;
    - ``cosine``: ``lr = min_lr + (base - min_lr) * (1 + cos(pi * p)) / 2`` with
      ``p = (step - warmup_steps) / (total_steps - warmup_steps)`` clipped to ``[0, 1]``;
    - ``plateau``: ``lr = max(min_lr, base * plateau_factor ** reductions)``, one reduction each
      time the monitored metric has not improved for more than ``plateau_patience``
      evaluations in a row (as ``torch.optim.lr_scheduler.ReduceLROnPlateau`` counts).
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int | None
    ) -> None:
        if config.schedule == "cosine" and not total_steps:
            raise ValueError(f"total_steps: the cosine schedule needs a horizon, got {total_steps}")
        self.optimizer = optimizer
        self.config = config
        self.total_steps = total_steps
        self.base_lrs = [config.lr for _ in optimizer.param_groups]
        self.reductions = 0
        self.evals_without_improvement = 0

    def factor(self, step: int) -> float:
        """Multiplier of the base lr at ``step`` before the ``min_lr`` floor (warm-up x shape)."""
        config = self.config
        warmup = 1.0
        if step < config.warmup_steps:
            warmup = (step + 1) / config.warmup_steps
        if config.schedule == "plateau":
            return warmup * config.plateau_factor**self.reductions
        return warmup

    def lr_at(self, step: int, base_lr: float) -> float:
        """The lr of a group with base ``base_lr`` at ``step``."""
        config = self.config
        factor = self.factor(step)
        if config.schedule == "constant" or step < config.warmup_steps:
            return base_lr * factor
        if config.schedule == "plateau":
            return max(config.min_lr, base_lr * factor)
        span = max(1, self.total_steps - config.warmup_steps)  # type: ignore[operator]
        progress = min(1.0, (step - config.warmup_steps) / span)
        return config.min_lr + (base_lr - config.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))

    def apply(self, step: int) -> float:
        """Set every group's lr for ``step``; returns the first group's lr (for logging)."""
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = self.lr_at(step, base_lr)
        return self.optimizer.param_groups[0]["lr"]

    def observe(self, improved: bool) -> None:
        """Report one evaluation of the monitored metric (only ``plateau`` reacts)."""
        if self.config.schedule != "plateau":
            return
        self.evals_without_improvement = 0 if improved else self.evals_without_improvement + 1
        if self.evals_without_improvement > self.config.plateau_patience:
            self.reductions += 1
            self.evals_without_improvement = 0

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state (the shape itself is rebuilt from the config)."""
        return {
            "reductions": self.reductions,
            "evals_without_improvement": self.evals_without_improvement,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
        self.reductions = int(state["reductions"])
        self.evals_without_improvement = int(state["evals_without_improvement"])
