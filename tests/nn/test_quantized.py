"""rnnkit.nn.quantize_int8: the int8 twin follows the float layer's forward contract, keeps its
float parameters (state_dict unchanged), refuses training, and stays close to float."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import rnnkit.nn as rnn
from rnnkit import engine

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")

LAYERS = [
    ("LSTM", {}), ("LSTM", {"proj_size": 5}), ("GRU", {}), ("RNN", {}),
    ("RNN", {"nonlinearity": "relu"}),
]


def make(kind, **options):
    torch.manual_seed(0)
    return getattr(rnn, kind)(12, 24, **options).eval()


def assert_close_to_float(got, want, tolerance):
    flat_got = torch.cat([t.reshape(-1) for t in got])
    flat_want = torch.cat([t.reshape(-1) for t in want])
    error = (flat_got - flat_want).abs().max().item()
    assert 0 < error < tolerance, error


def flat(result):
    output, state = result
    states = state if isinstance(state, tuple) else (state,)
    return [output, *states]


@pytest.mark.parametrize(("kind", "options"), LAYERS)
@pytest.mark.parametrize("layout", [
    {"num_layers": 2, "bidirectional": True}, {"batch_first": True}, {}])
def test_outputs_follow_the_float_layer(kind, options, layout):
    layer = make(kind, **options, **layout)
    int8 = rnn.quantize_int8(layer)
    x = torch.randn(3, 9, 12) if layout.get("batch_first") else torch.randn(9, 3, 12)
    with torch.no_grad():
        want = flat(layer(x))
        got = flat(int8(x))
    assert [t.shape for t in got] == [t.shape for t in want]
    # Small layers and short sequences: a few quantisation steps of a unit-scale state.
    assert_close_to_float(got, want, 0.05)


@pytest.mark.parametrize(("kind", "options"), LAYERS[:3])
def test_lengths_packed_unbatched_and_initial_state(kind, options):
    layer = make(kind, num_layers=2, bidirectional=True, **options)
    int8 = rnn.quantize_int8(layer)
    x, lengths = torch.randn(7, 4, 12), torch.tensor([7, 3, 5, 1])
    out_size = options.get("proj_size") or 24
    h0 = torch.randn(4, 4, out_size) * 0.3
    hx = (h0, torch.randn(4, 4, 24) * 0.3) if kind == "LSTM" else h0
    with torch.no_grad():
        got = int8(x, hx, lengths=lengths)
        want = layer(x, hx, lengths=lengths)
        assert_close_to_float(flat(got), flat(want), 0.05)
        assert not got[0][3:, 1].any()  # padded steps are zero, as in the float layer
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        got_packed, _ = int8(packed, hx)
        assert torch.equal(got_packed.data, pack_padded_sequence(
            got[0], lengths, enforce_sorted=False).data)
        single, _ = int8(x[:, 0])
        assert torch.equal(single, int8(x[:, :1])[0][:, 0])


def test_state_dict_and_float_model_are_unchanged():
    model = nn.Sequential(nn.Linear(12, 12), rnn.LSTM(12, 24, num_layers=2, proj_size=8))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    int8 = rnn.quantize_int8(model)
    assert isinstance(int8[1], rnn.QuantizedRecurrent)
    assert isinstance(model[1], rnn.LSTM)  # deep-copied: the float model is untouched
    after = int8.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], before[k]) for k in before)
    # and the float weights stay the source of truth: loading new ones changes the output
    x = torch.randn(5, 2, 12)
    with torch.no_grad():
        first = int8(x)[0].clone()
        changed = {k: v * 0.5 if "weight_hh" in k else v for k, v in before.items()}
        int8.load_state_dict(changed)
        second = int8(x)[0]
        model.load_state_dict(changed)
        assert_close_to_float([second], [model(x)[0]], 0.05)
    assert not torch.equal(first, second)


def test_in_place_conversion_shares_parameters():
    model = nn.Sequential(rnn.GRU(12, 24))
    weight = model[0].weight_hh_l0
    rnn.quantize_int8(model, inplace=True)
    assert model[0].weight_hh_l0 is weight


def test_training_and_gradients_are_refused():
    int8 = rnn.quantize_int8(make("LSTM"))
    with pytest.raises(RuntimeError, match="inference only"):
        int8.train()
    int8.eval()  # train(False) is fine
    x = torch.randn(4, 2, 12, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"records no gradients"):
        int8(x)
    with torch.no_grad():
        int8(x)
    out, _ = int8(x.detach())  # parameters requiring grad do not matter: no graph is built
    assert not out.requires_grad


@pytest.mark.parametrize(("options", "error", "match"), [
    ({"layer_norm": True}, ValueError, "expected no recurrent_dropout, zoneout or layer_norm"),
    ({"zoneout": 0.1}, ValueError, "expected no recurrent_dropout"),
    ({"dtype": torch.float64}, ValueError, "expects float32 CPU weights"),
])
def test_unsupported_layers_are_refused(options, error, match):
    with pytest.raises(error, match=match):
        rnn.quantize_int8(rnn.LSTM(4, 8, **options))


def test_non_modules_and_wrong_inputs_are_refused():
    with pytest.raises(TypeError, match=r"model: expected a torch\.nn\.Module"):
        rnn.quantize_int8("lstm")
    with pytest.raises(TypeError, match=r"layer: expected an rnnkit\.nn RNN"):
        rnn.QuantizedRecurrent(nn.Linear(2, 2))
    int8 = rnn.quantize_int8(make("GRU"))
    with pytest.raises(ValueError):
        int8(torch.randn(4, 2, 11))  # wrong input size, refused by the float layer's checks
