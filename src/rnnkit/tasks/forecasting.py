"""Forecasting: one series (CSV) or many (long-format CSV, Monash ``.tsf``) → the next
``horizon`` steps from a ``lookback`` window, with past-only, future and static covariates,
scaled on the training part only; MAE, RMSE, sMAPE, MASE per series and aggregated, interval
coverage and weighted quantile loss, with the seasonal-naive baseline alongside."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from rnnkit.data import (
    DataFormatError,
    ExampleSource,
    SeriesReader,
    StandardScaler,
    WindowBatch,
    collate_windows,
)
from rnnkit.data.readers.panel import time_key
from rnnkit.data.time_index import continue_times
from rnnkit.models.export_graphs import WindowScaling
from rnnkit.models.forecast_likelihood import has_closed_form
from rnnkit.tasks import forecast_baselines, forecast_cross
from rnnkit.tasks import forecast_metrics as fm
from rnnkit.tasks import forecast_probability as fp
from rnnkit.tasks.base import Task, model_device
from rnnkit.tasks.config import RunConfig
from rnnkit.tasks.data_files import open_reader
from rnnkit.tasks.errors import ConfigError
from rnnkit.tasks.forecast_data import (
    ColumnRoles,
    LazyWindows,
    Series,
    Windows,
    cut_windows,
    last_window,
    lazy_windows,
    split_windows,
    trend_warning,
)
from rnnkit.tasks.forecast_recalibration import evaluation_factors, latest_factors
from rnnkit.train import metrics
from rnnkit.train.checkpoint import load_checkpoint, read_metadata, save_checkpoint

Examples = Series | list[Series]
# Sample paths per window in training-time validation when train.monitor is an interval score
# (data.samples elsewhere): 500 paths made validation 60% of an autoregressive model's
# training time; the interval ends from 100 are within a few percent of those from 500.
VALIDATION_SAMPLES = 100
INTERVAL_METRICS = ("coverage", "wql", "crps")
# Validation forecasts per series whose scores the checkpoint keeps for rolling calibration:
# more than any useful window, and a bound on a long validation split's checkpoint size.
VALIDATION_SCORES_KEPT = 256


def as_list(examples: Examples) -> list[Series]:
    """A single-series file reads as one :class:`Series`, a panel as a list."""
    return examples if isinstance(examples, list) else [examples]


def _read_raw(config: RunConfig, path: str | Path, blank: list[str]) -> list[tuple]:
    """``[(series_id, values, columns, times), ...]`` from any series format."""
    reader = open_reader("forecasting", config.data, path)
    if isinstance(reader, SeriesReader):  # CSV readers: trailing rows may leave values blank
        reader.blank_columns = frozenset(blank)
    if hasattr(reader, "read_panel"):
        return [(s.series_id, s.values, s.columns, s.times) for s in reader.read_panel()]
    series = reader.read_series()
    return [("", series.values, series.columns, series.times)]


# With data.normalize: window, a window's spread is at least this share of its feature's
# training std: a flat stretch would otherwise blow its future up to huge scaled values.
WINDOW_STD_FLOOR = 0.05
PREDICT_CHUNK = 1024  # origin windows per model call in predict (bounds its memory)


class ForecastingTask(Task):
    """Columns: ``value_columns`` (default all but ``time_column``, ``id_column`` and the
    covariates); ``target_columns`` are forecast (default the value columns). Valid/test files
    continue the training series: their first windows take the lookback from the end of the
    series before them."""

    name = "forecasting"
    predict_input = "series"
    predict_options = frozenset({"samples", "calibration_window"})
    supports_backtest = True
    model_type = "forecaster"
    model_fields = ("bidirectional", "strategy", "teacher_forcing", "head", "gaussian",
                    "likelihood", "quantiles", "residual")
    defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "data": {"lookback": 24, "horizon": 12, "normalize": "last_value"},
        "model": {"hidden_size": 64, "gaussian": True},
        "train": {"lr": 3e-3, "batch_size": 16, "max_epochs": 200, "patience": 10,
                  "weight_decay": 0.0},
    }

    _calibration_part: Examples | None = None  # the validation split, once fit_on_split saw it
    _training_part: list[Series] | None = None  # what cross-conformal calibration holds out of
    _validation: tuple | None = None  # (that split, its stride-1 windows, their baselines)
    _warned_uncalibrated = False

    def export_options(self) -> dict[str, Any]:
        """The exported graph scales each window as ``data.normalize`` does, so it takes raw
        history like ``rnnkit predict`` (``series``: with each row's series statistics as
        two more inputs)."""
        mode = self.config.data.normalize
        floor = tuple(self.artifacts["window_floor"]) if mode == "window" else None
        return {"scaling": WindowScaling(mode, floor)}

    @property
    def roles(self) -> ColumnRoles:
        return ColumnRoles.from_artifacts(self.artifacts)

    @property
    def likelihood(self) -> str:
        model = self.config.model
        return model.likelihood or ("gaussian" if model.gaussian else "none")

    # ------------------------------------------------------------------------- reading
    def read(self, path: str | Path) -> Examples:
        """The series of ``path`` in the run's column order; a single-series file gives one
        :class:`Series`, a panel a list. Rows at the end whose values are blank (only the
        future covariates filled in) are kept apart as ``known_future`` for :meth:`predict`."""
        roles = self.roles
        blank = list(roles.columns[:roles.inputs]) if roles.future else []
        result = []
        for series_id, values, columns, times in _read_raw(self.config, path, blank):
            values = roles.arrange(values, columns, str(path))
            values, known = _split_blank_tail(values, roles, str(path), series_id)
            series = Series(values, times[:len(values)] if times else None, str(path),
                            series_id=series_id, known_future=known)
            series.context = self._context_for(series)
            result.append(series)
        return result if len(result) > 1 or result[0].series_id else result[0]

    @classmethod
    def fit(cls, config: RunConfig, train_path: Path) -> ForecastingTask:
        raw = _read_raw(config, train_path, [])
        roles = ColumnRoles.from_config(config.data, list(raw[0][2]), str(train_path))
        return cls(config, roles.artifacts())

    def fit_on_split(self, train: Examples, valid: Examples) -> None:
        """Scaling from the training part only; each validation series gets the end of its
        training series as context, and the end of each series is kept as context for files
        that follow it."""
        train_list, valid_list = as_list(train), as_list(valid)
        roles, lookback = self.roles, self.config.data.lookback
        stacked = np.concatenate([s.values for s in train_list])
        inputs = StandardScaler().fit(stacked[:, :roles.inputs])
        covariates = StandardScaler().fit(stacked[:, roles.inputs:]) if len(roles.columns) > \
            roles.inputs else None
        by_id = {s.series_id: s for s in train_list}
        contexts, series_scale, mase_scale = {}, {}, {}
        for series in valid_list:
            head = by_id.get(series.series_id)
            if head is not None:
                series.context = head.values[-lookback:]
        for series in train_list:
            tail = next((v for v in valid_list if v.series_id == series.series_id), None)
            seen = series.values if tail is None else np.concatenate([series.values, tail.values])
            times = (tail.times if tail is not None else None) or series.times
            # train_last_time: forecasts of later steps are out of sample, which rolling
            # calibration at predict time (forecast_recalibration) relies on
            contexts[series.series_id] = {"rows": seen[-lookback:].tolist(),
                                          "last_time": times[-1] if times else None,
                                          "train_last_time": series.times[-1]
                                          if series.times else None}
            fitted = StandardScaler().fit(series.values[:, :roles.inputs])
            series_scale[series.series_id] = [fitted.mean.tolist(), fitted.std.tolist()]
            targets = series.values[:, list(roles.targets)]
            mase_scale[series.series_id] = fm.seasonal_scale(targets, self.config.data.season
                                                             ).tolist()
        mode = self.config.data.normalize
        fp.check_likelihood(self.likelihood, mode, [s.values[:, list(roles.targets)]
                                                    for s in train_list], train_list[0].path)
        trending = trend_warning(mode, train_list, valid_list, roles.targets)
        if trending:
            warnings.warn(trending, UserWarning, stacklevel=2)
        self._calibration_part = valid
        folds = forecast_cross.check_folds(self.config.data.calibration_folds)
        if self.config.data.calibration == "cross":  # refuse impossible folds before training
            forecast_cross.fold_splits(train_list, lookback, self.config.data.horizon, folds)
            self._training_part = train_list
        self.artifacts.update(
            mean=(inputs.mean if mode == "global" else np.zeros_like(inputs.mean)).tolist(),
            std=(inputs.std if mode not in ("series", "window")
                 else np.ones_like(inputs.std)).tolist(),
            window_floor=(WINDOW_STD_FLOOR * inputs.std).tolist(),
            covariate_mean=None if covariates is None else covariates.mean.tolist(),
            covariate_std=None if covariates is None else covariates.std.tolist(),
            contexts=contexts, series_scale=series_scale, mase_scale=mase_scale)

    def hold_out(self, examples: Examples) -> tuple[Examples, Examples]:
        """The last ``valid_fraction`` of each series (at least one horizon) is validation."""
        heads, tails = [], []
        for series in as_list(examples):
            n = len(series.values)
            size = max(self.config.data.horizon, int(n * self.config.data.valid_fraction))
            times = series.times
            heads.append(Series(series.values[:-size], times[:-size] if times else None,
                                series.path, series_id=series.series_id))
            tails.append(Series(series.values[-size:], times[-size:] if times else None,
                                series.path, series_id=series.series_id))
        return (heads, tails) if isinstance(examples, list) else (heads[0], tails[0])

    def limit(self, examples: Examples) -> Examples:
        """The first ``eval_limit`` windows' worth of steps of each series (stride = horizon)."""
        limit = self.config.data.eval_limit
        if limit is None:
            return examples
        steps = limit * self.config.data.horizon
        limited = [Series(s.values[:steps], s.times[:steps] if s.times else None, s.path,
                          s.context, s.series_id) for s in as_list(examples)]
        result = limited if isinstance(examples, list) else limited[0]
        if examples is self._calibration_part:  # still the validation split, only shorter
            self._calibration_part = result
        return result

    @property
    def calibration_part(self) -> Examples | None:
        """The validation split the run early-stops and calibrates on (after :meth:`limit`)."""
        return self._calibration_part

    def _context_for(self, series: Series) -> np.ndarray | None:
        """The stored context when ``series`` continues a series the run has seen."""
        contexts = self.artifacts.get("contexts")
        if contexts is None and "context" in self.artifacts:  # runs made before panels
            contexts = {"": {"rows": self.artifacts["context"],
                             "last_time": self.artifacts.get("last_time")}}
        stored = (contexts or {}).get(series.series_id)
        if stored is None:
            return None
        last = stored["last_time"]
        if series.times and last is not None and time_key(series.times[0]) <= time_key(last):
            return None
        return np.asarray(stored["rows"])

    # -------------------------------------------------------------------------- model
    def model_config(self) -> dict[str, Any]:
        roles, data = self.roles, self.config.data
        if self.config.model.residual == "seasonal_naive" and data.season > data.lookback:
            raise ConfigError(f"model.residual: 'seasonal_naive' repeats the last data.season="
                              f"{data.season} steps of the history, but data.lookback is "
                              f"{data.lookback}; set lookback >= season")
        if self.config.model.head == "per_step" and data.horizon > data.lookback:
            raise ConfigError(f"model.head: 'per_step' reads each of the data.horizon="
                              f"{data.horizon} steps from a history step, but data.lookback is "
                              f"{data.lookback}; set lookback >= horizon")
        options = self.model_options(
            input_size=roles.inputs, horizon=data.horizon, season=data.season,
            residual=self.config.model.residual or "none",
            target_indices=list(roles.targets), mean=self.artifacts.get("mean"),
            std=self.artifacts.get("std"), future_size=roles.future, static_size=roles.static,
            covariate_mean=self.artifacts.get("covariate_mean"),
            covariate_std=self.artifacts.get("covariate_std"),
        )
        options["quantiles"] = fp.quantile_levels(self.likelihood, self.config.model.quantiles,
                                                  data.interval)
        return options

    def _levels(self, windows: Windows) -> tuple[np.ndarray, np.ndarray]:
        """Per window, the shift and the divisor applied to the inputs before the model (which
        then applies the global scaling): each ``(windows, 1, inputs)``."""
        history, mode = windows.history, self.config.data.normalize
        if mode == "last_value":
            return history[:, -1:, :], np.ones_like(history[:, -1:, :])
        if mode == "window":
            floor = np.asarray(self.artifacts["window_floor"])
            return (history.mean(axis=1, keepdims=True),
                    np.maximum(history.std(axis=1, keepdims=True), floor))
        if mode != "series":
            return np.zeros_like(history[:, -1:, :]), np.ones_like(history[:, -1:, :])
        stored = self.artifacts.get("series_scale", {})
        shift, spread = np.empty_like(history[:, -1:, :]), np.empty_like(history[:, -1:, :])
        for row, index in enumerate(windows.series):
            known = stored.get(windows.ids[index])
            if known is None:  # a series not seen in training: scale by its own history
                fitted = StandardScaler().fit(history[row])
                known = [fitted.mean, fitted.std]
            shift[row, 0], spread[row, 0] = known
        return shift, spread

    def _scaled(self, values: np.ndarray, columns: list[int] | None = None) -> np.ndarray:
        index = slice(None) if columns is None else columns
        mean, std = np.asarray(self.artifacts["mean"]), np.asarray(self.artifacts["std"])
        return (values - mean[index]) / std[index]

    def _scaled_covariates(self, windows: Windows) -> tuple[np.ndarray | None, ...]:
        roles = self.roles
        if roles.future + roles.static == 0:
            return None, None
        mean = np.asarray(self.artifacts["covariate_mean"])
        std = np.asarray(self.artifacts["covariate_std"])
        future = None if windows.covariates is None else (
            (windows.covariates - mean[:roles.future]) / std[:roles.future])
        static = None if windows.static is None else (
            (windows.static - mean[roles.future:]) / std[roles.future:])
        return future, static

    def train_source(self, examples: Examples, seed: int) -> ExampleSource:
        """Shuffled batches of every training window (stride 1), cut and scaled per batch
        from the series, so memory stays that of the series however many windows there are."""
        data = self.config.data
        windows = lazy_windows(as_list(examples), self.roles, data.lookback, data.horizon)
        return ExampleSource(range(len(windows)), partial(self._train_batch, windows),
                             self.config.train.batch_size, seed)

    def _train_batch(self, windows: LazyWindows, rows: list[int]) -> WindowBatch:
        """The model's scaled inputs and targets for the windows ``rows``."""
        return collate_windows(*self.model_inputs(windows.take(rows)))

    def model_inputs(self, windows: Windows) -> tuple[np.ndarray | None, ...]:
        """``(history, future, covariates, static)`` of raw ``windows`` as the model trains on
        them: per-window level and scale, then the run's global scaling."""
        targets = list(self.roles.targets)
        shift, spread = self._levels(windows)
        history = self._scaled((windows.history - shift) / spread)
        future = self._scaled((windows.future - shift[..., targets]) / spread[..., targets],
                              targets)
        return (history, future, *self._scaled_covariates(windows))

    def forecast(self, model: nn.Module, windows: Windows, samples: int = 0,
                 calibrated: bool = True, intervals: bool = True, seed: int | None = None):
        """:class:`~rnnkit.models.Forecast` in original units for raw ``windows`` (one
        forecast per window), undoing the per-window level and scale; intervals, quantiles
        (:data:`~rnnkit.tasks.forecast_metrics.QUANTILE_LEVELS`) and ``samples`` paths are
        widened by the run's conformal factor unless ``calibrated`` is false;
        ``intervals=False``: the point forecast alone. Paths are drawn with ``seed``
        (``None``: ``train.seed``)."""
        shift, spread = self._levels(windows)
        targets = list(self.roles.targets)
        device = model_device(model)

        def tensor(array: np.ndarray | None) -> torch.Tensor | None:
            return None if array is None else torch.as_tensor(array, dtype=torch.float32,
                                                              device=device)

        data = self.config.data
        forecast = model.predict(tensor((windows.history - shift) / spread),
                                 interval=data.interval, quantiles=list(fm.QUANTILE_LEVELS),
                                 covariates=tensor(windows.covariates),
                                 static=tensor(windows.static),
                                 samples=samples or self._metric_samples(),
                                 seed=self.config.train.seed if seed is None else seed,
                                 intervals=intervals)
        level, factor = tensor(shift[..., targets]), tensor(spread[..., targets])
        forecast.map(lambda values: values * factor + level)
        if forecast.std is not None:
            forecast.std = forecast.std * factor
        if calibrated and intervals and data.calibration != "none":
            fp.widen(forecast, self.stored_factor())
        return forecast

    def stored_factor(self) -> float:
        """The conformal factor in the artifacts; 1 with a warning (once) when the loaded
        checkpoint has none: it is fitted only for the checkpoint the run used, so ``last``
        of a run that kept a better ``best`` (or a run without a validation split) has the
        model's own, uncalibrated intervals, which a user should not take for calibrated."""
        factor = self.artifacts.get("conformal_factor")
        if factor is not None:
            return factor
        if self.likelihood != "none" and not self._warned_uncalibrated:
            self._warned_uncalibrated = True
            warnings.warn(f"data.calibration is {self.config.data.calibration!r} but this "
                          "checkpoint carries no conformal factor (it is fitted once, for the "
                          "checkpoint the run used: 'best' when validation chose one); its "
                          "intervals are the model's own, uncalibrated. Load the 'best' "
                          "checkpoint for calibrated intervals", UserWarning, stacklevel=3)
        return 1.0

    def _metric_samples(self) -> int:
        """Paths behind CRPS: none where the Gaussian closed form applies."""
        closed_form = self.likelihood == "gaussian" and self.config.model.strategy in (
            None, "direct")
        return 0 if closed_form or self.likelihood == "none" else self.config.data.samples

    def last_window(self, series: Series) -> Windows:
        """The final ``lookback + horizon`` steps of ``series`` (with its context) as one
        window: what the report plots against the truth."""
        data = self.config.data
        return last_window(series, self.roles, data.lookback, data.horizon)

    # --------------------------------------------------------------------- evaluation
    def windows(self, examples: Examples) -> Windows:
        """Raw windows over every series, stride ``horizon``, each preceded by its context."""
        data = self.config.data
        return cut_windows(as_list(examples), self.roles, data.lookback, data.horizon,
                           stride=data.horizon)

    def _mase_scales(self, series: list[Series]) -> np.ndarray:
        """``(series, targets)``: the training in-sample seasonal-naive MAE of each series (a
        series not seen in training: its own values')."""
        stored, targets = self.artifacts.get("mase_scale", {}), list(self.roles.targets)
        if not stored and "train_targets" in self.artifacts:  # runs made before panels
            stored = {"": fm.seasonal_scale(np.asarray(self.artifacts["train_targets"]),
                                            self.config.data.season).tolist()}
        return np.asarray([stored.get(s.series_id) or fm.seasonal_scale(
            s.values[:, targets], self.config.data.season) for s in series])

    def scores(self, model: nn.Module, examples: Examples, progress: bool = False
               ) -> tuple[dict[str, float], list[dict[str, Any]]]:
        """Aggregated metrics and one row of metrics per series. On the validation split
        (during training, after every evaluation) every window is scored (stride 1, not
        ``horizon``: 7x as many on a daily series, so the checkpoint choice is less noisy) on
        its point forecast alone, unless ``train.monitor`` is an interval score: drawing
        sample paths for every window was most of an autoregressive model's validation cost,
        and the default monitor (``valid_loss``) never depends on them. The conformal factor
        and the interval scores of the checkpoint used are fitted once, after training
        (:meth:`finish_training`). Any other file (a test split, ``rnnkit evaluate``) is
        scored on windows every ``horizon`` steps, whose intervals, with
        ``data.calibration_window`` N, are those ``predict`` and a stride-1 backtest give:
        refitted at each origin on the last N ended forecasts
        (:func:`~rnnkit.tasks.forecast_recalibration.evaluation_factors`)."""
        series = as_list(examples)
        if examples is self._calibration_part:
            windows, baselines = self._validation_windows()
            return self._scored(series, windows, self._validation_forecast(model, windows),
                                baselines)
        windows = self.windows(series)
        window = (self.config.data.calibration_window or 0) if self.likelihood != "none" else 0
        if window:  # the intervals predict and backtest give: refitted on recent errors
            forecast = fp.widen(self.forecast(model, windows, calibrated=False),
                                evaluation_factors(self, model, series, windows, window,
                                                   progress))
        else:
            forecast = self.forecast(model, windows)
        result, rows = self._scored(series, windows, forecast)
        if forecast.lower is not None:
            result.update(fp.coverage_interval(forecast, windows))
        return result, rows

    def _validation_windows(self) -> tuple[Windows, tuple[np.ndarray, ...]]:
        """The validation split's stride-1 windows and the seasonal-naive and Theta forecasts
        of them, made once: they never change between evaluations, and Theta alone cost
        more CPU than forecasting them. No ETS: its fits would add seconds to every training
        (evaluations and backtests have it)."""
        part = self._calibration_part
        if self._validation is None or self._validation[0] is not part:
            data = self.config.data
            windows = cut_windows(as_list(part), self.roles, data.lookback, data.horizon)
            self._validation = (part, windows, self._baselines(windows, ets=False))
        return self._validation[1], self._validation[2]

    def _monitors_intervals(self) -> bool:
        monitor = (self.config.train.monitor or "").removeprefix("valid_")
        return monitor in INTERVAL_METRICS and self.likelihood != "none"

    def _validation_forecast(self, model: nn.Module, windows: Windows):
        """The per-evaluation forecast of the validation windows: the point forecast, or with
        an interval score monitored, intervals from at most :data:`VALIDATION_SAMPLES` paths
        calibrated on these same forecasts."""
        if not self._monitors_intervals():
            return self.forecast(model, windows, intervals=False)
        paths = min(self._metric_samples(), VALIDATION_SAMPLES)
        forecast = self.forecast(model, windows, samples=paths, calibrated=False)
        if self.config.data.calibration != "none":
            fp.widen(forecast, fp.conformal_factor(forecast, windows.future,
                                                   self.config.data.interval))
        return forecast

    def finish_training(self, checkpoint: Path,
                        notice: Callable[[str], None] | None = None) -> None:
        """Fit the conformal factor of the ``checkpoint`` the run uses on its model's forecasts
        of every validation window, with ``data.samples`` paths as everywhere else, and
        record it (artifacts) with the validation's interval scores (the trainer's metrics)
        in that checkpoint. Once per training: on the store panel this fit costs as much CPU
        as several epochs, so ``last``, kept to resume training, carries a factor only when
        it is the checkpoint used. A ``notice`` says when that checkpoint forecasts the
        validation split no better than seasonal naive
        (:func:`~rnnkit.tasks.forecast_baselines.behind_naive_notice`)."""
        if notice is not None:
            record = read_metadata(checkpoint).get("trainer", {})
            behind = forecast_baselines.behind_naive_notice(
                record, self.config.data.season, self.config.model.residual or "none")
            if behind:
                notice(behind)
        if self._calibration_part is None or self.likelihood == "none":
            return
        series = as_list(self._calibration_part)
        windows, baselines = self._validation_windows()
        model = self.build_model()
        saved = load_checkpoint(checkpoint, model)
        forecast = self.forecast(model, windows, calibrated=False)
        metadata = saved.metadata
        metadata.setdefault("artifacts", {})["validation_scores"] = self._validation_scores(
            series, windows, forecast)
        if self.config.data.calibration != "none":
            factor = self._fit_conformal(forecast, windows.future)
            if self.config.data.calibration == "cross":
                factor = self._fit_cross(forecast, windows.future, notice)
                metadata["artifacts"]["cross_calibration"] = self.artifacts["cross_calibration"]
            fp.widen(forecast, factor)
            metadata["artifacts"]["conformal_factor"] = factor
        scored = self._scored(series, windows, forecast, baselines)[0]
        recorded = metadata.get("trainer", {}).get("metrics")
        if recorded:
            recorded.update({f"valid_{name}": scored[name] for name in INTERVAL_METRICS
                             if name in scored})
        save_checkpoint(checkpoint, model, metadata, saved.trainer_state,
                        keep_previous=checkpoint.name == "last")

    def _validation_scores(self, series: list[Series], windows: Windows,
                           forecast) -> dict[str, dict[str, list]]:
        """Per series id, the nonconformity scores of the uncalibrated validation ``forecast``
        (``scores``: ``(windows, horizon, targets)``, the last
        :data:`VALIDATION_SCORES_KEPT`) and the time label of each window's last step
        (``end_times``), so a backtest's rolling calibration can start from them. Series
        without time labels are left out: nothing would tell which test origins they precede."""
        scores = fp.conformal_scores(forecast, windows.future)
        lookback, horizon = self.config.data.lookback, self.config.data.horizon
        result = {}
        for index, item in enumerate(series):
            rows = np.flatnonzero(windows.series == index)
            if not item.times or not len(rows):
                continue
            # Window i of the series (context first) ends at row i + lookback + horizon - 1
            # of the context and values together.
            skipped = 0 if item.context is None else min(len(item.context), lookback)
            first = max(len(rows) - VALIDATION_SCORES_KEPT, 0)
            rows = rows[first:]
            ends = [item.times[i + lookback + horizon - 1 - skipped]
                    for i in range(first, first + len(rows))]
            result[item.series_id] = {"end_times": ends, "scores": scores[rows].tolist()}
        return result

    def _baselines(self, windows: Windows, ets: bool = True
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The seasonal-naive, Theta and, with ``ets`` where statsforecast is installed, ETS
        forecasts from each window's history, each ``(windows, horizon, targets)``."""
        data = self.config.data
        history = windows.history[..., list(self.roles.targets)]
        return (self._seasonal_naive(windows),
                forecast_baselines.theta_forecast(history, data.horizon, data.season),
                forecast_baselines.ets_forecast(history, data.horizon, data.season)
                if ets else None)

    def _scored(self, series: list[Series], windows: Windows, forecast,
                baselines: tuple[np.ndarray, ...] | None = None
                ) -> tuple[dict[str, float], list[dict[str, Any]]]:
        """Metrics of ``forecast`` against ``windows``: aggregated and per series
        (``baselines``: :meth:`_baselines` of ``windows``, if already made)."""
        predicted = forecast.mean.cpu().double().numpy()
        future, targets = windows.future, list(self.roles.targets)
        naive, theta, ets = baselines or self._baselines(windows)
        scales = self._mase_scales(series)
        spread = self._levels(windows)[1]
        std = np.asarray(self.artifacts["std"])[targets] * spread[..., targets]
        mase = fm.mase_per_series(predicted, future, windows.series, scales)
        naive_mase = fm.mase_per_series(naive, future, windows.series, scales)
        result = {
            "loss": float(np.mean(((predicted - future) / std) ** 2)),
            "mae": metrics.mae(predicted, future), "rmse": metrics.rmse(predicted, future),
            "smape": fm.smape(predicted, future), "mase": float(mase.mean()),
            "naive_smape": fm.smape(naive, future), "naive_mase": float(naive_mase.mean()),
            "theta_smape": fm.smape(theta, future),
            "theta_mase": float(fm.mase_per_series(theta, future, windows.series,
                                                   scales).mean()),
        }
        if ets is not None:
            result["ets_smape"] = fm.smape(ets, future)
            result["ets_mase"] = float(fm.mase_per_series(ets, future, windows.series,
                                                          scales).mean())
        if forecast.lower is not None:
            result.update(fp.probabilistic_scores(forecast, future))
        rows = self._per_series(windows, predicted, naive, mase, naive_mase)
        return result, rows

    def calibrate(self, model: nn.Module, series: list[Series]) -> float:
        """Fit the split-conformal factor on ``series`` (every window, stride 1) and store it
        in the artifacts, which the checkpoint saved next records."""
        data = self.config.data
        if self.likelihood == "none":
            return 1.0
        windows = cut_windows(series, self.roles, data.lookback, data.horizon)
        return self._fit_conformal(self.forecast(model, windows, calibrated=False),
                                   windows.future)

    def _fit_conformal(self, forecast, future: np.ndarray) -> float:
        """The conformal factor of an uncalibrated ``forecast`` against ``future``, stored in
        the artifacts (1 for point forecasts, which have no interval to scale)."""
        if self.likelihood == "none":
            return 1.0
        factor = fp.conformal_factor(forecast, future, self.config.data.interval)
        self.artifacts["conformal_factor"] = factor
        return factor

    def _fit_cross(self, forecast, future: np.ndarray,
                   notice: Callable[[str], None] | None = None) -> float:
        """The cross-conformal factor (:mod:`~rnnkit.tasks.forecast_cross`): the quantile of
        the validation ``forecast``'s scores pooled with those of the fold models' held-out
        forecasts, stored in the artifacts with what it was fitted on."""
        data = self.config.data
        validation = fp.conformal_scores(forecast, future)
        folds, seconds = forecast_cross.cross_scores(self, self._training_part or [],
                                                      data.calibration_folds, notice)
        factor = fp.conformal_quantile(np.concatenate([validation.ravel(), folds.ravel()]),
                                       data.interval)
        self.artifacts["conformal_factor"] = factor
        self.artifacts["cross_calibration"] = {
            "folds": data.calibration_folds, "validation_factor":
            fp.conformal_quantile(validation, data.interval),
            "fold_factor": fp.conformal_quantile(folds, data.interval),
            "validation_scores": int(validation.size), "fold_scores": int(folds.size),
            "cpu_seconds": round(seconds, 2)}
        return factor

    def _seasonal_naive(self, windows: Windows) -> np.ndarray:
        """The seasonal-naive forecast from each window's history: ``(windows, horizon,
        targets)``."""
        return fm.seasonal_naive(windows.history[..., list(self.roles.targets)],
                                 self.config.data.horizon, self.config.data.season)

    def _per_series(self, windows: Windows, predicted: np.ndarray, naive: np.ndarray,
                    mase: np.ndarray, naive_mase: np.ndarray) -> list[dict[str, Any]]:
        rows = []
        for position, index in enumerate(dict.fromkeys(windows.series.tolist())):
            mask = windows.series == index
            rows.append({"series": windows.ids[index], "windows": int(mask.sum()),
                         "smape": fm.smape(predicted[mask], windows.future[mask]),
                         "mase": float(mase[position]),
                         "naive_smape": fm.smape(naive[mask], windows.future[mask]),
                         "naive_mase": float(naive_mase[position])})
        return rows

    @classmethod
    def next_commands(cls, run_dir: Path) -> list[str]:
        """The common commands and a stride-1 backtest: a forecast from every origin, scored
        and saved for the report's figure of historical forecasts."""
        predict, *rest = super().next_commands(run_dir)
        return [predict, f"rnnkit backtest {run_dir} --data <file> --stride 1", *rest]

    def evaluate(self, model: nn.Module, examples: Examples, progress: bool = False):
        return self.scores(model, examples, progress)[0]

    # ---------------------------------------------------------------------- prediction
    def predict(self, model: nn.Module, inputs: list[Examples], samples: int = 0,
                calibration_window: int | None = None) -> list[dict[str, Any]]:
        """The ``horizon`` steps after the last observed row of each series, with the central
        ``data.interval`` when the model is probabilistic, and ``samples`` sample paths per
        series (``<target>_samples``: one value per path at each step). With future
        covariates, the file must end with ``horizon`` rows whose values are blank and whose
        future covariates are set. With ``calibration_window`` N (``None``: the run's
        ``data.calibration_window``; 0: none) the intervals are widened by the factor the
        series' last N ended forecasts give (:mod:`~rnnkit.tasks.forecast_recalibration`), as
        a backtest's rolling calibration would at that origin. Series are forecast together
        when no sample paths are drawn, else one at a time, each with its own seed
        (:func:`~rnnkit.tasks.forecast_probability.derived_seed` of its id): a series'
        paths do not depend on the others in the file, and two series do not share their
        draws."""
        if samples and self.likelihood == "none":
            raise ConfigError("--samples: the run's model gives point forecasts "
                              "(model.likelihood: none); train it with a likelihood to sample")
        rows = []
        names = [self.roles.columns[i] for i in self.roles.targets]
        every = [s for item in inputs for s in as_list(item)]
        origins = [self._origin_window(series) for series in every]  # bad input refused first
        factors = latest_factors(self, model, every, calibration_window)
        if samples == 0 and self._draws_nothing():
            forecasts = self._forecasts_at_once(model, origins, factors)
        else:  # each series' paths drawn alone, so they do not depend on the file's others
            forecasts = [(self._paths_forecast(model, window, samples, factor, series), 0)
                         for window, factor, series in zip(origins, factors, every, strict=True)]
        for series, (forecast, row) in zip(every, forecasts, strict=True):
            times = continue_times(series.times, self.config.data.horizon)
            rows.extend(_forecast_rows(forecast, names, series.series_id, samples > 0, times,
                                       row))
        return rows

    def _paths_forecast(self, model: nn.Module, window: Windows, samples: int,
                        factor: np.ndarray | None, series: Series):
        """One series' forecast from sample paths drawn with its own seed
        (:func:`~rnnkit.tasks.forecast_probability.derived_seed` of its id), widened by its
        recent ``factor`` (``None``: the stored one)."""
        seed = fp.derived_seed(self.config.train.seed, series.series_id)
        if factor is None:
            return self.forecast(model, window, samples=samples, seed=seed)
        return fp.widen(self.forecast(model, window, samples=samples, calibrated=False,
                                      seed=seed), factor)

    def _draws_nothing(self) -> bool:
        """Whether a forecast's point and interval come without sample paths: point models,
        and direct models whose likelihood has a closed-form quantile."""
        direct = self.config.model.strategy in (None, "direct")
        return self.likelihood == "none" or (direct and has_closed_form(self.likelihood))

    def _forecasts_at_once(self, model: nn.Module, origins: list[Windows],
                           factors: list[np.ndarray | None]) -> list[tuple[Any, int]]:
        """One forecast of every origin window in chunks of :data:`PREDICT_CHUNK` (a panel of
        thousands of series would otherwise make thousands of one-window calls), each widened
        by its series' recent factor or else the stored one: ``(forecast, row)`` per origin."""
        horizon = self.config.data.horizon
        stored = self.stored_factor() if self.config.data.calibration != "none" else 1.0
        per_step = any(f is not None and f.ndim == 2 for f in factors)
        results = []
        for start in range(0, len(origins), PREDICT_CHUNK):
            chunk = origins[start:start + PREDICT_CHUNK]
            forecast = self.forecast(model, _joined(chunk), calibrated=False)
            widths = np.concatenate([np.broadcast_to(stored if f is None else f.reshape(-1),
                                                     (horizon,) if per_step else (1,))
                                     for f in factors[start:start + PREDICT_CHUNK]])
            if self.likelihood != "none" and not (widths == 1.0).all():
                fp.widen(forecast, widths.reshape(len(chunk), -1) if per_step else widths)
            results.extend((forecast, row) for row in range(len(chunk)))
        return results

    def _origin_window(self, series: Series) -> Windows:
        """One window whose history ends at the last observed row of ``series``."""
        data, roles = self.config.data, self.roles
        lookback, horizon = data.lookback, data.horizon
        if len(series.values) < lookback:
            raise DataFormatError(series.path, None, f"expected at least lookback={lookback} "
                                  f"rows to forecast from, got {len(series.values)}; predict "
                                  "forecasts what follows the file's last row from that file "
                                  "alone, so pass the history up to the forecast origin (e.g. "
                                  "the training file, or train+valid+test joined), not only a "
                                  "held-out tail (evaluate scores a tail against the run's own "
                                  "history)")
        known = series.known_future
        if roles.future and (known is None or len(known) < horizon):
            names = list(roles.columns[roles.future_columns])
            raise DataFormatError(series.path, None, f"expected {horizon} rows after the last "
                                  f"observed value holding the future covariates {names} (values "
                                  f"blank), got {0 if known is None else len(known)}")
        tail = known[:horizon] if roles.future else np.full(
            (horizon, len(roles.columns)), np.nan)
        full = np.concatenate([series.values[-lookback:], tail])[None]
        return split_windows(full, lookback, roles, np.zeros(1, dtype=int), (series.series_id,))


def _split_blank_tail(values: np.ndarray, roles: ColumnRoles, path: str,
                      series_id: str) -> tuple[np.ndarray, np.ndarray | None]:
    """``(complete rows, trailing rows with blank values)``; blanks elsewhere are an error."""
    blank = np.isnan(values[:, :roles.inputs]).any(axis=1)
    if not blank.any():
        return values, None
    first = int(np.argmax(blank))
    where = f"series {series_id!r}: " if series_id else ""
    if not blank[first:].all() or not np.isnan(values[first:, :roles.inputs]).all():
        raise DataFormatError(path, None, f"{where}blank values from data row {first + 1} on "
                              "are not all blank: only the final rows (the horizon to "
                              "forecast, future covariates filled in) may leave values blank")
    if np.isnan(values[first:, roles.inputs:]).any():
        raise DataFormatError(path, None, f"{where}a covariate is blank in the rows after the "
                              "last value; future covariates must be known over the horizon")
    return values[:first], values[first:]


def _joined(windows: list[Windows]) -> Windows:
    """One :class:`Windows` of every window of ``windows`` (each from one series), in order."""
    def join(name: str) -> np.ndarray | None:
        parts = [getattr(w, name) for w in windows]
        return None if parts[0] is None else np.concatenate(parts)

    ids = tuple(i for w in windows for i in w.ids)
    offsets = np.cumsum([0, *(len(w.ids) for w in windows[:-1])])
    series = np.concatenate([w.series + offset for w, offset in zip(windows, offsets,
                                                                    strict=True)])
    return Windows(join("history"), join("future"), join("covariates"), join("static"), series,
                   ids)


def _forecast_rows(forecast, names: list[str], series_id: str, with_samples: bool = False,
                   times: list[str] | None = None, window: int = 0) -> list[dict[str, Any]]:
    """One row per forecast step of ``forecast``'s ``window``: ``step`` (1..horizon),
    ``time`` (the series' own time column continued, when it has a constant step) and each
    target's value and interval."""
    mean = forecast.mean[window].tolist()  # (horizon, targets): one conversion, not one a value
    lower = None if forecast.lower is None else forecast.lower[window].tolist()
    upper = None if forecast.upper is None else forecast.upper[window].tolist()
    rows = []
    for step in range(len(mean)):
        row: dict[str, Any] = {"series": series_id} if series_id else {}
        row["step"] = step + 1
        if times is not None:
            row["time"] = times[step]
        for index, name in enumerate(names):
            row[name] = mean[step][index]
            if lower is not None:
                row[f"{name}_lower"] = lower[step][index]
                row[f"{name}_upper"] = upper[step][index]
            if with_samples:
                row[f"{name}_samples"] = forecast.samples[:, window, step, index].tolist()
        rows.append(row)
    return rows
