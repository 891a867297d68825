"""Entity-level metrics agree with conlleval (the CoNLL-2000 Perl script) on a known file."""

from __future__ import annotations

import pytest

from rnnkit.data.spans import to_spans
from rnnkit.train.metrics import entity_scores

# word, gold, guessed — conlleval's input format; invalid sequences included on purpose
# (I- after O in gold and guesses, a type change inside a chunk, I-ORG opening a sentence).
CONLL_FILE = """\
Rockwell B-ORG B-ORG
International I-ORG I-ORG
Corp. I-ORG O
's O O
Tulsa B-LOC B-LOC
unit O O
said O O
it O O
signed O O
a O O
tentative O O
agreement O O
with O O
Boeing B-ORG I-ORG
Co. I-ORG I-ORG
. O O

The O O
old O O
man O B-PER
saw O I-PER
Jean B-PER I-PER
Paul I-PER B-PER
in O O
New B-geo-loc B-geo-loc
York I-geo-loc I-LOC
today O O

EU I-ORG B-ORG
rejects O O
German I-MISC I-MISC
call O O
to O O
boycott O I-MISC
British B-MISC I-MISC
lamb I-MISC O
. O O
"""
# `perl conlleval < CONLL_FILE` (conlleval version 2004-01-26) printed:
# processed 35 tokens with 8 phrases; found: 10 phrases; correct: 4.
# accuracy:  68.57%; precision:  40.00%; recall:  50.00%; FB1:  44.44
#               LOC: precision:  50.00%; recall: 100.00%; FB1:  66.67  2
#              MISC: precision:  50.00%; recall:  50.00%; FB1:  50.00  2
#               ORG: precision:  66.67%; recall:  66.67%; FB1:  66.67  3
#               PER: precision:   0.00%; recall:   0.00%; FB1:   0.00  2
#           geo-loc: precision:   0.00%; recall:   0.00%; FB1:   0.00  1
CONLLEVAL_PER_TYPE = {  # type: (precision %, recall %, FB1, found)
    "LOC": (50.00, 100.00, 66.67, 2), "MISC": (50.00, 50.00, 50.00, 2),
    "ORG": (66.67, 66.67, 66.67, 3), "PER": (0.00, 0.00, 0.00, 2),
    "geo-loc": (0.00, 0.00, 0.00, 1),
}


def read_conll(text: str) -> tuple[list[list[str]], list[list[str]]]:
    gold, guessed = [], []
    for block in text.strip().split("\n\n"):
        rows = [line.split() for line in block.splitlines()]
        gold.append([row[1] for row in rows])
        guessed.append([row[2] for row in rows])
    return gold, guessed


def test_scores_equal_conllevals_on_its_output_for_a_known_file():
    gold, guessed = read_conll(CONLL_FILE)
    scores = entity_scores([to_spans(s) for s in guessed], [to_spans(s) for s in gold])
    assert (scores["gold"], scores["found"], scores["correct"]) == (8, 10, 4)
    assert round(100 * scores["precision"], 2) == 40.00
    assert round(100 * scores["recall"], 2) == 50.00
    assert round(100 * scores["f1"], 2) == 44.44
    assert sorted(scores["per_type"]) == sorted(CONLLEVAL_PER_TYPE)  # conlleval sorts bytewise
    for kind, (precision, recall, f1, found) in CONLLEVAL_PER_TYPE.items():
        row = scores["per_type"][kind]
        assert (round(100 * row["precision"], 2), round(100 * row["recall"], 2),
                round(100 * row["f1"], 2), row["found"]) == (precision, recall, f1, found)
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 0.5 + 2 / 3 + 0 + 0) / 5)
    tokens = [pair for sg, sp in zip(gold, guessed, strict=True)
              for pair in zip(sg, sp, strict=True)]
    assert round(100 * sum(g == p for g, p in tokens) / len(tokens), 2) == 68.57


def test_entity_scores_edge_cases():
    assert entity_scores([[]], [[]])["f1"] == 0.0
    perfect = entity_scores([[("PER", 0, 2)]], [[("PER", 0, 2)]])
    assert (perfect["precision"], perfect["recall"], perfect["f1"]) == (1.0, 1.0, 1.0)
    shifted = entity_scores([[("PER", 0, 1)]], [[("PER", 0, 2)]])
    assert (shifted["correct"], shifted["f1"]) == (0, 0.0)
    with pytest.raises(ValueError, match="as many sentences as gold"):
        entity_scores([[]], [[], []])
