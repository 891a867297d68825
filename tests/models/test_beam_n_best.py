"""beam_search_n_best: the N best hypotheses, exact when the beam holds every prefix."""

from __future__ import annotations

import itertools

import pytest
import torch
from tests.models.test_beam_search import BOS, EOS, PAD, VOCAB, _markov_step

from rnnkit.models.beam_search import beam_search, beam_search_n_best, length_penalty


def _all_ranked(table, max_length, alpha):
    """Every output of up to ``max_length`` tokens as (ranked score, tokens), best first."""
    scored = []
    for length in range(1, max_length + 1):
        for tokens in itertools.product(range(VOCAB), repeat=length):
            if EOS in tokens[:-1] or (length < max_length and tokens[-1] != EOS):
                continue
            previous, total = BOS, 0.0
            for token in tokens:
                total += float(table[previous, token])
                previous = token
            ranked = total / float(length_penalty(torch.tensor(length), alpha))
            scored.append((ranked, total, [t for t in tokens if t != EOS]))
    return sorted(scored, key=lambda entry: -entry[0])


def _search(table, n_best, alpha, search=beam_search_n_best):
    extra = {} if search is beam_search else {"n_best": n_best}
    return search(_markov_step(table), torch.zeros(VOCAB**3), lambda state, rows: state[rows],
                  batch_size=1, beam_size=VOCAB**3, bos_id=BOS, eos_id=EOS, pad_id=PAD,
                  max_length=4, alpha=alpha, **extra)


@pytest.mark.parametrize("alpha", [0.0, 0.6])
@pytest.mark.parametrize("seed", range(3))
def test_wide_beam_n_best_is_the_exact_top_three(alpha, seed):
    torch.manual_seed(seed)
    table = torch.randn(VOCAB, VOCAB).log_softmax(-1)
    ranked = _search(table, 3, alpha)
    expected = _all_ranked(table, 4, alpha)[:3]
    assert len(ranked) == 3
    for decoded, (_, total, tokens) in zip(ranked, expected, strict=True):
        length = int(decoded.lengths[0])
        assert decoded.tokens[0, :length].tolist() == tokens
        assert float(decoded.scores[0]) == pytest.approx(total, abs=1e-5)
    first = _search(table, 1, alpha, search=beam_search)
    assert torch.equal(first.tokens, ranked[0].tokens)


def test_n_best_above_the_beam_is_refused():
    table = torch.zeros(VOCAB, VOCAB).log_softmax(-1)
    with pytest.raises(ValueError, match=r"n_best: expected an integer in \[1, beam_size=125\], "
                                         r"got 126"):
        _search(table, VOCAB**3 + 1, 0.0)
