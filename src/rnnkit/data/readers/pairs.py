"""Source/target pairs for sequence-to-sequence tasks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataFormatError
from ._lines import OnError, iter_decoded_lines
from .base import Reader


@dataclass(frozen=True)
class TextPair:
    """A source text, its target text and the line they came from."""

    source: str
    target: str
    line: int


class PairReader(Reader[TextPair]):
    """Lines of ``source<TAB>target`` (no header, no quoting: tabs cannot occur in the texts).

    Extra columns are allowed and ignored when ``source_column``/``target_column`` pick two of
    them. Blank lines are ignored; an empty source or target is malformed.
    """

    def __init__(
        self,
        path: str | Path,
        delimiter: str = "\t",
        source_column: int = 0,
        target_column: int = 1,
        on_error: OnError = "raise",
    ):
        super().__init__(path, on_error)
        self.delimiter = delimiter
        self.source_column = source_column
        self.target_column = target_column

    def _records(self) -> Iterator[TextPair]:
        needed = max(self.source_column, self.target_column) + 1
        for number, text in iter_decoded_lines(self.path, self.skip_log):
            if not text.strip():
                continue
            fields = text.split(self.delimiter)
            if len(fields) < needed:
                self.skip_log.handle(DataFormatError(
                    self.path, number,
                    f"expected {needed} {self.delimiter!r}-separated fields, got {len(fields)}",
                ))
                continue
            source = fields[self.source_column].strip()
            target = fields[self.target_column].strip()
            if not source or not target:
                side = "source" if not source else "target"
                self.skip_log.handle(DataFormatError(self.path, number, f"empty {side} field"))
                continue
            yield TextPair(source, target, number)
