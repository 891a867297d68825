"""Fuzz targets: each takes raw bytes and either loads them or raises the documented error.

Used by the atheris harness (``fuzz/run.py``), by the regression-corpus test
(``tests/fuzz/test_corpus.py``) and by the hypothesis properties. A target returns normally
when the input loaded or was refused with the documented error; any other exception, or a
documented error that does not name the file (and a plausible line), escapes as a crash.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from rnnkit.data import (
    ConllReader,
    DataFormatError,
    LabelledTextReader,
    LongSeriesReader,
    PairReader,
    SeriesReader,
    SlashTaggedReader,
    TextReader,
    TsfReader,
    Vocab,
    read_text,
)
from rnnkit.data.readers.base import Reader
from rnnkit.data.subword import SubwordTokenizer
from rnnkit.models.registry import build_config
from rnnkit.models.serialization import read_description
from rnnkit.tasks.config import apply_overrides, config_from_dict, read_config_file

_WORKDIR = Path(tempfile.mkdtemp(prefix="rnnkit-fuzz-"))


def _write(data: bytes, name: str) -> Path:
    path = _WORKDIR / name
    path.write_bytes(data)
    return path


def _check_located(error: DataFormatError, path: Path, data: bytes) -> None:
    """A data error must start with ``path[:line]`` and point at a line the file has."""
    if not str(error).startswith(f"{path}:") or error.path != path:
        raise AssertionError(f"error does not name the file {path}: {error}")
    lines = data.count(b"\n") + 1
    if error.line is not None and not 1 <= error.line <= lines:
        raise AssertionError(f"line {error.line} outside the file's {lines} lines: {error}")


def _read_all(make_reader: Callable[[Path, str], Reader], data: bytes, name: str) -> None:
    """Read ``data`` with both ``on_error`` policies; only located DataFormatErrors may escape."""
    path = _write(data, name)
    for on_error in ("raise", "skip"):
        try:
            reader = make_reader(path, on_error)
            reader.read()
            if isinstance(reader, LongSeriesReader | TsfReader):
                reader.read_panel()
            elif isinstance(reader, SeriesReader):
                reader.read_series()
        except DataFormatError as error:
            _check_located(error, path, data)


def text(data: bytes) -> None:
    """Plain text (language models): the streaming reader and ``read_text``."""
    _read_all(lambda p, e: TextReader(p, e), data, "t.txt")
    path = _WORKDIR / "t.txt"
    try:
        read_text(path)
    except DataFormatError as error:
        _check_located(error, path, data)


def csv_text(data: bytes) -> None:
    """CSV and TSV of text and label (classification)."""
    _read_all(lambda p, e: LabelledTextReader(p, on_error=e), data, "c.csv")
    _read_all(lambda p, e: LabelledTextReader(p, on_error=e), data, "c.tsv")


def word_tag(data: bytes) -> None:
    """``word/TAG`` sentence lines."""
    _read_all(lambda p, e: SlashTaggedReader(p, on_error=e), data, "w.txt")


def conll(data: bytes) -> None:
    """CoNLL (whitespace columns, last column the tag)."""
    _read_all(lambda p, e: ConllReader(p, on_error=e), data, "c.conll")


def conllu(data: bytes) -> None:
    """CoNLL-U (FORM and UPOS)."""
    _read_all(lambda p, e: ConllReader.conllu_upos(p, on_error=e), data, "c.conllu")


def pairs(data: bytes) -> None:
    """``source<TAB>target`` lines."""
    _read_all(lambda p, e: PairReader(p, on_error=e), data, "p.tsv")


def series(data: bytes) -> None:
    """Time-series CSV, with and without a time column."""
    _read_all(lambda p, e: SeriesReader(p, on_error=e), data, "s.csv")
    _read_all(lambda p, e: SeriesReader(p, time_column="t", on_error=e), data, "s2.csv")


def long_series(data: bytes) -> None:
    """Long-format CSV (one row per series and time step), with and without a time column."""
    _read_all(lambda p, e: LongSeriesReader(p, "id", on_error=e), data, "l.csv")
    _read_all(lambda p, e: LongSeriesReader(p, "id", time_column="t", on_error=e), data,
              "l2.csv")


def tsf(data: bytes) -> None:
    """Monash ``.tsf`` (``@`` header lines, then one series per line)."""
    _read_all(lambda p, e: TsfReader(p, e), data, "s.tsf")


def _config_errors(call: Callable[[], object], path: Path | None = None) -> None:
    """Config problems are ConfigError (a ValueError) or TypeError; file errors name the file."""
    try:
        call()
    except (ValueError, TypeError) as error:
        if path is not None and not str(error).startswith(str(path)):
            raise AssertionError(f"config error does not name the file {path}: {error}") from error


def config(data: bytes) -> None:
    """A YAML and a TOML config file, then the resolved config."""
    for name in ("c.yaml", "c.toml"):
        path = _write(data, name)
        _config_errors(lambda p=path: _parse_config(p), path)


class _ResolvingError(ValueError):
    """A config error found after the file parsed (it need not name the file)."""


def _parse_config(path: Path) -> dict:
    """The parsed file; errors resolving it are re-raised prefixed with the file name, so
    ``_config_errors`` does not demand it (the error classes' own constructors take other
    arguments, so the original type is not rebuilt)."""
    raw = read_config_file(path)
    try:
        config_from_dict(raw)
    except (ValueError, TypeError) as error:
        raise _ResolvingError(f"{path}: (resolving) {error}") from error
    return raw


def overrides(data: bytes) -> None:
    """``--set section.key=value`` strings (one per line) over the default config."""
    items = data.decode("utf-8", "replace").splitlines()[:20]
    _config_errors(lambda: config_from_dict(apply_overrides({}, items)))


def vocab(data: bytes) -> None:
    """Vocabulary / tokenizer JSON as stored in ``task.json``: ``ValueError`` when malformed."""
    try:
        loaded = Vocab.from_json(data.decode("utf-8"))
    except ValueError:
        return
    if Vocab.from_json(loaded.to_json()) != loaded:
        raise AssertionError("vocabulary does not survive a JSON round trip")


def tokenizer(data: bytes) -> None:
    """A stored subword tokenizer (the tokenizers library's JSON), then encoding and decoding
    with it: ``ValueError`` when it cannot be read; a loaded one must encode and decode."""
    try:
        loaded = SubwordTokenizer.from_json(data.decode("utf-8"), "bpe")
    except ValueError:
        return
    loaded.decode(loaded.encode("a fuzzed tokenizer, ünïcode 字 and <unk>"))


def metadata(data: bytes) -> None:
    """A checkpoint's model description (``model.json``/``metadata.json``) and its config."""
    directory = _WORKDIR / "model"
    directory.mkdir(exist_ok=True)
    path = directory / "model.json"
    path.write_bytes(data)
    try:
        description = read_description(directory)
    except ValueError as error:
        if not str(error).startswith(str(path)):
            raise AssertionError(f"metadata error does not name the file: {error}") from error
        return
    try:
        build_config(description["model_type"], description["model_config"])
    except (ValueError, TypeError):
        return


TARGETS: dict[str, Callable[[bytes], None]] = {
    "text": text,
    "csv": csv_text,
    "word_tag": word_tag,
    "conll": conll,
    "conllu": conllu,
    "pairs": pairs,
    "series": series,
    "long_series": long_series,
    "tsf": tsf,
    "config": config,
    "overrides": overrides,
    "vocab": vocab,
    "tokenizer": tokenizer,
    "metadata": metadata,
}

__all__ = ["TARGETS", "json"]
