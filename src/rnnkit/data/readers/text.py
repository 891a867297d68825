"""Plain text for language modelling."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataFormatError
from ._lines import iter_decoded_lines
from .base import Reader


@dataclass(frozen=True)
class TextLine:
    """One line of a text file (without its line end) and its 1-based line number."""

    text: str
    line: int


class TextReader(Reader[TextLine]):
    """Lines of a UTF-8 text file, read lazily. Blank lines are kept (they matter to a LM)."""

    def _records(self) -> Iterator[TextLine]:
        for number, text in iter_decoded_lines(self.path, self.skip_log):
            yield TextLine(text, number)


def read_text(path: str | Path) -> str:
    """The whole file as one string with its line ends, after checking it is non-empty UTF-8."""
    text = "".join(line for _, line in iter_decoded_lines(path, keepends=True))
    if not text.strip():
        raise DataFormatError(path, None, "file holds only whitespace")
    return text
