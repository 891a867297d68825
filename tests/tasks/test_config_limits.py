"""Config files that would make rnnkit hang or fail without naming the file."""

from __future__ import annotations

import pytest

from rnnkit.tasks.config import apply_overrides, read_config_file
from rnnkit.tasks.errors import ConfigError

BOMB = ["&a0 [x, x, x, x, x, x, x, x, x, x]"] + [
    f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]


def test_nested_yaml_aliases_are_refused_before_anything_walks_them(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: [" + ", ".join(BOMB) + "]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"^{path}: the config expands to more than 100000 "
                                          r"values \(nested YAML aliases\?\)"):
        read_config_file(path)


def test_an_alias_bomb_in_set_is_refused():
    with pytest.raises(ConfigError, match=r"^--set model.cell: the config expands to more"):
        apply_overrides({}, ["model.cell=[" + ", ".join(BOMB) + "]"])


def test_a_config_that_is_not_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"task: language_model\ndata: {train: caf\xe9.txt}\n")
    with pytest.raises(ConfigError, match=f"^{path}:2: not valid UTF-8 \\(byte 0xe9 at offset "
                                          "38\\); save the config as UTF-8$"):
        read_config_file(path)
