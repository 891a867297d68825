"""The fast path of ``forward()`` for inference calls on the native engine.

At batch 1 a whole-sequence call does tens of microseconds of arithmetic, and the general
``forward()`` (argument checks, path choice, the engine's checks and plan, state
allocation) cost as much again. An inference call (grad mode off, no ``lengths``, a
CPU tensor, batched or not) that the general path already routed to the native engine once
for the same route (backend setting, dtype, batch, one step or many, torch's thread count,
batched or not) goes straight to :func:`rnnkit.engine.ops.dense_inference` with the
decision and plans kept from then. The general path records the decision
(:func:`remember`); anything this path does not serve returns ``None`` and the general path
runs, producing every error message.

Only decisions are cached, never values computed from the weights: the parameters are
read from the layer at every call, so in-place updates (an optimizer step, ``.data``,
``load_state_dict``, writes through NumPy) are always seen. The one exception is opt-in:
:func:`prepack` keeps the kernels' packed copy of the weights, with the limits it documents.
The cache is dropped whenever an attribute or parameter of the layer is set, deleted or converted
(``RecurrentBase.__setattr__``, ``__delattr__``, ``register_parameter``, ``_apply``),
and if a parameter was swapped behind the layer's back (``param.data = ...`` with another
shape or dtype) the native boundary refuses it and the call is re-run by the general path.
"""

from __future__ import annotations

import operator

import torch
from torch import Tensor

from rnnkit.nn import backend as backends
from rnnkit.nn.streaming import plain_state

# Distinct routes a layer remembers before it starts over (one per batch size seen, mostly).
MAX_ROUTES = 32
_FLOATS = (torch.float32, torch.float64)


class ForwardPlan:
    """What an inference call on the native engine needs beyond the tensors."""

    __slots__ = ("c_shape", "dtype", "getters", "h_shape", "lstm", "num_directions",
                 "num_layers", "panels", "plans", "run", "spread", "zero_c", "zero_h")

    def __init__(self, layer, engine_ops, dtype: torch.dtype, batch: int, batched: bool) -> None:
        self.lstm = layer.mode == "LSTM"
        self.dtype = dtype
        self.num_layers, self.num_directions = layer.num_layers, layer.num_directions
        stacked = self.num_layers * self.num_directions
        # The shapes a caller's states must have (no batch axis for unbatched input).
        rows = (batch,) if batched else ()
        self.h_shape = (stacked, *rows, layer.state_size)
        self.c_shape = (stacked, *rows, layer.hidden_size)
        self.run = engine_ops.dense_inference
        self.plans = [engine_ops.inference_plan(layer.mode, layer.hidden_size, layer.state_size,
                                                batch, bool(direction))
                      for direction in range(self.num_directions)]
        kinds = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if layer.bias else [])
        kinds += ["weight_hr"] if layer.proj_size else []
        self.getters = [operator.itemgetter(*(f"{kind}_l{layer_index}{suffix}" for kind in kinds))
                        for layer_index in range(self.num_layers)
                        for suffix in ("", "_reverse")[:self.num_directions]]
        # (w_ih, w_hh, b_ih, b_hh, w_hr) from the weights present, in the engine's order.
        if layer.bias:
            self.spread = (lambda w: w) if layer.proj_size else (lambda w: (*w, None))
        else:
            self.spread = ((lambda w: (w[0], w[1], None, None, w[2])) if layer.proj_size
                           else (lambda w: (w[0], w[1], None, None, None)))
        # The kernels only read h0/c0: shared zero states for calls without hx.
        self.zero_h = list(torch.zeros(stacked, batch, layer.state_size, dtype=dtype).unbind(0))
        self.zero_c = (list(torch.zeros(stacked, batch, layer.hidden_size, dtype=dtype).unbind(0))
                       if self.lstm else [None] * stacked)
        self.panels = _kept_panels(layer, engine_ops, dtype, batch, stacked)


def _kept_panels(layer, engine_ops, dtype: torch.dtype, batch: int, stacked: int) -> list:
    """Per layer-direction, the buffer its packed weights are kept in (:func:`prepack`), or
    ``None`` each when the layer does not keep them or the batch is too wide to use them.
    Shared by every route of the layer."""
    store = layer._panel_store
    if (store is None or not hasattr(engine_ops, "panel_buffer")
            or batch >= engine_ops.PROJECT_FIRST_MAX_BATCH):
        return [None] * stacked
    buffers = []
    for index in range(stacked):
        layer_index = index // layer.num_directions
        input_size = layer.input_size if layer_index == 0 else (
            layer.state_size * layer.num_directions)
        key = (dtype, index)
        if key not in store:
            store[key] = engine_ops.panel_buffer(layer.mode, input_size, layer.hidden_size,
                                                 layer.state_size, dtype)
        buffers.append(store[key])
    return buffers


