"""Stop signals: deferred to a step boundary during training, raised as StopSignal around it,
and a signal the process ignores stays ignored."""

from __future__ import annotations

import os
import signal

import pytest

from rnnkit.train.interrupt import StopSignal, deferred_stop_signals, stop_signals_raise


def test_the_first_signal_is_recorded_and_the_second_acts_as_before():
    with deferred_stop_signals() as request:
        os.kill(os.getpid(), signal.SIGHUP)
        assert request.signal_number == signal.SIGHUP and request.requested
        with pytest.raises(KeyboardInterrupt):  # Python's own Ctrl-C handler is back
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL


def test_sigterm_and_sighup_raise_a_stop_signal_naming_themselves():
    for number, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGHUP, "SIGHUP")):
        with pytest.raises(StopSignal) as stopped, stop_signals_raise():
            os.kill(os.getpid(), number)
        assert (stopped.value.signal_number, stopped.value.signal_name) == (number, name)
        assert str(stopped.value) == f"stopped by {name}"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_an_ignored_signal_stays_ignored():
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with stop_signals_raise(), deferred_stop_signals() as request:
            os.kill(os.getpid(), signal.SIGHUP)
            assert not request.requested
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_handlers_a_library_installs_are_replaced_by_the_process_s_own_after_the_block():
    from rnnkit.train.interrupt import signal_handlers_restored

    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    with signal_handlers_restored():  # as torch's elastic launcher and ray.init do
        signal.signal(signal.SIGINT, lambda *args: None)
        signal.signal(signal.SIGTERM, lambda *args: None)
    assert {number: signal.getsignal(number) for number in before} == before
