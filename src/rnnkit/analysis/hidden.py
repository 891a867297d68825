"""Hidden-state views: what each unit does over time, and which units track a feature.

As in the char-rnn visualisations (Karpathy et al., 2015), a few units of a character language
model often switch on inside quotes or fire at line ends. :func:`text_features` computes such
features per character and :func:`unit_correlations` ranks the units that follow them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnkit.analysis.recording import LayerTrace, recording


def record_states(model: nn.Module, run: Callable[[nn.Module], Any]) -> list[LayerTrace]:
    """Traces of every recurrent layer call made by ``run(model)``, in eval mode, no gradient."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), recording(model) as recorder:
            run(model)
    finally:
        model.train(was_training)
    return recorder.traces


def text_features(text: str) -> dict[str, np.ndarray]:
    """Per-character features ``(len(text),)`` of ``text``: quotes, line structure, brackets.

    - ``inside_quotes``: 1 between a double quote and its closing one (single quotes count
      only when not an apostrophe inside a word).
    - ``newline``: 1 at ``\\n``; ``position_in_line``: characters since the last newline.
    - ``inside_brackets``: depth of ``()``/``[]`` nesting; ``space``: 1 at a space;
      ``uppercase``: 1 at an upper-case letter; ``end_of_sentence``: 1 at ``.``, ``!``, ``?``.
    """
    size = len(text)
    features = {name: np.zeros(size) for name in (
        "inside_quotes", "newline", "position_in_line", "inside_brackets", "space",
        "uppercase", "end_of_sentence")}
    quoted, depth, column = False, 0, 0
    for index, char in enumerate(text):
        apostrophe = (char == "'" and 0 < index < size - 1
                      and text[index - 1].isalpha() and text[index + 1].isalpha())
        if char == '"' or (char == "'" and not apostrophe):
            quoted = not quoted
        depth += int(char in "([")
        features["inside_quotes"][index] = float(quoted)
        features["inside_brackets"][index] = depth
        depth = max(0, depth - int(char in ")]"))
        features["newline"][index] = float(char == "\n")
        features["position_in_line"][index] = column
        column = 0 if char == "\n" else column + 1
        features["space"][index] = float(char == " ")
        features["uppercase"][index] = float(char.isupper())
        features["end_of_sentence"][index] = float(char in ".!?")
    return features


@dataclass(frozen=True)
class UnitCorrelation:
    """A hidden unit and its Pearson correlation with a feature over the time steps."""

    unit: int
    correlation: float


def unit_correlations(
    states: np.ndarray, feature: np.ndarray, top: int = 5
) -> list[UnitCorrelation]:
    """The ``top`` units of ``states`` ``(steps, units)`` most correlated with ``feature``
    ``(steps,)``, by absolute Pearson correlation (constant units score 0)."""
    states = np.asarray(states, dtype=float)
    feature = np.asarray(feature, dtype=float)
    if states.ndim != 2 or feature.shape != (states.shape[0],):
        raise ValueError(f"feature: expected shape ({states.shape[0]},) to match states "
                         f"(steps, units) {states.shape}, got {feature.shape}")
    centred_states = states - states.mean(axis=0)
    centred_feature = feature - feature.mean()
    scale = np.sqrt((centred_states ** 2).sum(axis=0) * (centred_feature ** 2).sum())
    covariance = centred_feature @ centred_states
    correlation = np.divide(covariance, scale, out=np.zeros_like(covariance), where=scale > 0)
    order = np.argsort(-np.abs(correlation), kind="stable")[:top]
    return [UnitCorrelation(int(unit), float(correlation[unit])) for unit in order]
