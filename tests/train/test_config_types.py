"""TrainConfig's field types come from its annotations alone: every field is checked, so a new
field cannot be left out of the checks, and the run config names the same field ``train.x``."""

from __future__ import annotations

import pickle
from dataclasses import fields

import pytest

from rnnkit.errors import ConfigError, FieldError, FieldTypeError, RnnkitError
from rnnkit.tasks.config import TrainSection, build_section
from rnnkit.train import TrainConfig
from rnnkit.train.config import OPTIMIZERS, SCHEDULES
from rnnkit.train.precision import AMP_MODES

FIELDS = [f.name for f in fields(TrainConfig)]
BUDGET = {"max_steps": 10}


class Opaque:
    """A value no annotation accepts."""

    def __repr__(self) -> str:
        return "<opaque>"


@pytest.mark.parametrize("name", FIELDS)
def test_every_field_refuses_a_value_of_the_wrong_type_naming_it(name):
    values = {**BUDGET, name: Opaque()}
    with pytest.raises(TypeError, match=rf"^TrainConfig\.{name}: expected .+, got <opaque>$"):
        TrainConfig(**values)


@pytest.mark.parametrize("name", FIELDS)
def test_the_run_config_names_the_field_train_dot_name(name):
    with pytest.raises(FieldTypeError, match=rf"^train\.{name}: expected .+, got <opaque>"):
        build_section(TrainSection, {**BUDGET, name: Opaque()}, "train")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("max_steps", True, "an integer or None"),  # a bool is not an integer here
        ("lr", "0.1", "a number"),
        ("deterministic", 1, "True or False"),
        ("betas", (0.9,), "2 values, each a number"),
        ("betas", (0.9, "x"), "2 values, each a number"),
        ("amp", 16, "a string"),
        ("device", 0, "a string"),
    ],
)
def test_wrong_types_say_what_was_expected(name, value, expected):
    with pytest.raises(FieldTypeError) as caught:
        TrainConfig(**{**BUDGET, name: value})
    assert str(caught.value) == f"TrainConfig.{name}: expected {expected}, got {value!r}"
    assert caught.value.field == name


@pytest.mark.parametrize(
    ("name", "value", "choices"),
    [("optimizer", "adamx", OPTIMIZERS), ("schedule", "linear", SCHEDULES),
     ("amp", "fp8", AMP_MODES)],
)
def test_choices_come_from_the_literal_annotations(name, value, choices):
    with pytest.raises(FieldError, match=f"expected one of {', '.join(choices)}, got '{value}'"):
        TrainConfig(**{**BUDGET, name: value})


def test_choice_tuples_match_the_annotations():
    assert OPTIMIZERS == ("adamw", "adam", "rmsprop", "sgd")
    assert SCHEDULES == ("constant", "cosine", "plateau")
    assert AMP_MODES == ("none", "bf16", "fp16")


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:1", "meta"])
def test_device_spellings_are_accepted_without_the_device_present(device):
    assert TrainConfig(**BUDGET, device=device).device == device


@pytest.mark.parametrize("device", ["gpu", "cuda:x", ""])
def test_a_misspelt_device_is_refused(device):
    with pytest.raises(FieldError, match=r"^TrainConfig\.device: expected 'auto', 'cpu'"):
        TrainConfig(**BUDGET, device=device)


def test_nan_is_a_bad_value_not_a_bad_type():
    with pytest.raises(FieldError) as caught:
        TrainConfig(**BUDGET, clip_norm=float("nan"))
    assert not isinstance(caught.value, TypeError)
    assert "a finite number > 0" in str(caught.value)


def test_value_errors_are_renamed_by_the_caller_not_by_string_replacement():
    with pytest.raises(FieldError) as caught:
        build_section(TrainSection, {"max_steps": 10, "lr": -1}, "train")
    assert str(caught.value) == "train.lr: expected a finite number > 0, got -1.0"
    assert (caught.value.section, caught.value.field) == ("train", "lr")
    assert str(caught.value.__cause__) == "TrainConfig.lr: expected a finite number > 0, got -1.0"


def test_field_errors_are_user_errors_and_keep_their_builtin_bases():
    error = FieldTypeError("TrainConfig", "lr", "expected a number, got 'x'")
    assert isinstance(error, RnnkitError) and isinstance(error, ConfigError)
    assert isinstance(error, TypeError) and isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))  # crosses process boundaries (data-parallel, Ray)
    assert (type(copy), str(copy)) == (FieldTypeError, "TrainConfig.lr: expected a number, got 'x'")


def test_unknown_field_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"unknown field 'warmup' \(did you mean 'warmup_steps'"):
        TrainConfig.from_dict({"max_steps": 3, "warmup": 1})
