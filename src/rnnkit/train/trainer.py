"""The training loop: one model, one batch source, one loss, optional evaluation.

Model-agnostic: the model is any ``torch.nn.Module``, the loss any
``loss_fn(model, batch) -> scalar tensor``, the data any object with ``iter_epoch(epoch)`` and
``len()``. Checkpoints, logs and the progress bar are written by the main process only.

Inside an initialised process group of several ranks (``torchrun``, ``rnnkit train --nproc``)
the same code trains data-parallel: see :mod:`rnnkit.train.distributed`.
"""

from __future__ import annotations

import inspect
import math
import signal
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rnnkit.reproducibility import check_blas_reproducibility
from rnnkit.train import top_k
from rnnkit.train.callbacks import Callback, CallbackList, StepRecord
from rnnkit.train.checkpoint import TRAINER_KEY, load_checkpoint, save_checkpoint
from rnnkit.train.config import TrainConfig
from rnnkit.train.contracts import BatchSource, Evaluate, LossFn
from rnnkit.train.distributed import ShardedSource, data_parallel, rank_seed
from rnnkit.train.interrupt import (
    AgreedInterrupt,
    InterruptRequest,
    TrainingInterrupted,
    deferred_stop_signals,
    interrupting_signal,
)
from rnnkit.train.loggers import CSVLogger, EvalLines, ProgressBar, TensorBoardLogger
from rnnkit.train.loss_state import CarriedLossState, to_device
from rnnkit.train.optim import apply_settings, build_optimizer, clip_gradients
from rnnkit.train.precision import Precision
from rnnkit.train.resume import choose_resume_directory
from rnnkit.train.run_state import (
    budget_reached,
    is_improvement,
    metadata_summary,
    progress_of,
    total_steps,
)
from rnnkit.train.runtime import is_main_process, resolve_device, unwrap_model
from rnnkit.train.schedules import LRSchedule
from rnnkit.train.seeding import (
    capture_rng_state,
    deterministic_mode,
    restore_rng_state,
    seed_everything,
)
from rnnkit.train.validation import (
    check_arguments,
    check_metadata,
    check_metrics,
    scalar_loss,
)

TRAINER_STATE_VERSION = 1
# What the trainer writes into ``run_dir`` (rnnkit.tasks deletes exactly these on --overwrite).
CHECKPOINTS_DIR = "checkpoints"
METRICS_FILE = "metrics.csv"
TENSORBOARD_DIR = "tensorboard"


class NonFiniteLossError(FloatingPointError):
    """The loss or the gradient became NaN or infinite; the run stopped before using it."""


@dataclass
class TrainerState:
    """Where the run is; saved in every checkpoint so a resumed run continues exactly.

    ``epoch`` is 0-based and ``batch_in_epoch`` counts the batches of it already trained on.
    """

    global_step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    elapsed_seconds: float = 0.0
    best_metric: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    last_metrics: dict[str, float] = field(default_factory=dict)
    stop_reason: str | None = None
    top_checkpoints: list[list[float]] = field(default_factory=list)  # [metric, step], best first


@dataclass(frozen=True)
class FitResult:
    """How a run ended: ``stop_reason`` is one of ``max_steps``, ``max_epochs``, ``max_time``,
    ``early_stopping``; paths are ``None`` when no ``run_dir`` was given (or nothing evaluated)."""

    stop_reason: str
    global_step: int
    epoch: int
    best_metric: float | None
    best_step: int | None
    metrics: dict[str, float]
    best_checkpoint: Path | None
    last_checkpoint: Path | None


def _call_model_loss(model: torch.nn.Module, batch: Any) -> torch.Tensor:
    return model.loss(batch)  # type: ignore[operator]


