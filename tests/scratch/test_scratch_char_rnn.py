"""The scratch character model: it learns, samples, and its text plumbing is exact."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.scratch import CharRNN, CharRNNConfig, CharRNNTrainer, Vocabulary
from rnnkit.scratch.char_rnn import iterate_chunks


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_learns_hello(cell):
    """h->e, e->l, l->l, l->o: the second 'l' needs memory of the first."""
    vocabulary = Vocabulary.from_text("hello")
    ids = vocabulary.encode("hello")
    inputs, targets = ids[:-1], ids[1:]
    model = CharRNN(len(vocabulary), CharRNNConfig(hidden_size=16, cell=cell, seed=0))
    trainer = CharRNNTrainer(model)
    assert vocabulary.decode(model.predict(inputs)) != "ello"  # not solved before training
    losses = [trainer.step(inputs, targets)[0] for _ in range(150)]
    assert vocabulary.decode(model.predict(inputs)) == "ello"
    assert losses[-1] < 0.05 < losses[0]


def test_training_lowers_the_loss_on_text_with_carried_state():
    text = "the cat sat on the mat. the dog sat on the log. " * 4
    vocabulary = Vocabulary.from_text(text)
    model = CharRNN(len(vocabulary), CharRNNConfig(hidden_size=32, seed=0))
    trainer = CharRNNTrainer(model)
    chunks = iterate_chunks(vocabulary.encode(text), 16)
    state, losses = None, []
    for _ in range(300):
        inputs, targets, restart = next(chunks)
        loss, grad_norm, state = trainer.step(inputs, targets, None if restart else state)
        losses.append(loss)
        assert np.isfinite(grad_norm)
    assert np.mean(losses[:10]) > np.log(len(vocabulary)) * 0.8  # starts near a uniform guess
    assert np.mean(losses[-10:]) < 0.3


def test_sampling_is_seeded_and_cold_temperature_is_greedy():
    vocabulary = Vocabulary.from_text("hello")
    ids = vocabulary.encode("hello")
    model = CharRNN(len(vocabulary), CharRNNConfig(hidden_size=16, seed=0))
    trainer = CharRNNTrainer(model)
    for _ in range(150):
        trainer.step(ids[:-1], ids[1:])
    first = vocabulary.encode("h")[0]
    greedy = model.sample(first, 4, np.random.default_rng(0), temperature=1e-3)
    assert vocabulary.decode(greedy) == "ello"
    hot = [
        model.sample(first, 20, np.random.default_rng(seed), temperature=5.0) for seed in (1, 1, 2)
    ]
    np.testing.assert_array_equal(hot[0], hot[1])
    assert not np.array_equal(hot[0], hot[2])
    assert hot[0].shape == (20,) and hot[0].min() >= 0 and hot[0].max() < len(vocabulary)


def test_sample_rejects_bad_temperature():
    model = CharRNN(3, CharRNNConfig(hidden_size=4))
    with pytest.raises(ValueError, match="temperature must be a finite number > 0, got 0"):
        model.sample(0, 5, np.random.default_rng(0), temperature=0)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"cell": "rnnn"}, ValueError, r"cell must be one of \['gru', 'lstm', 'rnn'\], got 'rnnn'"),
        ({"optimizer": "sgd"}, ValueError, "optimizer must be one of"),
        ({"hidden_size": 0}, ValueError, "hidden_size must be >= 1, got 0"),
        ({"hidden_size": 2.5}, TypeError, "hidden_size must be an int, got float"),
        ({"learning_rate": -0.1}, ValueError, "learning_rate must be a finite number > 0"),
    ],
)
def test_config_rejects_bad_values(options, error, message):
    with pytest.raises(error, match=message):
        CharRNNConfig(**options)


def test_model_rejects_out_of_vocabulary_ids():
    model = CharRNN(3, CharRNNConfig(hidden_size=4))
    with pytest.raises(ValueError, match="ids must be a non-empty 1-d array of ids in \\[0, 3\\)"):
        model.forward(np.array([0, 3]))


@settings(max_examples=50, deadline=None)
@given(text=st.text(min_size=1, max_size=40))
def test_vocabulary_round_trips_any_text(text):
    vocabulary = Vocabulary.from_text(text)
    assert vocabulary.decode(vocabulary.encode(text)) == text
    assert len(vocabulary) == len(set(text))


def test_vocabulary_rejects_unknown_characters():
    with pytest.raises(ValueError, match="not in the vocabulary: \\['x'\\]"):
        Vocabulary.from_text("abc").encode("abx")


@settings(max_examples=50, deadline=None)
@given(size=st.integers(2, 60), seq_length=st.integers(1, 20))
def test_chunks_are_shifted_pairs_covering_the_text(size, seq_length):
    ids = np.arange(size)
    chunks = iterate_chunks(ids, seq_length)
    length = min(seq_length, size - 1)
    passes = (size - 1) // length  # full chunks per pass over the text
    seen = []
    for index in range(2 * passes):
        inputs, targets, restart = next(chunks)
        assert restart == (index % passes == 0)
        assert len(inputs) == len(targets) == length
        np.testing.assert_array_equal(targets, inputs + 1)
        seen.append(inputs)
    np.testing.assert_array_equal(np.concatenate(seen[:passes]), np.arange(passes * length))


def test_chunks_reject_a_text_too_short():
    with pytest.raises(ValueError, match="at least 2 ids, got shape \\(1,\\)"):
        next(iterate_chunks(np.array([0]), 5))
