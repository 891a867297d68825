"""Errors of the task layer. The CLI turns these (and ``ValueError``/``TypeError``) into exit
code 2 with a one-line message; Python users catch them like any other exception."""

from __future__ import annotations


class ConfigError(ValueError):
    """A run configuration that cannot be used: unknown key, wrong type, bad value."""


class RunDirError(ValueError):
    """A directory that is not an rnnkit run, or a run directory that cannot be used as asked
    (already exists without ``--resume``/``--overwrite``, nothing to resume)."""


class TaskMismatchError(ValueError):
    """An operation the run's task does not support (e.g. ``generate`` on a classifier)."""


class RunLockedError(RunDirError):
    """A run directory another live process is training into (its lock names PID and host)."""
