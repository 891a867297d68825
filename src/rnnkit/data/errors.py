"""Errors raised by the data pipeline."""

from __future__ import annotations

from pathlib import Path

from rnnkit.errors import RnnkitError


class DataFormatError(RnnkitError, ValueError):
    """A data file that cannot be read as the expected format.

    ``path`` is the file and ``line`` the 1-based line number of the problem, or ``None`` when the
    problem concerns the whole file (e.g. it is empty). The message starts with ``path:line:`` so
    that editors and terminals can jump to it.
    """

    def __init__(self, path: str | Path, line: int | None, reason: str):
        self.path = Path(path)
        self.line = line
        self.reason = reason
        location = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{location}: {reason}")


class RegistryUnavailableError(RnnkitError, RuntimeError):
    """A pinned package could not be fetched from its registry (offline, or the client failed)."""


class ChecksumMismatchError(RnnkitError, RuntimeError):
    """A fetched package's sha256 differs from the pinned one."""
