"""Brown corpus tags -> the 12 universal part-of-speech tags (Petrov, Das & McDonald 2012).

Written from the Brown tagset definitions (Francis & Kučera's manual). Raw Brown tags carry
modifiers that do not change the part of speech: ``-hl`` (headline), ``-tl`` (title), ``-nc``
(cited word), ``$`` (possessive), ``*`` (negated, e.g. ``doesn't``/``doz*``). ``fw-`` marks a
foreign word (-> ``X``). Contractions join two tags with ``+`` (``it's``/``pps+bez``); the
token is tagged by its first part, as a single token must get a single tag.
"""

from __future__ import annotations

UNIVERSAL_TAGS = ("ADJ", "ADP", "ADV", "CONJ", "DET", "NOUN", "NUM", "PRON", "PRT", "VERB",
                  ".", "X")

_BASE_TAGS = {
    ".": (".", ",", ":", "(", ")", "--", "'", "''", "``"),
    "NOUN": ("nn", "nns", "np", "nps", "nr", "nrs"),
    # pn: nominal pronoun (everybody, nothing); pp$: possessive (my, your); wp: who, whom.
    "PRON": ("pn", "pp", "ppl", "ppls", "ppo", "pps", "ppss", "wp", "wpo", "wps"),
    # abn/abx: pre-quantifier (all, half, both); ex: existential "there".
    "DET": ("at", "dt", "dti", "dts", "dtx", "abn", "abx", "wdt", "ex"),
    # ap: post-determiner (many, other, next); od: ordinal numeral (first, 2nd).
    "ADJ": ("jj", "jjr", "jjs", "jjt", "ap", "od"),
    # abl: pre-qualifier (quite, rather); ql/qlp: qualifier (very, enough); *: not, n't.
    "ADV": ("rb", "rbr", "rbt", "rn", "ql", "qlp", "wql", "wrb", "abl", "*"),
    # cs: subordinating conjunction, grouped with prepositions as in the universal tagset.
    "ADP": ("in", "cs"),
    "CONJ": ("cc",),
    "NUM": ("cd",),
    "PRT": ("rp", "to"),
    "VERB": ("vb", "vbd", "vbg", "vbn", "vbz", "md", "do", "dod", "doz", "be", "bed", "bedz",
             "beg", "bem", "ben", "ber", "bez", "hv", "hvd", "hvg", "hvn", "hvz"),
    "X": ("uh", "nil"),
}
BROWN_TO_UNIVERSAL = {brown: universal for universal, tags in _BASE_TAGS.items()
                      for brown in tags}
_MODIFIER_SUFFIXES = ("-hl", "-tl", "-nc")


def to_universal(brown_tag: str) -> str:
    """The universal tag of a raw Brown tag such as ``np$-tl``, ``fw-nn`` or ``pps+bez``."""
    tag = brown_tag.lower()
    stripped = True
    while stripped:
        stripped = False
        for suffix in _MODIFIER_SUFFIXES:
            if tag.endswith(suffix) and len(tag) > len(suffix):
                tag, stripped = tag[: -len(suffix)], True
    if tag.startswith("fw-"):
        return "X"
    first = tag.split("+", 1)[0] if tag not in BROWN_TO_UNIVERSAL else tag
    first = first.split("-", 1)[0] if first not in BROWN_TO_UNIVERSAL else first
    if first not in BROWN_TO_UNIVERSAL:
        first = first.rstrip("*$") or first
    if first not in BROWN_TO_UNIVERSAL:
        raise ValueError(f"unknown Brown tag {brown_tag!r}")
    return BROWN_TO_UNIVERSAL[first]
