"""step()'s native fast path: same numbers as forward(), and it steps aside when it must."""

from __future__ import annotations

import copy

import pytest
import torch
from tests.nn.helpers import KINDS, as_tuple, make_pair

from rnnkit import engine

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")


def stream(layer, x, state=None):
    outputs = []
    for t in range(x.shape[0]):
        y, state = layer.step(x[t], state)
        outputs.append(y)
    return torch.stack(outputs), state


def assert_states_close(actual, expected, **tolerance):
    for got, want in zip(as_tuple(actual), as_tuple(expected), strict=True):
        torch.testing.assert_close(got, want, **tolerance)


CASES = [(kind, options) for kind in KINDS
         for options in ({}, {"bias": False, "num_layers": 3})] + [("LSTM", {"proj_size": 2})]


@pytest.mark.parametrize(("kind", "options"), CASES)
def test_fast_path_equals_forward(kind, options):
    options = {"num_layers": 2, **options}
    reference, layer = make_pair(kind, 3, 4, backend="native", **options)
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    with torch.no_grad():
        want_y, want_state = reference(x)
        y, state = stream(layer, x)
    assert layer._stream_cache is not None and layer._stream_cache.plan is not None
    torch.testing.assert_close(y, want_y, rtol=1e-10, atol=1e-12)
    assert_states_close(state, want_state, rtol=1e-10, atol=1e-12)


def test_auto_backend_streams_natively_at_batch_one():
    _, layer = make_pair("GRU", 3, 64, backend="auto", dtype=torch.float32)
    with torch.no_grad():
        layer.step(torch.randn(1, 3), None)
    assert (layer._stream_cache.plan is not None) == engine.streaming_wins("GRU", 64, 1)


@pytest.mark.parametrize(("kind", "hidden", "batch"), [("GRU", 64, 8), ("LSTM", 32, 500),
                                                     ("RNN_TANH", 512, 128)])
def test_auto_backend_steps_a_batch_where_it_was_measured_faster(kind, hidden, batch,
                                                               monkeypatch):
    # Many rows (an autoregressive forecaster's sample paths): the one-call native step
    # reads the weights once per row, so from about 128 rows torch's fused kernel wins.
    native = engine.streaming_wins(kind, hidden, batch)
    reference, layer = make_pair(kind, 3, hidden, backend="auto", dtype=torch.float32)
    calls = []
    monkeypatch.setattr(engine, "cell_step", lambda *args: calls.append(args))
    x = torch.randn(batch, 3)
    with torch.no_grad():
        want_y, want_state = reference(x.unsqueeze(0))
        y, state = layer.step(x, None)
    assert (layer._stream_cache.plan is not None) == native
    assert not calls  # never the one-call kernel through the general path either
    torch.testing.assert_close(y, want_y[0], rtol=1e-5, atol=1e-6)
    assert_states_close(state, want_state, rtol=1e-5, atol=1e-6)


def test_replaced_weights_are_noticed():
    reference, layer = make_pair("LSTM", 3, 4, backend="native")
    x = torch.randn(4, 1, 3, dtype=torch.float64)
    with torch.no_grad():
        stream(layer, x)
        first_plan = layer._stream_cache.plan
        layer.weight_hh_l0.data = torch.randn(16, 4, dtype=torch.float64)
        reference.weight_hh_l0.data = layer.weight_hh_l0.data.clone()
        y, _ = stream(layer, x)
        want, _ = reference(x)
    assert layer._stream_cache.plan is not first_plan
    torch.testing.assert_close(y, want, rtol=1e-10, atol=1e-12)


def test_dtype_change_rebuilds_the_plan():
    reference, layer = make_pair("RNN_TANH", 3, 4, backend="native")
    x = torch.randn(3, 1, 3, dtype=torch.float64)
    with torch.no_grad():
        stream(layer, x)
        layer.float()
        reference.float()
        y, _ = stream(layer, x.float())
        want, _ = reference(x.float())
    assert layer._stream_cache.plan.dtype == torch.float32
    torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-6)


