"""Line-level reading shared by every reader: lazy UTF-8 decoding, located errors, skip mode."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import DataFormatError

logger = logging.getLogger("rnnkit.data")

OnError = Literal["raise", "skip"]
_UTF8_BOM = b"\xef\xbb\xbf"


def check_on_error(on_error: str) -> None:
    """Reject an ``on_error`` value other than ``'raise'`` or ``'skip'``."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")


@dataclass
class SkipLog:
    """Counts the malformed records a reader skipped when ``on_error='skip'``.

    ``errors`` keeps the first ``keep`` errors so they can be shown to the user.
    """

    on_error: OnError = "raise"
    count: int = 0
    errors: list[DataFormatError] = field(default_factory=list)
    keep: int = 10

    def handle(self, error: DataFormatError) -> None:
        """Raise ``error`` in raise mode; otherwise record it and carry on."""
        if self.on_error == "raise":
            raise error
        self.count += 1
        if len(self.errors) < self.keep:
            self.errors.append(error)

    def report(self, path: str | Path) -> None:
        """Log a warning with the number of skipped records, if any, once per process for the
        same file and skips (a task reads its training file more than once)."""
        if not self.count:
            return
        first = self.errors[0]
        key = (str(Path(path).resolve()), self.count, str(first))
        if key in _REPORTED:
            return
        if len(_REPORTED) >= _REPORTED_LIMIT:  # a long-lived process reading many files
            _REPORTED.clear()
        _REPORTED.add(key)
        logger.warning("%s: skipped %d malformed record(s); first: %s", path, self.count, first)


_REPORTED: set[tuple[str, int, str]] = set()  # skip notices already shown by this process
_REPORTED_LIMIT = 1024


def iter_decoded_lines(
    path: str | Path, skips: SkipLog | None = None, keepends: bool = False,
    refuse_nul: bool = False,
) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each line of a UTF-8 file, reading lazily.

    Raises :class:`DataFormatError` for an empty file, and for bytes that are not UTF-8 (naming
    the line and the byte offset in the file) unless ``skips`` is in skip mode, which then drops
    that line. A leading byte-order mark is dropped; line ends are stripped unless ``keepends``.
    """
    skips = skips if skips is not None else SkipLog()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    if path.stat().st_size == 0:
        raise DataFormatError(path, None, "file is empty")
    with path.open("rb") as handle:
        yield from iter_decoded_bytes(handle, path, skips, keepends, refuse_nul)


def iter_decoded_bytes(
    raw_lines: Iterable[bytes], path: str | Path, skips: SkipLog | None = None,
    keepends: bool = False, refuse_nul: bool = False,
) -> Iterator[tuple[int, str]]:
    """:func:`iter_decoded_lines` over lines of bytes already open (a file, ``stdin``);
    ``path`` names them in errors (e.g. ``<stdin>``). Invalid UTF-8 is an error naming the line
    and byte offset; so is a NUL byte (binary or UTF-16 data) with ``refuse_nul`` (plain text
    for language models and ``predict`` input; CSV fields may hold NULs)."""
    skips = skips if skips is not None else SkipLog()
    offset = 0
    for number, raw in enumerate(raw_lines, start=1):
        start = len(_UTF8_BOM) if number == 1 and raw.startswith(_UTF8_BOM) else 0
        try:
            text = raw[start:].decode("utf-8")
        except UnicodeDecodeError as error:
            byte = offset + start + error.start
            offset += len(raw)
            skips.handle(DataFormatError(
                path, number, f"invalid UTF-8 byte 0x{raw[start + error.start]:02x} at byte "
                f"offset {byte} (convert the file to UTF-8)"
            ))
            continue
        nul = raw.find(b"\x00", start) if refuse_nul else -1
        if nul >= 0:
            byte = offset + nul
            offset += len(raw)
            skips.handle(DataFormatError(
                path, number, f"NUL byte at byte offset {byte} (binary or UTF-16 data; "
                "convert it to UTF-8 text)"))
            continue
        offset += len(raw)
        yield number, text if keepends else text.rstrip("\r\n")
