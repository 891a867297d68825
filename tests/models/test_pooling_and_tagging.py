"""Pooling reduces over valid steps only; the tagger's loss and predictions skip padding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tests.models.model_factories import classifier, pad_targets, padded_tokens, tagger

from rnnkit.data.batch import IGNORE_INDEX, TokenBatch
from rnnkit.models.pooling import pool


def _outputs_with_loud_padding():
    torch.manual_seed(0)
    lengths = torch.tensor([2, 4, 1])
    outputs = torch.randn(3, 4, 6)
    for row, length in enumerate(lengths.tolist()):
        outputs[row, length:] = 1e6  # would dominate any reduction that saw it
    return outputs, lengths


def test_mean_pooling_uses_valid_steps_only():
    outputs, lengths = _outputs_with_loud_padding()
    pooled = pool("mean", outputs, lengths, torch.zeros(1, 3, 6), directions=1)
    for row, length in enumerate(lengths.tolist()):
        torch.testing.assert_close(pooled[row], outputs[row, :length].mean(dim=0))


def test_max_pooling_uses_valid_steps_only():
    outputs, lengths = _outputs_with_loud_padding()
    pooled = pool("max", outputs, lengths, torch.zeros(1, 3, 6), directions=1)
    for row, length in enumerate(lengths.tolist()):
        torch.testing.assert_close(pooled[row], outputs[row, :length].amax(dim=0))


def test_last_pooling_is_top_layer_final_state_of_both_directions():
    final_hidden = torch.arange(4 * 3 * 2, dtype=torch.float32).reshape(4, 3, 2)
    pooled = pool("last", torch.zeros(3, 5, 4), torch.tensor([5, 2, 1]), final_hidden, 2)
    # layers 0-1 are the bottom layer; 2 (forward) and 3 (reverse) the top one
    torch.testing.assert_close(pooled, torch.cat([final_hidden[2], final_hidden[3]], dim=-1))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_bidirectional_last_pooling_reads_forward_at_last_step_and_reverse_at_step_zero(cell):
    torch.manual_seed(0)
    model = classifier(cell, bidirectional=True, pooling="last", num_layers=2).eval()
    lengths = torch.tensor([4, 2, 6])
    tokens = padded_tokens(lengths.tolist(), garbage=True)
    outputs, state = model.encoder(tokens, lengths)
    h_n = state[0] if cell == "lstm" else state
    pooled = pool("last", outputs, lengths, h_n, directions=2)
    for row, length in enumerate(lengths.tolist()):
        forward_last = outputs[row, length - 1, :10]
        reverse_first = outputs[row, 0, 10:]
        torch.testing.assert_close(pooled[row], torch.cat([forward_last, reverse_first]))


def test_unknown_pooling_mode_is_rejected():
    with pytest.raises(ValueError, match="mode: expected one of 'last', 'mean', 'max'"):
        pool("sum", torch.zeros(1, 2, 3), torch.tensor([2]), torch.zeros(1, 1, 3), 1)  # type: ignore[arg-type]


def test_binary_classifier_is_one_logit_with_binary_cross_entropy():
    torch.manual_seed(0)
    model = classifier(num_classes=2)
    assert model.head[-1].out_features == 1
    tokens, lengths = padded_tokens([3, 5]), torch.tensor([3, 5])
    logits = model(tokens, lengths)
    assert torch.equal(logits[:, 0], torch.zeros(2))
    targets = torch.tensor([1, 0])
    expected = F.binary_cross_entropy_with_logits(logits[:, 1], targets.float())
    torch.testing.assert_close(model.loss(TokenBatch(tokens, lengths, targets)), expected)


def test_tagger_loss_is_mean_over_real_tokens_only():
    torch.manual_seed(0)
    model = tagger().eval()
    lengths = [2, 5, 3]
    tokens = padded_tokens(lengths, garbage=True)
    targets = pad_targets(torch.randint(0, 5, tokens.shape), lengths)
    loss = model.loss(TokenBatch(tokens, torch.tensor(lengths), targets))
    per_row = [
        F.cross_entropy(model(tokens[row : row + 1, :n])[0], targets[row, :n], reduction="sum")
        for row, n in enumerate(lengths)
    ]
    torch.testing.assert_close(loss, torch.stack(per_row).sum() / sum(lengths))


def test_tagger_predictions_are_ignore_index_at_padding():
    torch.manual_seed(0)
    lengths = [2, 5, 3]
    predictions = tagger().predict(padded_tokens(lengths), torch.tensor(lengths))
    for row, n in enumerate(lengths):
        assert bool((predictions[row, n:] == IGNORE_INDEX).all())
        assert bool((predictions[row, :n] >= 0).all())


def test_lengths_are_validated():
    model = tagger()
    tokens = padded_tokens([2, 3])
    with pytest.raises(ValueError, match=r"lengths: expected values in \[1, 3\], got \[0, 3\]"):
        model(tokens, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"lengths: expected shape \(2,\)"):
        model(tokens, torch.tensor([3]))
    with pytest.raises(ValueError, match=r"tokens: expected ids in \[0, 11\)"):
        model(tokens + 20, torch.tensor([2, 3]))


def test_predictions_use_eval_mode_and_restore_training_mode():
    torch.manual_seed(0)
    tokens, lengths = padded_tokens([4, 6]), torch.tensor([4, 6])
    for model in (classifier(dropout=0.5), tagger(dropout=0.5)):
        first = model.predict(tokens, lengths)
        assert model.training
        assert torch.equal(model.predict(tokens, lengths), first)  # no dropout noise
