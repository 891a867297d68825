"""Forecasting data as the task sees it: series in the run's column order, what each column is
for (:class:`ColumnRoles`), and forecast windows cut across one or many series (:class:`Windows`).

Every series is one ``(time, columns)`` matrix whose columns are, in order: the model inputs
(targets and past-only covariates), the future covariates, the static covariates. Windows are
cut from the whole matrix and split by role, so every kind of column stays aligned in time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rnnkit.data import DataFormatError
from rnnkit.data.windows import prepend_context, window_starts
from rnnkit.tasks.config import DataConfig
from rnnkit.tasks.errors import ConfigError


@dataclass
class Series:
    """One series as read: ``values`` ``(time, columns)`` in :attr:`ColumnRoles.columns`
    order, its time labels, its file, the raw steps just before it (``context``), its id
    (``""`` for a single-series file) and ``known_future``: trailing rows whose values are
    blank but whose future covariates are known (what a forecast from the end needs)."""

    values: np.ndarray
    times: tuple[str, ...] | None
    path: str
    context: np.ndarray | None = None
    series_id: str = ""
    known_future: np.ndarray | None = None


@dataclass(frozen=True)
class ColumnRoles:
    """``columns``: inputs, then future covariates, then statics; ``targets``: indices of the
    forecast columns among the inputs."""

    columns: tuple[str, ...]
    inputs: int
    future: int
    static: int
    targets: tuple[int, ...]

    @property
    def future_columns(self) -> slice:
        return slice(self.inputs, self.inputs + self.future)

    @property
    def static_columns(self) -> slice:
        return slice(self.inputs + self.future, len(self.columns))

    @classmethod
    def from_config(cls, data: DataConfig, available: Sequence[str], path: str) -> ColumnRoles:
        """Roles from the ``data`` section; ``available`` are the columns the file holds."""
        past, future = list(data.past_covariates or []), list(data.future_covariates or [])
        static = list(data.static_covariates or [])
        _check_disjoint({"past_covariates": past, "future_covariates": future,
                         "static_covariates": static})
        covariates = {*past, *future, *static}
        values = [c for c in (data.value_columns or available) if c not in covariates]
        inputs = list(dict.fromkeys([*values, *past]))
        targets = list(data.target_columns or values)
        foreign = [c for c in targets if c in covariates]
        if foreign:
            raise ConfigError(f"data.target_columns: {foreign} are covariates (inputs only); "
                              "a column is either forecast or a covariate")
        missing = [c for c in [*inputs, *future, *static, *targets] if c not in available]
        if missing:
            raise DataFormatError(path, 1, f"column(s) {missing} not among {list(available)}")
        if not targets:
            raise ConfigError(f"data.target_columns: nothing left to forecast in {path}: every "
                              "column is a covariate")
        return cls((*inputs, *future, *static), len(inputs), len(future), len(static),
                   tuple(inputs.index(c) for c in targets))

    @classmethod
    def from_artifacts(cls, artifacts: dict) -> ColumnRoles:
        """Roles stored with a run (runs made before covariates: every column an input)."""
        columns = tuple(artifacts["columns"])
        future, static = artifacts.get("future", 0), artifacts.get("static", 0)
        return cls(columns, len(columns) - future - static, future, static,
                   tuple(artifacts["targets"]))

    def artifacts(self) -> dict:
        """The JSON-able form :meth:`from_artifacts` reads."""
        return {"columns": list(self.columns), "targets": list(self.targets),
                "future": self.future, "static": self.static}

    def arrange(self, values: np.ndarray, columns: Sequence[str], path: str) -> np.ndarray:
        """``values`` ``(time, len(columns))`` reordered to :attr:`columns`."""
        missing = [c for c in self.columns if c not in columns]
        if missing:
            raise DataFormatError(path, 1, f"expected columns {list(self.columns)}, missing "
                                           f"{missing} (the file has {list(columns)})")
        return values[:, [list(columns).index(c) for c in self.columns]]


def _check_disjoint(lists: dict[str, list[str]]) -> None:
    seen: dict[str, str] = {}
    for key, names in lists.items():
        for name in names:
            if name in seen:
                raise ConfigError(f"data.{key}: column {name!r} is also in data.{seen[name]}; "
                                  "each covariate has one kind")
            seen[name] = key


@dataclass
class Windows:
    """Raw forecast windows from one or many series.

    - ``history`` ``(windows, lookback, inputs)``; ``future`` ``(windows, horizon, targets)``.
    - ``covariates`` ``(windows, lookback + horizon, future_covariates)`` or ``None``;
      ``static`` ``(windows, static_covariates)`` or ``None``.
    - ``series`` ``(windows,)``: index into ``ids``, the series each window comes from.
    """

    history: np.ndarray
    future: np.ndarray
    covariates: np.ndarray | None
    static: np.ndarray | None
    series: np.ndarray
    ids: tuple[str, ...]


def split_windows(full: np.ndarray, lookback: int, roles: ColumnRoles, series: np.ndarray,
                  ids: tuple[str, ...]) -> Windows:
    """:class:`Windows` from whole windows ``(windows, lookback + horizon, columns)``."""
    history, horizon = full[:, :lookback], full[:, lookback:]
    covariates = full[:, :, roles.future_columns] if roles.future else None
    static = full[:, lookback - 1, roles.static_columns] if roles.static else None
    return Windows(history[..., :roles.inputs], horizon[..., list(roles.targets)], covariates,
                   static, series, ids)


@dataclass
class LazyWindows:
    """Forecast windows kept as the series they come from, cut only when asked for: memory is
    the series' values plus two integers per window, not ``lookback + horizon`` rows each.

    - ``values`` ``(steps, columns)``: every series with a window, each preceded by at most
      ``lookback`` steps of its context, one after another.
    - ``starts`` ``(windows,)``: the row of ``values`` each window starts at.
    - ``series`` ``(windows,)``: index into ``ids``, the series each window comes from.
    """

    values: np.ndarray
    starts: np.ndarray
    series: np.ndarray
    ids: tuple[str, ...]
    roles: ColumnRoles
    lookback: int
    horizon: int

    def __len__(self) -> int:
        return len(self.starts)

    def take(self, rows: Sequence[int] | np.ndarray) -> Windows:
        """:class:`Windows` of the windows ``rows`` (in that order), as dense arrays."""
        rows = np.asarray(rows, dtype=np.intp)
        steps = np.arange(self.lookback + self.horizon)
        full = self.values[self.starts[rows, None] + steps]
        return split_windows(full, self.lookback, self.roles, self.series[rows], self.ids)

    def dense(self) -> Windows:
        """Every window at once."""
        return self.take(np.arange(len(self)))


def lazy_windows(series: Sequence[Series], roles: ColumnRoles, lookback: int, horizon: int,
                 stride: int = 1) -> LazyWindows:
    """Windows over every series long enough for one (each preceded by its ``context``), in
    series order, window ``i`` of a series starting at ``i * stride``."""
    parts, starts, owners, reasons, offset = [], [], [], [], 0
    for index, item in enumerate(series):
        values = prepend_context(item.values, item.context, lookback)
        try:
            begins = window_starts(len(values), lookback, horizon, stride)
        except ValueError as error:
            reasons.append(f"{item.series_id or item.path}: {error}")
            continue
        parts.append(values)
        starts.append(begins + offset if offset else begins)
        owners.append(np.full(len(begins), index))
        offset += len(values)
    if not parts:
        raise DataFormatError(series[0].path if series else "?", None,
                              "no series is long enough for one window: " + "; ".join(reasons[:3]))
    return LazyWindows(_joined(parts), _joined(starts), _joined(owners),
                       tuple(s.series_id for s in series), roles, lookback, horizon)


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    # One series (the long-input case) is kept as it is rather than copied.
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def cut_windows(series: Sequence[Series], roles: ColumnRoles, lookback: int, horizon: int,
                stride: int = 1) -> Windows:
    """Every window of :func:`lazy_windows` as dense arrays."""
    return lazy_windows(series, roles, lookback, horizon, stride).dense()


def with_context(series: Series) -> np.ndarray:
    """The series' values preceded by its context: ``(context + time, columns)``."""
    if series.context is None:
        return series.values
    return np.concatenate([series.context, series.values])


