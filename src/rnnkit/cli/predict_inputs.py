"""What ``rnnkit predict`` reads: a file or stdin, in the run's own format. The task declares
the kind (:attr:`rnnkit.tasks.Task.predict_input`); this module knows files and stdin:

- ``series`` (forecasting): a series file (CSV/TSV, ``.tsf``), read by the run's reader;
- ``text_column`` (classification, conditional generation): a CSV/TSV with a header holding
  ``data.text_column`` gives that column (the label column is left out), else one text a line;
- ``source_column`` (seq2seq): the source column of ``source<TAB>target`` lines (a lone
  source is fine);
- ``conll`` (tagging): a CoNLL/CoNLL-U file gives its sentences' tokens, else one sentence a
  line;
- ``lines`` (language models): one text a line.

Stdin is named ``<stdin>`` in errors, never a temporary file, and is announced on a terminal.
"""

from __future__ import annotations

import csv
import io
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, get_args

from rnnkit.data.datasets.refs import resolve_data_path
from rnnkit.data.readers import iter_decoded_lines
from rnnkit.data.readers._lines import iter_decoded_bytes
from rnnkit.tasks.base import PredictInput
from rnnkit.tasks.run import Run

STDIN = "<stdin>"
HEADER_SUFFIXES = {".csv": ",", ".tsv": "\t"}
CONLL_SUFFIXES = (".conll", ".conllu")
INPUT_KINDS: tuple[str, ...] = get_args(PredictInput)


def is_stdin(source: str | Path) -> bool:
    return str(source) == "-"


def announce_stdin(stream: Any = None) -> None:
    """On a terminal, say that input is awaited, instead of waiting silently."""
    stdin = sys.stdin if stream is None else stream
    if hasattr(stdin, "isatty") and stdin.isatty():
        print("reading from stdin (Ctrl-D to end)", file=sys.stderr, flush=True)


def read_inputs(run: Run, source: str | Path) -> list[Any]:
    """What ``run``'s task predicts from, read from ``source`` (a path, ``dataset:NAME:SPLIT``
    or ``-`` for stdin)."""
    if is_stdin(source):
        announce_stdin()
        raw = sys.stdin.buffer.read()
        return _from_lines(run, _decoded(raw.splitlines(keepends=True), STDIN), None, raw)
    path = resolve_data_path(source, "--input")
    if not path.is_file():
        raise FileNotFoundError(f"--input: file not found: {path}")
    if run.task.predict_input == "series":
        return [run.task.read(path)]
    lines = [line for _, line in iter_decoded_lines(path, refuse_nul=True)]
    return _from_lines(run, lines, path.suffix.lower(), None)


def _decoded(raw_lines: list[bytes], name: str) -> list[str]:
    # refuse_nul: binary input is an error naming <stdin>:line, as evaluate does for a file
    return [line for _, line in iter_decoded_bytes(raw_lines, name, refuse_nul=True)]


def _from_lines(run: Run, lines: list[str], suffix: str | None, raw: bytes | None) -> list[Any]:
    """Inputs from decoded lines; ``suffix`` is the file's (``None``: stdin, detect)."""
    kind, data = run.task.predict_input, run.config.data
    if kind not in INPUT_KINDS:
        raise ValueError(f"{run.task.name}.predict_input: expected one of "
                         f"{', '.join(INPUT_KINDS)}, got {kind!r}")
    if kind == "series":
        return [_series_from_stdin(run, raw or b"")]
    if kind == "text_column":
        table = _text_column(lines, suffix, data.text_column)
        if table is not None:
            return table
    if kind == "conll" and _is_conll(lines, suffix, data.format):
        return _conll_sentences(lines, conllu=suffix == ".conllu" or data.format == "conllu")
    kept = [line for line in lines if line.strip()]
    if kind == "source_column":
        return [line.split("\t")[0] for line in kept]
    return kept


def _text_column(lines: list[str], suffix: str | None, column: str) -> list[str] | None:
    """The ``column`` of a CSV/TSV with a header (by suffix, or on stdin a first line holding
    ``column`` as a field); ``None`` when the input is plain lines."""
    if not lines:
        return None
    delimiter = HEADER_SUFFIXES.get(suffix or "")
    if suffix is None:  # stdin: a header names the column
        delimiter = next((d for d in ("\t", ",") if column in _fields(lines[0], d)), None)
    if delimiter is None:
        return None
    rows = csv.DictReader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    if column not in (rows.fieldnames or []):
        raise ValueError(f"--input: expected a header with the text column {column!r} "
                         f"(data.text_column), got {rows.fieldnames}")
    return [row[column] for row in rows if (row[column] or "").strip()]


def _fields(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter), [])


def _is_conll(lines: list[str], suffix: str | None, run_format: str) -> bool:
    if suffix is not None:
        return suffix in CONLL_SUFFIXES
    tabbed = [line for line in lines if line.strip() and not line.startswith("#")]
    return run_format in ("conll", "conllu") and bool(tabbed) and all("\t" in t for t in tabbed)


def _conll_sentences(lines: list[str], conllu: bool) -> list[str]:
    """One space-joined sentence per blank-line block; the token is the first column (the
    second, FORM, in CoNLL-U); comments and ``-DOCSTART-`` are skipped."""
    sentences, tokens = [], []
    for line in [*lines, ""]:
        if not line.strip():
            if tokens:
                sentences.append(" ".join(tokens))
            tokens = []
            continue
        columns = line.split("\t")
        if line.startswith("# ") or columns[0] == "-DOCSTART-":
            continue
        if conllu and ("-" in columns[0] or "." in columns[0]):
            continue  # multi-word ranges and empty nodes are not tokens
        tokens.append(columns[1] if conllu and len(columns) > 1 else columns[0])
    return sentences


def _series_from_stdin(run: Run, raw: bytes) -> Any:
    """A series read from stdin by the run's reader; errors name ``<stdin>``, not the
    temporary file the reader needs."""
    with _named_stdin(raw, ".csv") as path:
        try:
            return run.task.read(path)
        except (ValueError, FileNotFoundError) as error:
            raise ValueError(str(error).replace(str(path), STDIN)) from None


@contextmanager
def _named_stdin(raw: bytes, suffix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="rnnkit-stdin-") as directory:
        path = Path(directory) / f"stdin{suffix}"
        path.write_bytes(raw)
        yield path
