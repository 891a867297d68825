"""Batches of sequences of different lengths, done the obvious way.

A padded batch ``(seq, batch, I)`` with ``lengths`` ``(batch,)`` is ``batch`` separate sequences:
row ``b`` is valid for its first ``lengths[b]`` steps and padding after that. Here the network
simply runs on each row's valid steps alone (a batch of one) and the results are padded with
zeros. That is slower than the masking a fast kernel does, and that is the point: it is plainly
right, so it can check the kernels that mask.

The results follow ``rnnkit.nn``'s contract: padded positions of ``output`` are zero; ``h_n`` is
each row's state after its last valid step in the forward direction and after step 0 in the
reverse direction; a row of length 0 gives zero output and ``h_n == h0``. In the backward pass
the gradient at padded positions of ``output`` is ignored and ``grad_input`` there is zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnkit.scratch._validate import check_array
from rnnkit.scratch.layer import Params

if TYPE_CHECKING:  # stacked.py imports this module, so only for annotations
    from rnnkit.scratch.stacked import StackedRecurrent


@dataclass
class PaddedCache:
    """One forward cache per row (``None`` for rows of length 0), the lengths, the input shape."""

    row_caches: list[Any]
    lengths: np.ndarray
    input_shape: tuple[int, ...]


def check_lengths(lengths: Any, seq: int, batch: int) -> np.ndarray:
    """``lengths`` as an int array ``(batch,)`` with values in ``[0, seq]``, or a clear error."""
    array = np.asarray(lengths)
    if array.shape != (batch,) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"lengths must be {batch} integers (one per batch row), "
            f"got shape {array.shape} dtype {array.dtype}"
        )
    if array.min() < 0 or array.max() > seq:
        raise ValueError(
            f"lengths must be in [0, seq={seq}], got values from {array.min()} to {array.max()}"
        )
    return array.astype(np.int64)


def _row(parts: tuple[np.ndarray, ...], row: int) -> tuple[np.ndarray, ...]:
    """Batch row ``row`` of stacked states ``(L*D, batch, size)``, keeping the batch axis."""
    return tuple(part[:, row : row + 1] for part in parts)


def forward_padded(
    net: StackedRecurrent, inputs: np.ndarray, hx: Any, lengths: Any
) -> tuple[np.ndarray, Any, PaddedCache]:
    """``net.forward`` over each row's valid steps; see the module docstring for the contract.

    Shapes as in :meth:`StackedRecurrent.forward`; ``lengths`` ``(batch,)``.
    """
    seq, batch, _ = inputs.shape
    lengths = check_lengths(lengths, seq, batch)
    hx_parts = net.state_parts(hx, batch, "hx")
    output = np.zeros((seq, batch, net.output_size))
    final_parts = tuple(part.copy() for part in hx_parts)  # rows of length 0 keep h0
    row_caches = []
    for row, length in enumerate(lengths):
        if length == 0:
            row_caches.append(None)
            continue
        row_inputs = inputs[:length, row : row + 1]
        row_output, row_final, row_cache = net.forward(
            row_inputs, net.pack_state(_row(hx_parts, row))
        )
        output[:length, row] = row_output[:, 0]
        for part, row_part in zip(final_parts, net.state_parts(row_final, 1, "h_n"), strict=True):
            part[:, row] = row_part[:, 0]
        row_caches.append(row_cache)
    return output, net.pack_state(final_parts), PaddedCache(row_caches, lengths, inputs.shape)


def backward_padded(
    net: StackedRecurrent, cache: PaddedCache, grad_output: np.ndarray | None, grad_h_n: Any
) -> tuple[np.ndarray, Any, Params]:
    """The backward pass of :func:`forward_padded`: ``(grad_input, grad_hx, grads)``."""
    seq, batch, _ = cache.input_shape
    if grad_output is None:
        grad_output = np.zeros((seq, batch, net.output_size))
    grad_output = check_array("grad_output", grad_output, (seq, batch, net.output_size))
    grad_h_n_parts = net.state_parts(grad_h_n, batch, "grad_h_n")
    grad_input = np.zeros(cache.input_shape)
    grad_hx_parts = tuple(part.copy() for part in grad_h_n_parts)  # length 0: h_n is h0
    grads = {name: np.zeros_like(value) for name, value in net.params.items()}
    for row, (length, row_cache) in enumerate(zip(cache.lengths, cache.row_caches, strict=True)):
        if row_cache is None:
            continue
        row_grad_input, row_grad_hx, row_grads = net.backward(
            row_cache,
            grad_output[:length, row : row + 1],
            net.pack_state(_row(grad_h_n_parts, row)),
        )
        grad_input[:length, row] = row_grad_input[:, 0]
        for part, row_part in zip(
            grad_hx_parts, net.state_parts(row_grad_hx, 1, "grad_hx"), strict=True
        ):
            part[:, row] = row_part[:, 0]
        for name, grad in row_grads.items():
            grads[name] += grad
    return grad_input, net.pack_state(grad_hx_parts), grads
