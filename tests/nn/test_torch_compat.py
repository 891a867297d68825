"""rnnkit.nn against torch.nn where inputs, arguments or mistakes are unusual (issue 12).

Three groups, each checked against torch.nn itself rather than against pinned values:

- empty inputs: a batch of 0 rows gives torch's empty outputs and gradients on every backend;
  a sequence of length 0 raises torch's error;
- constructor arguments: accepted where torch accepts them, rejected with torch's exception
  type where torch rejects them;
- error messages: every message contains the wording torch's own tests match.
"""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from tests.nn.helpers import KINDS, as_tuple, make_pair, outputs_and_grads
from torch.nn.utils.rnn import PackedSequence

import rnnkit.nn as rnn

BACKENDS = ("auto", "native", "torch", "python")
TOLERANCE = {torch.float32: {"rtol": 1e-5, "atol": 1e-5},
             torch.float64: {"rtol": 1e-10, "atol": 1e-10}}


def zero_state(kind: str, layers: int, batch: int, size: int, dtype: torch.dtype):
    """An initial state ``(layers, batch, size)`` (a pair for LSTM) of ones, so it shows."""
    h = torch.ones(layers, batch, size, dtype=dtype)
    return (h, torch.ones_like(h)) if kind == "LSTM" else h


def assert_same_results(want: list, got: list, dtype: torch.dtype) -> None:
    """Tensors (or ``None`` gradients) equal in shape and value to ``dtype``'s tolerance."""
    assert len(want) == len(got)
    for expected, actual in zip(want, got, strict=True):
        if expected is None:
            assert actual is None or not actual.any()
            continue
        assert actual is not None and actual.shape == expected.shape
        torch.testing.assert_close(actual, expected, **TOLERANCE[dtype])


def raised(call) -> BaseException | None:
    """The exception ``call()`` raises, or ``None``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call()
    except Exception as error:  # whatever both raise is what the tests compare
        return error
    return None


def assert_same_error(torch_call, rnnkit_call, pattern: str) -> BaseException:
    """Both calls raise; rnnkit's error is an instance of torch's type; both match ``pattern``."""
    want, got = raised(torch_call), raised(rnnkit_call)
    assert want is not None, "torch.nn accepts this call"
    assert got is not None, f"rnnkit.nn accepts what torch rejects with {want!r}"
    assert isinstance(got, type(want)), f"torch raises {type(want).__name__}, rnnkit {got!r}"
    assert re.search(pattern, str(want)), f"the pattern does not match torch's {want}"
    assert re.search(pattern, str(got)), f"the pattern does not match rnnkit's {got}"
    return got


# ----------------------------------------------------------------------------- empty inputs
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_empty_batch_matches_torch(kind, backend, dtype):
    """``(seq 5, batch 0, feature)``: same empty outputs and (zero) gradients as torch."""
    for options, with_state in (({}, False), ({"num_layers": 2, "bidirectional": True}, True)):
        reference, ours = make_pair(kind, 3, 4, dtype=dtype, backend=backend, **options)
        layers = 2 * options.get("num_layers", 1) if options else 1
        results = []
        for layer in (reference, ours):
            x = torch.zeros(5, 0, 3, dtype=dtype)
            hx = zero_state(kind, layers, 0, 4, dtype) if with_state else None
            results.append(outputs_and_grads(layer, x, hx))
        (want, want_grads), (got, got_grads) = results
        assert got[0].shape == (5, 0, 4 * (2 if options else 1))
        assert_same_results(want, got, dtype)
        assert_same_results(want_grads, got_grads, dtype)


@pytest.mark.parametrize("kind", KINDS)
def test_empty_batch_batch_first_and_backward(kind):
    """``batch_first`` input ``(0, seq, feature)``; ``.backward()`` works as in torch's test."""
    reference, ours = make_pair(kind, 3, 4, batch_first=True, backend="auto")
    want = reference(torch.zeros(0, 2, 3, dtype=torch.float64))
    got = ours(torch.zeros(0, 2, 3, dtype=torch.float64))
    assert_same_results([want[0], *as_tuple(want[1])], [got[0], *as_tuple(got[1])],
                        torch.float64)
    got[0].sum().backward()
    assert all(p.grad is not None and not p.grad.any() for p in ours.parameters())


