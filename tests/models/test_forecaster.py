"""Forecaster: scaling lives in the config and is inverted on output; Gaussian intervals."""

from __future__ import annotations

import pytest
import torch
from tests.models.model_factories import forecaster

from rnnkit.data.batch import WindowBatch


def test_predict_scales_raw_history_and_unscales_forecasts():
    torch.manual_seed(0)
    model = forecaster(
        input_size=3, target_indices=[2, 0], mean=[10.0, -3.0, 100.0], std=[2.0, 0.5, 20.0]
    )
    model.eval()
    raw = torch.randn(4, 7, 3) * torch.tensor([2.0, 0.5, 20.0]) + torch.tensor([10.0, -3.0, 100.0])
    scaled = (raw - torch.tensor([10.0, -3.0, 100.0])) / torch.tensor([2.0, 0.5, 20.0])
    mean, _ = model(scaled)
    expected = mean * torch.tensor([20.0, 2.0]) + torch.tensor([100.0, 10.0])
    torch.testing.assert_close(model.predict(raw).mean, expected)


def test_predict_accepts_unbatched_and_univariate_history():
    torch.manual_seed(0)
    model = forecaster(input_size=1, horizon=4, mean=[5.0], std=[2.0])
    series = torch.linspace(0, 10, 12)
    batched = model.predict(series.reshape(1, 12, 1)).mean
    assert batched.shape == (1, 4, 1)
    torch.testing.assert_close(model.predict(series).mean, batched)
    torch.testing.assert_close(model.predict(series.reshape(12, 1)).mean, batched)


def test_gaussian_interval_and_quantiles_in_original_units():
    torch.manual_seed(0)
    model = forecaster(input_size=1, gaussian=True, mean=[50.0], std=[4.0])
    forecast = model.predict(torch.randn(2, 9) * 4 + 50, interval=0.8, quantiles=[0.1, 0.5, 0.9])
    assert bool((forecast.lower < forecast.mean).all() and (forecast.mean < forecast.upper).all())
    torch.testing.assert_close(forecast.quantiles[0.5], forecast.mean)
    torch.testing.assert_close(forecast.quantiles[0.1], forecast.lower)
    torch.testing.assert_close(forecast.quantiles[0.9], forecast.upper)
    z = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(0.9))
    torch.testing.assert_close(forecast.upper - forecast.mean, z * forecast.std)
    history = torch.randn(2, 9) * 4 + 50
    _, scaled_std = model(((history - 50) / 4).unsqueeze(-1))
    torch.testing.assert_close(model.predict(history).std, scaled_std * 4)


def test_point_forecaster_has_no_interval():
    forecast = forecaster(input_size=1).predict(torch.randn(5))
    assert forecast.std is None and forecast.lower is None and forecast.quantiles is None


def test_gaussian_loss_is_negative_log_likelihood():
    torch.manual_seed(0)
    model = forecaster(gaussian=True)
    batch = WindowBatch(torch.randn(3, 5, 2), torch.randn(3, 3, 2))
    mean, std = model(batch.history)
    expected = -torch.distributions.Normal(mean, std).log_prob(batch.future).mean()
    torch.testing.assert_close(model.loss(batch), expected)


def test_autoregressive_feeds_its_own_predictions_back():
    torch.manual_seed(0)
    model = forecaster(input_size=2, horizon=3, strategy="autoregressive").eval()
    history = torch.randn(2, 6, 2)
    mean, _ = model(history)
    extended = history
    for step in range(3):  # one-step forecasts on a history extended by earlier forecasts
        one_step = forecaster(input_size=2, horizon=1, strategy="autoregressive").eval()
        one_step.load_state_dict(model.state_dict())
        next_value, _ = one_step(extended)
        torch.testing.assert_close(mean[:, step], next_value[:, 0])
        extended = torch.cat([extended, next_value], dim=1)


@pytest.mark.parametrize(
    ("history", "message"),
    [(torch.randn(2, 5, 3), r"history: expected shape \(batch, lookback, 2\), got \(2, 5, 3\)")],
)
def test_bad_history_shape(history, message):
    with pytest.raises(ValueError, match=message):
        forecaster()(history)


def test_bad_interval_and_future_shape():
    model = forecaster()
    with pytest.raises(ValueError, match=r"interval: expected a probability in \(0, 1\), got 1.5"):
        model.predict(torch.randn(4, 2), interval=1.5)
    with pytest.raises(ValueError, match=r"batch.future: expected shape \(2, 3, 2\)"):
        model.loss(WindowBatch(torch.randn(2, 4, 2), torch.randn(2, 1, 2)))


def test_teacher_forced_loss_scores_every_one_step_prediction_of_the_window():
    torch.manual_seed(0)
    model = forecaster(input_size=1, horizon=3, strategy="autoregressive", gaussian=True,
                       future_size=1)
    history, future = torch.randn(2, 5, 1), torch.randn(2, 3, 1)
    covariates = torch.randn(2, 8, 1)
    window = torch.cat([history, future], dim=1)
    expected = []
    for end in range(1, 8):  # a one-step model on every prefix, fed the true values
        one_step = forecaster(input_size=1, horizon=1, strategy="autoregressive",
                              gaussian=True, future_size=1)
        one_step.load_state_dict(model.state_dict())
        mean, std = one_step(window[:, :end], covariates[:, :end + 1])
        expected.append(-torch.distributions.Normal(mean, std).log_prob(window[:, end:end + 1]))
    loss = model.loss(WindowBatch(history, future, covariates))
    torch.testing.assert_close(loss, torch.cat(expected, dim=1).mean())
    free = forecaster(input_size=1, horizon=3, strategy="autoregressive", gaussian=True,
                      future_size=1, teacher_forcing=False)
    free.load_state_dict(model.state_dict())
    mean, std = free(history, covariates)  # free-running: the horizon alone, own forecasts
    free_loss = -torch.distributions.Normal(mean, std).log_prob(future).mean()
    torch.testing.assert_close(free.loss(WindowBatch(history, future, covariates)), free_loss)


def test_autoregressive_sample_paths_feed_each_paths_own_draws_back():
    torch.manual_seed(0)
    model = forecaster(input_size=1, horizon=4, strategy="autoregressive", gaussian=True).eval()
    history = torch.randn(3, 6, 1)
    with torch.no_grad():
        torch.manual_seed(1)
        raw, paths = model._outputs(history, None, None, draw=True, paths=5)
        torch.manual_seed(1)  # encoding the history once equals encoding every copy of it
        torch.testing.assert_close(
            model._outputs(history.repeat(5, 1, 1), None, None, draw=True)[1], paths)
    one_step = forecaster(input_size=1, horizon=1, strategy="autoregressive",
                          gaussian=True).eval()
    one_step.load_state_dict(model.state_dict())
    mean = model.predictive(raw).point  # (paths * batch, horizon, 1), path k of row b at k*3+b
    for row in range(15):
        extended = torch.cat([history[row % 3], paths[row, :-1]])  # the path's own draws
        expected, _ = one_step(extended[None])
        torch.testing.assert_close(mean[row, -1], expected[0, 0])
    assert model.predict(history[:1, :, 0], samples=5, seed=1).samples.shape == (5, 1, 4, 1)
