"""Keep torch's C++ warnings (written straight to file descriptor 2) off the terminal.

``torch.onnx.export`` of a packed-sequence model prints ``Warning: The shape inference of
prim::PackPadded type is missing ...`` from C++ for every graph: harmless here (rnnkit checks
every export against PyTorch with onnxruntime) and alarming to a user. Python's ``warnings``
cannot catch them, so the descriptor itself is pointed at a temporary file meanwhile; what was
written is replayed on stderr if the block fails, where it may explain the failure.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[None]:
    """Run the block with fd 2 redirected to a temporary file (replayed on an exception)."""
    try:
        original = os.dup(2)
    except OSError:  # no descriptor 2 (a detached process): nothing to keep quiet
        yield
        return
    with tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            _restore(original)
            sink.seek(0)
            sys.stderr.write(sink.read().decode("utf-8", errors="replace"))
            raise
        else:
            _restore(original)


def _restore(original: int) -> None:
    os.dup2(original, 2)
    os.close(original)
