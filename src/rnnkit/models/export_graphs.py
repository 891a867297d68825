"""What each model class exports: its graphs, their input/output names and dynamic axes, and
random valid inputs to check them with.

One builder per model class, looked up by the class itself (:func:`graphs_for`), each typed
by the class it reads; :mod:`rnnkit.models.export` does the writing and checking. A model
exports its plain forward pass; options whose inputs the graph does not take (a forecaster's
covariates) are refused naming the option.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.models._recurrent import State
from rnnkit.models.classifier import SequenceClassifier
from rnnkit.models.conditional_generator import ConditionalGenerator
from rnnkit.models.forecast_likelihood import QuantilePredictive
from rnnkit.models.forecaster import Forecaster
from rnnkit.models.language_model import LanguageModel
from rnnkit.models.seq2seq import Memory, Seq2Seq
from rnnkit.models.tagger import SequenceTagger

Inputs = Callable[[int, int, int], tuple[Tensor, ...]]
"""``inputs(batch, seq, seed)`` → random valid inputs of that size."""

BATCH = {0: "batch"}
SEQUENCE = {0: "batch", 1: "sequence"}


@dataclass(frozen=True)
class Signature:
    """Input/output names and dynamic axes of one exported graph."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    dynamic_axes: dict[str, dict[int, str]]


@dataclass(frozen=True)
class ExportGraph:
    """One exported graph: the file-name ``suffix``, ``wrap`` (a model → the module to trace,
    applied to the model and to its ``torch.nn`` twin), its signature and its inputs."""

    suffix: str
    wrap: Callable[[nn.Module], nn.Module]
    signature: Signature
    inputs: Inputs


def graphs_for(model: nn.Module, scaling: WindowScaling | None = None) -> list[ExportGraph]:
    """The graphs ``model`` exports (``scaling``: a forecaster's :class:`WindowScaling`;
    ignored by other models)."""
    for model_class, build in _BUILDERS.items():
        if isinstance(model, model_class):
            return build(model, scaling)
    raise TypeError(f"model: expected an rnnkit.models model, got {type(model).__name__}")


class _Wrapper(nn.Module):
    """A model behind the call signature of its exported graph."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model


# ------------------------------------------------------------------- token models
class _TokensGraph(_Wrapper):
    """``(tokens (batch, seq), lengths (batch,))`` → logits, for LM and classifier."""

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        output = self.model(tokens, lengths)
        return output[0] if isinstance(output, tuple) else output


def _random_lengths(batch: int, seq: int, generator: torch.Generator) -> Tensor:
    """Per-row lengths ``(batch,)`` in ``[1, seq]``, row 0 full (drawn first by every model,
    so the checked inputs stay those of earlier releases)."""
    lengths = torch.randint(1, seq + 1, (batch,), generator=generator)
    lengths[0] = seq
    return lengths


def _random_tokens(vocab_size: int, batch: int, seq: int,
                   generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Token ids ``(batch, seq)`` below ``vocab_size`` and their lengths ``(batch,)``."""
    lengths = _random_lengths(batch, seq, generator)
    return torch.randint(0, vocab_size, (batch, seq), generator=generator), lengths


def _token_graph(vocab_size: int, logits_axes: dict[int, str]) -> list[ExportGraph]:
    def inputs(batch: int, seq: int, seed: int) -> tuple[Tensor, ...]:
        return _random_tokens(vocab_size, batch, seq, torch.Generator().manual_seed(seed))

    axes = {"tokens": SEQUENCE, "lengths": BATCH, "logits": logits_axes}
    return [ExportGraph("", _TokensGraph, Signature(("tokens", "lengths"), ("logits",), axes),
                        inputs)]


def _language_model(model: LanguageModel, _: WindowScaling | None) -> list[ExportGraph]:
    return _token_graph(model.config.vocab_size, SEQUENCE)


def _classifier(model: SequenceClassifier, _: WindowScaling | None) -> list[ExportGraph]:
    return _token_graph(model.config.vocab_size, BATCH)