@pytest.mark.parametrize("kind", KINDS)
def test_empty_batch_with_lengths_regularisers_and_packing(kind):
    """rnnkit's own paths (``lengths=``, zoneout, a packed sequence of empty steps) agree."""
    reference, ours = make_pair(kind, 3, 4, backend="native")
    x = torch.zeros(4, 0, 3, dtype=torch.float64)
    output, _ = ours(x, lengths=[])
    assert output.shape == (4, 0, 4)
    if kind != "RNN_TANH" and kind != "RNN_RELU":
        regularised = getattr(rnn, kind)(3, 4, zoneout=0.1, dtype=torch.float64)
        assert regularised(x)[0].shape == (4, 0, 4)
    packed = PackedSequence(torch.zeros(0, 3, dtype=torch.float64), torch.tensor([0, 0]))
    want, got = reference(packed), ours(packed)
    assert_same_results([want[0].data, *as_tuple(want[1])], [got[0].data, *as_tuple(got[1])],
                        torch.float64)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_step_with_an_empty_batch(kind, backend):
    """``step()`` of an empty batch returns empty outputs and states, fast path or not."""
    _, ours = make_pair(kind, 3, 4, num_layers=2, backend=backend)
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            y, state = ours.step(torch.zeros(0, 3, dtype=torch.float64))
        assert y.shape == (0, 4)
        assert all(s.shape == (2, 0, 4) for s in as_tuple(state))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("shape", "batch_first"), [
    ((0, 2, 3), False), ((2, 0, 3), True), ((0, 0, 3), False), ((0, 0, 3), True), ((0, 3), False),
])
def test_empty_sequence_raises_torchs_error(kind, shape, batch_first):
    """No time step: torch's RuntimeError, also with a bidirectional layer and a given state."""
    reference, ours = make_pair(kind, 3, 4, batch_first=batch_first, bidirectional=True,
                                backend="native")
    x = torch.zeros(shape, dtype=torch.float64)
    got = assert_same_error(lambda: reference(x), lambda: ours(x),
                            "Expected sequence length to be larger than 0 in RNN")
    assert isinstance(got, ValueError) and str(shape) in str(got)


@pytest.mark.parametrize("kind", KINDS)
def test_empty_batch_with_a_wrong_state_raises_torchs_error(kind):
    reference, ours = make_pair(kind, 3, 4)
    x, hx = torch.zeros(5, 0, 3, dtype=torch.float64), zero_state(kind, 1, 2, 4, torch.float64)
    assert_same_error(lambda: reference(x, hx), lambda: ours(x, hx),
                      r"Expected hidden(\[0\])? size \(1, 0, 4\), got \[1, 2, 4\]")


CELLS = ("RNNCell", "LSTMCell", "GRUCell")


def cell_pair(name: str, *args, **kwargs):
    """``(torch cell, rnnkit cell)`` in float64 with identical parameters."""
    torch.manual_seed(0)
    reference = getattr(torch.nn, name)(*args, dtype=torch.float64, **kwargs)
    ours = getattr(rnn, name)(*args, dtype=torch.float64, **kwargs)
    ours.load_state_dict(reference.state_dict())
    return reference, ours


def cell_results(cell, x: torch.Tensor, hx) -> list:
    """Outputs of ``cell(x, hx)`` and the gradients of their sum w.r.t. input and parameters."""
    x = x.clone().requires_grad_(True)
    outputs = as_tuple(cell(x, hx))
    loss = sum((o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype).reshape(o.shape)).sum()
               for o in outputs)
    params = [p for _, p in sorted(cell.named_parameters())]
    grads = torch.autograd.grad(loss, [x, *params], allow_unused=True)
    return [*outputs, *grads]


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize(("input_size", "hidden_size", "x_shape"), [
    (3, 4, (0, 3)),     # empty batch
    (3, 0, (2, 3)),     # hidden_size=0, as torch's test_RNN_cell_forward_zero_hidden_size
    (3, 0, (3,)),       # unbatched, hidden_size=0
    (0, 4, (2, 0)),     # input_size=0: the output is the recurrent part alone
])
def test_cells_with_empty_sizes_match_torch(name, input_size, hidden_size, x_shape):
    reference, ours = cell_pair(name, input_size, hidden_size)
    x = torch.randn(x_shape, dtype=torch.float64)
    batch_shape = (*x_shape[:-1], hidden_size)
    h = torch.randn(batch_shape, dtype=torch.float64)
    hx = (h, torch.randn(batch_shape, dtype=torch.float64)) if name == "LSTMCell" else h
    for state in (None, hx):
        assert_same_results(cell_results(reference, x, state), cell_results(ours, x, state),
                            torch.float64)


