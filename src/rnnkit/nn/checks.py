"""Argument and input validation for the recurrent layers and cells.

Every message names the argument, what was expected and what was given, and contains
``torch.nn``'s own wording for the same mistake, so code (and tests) matching torch's messages
keep matching. Constructor errors follow ``torch.nn``: ``TypeError`` for a wrong type,
``ValueError`` for a wrong value. Where torch raises another type for the same mistake, the
error class derives from both (:class:`ArgumentTypeError`, :class:`ArgumentValueError`). Shape
errors raise :class:`RecurrentInputError`, which is both a ``ValueError`` and a
``RuntimeError`` so code written against ``torch.nn`` (which raises ``RuntimeError``) still
catches it.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import NoReturn

import torch
from torch import Tensor


class RecurrentInputError(ValueError, RuntimeError):
    """An input, state or ``lengths`` tensor does not fit the layer."""


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type where ``torch.nn`` raises ``ValueError``."""


class ArgumentValueError(ValueError, RuntimeError):
    """A constructor argument ``torch.nn`` rejects with ``RuntimeError`` (or only at forward)."""


def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` must be an ``int`` (not ``bool``) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} should be of type int, got: {type(value).__name__} ({value!r})")
    if value < minimum:
        relation = "greater than zero" if minimum == 1 else f"at least {minimum}"
        raise ValueError(f"{name} must be {relation}, got {value}")
    return value


def check_cell_size(name: str, value: object) -> int:
    """A cell's ``input_size`` / ``hidden_size``: an ``int >= 0``, as ``torch.nn``'s cells allow.

    torch's cells accept 0 (empty weights) and fail in ``torch.empty`` with a ``RuntimeError``
    for a negative size, hence :class:`ArgumentValueError`.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} should be of type int, got: {type(value).__name__} ({value!r})")
    if value < 0:
        raise ArgumentValueError(
            f"{name} must be at least 0, got {value} "
            f"(Trying to create tensor with negative dimension {value})")
    return value


def check_dropout(value: object) -> float:
    """``dropout`` of a layer: a number in ``[0, 1]``; ``ValueError`` for anything else, as torch.

    A non-number is also a ``TypeError`` (:class:`ArgumentTypeError`), rnnkit's convention.
    """
    torch_phrase = ("dropout should be a number in range [0, 1] representing the probability "
                    "of an element being zeroed")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{torch_phrase}, got: {type(value).__name__} ({value!r})")
    if not 0 <= value <= 1:
        raise ValueError(f"{torch_phrase}, got {value}")
    return float(value)


def check_nonlinearity(value: object, error: type[Exception] = ValueError) -> str:
    """``'tanh'`` or ``'relu'``; the message starts with torch's ``Unknown nonlinearity``."""
    if value not in ("tanh", "relu"):
        raise error(f"Unknown nonlinearity {value!r}: nonlinearity must be one of 'tanh', "
                    "'relu'")
    return value  # type: ignore[return-value]


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


def _check_input_tensor(layer: str, x: object, expected_dims: tuple[int, int]) -> None:
    """``x`` must be a floating tensor of one of the two ranks (unbatched, batched)."""
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{layer}: input should be a Tensor or a PackedSequence, got {type(x).__name__}"
        )
    low, high = expected_dims
    if x.dim() not in expected_dims:
        raise ValueError(
            f"{layer}: Expected input to be {low}D or {high}D, got {x.dim()}D instead "
            f"({low}D is unbatched, {high}D batched; input shape {tuple(x.shape)})"
        )
    if not (x.is_floating_point() or x.is_complex()):
        # torch.nn reports a ValueError (its dtype check): this is both
        raise ArgumentTypeError(
            f"{layer}: input should be a floating point tensor, got dtype {x.dtype}; "
            "token ids need an embedding first"
        )


def check_input(
    layer: str, x: Tensor, input_size: int, batch_first: bool, expected_dims: tuple[int, int],
    reference: Tensor | None = None,
) -> None:
    """Check the rank, dtype and feature size of a layer input (before batching is normalised).

    With ``reference`` (the first weight) dtype and device are checked before the feature
    size, in torch.nn's order.
    """
    _check_input_tensor(layer, x, expected_dims)
    if reference is not None:
        check_same_kind(layer, "input", x, reference)
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


def check_cell_input(cell: str, x: Tensor, input_size: int) -> None:
    """A cell input must be ``(batch, input_size)`` or unbatched ``(input_size,)``."""
    _check_input_tensor(cell, x, (1, 2))
    if x.shape[-1] == input_size:
        return
    # torch's cell kernels word it "input has inconsistent input_size: got 11 expected 10"
    message = (
        f"{cell}: input has inconsistent input_size: got {x.shape[-1]} expected {input_size} "
        f"(input shape {tuple(x.shape)}; expected (batch, {input_size}) or ({input_size},))"
    )
    if x.dim() == 2 and x.shape[0] == input_size:
        message += "; the shape would fit (input_size, batch): transpose the input"
    raise RecurrentInputError(message)


def reject_empty_sequence(layer: str, input_shape: tuple[int, ...],
                          batch_first: bool) -> NoReturn:
    """Raise torch.nn's error for an input without time steps (an empty batch is fine)."""
    axis = "dimension 1 (batch_first=True)" if batch_first and len(input_shape) == 3 \
        else "dimension 0"
    raise RecurrentInputError(
        f"{layer}: Expected sequence length to be larger than 0 in RNN; the sequence axis is "
        f"{axis} of input shape {input_shape}"
    )


def check_same_kind(layer: str, name: str, tensor: Tensor, reference: Tensor) -> None:
    """``tensor`` must share the dtype and device of the layer's parameters.

    The input's messages are torch.nn's (``RNN input dtype ... does not match weight dtype``,
    ``Input and parameter tensors are not at the same device``); a state's name the state.
    """
    is_input = name == "input"
    if tensor.dtype != reference.dtype:
        subject = "RNN input" if is_input else name
        model_fix = f", or convert model: model.to({tensor.dtype})" if is_input else ""
        raise RecurrentInputError(
            f"{layer}: {subject} dtype ({tensor.dtype}) does not match weight dtype "
            f"({reference.dtype}). Convert {name}: {name}.to({reference.dtype}){model_fix}"
        )
    if tensor.device != reference.device:
        torch_phrase = ("Input and parameter tensors are not at the same device" if is_input
                        else "Input and hidden tensors are not at the same device")
        raise RecurrentInputError(
            f"{layer}: {torch_phrase}: {name} is on device {tensor.device} but the layer's "
            f"parameters are on {reference.device}; move one of them with .to(device)"
        )


def check_state_rank(layer: str, states: dict[str, Tensor], batched: bool) -> None:
    """A layer's states are 3-D for batched input, 2-D for unbatched, as torch.nn demands.

    ``states`` maps rnnkit's names (``h_0``, ``c_0``) to tensors; torch calls them hx, cx.
    """
    wanted = 3 if batched else 2
    if all(state.dim() == wanted for state in states.values()):
        return
    kind = "batched 3-D" if batched else "unbatched 2-D"
    shapes = ", ".join(f"{key} of shape {tuple(state.shape)}" for key, state in states.items())
    if len(states) == 1:
        (state,) = states.values()
        phrase = f"hx should also be {wanted}-D but got {state.dim()}-D tensor"
    else:
        dims = ", ".join(f"{state.dim()}-D" for state in states.values())
        phrase = f"hx and cx should also be {wanted}-D but got ({dims}) tensors"
    raise RecurrentInputError(f"{layer}: For {kind} input, {phrase} ({shapes})")


def check_state_shape(layer: str, name: str, state: Tensor, expected: tuple[int, ...],
                      torch_label: str = "hidden", size_name: str = "hidden_size") -> None:
    """A layer's initial state must have exactly the expected (batched) shape.

    ``torch_label`` is torch's name in ``Expected hidden size ..., got ...``: ``hidden`` for
    RNN/GRU, ``hidden[0]`` / ``hidden[1]`` for an LSTM's ``h_0`` / ``c_0``; ``size_name`` the
    argument that sets the last axis (``proj_size`` for a projected LSTM's ``h_0``).
    """
    shape = tuple(state.shape)
    if shape == expected:
        return
    message = (f"{layer}: Expected {torch_label} size {expected}, got {list(shape)} ({name} "
               f"should be (num_layers * num_directions, batch, {size_name}))")
    if len(shape) == 3 and (shape[1], shape[0], shape[2]) == expected:
        message += "; its first two axes look swapped (states are never batch-first)"
    raise RecurrentInputError(message)


def check_cell_state(cell: str, name: str, index: int, state: Tensor,
                     expected: tuple[int, int]) -> None:
    """A cell state ``(batch, hidden_size)``, in torch's words: ``hidden0`` is h, ``hidden1`` c."""
    batch, hidden = expected
    if state.shape[0] != batch:
        raise RecurrentInputError(
            f"{cell}: Input batch size {batch} doesn't match hidden{index} batch size "
            f"{state.shape[0]} ({name} of shape {tuple(state.shape)}, expected {expected})")
    if state.shape[1] != hidden:
        raise RecurrentInputError(
            f"{cell}: hidden{index} has inconsistent hidden_size: got {state.shape[1]}, "
            f"expected {hidden} ({name} of shape {tuple(state.shape)}, expected {expected})")


def normalise_lengths(
    layer: str, lengths: object, batch: int, seq_len: int
) -> Tensor:
    """Turn ``lengths`` (list, tuple or integer tensor on any device) into an int64 CPU tensor.

    Checks there is one length per batch row and that ``0 <= length <= seq_len``.
    """
    if isinstance(lengths, Tensor):
        if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
            raise TypeError(f"{layer}: lengths should be an integer tensor, got {lengths.dtype}")
        if torch._C._functorch.is_functorch_wrapped_tensor(lengths):
            # Mapped over by vmap (per-sample lengths): its values cannot be read in Python,
            # so only the shape is checked here; masking uses it as a tensor.
            return _check_lengths_shape(layer, lengths.to(torch.int64), batch)
        values = lengths.detach().to("cpu", torch.int64)
    elif isinstance(lengths, Sequence) and not isinstance(lengths, str):
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in lengths):
            raise TypeError(f"{layer}: lengths should hold integers, got {list(lengths)!r}")
        values = torch.tensor(list(lengths), dtype=torch.int64)
    else:
        raise TypeError(
            f"{layer}: lengths should be a list or an integer tensor, got {type(lengths).__name__}"
        )
    _check_lengths_shape(layer, values, batch)
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


def _check_lengths_shape(layer: str, values: Tensor, batch: int) -> Tensor:
    """``values`` must be 1-D with one length per batch row; returns it."""
    if values.dim() != 1 or values.numel() != batch:
        raise RecurrentInputError(
            f"{layer}: lengths should hold one length per batch row ({batch}), "
            f"got shape {tuple(values.shape)}"
        )
    return values
