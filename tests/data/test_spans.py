"""Tag schemes and spans: conlleval's reading of invalid sequences, conversions between IOB1,
IOB2, BIOES and BMES (round trips as properties), scheme detection and CRF constraints."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data.spans import (
    SCHEMES,
    Span,
    convert_tags,
    detect_scheme,
    forbidden_transitions,
    from_spans,
    is_span_tag,
    split_tag,
    to_spans,
)

TYPES = ["PER", "geo-loc", ""]


@st.composite
def span_lists(draw, max_length: int = 12):
    """A sentence length and non-overlapping spans (adjacent ones included) inside it."""
    length = draw(st.integers(0, max_length))
    spans, position = [], 0
    while position < length:
        position += draw(st.integers(0, 2))
        width = draw(st.integers(1, 3))
        if position + width > length:
            break
        spans.append(Span(draw(st.sampled_from(TYPES[:2])), position, position + width))
        position += width
    return length, spans


tag_lists = st.lists(
    st.sampled_from(["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-geo-loc", "I-geo-loc",
                     "M-geo-loc", "S-geo-loc", "E-geo-loc"]), max_size=12)


def test_split_tag_splits_at_the_first_hyphen_as_conlleval():
    assert split_tag("B-geo-loc") == ("B", "geo-loc")
    assert split_tag("O") == ("O", "")
    assert split_tag("S") == ("S", "")
    assert [is_span_tag(t) for t in ("O", "B-X", "M", "NOUN", "B-", "-LRB-")] == [
        True, True, True, False, False, False]


def test_invalid_sequences_are_read_as_conlleval_reads_them():
    # I- after O starts a chunk; a type change inside a chunk splits it; B-X I-Y is two chunks
    assert to_spans(["O", "I-PER", "I-PER", "O"]) == [Span("PER", 1, 3)]
    assert to_spans(["B-PER", "I-LOC", "I-LOC"]) == [Span("PER", 0, 1), Span("LOC", 1, 3)]
    assert to_spans(["I-PER", "B-PER", "I-PER"]) == [Span("PER", 0, 1), Span("PER", 1, 3)]
    assert to_spans(["E-PER", "I-PER"]) == [Span("PER", 0, 1), Span("PER", 1, 2)]
    assert to_spans(["B-X", "M-X", "E-X", "S-X", "S"]) == [
        Span("X", 0, 3), Span("X", 3, 4), Span("", 4, 5)]
    assert convert_tags(["O", "I-PER", "I-PER", "B-LOC"], "iob2") == [
        "O", "B-PER", "I-PER", "B-LOC"]


def test_conversions_between_schemes_by_example():
    bio = ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "I-LOC", "I-LOC"]
    assert convert_tags(bio, "iob1") == ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-LOC",
                                         "I-LOC"]
    assert convert_tags(bio, "bioes") == ["B-PER", "E-PER", "S-PER", "O", "B-LOC", "I-LOC",
                                          "E-LOC"]
    assert convert_tags(bio, "bmes") == ["B-PER", "E-PER", "S-PER", "O", "B-LOC", "M-LOC",
                                         "E-LOC"]
    assert convert_tags(convert_tags(bio, "iob1"), "iob2") == bio
    with pytest.raises(ValueError, match="scheme: expected one of iob1, iob2, bioes, bmes"):
        convert_tags(bio, "bilou")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(span_lists(), st.sampled_from(SCHEMES))
def test_spans_survive_a_round_trip_through_every_scheme(case, scheme):
    length, spans = case
    tags = from_spans(spans, length, scheme)
    assert len(tags) == length
    assert to_spans(tags) == spans


@settings(max_examples=200, deadline=None)
@given(span_lists(), st.sampled_from(SCHEMES), st.sampled_from(SCHEMES))
def test_scheme_round_trips_return_the_original_tags(case, source, target):
    length, spans = case
    original = from_spans(spans, length, source)
    assert convert_tags(convert_tags(original, target), source) == original


@settings(max_examples=200, deadline=None)
@given(tag_lists, st.sampled_from(SCHEMES))
def test_any_sequence_converts_to_a_valid_one_with_the_same_chunks(tags, scheme):
    converted = convert_tags(tags, scheme)
    assert to_spans(converted) == to_spans(tags)
    assert convert_tags(converted, scheme) == converted  # idempotent: now valid
    spans = to_spans(tags)
    assert all(0 <= s.start < s.end <= len(tags) for s in spans)
    assert all(a.end <= b.start for a, b in pairwise(spans))


@settings(max_examples=150, deadline=None)
@given(span_lists(), st.sampled_from(SCHEMES))
def test_valid_sequences_use_no_forbidden_transition(case, scheme):
    length, spans = case
    names = ["O"] + [f"{prefix}-{kind}" for prefix in "BIMES" for kind in TYPES[:2]]
    ids = {name: index for index, name in enumerate(names)}
    forbidden = {tuple(pair) for pair in forbidden_transitions(names, scheme)}
    path = [len(names)] + [ids[t] for t in from_spans(spans, length, scheme)] + [len(names) + 1]
    assert not any((a, b) in forbidden for a, b in pairwise(path))


def test_forbidden_transitions_of_bio():
    names = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]
    start, end = 5, 6
    forbidden = {tuple(pair) for pair in forbidden_transitions(names, "iob2")}
    assert forbidden == {(2, 1), (2, 4), (start, 1), (start, 4), (0, 4), (1, 4), (3, 1),
                         (4, 1)}
    assert (start, end) not in forbidden


def test_detect_scheme():
    assert detect_scheme([["B-PER", "I-PER", "O"]]) == "iob2"
    assert detect_scheme([["I-PER", "I-PER", "O"]]) == "iob1"
    assert detect_scheme([["S-PER", "O"], ["B-X", "E-X"]]) == "bioes"
    assert detect_scheme([["B", "M", "E", "S"]]) == "bmes"
    assert detect_scheme([["NOUN", "VERB"]]) is None
    assert detect_scheme([["O", "O"]]) is None


def test_from_spans_rejects_overlaps():
    with pytest.raises(ValueError, match="non-overlapping"):
        from_spans([Span("A", 0, 2), Span("B", 1, 3)], 3, "iob2")
