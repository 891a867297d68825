"""Replay the fuzz regression corpus: every seed and every input that once crashed a target
must load or raise the documented, located error (``fuzz/targets.py``)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fuzz.targets import TARGETS

CORPUS = Path(__file__).resolve().parents[2] / "fuzz" / "corpus"
CASES = sorted((target.name, path) for target in CORPUS.iterdir() if target.is_dir()
               for path in target.iterdir() if path.is_file())


def test_every_target_has_a_corpus():
    assert {name for name, _ in CASES} == set(TARGETS)


@pytest.mark.parametrize(("target", "path"), CASES, ids=[f"{t}/{p.name}" for t, p in CASES])
def test_corpus_input(target, path, caplog):
    caplog.set_level(logging.CRITICAL)
    TARGETS[target](path.read_bytes())
