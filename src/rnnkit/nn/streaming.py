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

import weakref

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


def _build_plan(layer, setting: str, batch: int, packed: bool = False):
    """A ``StreamStep`` for the layer's current weights, or ``None`` when it does not apply.

    ``packed``: the plan reads a packed copy (a streamer's: many steps per weight change)
    instead of the weights in place (step()'s, which may see a new weight every call)."""
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
                                          for i in range(0, len(weights), 5)], packed=packed)


def _decide(layer, route: tuple[str, int]) -> StreamCache:
    """Build and keep the layer's cache for ``route`` = (backend setting, batch)."""
    cache = StreamCache(route, _build_plan(layer, *route))
    layer._stream_cache = cache
    return cache


def plain_state(state: object, shape: tuple[int, ...], dtype: torch.dtype) -> bool:
    """True for a plain contiguous CPU tensor of this shape and dtype (what the native fast
    paths accept without the general path's checks)."""
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
    if backends.fast_path_declined():
        return None  # tracing: the general path's traceable ops; autocast: its casts
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
        if not plain_state(state, shape, plan.dtype):
            return None
        h, c = state, None
    elif (type(state) is tuple and len(state) == 2 and plain_state(state[0], shape, plan.dtype)
          and plain_state(state[1], (plan.layers, batch, plan.hidden), plan.dtype)):
        h, c = state
    else:
        return None
    h_n = torch.empty_like(h)
    c_n = None if c is None else torch.empty_like(c)
    try:
        y = plan.run_into(input, h, c, h_n, c_n)
    except plan.StaleWeights:
        layer._stream_cache = None  # a weight's storage was replaced: rebuild and retry
        return native_step(layer, input, state)
    return y, (h_n if c_n is None else (h_n, c_n))


