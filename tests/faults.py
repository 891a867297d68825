"""Fault injection at the write layer: make ``os.open`` (creating), ``os.write``, ``os.fsync``
and ``os.replace`` fail with a chosen errno for paths matching a pattern, as a full disk or a
read-only directory would, while every other file of the process works normally."""

from __future__ import annotations

import builtins
import errno
import fnmatch
import os
from pathlib import Path

import pytest

OPERATIONS = ("open", "write", "fsync", "replace")


class WriteFaults:
    """Armed by :func:`inject_write_faults`; ``hits`` counts the failures raised."""

    def __init__(self, pattern: str, code: int, operations: tuple[str, ...]) -> None:
        self.pattern, self.code, self.operations = pattern, code, operations
        self.hits = 0
        self.armed = True

    def matches(self, path: str | os.PathLike | None) -> bool:
        return (self.armed and path is not None
                and fnmatch.fnmatch(os.path.abspath(os.fspath(path)), self.pattern))

    def fail(self, operation: str, path: str | os.PathLike) -> None:
        self.hits += 1
        raise OSError(self.code, os.strerror(self.code), os.fspath(path))


def _fd_path(fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def inject_write_faults(monkeypatch: pytest.MonkeyPatch, pattern: str | Path,
                        code: int = errno.ENOSPC,
                        operations: tuple[str, ...] = OPERATIONS) -> WriteFaults:
    """Fail the chosen ``operations`` on absolute paths matching the glob ``pattern``."""
    faults = WriteFaults(str(pattern), code, operations)
    real_open, real_write, real_fsync = os.open, os.write, os.fsync
    real_replace, real_builtin_open = os.replace, builtins.open

    def fake_open(path, flags, *args, **kwargs):
        if "open" in operations and flags & os.O_CREAT and faults.matches(path):
            faults.fail("open", path)
        return real_open(path, flags, *args, **kwargs)

    def fake_write(fd, data):
        if "write" in operations and faults.matches(_fd_path(fd)):
            faults.fail("write", _fd_path(fd))
        return real_write(fd, data)

    def fake_fsync(fd):
        if "fsync" in operations and faults.matches(_fd_path(fd)):
            faults.fail("fsync", _fd_path(fd))
        return real_fsync(fd)

    def fake_replace(source, destination, *args, **kwargs):
        if "replace" in operations and faults.matches(destination):
            faults.fail("replace", destination)
        return real_replace(source, destination, *args, **kwargs)

    def fake_builtin_open(file, mode="r", *args, **kwargs):
        # Python file objects write through their own buffer, not os.write: fail their writes.
        writing = any(flag in mode for flag in "wax+")
        if "write" in operations and writing and not isinstance(file, int) and faults.matches(
                file):
            return _FailingFile(real_builtin_open(file, mode, *args, **kwargs), faults, file)
        return real_builtin_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "write", fake_write)
    monkeypatch.setattr(os, "fsync", fake_fsync)
    monkeypatch.setattr(os, "replace", fake_replace)
    monkeypatch.setattr(builtins, "open", fake_builtin_open)
    return faults


class _FailingFile:
    """A text or binary file whose writes and flushes fail (as on a full disk)."""

    def __init__(self, handle, faults: WriteFaults, path) -> None:
        self._handle, self._faults, self._path = handle, faults, path

    def write(self, data):
        if self._faults.armed:
            self._faults.fail("write", self._path)
        return self._handle.write(data)

    def flush(self):
        if self._faults.armed:
            self._faults.fail("write", self._path)
        return self._handle.flush()

    def close(self):
        return self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getattr__(self, name):
        return getattr(self._handle, name)
