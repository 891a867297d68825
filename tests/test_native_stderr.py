"""torch's C++ warnings during ONNX export stay off stderr; on failure they are replayed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rnnkit.native_stderr import native_stderr_captured

SCRIPT = """
import os
from rnnkit.native_stderr import native_stderr_captured
with native_stderr_captured():
    os.write(2, b"[W] prim::PackPadded\\n")
os.write(2, b"after\\n")
try:
    with native_stderr_captured():
        os.write(2, b"why it failed\\n")
        raise RuntimeError("boom")
except RuntimeError:
    pass
"""


def test_descriptor_two_is_quiet_inside_and_replayed_on_failure():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stderr
    assert done.stderr == "after\nwhy it failed\n"


def test_an_exception_passes_through():
    with pytest.raises(ValueError, match="kept"), native_stderr_captured():
        raise ValueError("kept")
