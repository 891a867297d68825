"""Hypothesis properties over every fuzz target: arbitrary bytes, and text built from each
format's own punctuation, either load or raise the documented error naming file and line."""

from __future__ import annotations

import logging

import pytest
from fuzz.targets import TARGETS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Characters that steer each parser into its interesting branches.
SYNTAX = {
    "text": "ab \n\r\t\ufeff",
    "csv": 'tex,label"\n\r\t ab',
    "word_tag": "a/B /\n\t",
    "conll": "a B\t\n#-DOCSTART",
    "conllu": "1-2.\t_aB\n#",
    "pairs": "ab\t\n ",
    "series": 't,value0.1e-+naif"\n',
    "long_series": 'id,t,vA1.0e-+nai"\n',
    "tsf": "@attribute data relation string numeric date horizon\n:,?1.5-T 0",
    "config": "task:data{}[],=.\n\"' -#lr0.1",
    "overrides": "train.lr=data.model[],{}:0.1\n nul",
    "vocab": '{"specials":[]"tokens",<unk>}',
    "tokenizer": '{"model":"type":"BPE","vocab":{"merges":[]},"a b":0,null}',
    "metadata": '{"model_type":language_"model_config",{}[]vocab_size:10}',
}
FAST = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _quiet():
    logging.getLogger("rnnkit.data").setLevel(logging.CRITICAL)


@pytest.mark.parametrize("target", sorted(TARGETS))
@FAST
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes(target, data):
    _quiet()
    TARGETS[target](data)


@pytest.mark.parametrize("target", sorted(TARGETS))
@FAST
@given(data=st.data())
def test_format_shaped_text(target, data):
    _quiet()
    alphabet = st.sampled_from(SYNTAX[target])
    text = data.draw(st.text(alphabet, max_size=200))
    TARGETS[target](text.encode("utf-8"))
