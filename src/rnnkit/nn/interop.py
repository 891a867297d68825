"""Hand rnnkit's layers to tools that only know ``torch.nn``'s exact classes.

``torch.ao.quantization.quantize_dynamic`` and TorchScript look recurrent layers up by exact
type (``type(m) in {nn.LSTM, nn.GRU}``), which no subclass can satisfy. These helpers build
the ``torch.nn`` module that computes the same function, sharing the parameters:

- :func:`to_torch`: one rnnkit layer or cell -> its ``torch.nn`` twin.
- :func:`quantize_dynamic`: ``torch.ao.quantization.quantize_dynamic`` that quantises rnnkit's
  layers as it quantises torch's, in one call.
- ``torch.jit.script(layer)`` works through ``__prepare_scriptable__`` (see
  :class:`rnnkit.nn.RecurrentBase`), which returns :func:`to_torch`'s twin.

The twins run torch's kernels and take no ``lengths=``; layers with ``recurrent_dropout``,
``zoneout`` or ``layer_norm`` have no ``torch.nn`` twin and raise ``ValueError``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.modules import rnn as torch_rnn

# Captured at import: code that rebinds torch.nn.LSTM & co. to rnnkit's classes (as
# PyTorch's test suite run against rnnkit does) must still get torch's own classes here.
TORCH_CLASSES: dict[str, type[nn.Module]] = {
    name: getattr(torch_rnn, name)
    for name in ("RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell")
}


def _rnnkit_classes() -> dict[str, type[nn.Module]]:
    from rnnkit.nn import cells, layers  # here, not at import: layers import this module
    return {name: getattr(cells if name.endswith("Cell") else layers, name)
            for name in TORCH_CLASSES}


def _is_rnnkit(module: object) -> bool:
    from rnnkit.nn.base import RecurrentBase
    from rnnkit.nn.cells import CellBase
    return isinstance(module, (RecurrentBase, CellBase))


def _as_parameter(value: torch.Tensor) -> nn.Parameter:
    """The parameter itself, or (a pruned or parametrized weight) a parameter of its value."""
    if isinstance(value, nn.Parameter):
        return value
    return nn.Parameter(value.detach().clone(), requires_grad=value.requires_grad)


def _layer_arguments(layer) -> dict:
    """``torch.nn`` constructor arguments of an rnnkit layer (``ValueError`` if it has none)."""
    if layer.regularisation.active or layer.layer_norm:
        raise ValueError(
            f"{type(layer).__name__}: a layer with recurrent_dropout, zoneout or layer_norm has "
            "no torch.nn equivalent (expected none of them, got "
            f"recurrent_dropout={layer.regularisation.recurrent_dropout}, "
            f"zoneout={layer.regularisation.zoneout}, layer_norm={layer.layer_norm})")
    arguments = {"num_layers": layer.num_layers, "bias": layer.bias,
                 "batch_first": layer.batch_first, "dropout": layer.dropout,
                 "bidirectional": layer.bidirectional}
    if layer.mode == "LSTM":
        arguments["proj_size"] = layer.proj_size
    if layer.mode.startswith("RNN_"):
        arguments["nonlinearity"] = layer.nonlinearity
    return arguments


def to_torch(module: nn.Module) -> nn.Module:
    """The ``torch.nn`` layer or cell computing what the rnnkit ``module`` computes.

    It shares ``module``'s parameters (a pruned or parametrized weight is copied as a plain
    parameter) and its training mode. ``module``: an rnnkit ``RNN``, ``LSTM``, ``GRU`` or cell.
    """
    if not _is_rnnkit(module):
        raise TypeError("module: expected an rnnkit.nn recurrent layer or cell, got "
                        f"{type(module).__name__}")
    name = type(module).__name__ if type(module).__name__ in TORCH_CLASSES else None
    if name is None:  # a user subclass: go by what the layer is
        name = next(base.__name__ for base in type(module).__mro__
                    if base.__name__ in TORCH_CLASSES and base.__module__.startswith("rnnkit"))
    reference = module.weight_ih_l0 if hasattr(module, "num_layers") else module.weight_ih
    factory = {"device": reference.device, "dtype": reference.dtype}
    if hasattr(module, "num_layers"):
        twin = TORCH_CLASSES[name](module.input_size, module.hidden_size,
                                   **_layer_arguments(module), **factory)
        names = module._flat_weights_names
    else:
        options = {"nonlinearity": module.nonlinearity} if name == "RNNCell" else {}
        twin = TORCH_CLASSES[name](module.input_size, module.hidden_size, bool(module.bias),
                                   **options, **factory)
        names = [n for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                 if getattr(module, n, None) is not None]
    for weight_name in names:
        setattr(twin, weight_name, _as_parameter(getattr(module, weight_name)))
    if hasattr(twin, "_init_flat_weights"):
        twin._init_flat_weights()  # torch's flat weight list now points at the shared ones
    return twin.train(module.training)


def replace_with_torch(model: nn.Module) -> nn.Module:
    """``model`` with every rnnkit layer and cell inside it replaced by :func:`to_torch`'s twin
    (in place; returns the model, or the twin when ``model`` itself is an rnnkit layer)."""
    if _is_rnnkit(model):
        return to_torch(model)
    for parent in model.modules():
        for child_name, child in list(parent._modules.items()):
            if child is not None and _is_rnnkit(child):
                parent._modules[child_name] = to_torch(child)
    return model


def _torch_spec(qconfig_spec):
    """``qconfig_spec`` with rnnkit's classes named by their ``torch.nn`` twins."""
    if qconfig_spec is None or isinstance(qconfig_spec, str):
        return qconfig_spec
    twins = {cls: TORCH_CLASSES[name] for name, cls in _rnnkit_classes().items()}
    if isinstance(qconfig_spec, dict):
        return {twins.get(key, key): value for key, value in qconfig_spec.items()}
    return {twins.get(key, key) for key in qconfig_spec}


def quantize_dynamic(model: nn.Module, qconfig_spec=None, dtype=torch.qint8, mapping=None,
                     inplace: bool = False) -> nn.Module:
    """``torch.ao.quantization.quantize_dynamic`` that treats rnnkit layers as torch's.

    Same arguments as torch's. rnnkit's ``LSTM``/``GRU`` and cells become their ``torch.nn``
    twins first (:func:`to_torch`), so they are quantised exactly where torch's would be;
    ``qconfig_spec`` may name either ``torch.nn.LSTM`` or ``rnnkit.nn.LSTM`` (and so on).
    Without ``inplace``, ``model`` is left untouched. Returns the quantised model; its
    recurrent layers are ``torch.ao.nn.quantized.dynamic`` modules (no ``lengths=``).
    """
    if not inplace:
        model = copy.deepcopy(model)
    model = replace_with_torch(model)
    return torch.ao.quantization.quantize_dynamic(model, _torch_spec(qconfig_spec), dtype=dtype,
                                                  mapping=mapping, inplace=True)
