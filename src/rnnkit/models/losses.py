"""Losses shared by the models; padding is skipped through ``IGNORE_INDEX`` targets."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from rnnkit.data.batch import IGNORE_INDEX


def require_targets(targets: Tensor | None, argument: str = "batch.targets") -> Tensor:
    """Return ``targets``, or raise a clear error when a batch without targets reaches ``loss``."""
    if targets is None:
        raise ValueError(f"{argument}: expected target ids to compute a loss, got None")
    return targets


def token_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy over non-padded tokens.

    ``logits`` ``(batch, seq, classes)``, ``targets`` ``(batch, seq)`` with ``IGNORE_INDEX``
    at padding.
    """
    if logits.shape[:2] != targets.shape:
        raise ValueError(
            f"targets: expected shape {tuple(logits.shape[:2])} to match the inputs, "
            f"got {tuple(targets.shape)}"
        )
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),  # (batch * seq, classes)
        targets.reshape(-1),  # (batch * seq,)
        ignore_index=IGNORE_INDEX,
    )
