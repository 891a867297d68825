"""Finite-difference gradients: how to check a hand-written backward pass.

The central difference ``(f(x + eps) - f(x - eps)) / (2 eps)`` has error ``O(eps**2)``; in float64
with ``eps ~ 1e-6`` it agrees with a correct analytic gradient to about 1e-8 relative. A bug in
BPTT almost always shows up as a relative error near 1, not 1e-3.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(
    loss: Callable[[], float], array: np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    """The gradient of ``loss()`` with respect to ``array``, by central differences.

    ``loss`` takes no arguments and reads ``array``, which is perturbed in place one entry at a
    time and restored afterwards. Returns an array shaped like ``array``.
    """
    if array.dtype != np.float64:
        raise TypeError(f"array must be float64 for finite differences, got {array.dtype}")
    grad = np.empty_like(array)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + eps
        plus = loss()
        array[index] = saved - eps
        minus = loss()
        array[index] = saved
        grad[index] = (plus - minus) / (2.0 * eps)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``max |a - n| / max(|a| + |n|, tiny)``: scale-free agreement of two gradients."""
    scale = max(float(np.max(np.abs(analytic) + np.abs(numeric), initial=0.0)), 1e-12)
    return float(np.max(np.abs(analytic - numeric), initial=0.0)) / scale
