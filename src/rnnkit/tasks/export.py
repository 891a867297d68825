"""Export a trained model to ONNX or TorchScript, checked against PyTorch.

rnnkit's recurrent layers choose kernels at run time (native engine, fused torch op, python
loop) and skip masking when every row is full; tracing would freeze one of those branches.
For export, each :mod:`rnnkit.nn` layer is swapped for the equivalent ``torch.nn`` layer with
the same weights, run over a packed sequence when per-row lengths are given; exporters know
how to lower that (ONNX ``LSTM``/``GRU``/``RNN`` with ``sequence_lens``), keeping the batch
and sequence axes dynamic. The exported graph is then compared with the original rnnkit model
on random inputs of two different batch and sequence sizes.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit import nn as rnn_layers
from rnnkit.tasks.native_stderr import native_stderr_captured

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
        self.rnn.load_state_dict({name: getattr(layer, name)
                                  for name in layer._flat_weights_names})
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


@dataclass(frozen=True)
class Signature:
    """Input/output names, dynamic axes and a random-input factory for one model type."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    dynamic_axes: dict[str, dict[int, str]]


class _TokensWrapper(nn.Module):
    """``(tokens (batch, seq), lengths (batch,))`` → logits, for LM/classifier/tagger."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        output = self.model(tokens, lengths)
        return output[0] if isinstance(output, tuple) else output


class _ConditionalWrapper(_TokensWrapper):
    def forward(self, condition: Tensor, tokens: Tensor, lengths: Tensor) -> Tensor:  # type: ignore[override]
        return self.model(condition, tokens, lengths)[0]


class _ForecastWrapper(_TokensWrapper):
    """Raw history ``(batch, lookback, features)`` → mean (and std) in original units; with
    ``relative`` each window's last value is subtracted first and added back to the mean."""

    def __init__(self, model: nn.Module, relative: bool = False) -> None:
        super().__init__(model)
        self.relative = relative

    def forward(self, history: Tensor):  # type: ignore[override]
        targets = self.model.config.targets
        level = history[:, -1:, :] * float(self.relative)  # (batch, 1, features)
        mean, std = self.model(self.model.scale(history - level))
        mean = self.model.unscale_targets(mean) + level[..., targets]
        if std is None:
            return mean
        return mean, std * self.model.feature_std[targets]


def _state_parts(state) -> tuple[Tensor, ...]:
    return tuple(state) if isinstance(state, tuple) else (state,)


class _Seq2SeqEncoder(_TokensWrapper):
    """``(source, source_lengths)`` → attention memory (outputs, projected keys, mask) and the
    decoder's first state (``h`` and, for LSTM, ``c``)."""

    def forward(self, source: Tensor, source_lengths: Tensor):  # type: ignore[override]
        memory, state = self.model.encode(source, source_lengths)
        return (*memory, *_state_parts(state))


class _Seq2SeqStep(_TokensWrapper):
    """One decoder step: previous tokens, state and memory → logits, new state, attention."""

    def forward(self, tokens: Tensor, *rest: Tensor):  # type: ignore[override]
        from rnnkit.models.seq2seq import Memory

        parts = 2 if self.model.config.cell == "lstm" else 1
        state = tuple(rest[:parts]) if parts == 2 else rest[0]
        memory = Memory(*rest[parts:])
        logits, state, weights = self.model.decode_step(tokens, state, memory)
        outputs = (logits, *_state_parts(state))
        return outputs if weights is None else (*outputs, weights)


def _wrap(model: nn.Module, relative: bool = False) -> tuple[nn.Module, Signature]:
    kind = model.model_type  # type: ignore[attr-defined]
    batch, seq = {0: "batch"}, {0: "batch", 1: "sequence"}
    if kind == "forecaster":
        outputs = ("mean", "std") if model.config.gaussian else ("mean",)  # type: ignore[attr-defined]
        axes = {"history": {0: "batch", 1: "lookback"}, **{o: batch for o in outputs}}
        return _ForecastWrapper(model, relative), Signature(("history",), outputs, axes)
    if kind == "conditional_generator":
        axes = {"condition": batch, "tokens": seq, "lengths": batch, "logits": seq}
        return _ConditionalWrapper(model), Signature(("condition", "tokens", "lengths"),
                                                     ("logits",), axes)
    axes = {"tokens": seq, "lengths": batch, "logits": seq if kind != "sequence_classifier"
            else batch}
    return _TokensWrapper(model), Signature(("tokens", "lengths"), ("logits",), axes)


def random_inputs(model: nn.Module, batch: int, seq: int, seed: int) -> tuple[Tensor, ...]:
    """Random valid inputs for ``model``: token ids, per-row lengths (one row full), etc."""
    generator = torch.Generator().manual_seed(seed)
    config = model.config  # type: ignore[attr-defined]
    kind = model.model_type  # type: ignore[attr-defined]
    lengths = torch.randint(1, seq + 1, (batch,), generator=generator)
    lengths[0] = seq

    def tokens(vocab: int) -> Tensor:
        return torch.randint(0, vocab, (batch, seq), generator=generator)

    if kind == "forecaster":
        mean = torch.tensor(config.mean or [0.0] * config.input_size)
        std = torch.tensor(config.std or [1.0] * config.input_size)
        return (mean + std * torch.randn(batch, seq, config.input_size, generator=generator),)
    if kind == "conditional_generator":
        condition = torch.randint(0, config.num_conditions, (batch,), generator=generator)
        return condition, tokens(config.vocab_size), lengths
    if kind == "seq2seq":
        return tokens(config.source_vocab_size), lengths
    return tokens(config.vocab_size), lengths


