"""int8 inference for rnnkit's recurrent layers: one call, float weights untouched.

:func:`quantize_int8` replaces every rnnkit ``RNN``/``LSTM``/``GRU`` in a model by a
:class:`QuantizedRecurrent` that shares the layer's float parameters (same names, so
``state_dict``, checkpoints and export see exactly the float model) and runs the native int8
kernels (:mod:`rnnkit.engine.quantized`): weights quantised per row to int8 once (again
whenever a float weight changes), activations quantised per row and step. Inference only.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from rnnkit.nn import checks
from rnnkit.nn.base import RecurrentBase
from rnnkit.nn.functional import GATE_COUNT
from rnnkit.nn.streaming import Streamer, watch_layer

_CONFIG = ("mode", "input_size", "hidden_size", "num_layers", "bias", "batch_first",
           "bidirectional", "proj_size", "dropout")


class QuantizedRecurrent(nn.Module):
    """Inference-only int8 twin of an rnnkit ``RNN``, ``LSTM`` or ``GRU`` (CPU, float32).

    Same forward contract as the float layer (``batch_first``, unbatched input,
    ``PackedSequence``, ``lengths=``, ``hx``; every direction, layer and ``proj_size``); the
    outputs never require grad. Its parameters *are* the float layer's, under the same names.
    Refuses training mode and inputs that require grad.
    """

    def __init__(self, layer: RecurrentBase) -> None:
        if not isinstance(layer, RecurrentBase):
            raise TypeError("layer: expected an rnnkit.nn RNN, LSTM or GRU, got "
                            f"{type(layer).__name__}")
        if layer.regularisation.active or layer.layer_norm:
            raise ValueError(
                f"{type(layer).__name__}: int8 inference covers plain layers (expected no "
                "recurrent_dropout, zoneout or layer_norm, got "
                f"recurrent_dropout={layer.regularisation.recurrent_dropout}, "
                f"zoneout={layer.regularisation.zoneout}, layer_norm={layer.layer_norm})")
        weight = layer._first_weight()
        if weight.dtype != torch.float32 or weight.device.type != "cpu":
            raise ValueError(f"{type(layer).__name__}: int8 inference expects float32 CPU "
                             f"weights, got {weight.dtype} on {weight.device}")
        super().__init__()
        # Not a submodule: its parameters are registered here under their own names.
        object.__setattr__(self, "_float", layer)
        for name, parameter in layer.named_parameters(recurse=False):
            self.register_parameter(name, parameter)
        for name in _CONFIG:
            setattr(self, name, getattr(layer, name))
        self._packed: list | None = None
        self._packed_key: tuple | None = None
        self.training = False

    def extra_repr(self) -> str:
        return f"int8, {self._float.extra_repr()}"

    def __setattr__(self, name: str, value) -> None:
        # A parameter set on the twin is set on its float layer too, which the kernels'
        # weights are packed from: the two keep sharing every parameter.
        if isinstance(value, nn.Parameter) and name in self.__dict__.get("_parameters", {}):
            setattr(self._float, name, value)
        super().__setattr__(name, value)

    def _follow_float(self) -> list:
        """The float layer's parameters, registered here again where one was replaced on the
        float layer (``layer.weight_hh_l0 = nn.Parameter(...)``) since the twin was made."""
        for name, parameter in self._float._parameters.items():
            if self._parameters.get(name) is not parameter:
                self._parameters[name] = parameter
        return list(self._parameters.values())

    def train(self, mode: bool = True) -> QuantizedRecurrent:
        """Only ``train(False)``/``eval()``: int8 layers do not train."""
        if mode:
            raise RuntimeError(
                f"{type(self).__name__}: int8 layers are for inference only (expected "
                "train(False) or eval(), got train(True)); train the float model and call "
                "rnnkit.nn.quantize_int8 again")
        return super().train(False)

    def _weights(self) -> list:
        """Packed weights per layer-direction, rebuilt when a float parameter has changed."""
        parameters = self._follow_float()
        key = tuple((p.data_ptr(), p._version) for p in parameters)
        if key != self._packed_key:
            from rnnkit.engine import quantized as engine_int8  # here: importing rnnkit.nn
            from rnnkit.engine.ops import _gate_bias  # must not load the native engine

            gates = GATE_COUNT[self.mode]
            packed = []
            with torch.no_grad():
                for layer in range(self.num_layers):
                    for direction in range(2 if self.bidirectional else 1):
                        w = self._float.direction_weights(layer, direction)
                        bias, b_hn = _gate_bias(self.mode, w.weight_ih, w.bias_ih, w.bias_hh,
                                                gates * self.hidden_size, self.hidden_size)
                        packed.append((
                            engine_int8.pack(w.weight_ih, gates),
                            engine_int8.pack(w.weight_hh, gates),
                            None if w.weight_hr is None else engine_int8.pack(w.weight_hr),
                            bias.detach().contiguous(),
                            None if b_hn is None else b_hn.detach().contiguous()))
            self._packed, self._packed_key = packed, key
        return self._packed

    def streamer(self, batch_size: int = 1) -> Streamer:
        """A :class:`~rnnkit.nn.streaming.Streamer` running the int8 kernels: ``y_t =
        streamer(x_t)`` with ``x_t (batch_size, input_size)`` float32, state kept inside, one
        native call per step. Each step equals the same step of ``forward`` on the whole
        sequence. Weights are repacked when a float parameter is replaced or changed in place
        through itself (its version counter); writes through ``.data`` are not seen.
        Unidirectional layers only."""
        if self.bidirectional:
            raise ValueError(f"{type(self._float).__name__} (int8).streamer() needs a "
                             "unidirectional layer (expected bidirectional=False, got True); "
                             "use forward() on whole sequences instead")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")

        def plan():
            from rnnkit.engine import quantized as engine_int8

            weights = self._weights()  # registers parameters replaced on the float layer
            return engine_int8.Int8StreamStep(self.mode, weights,
                                              list(self._parameters.values()), batch_size)

        streamer = Streamer(self, batch_size, plan_factory=plan)
        # A parameter replaced on either layer lands on the float one (see __setattr__), whose
        # parameter checks then make this streamer rebuild (its sources' pointers cannot tell).
        watch_layer(self._float, streamer)
        return streamer

    def forward(self, input, hx=None, *, lengths=None):
        """As the float layer's ``forward``: ``(output, h_n)`` or ``(output, (h_n, c_n))``."""
        name = type(self._float).__name__
        states = () if hx is None else (hx if isinstance(hx, (tuple, list)) else (hx,))
        tensors = [input.data if isinstance(input, PackedSequence) else input, *states]
        if torch.is_grad_enabled() and any(isinstance(t, Tensor) and t.requires_grad
                                           for t in tensors):
            raise RuntimeError(f"{name} (int8): inputs require grad, but int8 inference records "
                               "no gradients; run it under torch.no_grad() or use the float "
                               "layer")
        layer = self._float
        x, lengths, packed, batched = layer._prepare_input(input, lengths)
        h0, c0 = layer._prepare_state(hx, x.shape[1], batched, packed)
        if x.shape[0] == 0:
            checks.reject_empty_sequence(name, layer._input_shape(input), self.batch_first)
        if x.shape[1] == 0:
            raise ValueError(f"{name} (int8): expected a non-empty batch, got input of shape "
                             f"{tuple(layer._input_shape(input))}")
        with torch.no_grad():
            output, h_n, c_n = self._run(x.contiguous(), h0, c0, lengths)
        return self._float._finish_forward(output, h_n, c_n, packed, batched)

    def _run(self, x: Tensor, h0: Tensor, c0: Tensor | None, lengths: Tensor | None):
        """Every layer and direction, time-major: ``(output, h_n, c_n or None)``."""
        from rnnkit.engine import quantized as engine_int8

        directions = 2 if self.bidirectional else 1
        weights = self._weights()
        h_n, c_n = [], []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                index = layer * directions + direction
                ih, hh, hr, bias, b_hn = weights[index]
                y, h, c = engine_int8.recurrence(
                    self.mode, layer_input, h0[index], None if c0 is None else c0[index], ih, hh,
                    hr, bias, b_hn, lengths, reverse=bool(direction))
                outputs.append(y)
                h_n.append(h)
                c_n.append(c)
            layer_input = outputs[0] if directions == 1 else torch.cat(outputs, dim=2)
        return layer_input, torch.stack(h_n), (torch.stack(c_n) if c0 is not None else None)


def quantize_int8(model: nn.Module, inplace: bool = False) -> nn.Module:
    """``model`` with every rnnkit ``RNN``/``LSTM``/``GRU`` replaced by its int8 twin.

    The float parameters stay the model's (``state_dict`` keys and values unchanged); only
    forward runs int8 (:class:`QuantizedRecurrent`). Without ``inplace`` the model is deep-copied
    first. Returns the model, or the twin when ``model`` is itself a layer. The returned model
    is in eval mode; its int8 layers refuse ``train()``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    if isinstance(model, RecurrentBase):
        return QuantizedRecurrent(model)
    for parent in list(model.modules()):
        for child_name, child in list(parent._modules.items()):
            if isinstance(child, RecurrentBase):
                parent._modules[child_name] = QuantizedRecurrent(child)
    return model
