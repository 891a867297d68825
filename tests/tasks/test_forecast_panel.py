"""Many series, one model: a .tsf panel of very different scales trained globally with
per-series scaling, scored per series and aggregated as the M-competitions do; the metric
functions against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit import tasks
from rnnkit.tasks import forecast_metrics as fm
from rnnkit.tasks.config import config_from_dict


def test_seasonal_naive_repeats_the_last_season():
    history = np.arange(6.0).reshape(1, 6, 1)
    np.testing.assert_array_equal(fm.seasonal_naive(history, 5, 3)[0, :, 0], [3, 4, 5, 3, 4])
    np.testing.assert_array_equal(fm.seasonal_naive(history, 2, 99)[0, :, 0], [0, 1])


def test_mase_per_series_uses_each_series_scale():
    actual = np.zeros((3, 2, 1))
    predicted = np.array([1.0, 1.0, 4.0])[:, None, None] * np.ones((3, 2, 1))
    series = np.array([0, 0, 1])
    scales = np.array([[2.0], [4.0]])
    np.testing.assert_allclose(fm.mase_per_series(predicted, actual, series, scales), [0.5, 1.0])


def test_weighted_quantile_loss_and_crps_by_hand():
    actual = np.array([10.0, 20.0])
    # q=0.5 at the truth: no loss; q=0.9 two below the truth: 2 · 0.9 · 2 / 30 = 0.12
    quantiles = {0.5: actual.copy(), 0.9: actual - np.array([2.0, 0.0])}
    assert fm.weighted_quantile_loss(quantiles, actual) == pytest.approx((0 + 0.12) / 2)
    # CRPS of N(y, 1) at y is (2 φ(0) - 1/√π) = 0.2337...
    expected = 2 * (2 / np.sqrt(2 * np.pi) - 1 / np.sqrt(np.pi)) / 30
    assert fm.gaussian_crps(actual, np.ones(2), actual) == pytest.approx(expected)
    assert fm.coverage(actual - 1, actual + 1, np.array([10.0, 30.0])) == 0.5


def _write_panel(path, scales, steps, seed=0):
    rng = np.random.default_rng(seed)
    lines = ["@relation sines", "@attribute series_name string", "@frequency monthly",
             "@horizon 6", "@data"]
    for index, scale in enumerate(scales):
        t = np.arange(steps)
        values = scale * (2 + np.sin(2 * np.pi * t / 12 + index)) + \
            0.05 * scale * rng.standard_normal(steps)
        lines.append(f"S{index}:" + ",".join(f"{v:.5g}" for v in values))
    path.write_text("\n".join(lines) + "\n")
    return path


pytestmark = pytest.mark.usefixtures("single_thread")


def test_global_model_over_a_tsf_panel_scores_every_series(tmp_path):
    scales = [1.0, 30.0, 1000.0]
    train = _write_panel(tmp_path / "train.tsf", scales, 120)
    raw = {"task": "forecasting",
           "data": {"train": str(train), "lookback": 12, "horizon": 6, "season": 1,
                    "normalize": "series"},
           "model": {"cell": "gru", "hidden_size": 24, "gaussian": True},
           "train": {"lr": 0.01, "batch_size": 32, "max_steps": 250, "eval_every": 250,
                     "seed": 0, "progress": False}}
    tasks.train(config_from_dict(raw), tmp_path / "run")
    run = tasks.load_run(tmp_path / "run")
    examples = run.task.read(train)
    assert [s.series_id for s in examples] == ["S0", "S1", "S2"]
    metrics, rows = run.task.scores(run.model, examples)
    assert [row["series"] for row in rows] == ["S0", "S1", "S2"]
    assert metrics["mase"] == pytest.approx(np.mean([row["mase"] for row in rows]))
    for row in rows:  # per-series scaling: the big series does not drown the small one
        assert row["mase"] < 0.6 * row["naive_mase"], row
    assert {"wql", "crps", "coverage"} <= metrics.keys()
    forecasts = run.predict([examples])
    assert [r["series"] for r in forecasts[::6]] == ["S0", "S1", "S2"]
    levels = [np.mean([r["value"] for r in forecasts if r["series"] == s]) for s in ("S0", "S2")]
    assert levels[1] / levels[0] == pytest.approx(1000, rel=0.3)
