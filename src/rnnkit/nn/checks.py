"""Argument and input validation for the recurrent layers and cells.

Every message names the argument, what was expected and what was given. Constructor errors
follow ``torch.nn``: ``TypeError`` for a wrong type, ``ValueError`` for a wrong value. Shape
errors raise :class:`RecurrentInputError`, which is both a ``ValueError`` and a
``RuntimeError`` so code written against ``torch.nn`` (which raises ``RuntimeError``) still
catches it.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import Tensor


class RecurrentInputError(ValueError, RuntimeError):
    """An input, state or ``lengths`` tensor does not fit the layer."""


def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` must be an ``int`` (not ``bool``) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} should be of type int, got: {type(value).__name__} ({value!r})")
    if value < minimum:
        relation = "greater than zero" if minimum == 1 else f"at least {minimum}"
        raise ValueError(f"{name} must be {relation}, got {value}")
    return value


def check_probability(name: str, value: object, *, below_one: bool = False) -> float:
    """``value`` must be a real number in ``[0, 1]`` (``[0, 1)`` with ``below_one``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} should be a number in range [0, 1] representing a probability, "
            f"got: {type(value).__name__} ({value!r})"
        )
    upper_ok = value < 1 if below_one else value <= 1
    if not (value >= 0 and upper_ok):
        interval = "[0, 1)" if below_one else "[0, 1]"
        raise ValueError(f"{name} should be a number in range {interval}, got {value}")
    return float(value)


def check_bool(name: str, value: object) -> bool:
    """``value`` must be a ``bool``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} should be of type bool, got: {type(value).__name__} ({value!r})")
    return value


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        options = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value  # type: ignore[return-value]


def check_input(
    layer: str, x: Tensor, input_size: int, batch_first: bool, expected_dims: tuple[int, int]
) -> None:
    """Check the rank and feature size of a layer input (before batching is normalised)."""
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{layer}: input should be a Tensor or a PackedSequence, got {type(x).__name__}"
        )
    low, high = expected_dims
    if x.dim() not in expected_dims:
        raise ValueError(
            f"{layer}: Expected input to be {low}D (unbatched) or {high}D (batched), "
            f"got {x.dim()}D with shape {tuple(x.shape)}"
        )
    if not (x.is_floating_point() or x.is_complex()):
        raise TypeError(
            f"{layer}: input should be a floating point tensor, got dtype {x.dtype}; "
            "token ids need an embedding first"
        )
    if x.shape[-1] == input_size:
        return
    message = (
        f"{layer}: input.size(-1) must be equal to input_size. Expected {input_size}, "
        f"got {x.shape[-1]} (input shape {tuple(x.shape)})"
    )
    if x.dim() == 3 and x.shape[1] == input_size:
        layout = "(seq, batch, feature)" if batch_first else "(batch, seq, feature)"
        flag = "batch_first=False" if batch_first else "batch_first=True"
        message += f"; the shape would fit {layout}: did you mean {flag}?"
    elif x.dim() == 3 and x.shape[0] == input_size:
        message += "; the feature dimension looks like it comes first: permute the input"
    raise RecurrentInputError(message)


def check_same_kind(layer: str, name: str, tensor: Tensor, reference: Tensor) -> None:
    """``tensor`` must share the dtype and device of the layer's parameters."""
    if tensor.dtype != reference.dtype:
        raise RecurrentInputError(
            f"{layer}: {name} has dtype {tensor.dtype} but the layer's parameters are "
            f"{reference.dtype}; convert one of them, e.g. {name}.to({reference.dtype})"
        )
    if tensor.device != reference.device:
        raise RecurrentInputError(
            f"{layer}: {name} is on device {tensor.device} but the layer's parameters are on "
            f"{reference.device}; move one of them with .to(device)"
        )


def check_state_shape(layer: str, name: str, state: Tensor, expected: tuple[int, ...]) -> None:
    """An initial state must have exactly the expected shape."""
    if tuple(state.shape) != expected:
        raise RecurrentInputError(
            f"{layer}: Expected {name} of shape {expected}, got {tuple(state.shape)}"
        )


def normalise_lengths(
    layer: str, lengths: object, batch: int, seq_len: int
) -> Tensor:
    """Turn ``lengths`` (list, tuple or integer tensor on any device) into an int64 CPU tensor.

    Checks there is one length per batch row and that ``0 <= length <= seq_len``.
    """
    if isinstance(lengths, Tensor):
        if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
            raise TypeError(f"{layer}: lengths should be an integer tensor, got {lengths.dtype}")
        values = lengths.detach().to("cpu", torch.int64)
    elif isinstance(lengths, Sequence) and not isinstance(lengths, str):
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in lengths):
            raise TypeError(f"{layer}: lengths should hold integers, got {list(lengths)!r}")
        values = torch.tensor(list(lengths), dtype=torch.int64)
    else:
        raise TypeError(
            f"{layer}: lengths should be a list or an integer tensor, got {type(lengths).__name__}"
        )
    if values.dim() != 1 or values.numel() != batch:
        raise RecurrentInputError(
            f"{layer}: lengths should hold one length per batch row ({batch}), "
            f"got shape {tuple(values.shape)}"
        )
    if batch and int(values.min()) < 0:
        raise RecurrentInputError(
            f"{layer}: lengths must be non-negative, got {values.tolist()}"
        )
    if batch and int(values.max()) > seq_len:
        raise RecurrentInputError(
            f"{layer}: lengths must not exceed the sequence length {seq_len}, "
            f"got a maximum of {int(values.max())}"
        )
    return values
