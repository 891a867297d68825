"""ONNX Runtime as a peer in the benchmarks: the same torch.nn weights, exported and run.

``ort_sequence(layer, x)`` exports a torch.nn RNN/GRU/LSTM layer (with ``torch.onnx``, opset 17,
ONNX's own RNN/GRU/LSTM operators) and returns a no-argument callable running it on ``x`` with
ONNX Runtime's CPU provider on torch's thread count, after checking its outputs equal torch's.
``ort_step(layer)`` does the same for one step at batch 1 with the state fed back, as an
online-inference loop would call ``InferenceSession.run``.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnxruntime
import torch


class _Wrapped(torch.nn.Module):
    """``(x, state...) -> (y, state...)`` with the state as plain inputs and outputs."""

    def __init__(self, layer: torch.nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x, *state):
        if isinstance(self.layer, torch.nn.LSTM):
            y, (h, c) = self.layer(x, (state[0], state[1]))
            return y, h, c
        y, h = self.layer(x, state[0])
        return y, h


def _session(layer: torch.nn.Module, example: tuple[torch.Tensor, ...]):
    buffer = io.BytesIO()
    names = ["x", "h0", "c0"][:len(example)]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Wrapped(layer), example, buffer, input_names=names, opset_version=17,
                          dynamo=False)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(buffer.getvalue(), options,
                                           providers=["CPUExecutionProvider"])
    return session, names


def _initial_state(layer: torch.nn.Module, batch: int) -> tuple[torch.Tensor, ...]:
    layers = layer.num_layers * (2 if layer.bidirectional else 1)
    h0 = torch.zeros(layers, batch, layer.proj_size or layer.hidden_size)
    if isinstance(layer, torch.nn.LSTM):
        return h0, torch.zeros(layers, batch, layer.hidden_size)
    return (h0,)


def ort_sequence(layer: torch.nn.Module, x: torch.Tensor):
    """A callable running ``layer`` on ``x (seq, batch, feature)`` in ONNX Runtime."""
    example = (x, *_initial_state(layer, x.shape[1]))
    session, names = _session(layer, example)
    feeds = {name: tensor.numpy() for name, tensor in zip(names, example, strict=True)}
    with torch.no_grad():
        expected = _Wrapped(layer)(*example)[0].numpy()
    got = session.run(None, feeds)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    return lambda: session.run(None, feeds)


def ort_step(layer: torch.nn.Module):
    """A callable advancing ``layer`` one step at batch 1 in ONNX Runtime, state fed back."""
    x = torch.randn(1, 1, layer.input_size)
    example = (x, *_initial_state(layer, 1))
    session, names = _session(layer, example)
    feeds = {name: tensor.numpy() for name, tensor in zip(names, example, strict=True)}
    state_names = names[1:]

    def step():
        outputs = session.run(None, feeds)
        for name, value in zip(state_names, outputs[1:], strict=True):
            feeds[name] = value

    return step
