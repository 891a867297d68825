"""Built-in callbacks: metrics to CSV and TensorBoard, and a progress bar."""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import math
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from rnnkit.train.callbacks import Callback, StepRecord
from rnnkit.train.durable import replace_file, write_errors_named

if TYPE_CHECKING:
    from rnnkit.train.trainer import Trainer

TRAIN_COLUMNS = ("step", "epoch", "lr", "loss", "grad_norm", "elapsed_s", "epoch_time_s")


def _record_row(record: StepRecord, elapsed: float) -> dict[str, Any]:
    return {
        "step": record.step,
        "epoch": record.epoch,
        "lr": record.lr,
        "loss": record.loss,
        "grad_norm": record.grad_norm,
        "elapsed_s": round(elapsed, 3),
    }


def _eval_column(name: str) -> str:
    return f"eval_{name}" if name in TRAIN_COLUMNS else name


class CSVLogger(Callback):
    """Writes one row per ``log_every`` steps: step, epoch, lr, loss, grad_norm, ``elapsed_s``
    (wall-clock seconds of training so far, resumed parts included), ``epoch_time_s`` (on the
    row of an epoch's last step: that epoch's wall-clock seconds; empty elsewhere), then one
    column per evaluation metric (filled on rows where an evaluation ran, empty elsewhere; a
    metric named like a training column gets an ``eval_`` prefix). An epoch's last step always
    gets a row, whatever ``log_every``.

    When a new metric name appears, the file is rewritten with the wider header. On a resumed run,
    rows past the resumed step (from the interrupted part) are dropped so each step appears once.
    """

    def __init__(self, path: str | Path, log_every: int = 1) -> None:
        self.path = Path(path)
        self.log_every = log_every
        self.columns: list[str] = list(TRAIN_COLUMNS)
        self._pending: dict[str, Any] | None = None
        self._last_record: StepRecord | None = None
        self._last_elapsed = 0.0
        self._handle: Any = None  # kept open: reopening per row cost ~0.1 ms a step
        self._writer: csv.DictWriter | None = None
        self._failed = False
        self._epoch_started: float | None = 0.0  # elapsed seconds when this epoch began

    def on_fit_start(self, trainer: Trainer) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept: list[dict[str, str]] = []
        resumed_step = trainer.state.global_step
        if resumed_step > 0 and self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                self.columns = list(reader.fieldnames or TRAIN_COLUMNS)
                kept = [row for row in reader if int(row["step"]) <= resumed_step]
        self._epoch_started = _epoch_start(trainer, kept)
        self._rewrite(kept)

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        self._close()
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns)
        writer.writeheader()
        writer.writerows(rows)
        replace_file(self.path, buffer.getvalue(), "metrics log")  # atomic; names the path
        with self._failures_named():
            self._handle = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115
        self._writer = csv.DictWriter(self._handle, fieldnames=self.columns)

    @contextlib.contextmanager
    def _failures_named(self) -> Iterator[None]:
        """A full disk or lost permission while appending is a WriteError naming the file."""
        try:
            with write_errors_named(self.path, "metrics log"):
                yield
        except OSError:
            self._failed = True
            raise

    def _close(self) -> None:
        if self._handle is not None:
            handle, self._handle, self._writer = self._handle, None, None
            if self._failed:  # closing flushes again, which would fail the same way
                with contextlib.suppress(OSError):
                    handle.close()
            else:
                with self._failures_named():
                    handle.close()

    def _read_rows(self) -> list[dict[str, str]]:
        with open(self.path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    def _write(self, row: dict[str, Any]) -> None:
        new_columns = [name for name in row if name not in self.columns]
        with self._failures_named():
            if new_columns:
                self._handle.flush()
                rows = self._read_rows()
                self.columns.extend(new_columns)
                self._rewrite(rows)
            self._writer.writerow(row)  # type: ignore[union-attr]
            self._handle.flush()  # readable while training runs (no fsync: a log)

    def _flush_pending(self) -> None:
        if self._pending is not None:
            self._write(self._pending)
            self._pending = None

    def on_batch_end(self, trainer: Trainer, record: StepRecord) -> None:
        self._flush_pending()
        self._last_record = record
        self._last_elapsed = elapsed = trainer.state.elapsed_seconds
        epoch_ended = trainer.state.epoch > record.epoch
        if record.step % self.log_every == 0 or epoch_ended:
            # Held back one step so an evaluation at this step lands on the same row.
            self._pending = row = _record_row(record, elapsed)
            if epoch_ended and self._epoch_started is not None:
                row["epoch_time_s"] = round(elapsed - self._epoch_started, 3)
        if epoch_ended:
            self._epoch_started = elapsed

    def on_eval_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        if self._pending is None and self._last_record is not None:
            self._pending = _record_row(self._last_record, self._last_elapsed)
        if self._pending is None:  # an evaluation before any step: a resumed, finished run
            self._pending = {"step": trainer.state.global_step, "epoch": trainer.state.epoch}
        # An evaluation metric called e.g. "loss" must not overwrite the training loss.
        self._pending.update({_eval_column(name): value for name, value in metrics.items()})

    def on_fit_end(self, trainer: Trainer) -> None:
        try:
            if not self._failed:  # after a failed write, the error already on its way says it
                self._flush_pending()
        finally:
            self._close()


def _epoch_start(trainer: Trainer, kept_rows: list[dict[str, str]]) -> float | None:
    """Elapsed seconds at which the current epoch began: now for a fresh or epoch-aligned run;
    for a run resumed mid-epoch, the kept row that ended the previous epoch (``None`` when the
    log cannot tell, so that epoch's time is left empty rather than guessed)."""
    state = trainer.state
    if state.batch_in_epoch == 0:
        return state.elapsed_seconds
    if state.epoch == 0:
        return 0.0
    ends = [row for row in kept_rows
            if row.get("epoch_time_s") and int(row["epoch"]) == state.epoch - 1]
    return float(ends[-1]["elapsed_s"]) if ends else None


_EVENT_FILES = itertools.count()  # tells apart event files one process opens in a second


class TensorBoardLogger(Callback):
    """Writes ``train/loss``, ``train/lr``, ``train/grad_norm`` every ``log_every`` steps and
    ``eval/<metric>`` after each evaluation, to a TensorBoard event file in ``log_dir``.

    Events are written and flushed in the training thread through one open file, as
    ``metrics.csv`` rows are (torch's ``SummaryWriter`` writes from a background thread, whose
    failure prints a traceback and surfaces steps later): a full disk or lost permission is a
    :class:`~rnnkit.train.durable.WriteError` naming the event file at the step it happens.
    """

    def __init__(self, log_dir: str | Path, log_every: int = 1) -> None:
        self.log_dir = Path(log_dir)
        self.log_every = log_every
        self.path: Path | None = None  # the event file, once opened
        self._handle: Any = None
        self._records: Any = None
        self._failed = False

    def on_fit_start(self, trainer: Trainer) -> None:
        try:
            from tensorboard.compat.proto.event_pb2 import Event, SessionLog
            from tensorboard.summary.writer.record_writer import RecordWriter
            from torch.utils.tensorboard.summary import scalar
        except ImportError as error:
            raise ImportError(
                "tensorboard=True needs the tensorboard package: pip install tensorboard"
            ) from error
        self._event, self._scalar = Event, scalar
        with self._failures_named(self.log_dir):
            self.log_dir.mkdir(parents=True, exist_ok=True)
        # The name TensorBoard's own writer gives its files (the run directory clears them).
        self.path = self.log_dir / (f"events.out.tfevents.{int(time.time()):010d}."
                                    f"{socket.gethostname()}.{os.getpid()}.{next(_EVENT_FILES)}")
        with self._failures_named(self.path):
            self._handle = open(self.path, "xb")  # noqa: SIM115 (kept open for the run)
        self._records = RecordWriter(self._handle)
        step = trainer.state.global_step
        events = [Event(wall_time=time.time(), step=step, file_version="brain.Event:2")]
        if step:  # a resumed run: TensorBoard hides the interrupted part's later events
            events.append(Event(wall_time=time.time(), step=step + 1,
                                session_log=SessionLog(status=SessionLog.START)))
        self._write(events)

    @contextlib.contextmanager
    def _failures_named(self, path: Path) -> Iterator[None]:
        try:
            with write_errors_named(path, "TensorBoard log"):
                yield
        except OSError:
            self._failed = True
            raise

    def _write(self, events: list[Any]) -> None:
        with self._failures_named(self.path):  # type: ignore[arg-type]
            for event in events:
                self._records.write(event.SerializeToString())
            self._handle.flush()  # readable by TensorBoard while training runs

    def _scalars(self, values: dict[str, float], step: int) -> None:
        now = time.time()
        self._write([self._event(wall_time=now, step=step, summary=self._scalar(name, value))
                     for name, value in values.items()])

    def on_batch_end(self, trainer: Trainer, record: StepRecord) -> None:
        if record.step % self.log_every == 0:
            self._scalars({f"train/{name}": getattr(record, name)
                           for name in ("loss", "lr", "grad_norm")}, record.step)

    def on_eval_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        self._scalars({f"eval/{name}": value for name, value in metrics.items()},
                      trainer.state.global_step)

    def on_fit_end(self, trainer: Trainer) -> None:
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        if self._failed:  # closing flushes again, which would fail the same way
            with contextlib.suppress(OSError):
                handle.close()
        else:
            with self._failures_named(self.path):  # type: ignore[arg-type]
                handle.close()


class ProgressBar(Callback):
    """A tqdm bar over steps with loss (smoothed), lr, rate and ETA, and the last eval metric.

    ETA needs a known total (``max_steps`` or ``max_epochs``). By default the bar goes to stderr
    and is hidden when that is not a terminal; pass ``file`` and ``disable=False`` to force it.
    """

    def __init__(self, smoothing: float = 0.9, file: Any = None, disable: bool | None = None):
        self.smoothing = smoothing
        self.file = file
        self.disable = disable
        self.bar: Any = None
        self._loss: float | None = None
        self._postfix: dict[str, str] = {}

    def on_fit_start(self, trainer: Trainer) -> None:
        self.bar = tqdm(
            total=trainer.total_steps,
            initial=trainer.state.global_step,
            unit="step",
            dynamic_ncols=True,
            file=self.file if self.file is not None else sys.stderr,
            disable=self.disable,  # None: off when not a TTY
        )

    def on_batch_end(self, trainer: Trainer, record: StepRecord) -> None:
        if self._loss is None or not math.isfinite(self._loss):
            self._loss = record.loss
        else:
            self._loss = self.smoothing * self._loss + (1 - self.smoothing) * record.loss
        self._postfix.update(loss=f"{self._loss:.4f}", lr=f"{record.lr:.2e}")
        self.bar.set_postfix(self._postfix, refresh=False)
        self.bar.update(1)

    def on_eval_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        if trainer.monitor in metrics:
            self._postfix[trainer.monitor] = f"{metrics[trainer.monitor]:.4f}"
            self.bar.set_postfix(self._postfix)

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()


def model_summary(model: Any) -> str:
    """One line: the model's class and its (trainable) parameter count."""
    from rnnkit.train.runtime import unwrap_model

    inner = unwrap_model(model)
    total = sum(p.numel() for p in inner.parameters())
    trainable = sum(p.numel() for p in inner.parameters() if p.requires_grad)
    kept = "all trainable" if trainable == total else f"{trainable:,} trainable"
    return f"model: {type(inner).__name__}, {total:,} parameters ({kept})"


def clock(seconds: float) -> str:
    """``1:02:03`` or ``2:03``."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class EvalLines(Callback):
    """The model summary at the start, then one line per evaluation (step, epoch, training
    loss, metrics, elapsed time and ETA), like Keras' epoch lines.

    The lines are for logs: CI, ``nohup``, notebooks, a pipe, where the progress bar is hidden.
    By default they are printed only when ``file`` (stderr) is not a terminal, where the bar
    shows the same; the model summary is printed either way.
    """

    def __init__(self, file: Any = None, always: bool = False) -> None:
        self.file = file
        self.always = always
        self._loss: float | None = None

    def _stream(self) -> Any:
        return self.file if self.file is not None else sys.stderr  # looked up late: tests swap it

    def _wanted(self) -> bool:
        stream = self._stream()
        return self.always or not (hasattr(stream, "isatty") and stream.isatty())

    def on_fit_start(self, trainer: Trainer) -> None:
        print(model_summary(trainer.model), file=self._stream(), flush=True)

    def on_batch_end(self, trainer: Trainer, record: StepRecord) -> None:
        self._loss = record.loss

    def on_eval_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        if not self._wanted():
            return
        state, total = trainer.state, trainer.total_steps
        parts = [f"step {state.global_step}" + (f"/{total}" if total else ""),
                 f"epoch {state.epoch}"]
        if self._loss is not None:
            parts.append(f"loss {self._loss:.4f}")
        parts += [f"{name} {value:.4g}" for name, value in metrics.items()]
        parts.append(f"elapsed {clock(state.elapsed_seconds)}")
        eta = _eta(trainer)
        if eta is not None:
            parts.append(f"eta {clock(eta)}")
        print("  ".join(parts), file=self._stream(), flush=True)


def _eta(trainer: Trainer) -> float | None:
    """Seconds left at the current pace, by steps or by the time budget, whichever is first."""
    state, config = trainer.state, trainer.config
    estimates = []
    if trainer.total_steps and state.global_step:
        per_step = state.elapsed_seconds / state.global_step
        estimates.append(per_step * max(0, trainer.total_steps - state.global_step))
    if config.max_time is not None:
        estimates.append(max(0.0, config.max_time * 60 - state.elapsed_seconds))
    return min(estimates) if estimates else None

