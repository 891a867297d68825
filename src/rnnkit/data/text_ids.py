"""A large text file to token counts and compact token ids, in bounded memory.

The file is read in blocks of ``block_bytes`` and decoded incrementally, so neither a 2 GB
file nor a single 500 MB line is ever held as one Python string. Ids are stored in the
smallest integer type that holds the vocabulary (``uint8`` up to 256 tokens, ``int16`` up to
32,768, else ``int32``): a char-level text costs one byte per character. Peak memory while
encoding is about twice the ids (the blocks' arrays, then their concatenation) plus one block.

Errors are those of :func:`rnnkit.data.readers.iter_decoded_lines`: invalid UTF-8 and NUL
bytes name the file, line and byte offset.
"""

from __future__ import annotations

import codecs
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .errors import DataFormatError
from .readers._lines import iter_decoded_lines
from .vocab import UNK, Vocab

BLOCK_BYTES = 1 << 22  # 4 MiB of file per block (its working arrays take ~10x that)
_BOM = "\ufeff"


def id_dtype(vocab_size: int) -> np.dtype:
    """The smallest signed-safe integer type for ids below ``vocab_size`` (torch has no
    ``uint16``/``uint32`` arithmetic, so those are skipped)."""
    if vocab_size <= 256:
        return np.dtype(np.uint8)
    if vocab_size <= 1 << 15:
        return np.dtype(np.int16)
    return np.dtype(np.int32)


def _locate_bad_bytes(path: Path) -> DataFormatError:
    """The located error for a file the block decoder refused (slow path, errors only)."""
    for _ in iter_decoded_lines(path, refuse_nul=True):  # raises the error, located
        pass
    return DataFormatError(path, None, "not valid UTF-8 (convert the file to UTF-8)")


def iter_text_blocks(path: str | Path, block_bytes: int = BLOCK_BYTES,
                     progress: bool | None = None) -> Iterator[str]:
    """Decoded blocks of ``path`` (UTF-8, a leading BOM dropped), about ``block_bytes`` each.

    Raises :class:`DataFormatError` naming file and line for invalid UTF-8 or a NUL byte, and
    for an empty file. ``progress`` shows a byte progress bar on stderr (``None``: when stderr
    is a terminal)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    size = path.stat().st_size
    if size == 0:
        raise DataFormatError(path, None, "file is empty")
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    bar = tqdm(total=size, unit="B", unit_scale=True, desc=f"reading {path.name}",
               disable=None if progress is None else not progress, leave=False)
    first = True
    with path.open("rb") as handle, bar:
        while True:
            block = handle.read(block_bytes)
            final = not block
            try:
                text = decoder.decode(block, final=final)
            except UnicodeDecodeError:
                raise _locate_bad_bytes(path) from None
            if "\x00" in text:
                raise _locate_bad_bytes(path)
            if first and text.startswith(_BOM):
                text = text[1:]
            first = first and not text
            bar.update(len(block))
            if text:
                yield text
            if final:
                return


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def count_chars(blocks: Iterator[str]) -> Counter[str]:
    """Character counts over ``blocks``, in order of first appearance (as ``Vocab.build``)."""
    counts: Counter[str] = Counter()
    for text in blocks:
        points = _code_points(text)
        per_point = np.bincount(points)
        new = [int(p) for p in np.flatnonzero(per_point) if chr(p) not in counts]
        # Characters first met in this block enter in the order they appear in it.
        new.sort(key=lambda p: int(np.argmax(points == p)))
        for point in new:
            counts[chr(point)] = 0
        for point in np.flatnonzero(per_point):
            counts[chr(point)] += int(per_point[point])
    return counts


def encode_chars(blocks: Iterator[str], vocab: Vocab, capacity: int | None = None) -> np.ndarray:
    """Ids of every character of ``blocks`` (unknown ones as ``<unk>``), compact dtype.

    ``capacity``: an upper bound of the number of characters (a file's size in bytes), so the
    ids are written into one buffer instead of being joined from blocks at the end.
    """
    dtype, unk = id_dtype(len(vocab)), vocab.stoi.get(UNK, 0)

    def ids() -> Iterator[np.ndarray]:
        for text in blocks:
            points = _code_points(text)
            table = np.full(int(points.max()) + 1, unk, dtype=dtype)  # code point -> id
            for token, index in vocab.stoi.items():
                if len(token) == 1 and ord(token) < len(table):
                    table[ord(token)] = index
            yield table[points]
    return collect(ids(), dtype, capacity)


def collect(parts: Iterator[np.ndarray], dtype: np.dtype, capacity: int | None) -> np.ndarray:
    """``parts`` joined into one 1-D array of ``dtype``.

    With ``capacity`` (an upper bound of the total length) they are written into one buffer of
    that size and a view of its filled prefix is returned: the operating system commits only
    the pages written, so the peak is the ids once, not the blocks plus their concatenation.
    Without it, or if the bound was wrong, the parts are concatenated.
    """
    if capacity is None:
        chunks = list(parts)
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype)
    buffer, filled = np.empty(capacity, dtype), 0
    for part in parts:
        if filled + len(part) > capacity:  # the bound was wrong: fall back to joining
            rest = [buffer[:filled], part, *parts]
            return collect(iter(rest), dtype, None)
        buffer[filled:filled + len(part)] = part
        filled += len(part)
    return buffer[:filled]


def word_pieces(blocks: Iterator[str], encode_line: Callable[[str], list[str]],
                eos: str) -> Iterator[list[str]]:
    """Tokens of whole lines (each followed by ``eos``) as blocks complete them. A line longer
    than a block is cut at whitespace and its parts encoded without ``eos``."""
    carry = ""
    for text in blocks:
        text = carry + text
        cut = text.rfind("\n") + 1
        body, carry = text[:cut], text[cut:]
        tokens = [t for line in body.splitlines() for t in [*encode_line(line), eos]]
        if len(carry) > BLOCK_BYTES:  # one very long line: emit all but its last word
            space = max(carry.rfind(" "), carry.rfind("\t"))
            if space > 0:
                tokens += encode_line(carry[:space])
                carry = carry[space:]
        yield tokens
    if carry:
        yield [*encode_line(carry), eos]


def encode_tokens(pieces: Iterator[list[str]], vocab: Vocab) -> np.ndarray:
    """Ids of token lists in compact dtype (unknown tokens as ``<unk>``)."""
    dtype = id_dtype(len(vocab))
    parts = [np.asarray(vocab.encode(tokens), dtype=dtype) for tokens in pieces]
    return np.concatenate(parts) if parts else np.zeros(0, dtype)

