"""Softmax cross-entropy: the loss of a classifier head, and its gradient.

For logits ``a`` and target class ``y``, ``p = softmax(a)`` and ``loss = -log p_y``. Its gradient
is remarkably simple: ``dloss/da = p - onehot(y)``. Averaged over ``N`` rows, both are divided
by ``N`` (what ``torch.nn.functional.cross_entropy`` does by default).
"""

from __future__ import annotations

import numpy as np

from rnnkit.scratch._validate import check_array
from rnnkit.scratch.functional import log_softmax


def softmax_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of ``logits`` ``(N, C)`` against class ids ``targets`` ``(N,)``.

    Returns ``(loss, grad_logits)`` with ``grad_logits`` ``(N, C)``.
    """
    logits = check_array("logits", logits, (None, None))
    count, classes = logits.shape
    targets = np.asarray(targets)
    if targets.shape != (count,) or not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(
            f"targets must be integer class ids of shape ({count},), "
            f"got dtype {targets.dtype} shape {targets.shape}"
        )
    if count == 0:
        raise ValueError("logits must have at least one row, got N = 0")
    if targets.min() < 0 or targets.max() >= classes:
        raise ValueError(
            f"targets must be class ids in [0, {classes}), "
            f"got values from {targets.min()} to {targets.max()}"
        )
    log_probs = log_softmax(logits)
    rows = np.arange(count)
    loss = -log_probs[rows, targets].mean()
    grad_logits = np.exp(log_probs)
    grad_logits[rows, targets] -= 1.0
    return float(loss), grad_logits / count
