"""Checking JSON/YAML values against dataclass field annotations.

Shared by the typed configs of :mod:`rnnkit.models` and :mod:`rnnkit.tasks`, so a config built
in Python, read from YAML or rebuilt from a checkpoint's JSON passes the same checks.
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from typing import Any, Literal, get_args, get_origin


def is_int(value: object) -> bool:
    """An ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def matches(value: Any, annotation: Any) -> bool:
    """Whether ``value`` fits ``annotation`` (unions, ``Literal``, lists/tuples, scalars).

    A ``float`` field takes finite ints and floats only: NaN or inf would poison weights or
    scaling silently; an ``int`` field refuses ``bool``.
    """
    origin = get_origin(annotation)
    if annotation is Any:
        return True
    if annotation is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, option) for option in get_args(annotation))
    if origin is Literal:
        return any(value == c and type(value) is type(c) for c in get_args(annotation))
    if origin in (list, tuple):
        item = (get_args(annotation) or (Any,))[0]
        return isinstance(value, list | tuple) and all(matches(v, item) for v in value)
    if annotation is float:
        return (is_int(value) or isinstance(value, float)) and math.isfinite(value)
    if annotation is int:
        return is_int(value)
    return isinstance(value, annotation)


def closest(name: str, candidates: typing.Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the candidate closest to ``name``, or ``""``."""
    match = difflib.get_close_matches(str(name), list(candidates), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""
