"""Attention weights are distributions over the valid source positions."""

from __future__ import annotations

import pytest
import torch
from tests.models.model_factories import pair_batch, seq2seq

from rnnkit.models.attention import Attention

KINDS = ["bahdanau", "luong_dot", "luong_general"]
SOURCE_LENGTHS = [5, 2, 3]


def _assert_distribution_over_valid(weights, source_lengths):
    """``weights`` ``(batch, tgt, src)``: rows sum to 1, zero beyond each source length."""
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2]))
    for row, length in enumerate(source_lengths):
        assert bool((weights[row, :, length:] == 0).all())
        assert bool((weights[row, :, :length] > 0).all())


@pytest.mark.parametrize("kind", KINDS)
def test_attention_module_masks_and_normalises(kind):
    torch.manual_seed(0)
    attention = Attention(kind, query_size=6, key_size=6)
    keys = torch.randn(3, 5, 6)
    mask = torch.arange(5).unsqueeze(0) < torch.tensor(SOURCE_LENGTHS).unsqueeze(1)
    context, weights = attention(torch.randn(3, 4, 6), keys, attention.prepare_keys(keys), mask)
    assert context.shape == (3, 4, 6)
    _assert_distribution_over_valid(weights, SOURCE_LENGTHS)
    torch.testing.assert_close(context, torch.bmm(weights, keys))
    step_context, step_weights = attention(
        torch.randn(3, 6), keys, attention.prepare_keys(keys), mask
    )
    assert step_context.shape == (3, 6) and step_weights.shape == (3, 5)


def test_luong_dot_requires_equal_sizes():
    with pytest.raises(ValueError, match=r"luong_dot.*got 4 and 8.*luong_general"):
        Attention("luong_dot", query_size=4, key_size=8)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_seq2seq_attention_in_training_and_decoding(kind, cell):
    torch.manual_seed(0)
    model = seq2seq(cell, kind).eval()
    batch = pair_batch(SOURCE_LENGTHS, [4, 6, 3])
    _, weights = model(batch.source, batch.source_lengths, batch.target[:, :-1])
    _assert_distribution_over_valid(weights, SOURCE_LENGTHS)
    for decoded in (
        model.greedy_decode(batch.source, batch.source_lengths, max_length=6),
        model.beam_decode(batch.source, batch.source_lengths, beam_size=3, max_length=6),
    ):
        assert decoded.attention.shape == (*decoded.tokens.shape, 5)
        for row, length in enumerate(decoded.lengths.tolist()):
            steps = decoded.attention[row : row + 1, :length]
            _assert_distribution_over_valid(steps, [SOURCE_LENGTHS[row]])
            assert bool((decoded.attention[row, length:] == 0).all())
