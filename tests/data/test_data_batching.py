"""Padding/collation, splits, bucketing and the language-model stream layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from rnnkit.data import (
    IGNORE_INDEX,
    LanguageModelStream,
    bucketed_batches,
    collate_classification,
    collate_conditional,
    collate_pairs,
    collate_tagging,
    pad_sequences,
    padding_fraction,
    plain_batches,
    split_by_group,
    split_indices,
)
from rnnkit.data.bucketing import epoch_rng

_SEQUENCES = st.lists(st.lists(st.integers(4, 50), min_size=1, max_size=12), min_size=1,
                      max_size=10)


@given(_SEQUENCES)
def test_padding_keeps_every_token_and_records_lengths(sequences):
    padded, lengths = pad_sequences(sequences, pad_value=0)
    assert padded.dtype == torch.int64 and lengths.tolist() == [len(s) for s in sequences]
    assert padded.shape == (len(sequences), max(map(len, sequences)))
    for row, sequence in enumerate(sequences):
        assert padded[row, : len(sequence)].tolist() == sequence
        assert (padded[row, len(sequence):] == 0).all()


@given(_SEQUENCES)
def test_tagging_targets_are_ignored_exactly_at_padding(sequences):
    batch = collate_tagging([(s, [t % 3 for t in s]) for s in sequences], pad_id=0)
    mask = torch.arange(batch.tokens.shape[1])[None, :] < batch.lengths[:, None]
    assert ((batch.targets == IGNORE_INDEX) == ~mask).all()


def test_classification_pairs_and_conditional_layouts():
    batch = collate_classification([([5, 6, 7], 1), ([8], 0)], pad_id=0)
    assert batch.tokens.tolist() == [[5, 6, 7], [8, 0, 0]] and batch.targets.tolist() == [1, 0]
    pairs = collate_pairs([([5, 6], [7]), ([5], [8, 9])], pad_id=0, bos_id=2, eos_id=3)
    assert pairs.target.tolist() == [[2, 7, 3, 0], [2, 8, 9, 3]]
    assert pairs.target_lengths.tolist() == [3, 4] and pairs.source_lengths.tolist() == [2, 1]
    conditional = collate_conditional([(4, [7, 8]), (1, [9])], pad_id=0, bos_id=2, eos_id=3)
    assert conditional.condition.tolist() == [4, 1]
    assert conditional.tokens.tolist() == [[2, 7, 8], [2, 9, 0]]
    assert conditional.targets.tolist() == [[7, 8, 3], [9, 3, IGNORE_INDEX]]
    vectors = collate_conditional([([0.5, 1.0], [7])], pad_id=0, bos_id=2, eos_id=3)
    assert vectors.condition.dtype == torch.float32 and vectors.condition.shape == (1, 2)


def test_collate_rejects_empty_sequences_and_misaligned_tags():
    with pytest.raises(ValueError, match="sequence 1 of the batch is empty"):
        pad_sequences([[1], []], 0)
    with pytest.raises(ValueError, match="example 0: 2 tokens but 1 tags"):
        collate_tagging([([1, 2], [0])], pad_id=0)


def test_split_indices_is_deterministic_disjoint_and_complete():
    first, again = split_indices(103, seed=7), split_indices(103, seed=7)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(first.items(), again.items(),
                                                                strict=True))
    assert (len(first.train), len(first.valid), len(first.test)) == (83, 10, 10)
    together = np.concatenate([first.train, first.valid, first.test])
    assert sorted(together.tolist()) == list(range(103))
    assert not np.array_equal(split_indices(103, seed=8).test, first.test)


def test_split_by_group_keeps_groups_whole_and_ignores_example_order():
    groups = [f"movie{i % 23}" for i in range(400)]
    split = split_by_group(groups, (0.7, 0.15, 0.15), seed=3)
    parts = [{groups[i] for i in part} for _, part in split.items()]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(len(part) for _, part in split.items()) == 400
    assert len(split.test) >= 0.15 * 400 and len(split.valid) >= 0.15 * 400
    shuffled = groups[::-1]
    assert {shuffled[i] for i in split_by_group(shuffled, (0.7, 0.15, 0.15), 3).test} == parts[2]


def test_split_rejects_bad_fractions():
    with pytest.raises(ValueError, match=r"three non-negative numbers summing to 1 .* got "
                                         r"\(0\.5, 0\.5\)"):
        split_indices(10, (0.5, 0.5))


def test_bucketing_cuts_padding_is_deterministic_and_covers_every_example():
    lengths = np.random.default_rng(0).integers(1, 200, size=2000)
    plain = plain_batches(len(lengths), 32, epoch_rng(0, 0))
    bucketed = bucketed_batches(lengths, 32, epoch_rng(0, 0))
    assert padding_fraction(lengths, bucketed) < 0.1 < 0.4 < padding_fraction(lengths, plain)
    again = bucketed_batches(lengths, 32, epoch_rng(0, 0))
    assert all(np.array_equal(a, b) for a, b in zip(bucketed, again, strict=True))
    assert sorted(np.concatenate(bucketed).tolist()) == list(range(2000))
    other_epoch = bucketed_batches(lengths, 32, epoch_rng(0, 1))
    assert not np.array_equal(bucketed[0], other_epoch[0])


@given(st.lists(st.integers(1, 40), min_size=1, max_size=120), st.integers(1, 9),
       st.integers(1, 4), st.integers(0, 3))
def test_bucketed_batches_partition_the_examples(lengths, batch_size, pool_batches, seed):
    batches = bucketed_batches(lengths, batch_size, epoch_rng(seed, 0), pool_batches)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    assert all(1 <= len(b) <= batch_size for b in batches)
    assert padding_fraction(lengths, batches) <= padding_fraction(
        lengths, plain_batches(len(lengths), len(lengths), None)) + 1e-12


def test_drop_last_keeps_only_full_batches():
    batches = bucketed_batches(list(range(70)), 8, epoch_rng(0, 0), pool_batches=4,
                               drop_last=True)
    assert {len(b) for b in batches} == {8}
    assert len(plain_batches(70, 8, None, drop_last=True)) == 8


def test_lm_stream_rows_continue_across_consecutive_batches():
    ids = np.arange(1000)
    stream = LanguageModelStream(ids, batch_size=4, seq_len=30)
    batches = list(stream.iter_epoch(0))
    assert len(batches) == len(stream) == 9  # 249 steps per stream -> 8 full chunks + 9
    rows = torch.cat([b.tokens for b in batches], dim=1)
    assert rows.tolist() == np.arange(996).reshape(4, 249).tolist()
    for batch in batches:
        assert (batch.targets == batch.tokens + 1).all()
        assert batch.lengths.tolist() == [batch.tokens.shape[1]] * 4
    assert batches[-1].tokens.shape == (4, 9)


def test_lm_stream_random_offset_moves_boundaries_but_keeps_batch_count():
    stream = LanguageModelStream(np.arange(500), batch_size=2, seq_len=20, seed=1,
                                 random_offset=True)
    firsts = {int(next(stream.iter_epoch(e)).tokens[0, 0]) for e in range(6)}
    assert len(firsts) > 1
    assert all(sum(1 for _ in stream.iter_epoch(e)) == len(stream) for e in range(6))


def test_lm_stream_rejects_too_short_text():
    with pytest.raises(ValueError, match="a stream of 3 tokens is too short for batch_size 4"):
        LanguageModelStream([1, 2, 3], batch_size=4, seq_len=2)
