"""Fixtures shared by the engine tests."""

from __future__ import annotations

import pytest

from rnnkit import engine

ISAS = engine.supported_isas() if engine.available() else []


@pytest.fixture(params=ISAS)
def isa(request):
    """Run a test once per instruction set this CPU supports (generic path included)."""
    previous = engine.isa()
    engine.set_isa(request.param)
    yield request.param
    engine.set_isa(previous)
