"""English-Spanish verse pairs from two public-domain Bibles with the same versification.

King James Version (``engKJV2006eb``) and Reina-Valera 1909 (``spaRV1909eb``) both follow KJV
versification, so the verse with the same book/chapter/verse key is its translation.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path

from ..splits import draw_groups, split_by_group
from ._archives import deb_data_tar, extract_tar, import_from_archive
from ._write import write_lines
from .fetch import PinnedPackage

PACKAGES = (
    PinnedPackage("debian", "sword-text-kjv", "14.3-1",
                  "9f463f28ce665f6f528fc723179722bced880a4c5485f7a41bf742838315de57",
                  "sword-text-kjv_14.3-1_all.deb"),
    PinnedPackage("debian", "sword-text-sparv", "2.60-1",
                  "5c87f9b2bc97457e8a872f5bae7ea7ce59cb3de1dcee73e4d4740451863694cf",
                  "sword-text-sparv_2.60-1_all.deb"),
    PinnedPackage("pypi-sdist", "pysword", "0.2.8",
                  "6302f350c22f39090e2556729551fac57a4c25ceb268f90cd7fd0584b9cca4f0",
                  "pysword-0.2.8.tar.gz"),
)
MODULES = ("engKJV2006eb", "spaRV1909eb")
LICENCE = "public domain texts (KJV, Reina-Valera 1909) from Debian sword-text-kjv/-sparv"
MAX_CHARS = 100
SAMPLE_PAIRS = 2500
FRACTIONS = (0.8, 0.1, 0.1)
SEED = 0
CUT = {
    "sample": f"verse pairs whose English and Spanish both have 1..{MAX_CHARS} characters "
              f"(after removing ¶ and collapsing spaces); whole chapters drawn in a seeded "
              f"(seed {SEED}) random order until {SAMPLE_PAIRS} pairs, then split by chapter "
              f"with rnnkit.data.split_by_group({FRACTIONS}, seed={SEED}).",
    "full": f"every verse pair with both sides of 1..{MAX_CHARS} characters, split by chapter "
            f"with split_by_group({FRACTIONS}, seed={SEED}).",
}

Pair = tuple[str, str, str]  # (chapter key, english, spanish)


def _clean(text: str) -> str:
    return " ".join(text.replace("¶", " ").split())


def read_pairs(archives: tuple[Path, ...]) -> list[Pair]:
    """Every verse present in both Bibles, in canonical order."""
    kjv, sparv, pysword_sdist = archives
    root = kjv.parent / "sword-root"
    for deb, package in zip((kjv, sparv), PACKAGES[:2], strict=True):
        with deb_data_tar(deb, package.sha256) as tar:
            extract_tar(tar, root, prefix="usr/share/sword")
    import_from_archive(pysword_sdist, "pysword", PACKAGES[2].version, PACKAGES[2].sha256)
    modules = importlib.import_module("pysword.modules").SwordModules(str(root))
    modules.parse_modules()
    english, spanish = (modules.get_bible_from_module(name) for name in MODULES)
    for bible in (english, spanish):
        # pysword decompresses a verse's whole book block for every verse (quadratic in book
        # size); memoising the block per bible makes reading all verses linear.
        bible._decompressed_text = functools.lru_cache(maxsize=4)(bible._decompressed_text)
    pairs: list[Pair] = []
    for testament in english.get_structure().get_books().values():
        for book in testament:
            for chapter, verses in enumerate(book.chapter_lengths, start=1):
                keys = {"books": [book.osis_name], "chapters": [chapter],
                        "verses": list(range(1, verses + 1)), "clean": True}
                texts = zip(english.get_iter(**keys), spanish.get_iter(**keys), strict=True)
                pairs.extend((f"{book.osis_name} {chapter}", _clean(en), _clean(es))
                             for en, es in texts)
    return pairs


def build(archives: tuple[Path, ...], out_dir: Path, full: bool) -> dict[str, int]:
    """Write ``train/valid/test.tsv`` of ``english<TAB>spanish``; returns pairs per file."""
    pairs = [p for p in read_pairs(archives) if 0 < len(p[1]) <= MAX_CHARS
             and 0 < len(p[2]) <= MAX_CHARS]
    if not full:
        chosen = draw_groups([chapter for chapter, _, _ in pairs], SAMPLE_PAIRS, SEED)
        pairs = [pair for pair in pairs if pair[0] in chosen]
    split = split_by_group([chapter for chapter, _, _ in pairs], FRACTIONS, SEED)
    return {f"{name}.tsv": write_lines(out_dir / f"{name}.tsv",
                                       (f"{pairs[i][1]}\t{pairs[i][2]}" for i in indices))
            for name, indices in split.items()}
