"""The Monash forecasting archive's ``.tsf`` format, read without pandas.

A header of ``@`` lines (``@relation``, ``@attribute NAME TYPE``, ``@frequency``, ``@horizon``,
``@missing``, ``@equallength``), ``#`` comments, then ``@data`` and one series per line::

    T1:2015-01-01 00-00-00:1,2,3,4

(the attributes in declared order, then the comma-separated values; ``?`` marks a missing
value). A ``numeric`` attribute becomes a column repeated over the series' steps, so it can
serve as a static covariate; the first ``string`` attribute (``series_name``) names the series.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataFormatError
from ._lines import OnError, iter_decoded_lines
from .base import Reader
from .panel import NamedSeries

ATTRIBUTE_TYPES = ("string", "numeric", "date")


@dataclass
class TsfHeader:
    """What the ``@`` lines declared; ``attributes`` is ``[(name, type), ...]`` in order."""

    attributes: list[tuple[str, str]] = field(default_factory=list)
    frequency: str | None = None
    horizon: int | None = None
    missing: bool = False


class TsfReader(Reader[NamedSeries]):
    """Series of a ``.tsf`` file; :attr:`header` is filled by the first pass."""

    def __init__(self, path: str | Path, on_error: OnError = "raise"):
        super().__init__(path, on_error)
        self.header = TsfHeader()

    def _records(self) -> Iterator[NamedSeries]:
        self.header = TsfHeader()
        in_data = False
        for line, text in iter_decoded_lines(self.path, self.skip_log):
            text = text.strip()
            if not text or text.startswith("#"):
                continue
            if not in_data:
                in_data = self._header_line(text, line)
                continue
            try:
                yield self._series(text, line)
            except DataFormatError as error:
                self.skip_log.handle(error)
        if not in_data:
            raise DataFormatError(self.path, None, "no @data line: not a .tsf file")

    def _header_line(self, text: str, line: int) -> bool:
        """Record one ``@`` line; ``True`` at ``@data``."""
        keyword, _, rest = text.partition(" ")
        keyword, rest = keyword.lower(), rest.strip()
        if keyword == "@data":
            return True
        if keyword == "@attribute":
            parts = rest.split()
            if len(parts) != 2 or parts[1].lower() not in ATTRIBUTE_TYPES:
                raise DataFormatError(self.path, line, f"expected '@attribute NAME TYPE' with "
                                      f"TYPE one of {ATTRIBUTE_TYPES}, got {text!r}")
            self.header.attributes.append((parts[0], parts[1].lower()))
        elif keyword == "@frequency":
            self.header.frequency = rest
        elif keyword == "@horizon":
            if not rest.isdigit():
                raise DataFormatError(self.path, line, f"@horizon: expected a whole number, "
                                                       f"got {rest!r}")
            self.header.horizon = int(rest)
        elif keyword == "@missing":
            self.header.missing = rest.lower() == "true"
        elif keyword not in ("@relation", "@equallength"):
            raise DataFormatError(self.path, line, f"expected a header line (@relation, "
                                  f"@attribute, @frequency, @horizon, @missing, @equallength, "
                                  f"@data) or a # comment, got {text[:60]!r}")
        return False

    def _series(self, text: str, line: int) -> NamedSeries:
        attributes = self.header.attributes
        fields = text.split(":", len(attributes))
        if len(fields) != len(attributes) + 1:
            raise DataFormatError(self.path, line, f"expected {len(attributes)} attribute(s) "
                                  f"and the values, ':'-separated, got {len(fields)} field(s)")
        values = [self._value(v, k, line) for k, v in enumerate(fields[-1].split(","))]
        numeric = [(name, self._value(fields[i], name, line))
                   for i, (name, kind) in enumerate(attributes) if kind == "numeric"]
        names = [fields[i].strip() for i, (_, kind) in enumerate(attributes) if kind == "string"]
        matrix = np.column_stack([np.asarray(values)] + [np.full(len(values), v)
                                                         for _, v in numeric])
        return NamedSeries(names[0] if names else f"T{line}", matrix,
                           ("value", *(name for name, _ in numeric)), None, line)

    def _value(self, text: str, where: int | str, line: int) -> float:
        text = text.strip()
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            what = f"value {where + 1}" if isinstance(where, int) else f"attribute {where!r}"
            hint = " (missing; fill gaps before reading)" if text == "?" else ""
            raise DataFormatError(self.path, line, f"{what}: expected a finite number, got "
                                                   f"{text!r}{hint}")
        return value

    def read_panel(self) -> list[NamedSeries]:
        """Every series of the file (at least one)."""
        series = self.read()
        if not series:
            raise DataFormatError(self.path, None, "no series after @data")
        return series
