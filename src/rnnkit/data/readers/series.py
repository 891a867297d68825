"""CSV time series: one or many value columns and an optional time column."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataFormatError
from ._lines import OnError
from .base import Reader
from .labelled import CsvRows


@dataclass(frozen=True)
class SeriesRow:
    """One time step: its time label (if a time column is read), its values and its line."""

    time: str | None
    values: tuple[float, ...]
    line: int


@dataclass(frozen=True)
class TimeSeries:
    """A whole series in memory.

    - ``values``: ``(time, features)`` float64, one column per name in ``columns``.
    - ``times``: the time labels, or ``None`` when no time column was read.
    """

    values: np.ndarray
    columns: tuple[str, ...]
    times: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return self.values.shape[0]


class SeriesReader(Reader[SeriesRow]):
    """Rows of a CSV with a header; rows must be in time order.

    ``value_columns`` names the value columns (default: every column but ``time_column``).
    A value that is not a finite number is malformed (in skip mode the row is dropped, which
    leaves a gap in the series: fill missing values before reading if gaps matter). Blank cells
    of ``blank_columns`` read as NaN instead: a file to forecast from may end with rows that
    hold only the future covariates.
    """

    def __init__(
        self,
        path: str | Path,
        value_columns: Sequence[str] | None = None,
        time_column: str | None = None,
        delimiter: str | None = None,
        on_error: OnError = "raise",
        blank_columns: Sequence[str] = (),
    ):
        super().__init__(path, on_error)
        self.blank_columns = frozenset(blank_columns)
        if isinstance(value_columns, str):
            value_columns = [value_columns]
        self.value_columns = list(value_columns) if value_columns else None
        self.time_column = time_column
        required = (self.value_columns or []) + ([time_column] if time_column else [])
        self.rows = CsvRows(self, delimiter, required)

    def _records(self) -> Iterator[SeriesRow]:
        skipped_at_last_row: int | None = None  # skip count when the last row was kept
        for line, row in self.rows:
            if self.rows.record_start != line:  # no value spans lines: a quote is not closed
                self.skip_log.handle(DataFormatError(
                    self.path, self.rows.record_start, f"a quoted field runs from this line to "
                    f"line {line}; series values are one per line (is a quote not closed?)"))
                continue
            if self.value_columns is None:
                self.value_columns = [name for name in row if name != self.time_column]
            try:
                values = tuple(self._number(row, name, line) for name in self.value_columns)
            except DataFormatError as error:
                self.skip_log.handle(error)
                continue
            if skipped_at_last_row is not None and self.skip_log.count > skipped_at_last_row:
                raise self._gap_error(line, skipped_at_last_row)
            skipped_at_last_row = self.skip_log.count
            time = row[self.time_column].strip() if self.time_column else None
            yield SeriesRow(time, values, line)

    def _gap_error(self, line: int, skipped_before: int) -> DataFormatError:
        """Skipped rows inside the series: joining the rows around them would put time steps
        that are not adjacent side by side, so the model would learn a false transition.
        Skipping is only allowed before the first and after the last kept row."""
        dropped = self.skip_log.errors[skipped_before:skipped_before + 1]
        first = f"line {dropped[0].line}: {dropped[0].reason}" if dropped else "a malformed row"
        return DataFormatError(
            self.path, line, f"on_error=skip dropped {self.skip_log.count - skipped_before} "
            f"row(s) inside the series before this line (first: {first}); joining the rows "
            "around them would make non-adjacent time steps adjacent: fill the missing values "
            "(e.g. interpolate) or split the file there")

    def _number(self, row: dict[str, str], name: str, line: int) -> float:
        text = row[name].strip()
        if not text and name in self.blank_columns:
            return math.nan
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise DataFormatError(self.path, line, _not_finite_reason(name, text))
        return value

    def read_series(self) -> TimeSeries:
        """Read the whole file into a :class:`TimeSeries`."""
        rows = self.read()
        if not rows:
            raise DataFormatError(self.path, None, "no data rows after the header")
        values = np.array([row.values for row in rows], dtype=np.float64)
        times = tuple(row.time for row in rows) if self.time_column else None
        return TimeSeries(values, tuple(self.value_columns or ()), times)


def _not_finite_reason(column: str, text: str) -> str:
    """Why ``text`` is not a usable value of ``column``: missing, non-finite or not a number."""
    if not text:
        what = "is empty (a missing value)"
    elif text.lower().lstrip("+-") in ("nan", "inf", "infinity"):
        what = f"holds {text!r}, which is not finite"
    else:
        what = f"holds {text[:40]!r}, which is not a number"
    return (f"column {column!r} {what}; expected a finite number (fill or interpolate missing "
            "values; data.on_error: skip drops such rows only at the start or end of a series)")