class _TaggerGraph(_Wrapper):
    """``(tokens (batch, seq), lengths (batch,)[, chars (batch, seq, word_len)])`` → emission
    logits ``(batch, seq, tags)``, and with a CRF its ``transitions (tags, tags)`` (from, to),
    ``start`` and ``end`` ``(tags,)`` scores, forbidden entries at ``FORBIDDEN``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        assert isinstance(model, SequenceTagger)
        self.tagger = model

    def forward(self, tokens: Tensor, lengths: Tensor, *chars: Tensor) -> Tensor | tuple:
        logits = self.tagger(tokens, lengths, *chars)
        crf = self.tagger.crf
        if crf is None:
            return logits
        # Constant outputs are folded into initializers and lose their names; an exact +0
        # computed from the logits keeps them graph outputs named as the signature says.
        zero = logits.reshape(-1)[:1].sum() * 0.0
        return (logits, *(score + zero for score in crf.scores()))


def _random_chars(num_chars: int, lengths: Tensor, seq: int,
                  generator: torch.Generator) -> Tensor:
    """Character ids ``(batch, seq, word_len)`` as the task pads them: every real word has 1
    to ``word_len`` characters (ids >= 1) then padding (0); padded words are all padding. The
    width grows with ``seq`` so that the two checked sizes differ in it too."""
    width = seq // 2 + 1
    word_lengths = torch.randint(1, width + 1, (len(lengths), seq), generator=generator)
    word_lengths = word_lengths * (torch.arange(seq).unsqueeze(0) < lengths.unsqueeze(1))
    chars = torch.randint(1, num_chars, (len(lengths), seq, width), generator=generator)
    return chars * (torch.arange(width) < word_lengths.unsqueeze(2))


def _tagger(model: SequenceTagger, _: WindowScaling | None) -> list[ExportGraph]:
    """Emission scores per token; with character features the graph also takes ``chars``.

    With a CRF the graph also returns the CRF's scores and leaves Viterbi decoding to the
    runtime: the decoding loop runs over the sequence, which a traced graph would unroll to
    the example's length. ``argmax`` of the logits is the tagging without a CRF only.
    """
    config = model.config
    chars = config.char_features != "none"

    def inputs(batch: int, seq: int, seed: int) -> tuple[Tensor, ...]:
        generator = torch.Generator().manual_seed(seed)
        tokens, lengths = _random_tokens(config.vocab_size, batch, seq, generator)
        if not chars:
            return tokens, lengths
        return tokens, lengths, _random_chars(config.num_chars, lengths, seq, generator)

    names = ("tokens", "lengths", *(("chars",) if chars else ()))
    outputs = ("logits", *(("transitions", "start", "end") if config.crf else ()))
    axes = {"tokens": SEQUENCE, "lengths": BATCH, "logits": SEQUENCE,
            **({"chars": {0: "batch", 1: "sequence", 2: "word_length"}} if chars else {})}
    return [ExportGraph("", _TaggerGraph, Signature(names, outputs, axes), inputs)]


# ------------------------------------------------------------ conditional generator
class _ConditionalGraph(_Wrapper):
    """``(condition (batch,), tokens (batch, seq), lengths (batch,))`` → logits."""

    def forward(self, condition: Tensor, tokens: Tensor, lengths: Tensor) -> Tensor:
        return self.model(condition, tokens, lengths)[0]


def _conditional_generator(model: ConditionalGenerator,
                           _: WindowScaling | None) -> list[ExportGraph]:
    config = model.config

    def inputs(batch: int, seq: int, seed: int) -> tuple[Tensor, ...]:
        generator = torch.Generator().manual_seed(seed)
        lengths = _random_lengths(batch, seq, generator)
        condition = torch.randint(0, config.num_conditions, (batch,), generator=generator)
        tokens = torch.randint(0, config.vocab_size, (batch, seq), generator=generator)
        return condition, tokens, lengths

    axes = {"condition": BATCH, "tokens": SEQUENCE, "lengths": BATCH, "logits": SEQUENCE}
    signature = Signature(("condition", "tokens", "lengths"), ("logits",), axes)
    return [ExportGraph("", _ConditionalGraph, signature, inputs)]


# ---------------------------------------------------------------------------- forecaster
@dataclass(frozen=True)
class WindowScaling:
    """How a forecaster's graph scales each history window before the model's own feature
    scaling, and undoes it on the forecast (the forecasting task's ``data.normalize``):

    - ``'global'``: not at all (the model's mean/std alone);
    - ``'last_value'``: subtract the window's last value;
    - ``'window'``: subtract the window's mean and divide by its standard deviation (population,
      at least ``floor`` per feature);
    - ``'series'``: subtract ``series_mean`` and divide by ``series_std``, two more graph
      inputs ``(batch, features)`` holding each row's series statistics (a run's
      ``series_scale`` artifacts), which the history alone cannot tell.
    """

    mode: str = "global"
    floor: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("global", "last_value", "window", "series"):
            raise ValueError("scaling.mode: expected 'global', 'last_value', 'window' or "
                             f"'series', got {self.mode!r}")
        if (self.mode == "window") != (self.floor is not None):
            raise ValueError("scaling.floor: expected the per-feature smallest spread with "
                             f"mode 'window' and None otherwise, got {self.floor!r} with mode "
                             f"{self.mode!r}")

    @property
    def extra_inputs(self) -> tuple[str, ...]:
        return ("series_mean", "series_std") if self.mode == "series" else ()

    def levels(self, history: Tensor, *series: Tensor) -> tuple[Tensor, Tensor]:
        """Per window the shift and the divisor, each ``(batch, 1, features)``."""
        if self.mode == "last_value":
            return history[:, -1:, :], torch.ones_like(history[:, -1:, :])
        if self.mode == "window":
            floor = torch.tensor(self.floor, dtype=history.dtype)
            spread = history.std(dim=1, keepdim=True, correction=0)
            return history.mean(dim=1, keepdim=True), torch.maximum(spread, floor)
        if self.mode == "series":
            mean, std = series
            return mean.unsqueeze(1), std.unsqueeze(1)
        return torch.zeros_like(history[:, -1:, :]), torch.ones_like(history[:, -1:, :])


class _ForecastGraph(nn.Module):
    """Raw history ``(batch, lookback, features)`` (with ``series_mean``/``series_std`` for
    ``'series'`` scaling) → mean (and std or quantiles) in original units."""

    def __init__(self, model: Forecaster, scaling: WindowScaling) -> None:
        super().__init__()
        self.model = model
        self.scaling = scaling

    def forward(self, history: Tensor, *series: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        model, targets = self.model, self.model.config.targets
        shift, spread = self.scaling.levels(history, *series)  # (batch, 1, features) each
        distribution = model.predictive(model.raw_outputs(model.scale((history - shift)
                                                                      / spread)))
        shift, spread = shift[..., targets], spread[..., targets]
        mean = model.unscale_targets(distribution.point) * spread + shift
        if isinstance(distribution, QuantilePredictive):
            # (batch, horizon, targets, levels): every level unscaled like the point forecast
            scale, offset = model.feature_std[targets], model.feature_mean[targets]
            levels = distribution.values * scale[:, None] + offset[:, None]
            return mean, levels * spread.unsqueeze(-1) + shift.unsqueeze(-1)
        if distribution.std is None:
            return mean
        return mean, distribution.std * model.feature_std[targets] * spread


def _forecaster(model: Forecaster, scaling: WindowScaling | None) -> list[ExportGraph]:
    config = model.config
    scaling = scaling or WindowScaling()
    for option in ("future_size", "static_size"):
        if getattr(config, option):
            raise ValueError(
                f"export: model.{option}={getattr(config, option)} (covariates) is not "
                "supported; the exported graph takes the history only"
            )

    def inputs(batch: int, seq: int, seed: int) -> tuple[Tensor, ...]:
        generator = torch.Generator().manual_seed(seed)
        _random_lengths(batch, seq, generator)  # unused, drawn to keep the inputs as they were
        # A lookback that holds a season (residual) and a horizon (per-step head), still one
        # per size.
        seq += max(config.season if config.residual != "none" else 0,
                   config.horizon if config.head == "per_step" else 0)
        mean = torch.tensor(config.mean or [0.0] * config.input_size)
        std = torch.tensor(config.std or [1.0] * config.input_size)
        history = mean + std * torch.randn(batch, seq, config.input_size, generator=generator)
        if scaling.mode != "series":
            return (history,)
        series_mean = torch.randn(batch, config.input_size, generator=generator)
        series_std = 0.5 + torch.rand(batch, config.input_size, generator=generator)
        return history, series_mean, series_std

    def wrap(forecaster: nn.Module) -> nn.Module:
        assert isinstance(forecaster, Forecaster)
        return _ForecastGraph(forecaster, scaling)

    spread = {"gaussian": ("std",), "quantile": ("quantiles",)}.get(config.likelihood, ())
    outputs = ("mean", *spread)
    axes = {"history": {0: "batch", 1: "lookback"},
            **{name: BATCH for name in (*scaling.extra_inputs, *outputs)}}
    return [ExportGraph("", wrap, Signature(("history", *scaling.extra_inputs), outputs, axes),
                        inputs)]


# ------------------------------------------------------------------------------- seq2seq
def _state_parts(state: State) -> tuple[Tensor, ...]:
    return tuple(state) if isinstance(state, tuple) else (state,)


class _Seq2SeqGraph(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        assert isinstance(model, Seq2Seq)
        self.model = model
        # Without attention the decoder never reads the encoder's outputs: a graph input it
        # does not use would be dropped by the ONNX exporter, so memory is left out entirely.
        self.attends = model.config.attention != "none"


class _Seq2SeqEncoder(_Seq2SeqGraph):
    """``(source, source_lengths)`` → attention memory (outputs, projected keys, mask; only
    with attention) and the decoder's first state (``h`` and, for LSTM, ``c``)."""

    def forward(self, source: Tensor, source_lengths: Tensor) -> tuple[Tensor, ...]:
        memory, state = self.model.encode(source, source_lengths)
        return (*(memory if self.attends else ()), *_state_parts(state))


