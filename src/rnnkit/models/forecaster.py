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
from torch import Tensor, nn

from rnnkit.data.batch import WindowBatch
from rnnkit.models._config import RecurrentOptions, expect_config, require, require_at_least
from rnnkit.models._recurrent import (
    State,
    build_rnn,
    eval_mode,
    final_hidden,
    map_state,
    top_layer_summary,
)
from rnnkit.models.forecast_likelihood import (
    Likelihood,
    Predictive,
    parameter_count,
    predictive,
    shift_location,
)

DEFAULT_SAMPLES = 500  # sample paths behind intervals/quantiles that have no closed form


@dataclass(kw_only=True)
class ForecasterConfig(RecurrentOptions):
    """Settings of :class:`Forecaster`.

    - ``input_size``: features per time step; ``target_indices``: which of them are forecast
      (``None``: all).
    - ``horizon``: steps to forecast.
    - ``strategy``: ``'direct'`` maps the final state to all ``horizon`` steps at once;
      ``'autoregressive'`` predicts one step and feeds it back (needs every feature to be a
      target, since future values of other features are unknown).
    - ``teacher_forcing`` (``'autoregressive'`` only): train one step ahead at every step of
      the ``lookback + horizon`` window, fed the true previous values (as Darts' ``RNNModel``
      and DeepAR train); ``False``: free-running, the loss on the horizon only, each step fed
      the model's own previous point forecast.
    - ``head`` (``'direct'`` only): ``'final_state'`` reads every horizon step from the
      encoder's final state; ``'per_step'`` reads horizon step ``k`` from the encoder's output
      at history step ``lookback - horizon + k``, through one layer shared by all steps, so
      each step is forecast from the state that has just seen the value ``horizon`` steps
      before it (with ``horizon`` a multiple of the season: the same season a cycle ago). Darts'
      ``BlockRNNModel`` reads its outputs this way. Needs ``lookback >= horizon``.
    - ``bidirectional``: bidirectional encoder (``'direct'`` only).
    - ``likelihood``: the output distribution (see :mod:`rnnkit.models.forecast_likelihood`):
      ``'none'`` (point forecasts, MSE), ``'gaussian'``, ``'student_t'``,
      ``'negative_binomial'`` (counts) or ``'quantile'`` (pinball loss at ``quantiles``, at
      least two ascending levels in (0, 1)). ``gaussian=True`` is ``likelihood='gaussian'``
      (kept for older configs); after construction ``gaussian`` says whether it is Gaussian.
    - ``residual``: ``'seasonal_naive'`` makes the network forecast a
      correction to the seasonal-naive forecast (each horizon step repeats the value one
      ``season`` before it, from the history): that forecast, times a learnt weight per step
      and target that starts at 1 (``baseline_weight``), is added to the location of the
      output distribution (every quantile's for ``'quantile'``), and the head starts at zero,
      so an untrained model forecasts exactly seasonal naive (autoregressive steps past the
      first season repeat the values fed back). ``'none'``: the network
      forecasts the values themselves. ``season``: the period it repeats (1: the last value).
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
    teacher_forcing: bool = True
    head: Literal["final_state", "per_step"] = "final_state"
    bidirectional: bool = False
    gaussian: bool = False
    likelihood: Likelihood = "none"
    quantiles: list[float] | None = None
    residual: Literal["none", "seasonal_naive"] = "none"
    season: int = 1
    mean: list[float] | None = None
    std: list[float] | None = None
    future_size: int = 0
    static_size: int = 0
    covariate_mean: list[float] | None = None
    covariate_std: list[float] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least(self, 1, "input_size", "horizon", "season")
        require(self.residual in ("none", "seasonal_naive"), self, "residual",
                "'none' or 'seasonal_naive'")
        if self.gaussian and self.likelihood == "none":
            self.likelihood = "gaussian"
        self.gaussian = self.likelihood == "gaussian"
        levels = self.quantiles
        if self.likelihood == "quantile":
            require(levels is not None and len(levels) >= 2 and all(0 < q < 1 for q in levels)
                    and list(levels) == sorted(set(levels)), self, "quantiles",
                    "at least two distinct ascending levels in (0, 1) for likelihood='quantile'")
        else:
            require(levels is None, self, "quantiles", "None unless likelihood='quantile'")
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
            require(self.head == "final_state", self, "head",
                    "'final_state' for strategy='autoregressive'")  # fmt: skip

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
    """Forecasts in original units, each ``(batch, horizon, targets)``: the point forecast
    ``mean`` (the median for quantile models), and for probabilistic models the ``median``, the
    central interval ``lower``/``upper``, ``quantiles`` (``{q: values}``) and, when drawn,
    ``samples`` ``(samples, batch, horizon, targets)``. ``std`` is set for Gaussian models."""

    mean: Tensor
    std: Tensor | None = None
    lower: Tensor | None = None
    upper: Tensor | None = None
    quantiles: dict[float, Tensor] | None = None
    median: Tensor | None = None
    samples: Tensor | None = None

    def map(self, function) -> Forecast:
        """Apply ``function`` to every value tensor (an affine unscaling, say), in place;
        ``std`` is left to the caller."""
        for name in ("mean", "lower", "upper", "median", "samples"):
            if getattr(self, name) is not None:
                setattr(self, name, function(getattr(self, name)))
        if self.quantiles is not None:
            self.quantiles = {q: function(v) for q, v in self.quantiles.items()}
        return self


class Forecaster(nn.Module):
    """``forward(history, covariates=None, static=None)`` → ``(mean, std)`` each ``(batch,
    horizon, targets)`` in scaled units; ``std`` is ``None`` unless ``gaussian``.

    Inputs, all scaled: ``history`` ``(batch, lookback, input_size)`` (``lookback >= season``
    with a seasonal-naive ``residual``); ``covariates`` ``(batch,
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
        values_per_step = config.target_size * parameter_count(config.likelihood,
                                                               config.quantiles)
        steps = config.horizon if config.strategy == "direct" else 1
        # A per-step head is one layer applied at each of the horizon's encoder outputs.
        head_steps = 1 if config.head == "per_step" else steps
        summary_size = self.directions * config.hidden_size
        self.head = nn.Linear(summary_size, head_steps * values_per_step)
        self.covariate_head: nn.Module | None = None
        if covariates and config.strategy == "direct":
            # Sees the horizon's covariates (all steps at once, or a per-step head's own step)
            # and mixes them with the state nonlinearly (a holiday's effect may depend on the
            # level).
            future_width = config.future_size * (1 if config.head == "per_step" else steps)
            width = summary_size + future_width + config.static_size
            self.covariate_head = nn.Sequential(
                nn.Linear(width, config.hidden_size), nn.Tanh(),
                nn.Linear(config.hidden_size, head_steps * values_per_step))
        if config.residual != "none":
            # How much of the baseline each step keeps: 1 at the start, learnt, so a noisy
            # seasonal-naive forecast (the noise of the last season) can be leaned on less.
            self.baseline_weight = nn.Parameter(torch.ones(steps, config.target_size))
            self._start_at_baseline()
        # Scaling statistics follow the model across devices but live in the config, not weights.
        mean = torch.tensor(config.mean or [0.0] * config.input_size)
        std = torch.tensor(config.std or [1.0] * config.input_size)
        self.register_buffer("feature_mean", mean, persistent=False)
        self.register_buffer("feature_std", std, persistent=False)
        self.register_buffer("covariate_mean", torch.tensor(
            config.covariate_mean or [0.0] * covariates), persistent=False)
        self.register_buffer("covariate_std", torch.tensor(
            config.covariate_std or [1.0] * covariates), persistent=False)

    def no_weight_decay(self) -> set[str]:
        """Parameters the optimizer must not decay: decay would pull ``baseline_weight`` from
        1 (the seasonal-naive forecast) towards 0 (no baseline) whatever the data say."""
        return {"baseline_weight"} if hasattr(self, "baseline_weight") else set()

    def _start_at_baseline(self) -> None:
        """Zero the output layers, so the first forecasts are the residual's baseline exactly
        (with the spreads of a zero raw output); the recurrent layers get gradients once the
        head has moved."""
        last = [self.head] + ([self.covariate_head[-1]] if self.covariate_head else [])
        with torch.no_grad():
            for layer in last:
                layer.weight.zero_()
                layer.bias.zero_()

    def seasonal_naive(self, history: Tensor) -> Tensor:
        """Scaled ``history`` ``(batch, lookback, input_size)`` → the seasonal-naive forecast
        of its targets ``(batch, horizon, targets)``: step ``k`` repeats the value ``season``
        steps before it. Slices from the end, so exported graphs take any lookback."""
        config = self.config
        tail = history[:, -config.season:, config.targets]  # (batch, season, targets)
        return tail[:, [step % config.season for step in range(config.horizon)]]

    def predictive(self, raw: Tensor) -> Predictive:
        """The predictive distribution of raw head outputs ``(batch, steps, values)``."""
        targets = self.config.targets
        return predictive(self.config.likelihood, raw, self.feature_mean[targets],
                          self.feature_std[targets], self.config.quantiles)

    def _check(self, history: Tensor, covariates: Tensor | None, static: Tensor | None) -> None:
        config = self.config
        if history.dim() != 3 or history.shape[-1] != config.input_size:
            raise ValueError(f"history: expected shape (batch, lookback, {config.input_size}), "
                             f"got {tuple(history.shape)}")
        batch, lookback = history.shape[:2]
        if config.residual != "none" and lookback < config.season:
            raise ValueError(f"history: expected at least season={config.season} steps for "
                             f"residual={config.residual!r}, got {lookback}")
        if config.head == "per_step" and lookback < config.horizon:
            raise ValueError(f"history: expected at least horizon={config.horizon} steps for "
                             f"head='per_step', got {lookback}")
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
        distribution = self.predictive(self.raw_outputs(history, covariates, static))
        return distribution.point, distribution.std

    def raw_outputs(self, history: Tensor, covariates: Tensor | None = None,
                    static: Tensor | None = None, draw: bool = False) -> Tensor:
        """Head outputs ``(batch, horizon, values)``; autoregressive models feed back each
        step's point forecast, or with ``draw`` a sample of it (one sample path per row)."""
        return self._outputs(history, covariates, static, draw)[0]

    def _outputs(self, history: Tensor, covariates: Tensor | None, static: Tensor | None,
                 draw: bool, paths: int = 1) -> tuple[Tensor, Tensor | None]:
        """Raw outputs and, for autoregressive models, the values fed back ``(paths * batch,
        horizon, targets)`` (the last step's too): sample paths when ``draw``, path ``k`` of
        row ``b`` at ``k * batch + b``. The history is encoded once for all ``paths``."""
        self._check(history, covariates, static)
        outputs, state = self.rnn(self._encoder_inputs(history, covariates, static))
        if self.config.strategy == "autoregressive":
            def repeat(value):
                return None if value is None else value.repeat(paths, *[1] * (value.dim() - 1))

            if paths > 1:
                state = map_state(state, lambda part: part.repeat(1, paths, 1))
            return self._autoregress(repeat(outputs[:, -1]), state, repeat(history),
                                     repeat(covariates), repeat(static), draw)
        if self.config.head == "per_step":
            raw = self._per_step_outputs(outputs, covariates, static)
        else:
            raw = self._final_state_outputs(state, history.shape[1], covariates, static)
        if self.config.residual == "seasonal_naive":
            raw = shift_location(self.config.likelihood, raw,
                                 self.baseline_weight * self.seasonal_naive(history),
                                 self.config.quantiles)
        return raw, None

    def _final_state_outputs(self, state: State, lookback: int, covariates: Tensor | None,
                             static: Tensor | None) -> Tensor:
        """Raw outputs ``(batch, horizon, values)`` read from the final state at once."""
        summary = top_layer_summary(final_hidden(state), self.directions)
        raw = self.head(self.dropout(summary))  # (batch, horizon * values)
        if self.covariate_head is not None:
            parts = [summary]
            if covariates is not None:
                parts.append(covariates[:, lookback:].flatten(1))  # (batch, horizon * future)
            if static is not None:
                parts.append(static)
            raw = raw + self.covariate_head(torch.cat(parts, dim=-1))
        return raw.reshape(summary.shape[0], self.config.horizon, -1)

    def _per_step_outputs(self, outputs: Tensor, covariates: Tensor | None,
                          static: Tensor | None) -> Tensor:
        """Raw outputs ``(batch, horizon, values)``: step ``k`` from the encoder output
        ``outputs`` ``(batch, lookback, directions * hidden)`` at ``lookback - horizon + k``,
        with its own step's future covariates. Slices from the end, so exported graphs take
        any lookback."""
        horizon = self.config.horizon
        summary = outputs[:, -horizon:]  # (batch, horizon, directions * hidden)
        raw = self.head(self.dropout(summary))  # (batch, horizon, values)
        if self.covariate_head is not None:
            parts = [summary]
            if covariates is not None:
                parts.append(covariates[:, -horizon:])  # (batch, horizon, future)
            if static is not None:
                parts.append(static.unsqueeze(1).expand(-1, horizon, -1))
            raw = raw + self.covariate_head(torch.cat(parts, dim=-1))
        return raw

    def _autoregress(self, output: Tensor, state: State, history: Tensor,
                     covariates: Tensor | None, static: Tensor | None, draw: bool
                     ) -> tuple[Tensor, Tensor]:
        """Predict a step from ``output`` ``(batch, hidden)``, feed its point forecast (or a
        sample) back with the next step's covariates, repeat. With a seasonal-naive residual
        each step adds the value ``season`` steps before it: from ``history``, then from the
        values fed back (so an untrained model repeats the last season, as seasonal naive)."""
        raws, fed = [], []
        lookback, season = history.shape[1], self.config.season
        for step in range(self.config.horizon):
            if step > 0:
                parts = [fed[-1]]
                if covariates is not None:
                    parts.append(covariates[:, lookback + step])
                if static is not None:
                    parts.append(static)
                output, state = self.rnn.step(torch.cat(parts, dim=-1), state)
            raw = self.head(self.dropout(output)).unsqueeze(1)  # (batch, 1, values)
            if self.config.residual == "seasonal_naive":
                # A negative index, so exported graphs take any lookback.
                before = (history[:, step - season, self.config.targets] if step < season
                          else fed[step - season])  # (batch, targets)
                raw = shift_location(self.config.likelihood, raw,
                                     self.baseline_weight * before.unsqueeze(1),
                                     self.config.quantiles)
            distribution = self.predictive(raw)
            fed.append((distribution.sample(1)[0] if draw else distribution.point).squeeze(1))
            raws.append(raw)
        return torch.cat(raws, dim=1), torch.stack(fed, dim=1)

    def loss(self, batch: WindowBatch) -> Tensor:
        """The likelihood's loss: MSE, negative log-likelihood or the mean pinball loss; for a
        teacher-forced autoregressive model, of every one-step-ahead prediction in the window."""
        if self.config.strategy == "autoregressive" and self.config.teacher_forcing:
            return self._teacher_forced_loss(batch)
        distribution = self.predictive(self.raw_outputs(batch.history, batch.covariates,
                                                        batch.static))
        if batch.future.shape != distribution.point.shape:
            raise ValueError(f"batch.future: expected shape {tuple(distribution.point.shape)}, "
                             f"got {tuple(batch.future.shape)}")
        return distribution.loss(batch.future)

    def _teacher_forced_loss(self, batch: WindowBatch) -> Tensor:
        """Step ``t`` of ``history ++ future`` (with the covariates of ``t + 1``) predicts step
        ``t + 1``, for every ``t`` but the last: the whole window trains the one-step model,
        not only the horizon (with ~30 times as many loss terms per window). With a
        seasonal-naive residual, only the steps with a value ``season`` steps before them."""
        history, future = batch.history, batch.future
        horizon = self.config.horizon
        expected = (history.shape[0], horizon, self.config.target_size)
        if tuple(future.shape) != expected:
            raise ValueError(f"batch.future: expected shape {expected}, got "
                             f"{tuple(future.shape)}")
        self._check(history, batch.covariates, batch.static)
        ahead = history.new_empty(history.shape[0], horizon, history.shape[2])
        ahead[..., self.config.targets] = future  # every feature is a target here
        window = torch.cat([history, ahead], dim=1)
        inputs = self._encoder_inputs(window[:, :-1], batch.covariates, batch.static)
        outputs, _ = self.rnn(inputs)
        raw = self.head(self.dropout(outputs))  # (batch, lookback + horizon - 1, values)
        targets = window[:, 1:, self.config.targets]
        if self.config.residual == "seasonal_naive":
            season = self.config.season
            # Output t predicts step t + 1, whose baseline is step t + 1 - season.
            raw, targets = raw[:, season - 1:], targets[:, season - 1:]
            raw = shift_location(self.config.likelihood, raw,
                                 self.baseline_weight * window[:, :raw.shape[1],
                                                               self.config.targets],
                                 self.config.quantiles)
        return self.predictive(raw).loss(targets)

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
        covariates: Tensor | None = None, static: Tensor | None = None, samples: int = 0,
        seed: int = 0, intervals: bool = True,
    ) -> Forecast:
        """Forecast from raw ``history`` ``(batch, lookback, input_size)``, ``(lookback,
        input_size)`` or, univariate, ``(batch, lookback)`` / ``(lookback,)``; results keep a
        batch dimension. Models with covariates also take raw ``covariates`` ``(batch,
        lookback + horizon, future_size)`` and ``static`` ``(batch, static_size)``.

        Probabilistic models also give the central ``interval`` (e.g. 0.9 → the 5% and 95%
        quantiles), the median and any requested ``quantiles``, all in original units. They
        come from the closed form where there is one (direct Gaussian and quantile models),
        else from ``samples`` (0: :data:`DEFAULT_SAMPLES`) paths drawn with ``seed``;
        autoregressive models feed each path's own draws back. ``samples > 0`` also returns
        the paths as :attr:`Forecast.samples`. ``intervals=False`` gives the point forecast
        alone (no paths are drawn): what a validation pass that scores only errors needs.
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
        if not all(0.0 < q < 1.0 for q in quantiles or ()):
            raise ValueError(f"quantiles: expected probabilities in (0, 1), got {quantiles!r}")
        covariates, static = self._raw_covariates(covariates, static, history.shape[0])
        with eval_mode(self), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # sample paths are reproducible and leave torch's RNG alone
            scaled = self.scale(history)
            distribution = self.predictive(self.raw_outputs(scaled, covariates, static))
            forecast = Forecast(distribution.point)
            if self.config.likelihood != "none" and intervals:
                self._describe(forecast, distribution, (scaled, covariates, static), interval,
                               quantiles, samples)
        forecast.map(self.unscale_targets)
        if distribution.std is not None and self.config.strategy == "direct" and intervals:
            forecast.std = distribution.std * self.feature_std[self.config.targets]
        return forecast

    def _describe(self, forecast: Forecast, distribution: Predictive, inputs: tuple,
                  interval: float, quantiles: list[float] | None, samples: int) -> None:
        """Fill the median, interval, quantiles and samples of ``forecast`` (scaled units)."""
        analytic = distribution.analytic and self.config.strategy == "direct"
        count = samples if analytic else (samples or DEFAULT_SAMPLES)
        paths = self._sample_paths(distribution, inputs, count) if count else None
        ordered = None if analytic else paths.sort(dim=0).values  # sorted once for all levels

        def quantile(level: float) -> Tensor:
            if analytic:
                return distribution.icdf(level)
            return _sorted_quantile(ordered, level)

        tail = (1.0 - interval) / 2.0
        forecast.median, forecast.lower, forecast.upper = (
            quantile(0.5), quantile(tail), quantile(1.0 - tail))
        if quantiles is not None:
            forecast.quantiles = {q: quantile(q) for q in quantiles}
        forecast.samples = paths if samples else None

    def _sample_paths(self, distribution: Predictive, inputs: tuple, count: int) -> Tensor:
        """``(count, batch, horizon, targets)`` scaled draws: from the marginals of a direct
        model, or whole paths of an autoregressive one (each row its own draws fed back)."""
        if self.config.strategy == "direct":
            return distribution.sample(count)
        history, covariates, static = inputs
        drawn = self._outputs(history, covariates, static, draw=True, paths=count)[1]
        return drawn.reshape(count, history.shape[0], *drawn.shape[1:])


def _sorted_quantile(ordered: Tensor, level: float) -> Tensor:
    """The ``level`` quantile along dim 0 of already sorted draws, interpolated linearly as
    :func:`torch.quantile` does (which sorts on every call and refuses >16M elements)."""
    position = level * (ordered.shape[0] - 1)
    low = int(position)
    high = min(low + 1, ordered.shape[0] - 1)
    return torch.lerp(ordered[low], ordered[high], position - low)
