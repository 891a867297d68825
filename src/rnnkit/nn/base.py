"""The shared machinery of :class:`RNN`, :class:`LSTM` and :class:`GRU`.

Parameters, their names, shapes, order and initialisation are those of ``torch.nn.RNNBase``,
so ``state_dict`` moves both ways between ``torch.nn`` and ``rnnkit.nn`` layers. Shape legend:
``L`` sequence length, ``N`` batch, ``D`` directions (2 if bidirectional), ``H`` hidden size,
``P`` output size of the state (``proj_size`` if set, else ``H``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from rnnkit.nn import backend as backends
from rnnkit.nn import checks, inference, interop
from rnnkit.nn.functional import GATE_COUNT, DirectionWeights, GateNorm, cell_step, input_gates
from rnnkit.nn.recurrence import Regularisation, run_direction, zoneout_update
from rnnkit.nn.sequence import (
    pack_longest_first,
    pack_nonempty,
    packed_places,
    repack_like,
    unpack,
    unpack_longest_first,
)
from rnnkit.nn.streaming import Streamer, drop_streamer_plans, native_step, stream_weight_names

State = Tensor | tuple[Tensor, Tensor]
StateObserver = Callable[[int, int, int, Tensor, "Tensor | None"], None]
# The fast paths' caches (rnnkit.nn.streaming, rnnkit.nn.inference), dropped on any change.
_CACHES = ("_stream_cache", "_forward_cache")
_FUSED_OPS = {"RNN_TANH": torch.rnn_tanh, "RNN_RELU": torch.rnn_relu, "LSTM": torch.lstm,
              "GRU": torch.gru}


def _rows_in_order(state: Tensor | None, order: Tensor | None) -> Tensor | None:
    """``state (L*D, N, *)`` with its rows (dim 1) taken in ``order`` (``None``: unchanged)."""
    if state is None or order is None:
        return state
    return state.index_select(1, order.to(state.device))


def _packed_ops():
    """The engine's ops when they run the packed layout, else ``None`` (a stand-in engine)."""
    ops = getattr(backends.native_engine(), "ops", None)
    return ops if hasattr(ops, "packed_recurrence") else None


def _stack(tensors: list[Tensor]) -> Tensor:
    """``torch.stack`` that skips the copy (and its autograd node) for a single tensor."""
    return tensors[0].unsqueeze(0) if len(tensors) == 1 else torch.stack(tensors)


