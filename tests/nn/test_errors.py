"""Every error message of the layers and cells, pinned."""

from __future__ import annotations

import re

import pytest
import torch

import rnnkit.nn as rnn


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"hidden_size": 2.5}, TypeError, "hidden_size should be of type int, got: float (2.5)"),
    ({"hidden_size": 0}, ValueError, "hidden_size must be greater than zero, got 0"),
    ({"num_layers": 0}, ValueError, "num_layers must be greater than zero, got 0"),
    ({"num_layers": "2"}, TypeError, "num_layers should be of type int, got: str ('2')"),
    ({"input_size": -1}, ValueError, "input_size must be greater than zero, got -1"),
    ({"input_size": 0}, ValueError, "input_size must be greater than zero, got 0"),
    ({"dropout": 1.5}, ValueError, "dropout should be a number in range [0, 1] representing the "
                                   "probability of an element being zeroed, got 1.5"),
    ({"dropout": "0.1"}, TypeError, "dropout should be a number in range [0, 1] representing the "
                                     "probability of an element being zeroed, got: str ('0.1')"),
    ({"bidirectional": 1}, TypeError, "bidirectional should be of type bool, got: int (1)"),
    ({"batch_first": None}, TypeError, "batch_first should be of type bool, got: NoneType (None)"),
    ({"backend": "cuda"}, ValueError,
     "backend must be one of 'auto', 'native', 'torch', 'python', got 'cuda'"),
    ({"recurrent_dropout": 1.0}, ValueError,
     "recurrent_dropout should be a number in range [0, 1), got 1.0"),
    ({"zoneout": -0.1}, ValueError, "zoneout should be a number in range [0, 1), got -0.1"),
    ({"proj_size": 8}, ValueError,
     "proj_size has to be smaller than hidden_size, got proj_size=8 and hidden_size=8"),
    ({"proj_size": -1}, ValueError,
     "proj_size should be a positive integer or zero to disable projections, got -1"),
    ({"zoneout": 0.1, "backend": "native"}, ValueError,
     "backend='native' does not support recurrent_dropout, zoneout or layer_norm"),
])
def test_constructor_errors(kwargs, error, message):
    arguments = {"input_size": 4, "hidden_size": 8, **kwargs}
    with pytest.raises(error, match=re.escape(message)):
        rnn.LSTM(**arguments)


def test_unknown_nonlinearity():
    with pytest.raises(ValueError, match=re.escape(
            "Unknown nonlinearity 'sigmoid': nonlinearity must be one of 'tanh', 'relu'")):
        rnn.RNN(3, 4, nonlinearity="sigmoid")


def test_dropout_with_one_layer_warns_like_torch():
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        rnn.GRU(3, 4, dropout=0.5)


def test_wrong_input_rank():
    with pytest.raises(ValueError, match=re.escape(
            "GRU: Expected input to be 2D or 3D, got 4D instead (2D is unbatched, 3D batched; "
            "input shape (1, 2, 3, 4))")):
        rnn.GRU(4, 5)(torch.randn(1, 2, 3, 4))


def test_wrong_feature_size_suggests_batch_first():
    layer = rnn.LSTM(10, 20)
    with pytest.raises(RuntimeError, match=re.escape(
            "LSTM: input.size(-1) must be equal to input_size. Expected 10, got 7 (input shape "
            "(32, 10, 7)); the shape would fit (batch, seq, feature): did you mean "
            "batch_first=True?")):
        layer(torch.randn(32, 10, 7))


def test_shape_errors_are_also_value_errors():
    with pytest.raises(ValueError, match=re.escape("input.size")):
        rnn.RNN(3, 4)(torch.randn(5, 2, 6))


def test_integer_input_needs_an_embedding():
    with pytest.raises(TypeError, match="token ids need an embedding first"):
        rnn.RNN(3, 4)(torch.zeros(5, 2, 3, dtype=torch.long))


def test_not_a_tensor():
    with pytest.raises(TypeError, match=re.escape(
            "RNN: input should be a Tensor or a PackedSequence, got list")):
        rnn.RNN(3, 4)([[0.0, 1.0, 2.0]])


def test_wrong_h0_shape():
    layer = rnn.GRU(3, 4, num_layers=2)
    with pytest.raises(RuntimeError, match=re.escape(
            "GRU: Expected hidden size (2, 5, 4), got [1, 5, 4] (h_0 should be "
            "(num_layers * num_directions, batch, hidden_size))")):
        layer(torch.randn(7, 5, 3), torch.zeros(1, 5, 4))


def test_h0_rank_must_follow_batching():
    layer = rnn.RNN(3, 4)
    with pytest.raises(ValueError, match=re.escape(
            "RNN: For unbatched 2-D input, hx should also be 2-D but got 3-D tensor "
            "(h_0 of shape (1, 1, 4))")):
        layer(torch.randn(7, 3), torch.zeros(1, 1, 4))


