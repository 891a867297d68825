"""`rnnkit tune`: grid search counted up front, the trial table, the files, the best config
exactly as its trial ran it (and reproducing its metric), the count of new trials."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from tests.cli.conftest import write
from tests.tasks.small_data import small_copy

from rnnkit.tasks import load_config, train


def grid_config(tmp_path: Path, extra: str = "") -> Path:
    paths = small_copy("names", tmp_path, {"train": 120, "valid": 30}, header=True)
    return write(tmp_path / "grid.yaml", f"""task: classification
data: {{dataset: names, train: {paths['train']}, valid: {paths['valid']}, tokenizer: char}}
model: {{embedding_size: 8, hidden_size: 8}}
train: {{max_steps: 4, eval_every: 2, batch_size: 16, seed: 3}}
tune:
  strategy: grid
  pruner: none
  model.cell: [lstm, gru]
  train.optimizer: [adam, rmsprop]
{extra}""")


def test_grid_runs_every_combination_and_writes_what_the_best_trial_ran(cli, tmp_path):
    result = cli("tune", grid_config(tmp_path), "--out", "study",
                 "--set", "train.max_steps=2")  # --set reaches every trial
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "grid: 2 x 2 = 4 combinations (model.cell: 2, train.optimizer: 2)"
    assert lines[1].split() == ["trial", "state", "valid_loss", "model.cell", "train.optimizer",
                                "evals", "time"]
    with open("study/trials.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["model.cell"], r["train.optimizer"]) for r in rows} == {
        ("lstm", "adam"), ("lstm", "rmsprop"), ("gru", "adam"), ("gru", "rmsprop")}
    assert {r["state"] for r in rows} == {"complete"}
    study = json.loads(Path("study/study.json").read_text())
    best = study["best"]
    assert best["value"] == min(float(r["valid_loss"]) for r in rows)
    # best_config.yaml is byte for byte the config the best trial recorded in its run
    ran = Path(f"study/trial-{best['number']}/config.yaml").read_text()
    assert Path("study/best_config.yaml").read_text() == ran
    assert yaml.safe_load(ran)["train"]["max_steps"] == 2 and "tune: null" in ran
    assert "Ran 4 new trials." in result.stdout
    assert "Train it: rnnkit train study/best_config.yaml --out study-best" in result.stdout


def test_retraining_the_best_config_reproduces_its_metric_exactly(cli, tmp_path):
    assert cli("tune", grid_config(tmp_path), "--out", "study").exit_code == 0
    best = json.loads(Path("study/study.json").read_text())["best"]
    again = train(load_config("study/best_config.yaml"), tmp_path / "again")
    assert again.fit.best_metric == best["value"]  # exact, on CPU


def test_a_second_call_says_how_many_new_trials_ran(cli, tmp_path):
    config = grid_config(tmp_path)
    assert cli("tune", config, "--out", "study", "--trials", "3").exit_code == 0
    again = cli("tune", config, "--out", "study", "--trials", "2",
                "--set", "train.max_steps=6")
    assert again.exit_code == 0, again.output
    assert "Ran 0 new trials (the study holds 3 in all)." in again.stdout
    assert "--trials counts the study's total" in again.stdout
    # the best trial ran max_steps=4; the --set of this call does not leak into its config
    assert yaml.safe_load(Path("study/best_config.yaml").read_text())["train"]["max_steps"] == 4


@pytest.mark.parametrize(("tune", "message"), [
    ("  model.hidden_size: {type: int, low: 4, high: 64, log: true}\n",
     "tune.model.hidden_size: a grid needs evenly spaced values"),
    ("  train.lr: {type: float, low: 0.001, high: 0.01}\n",
     "tune.train.lr: expected a step (or choices) for a float in a grid"),
])
def test_a_grid_needs_enumerable_values(cli, tmp_path, tune, message):
    result = cli("tune", grid_config(tmp_path, tune), "--out", "study")
    assert result.exit_code == 2 and message in result.stderr


def test_pbt_needs_the_ray_engine(cli, tmp_path):
    config = grid_config(tmp_path).read_text().replace("strategy: grid", "strategy: random")
    path = write(tmp_path / "pbt.yaml", config.replace("pruner: none", "pruner: pbt"))
    result = cli("tune", path, "--trials", "2")
    assert result.exit_code == 2
    assert "tune.pruner: pbt (population-based training) needs --engine ray" in result.stderr


def test_the_grid_example_counts_its_combinations(cli, tmp_path):
    root = Path(__file__).resolve().parents[2]
    paths = small_copy("names", tmp_path, {"train": 60, "valid": 20}, header=True)
    result = cli("tune", root / "examples/tune_grid.yaml", "--trials", "2", "--out", "study",
                 "--set", f"data.train={paths['train']}", "--set", f"data.valid={paths['valid']}",
                 "--set", "train.max_epochs=1")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == ("grid: 2 x 2 x 2 = 8 combinations (model.cell: 2, "
                                             "model.hidden_size: 2, train.lr: 2); running 2 of "
                                             "them")
    assert len(trials_of("study")) == 2


def trials_of(study: str) -> list[dict[str, str]]:
    with open(Path(study) / "trials.csv", newline="") as handle:
        return list(csv.DictReader(handle))
