"""CI builds the engine: a compiler failure must fail the suite, not skip the engine tests."""

from __future__ import annotations

import os

import pytest

from rnnkit import engine


@pytest.mark.skipif(os.environ.get("RNNKIT_REQUIRE_ENGINE") != "1",
                    reason="set RNNKIT_REQUIRE_ENGINE=1 where the engine must be compiled (CI)")
def test_the_native_engine_was_built():
    assert engine.available(), f"the native engine did not build: {engine.import_error}"
    assert engine.isa() in engine.supported_isas()
