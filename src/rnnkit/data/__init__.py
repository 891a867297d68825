"""Data pipeline: tokenizers, vocabularies, streaming readers, batching and bundled samples.

Typical use (classification)::

    from rnnkit.data import LabelledTextReader, WordTokenizer, Vocab, classification_source
    records = LabelledTextReader("reviews.csv").read()
    tokenizer = WordTokenizer()
    vocab = Vocab.build((tokenizer.encode(r.text) for r in records), min_freq=2)
    labels = Vocab.build_labels(r.label for r in records)
    examples = [(vocab.encode(tokenizer.encode(r.text)), labels.lookup(r.label)) for r in records]
    source = classification_source(examples, vocab.pad_id, batch_size=32, seed=0)
    for batch in source.iter_epoch(0):  # TokenBatch(tokens, lengths, targets)
        ...
"""

from .batch import (
    IGNORE_INDEX,
    ConditionalBatch,
    PairBatch,
    TokenBatch,
    WindowBatch,
)
from .bucketing import bucketed_batches, padding_fraction, plain_batches
from .collate import (
    collate_classification,
    collate_conditional,
    collate_pairs,
    collate_tagging,
    collate_windows,
    pad_sequences,
)
from .errors import ChecksumMismatchError, DataFormatError, RegistryUnavailableError
from .lm_stream import LanguageModelStream
from .readers import (
    ConllReader,
    LabelledText,
    LabelledTextReader,
    LongSeriesReader,
    NamedSeries,
    PairReader,
    SeriesReader,
    SeriesRow,
    SlashTaggedReader,
    TaggedSentence,
    TextLine,
    TextPair,
    TextReader,
    TimeSeries,
    TsfReader,
    read_text,
)
from .sources import (
    BatchSource,
    ExampleSource,
    WindowSource,
    classification_source,
    conditional_source,
    pair_source,
    tagging_source,
)
from .splits import Split, split_by_group, split_indices
from .subword import SubwordTokenizer
from .tokenize import CharTokenizer, Tokenizer, WordTokenizer, get_tokenizer
from .vocab import BOS, EOS, PAD, UNK, Vocab
from .windows import StandardScaler, chronological_split, sliding_windows

__all__ = [
    "BOS",
    "EOS",
    "IGNORE_INDEX",
    "PAD",
    "UNK",
    "BatchSource",
    "CharTokenizer",
    "ChecksumMismatchError",
    "ConditionalBatch",
    "ConllReader",
    "DataFormatError",
    "ExampleSource",
    "LabelledText",
    "LabelledTextReader",
    "LanguageModelStream",
    "LongSeriesReader",
    "NamedSeries",
    "PairBatch",
    "PairReader",
    "RegistryUnavailableError",
    "SeriesReader",
    "SeriesRow",
    "SlashTaggedReader",
    "Split",
    "StandardScaler",
    "SubwordTokenizer",
    "TaggedSentence",
    "TextLine",
    "TextPair",
    "TextReader",
    "TimeSeries",
    "TokenBatch",
    "Tokenizer",
    "TsfReader",
    "Vocab",
    "WindowBatch",
    "WindowSource",
    "WordTokenizer",
    "bucketed_batches",
    "chronological_split",
    "classification_source",
    "collate_classification",
    "collate_conditional",
    "collate_pairs",
    "collate_tagging",
    "collate_windows",
    "conditional_source",
    "get_tokenizer",
    "pad_sequences",
    "padding_fraction",
    "pair_source",
    "plain_batches",
    "read_text",
    "sliding_windows",
    "split_by_group",
    "split_indices",
    "tagging_source",
]
