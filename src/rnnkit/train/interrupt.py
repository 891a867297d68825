"""Turn the first Ctrl-C into a request to stop at the next step boundary."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class InterruptRequest:
    """Set by the SIGINT handler; the training loop polls ``requested`` after each step."""

    def __init__(self) -> None:
        self.requested = False


@contextlib.contextmanager
def deferred_sigint() -> Iterator[InterruptRequest]:
    """Within the block, the first Ctrl-C only sets ``request.requested``; a second one raises
    ``KeyboardInterrupt`` at once as usual.

    Deferring lets the loop finish the current parameter update and save a consistent
    checkpoint instead of being cut off halfway through ``optimizer.step()``. Signals reach only
    the main thread, so elsewhere (and where SIGINT is ignored) nothing is installed.
    """
    request = InterruptRequest()
    previous = signal.getsignal(signal.SIGINT)
    installable = threading.current_thread() is threading.main_thread() and callable(previous)
    if not installable:
        yield request
        return

    def handle(signum: int, frame: object) -> None:
        request.requested = True
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, handle)
    try:
        yield request
    finally:
        signal.signal(signal.SIGINT, previous)
