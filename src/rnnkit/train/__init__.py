"""A small, model-agnostic training loop with exact resume, and the metrics to judge it.

Example::

    from rnnkit.train import Trainer, TrainConfig

    config = TrainConfig(lr=2e-3, max_epochs=10, schedule="cosine", warmup_steps=100)
    trainer = Trainer(model, train_batches, config, evaluate=valid_metrics,
                      monitor="valid_loss", run_dir="runs/lm", metadata={"model": ...})
    result = trainer.fit()            # Ctrl-C/SIGTERM/SIGHUP save runs/lm/checkpoints/last
    result = trainer.fit(resume=True) # continues exactly where it stopped

Modules: :mod:`~rnnkit.train.config` (``TrainConfig``), :mod:`~rnnkit.train.trainer` (the loop),
:mod:`~rnnkit.train.checkpoint` (safetensors + JSON checkpoints), :mod:`~rnnkit.train.schedules`,
:mod:`~rnnkit.train.callbacks` and :mod:`~rnnkit.train.loggers` (hooks, CSV, TensorBoard, progress
bar), :mod:`~rnnkit.train.seeding`, :mod:`~rnnkit.train.runtime` (device, main process) and
:mod:`~rnnkit.train.metrics`, :mod:`~rnnkit.train.distributed` (data-parallel training under
``torchrun``: row shards of each global batch, DDP, launcher) and :mod:`~rnnkit.train.precision`
(CUDA mixed precision, ``TrainConfig(amp="bf16" | "fp16")``).
"""

from rnnkit.train.callbacks import Callback, StepRecord
from rnnkit.train.checkpoint import (
    Checkpoint,
    load_checkpoint,
    load_model_state,
    read_metadata,
    save_checkpoint,
)
from rnnkit.train.config import TrainConfig
from rnnkit.train.contracts import BatchSource
from rnnkit.train.interrupt import TrainingInterrupted
from rnnkit.train.loggers import CSVLogger, ProgressBar, TensorBoardLogger
from rnnkit.train.optim import build_optimizer, clip_gradients
from rnnkit.train.runtime import is_main_process, resolve_device
from rnnkit.train.schedules import LRSchedule
from rnnkit.train.seeding import deterministic_mode, seed_everything
from rnnkit.train.trainer import (
    FitResult,
    NonFiniteLossError,
    Trainer,
    TrainerState,
)

__all__ = [
    "BatchSource",
    "CSVLogger",
    "Callback",
    "Checkpoint",
    "FitResult",
    "LRSchedule",
    "NonFiniteLossError",
    "ProgressBar",
    "StepRecord",
    "TensorBoardLogger",
    "TrainConfig",
    "Trainer",
    "TrainerState",
    "TrainingInterrupted",
    "build_optimizer",
    "clip_gradients",
    "deterministic_mode",
    "is_main_process",
    "load_checkpoint",
    "load_model_state",
    "read_metadata",
    "resolve_device",
    "save_checkpoint",
    "seed_everything",
]
