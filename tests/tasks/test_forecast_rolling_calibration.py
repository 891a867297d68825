"""Rolling conformal calibration in backtests: each origin's factor comes from the last N
forecasts of its series whose horizons ended before it, never from values after it, and it
follows a change of noise level that the validation factor cannot. Adaptive conformal inference
(``calibration_adapt``) moves that factor's level with the misses of ended forecasts, so it
keeps up with bursts of noise that a window's refit lags."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from rnnkit import tasks
from rnnkit.models import Forecast
from rnnkit.tasks import forecast_metrics as fm
from rnnkit.tasks import forecast_probability as fp
from rnnkit.tasks.backtest import BacktestSettings, rolling_factors, run_backtest
from rnnkit.tasks.config import config_from_dict
from rnnkit.tasks.errors import ConfigError

pytestmark = pytest.mark.usefixtures("single_thread")


def test_a_forecast_counts_only_once_its_whole_horizon_has_elapsed():
    horizon, length = 3, 4
    where = [(0, origin) for origin in range(10, 30)] + [(1, origin) for origin in range(10, 30)]
    scores = np.random.default_rng(0).uniform(0.5, 1.5, (len(where), horizon, 1))
    factors = rolling_factors(scores, where, horizon, length, 0.9, fallback=7.0)
    row = where.index((0, 20))
    # A forecast from origin j covers steps j..j+2: origins up to 17 have ended by step 20,
    # and 14..17 are the last four.
    expected = fp.conformal_quantile(scores[[4, 5, 6, 7]], 0.9)
    assert factors[row] == pytest.approx(expected)
    # Anything not yet observed at origin 20 (its own series' later forecasts, and the other
    # series) may change arbitrarily without moving its factor.
    changed = scores.copy()
    later = [i for i, (index, origin) in enumerate(where) if index == 1 or origin + horizon > 20]
    changed[later] = 100.0
    assert rolling_factors(changed, where, horizon, length, 0.9, 7.0)[row] == factors[row]
    changed = scores.copy()
    changed[where.index((0, 18))] = 100.0  # its last step is step 20 itself: unseen
    assert rolling_factors(changed, where, horizon, length, 0.9, 7.0)[row] == factors[row]
    changed[where.index((0, 17))] = 100.0  # its last step is step 19: used
    assert rolling_factors(changed, where, horizon, length, 0.9, 7.0)[row] == 100.0
    # Until `length` forecasts have ended (origin 16: those from 10..13): the fallback.
    assert set(factors[:6]) == {7.0} and 7.0 not in factors[6:20]
    assert set(factors[20:26]) == {7.0}


def test_rolling_factors_recover_coverage_when_the_noise_doubles():
    rng = np.random.default_rng(1)
    windows, horizon = 400, 5
    noise = np.where(np.arange(windows) < windows // 2, 1.0, 2.0)[:, None, None]
    truth = noise * rng.standard_normal((windows, horizon, 1))
    half = 1.6449  # the model's 90% interval for unit noise
    median = torch.zeros(windows, horizon, 1, dtype=torch.float64)
    forecast = Forecast(median.clone())
    forecast.median, forecast.lower, forecast.upper = median, median - half, median + half
    where = [(0, origin) for origin in range(windows)]
    factors = rolling_factors(fp.conformal_scores(forecast, truth), where, horizon, 50, 0.9,
                              fallback=1.0)
    fp.widen(forecast, factors)
    second = slice(windows // 2 + horizon + 50, None)  # once 50 noisier forecasts have ended
    fixed = fm.coverage(-half * np.ones_like(truth[second]), half * np.ones_like(truth[second]),
                        truth[second])
    rolling = fm.coverage(forecast.lower[second].numpy(), forecast.upper[second].numpy(),
                          truth[second])
    assert fixed < 0.7  # ~0.59: the unit-noise interval on doubled noise
    assert 0.85 <= rolling <= 0.95


def _unit_forecast(windows: int, horizon: int) -> Forecast:
    """A zero median with the 90% interval of unit Gaussian noise at every step."""
    half = 1.6449
    median = torch.zeros(windows, horizon, 1, dtype=torch.float64)
    forecast = Forecast(median.clone())
    forecast.median, forecast.lower, forecast.upper = median, median - half, median + half
    return forecast


def _bursty_scores(seed: int, windows: int = 2000, horizon: int = 5):
    """Scores of unit-noise intervals on noise 4x as large for the last 15 of every 60 steps;
    and which windows lie in a burst."""
    rng = np.random.default_rng(seed)
    burst = np.arange(windows) % 60 >= 45
    truth = np.where(burst, 4.0, 1.0)[:, None, None] * rng.standard_normal((windows, horizon, 1))
    return fp.conformal_scores(_unit_forecast(windows, horizon), truth), burst


@pytest.mark.parametrize("seed", [2, 3])
def test_adaptive_calibration_covers_bursts_that_the_rolling_factor_lags(seed):
    horizon, length = 5, 20
    scores, burst = _bursty_scores(seed, horizon=horizon)
    where = [(0, origin) for origin in range(len(scores))]

    def covered(gamma: float) -> np.ndarray:
        factors = rolling_factors(scores, where, horizon, length, 0.9, 1.0, gamma)
        return (scores <= factors[:, None, None]).mean(axis=(1, 2))[200:]

    rolling, adaptive = covered(0.0), covered(0.1)
    in_burst = burst[200:]
    print(f"rolling {rolling.mean():.3f} (bursts {rolling[in_burst].mean():.3f}), adaptive "
          f"{adaptive.mean():.3f} (bursts {adaptive[in_burst].mean():.3f})")
    assert rolling.mean() < 0.85  # ~0.84: each burst is half over before the window sees it
    assert 0.88 <= adaptive.mean() <= 0.92  # ~0.90 long-run, as ACI guarantees
    assert adaptive[in_burst].mean() > rolling[in_burst].mean() + 0.1


def test_adaptive_level_follows_the_aci_recursion_over_ended_forecasts():
    horizon, length, gamma, windows = 3, 6, 0.05, 120
    scores, _ = _bursty_scores(4, windows, horizon)
    where = [(0, origin) for origin in range(windows)]
    factors = rolling_factors(scores, where, horizon, length, 0.9, 1.5, gamma)
    # Step by step as Gibbs & Candès write it: alpha moves once per forecast whose horizon
    # has ended, by gamma times (target - its miss rate under the factor it was given).
    alpha, expected = 0.1, []
    for origin in range(windows):
        ended = origin - horizon  # the forecast whose last step is the one before `origin`
        if ended >= 0:
            err = float(np.mean(scores[ended] > expected[ended]))
            alpha += gamma * (0.1 - err)
        if ended + 1 >= length:
            expected.append(fp.conformal_quantile(scores[ended + 1 - length:ended + 1],
                                                  1.0 - alpha))
        else:
            expected.append(1.5)
    assert factors == pytest.approx(np.asarray(expected))
    assert not np.allclose(factors, rolling_factors(scores, where, horizon, length, 0.9, 1.5))


def _regime_series(path, steps, start=0, change=None):
    """A period-8 sinusoid with noise 0.3, doubled from step ``change`` (of the whole series)."""
    t = np.arange(start, start + steps)
    scale = np.where(change is not None and t >= (change or 0), 0.6, 0.3)
    noise = scale * np.random.default_rng(start).standard_normal(steps)
    values = 10 + 3 * np.sin(2 * np.pi * t / 8) + noise
    path.write_text("time,value\n" + "".join(f"{i},{v:.4f}\n" for i, v in zip(t, values,
                                                                            strict=True)))
    return path


@pytest.fixture(scope="module")
def regime_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("regime")
    train = _regime_series(root / "train.csv", 400)
    raw = {"task": "forecasting",
           "data": {"train": str(train), "lookback": 16, "horizon": 4, "season": 8,
                    "time_column": "time", "normalize": "global", "valid_fraction": 0.25},
           "model": {"cell": "gru", "hidden_size": 16, "likelihood": "gaussian"},
           "train": {"lr": 0.01, "batch_size": 32, "max_steps": 400, "eval_every": 100,
                     "seed": 0, "progress": False}}
    torch.set_num_threads(1)
    tasks.train(config_from_dict(raw), root / "run")
    test = _regime_series(root / "test.csv", 600, start=400, change=700)
    return tasks.load_run(root / "run"), test


def _coverage(result, first: int, end: int) -> float:
    """Coverage of the forecasts made at origins ``first <= origin < end``."""
    rows = [r for r in result.origins if first <= r["origin"] < end]
    return float(np.mean([r["coverage"] for r in rows]))


def test_rolling_calibration_restores_coverage_after_the_noise_doubles(regime_run):
    run, test = regime_run
    fixed = run_backtest(run, test, BacktestSettings(stride=1, calibration_window=0))
    rolling = run_backtest(run, test, BacktestSettings(stride=1, calibration_window=60))
    # The noise doubles at row 300 of the test file; from 60 forecasts later on, rolling
    # calibration sees only the noisier errors.
    before_fixed, before_rolling = _coverage(fixed, 60, 296), _coverage(rolling, 60, 296)
    after_fixed = _coverage(fixed, 300 + 4 + 60, 600)
    after_rolling = _coverage(rolling, 300 + 4 + 60, 600)
    print(f"fixed {before_fixed:.3f} -> {after_fixed:.3f}, rolling {before_rolling:.3f} -> "
          f"{after_rolling:.3f}")
    assert after_fixed < 0.75
    assert 0.85 <= after_rolling <= 0.95
    assert "factor" in rolling.origins[0] and "factor" not in fixed.origins[0]
    assert rolling.aggregate["mase"] == pytest.approx(fixed.aggregate["mase"])  # same medians


@pytest.mark.parametrize("adapt", [None, 0.1])
def test_rolling_calibration_never_looks_ahead(regime_run, tmp_path, adapt):
    run, test = regime_run
    lines = test.read_text().splitlines()
    cut = 250  # rows of the test file kept as they are
    changed = lines[:1 + cut] + [f"{line.split(',')[0]},{float(line.split(',')[1]) * 3:.4f}"
                                 for line in lines[1 + cut:]]
    other = tmp_path / "changed.csv"
    other.write_text("\n".join(changed) + "\n")
    settings = BacktestSettings(stride=1, calibration_window=30, calibration_adapt=adapt)
    first, second = run_backtest(run, test, settings), run_backtest(run, other, settings)

    def intervals(result):
        return {(r["origin"], r["step"]): (r["lower"], r["upper"]) for r in result.forecasts}

    a, b = intervals(first), intervals(second)
    # Every forecast made at an origin up to the cut (its history and the factor's forecasts
    # all end before it) is the same whatever the values after the cut are.
    assert all(a[key] == b[key] for key in a if key[0] <= cut)
    assert any(a[key] != b[key] for key in a if key[0] > cut)


def test_rolling_calibration_needs_intervals_and_one_model(regime_run):
    run, test = regime_run
    with pytest.raises(ConfigError, match="--calibration-window: rolling calibration"):
        run_backtest(run, test, BacktestSettings(retrain=True, calibration_window=10))


def test_the_default_window_is_fourteen_and_steps_aside_where_it_cannot_apply(regime_run,
                                                                             monkeypatch):
    from rnnkit.tasks.backtest import _calibration_window
    from rnnkit.tasks.config import DataConfig

    assert DataConfig().calibration_window == 14  # bench/results/forecast_fresh_rolling.md
    run, test = regime_run
    assert run.task.config.data.calibration_window == 14
    rolled = run_backtest(run, test, BacktestSettings(stride=1))
    assert rolled.settings.calibration_window == 14 and "factor" in rolled.origins[0]
    factors = [r["factor"] for r in rolled.origins]
    assert len(set(factors[:14 + 4 - 1])) == 1 and len(set(factors)) > 1
    # A retrained backtest has a model per origin: the config's window gives way, silently.
    retrained = run_backtest(run, test, BacktestSettings(stride=200, retrain=True,
                                                         train_steps=2))
    assert retrained.settings.calibration_window == 0
    # So does a point forecaster's, which has no interval; asked for on the command line,
    # it is an error.
    monkeypatch.setattr(type(run.task), "likelihood", property(lambda task: "none"))
    assert _calibration_window(run.task, BacktestSettings()) == 0
    with pytest.raises(ConfigError, match="--calibration-window: the run's model gives "
                                          "point forecasts"):
        _calibration_window(run.task, BacktestSettings(calibration_window=5))


@pytest.mark.parametrize("settings, message", [
    (BacktestSettings(calibration_adapt=1.5, calibration_window=10),
     "--calibration-adapt: expected a step size in (0, 1], got 1.5"),
    (BacktestSettings(calibration_adapt=-0.1, calibration_window=10),
     "--calibration-adapt: expected a step size in (0, 1], got -0.1"),
    (BacktestSettings(calibration_adapt=0.1, calibration_window=0),
     "--calibration-adapt: adapts the level of the rolling conformal factor and needs "
     "--calibration-window"),
])
def test_adaptive_calibration_errors_name_the_option(regime_run, settings, message):
    run, test = regime_run
    with pytest.raises(ConfigError) as caught:
        run_backtest(run, test, settings)
    assert message in str(caught.value)


def test_adaptive_calibration_errors_name_the_config_key(regime_run):
    run, test = regime_run
    run.task.config.data.calibration_adapt = 2.0
    try:
        with pytest.raises(ConfigError, match=r"data.calibration_adapt: expected a step size"):
            run_backtest(run, test, BacktestSettings(calibration_window=10))
    finally:
        run.task.config.data.calibration_adapt = None


def test_seeds_fill_the_window_until_the_files_own_forecasts_have_ended():
    horizon, length = 3, 4
    where = [(0, origin) for origin in range(10, 30)]
    rng = np.random.default_rng(5)
    scores = rng.uniform(0.5, 1.5, (len(where), horizon, 1))
    seed_scores = rng.uniform(2.0, 3.0, (6, horizon, 1))
    seed_ends = np.asarray([-6, -5, -4, -3, -2, -1])  # all before the file's first row
    seeded = rolling_factors(scores, where, horizon, length, 0.9, 7.0,
                             seeds={0: (seed_scores, seed_ends)})
    plain = rolling_factors(scores, where, horizon, length, 0.9, 7.0)
    # Origin 10: no forecast of the file has ended, the last four seeds have.
    assert seeded[0] == fp.conformal_quantile(seed_scores[2:], 0.9)
    # Origin 14: the file's forecast from 10 (rows 10-12) has ended, then three seeds.
    expected = fp.conformal_quantile(np.concatenate([seed_scores[3:], scores[:1]]), 0.9)
    assert seeded[4] == pytest.approx(expected)
    # From origin 16 on, four of the file's own forecasts fill the window: as without seeds.
    assert seeded[6:] == pytest.approx(plain[6:]) and set(plain[:6]) == {7.0}
    # Seeds of another series, or none at all, leave every factor as it was.
    assert np.array_equal(rolling_factors(scores, where, horizon, length, 0.9, 7.0,
                                          seeds={1: (seed_scores, seed_ends)}), plain)


def test_a_seed_counts_only_for_origins_after_its_last_row():
    horizon, length = 2, 3
    where = [(0, origin) for origin in range(0, 12)]
    scores = np.ones((len(where), horizon, 1))
    seed_scores = np.full((3, horizon, 1), 5.0)
    factors = rolling_factors(scores, where, horizon, length, 0.9, 1.5,
                              seeds={0: (seed_scores, np.asarray([3, 4, 5]))})
    # Seeds ending at rows 3, 4 and 5 are all seen from origin 6 on; origin 5 sees those
    # ending at rows 3 and 4 among the file's forecasts from 0..3 (last rows 1..4).
    assert list(factors[:3]) == [1.5, 1.5, 1.5]  # origins 0-2: fewer than three ended
    assert factors[6] == 5.0
    changed = rolling_factors(scores, where, horizon, length, 0.9, 1.5,
                              seeds={0: (np.where(np.arange(3)[:, None, None] == 2, 100.0,
                                                  seed_scores), np.asarray([3, 4, 5]))})
    # The seed ending at row 5 is unseen at origin 5 and before: nothing there moves.
    assert np.array_equal(changed[:6], factors[:6]) and changed[6] == 100.0


def test_training_saves_the_validation_scores_with_their_end_times(regime_run):
    run, _ = regime_run
    saved = run.task.artifacts["validation_scores"][""]
    scores = np.asarray(saved["scores"])
    # valid_fraction 0.25 of 400 rows: rows 300-399 (with 16 steps of context), horizon 4:
    # windows ending at rows 303..399.
    assert scores.shape == (97, 4, 1)
    assert saved["end_times"][0] == "303" and saved["end_times"][-1] == "399"
    # The validation factor is the conformal quantile of exactly these scores.
    assert run.task.artifacts["conformal_factor"] == pytest.approx(
        fp.conformal_quantile(scores, run.task.config.data.interval))


def test_seeded_rolling_calibration_starts_from_the_validation_forecasts(regime_run):
    run, test = regime_run
    seeded = run_backtest(run, test, BacktestSettings(stride=1, calibration_window=30,
                                                      calibration_seed=True))
    plain = run_backtest(run, test, BacktestSettings(stride=1, calibration_window=30))
    scores = np.asarray(run.task.artifacts["validation_scores"][""]["scores"])
    first = seeded.origins[0]
    # The test file continues the validation period: its first origin's window is the last
    # 30 validation forecasts, not the validation factor of all of them.
    assert first["factor"] == pytest.approx(fp.conformal_quantile(scores[-30:], 0.9))
    assert plain.origins[0]["factor"] == pytest.approx(run.task.artifacts["conformal_factor"])
    # Once 30 of the file's own forecasts have ended, both are the same.
    late = [r["origin"] >= 30 + 4 for r in seeded.origins]
    assert [r["factor"] for r, keep in zip(seeded.origins, late, strict=True) if keep] == \
        pytest.approx([r["factor"] for r, keep in zip(plain.origins, late, strict=True) if keep])


def test_seeds_ending_after_an_origin_are_not_used(regime_run, tmp_path):
    run, _ = regime_run
    # A file overlapping the validation period (rows 340-599 of the series): a validation
    # forecast ending at row 360 may calibrate origins after 360 only.
    overlap = _regime_series(tmp_path / "overlap.csv", 260, start=340)
    settings = BacktestSettings(stride=1, calibration_window=10, calibration_seed=True)
    saved = run.task.artifacts["validation_scores"]
    original = {"": dict(saved[""])}
    try:
        first = run_backtest(run, overlap, settings)
        ends = saved[""]["end_times"]
        saved[""] = {"end_times": ends, "scores": [
            [[100.0]] * 4 if int(end) >= 370 else score
            for end, score in zip(ends, saved[""]["scores"], strict=True)]}
        second = run_backtest(run, overlap, settings)
    finally:
        saved[""] = original[""]
    a = {r["origin"]: r["factor"] for r in first.origins}
    b = {r["origin"]: r["factor"] for r in second.origins}
    # Origins are rows of the file: row 30 is step 370 of the series.
    assert all(a[o] == b[o] for o in a if o <= 30)
    assert any(a[o] != b[o] for o in a if o > 30)


def test_runs_saved_without_validation_scores_calibrate_as_before(regime_run):
    run, test = regime_run
    settings = BacktestSettings(stride=1, calibration_window=30, calibration_adapt=0.1,
                                calibration_seed=True)
    saved = run.task.artifacts.pop("validation_scores")
    try:
        old = run_backtest(run, test, settings)
    finally:
        run.task.artifacts["validation_scores"] = saved
    unseeded = run_backtest(run, test, replace(settings, calibration_seed=False))
    assert [r["factor"] for r in old.origins] == [r["factor"] for r in unseeded.origins]
    assert old.origins[0]["factor"] == pytest.approx(run.task.artifacts["conformal_factor"])


def test_per_step_factors_follow_errors_that_grow_with_the_lead():
    rng = np.random.default_rng(6)
    windows, horizon, length = 600, 4, 40
    growth = np.arange(1, horizon + 1, dtype=float)[None, :, None]  # lead h: noise h
    truth = growth * rng.standard_normal((windows, horizon, 1))
    scores = fp.conformal_scores(_unit_forecast(windows, horizon), truth)
    where = [(0, origin) for origin in range(windows)]
    one = rolling_factors(scores, where, horizon, length, 0.9, 1.0)
    per = rolling_factors(scores, where, horizon, length, 0.9, 1.0, per_step=True)
    assert per.shape == (windows, horizon) and one.shape == (windows,)
    late = slice(length + horizon, None)
    by_lead_one = (scores[late] <= one[late, None, None]).mean(axis=(0, 2))
    by_lead_per = (scores[late] <= per[late, :, None]).mean(axis=(0, 2))
    print(f"one factor by lead {np.round(by_lead_one, 3)}, per step {np.round(by_lead_per, 3)}")
    # One factor over-covers lead 1 and under-covers lead 4; per lead, each is near 0.9.
    assert by_lead_one[0] > 0.97 and by_lead_one[-1] < 0.8
    assert np.all(np.abs(by_lead_per - 0.9) < 0.05)
    # Step h's factor is the window's quantile of lead h's scores alone.
    row = 100
    ended = scores[row - horizon - length + 1:row - horizon + 1]
    assert per[row] == pytest.approx([fp.conformal_quantile(ended[:, h], 0.9)
                                      for h in range(horizon)])


def test_widen_takes_one_factor_per_window_and_step():
    forecast = _unit_forecast(2, 3)
    factors = np.asarray([[1.0, 2.0, 3.0], [0.5, 1.0, 1.5]])
    fp.widen(forecast, factors)
    assert forecast.upper[..., 0].numpy() == pytest.approx(1.6449 * factors)
    assert forecast.lower[..., 0].numpy() == pytest.approx(-1.6449 * factors)


def test_per_step_backtest_widens_each_lead_by_its_own_factor(regime_run):
    run, test = regime_run
    settings = BacktestSettings(stride=1, calibration_window=30, calibration_per_step=True)
    result = run_backtest(run, test, settings)
    assert result.settings.calibration_per_step is True
    plain = run_backtest(run, test, replace(settings, calibration_per_step=False))
    assert result.aggregate["mase"] == pytest.approx(plain.aggregate["mase"])  # same medians
    assert result.aggregate["coverage"] != plain.aggregate["coverage"]
    # A shorter backtest horizon than the model's: its factors cover the steps it scores.
    short = run_backtest(run, test, replace(settings, horizon=2))
    assert {r["step"] for r in short.forecasts} == {1, 2}
    assert 0.8 <= short.aggregate["coverage"] <= 1.0


@pytest.mark.parametrize("settings, key, message", [
    (BacktestSettings(calibration_per_step=True, calibration_window=0), None,
     "--calibration-per-step: refits the rolling conformal factor per lead time and needs "
     "--calibration-window"),
    (BacktestSettings(calibration_window=0), "calibration_per_step",
     "data.calibration_per_step: refits the rolling conformal factor per lead time"),
    (BacktestSettings(calibration_seed=True, calibration_window=0), None,
     "--calibration-seed: starts the rolling calibration window from validation forecasts"),
])
def test_per_step_and_seed_errors_name_the_argument(regime_run, settings, key, message):
    run, test = regime_run
    if key:
        setattr(run.task.config.data, key, True)
    try:
        with pytest.raises(ConfigError) as caught:
            run_backtest(run, test, settings)
    finally:
        if key:
            setattr(run.task.config.data, key, False)
    assert message in str(caught.value)
