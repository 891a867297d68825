"""`data.calibration_window` when forecasting: `predict` widens a forecast by the factor of the
series' last N ended forecasts, the very factor a stride-1 backtest with the same settings
gives an origin at that step (per lead time and adaptive included), falls back on the
validation factor while fewer exist, and follows a rise in the noise that the fixed factor
misses."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit import tasks
from rnnkit.tasks import forecast_probability as fp
from rnnkit.tasks.backtest import BacktestSettings, run_backtest
from rnnkit.tasks.config import config_from_dict
from rnnkit.tasks.forecast_recalibration import evaluation_factors, latest_factor

pytestmark = pytest.mark.usefixtures("single_thread")
LOOKBACK, HORIZON, WINDOW = 16, 4, 6
# Factors from forecasts made in calls of different sizes agree up to float32 rounding of the
# network's products, which the BLAS may round differently for a different number of rows
# (MKL does on AMD: 5e-6 of a factor seen).
ACROSS_CALLS = 1e-4


def _write(path, steps, seed, loud_from=None, first_time=0):
    """A noisy sine, its time labels from ``first_time`` on; from ``loud_from`` on, its noise
    is four times as large."""
    t = np.arange(steps)
    noise = 0.1 * np.random.default_rng(seed).standard_normal(steps)
    if loud_from is not None:
        noise[loud_from:] *= 4
    values = 10 + 3 * np.sin(2 * np.pi * t / 8) + noise
    path.write_text("time,value\n" + "".join(f"{first_time + i},{v:.5f}\n"
                                              for i, v in enumerate(values)))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("recalibration")
    raw = {"task": "forecasting",
           "data": {"train": str(_write(root / "train.csv", 160, 0)), "lookback": LOOKBACK,
                    "horizon": HORIZON, "season": 8, "time_column": "time",
                    "calibration_window": WINDOW},
           "model": {"cell": "gru", "hidden_size": 12, "likelihood": "gaussian"},
           "train": {"lr": 0.01, "batch_size": 32, "max_steps": 150, "eval_every": 150,
                     "seed": 0, "progress": False}}
    tasks.train(config_from_dict(raw), root / "run")
    return tasks.load_run(root / "run"), root


def _history(root, steps, name="history.csv"):
    """A later stretch of the series (time labels after the training file's), louder from
    its 50th step on."""
    return _write(root / name, steps, 1, loud_from=50, first_time=1000)


@pytest.mark.parametrize("settings", [{}, {"calibration_per_step": True},
                                      {"calibration_adapt": 0.2}])
def test_the_factor_is_the_backtests_at_the_same_origin(run, settings):
    loaded, root = run
    data = loaded.task.config.data
    for key, value in settings.items():
        setattr(data, key, value)
    try:
        full = _history(root, 80, "full.csv")  # the backtest's last origin is step 76
        backtest = run_backtest(loaded, full, BacktestSettings(stride=1))
        head = _write(root / "head.csv", 76, 1, loud_from=50, first_time=1000)  # its 76 first
        assert np.allclose(np.loadtxt(head, delimiter=",", skiprows=1),
                           np.loadtxt(full, delimiter=",", skiprows=1)[:76])
        factor = latest_factor(loaded.task, loaded.model, loaded.task.read(head))
    finally:
        for key in settings:
            setattr(data, key, type(data)().__getattribute__(key))
    last = backtest.origins[-1]
    assert last["origin"] == 76
    expected = last["factor"]  # per lead time: the backtest records their mean
    assert factor.shape == ((1, HORIZON) if settings.get("calibration_per_step") else (1,))
    assert float(np.mean(factor)) == pytest.approx(expected, rel=ACROSS_CALLS)


def test_the_factor_is_the_quantile_of_the_last_window_scores(run):
    loaded, root = run
    task, series = loaded.task, loaded.task.read(_history(root, 76))
    windows = task.windows(series)  # cut one horizon apart: recut stride 1 by hand below
    starts = np.arange(76 - LOOKBACK - HORIZON + 1)[-WINDOW:]
    values = series.values
    history = np.stack([values[s:s + LOOKBACK] for s in starts])
    future = np.stack([values[s + LOOKBACK:s + LOOKBACK + HORIZON] for s in starts])
    windows.history, windows.future = history, future
    windows.series = np.zeros(WINDOW, dtype=int)
    scores = fp.conformal_scores(task.forecast(loaded.model, windows, calibrated=False), future)
    expected = fp.conformal_quantile(scores, task.config.data.interval)
    assert latest_factor(task, loaded.model, series)[0] == pytest.approx(expected, rel=1e-12)


def test_predict_intervals_follow_louder_noise(run):
    loaded, root = run
    task, path = loaded.task, _history(root, 76)
    series = task.read(path)
    factor = latest_factor(task, loaded.model, series)[0]
    validation = task.artifacts["conformal_factor"]
    assert factor > 2 * validation  # the last windows' noise is four times the training's
    rolled = task.predict(loaded.model, [series])
    task.config.data.calibration_window = None
    try:
        fixed = task.predict(loaded.model, [series])
    finally:
        task.config.data.calibration_window = WINDOW
    for a, b in zip(rolled, fixed, strict=True):
        assert a["value"] == pytest.approx(b["value"])
        ratio = (a["value_upper"] - a["value"]) / (b["value_upper"] - b["value"])
        assert ratio == pytest.approx(factor / validation, rel=1e-4)


def test_a_short_history_keeps_the_validation_factor(run):
    loaded, root = run
    # 8 steps after the training file, read with its last 16 as context: 5 forecasts of 4
    # steps have ended, fewer than the window's 6
    series = loaded.task.read(_write(root / "short.csv", 8, 1, first_time=1000))
    assert len(series.context) == LOOKBACK
    factor = latest_factor(loaded.task, loaded.model, series)
    assert factor[0] == loaded.task.artifacts["conformal_factor"]
    tiny = loaded.task.read(_write(root / "tiny.csv", 1, 1, first_time=1000))
    assert latest_factor(loaded.task, loaded.model, tiny)[0] == factor[0]


def test_forecasts_of_training_values_are_left_out(run):
    loaded, root = run
    task = loaded.task
    validation = task.artifacts["conformal_factor"]
    # The training file's first 100 steps all lie in the training split: every forecast of
    # them is in-sample, so none may narrow the intervals.
    head = task.read(_write(root / "train_head.csv", 100, 0))
    assert latest_factor(task, loaded.model, head)[0] == validation
    stored = task.artifacts["contexts"][""]
    last = stored.pop("train_last_time")
    try:  # a run that did not record its training split's end keeps every window
        in_sample = latest_factor(task, loaded.model, head)[0]
    finally:
        stored["train_last_time"] = last
    assert in_sample < validation
    # The whole training file ends with the validation split: its forecasts count.
    whole = task.read(root / "train.csv")
    assert int(last) == 159 - max(HORIZON, int(160 * task.config.data.valid_fraction))
    assert latest_factor(task, loaded.model, whole)[0] != validation



def test_many_series_at_once_get_each_ones_own_factor(run, monkeypatch):
    from rnnkit.tasks import forecast_recalibration

    loaded, root = run
    task = loaded.task
    quiet = task.read(_write(root / "quiet.csv", 76, 2, first_time=1000))
    loud = task.read(_history(root, 76))
    short = task.read(_write(root / "short2.csv", 8, 3, first_time=1000))
    alone = [latest_factor(task, loaded.model, s)[0] for s in (quiet, loud, short)]
    assert alone[1] > alone[0] and alone[2] == task.artifacts["conformal_factor"]
    for chunk in (256, 5):  # one forecast call, or several (a chunk smaller than a series)
        monkeypatch.setattr(forecast_recalibration, "MAX_WINDOWS_PER_CALL", chunk)
        together = forecast_recalibration.latest_factors(task, loaded.model,
                                                         [quiet, loud, short])
        assert [f[0] for f in together] == pytest.approx(alone, rel=ACROSS_CALLS)


@pytest.mark.parametrize("per_step", [False, True])
def test_evaluate_scores_the_intervals_a_stride_1_backtest_gives(run, per_step):
    loaded, root = run
    data = loaded.task.config.data
    history = _history(root, 80, "evaluated.csv")
    data.calibration_per_step = per_step
    try:
        series = [loaded.task.read(history)]
        evaluated = loaded.task.scores(loaded.model, series[0])[0]
        windows = loaded.task.windows(series)
        factors = evaluation_factors(loaded.task, loaded.model, series, windows, WINDOW)
        backtest = run_backtest(loaded, history, BacktestSettings(stride=1))
        data.calibration_window = 0
        fixed = loaded.task.scores(loaded.model, series[0])[0]
    finally:
        data.calibration_window, data.calibration_per_step = WINDOW, False
    # The file continues the training series, whose tail is its context: both start at its
    # first row. The evaluation's windows start every HORIZON steps: 20 of the backtest's 77
    # origins, with the backtest's factor at each.
    by_origin = {record["origin"]: record["factor"] for record in backtest.origins}
    assert sorted(by_origin) == list(range(77))
    origins = range(0, 77, HORIZON)
    assert factors.shape == ((20, HORIZON) if per_step else (20,))
    np.testing.assert_allclose(factors.reshape(20, -1).mean(axis=1),
                               [by_origin[o] for o in origins], rtol=1e-9)
    assert len(set(np.round(factors.reshape(20, -1)[:, 0], 9))) > 2  # refitted as it goes
    chosen = [r for r in backtest.forecasts if r["origin"] in set(origins)]
    inside = [r["lower"] <= r["actual"] <= r["upper"] for r in chosen]
    assert len(inside) == 20 * HORIZON
    assert evaluated["coverage"] == pytest.approx(np.mean(inside))
    assert evaluated["mase"] == pytest.approx(fixed["mase"])  # point forecasts unchanged
    # The noise grows fourfold from step 50: the validation factor alone misses more of it.
    assert evaluated["coverage"] > fixed["coverage"]
