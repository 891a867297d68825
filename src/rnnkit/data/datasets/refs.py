"""``dataset:NAME:SPLIT``: a bundled sample's file named where a path is expected.

``rnnkit evaluate RUN --data dataset:dates:test`` and ``predict --input dataset:...`` take it,
so a user need not know where the package put its files (``rnnkit datasets path NAME`` prints
them too).
"""

from __future__ import annotations

from pathlib import Path

from . import get_info, load_sample

PREFIX = "dataset:"


def dataset_file(name: str, split: str = "test") -> Path:
    """The bundled sample's ``split`` file of dataset ``name``; a split the sample lacks is
    a ``ValueError`` naming the ones it has."""
    info = get_info(name)
    sample = load_sample(info.name)
    if split not in sample.paths:
        raise ValueError(f"dataset {name!r} has no {split!r} split in its bundled sample; "
                         f"expected one of {', '.join(sample.paths)}, got {split!r}")
    return sample.paths[split]


def resolve_data_path(text: str | Path, option: str = "--data") -> Path:
    """``text`` as a path, where ``dataset:NAME[:SPLIT]`` (split default ``test``) names a
    bundled sample's file."""
    text = str(text)
    if not text.startswith(PREFIX):
        return Path(text)
    name, _, split = text[len(PREFIX):].partition(":")
    if not name:
        raise ValueError(f"{option}: expected dataset:NAME:SPLIT (e.g. dataset:dates:test), "
                         f"got {text!r}")
    return dataset_file(name, split or "test")
