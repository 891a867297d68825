"""From a run configuration to a trained model and back: the Python API under ``rnnkit train``.

Three lines do what ``rnnkit train CONFIG --out DIR`` does::

    from rnnkit import tasks
    config = tasks.load_config("examples/sentiment.yaml", ["train.max_epochs=2"])
    outcome = tasks.train(config, "runs/sentiment")

and a run directory is all inference needs::

    run = tasks.load_run("runs/sentiment")
    run.predict(["a gripping, beautifully shot film"])  # [{"label": "fresh", ...}]
    run.evaluate("reviews_test.csv")                     # {"accuracy": ..., "macro_f1": ...}

One module per task (:mod:`.language_model`, :mod:`.classification`, :mod:`.tagging`,
:mod:`.seq2seq`, :mod:`.forecasting`, :mod:`.conditional_generation`) implements
:class:`~rnnkit.tasks.base.Task`; :mod:`.config` holds the typed configuration.
"""

from rnnkit.tasks.base import Task
from rnnkit.tasks.config import (
    TASK_NAMES,
    DataConfig,
    ModelConfig,
    ParamSpec,
    RunConfig,
    TrainSection,
    TuneConfig,
    save_config,
)
from rnnkit.tasks.errors import ConfigError, RunDirError, RunLockedError, TaskMismatchError
from rnnkit.tasks.registry import TASKS
from rnnkit.tasks.run import Run, TrainOutcome, load_config, load_run, train

__all__ = [
    "TASKS",
    "TASK_NAMES",
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "ParamSpec",
    "Run",
    "RunConfig",
    "RunDirError",
    "RunLockedError",
    "Task",
    "TaskMismatchError",
    "TrainOutcome",
    "TrainSection",
    "TuneConfig",
    "load_config",
    "load_run",
    "save_config",
    "train",
]