# ----------------------------------------------------------------------------- constructors
@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("bias", ["relu", "tanh", 1, 0, None, "", 1.5, True, False])
def test_cell_bias_takes_any_value_like_torch(name, bias):
    """The third positional argument is ``bias``: its truth decides, its value is kept."""
    reference, ours = cell_pair(name, 10, 20, bias)
    assert list(ours.state_dict()) == list(reference.state_dict())
    assert ours.bias == reference.bias and repr(ours) == repr(reference)
    if name == "RNNCell":
        assert ours.nonlinearity == reference.nonlinearity == "tanh"
    x = torch.randn(3, 10, dtype=torch.float64)
    assert_same_results(cell_results(reference, x, None), cell_results(ours, x, None),
                        torch.float64)


def test_rnn_cell_relu_repr_like_torch():
    reference, ours = cell_pair("RNNCell", 10, 20, nonlinearity="relu")
    assert repr(ours) == repr(reference)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU", *CELLS])
@pytest.mark.parametrize(("args", "kwargs"), [
    ((10, 0), {}), ((0, 20), {}), ((0, 0), {}), ((-1, 20), {}), ((10, -1), {}),
    ((10.0, 20), {}), ((10, 20.0), {}), ((10, 20, 0), {}), ((10, 20, 1.0), {}),
    ((10, 20), {"dropout": 2}), ((10, 20), {"dropout": True}), ((10, 20), {"dropout": "0.1"}),
    ((10, 20), {"bias": 1}), ((10, 20), {"batch_first": 1}), ((10, 20), {"proj_size": 10}),
    ((10, 20), {"proj_size": 0}), ((10, 20), {"proj_size": -1}), ((10, 20), {"proj_size": 20}),
    ((10, 20), {"nonlinearity": "garbage"}), ((10, 20, 2, "relu"), {}),
])
def test_constructor_accepts_and_rejects_like_torch(name, args, kwargs):
    """Accepted by both, or rejected by both with (a subclass of) torch's exception type.

    The deliberate difference: ``RNNCell(nonlinearity='garbage')`` fails at construction in
    rnnkit, at the first forward in torch (both ``RuntimeError``).
    """
    if name in CELLS and any(key in kwargs for key in ("dropout", "batch_first", "proj_size")):
        return  # not cell arguments: both raise Python's own TypeError
    want = raised(lambda: getattr(torch.nn, name)(*args, **kwargs))
    got = raised(lambda: getattr(rnn, name)(*args, **kwargs))
    if name == "RNNCell" and kwargs.get("nonlinearity") == "garbage":
        want = raised(lambda: getattr(torch.nn, name)(*args, **kwargs)(torch.zeros(1, 10)))
    if want is None:
        assert got is None, f"torch.nn accepts {name}{args}{kwargs}, rnnkit raises {got!r}"
    else:
        assert isinstance(got, type(want)), f"torch raises {want!r}, rnnkit {got!r}"


@pytest.mark.parametrize("name", ["RNN", "GRU"])
@pytest.mark.parametrize("proj_size", [0, 10, -1, None])
def test_proj_size_is_only_for_lstm(name, proj_size):
    assert_same_error(lambda: getattr(torch.nn, name)(30, 20, 2, proj_size=proj_size),
                      lambda: getattr(rnn, name)(30, 20, 2, proj_size=proj_size),
                      "proj_size argument is only supported for LSTM, not RNN or GRU")


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"input_size": 0}, "input_size must be greater than zero"),
    ({"hidden_size": 0}, "hidden_size must be greater than zero"),
    ({"num_layers": 0}, "num_layers must be greater than zero"),
    ({"proj_size": -1}, "proj_size should be a positive integer or zero to disable projections"),
    ({"proj_size": 20}, "proj_size has to be smaller than hidden_size"),
    ({"dropout": 2}, re.escape("dropout should be a number in range [0, 1] representing the "
                               "probability of an element being zeroed")),
    ({"dropout": "0.1"}, re.escape("dropout should be a number in range [0, 1]")),
])
def test_constructor_messages_contain_torchs(kwargs, pattern):
    arguments = {"input_size": 10, "hidden_size": 20, **kwargs}
    got = assert_same_error(lambda: torch.nn.LSTM(**arguments), lambda: rnn.LSTM(**arguments),
                            pattern)
    assert "got" in str(got)  # rnnkit also says what it was given


