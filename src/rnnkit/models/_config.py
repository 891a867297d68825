"""Validation shared by every model config: types from annotations, choices, ranges.

Configs are ``kw_only`` dataclasses whose ``__post_init__`` calls :func:`check_types`, so a config
built in Python and one rebuilt from a checkpoint's JSON go through the same checks.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from rnnkit.annotations import closest, matches

ConfigT = TypeVar("ConfigT")


def _describe(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(repr(choice) for choice in get_args(annotation))
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def check_types(config: Any) -> None:
    """Raise ``TypeError``/``ValueError`` naming the field whose value does not fit its annotation.

    A bad choice for a ``Literal`` field is a ``ValueError`` suggesting the closest valid choice.
    """
    hints = get_type_hints(type(config))
    name = type(config).__name__
    for field in fields(config):
        annotation, value = hints[field.name], getattr(config, field.name)
        if matches(value, annotation):
            if annotation is float and isinstance(value, int):
                object.__setattr__(config, field.name, float(value))
            continue
        if get_origin(annotation) is Literal and isinstance(value, str):
            choices = [str(choice) for choice in get_args(annotation)]
            raise ValueError(
                f"{name}.{field.name}: expected {_describe(annotation)}, got {value!r}"
                + closest(value, choices)
            )
        raise TypeError(
            f"{name}.{field.name}: expected {_describe(annotation)}, "
            f"got {value!r} ({type(value).__name__})"
        )


def require(condition: bool, config: Any, field_name: str, expected: str) -> None:
    """Raise ``ValueError`` for ``field_name`` of ``config`` unless ``condition`` holds."""
    if not condition:
        value = getattr(config, field_name)
        raise ValueError(
            f"{type(config).__name__}.{field_name}: expected {expected}, got {value!r}"
        )


def require_at_least(config: Any, minimum: int, *field_names: str) -> None:
    """Raise ``ValueError`` for the first of ``field_names`` whose value is below ``minimum``."""
    for name in field_names:
        require(getattr(config, name) >= minimum, config, name, f"an integer >= {minimum}")


def expect_config(config: Any, config_class: type[ConfigT]) -> ConfigT:
    """Return ``config`` if it is a ``config_class``; otherwise raise ``TypeError``."""
    if not isinstance(config, config_class):
        raise TypeError(f"config: expected {config_class.__name__}, got {type(config).__name__}")
    return config


def config_from_dict(config_class: type[ConfigT], values: dict[str, Any]) -> ConfigT:
    """Build ``config_class`` from a JSON-able dict; unknown or missing keys: ``ValueError``."""
    if not isinstance(values, dict):
        raise TypeError(
            f"{config_class.__name__}: expected a dict of settings, got {type(values).__name__}"
        )
    known = [field.name for field in fields(config_class)]  # type: ignore[arg-type]
    for key in values:
        if key not in known:
            raise ValueError(f"{config_class.__name__}: unknown key {key!r}" + closest(key, known))
    missing = [
        field.name
        for field in fields(config_class)  # type: ignore[arg-type]
        if field.default is MISSING
        and field.default_factory is MISSING
        and field.name not in values
    ]
    if missing:
        raise ValueError(f"{config_class.__name__}: missing required key(s) {', '.join(missing)}")
    return config_class(**values)


@dataclass(kw_only=True)
class RecurrentOptions:
    """Settings of the recurrent stack every model shares.

    - ``cell``: ``'rnn'`` (tanh), ``'lstm'`` or ``'gru'``.
    - ``hidden_size`` per direction, ``num_layers`` stacked layers.
    - ``dropout``: on embeddings/outputs and between stacked layers.
    - ``recurrent_dropout`` (one mask per sequence on the hidden state), ``zoneout``
      (LSTM/GRU) and ``layer_norm`` (LSTM/GRU) are passed to :mod:`rnnkit.nn`.
    """

    cell: Literal["rnn", "lstm", "gru"] = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    zoneout: float = 0.0
    layer_norm: bool = False

    def __post_init__(self) -> None:
        check_types(self)
        require_at_least(self, 1, "hidden_size", "num_layers")
        for name in ("dropout", "recurrent_dropout", "zoneout"):
            require(0.0 <= getattr(self, name) < 1.0, self, name, "a probability in [0, 1)")
        if self.cell == "rnn":
            require(self.zoneout == 0.0, self, "zoneout", "0 for cell='rnn' (LSTM/GRU only)")
            require(not self.layer_norm, self, "layer_norm", "False for cell='rnn' (LSTM/GRU only)")
