"""The run-directory lock: one holder at a time, named when refused; dead holders' locks are
taken over; released on exit, leaving nothing behind."""

from __future__ import annotations

import errno
import fcntl
import json
import multiprocessing
import os
import signal
import socket

import pytest

from rnnkit.tasks.errors import RunLockedError
from rnnkit.tasks.run_lock import LOCK_FILE, acquire_run_lock, raise_if_locked, read_lock

GONE_PID = 2**22 + 12345  # above Linux's largest pid_max: never a live process


def _hold_lock(run_dir, connection) -> None:
    """Child process: take the lock, say so, keep it until told to finish (or 30 s)."""
    lock = acquire_run_lock(run_dir)
    connection.send("locked")
    connection.poll(30)
    lock.release()


class Holder:
    """Another process holding the lock on a run directory (forked: starts in milliseconds)."""

    def __init__(self, run_dir) -> None:
        context = multiprocessing.get_context("fork")
        self.connection, child_end = context.Pipe()
        self.process = context.Process(target=_hold_lock, args=(run_dir, child_end))
        self.process.start()
        assert self.connection.poll(20), "the child never took the lock"
        assert self.connection.recv() == "locked"
        self.pid = self.process.pid

    def finish(self) -> None:
        if self.process.is_alive():
            self.connection.send("finish")
        self.process.join(20)

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)  # no clean-up runs: the lock file stays
        self.process.join(20)


@pytest.fixture
def holder(tmp_path):
    """A :class:`Holder` of ``tmp_path/run``'s lock."""
    holding = Holder(tmp_path / "run")
    yield holding
    holding.finish()


def test_the_lock_names_this_process_and_leaves_nothing_behind(tmp_path):
    run_dir = tmp_path / "runs" / "new"
    lock = acquire_run_lock(run_dir)
    record = read_lock(run_dir)
    assert (record["pid"], record["host"]) == (os.getpid(), socket.gethostname())
    assert sorted(os.listdir(run_dir)) == [LOCK_FILE]  # no temporary name left over
    lock.release()
    lock.release()  # twice is harmless
    assert not (tmp_path / "runs").exists()  # made for the lock alone, so removed with it


def test_release_keeps_a_directory_something_was_written_to(tmp_path):
    with acquire_run_lock(tmp_path / "run") as lock:
        (tmp_path / "run" / "config.yaml").write_text("task: x\n")
    assert not lock.path.exists()
    assert os.listdir(tmp_path / "run") == ["config.yaml"]


def test_a_live_holder_in_another_process_is_refused_by_name(tmp_path, holder):
    expected = rf"run is in use: process {holder.pid} on host {socket.gethostname()} "
    with pytest.raises(RunLockedError, match=expected):
        acquire_run_lock(tmp_path / "run")
    with pytest.raises(RunLockedError, match=expected):
        raise_if_locked(tmp_path / "run")
    holder.finish()
    notices = []
    with acquire_run_lock(tmp_path / "run", notices.append):  # released: free, not stale
        assert read_lock(tmp_path / "run")["pid"] == os.getpid()
    assert notices == []


def test_a_killed_holder_releases_the_lock_and_it_is_taken_over(tmp_path, holder):
    holder.kill()
    assert read_lock(tmp_path / "run")["pid"] == holder.pid
    raise_if_locked(tmp_path / "run")  # the kernel dropped the flock: not live
    notices = []
    with acquire_run_lock(tmp_path / "run", notices.append):
        assert read_lock(tmp_path / "run")["pid"] == os.getpid()
    assert len(notices) == 1
    assert f"stale lock {tmp_path / 'run' / LOCK_FILE} (process {holder.pid} on host" in notices[0]
    assert "no longer running" in notices[0]


def test_a_stale_lock_file_of_a_gone_pid_is_taken_over(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    stale = {"pid": GONE_PID, "host": socket.gethostname(), "started": "2020-01-01T00:00:00"}
    (run_dir / LOCK_FILE).write_text(json.dumps(stale))
    notices = []
    lock = acquire_run_lock(run_dir, notices.append)
    assert read_lock(run_dir)["pid"] == os.getpid()
    assert notices == [f"taking over the stale lock {run_dir / LOCK_FILE} (process {GONE_PID} "
                       f"on host {socket.gethostname()} (since 2020-01-01T00:00:00), which is "
                       "no longer running)"]
    lock.release()
    assert os.listdir(run_dir) == []  # the directory existed before: kept


def test_without_flock_a_live_pid_on_this_host_still_holds_the_lock(tmp_path, monkeypatch):
    def no_flock(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    live = {"pid": os.getppid(), "host": socket.gethostname()}
    (run_dir / LOCK_FILE).write_text(json.dumps(live))
    with pytest.raises(RunLockedError, match=f"process {os.getppid()} on host"):
        acquire_run_lock(run_dir)
    (run_dir / LOCK_FILE).write_text(json.dumps({**live, "pid": GONE_PID}))
    notices = []
    with acquire_run_lock(run_dir, notices.append):
        assert read_lock(run_dir)["pid"] == os.getpid()
    assert len(notices) == 1 and str(GONE_PID) in notices[0]
