"""CSV time series: one or many value columns and an optional time column."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..errors import DataFormatError
from ._lines import OnError, SkipLog
from .base import Reader
from .labelled import CsvRows

_PROGRESS_ROWS = 1 << 14  # rows between progress updates (an update per row costs ~1 us)


@dataclass(frozen=True)
class SeriesRow:
    """One time step: its time label (if a time column is read), its values and its line."""

    time: str | None
    values: tuple[float, ...]
    line: int


class TimeLabels(Sequence[str]):
    """Time labels held compactly: one string with all of them and an offset per label.

    A tuple of strings costs about 64 bytes per label (object header, pointer), which for
    millions of rows dwarfs the float64 values themselves; here a label costs its characters
    plus 8 bytes. Behaves as a read-only sequence of ``str``: indexing, slicing (a view),
    iteration, and equality with tuples and lists of labels.
    """

    __slots__ = ("_offsets", "_start", "_stop", "_text")

    def __init__(self, text: str, offsets: array, start: int = 0, stop: int | None = None):
        self._text, self._offsets = text, offsets
        self._start = start
        self._stop = len(offsets) - 1 if stop is None else stop

    def __len__(self) -> int:
        return self._stop - self._start

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step == 1:
                return TimeLabels(self._text, self._offsets, self._start + start,
                                  self._start + max(start, stop))
            return tuple(self[i] for i in range(start, stop, step))
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError(f"time label index {index} out of range for {len(self)} labels")
        position += self._start
        return self._text[self._offsets[position]:self._offsets[position + 1]]

    def __iter__(self) -> Iterator[str]:
        text, offsets = self._text, self._offsets
        for position in range(self._start, self._stop):
            yield text[offsets[position]:offsets[position + 1]]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TimeLabels | tuple | list):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # equal to tuples, which hash differently

    def __repr__(self) -> str:
        shown = ", ".join(repr(label) for label in self[:3])
        return f"TimeLabels([{shown}{', ...' if len(self) > 3 else ''}], {len(self)} labels)"


class _LabelCollector:
    """Builds :class:`TimeLabels` row by row, joining labels into blocks as it goes."""

    _BLOCK = 4096  # labels waiting as str objects (~60 bytes each) before a join

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.pending: list[str] = []
        self.offsets = array("q", [0])
        self.end = 0

    def append(self, label: str) -> None:
        self.pending.append(label)
        self.end += len(label)
        self.offsets.append(self.end)
        if len(self.pending) == self._BLOCK:
            self.blocks.append("".join(self.pending))
            self.pending = []

    def labels(self) -> TimeLabels:
        self.blocks.append("".join(self.pending))
        text = "".join(self.blocks)
        self.blocks, self.pending = [], []
        return TimeLabels(text, self.offsets)


@dataclass(frozen=True)
class TimeSeries:
    """A whole series in memory.

    - ``values``: ``(time, features)`` float64, one column per name in ``columns``.
    - ``times``: the time labels (a tuple, or :class:`TimeLabels` from :meth:`SeriesReader.\
      read_series`), or ``None`` when no time column was read.
    """

    values: np.ndarray
    columns: tuple[str, ...]
    times: Sequence[str] | None = None

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
        for line, time, values in self._rows():
            yield SeriesRow(time, values, line)

    def _rows(self) -> Iterator[tuple[int, str | None, tuple[float, ...]]]:
        """``(line, time label, values)`` of each kept row, checked as documented above."""
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
            yield line, time, values

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

    def read_series(self, progress: bool | None = None) -> TimeSeries:
        """Read the whole file into a :class:`TimeSeries` (``values`` ``(time, columns)``).

        Rows go straight into a flat float64 buffer and the time labels into one string, so
        memory is about the values' own size (8 bytes per cell) plus the labels' characters
        and 8 bytes per row, not a Python object per row. ``progress`` counts the rows read on
        stderr (``None``: when stderr is a terminal).
        """
        self.skip_log = SkipLog(self.on_error)
        values = array("d")
        times = _LabelCollector() if self.time_column else None
        rows = 0
        bar = tqdm(unit=" rows", unit_scale=True, desc=f"reading {self.path.name}", leave=False,
                   disable=None if progress is None else not progress)
        with bar:
            for _line, time, row_values in self._rows():
                values.extend(row_values)
                if times is not None:
                    times.append(time)  # type: ignore[arg-type]
                rows += 1
                if not rows % _PROGRESS_ROWS:
                    bar.update(_PROGRESS_ROWS)
            bar.update(rows % _PROGRESS_ROWS)
        self.skip_log.report(self.path)
        if not rows:
            raise DataFormatError(self.path, None, "no data rows after the header")
        columns = tuple(self.value_columns or ())
        # frombuffer shares the array's memory: no second copy of the values
        matrix = np.frombuffer(values, dtype=np.float64).reshape(rows, len(columns))
        return TimeSeries(matrix, columns,
                          times.labels() if times is not None else None)


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
