"""The table of known datasets: what each is, how to read it, and how to rebuild it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from . import (
    bible_en_es,
    brown_pos,
    dates,
    elecdaily,
    names,
    rotten_tomatoes,
    shakespeare,
    timeseries,
    toys,
    wnut16,
)
from .fetch import PinnedPackage

Task = Literal["language_model", "classification", "tagging", "seq2seq", "forecasting",
               "conditional_generation"]
Format = Literal["text", "csv", "word_tag", "conll", "pairs", "series"]
# (fetched package files, output directory, full?) -> {file name: count}
Builder = Callable[[tuple[Path, ...], Path, bool], dict[str, int]]


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset: its tasks, file format and reader options, size, licence and provenance.

    ``files`` maps split (``train``/``valid``/``test``) to file name. ``sample_size`` and
    ``full_size`` describe the bundled sample and the full set :func:`prepare` builds.
    ``packages`` are the pinned registry packages it is built from (none for generated data).
    """

    name: str
    tasks: tuple[Task, ...]
    format: Format
    description: str
    licence: str
    sample_size: str
    full_size: str
    files: dict[str, str]
    build: Builder
    packages: tuple[PinnedPackage, ...] = ()
    cut: dict[str, str] | None = None
    text_column: str | None = None
    label_column: str | None = None
    group_column: str | None = None
    time_column: str | None = None
    value_columns: tuple[str, ...] | None = None
    generated: bool = False

    @property
    def task(self) -> Task:
        """The main task."""
        return self.tasks[0]


def _packaged(module) -> Builder:
    """Adapt a one-package ``module.build(archive, out_dir, full)``."""
    return lambda archives, out_dir, full: module.build(archives[0], out_dir, full)


def _series(name: str) -> Builder:
    return lambda archives, out_dir, full: timeseries.build_series(name, archives[0], out_dir)


def _generated(function: Callable[[Path], dict[str, int]]) -> Builder:
    return lambda archives, out_dir, full: function(out_dir)


_SPLITS3 = ("train", "valid", "test")

DATASETS: dict[str, DatasetInfo] = {info.name: info for info in (
    DatasetInfo(
        "shakespeare", ("language_model",), "text",
        "Shakespeare's plays, modern spelling; a held-out play for validation (the full "
        "set also holds one out for test)",
        shakespeare.LICENCE, "8 plays train (1.04 M chars), 1 play valid",
        "40 works train (4.82 M chars), 1 play valid, 1 play test",
        {"train": "train.txt", "valid": "valid.txt", "test": "test.txt"},
        _packaged(shakespeare), (shakespeare.PACKAGE,), shakespeare.CUT),
    DatasetInfo(
        "rotten_tomatoes", ("classification",), "csv",
        "Rotten Tomatoes review snippets labelled fresh/rotten, split by movie",
        rotten_tomatoes.LICENCE, "3,014 snippets", "12,808 snippets, 508 movies",
        {s: f"{s}.csv" for s in _SPLITS3}, _packaged(rotten_tomatoes), (rotten_tomatoes.PACKAGE,),
        rotten_tomatoes.CUT, text_column="text", label_column="label", group_column="movie"),
    DatasetInfo(
        "brown_pos", ("tagging",), "word_tag",
        "Brown corpus sentences with the 12 universal POS tags, split by document",
        brown_pos.LICENCE, "3,080 sentences", "57,340 sentences, 1.16 M tokens",
        {s: f"{s}.txt" for s in _SPLITS3}, _packaged(brown_pos), (brown_pos.PACKAGE,),
        brown_pos.CUT),
    DatasetInfo(
        "wnut16", ("tagging",), "conll",
        "English tweets with named entities (WNUT-16 training set, BIO tags, 10 types), "
        "split at random", wnut16.LICENCE, "599 tweets", "2,394 tweets, 46,469 tokens",
        {s: f"{s}.conll" for s in _SPLITS3}, _packaged(wnut16), (wnut16.PACKAGE,), wnut16.CUT),
    DatasetInfo(
        "dates", ("seq2seq",), "pairs",
        "Dates written out in 8 locales (CLDR via babel) -> ISO 8601",
        dates.LICENCE, "5,000/500/500 pairs", "50,000/5,000/5,000 pairs",
        {s: f"{s}.tsv" for s in _SPLITS3}, dates.build, (dates.PACKAGE,), dates.CUT),
    DatasetInfo(
        "bible_en_es", ("seq2seq",), "pairs",
        "English (KJV) -> Spanish (Reina-Valera 1909) Bible verses of at most 100 characters, "
        "split by chapter", bible_en_es.LICENCE, "2,503 pairs", "10,217 pairs",
        {s: f"{s}.tsv" for s in _SPLITS3}, bible_en_es.build, bible_en_es.PACKAGES,
        bible_en_es.CUT),
    DatasetInfo(
        "names", ("classification", "conditional_generation"), "csv",
        "Surnames labelled with one of 15 languages/origins",
        names.LICENCE, "3,534 names (at most 300 per class)", "7,731 names",
        {s: f"{s}.csv" for s in _SPLITS3}, _packaged(names), (names.PACKAGE,), names.CUT,
        text_column="name", label_column="label"),
    DatasetInfo(
        "air_passengers", ("forecasting",), "series",
        "Monthly international airline passengers 1949-1960 (Box & Jenkins)",
        timeseries.LICENCE, "144 months (full series)", "144 months",
        {s: f"{s}.csv" for s in _SPLITS3}, _series("air_passengers"), (timeseries.PACKAGE,),
        {k: timeseries.cut_description("air_passengers") for k in ("sample", "full")},
        time_column="time", value_columns=("value",)),
    DatasetInfo(
        "sunspots", ("forecasting",), "series",
        "Monthly mean sunspot numbers 1749-2013",
        timeseries.LICENCE, "3,177 months (full series)", "3,177 months",
        {s: f"{s}.csv" for s in _SPLITS3}, _series("sunspots"), (timeseries.PACKAGE,),
        {k: timeseries.cut_description("sunspots") for k in ("sample", "full")},
        time_column="time", value_columns=("value",)),
    DatasetInfo(
        "elecdaily", ("forecasting",), "series",
        "Daily electricity demand in Victoria, Australia, 2014, with a working-day flag and "
        "the day's maximum temperature (covariates known in advance)",
        elecdaily.LICENCE, "365 days (full series)", "365 days",
        {s: f"{s}.csv" for s in _SPLITS3}, _packaged(elecdaily), (elecdaily.PACKAGE,),
        {k: elecdaily.cut_description() for k in ("sample", "full")},
        time_column="time", value_columns=("demand",)),
    DatasetInfo(
        "hello", ("language_model",), "text",
        "The next-character toy: 'hello' repeated", "generated (no licence needed)",
        "1,200 chars", "1,200 chars", {"train": "train.txt", "valid": "valid.txt"},
        _generated(toys.build_hello), generated=True),
    DatasetInfo(
        "sine", ("forecasting",), "series",
        "A noisy sine wave (period 50 steps, noise std 0.05, seed 0)",
        "generated (no licence needed)", "800/100/100 steps", "800/100/100 steps",
        {s: f"{s}.csv" for s in _SPLITS3}, _generated(toys.build_sine), generated=True,
        time_column="t", value_columns=("value",)),
)}
