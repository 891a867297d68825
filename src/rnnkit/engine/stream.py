"""Streaming: stacked unidirectional layers advanced by one time step in one native call.

A step at batch 1 is a few microseconds of arithmetic, so what it costs is the Python
around it. :class:`StreamStep` validates the weights once and hands them, the input and the
state to one native call (which checks every tensor again, cheaply) running every layer's
input projection, recurrence and gates (``csrc/kernels_impl.h``, ``Stream``): on the weights
in torch's own layout, or with ``packed=True`` on a packed copy (16-unit panels per gate,
repacked when a weight's pointer or version counter moves), which streamers use.

Example::

    plan = StreamStep("LSTM", [(w_ih0, w_hh0, b_ih0, b_hh0, None),
                               (w_ih1, w_hh1, b_ih1, b_hh1, None)])
    with torch.no_grad():
        h, c = plan(x_t, h, c)   # x_t (batch, input); h (2, batch, hidden); c likewise
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import Tensor

from rnnkit.engine import checks
from rnnkit.engine._loader import require_native

#: Per-layer weights in torch's order: ``(w_ih, w_hh, b_ih, b_hh, w_hr)``; biases and
#: ``w_hr`` may be ``None``.
LayerWeights = tuple[Tensor, Tensor, "Tensor | None", "Tensor | None", "Tensor | None"]


class StaleWeightsError(RuntimeError):
    """A weight's storage changed (``.data = ...``, ``.to()``) after the plan was built."""


# Weight elements a step must read before a second thread pays off: below this the whole
# step is a few microseconds and a barrier per layer costs more than it saves.
MIN_WEIGHTS_FOR_THREADS = 64 * 1024


def _check_layer(mode: str, index: int, layer: Sequence, input_size: int | None,
                 dtype: torch.dtype) -> tuple[int, int, int]:
    """Validate one layer's weights; returns ``(input_size, hidden, out_size)``.

    ``input_size`` is the previous layer's output size (``None`` for layer 0).
    """
    if len(layer) != 5:
        raise ValueError(f"weights[{index}]: expected (w_ih, w_hh, b_ih, b_hh, w_hr), "
                         f"got {len(layer)} items")
    w_ih, w_hh, b_ih, b_hh, w_hr = layer
    if not isinstance(w_ih, Tensor) or w_ih.dim() != 2:
        raise ValueError(f"weights[{index}].w_ih: expected a 2-D tensor (gates * hidden, input)")
    if input_size is None:
        input_size = w_ih.shape[1]
    _, hidden, out_size = checks.check_weights(mode, w_ih, w_hh, b_ih, b_hh, w_hr, input_size,
                                               dtype)
    for name, tensor in zip(("w_ih", "w_hh", "b_ih", "b_hh", "w_hr"), layer, strict=True):
        if tensor is not None and not tensor.is_contiguous():
            raise ValueError(f"weights[{index}].{name}: expected a contiguous tensor")
    return input_size, hidden, out_size


def source_marks(sources: Sequence[Tensor]) -> tuple[int, ...]:
    """``(data pointer, version counter)`` of each tensor, flattened: what a packed plan's
    native call compares to see that a weight was replaced or changed in place since packing
    (the float and int8 streaming plans alike)."""
    marks = []
    for tensor in sources:
        marks += [tensor.data_ptr(), tensor._version]
    return tuple(marks)


PANEL = 16  # units per packed panel (csrc/engine.h, StreamArgs::packed)


