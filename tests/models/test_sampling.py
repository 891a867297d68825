"""Next-token choice and generation: greedy at temperature 0, seeded reproducibility,
top-k/top-p support, and generation through the streaming step API."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.models.model_factories import EOS, conditional_generator, language_model

from rnnkit.models.sampling import SamplingOptions, choose_next, filter_top_k, filter_top_p

PROBABILITIES = torch.tensor([[0.05, 0.5, 0.15, 0.3]])
LOGITS = PROBABILITIES.log()


def _support(options: SamplingOptions, draws: int = 2000) -> set[int]:
    generator = torch.Generator().manual_seed(0)
    rows = LOGITS.expand(draws, -1)
    return set(choose_next(rows, options, generator).tolist())


def test_temperature_zero_is_argmax():
    assert _support(SamplingOptions(temperature=0.0), draws=5) == {1}


def test_tiny_temperature_approaches_greedy_without_overflow():
    assert _support(SamplingOptions(temperature=1e-30), draws=50) == {1}


def test_unfiltered_sampling_reaches_every_token():
    assert _support(SamplingOptions(temperature=1.0)) == {0, 1, 2, 3}


@pytest.mark.parametrize(
    ("k", "support"), [(1, {1}), (2, {1, 3}), (3, {1, 2, 3}), (9, {0, 1, 2, 3})]
)
def test_top_k_restricts_support(k, support):
    assert _support(SamplingOptions(top_k=k)) == support
    assert set(torch.isfinite(filter_top_k(LOGITS, k)).nonzero()[:, 1].tolist()) == support


@pytest.mark.parametrize(
    ("p", "support"), [(0.3, {1}), (0.5, {1}), (0.51, {1, 3}), (0.8, {1, 3}), (0.81, {1, 2, 3})]
)
def test_top_p_keeps_smallest_set_reaching_p(p, support):
    assert _support(SamplingOptions(top_p=p)) == support
    assert set(torch.isfinite(filter_top_p(LOGITS, p)).nonzero()[:, 1].tolist()) == support


def test_filtered_probabilities_are_renormalised():
    kept = filter_top_k(LOGITS, 2).softmax(-1)
    torch.testing.assert_close(kept, torch.tensor([[0.0, 0.5 / 0.8, 0.0, 0.3 / 0.8]]))


def test_sampling_frequencies_follow_temperature():
    generator = torch.Generator().manual_seed(0)
    draws = choose_next(LOGITS.expand(20000, -1), SamplingOptions(temperature=2.0), generator)
    expected = (PROBABILITIES.sqrt() / PROBABILITIES.sqrt().sum())[0]
    observed = torch.bincount(draws, minlength=4) / 20000
    torch.testing.assert_close(observed, expected, atol=0.015, rtol=0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"temperature": -1.0}, "temperature: expected a number >= 0"),
        ({"top_k": 0}, "top_k: expected an integer >= 1"),
        ({"top_p": 0.0}, r"top_p: expected a number in \(0, 1\]"),
        ({"top_p": 1.5}, r"top_p: expected a number in \(0, 1\]"),
    ],
)
def test_bad_sampling_options(options, message):
    with pytest.raises(ValueError, match=message):
        SamplingOptions(**options)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_greedy_generation_matches_full_forward_rollout(cell):
    torch.manual_seed(0)
    model = language_model(cell, num_layers=2, dropout=0.3)
    prime = [3, 4, 5]
    generated = model.generate(prime, max_length=12, temperature=0)
    assert model.training  # restored after generating in eval mode
    model.eval()
    sequence = list(prime)
    for _ in range(12):  # O(n^2) reference: re-run the whole sequence for every token
        logits, _ = model(torch.tensor([sequence]))
        sequence.append(int(logits[0, -1].argmax()))
    assert generated == sequence[len(prime) :]
    assert model.generate(prime, max_length=12, temperature=0, seed=5) == generated


def test_seeded_generation_is_reproducible_and_independent_of_global_rng():
    torch.manual_seed(0)
    model = language_model()
    first = model.generate([3], max_length=30, temperature=1.5, seed=7)
    torch.manual_seed(123)
    assert model.generate([3], max_length=30, temperature=1.5, seed=7) == first
    assert model.generate([3], max_length=30, temperature=1.5, seed=8) != first


def test_generation_stops_before_stop_id_and_respects_max_length():
    torch.manual_seed(0)
    model = language_model()
    free = model.generate([3], max_length=40, temperature=2.0, seed=1)
    assert len(free) == 40
    stop = free[10]
    stopped = model.generate([3], max_length=40, temperature=2.0, seed=1, stop_id=stop)
    assert stopped == free[: free.index(stop)]
    assert model.generate([3], max_length=0) == []


def test_generation_validates_prime():
    with pytest.raises(ValueError, match="prime_ids: expected a non-empty 1-D sequence"):
        language_model().generate([], max_length=3)


def test_top_k_one_equals_greedy():
    torch.manual_seed(0)
    model = language_model()
    greedy = model.generate([4, 5], max_length=15, temperature=0)
    assert model.generate([4, 5], max_length=15, temperature=3.0, top_k=1, seed=3) == greedy


@pytest.mark.parametrize("condition_type", ["class", "vector"])
def test_conditional_generation_greedy_matches_forward_and_stops_at_eos(condition_type):
    torch.manual_seed(0)
    size = 3 if condition_type == "vector" else 0
    model = conditional_generator(condition_type=condition_type, condition_size=size).eval()
    condition = [0.5, -1.0, 2.0] if size else 2
    generated = model.generate(condition, max_length=10, temperature=0, prime_ids=[4])
    sequence = [1, 4]  # BOS, prime
    for _ in range(10):
        logits, _ = model(torch.tensor([condition]), torch.tensor([sequence]))
        sequence.append(int(logits[0, -1].argmax()))
    continuation = sequence[2:]
    expected = continuation[: continuation.index(EOS)] if EOS in continuation else continuation
    assert generated == expected


@settings(max_examples=50, deadline=None, derandomize=True)
@given(
    logits=st.lists(st.floats(-8, 8), min_size=2, max_size=12),
    p=st.floats(0.05, 0.99),
)
def test_top_p_keeps_the_smallest_most_likely_set_reaching_p(logits, p):
    logits = torch.tensor([logits])
    probabilities = logits.softmax(-1)[0]
    kept = torch.isfinite(filter_top_p(logits, p))[0]
    assert float(probabilities[kept].sum()) >= p - 1e-6
    # every kept token is at least as likely as every dropped one
    if (~kept).any():
        assert float(probabilities[kept].min()) >= float(probabilities[~kept].max())
        # minimal: without its least likely member the kept set falls short of p
        assert float(probabilities[kept].sum() - probabilities[kept].min()) < p + 1e-6


@settings(max_examples=50, deadline=None, derandomize=True)
@given(logits=st.lists(st.floats(-8, 8), min_size=1, max_size=12), k=st.integers(1, 15))
def test_top_k_keeps_k_most_likely(logits, k):
    logits = torch.tensor([logits])
    kept = torch.isfinite(filter_top_k(logits, k))[0]
    assert int(kept.sum()) >= min(k, logits.shape[1])  # ties at the k-th value are all kept
    if (~kept).any():
        assert float(logits[0][kept].min()) > float(logits[0][~kept].max())


def test_banned_ids_are_never_chosen_greedy_or_sampled():
    logits = torch.tensor([[5.0, 4.0, 0.0, -1.0]])
    greedy = SamplingOptions(temperature=0, banned_ids=(0,))
    assert int(choose_next(logits, greedy)) == 1
    sampled = SamplingOptions(temperature=5.0, seed=0, banned_ids=(0, 1))
    generator = torch.Generator().manual_seed(0)
    picks = {int(choose_next(logits, sampled, generator)) for _ in range(200)}
    assert picks == {2, 3}
    with pytest.raises(ValueError, match="banned_ids: expected token ids >= 0"):
        SamplingOptions(banned_ids=(-1,))