class _Seq2SeqStep(_Seq2SeqGraph):
    """One decoder step: previous tokens, state and memory → logits, new state, attention."""

    def forward(self, tokens: Tensor, *rest: Tensor) -> tuple[Tensor, ...]:
        lstm = self.model.config.cell == "lstm"
        state: State = (rest[0], rest[1]) if lstm else rest[0]
        memory = Memory(*rest[2 if lstm else 1:]) if self.attends else None
        logits, state, weights = self.model.decode_step(tokens, state, memory)
        outputs = (logits, *_state_parts(state))
        return outputs if weights is None else (*outputs, weights)


def _seq2seq(model: Seq2Seq, _: WindowScaling | None) -> list[ExportGraph]:
    """The encoder, and one decoder step that the runtime calls in its own loop (greedy or
    beam search)."""
    config = model.config

    def source_inputs(batch: int, seq: int, seed: int) -> tuple[Tensor, ...]:
        return _random_tokens(config.source_vocab_size, batch, seq,
                              torch.Generator().manual_seed(seed))

    def step_inputs(batch: int, seq: int, seed: int) -> tuple[Tensor, ...]:
        """Previous tokens, and the encoder's state and memory for a random source."""
        with torch.no_grad():
            memory, state = model.encode(*source_inputs(batch, seq, seed))
        previous = torch.randint(0, config.target_vocab_size, (batch,),
                                 generator=torch.Generator().manual_seed(seed + 1))
        return (previous, *_state_parts(state), *(memory if attends else ()))

    attends = config.attention != "none"
    state = ("h", "c") if config.cell == "lstm" else ("h",)
    source = {0: "batch", 1: "source"}
    memory = ("memory", "keys", "mask") if attends else ()
    state_axes = {name: {1: "batch"} for name in state}
    encoder = Signature(("source", "source_lengths"), (*memory, *state),
                        {"source": source, "source_lengths": BATCH,
                         **dict.fromkeys(memory, source), **state_axes})
    step_outputs = ("logits", *(f"next_{n}" for n in state), *(("attention",) if attends else ()))
    step = Signature(
        ("previous", *state, *memory), step_outputs,
        {"previous": BATCH, "logits": BATCH, **state_axes,
         **{f"next_{n}": {1: "batch"} for n in state}, **dict.fromkeys(memory, source),
         **({"attention": source} if attends else {})},
    )
    return [ExportGraph("", _Seq2SeqEncoder, encoder, source_inputs),
            ExportGraph(".step", _Seq2SeqStep, step, step_inputs)]


_BUILDERS: dict[type[nn.Module], Callable[[Any, bool], list[ExportGraph]]] = {
    LanguageModel: _language_model,
    SequenceClassifier: _classifier,
    SequenceTagger: _tagger,
    ConditionalGenerator: _conditional_generator,
    Forecaster: _forecaster,
    Seq2Seq: _seq2seq,
}
"""Model class → the builder of its graphs."""
