"""Output shapes of every model for every cell, direction and small batch/sequence size."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.models.model_factories import (
    CELLS,
    VOCAB,
    classifier,
    conditional_batch,
    conditional_generator,
    forecaster,
    language_model,
    pair_batch,
    seq2seq,
    tagger,
    token_batch,
)

lengths_strategy = st.lists(st.integers(1, 7), min_size=1, max_size=4)
fast = settings(max_examples=4, deadline=None, derandomize=True)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("num_layers", [1, 2])
@fast
@given(lengths=lengths_strategy)
def test_language_model_shapes(cell, num_layers, lengths):
    torch.manual_seed(0)
    model = language_model(cell, num_layers=num_layers)
    batch = token_batch(lengths, "tokens")
    logits, state = model(batch.tokens, batch.lengths)
    assert logits.shape == (len(lengths), max(lengths), VOCAB)
    h = state[0] if cell == "lstm" else state
    assert h.shape == (num_layers, len(lengths), 12)
    assert model.loss(batch).dim() == 0


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@fast
@given(lengths=lengths_strategy)
def test_classifier_shapes(cell, bidirectional, pooling, lengths):
    torch.manual_seed(0)
    model = classifier(cell, bidirectional, pooling=pooling, num_layers=2)
    batch = token_batch(lengths, "sequence", num_labels=3)
    probabilities = model.predict_proba(batch.tokens, batch.lengths)
    assert probabilities.shape == (len(lengths), 3)
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(len(lengths)))
    assert model.predict(batch.tokens, batch.lengths).shape == (len(lengths),)
    assert model.loss(batch).dim() == 0


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
@fast
@given(lengths=lengths_strategy)
def test_tagger_shapes(cell, bidirectional, lengths):
    torch.manual_seed(0)
    model = tagger(cell, bidirectional, head_hidden_size=4)
    batch = token_batch(lengths, "tokens", num_labels=5)
    assert model(batch.tokens, batch.lengths).shape == (len(lengths), max(lengths), 5)
    assert model.predict(batch.tokens, batch.lengths).shape == batch.tokens.shape
    assert model.loss(batch).dim() == 0


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("attention", ["none", "bahdanau", "luong_general"])
@fast
@given(
    source_lengths=st.lists(st.integers(1, 6), min_size=2, max_size=2),
    target_lengths=st.lists(st.integers(2, 6), min_size=2, max_size=2),
)
def test_seq2seq_shapes(cell, bidirectional, attention, source_lengths, target_lengths):
    torch.manual_seed(0)
    model = seq2seq(cell, attention, bidirectional=bidirectional, num_layers=2)
    batch = pair_batch(source_lengths, target_lengths)
    logits, weights = model(batch.source, batch.source_lengths, batch.target[:, :-1])
    target_steps = max(target_lengths) - 1
    assert logits.shape == (2, target_steps, VOCAB)
    if attention == "none":
        assert weights is None
    else:
        assert weights.shape == (2, target_steps, max(source_lengths))
    decoded = model.beam_decode(batch.source, batch.source_lengths, beam_size=2, max_length=4)
    assert decoded.tokens.shape[0] == 2 and decoded.tokens.shape[1] <= 4
    assert model.loss(batch).dim() == 0


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(
    ("strategy", "bidirectional"),
    [("direct", False), ("direct", True), ("autoregressive", False)],
)
@pytest.mark.parametrize("gaussian", [False, True])
@fast
@given(batch=st.integers(1, 4), lookback=st.integers(1, 8))
def test_forecaster_shapes(cell, strategy, bidirectional, gaussian, batch, lookback):
    torch.manual_seed(0)
    model = forecaster(cell, strategy=strategy, bidirectional=bidirectional, gaussian=gaussian)
    mean, std = model(torch.randn(batch, lookback, 2))
    assert mean.shape == (batch, 3, 2)
    assert (std is None) == (not gaussian)
    if gaussian:
        assert std.shape == mean.shape and bool((std > 0).all())


def test_forecaster_target_subset_shapes():
    model = forecaster(input_size=3, target_indices=[2], gaussian=True)
    mean, std = model(torch.randn(4, 6, 3))
    assert mean.shape == std.shape == (4, 3, 1)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("mode", ["init", "input", "both"])
@pytest.mark.parametrize("condition_type", ["class", "vector"])
@fast
@given(lengths=lengths_strategy)
def test_conditional_generator_shapes(cell, mode, condition_type, lengths):
    torch.manual_seed(0)
    vector_size = 5 if condition_type == "vector" else 0
    model = conditional_generator(
        cell, condition_mode=mode, condition_type=condition_type, condition_size=vector_size,
        num_layers=2,
    )  # fmt: skip
    batch = conditional_batch(lengths, vector_size)
    logits, _ = model(batch.condition, batch.tokens, batch.lengths)
    assert logits.shape == (len(lengths), max(lengths), VOCAB)
    assert model.loss(batch).dim() == 0
