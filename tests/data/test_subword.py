"""Subword tokenizers (bpe, unigram): learnt from text, stored as JSON, rebuilt identically."""

from __future__ import annotations

import json

import pytest

from rnnkit.data import SubwordTokenizer, get_tokenizer

TEXTS = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"] * 20


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_round_trip_through_json(kind):
    tokenizer = SubwordTokenizer.train(TEXTS, kind, 40)
    stored = tokenizer.to_json()
    assert json.loads(stored)["model"]["type"] == {"bpe": "BPE", "unigram": "Unigram"}[kind]
    again = SubwordTokenizer.from_json(stored, kind)
    text = "the  cat sat on a log"
    assert again.encode(text) == tokenizer.encode(text)
    assert again.decode(again.encode(text)) == text


def test_bpe_merges_frequent_words_into_single_pieces():
    tokenizer = SubwordTokenizer.train(TEXTS, "bpe", 60)
    assert tokenizer.encode("the cat sat") == ["▁the", "▁cat", "▁sat"]
    assert tokenizer.encode("zebra")[0] == "▁"  # unseen letters fall back to <unk> pieces


def test_bad_arguments_name_what_was_expected():
    with pytest.raises(ValueError, match=r"kind: expected one of bpe, unigram, got 'wordpiece'"):
        SubwordTokenizer.train(TEXTS, "wordpiece", 40)
    with pytest.raises(ValueError, match=r"vocab_size: expected an integer >= 2, got 1"):
        SubwordTokenizer.train(TEXTS, "bpe", 1)
    with pytest.raises(ValueError, match="subword tokenizer JSON: cannot be read"):
        SubwordTokenizer.from_json("{}", "bpe")
    with pytest.raises(ValueError, match="applies to seq2seq runs"):
        get_tokenizer("bpe")
