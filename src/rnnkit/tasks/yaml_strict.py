"""YAML for config files: safe (plain data only, never objects) and strict about duplicate keys.

PyYAML keeps the last of two equal keys silently, so a config that sets ``lr`` twice trains
with whichever came second; here that is a :class:`~rnnkit.tasks.errors.ConfigError` naming
the file and both lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rnnkit.tasks.errors import ConfigError


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, first_line: int, line: int) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key, self.first_line, self.line = key, first_line, line


class StrictSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping holding the same key twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _DuplicateKey(key, seen[key], line)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, path: str | Path) -> Any:
    """Parse ``text`` (read from ``path``) as plain YAML data; a duplicate key raises
    :class:`ConfigError` ``PATH:LINE: duplicate key 'lr' (first set on line N)``; other
    YAML errors propagate as ``yaml.YAMLError``."""
    try:
        return yaml.load(text, Loader=StrictSafeLoader)  # a SafeLoader: plain data only
    except _DuplicateKey as duplicate:
        raise ConfigError(f"{path}:{duplicate.line}: duplicate key {duplicate.key!r} (first set "
                          f"on line {duplicate.first_line}); remove one of them") from None
