"""Padding never changes what a model says about the real rows: extra padded columns, garbage
ids in padded positions and longer neighbours in the batch leave their outputs unchanged."""

from __future__ import annotations

import pytest
import torch
from tests.models.model_factories import (
    CELLS,
    classifier,
    conditional_generator,
    language_model,
    padded_tokens,
    seq2seq,
    tagger,
)

LENGTHS = [3, 5, 1, 4]


def _alone_and_padded(seed: int = 0):
    """Each row alone (no padding) and all rows in one batch padded to 9 with garbage ids."""
    torch.manual_seed(seed)
    tokens = padded_tokens(LENGTHS, seq=9, garbage=True)
    alone = [tokens[row : row + 1, :length] for row, length in enumerate(LENGTHS)]
    return alone, tokens, torch.tensor(LENGTHS)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_classifier_ignores_padding(cell, bidirectional, pooling):
    model = classifier(cell, bidirectional, pooling=pooling, num_layers=2).eval()
    alone, batch, lengths = _alone_and_padded()
    batched = model(batch, lengths)
    for row, tokens in enumerate(alone):
        torch.testing.assert_close(batched[row], model(tokens)[0])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_tagger_ignores_padding(cell, bidirectional):
    model = tagger(cell, bidirectional, num_layers=2).eval()
    alone, batch, lengths = _alone_and_padded()
    batched = model(batch, lengths)
    for row, tokens in enumerate(alone):
        torch.testing.assert_close(batched[row, : LENGTHS[row]], model(tokens)[0])


@pytest.mark.parametrize("cell", CELLS)
def test_language_model_ignores_padding(cell):
    model = language_model(cell, num_layers=2).eval()
    alone, batch, lengths = _alone_and_padded()
    batched, state = model(batch, lengths)
    for row, tokens in enumerate(alone):
        logits, row_state = model(tokens)
        torch.testing.assert_close(batched[row, : LENGTHS[row]], logits[0])
        h, row_h = (state[0], row_state[0]) if cell == "lstm" else (state, row_state)
        torch.testing.assert_close(h[:, row], row_h[:, 0])


@pytest.mark.parametrize("cell", CELLS)
def test_conditional_generator_ignores_padding(cell):
    model = conditional_generator(cell).eval()
    alone, batch, lengths = _alone_and_padded()
    conditions = torch.tensor([0, 1, 2, 1])
    batched, _ = model(conditions, batch, lengths)
    for row, tokens in enumerate(alone):
        logits, _ = model(conditions[row : row + 1], tokens)
        torch.testing.assert_close(batched[row, : LENGTHS[row]], logits[0])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("attention", ["none", "bahdanau", "luong_dot", "luong_general"])
def test_seq2seq_ignores_source_padding(cell, attention):
    model = seq2seq(cell, attention, num_layers=2).eval()
    alone, batch, lengths = _alone_and_padded()
    target_inputs = torch.randint(3, 11, (len(LENGTHS), 4))
    logits, weights = model(batch, lengths, target_inputs)
    decoded = model.beam_decode(batch, lengths, beam_size=3, max_length=5)
    for row, tokens in enumerate(alone):
        row_logits, row_weights = model(tokens, None, target_inputs[row : row + 1])
        torch.testing.assert_close(logits[row], row_logits[0])
        if weights is not None:
            torch.testing.assert_close(weights[row, :, : LENGTHS[row]], row_weights[0])
        row_decoded = model.beam_decode(tokens, None, beam_size=3, max_length=5)
        length = int(decoded.lengths[row])
        assert torch.equal(decoded.tokens[row, :length], row_decoded.tokens[0, :length])
        assert length == int(row_decoded.lengths[0])
