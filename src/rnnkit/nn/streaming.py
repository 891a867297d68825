"""The fast path of ``step()``: every layer advanced by one native call.

A streaming step at batch 1 does microseconds of arithmetic, so the general ``step()``
(argument checks, a kernel call per layer, stacking the states) costs more than the
kernel. When nothing needs that generality (no autograd, unidirectional, no regularisers
or observers, batched contiguous CPU input and state of the layer's dtype) the layer keeps
an :class:`rnnkit.engine.StreamStep` built for its current weights and calls it directly.
Anything else returns ``None`` and ``step()`` takes its general path, which also produces
the error messages.
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


def _layer_blocks_fast_path(layer) -> bool:
    return (layer.bidirectional or layer._state_observer is not None or layer.layer_norm
            or layer.regularisation.active
            or (layer.training and layer.dropout > 0 and layer.num_layers > 1))


class StreamCache:
    """Per-layer memo of the fast path: the routing decision and the built plan."""

    __slots__ = ("engine", "plan", "route")

    def __init__(self, route: tuple[str, int], engine) -> None:
        self.route = route  # (backend setting, batch) the decision was made for
        self.engine = engine  # the engine module, or None when torch.nn is faster
        self.plan = None


def _route(layer, batch: int) -> StreamCache:
    """The layer's cache for this backend setting and batch, deciding afresh on a change."""
    requested = layer.backend or backends.get_backend()
    cache = layer._stream_cache
    if cache is not None and cache.route == (requested, batch):
        return cache
    engine = backends.native_engine() if requested in ("auto", "native") else None
    if engine is not None and requested == "auto" and not engine.streaming_wins(
            layer.mode, layer.hidden_size, batch):
        engine = None
    cache = StreamCache((requested, batch), engine)
    if layer._stream_cache is not None:
        cache.plan = layer._stream_cache.plan
    layer._stream_cache = cache
    return cache


def _plan(layer, batch: int):
    """The layer's ``StreamStep`` for its current weights, or ``None`` to take the general path.

    Weights are compared by pointer on every call, so a tensor replaced in place of a
    parameter (``.data = ...``, ``.to()``) is noticed; parametrized weights are not handled.
    """
    cache = _route(layer, batch)
    if cache.engine is None:
        return None
    parameters = layer._parameters
    weights = [None if name is None else parameters.get(name) for name in layer._stream_names]
    try:
        pointers = tuple([0 if w is None else w.data_ptr() for w in weights])
    except AttributeError:  # a parametrized or deleted weight
        return None
    if cache.plan is not None and cache.plan.pointers == pointers:
        return cache.plan
    names = layer._stream_names
    if any(w is None and name is not None for w, name in zip(weights, names, strict=True)):
        return None
    if not all(w is None or (w.is_cpu and w.is_contiguous()) for w in weights):
        return None
    per_layer = [tuple(weights[i:i + 5]) for i in range(0, len(weights), 5)]
    cache.plan = cache.engine.StreamStep(layer.mode, per_layer)
    return cache.plan


def _state_ok(state: object, shape: tuple[int, int, int], dtype: torch.dtype) -> bool:
    return (type(state) is Tensor and state.dtype == dtype and state.shape == shape
            and state.is_cpu and state.is_contiguous())


def _split_state(state, lstm: bool, shape: tuple[int, int, int], hidden: int, dtype):
    """``(h, c)`` when ``state`` fits the fast path (``c`` None unless LSTM), else ``None``."""
    if not lstm:
        return (state, None) if _state_ok(state, shape, dtype) else None
    if not (type(state) is tuple and len(state) == 2):
        return None
    h, c = state
    if _state_ok(h, shape, dtype) and _state_ok(c, (shape[0], shape[1], hidden), dtype):
        return h, c
    return None


def native_step(layer, input: Tensor, state):
    """``(y (N, P), new_state)`` from one native call, or ``None`` to use the general path."""
    if torch.is_grad_enabled() or _layer_blocks_fast_path(layer):
        return None
    if not (type(input) is Tensor and input.dim() == 2 and input.is_cpu
            and input.is_contiguous() and input.shape[1] == layer.input_size):
        return None
    batch = input.shape[0]
    plan = _plan(layer, batch)
    if plan is None or input.dtype != plan.dtype:
        return None
    lstm = plan.mode == "LSTM"
    shape = (plan.layers, batch, plan.out_size)
    if state is None:
        h = input.new_zeros(shape)
        c = input.new_zeros((plan.layers, batch, plan.hidden)) if lstm else None
    else:
        states = _split_state(state, lstm, shape, plan.hidden, plan.dtype)
        if states is None:
            return None
        h, c = states
    h_n, c_n = plan.run(input, h, c)
    return h_n[-1], ((h_n, c_n) if lstm else h_n)
