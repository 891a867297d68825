"""Shared by the A/B benchmarks that compare two settings of one layer (``prepack_ab.py``,
``alternate_sweeps_ab.py``): the summary of paired samples and the markdown table."""

from __future__ import annotations

import statistics
from collections.abc import Callable


def paired_summary(samples: dict[str, list[float]], before: str, after: str) -> dict:
    """Medians of both settings' samples, and of the per-repetition ratios ``before / after``
    (> 1: ``after`` is faster) with their range."""
    ratios = [a / b for a, b in zip(samples[before], samples[after], strict=True)]
    return {before: statistics.median(samples[before]), after: statistics.median(samples[after]),
            "ratio": statistics.median(ratios), "low": min(ratios), "high": max(ratios)}


def print_table(cells: str, batches: str, measure: Callable[[str, int, int], dict], before: str,
                after: str, digits: int) -> None:
    """One row per ``CELL:HIDDEN`` of ``cells`` and batch of ``batches`` (comma-separated),
    from ``measure(cell, hidden, batch)`` (a :func:`paired_summary`)."""
    print(f"| cell | H | B | {before} | {after} | {before} / {after} | min-max |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for spec in cells.split(","):
        cell, hidden = spec.split(":")
        for batch in (int(b) for b in batches.split(",")):
            row = measure(cell, int(hidden), batch)
            print(f"| {cell} | {hidden} | {batch} | {row[before]:.{digits}f} "
                  f"| {row[after]:.{digits}f} | **{row['ratio']:.2f}x** "
                  f"| {row['low']:.2f}-{row['high']:.2f} |", flush=True)
