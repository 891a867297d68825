"""Ready models for each task shape, built over any recurrent cell of :mod:`rnnkit.nn`.

Each model has a typed dataclass config (``model.config``) and a ``model_type`` name, a
``loss(batch)`` for the batches of :mod:`rnnkit.data.batch`, and can be rebuilt from its JSON
config with :func:`build_model` or saved/loaded with :func:`save_model`/:func:`load_model`.

>>> import torch
>>> from rnnkit.models import LanguageModel, LanguageModelConfig, load_model, save_model
>>> config = LanguageModelConfig(vocab_size=4, embedding_size=8, hidden_size=8, cell="gru")
>>> model = LanguageModel(config)
>>> logits, state = model(torch.tensor([[0, 1, 2]]))  # (batch, seq, vocab), final state
>>> len(model.generate([0, 1], max_length=5, temperature=0.8, top_k=3, seed=1))
5
>>> import tempfile
>>> directory = save_model(model, tempfile.mkdtemp())  # model.safetensors + model.json
>>> load_model(directory).config == config
True

Models: :class:`LanguageModel` (+ :class:`TruncatedBPTTLoss`), :class:`SequenceClassifier`,
:class:`SequenceTagger`, :class:`Seq2Seq` (+ :class:`TeacherForcingSchedule`),
:class:`Forecaster`, :class:`ConditionalGenerator`.
"""

from rnnkit.models._recurrent import State, detach_state
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
    "State",
    "TeacherForcingSchedule",
    "TruncatedBPTTLoss",
    "build_config",
    "build_model",
    "describe",
    "detach_state",
    "load_model",
    "read_description",
    "save_model",
]