class Streamer:
    """Online inference: a unidirectional layer advanced one step per call, state kept inside.

    ``layer.streamer(batch_size)`` builds it; ``y_t = streamer(x_t)`` takes ``x_t (batch,
    input_size)`` and returns a new tensor ``y_t (batch, out)`` (what ``step()`` returns),
    with no autograd. The whole call is C: the native engine's ``StreamerBase`` (the class of
    every streamer derives from it) calls the plan's native function, which checks every
    tensor, and swaps two state buffers, so nothing is allocated but ``y_t``. The state is an
    ordinary tensor: ``streamer.state`` returns a copy (``h``, or ``(h, c)`` for LSTM, shaped
    as ``step()``'s), assigning it sets it (e.g. to move a stream between streamers),
    ``reset(rows)`` zeroes chosen rows. The plan reads a packed copy of the weights (16-unit
    panels, ~1.8x the bandwidth of torch's layout at batch 1), repacked on the next call when
    a weight is replaced (``.to()``, ``.data =``, a new Parameter) or changed in place through
    itself (an optimizer step, ``load_state_dict``: its version counter moves); after a dtype
    change (``.double()``) the state goes on in the new dtype. Not seen:
    writes through ``param.data`` or another tensor sharing its storage.

    A streamer always runs the native step, whose products are dot products row by row: over
    hundreds of rows torch's fused kernel is faster, and ``step()`` with ``backend='auto'``
    takes it there (bench/results/step_batches.md).

    ``plan_factory`` (no arguments, returns a plan with ``native``, ``mode``,
    ``layers``, ``hidden``, ``out_size`` and ``dtype``) replaces the float plan: int8 layers
    (``rnnkit.nn.QuantizedRecurrent.streamer``) pass theirs.
    """

    __slots__ = ()

    def __new__(cls, layer, batch_size: int = 1, plan_factory=None):
        if cls is Streamer:
            # The native base is resolved here, not at import: importing rnnkit.nn must not
            # load the native engine.
            engine = backends.native_engine()
            if engine is None:
                raise RuntimeError(f"{type(layer).__name__}.streamer() needs rnnkit's native "
                                   "engine, which is not available; use step() instead")
            cls = _native_streamer_class()
        return super().__new__(cls)

    def __init__(self, layer, batch_size: int = 1, plan_factory=None) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
        self._layer, self._batch, self._factory = layer, batch_size, plan_factory
        self._build()
        if plan_factory is None:
            watch_layer(layer, self)
        dtype, plan = self._plan.dtype, self._plan
        self._h = torch.zeros(plan.layers, batch_size, plan.out_size, dtype=dtype)
        self._h_next = torch.empty_like(self._h)
        lstm = plan.mode == "LSTM"
        self._c = torch.zeros(plan.layers, batch_size, plan.hidden, dtype=dtype) if lstm else None
        self._c_next = torch.empty_like(self._c) if lstm else None

    def _build(self) -> None:
        """(Re)build the plan; ``StreamerBase`` calls it when the plan reports moved weights."""
        if self._factory is not None:
            self._plan = self._factory()
            self._run = self._plan.native
            return
        layer = self._layer
        name = type(layer).__name__
        if _layer_blocks_fast_path(layer):
            raise ValueError(f"{name}.streamer() needs a unidirectional layer without "
                             "regularisers, observers or inter-layer dropout in training; "
                             "use step() instead")
        plan = _build_plan(layer, "native", self._batch, packed=True)
        if plan is None:
            raise ValueError(f"{name}.streamer() needs contiguous CPU float32/float64 weights "
                             "held as the layer's parameters; use step() instead")
        self._plan, self._run = plan, plan.native
        self._follow_dtype()

    def _follow_dtype(self) -> None:
        """After the layer changed dtype (``.double()``, ``.float()``), carry the state over
        in the new dtype, values kept: the plan checks the state against the weights' dtype."""
        dtype = self._plan.dtype
        if self._h is None or self._h.dtype == dtype:  # first build, or unchanged
            return
        self._h, self._h_next = self._h.to(dtype), self._h_next.to(dtype)
        if self._c is not None:
            self._c, self._c_next = self._c.to(dtype), self._c_next.to(dtype)

    @property
    def state(self):
        """A copy of the current state: ``h`` ``(layers, batch, out)``, or ``(h, c)``."""
        return self._h.clone() if self._c is None else (self._h.clone(), self._c.clone())

    @state.setter
    def state(self, value) -> None:
        parts = (value,) if self._c is None else value
        targets = (self._h,) if self._c is None else (self._h, self._c)
        if not isinstance(parts, tuple) or len(parts) != len(targets):
            raise TypeError(f"state: expected {'a tensor' if self._c is None else '(h, c)'}, "
                            f"got {type(value).__name__}")
        for name, part, target in zip(("h", "c"), parts, targets, strict=False):
            if not isinstance(part, Tensor) or part.shape != target.shape:
                got = tuple(part.shape) if isinstance(part, Tensor) else type(part).__name__
                raise ValueError(f"state.{name}: expected shape {tuple(target.shape)}, got {got}")
            target.copy_(part)

    def reset(self, rows=None) -> None:
        """Zero the state of ``rows`` (indices, an integer tensor or a boolean mask ``(batch,)``),
        or of every row."""
        for buffer in (self._h, self._c):
            if buffer is not None:
                buffer[:, slice(None) if rows is None else rows] = 0


_NATIVE_STREAMER: type | None = None

# Each layer's live float streamers. Their plans hold the parameter objects they were built
# from, so a parameter replaced on the layer (``layer.weight_ih_l0 = nn.Parameter(...)``) is
# invisible to the plan's checks: the layer tells them (drop_streamer_plans) instead.
_LIVE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _moved(*args) -> bool:
    """A plan's stand-in after a change on its layer: False makes the streamer rebuild."""
    return False


def watch_layer(layer, streamer) -> None:
    """Rebuild ``streamer``'s plan after parameters of ``layer`` are set, replaced or converted
    (see :func:`drop_streamer_plans`); an int8 streamer watches its float layer."""
    _LIVE.setdefault(layer, weakref.WeakSet()).add(streamer)


def drop_streamer_plans(layer) -> None:
    """Make every live streamer of ``layer`` rebuild its plan on its next call (its parameters
    or configuration were set, replaced or converted: ``RecurrentBase._drop_caches``)."""
    for streamer in _LIVE.get(layer, ()):
        streamer._run = _moved


def _native_streamer_class() -> type:
    """``Streamer`` on the native ``StreamerBase`` (whose C call runs each step), made once."""
    global _NATIVE_STREAMER
    if _NATIVE_STREAMER is None:
        base = backends.native_engine()._loader.require_native().StreamerBase

        class NativeStreamer(Streamer, base):
            __slots__ = ("__weakref__", "_batch", "_factory", "_layer", "_plan")

        NativeStreamer.__name__ = NativeStreamer.__qualname__ = "Streamer"
        _NATIVE_STREAMER = NativeStreamer
    return _NATIVE_STREAMER
