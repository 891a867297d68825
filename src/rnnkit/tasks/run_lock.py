"""One live ``rnnkit train`` per run directory: a lock file inside it, held with ``flock``.

``DIR/.rnnkit-lock`` holds JSON ``{"pid", "host", "started"}`` naming the holder. The file
appears at its path already ``flock``-ed and filled in (written under a temporary name, then
hard-linked into place, which like ``O_CREAT | O_EXCL`` fails when the path exists), and the
holder keeps that descriptor open for the whole run. The kernel drops an ``flock`` when its
holder dies, however it dies, so a lock file whose ``flock`` can be taken is stale: its process
is gone, and the file is taken over with a one-line notice. Where the file system refuses
``flock``, a holder on this host counts as alive while its PID exists.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rnnkit.tasks.errors import RunLockedError

LOCK_FILE = ".rnnkit-lock"
_ATTEMPTS = 5  # a lock released while we look at it makes us look again, a few times at most


def _notice_to_stderr(message: str) -> None:
    print(f"rnnkit: {message}", file=sys.stderr, flush=True)


class RunLock:
    """A held lock on ``run_dir``; :meth:`release` (or leaving a ``with`` block) gives it up."""

    def __init__(self, run_dir: Path, fd: int, created: list[Path]) -> None:
        self.run_dir = run_dir
        self.path = run_dir / LOCK_FILE
        self._fd: int | None = fd
        self._created = created  # directories made for the lock, innermost first

    def release(self) -> None:
        """Remove the lock file and drop the ``flock``; directories made only to hold the lock
        go too when nothing else was written into them. Safe to call twice."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            if _same_file(self._fd, self.path):  # never remove a successor's lock
                self.path.unlink()
        os.close(self._fd)  # closing drops the flock
        self._fd = None
        for directory in self._created:
            try:
                directory.rmdir()
            except OSError:  # not empty: the run wrote something, or someone else did
                break

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def acquire_run_lock(run_dir: str | Path,
                     notice: Callable[[str], None] = _notice_to_stderr) -> RunLock:
    """Lock ``run_dir`` (created if missing) for this process, or raise
    :class:`~rnnkit.tasks.errors.RunLockedError` naming the live holder's PID and host.
    A stale lock is taken over and ``notice`` is told so in one line."""
    run_dir = Path(run_dir)
    created = _make_dirs(run_dir)
    path = run_dir / LOCK_FILE
    for _ in range(_ATTEMPTS):
        fd = _create_locked(path)
        if fd is not None:
            return RunLock(run_dir, fd, created)
        fd = _take_over_stale(path, notice)
        if fd is not None:
            return RunLock(run_dir, fd, created)
        run_dir.mkdir(parents=True, exist_ok=True)  # a releasing holder may have removed it
    raise RunLockedError(f"{run_dir}: could not take {LOCK_FILE} after {_ATTEMPTS} attempts; "
                         "other processes keep taking and releasing it")


def raise_if_locked(run_dir: str | Path) -> None:
    """Raise :class:`~rnnkit.tasks.errors.RunLockedError` when a live process holds
    ``run_dir``'s lock. Only reads: a stale lock file is left for :func:`acquire_run_lock`."""
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        holder = _parse(os.pread(fd, 4096, 0))
        if not _try_flock(fd, holder, fcntl.LOCK_SH):  # shared: conflicts with the holder's
            raise RunLockedError(_locked_message(path, holder))
    finally:
        os.close(fd)  # drops our shared flock, if taken


def read_lock(run_dir: str | Path) -> dict[str, Any] | None:
    """The holder named in ``run_dir``'s lock file, or ``None`` when there is none (or it is
    unreadable). Says nothing about whether that holder is alive."""
    try:
        info = json.loads((Path(run_dir) / LOCK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _make_dirs(run_dir: Path) -> list[Path]:
    """Create ``run_dir`` and missing parents; return those created, innermost first."""
    missing = []
    for directory in (run_dir, *run_dir.parents):
        if directory.exists():
            break
        missing.append(directory)
    run_dir.mkdir(parents=True, exist_ok=True)
    return missing


def _holder_record() -> bytes:
    record = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    return (json.dumps(record) + "\n").encode("utf-8")


def _create_locked(path: Path) -> int | None:
    """A descriptor of a new lock file at ``path``, flock-ed and filled in; ``None`` when
    ``path`` exists. Written under a private name first so no one sees it empty or unlocked."""
    private = path.with_name(f"{path.name}.{os.getpid()}.{time.monotonic_ns()}")
    fd = os.open(private, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    try:
        _flock(fd)
        os.write(fd, _holder_record())
        os.fsync(fd)
        try:
            os.link(private, path)  # atomic, and fails when path exists: O_EXCL for a full file
        except FileExistsError:
            os.close(fd)
            return None
        return fd
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise
    finally:
        with contextlib.suppress(OSError):
            private.unlink()


def _take_over_stale(path: Path, notice: Callable[[str], None]) -> int | None:
    """A descriptor of the existing lock file, now ours, if its holder is gone; ``None`` when
    the file vanished meanwhile (try again). Raises ``RunLockedError`` for a live holder."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        holder = _parse(os.pread(fd, 4096, 0))
        if not _try_flock(fd, holder):
            raise RunLockedError(_locked_message(path, holder))
        if not _same_file(fd, path):  # released and replaced between open and flock
            os.close(fd)
            return None
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder_record(), 0)
        os.fsync(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise
    notice(f"taking over the stale lock {path} ({_describe(holder)}, which is no longer "
           "running)")
    return fd


def _flock(fd: int) -> None:
    with contextlib.suppress(OSError):  # no flock here: the PID check stands in (see module)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _try_flock(fd: int, holder: dict[str, Any], mode: int = fcntl.LOCK_EX) -> bool:
    """True when the lock is ours now: its ``flock`` was free (the holder died), or, where
    ``flock`` is unsupported, the holder was on this host and its PID is gone."""
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as error:
        if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            raise
    same_host = holder.get("host") == socket.gethostname()
    return same_host and not _pid_alive(holder.get("pid"))


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        holder = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "a process that left no readable record"
    return (f"process {holder.get('pid', '?')} on host {holder.get('host', '?')} "
            f"(since {holder.get('started', '?')})")


def _locked_message(path: Path, holder: dict[str, Any]) -> str:
    return (f"{path.parent} is in use: {_describe(holder)} is training into it and holds "
            f"{path.name}; wait for it to finish or stop it, or choose another --out")
