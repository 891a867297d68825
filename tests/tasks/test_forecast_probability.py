"""Probabilistic forecasts: each likelihood's quantiles and samples against closed forms,
split-conformal calibration by hand, sample CRPS against the Gaussian closed form, the Theta
baseline, and short trainings of every likelihood that report coverage, wQL and CRPS."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from rnnkit import models, tasks
from rnnkit.models import Forecast
from rnnkit.models.forecast_likelihood import QuantilePredictive, predictive
from rnnkit.tasks import forecast_metrics as fm
from rnnkit.tasks import forecast_probability as fp
from rnnkit.tasks.config import config_from_dict
from rnnkit.tasks.errors import ConfigError
from rnnkit.tasks.forecast_baselines import seasonal_indices, theta_one
from rnnkit.tasks.forecast_data import cut_windows
from rnnkit.tasks.forecasting import ForecastingTask

pytestmark = pytest.mark.usefixtures("single_thread")


def test_quantile_predictive_interpolates_between_levels_and_clamps_outside():
    raw = torch.tensor([[[0.0, 10.0, 30.0]]])  # levels 0.1, 0.5, 0.9 → values 0, 10, 30
    quantiles = QuantilePredictive(raw, [0.1, 0.5, 0.9])
    assert float(quantiles.point) == 10.0
    assert float(quantiles.icdf(0.3)) == pytest.approx(5.0)
    assert float(quantiles.icdf(0.7)) == pytest.approx(20.0)
    assert float(quantiles.icdf(0.01)) == 0.0 and float(quantiles.icdf(0.99)) == 30.0
    # pinball loss at the truth 10: levels 0.1 and 0.9 miss by 10 and 20
    expected = (0.1 * 10 + 0 + 0.1 * 20) / 3
    assert float(quantiles.loss(torch.tensor([[[10.0]]]))) == pytest.approx(expected)


def test_sample_crps_matches_the_gaussian_closed_form():
    torch.manual_seed(0)
    actual = np.array([0.3, -1.0, 2.0])
    draws = np.random.default_rng(0).standard_normal((20000, 3))
    closed = fm.gaussian_crps(np.zeros(3), np.ones(3), actual)
    assert fm.sample_crps(draws, actual) == pytest.approx(closed, rel=0.02)


@pytest.mark.parametrize("likelihood", ["gaussian", "student_t", "negative_binomial"])
def test_sampled_quantiles_match_the_distribution(likelihood):
    raw = torch.zeros(1, 1, 2 if likelihood != "student_t" else 3)
    loc, scale = torch.tensor([50.0]), torch.tensor([10.0])
    distribution = predictive(likelihood, raw, loc, scale)
    torch.manual_seed(0)
    draws = distribution.sample(40000)
    if likelihood == "gaussian":  # N(0, softplus(0)) in scaled units
        std = float(torch.nn.functional.softplus(torch.tensor(0.0)))
        assert float(draws.quantile(0.95)) == pytest.approx(1.6449 * std, rel=0.03)
    elif likelihood == "student_t":  # df = 2 + softplus(0) = 2.693: heavier tails than normal
        std = float(torch.nn.functional.softplus(torch.tensor(0.0)))
        assert float(draws.quantile(0.95)) > 1.9 * std
    else:  # counts: mean 50 (the training mean), drawn in scaled units
        counts = draws * scale + loc
        assert float(counts.mean()) == pytest.approx(50.0, rel=0.03)
        assert torch.equal(counts.round(), counts.round().clamp_min(0))


def test_conformal_factor_and_widening_by_hand():
    median = torch.zeros(1, 4, 1)
    forecast = Forecast(median.clone(), lower=median - 1, upper=median + 2, median=median)
    future = np.array([0.5, -2.0, 3.0, 1.0]).reshape(1, 4, 1)
    # scores: 0.5/2, 2/1, 3/2, 1/2 → sorted 0.25 0.5 1.5 2; rank ceil(5 · 0.5) = 3 → 1.5
    assert fp.conformal_factor(forecast, future, 0.5) == pytest.approx(1.5)
    assert fp.conformal_factor(forecast, future, 0.9) == pytest.approx(2.0)  # too few: the max
    fp.widen(forecast, 2.0)
    assert float(forecast.lower[0, 0, 0]) == -2.0 and float(forecast.upper[0, 0, 0]) == 4.0
    assert torch.equal(forecast.mean, median)


def test_quantile_levels_always_hold_the_median_and_the_interval():
    assert fp.quantile_levels("quantile", [0.25, 0.75], 0.8) == [0.1, 0.25, 0.5, 0.75, 0.9]
    assert fp.quantile_levels("gaussian", None, 0.9) is None
    with pytest.raises(ConfigError, match=r"model\.quantiles: set only with"):
        fp.quantile_levels("gaussian", [0.5], 0.9)
    with pytest.raises(ConfigError, match="normalize: global"):
        fp.check_likelihood("negative_binomial", "series", [], "x.csv")
    with pytest.raises(Exception, match=r"x.csv.*counts.*-1"):
        fp.check_likelihood("negative_binomial", "global", [np.array([[1.0], [-1.0]])],
                            "x.csv")


def test_theta_is_ses_with_half_the_trend_and_reseasonalises():
    line = np.arange(10.0)  # SES picks α = 1 (level 9), drift = slope / 2
    np.testing.assert_allclose(theta_one(line, 3, 1), [9.5, 10.0, 10.5])
    t = np.arange(48.0)
    seasonal = 100 * (1 + 0.3 * np.sin(2 * np.pi * t / 12))
    indices, multiplicative = seasonal_indices(seasonal[:36], 12)
    assert multiplicative and indices.mean() == pytest.approx(1.0)
    np.testing.assert_allclose(theta_one(seasonal[:36], 12, 12), seasonal[36:], rtol=0.02)


def test_autoregressive_sample_paths_feed_their_own_draws_back():
    config = models.ForecasterConfig(input_size=1, horizon=5, hidden_size=8,
                                     strategy="autoregressive", likelihood="student_t")
    torch.manual_seed(0)
    model = models.Forecaster(config)
    history = torch.randn(2, 6)
    first = model.predict(history, samples=50, seed=3)
    again = model.predict(history, samples=50, seed=3)
    assert first.samples.shape == (50, 2, 5, 1)
    assert torch.equal(first.samples, again.samples)  # seeded
    assert (first.lower <= first.median).all() and (first.median <= first.upper).all()


def _noisy_series(path, steps=400, seed=0, counts=False):
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    level = 20 + 8 * np.sin(2 * np.pi * t / 12)
    values = rng.poisson(level) if counts else level + 2.0 * rng.standard_t(4, steps)
    path.write_text("time,value\n" + "".join(f"{i},{v:g}\n" for i, v in enumerate(values)))
    return path


@pytest.mark.parametrize("likelihood", ["student_t", "quantile", "negative_binomial"])
def test_every_likelihood_trains_and_covers_held_out_values(tmp_path, likelihood):
    counts = likelihood == "negative_binomial"
    train = _noisy_series(tmp_path / "train.csv", counts=counts)
    test = _noisy_series(tmp_path / "test.csv", 240, seed=1, counts=counts)
    raw = {"task": "forecasting",
           "data": {"train": str(train), "lookback": 24, "horizon": 6, "season": 12,
                    "normalize": "global", "valid_fraction": 0.3, "samples": 300},
           "model": {"cell": "gru", "hidden_size": 16, "likelihood": likelihood},
           "train": {"lr": 0.01, "batch_size": 32, "max_steps": 300, "eval_every": 100,
                     "seed": 0, "progress": False, "patience": 100}}
    tasks.train(config_from_dict(raw), tmp_path / "run")
    run = tasks.load_run(tmp_path / "run")
    assert run.task.artifacts["conformal_factor"] > 0
    metrics = run.evaluate(test)
    print(likelihood, {k: round(v, 3) for k, v in metrics.items()})
    assert 0.8 <= metrics["coverage"] <= 0.99
    # windows cut one horizon apart: each value scored once
    distinct = run.task.windows(run.task.read(test)).future.size
    assert metrics["coverage_low"] < metrics["coverage"] < metrics["coverage_high"]
    assert distinct / 3 <= metrics["coverage_values"] <= distinct
    assert metrics["mase"] < metrics["naive_mase"]
    assert 0 < metrics["crps"] < 0.2 and 0 < metrics["wql"] < 0.2
    rows = run.task.predict(run.model, [run.task.read(test)], samples=7)
    assert len(rows) == 6 and len(rows[0]["value_samples"]) == 7
    assert rows[0]["value_lower"] <= rows[0]["value"] <= rows[0]["value_upper"]


def _fitted_task(tmp_path, model: dict, train_section: dict | None = None):
    """A Gaussian task fitted on a 200-step series with a 60-step validation file, its
    validation part and the validation file."""
    train = _noisy_series(tmp_path / "train.csv", 200)
    valid = _noisy_series(tmp_path / "valid.csv", 60, seed=1)
    config = config_from_dict({"task": "forecasting",
                               "data": {"train": str(train), "lookback": 24, "horizon": 6,
                                        "normalize": "global", "season": 12},
                               "model": {"cell": "gru", "hidden_size": 8,
                                         "likelihood": "gaussian", **model},
                               "train": train_section or {}})
    task = ForecastingTask.fit(config, train)
    train_part, valid_part = task.read(train), task.read(valid)
    task.fit_on_split(train_part, valid_part)
    torch.manual_seed(0)
    return task, valid_part, valid


def test_validation_scores_every_window_on_point_forecasts(tmp_path):
    task, valid_part, valid = _fitted_task(tmp_path, {"strategy": "autoregressive"})
    model = task.build_model()
    metrics, rows = task.scores(model, valid_part)  # the validation split, as in training
    assert rows[0]["windows"] == 60 - 6 + 1  # stride 1, the first taking train's tail as history
    # No paths drawn, no factor fitted: the point forecast is the one the full forecast has.
    assert "coverage" not in metrics and "conformal_factor" not in task.artifacts
    windows = cut_windows([valid_part], task.roles, 24, 6)
    full = task.forecast(model, windows, calibrated=False)
    expected = task._scored([valid_part], windows, full)[0]
    assert metrics["loss"] == pytest.approx(expected["loss"])
    assert metrics["mase"] == pytest.approx(expected["mase"])
    elsewhere = task.read(valid)  # any other file: stride horizon, with intervals
    with pytest.warns(UserWarning, match="no conformal factor"):  # none fitted yet
        scored, rows = task.scores(model, elsewhere)
    assert rows[0]["windows"] == 60 // 6 and "coverage" in scored


def test_monitoring_an_interval_score_keeps_intervals_in_validation(tmp_path):
    task, valid_part, _ = _fitted_task(tmp_path, {}, {"monitor": "crps"})
    metrics, _ = task.scores(task.build_model(), valid_part)
    assert metrics["coverage"] >= 0.9  # calibrated on its own scores
    assert "crps" in metrics


def test_conformal_factor_is_fitted_once_after_training_on_the_kept_checkpoint(tmp_path):
    train = _noisy_series(tmp_path / "train.csv", 300)
    raw = {"task": "forecasting",
           "data": {"train": str(train), "lookback": 24, "horizon": 6, "season": 12,
                    "normalize": "global", "valid_fraction": 0.3, "samples": 200},
           "model": {"cell": "gru", "hidden_size": 8, "likelihood": "student_t",
                     "strategy": "autoregressive"},
           "train": {"lr": 0.01, "batch_size": 32, "max_steps": 60, "eval_every": 20,
                     "seed": 0, "progress": False}}
    outcome = tasks.train(config_from_dict(raw), tmp_path / "run")
    assert "valid_coverage" not in outcome.last_metrics  # per-evaluation: point forecasts only
    run = tasks.load_run(tmp_path / "run")
    factor = run.task.artifacts["conformal_factor"]
    # Refit by hand on the loaded best model, with data.samples paths: the same factor.
    run.task.fit_on_split(*run.task.hold_out(run.task.read(train)))
    valid = run.task._calibration_part
    assert run.task.calibrate(run.model, [valid]) == pytest.approx(factor)
    assert outcome.valid_metrics["valid_coverage"] >= 0.9  # on its own calibration windows
    test = _noisy_series(tmp_path / "test.csv", 60, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        calibrated = run.evaluate(test)
    # `last` (kept to resume training) carries no factor: using it says so, once, and its
    # intervals are the model's own rather than silently passing for calibrated ones.
    last = tasks.load_run(tmp_path / "run", checkpoint="last")
    assert "conformal_factor" not in last.task.artifacts
    with pytest.warns(UserWarning, match="no conformal factor") as caught:
        last.evaluate(test)
        last.evaluate(test)
    assert len([w for w in caught if "conformal factor" in str(w.message)]) == 1
    assert calibrated["coverage"] > 0
