"""From the ``data`` section to files on disk and readers for them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnkit.annotations import closest
from rnnkit.data import (
    ConllReader,
    LabelledTextReader,
    LongSeriesReader,
    PairReader,
    SeriesReader,
    SlashTaggedReader,
    TextReader,
    TsfReader,
)
from rnnkit.data.datasets import DATASETS, get_info, load_sample, prepare
from rnnkit.tasks.config import DataConfig
from rnnkit.tasks.errors import ConfigError

SPLITS = ("train", "valid", "test")
_TASK_FORMATS = {
    "language_model": ("text",),
    "classification": ("csv",),
    "conditional_generation": ("csv",),
    "tagging": ("word_tag", "conll", "conllu"),
    "seq2seq": ("pairs",),
    "forecasting": ("series", "long", "tsf"),
}


def dataset_defaults(name: Any) -> dict[str, Any]:
    """``data`` settings implied by a bundled dataset (its format and column names)."""
    if not isinstance(name, str) or name not in DATASETS:
        raise ConfigError(
            f"data.dataset: expected one of {', '.join(DATASETS)}, got {name!r}"
            + closest(str(name), DATASETS)
        )
    info = get_info(name)
    defaults: dict[str, Any] = {"format": info.format}
    for key in ("text_column", "label_column", "time_column"):
        if getattr(info, key):
            defaults[key] = getattr(info, key)
    if info.value_columns:
        defaults["value_columns"] = list(info.value_columns)
    return defaults


def resolve_paths(data: DataConfig) -> dict[str, Path | None]:
    """``{"train", "valid", "test"}`` → file (``None`` when absent). Explicit paths win over the
    dataset's files; a missing explicit file raises ``FileNotFoundError``."""
    paths: dict[str, Path | None] = dict.fromkeys(SPLITS)
    if data.dataset is not None:
        sample = (prepare(data.dataset, data.cache_dir) if data.full
                  else load_sample(data.dataset, data.cache_dir))
        paths.update(sample.paths)
    for split in SPLITS:
        value = getattr(data, split)
        if value is not None:
            path = Path(value).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"data.{split}: file not found: {path}")
            paths[split] = path
    if paths["train"] is None:
        raise ConfigError(
            "data.train: expected a training file or data.dataset (a bundled dataset name; "
            "see `rnnkit datasets list`), got neither"
        )
    return paths


def data_format(task: str, data: DataConfig, path: Path) -> str:
    """The file format for ``task``: ``data.format`` or guessed from the extension."""
    allowed = _TASK_FORMATS[task]
    if data.format != "auto":
        if data.format not in allowed:
            raise ConfigError(
                f"data.format: task {task} reads {' or '.join(allowed)}, got {data.format!r}"
            )
        return data.format
    if task == "tagging":
        suffix = path.suffix.lower()
        return {".conllu": "conllu", ".conll": "conll", ".tsv": "conll"}.get(suffix, "word_tag")
    if task == "forecasting":
        return _series_format(data, path)
    return allowed[0]


def _series_format(data: DataConfig, path: Path) -> str:
    """``tsf`` by extension, ``long`` when the header names ``data.id_column``, else ``series``."""
    if path.suffix.lower() == ".tsf":
        return "tsf"
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as handle:
            header = handle.readline()
    except OSError:
        return "series"  # the reader reports the missing file with its own message
    delimiter = data.delimiter or ("\t" if path.suffix.lower() in (".tsv", ".tab") else ",")
    return "long" if data.id_column in [c.strip() for c in header.split(delimiter)] else "series"


def _series_columns(data: DataConfig) -> list[str] | None:
    """The columns a forecasting reader reads: values, then every covariate (``None``: all)."""
    if data.value_columns is None:
        return None
    covariates = [*(data.past_covariates or []), *(data.future_covariates or []),
                  *(data.static_covariates or [])]
    return list(dict.fromkeys([*data.value_columns, *covariates]))


def open_reader(task: str, data: DataConfig, path: str | Path):
    """A streaming reader of ``path`` in the task's format with the configured columns."""
    path = Path(path)
    kind = data_format(task, data, path)
    if kind == "text":
        return TextReader(path, data.on_error)
    if kind == "csv":
        return LabelledTextReader(path, data.text_column, data.label_column,
                                  delimiter=data.delimiter, on_error=data.on_error)
    if kind == "word_tag":
        return SlashTaggedReader(path, on_error=data.on_error)
    if kind == "conllu":
        return ConllReader.conllu_upos(path, on_error=data.on_error)
    if kind == "conll":
        # "# " comments only: a token such as a hashtag (#photography) may start a line
        return ConllReader(path, delimiter=data.delimiter, comment_prefix="# ",
                           on_error=data.on_error)
    if kind == "pairs":
        return PairReader(path, delimiter=data.delimiter or "\t", on_error=data.on_error)
    if kind == "tsf":
        return TsfReader(path, data.on_error)
    if kind == "long":
        return LongSeriesReader(path, data.id_column, _series_columns(data), data.time_column,
                                data.delimiter, data.on_error)
    return SeriesReader(path, _series_columns(data), data.time_column, data.delimiter,
                        data.on_error)
