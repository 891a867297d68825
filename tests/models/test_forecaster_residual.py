"""Forecaster's seasonal-naive residual: an untrained model forecasts exactly seasonal naive,
a trained one adds its correction to every likelihood's location, and both strategies train."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.models.model_factories import forecaster

from rnnkit.data.batch import WindowBatch
from rnnkit.models import Forecaster, ForecasterConfig

LIKELIHOODS = ["none", "gaussian", "student_t", "quantile"]


def options(likelihood: str) -> dict:
    return {"likelihood": likelihood,
            "quantiles": [0.1, 0.5, 0.9] if likelihood == "quantile" else None}


def seasonal_naive(history: torch.Tensor, horizon: int, season: int) -> torch.Tensor:
    """The textbook forecast, step by step: value ``k`` repeats ``history[L - m + k % m]``."""
    lookback = history.shape[1]
    return torch.stack([history[:, lookback - season + k % season] for k in range(horizon)], 1)


@pytest.mark.parametrize("strategy", ["direct", "autoregressive"])
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@given(season=st.integers(1, 6), horizon=st.integers(1, 9), extra=st.integers(0, 4))
@settings(max_examples=8, deadline=None)
def test_an_untrained_model_forecasts_exactly_seasonal_naive(strategy, likelihood, season,
                                                             horizon, extra):
    torch.manual_seed(season * 100 + horizon)
    model = forecaster(input_size=2, horizon=horizon, season=season, residual="seasonal_naive",
                       strategy=strategy, **options(likelihood))
    history = torch.randn(3, season + extra, 2)
    mean, _ = model(history)
    torch.testing.assert_close(mean, seasonal_naive(history, horizon, season), rtol=0, atol=0)


def test_original_units_and_chosen_targets():
    torch.manual_seed(0)
    model = forecaster(input_size=3, target_indices=[2, 0], mean=[10.0, -3.0, 100.0],
                       std=[2.0, 0.5, 20.0], horizon=5, season=4, residual="seasonal_naive",
                       likelihood="gaussian")
    raw = torch.randn(2, 8, 3) * 7 + 50
    forecast = model.predict(raw)
    torch.testing.assert_close(forecast.mean, seasonal_naive(raw[..., [2, 0]], 5, 4))
    assert bool((forecast.lower < forecast.mean).all() and (forecast.upper > forecast.mean).all())


@pytest.mark.parametrize("strategy", ["direct", "autoregressive"])
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_the_baseline_moves_the_whole_distribution_of_the_same_network(strategy, likelihood):
    """The same weights with and without the residual differ by the weighted seasonal-naive
    values in every location (the median and each quantile); spreads are unchanged."""
    torch.manual_seed(1)
    common = {"horizon": 3, "season": 3, "strategy": strategy, "input_size": 1,
              **options(likelihood)}
    plain = forecaster(**common)
    shifted = forecaster(**common, residual="seasonal_naive")
    shifted.load_state_dict(plain.state_dict(), strict=False)  # all but baseline_weight
    with torch.no_grad():
        shifted.baseline_weight.fill_(0.75)  # learnt: how much of the baseline each step keeps
    history = torch.randn(4, 6, 1)
    baseline = seasonal_naive(history, 3, 3)
    plain_outputs, shifted_outputs = plain.raw_outputs(history), shifted.raw_outputs(history)
    if strategy == "autoregressive":  # later steps are fed different values: the first step
        plain_outputs, shifted_outputs = plain_outputs[:, :1], shifted_outputs[:, :1]
        baseline = baseline[:, :1]
    baseline = 0.75 * baseline
    a, b = plain.predictive(plain_outputs), shifted.predictive(shifted_outputs)
    torch.testing.assert_close(b.point, a.point + baseline)
    if likelihood == "gaussian":
        torch.testing.assert_close(b.std, a.std)
    if likelihood == "quantile":
        torch.testing.assert_close(b.values, a.values + baseline.unsqueeze(-1))


def test_counts_start_at_the_baseline_where_it_is_well_above_zero():
    model = forecaster(input_size=1, horizon=4, season=2, residual="seasonal_naive",
                       likelihood="negative_binomial", mean=[200.0], std=[20.0])
    raw = torch.tensor([[180.0, 230.0, 205.0, 260.0]])
    forecast = model.predict(raw, samples=200)
    torch.testing.assert_close(forecast.mean, torch.tensor([[[205.0], [260.0], [205.0],
                                                             [260.0]]]), rtol=1e-3, atol=0.05)


def test_teacher_forced_loss_scores_the_steps_that_have_a_value_one_season_before():
    torch.manual_seed(2)
    model = forecaster(input_size=1, horizon=2, season=3, residual="seasonal_naive",
                       strategy="autoregressive", likelihood="gaussian")
    with torch.no_grad():
        model.head.weight.normal_()
        model.head.bias.normal_()
    history, future = torch.randn(2, 4, 1), torch.randn(2, 2, 1)
    window = torch.cat([history, future], 1)  # (2, 6, 1)
    outputs, _ = model.rnn(window[:, :-1])
    raw = model.head(outputs)[:, 2:]  # outputs 2..4 predict steps 3..5
    mean, spread = raw.chunk(2, -1)
    std = torch.nn.functional.softplus(spread) + 1e-4
    expected = torch.nn.functional.gaussian_nll_loss(mean + window[:, :3], window[:, 3:],
                                                     std.square(), full=True)
    torch.testing.assert_close(model.loss(WindowBatch(history, future)), expected)


@pytest.mark.parametrize("strategy", ["direct", "autoregressive"])
def test_learns_a_correction_to_seasonal_naive(strategy):
    """Each season repeats the one before plus a constant step (a trend on a season): seasonal
    naive misses by the step every time, the residual model learns it."""
    torch.manual_seed(0)
    model = forecaster(input_size=1, horizon=4, season=4, residual="seasonal_naive",
                       strategy=strategy, hidden_size=16)
    pattern = torch.tensor([0.0, 1.0, -0.5, 0.3])
    starts = torch.randint(0, 8, (64,)).float()

    def windows(start):
        t = torch.arange(12.0) + start[:, None]
        values = pattern[t.long() % 4] + 0.25 * (t // 4)  # the level rises 0.25 a season
        return values[:, :8, None], values[:, 8:, None]

    history, future = windows(starts)
    naive_error = (seasonal_naive(history, 4, 4) - future).abs().mean()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(150):
        optimizer.zero_grad()
        model.loss(WindowBatch(history, future)).backward()
        optimizer.step()
    with torch.no_grad():
        error = (model(history)[0] - future).abs().mean()
    assert naive_error == pytest.approx(0.25)
    assert error < 0.05


def test_bad_settings_name_the_argument():
    with pytest.raises(ValueError, match="residual"):
        ForecasterConfig(residual="naive")
    with pytest.raises(ValueError, match="season"):
        ForecasterConfig(season=0)
    model = Forecaster(ForecasterConfig(horizon=2, season=5, residual="seasonal_naive"))
    with pytest.raises(ValueError, match=r"history: expected at least season=5 steps .* got 4"):
        model(torch.randn(1, 4, 1))
    assert Forecaster(ForecasterConfig(horizon=2, season=5))(torch.randn(1, 4, 1))[0].shape == (
        1, 2, 1)


def test_weight_decay_leaves_the_baseline_weight_alone():
    from rnnkit.train.config import TrainConfig
    from rnnkit.train.optim import build_optimizer

    model = forecaster(horizon=3, season=2, residual="seasonal_naive")
    groups = build_optimizer(model, TrainConfig(weight_decay=0.1, max_steps=1)).param_groups
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    assert id(model.baseline_weight) not in decayed and id(model.head.weight) in decayed
    assert forecaster(horizon=3, season=2).no_weight_decay() == set()