def test_unknown_nonlinearity_like_torch():
    got = assert_same_error(lambda: torch.nn.RNN(1, 10, nonlinearity="garbage"),
                            lambda: rnn.RNN(1, 10, nonlinearity="garbage"), "Unknown nonlinearity")
    assert "'garbage'" in str(got) and "'tanh', 'relu'" in str(got)
    with pytest.raises(RuntimeError, match="Unknown nonlinearity 'garbage'"):
        rnn.RNNCell(1, 10, nonlinearity="garbage")


def test_negative_cell_size_is_a_runtime_and_value_error():
    got = assert_same_error(lambda: torch.nn.GRUCell(10, -1), lambda: rnn.GRUCell(10, -1),
                            "negative dimension")
    assert isinstance(got, ValueError) and "hidden_size must be at least 0, got -1" in str(got)


# ----------------------------------------------------------------------------- messages
def layer_pair(name: str, *args, **kwargs):
    return getattr(torch.nn, name)(*args, **kwargs), getattr(rnn, name)(*args, **kwargs)


def lstm_state(h_shape, c_shape, dtype=torch.float32):
    return torch.zeros(h_shape, dtype=dtype), torch.zeros(c_shape, dtype=dtype)


LAYER_CASES = [
    # torch's test_cudnn_forward_exception
    ("LSTM", {"batch_first": True}, (2, 3, 10), lstm_state((1, 2, 19), (1, 2, 19)),
     "Expected hidden.*size.*got"),
    ("LSTM", {"batch_first": True, "proj_size": 10}, (2, 3, 10),
     lstm_state((1, 2, 19), (1, 2, 19)), "Expected hidden.*size.*got"),
    ("GRU", {"batch_first": True}, (2, 3, 10), torch.zeros(1, 2, 19), "Expected hidden.*size.*got"),
    ("RNN", {"batch_first": True}, (2, 3, 10), torch.zeros(1, 2, 19), "Expected hidden.*size.*got"),
    ("RNN", {"batch_first": True}, (2, 3, 3), None,
     re.escape("input.size(-1) must be equal to input_size. Expected 10, got 3")),
    # exact wording of torch.nn's hidden checks
    ("GRU", {}, (5, 2, 10), torch.zeros(2, 2, 20),
     re.escape("Expected hidden size (1, 2, 20), got [2, 2, 20]")),
    ("LSTM", {}, (5, 2, 10), lstm_state((1, 2, 20), (1, 2, 21)),
     re.escape("Expected hidden[1] size (1, 2, 20), got [1, 2, 21]")),
    ("LSTM", {"proj_size": 5}, (5, 2, 10), lstm_state((1, 2, 20), (1, 2, 20)),
     re.escape("Expected hidden[0] size (1, 2, 5), got [1, 2, 20]")),
    ("GRU", {}, (5, 2, 10), torch.zeros(2, 20),
     "For batched 3-D input, hx should also be 3-D but got 2-D tensor"),
    ("RNN", {}, (5, 10), torch.zeros(1, 1, 20),
     "For unbatched 2-D input, hx should also be 2-D but got 3-D tensor"),
    ("LSTM", {}, (5, 2, 10), lstm_state((1, 20), (1, 2, 20)),
     re.escape("For batched 3-D input, hx and cx should also be 3-D but got (2-D, 3-D) tensors")),
    ("LSTM", {}, (1, 2, 5, 10), None, "Expected input to be 2D or 3D, got 4D"),
    # test_modules' error inputs for RNN/GRU/LSTM: the dtype mismatch
    ("GRU", {}, (2, 4, 10), torch.zeros(1, 4, 20, dtype=torch.float64),
     r"RNN input dtype .* does not match weight dtype .* "
     r"Convert input: input\.to\(.*\), or convert model: model\.to\(.*\)"),
]


