"""Entity spans in token tags: the IOB1, IOB2 (BIO), BIOES and BMES schemes, chunking as
conlleval does, conversion between schemes, and the transitions each scheme allows.

A tag is ``O``, a bare prefix (``B``, ``I``, ``M``, ``E``, ``S``: untyped chunks, as in word
segmentation) or ``PREFIX-TYPE`` split at the first hyphen (``B-geo-loc`` is type
``geo-loc``). Chunking follows conlleval (CoNLL-2000 ``conlleval``, extended for ``E``/``S`` as
seqeval's default mode does), so an invalid sequence is read the way conlleval reads it: ``I-X``
after ``O`` or after another type starts a new chunk, ``B-X I-Y`` is two chunks.

>>> to_spans(["B-PER", "I-PER", "O", "I-LOC"])
[Span(type='PER', start=0, end=2), Span(type='LOC', start=3, end=4)]
>>> convert_tags(["B-PER", "I-PER", "O", "B-LOC"], "bioes")
['B-PER', 'E-PER', 'O', 'S-LOC']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Scheme = Literal["iob1", "iob2", "bioes", "bmes"]
SCHEMES: tuple[Scheme, ...] = ("iob1", "iob2", "bioes", "bmes")
_PREFIXES = frozenset("BIMES")


@dataclass(frozen=True, order=True)
class Span:
    """Tokens ``[start, end)`` of a sentence form one entity of ``type`` (``""`` if untyped)."""

    type: str
    start: int
    end: int


def split_tag(tag: str) -> tuple[str, str]:
    """``(prefix, type)`` of a tag: ``"B-geo-loc"`` → ``("B", "geo-loc")``, ``"O"`` → ``("O",
    "")``, ``"S"`` → ``("S", "")``. A tag of no scheme keeps itself as prefix (``("NOUN", "")``)."""
    prefix, hyphen, kind = tag.partition("-")
    return (prefix, kind) if hyphen else (tag, "")


def is_span_tag(tag: str) -> bool:
    """Whether ``tag`` belongs to a chunk scheme: ``O``, a prefix ``B/I/M/E/S`` alone, or
    ``PREFIX-TYPE`` with a non-empty type."""
    prefix, hyphen, kind = tag.partition("-")
    if not hyphen:
        return tag == "O" or tag in _PREFIXES
    return prefix in _PREFIXES and bool(kind)


def _chunk_ends(previous: tuple[str, str], current: tuple[str, str]) -> bool:
    (prev_tag, prev_type), (tag, kind) = previous, current
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != kind


def _chunk_starts(previous: tuple[str, str], current: tuple[str, str]) -> bool:
    (prev_tag, prev_type), (tag, kind) = previous, current
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != kind


def to_spans(tags: Sequence[str]) -> list[Span]:
    """The chunks of one sentence's tags in any scheme, as conlleval finds them (``M`` reads as
    ``I``), in order. ``tags``: ``(seq,)`` strings."""
    spans: list[Span] = []
    previous, start = ("O", ""), None
    for position, tag in enumerate([*tags, "O"]):
        prefix, kind = split_tag(tag)
        current = ("I" if prefix == "M" else prefix, kind)
        if start is not None and _chunk_ends(previous, current):
            spans.append(Span(previous[1], start, position))
            start = None
        if _chunk_starts(previous, current):
            start = position
        previous = current
    return spans


def from_spans(spans: Iterable[Span], length: int, scheme: Scheme) -> list[str]:
    """Tags ``(length,)`` in ``scheme`` for non-overlapping ``spans`` inside ``[0, length)``.

    IOB1 uses ``B`` only for a chunk that directly follows a chunk of the same type.
    """
    _check_scheme(scheme)
    tags = ["O"] * length
    previous_end, previous_type = -1, None
    for span in sorted(spans, key=lambda s: s.start):
        if not 0 <= span.start < span.end <= length or span.start < previous_end:
            raise ValueError(f"spans: expected non-overlapping spans inside [0, {length}), "
                             f"got {span}")
        width = span.end - span.start
        if scheme in ("iob2", "iob1"):
            adjacent = span.start == previous_end and span.type == previous_type
            first = "B" if scheme == "iob2" or adjacent else "I"
            prefixes = [first] + ["I"] * (width - 1)
        else:
            inner = "I" if scheme == "bioes" else "M"
            prefixes = ["S"] if width == 1 else ["B"] + [inner] * (width - 2) + ["E"]
        for offset, prefix in enumerate(prefixes):
            tags[span.start + offset] = f"{prefix}-{span.type}" if span.type else prefix
        previous_end, previous_type = span.end, span.type
    return tags


def convert_tags(tags: Sequence[str], scheme: Scheme) -> list[str]:
    """``tags`` (any scheme, possibly invalid) rewritten in ``scheme`` with the same chunks as
    conlleval reads them; a valid sequence already in ``scheme`` comes back unchanged."""
    return from_spans(to_spans(tags), len(tags), scheme)


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"scheme: expected one of {', '.join(SCHEMES)}, got {scheme!r}")


def detect_scheme(sentences: Iterable[Sequence[str]]) -> Scheme | None:
    """The scheme of tagged sentences, or ``None`` if some tag is of no scheme (e.g. POS tags)
    or no tag starts a chunk. ``M`` → bmes; ``E``/``S`` → bioes; else iob2 when every chunk
    starts with ``B``, iob1 otherwise."""
    sentences = [list(s) for s in sentences]
    names = {tag for sentence in sentences for tag in sentence}
    if not all(is_span_tag(tag) for tag in names) or names <= {"O"}:
        return None
    prefixes = {split_tag(tag)[0] for tag in names}
    if "M" in prefixes:
        return "bmes"
    if prefixes & {"E", "S"}:
        return "bioes"
    valid_iob2 = all(convert_tags(sentence, "iob2") == sentence for sentence in sentences)
    return "iob2" if valid_iob2 else "iob1"


def forbidden_transitions(tags: Sequence[str], scheme: Scheme) -> list[list[int]]:
    """``[from, to]`` tag-id pairs that no valid sequence in ``scheme`` contains, for a CRF.

    ``tags`` are the tag names by id; id ``len(tags)`` stands for the sentence start (as
    ``from``) and ``len(tags) + 1`` for its end (as ``to``). IOB2: ``I-X`` only after ``B-X`` or
    ``I-X``. IOB1: ``B-X`` only after ``B-X`` or ``I-X``. BIOES/BMES: inside a chunk only its
    continuation (``I``/``M``, ``E`` of the same type); outside, no continuation.
    """
    _check_scheme(scheme)
    start, end = len(tags), len(tags) + 1
    parsed = [split_tag(tag) for tag in tags]
    sources = [*range(len(tags)), start]
    targets = [*range(len(tags)), end]
    forbidden = []
    for source in sources:
        before = parsed[source] if source != start else ("O", "")
        for target in targets:
            after = parsed[target] if target != end else ("O", "")
            if not _allowed(before, after, scheme):
                forbidden.append([source, target])
    return forbidden


def _allowed(before: tuple[str, str], after: tuple[str, str], scheme: Scheme) -> bool:
    (prev_tag, prev_type), (tag, kind) = before, after
    if scheme == "iob2":
        return tag != "I" or (prev_tag in ("B", "I") and prev_type == kind)
    if scheme == "iob1":
        return tag != "B" or (prev_tag in ("B", "I") and prev_type == kind)
    inner = "I" if scheme == "bioes" else "M"
    if prev_tag in ("B", inner):  # inside a chunk: it must go on
        return tag in (inner, "E") and prev_type == kind
    return tag not in (inner, "E")
