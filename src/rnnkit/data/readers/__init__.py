"""Streaming readers yielding typed records; errors name the file and line."""

from ._lines import OnError, SkipLog, iter_decoded_lines
from .base import Reader
from .labelled import LabelledText, LabelledTextReader
from .pairs import PairReader, TextPair
from .panel import LongSeriesReader, NamedSeries
from .series import SeriesReader, SeriesRow, TimeSeries
from .tagged import ConllReader, SlashTaggedReader, TaggedSentence
from .text import TextLine, TextReader, read_text
from .tsf import TsfReader

__all__ = [
    "ConllReader",
    "LabelledText",
    "LabelledTextReader",
    "LongSeriesReader",
    "NamedSeries",
    "OnError",
    "PairReader",
    "Reader",
    "SeriesReader",
    "SeriesRow",
    "SkipLog",
    "SlashTaggedReader",
    "TaggedSentence",
    "TextLine",
    "TextPair",
    "TextReader",
    "TimeSeries",
    "TsfReader",
    "iter_decoded_lines",
    "read_text",
]
