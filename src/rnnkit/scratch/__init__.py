"""Recurrent networks from scratch in NumPy: forward pass and backpropagation through time by hand.

This subpackage is the reference the rest of rnnkit is tested against, and a lesson. It imports
nothing but NumPy. Each module holds one idea:

- :mod:`~rnnkit.scratch.layer` – what all cells share; the input projection done once for all
  time steps, the recurrence step by step.
- :mod:`~rnnkit.scratch.rnn` – ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` (or relu).
- :mod:`~rnnkit.scratch.lstm` – input, forget, candidate and output gates; cell state; optional
  projection ``h_t = W_hr (o_t * tanh(c_t))``.
- :mod:`~rnnkit.scratch.gru` – reset and update gates, torch's
  ``n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))``.
- :mod:`~rnnkit.scratch.stacked` – several layers, both directions, shaped like ``torch.nn``.
- :mod:`~rnnkit.scratch.padded` – batches of sequences of different lengths (``lengths=``).
- :mod:`~rnnkit.scratch.loss`, :mod:`~rnnkit.scratch.clip`, :mod:`~rnnkit.scratch.optim` –
  softmax cross-entropy, gradient clipping by global norm, Adagrad and Adam.
- :mod:`~rnnkit.scratch.gradcheck` – finite differences to check a backward pass.
- :mod:`~rnnkit.scratch.char_rnn` – a min-char-rnn style character language model.

Shape legend: ``seq`` time steps, ``batch`` sequences, ``I`` input size, ``H`` hidden size,
``P`` size of ``h`` (``H``, or ``proj_size`` for a projected LSTM). Sequences are time-major,
``(seq, batch, I)``. Parameter names and shapes are torch's (``weight_ih`` ``(G*H, I)``,
``weight_hh`` ``(G*H, P)``, ``bias_ih``, ``bias_hh`` ``(G*H,)``; gates i, f, g, o for the LSTM and
r, z, n for the GRU), so weights copy across from a torch ``state_dict`` with ``.numpy()``.

Example: copy a torch LSTM's weights with ``net.load_state_dict({k: v.detach().numpy() for k, v
in torch_lstm.state_dict().items()})``, or start from torch's initialisation scheme:

>>> import numpy as np
>>> from rnnkit import scratch
>>> lstm = scratch.LSTM(input_size=3, hidden_size=5, rng=np.random.default_rng(0))
>>> x = np.random.default_rng(1).standard_normal((7, 2, 3))       # (seq, batch, I)
>>> output, (h_n, c_n), cache = lstm.forward(x)
>>> output.shape, h_n.shape, c_n.shape
((7, 2, 5), (1, 2, 5), (1, 2, 5))
>>> grad_x, (grad_h0, grad_c0), grads = lstm.backward(cache, np.ones_like(output))
>>> grad_x.shape, grads["weight_hh_l0"].shape
((7, 2, 3), (20, 5))
"""

from rnnkit.scratch.char_rnn import CharRNN, CharRNNConfig, CharRNNTrainer, Vocabulary
from rnnkit.scratch.clip import clip_grad_norm, global_norm
from rnnkit.scratch.gradcheck import numerical_gradient, relative_error
from rnnkit.scratch.gru import GRULayer
from rnnkit.scratch.layer import RecurrentLayer
from rnnkit.scratch.loss import softmax_cross_entropy
from rnnkit.scratch.lstm import LSTMLayer
from rnnkit.scratch.optim import Adagrad, Adam
from rnnkit.scratch.rnn import RNNLayer
from rnnkit.scratch.stacked import GRU, LSTM, RNN, StackedRecurrent

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Adagrad",
    "Adam",
    "CharRNN",
    "CharRNNConfig",
    "CharRNNTrainer",
    "GRULayer",
    "LSTMLayer",
    "RNNLayer",
    "RecurrentLayer",
    "StackedRecurrent",
    "Vocabulary",
    "clip_grad_norm",
    "global_norm",
    "numerical_gradient",
    "relative_error",
    "softmax_cross_entropy",
]
