"""The base of every error a user can fix by changing what they gave (a config, a data file, a
run directory, an option), and the config errors shared by every layer.

The CLI prints an :class:`RnnkitError` as one line and exits with 2; any other exception is a
failure (exit 1, traceback with ``--debug``), so a ``TypeError`` or ``KeyError`` from a bug is
never mistaken for a user's mistake. Each subclass also derives from the built-in exception it
has always been (``ValueError``, ``TypeError``, ``RuntimeError``), so ``except ValueError``
around the Python API keeps working.

This module imports nothing from rnnkit: every layer may raise these.
"""

from __future__ import annotations


class RnnkitError(Exception):
    """An error in what the user gave, worded so that they can fix it."""


class ConfigError(RnnkitError, ValueError):
    """A run configuration that cannot be used: unknown key, wrong type, bad value."""


class FieldError(ConfigError):
    """A config field whose value is refused.

    It carries the ``section`` and the ``field`` apart from the ``detail`` (``expected ..., got
    ...``) so that a caller holding the config under another name can say it in its own terms:
    ``TrainConfig.lr`` is ``train.lr`` in a run config (:meth:`in_section`).
    """

    def __init__(self, section: str, field: str, detail: str) -> None:
        super().__init__(section, field, detail)  # all three in args: pickles across processes
        self.section, self.field, self.detail = section, field, detail

    def __str__(self) -> str:
        return f"{self.section}.{self.field}: {self.detail}"

    def in_section(self, section: str) -> FieldError:
        """The same error naming the field as ``section.field``."""
        return type(self)(section, self.field, self.detail)


class FieldTypeError(FieldError, TypeError):
    """A config field given a value of the wrong type (also a ``TypeError``, as it was)."""
