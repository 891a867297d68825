"""A backtest scores all its origins at once; each origin's row equals the one-forecast
metrics (MAE, RMSE, sMAPE, MASE against its series' scale, interval coverage)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.tasks import forecast_metrics as fm
from rnnkit.tasks.backtest import _origin_scores
from rnnkit.train import metrics


@settings(max_examples=40, deadline=None)
@given(origins=st.integers(1, 9), horizon=st.integers(1, 5), targets=st.integers(1, 3),
       seed=st.integers(0, 99), zeros=st.booleans())
def test_each_origin_scores_as_its_forecast_alone(origins, horizon, targets, seed, zeros):
    rng = np.random.default_rng(seed)
    shape = (origins, horizon, targets)
    actual, mean = rng.standard_normal(shape), rng.standard_normal(shape)
    if zeros:  # sMAPE's 0/0 terms count as 0
        actual[0, 0, 0] = mean[0, 0, 0] = 0.0
    spread = rng.uniform(0.1, 2.0, shape)
    values = {"mean": mean, "lower": mean - spread, "upper": mean + spread}
    scales = rng.uniform(0.5, 2.0, (origins, targets))
    naive = rng.standard_normal(shape)
    scores = _origin_scores(values, actual, scales, {"naive_mase": naive, "ets_mase": None})
    assert list(scores) == ["mae", "rmse", "smape", "mase", "naive_mase", "coverage"]
    for row in range(origins):
        one = slice(row, row + 1)
        expected = {
            "mae": metrics.mae(mean[one], actual[one]),
            "rmse": metrics.rmse(mean[one], actual[one]),
            "smape": fm.smape(mean[one], actual[one]),
            "mase": float((np.abs(mean[row] - actual[row]).mean(axis=0) / scales[row]).mean()),
            "naive_mase": float((np.abs(naive[row] - actual[row]).mean(axis=0)
                                 / scales[row]).mean()),
            "coverage": fm.coverage(values["lower"][one], values["upper"][one], actual[one]),
        }
        for name, value in expected.items():
            np.testing.assert_allclose(scores[name][row], value, rtol=1e-12, atol=1e-12,
                                       err_msg=name)
