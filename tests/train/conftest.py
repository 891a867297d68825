"""Training tests send themselves stop signals, so each starts from Python's own dispositions."""

from __future__ import annotations

import signal

import pytest

_PYTHON_DEFAULTS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL,
                    signal.SIGHUP: signal.SIG_DFL}


@pytest.fixture(autouse=True)
def python_default_stop_signals():
    """A suite started under ``nohup`` or as a background job inherits SIGHUP/SIGINT ignored,
    and rnnkit rightly leaves an ignored signal ignored (test_interrupt checks that); the
    tests here expect an interactive Python's dispositions. The inherited ones come back after."""
    inherited = {number: signal.signal(number, handler)
                 for number, handler in _PYTHON_DEFAULTS.items()}
    yield
    for number, handler in inherited.items():
        signal.signal(number, handler)
