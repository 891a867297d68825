"""Recurrent spectra match numpy's SVD and the analytic step Jacobian."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit import nn as rnn
from rnnkit.analysis.spectrum import recurrent_weight_spectrum, step_jacobian_spectrum


@pytest.mark.parametrize(("layer_class", "gates"), [
    (rnn.RNN, ["hidden"]), (rnn.LSTM, ["input", "forget", "cell", "output"]),
    (rnn.GRU, ["reset", "update", "new"])])
def test_gate_singular_values_match_numpy(layer_class, gates):
    torch.manual_seed(0)
    layer = layer_class(3, 5, num_layers=2, bidirectional=True)
    spectra = recurrent_weight_spectrum(layer)
    assert len(spectra) == 2 * 2 * len(gates)
    for spectrum in spectra:
        suffix = f"_l{spectrum.layer}{'_reverse' if spectrum.direction else ''}"
        weight = getattr(layer, "weight_hh" + suffix).detach().numpy().astype(np.float64)
        block = np.split(weight, len(gates))[gates.index(spectrum.gate)]
        np.testing.assert_allclose(spectrum.singular_values, np.linalg.svd(block)[1], rtol=1e-10)
        assert spectrum.largest == spectrum.singular_values.max()


def test_tanh_rnn_step_jacobian_is_diag_times_w_hh():
    torch.manual_seed(0)
    layer = rnn.RNN(2, 4, backend="torch").double()
    sequence = torch.randn(5, 2, dtype=torch.float64)
    spectrum = step_jacobian_spectrum(layer, sequence)
    output, _ = layer(sequence)
    w_hh = layer.weight_hh_l0.detach().numpy()
    for t in range(5):
        h = output[t].detach().numpy()
        expected = np.linalg.svd(np.diag(1 - h ** 2) @ w_hh)[1]
        np.testing.assert_allclose(spectrum[t], expected, rtol=1e-9)


def test_lstm_step_jacobian_covers_h_and_c():
    torch.manual_seed(0)
    layer = rnn.LSTM(3, 4, num_layers=2, batch_first=True)
    spectrum = step_jacobian_spectrum(layer, torch.randn(6, 3), layer_index=1)
    assert spectrum.shape == (6, 8)
    assert np.all(np.diff(spectrum, axis=1) <= 1e-6)  # descending
    # at the first step c_{-1} = 0 and the forget gate is in (0, 1): contraction along c exists
    assert spectrum[0, -1] < 1.0


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="layer"):
        recurrent_weight_spectrum(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="sequence"):
        step_jacobian_spectrum(rnn.GRU(3, 2), torch.randn(4, 2))
