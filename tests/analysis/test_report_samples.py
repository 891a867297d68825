"""The report's classification sample scores the whole file, and samples show <unk>."""

from __future__ import annotations

import re

from rnnkit.analysis.report import build_report
from rnnkit.analysis.report_samples import visible_tokens
from rnnkit.data import Vocab
from rnnkit.tasks import load_run
from rnnkit.tasks.data_files import resolve_paths


def test_the_confusion_matrix_covers_the_whole_validation_file(classifier_run):
    page = build_report(classifier_run).read_text(encoding="utf-8")
    run = load_run(classifier_run)
    valid = resolve_paths(run.config.data)["valid"]
    examples = run.task.read(valid)
    accuracy = run.task.evaluate(run.model, examples)["accuracy"]
    stated = re.search(r"All (\d+) examples of [^:]+: accuracy (\d\.\d{3})", page)
    assert stated is not None
    assert int(stated.group(1)) == len(examples) > 32
    assert float(stated.group(2)) == round(accuracy, 3)


def test_unknown_words_are_shown_not_dropped():
    vocab = Vocab.build([["the", "film"]])
    ids = [vocab.bos_id, *vocab.encode(["the", "zorblax", "film"]), vocab.eos_id, vocab.pad_id]
    assert visible_tokens(vocab, ids) == ["the", "<unk>", "film"]
