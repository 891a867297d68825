"""Pretrained word vectors in the standard text formats: word2vec/fastText ``.vec`` (a first
line ``count dimension``) and GloVe (no header): one word and its numbers per line."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DataFormatError


def read_vectors(path: str | Path, lowercase: bool = False) -> tuple[list[str], np.ndarray]:
    """Words (in file order, first occurrence kept) and their vectors ``(words, dim)`` float32.

    With ``lowercase`` words are folded and the first vector of each folded word is kept. A
    line with the wrong number of values or a value that is not a number raises
    :class:`~rnnkit.data.errors.DataFormatError` naming ``path:line``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained vectors: file not found: {path}")
    words: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    dimension = None
    with path.open(encoding="utf-8", errors="strict") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.rstrip("\n").rstrip(" ").split(" ")
            if number == 1 and len(fields) == 2 and all(f.isdigit() for f in fields):
                dimension = int(fields[1])  # word2vec/fastText header: count dimension
                continue
            if not line.strip():
                continue
            if dimension is None:
                dimension = len(fields) - 1
            if len(fields) != dimension + 1 or dimension < 1:
                raise DataFormatError(path, number, f"expected a word and {dimension} numbers, "
                                      f"got {len(fields) - 1} values")
            try:
                vector = np.asarray(fields[1:], dtype=np.float32)
            except ValueError:
                raise DataFormatError(path, number, f"the values of {fields[0]!r} are not all "
                                      "numbers") from None
            if not np.isfinite(vector).all():
                raise DataFormatError(path, number, f"the vector of {fields[0]!r} is not finite")
            word = fields[0].lower() if lowercase else fields[0]
            if word not in seen:
                seen.add(word)
                words.append(word)
                rows.append(vector)
    if not rows:
        raise DataFormatError(path, None, "no word vectors in the file")
    return words, np.stack(rows)
