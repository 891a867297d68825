"""``lengths=``: padding is ignored, per-row final states, rows of length zero."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.nn.helpers import KINDS, as_tuple, make_pair

import rnnkit.nn as rnn

BACKENDS = ["torch", "python"]


def _row_by_row(layer, x, lengths, hx):
    """Run each row alone on its valid prefix: the definition of correct lengths handling."""
    outputs, finals = [], []
    for row, length in enumerate(lengths):
        state = None if hx is None else tuple(t[:, row:row + 1] for t in as_tuple(hx))
        if state is not None and len(state) == 1:
            state = state[0]
        if length == 0:
            outputs.append(x.new_zeros(x.shape[0], 1, layer.state_size * layer.num_directions))
            finals.append(state if state is not None else None)
            continue
        output, final = layer(x[:length, row:row + 1], state)
        pad = x.new_zeros(x.shape[0] - length, 1, output.shape[2])
        outputs.append(torch.cat([output, pad]))
        finals.append(final)
    return torch.cat(outputs, dim=1), finals


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_lengths_equal_running_each_row_alone(kind, backend):
    _, layer = make_pair(kind, 3, 4, num_layers=2, bidirectional=True, backend=backend)
    torch.manual_seed(0)
    x = torch.randn(6, 4, 3, dtype=torch.float64)
    lengths = [3, 6, 1, 5]
    output, final = layer(x, lengths=lengths)
    expected_output, expected_finals = _row_by_row(layer, x, lengths, None)
    torch.testing.assert_close(output, expected_output, rtol=0, atol=1e-12)
    for row, expected in enumerate(expected_finals):
        for actual_part, expected_part in zip(as_tuple(final), as_tuple(expected), strict=True):
            torch.testing.assert_close(actual_part[:, row:row + 1], expected_part, rtol=0,
                                       atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_zero_length_rows_output_zero_and_keep_initial_state(kind, backend):
    _, layer = make_pair(kind, 2, 3, num_layers=2, bidirectional=True, backend=backend)
    x = torch.randn(4, 3, 2, dtype=torch.float64)
    states = [torch.randn(4, 3, 3, dtype=torch.float64) for _ in range(2 if kind == "LSTM" else 1)]
    hx = tuple(states) if kind == "LSTM" else states[0]
    output, final = layer(x, hx, lengths=torch.tensor([0, 4, 0]))
    assert not output[:, [0, 2]].any()
    for initial, last in zip(as_tuple(hx), as_tuple(final), strict=True):
        torch.testing.assert_close(last[:, [0, 2]], initial[:, [0, 2]], rtol=0, atol=0)
    all_empty, empty_final = layer(x, hx, lengths=[0, 0, 0])
    assert not all_empty.any()
    torch.testing.assert_close(as_tuple(empty_final)[0], as_tuple(hx)[0], rtol=0, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_padding_values_do_not_leak(backend):
    _, layer = make_pair("GRU", 2, 3, bidirectional=True, batch_first=True, backend=backend)
    x = torch.randn(2, 5, 2, dtype=torch.float64)
    noisy = x.clone()
    noisy[0, 3:] = 1e6
    lengths = [3, 5]
    clean_output, clean_final = layer(x, lengths=lengths)
    noisy_output, noisy_final = layer(noisy, lengths=lengths)
    torch.testing.assert_close(noisy_output, clean_output, rtol=0, atol=0)
    torch.testing.assert_close(noisy_final, clean_final, rtol=0, atol=0)
    assert not clean_output[0, 3:].any()


@pytest.mark.parametrize("make_lengths", [
    lambda: [2, 4, 3],
    lambda: (2, 4, 3),
    lambda: torch.tensor([2, 4, 3]),
    lambda: torch.tensor([2, 4, 3], dtype=torch.int32),
    lambda: np.array([2, 4, 3]).tolist(),
])
def test_lengths_accepts_lists_and_integer_tensors(make_lengths):
    _, layer = make_pair("LSTM", 2, 3, backend="torch")
    x = torch.randn(4, 3, 2, dtype=torch.float64)
    expected, _ = layer(x, lengths=[2, 4, 3])
    actual, _ = layer(x, lengths=make_lengths())
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)


@settings(max_examples=30, deadline=None)
@given(lengths=st.lists(st.integers(0, 5), min_size=1, max_size=4),
       kind=st.sampled_from(KINDS), bidirectional=st.booleans())
def test_backends_agree_on_any_lengths(lengths, kind, bidirectional):
    _, fused = make_pair(kind, 2, 3, bidirectional=bidirectional, backend="torch")
    loop = type(fused)(2, 3, bidirectional=bidirectional, dtype=torch.float64, backend="python",
                       **({"nonlinearity": fused.nonlinearity} if kind.startswith("RNN") else {}))
    loop.load_state_dict(fused.state_dict())
    x = torch.randn(5, len(lengths), 2, dtype=torch.float64)
    expected_output, expected_final = fused(x, lengths=lengths)
    output, final = loop(x, lengths=lengths)
    assert output.shape == (5, len(lengths), 3 * (2 if bidirectional else 1))
    torch.testing.assert_close(output, expected_output, rtol=0, atol=1e-12)
    for actual, expected in zip(as_tuple(final), as_tuple(expected_final), strict=True):
        torch.testing.assert_close(actual, expected, rtol=0, atol=1e-12)


def test_lengths_gradients_reach_only_valid_steps():
    layer = rnn.LSTM(2, 3, bidirectional=True, backend="python")
    x = torch.randn(5, 2, 2, requires_grad=True)
    output, _ = layer(x, lengths=[2, 5])
    output.sum().backward()
    assert not x.grad[2:, 0].any()
    assert x.grad[:2, 0].abs().sum() > 0