@pytest.mark.parametrize(("name", "kwargs", "x_shape", "hx", "pattern"), LAYER_CASES)
def test_layer_messages_contain_torchs(name, kwargs, x_shape, hx, pattern):
    """Same exception type as torch, torch's wording, and rnnkit's own naming of the argument."""
    reference, ours = layer_pair(name, 10, 20, **kwargs)
    dtype = torch.float64 if "dtype" in pattern else torch.float32
    x = torch.randn(x_shape, dtype=dtype)
    got = assert_same_error(lambda: reference(x, hx), lambda: ours(x, hx), pattern)
    assert isinstance(got, (rnn.RecurrentInputError, ValueError))
    assert str(got).startswith(f"{name}: ")


def test_integer_input_is_a_value_error_like_torch():
    got = assert_same_error(lambda: torch.nn.GRU(3, 4)(torch.zeros(2, 1, 3, dtype=torch.long)),
                            lambda: rnn.GRU(3, 4)(torch.zeros(2, 1, 3, dtype=torch.long)),
                            "dtype")
    assert isinstance(got, TypeError) and "token ids need an embedding first" in str(got)


def test_state_size_message_names_the_state_and_spots_swapped_axes():
    layer = rnn.GRU(3, 4, num_layers=2, batch_first=True)
    with pytest.raises(RuntimeError, match=re.escape(
            "GRU: Expected hidden size (2, 5, 4), got [5, 2, 4] (h_0 should be "
            "(num_layers * num_directions, batch, hidden_size)); its first two axes look "
            "swapped (states are never batch-first)")):
        layer(torch.randn(5, 7, 3), torch.zeros(5, 2, 4))


def cell_state(name: str, shape):
    h = torch.randn(shape)
    return (h, torch.randn(shape)) if name == "LSTMCell" else h


CELL_CASES = [
    ((3, 11), (3, 20), "input has inconsistent input_size: got 11 expected 10"),
    ((3, 10), (3, 21), "hidden0 has inconsistent hidden_size: got 21, expected 20"),
    ((3, 10), (5, 20), "Input batch size 3 doesn't match hidden0 batch size 5"),
    ((1, 2, 10), None, "Expected input to be 1D or 2D, got 3D instead"),
]


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize(("x_shape", "hx_shape", "pattern"), CELL_CASES)
def test_cell_messages_contain_torchs(name, x_shape, hx_shape, pattern):
    reference, ours = cell_pair(name, 10, 20)
    x = torch.randn(x_shape, dtype=torch.float64)
    hx = None if hx_shape is None else cell_state(name, hx_shape)
    if hx is not None:  # the states in the cells' dtype: only the shapes are wrong
        hx = tuple(t.double() for t in hx) if name == "LSTMCell" else hx.double()
    got = assert_same_error(lambda: reference(x, hx), lambda: ours(x, hx), pattern)
    assert str(got).startswith(f"{name}: ")


@pytest.mark.parametrize(("name", "pattern"), [
    ("RNNCell", "Expected hidden to be 1D or 2D, got 4D instead"),
    ("GRUCell", "Expected hidden to be 1D or 2D, got 4D instead"),
    ("LSTMCell", re.escape("Expected hx[0] to be 1D or 2D, got 4D instead")),
])
def test_cell_state_rank_messages_contain_torchs(name, pattern):
    reference, ours = cell_pair(name, 10, 20)
    x, hx = torch.randn(3, 10, dtype=torch.float64), cell_state(name, (3, 1, 1, 20))
    assert_same_error(lambda: reference(x, hx), lambda: ours(x, hx), pattern)


def test_lstm_cell_state_names_hidden1_for_c():
    reference, ours = cell_pair("LSTMCell", 10, 20)
    x = torch.randn(3, 10, dtype=torch.float64)
    hx = (torch.zeros(3, 20, dtype=torch.float64), torch.zeros(3, 21, dtype=torch.float64))
    got = assert_same_error(lambda: reference(x, hx), lambda: ours(x, hx),
                            "hidden1 has inconsistent hidden_size: got 21, expected 20")
    assert "cx of shape (3, 21)" in str(got)
