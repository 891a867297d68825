"""Checking JSON/YAML values against dataclass field annotations.

Shared by the typed configs of :mod:`rnnkit.models`, :mod:`rnnkit.tasks` and
:class:`rnnkit.train.TrainConfig`, so a config built in Python, read from YAML or rebuilt from a
checkpoint's JSON passes the same checks, and a field's annotation is its only type definition.
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


def matches(value: Any, annotation: Any, finite: bool = True) -> bool:
    """Whether ``value`` fits ``annotation`` (unions, ``Literal``, lists/tuples, scalars).

    A ``float`` field takes finite ints and floats only: NaN or inf would poison weights or
    scaling silently (``finite=False`` lets them through for a caller whose value checks say
    "a finite number" themselves); an ``int`` field refuses ``bool``. ``tuple[X, Y]`` takes
    exactly two items (a list too, as JSON and YAML give), ``tuple[X, ...]`` and ``list[X]``
    any number.
    """
    origin = get_origin(annotation)
    if annotation is Any:
        return True
    if annotation is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, option, finite) for option in get_args(annotation))
    if origin is Literal:
        return any(value == c and type(value) is type(c) for c in get_args(annotation))
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            return False
        items = get_args(annotation) or (Any, ...)
        if origin is tuple and Ellipsis not in items:
            return len(value) == len(items) and all(
                matches(v, item, finite) for v, item in zip(value, items, strict=True))
        return all(matches(v, items[0], finite) for v in value)
    if annotation is float:
        return (is_int(value) or isinstance(value, float)) and (not finite or math.isfinite(value))
    if annotation is int:
        return is_int(value)
    return isinstance(value, annotation)


_WORDS = {int: "an integer", float: "a number", str: "a string"}


def describe(annotation: Any, yaml: bool = True) -> str:
    """What ``annotation`` expects, in words for an error message: ``one of 'a', 'b'``,
    ``an integer or null``; ``yaml=False`` says ``None``/``True or False`` for Python callers."""
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(c) for c in get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a, yaml) for a in get_args(annotation))
    if annotation is type(None):
        return "null" if yaml else "None"
    if annotation is bool:
        return "true or false" if yaml else "True or False"
    items = get_args(annotation)
    if origin is tuple and items and Ellipsis not in items and len(set(items)) == 1:
        return f"{len(items)} values, each {describe(items[0], yaml)}"
    return _WORDS.get(annotation, str(annotation).replace("typing.", ""))


def literal_choices(annotation: Any) -> list[str]:
    """The ``Literal`` values ``annotation`` allows (inside a union too), as strings."""
    if get_origin(annotation) is Literal:
        return [str(c) for c in get_args(annotation)]
    if get_origin(annotation) in (typing.Union, types.UnionType):
        return [c for a in get_args(annotation) for c in literal_choices(a)]
    return []


def closest(name: str, candidates: typing.Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the candidate closest to ``name``, or ``""``."""
    match = difflib.get_close_matches(str(name), list(candidates), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""
