"""``torch.nn``-compatible recurrent layers and cells.

Change one import: ``from rnnkit import nn as rnn`` and use ``rnn.LSTM`` where you used
``torch.nn.LSTM``. Same constructor, parameters, initialisation and forward contract, plus
``lengths=`` on ``forward``, a streaming :meth:`~RecurrentBase.step` API, optional
regularisers, and a faster native CPU engine (see :mod:`rnnkit.nn.backend`).
"""

from rnnkit.nn.backend import BACKENDS, get_backend, set_backend, use_backend
from rnnkit.nn.base import RecurrentBase
from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnkit.nn.checks import RecurrentInputError
from rnnkit.nn.inference import prepack
from rnnkit.nn.interop import quantize_dynamic, to_torch
from rnnkit.nn.layers import GRU, LSTM, RNN
from rnnkit.nn.quantized import QuantizedRecurrent, quantize_int8

__all__ = [
    "BACKENDS",
    "GRU",
    "LSTM",
    "RNN",
    "GRUCell",
    "LSTMCell",
    "QuantizedRecurrent",
    "RNNCell",
    "RecurrentBase",
    "RecurrentInputError",
    "get_backend",
    "prepack",
    "quantize_dynamic",
    "quantize_int8",
    "set_backend",
    "to_torch",
    "use_backend",
]
