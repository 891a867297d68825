"""Cross-conformal calibration for forecasts (``data.calibration: cross``): nonconformity
scores of out-of-sample forecasts over the training period as well as the validation split.

The validation split alone is a short, late stretch of the series; when its errors are smaller
than the test period's (a mild season before a hot one), the split-conformal factor fitted on it
under-covers. Cross-conformal calibration (CV+ of Barber et al. 2021, blocked for dependent data
as in hv-block cross-validation) scores far more of the history: the windows of each training
series are cut into ``data.calibration_folds`` contiguous blocks, one model per block is trained
without it, and that model forecasts every window of its block. The factor is the conformal
quantile of those scores pooled with the main model's validation scores.

Blocks, precisely. A series of ``n`` steps has windows (``lookback + horizon`` steps each)
starting at ``0 .. n - lookback - horizon``. Fold ``k`` holds out the windows starting in
``[w0, w1)``, i.e. every value in ``[w0, w1 - 1 + lookback + horizon)``; its model trains on
the windows lying wholly in ``[0, w0)`` or in ``[w1 - 1 + lookback + horizon, n)``, so between a
held-out window start and any training window start there is a gap of at least ``lookback +
horizon`` on both sides, and no held-out value (history or future) is inside any training
window. In a panel the block edges are counted from each series' end, so series that end
together hold out the same time span (a fold's model sees no other series in that period).

The fold models share the run's scaling (fitted on the whole training part: the held-out blocks
lend them their mean and spread, no values) and its validation split for early stopping, which
lies after every block.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rnnkit.tasks import forecast_probability as fp
from rnnkit.tasks.errors import ConfigError
from rnnkit.tasks.forecast_data import Series, cut_windows
from rnnkit.tasks.monitor import resolve_monitor
from rnnkit.train import Trainer, seed_everything
from rnnkit.train.checkpoint import load_checkpoint
from rnnkit.train.distributed import world_size


def check_folds(folds: object) -> int:
    """``data.calibration_folds`` as an integer >= 2 (a ConfigError naming the key otherwise)."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigError("data.calibration_folds: expected an integer >= 2 (the training "
                          f"period's blocks, one extra model each), got {folds!r}")
    return folds


def fold_blocks(lengths: list[int], lookback: int, horizon: int,
                folds: int) -> list[list[tuple[int, int]]]:
    """Per fold, per series of ``lengths`` steps, the held-out steps ``[start, stop)``: the
    windows of the longest series split into ``folds`` contiguous blocks of near-equal size,
    each block's steps from its first window's first step to its last window's last step, with
    positions counted from each series' end (so series that end together hold out the same
    steps), clipped to the series."""
    span = lookback + horizon
    counts = [max(n - span + 1, 0) for n in lengths]
    longest = max(counts, default=0)
    if longest < folds:
        raise ConfigError(f"data.calibration_folds: {folds} blocks need at least {folds} "
                          f"training windows per series, the longest training series has "
                          f"{longest} (lookback + horizon = {span} steps, lengths {max(lengths)})")
    edges = [round(k * longest / folds) for k in range(folds + 1)]
    blocks = []
    for k in range(folds):
        row = []
        for n, count in zip(lengths, counts, strict=True):
            offset = longest - count  # the series' window 0 is the longest's window `offset`
            start = min(max(edges[k] - offset, 0), n)
            stop = min(max(edges[k + 1] - 1 + span - offset, 0), n)
            row.append((start, max(start, stop)))
        blocks.append(row)
    return blocks


def fold_split(series: list[Series], block: list[tuple[int, int]], lookback: int,
               horizon: int) -> tuple[list[Series], list[Series]]:
    """``(training segments, held-out parts)`` of one fold: each series' steps before and after
    its held-out ``[start, stop)`` (segments too short for a window are left out), and the
    held-out steps long enough for a window (every window of which is scored)."""
    span = lookback + horizon
    training, held_out = [], []
    for item, (start, stop) in zip(series, block, strict=True):
        for first, last in ((0, start), (stop, len(item.values))):
            if last - first >= span:
                training.append(_part(item, first, last))
        if stop - start >= span:
            held_out.append(_part(item, start, stop))
    return training, held_out


