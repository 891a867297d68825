"""Model types by name, so a model can be rebuilt from a JSON config alone."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from torch import nn

from rnnkit.models._config import closest, config_from_dict
from rnnkit.models.classifier import SequenceClassifier, SequenceClassifierConfig
from rnnkit.models.conditional_generator import ConditionalGenerator, ConditionalGeneratorConfig
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.models.tagger import SequenceTagger, SequenceTaggerConfig

MODEL_TYPES: dict[str, tuple[type[nn.Module], type]] = {
    LanguageModel.model_type: (LanguageModel, LanguageModelConfig),
    SequenceClassifier.model_type: (SequenceClassifier, SequenceClassifierConfig),
    SequenceTagger.model_type: (SequenceTagger, SequenceTaggerConfig),
    Seq2Seq.model_type: (Seq2Seq, Seq2SeqConfig),
    Forecaster.model_type: (Forecaster, ForecasterConfig),
    ConditionalGenerator.model_type: (ConditionalGenerator, ConditionalGeneratorConfig),
}
"""``model_type`` → (model class, config dataclass)."""


def _lookup(model_type: str) -> tuple[type[nn.Module], type]:
    if not isinstance(model_type, str):
        raise TypeError(f"model_type: expected a str, got {type(model_type).__name__}")
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"model_type: expected one of {', '.join(sorted(MODEL_TYPES))}, got {model_type!r}"
            + closest(model_type, MODEL_TYPES)
        )
    return MODEL_TYPES[model_type]


def build_config(model_type: str, config: dict[str, Any]) -> Any:
    """Validated config dataclass for ``model_type`` from a JSON-able dict."""
    _, config_class = _lookup(model_type)
    return config_from_dict(config_class, config)


def build_model(model_type: str, config: dict[str, Any]) -> nn.Module:
    """A freshly initialised model of ``model_type`` from a JSON-able ``config`` dict.

    Unknown keys, missing required keys and bad values raise errors naming the key.
    """
    model_class, _ = _lookup(model_type)
    return model_class(build_config(model_type, config))


def describe(model: nn.Module) -> dict[str, Any]:
    """``{"model_type": ..., "model_config": {...}}``: enough to rebuild ``model``."""
    model_type = getattr(model, "model_type", None)
    if model_type not in MODEL_TYPES or not isinstance(model, MODEL_TYPES[model_type][0]):
        raise TypeError(f"model: expected an rnnkit.models model, got {type(model).__name__}")
    return {"model_type": model_type, "model_config": asdict(model.config)}  # type: ignore[arg-type]
