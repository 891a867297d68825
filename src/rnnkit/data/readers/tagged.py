"""Token-level tagging data: CoNLL / CoNLL-U columns and ``word/TAG`` sentence lines."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataFormatError
from ._lines import OnError, iter_decoded_lines
from .base import Reader


@dataclass(frozen=True)
class TaggedSentence:
    """A sentence as parallel word and tag tuples; ``line`` is where it starts in the file."""

    words: tuple[str, ...]
    tags: tuple[str, ...]
    line: int


class ConllReader(Reader[TaggedSentence]):
    """Token-per-line files: one token per line, columns split by ``delimiter``.

    Blank lines end sentences; lines starting with ``comment_prefix`` and ``-DOCSTART-`` lines
    are ignored. Columns are 0-based (negative counts from the end). With ``conllu=True`` the
    first column is a CoNLL-U ID: multi-word token ranges (``3-4``) and empty nodes (``5.1``)
    are skipped, and a non-numeric ID is malformed. A malformed line makes its whole sentence
    malformed (skipped as one record in skip mode).
    """

    def __init__(
        self,
        path: str | Path,
        word_column: int = 0,
        tag_column: int = -1,
        delimiter: str | None = None,
        comment_prefix: str | None = "#",
        conllu: bool = False,
        on_error: OnError = "raise",
    ):
        super().__init__(path, on_error)
        self.word_column = word_column
        self.tag_column = tag_column
        self.delimiter = delimiter
        self.comment_prefix = comment_prefix
        self.conllu = conllu

    @classmethod
    def conllu_upos(cls, path: str | Path, on_error: OnError = "raise") -> ConllReader:
        """A reader for CoNLL-U files taking FORM (column 1) and UPOS (column 3)."""
        return cls(path, word_column=1, tag_column=3, delimiter="\t", conllu=True,
                   on_error=on_error)

    def _records(self) -> Iterator[TaggedSentence]:
        words: list[str] = []
        tags: list[str] = []
        start, broken = 0, False
        for number, text in iter_decoded_lines(self.path, self.skip_log):
            if not text.strip():
                if words and not broken:
                    yield TaggedSentence(tuple(words), tuple(tags), start)
                words, tags, broken = [], [], False
                continue
            if self._ignored(text):
                continue
            if not words and not broken:
                start = number
            try:
                token = self._token(text, number)
            except DataFormatError as error:
                broken = True
                self.skip_log.handle(error)
                continue
            if token is not None:
                words.append(token[0])
                tags.append(token[1])
        if words and not broken:
            yield TaggedSentence(tuple(words), tuple(tags), start)

    def _ignored(self, text: str) -> bool:
        if self.comment_prefix and text.startswith(self.comment_prefix):
            return True
        return text.startswith("-DOCSTART-")

    def _token(self, text: str, number: int) -> tuple[str, str] | None:
        fields = text.split(self.delimiter) if self.delimiter else text.split()
        needed = max(_width(self.word_column), _width(self.tag_column))
        if len(fields) < needed:
            raise DataFormatError(
                self.path, number, f"expected at least {needed} columns, got {len(fields)}: "
                f"{text[:60]!r}",
            )
        if self.conllu:
            token_id = fields[0]
            if "-" in token_id or "." in token_id:
                return None
            if not token_id.isdigit():
                raise DataFormatError(self.path, number, f"CoNLL-U ID {token_id!r} is not a number")
        word, tag = fields[self.word_column].strip(), fields[self.tag_column].strip()
        if not word or not tag:
            raise DataFormatError(self.path, number, "empty word or tag column")
        return word, tag


def _width(column: int) -> int:
    """How many columns a line needs for ``column`` (negative indices count from the end)."""
    return column + 1 if column >= 0 else -column


class SlashTaggedReader(Reader[TaggedSentence]):
    """One sentence per line of whitespace-separated ``word/TAG`` tokens (Brown-corpus style).

    The tag follows the last ``separator`` so words may contain it (``1/2/CD``). Blank lines
    are ignored.
    """

    def __init__(self, path: str | Path, separator: str = "/", on_error: OnError = "raise"):
        super().__init__(path, on_error)
        if not separator:
            raise ValueError("separator must be a non-empty string, got ''")
        self.separator = separator

    def _records(self) -> Iterator[TaggedSentence]:
        for number, text in iter_decoded_lines(self.path, self.skip_log):
            if not text.strip():
                continue
            try:
                words, tags = self.parse_line(text, number)
            except DataFormatError as error:
                self.skip_log.handle(error)
                continue
            yield TaggedSentence(words, tags, number)

    def parse_line(self, text: str, number: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Split one sentence line into words and tags."""
        words, tags = [], []
        for position, token in enumerate(text.split(), start=1):
            word, separator, tag = token.rpartition(self.separator)
            if not separator or not word or not tag:
                raise DataFormatError(
                    self.path, number,
                    f"token {position} {token!r} is not word{self.separator}TAG",
                )
            words.append(word)
            tags.append(tag)
        return tuple(words), tuple(tags)
