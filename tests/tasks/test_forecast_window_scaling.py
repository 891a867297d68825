"""``data.normalize: window`` scales each window by its own history's mean and spread: a series
moved and stretched (``a·y + b``) trains the same network and is forecast ``a·f + b``."""

from __future__ import annotations

import numpy as np
import pytest
from tests.tasks.forecast_files import write_rows

from rnnkit import tasks
from rnnkit.tasks.config import config_from_dict
from rnnkit.tasks.forecast_data import Series, trend_warning
from rnnkit.tasks.forecasting import WINDOW_STD_FLOOR

pytestmark = pytest.mark.usefixtures("single_thread")


def train_and_forecast(tmp_path, name, values):
    path = write_rows(tmp_path / f"{name}.csv", ["time", "value"],
                      [[t, repr(float(v))] for t, v in enumerate(values)])
    raw = {"task": "forecasting",
           "data": {"train": str(path), "lookback": 12, "horizon": 3, "season": 6,
                    "normalize": "window", "time_column": "time", "calibration": "none"},
           "model": {"cell": "gru", "hidden_size": 8, "likelihood": "gaussian"},
           "train": {"max_steps": 20, "eval_every": 20, "seed": 0, "progress": False}}
    tasks.train(config_from_dict(raw), tmp_path / name)
    run = tasks.load_run(tmp_path / name)
    windows = run.task.windows(run.task.read(path))
    return run, windows, run.task.forecast(run.model, windows, calibrated=False)


def test_a_moved_and_stretched_series_is_forecast_moved_and_stretched(tmp_path):
    rng = np.random.default_rng(0)
    steps = np.arange(200)
    values = 5 + 0.03 * steps + np.sin(2 * np.pi * steps / 6) + 0.2 * rng.standard_normal(200)
    _, _, plain = train_and_forecast(tmp_path, "plain", values)
    _, _, moved = train_and_forecast(tmp_path, "moved", 10.0 * values + 500.0)
    np.testing.assert_allclose(moved.mean.numpy(), 10.0 * plain.mean.numpy() + 500.0,
                               rtol=1e-4)
    np.testing.assert_allclose(moved.std.numpy(), 10.0 * plain.std.numpy(), rtol=1e-3)


def test_a_flat_window_is_divided_by_the_floor_not_by_zero(tmp_path):
    rng = np.random.default_rng(1)
    values = rng.standard_normal(120)
    values[60:80] = 3.0  # twenty equal values: windows inside have no spread
    run, windows, forecast = train_and_forecast(tmp_path, "flat", values)
    flat = np.flatnonzero(np.ptp(windows.history[:, :, 0], axis=1) == 0)
    assert len(flat) > 0 and np.isfinite(forecast.mean.numpy()).all()
    shift, spread = run.task._levels(windows)
    floor = WINDOW_STD_FLOOR * np.std(values[:len(values) - 12])  # the training part's spread
    np.testing.assert_allclose(spread[flat, 0, 0], floor, rtol=0.2)
    np.testing.assert_allclose(shift[flat, 0, 0], 3.0)


def test_window_scaling_never_warns_of_a_trend():
    rising = np.arange(200.0)[:, None]
    head, tail = Series(rising[:180], None, "f.csv"), Series(rising[180:], None, "f.csv")
    assert trend_warning("global", [head], [tail], [0]) is not None
    assert trend_warning("window", [head], [tail], [0]) is None


def test_each_window_is_forecast_from_its_own_level_and_size(tmp_path):
    # One trained model: a window moved and stretched on its own is forecast moved and
    # stretched, which neither global (one scale for all) nor last_value scaling gives.
    rng = np.random.default_rng(2)
    steps = np.arange(160)
    run, windows, plain = train_and_forecast(
        tmp_path, "own", np.sin(2 * np.pi * steps / 6) + 0.1 * rng.standard_normal(160))
    windows.history = 3.0 * windows.history + 7.0
    moved = run.task.forecast(run.model, windows, calibrated=False)
    np.testing.assert_allclose(moved.mean.numpy(), 3.0 * plain.mean.numpy() + 7.0, rtol=1e-4,
                               atol=1e-4)
