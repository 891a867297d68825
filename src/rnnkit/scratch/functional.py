"""Elementwise functions of the cells and their derivatives.

Derivatives are written in terms of the function's *output*, because that is what the forward
pass keeps for backpropagation: for ``y = tanh(a)``, ``dy/da = 1 - y**2``; for
``s = sigmoid(a)``, ``ds/da = s * (1 - s)``; for ``y = relu(a)``, ``dy/da = 1 if y > 0 else 0``.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` without overflow for large negative ``x``."""
    # exp(-|x|) never overflows; the two branches are the same function.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def relu(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)``."""
    return np.maximum(x, 0.0)


def sigmoid_grad_from_output(s: np.ndarray) -> np.ndarray:
    """Derivative of the sigmoid given its output ``s``."""
    return s * (1.0 - s)


def tanh_grad_from_output(y: np.ndarray) -> np.ndarray:
    """Derivative of tanh given its output ``y``."""
    return 1.0 - y * y


def relu_grad_from_output(y: np.ndarray) -> np.ndarray:
    """Derivative of relu given its output ``y`` (0 at the kink, as torch does)."""
    return (y > 0).astype(y.dtype)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis``; subtracting the max keeps ``exp`` from overflowing."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log(softmax(logits))`` computed stably."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