def _step_inputs(model: nn.Module, batch: int, seq: int, seed: int) -> tuple[Tensor, ...]:
    """Decoder-step inputs: previous tokens, the encoder's state and memory for random source."""
    with torch.no_grad():
        memory, state = model.encode(*random_inputs(model, batch, seq, seed))  # type: ignore[operator]
    previous = torch.randint(0, model.config.target_vocab_size, (batch,),  # type: ignore[attr-defined]
                             generator=torch.Generator().manual_seed(seed + 1))
    return (previous, *_state_parts(state), *memory)


@dataclass
class _Part:
    """One exported graph: file suffix, module to export, reference, signature, inputs."""

    suffix: str
    exported: nn.Module
    reference: nn.Module
    signature: Signature
    inputs: object  # (model, batch, seq, seed) -> tuple of tensors


def _parts(model: nn.Module, relative: bool) -> list[_Part]:
    if model.model_type != "seq2seq":  # type: ignore[attr-defined]
        wrapped, signature = _wrap(with_torch_layers(model), relative)
        return [_Part("", wrapped, _wrap(model, relative)[0], signature, random_inputs)]
    # The decoder runs one step at a time (greedy or beam search), so the export is two graphs:
    # the encoder, and one decoder step that the runtime calls in its own loop.
    torch_model = with_torch_layers(model)
    state = ("h", "c") if model.config.cell == "lstm" else ("h",)  # type: ignore[attr-defined]
    source = {0: "batch", 1: "source"}
    memory = ("memory", "keys", "mask")
    state_axes = {name: {1: "batch"} for name in state}
    encoder = Signature(("source", "source_lengths"), (*memory, *state),
                        {"source": source, "source_lengths": {0: "batch"},
                         **dict.fromkeys(memory, source), **state_axes})
    attends = model.config.attention != "none"  # type: ignore[attr-defined]
    step_outputs = ("logits", *(f"next_{n}" for n in state), *(("attention",) if attends else ()))
    step = Signature(
        ("previous", *state, *memory), step_outputs,
        {"previous": {0: "batch"}, "logits": {0: "batch"}, **state_axes,
         **{f"next_{n}": {1: "batch"} for n in state}, **dict.fromkeys(memory, source),
         **({"attention": source} if attends else {})},
    )
    return [
        _Part("", _Seq2SeqEncoder(torch_model), _Seq2SeqEncoder(model), encoder, random_inputs),
        _Part(".step", _Seq2SeqStep(torch_model), _Seq2SeqStep(model), step, _step_inputs),
    ]


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


def export_model(
    model: nn.Module, path: str | Path, fmt: str = "onnx", relative_forecast: bool = False
) -> ExportReport:
    """Export ``model`` (an :mod:`rnnkit.models` model) to ``path`` and verify it.

    ONNX keeps dynamic batch and sequence axes (and per-row ``lengths`` inputs); each graph is
    checked (onnxruntime, or the reloaded TorchScript module) against the original model on
    inputs of sizes (2, 7) and (5, 13). Seq2seq models give two files: the encoder at ``path``
    and one decoder step at ``<stem>.step<suffix>``, for greedy or beam decoding in a runtime.
    ``relative_forecast`` builds the per-window level (``data.normalize: last_value``) into a
    forecaster's graph, so it takes raw history like ``rnnkit predict``.
    """
    if fmt not in ("onnx", "torchscript"):
        raise ValueError(f"--format: expected onnx or torchscript, got {fmt!r}")
    model = model.cpu().eval()
    path = Path(path)
    differences: dict[str, float] = {}
    files = []
    for part in _parts(model, relative_forecast):
        target = path.with_name(path.stem + part.suffix + path.suffix)
        run = _export_part(part, model, target, fmt)
        files.append(target)
        for batch, seq in ((2, 7), (5, 13)):
            with torch.no_grad():
                inputs = part.inputs(model, batch, seq, seed=batch)  # type: ignore[operator]
                expected = _outputs(part.reference(*inputs))
            got = run(*inputs)
            key = f"{part.suffix.strip('.') or 'model'} batch={batch},seq={seq}"
            differences[key] = max(float(np.max(np.abs(e - g)))
                                   for e, g in zip(expected, got, strict=True))
    return ExportReport(path, fmt, differences, files)


def _export_part(part: _Part, model: nn.Module, target: Path, fmt: str):
    """Write one graph and return a function running the written file."""
    example = part.inputs(model, 3, 9, seed=0)  # type: ignore[operator]
    signature = part.signature
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if fmt == "onnx":
            with native_stderr_captured():  # torch's C++ prim::PackPadded shape warnings
                torch.onnx.export(part.exported, example, str(target),
                                  input_names=list(signature.inputs),
                                  output_names=list(signature.outputs),
                                  dynamic_axes=signature.dynamic_axes, opset_version=17,
                                  dynamo=False)
            return _onnx_runner(target, signature)
        traced = torch.jit.trace(part.exported, example, check_trace=False)
        traced.save(str(target))
        loaded = torch.jit.load(str(target))  # deprecated in favour of torch.export, still works
    return lambda *inputs: _outputs(loaded(*inputs))


def _onnx_runner(path: Path, signature: Signature):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(*inputs: Tensor) -> list[np.ndarray]:
        feeds = {name: tensor.numpy() for name, tensor in zip(signature.inputs, inputs,
                                                                strict=True)}
        return session.run(None, feeds)

    return run