def _part(item: Series, first: int, last: int) -> Series:
    times = item.times[first:last] if item.times else None
    return Series(item.values[first:last], times, item.path, series_id=item.series_id)


def fold_splits(training: list[Series], lookback: int, horizon: int,
                folds: int) -> list[tuple[list[Series], list[Series]]]:
    """:func:`fold_split` of every fold that holds something out, checked before any training:
    each must leave its model at least one training window."""
    splits = []
    for index, block in enumerate(fold_blocks([len(s.values) for s in training], lookback,
                                              horizon, folds)):
        segments, held_out = fold_split(training, block, lookback, horizon)
        if not held_out:
            continue
        if not any(len(s.values) >= lookback + horizon for s in segments):
            raise ConfigError(f"data.calibration_folds: with {folds} blocks, fold {index + 1} "
                              "leaves no training window outside its block and the gaps "
                              f"(lookback + horizon = {lookback + horizon} steps each side); "
                              "use fewer folds or a longer training split")
        splits.append((segments, held_out))
    return splits


def cross_scores(task, training: list[Series], folds: int,
                 notice: Callable[[str], None] | None = None) -> tuple[np.ndarray, float]:
    """The nonconformity scores ``(windows, horizon, targets)`` of every held-out window of
    every fold, each forecast by the model trained without its block, and the CPU seconds
    the fold models took (training and forecasting). ``notice`` hears of each fold as it
    starts and ends: K trainings after the run's own are otherwise a long silence."""
    notice = notice or (lambda _: None)
    if world_size() > 1:
        raise ConfigError("data.calibration: cross trains its fold models in one process; run "
                          "it without data parallelism, or use data.calibration: conformal")
    data = task.config.data
    lookback, horizon = data.lookback, data.horizon
    start, parts = time.process_time(), []
    with tempfile.TemporaryDirectory(prefix="rnnkit-cross-") as scratch:
        splits = fold_splits(training, lookback, horizon, folds)
        for index, (segments, held_out) in enumerate(splits):
            began = time.monotonic()
            notice(f"cross-conformal calibration: training fold model {index + 1} of "
                   f"{len(splits)} without its block")
            model = _train_fold(task, segments, index, Path(scratch) / f"fold_{index}")
            windows = cut_windows(held_out, task.roles, lookback, horizon)
            # each fold its own draws, so window k of every fold does not share them
            seed = fp.derived_seed(task.config.train.seed, f"fold {index}")
            forecast = task.forecast(model, windows, calibrated=False, seed=seed)
            parts.append(fp.conformal_scores(forecast, windows.future))
            notice(f"cross-conformal calibration: fold {index + 1} of {len(splits)} scored "
                   f"{len(windows.future)} held-out windows in "
                   f"{time.monotonic() - began:.1f} s")
    return np.concatenate(parts), time.process_time() - start


def _train_fold(task, segments: list[Series], index: int, directory: Path):
    """A model trained with the run's config on ``segments``, early-stopped on the run's
    validation split; its best checkpoint loaded."""
    train = task.config.train
    seed = train.seed + 1 + index  # fold models are not copies of one initialisation
    seed_everything(seed)
    model = task.build_model()
    monitor, mode = resolve_monitor(task, train.monitor, train.monitor_mode)
    valid = task.calibration_part

    def evaluate(m) -> dict[str, float]:
        return {f"valid_{k}": v for k, v in task.evaluate(m, valid).items()}

    trainer = Trainer(model, task.train_source(segments, seed), train.trainer_config(),
                      loss_fn=task.loss_fn(), evaluate=evaluate, monitor=monitor,
                      monitor_mode=mode, run_dir=directory, notice=lambda _: None)
    fit = trainer.fit()
    checkpoint = fit.best_checkpoint or fit.last_checkpoint
    if checkpoint is not None:
        load_checkpoint(checkpoint, model)
    return model.eval()
