"""Ready models for each task shape, built over any recurrent cell of :mod:`rnnkit.nn`.

Each model has a typed dataclass config (``model.config``) and a ``model_type`` name, a
``loss(batch)`` for the batches of :mod:`rnnkit.data.batch`, and can be rebuilt from its JSON
config with :func:`build_model` or saved/loaded with :func:`save_model`/:func:`load_model`.
"""

from rnnkit.models.beam_search import Decoded
from rnnkit.models.classifier import SequenceClassifier, SequenceClassifierConfig
from rnnkit.models.conditional_generator import ConditionalGenerator, ConditionalGeneratorConfig
from rnnkit.models.forecaster import Forecast, Forecaster, ForecasterConfig
from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
from rnnkit.models.registry import MODEL_TYPES, build_config, build_model, describe
from rnnkit.models.sampling import SamplingOptions
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.models.serialization import load_model, read_description, save_model
from rnnkit.models.tagger import SequenceTagger, SequenceTaggerConfig
from rnnkit.models.tbptt import TruncatedBPTTLoss
from rnnkit.models.teacher_forcing import TeacherForcingSchedule

__all__ = [
    "MODEL_TYPES",
    "ConditionalGenerator",
    "ConditionalGeneratorConfig",
    "Decoded",
    "Forecast",
    "Forecaster",
    "ForecasterConfig",
    "LanguageModel",
    "LanguageModelConfig",
    "SamplingOptions",
    "Seq2Seq",
    "Seq2SeqConfig",
    "SequenceClassifier",
    "SequenceClassifierConfig",
    "SequenceTagger",
    "SequenceTaggerConfig",
    "TeacherForcingSchedule",
    "TruncatedBPTTLoss",
    "build_config",
    "build_model",
    "describe",
    "load_model",
    "read_description",
    "save_model",
]
