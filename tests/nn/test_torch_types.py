"""rnnkit layers recognised as torch's: base classes, dynamic quantisation, TorchScript.

Issue 12.
"""

from __future__ import annotations

import copy
import io
import warnings

import pytest
import torch

import rnnkit.nn as rnn
from rnnkit.nn import interop

LAYERS = ("RNN", "LSTM", "GRU")
CELLS = ("RNNCell", "LSTMCell", "GRUCell")


@pytest.mark.parametrize("name", LAYERS)
def test_layers_are_torch_rnnbase(name):
    layer = getattr(rnn, name)(3, 4)
    assert isinstance(layer, torch.nn.RNNBase)
    assert not isinstance(layer, interop.TORCH_CLASSES[name])  # torch's exact class stays its own


@pytest.mark.parametrize("name", CELLS)
def test_cells_are_torch_rnncellbase(name):
    assert isinstance(getattr(rnn, name)(3, 4), torch.nn.RNNCellBase)


def _seeded_pair(name, **options):
    torch.manual_seed(0)
    reference = interop.TORCH_CLASSES[name](3, 4, **options)
    ours = getattr(rnn, name)(3, 4, **options)
    return reference, ours


def test_state_dicts_load_both_ways_and_moves_follow_the_parameters():
    reference, ours = _seeded_pair("LSTM", num_layers=2, bidirectional=True, proj_size=2)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(ours(x)[0], reference(x)[0], atol=1e-5, rtol=0)
    reference.load_state_dict(ours.double().state_dict())  # loading converts the dtype
    assert ours._flat_weights[0].dtype == torch.float64  # no stale flat weight cache
    assert ours._all_weights[1] == ["weight_ih_l0_reverse", "weight_hh_l0_reverse",
                                    "bias_ih_l0_reverse", "bias_hh_l0_reverse",
                                    "weight_hr_l0_reverse"]
    torch.testing.assert_close(ours.float()(x)[0], reference(x)[0], atol=1e-5, rtol=0)


def test_copies_and_pickles_keep_working():
    _, ours = _seeded_pair("GRU", num_layers=2)
    x = torch.randn(4, 2, 3)
    buffer = io.BytesIO()
    torch.save(ours, buffer)
    buffer.seek(0)
    for copied in (copy.deepcopy(ours), torch.load(buffer, weights_only=False)):
        torch.testing.assert_close(copied(x)[0], ours(x)[0], atol=0, rtol=0)


class _Tagger(torch.nn.Module):
    """A small model with a recurrent layer and a linear head, for quantisation and scripting."""

    def __init__(self, layer: torch.nn.Module) -> None:
        super().__init__()
        self.rnn = layer
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0])


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():  # torch's deprecation notices for quantisation and jit
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_quantize_dynamic_matches_quantised_torch(name):
    torch.manual_seed(0)
    reference = _Tagger(interop.TORCH_CLASSES[name](5, 8, num_layers=2))
    ours = _Tagger(getattr(rnn, name)(5, 8, num_layers=2))
    ours.load_state_dict(reference.state_dict())
    spec = {torch.nn.Linear, interop.TORCH_CLASSES["LSTM"], interop.TORCH_CLASSES["GRU"]}
    expected = _quiet(torch.ao.quantization.quantize_dynamic, reference, spec, dtype=torch.qint8)
    quantised = _quiet(rnn.quantize_dynamic, ours, spec, dtype=torch.qint8)
    x = torch.randn(6, 2, 5)
    assert type(quantised.rnn) is type(expected.rnn)
    assert type(ours.rnn) is getattr(rnn, name)  # not in place: the model is untouched
    torch.testing.assert_close(quantised(x), expected(x), atol=1e-6, rtol=0)
    with torch.no_grad():
        assert float((quantised(x) - ours(x)).abs().max()) > 0  # really quantised


def test_quantize_dynamic_takes_rnnkit_classes_in_the_spec():
    torch.manual_seed(0)
    model = _Tagger(rnn.LSTM(5, 8))
    quantised = _quiet(rnn.quantize_dynamic, model, {rnn.LSTM}, dtype=torch.qint8)
    assert type(quantised.rnn).__module__.startswith("torch.ao.nn.quantized.dynamic")
    assert type(quantised.head) is torch.nn.Linear


def test_layers_without_a_torch_twin_are_refused_by_name():
    with pytest.raises(ValueError, match=r"LSTM: a layer with recurrent_dropout, zoneout or "
                                         r"layer_norm has no torch\.nn equivalent"):
        rnn.to_torch(rnn.LSTM(3, 4, layer_norm=True))
    with pytest.raises(TypeError, match=r"module: expected an rnnkit\.nn recurrent layer"):
        rnn.to_torch(torch.nn.Linear(3, 4))


def test_to_torch_shares_parameters():
    ours = rnn.GRU(3, 4, bidirectional=True)
    twin = rnn.to_torch(ours)
    assert type(twin) is interop.TORCH_CLASSES["GRU"]
    assert twin.weight_hh_l0_reverse is ours.weight_hh_l0_reverse
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(twin(x)[0], ours(x)[0], atol=1e-5, rtol=0)


def test_torch_jit_script_of_a_model_holding_rnnkit_layers():
    torch.manual_seed(0)
    model = _Tagger(rnn.LSTM(5, 8))
    x = torch.randn(6, 2, 5)
    eager = model(x)
    scripted = _quiet(torch.jit.script, model)
    torch.testing.assert_close(scripted(x), eager, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", CELLS)
def test_torch_jit_script_of_a_cell(name):
    torch.manual_seed(0)
    cell = getattr(rnn, name)(3, 4)
    scripted = _quiet(torch.jit.script, cell)
    x = torch.randn(2, 3)
    torch.testing.assert_close(scripted(x), cell(x), atol=1e-6, rtol=0)
