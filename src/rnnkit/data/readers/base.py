"""The shape every reader shares: a path, an ``on_error`` policy, lazy iteration, a skip count."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Generic, TypeVar

from ._lines import OnError, SkipLog, check_on_error

RecordT = TypeVar("RecordT")


class Reader(Generic[RecordT]):
    """Iterate typed records from a file, lazily, one pass per ``iter()``.

    With ``on_error='raise'`` (default) the first malformed record raises
    :class:`~rnnkit.data.errors.DataFormatError` naming file and line. With ``on_error='skip'``
    malformed records are dropped; after a pass, :attr:`skipped` holds their number and
    :attr:`skip_log` the first few errors, and a warning is logged on ``rnnkit.data``.
    """

    def __init__(self, path: str | Path, on_error: OnError = "raise"):
        check_on_error(on_error)
        self.path = Path(path)
        self.on_error: OnError = on_error
        self.skip_log = SkipLog(on_error)
        if not self.path.is_file():
            raise FileNotFoundError(f"data file not found: {self.path}")

    @property
    def skipped(self) -> int:
        """Number of malformed records skipped in the last pass."""
        return self.skip_log.count

    def __iter__(self) -> Iterator[RecordT]:
        self.skip_log = SkipLog(self.on_error)
        yield from self._records()
        self.skip_log.report(self.path)

    def read(self) -> list[RecordT]:
        """All records as a list (one full pass)."""
        return list(self)

    def _records(self) -> Iterator[RecordT]:
        raise NotImplementedError
