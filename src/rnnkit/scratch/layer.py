"""What every recurrent layer shares: parameters, the input projection, shape checks.

A layer here is one direction of one layer of ``torch.nn.RNN/LSTM/GRU``. Its forward pass has
two parts, and so does its backward pass:

1. The **input projection** ``x_t @ weight_ih.T + bias_ih`` does not depend on the previous
   state, so it is computed for all time steps in one matrix product (done here).
2. The **recurrence** walks through time, step by step, mixing in ``h_{t-1}`` (done by each cell
   subclass in ``_recur``; its hand-written backward pass is ``_recur_backward``).

Shape legend: ``seq`` time steps, ``batch`` sequences, ``I = input_size``, ``H = hidden_size``,
``G`` gates per cell (RNN 1, LSTM 4, GRU 3), ``P`` the size of ``h`` (``H``, or ``proj_size`` for a
projected LSTM). Inputs are time-major: ``(seq, batch, I)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rnnkit.scratch._validate import check_array, check_positive_int

Params = dict[str, np.ndarray]
"""Parameters or their gradients, keyed by torch's names (``weight_ih``, ``bias_hh``, ...)."""


@dataclass
class ForwardCache:
    """What ``backward`` needs from ``forward``: the inputs and the recurrence's tape."""

    inputs: np.ndarray
    tape: Any


class RecurrentLayer(ABC):
    """Base class: one layer, one direction, over a whole sequence.

    Subclasses set ``gate_count`` and implement ``_recur`` / ``_recur_backward`` (and, for a state
    that is not a single array, ``_zero_state`` / ``_check_state``).

    Parameters are initialised like torch's: every entry uniform in ``[-1/sqrt(H), 1/sqrt(H)]``.
    Everything is float64: this is the reference the float32 and float64 kernels are checked
    against, so its own rounding error should be negligible.
    """

    gate_count: ClassVar[int]

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        bias: bool = True,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {type(bias).__name__}")
        self.bias = bias
        self.params: Params = self._init_params(rng or np.random.default_rng())

    # -- parameters -------------------------------------------------------------------------

    @property
    def state_size(self) -> int:
        """Size ``P`` of the hidden state ``h`` (and of each output step)."""
        return self.hidden_size

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name -> shape of every parameter, exactly as in ``torch.nn`` (without ``_l0``)."""
        gates = self.gate_count * self.hidden_size
        shapes = {
            "weight_ih": (gates, self.input_size),
            "weight_hh": (gates, self.state_size),
        }
        if self.bias:
            shapes |= {"bias_ih": (gates,), "bias_hh": (gates,)}
        return shapes

    def _init_params(self, rng: np.random.Generator) -> Params:
        bound = 1.0 / np.sqrt(self.hidden_size)
        return {
            name: rng.uniform(-bound, bound, size=shape)
            for name, shape in self.param_shapes().items()
        }

    def load_params(self, params: Mapping[str, Any]) -> None:
        """Replace the parameters with copies of ``params`` (names and shapes must match).

        Values may be NumPy arrays or anything ``np.asarray`` accepts, e.g. detached CPU torch
        tensors: ``layer.load_params({k: v.detach().numpy() for k, v in sd.items()})``.
        """
        expected = self.param_shapes()
        if set(params) != set(expected):
            raise ValueError(
                f"params must have exactly the keys {sorted(expected)}, got {sorted(params)}"
            )
        loaded = {}
        for name, shape in expected.items():
            value = np.array(params[name], dtype=np.float64)
            if value.shape != shape:
                raise ValueError(f"params[{name!r}] must have shape {shape}, got {value.shape}")
            loaded[name] = value
        self.params = loaded

    # -- state ------------------------------------------------------------------------------

    def _zero_state(self, batch: int) -> Any:
        return np.zeros((batch, self.state_size))

    def _check_state(self, state: Any, batch: int, name: str) -> Any:
        return check_array(name, state, (batch, self.state_size))

    # -- forward and backward ---------------------------------------------------------------

    def forward(
        self, inputs: np.ndarray, state: Any = None
    ) -> tuple[np.ndarray, Any, ForwardCache]:
        """Run the layer over a sequence.

        ``inputs`` ``(seq, batch, I)``; ``state`` the initial state (``h0`` ``(batch, P)``, or
        ``(h0, c0)`` for an LSTM), zeros when ``None``. Returns ``(outputs, final_state, cache)``
        with ``outputs`` ``(seq, batch, P)`` (``h_t`` for every ``t``) and ``final_state`` shaped
        like ``state``; pass ``cache`` to :meth:`backward`.
        """
        inputs = check_array("inputs", inputs, (None, None, self.input_size))
        if inputs.shape[0] == 0:
            raise ValueError("inputs must have at least one time step, got seq = 0")
        batch = inputs.shape[1]
        if state is None:
            state = self._zero_state(batch)
        state = self._check_state(state, batch, "state")
        projected = inputs @ self.params["weight_ih"].T  # (seq, batch, G*H), all steps at once
        if self.bias:
            projected = projected + self.params["bias_ih"]
        outputs, final_state, tape = self._recur(projected, state)
        return outputs, final_state, ForwardCache(inputs, tape)

    def backward(
        self, cache: ForwardCache, grad_outputs: np.ndarray | None, grad_final_state: Any = None
    ) -> tuple[np.ndarray, Any, Params]:
        """Backpropagation through time.

        Given the loss gradient with respect to ``outputs`` ``(seq, batch, P)`` and to
        ``final_state`` (either may be ``None`` for zero), return
        ``(grad_inputs (seq, batch, I), grad_initial_state, grads)`` where ``grads`` holds the
        gradient of every parameter under the parameter's name.
        """
        seq, batch, _ = cache.inputs.shape
        if grad_outputs is None:
            grad_outputs = np.zeros((seq, batch, self.state_size))
        grad_outputs = check_array("grad_outputs", grad_outputs, (seq, batch, self.state_size))
        grad_final_state = self._fill_missing_state_grad(grad_final_state, batch)
        grad_projected, grad_state, grads = self._recur_backward(
            cache.tape, grad_outputs, grad_final_state
        )
        # The projection was x_t @ W_ih.T + b_ih at every step, so its gradients sum over time
        # and batch.
        grads["weight_ih"] = np.einsum("tbg,tbi->gi", grad_projected, cache.inputs)
        if self.bias:
            grads["bias_ih"] = grad_projected.sum(axis=(0, 1))
        grad_inputs = grad_projected @ self.params["weight_ih"]
        return grad_inputs, grad_state, grads

    def _fill_missing_state_grad(self, grad_state: Any, batch: int) -> Any:
        if grad_state is None:
            return self._zero_state(batch)
        return self._check_state(grad_state, batch, "grad_final_state")

    @abstractmethod
    def _recur(self, projected: np.ndarray, state: Any) -> tuple[np.ndarray, Any, Any]:
        """Recurrence over ``projected`` ``(seq, batch, G*H)``: ``(outputs, state, tape)``."""

    @abstractmethod
    def _recur_backward(
        self, tape: Any, grad_outputs: np.ndarray, grad_final_state: Any
    ) -> tuple[np.ndarray, Any, Params]:
        """Backward recurrence: ``(grad_projected, grad_initial_state, recurrent grads)``."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(input_size={self.input_size}, "
            f"hidden_size={self.hidden_size}, bias={self.bias})"
        )
