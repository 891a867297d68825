"""Errors of the task layer. All are :class:`rnnkit.errors.RnnkitError` (the CLI prints them as
one line and exits with 2) and ``ValueError`` (as they have always been for Python users)."""

from __future__ import annotations

from rnnkit.errors import ConfigError, RnnkitError

__all__ = ["ConfigError", "RunDirError", "RunLockedError", "TaskMismatchError"]


class RunDirError(RnnkitError, ValueError):
    """A directory that is not an rnnkit run, or a run directory that cannot be used as asked
    (already exists without ``--resume``/``--overwrite``, nothing to resume)."""


class TaskMismatchError(RnnkitError, ValueError):
    """An operation the run's task does not support (e.g. ``generate`` on a classifier)."""


class RunLockedError(RunDirError):
    """A run directory another live process is training into (its lock names PID and host)."""
