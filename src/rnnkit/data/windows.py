"""Time-series preparation: chronological splits, a train-only scaler, sliding windows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def as_2d(values: np.ndarray | Sequence[float], name: str = "values") -> np.ndarray:
    """``(time,)`` or ``(time, features)`` -> float64 ``(time, features)``."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{name} must be (time,) or (time, features), got shape {array.shape}")
    return array


def chronological_split(
    values: np.ndarray, valid_size: int, test_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut a series in time order: the last ``test_size`` steps test, the ``valid_size`` before
    them valid, the rest train. Forecast windows for valid/test should take their lookback
    from the steps just before (see :func:`sliding_windows` with ``context``)."""
    if valid_size < 0 or test_size < 0 or valid_size + test_size >= len(values):
        raise ValueError(
            f"valid_size + test_size must be in [0, {len(values)}) for a series of "
            f"{len(values)} steps, got {valid_size} + {test_size}"
        )
    end_train = len(values) - valid_size - test_size
    end_valid = len(values) - test_size
    return values[:end_train], values[end_train:end_valid], values[end_valid:]


@dataclass
class StandardScaler:
    """Per-feature ``(x - mean) / std``, fitted on the training part only.

    A constant feature gets ``std = 1`` so it maps to zero instead of dividing by zero.
    """

    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def fit(self, train: np.ndarray) -> StandardScaler:
        """Learn mean and std of ``train`` ``(time, features)``; returns ``self``."""
        train = as_2d(train, "train")
        if len(train) == 0:
            raise ValueError("train must hold at least one time step, got 0")
        self.mean = train.mean(axis=0)
        std = train.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)
        return self

    def _fitted(self) -> tuple[np.ndarray, np.ndarray]:
        if self.mean is None or self.std is None:
            raise RuntimeError("StandardScaler is not fitted: call fit(train) first")
        return self.mean, self.std

    def transform(self, values: np.ndarray, columns: Sequence[int] | None = None) -> np.ndarray:
        """Scale ``(..., features)``; ``columns`` picks the fitted features the input holds."""
        mean, std = self._fitted()
        index = slice(None) if columns is None else list(columns)
        return (np.asarray(values, dtype=np.float64) - mean[index]) / std[index]

    def inverse_transform(
        self, values: np.ndarray, columns: Sequence[int] | None = None
    ) -> np.ndarray:
        """Undo :meth:`transform` on ``(..., features)`` (e.g. forecasts of target columns)."""
        mean, std = self._fitted()
        index = slice(None) if columns is None else list(columns)
        return np.asarray(values, dtype=np.float64) * std[index] + mean[index]

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready state for a checkpoint."""
        mean, std = self._fitted()
        return {"mean": mean.tolist(), "std": std.tolist()}

    @classmethod
    def from_dict(cls, state: dict[str, list[float]]) -> StandardScaler:
        """Rebuild from :meth:`to_dict`."""
        return cls(np.asarray(state["mean"], dtype=np.float64),
                   np.asarray(state["std"], dtype=np.float64))


def prepend_context(values: np.ndarray, context: np.ndarray | None, lookback: int) -> np.ndarray:
    """``values`` as float64 ``(time, features)``, preceded by the last ``lookback`` steps of
    ``context`` when given (at most ``lookback``, so every future starts inside ``values``)."""
    values = as_2d(values)
    if context is None:
        return values
    return np.concatenate([as_2d(context, "context")[-lookback:], values])


def window_starts(steps: int, lookback: int, horizon: int, stride: int = 1) -> np.ndarray:
    """``(windows,)``: where each ``lookback + horizon`` window of a ``steps``-long series
    starts (``0, stride, ...``); a series too short for one window is a ``ValueError``."""
    if lookback < 1 or horizon < 1 or stride < 1:
        raise ValueError(f"lookback, horizon and stride must be >= 1, got {lookback}, "
                         f"{horizon}, {stride}")
    starts = np.arange(0, steps - lookback - horizon + 1, stride)
    if len(starts) == 0:
        raise ValueError(f"a series of {steps} steps is too short for lookback {lookback} "
                         f"+ horizon {horizon}")
    return starts


def sliding_windows(
    values: np.ndarray,
    lookback: int,
    horizon: int,
    stride: int = 1,
    target_columns: Sequence[int] | None = None,
    context: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``(time, features)`` into (history, future) window pairs.

    Returns ``history`` ``(windows, lookback, features)`` and ``future``
    ``(windows, horizon, targets)`` (``target_columns`` default: all features). Window ``i``
    starts at ``i * stride``. ``context`` — e.g. the end of the training part — is prepended
    so the first future steps of a valid/test part can be predicted from history before it;
    only futures inside ``values`` are produced.
    """
    values = prepend_context(values, context, lookback)
    columns = list(range(values.shape[1])) if target_columns is None else list(target_columns)
    starts = window_starts(len(values), lookback, horizon, stride)
    steps = np.arange(lookback + horizon)
    windows = values[starts[:, None] + steps]  # (windows, lookback + horizon, features)
    return windows[:, :lookback], windows[:, lookback:, columns]
