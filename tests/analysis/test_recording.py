"""The step-by-step recording computes exactly what the layer computes, and restores the model."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence

from rnnkit import nn as rnn
from rnnkit.analysis.recording import recorded_forward, recording
from rnnkit.models import LanguageModel, LanguageModelConfig

CASES = [
    (rnn.RNN, {}),
    (rnn.RNN, {"nonlinearity": "relu", "num_layers": 2}),
    (rnn.LSTM, {}),
    (rnn.LSTM, {"num_layers": 2, "bidirectional": True}),
    (rnn.LSTM, {"proj_size": 3}),
    (rnn.GRU, {"bidirectional": True, "batch_first": True}),
    (rnn.GRU, {"zoneout": 0.3}),
]


def _state_tensors(state):
    return list(state) if isinstance(state, tuple) else [state]


@pytest.mark.parametrize(("layer_class", "options"), CASES)
def test_recorded_forward_matches_layer(layer_class, options):
    torch.manual_seed(0)
    layer = layer_class(3, 5, backend="torch", **options).eval()
    shape = (4, 7, 3) if options.get("batch_first") else (7, 4, 3)
    x = torch.randn(shape)
    lengths = torch.tensor([7, 3, 0, 5])
    expected_output, expected_state = layer(x, lengths=lengths)
    (output, state), trace = recorded_forward(layer, x, lengths=lengths)
    torch.testing.assert_close(output, expected_output)
    for got, want in zip(_state_tensors(state), _state_tensors(expected_state), strict=True):
        torch.testing.assert_close(got, want)
    assert trace.num_layers == layer.num_layers and trace.seq_len == 7
    assert trace.lengths.tolist() == [7, 3, 0, 5]


@settings(max_examples=20, deadline=None)
@given(lengths=st.lists(st.integers(0, 6), min_size=1, max_size=4), cell=st.sampled_from(
    ["RNN", "LSTM", "GRU"]))
def test_recorded_states_hold_last_valid_step(lengths, cell):
    torch.manual_seed(1)
    layer = getattr(rnn, cell)(2, 3, batch_first=True)
    x = torch.randn(len(lengths), 6, 2)
    (output, _), trace = recorded_forward(layer, x, lengths=lengths)
    hidden = trace.hidden(0, 0)  # (batch, seq, 3)
    for row, length in enumerate(lengths):
        assert torch.all(output[row, length:] == 0)
        if length:
            torch.testing.assert_close(hidden[row, length - 1], output[row, length - 1].detach())
            # after the last valid step the state is carried unchanged
            torch.testing.assert_close(hidden[row, -1], hidden[row, length - 1])


def test_packed_and_unbatched_inputs():
    torch.manual_seed(0)
    layer = rnn.LSTM(2, 3, backend="torch")
    padded = torch.randn(5, 3, 2)
    packed = pack_padded_sequence(padded, [5, 2, 4], enforce_sorted=False)
    (output, _), trace = recorded_forward(layer, packed)
    expected, _ = layer(packed)
    torch.testing.assert_close(output.data, expected.data)
    assert trace.lengths.tolist() == [5, 2, 4]
    (single, state), _ = recorded_forward(layer, padded[:, 0])
    torch.testing.assert_close(single, layer(padded[:, 0])[0])
    assert state[0].shape == (1, 3)


def test_recording_swaps_and_restores_forward():
    model = LanguageModel(LanguageModelConfig(vocab_size=6, hidden_size=4, embedding_size=3))
    model.rnn.backend = "torch"  # the reference path, whatever the global default
    tokens = torch.randint(6, (2, 5))
    expected, _ = model(tokens)
    with recording(model) as recorder:
        logits, _ = model(tokens)
    torch.testing.assert_close(logits, expected)
    assert [trace.name for trace in recorder.traces] == ["rnn"]
    assert "forward" not in vars(model.rnn)  # the class's forward is back


def test_recording_rejects_model_without_recurrent_layers():
    with pytest.raises(ValueError, match="recurrent layers"), recording(torch.nn.Linear(2, 2)):
        pass
