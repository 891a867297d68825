"""Turn the first Ctrl-C (SIGINT), SIGTERM or SIGHUP into a request to stop at the next step
boundary, and name the signal in the exception that ends training."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

# SIGHUP does not exist on Windows; the others do.
STOP_SIGNALS: tuple[int, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def signal_name(signal_number: int) -> str:
    """``"SIGTERM"`` for 15, ``"signal 99"`` for a number Python has no name for."""
    try:
        return signal.Signals(signal_number).name
    except ValueError:
        return f"signal {signal_number}"


class StopSignal(KeyboardInterrupt):
    """A stop signal acted on: SIGINT, SIGTERM or SIGHUP (``signal_number``).

    A ``KeyboardInterrupt`` so that code stopping on Ctrl-C stops on the other two as well.
    """

    def __init__(self, signal_number: int, message: str | None = None) -> None:
        super().__init__(message or f"stopped by {signal_name(signal_number)}")
        self.signal_number = signal_number

    @property
    def signal_name(self) -> str:
        return signal_name(self.signal_number)


class TrainingInterrupted(StopSignal):
    """Training stopped on a signal. ``step`` is the last completed step; ``checkpoint`` is the
    ``last`` checkpoint saved at it, or ``None`` when nothing was saved (no ``run_dir``, another
    process's rank, or a second signal in the middle of a step, where the model may be
    half-updated and the previous ``last`` is kept)."""

    def __init__(self, signal_number: int, step: int, checkpoint: Path | None) -> None:
        saved = f"saved {checkpoint}" if checkpoint is not None else "no checkpoint saved"
        super().__init__(signal_number,
                         f"stopped by {signal_name(signal_number)} after step {step}; {saved}")
        self.step = step
        self.checkpoint = checkpoint


class AgreedInterrupt(KeyboardInterrupt):
    """A stop signal acted on at a step boundary: every data-parallel rank raises it at the
    same step, so saving ``last`` may still use collectives (a second, immediate one may not)."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal_number)
        self.signal_number = signal_number


def interrupting_signal(error: KeyboardInterrupt) -> int:
    """The signal behind ``error``: the one it names, else Ctrl-C's SIGINT."""
    return getattr(error, "signal_number", signal.SIGINT)


class InterruptRequest:
    """Set by the signal handler; the training loop polls ``requested`` after each step."""

    def __init__(self) -> None:
        self.signal_number: int | None = None

    @property
    def requested(self) -> bool:
        return self.signal_number is not None


@contextlib.contextmanager
def _handled(numbers: tuple[int, ...], handler: Callable[[int], None],
             once: bool = False) -> Iterator[None]:
    """Within the block ``handler(signal_number)`` receives the signals ``numbers``; with
    ``once``, only the first: the previous handlers are back before it runs.

    An ignored signal stays ignored (nohup ignores SIGHUP, a background job SIGINT), as does
    one whose handler was installed outside Python (it could not be put back). Signals reach
    only the main thread, so elsewhere nothing is installed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.getsignal(number) for number in numbers}
    ours = [n for n, old in previous.items() if old is not None and old != signal.SIG_IGN]

    def restore() -> None:
        for number in ours:
            signal.signal(number, previous[number])

    def handle(signum: int, frame: object) -> None:
        if once:
            restore()
        handler(signum)

    for number in ours:
        signal.signal(number, handle)
    try:
        yield
    finally:
        restore()


@contextlib.contextmanager
def deferred_stop_signals() -> Iterator[InterruptRequest]:
    """Within the block, the first SIGINT, SIGTERM or SIGHUP only records its number in
    ``request.signal_number``; a second one acts at once as it would without this block
    (Ctrl-C raises ``KeyboardInterrupt``, SIGTERM's default ends the process).

    Deferring lets the loop finish the current parameter update and save a consistent
    checkpoint instead of being cut off halfway through ``optimizer.step()``.
    """
    request = InterruptRequest()

    def record(signal_number: int) -> None:
        request.signal_number = signal_number

    with _handled(STOP_SIGNALS, record, once=True):
        yield request


@contextlib.contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`StopSignal` as Ctrl-C raises
    ``KeyboardInterrupt``, so ``finally`` blocks run (a lock file is removed) instead of the
    process ending on the spot."""

    def raise_stop(signal_number: int) -> None:
        raise StopSignal(signal_number)

    with _handled(tuple(n for n in STOP_SIGNALS if n != signal.SIGINT), raise_stop):
        yield


@contextlib.contextmanager
def signal_handlers_restored() -> Iterator[None]:
    """Put the process's stop-signal handlers back after the block: libraries run inside it
    (torch's elastic launcher, ``ray.init``) install their own and leave them behind, which
    would break rnnkit's stop signals, or a notebook's Ctrl-C, later in the process."""
    saved = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        if threading.current_thread() is threading.main_thread():
            for number, handler in saved.items():
                if handler is not None:  # None: installed outside Python, not restorable
                    signal.signal(number, handler)

