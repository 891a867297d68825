"""Task name → task class."""

from __future__ import annotations

from rnnkit.tasks.base import Task
from rnnkit.tasks.classification import ClassificationTask
from rnnkit.tasks.conditional_generation import ConditionalGenerationTask
from rnnkit.tasks.forecasting import ForecastingTask
from rnnkit.tasks.language_model import LanguageModelTask
from rnnkit.tasks.seq2seq import Seq2SeqTask
from rnnkit.tasks.tagging import TaggingTask

TASKS: dict[str, type[Task]] = {
    task.name: task
    for task in (
        LanguageModelTask,
        ClassificationTask,
        TaggingTask,
        Seq2SeqTask,
        ForecastingTask,
        ConditionalGenerationTask,
    )
}
