"""``rnnkit.nn.prepack``: layers keep their packed weights between inference calls. The
results must be bit-for-bit an unprepacked layer's, every documented kind of weight change
must be seen, and training must not notice."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from tests.nn.helpers import KINDS, as_tuple, make_pair

import rnnkit.nn as rnn
from rnnkit import engine

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")

CASES = [(kind, {}) for kind in KINDS] + [
    ("LSTM", {"num_layers": 2, "bidirectional": True, "proj_size": 3}),
    ("GRU", {"num_layers": 3, "bias": False, "batch_first": True}),
    ("RNN_RELU", {"num_layers": 2, "bidirectional": True}),
]


def twins(kind: str, dtype=torch.float64, **options):
    """``(torch.nn layer, plain rnnkit layer, prepacked rnnkit layer)``, equal weights."""
    reference, plain = make_pair(kind, 3, 5, backend="native", dtype=dtype, **options)
    return reference, plain, rnn.prepack(copy.deepcopy(plain))


def assert_bits(got, want) -> None:
    assert torch.equal(got[0], want[0])
    for a, b in zip(as_tuple(got[1]), as_tuple(want[1]), strict=True):
        assert torch.equal(a, b)


def check(plain, prepacked, x, hx=None, calls: int = 3) -> None:
    with torch.no_grad():
        want = plain(x, hx)
        for _ in range(calls):  # the general path, then the fast path packing, then reusing
            assert_bits(prepacked(x, hx), want)


@pytest.mark.parametrize(("kind", "options"), CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch", [1, 4, 20])
def test_prepacked_layers_give_plain_layers_bits(kind, options, dtype, batch):
    reference, plain, prepacked = twins(kind, dtype, **options)
    shape = (batch, 9, 3) if options.get("batch_first") else (9, batch, 3)
    x = torch.randn(shape, dtype=dtype)
    check(plain, prepacked, x)
    with torch.no_grad():
        torch.testing.assert_close(prepacked(x)[0], reference(x)[0],
                                   **({"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32
                                      else {}))
    # One native call per layer-direction below batch 16: its packed weights are kept.
    # Wider batches never read them, so no memory is spent on them.
    stacked = prepacked.num_layers * prepacked.num_directions
    kept = sorted(index for _, index in prepacked._panel_store)
    assert kept == (list(range(stacked)) if batch < 16 else [])


@pytest.mark.parametrize("kind", KINDS)
def test_states_and_unbatched_input(kind):
    _, plain, prepacked = twins(kind, num_layers=2)
    hx = torch.randn(2, 2, 5, dtype=torch.float64)
    hx = (hx, torch.randn(2, 2, 5, dtype=torch.float64)) if kind == "LSTM" else hx
    check(plain, prepacked, torch.randn(6, 2, 3, dtype=torch.float64), hx)
    check(plain, prepacked, torch.randn(6, 3, dtype=torch.float64))


@pytest.mark.parametrize("kind", ["GRU", "LSTM"])
def test_weight_changes_are_seen(kind):
    reference, plain, prepacked = twins(kind, num_layers=2)
    x = torch.randn(7, 1, 3, dtype=torch.float64)
    check(plain, prepacked, x)
    # an optimizer step (in place, version counters move)
    for model in (plain, prepacked):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        model(x)[0].square().sum().backward()
        optimizer.step()
    check(plain, prepacked, x)
    # load_state_dict copies in place
    fresh = getattr(torch.nn, kind)(3, 5, num_layers=2, dtype=torch.float64)
    for model in (plain, prepacked):
        model.load_state_dict(fresh.state_dict())
    check(plain, prepacked, x)
    # a whole-tensor write through .data (no version counter): the sampled values see it
    for model in (plain, prepacked):
        model.weight_hh_l1.data.mul_(0.5)
    check(plain, prepacked, x)
    # a new storage behind the same Parameter, and a new Parameter
    new = torch.randn_like(plain.weight_ih_l0)
    plain.weight_ih_l0.data, prepacked.weight_ih_l0.data = new.clone(), new.clone()
    check(plain, prepacked, x)
    plain.weight_hh_l0 = torch.nn.Parameter(new.new_ones(plain.weight_hh_l0.shape) * 0.1)
    prepacked.weight_hh_l0 = torch.nn.Parameter(new.new_ones(plain.weight_hh_l0.shape) * 0.1)
    check(plain, prepacked, x)
    # a dtype conversion
    plain.float()
    prepacked.float()
    check(plain, prepacked, x.float())
    with torch.no_grad():
        torch.testing.assert_close(prepacked.double()(x)[0], reference.load_state_dict(
            prepacked.state_dict()) and reference(x)[0])


def test_prepack_again_after_an_unseen_write():
    """A write of one element through .data may escape the sampled values: prepack() again
    drops every kept copy."""
    _, plain, prepacked = twins("LSTM")
    x = torch.randn(7, 1, 3, dtype=torch.float64)
    check(plain, prepacked, x)
    for model in (plain, prepacked):
        model.weight_hh_l0.data[1, 2] = 3.0
    rnn.prepack(prepacked)
    check(plain, prepacked, x)


def test_training_is_unaffected():
    _, plain, prepacked = twins("GRU", num_layers=2)
    x = torch.randn(8, 2, 3, dtype=torch.float64)
    check(plain, prepacked, x)
    for model in (plain, prepacked):
        model(x)[0].square().sum().backward()
    for a, b in zip(plain.parameters(), prepacked.parameters(), strict=True):
        assert torch.equal(a.grad, b.grad)


def test_models_copies_and_switching_off():
    model = torch.nn.Sequential(rnn.GRU(3, 4), torch.nn.Identity())
    model.add_module("inner", torch.nn.ModuleList([rnn.LSTM(4, 4)]))
    assert rnn.prepack(model) is model
    assert model[0]._panel_store == {} and model.inner[0]._panel_store == {}
    x = torch.randn(5, 1, 3)
    with torch.no_grad():
        model[0](x)
        model[0](x)
    assert model[0]._panel_store
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert twin[0]._panel_store == {}  # still on; packs from its own weights
        check(model[0], twin[0], x)
    rnn.prepack(model, enabled=False)
    assert model[0]._panel_store is None and model.inner[0]._panel_store is None
    plain = rnn.GRU(3, 4)
    plain.load_state_dict(model[0].state_dict())
    check(plain, model[0], x)


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match=r"module: expected a torch\.nn\.Module, got list"):
        rnn.prepack([rnn.GRU(3, 4)])
    with pytest.raises(TypeError, match="enabled: expected a bool, got int"):
        rnn.prepack(rnn.GRU(3, 4), 1)
