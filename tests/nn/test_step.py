"""Streaming: ``step()`` equals ``forward()``; ``reset_state`` restarts chosen rows."""

from __future__ import annotations

import pytest
import torch
from tests.nn.helpers import KINDS, as_tuple, make_pair

import rnnkit.nn as rnn


@pytest.mark.parametrize("backend", ["torch", "python"])
@pytest.mark.parametrize("kind", KINDS)
def test_step_by_step_equals_forward(kind, backend):
    options = {"proj_size": 2} if kind == "LSTM" else {}
    _, layer = make_pair(kind, 3, 4, num_layers=2, backend=backend, **options)
    x = torch.randn(7, 2, 3, dtype=torch.float64)
    expected_output, expected_final = layer(x)
    state = None
    outputs = []
    for t in range(x.shape[0]):
        y, state = layer.step(x[t], state)
        outputs.append(y)
    torch.testing.assert_close(torch.stack(outputs), expected_output, rtol=0, atol=1e-12)
    for actual, expected in zip(as_tuple(state), as_tuple(expected_final), strict=True):
        torch.testing.assert_close(actual, expected, rtol=0, atol=1e-12)


def test_step_accepts_unbatched_input():
    _, layer = make_pair("GRU", 3, 4, num_layers=2)
    x = torch.randn(5, 3, dtype=torch.float64)
    expected, expected_final = layer(x)
    state = None
    for t in range(5):
        y, state = layer.step(x[t], state)
    assert y.shape == (4,) and state.shape == (2, 4)
    torch.testing.assert_close(y, expected[-1], rtol=0, atol=1e-12)
    torch.testing.assert_close(state, expected_final, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_reset_state_zeroes_only_chosen_rows(kind):
    _, layer = make_pair(kind, 2, 3, num_layers=2)
    _, state = layer(torch.randn(4, 3, 2, dtype=torch.float64))
    for rows in ([1], torch.tensor([1]), torch.tensor([False, True, False])):
        cleared = layer.reset_state(state, rows)
        for before, after in zip(as_tuple(state), as_tuple(cleared), strict=True):
            assert not after[:, 1].any()
            torch.testing.assert_close(after[:, [0, 2]], before[:, [0, 2]], rtol=0, atol=0)
            assert before[:, 1].abs().sum() > 0  # the input state was not modified


def test_independent_streams_restart_like_fresh_sequences():
    """Row 0 restarts at step 3: its outputs from then on equal a fresh run on that suffix."""
    _, layer = make_pair("LSTM", 2, 3)
    x = torch.randn(6, 2, 2, dtype=torch.float64)
    state = None
    outputs = []
    for t in range(6):
        if t == 3:
            state = layer.reset_state(state, [0])
        y, state = layer.step(x[t], state)
        outputs.append(y)
    fresh, _ = layer(x[3:, :1])
    torch.testing.assert_close(torch.stack(outputs[3:])[:, :1], fresh, rtol=0, atol=1e-12)
    continuous, _ = layer(x[:, 1:])
    torch.testing.assert_close(torch.stack(outputs)[:, 1:], continuous, rtol=0, atol=1e-12)


def test_step_gradients_flow_through_time():
    layer = rnn.RNN(2, 3)
    x = torch.randn(4, 1, 2, requires_grad=True)
    state = None
    for t in range(4):
        y, state = layer.step(x[t], state)
    y.sum().backward()
    assert x.grad[0].abs().sum() > 0
