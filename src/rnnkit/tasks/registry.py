"""Task name → task class, and the checks that need every task."""

from __future__ import annotations

from rnnkit.tasks.base import Task
from rnnkit.tasks.classification import ClassificationTask
from rnnkit.tasks.conditional_generation import ConditionalGenerationTask
from rnnkit.tasks.config import RunConfig
from rnnkit.tasks.errors import ConfigError
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

# seq2seq decoding settings: they have defaults rather than None, so "set" means nothing
SHARED_MODEL_FIELDS = ("beam_size", "length_penalty")


def reject_foreign_fields(config: RunConfig) -> None:
    """Refuse task-specific ``model`` fields that another task owns (e.g. attention for a
    classifier): silently ignoring them would hide a misconfiguration."""
    accepted = TASKS[config.task].model_fields
    for name, task_class in TASKS.items():
        if name == config.task:
            continue
        for field_name in task_class.model_fields:
            if field_name in accepted or field_name in SHARED_MODEL_FIELDS:
                continue
            if getattr(config.model, field_name) is not None:
                owners = [n for n, c in TASKS.items() if field_name in c.model_fields]
                raise ConfigError(
                    f"model.{field_name} does not apply to task {config.task} "
                    f"(it applies to {', '.join(owners)}); remove it"
                )