def test_lstm_state_must_be_a_pair():
    with pytest.raises(TypeError, match=re.escape(
            "LSTM: hx should be a tuple of two Tensors (h_0, c_0), got Tensor")):
        rnn.LSTM(3, 4)(torch.randn(2, 1, 3), torch.zeros(1, 1, 4))


def test_wrong_c0_shape():
    with pytest.raises(RuntimeError, match=re.escape(
            "LSTM: Expected hidden[1] size (1, 1, 4), got [1, 1, 3] (c_0 should be "
            "(num_layers * num_directions, batch, hidden_size))")):
        rnn.LSTM(3, 4, proj_size=3)(torch.randn(2, 1, 3),
                                     (torch.zeros(1, 1, 3), torch.zeros(1, 1, 3)))


def test_dtype_mismatch():
    with pytest.raises(RuntimeError, match=re.escape(
            "LSTM: RNN input dtype (torch.float64) does not match weight dtype (torch.float32). "
            "Convert input: input.to(torch.float32), or convert model: model.to(torch.float64)")):
        rnn.LSTM(3, 4)(torch.randn(2, 1, 3, dtype=torch.float64))


def test_state_dtype_mismatch():
    with pytest.raises(RuntimeError, match=re.escape(
            "GRU: h_0 dtype (torch.float64) does not match weight dtype (torch.float32). "
            "Convert h_0: h_0.to(torch.float32)")):
        rnn.GRU(3, 4)(torch.randn(2, 1, 3), torch.zeros(1, 1, 4, dtype=torch.float64))


def test_device_mismatch():
    layer = rnn.GRU(3, 4, device="meta")
    with pytest.raises(RuntimeError, match=re.escape(
            "GRU: Input and parameter tensors are not at the same device: input is on device "
            "cpu but the layer's parameters are on meta")):
        layer(torch.randn(2, 1, 3, dtype=torch.float32))


@pytest.mark.parametrize(("lengths", "error", "message"), [
    ([2, -1, 3], ValueError, "RNN: lengths must be non-negative, got [2, -1, 3]"),
    ([2, 9, 3], ValueError,
     "RNN: lengths must not exceed the sequence length 5, got a maximum of 9"),
    ([2, 3], ValueError, "RNN: lengths should hold one length per batch row (3), got shape (2,)"),
    (torch.tensor([1.0, 2.0, 3.0]), TypeError,
     "RNN: lengths should be an integer tensor, got torch.float32"),
    ([1, 2.5, 3], TypeError, "RNN: lengths should hold integers, got [1, 2.5, 3]"),
    ("123", TypeError, "RNN: lengths should be a list or an integer tensor, got str"),
])
def test_bad_lengths(lengths, error, message):
    with pytest.raises(error, match=re.escape(message)):
        rnn.RNN(3, 4)(torch.randn(5, 3, 3), lengths=lengths)


def test_lengths_and_packed_input_together():
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.randn(4, 2, 3), [4, 2])
    with pytest.raises(ValueError, match="RNN: pass either a PackedSequence or lengths=, not both"):
        rnn.RNN(3, 4)(packed, lengths=[4, 2])


def test_step_needs_unidirectional_layer():
    with pytest.raises(ValueError, match=re.escape("GRU.step() needs a unidirectional layer")):
        rnn.GRU(3, 4, bidirectional=True).step(torch.randn(2, 3))


def test_reset_state_rows_out_of_range():
    layer = rnn.GRU(3, 4)
    _, state = layer(torch.randn(2, 3, 3))
    with pytest.raises(ValueError, match=re.escape(
            "GRU.reset_state: rows must be in [0, 3), got [5]")):
        layer.reset_state(state, [5])
    with pytest.raises(ValueError, match=re.escape(
            "GRU.reset_state: a boolean rows mask needs shape (3,), got (2,)")):
        layer.reset_state(state, torch.tensor([True, False]))


def test_cell_errors():
    with pytest.raises(ValueError, match=re.escape(
            "LSTMCell: Expected input to be 1D or 2D, got 3D instead (1D is unbatched, 2D "
            "batched; input shape (1, 2, 3))")):
        rnn.LSTMCell(3, 4)(torch.randn(1, 2, 3))
    with pytest.raises(RuntimeError, match=re.escape(
            "GRUCell: hidden0 has inconsistent hidden_size: got 5, expected 4 (hx of shape "
            "(2, 5), expected (2, 4))")):
        rnn.GRUCell(3, 4)(torch.randn(2, 3), torch.zeros(2, 5))
    with pytest.raises(TypeError, match=re.escape("LSTMCell: hx should be a tuple (h_0, c_0)")):
        rnn.LSTMCell(3, 4)(torch.randn(2, 3), torch.zeros(2, 4))
