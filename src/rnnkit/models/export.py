"""Export a trained model to ONNX or TorchScript, checked against PyTorch.

rnnkit's recurrent layers choose kernels at run time (native engine, fused torch op, python
loop) and skip masking when every row is full; tracing would freeze one of those branches.
For export, each :mod:`rnnkit.nn` layer is swapped for the equivalent ``torch.nn`` layer with
the same weights, run over a packed sequence when per-row lengths are given; exporters know
how to lower that (ONNX ``LSTM``/``GRU``/``RNN`` with ``sequence_lens``), keeping the batch
and sequence axes dynamic. The exported graph is then compared with the original rnnkit model
on random inputs of two different batch and sequence sizes. What each model class exports
(graphs, names, axes, inputs) is in :mod:`rnnkit.models.export_graphs`.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit import nn as rnn_layers
from rnnkit.models.export_graphs import ExportGraph, Signature, WindowScaling, graphs_for
from rnnkit.native_stderr import native_stderr_captured

_TORCH_LAYERS = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN_TANH": nn.RNN, "RNN_RELU": nn.RNN}


class TorchRecurrent(nn.Module):
    """``torch.nn`` twin of an rnnkit layer with its call signature ``(x, hx, lengths=)``."""

    def __init__(self, layer: rnn_layers.RecurrentBase) -> None:
        super().__init__()
        blocker = export_blocker(layer)
        if blocker:
            raise ValueError(f"export: {blocker}")
        kwargs = {"num_layers": layer.num_layers, "bias": layer.bias, "batch_first": True,
                  "bidirectional": layer.bidirectional}
        if layer.mode.startswith("RNN_"):
            kwargs["nonlinearity"] = layer.mode[4:].lower()
        self.rnn = _TORCH_LAYERS[layer.mode](layer.input_size, layer.hidden_size, **kwargs)
        self.rnn.load_state_dict(dict(layer.named_parameters()))
        self.rnn.eval()

    def forward(self, x: Tensor, hx=None, lengths: Tensor | None = None):
        """``x`` ``(batch, seq, feature)`` → outputs (zero past each length) and final state."""
        if lengths is None:
            return self.rnn(x, hx)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        output, state = self.rnn(packed, hx)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=x.shape[1])
        # The ONNX exporter rewrites pack/unpack pairs into the recurrent op's sequence_lens and
        # fails when the unpacked output is dead code (a model that only reads the final state,
        # e.g. last-step pooling). Tying the state to the output by an exact +0 keeps it alive.
        keep_alive = output.reshape(-1)[:1].sum() * 0.0
        state = tuple(s + keep_alive for s in state) if isinstance(state, tuple) else (
            state + keep_alive)
        return output, state

    def step(self, x: Tensor, state=None):
        """One step: ``x`` ``(batch, feature)`` → ``(batch, hidden)`` and the new state."""
        output, state = self.rnn(x.unsqueeze(1), state)
        return output[:, 0], state


def export_blocker(layer: rnn_layers.RecurrentBase) -> str | None:
    """Why ``layer`` cannot be exported as a standard recurrent op (``None`` if it can)."""
    if layer.layer_norm:
        return "layer_norm has no ONNX/torch.nn recurrent equivalent; train without it"
    if layer.proj_size:
        return "LSTM proj_size is not supported by the ONNX LSTM op; train without it"
    return None


def with_torch_layers(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) whose rnnkit recurrent layers are :class:`TorchRecurrent`.

    Recurrent dropout and zoneout act only in training, so eval-mode outputs are unchanged.
    """
    clone = copy.deepcopy(model).eval()
    for parent in list(clone.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, rnn_layers.RecurrentBase):
                setattr(parent, name, TorchRecurrent(child))
    return clone


def _outputs(result) -> list[np.ndarray]:
    items = result if isinstance(result, (tuple, list)) else (result,)
    return [item.detach().float().numpy() if isinstance(item, Tensor) else np.asarray(item)
            for item in items]


@dataclass
class ExportReport:
    """Written files and the largest absolute difference found per checked input size."""

    path: Path
    format: str
    max_abs_diff: dict[str, float]
    files: list[Path]
    inputs: list[tuple[str, ...]] = field(default_factory=list)  # per file, its input names


def export_model(
    model: nn.Module, path: str | Path, fmt: str = "onnx", scaling: WindowScaling | None = None
) -> ExportReport:
    """Export ``model`` (an :mod:`rnnkit.models` model) to ``path`` and verify it.

    ONNX keeps dynamic batch and sequence axes (and per-row ``lengths`` inputs); each graph is
    checked (onnxruntime, or the reloaded TorchScript module) against the original model on
    inputs of sizes (2, 7) and (5, 13). Seq2seq models give two files: the encoder at ``path``
    and one decoder step at ``<stem>.step<suffix>``, for greedy or beam decoding in a runtime.
    ``scaling`` builds a forecasting run's per-window scaling (``data.normalize``, see
    :class:`~rnnkit.models.export_graphs.WindowScaling`) into a forecaster's graph, so it
    takes raw history like ``rnnkit predict``.
    """
    if fmt not in ("onnx", "torchscript"):
        raise ValueError(f"--format: expected onnx or torchscript, got {fmt!r}")
    model = model.cpu().eval()
    path = Path(path)
    differences: dict[str, float] = {}
    files, inputs_of = [], []
    twin = with_torch_layers(model)  # first: a layer that has no twin is the first refusal
    for graph in graphs_for(model, scaling):
        target = path.with_name(path.stem + graph.suffix + path.suffix)
        run = _export_graph(graph.wrap(twin), graph, target, fmt)
        files.append(target)
        inputs_of.append(graph.signature.inputs)
        reference = graph.wrap(model)
        for batch, seq in ((2, 7), (5, 13)):
            with torch.no_grad():
                inputs = graph.inputs(batch, seq, batch)
                expected = _outputs(reference(*inputs))
            got = run(*inputs)
            key = f"{graph.suffix.strip('.') or 'model'} batch={batch},seq={seq}"
            differences[key] = max(float(np.max(np.abs(e - g)))
                                   for e, g in zip(expected, got, strict=True))
    return ExportReport(path, fmt, differences, files, inputs_of)


def _export_graph(exported: nn.Module, graph: ExportGraph, target: Path,
                  fmt: str) -> Callable[..., list[np.ndarray]]:
    """Write ``exported`` (one graph) and return a function running the written file."""
    example = graph.inputs(3, 9, 0)
    signature = graph.signature
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if fmt == "onnx":
            with native_stderr_captured():  # torch's C++ prim::PackPadded shape warnings
                torch.onnx.export(exported, example, str(target),
                                  input_names=list(signature.inputs),
                                  output_names=list(signature.outputs),
                                  dynamic_axes=signature.dynamic_axes, opset_version=17,
                                  dynamo=False)
            return _onnx_runner(target, signature)
        traced = torch.jit.trace(exported, example, check_trace=False)
        traced.save(str(target))
        loaded = torch.jit.load(str(target))  # deprecated in favour of torch.export, still works
    return lambda *inputs: _outputs(loaded(*inputs))


def _onnx_runner(path: Path, signature: Signature) -> Callable[..., list[np.ndarray]]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(*inputs: Tensor) -> list[np.ndarray]:
        feeds = {name: tensor.numpy() for name, tensor in zip(signature.inputs, inputs,
                                                                strict=True)}
        return session.run(None, feeds)

    return run
