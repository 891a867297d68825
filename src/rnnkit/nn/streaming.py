"""The fast path of ``step()``: every layer advanced by one native call.

A streaming step at batch 1 does microseconds of arithmetic, so the general ``step()``
(argument checks, a kernel call per layer, stacking the states) costs more than the
kernel. When nothing needs that generality (no autograd, unidirectional, no regularisers
or observers, batched contiguous CPU input and state of the layer's dtype) the layer keeps
an :class:`rnnkit.engine.StreamStep` built for its current weights and calls it directly.
Anything else returns ``None`` and ``step()`` takes its general path, which also produces
the error messages.

The cache is dropped whenever an attribute or parameter of the layer is set, deleted or
converted (``RecurrentBase.__setattr__``, ``__delattr__``, ``register_parameter``,
``_apply``), and the kernel itself refuses weights whose storage changed behind the
layer's back (``param.data = ...``), so a stale plan is never run.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnkit.nn import backend as backends

WEIGHT_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")


def stream_weight_names(num_layers: int, bias: bool, proj_size: int) -> tuple[str | None, ...]:
    """Parameter names in the kernel's order, 5 per layer (``None`` where a weight is absent)."""
    present = {"weight_ih": True, "weight_hh": True, "bias_ih": bias, "bias_hh": bias,
               "weight_hr": bool(proj_size)}
    return tuple(f"{kind}_l{layer}" if present[kind] else None
                 for layer in range(num_layers) for kind in WEIGHT_KINDS)


class StreamCache:
    """What the fast path decided for one backend setting and batch size: a plan or ``None``."""

    __slots__ = ("plan", "route")

    def __init__(self, route: tuple[str, int], plan) -> None:
        self.route = route  # (backend setting, batch) the decision was made for
        self.plan = plan  # rnnkit.engine.StreamStep, or None: take the general path


def _layer_blocks_fast_path(layer) -> bool:
    return (layer.bidirectional or layer._state_observer is not None or layer.layer_norm
            or layer.regularisation.active
            or (layer.training and layer.dropout > 0 and layer.num_layers > 1))


def _build_plan(layer, setting: str, batch: int):
    """A ``StreamStep`` for the layer's current weights, or ``None`` when it does not apply."""
    if _layer_blocks_fast_path(layer) or setting not in ("auto", "native"):
        return None
    engine = backends.native_engine()
    if engine is None or (setting == "auto"
                          and not engine.streaming_wins(layer.mode, layer.hidden_size, batch)):
        return None
    parameters = layer._parameters
    weights = [None if name is None else parameters.get(name) for name in layer._stream_names]
    if any(w is None and name is not None for w, name in zip(weights, layer._stream_names,
                                                             strict=True)):
        return None  # a weight left _parameters (parametrized or deleted)
    if not all(w is None or (w.is_cpu and w.is_contiguous()) for w in weights):
        return None
    return engine.StreamStep(layer.mode, [tuple(weights[i:i + 5])
                                          for i in range(0, len(weights), 5)])


def _decide(layer, route: tuple[str, int]) -> StreamCache:
    """Build and keep the layer's cache for ``route`` = (backend setting, batch)."""
    cache = StreamCache(route, _build_plan(layer, *route))
    layer._stream_cache = cache
    return cache


def _state_ok(state: object, shape: tuple[int, int, int], dtype: torch.dtype) -> bool:
    return (type(state) is Tensor and state.dtype == dtype and state.shape == shape
            and state.is_cpu and state.is_contiguous())


def _initial_state(plan, input: Tensor, shape: tuple[int, int, int]):
    c = input.new_zeros((plan.layers, shape[1], plan.hidden)) if plan.mode == "LSTM" else None
    return input.new_zeros(shape), c


def native_step(layer, input: Tensor, state):
    """``(y (N, P), new_state)`` from one native call, or ``None`` to use the general path.

    Streaming is latency-bound (a 64-unit step is ~0.3 µs of arithmetic), so this function is
    written for few Python operations: one cache lookup, the checks that keep raw pointers
    safe (type, dtype, shape, device, layout), one allocation per state tensor.
    """
    if torch.is_grad_enabled() or type(input) is not Tensor or input.dim() != 2:
        return None
    batch = input.shape[0]
    if batch == 0:
        return None  # the kernel needs rows; the general path handles an empty batch
    route = (layer.backend or backends.get_backend(), batch)
    cache = layer._stream_cache
    if cache is None or cache.route != route:
        cache = _decide(layer, route)
    plan = cache.plan
    if plan is None or not (input.dtype == plan.dtype and input.shape[1] == plan.input_size
                            and input.is_cpu and input.is_contiguous()):
        return None
    shape = (plan.layers, batch, plan.out_size)
    if state is None:
        h, c = _initial_state(plan, input, shape)
    elif plan.mode != "LSTM":
        if not _state_ok(state, shape, plan.dtype):
            return None
        h, c = state, None
    elif (type(state) is tuple and len(state) == 2 and _state_ok(state[0], shape, plan.dtype)
          and _state_ok(state[1], (plan.layers, batch, plan.hidden), plan.dtype)):
        h, c = state
    else:
        return None
    try:
        h_n, c_n = plan.run(input, h, c)
    except plan.StaleWeights:
        layer._stream_cache = None  # a weight's storage was replaced: rebuild and retry
        return native_step(layer, input, state)
    return h_n[-1], (h_n if c_n is None else (h_n, c_n))
