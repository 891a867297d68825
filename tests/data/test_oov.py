"""Counting and dropping out-of-vocabulary ids before a language model scores them."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.data.oov import count_unknown, prepare_for_scoring

UNK = 1


def test_unlearned_unk_ids_are_counted_and_dropped():
    scored = prepare_for_scoring([5, 1, 6, 1, 7, 8], UNK, unk_learned=False)
    assert scored.ids.tolist() == [5, 6, 7, 8]
    assert (scored.oov, scored.total, scored.unk_scored) == (2, 6, False)
    assert scored.oov_rate == pytest.approx(2 / 6)


def test_learned_unk_ids_are_counted_and_kept():
    ids = np.array([5, 1, 6], dtype=np.int32)
    scored = prepare_for_scoring(ids, UNK, unk_learned=True)
    assert scored.ids.tolist() == [5, 1, 6] and scored.oov == 1 and scored.unk_scored


def test_no_input_has_rate_zero_and_2d_input_is_refused():
    assert prepare_for_scoring([], UNK, False).oov_rate == 0.0
    with pytest.raises(ValueError, match=r"ids: expected a 1-D sequence, got shape \(1, 2\)"):
        prepare_for_scoring([[1, 2]], UNK, False)


def test_count_unknown():
    assert count_unknown(list("abcab~"), {"a": 4, "b": 5}) == 2
