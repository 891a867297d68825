"""Date normalisation pairs: a date written out in one of several languages -> ISO 8601.

Sources come from CLDR formats via the pinned ``babel`` wheel, so the sample is real locale
data and fully reproducible from its seed.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ._archives import import_from_archive
from ._write import write_lines
from .fetch import PinnedPackage

PACKAGE = PinnedPackage(
    "pypi", "babel", "2.17.0",
    "4d0b53093fdfb4b21c92b5213dba5a1b23885afa8383709427046b21c366e5f2",
    "babel-2.17.0-py3-none-any.whl",
)
LICENCE = "generated from CLDR locale data in babel 2.17.0 (BSD-3-Clause; CLDR Unicode licence)"
LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "pt_BR", "nl_NL")
FORMATS = ("full", "long", "medium")
FIRST_DAY, LAST_DAY = dt.date(1950, 1, 1), dt.date(2049, 12, 31)
SIZES = {"sample": {"train": 5000, "valid": 500, "test": 500},
         "full": {"train": 50000, "valid": 5000, "test": 5000}}
SEED = 0
CUT = {
    kind: f"{sizes['train']}/{sizes['valid']}/{sizes['test']} pairs; date uniform in "
          f"{FIRST_DAY}..{LAST_DAY}, locale uniform in {', '.join(LOCALES)}, babel format uniform "
          f"in {', '.join(FORMATS)}; seeded generator [{SEED}, split]; a source already used "
          "in an earlier split is redrawn so splits never share a source; no-break spaces "
          "written as spaces."
    for kind, sizes in SIZES.items()
}
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " "})


def load_format_date(archive: Path) -> Callable[..., str]:
    """``babel.dates.format_date`` from the pinned wheel (extracted next to it on first use)."""
    import_from_archive(archive, "babel", PACKAGE.version, PACKAGE.sha256)
    return importlib.import_module("babel.dates").format_date


def generate_pairs(format_date: Callable[..., str], count: int, rng: np.random.Generator,
                   seen: set[str]) -> list[tuple[str, str]]:
    """``count`` (written date, ISO date) pairs whose sources are not in ``seen`` (updated)."""
    span = (LAST_DAY - FIRST_DAY).days + 1
    pairs: list[tuple[str, str]] = []
    while len(pairs) < count:
        day = FIRST_DAY + dt.timedelta(days=int(rng.integers(span)))
        locale = LOCALES[int(rng.integers(len(LOCALES)))]
        style = FORMATS[int(rng.integers(len(FORMATS)))]
        source = format_date(day, format=style, locale=locale).translate(_SPACES)
        if source not in seen:
            seen.add(source)
            pairs.append((source, day.isoformat()))
    return pairs


def build(archives: tuple[Path, ...], out_dir: Path, full: bool) -> dict[str, int]:
    """Write ``train/valid/test.tsv`` of ``source<TAB>target``; returns pairs per file."""
    format_date = load_format_date(archives[0])
    seen: set[str] = set()
    counts = {}
    for index, (split, size) in enumerate(SIZES["full" if full else "sample"].items()):
        pairs = generate_pairs(format_date, size, np.random.default_rng([SEED, index]), seen)
        counts[f"{split}.tsv"] = write_lines(out_dir / f"{split}.tsv",
                                             (f"{s}\t{t}" for s, t in pairs))
    return counts
