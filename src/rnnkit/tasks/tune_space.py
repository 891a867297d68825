"""The ``tune:`` search space read for either engine: grids, value checks, applying values.

The same ``ParamSpec`` syntax drives Optuna and Ray Tune, so a config moves between engines
unchanged; this module holds what both need and imports neither.
"""

from __future__ import annotations

import math
from typing import Any

from rnnkit.tasks.config import ParamSpec, RunConfig, TuneConfig, config_from_dict
from rnnkit.tasks.errors import ConfigError

MAX_GRID = 10_000  # more combinations than anyone trains one by one: a typo in a step


def grid_values(key: str, spec: ParamSpec) -> list[Any]:
    """Every value ``key`` takes in a grid search: the choices of a categorical, the steps of
    an int (step 1 by default) or of a float with a ``step``."""
    if spec.type == "categorical":
        return list(spec.choices or [])
    assert spec.low is not None and spec.high is not None  # checked when the config was read
    if spec.log:
        raise ConfigError(f"tune.{key}: a grid needs evenly spaced values; log: true has "
                          "none (list the values: {type: categorical, choices: [...]})")
    if spec.type == "int":
        step = int(spec.step or 1)
        return list(range(int(spec.low), int(spec.high) + 1, step))
    if spec.step is None:
        raise ConfigError(f"tune.{key}: expected a step (or choices) for a float in a grid, "
                          f"got low={spec.low}, high={spec.high} and no step")
    count = math.floor((spec.high - spec.low) / spec.step + 1e-9) + 1
    return [round(spec.low + i * spec.step, 12) for i in range(count)]


def grid(tune: TuneConfig) -> dict[str, list[Any]]:
    """``section.key`` -> its grid values; refuses grids of more than ``MAX_GRID`` points."""
    values = {key: grid_values(key, spec) for key, spec in tune.params.items()}
    if grid_size(values) > MAX_GRID:
        raise ConfigError(f"tune: expected a grid of at most {MAX_GRID} combinations, got "
                          f"{describe_grid(values)}")
    return values


def grid_size(values: dict[str, list[Any]]) -> int:
    """How many combinations ``values`` spans."""
    return math.prod(len(v) for v in values.values())


def describe_grid(values: dict[str, list[Any]]) -> str:
    """``3 x 2 = 6 combinations (model.hidden_size: 3, model.cell: 2)``."""
    sizes = " x ".join(str(len(v)) for v in values.values())
    names = ", ".join(f"{k}: {len(v)}" for k, v in values.items())
    return f"{sizes} = {grid_size(values)} combinations ({names})"


def with_values(config: RunConfig, values: dict[str, Any]) -> RunConfig:
    """``config`` with ``section.key`` values replaced (types checked again) and no ``tune:``
    section: what one trial trains."""
    raw = config.to_dict()
    for key, value in values.items():
        section, _, name = key.partition(".")
        if name not in raw[section]:
            raise ConfigError(f"tune.{key}: {section} has no key {name!r}")
        raw[section][name] = value
    raw["tune"] = None
    return config_from_dict(raw)


def check_engine(tune: TuneConfig, engine: str) -> None:
    """Refuse a pruner or strategy ``engine`` lacks, naming both."""
    if tune.pruner == "pbt" and engine != "ray":
        raise ConfigError("tune.pruner: pbt (population-based training) needs --engine ray, "
                          f"got --engine {engine}")
    if tune.pruner == "pbt":
        if tune.strategy == "grid":
            raise ConfigError("tune.strategy: expected tpe or random with pruner: pbt (PBT "
                              "mutates values a grid fixes), got grid")
        # the optimizer's state (moments, momentum buffers) only fits its own kind
        fixed = [key for key in tune.params
                 if not key.startswith("train.") or key == "train.optimizer"]
        if fixed:
            raise ConfigError("tune: pbt copies weights and optimizer state between trials, so "
                              "it can only change train.* keys other than train.optimizer; "
                              "got " + ", ".join(fixed))
