"""`rnnkit train` with stderr piped (CI, nohup, a notebook) prints the model summary and one
line per evaluation instead of staying silent between its first and last lines."""

from __future__ import annotations

import re

from tests.cli.test_errors import hello_config


def test_piped_training_prints_a_line_per_evaluation(cli, tmp_path):
    result = cli("train", hello_config(tmp_path), "--out", "r",
                 "--set", "train.max_steps=2", "--set", "train.eval_every=1")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert re.fullmatch(r"model: LanguageModel, [\d,]+ parameters \(all trainable\)", lines[1])
    evaluations = [line for line in lines if line.startswith("step ")]
    assert [line.split("  ")[0] for line in evaluations] == ["step 1/2", "step 2/2"]
    assert re.search(r"  loss \d\.\d{4}  valid_loss [\d.]+  valid_perplexity [\d.]+  .*"
                     r"elapsed \d+:\d\d  eta \d+:\d\d$", evaluations[0])
