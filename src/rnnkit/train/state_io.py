"""Split nested state (optimizer, RNG, loss-function state) into JSON and tensors.

``torch.save`` would pickle these; we never do, so a checkpoint can be opened without running
code. Tensors go to a safetensors file under path-like names, everything else to JSON. Tuples
and dicts with non-string keys (the optimizer's ``state`` is keyed by parameter index) are
tagged so they come back with their original types.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save

from rnnkit.train.durable import write_new_file

_TENSOR = "__tensor__"
_TUPLE = "__tuple__"
_ITEMS = "__items__"
_NDARRAY = "__ndarray__"
_FLOAT = "__float__"  # inf and nan, which strict JSON cannot hold
_MARKERS = {_TENSOR, _TUPLE, _ITEMS, _NDARRAY, _FLOAT}


def encode_state(state: Any, prefix: str = "") -> tuple[Any, dict[str, torch.Tensor]]:
    """Return ``(json_tree, tensors)``: the state with each tensor replaced by a named reference.

    Accepts nested dicts, lists, tuples, tensors, numpy arrays, numbers, strings and None;
    anything else raises ``TypeError`` naming its path in the tree.
    """
    tensors: dict[str, torch.Tensor] = {}
    return _encode(state, prefix, tensors), tensors


def _encode(value: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        # clone: safetensors refuses tensors that share storage (e.g. views of one buffer)
        tensors[path] = value.detach().to("cpu", copy=True).contiguous()
        return {_TENSOR: path}
    if isinstance(value, np.ndarray):
        return {_NDARRAY: value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return _encode(value.item(), path, tensors)
    if isinstance(value, float) and not math.isfinite(value):
        return {_FLOAT: repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v, f"{path}/{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{path}/{i}", tensors) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return _encode_dict(value, path, tensors)
    raise TypeError(
        f"state at {path or '<root>'!r}: expected tensors, numbers, strings, lists, tuples or "
        f"dicts, got {type(value).__name__}"
    )


def _encode_dict(value: dict, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    if all(isinstance(k, str) for k in value) and not _MARKERS.intersection(value):
        return {k: _encode(v, f"{path}/{k}", tensors) for k, v in value.items()}
    items = []
    for key, item in value.items():
        if not isinstance(key, (str, int)) or isinstance(key, bool):
            raise TypeError(
                f"state at {path or '<root>'!r}: dict keys must be str or int, got {key!r}"
            )
        items.append([key, _encode(item, f"{path}/{key}", tensors)])
    return {_ITEMS: items}


def decode_state(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`encode_state`."""
    if isinstance(tree, list):
        return [decode_state(v, tensors) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if _TENSOR in tree:
        return tensors[tree[_TENSOR]]
    if _TUPLE in tree:
        return tuple(decode_state(v, tensors) for v in tree[_TUPLE])
    if _ITEMS in tree:
        return {key: decode_state(v, tensors) for key, v in tree[_ITEMS]}
    if _NDARRAY in tree:
        return np.asarray(tree[_NDARRAY], dtype=tree["dtype"])
    if _FLOAT in tree:
        return float(tree[_FLOAT])
    return {k: decode_state(v, tensors) for k, v in tree.items()}


def finite_json(value: Any) -> Any:
    """``value`` with every NaN/inf float (in nested dicts, lists, tuples) replaced by ``None``,
    the convention of rnnkit's JSON outputs (strict JSON has no literal for them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(item) for item in value]
    return value


def json_bytes(data: Any) -> bytes:
    """Strict JSON (no NaN/Infinity literals), indented, as UTF-8 bytes."""
    return (json.dumps(data, indent=2, allow_nan=False) + "\n").encode("utf-8")


def read_json(path: Path) -> Any:
    """Read a JSON file written by :func:`write_json`; a corrupt file is a ``ValueError``
    naming it."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error


def save_state(state: Any, json_path: Path, tensor_path: Path) -> None:
    """Write ``state`` as a new JSON file plus a new safetensors file, both flushed to disk."""
    tree, tensors = encode_state(state)
    write_new_file(tensor_path, save(tensors))
    write_new_file(json_path, json_bytes(tree))


def load_state(json_path: Path, tensor_path: Path) -> Any:
    """Read state written by :func:`save_state` (tensors on CPU); never unpickles."""
    return decode_state(read_json(json_path), load_file(str(tensor_path)))
