"""Continue a series' own time column past its last row, so forecasts carry real dates.

Handles what series files hold: integers (years, indices), ISO dates (daily, weekly),
year-months (``1960-01``) and ISO date-times, each with a constant step. Anything else —
irregular steps, month ends, free-form labels — gives ``None`` and callers fall back to step
numbers: a guessed calendar would be worse than none.
"""

from __future__ import annotations

import itertools
import re
from datetime import date, datetime, timedelta

_YEAR_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def continue_times(times, steps: int) -> list[str] | None:
    """The ``steps`` time labels after ``times`` (a sequence of labels, in its own format),
    or ``None``."""
    if not times or len(times) < 2 or steps < 1:
        return None
    for reader in (_integers, _year_months, _dates, _date_times):
        labels = reader([str(t).strip() for t in times], steps)
        if labels is not None:
            return labels
    return None


def _constant_step(values: list) -> object | None:
    steps = {b - a for a, b in itertools.pairwise(values)}
    if len(steps) != 1:
        return None
    step = steps.pop()
    return step if step else None


def _integers(times: list[str], steps: int) -> list[str] | None:
    if not all(re.fullmatch(r"-?\d+", t) for t in times):
        return None
    values = [int(t) for t in times]
    step = _constant_step(values)
    return None if step is None else [str(values[-1] + step * k) for k in range(1, steps + 1)]


def _year_months(times: list[str], steps: int) -> list[str] | None:
    matches = [_YEAR_MONTH.match(t) for t in times]
    if not all(matches):
        return None
    months = [int(m.group(1)) * 12 + int(m.group(2)) - 1 for m in matches]  # type: ignore[union-attr]
    step = _constant_step(months)
    if step is None:
        return None
    future = (months[-1] + step * k for k in range(1, steps + 1))
    return [f"{month // 12:04d}-{month % 12 + 1:02d}" for month in future]


def _dates(times: list[str], steps: int) -> list[str] | None:
    try:
        values = [date.fromisoformat(t) for t in times]
    except ValueError:
        return None
    if not all(len(t) == 10 for t in times):  # only plain YYYY-MM-DD is re-written as such
        return None
    step = _constant_step(values)
    if not isinstance(step, timedelta):
        return None
    return [(values[-1] + step * k).isoformat() for k in range(1, steps + 1)]


def _date_times(times: list[str], steps: int) -> list[str] | None:
    try:
        values = [datetime.fromisoformat(t) for t in times]
    except ValueError:
        return None
    step = _constant_step(values)
    if not isinstance(step, timedelta):
        return None
    separator = "T" if "T" in times[-1] else " "
    seconds = len(times[-1].split(":")) > 2
    spec = "seconds" if seconds else "minutes"
    return [(values[-1] + step * k).isoformat(sep=separator, timespec=spec)
            for k in range(1, steps + 1)]
