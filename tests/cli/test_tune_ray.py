"""`rnnkit tune --engine ray` on a local 2-CPU Ray runtime: ASHA stops poor trials early, PBT
copies weights between trials through rnnkit checkpoints; both record the best config, and the
best ASHA trial's config trains again to the same metric. Skipped without Ray."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from tests.cli.conftest import write
from tests.tasks.small_data import small_copy

from rnnkit.tasks import load_config, train

pytest.importorskip("ray.tune")
ROOT = Path(__file__).resolve().parents[2]


def ray_config(tmp_path: Path, tune: str) -> Path:
    paths = small_copy("names", tmp_path, {"train": 120, "valid": 30}, header=True)
    return write(tmp_path / "ray.yaml", f"""task: classification
data: {{dataset: names, train: {paths['train']}, valid: {paths['valid']}, tokenizer: char}}
model: {{embedding_size: 8, hidden_size: 8}}
train: {{max_steps: 8, eval_every: 2, batch_size: 16, seed: 0}}
tune:
{tune}""")


def example_search(name: str) -> str:
    """The ``tune:`` section of ``examples/<name>`` (so the example's settings are exercised)."""
    text = (ROOT / "examples" / name).read_text()
    return text[text.index("tune:\n") + len("tune:\n"):]


def trials(study: str) -> list[dict[str, str]]:
    with open(Path(study) / "trials.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_asha_stops_poor_trials_and_its_best_config_trains_to_the_same_metric(cli, tmp_path):
    # the example's strategy and pruner, over a range whose low end (1e-5) barely learns, so
    # ASHA has clearly poor trials to stop whatever order the two CPUs finish them in
    search = example_search("tune_ray_asha.yaml")
    config = ray_config(tmp_path, search[:search.index("  model.cell")]
                        + "  train.lr: {type: float, low: 0.00001, high: 0.03, log: true}\n")
    result = cli("tune", config, "--engine", "ray", "--trials", "4", "--out", "asha")
    assert result.exit_code == 0, result.output
    rows = trials("asha")
    assert len(rows) == 4 and "Ran 4 new trials." in result.stdout
    states = sorted(row["state"] for row in rows)
    assert "pruned" in states and "complete" in states
    assert all(int(row["evaluations"]) < 4 for row in rows if row["state"] == "pruned")
    assert all(int(row["evaluations"]) == 4 for row in rows if row["state"] == "complete")
    best = json.loads(Path("asha/study.json").read_text())["best"]
    assert best["value"] == min(float(r["valid_loss"]) for r in rows if r["state"] == "complete")
    ran = Path(best["run_dir"]) / "config.yaml"
    assert Path("asha/best_config.yaml").read_text() == ran.read_text()
    again = train(load_config("asha/best_config.yaml"), tmp_path / "again")
    assert again.fit.best_metric == best["value"]  # exact on CPU, whichever engine found it


def test_pbt_copies_weights_between_trials_and_records_the_best(cli, tmp_path):
    config = ray_config(tmp_path, example_search("tune_ray_pbt.yaml")
                        .replace("perturbation_interval: 2", "perturbation_interval: 1"))
    result = cli("tune", config, "--engine", "ray", "--trials", "2", "--out", "pbt")
    assert result.exit_code == 0, result.output
    rows = trials("pbt")
    assert [row["state"] for row in rows] == ["complete", "complete"]
    policies = list(Path("pbt/ray").glob("*/pbt_policy_*.txt"))
    assert policies, "PBT never exploited a trial"
    best = json.loads(Path("pbt/study.json").read_text())["best"]
    chosen = yaml.safe_load(Path("pbt/best_config.yaml").read_text())
    assert chosen["train"]["lr"] == pytest.approx(best["params"]["train.lr"])
    assert 0.0001 <= chosen["train"]["lr"] <= 0.01  # PBT's scaling kept inside the range


class StopsEverything:
    """A stand-in Ray scheduler whose every decision is to stop the trial."""

    STOP, CONTINUE = "STOP", "CONTINUE"

    def on_trial_result(self, tune_controller, trial, result):
        return self.STOP


def test_schedulers_let_a_trial_at_its_last_evaluation_finish():
    from rnnkit.tasks.tune_ray import finishing_last_evaluation

    scheduler = finishing_last_evaluation(StopsEverything, 4)()
    assert [scheduler.on_trial_result(None, None, {"training_iteration": step})
            for step in (1, 3, 4, 5)] == ["STOP", "STOP", "CONTINUE", "CONTINUE"]
    assert scheduler.on_trial_result(None, None, {}) == "STOP"


@pytest.mark.parametrize("pruner", ["asha", "hyperband", "median"])
def test_stopping_pruners_keep_the_last_evaluation(pruner, tmp_path):
    from ray.tune import schedulers

    from rnnkit.tasks.tune_ray import scheduler

    config = load_config(ray_config(tmp_path, f"  pruner: {pruner}\n"
                                    "  train.lr: {type: float, low: 0.001, high: 0.01}\n"))
    chosen = scheduler(config.tune, config)
    base = (schedulers.MedianStoppingRule if pruner == "median"
            else schedulers.AsyncHyperBandScheduler)
    assert isinstance(chosen, base) and type(chosen) is not base