def last_window(series: Series, roles: ColumnRoles, lookback: int, horizon: int) -> Windows:
    """The final ``lookback + horizon`` steps as one window (history, then the known future)."""
    values = with_context(series)
    if len(values) < lookback + horizon:
        raise DataFormatError(series.path, None, f"{len(values)} rows, need lookback + horizon "
                                                 f"= {lookback + horizon}")
    full = values[None, len(values) - lookback - horizon:]
    return split_windows(full, lookback, roles, np.zeros(1, dtype=int), (series.series_id,))


# Share of a series' validation values beyond its training range (on one side) from which a
# globally or per-series scaled model is warned that the series trends past its history.
OUT_OF_RANGE_SHARE = 0.5


def trend_warning(normalize: str, train: Sequence[Series], valid: Sequence[Series],
                  targets: Sequence[int]) -> str | None:
    """A warning when scaling by training statistics meets validation values that mostly lie
    above (or below) everything the same series showed in training: the model then forecasts
    outside the range it learnt, and neither its error nor its interval calibration carries
    over (weekly CO2 scaled globally: MASE 1.6-2.3, worse than naive; relative to each window's
    last value: 0.35, bench/results/forecast_fresh.md). ``None`` when nothing is wrong."""
    if normalize in ("last_value", "window"):
        return None
    by_id = {series.series_id: series for series in train}
    for tail in valid:
        head = by_id.get(tail.series_id)
        if head is None or not len(tail.values) or not len(head.values):
            continue
        for column in targets:
            beyond = _beyond_range(head.values[:, column], tail.values[:, column])
            if beyond:
                side, share, bound = beyond
                name = f"series {tail.series_id!r}" if tail.series_id else "the series"
                return (f"data.normalize: {normalize}: {share:.0%} of the validation values "
                        f"of {name} lie {side} its training range (bound {bound:g}): the "
                        "model forecasts beyond what it learnt. A series that trends is "
                        "forecast relative to each window's last value with "
                        "data.normalize: last_value")
    return None


def _beyond_range(seen: np.ndarray, later: np.ndarray) -> tuple[str, float, float] | None:
    """``(side, share, bound)`` when more than :data:`OUT_OF_RANGE_SHARE` of ``later`` lies
    above the maximum (or below the minimum) of ``seen``."""
    for side, share, bound in (("above", np.mean(later > seen.max()), seen.max()),
                               ("below", np.mean(later < seen.min()), seen.min())):
        if share > OUT_OF_RANGE_SHARE:
            return side, float(share), float(bound)
    return None
