"""CSV/TSV of text and label for classification."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataFormatError
from ._lines import OnError, iter_decoded_lines
from .base import Reader


@dataclass(frozen=True)
class LabelledText:
    """A text with its class label; ``group`` (e.g. the movie) when a group column is read."""

    text: str
    label: str
    line: int
    group: str | None = None


def default_delimiter(path: Path) -> str:
    """Tab for ``.tsv``/``.tab`` files, comma otherwise."""
    return "\t" if path.suffix.lower() in (".tsv", ".tab") else ","


class _NumberedLines:
    """Feeds decoded lines to ``csv.reader`` while remembering physical line numbers.

    ``csv.reader.line_num`` counts the lines it was given, which drifts from the file once a
    non-UTF-8 line has been skipped; this keeps the file's own numbering.
    """

    def __init__(self, numbered: Iterator[tuple[int, str]]):
        self.numbered = numbered
        self.first: int | None = None
        self.line = 0
        self.record_start = 0  # first line of the record csv.reader is reading
        self._at_boundary = True

    def __iter__(self) -> Iterator[str]:
        for number, text in self.numbered:
            self.first = number if self.first is None else self.first
            if self._at_boundary:
                self.record_start, self._at_boundary = number, False
            self.line = number
            yield text

    def end_record(self) -> None:
        """Called after each record (or error): the next line csv reads starts a new one."""
        self._at_boundary = True


class CsvRows:
    """Rows of a delimited file with a header, as ``(line, {column: value})``.

    ``line`` is the physical line where the record ends (a quoted field may span lines).
    """

    def __init__(self, reader: Reader, delimiter: str | None, required: list[str]):
        self.reader = reader
        self.delimiter = delimiter or default_delimiter(reader.path)
        self.required = required

    def __iter__(self) -> Iterator[tuple[int, dict[str, str]]]:
        path = self.reader.path
        lines = _NumberedLines(iter_decoded_lines(path, self.reader.skip_log, True))
        self.lines = lines
        rows = csv.reader(lines, delimiter=self.delimiter)
        header = self._header(rows, lines)
        while True:
            lines.end_record()
            try:
                row = next(rows)
            except StopIteration:
                return
            except csv.Error as error:
                self.reader.skip_log.handle(self._error(lines, str(error)))
                continue
            if not row:  # a blank line is not a record
                continue
            if len(row) != len(header):
                self.reader.skip_log.handle(self._error(
                    lines, f"expected {len(header)} fields ({self.delimiter!r}-separated), "
                    f"got {len(row)}",
                ))
                continue
            yield lines.line, dict(zip(header, row, strict=True))

    @property
    def record_start(self) -> int:
        """The first physical line of the record last yielded (its end is the yielded line)."""
        return self.lines.record_start

    def _error(self, lines: _NumberedLines, reason: str) -> DataFormatError:
        """A malformed record, located where it starts: a record running over several lines
        most often means a quote opened there is never closed, and csv only notices lines
        later."""
        if lines.record_start == lines.line:
            return DataFormatError(self.reader.path, lines.line, reason)
        return DataFormatError(
            self.reader.path, lines.record_start, f"{reason} in the record running from this "
            f"line to line {lines.line} (is a quote opened on this line not closed?)",
        )

    def _header(self, rows, lines: _NumberedLines) -> list[str]:
        path = self.reader.path
        try:
            header = [name.strip() for name in next(rows)]
        except (StopIteration, csv.Error) as error:
            raise DataFormatError(path, 1, f"cannot read the header row: {error}") from None
        if lines.first != 1:  # skip mode dropped a non-UTF-8 header: nothing can be trusted
            raise DataFormatError(path, 1, "the header row is not valid UTF-8")
        missing = [name for name in self.required if name not in header]
        if missing:
            raise DataFormatError(
                path, 1, f"missing column(s) {missing}; the header has {header} "
                f"(delimiter {self.delimiter!r}; set the column names to match)",
            )
        return header


class LabelledTextReader(Reader[LabelledText]):
    """Classification records from a CSV/TSV file with a header row.

    Columns are chosen by name (``text_column``, ``label_column``, optional ``group_column``);
    other columns are ignored. An empty text or label is a malformed record.
    """

    def __init__(
        self,
        path: str | Path,
        text_column: str = "text",
        label_column: str = "label",
        group_column: str | None = None,
        delimiter: str | None = None,
        on_error: OnError = "raise",
    ):
        super().__init__(path, on_error)
        self.text_column = text_column
        self.label_column = label_column
        self.group_column = group_column
        required = [text_column, label_column] + ([group_column] if group_column else [])
        self.rows = CsvRows(self, delimiter, required)

    def _records(self) -> Iterator[LabelledText]:
        for line, row in self.rows:
            text, label = row[self.text_column].strip(), row[self.label_column].strip()
            empty = [name for name, value in ((self.text_column, text),
                                              (self.label_column, label)) if not value]
            if empty:
                self.skip_log.handle(DataFormatError(self.path, line, f"empty {empty[0]!r} field"))
                continue
            group = row[self.group_column] if self.group_column else None
            yield LabelledText(text, label, line, group)