def prepack(module: torch.nn.Module, enabled: bool = True) -> torch.nn.Module:
    """Keep the packed weights of every rnnkit recurrent layer in ``module`` (or ``module``
    itself) between inference calls, like an inference session; ``enabled=False`` stops and
    frees them. Returns ``module``.

    The native engine copies the weights into a cache-friendly layout at the start of every
    call. For inference at small batches (below 16 rows) a prepacked layer keeps that copy
    and reuses it while the weights do not change: about 1.05-1.12x faster at batch 1 and
    hidden 64-256 (``python bench/prepack_ab.py``), at the cost of memory about the size of
    the layer's weights. The outputs are bit-for-bit those of an unprepacked layer.

    The copy is made again when a weight is replaced (``.to()``, a new Parameter, ``.data =
    ...``) or changed in place through the parameter (an optimizer step, ``load_state_dict``,
    ``torch.no_grad()`` in-place ops: its version counter moves). Writes that bypass the
    version counter (through ``.data`` or NumPy) are caught by a sample of values only in
    most cases: after such writes call ``prepack(module)`` again, which drops every copy.
    Training calls and larger batches are unaffected.
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled: expected a bool, got {type(enabled).__name__}")
    from rnnkit.nn.base import RecurrentBase

    for layer in module.modules():
        if isinstance(layer, RecurrentBase):
            layer.__dict__["_panel_store"] = {} if enabled else None
            layer._drop_caches()  # the plans pick the new store up
    return module


def route(layer, input: object) -> tuple | None:
    """The cache key of an inference call (batched 3-D or unbatched 2-D), or ``None`` when
    this path cannot serve it.

    Callers check grad mode and ``lengths`` first. Under ``torch.compile``/``export`` or a
    ``torch.func`` transform the general path runs (it routes those to traceable ops).
    """
    if type(input) is not Tensor or not input.is_cpu or backends.fast_path_declined():
        return None
    shape = input.shape
    dims = len(shape)
    if dims == 3:
        batch, steps = (shape[0], shape[1]) if layer.batch_first else (shape[1], shape[0])
    elif dims == 2:  # unbatched (L, input_size), whatever batch_first says
        batch, steps = 1, shape[0]
    else:
        return None
    return (layer.backend or backends.get_backend(), input.dtype, batch, steps == 1,
            torch.get_num_threads(), dims == 3)


def remember(layer, key: tuple, path: str) -> None:
    """Record the general path's decision for ``key``: a plan if it ran native, else False.

    A route already recorded is kept: calls this path declines (a list ``hx``, a state in
    another layout) run the general path every time and must not rebuild the plan each time.
    """
    cache = layer._forward_cache
    if cache is not None and key in cache:
        return
    if cache is None or len(cache) >= MAX_ROUTES:
        cache = layer.__dict__["_forward_cache"] = {}
    cache[key] = _plan_for(layer, key) if path == "native" else False


def _plan_for(layer, key: tuple) -> ForwardPlan | bool:
    dtype, batch, batched = key[1], key[2], key[5]
    engine = backends.native_engine()
    engine_ops = getattr(engine, "ops", None)
    if (dtype not in _FLOATS or batch == 0 or layer._state_observer is not None
            or not hasattr(engine_ops, "dense_inference")
            or (layer.training and layer.dropout and layer.num_layers > 1)):
        return False
    for name in layer._flat_weights_names:
        weight = layer._parameters.get(name)
        if (weight is None or not weight.is_cpu or weight.dtype != dtype
                or not weight.is_contiguous()):
            return False  # parametrized, elsewhere or another layout: the general path
    return ForwardPlan(layer, engine_ops, dtype, batch, batched)


def forward(layer, input: Tensor, hx):
    """``(output, state)`` of ``layer(input, hx)`` in inference, or ``None`` for the general
    path (no decision recorded, or an argument it would reject or convert)."""
    cache = layer._forward_cache
    if cache is None:
        return None
    key = route(layer, input)
    plan = None if key is None else cache.get(key)
    if not plan or input.dtype != plan.dtype or input.shape[-1] != layer.input_size:
        return None
    if hx is None:
        h0, c0 = plan.zero_h, plan.zero_c
    elif plan.lstm:
        if not (type(hx) is tuple and len(hx) == 2 and plain_state(hx[0], plan.h_shape, plan.dtype)
                and plain_state(hx[1], plan.c_shape, plan.dtype)):
            return None
        h0, c0 = hx
    else:
        if not plain_state(hx, plan.h_shape, plan.dtype):
            return None
        h0, c0 = hx, plan.zero_c
    batched = key[5]
    if batched:
        x = input.transpose(0, 1) if layer.batch_first else input
    else:
        x = input.unsqueeze(1)
        if hx is not None:
            h0 = h0.unsqueeze(1)
            c0 = c0.unsqueeze(1) if plan.lstm else c0
    try:
        output, h_n, c_n = _run(layer, plan, x, h0, c0)
    except (KeyError, RuntimeError, TypeError, ValueError):
        # A parameter left the layer or changed shape/dtype in place: forget the decision,
        # and let the general path run (or raise its own error).
        layer.__dict__["_forward_cache"] = None
        return None
    if not batched:
        output, h_n = output.squeeze(1), h_n.squeeze(1)
        c_n = c_n.squeeze(1) if plan.lstm else None
    elif layer.batch_first:
        output = output.transpose(0, 1)
    return output, ((h_n, c_n) if plan.lstm else h_n)


def _run(layer, plan: ForwardPlan, x: Tensor, h0, c0):
    """Every layer and direction through the engine: ``(output, h_n, c_n or None)``."""
    parameters = layer._parameters
    run, plans, directions = plan.run, plan.plans, plan.num_directions
    h_n, c_n, outputs = [], [], []
    layer_input = x
    for index, getter in enumerate(plan.getters):
        w_ih, w_hh, b_ih, b_hh, w_hr = plan.spread(getter(parameters))
        output, h, c = run(plans[index % directions], layer_input, h0[index], c0[index], w_ih,
                           w_hh, b_ih, b_hh, w_hr, plan.panels[index], True)
        h_n.append(h)
        c_n.append(c)
        outputs.append(output)
        if len(outputs) == directions:  # the next layer reads both directions
            layer_input = output if directions == 1 else torch.cat(outputs, dim=2)
            outputs = []
    # Each state is (1, batch, size) already: a one-layer state as it is.
    if len(h_n) == 1:
        return layer_input, h_n[0], c_n[0]
    return layer_input, torch.cat(h_n), (torch.cat(c_n) if plan.lstm else None)
