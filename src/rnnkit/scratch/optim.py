"""Optimizers that update a dict of NumPy parameters in place, following torch's formulas.

- **Adagrad** (what min-char-rnn uses): each parameter keeps the running sum of its squared
  gradients ``s``; the step is ``lr * g / (sqrt(s) + eps)``, so often-updated parameters slow
  down.
- **Adam**: running means of ``g`` (``m``) and ``g**2`` (``v``) with decays ``beta1``, ``beta2``,
  corrected for their zero start; the step is ``lr * m_hat / (sqrt(v_hat) + eps)``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnnkit.scratch._validate import check_positive_float


def _check_grads(params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
    if set(params) != set(grads):
        raise ValueError(
            f"grads must have the same keys as params; params {sorted(params)}, "
            f"grads {sorted(grads)}"
        )
    for name, param in params.items():
        if np.shape(grads[name]) != param.shape:
            raise ValueError(
                f"grads[{name!r}] must have shape {param.shape}, got {np.shape(grads[name])}"
            )


class Adagrad:
    """``s += g**2; p -= lr * g / (sqrt(s) + eps)`` for every parameter (torch's Adagrad)."""

    def __init__(self, params: Mapping[str, np.ndarray], lr: float = 0.01, eps: float = 1e-10):
        self.params = params
        self.lr = check_positive_float("lr", lr)
        self.eps = check_positive_float("eps", eps)
        self.squared_sums = {name: np.zeros_like(p) for name, p in params.items()}

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """Update every parameter in place from ``grads`` (same keys and shapes)."""
        _check_grads(self.params, grads)
        for name, param in self.params.items():
            grad = grads[name]
            self.squared_sums[name] += grad * grad
            param -= self.lr * grad / (np.sqrt(self.squared_sums[name]) + self.eps)


class Adam:
    """Adam (Kingma and Ba, 2015) with torch's defaults and bias correction."""

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float = 0.001,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.params = params
        self.lr = check_positive_float("lr", lr)
        self.eps = check_positive_float("eps", eps)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas}")
        self.beta1, self.beta2 = betas
        self.steps = 0
        self.mean = {name: np.zeros_like(p) for name, p in params.items()}
        self.mean_square = {name: np.zeros_like(p) for name, p in params.items()}

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """Update every parameter in place from ``grads`` (same keys and shapes)."""
        _check_grads(self.params, grads)
        self.steps += 1
        # The running averages start at zero, so early on they are biased toward zero.
        mean_correction = 1.0 - self.beta1**self.steps
        square_correction = 1.0 - self.beta2**self.steps
        for name, param in self.params.items():
            grad = grads[name]
            self.mean[name] = self.beta1 * self.mean[name] + (1.0 - self.beta1) * grad
            self.mean_square[name] = (
                self.beta2 * self.mean_square[name] + (1.0 - self.beta2) * grad * grad
            )
            denominator = np.sqrt(self.mean_square[name] / square_correction) + self.eps
            param -= self.lr * (self.mean[name] / mean_correction) / denominator
