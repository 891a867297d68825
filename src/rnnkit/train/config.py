"""Typed configuration of the training loop, validated on construction."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, get_args, get_origin, get_type_hints

import torch

from rnnkit.annotations import closest, describe, matches
from rnnkit.errors import ConfigError, FieldError, FieldTypeError
from rnnkit.train.precision import AmpMode

Schedule = Literal["constant", "cosine", "plateau"]
SCHEDULES: tuple[str, ...] = get_args(Schedule)
Optimizer = Literal["adamw", "adam", "rmsprop", "sgd"]
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)


@dataclass
class TrainConfig:
    """Everything the training loop needs that is not the model, the data or the metrics.

    Batch size lives with the data (the batch source), not here. Budgets count the whole run,
    resumed parts included; the run stops at whichever budget is reached first, and at least one
    of ``max_steps``, ``max_epochs`` or ``max_time`` must be set.

    Gradient clipping is by global norm at ``clip_norm=1.0`` by default: recurrent networks have
    rare exploding-gradient spikes (Pascanu et al., 2013) and norm clipping tames them while
    keeping the gradient's direction. With Adam the step size is set by the moment ratio, so a
    threshold of 1.0 (minGPT, Hugging Face) only bites on spikes. Set ``clip_norm=None`` to turn
    it off, or ``clip_value`` to clip each element instead (the two are exclusive).

    ``optimizer`` picks AdamW (decoupled weight decay), Adam, RMSprop or SGD; each reads the
    settings PyTorch gives it (``betas``/``eps`` for the Adams, ``alpha``/``eps``/``momentum``/
    ``centered`` for RMSprop, ``momentum``/``nesterov`` for SGD) and ignores the others, so a
    search over ``optimizer`` can keep one set of values. ``weight_decay`` is decoupled for
    AdamW and an L2 term added to the gradient for the others.
    """

    lr: float = 1e-3
    optimizer: Optimizer = "adamw"
    weight_decay: float = 0.01  # applied to matrices only, never to biases or gains
    betas: tuple[float, float] = (0.9, 0.999)  # adamw, adam
    eps: float = 1e-8  # adamw, adam, rmsprop
    momentum: float = 0.0  # sgd, rmsprop
    nesterov: bool = False  # sgd, with momentum > 0
    alpha: float = 0.99  # rmsprop: smoothing of the squared-gradient average
    centered: bool = False  # rmsprop: normalise by the gradient's estimated variance
    schedule: Schedule = "constant"
    warmup_steps: int = 0  # linear warm-up from 0 to lr; for every schedule
    min_lr: float = 0.0  # floor of the cosine decay and of plateau reductions
    plateau_factor: float = 0.5  # lr multiplier when the monitored metric stalls
    plateau_patience: int = 2  # evaluations without improvement before reducing the lr
    max_steps: int | None = None
    max_epochs: int | None = None
    max_time: float | None = None  # minutes
    clip_norm: float | None = 1.0
    clip_value: float | None = None
    eval_every: int | None = None  # steps; None evaluates at the end of each epoch
    checkpoint_every: int | None = None  # steps; None saves `last` at each evaluation
    save_top_k: int | None = None  # also keep the N best checkpoints (rnnkit.train.top_k)
    patience: int | None = None  # evaluations without improvement before stopping; None: never
    min_delta: float = 0.0  # smallest change of the monitored metric that counts as improvement
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"  # "auto" picks CUDA when present, else "cpu"; or "cpu", "cuda:1", ...
    amp: AmpMode = "none"  # CUDA mixed precision: "bf16", "fp16" (with loss scaling) or "none"
    log_every: int = 1  # steps between CSV/TensorBoard rows; the progress bar updates every step
    progress: bool = True
    tensorboard: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.betas, list):  # YAML/JSON give lists
            self.betas = tuple(self.betas)  # type: ignore[assignment]
        _check_types(self)
        _check_values(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build from a parsed config section; an unknown key is a :class:`ConfigError` (a
        ``ValueError``) that suggests the closest field name."""
        if not isinstance(data, Mapping):
            raise TypeError(f"TrainConfig: expected a mapping of fields, got {data!r:.100}")
        names = config_field_names()
        for key in data:
            if key not in names:
                raise ConfigError(f"TrainConfig: unknown field {key!r}" + closest(key, names))
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-able dict."""
        data = asdict(self)
        data["betas"] = list(self.betas)
        return data


def _type_error(name: str, expected: str, value: object) -> FieldTypeError:
    return FieldTypeError("TrainConfig", name, f"expected {expected}, got {value!r}")


def _check_types(config: TrainConfig) -> None:
    """Every field against its annotation, the only place its type is written."""
    for name, annotation in _field_types().items():
        value = getattr(config, name)
        if get_origin(annotation) is Literal:  # the choices are a value check (_check_choices)
            annotation = str
        # finite=False: NaN is a number of the right type; _check_values says "a finite number"
        if not matches(value, annotation, finite=False):
            raise _type_error(name, describe(annotation, yaml=False), value)


@functools.cache
def _field_types() -> dict[str, Any]:
    """TrainConfig's own fields and their resolved annotations (a subclass's extra fields are
    its own to check)."""
    hints = get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in fields(TrainConfig)}


def _value_error(name: str, expected: str, value: object) -> FieldError:
    return FieldError("TrainConfig", name, f"expected {expected}, got {value!r}")


def _check_choices(config: TrainConfig) -> None:
    for name, annotation in _field_types().items():
        choices = get_args(annotation) if get_origin(annotation) is Literal else ()
        if choices and getattr(config, name) not in choices:
            raise _value_error(name, f"one of {', '.join(choices)}", getattr(config, name))


def _check_device(device: str) -> None:
    """The spelling only: whether the device exists is for the machine that trains."""
    if device == "auto":
        return
    try:
        torch.device(device)
    except RuntimeError:
        raise _value_error("device", "'auto', 'cpu', 'cuda', 'cuda:N' or another torch device",
                           device) from None


def _check_values(config: TrainConfig) -> None:
    if not (math.isfinite(config.lr) and config.lr > 0):
        raise _value_error("lr", "a finite number > 0", config.lr)
    for name in ("weight_decay", "min_lr", "min_delta"):
        value = getattr(config, name)
        if not (math.isfinite(value) and value >= 0):
            raise _value_error(name, "a finite number >= 0", value)
    if config.min_lr >= config.lr:
        raise _value_error("min_lr", f"a value below lr={config.lr}", config.min_lr)
    if not all(0 <= b < 1 for b in config.betas):
        raise _value_error("betas", "two numbers in [0, 1)", config.betas)
    if not config.eps > 0:
        raise _value_error("eps", "a number > 0", config.eps)
    _check_choices(config)
    _check_device(config.device)
    _check_optimizer(config)
    if not 0 < config.plateau_factor < 1:
        raise _value_error("plateau_factor", "a number in (0, 1)", config.plateau_factor)
    for name in ("warmup_steps", "plateau_patience", "seed"):
        if getattr(config, name) < 0:
            raise _value_error(name, "an integer >= 0", getattr(config, name))
    for name in ("max_steps", "max_epochs", "eval_every", "checkpoint_every", "log_every",
                 "save_top_k"):
        value = getattr(config, name)
        if value is not None and value < 1:
            raise _value_error(name, "an integer >= 1 (or None)", value)
    if config.patience is not None and config.patience < 1:
        raise _value_error("patience", "an integer >= 1 (or None)", config.patience)
    for name in ("max_time", "clip_norm", "clip_value"):
        value = getattr(config, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise _value_error(name, "a finite number > 0 (or None)", value)
    _check_combinations(config)


def _check_optimizer(config: TrainConfig) -> None:
    for name in ("momentum", "alpha"):
        if not 0 <= getattr(config, name) < 1:
            raise _value_error(name, "a number in [0, 1)", getattr(config, name))
    if config.nesterov and config.optimizer == "sgd" and config.momentum == 0:
        raise FieldError("TrainConfig", "nesterov", "expected momentum > 0 with nesterov=True "
                         "for sgd, got momentum=0.0")


def _check_combinations(config: TrainConfig) -> None:
    if config.max_steps is None and config.max_epochs is None and config.max_time is None:
        raise FieldError("TrainConfig", "max_steps", "expected at least one budget "
                         "(max_steps, max_epochs or max_time), got none")
    if config.clip_norm is not None and config.clip_value is not None:
        raise FieldError(
            "TrainConfig", "clip_value", "expected clip_norm or clip_value, not both; "
            f"got clip_norm={config.clip_norm}, clip_value={config.clip_value} "
            "(set clip_norm=None to clip by value)"
        )
    if config.schedule == "cosine" and config.max_steps is None and config.max_epochs is None:
        raise FieldError(
            "TrainConfig", "schedule", "'cosine' needs a horizon (max_steps or max_epochs), "
            f"got max_steps=None, max_epochs=None, max_time={config.max_time}"
        )
    if config.max_steps is not None and config.warmup_steps >= config.max_steps:
        raise _value_error(
            "warmup_steps", f"fewer steps than max_steps={config.max_steps}", config.warmup_steps
        )


def config_field_names() -> tuple[str, ...]:
    """Names of the :class:`TrainConfig` fields, for config parsers."""
    return tuple(f.name for f in fields(TrainConfig))