class Trainer:
    """Trains ``model`` on ``train_data`` with AdamW under ``config``.

    - ``loss_fn(model, batch)`` returns a scalar loss (default: ``model.loss(batch)``). If it has
      ``state_dict``/``load_state_dict`` (e.g. a hidden state carried across batches), that state
      is checkpointed; if it has ``reset()``, it is called at the start of every epoch. A loss
      whose state holds per-row tensors declares ``state_row_dim`` (the rows' dimension): a
      data-parallel run then checkpoints all ranks' rows together, and a resume restores the
      rows when its batches have as many as the checkpoint (else it warns and starts afresh).
    - ``evaluate(model)`` returns metrics; it runs every ``config.eval_every`` steps (or at each
      epoch end) and at the end, under ``torch.no_grad()`` with the model in eval mode.
      ``monitor`` names the metric that picks the best checkpoint, drives early stopping and
      reduce-on-plateau; ``monitor_mode`` is ``"min"`` or ``"max"``.
    - ``run_dir`` receives ``checkpoints/{best,last}/``, ``metrics.csv`` and ``tensorboard/``;
      without it nothing is written and a run cannot be resumed.
    - ``notice`` receives one-line notes, e.g. that ``resume=True`` found ``last`` damaged and
      continues from an older checkpoint (default: a ``RuntimeWarning``).
    - ``metadata`` is stored as-is in each checkpoint's ``metadata.json`` (the key ``"trainer"``
      is reserved for the trainer's own summary).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        train_data: BatchSource,
        config: TrainConfig,
        *,
        loss_fn: LossFn | None = None,
        evaluate: Evaluate | None = None,
        monitor: str = "valid_loss",
        monitor_mode: str = "min",
        run_dir: str | Path | None = None,
        metadata: Mapping[str, Any] | None = None,
        callbacks: Sequence[Callback] = (),
        notice: Callable[[str], None] | None = None,
    ) -> None:
        check_arguments(model, train_data, config, loss_fn, evaluate, monitor_mode)
        self.config = config
        self.device = resolve_device(config.device)
        self.precision = Precision(config.amp, self.device)
        self.model = model.to(self.device)
        self.train_data = train_data
        self.loss_fn: LossFn = loss_fn if loss_fn is not None else _call_model_loss
        self.parallel = data_parallel(self.model, self.loss_fn, self.device)
        if self.parallel is not None:  # each rank trains on its rows of every global batch
            self.train_data = ShardedSource(train_data, self.parallel.rank, self.parallel.world)
        self.evaluate_fn = evaluate
        self.monitor = monitor
        self.monitor_mode = monitor_mode
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.metadata = check_metadata(metadata)
        self.total_steps = total_steps(config, len(train_data))
        self.optimizer = build_optimizer(self.model, config)
        self.schedule = LRSchedule(self.optimizer, config, self.total_steps)
        self.parameters = [p for p in self.model.parameters() if p.requires_grad]
        self.state = TrainerState()
        self.callbacks = CallbackList([*self._builtin_callbacks(), *callbacks])
        self._mid_step = False
        self.loss_state = CarriedLossState(self.loss_fn, self.device, self.parallel)
        self._notice = notice if notice is not None else _warn

    @property
    def checkpoint_dir(self) -> Path | None:
        """``run_dir/checkpoints``, holding ``best/`` and ``last/``."""
        return self.run_dir / CHECKPOINTS_DIR if self.run_dir is not None else None

    def _builtin_callbacks(self) -> list[Callback]:
        if not is_main_process():
            return []
        callbacks: list[Callback] = []
        if self.run_dir is not None:
            callbacks.append(CSVLogger(self.run_dir / METRICS_FILE, self.config.log_every))
        if self.config.tensorboard:
            if self.run_dir is None:
                raise ValueError("config.tensorboard: True needs a run_dir to write to, got None")
            log_dir = self.run_dir / TENSORBOARD_DIR
            callbacks.append(TensorBoardLogger(log_dir, self.config.log_every))
        if self.config.progress:  # the bar on a terminal, a line per evaluation elsewhere
            callbacks += [ProgressBar(), EvalLines()]
        return callbacks

    # ----------------------------------------------------------------------------------- fit
    def fit(self, resume: bool | str | Path = False) -> FitResult:
        """Train until a budget, early stopping, a non-finite loss or a stop signal.

        ``resume=True`` continues from ``run_dir/checkpoints/last``, or, when that is damaged,
        from the newest undamaged one of ``.last.previous`` and ``best`` (saying so through
        ``notice``); a path resumes from that checkpoint directory. A fresh run refuses a
        ``run_dir`` that already holds checkpoints.
        Ctrl-C (SIGINT), SIGTERM or SIGHUP finishes the current step, saves ``last`` and raises
        :class:`~rnnkit.train.interrupt.TrainingInterrupted` (a ``KeyboardInterrupt`` naming
        the signal and the checkpoint); a second signal stops at once without saving.
        Raises :class:`NonFiniteLossError` (keeping the last good checkpoint) on NaN/inf.
        """
        check_blas_reproducibility()  # exact resume needs alignment-independent products
        if resume:
            self._load_for_resume(resume)
        else:
            self._start_fresh()
        with deterministic_mode(self.config.deterministic), deferred_stop_signals() as interrupt:
            try:
                self.callbacks.on_fit_start(self)
                self._run(interrupt)
            except KeyboardInterrupt as interrupt_error:
                self.state.stop_reason = "interrupted"
                saved = None
                if not self._mid_step:  # else the model may be half-updated: keep the old `last`
                    saved = self._save("last",
                                       collective=isinstance(interrupt_error, AgreedInterrupt))
                raise TrainingInterrupted(interrupting_signal(interrupt_error),
                                          self.state.global_step, saved) from interrupt_error
            except NonFiniteLossError:
                self.state.stop_reason = "non_finite"
                raise
            finally:
                self.callbacks.on_fit_end(self)
        return self._result()

    def _start_fresh(self) -> None:
        # Checkpoints, not the directory: files of the user's kept in checkpoints/ (by
        # `rnnkit train --overwrite`, say) do not make a run.
        held = [] if self.checkpoint_dir is None else [
            self.checkpoint_dir / name for name in ("best", "last")]
        if any(path.exists() for path in held):
            raise FileExistsError(
                f"run_dir: {str(self.run_dir)!r} already holds checkpoints; "
                "pass resume=True to continue that run, or choose a new run_dir"
            )
        seed_everything(self.config.seed)
        self.state = TrainerState()
        self._seed_this_rank()

    def _seed_this_rank(self) -> None:
        """Ranks other than 0 draw their own dropout masks (rank 0 keeps the stream a
        single-process run would have, and is the one whose RNG state is checkpointed)."""
        if self.parallel is not None and self.parallel.rank > 0:
            seed_everything(rank_seed(self.config.seed, self.parallel.rank, self.state.global_step))

    def _result(self) -> FitResult:
        state = self.state
        best = last = None
        if self.checkpoint_dir is not None and is_main_process():
            last = self.checkpoint_dir / "last"
            best = self.checkpoint_dir / "best" if (self.checkpoint_dir / "best").exists() else None
        return FitResult(
            stop_reason=state.stop_reason or "",
            global_step=state.global_step,
            epoch=state.epoch,
            best_metric=state.best_metric,
            best_step=state.best_step,
            metrics=dict(state.last_metrics),
            best_checkpoint=best,
            last_checkpoint=last,
        )

    def _run(self, interrupt: InterruptRequest) -> None:
        self.state.stop_reason = budget_reached(self.config, self.state)
        started = time.monotonic() - self.state.elapsed_seconds
        while self.state.stop_reason is None:
            batches = self._epoch_batches()
            batch = next(batches, _END)
            if batch is _END:
                raise ValueError(
                    f"train_data: iter_epoch({self.state.epoch}) yielded no batches after the "
                    f"{self.state.batch_in_epoch} already trained on; is the data different?"
                )
            while batch is not _END:
                record = self._step(batch)
                batch = next(batches, _END)  # look ahead so an epoch's end is known now
                epoch_ended = batch is _END
                if epoch_ended:
                    self.state.epoch += 1
                    self.state.batch_in_epoch = 0
                self.state.elapsed_seconds = time.monotonic() - started
                self.callbacks.on_batch_end(self, record)
                if self._after_step(epoch_ended, interrupt):
                    return

    def _epoch_batches(self) -> Iterator[Any]:
        """The current epoch's batches, past those a resumed run already trained on.

        Sources whose ``iter_epoch`` takes ``start`` skip without building those batches;
        for others they are drawn and dropped (both give the same batches by the contract).
        """
        epoch, skip = self.state.epoch, self.state.batch_in_epoch
        if skip == 0:
            self.loss_state.start_epoch()
        if skip and _accepts_start(self.train_data.iter_epoch):
            return iter(self.train_data.iter_epoch(epoch, start=skip))  # type: ignore[call-arg]
        batches = iter(self.train_data.iter_epoch(epoch))
        for _ in range(skip):
            if next(batches, _END) is _END:
                raise ValueError(
                    f"train_data: iter_epoch({epoch}) has fewer than the {skip} batches the "
                    "checkpoint already trained on; is the data or its seed different?"
                )
        return batches

    # ---------------------------------------------------------------------------------- step
    def _step(self, batch: Any) -> StepRecord:
        self._mid_step = True
        self.loss_state.before_step(batch)
        state = self.state
        self.model.train()
        lr = self.schedule.apply(state.global_step)
        with self.precision.autocast():
            loss, loss_value = self._loss(to_device(batch, self.device))
        if not math.isfinite(loss_value):
            raise NonFiniteLossError(self._non_finite_message("loss", loss_value))
        self.optimizer.zero_grad(set_to_none=True)
        self.precision.backward(loss, self.optimizer)
        grad_norm = clip_gradients(self.parameters, self.config)
        if not (math.isfinite(grad_norm) or self.precision.skips_overflow):
            raise NonFiniteLossError(self._non_finite_message("gradient norm", grad_norm))
        self.precision.step(self.optimizer)
        state.global_step += 1
        state.batch_in_epoch += 1
        self._mid_step = False
        return StepRecord(
            step=state.global_step,
            epoch=state.epoch,
            batch=state.batch_in_epoch,
            lr=lr,
            loss=loss_value,
            grad_norm=grad_norm,
        )

    def _loss(self, batch: Any) -> tuple[torch.Tensor, float]:
        """The loss to back-propagate and the batch's loss value (over all ranks)."""
        if self.parallel is None:
            loss = self.loss_fn(self.model, batch)
            return loss, scalar_loss(loss)
        loss, global_value = self.parallel.loss(batch)
        scalar_loss(loss)
        return loss, global_value

    def _non_finite_message(self, what: str, value: float) -> str:
        state = self.state
        where = (
            f"step {state.global_step + 1} (epoch {state.epoch}, "
            f"batch {state.batch_in_epoch + 1} of the epoch)"
        )
        kept = "no checkpoint was written"
        last = self.checkpoint_dir / "last" if self.checkpoint_dir is not None else None
        if last is not None and last.exists():
            kept = f"the last good checkpoint is kept at {last}"
        return (
            f"training {what} is {value} at {where}; stopped without applying it, {kept}. "
            "Try a lower lr, a smaller clip_norm, or check the batch for invalid values."
        )

    # ---------------------------------------------------------------------------- decisions
    def _after_step(self, epoch_ended: bool, interrupt: InterruptRequest) -> bool:
        """Evaluate and checkpoint when due; return True when the run should stop."""
        config, step = self.config, self.state.global_step
        stop_reason, interrupted = budget_reached(config, self.state), interrupt.requested
        if self.parallel is not None:  # every rank must stop at the same step
            interrupted, stopping = self.parallel.any(interrupted, stop_reason is not None)
            if stopping and stop_reason is None:
                stop_reason = "max_time"  # the only budget whose clock differs between ranks
        if interrupted:
            # A rank stopped by its peers' signal, not its own, cannot know which it was.
            raise AgreedInterrupt(interrupt.signal_number or signal.SIGINT)
        every = config.eval_every
        eval_point = epoch_ended if every is None else step % every == 0
        evaluate_now = (eval_point or stop_reason) and self.evaluate_fn is not None
        if evaluate_now and self._evaluate() and stop_reason is None:
            stop_reason = "early_stopping"
        every = config.checkpoint_every
        checkpoint_due = eval_point if every is None else step % every == 0
        self.state.stop_reason = stop_reason  # before saving, so the metadata records it
        if checkpoint_due or stop_reason:
            self._save("last")
        return stop_reason is not None

    def _evaluate(self) -> bool:
        """Run ``evaluate``, update best/early-stopping/plateau; True when patience ran out."""
        metrics = self._metrics()
        state = self.state
        value = metrics[self.monitor]
        improved = is_improvement(value, state.best_metric, self.monitor_mode,
                                  self.config.min_delta)
        if improved:
            state.best_metric, state.best_step = value, state.global_step
            state.evals_without_improvement = 0
        else:
            state.evals_without_improvement += 1
        state.last_metrics = metrics
        self.schedule.observe(improved)
        if improved:
            self._save("best")
        self._keep_top_k(value)
        self.callbacks.on_eval_end(self, metrics)
        patience = self.config.patience
        return patience is not None and state.evals_without_improvement >= patience

    def _metrics(self) -> dict[str, float]:
        """``evaluate``'s metrics; data-parallel ranks get rank 0's (only rank 0 evaluates)."""
        metrics = None
        if is_main_process():
            self.model.eval()
            with torch.no_grad():
                metrics = check_metrics(self.evaluate_fn(self.model), self.monitor)  # type: ignore[misc]
        return metrics if self.parallel is None else self.parallel.from_main(metrics)

    # ---------------------------------------------------------------------------- checkpoints
    def _keep_top_k(self, value: float) -> None:
        """With ``save_top_k``: save this evaluation's checkpoint if it ranks among the best,
        and delete the one it pushes out (see :mod:`rnnkit.train.top_k`)."""
        k, state = self.config.save_top_k, self.state
        if k is None or self.checkpoint_dir is None:
            return
        entered, state.top_checkpoints, leaving = top_k.rank(
            state.top_checkpoints, value, state.global_step, k, self.monitor_mode)
        if entered:
            self._save(top_k.top_name(state.global_step), resumable=False)
        if is_main_process():
            top_k.remove(self.checkpoint_dir, leaving)

    def _save(self, name: str, collective: bool = True, resumable: bool = True) -> Path | None:
        """Write checkpoint ``name`` (rank 0) and return its directory (``None`` where nothing
        is written). Every data-parallel rank calls it at the same point, as gathering the loss
        state is a collective; ``collective=False`` (a rank interrupted on its own) saves no
        per-row loss state instead. ``resumable=False`` writes weights and metadata only."""
        if self.checkpoint_dir is None:
            return None
        # Before rank > 0 leaves: all ranks gather.
        loss_state = self.loss_state.for_checkpoint(collective) if resumable else None
        if not is_main_process():
            return None
        for parameter_name, parameter in unwrap_model(self.model).named_parameters():
            if not torch.isfinite(parameter).all():
                raise NonFiniteLossError(
                    f"model parameter {parameter_name!r} became non-finite after step "
                    f"{self.state.global_step}; not overwriting checkpoint {name!r}"
                )
        return save_checkpoint(
            self.checkpoint_dir / name,
            unwrap_model(self.model),
            metadata={**self.metadata, TRAINER_KEY: metadata_summary(
                self.state, self.monitor, self.monitor_mode, self.config)},
            trainer_state=self._trainer_state(loss_state) if resumable else None,
            keep_previous=name == "last",  # a second copy to resume from if `last` is damaged
        )

    def _trainer_state(self, loss_state: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "version": TRAINER_STATE_VERSION,
            "progress": progress_of(self.state),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "rng": capture_rng_state(),
            "loss_fn": loss_state,
            "loss_scaler": self.precision.state_dict(),
            "config": self.config.to_dict(),
        }

    def _load_for_resume(self, resume: bool | str | Path) -> None:
        directory = (choose_resume_directory(self.checkpoint_dir, self._notice)
                     if resume is True else Path(resume))
        checkpoint = load_checkpoint(directory, unwrap_model(self.model), device=self.device)
        saved = checkpoint.trainer_state
        if saved is None or saved.get("version") != TRAINER_STATE_VERSION:
            raise ValueError(
                f"resume: checkpoint {str(directory)!r} has no trainer state of version "
                f"{TRAINER_STATE_VERSION}; it cannot be resumed (load its weights instead)"
            )
        self._restore_optimizer(saved, directory)
        self.schedule.load_state_dict(saved["schedule"])
        self.precision.load_state_dict(saved.get("loss_scaler"))
        self.loss_state.restore(saved["loss_fn"])
        self.state = TrainerState(**saved["progress"])
        restore_rng_state(saved["rng"])
        self._seed_this_rank()

    def _restore_optimizer(self, saved: dict[str, Any], directory: Path) -> None:
        """Load the saved optimizer state, or start it afresh when the config names another
        optimizer (its moments have other names and meanings: AdamW's ``exp_avg`` is not
        SGD's ``momentum_buffer``); weights, progress, schedule and RNG still resume."""
        saved_optimizer = saved.get("config", {}).get("optimizer", self.config.optimizer)
        if saved_optimizer != self.config.optimizer:
            _warn(f"resume: checkpoint {str(directory)!r} was trained with optimizer "
                  f"{saved_optimizer!r}, this run uses {self.config.optimizer!r}; its state "
                  "(moments, step counts) starts afresh, weights and progress are restored")
            return
        sizes = [len(group["params"]) for group in saved["optimizer"]["param_groups"]]
        if sizes != [len(group["params"]) for group in self.optimizer.param_groups]:
            # e.g. a checkpoint from before the model exempted a matrix from weight decay
            _warn(f"resume: checkpoint {str(directory)!r} groups its parameters for the "
                  f"optimizer as {sizes}, this run as "
                  f"{[len(g['params']) for g in self.optimizer.param_groups]}; the optimizer's "
                  "state (moments, step counts) starts afresh, weights and progress are restored")
            return
        self.optimizer.load_state_dict(saved["optimizer"])
        apply_settings(self.optimizer, self.config)  # the config's, should they have changed


def _warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)


_END = object()


def _accepts_start(iter_epoch: Callable[..., Any]) -> bool:
    try:
        return "start" in inspect.signature(iter_epoch).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False
