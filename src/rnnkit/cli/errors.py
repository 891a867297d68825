"""The one place that turns exceptions into exit codes and one-line messages.

User errors (:class:`rnnkit.errors.RnnkitError`: bad config, malformed data, an unusable run
directory; a ``ValueError`` naming an argument; a missing file; a full disk or a read-only
directory: one line naming the path) exit with 2; anything else, a ``TypeError`` or ``KeyError``
from a bug included, exits with 1; a stop signal (Ctrl-C, SIGTERM, SIGHUP) exits with 128 + its
number, the shell's convention: 130, 143, 129. ``rnnkit --debug ...`` re-raises so the full
traceback is shown.
"""

from __future__ import annotations

import functools
import signal
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from rnnkit.errors import RnnkitError
from rnnkit.train.durable import WriteError, describe_os_error, is_storage_error
from rnnkit.train.interrupt import signal_name

USER_ERROR = 2
FAILURE = 1
USER_ERRORS = (
    RnnkitError,  # ConfigError, RunDirError, DataFormatError, TaskMismatchError, ...
    # Validation across the library (sizes, options, vocabularies) raises ValueError naming
    # the argument; a TypeError or KeyError is a bug and ends with exit 1 and a traceback hint.
    ValueError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
)

F = TypeVar("F", bound=Callable[..., Any])


def signal_exit_code(signal_number: int) -> int:
    """The exit code of a command stopped by a signal: 128 + its number, as shells report a
    process the signal ended (SIGINT 130, SIGTERM 143, SIGHUP 129)."""
    return 128 + signal_number


class Settings:
    """Process-wide CLI flags set by the root callback."""

    debug = False


def _message(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())  # one line, whatever the exception held


def storage_message(error: OSError) -> str:
    """One line naming the path that could not be written or read, and why."""
    if isinstance(error, WriteError) or not error.filename:
        return _message(error)
    return f"{error.filename}: {describe_os_error(error)}"


def fail(message: str, code: int = USER_ERROR) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit to raise."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def handle_errors(command: F) -> F:
    """Decorate a command so known errors print one line and exit 2 (1 for failures)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM/SIGHUP as StopSignal
            if Settings.debug:
                raise
            number = getattr(stop, "signal_number", signal.SIGINT)
            raise fail(f"stopped by {signal_name(number)}", signal_exit_code(number)) from None
        except USER_ERRORS as error:
            if Settings.debug:
                raise
            raise fail(_message(error)) from None
        except OSError as error:  # a full disk or read-only directory is the user's to fix
            if Settings.debug:
                raise
            if is_storage_error(error):
                raise fail(storage_message(error)) from None
            raise fail(f"{type(error).__name__}: {_message(error)} "
                       "(run `rnnkit --debug ...` for the traceback)", FAILURE) from None
        except Exception as error:
            if Settings.debug:
                raise
            raise fail(f"{type(error).__name__}: {_message(error)} "
                       "(run `rnnkit --debug ...` for the traceback)", FAILURE) from None

    return wrapper  # type: ignore[return-value]
