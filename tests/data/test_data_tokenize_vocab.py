"""Tokenizers and vocabularies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnkit.data import CharTokenizer, Vocab, WordTokenizer, get_tokenizer


@given(st.text())
def test_char_round_trip_is_exact(text):
    tokenizer = CharTokenizer()
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_word_tokenizer_lowercases_and_splits_punctuation():
    tokens = WordTokenizer().encode("Don't stop, it's GREAT!<br />Really...")
    assert tokens == ["don", "'", "t", "stop", ",", "it", "'", "s", "great", "!", "really",
                      ".", ".", "."]


def test_word_tokenizer_keeps_case_when_asked_and_decodes_with_spaces():
    tokenizer = WordTokenizer(lowercase=False)
    assert tokenizer.encode("Hello, World") == ["Hello", ",", "World"]
    assert tokenizer.decode(["hello", ",", "world"]) == "hello , world"


@given(st.lists(st.from_regex(r"[a-z0-9]+|[.,!?;:]", fullmatch=True), max_size=20))
def test_word_round_trip_on_normalised_text(tokens):
    tokenizer = WordTokenizer()
    assert tokenizer.encode(tokenizer.decode(tokens)) == tokens


def test_get_tokenizer_rejects_unknown_names():
    assert get_tokenizer("char") == CharTokenizer()
    with pytest.raises(ValueError,
                       match=r"tokenizer must be one of \['char', 'word'\], got 'sentencepiece'"):
        get_tokenizer("sentencepiece")


def test_vocab_specials_come_first_and_order_is_frequency_then_first_appearance():
    vocab = Vocab.build([["b", "a", "c"], ["a", "c", "d"], ["c"]])
    assert vocab.itos == ["<pad>", "<unk>", "<bos>", "<eos>", "c", "a", "b", "d"]
    assert (vocab.pad_id, vocab.unk_id, vocab.bos_id, vocab.eos_id) == (0, 1, 2, 3)


def test_vocab_min_freq_max_size_and_unknown_lookup():
    data = [list("aaabbc")]
    assert Vocab.build(data, min_freq=2).itos[4:] == ["a", "b"]
    assert Vocab.build(data, max_size=1).itos[4:] == ["a"]
    vocab = Vocab.build(data, min_freq=2)
    assert vocab.encode(["a", "z", "b"]) == [4, 1, 5]
    assert vocab.decode([2, 4, 5, 3, 0], skip_specials=True) == ["a", "b"]
    assert "a" in vocab and "c" not in vocab and len(vocab) == 6


def test_vocab_lexicographic_order():
    assert Vocab.build([list("cab")], order="lexicographic").itos[4:] == ["a", "b", "c"]


def test_label_vocab_has_no_specials_and_rejects_unknown_labels():
    labels = Vocab.build_labels(["rotten", "fresh", "rotten"])
    assert labels.itos == ["fresh", "rotten"]
    with pytest.raises(KeyError, match="unknown token 'meh' and this vocabulary has no <unk>"):
        labels.lookup("meh")
    with pytest.raises(KeyError, match="has no <pad> token"):
        _ = labels.pad_id


def test_vocab_json_and_file_round_trip(tmp_path):
    vocab = Vocab.build([["é", "x", "é"]], specials=("<pad>", "<unk>"))
    assert Vocab.from_json(vocab.to_json()) == vocab
    vocab.save(tmp_path / "vocab.json")
    assert Vocab.load(tmp_path / "vocab.json").itos == ["<pad>", "<unk>", "é", "x"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"min_freq": 0}, "min_freq must be >= 1, got 0"),
     ({"max_size": -1}, "max_size must be >= 0 or None, got -1"),
     ({"order": "random"}, "order must be 'frequency' or 'lexicographic', got 'random'")],
)
def test_vocab_build_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Vocab.build([["a"]], **kwargs)


def test_vocab_rejects_bad_json_and_ids():
    with pytest.raises(ValueError, match="must start with the 'specials'"):
        Vocab.from_json('{"specials": ["<pad>"], "tokens": ["a"]}')
    with pytest.raises(ValueError, match=r"id must be in \[0, 5\), got 7"):
        Vocab(["a"]).decode([7])
