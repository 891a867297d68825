"""Argument checks shared by the scratch modules: clear errors instead of NumPy broadcasting."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is an int >= 1, else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def check_positive_float(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number > 0, else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return float(value)


def check_array(name: str, value: object, shape: Sequence[int | None]) -> np.ndarray:
    """Return ``value`` as a float ndarray of the given shape (``None`` matches any size).

    Raises ``TypeError`` if it is not an ndarray and ``ValueError`` if the shape differs.
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(value).__name__}")
    if not np.issubdtype(value.dtype, np.floating):
        raise TypeError(f"{name} must have a floating dtype, got {value.dtype}")
    matches = value.ndim == len(shape) and all(
        want is None or got == want for got, want in zip(value.shape, shape, strict=True)
    )
    if not matches:
        legend = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {legend}, got {tuple(value.shape)}")
    return value
