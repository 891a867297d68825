"""forward()'s inference fast path: same numbers as torch.nn, and never a stale weight."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from tests.nn.helpers import KINDS, as_tuple, make_pair
from torch.nn.utils import parametrize

import rnnkit.nn as rnn
from rnnkit import engine
from rnnkit.nn.inference import ForwardPlan

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")

TIGHT = {"rtol": 1e-10, "atol": 1e-12}


def fast_plans(layer) -> list:
    return [p for p in (layer._forward_cache or {}).values() if isinstance(p, ForwardPlan)]


def assert_same(got, want, **tolerance):
    torch.testing.assert_close(got[0], want[0], **(tolerance or TIGHT))
    for a, b in zip(as_tuple(got[1]), as_tuple(want[1]), strict=True):
        torch.testing.assert_close(a, b, **(tolerance or TIGHT))


CASES = [(kind, {}) for kind in KINDS] + [
    ("LSTM", {"num_layers": 2, "bidirectional": True, "proj_size": 3}),
    ("GRU", {"num_layers": 3, "bias": False, "batch_first": True}),
    ("RNN_RELU", {"num_layers": 2, "bidirectional": True, "batch_first": True}),
    ("LSTM", {"bias": False, "proj_size": 2}),
]


@pytest.mark.parametrize(("kind", "options"), CASES)
@pytest.mark.parametrize("with_state", [False, True])
def test_fast_path_equals_torch_and_the_general_path(kind, options, with_state):
    reference, layer = make_pair(kind, 3, 5, backend="native", **options)
    batch_first = options.get("batch_first", False)
    x = torch.randn((2, 7, 3) if batch_first else (7, 2, 3), dtype=torch.float64)
    hx = None
    if with_state:
        _, state = reference(x)
        hx = tuple(s.detach() + 0.5 for s in as_tuple(state))
        hx = hx if kind == "LSTM" else hx[0]
    with torch.no_grad():
        want = reference(x, hx)
        first = layer(x, hx)  # the general path, which records its decision
        assert len(fast_plans(layer)) == 1
        second = layer(x, hx)  # the fast path
    assert_same(first, want)
    torch.testing.assert_close(second[0], first[0], rtol=0, atol=0)
    for a, b in zip(as_tuple(second[1]), as_tuple(first[1]), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("with_state", [False, True])
def test_unbatched_input_takes_the_fast_path(kind, with_state):
    reference, layer = make_pair(kind, 3, 5, backend="native", num_layers=2, batch_first=True)
    x = torch.randn(6, 3, dtype=torch.float64)  # (L, input_size): batch_first does not apply
    hx = None
    if with_state:
        hx = tuple(torch.randn(2, 5, dtype=torch.float64) for _ in range(2))
        hx = hx if kind == "LSTM" else hx[0]
    with torch.no_grad():
        want = reference(x, hx)
        layer(x, hx)
        assert len(fast_plans(layer)) == 1
        got = layer(x, hx)
        layer(x.unsqueeze(0))  # the batched route is a separate one
        batched = layer(x.unsqueeze(0))
    assert_same(got, want)
    assert len(fast_plans(layer)) == 2
    if hx is None:
        torch.testing.assert_close(batched[0][0], want[0], **TIGHT)


def _warm(layer, x):
    with torch.no_grad():
        layer(x)
        layer(x)
    assert fast_plans(layer), "the fast path was not set up"


def _check(reference, layer, x):
    with torch.no_grad():
        assert_same(layer(x), reference(x))


@pytest.mark.parametrize("kind", ["GRU", "LSTM"])
def test_in_place_updates_are_seen(kind):
    reference, layer = make_pair(kind, 3, 4, backend="native", num_layers=2)
    x = torch.randn(5, 1, 3, dtype=torch.float64)
    _warm(layer, x)
    # an optimizer step (in place, version counter bumped)
    for model in (reference, layer):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        model(x)[0].square().sum().backward()
        optimizer.step()
    _check(reference, layer, x)
    # through .data, which bumps no version counter: biases matter (GRU's b_hn is apart)
    for model in (reference, layer):
        model.bias_hh_l1.data.add_(0.25)
        model.bias_ih_l0.data.mul_(-1.0)
        model.weight_hh_l0.data[0, 0] = 3.0
    _check(reference, layer, x)
    # through NumPy, which torch cannot see at all
    for model in (reference, layer):
        model.bias_hh_l0.detach().numpy()[:] = 0.125
    _check(reference, layer, x)
    # load_state_dict copies in place
    torch.manual_seed(7)
    fresh = getattr(torch.nn, kind)(3, 4, num_layers=2, dtype=torch.float64)
    reference.load_state_dict(fresh.state_dict())
    layer.load_state_dict(fresh.state_dict())
    _check(reference, layer, x)
    assert fast_plans(layer), "in-place updates should keep the fast path"


def test_replaced_weights_are_seen():
    reference, layer = make_pair("LSTM", 3, 4, backend="native")
    x = torch.randn(5, 1, 3, dtype=torch.float64)
    _warm(layer, x)
    new = torch.randn(16, 4, dtype=torch.float64)
    reference.weight_hh_l0.data = new.clone()
    layer.weight_hh_l0.data = new.clone()  # same Parameter, new storage
    _check(reference, layer, x)
    replacement = torch.nn.Parameter(torch.randn(16, dtype=torch.float64))
    reference.bias_ih_l0 = torch.nn.Parameter(replacement.detach().clone())
    layer.bias_ih_l0 = replacement  # a new Parameter object: the cache is dropped
    assert layer._forward_cache is None
    _check(reference, layer, x)


def test_storage_swapped_to_another_shape_falls_back_to_the_checks():
    _, layer = make_pair("GRU", 3, 4, backend="native")
    x = torch.randn(5, 1, 3, dtype=torch.float64)
    _warm(layer, x)
    layer.weight_hh_l0.data = torch.randn(12, 5, dtype=torch.float64)
    with torch.no_grad(), pytest.raises(ValueError, match=r"w_hh|weight_hh"):
        layer(x)
    assert not fast_plans(layer)


def test_parametrized_weights_leave_the_fast_path():
    reference, layer = make_pair("RNN_TANH", 3, 4, backend="native")
    x = torch.randn(5, 1, 3, dtype=torch.float64)
    _warm(layer, x)

    class Double(torch.nn.Module):
        def forward(self, weight):
            return 2 * weight

    parametrize.register_parametrization(layer, "weight_hh_l0", Double())
    with torch.no_grad():
        reference.weight_hh_l0.mul_(2)
    _check(reference, layer, x)
    assert not fast_plans(layer)


def test_changes_of_mode_and_setting_are_respected():
    reference, layer = make_pair("LSTM", 3, 4, backend="native", num_layers=2, dropout=0.5)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    reference.eval()
    layer.eval()
    _warm(layer, x)
    layer.train()  # inter-layer dropout now applies: the general path must run
    assert layer._forward_cache is None
    torch.manual_seed(3)
    with torch.no_grad():
        dropped, _ = layer(x)
        dropped_again, _ = layer(x)
    assert not fast_plans(layer)
    assert not torch.equal(dropped, dropped_again)  # fresh dropout masks each call
    layer.eval()
    _check(reference, layer, x)
    observed = []
    with layer.observing(lambda *args: observed.append(args[:3])), torch.no_grad():
        layer(x)
    assert len(observed) == 2 * 5


def test_global_backend_change_is_a_new_route():
    reference, layer = make_pair("GRU", 3, 4, backend=None)
    x = torch.randn(5, 1, 3, dtype=torch.float64)
    with rnn.use_backend("native"):
        _warm(layer, x)
    with rnn.use_backend("python"), torch.no_grad():
        layer(x)
        layer(x)
    routes = {key[0]: bool(plan) for key, plan in layer._forward_cache.items()}
    assert routes == {"native": True, "python": False}
    _check(reference, layer, x)


def test_errors_after_the_fast_path_are_the_general_ones():
    _, layer = make_pair("LSTM", 3, 4, backend="native", dtype=torch.float32)
    x = torch.randn(5, 1, 3)
    _warm(layer, x)
    with torch.no_grad():
        with pytest.raises(ValueError, match=r"input\.size\(-1\) must be equal to input_size"):
            layer(torch.randn(5, 1, 4))
        with pytest.raises(ValueError, match="does not match weight dtype"):
            layer(x.double())
        with pytest.raises(ValueError, match=r"Expected hidden\[0\] size \(1, 1, 4\)"):
            layer(x, (torch.zeros(1, 2, 4), torch.zeros(1, 1, 4)))
        with pytest.raises(TypeError, match="hx should be a tuple of two Tensors"):
            layer(x, torch.zeros(1, 1, 4))


def test_states_of_other_layouts_take_the_general_path():
    reference, layer = make_pair("LSTM", 3, 4, backend="native", num_layers=2)
    x = torch.randn(5, 1, 3, dtype=torch.float64)
    _warm(layer, x)
    h0 = torch.randn(1, 2, 4, dtype=torch.float64).transpose(0, 1)  # not contiguous
    c0 = torch.randn(2, 1, 4, dtype=torch.float64)
    plan = fast_plans(layer)[0]
    with torch.no_grad():
        assert_same(layer(x, [h0, c0]), reference(x, (h0, c0)))  # a list, as torch allows
        assert_same(layer(x, (h0, c0)), reference(x, (h0, c0)))
    assert fast_plans(layer) == [plan], "declined calls must not rebuild the plan"


def test_copies_and_pickles_start_without_the_cache():
    reference, layer = make_pair("GRU", 3, 4, backend="native")
    x = torch.randn(5, 1, 3, dtype=torch.float64)
    _warm(layer, x)
    for twin in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert twin._forward_cache is None
        _check(reference, twin, x)
    state = layer.__getstate__()
    del state["_forward_cache"]  # a layer pickled before the cache existed
    old = rnn.GRU.__new__(rnn.GRU)
    old.__setstate__(state)
    _check(reference, old, x)


def test_the_fast_path_keeps_out_of_autograd_and_tracing():
    _, layer = make_pair("GRU", 3, 4, backend="native")
    x = torch.randn(5, 1, 3, dtype=torch.float64)
    _warm(layer, x)
    output, _ = layer(x)  # grad mode on: the general path, with a graph
    assert output.requires_grad
    with torch.inference_mode():
        output, _ = layer(x)
    assert not output.requires_grad