def _pack_layer(mode: str, hidden: int, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
                b_hh: Tensor | None, w_hr: Tensor | None) -> tuple:
    """One layer's ``(panels, bias, b_hn, None, w_hr)`` for a packed plan: per gate, 16-unit
    panels of ``[W_ih | W_hh]`` transposed, ``(G * ceil(H/16), in + out, 16)``, zero past H."""
    from rnnkit.engine.ops import _gate_bias

    gates = checks.GATES[mode]
    both = torch.cat([w_ih, w_hh], dim=1)  # (G*H, K)
    blocks = -(-hidden // PANEL)
    padded = both.new_zeros(gates, blocks * PANEL, both.shape[1])
    padded[:, :hidden] = both.view(gates, hidden, -1)
    panels = padded.view(gates * blocks, PANEL, -1).transpose(1, 2).contiguous()
    bias, b_hn = _gate_bias(mode, w_ih, b_ih, b_hh, gates * hidden, hidden)
    return (panels, bias.contiguous(), None if b_hn is None else b_hn.contiguous(), None,
            w_hr)


class StreamStep:
    """One time step of ``len(weights)`` stacked unidirectional layers, no autograd.

    - ``mode``: ``'RNN_TANH' | 'RNN_RELU' | 'LSTM' | 'GRU'``.
    - ``weights``: per layer ``(w_ih, w_hh, b_ih, b_hh, w_hr)`` shaped as in ``torch.nn``,
      contiguous CPU float32/float64 tensors (``w_hr`` only for LSTM with ``proj_size``).
    - Call with ``x (batch, input)``, ``h (layers, batch, out)``, ``c (layers, batch, hidden)``
      (LSTM) or ``None``; returns new ``(h_n, c_n)`` tensors (inputs are not modified).

    The weights are read in place, so in-place updates (an optimizer step) are seen; replacing
    a tensor's storage (``.data = ...``) makes calls raise :class:`StaleWeightsError` (build a
    new plan). With ``packed=True`` the plan reads a packed copy (16-unit panels per gate,
    ~1.8x the bandwidth of torch's layout at batch 1) and raises :class:`StaleWeightsError`
    also when a weight changed in place through itself (its version counter: an optimizer
    step, ``load_state_dict``); writes through ``.data`` or another tensor sharing the storage
    move no counter and are not seen. The thread count is chosen when the plan is built, from
    the weights' size and ``torch.get_num_threads()`` at that time.
    """

    StaleWeights = StaleWeightsError

    def __init__(self, mode: str, weights: Sequence[LayerWeights], packed: bool = False):
        checks.check_mode(mode)
        if len(weights) == 0:
            raise ValueError("weights: expected at least one layer, got none")
        first = weights[0][0]
        dtype = first.dtype if isinstance(first, Tensor) else None
        if dtype not in checks.DTYPES:
            raise TypeError(f"weights[0].w_ih: expected a float32 or float64 tensor, got "
                            f"{dtype if dtype is not None else type(first).__name__}")
        input_size, hidden, out_size = _check_layer(mode, 0, weights[0], None, dtype)
        for index, layer in enumerate(weights[1:], start=1):
            _check_layer(mode, index, layer, out_size, dtype)
        self.mode = mode
        self.layers = len(weights)
        self.input_size, self.hidden, self.out_size = input_size, hidden, out_size
        self.dtype = dtype
        self._native_stream = require_native().stream
        self.packed = bool(packed)
        sources = tuple(t for layer in weights for t in layer if t is not None)
        if self.packed:
            with torch.no_grad():
                weights = [_pack_layer(mode, hidden, *layer) for layer in weights]
        # The kernel reads each tensor's current data pointer and refuses to run if it is no
        # longer the one validated here (StaleWeightsError).
        self._weights = tuple(t for layer in weights for t in layer)
        self.pointers = tuple(0 if t is None else t.data_ptr() for t in self._weights)
        per_layer = checks.GATES[mode] * hidden * (input_size + out_size)
        threads = torch.get_num_threads() if per_layer >= MIN_WEIGHTS_FOR_THREADS else 1
        # Everything the kernel needs besides the call's tensors, in one tuple.
        self._plan = (int(dtype == torch.float64), checks.MODE_IDS[mode], self.layers,
                      input_size, hidden, out_size, threads, self._weights, self.pointers)
        if self.packed:  # the sources' pointers and versions: repack when any moves
            self._plan += (sources, source_marks(sources))
        #: ``native(x, h, c, h_n, c_n)``: :meth:`run_into` without its Python frame, returning
        #: ``False`` instead of raising on stale weights (for callers counting nanoseconds).
        self.native = partial(self._native_stream, self._plan)

    def _check_state(self, name: str, value: object, batch: int, size: int) -> None:
        checks.check_tensor(name, value, (self.layers, batch, size), self.dtype)
        if not value.is_contiguous():
            raise ValueError(f"{name}: expected a contiguous tensor")

    def __call__(self, x: Tensor, h: Tensor, c: Tensor | None = None):
        if torch.is_grad_enabled() and (x.requires_grad or h.requires_grad):
            raise RuntimeError("StreamStep runs without autograd; call it under torch.no_grad() "
                               "or use engine.recurrence for gradients")
        if not (x.dim() == 2 and x.shape[1] == self.input_size):
            raise ValueError(f"x: expected shape (batch, {self.input_size}), "
                             f"got {tuple(x.shape)}")
        batch = x.shape[0]
        checks.check_tensor("x", x, (batch, self.input_size), self.dtype)
        self._check_state("h", h, batch, self.out_size)
        if (c is None) != (self.mode != "LSTM"):
            raise ValueError(f"c: expected {'a cell state' if self.mode == 'LSTM' else 'None'} "
                             f"for mode {self.mode!r}")
        if c is not None:
            self._check_state("c", c, batch, self.hidden)
        return self.run(x.contiguous(), h, c)

    def run(self, x: Tensor, h: Tensor, c: Tensor | None):
        """:meth:`__call__` without the checks, for callers that already made them."""
        h_n = torch.empty_like(h)
        c_n = None if c is None else torch.empty_like(c)
        self.run_into(x, h, c, h_n, c_n)
        return h_n, c_n

    def run_into(self, x: Tensor, h: Tensor, c: Tensor | None, h_n: Tensor,
                 c_n: Tensor | None) -> Tensor:
        """Write the new states into ``h_n``/``c_n`` (shaped as ``h``/``c``, not aliasing
        them) and return the last layer's output ``(batch, out)`` as a new tensor. The native
        side checks every tensor; raises :class:`StaleWeightsError` if a weight's storage
        changed since the plan was built."""
        y = self._native_stream(self._plan, x, h, c, h_n, c_n)
        if y is False:
            raise StaleWeightsError("StreamStep: a weight tensor's storage changed after the "
                                    "plan was built (.data = ... or .to()); build a new plan")
        return y