def test_general_path_cases_give_the_same_numbers():
    """Grad enabled, unbatched, non-contiguous input, float32 input to a float64 layer."""
    reference, layer = make_pair("GRU", 3, 4, num_layers=2, backend="native")
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    want, _ = reference(x)
    y, _ = stream(layer, x)  # autograd on: the general path
    torch.testing.assert_close(y, want.detach(), rtol=1e-10, atol=1e-12)
    assert layer._stream_cache is None
    with torch.no_grad():
        unbatched, _ = stream(layer, x[:, 0])
        strided, _ = stream(layer, x.transpose(1, 2).contiguous().transpose(1, 2))
        with pytest.raises(ValueError, match=r"RNN input dtype \(torch\.float32\)"):
            layer.step(x[0].float(), None)
    torch.testing.assert_close(unbatched, want[:, 0].detach(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(strided, want.detach(), rtol=1e-10, atol=1e-12)


def test_wrong_state_shape_still_gets_the_layer_error():
    _, layer = make_pair("LSTM", 3, 4, num_layers=2, backend="native")
    x = torch.randn(2, 3, dtype=torch.float64)
    bad = (torch.zeros(1, 2, 4, dtype=torch.float64), torch.zeros(2, 2, 4, dtype=torch.float64))
    with torch.no_grad(), pytest.raises(ValueError, match="h_0"):
        layer.step(x, bad)


def test_training_dropout_between_layers_uses_the_general_path():
    _, layer = make_pair("GRU", 3, 4, num_layers=2, dropout=0.5, backend="native")
    layer.train()
    with torch.no_grad():
        torch.manual_seed(0)
        a, _ = layer.step(torch.ones(1, 3, dtype=torch.float64), None)
        torch.manual_seed(1)
        b, _ = layer.step(torch.ones(1, 3, dtype=torch.float64), None)
    assert not torch.equal(a, b)  # dropout drew different masks: not the fast path
    assert layer._stream_cache.plan is None
    layer.eval()  # setting an attribute drops the cached decision
    assert layer._stream_cache is None
    with torch.no_grad():
        layer.step(torch.ones(1, 3, dtype=torch.float64), None)
    assert layer._stream_cache.plan is not None


def test_replacing_a_parameter_object_drops_the_plan():
    reference, layer = make_pair("GRU", 3, 4, backend="native")
    x = torch.randn(3, 1, 3, dtype=torch.float64)
    with torch.no_grad():
        stream(layer, x)
        assert layer._stream_cache is not None
        layer.weight_hh_l0 = torch.nn.Parameter(torch.randn(12, 4, dtype=torch.float64))
        assert layer._stream_cache is None
        reference.weight_hh_l0 = torch.nn.Parameter(layer.weight_hh_l0.detach().clone())
        y, _ = stream(layer, x)
        want, _ = reference(x)
    torch.testing.assert_close(y, want, rtol=1e-10, atol=1e-12)


def test_copies_do_not_share_the_cache():
    reference, layer = make_pair("LSTM", 3, 4, backend="native")
    x = torch.randn(3, 1, 3, dtype=torch.float64)
    with torch.no_grad():
        stream(layer, x)
        twin = copy.deepcopy(layer)
        assert twin._stream_cache is None
        twin.weight_ih_l0.zero_()
        y, _ = stream(layer, x)
        want, _ = reference(x)
    torch.testing.assert_close(y, want, rtol=1e-10, atol=1e-12)


def _row(state, row: int):
    """Row ``row`` of a step's state, as a one-row state."""
    if isinstance(state, tuple):
        return tuple(part[:, row:row + 1].contiguous() for part in state)
    return state[:, row:row + 1].contiguous()


def _streamed(layer, x, state):
    """One step of ``x`` on a streamer (packed weights) started from ``state``."""
    streamer = layer.streamer(x.shape[0])
    streamer.state = state
    return streamer(x)


@pytest.mark.parametrize("kind", ["RNN_TANH", "GRU", "LSTM"])
@pytest.mark.parametrize(("input_size", "hidden"), [(33, 130), (512, 512)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_batched_step_gives_each_row_what_it_gets_alone(kind, input_size, hidden, dtype):
    # Over several rows the kernel reads the weights in chunks that serve every row; each
    # output must still be computed as in a one-row step (same bits), tails included, on
    # torch's layout (step) and on packed panels (streamer).
    _, layer = make_pair(kind, input_size, hidden, backend="native", dtype=dtype, num_layers=2)
    x = torch.randn(5, input_size, dtype=dtype)
    with torch.no_grad():
        _, state = layer.step(torch.randn(5, input_size, dtype=dtype))
        together, _ = layer.step(x, state)
        alone = [layer.step(x[b:b + 1], _row(state, b))[0] for b in range(5)]
        packed = _streamed(layer, x, state)
        packed_alone = [_streamed(layer, x[b:b + 1], _row(state, b)) for b in range(5)]
    assert torch.equal(together, torch.cat(alone))
    assert torch.equal(packed, torch.cat(packed_alone))
