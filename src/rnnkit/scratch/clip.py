"""Gradient clipping by global norm.

All gradients are treated as one long vector ``g``. If ``||g|| > max_norm``, every gradient is
scaled by ``max_norm / ||g||``: the direction of the update is kept, only its length is capped.
This is the standard remedy for exploding gradients in BPTT (Pascanu et al., 2013).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnnkit.scratch._validate import check_positive_float


def global_norm(grads: Mapping[str, np.ndarray]) -> float:
    """The L2 norm of all arrays in ``grads`` taken together."""
    return float(np.sqrt(sum(float(np.sum(np.square(g))) for g in grads.values())))


def clip_grad_norm(
    grads: Mapping[str, np.ndarray], max_norm: float
) -> tuple[dict[str, np.ndarray], float]:
    """Scale ``grads`` so their global norm is at most ``max_norm``.

    Returns ``(clipped, norm)``: new arrays (the inputs are not modified) and the norm *before*
    clipping, useful for logging. Unlike torch there is no epsilon in the scale factor, so the
    clipped norm equals ``max_norm`` up to rounding. Raises ``ValueError`` if the norm is NaN or
    infinite, since no rescaling can repair such gradients.
    """
    max_norm = check_positive_float("max_norm", max_norm)
    norm = global_norm(grads)
    if not np.isfinite(norm):
        raise ValueError(f"grads have a non-finite global norm ({norm}); cannot clip")
    scale = max_norm / norm if norm > max_norm else 1.0
    return {name: g * scale for name, g in grads.items()}, norm
