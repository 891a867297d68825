"""Writing dataset files: UTF-8, ``\\n`` line ends, atomically, plus a PROVENANCE.md."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8", newline="\n")
    os.replace(temporary, path)


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]],
              delimiter: str = ",") -> int:
    """Write a CSV with a header row; returns the number of data rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    write_atomic(path, buffer.getvalue())
    return count


def write_lines(path: Path, lines: Iterable[str]) -> int:
    """Write one item per line; returns the number of lines."""
    lines = list(lines)
    write_atomic(path, "".join(line + "\n" for line in lines))
    return len(lines)