class RecurrentBase(nn.RNNBase):
    """A multi-layer recurrent network over a sequence: the base of ``RNN``, ``LSTM``, ``GRU``.

    A subclass of ``torch.nn.RNNBase`` so that code recognising recurrent layers by type
    (``isinstance(m, nn.RNNBase)``) treats rnnkit's as torch's. Only the type is inherited:
    the constructor, forward, parameters and state dict are rnnkit's own, and torch's flat
    weight cache (``RNNBase.__setattr__``, ``_apply``, ``__getstate__``/``__setstate__``,
    which keep ``_flat_weights`` as a list) is bypassed: here ``_flat_weights`` is read from
    the parameters at every call, so it can never go stale.
    """

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
        *,
        backend: str | None = None,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        layer_norm: bool = False,
    ) -> None:
        nn.Module.__init__(self)  # not RNNBase.__init__: the parameters are created below
        self.mode = mode
        self.input_size = checks.check_int("input_size", input_size, 1)
        self.hidden_size = checks.check_int("hidden_size", hidden_size, 1)
        self.num_layers = checks.check_int("num_layers", num_layers, 1)
        self.bias = checks.check_bool("bias", bias)
        self.batch_first = checks.check_bool("batch_first", batch_first)
        self.dropout = checks.check_dropout(dropout)
        self.bidirectional = checks.check_bool("bidirectional", bidirectional)
        if isinstance(proj_size, int) and proj_size < 0:  # torch's wording for this one
            raise ValueError("proj_size should be a positive integer or zero to disable "
                             f"projections, got {proj_size}")
        self.proj_size = checks.check_int("proj_size", proj_size, 0)
        if self.proj_size >= self.hidden_size:
            raise ValueError(
                f"proj_size has to be smaller than hidden_size, got proj_size={proj_size} "
                f"and hidden_size={hidden_size}"
            )
        self.backend = None if backend is None else checks.check_choice(
            "backend", backend, backends.BACKENDS)
        self.regularisation = Regularisation(
            checks.check_probability("recurrent_dropout", recurrent_dropout, below_one=True),
            checks.check_probability("zoneout", zoneout, below_one=True),
        )
        self.layer_norm = checks.check_bool("layer_norm", layer_norm)
        if self.backend == "native" and (self.regularisation.active or self.layer_norm):
            raise ValueError(
                "backend='native' does not support recurrent_dropout, zoneout or layer_norm; "
                "use backend='python' or None (these options select the python loop)"
            )
        if self.dropout > 0 and self.num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}",
                UserWarning,
                stacklevel=3,
            )
        self._flat_weights_names: list[str] = []
        self._state_observer: StateObserver | None = None
        self._create_parameters(torch.device(device) if device else None, dtype)
        self._weight_names = frozenset(name for name, _ in self.named_parameters())
        self._stream_names = stream_weight_names(self.num_layers, self.bias, self.proj_size)
        self._stream_cache = None  # step()'s fast path: see rnnkit.nn.streaming
        self._forward_cache = None  # forward()'s inference fast path: see rnnkit.nn.inference
        self._panel_store = None  # kept packed weights, a dict when on: rnnkit.nn.prepack
        self.reset_parameters()

    # ----------------------------------------------------------------- parameters
    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def state_size(self) -> int:
        """``P``: the size of ``h`` (``proj_size`` when projecting, else ``hidden_size``)."""
        return self.proj_size or self.hidden_size

    def _create_parameters(self, device, dtype) -> None:
        gate_size = GATE_COUNT[self.mode] * self.hidden_size
        factory = {"device": device, "dtype": dtype}
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self.state_size * self.num_directions
            for direction in range(self.num_directions):
                shapes = {"weight_ih": (gate_size, layer_input),
                          "weight_hh": (gate_size, self.state_size)}
                if self.bias:
                    shapes.update(bias_ih=(gate_size,), bias_hh=(gate_size,))
                if self.proj_size:
                    shapes["weight_hr"] = (self.proj_size, self.hidden_size)
                for kind, shape in shapes.items():
                    name = f"{kind}_l{layer}{'_reverse' if direction else ''}"
                    self.register_parameter(name, nn.Parameter(torch.empty(shape, **factory)))
                    self._flat_weights_names.append(name)
        if self.layer_norm:
            self._create_norm_parameters(gate_size, factory)

    def _create_norm_parameters(self, gate_size: int, factory: dict) -> None:
        parts = {"ih": gate_size, "hh": gate_size}
        if self.mode == "LSTM":
            parts["cell"] = self.hidden_size
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                suffix = f"_l{layer}{'_reverse' if direction else ''}"
                for part, size in parts.items():
                    for kind, fill in (("weight", 1.0), ("bias", 0.0)):
                        tensor = torch.full((size,), fill, **factory)
                        self.register_parameter(f"layer_norm_{part}_{kind}{suffix}",
                                                nn.Parameter(tensor))

    def reset_parameters(self) -> None:
        """Uniform ``U(-1/sqrt(H), 1/sqrt(H))`` for every weight and bias, as ``torch.nn``.

        Layer-norm gains start at 1 and their biases at 0.
        """
        bound = 1.0 / math.sqrt(self.hidden_size)
        for name in self._flat_weights_names:
            nn.init.uniform_(getattr(self, name), -bound, bound)
        for name, parameter in self.named_parameters():
            if name.startswith("layer_norm_"):
                nn.init.constant_(parameter, 1.0 if "_weight_" in name else 0.0)

    @property
    def _flat_weights(self) -> list[Tensor]:
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[Tensor]]:
        """Parameters grouped per layer-direction, as ``torch.nn.RNNBase.all_weights``."""
        weights = self._flat_weights
        per_group = len(weights) // (self.num_layers * self.num_directions)
        return [weights[i:i + per_group] for i in range(0, len(weights), per_group)]

    @property
    def _all_weights(self) -> list[list[str]]:
        """Parameter names per layer-direction, as ``torch.nn.RNNBase._all_weights``."""
        per_group = len(self._flat_weights_names) // (self.num_layers * self.num_directions)
        names = self._flat_weights_names
        return [names[i:i + per_group] for i in range(0, len(names), per_group)]

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: the ``torch.nn`` twin sharing the parameters.

        rnnkit's forward (keyword-only ``lengths``, several backends, Python-side checks) is
        not TorchScript; the twin computes the same function with torch's kernels.
        """
        return interop.to_torch(self)

    def flatten_parameters(self) -> None:
        """Kept for ``torch.nn`` compatibility; rnnkit needs no flat weight buffer."""

    def _init_flat_weights(self) -> None:
        """``torch.nn.RNNBase``'s cache refresh: nothing to refresh here."""

    def _update_flat_weights(self) -> None:
        """``torch.nn.RNNBase``'s cache refresh: nothing to refresh here."""

    def _weights_have_changed(self) -> bool:
        return False

    def _weight(self, name: str) -> Tensor | None:
        """The parameter ``name``, or ``None`` if the layer has none by that name.

        The parameter dict first: ``Module.__getattr__`` costs microseconds per call and raises
        for missing names; attribute access still serves parametrized weights
        (``torch.nn.utils.parametrize``), which leave ``_parameters``.
        """
        value = self._parameters.get(name)
        if value is None and name in self._weight_names:
            value = getattr(self, name)
        return value

    def _first_weight(self) -> Tensor:
        """``weight_ih_l0``: the reference for the input's dtype and device."""
        return self._weight("weight_ih_l0")

    def direction_weights(self, layer: int, direction: int) -> DirectionWeights:
        """The parameters of one layer in one direction (0 forward, 1 reverse)."""
        suffix = f"_l{layer}{'_reverse' if direction else ''}"

        def param(kind: str) -> Tensor | None:
            return self._weight(kind + suffix)

        norm = None
        if self.layer_norm:
            norm = GateNorm(*(param(f"layer_norm_{part}_{kind}")
                              for part in ("ih", "hh", "cell") for kind in ("weight", "bias")))
        return DirectionWeights(param("weight_ih"), param("weight_hh"), param("bias_ih"),
                                param("bias_hh"), param("weight_hr"), norm)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        defaults = {"num_layers": 1, "bias": True, "batch_first": False, "dropout": 0.0,
                    "bidirectional": False, "proj_size": 0, "backend": None,
                    "layer_norm": False}
        for name, default in defaults.items():
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        for name in ("recurrent_dropout", "zoneout"):
            if getattr(self.regularisation, name):
                text += f", {name}={getattr(self.regularisation, name)}"
        return text

    # ----------------------------------------------------------------- forward
    def forward(
        self, input: Tensor | PackedSequence, hx: State | None = None, *, lengths=None
    ) -> tuple[Tensor | PackedSequence, State]:
        """Run the network over a sequence; see the class docstring for shapes."""
        inferring = lengths is None and not torch.is_grad_enabled()
        if inferring:
            fast = self._forward_one_step(input, hx) or inference.forward(self, input, hx)
            if fast is not None:
                return fast
        if isinstance(input, torch.fx.Proxy):  # symbolic tracing: a leaf, as torch.nn's are
            return self._fx_leaf(input, hx, lengths)
        if isinstance(input, PackedSequence) and lengths is None:
            packed_result = self._forward_packed(input, hx)
            if packed_result is not None:
                return packed_result
        x, lengths, packed, batched = self._prepare_input(input, lengths)
        h0, c0 = self._prepare_state(hx, x.shape[1], batched, packed)
        if x.shape[0] == 0:  # after the argument checks, as torch.nn's kernel raises it
            checks.reject_empty_sequence(type(self).__name__, self._input_shape(input),
                                         self.batch_first)
        path = self._choose_path(x, variable_lengths=lengths is not None)
        if path == "torch":
            output, h_n, c_n = self._run_fused(x, h0, c0, lengths)
        elif path == "native" and self._lengths_through_packed(x, lengths):
            output, h_n, c_n = self._run_lengths_packed(x, h0, c0, lengths)
        else:
            output, h_n, c_n = self._run_stack(x, h0, c0, lengths, self._direction_runner(path))
        if inferring:  # after a successful run: the next such call can take the fast path
            key = inference.route(self, input)
            if key is not None:
                inference.remember(self, key, path)
        return self._finish_forward(output, h_n, c_n, packed, batched)

    def _fx_leaf(self, input: torch.fx.Proxy, hx, lengths):
        """``torch.fx.symbolic_trace`` records torch.nn's recurrent layers as leaves (one
        ``call_module`` node) and traces into other modules, whose arguments would then be
        proxies: record this layer as a leaf too, so FX tooling sees it where it sees
        ``torch.nn.LSTM``."""
        tracer = input.tracer
        kwargs = {} if lengths is None else {"lengths": lengths}
        return tracer.create_proxy("call_module", tracer.path_of_module(self), (input, hx),
                                   kwargs)

    def _forward_one_step(self, input: object, hx: State | None):
        """A one-step batched sequence in inference (a decoder fed one token at a time) as
        ``step()`` runs it: the native one-call step where the batched-step table says it
        beats torch's kernel (the sequence kernels pay for packing the weights and for a
        whole-sequence plan at every such call). ``None`` when that path does not serve the
        call; the general path then runs, with every error message."""
        if (type(input) is not Tensor or input.dim() != 3
                or input.shape[1 if self.batch_first else 0] != 1):
            return None
        # native_step also declines while tracing: the general path's ops are traceable
        stepped = native_step(self, input[:, 0] if self.batch_first else input[0], hx)
        if stepped is None:
            return None
        y, state = stepped  # y (N, P): the one step's output
        return (y.unsqueeze(1) if self.batch_first else y.unsqueeze(0)), state

    def _finish_forward(self, output: Tensor, h_n: Tensor, c_n: Tensor | None,
                        packed: PackedSequence | None, batched: bool):
        """Time-major results back in the caller's layout: packed like the input, unbatched,
        or ``batch_first``; the state as ``h_n`` or ``(h_n, c_n)``."""
        if packed is not None and self._packed_rows_sorted(packed):
            output = pack_longest_first(output, packed)
            h_n, c_n = _rows_in_order(h_n, packed.unsorted_indices), _rows_in_order(
                c_n, packed.unsorted_indices)
        elif packed is not None:
            output = repack_like(output, packed)
        elif not batched:
            output, h_n = output.squeeze(1), h_n.squeeze(1)
            c_n = None if c_n is None else c_n.squeeze(1)
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, ((h_n, c_n) if self.mode == "LSTM" else h_n)

    def _forward_packed(self, packed: PackedSequence, hx: State | None):
        """A packed input on the native engine in the packed layout: ``PackedSequence.data``
        in, ``PackedSequence.data`` out, one input-projection GEMM over the real tokens per
        layer-direction and no padded copy. ``None`` when another path serves the call (and
        produces every error message)."""
        data, batch_sizes = packed.data, packed.batch_sizes
        weight = self._first_weight()
        if (type(data) is not Tensor or data.dim() != 2 or data.shape[1] != self.input_size
                or data.dtype != weight.dtype or not data.is_cpu or not weight.is_cpu
                or batch_sizes.numel() == 0 or backends.tracing()
                or backends.functorch_active() or self._state_observer is not None
                or self.regularisation.active or self.layer_norm):
            return None
        batch = int(batch_sizes[0])
        # _choose_path reads only the shape, dtype, device and grad flag: a (seq, batch,
        # input) view of no memory stands for the padded block that is never built.
        stand_in = data.as_strided((batch_sizes.numel(), batch, self.input_size), (0, 0, 1))
        if (self._choose_path(stand_in, variable_lengths=True) != "native"
                or _packed_ops() is None):
            return None
        h0, c0 = self._prepare_state(hx, batch, True, packed)
        data, h_n, c_n = self._run_packed(data, batch_sizes, h0, c0)
        output = PackedSequence(data, batch_sizes, packed.sorted_indices,
                                packed.unsorted_indices)
        h_n = _rows_in_order(h_n, packed.unsorted_indices)
        c_n = _rows_in_order(c_n, packed.unsorted_indices)
        return output, ((h_n, c_n) if self.mode == "LSTM" else h_n)

    def _run_packed(self, data: Tensor, batch_sizes: Tensor, h0: Tensor, c0: Tensor | None):
        """Every layer over ``data (rows, input)`` in the packed layout on the native engine:
        ``(output (rows, D*P), h_n (L*D, N, P), c_n or None)``, states in the packed order."""
        ops = _packed_ops()
        offsets = ops.packed_offsets(batch_sizes)

        def run_packed(x, h0, c0, lengths, layer, direction):
            w = self.direction_weights(layer, direction)
            return ops.packed_recurrence(self.mode, x, offsets, h0, c0, w.weight_ih,
                                         w.weight_hh, w.bias_ih, w.bias_hh, w.weight_hr,
                                         bool(direction))
        return self._run_stack(data, h0, c0, None, run_packed)

    @staticmethod
    def _lengths_through_packed(x: Tensor, lengths: Tensor | None) -> bool:
        """Whether ``lengths=`` runs in the packed layout (faster than the padded one for
        inference and training, bench/results/variable_lengths_packed.md): plain tensors (not
        traced) and no empty row, which a PackedSequence cannot hold."""
        return (lengths is not None and type(x) is Tensor and type(lengths) is Tensor
                and not backends.tracing() and _packed_ops() is not None
                and bool((lengths > 0).all()))

    def _run_lengths_packed(self, x: Tensor, h0: Tensor, c0: Tensor | None, lengths: Tensor):
        """``lengths=`` on the native engine through the packed layout: the valid steps are
        gathered once into ``PackedSequence.data`` order, every layer runs on them, and only
        the last output is padded (zeros past each row's length). States in input order."""
        times, rows, batch_sizes, order = packed_places(lengths)
        index = (times.to(x.device), rows.to(x.device))
        data, h_n, c_n = self._run_packed(x[index], batch_sizes, _rows_in_order(h0, order),
                                          _rows_in_order(c0, order))
        # In place: index_put would first copy the whole zero block.
        output = data.new_zeros(x.shape[0], x.shape[1], data.shape[1]).index_put_(index, data)
        restore = torch.empty_like(order)
        restore[order] = torch.arange(order.numel())
        return output, _rows_in_order(h_n, restore), _rows_in_order(c_n, restore)

    @staticmethod
    def _input_shape(input: Tensor | PackedSequence) -> tuple[int, ...]:
        """The shape the caller passed (a PackedSequence's data shape), for messages."""
        return tuple((input.data if isinstance(input, PackedSequence) else input).shape)

    def _prepare_input(self, input, lengths):
        """Return time-major ``x (L, N, input)``, lengths, the packed template, batched flag."""
        name = type(self).__name__
        packed = None
        if isinstance(input, PackedSequence):
            if lengths is not None:
                raise ValueError(f"{name}: pass either a PackedSequence or lengths=, not both")
            packed = input
            x, lengths = (unpack_longest_first(input) if self._packed_rows_sorted(input)
                          else unpack(input))
            checks.check_input(name, x, self.input_size, False, (2, 3), self._first_weight())
            batched = True
        else:
            checks.check_input(name, input, self.input_size, self.batch_first, (2, 3),
                               self._first_weight())
            batched = input.dim() == 3
            x = input if batched else input.unsqueeze(1)
            if batched and self.batch_first:
                x = x.transpose(0, 1)
            if lengths is not None:
                lengths = checks.normalise_lengths(name, lengths, x.shape[1], x.shape[0])
        if (lengths is not None and not torch._C._functorch.is_functorch_wrapped_tensor(lengths)
                and bool((lengths == x.shape[0]).all())):
            lengths = None  # every row is full: no masking needed (unknowable under vmap)
        return x, lengths, packed, batched

    def _packed_rows_sorted(self, packed: PackedSequence) -> bool:
        """Run a packed input in its packed (longest-first) row order, as torch.nn does: rows
        need no gather before and after the recurrence, states are permuted instead. Not with
        a state observer or per-row regularisation masks, whose rows follow the input order."""
        return (packed.sorted_indices is not None and self._state_observer is None
                and not self.regularisation.active)

    def _prepare_state(self, hx: State | None, batch: int, batched: bool,
                       packed: PackedSequence | None = None):
        """Validate or create ``(h0 (L*D, N, P), c0 (L*D, N, H) or None)``; rows in the packed
        order when :meth:`_packed_rows_sorted` (the caller's are in input order)."""
        name = type(self).__name__
        layers = self.num_layers * self.num_directions
        expected = {"h_0": (layers, batch, self.state_size)}
        if self.mode == "LSTM":
            expected["c_0"] = (layers, batch, self.hidden_size)
        reference = self._first_weight()
        if hx is None:
            states = [reference.new_zeros(shape) for shape in expected.values()]
        else:
            states = self._split_state(name, hx)
            checks.check_state_rank(name, dict(zip(expected, states, strict=True)), batched)
            states = [self._check_state(name, key, state, shape, batched)
                      for (key, shape), state in zip(expected.items(), states, strict=True)]
            if packed is not None and self._packed_rows_sorted(packed):
                states = [_rows_in_order(state, packed.sorted_indices) for state in states]
        return states[0], (states[1] if self.mode == "LSTM" else None)

    def _split_state(self, name: str, hx: State) -> list[Tensor]:
        if self.mode != "LSTM":
            if not isinstance(hx, Tensor):
                raise TypeError(f"{name}: hx should be a Tensor, got {type(hx).__name__}")
            return [hx]
        if not (isinstance(hx, (tuple, list)) and len(hx) == 2
                and all(isinstance(t, Tensor) for t in hx)):
            raise TypeError(f"{name}: hx should be a tuple of two Tensors (h_0, c_0), "
                            f"got {type(hx).__name__}")
        return list(hx)

    def _check_state(self, name: str, key: str, state: Tensor, shape: tuple, batched: bool):
        """Shape (after adding the batch axis of unbatched input), dtype and device of a state."""
        state = state if batched else state.unsqueeze(1)
        if self.mode != "LSTM":
            label, size_name = "hidden", "hidden_size"
        elif key == "h_0":
            label, size_name = "hidden[0]", "proj_size" if self.proj_size else "hidden_size"
        else:
            label, size_name = "hidden[1]", "hidden_size"
        checks.check_state_shape(name, key, state, shape, label, size_name)
        checks.check_same_kind(name, key, state, self._first_weight())
        return state

    @contextmanager
    def observing(self, observer: StateObserver) -> Iterator[None]:
        """Within the block, call ``observer(layer, direction, t, h_t, c_t)`` at every step.

        ``h_t`` (and an LSTM's ``c_t``) are the states the next step reads, as nodes of the
        autograd graph: analysis tools take gradients with respect to them (see
        :mod:`rnnkit.analysis`). Observed calls run the ``python`` backend.
        """
        previous, self._state_observer = self._state_observer, observer
        try:
            yield
        finally:
            self._state_observer = previous

    def _choose_path(self, x: Tensor, variable_lengths: bool = False,
                     one_step: bool = False) -> str:
        """Pick ``'torch'``, ``'native'`` or ``'python'`` for this call.

        ``variable_lengths``: rows end at different steps (torch would run its packed path).
        ``one_step``: a ``step()`` call, whose native kernel is the one-call step (measured
        apart from the sequence kernels: :func:`rnnkit.engine.streaming_wins`).
        """
        if self.regularisation.active or self.layer_norm or self._state_observer is not None:
            return "python"
        requested = self.backend or backends.get_backend()
        if x.shape[1] == 0:
            # An empty batch never reaches the engine (which rejects it): torch's kernels
            # return torch.nn's empty outputs, with a graph for backward.
            return "python" if requested == "python" else "torch"
        if requested in ("torch", "python") or x.device.type != "cpu":
            return "torch" if requested != "python" else "python"
        if backends.functorch_active():
            # torch.func transforms (grad, vmap, jvp, jacrev ...) wrap tensors that neither
            # kernel takes as plain memory, and torch's fused GRU cannot be vmapped over
            # per-sample gradients: the python loop is plain torch ops that functorch batches.
            return "python"
        engine = backends.native_engine()
        if requested == "native":
            if engine is None:
                backends.warn_native_unavailable("the compiled engine is not available")
                return "torch"
            return "native"
        if backends.autocast_active():  # torch's kernels: autocast's casts, as torch.nn gets
            return "torch"
        training = torch.is_grad_enabled() and (
            x.requires_grad or any(p.requires_grad for p in self._parameters.values()))
        if one_step and not training and engine is not None:
            wins = engine.streaming_wins(self.mode, self.hidden_size, x.shape[1])
            return "native" if wins and x.dtype in (torch.float32, torch.float64) else "torch"
        if engine is not None and engine.should_use(
                self.mode, input_size=self.input_size, hidden_size=self.hidden_size,
                batch=x.shape[1], seq_len=x.shape[0], dtype=x.dtype, device=x.device,
                training=training, variable_lengths=variable_lengths):
            return "native"
        return "torch"

    def _run_fused(self, x: Tensor, h0: Tensor, c0: Tensor | None, lengths: Tensor | None):
        """PyTorch's own fused kernels; per-row lengths go through a PackedSequence."""
        if backends.autocast_lacks_onednn_lstm(self.mode):
            with backends.onednn_off():
                return self._run_fused_kernel(x, h0, c0, lengths)
        return self._run_fused_kernel(x, h0, c0, lengths)

    def _run_fused_kernel(self, x: Tensor, h0: Tensor, c0: Tensor | None,
                          lengths: Tensor | None):
        op = _FUSED_OPS[self.mode]
        settings = (self._flat_weights, self.bias, self.num_layers, self.dropout, self.training,
                    self.bidirectional)
        hx = (h0, c0) if self.mode == "LSTM" else h0
        if lengths is None:
            result = op(x, hx, *settings, False)
            return result[0], result[1], (result[2] if self.mode == "LSTM" else None)
        if not bool((lengths > 0).any()):
            width = self.state_size * self.num_directions
            return x.new_zeros(x.shape[0], x.shape[1], width), h0, c0
        packed, kept = pack_nonempty(x, lengths)
        kept = kept.to(x.device)
        order = packed.sorted_indices.to(x.device)
        sub_hx = tuple(s.index_select(1, kept).index_select(1, order) for s in (h0, c0)
                       if s is not None)
        result = op(packed.data, packed.batch_sizes, sub_hx[0] if len(sub_hx) == 1 else sub_hx,
                    *settings)
        sub_output, _ = pad_packed_sequence(
            PackedSequence(result[0], packed.batch_sizes, packed.sorted_indices,
                           packed.unsorted_indices), total_length=x.shape[0])
        restore = packed.unsorted_indices.to(x.device)
        # In the kernel's dtype, which autocast may have lowered (torch.nn's RNN returns it).
        output = sub_output.new_zeros(x.shape[0], x.shape[1], sub_output.shape[-1])
        output = output.index_copy(1, kept, sub_output)
        h_n = h0.to(result[1].dtype).index_copy(1, kept, result[1].index_select(1, restore))
        c_n = None if c0 is None else c0.to(result[2].dtype).index_copy(
            1, kept, result[2].index_select(1, restore))
        return output, h_n, c_n

    def _direction_runner(self, path: str) -> Callable:
        """A function ``(x, h0, c0, lengths, layer, direction) -> (output, h_n, c_n)``."""
        if path == "native":
            engine = backends.native_engine()

            def run_native(x, h0, c0, lengths, layer, direction):
                w = self.direction_weights(layer, direction)
                return engine.recurrence(self.mode, x, h0, c0, w.weight_ih, w.weight_hh,
                                         w.bias_ih, w.bias_hh, w.weight_hr, lengths,
                                         bool(direction))
            return run_native

        def run_python(x, h0, c0, lengths, layer, direction):
            observer = self._state_observer
            return run_direction(
                self.mode, x, h0, c0, self.direction_weights(layer, direction), lengths,
                bool(direction), self.regularisation, self.training,
                None if observer is None else partial(observer, layer, direction))
        return run_python

    def _run_stack(self, x, h0, c0, lengths, runner: Callable):
        """Layer by layer, direction by direction, with dropout between layers in training.
        ``x`` is ``(L, N, input)``, or ``(rows, input)`` in the packed layout."""
        h_n, c_n = [], []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                output, h, c = runner(layer_input, h0[index], None if c0 is None else c0[index],
                                      lengths, layer, direction)
                outputs.append(output)
                h_n.append(h)
                c_n.append(c)
            layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        return layer_input, _stack(h_n), (_stack(c_n) if c0 is not None else None)

    # ----------------------------------------------------------------- streaming
    def step(self, input: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Advance every layer by one time step (streaming inference).

        - ``input``: ``(N, input_size)`` or unbatched ``(input_size,)``.
        - ``state``: as ``h_n`` of :meth:`forward` (``(num_layers, N, P)``, a tuple ``(h, c)``
          for LSTM), or ``None`` for zeros.
        - Returns ``(y (N, P), new_state)``. Feeding a sequence one step at a time gives the
          same outputs as :meth:`forward`. Unidirectional layers only; recurrent-dropout masks
          are drawn per call, so train with :meth:`forward`.
        """
        fast = native_step(self, input, state)
        if fast is not None:
            return fast
        name = type(self).__name__
        if self.bidirectional:
            raise ValueError(f"{name}.step() needs a unidirectional layer: the reverse direction "
                             "of a bidirectional layer reads the sequence from its end")
        checks.check_input(name, input, self.input_size, False, (1, 2), self._first_weight())
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        h0, c0 = self._prepare_state(state, x.shape[0], batched)
        path = self._choose_path(x.unsqueeze(0), one_step=True)
        if path == "torch":  # torch's fused kernel over a one-step sequence: all layers at once
            output, h_n, c_n = self._run_fused(x.unsqueeze(0), h0, c0, None)
            return self._finish_step(output[0], h_n, c_n, batched)
        engine = backends.native_engine() if path == "native" else None
        new_h, new_c = [], []
        for layer in range(self.num_layers):
            weights = self.direction_weights(layer, 0)
            c_prev = None if c0 is None else c0[layer]
            if engine is not None:
                h, c = engine.cell_step(self.mode, x, h0[layer], c_prev, weights.weight_ih,
                                        weights.weight_hh, weights.bias_ih, weights.bias_hh,
                                        weights.weight_hr)
            else:
                h, c = self._python_step(x, h0[layer], c_prev, weights)
            new_h.append(h)
            new_c.append(c)
            x = h
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        return self._finish_step(x, torch.stack(new_h),
                                 torch.stack(new_c) if c0 is not None else None, batched)

    # Any change to the layer's attributes or parameters drops the cached fast paths of
    # step() and forward(). nn.Module's, not RNNBase's: there is no flat weight list to keep.
    def __setattr__(self, name: str, value) -> None:
        nn.Module.__setattr__(self, name, value)
        if name not in _CACHES:
            self._drop_caches()

    def __delattr__(self, name: str) -> None:
        super().__delattr__(name)
        self._drop_caches()

    def register_parameter(self, name: str, param) -> None:
        super().register_parameter(name, param)
        self._drop_caches()

    def _apply(self, fn, recurse: bool = True):
        result = nn.Module._apply(self, fn, recurse)
        self._drop_caches()
        store = self.__dict__.get("_panel_store")
        if store:  # packed from the weights before the conversion
            store.clear()
        return result

    def _drop_caches(self) -> None:
        for name in _CACHES:
            self.__dict__[name] = None
        drop_streamer_plans(self)

    def __getstate__(self):
        # The streaming cache holds raw pointers; copies rebuild their own.
        state = dict(self.__dict__)
        state.update(dict.fromkeys(_CACHES))
        if state.get("_panel_store") is not None:  # copies pack from their own weights
            state["_panel_store"] = {}
        return state

    def __setstate__(self, state) -> None:
        nn.Module.__setstate__(self, state)
        for name in (*_CACHES, "_panel_store"):  # layers pickled before these existed
            self.__dict__.setdefault(name, None)

    def _replicate_for_data_parallel(self):
        replica = nn.Module._replicate_for_data_parallel(self)
        replica._drop_caches()  # the replica's parameters are its own
        return replica

    def _finish_step(self, y: Tensor, h_n: Tensor, c_n: Tensor | None, batched: bool):
        if not batched:
            y, h_n = y.squeeze(0), h_n.squeeze(1)
            c_n = None if c_n is None else c_n.squeeze(1)
        return y, ((h_n, c_n) if self.mode == "LSTM" else h_n)

    def _python_step(self, x, h, c, weights: DirectionWeights):
        regularisation = self.regularisation
        h_in = h
        if self.training and regularisation.recurrent_dropout:
            h_in = F.dropout(h, regularisation.recurrent_dropout, training=True)
        h_next, c_next = cell_step(self.mode, input_gates(x, weights), h_in, c, weights)
        if regularisation.zoneout:
            h_next = zoneout_update(h, h_next, regularisation.zoneout, self.training)
            if c_next is not None:
                c_next = zoneout_update(c, c_next, regularisation.zoneout, self.training)
        return h_next, c_next

    def streamer(self, batch_size: int = 1) -> Streamer:
        """A :class:`~rnnkit.nn.streaming.Streamer` for online inference: ``y_t =
        streamer(x_t)`` with ``x_t (batch_size, input_size)``, the state kept inside (one
        native call per step, no autograd). Needs the native engine and a unidirectional
        layer without regularisers; otherwise use :meth:`step`."""
        return Streamer(self, batch_size)

    def reset_state(self, state: State, rows: Sequence[int] | Tensor) -> State:
        """Return ``state`` with the given batch ``rows`` set to zero (streams that restart).

        ``rows`` is a list of row indices, an integer tensor, or a boolean mask ``(N,)``.
        The input state is not modified.
        """
        name = type(self).__name__
        tensors = self._split_state(name, state)
        if tensors[0].dim() != 3:
            raise checks.RecurrentInputError(
                f"{name}.reset_state: expected a batched state (layers, batch, size), "
                f"got shape {tuple(tensors[0].shape)}")
        batch = tensors[0].shape[1]
        index = torch.as_tensor(rows, device=tensors[0].device)
        if index.dtype == torch.bool:
            if index.shape != (batch,):
                raise checks.RecurrentInputError(
                    f"{name}.reset_state: a boolean rows mask needs shape ({batch},), "
                    f"got {tuple(index.shape)}")
            index = torch.nonzero(index).squeeze(1)
        index = index.reshape(-1).long()
        if index.numel() and (int(index.min()) < -batch or int(index.max()) >= batch):
            raise checks.RecurrentInputError(
                f"{name}.reset_state: rows must be in [0, {batch}), got {index.tolist()}")
        index = index % batch if batch else index
        cleared = [t.index_fill(1, index, 0.0) for t in tensors]
        return tuple(cleared) if self.mode == "LSTM" else cleared[0]
