"""Multi-layer and bidirectional recurrent networks shaped exactly like ``torch.nn.RNN/LSTM/GRU``.

A stack is a grid of single layers, ``num_layers`` deep and 1 or 2 directions wide:

- the **reverse** direction is the same layer run over the time-reversed sequence, its outputs
  flipped back so that step ``t`` of both directions lines up;
- layer ``l + 1`` reads the concatenated outputs of both directions of layer ``l``;
- the final states are stacked as torch does: index ``l * num_directions + direction``.

Backpropagation walks the grid in reverse: top layer first, each direction's input gradient
summed into the gradient of the layer below's outputs.

Parameter names are torch's (``weight_ih_l0``, ``bias_hh_l1_reverse``, ``weight_hr_l0``, ...), so
``net.load_state_dict({k: v.detach().numpy() for k, v in torch_net.state_dict().items()})``
copies a torch network across. Shape legend: inputs ``(seq, batch, I)`` (time-major, like torch's
default ``batch_first=False``), ``D`` directions, ``L`` layers, ``P`` the size of ``h``.
Padded batches of different lengths: ``forward(inputs, hx, lengths=...)``, see
:mod:`rnnkit.scratch.padded`. Dropout between layers is not implemented (it is random, so no
reference could match it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnkit.scratch._validate import check_array, check_positive_int
from rnnkit.scratch.gru import GRULayer
from rnnkit.scratch.layer import ForwardCache, Params, RecurrentLayer
from rnnkit.scratch.lstm import LSTMLayer
from rnnkit.scratch.padded import PaddedCache, backward_padded, forward_padded
from rnnkit.scratch.rnn import RNNLayer


@dataclass
class StackCache:
    """The forward caches of every layer and direction, in ``l * D + d`` order."""

    caches: list[ForwardCache]


class StackedRecurrent:
    """``num_layers`` x ``num_directions`` layers of ``layer_class``, each given ``layer_options``.

    Use :class:`RNN`, :class:`LSTM` or :class:`GRU` rather than this class directly.
    """

    def __init__(
        self,
        layer_class: type[RecurrentLayer],
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        rng: np.random.Generator | None,
        **layer_options: Any,
    ) -> None:
        self.input_size = check_positive_int("input_size", input_size)
        self.num_layers = check_positive_int("num_layers", num_layers)
        if not isinstance(bidirectional, bool):
            raise TypeError(f"bidirectional must be a bool, got {type(bidirectional).__name__}")
        self.num_directions = 2 if bidirectional else 1
        rng = rng or np.random.default_rng()
        self.layers: list[RecurrentLayer] = []
        layer_input_size = input_size
        for _ in range(num_layers):
            self.layers += [
                layer_class(layer_input_size, hidden_size, rng=rng, **layer_options)
                for _ in range(self.num_directions)
            ]
            layer_input_size = self.num_directions * self.layers[-1].state_size
        self.state_size = self.layers[0].state_size
        self.is_lstm = isinstance(self.layers[0], LSTMLayer)

    # -- parameters -------------------------------------------------------------------------

    def _suffix(self, index: int) -> str:
        layer, direction = divmod(index, self.num_directions)
        return f"_l{layer}" + ("_reverse" if direction else "")

    @property
    def params(self) -> Params:
        """Every parameter under torch's name; the arrays are the layers' own (not copies)."""
        return {
            name + self._suffix(index): value
            for index, layer in enumerate(self.layers)
            for name, value in layer.params.items()
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Copy parameters in from torch-named arrays (e.g. a torch ``state_dict`` as NumPy)."""
        expected = set(self.params)
        if set(state_dict) != expected:
            missing, unexpected = expected - set(state_dict), set(state_dict) - expected
            raise ValueError(
                f"state_dict must have the keys {sorted(expected)}; "
                f"missing {sorted(missing)}, unexpected {sorted(unexpected)}"
            )
        for index, layer in enumerate(self.layers):
            suffix = self._suffix(index)
            layer.load_params({name: state_dict[name + suffix] for name in layer.params})

    # -- states: torch stacks them as (L * D, batch, size) --------------------------------

    @property
    def output_size(self) -> int:
        """Features per step of ``output``: ``D * P``."""
        return self.num_directions * self.state_size

    def state_parts(self, state: Any, batch: int, name: str) -> tuple[np.ndarray, ...]:
        """A stacked state as a tuple of arrays, ``(h,)`` or ``(h, c)``; zeros for ``None``."""
        sizes = [self.state_size] + ([self.layers[0].hidden_size] if self.is_lstm else [])
        shapes = [(len(self.layers), batch, size) for size in sizes]
        if state is None:
            return tuple(np.zeros(shape) for shape in shapes)
        if self.is_lstm and (not isinstance(state, tuple) or len(state) != 2):
            raise TypeError(
                f"{name} must be a tuple (h, c) for an LSTM, got {type(state).__name__}"
            )
        parts = state if self.is_lstm else (state,)
        return tuple(
            check_array(name, part, shape) for part, shape in zip(parts, shapes, strict=True)
        )

    def pack_state(self, parts: tuple[np.ndarray, ...]) -> Any:
        """The inverse of :meth:`state_parts`: ``(h, c)`` for an LSTM, else ``h``."""
        return tuple(parts) if self.is_lstm else parts[0]

    def _layer_state(self, parts: tuple[np.ndarray, ...], index: int) -> Any:
        return self.pack_state(tuple(part[index] for part in parts))

    def _stack_states(self, states: list[Any]) -> Any:
        if self.is_lstm:
            return tuple(np.stack(part) for part in zip(*states, strict=True))
        return np.stack(states)

    # -- forward and backward ---------------------------------------------------------------

    def forward(
        self, inputs: np.ndarray, hx: Any = None, *, lengths: Any = None
    ) -> tuple[np.ndarray, Any, StackCache | PaddedCache]:
        """``inputs`` ``(seq, batch, I)``, ``hx`` ``(L*D, batch, P)`` (LSTM: ``(h0, c0)``, ``c0``
        ``(L*D, batch, H)``) or ``None`` -> ``(output (seq, batch, D*P), h_n like hx, cache)``.

        ``lengths`` ``(batch,)``: valid steps per row of a padded batch (see
        :mod:`rnnkit.scratch.padded`); ``None`` means every row is ``seq`` long.
        """
        inputs = check_array("inputs", inputs, (None, None, self.input_size))
        if lengths is not None:
            return forward_padded(self, inputs, hx, lengths)
        hx_parts = self.state_parts(hx, inputs.shape[1], "hx")
        layer_input, caches, finals = inputs, [], []
        for first in range(0, len(self.layers), self.num_directions):
            outputs = []
            for direction in range(self.num_directions):
                index = first + direction
                sequence = layer_input[::-1] if direction else layer_input
                output, final, cache = self.layers[index].forward(
                    sequence, self._layer_state(hx_parts, index)
                )
                outputs.append(output[::-1] if direction else output)
                caches.append(cache)
                finals.append(final)
            layer_input = np.concatenate(outputs, axis=-1)
        return layer_input, self._stack_states(finals), StackCache(caches)

    def backward(
        self, cache: StackCache | PaddedCache, grad_output: np.ndarray | None, grad_h_n: Any = None
    ) -> tuple[np.ndarray, Any, Params]:
        """Backpropagation through time and through the layers.

        Returns ``(grad_input (seq, batch, I), grad_hx like hx, grads)`` with ``grads`` keyed by
        torch's parameter names. ``grad_output`` and ``grad_h_n`` may be ``None`` for zero.
        """
        if isinstance(cache, PaddedCache):
            return backward_padded(self, cache, grad_output, grad_h_n)
        seq, batch, _ = cache.caches[0].inputs.shape
        if grad_output is None:
            grad_output = np.zeros((seq, batch, self.output_size))
        grad_output = check_array("grad_output", grad_output, (seq, batch, self.output_size))
        grad_h_n_parts = self.state_parts(grad_h_n, batch, "grad_h_n")
        grads: Params = {}
        grad_states: list[Any] = [None] * len(self.layers)
        grad_layer_output = grad_output
        for first in reversed(range(0, len(self.layers), self.num_directions)):
            grad_layer_input = 0.0
            for direction in range(self.num_directions):
                index = first + direction
                size = self.state_size
                grad_own_output = grad_layer_output[..., direction * size : (direction + 1) * size]
                grad_input, grad_states[index], layer_grads = self.layers[index].backward(
                    cache.caches[index],
                    grad_own_output[::-1] if direction else grad_own_output,
                    self._layer_state(grad_h_n_parts, index),
                )
                grad_layer_input = grad_layer_input + (
                    grad_input[::-1] if direction else grad_input
                )
                suffix = self._suffix(index)
                grads |= {name + suffix: grad for name, grad in layer_grads.items()}
            grad_layer_output = grad_layer_input
        return grad_layer_output, self._stack_states(grad_states), grads

    def __repr__(self) -> str:
        layer = self.layers[0]
        return (
            f"{type(self).__name__}({self.input_size}, {layer.hidden_size}, "
            f"num_layers={self.num_layers}, bidirectional={self.num_directions == 2}, "
            f"layer={layer!r})"
        )


class RNN(StackedRecurrent):
    """Like ``torch.nn.RNN`` (time-major, no dropout): see :class:`~rnnkit.scratch.rnn.RNNLayer`."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        bidirectional: bool = False,
        *,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(
            RNNLayer,
            input_size,
            hidden_size,
            num_layers,
            bidirectional,
            rng,
            nonlinearity=nonlinearity,
            bias=bias,
        )


class LSTM(StackedRecurrent):
    """Like ``torch.nn.LSTM`` (time-major, no dropout): see :class:`~rnnkit.scratch.lstm.LSTMLayer`.

    The state is a tuple ``(h, c)``: ``h`` ``(L*D, batch, P)``, ``c`` ``(L*D, batch, H)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(
            LSTMLayer,
            input_size,
            hidden_size,
            num_layers,
            bidirectional,
            rng,
            proj_size=proj_size,
            bias=bias,
        )


class GRU(StackedRecurrent):
    """Like ``torch.nn.GRU`` (time-major, no dropout): see :class:`~rnnkit.scratch.gru.GRULayer`."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        bidirectional: bool = False,
        *,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(
            GRULayer, input_size, hidden_size, num_layers, bidirectional, rng, bias=bias
        )
