"""Forecaster: a lookback window of a (multivariate) series → the next ``horizon`` steps.

Scaling: the data layer fits a per-feature mean/std on the training part only and serves scaled
windows, so ``forward`` and ``loss`` work in scaled units. The fitted statistics are stored in
the config (``mean``/``std``), which makes a checkpoint self-contained: :meth:`Forecaster.predict`
takes raw history, scales it and returns forecasts in the original units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.data.batch import WindowBatch
from rnnkit.models._config import RecurrentOptions, expect_config, require, require_at_least
from rnnkit.models._recurrent import (
    State,
    build_rnn,
    eval_mode,
    final_hidden,
    top_layer_summary,
)

_MIN_STD = 1e-4  # keeps the Gaussian NLL finite when a series is locally flat


@dataclass(kw_only=True)
class ForecasterConfig(RecurrentOptions):
    """Settings of :class:`Forecaster`.

    - ``input_size``: features per time step; ``target_indices``: which of them are forecast
      (``None``: all).
    - ``horizon``: steps to forecast.
    - ``strategy``: ``'direct'`` maps the final state to all ``horizon`` steps at once;
      ``'autoregressive'`` predicts one step and feeds it back (needs every feature to be a
      target, since future values of other features are unknown; trained free-running).
    - ``bidirectional``: bidirectional encoder (``'direct'`` only).
    - ``gaussian``: predict a mean and a standard deviation per value, trained by Gaussian
      negative log-likelihood, for prediction intervals.
    - ``mean`` / ``std``: per-feature scaling fitted on the training data (``None``: identity).
    - ``future_size``: covariates known over the horizon as well as the history (calendar,
      holidays, a planned price); ``static_size``: per-series constants. Both are fed to the
      encoder at every step and, for ``'direct'``, to an extra head that sees the whole
      horizon's covariates. ``covariate_mean`` / ``covariate_std``: their scaling, future
      features first, then static (``None``: identity).
    """

    input_size: int = 1
    horizon: int = 1
    target_indices: list[int] | None = None
    strategy: Literal["direct", "autoregressive"] = "direct"
    bidirectional: bool = False
    gaussian: bool = False
    mean: list[float] | None = None
    std: list[float] | None = None
    future_size: int = 0
    static_size: int = 0
    covariate_mean: list[float] | None = None
    covariate_std: list[float] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least(self, 1, "input_size", "horizon")
        require_at_least(self, 0, "future_size", "static_size")
        covariates = self.future_size + self.static_size
        for name in ("covariate_mean", "covariate_std"):
            values = getattr(self, name)
            require(values is None or len(values) == covariates, self, name,
                    f"None or a list of future_size + static_size = {covariates} numbers")
        require(self.covariate_std is None or min(self.covariate_std, default=1) > 0, self,
                "covariate_std", "positive numbers")
        indices = self.target_indices
        require(
            indices is None or (len(indices) > 0 and len(set(indices)) == len(indices)
                                and all(0 <= i < self.input_size for i in indices)),
            self, "target_indices", f"None or distinct feature indices in [0, {self.input_size})",
        )  # fmt: skip
        for name in ("mean", "std"):
            values = getattr(self, name)
            require(values is None or len(values) == self.input_size, self, name,
                    f"None or a list of input_size={self.input_size} numbers")  # fmt: skip
        require(self.std is None or min(self.std) > 0, self, "std", "positive numbers")
        require((self.mean is None) == (self.std is None), self, "std", "set together with mean")
        if self.strategy == "autoregressive":
            require(self.target_size == self.input_size, self, "target_indices",
                    "None (every feature a target) for strategy='autoregressive'")  # fmt: skip
            require(not self.bidirectional, self, "bidirectional",
                    "False for strategy='autoregressive'")  # fmt: skip

    @property
    def targets(self) -> list[int]:
        """Indices of the forecast features."""
        return list(range(self.input_size)) if self.target_indices is None else self.target_indices

    @property
    def target_size(self) -> int:
        """Number of forecast values per step."""
        return len(self.targets)


@dataclass
class Forecast:
    """Forecasts in original units, each ``(batch, horizon, targets)``. ``std``, ``lower``,
    ``upper`` and ``quantiles`` (``{q: values}``) are set for Gaussian models only."""

    mean: Tensor
    std: Tensor | None = None
    lower: Tensor | None = None
    upper: Tensor | None = None
    quantiles: dict[float, Tensor] | None = None


class Forecaster(nn.Module):
    """``forward(history, covariates=None, static=None)`` → ``(mean, std)`` each ``(batch,
    horizon, targets)`` in scaled units; ``std`` is ``None`` unless ``gaussian``.

    Inputs, all scaled: ``history`` ``(batch, lookback, input_size)``; ``covariates`` ``(batch,
    lookback + horizon, future_size)``, the future covariates over the history *and* the
    horizon; ``static`` ``(batch, static_size)``. Encoder step ``t`` sees the values at ``t``
    and the future covariates at ``t + 1``, so the state that forecasts a step has already
    seen that step's covariates (a holiday, a price); autoregressive steps do the same.
    """

    model_type = "forecaster"

    def __init__(self, config: ForecasterConfig) -> None:
        super().__init__()
        self.config = expect_config(config, ForecasterConfig)
        covariates = config.future_size + config.static_size
        self.rnn = build_rnn(config, config.input_size + covariates,
                             bidirectional=config.bidirectional)
        self.dropout = nn.Dropout(config.dropout)
        self.directions = 2 if config.bidirectional else 1
        values_per_step = config.target_size * (2 if config.gaussian else 1)
        steps = config.horizon if config.strategy == "direct" else 1
        summary_size = self.directions * config.hidden_size
        self.head = nn.Linear(summary_size, steps * values_per_step)
        self.covariate_head: nn.Module | None = None
        if covariates and config.strategy == "direct":
            # Sees every horizon step's covariates at once, and mixes them with the state
            # nonlinearly (a holiday's effect may depend on the level).
            width = summary_size + config.horizon * config.future_size + config.static_size
            self.covariate_head = nn.Sequential(
                nn.Linear(width, config.hidden_size), nn.Tanh(),
                nn.Linear(config.hidden_size, steps * values_per_step))
        # Scaling statistics follow the model across devices but live in the config, not weights.
        mean = torch.tensor(config.mean or [0.0] * config.input_size)
        std = torch.tensor(config.std or [1.0] * config.input_size)
        self.register_buffer("feature_mean", mean, persistent=False)
        self.register_buffer("feature_std", std, persistent=False)
        self.register_buffer("covariate_mean", torch.tensor(
            config.covariate_mean or [0.0] * covariates), persistent=False)
        self.register_buffer("covariate_std", torch.tensor(
            config.covariate_std or [1.0] * covariates), persistent=False)

    def _split(self, raw: Tensor) -> tuple[Tensor, Tensor | None]:
        """Split ``raw`` ``(batch, steps, values)`` into mean, std ``(batch, steps, targets)``."""
        if not self.config.gaussian:
            return raw, None
        mean, spread = raw.chunk(2, dim=-1)
        return mean, F.softplus(spread) + _MIN_STD

    def _check(self, history: Tensor, covariates: Tensor | None, static: Tensor | None) -> None:
        config = self.config
        if history.dim() != 3 or history.shape[-1] != config.input_size:
            raise ValueError(f"history: expected shape (batch, lookback, {config.input_size}), "
                             f"got {tuple(history.shape)}")
        batch, lookback = history.shape[:2]
        expected = {"covariates": ((batch, lookback + config.horizon, config.future_size),
                                   covariates, config.future_size),
                    "static": ((batch, config.static_size), static, config.static_size)}
        for name, (shape, value, size) in expected.items():
            if size == 0 and value is None:
                continue
            if size == 0 or value is None or tuple(value.shape) != shape:
                given = None if value is None else tuple(value.shape)
                raise ValueError(f"{name}: expected shape {shape if size else None} for a model "
                                 f"with {name}={size}, got {given}")

    def _encoder_inputs(self, history: Tensor, covariates: Tensor | None,
                        static: Tensor | None) -> Tensor:
        """``(batch, lookback, input_size + future_size + static_size)``: values at ``t``,
        future covariates at ``t + 1``, statics repeated."""
        lookback = history.shape[1]
        parts = [history]
        if covariates is not None:
            parts.append(covariates[:, 1:lookback + 1])
        if static is not None:
            parts.append(static.unsqueeze(1).expand(-1, lookback, -1))
        return torch.cat(parts, dim=-1)

    def forward(self, history: Tensor, covariates: Tensor | None = None,
                static: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        self._check(history, covariates, static)
        outputs, state = self.rnn(self._encoder_inputs(history, covariates, static))
        if self.config.strategy == "autoregressive":
            return self._autoregress(outputs[:, -1], state, history.shape[1], covariates, static)
        summary = top_layer_summary(final_hidden(state), self.directions)
        raw = self.head(self.dropout(summary))  # (batch, horizon * values)
        if self.covariate_head is not None:
            parts = [summary]
            if covariates is not None:
                parts.append(covariates[:, history.shape[1]:].flatten(1))
            if static is not None:
                parts.append(static)
            raw = raw + self.covariate_head(torch.cat(parts, dim=-1))
        return self._split(raw.reshape(history.shape[0], self.config.horizon, -1))

    def _autoregress(self, output: Tensor, state: State, lookback: int,
                     covariates: Tensor | None, static: Tensor | None
                     ) -> tuple[Tensor, Tensor | None]:
        """Predict a step from ``output`` ``(batch, hidden)``, feed its mean back (with the
        next step's covariates), repeat."""
        means, stds = [], []
        for step in range(self.config.horizon):
            if step > 0:
                parts = [means[-1]]
                if covariates is not None:
                    parts.append(covariates[:, lookback + step])
                if static is not None:
                    parts.append(static)
                output, state = self.rnn.step(torch.cat(parts, dim=-1), state)
            mean, std = self._split(self.head(self.dropout(output)).unsqueeze(1))  # (b, 1, t)
            means.append(mean.squeeze(1))
            stds.append(None if std is None else std.squeeze(1))
        stacked_std = None if stds[0] is None else torch.stack(stds, dim=1)
        return torch.stack(means, dim=1), stacked_std

    def loss(self, batch: WindowBatch) -> Tensor:
        """Mean squared error, or Gaussian negative log-likelihood when ``gaussian``."""
        mean, std = self(batch.history, batch.covariates, batch.static)
        if batch.future.shape != mean.shape:
            raise ValueError(
                f"batch.future: expected shape {tuple(mean.shape)}, got {tuple(batch.future.shape)}"
            )
        if std is None:
            return F.mse_loss(mean, batch.future)
        return F.gaussian_nll_loss(mean, batch.future, std.square(), full=True)

    def scale(self, values: Tensor) -> Tensor:
        """Raw features ``(..., input_size)`` → scaled."""
        return (values - self.feature_mean) / self.feature_std

    def unscale_targets(self, values: Tensor) -> Tensor:
        """Scaled targets ``(..., targets)`` → original units."""
        targets = self.config.targets
        return values * self.feature_std[targets] + self.feature_mean[targets]

    def _raw_covariates(self, covariates: Tensor | None, static: Tensor | None,
                        batch: int) -> tuple[Tensor | None, Tensor | None]:
        """Raw ``covariates`` ``(batch, lookback + horizon, future_size)`` (or without the batch
        dimension) and ``static`` ``(batch, static_size)`` / ``(static_size,)`` → scaled."""
        future = self.config.future_size
        options = {"dtype": self.feature_mean.dtype, "device": self.feature_mean.device}
        if covariates is not None:
            covariates = torch.as_tensor(covariates, **options)
            if covariates.dim() == 2:
                covariates = covariates.unsqueeze(0).expand(batch, -1, -1)
            covariates = (covariates - self.covariate_mean[:future]) / self.covariate_std[:future]
        if static is not None:
            static = torch.as_tensor(static, **options)
            if static.dim() == 1:
                static = static.unsqueeze(0).expand(batch, -1)
            static = (static - self.covariate_mean[future:]) / self.covariate_std[future:]
        return covariates, static

    def predict(
        self, history: Tensor, interval: float = 0.9, quantiles: list[float] | None = None,
        covariates: Tensor | None = None, static: Tensor | None = None,
    ) -> Forecast:
        """Forecast from raw ``history`` ``(batch, lookback, input_size)``, ``(lookback,
        input_size)`` or, univariate, ``(batch, lookback)`` / ``(lookback,)``; results keep a
        batch dimension. Models with covariates also take raw ``covariates`` ``(batch,
        lookback + horizon, future_size)`` and ``static`` ``(batch, static_size)``.

        Gaussian models also give the central ``interval`` (e.g. 0.9 → 5% and 95% quantiles)
        and any requested ``quantiles``, all in original units.
        """
        history = torch.as_tensor(
            history, dtype=self.feature_mean.dtype, device=self.feature_mean.device
        )
        if self.config.input_size == 1 and history.shape[-1] != 1:
            history = history.unsqueeze(-1)  # univariate (..., lookback) → (..., lookback, 1)
        if history.dim() == 2:
            history = history.unsqueeze(0)  # (1, lookback, input_size)
        if not 0.0 < interval < 1.0:
            raise ValueError(f"interval: expected a probability in (0, 1), got {interval!r}")
        covariates, static = self._raw_covariates(covariates, static, history.shape[0])
        with eval_mode(self):
            mean, std = self(self.scale(history), covariates, static)
        forecast = Forecast(self.unscale_targets(mean))
        if std is None:
            return forecast
        forecast.std = std * self.feature_std[self.config.targets]
        normal = torch.distributions.Normal(forecast.mean, forecast.std)
        tail = (1.0 - interval) / 2.0
        forecast.lower = normal.icdf(torch.tensor(tail))
        forecast.upper = normal.icdf(torch.tensor(1.0 - tail))
        if quantiles is not None:
            if not all(0.0 < q < 1.0 for q in quantiles):
                raise ValueError(f"quantiles: expected probabilities in (0, 1), got {quantiles!r}")
            forecast.quantiles = {q: normal.icdf(torch.tensor(q)) for q in quantiles}
        return forecast
