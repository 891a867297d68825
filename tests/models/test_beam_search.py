"""Beam search: exact on small problems when the beam holds every prefix, equal to greedy with
one beam, GNMT length penalty, EOS handling."""

from __future__ import annotations

import itertools

import pytest
import torch
from tests.models.model_factories import pair_batch, seq2seq

from rnnkit.models.beam_search import beam_search, length_penalty

BOS, EOS, PAD = 0, 1, 2
VOCAB = 5


def _markov_step(table: torch.Tensor):
    """A decoder whose next-token log-probabilities depend only on the previous token."""

    def step(tokens, state):
        return table[tokens], state + 1, None

    return step


def _brute_force(table, max_length, alpha):
    """Best sequence over all outputs of up to ``max_length`` tokens (ending at EOS or not)."""
    best, best_score = None, float("-inf")
    for length in range(1, max_length + 1):
        for tokens in itertools.product(range(VOCAB), repeat=length):
            if EOS in tokens[:-1] or (length < max_length and tokens[-1] != EOS):
                continue  # EOS only last; shorter outputs must have ended
            previous, total = BOS, 0.0
            for token in tokens:
                total += float(table[previous, token])
                previous = token
            ranked = total / float(length_penalty(torch.tensor(length), alpha))
            if ranked > best_score:
                best, best_score = tokens, ranked
    return [t for t in best if t != EOS]


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
@pytest.mark.parametrize("seed", range(4))
def test_wide_beam_is_exact(alpha, seed):
    torch.manual_seed(seed)
    table = torch.randn(VOCAB, VOCAB).log_softmax(-1)
    decoded = beam_search(
        _markov_step(table), torch.zeros(VOCAB**3), lambda state, rows: state[rows],
        batch_size=1, beam_size=VOCAB**3, bos_id=BOS, eos_id=EOS, pad_id=PAD, max_length=4,
        alpha=alpha,
    )  # fmt: skip
    length = int(decoded.lengths[0])
    assert decoded.tokens[0, :length].tolist() == _brute_force(table, 4, alpha)


def test_length_penalty_prefers_longer_outputs():
    table = torch.full((VOCAB, VOCAB), -5.0)
    table[BOS, EOS] = -0.55  # stop at once: the best raw score
    table[BOS, 3] = -0.1
    table[3, 3] = -0.5
    table[3, EOS] = -0.5
    kwargs = dict(batch_size=1, beam_size=4, bos_id=BOS, eos_id=EOS, pad_id=PAD, max_length=6)
    step, reorder = _markov_step(table), (lambda state, rows: state[rows])
    short = beam_search(step, torch.zeros(4), reorder, alpha=0.0, **kwargs)
    long = beam_search(step, torch.zeros(4), reorder, alpha=3.0, **kwargs)
    assert int(short.lengths[0]) == 0  # BOS EOS: -0.55 beats BOS 3 EOS: -0.6
    assert long.tokens[0].tolist() == [3]  # -0.6 / ((5 + 2) / 6) ** 3 = -0.38 beats -0.55


def test_length_penalty_formula():
    torch.testing.assert_close(
        length_penalty(torch.tensor([1, 7]), 0.6), ((5 + torch.tensor([1.0, 7.0])) / 6) ** 0.6
    )
    torch.testing.assert_close(length_penalty(torch.tensor([3]), 0.0), torch.tensor([1.0]))


@pytest.mark.parametrize("attention", ["none", "bahdanau", "luong_dot", "luong_general"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_beam_of_one_equals_greedy(attention, cell):
    torch.manual_seed(0)
    model = seq2seq(cell, attention, num_layers=2)
    batch = pair_batch([4, 2, 6, 3], [3, 3, 3, 3])
    greedy = model.greedy_decode(batch.source, batch.source_lengths, max_length=8)
    beam = model.beam_decode(batch.source, batch.source_lengths, beam_size=1, max_length=8)
    assert torch.equal(greedy.tokens, beam.tokens)
    assert torch.equal(greedy.lengths, beam.lengths)
    torch.testing.assert_close(greedy.scores, beam.scores)
    if attention != "none":
        torch.testing.assert_close(greedy.attention, beam.attention)


def test_wider_beam_never_scores_worse_than_greedy_on_average():
    torch.manual_seed(0)
    model = seq2seq("gru", "luong_general")
    batch = pair_batch([5] * 16, [3] * 16)
    greedy = model.greedy_decode(batch.source, batch.source_lengths, max_length=6)
    beam = model.beam_decode(batch.source, batch.source_lengths, beam_size=5, max_length=6)
    assert float(beam.scores.mean()) >= float(greedy.scores.mean())


def test_beam_decode_validates_arguments():
    model = seq2seq()
    batch = pair_batch([3], [3])
    with pytest.raises(ValueError, match="beam_size: expected an integer >= 1, got 0"):
        model.beam_decode(batch.source, batch.source_lengths, beam_size=0)
    with pytest.raises(ValueError, match="max_length: expected an integer >= 1, got 0"):
        model.greedy_decode(batch.source, batch.source_lengths, max_length=0)
