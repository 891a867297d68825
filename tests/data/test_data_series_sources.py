"""Windows, the scaler and batch sources (including exact resume)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from rnnkit.data import (
    LanguageModelStream,
    StandardScaler,
    WindowSource,
    chronological_split,
    classification_source,
    conditional_source,
    pair_source,
    sliding_windows,
    tagging_source,
)
from rnnkit.data.sources import BatchSource


def test_sliding_windows_layout_and_stride():
    values = np.arange(10.0)
    history, future = sliding_windows(values, lookback=3, horizon=2, stride=2)
    assert history.shape == (3, 3, 1) and future.shape == (3, 2, 1)
    assert history[1, :, 0].tolist() == [2, 3, 4] and future[1, :, 0].tolist() == [5, 6]


@given(st.integers(5, 60), st.integers(1, 6), st.integers(1, 4), st.integers(1, 3))
def test_window_count_and_alignment(steps, lookback, horizon, stride):
    values = np.stack([np.arange(steps), -np.arange(steps)], axis=1).astype(float)
    if steps < lookback + horizon:
        with pytest.raises(ValueError, match="too short"):
            sliding_windows(values, lookback, horizon, stride)
        return
    history, future = sliding_windows(values, lookback, horizon, stride, target_columns=[1])
    assert len(history) == (steps - lookback - horizon) // stride + 1
    assert future.shape[1:] == (horizon, 1)
    np.testing.assert_array_equal(future[:, 0, 0], -(history[:, -1, 0] + 1))


def test_context_lets_valid_windows_start_at_the_first_valid_step():
    train, valid, test = chronological_split(np.arange(30.0), valid_size=6, test_size=4)
    assert (len(train), len(valid), len(test)) == (20, 6, 4)
    history, future = sliding_windows(valid, lookback=5, horizon=2, context=train)
    assert future[0, :, 0].tolist() == [20, 21] and history[0, :, 0].tolist() == [15, 16, 17,
                                                                                  18, 19]
    assert future[-1, :, 0].tolist() == [24, 25]
    with pytest.raises(ValueError, match="valid_size \\+ test_size must be in \\[0, 30\\)"):
        chronological_split(np.arange(30.0), 20, 10)


def test_scaler_is_fitted_on_train_only_and_inverts():
    train, valid, _ = chronological_split(np.arange(100.0)[:, None] * [1, 10], 10, 10)
    scaler = StandardScaler().fit(train)
    np.testing.assert_allclose(scaler.mean, [39.5, 395])
    scaled = scaler.transform(valid)
    np.testing.assert_allclose(scaled.mean(axis=0), (valid.mean(0) - train.mean(0)) /
                               train.std(0))
    np.testing.assert_allclose(scaler.inverse_transform(scaled), valid)
    np.testing.assert_allclose(scaler.inverse_transform(scaled[:, 1:], columns=[1]),
                               valid[:, 1:])
    restored = StandardScaler.from_dict(scaler.to_dict())
    np.testing.assert_allclose(restored.transform(valid), scaled)


def test_scaler_handles_constant_features_and_refuses_use_before_fit():
    scaler = StandardScaler().fit(np.ones((5, 1)))
    assert scaler.transform(np.ones((2, 1))).tolist() == [[0.0], [0.0]]
    with pytest.raises(RuntimeError, match="not fitted"):
        StandardScaler().transform(np.ones(3))


def _sources():
    rng = np.random.default_rng(0)
    sequences = [rng.integers(4, 30, size=rng.integers(1, 15)).tolist() for _ in range(101)]
    history = rng.standard_normal((57, 8, 2))
    return {
        "classification": classification_source([(s, len(s) % 2) for s in sequences], 0, 8,
                                                 seed=5),
        "tagging": tagging_source([(s, [t % 3 for t in s]) for s in sequences], 0, 8, seed=5),
        "pairs": pair_source([(s, s[::-1]) for s in sequences], 0, 2, 3, 8, seed=5),
        "conditional": conditional_source([(len(s) % 4, s) for s in sequences], 0, 2, 3, 8,
                                          seed=5),
        "windows": WindowSource(history, history[:, -3:, :1], 8, seed=5),
        "lm": LanguageModelStream(rng.integers(4, 30, 2000), 4, 25, seed=5, random_offset=True),
    }


def _same(a, b) -> bool:
    return all(torch.equal(getattr(a, name), getattr(b, name)) for name in vars(a)
               if isinstance(getattr(a, name), torch.Tensor))


@pytest.mark.parametrize("name", ["classification", "tagging", "pairs", "conditional",
                                  "windows", "lm"])
def test_resume_epoch_e_from_batch_k_equals_the_tail_of_the_full_epoch(name):
    source = _sources()[name]
    assert isinstance(source, BatchSource)
    full = list(source.iter_epoch(3))
    assert len(full) == len(source)
    for k in (0, 1, len(full) - 1):
        resumed = list(_sources()[name].iter_epoch(3, start=k))
        assert len(resumed) == len(full) - k
        assert all(_same(a, b) for a, b in zip(resumed, full[k:], strict=True))


def test_epochs_differ_but_each_covers_every_example_once():
    source = _sources()["classification"]
    first, second = (list(source.iter_epoch(e)) for e in (0, 1))
    assert sum(len(b) for b in first) == 101
    assert not all(_same(a, b) for a, b in zip(first, second, strict=False))


def test_unshuffled_source_keeps_example_order():
    source = classification_source([([i + 4], i % 2) for i in range(10)], 0, 4, shuffle=False)
    assert [b.tokens[:, 0].tolist() for b in source.iter_epoch(7)] == [
        [4, 5, 6, 7], [8, 9, 10, 11], [12, 13]]
