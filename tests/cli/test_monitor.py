"""`train.monitor` / `train.monitor_mode` choose the metric behind `best` and early stopping,
and the end-of-training summary says which checkpoint each line describes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cli.conftest import write
from tests.cli.test_errors import assert_user_error

from rnnkit.tasks import load_config
from rnnkit.tasks.errors import ConfigError
from rnnkit.tasks.monitor import known_metrics, mode_for, resolve_monitor
from rnnkit.tasks.seq2seq import Seq2SeqTask

PAIRS = "".join(f"{a}\t{b}\n" for a, b in [("ab", "ba"), ("abc", "cba"), ("ca", "ac"),
                                            ("bca", "acb"), ("cab", "bac"), ("bb", "bb")] * 4)


def seq2seq_config(tmp_path: Path, train: str = "") -> Path:
    write(tmp_path / "pairs.tsv", PAIRS)
    return write(tmp_path / "rev.yaml", f"""task: seq2seq
data: {{train: pairs.tsv, valid: pairs.tsv}}
model: {{hidden_size: 8, embedding_size: 4}}
train: {{max_steps: 4, eval_every: 1, batch_size: 8, progress: false{train}}}
""")


def test_modes_follow_the_metric_name():
    assert [mode_for(n) for n in ("valid_loss", "valid_naive_mase", "valid_perplexity",
                                  "valid_bleu", "valid_chrf", "valid_PER_f1")] == \
        ["min", "min", "min", "max", "max", "max"]


def test_seq2seq_defaults_to_loss_and_a_bare_name_gets_the_valid_prefix():
    task = Seq2SeqTask.__new__(Seq2SeqTask)
    assert resolve_monitor(task, None, None) == ("valid_loss", "min")
    assert resolve_monitor(task, "chrf", None) == ("valid_chrf", "max")
    assert resolve_monitor(task, "valid_loss", "max") == ("valid_loss", "max")


def test_a_misspelt_monitor_lists_the_task_metrics():
    task = Seq2SeqTask.__new__(Seq2SeqTask)
    with pytest.raises(ConfigError) as caught:
        resolve_monitor(task, "blue", None)
    assert str(caught.value) == (
        "train.monitor: expected one of valid_loss, valid_exact_match, valid_bleu, valid_chrf "
        "(the validation metrics of task seq2seq), got 'blue' (did you mean 'valid_bleu'?)")
    assert known_metrics("tagging", entity_scores=True)[-1] == "valid_macro_f1"


def test_monitor_mode_is_checked_against_its_choices():
    with pytest.raises(ConfigError, match=r"train.monitor_mode: expected one of 'min', 'max'"):
        load_config(None, ["train.monitor_mode=lowest"])


def test_cli_misspelt_monitor_is_a_user_error_before_training(cli, tmp_path):
    config = seq2seq_config(tmp_path)
    result = cli("train", config, "--out", "r", "--set", "train.monitor=valid_blue")
    assert_user_error(result, "train.monitor: expected one of valid_loss", "valid_chrf",
                      "got 'valid_blue' (did you mean 'valid_bleu'?)")
    assert not Path("r", "checkpoints").exists()


def test_monitor_picks_best_and_summary_names_the_checkpoint(cli, tmp_path):
    config = seq2seq_config(tmp_path, ", monitor: chrf")
    result = cli("train", config, "--out", "r")
    assert result.exit_code == 0, result.output
    summary = json.loads(Path("r", "summary.json").read_text())
    assert summary["monitor"] == "valid_chrf"
    best = json.loads(Path("r", "checkpoints", "best", "metadata.json").read_text())["trainer"]
    assert best["monitor"] == "valid_chrf" and best["monitor_mode"] == "max"
    assert summary["checkpoint_step"] == summary["best_step"] == best["step"]
    assert summary["valid_metrics"] == best["metrics"]  # the best checkpoint's, not the last
    label = f"(best checkpoint, step {summary['best_step']})"
    assert f"Validation {label}: valid_loss=" in result.output
    if summary["best_step"] != summary["steps"]:
        assert f"Last evaluation (step {summary['steps']}, not kept as best)" in result.output


def test_a_budget_of_ones_own_replaces_the_task_defaults():
    lm = load_config(None, ["train.max_steps=50"]).train
    assert (lm.max_steps, lm.max_time, lm.max_epochs) == (50, None, None)
    assert load_config(None).train.max_time == 3.0  # no budget given: the task's default
    classifier = load_config(None, ["task=classification", "train.max_steps=7"]).train
    assert (classifier.max_steps, classifier.max_epochs) == (7, None)
