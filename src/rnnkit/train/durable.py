"""Durable file writes, and the one error every failed write of a run's files becomes.

Every file rnnkit writes into a run directory goes through here. Files that replace others
(checkpoints, ``summary.json``, ``config.yaml``, ``task.json``) are written with ``os.write``,
flushed with ``os.fsync``, written to a temporary sibling first and renamed over the old one,
so a reader never sees half a file. When the disk is full or the directory is read-only, the
temporary file is removed and :class:`WriteError` names the path that could not be written;
the file it was to replace is untouched. Logs appended to an open file (``metrics.csv`` rows,
TensorBoard events) turn their failures into the same :class:`WriteError` with
:func:`write_errors_named`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

# Errors a user fixes by freeing space or choosing another directory (not bugs of rnnkit).
STORAGE_ERRNOS = frozenset(
    code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EROFS, errno.EACCES,
                      errno.EPERM, errno.EFBIG) if code is not None
)
_REASONS = {
    errno.ENOSPC: "no space left on the device",
    getattr(errno, "EDQUOT", -1): "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EFBIG: "file too large for the file system",
}


class WriteError(OSError):
    """Writing ``path`` failed (full disk, read-only directory, no permission, ...).

    An ``OSError`` with the original ``errno``; ``str()`` is one line naming the path, what
    was being written and why, e.g. ``cannot write checkpoint runs/x/checkpoints/last: no
    space left on the device (ENOSPC)``.
    """

    def __init__(self, path: str | Path, cause: OSError, what: str = "file") -> None:
        super().__init__(cause.errno, cause.strerror, str(path))
        self.path = Path(path)
        self.what = what
        self.reason = describe_os_error(cause)

    def __str__(self) -> str:
        return f"cannot write {self.what} {self.path}: {self.reason}"


@contextlib.contextmanager
def write_errors_named(path: str | Path, what: str = "file") -> Iterator[None]:
    """Turn an ``OSError`` raised inside into :class:`WriteError` naming ``path`` (for writes
    that append to an open file, which :func:`replace_file` cannot serve); a ``WriteError``
    passes unchanged."""
    try:
        yield
    except WriteError:
        raise
    except OSError as error:
        raise WriteError(path, error, what) from error


def describe_os_error(error: OSError) -> str:
    """``no space left on the device (ENOSPC)``: a reason a user understands, with the code."""
    code = error.errno
    reason = _REASONS.get(code) if code is not None else None
    reason = reason or (error.strerror or str(error)).rstrip(".").lower()
    name = errno.errorcode.get(code) if code is not None else None
    return f"{reason} ({name})" if name else reason


def is_storage_error(error: BaseException) -> bool:
    """True for an ``OSError`` a user fixes on their side: full disk, read-only, permissions."""
    return isinstance(error, OSError) and error.errno in STORAGE_ERRNOS


def write_new_file(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist), write ``data``, flush it to disk; on failure the
    partial file is removed and the ``OSError`` re-raised."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _remove_quietly(path)
        raise
    os.close(fd)


def replace_file(path: str | Path, data: bytes | str, what: str = "file") -> Path:
    """Atomically replace (or create) ``path`` with ``data`` (``str`` is written as UTF-8).

    Raises :class:`WriteError` naming ``path`` when the disk is full or the directory not
    writable; ``path`` then still holds its previous content and no temporary file remains.
    """
    path = Path(path)
    blob = data.encode("utf-8") if isinstance(data, str) else data
    temporary = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    try:
        write_new_file(temporary, blob)
        os.replace(temporary, path)
    except OSError as error:
        _remove_quietly(temporary)
        raise WriteError(path, error, what) from error
    except BaseException:
        _remove_quietly(temporary)
        raise
    fsync_directory(path.parent)
    return path


def fsync_directory(path: Path) -> None:
    """Make renames inside directory ``path`` durable (a no-op where directories cannot be
    opened; the rename itself is atomic either way)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
