"""Many series in one file: long-format CSV (``series_id, time, value, ...``) and Monash ``.tsf``.

Both give a list of :class:`NamedSeries`, one per series, in the order series first appear.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataFormatError
from ._lines import OnError
from .series import SeriesReader, TimeLabels, _LabelCollector


@dataclass(frozen=True)
class NamedSeries:
    """One series of a panel: ``values`` ``(time, columns)`` float64, its time labels (or
    ``None``), and the line of the file where it starts."""

    series_id: str
    values: np.ndarray
    columns: tuple[str, ...]
    times: Sequence[str] | None
    line: int


@dataclass(frozen=True)
class LongRow:
    """One row of a long-format file: which series, when, its values, its line."""

    series_id: str
    time: str | None
    values: tuple[float, ...]
    line: int


def time_key(label: str) -> tuple[int, float | str]:
    """Sort key of a time label: numbers numerically, anything else (ISO dates) as text."""
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)


class LongSeriesReader(SeriesReader):
    """Long-format CSV with a header: one row per (series, time step). Rows of different series
    may interleave, but each series' rows must be in time order (checked when ``time_column``
    is set). ``value_columns`` defaults to every column but ``id_column`` and ``time_column``."""

    def __init__(self, path: str | Path, id_column: str = "series_id",
                 value_columns: Sequence[str] | None = None, time_column: str | None = None,
                 delimiter: str | None = None, on_error: OnError = "raise",
                 blank_columns: Sequence[str] = ()):
        super().__init__(path, value_columns, time_column, delimiter, on_error, blank_columns)
        self.id_column = id_column
        self.rows.required.append(id_column)

    def _records(self) -> Iterator[LongRow]:  # type: ignore[override]
        for line, row in self.rows:
            if self.value_columns is None:
                skip = (self.time_column, self.id_column)
                self.value_columns = [name for name in row if name not in skip]
            series_id = row[self.id_column].strip()
            try:
                if not series_id:
                    raise DataFormatError(self.path, line, f"empty {self.id_column!r} field")
                values = tuple(self._number(row, name, line) for name in self.value_columns)
            except DataFormatError as error:
                self.skip_log.handle(error)
                continue
            time = row[self.time_column].strip() if self.time_column else None
            yield LongRow(series_id, time, values, line)

    def read_panel(self) -> list[NamedSeries]:
        """Every series of the file, checked for time order. Each series' rows go into a flat
        float64 buffer and one string of time labels, as in :meth:`SeriesReader.read_series`."""
        groups: dict[str, _Group] = {}
        for row in self:
            group = groups.get(row.series_id)
            if group is None:
                group = groups[row.series_id] = _Group(row.line, self.time_column is not None)
            elif row.time is not None and time_key(row.time) <= group.last_key:
                self.skip_log.handle(DataFormatError(
                    self.path, row.line, f"series {row.series_id!r}: time {row.time!r} is not "
                    f"after {group.last_time!r} (line {group.last_line}); each series' rows "
                    "must be in time order"))
                continue
            group.add(row)
        if not groups:
            raise DataFormatError(self.path, None, "no data rows after the header")
        columns = tuple(self.value_columns or ())
        return [NamedSeries(name, group.matrix(len(columns)), columns, group.labels(),
                            group.first_line)
                for name, group in groups.items()]


class _Group:
    """The rows of one series read so far, held compactly."""

    __slots__ = ("first_line", "last_key", "last_line", "last_time", "rows", "times", "values")

    def __init__(self, first_line: int, timed: bool) -> None:
        self.first_line = first_line
        self.values = array("d")
        self.times = _LabelCollector() if timed else None
        self.rows = 0
        self.last_time: str | None = None
        self.last_key: tuple[int, float | str] | None = None
        self.last_line = first_line

    def add(self, row: LongRow) -> None:
        self.values.extend(row.values)
        if self.times is not None and row.time is not None:
            self.times.append(row.time)
            self.last_time, self.last_key = row.time, time_key(row.time)
        self.last_line = row.line
        self.rows += 1

    def matrix(self, columns: int) -> np.ndarray:
        # frombuffer shares the buffer's memory: no second copy of the values
        return np.frombuffer(self.values, dtype=np.float64).reshape(self.rows, columns)

    def labels(self) -> TimeLabels | None:
        return self.times.labels() if self.times is not None else None
