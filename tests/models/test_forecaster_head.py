"""Forecaster's per-step head: horizon step k reads the encoder output at history step
``lookback - horizon + k`` through one layer shared by the steps, and sees its own step's
future covariates."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.models.model_factories import forecaster

from rnnkit.data.batch import WindowBatch
from rnnkit.models import ForecasterConfig

LIKELIHOODS = {"none": {}, "gaussian": {"likelihood": "gaussian"},
               "quantile": {"likelihood": "quantile", "quantiles": [0.1, 0.5, 0.9]}}


@pytest.mark.parametrize("likelihood", sorted(LIKELIHOODS))
@pytest.mark.parametrize("bidirectional", [False, True])
def test_each_step_is_the_shared_layer_at_its_own_encoder_output(likelihood, bidirectional):
    torch.manual_seed(0)
    model = forecaster(head="per_step", horizon=3, bidirectional=bidirectional,
                       **LIKELIHOODS[likelihood]).eval()
    history = torch.randn(4, 7, 2)
    outputs, _ = model.rnn(history)  # (batch, lookback, directions * hidden)
    expected = model.head(outputs[:, 4:7])  # steps 0, 1, 2 read history steps 4, 5, 6
    torch.testing.assert_close(model.raw_outputs(history), expected, rtol=0, atol=0)


def test_the_head_is_shared_so_its_size_does_not_grow_with_the_horizon():
    sizes = {horizon: sum(p.numel() for p in forecaster(head="per_step",
                                                         horizon=horizon).parameters())
             for horizon in (1, 4, 12)}
    assert len(set(sizes.values())) == 1
    final_state = forecaster(horizon=12)
    assert sum(p.numel() for p in final_state.parameters()) > sizes[12]


@given(lookback=st.integers(1, 9), horizon=st.integers(1, 9), position=st.integers(0, 8))
@settings(max_examples=30, deadline=None)
def test_a_step_sees_the_history_up_to_its_own_encoder_step_only(lookback, horizon, position):
    """A change at history step ``p`` moves exactly the steps ``k`` with
    ``lookback - horizon + k >= p``: a step never reads values after its encoder step."""
    if horizon > lookback or position >= lookback:
        return
    torch.manual_seed(lookback * 100 + horizon)
    model = forecaster(head="per_step", horizon=horizon).eval()
    history = torch.randn(2, lookback, 2)
    changed = history.clone()
    changed[:, position] += 1.0
    moved = (model.raw_outputs(changed) - model.raw_outputs(history)).abs().amax(dim=(0, 2))
    reads = torch.arange(horizon) + lookback - horizon  # each step's encoder step
    assert bool((moved[reads < position] == 0).all())
    assert bool((moved[reads >= position] > 0).all())


def test_each_step_sees_its_own_future_covariates_and_statics():
    torch.manual_seed(1)
    model = forecaster(head="per_step", horizon=3, future_size=1, static_size=2).eval()
    with torch.no_grad():
        for parameter in model.covariate_head.parameters():
            parameter.normal_(0.0, 0.5)
    history, static = torch.randn(2, 5, 2), torch.randn(2, 2)
    covariates = torch.randn(2, 8, 1)  # lookback 5 + horizon 3
    base = model.raw_outputs(history, covariates, static)
    changed = covariates.clone()
    changed[:, 6] += 1.0  # the second horizon step's covariate
    moved = (model.raw_outputs(history, changed, static) - base).abs().amax(dim=(0, 2))
    assert moved[1] > 0 and moved[2] == 0  # step 0's encoder output saw it (t + 1 rule) too
    other = static.clone()
    other[:, 1] += 1.0
    assert bool(((model.raw_outputs(history, covariates, other) - base).abs()
                 .amax(dim=(0, 2)) > 0).all())


def test_a_seasonal_naive_residual_starts_at_seasonal_naive_with_a_per_step_head():
    torch.manual_seed(2)
    model = forecaster(head="per_step", horizon=6, season=4, residual="seasonal_naive",
                       likelihood="gaussian")
    history = torch.randn(3, 8, 2)
    mean, _ = model(history)
    expected = history[:, [4, 5, 6, 7, 4, 5]]
    torch.testing.assert_close(mean, expected, rtol=0, atol=0)


def test_a_per_step_model_learns_a_value_a_horizon_back():
    """Each target is the value ``horizon`` steps before it plus a little noise: the per-step
    head's encoder output has just read exactly that value."""
    torch.manual_seed(3)
    model = forecaster(head="per_step", horizon=4, input_size=1, hidden_size=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(250):
        series = torch.randn(64, 12, 1)
        series[:, 8:] = series[:, 4:8] + 0.01 * torch.randn(64, 4, 1)
        batch = WindowBatch(history=series[:, :8], future=series[:, 8:])
        optimizer.zero_grad()
        model.loss(batch).backward()
        optimizer.step()
    series = torch.randn(256, 12, 1)
    series[:, 8:] = series[:, 4:8]
    with torch.no_grad():
        error = (model(series[:, :8])[0] - series[:, 8:]).abs().mean()
    assert error < 0.1  # a model that ignored the history would be ~0.8 off


@pytest.mark.parametrize(("options", "message"), [
    ({"head": "per_step", "strategy": "autoregressive"},
     r"head: expected 'final_state' for strategy='autoregressive', got 'per_step'"),
    ({"head": "last"}, r"head: expected one of 'final_state', 'per_step', got 'last'"),
])
def test_bad_head_settings_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        ForecasterConfig(**options)


def test_a_history_shorter_than_the_horizon_is_refused():
    model = forecaster(head="per_step", horizon=5)
    with pytest.raises(ValueError, match=r"history: expected at least horizon=5 steps for "
                                         r"head='per_step', got 4"):
        model(torch.randn(2, 4, 2))
