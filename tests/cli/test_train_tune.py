"""--resume, tune (one worker, two workers on one SQLite study), datasets, python -m rnnkit."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tests.cli.conftest import write
from tests.tasks.small_data import small_copy

ROOT = Path(__file__).resolve().parents[2]
HELLO = ("task: language_model\ndata: {dataset: hello, seq_len: 8}\n"
         "model: {hidden_size: 8, embedding_size: 4}\ntrain: {batch_size: 4, eval_every: 3}\n")


def losses(run: str) -> list[float]:
    with open(Path(run) / "metrics.csv", newline="") as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


def test_resume_continues_a_stopped_run_exactly(cli, tmp_path):
    config = write(tmp_path / "hello.yaml", HELLO)
    assert cli("train", config, "--out", "full", "--set", "train.max_steps=12",
               "--no-progress").exit_code == 0
    assert cli("train", config, "--out", "part", "--set", "train.max_steps=6",
               "--no-progress").exit_code == 0
    result = cli("train", config, "--out", "part", "--resume", "--set", "train.max_steps=12",
                 "--no-progress")
    assert result.exit_code == 0, result.output
    assert "after 12 steps" in result.stdout
    assert losses("part") == pytest.approx(losses("full"), rel=1e-6, abs=1e-7)
    assert len(losses("part")) == 12


def test_resume_without_config_uses_the_saved_one(cli, tmp_path):
    config = write(tmp_path / "hello.yaml", HELLO)
    assert cli("train", config, "--out", "r", "--set", "train.max_steps=5",
               "--no-progress").exit_code == 0
    result = cli("train", "--out", "r", "--resume", "--set", "train.max_steps=8", "--no-progress")
    assert result.exit_code == 0, result.output
    assert json.loads(Path("r/summary.json").read_text())["steps"] == 8


def names_tune_config(tmp_path: Path) -> Path:
    paths = small_copy("names", tmp_path, {"train": 200, "valid": 40}, header=True)
    return write(tmp_path / "tune.yaml", f"""task: classification
data: {{dataset: names, train: {paths['train']}, valid: {paths['valid']}, tokenizer: char}}
model: {{embedding_size: 8}}
train: {{max_steps: 4, eval_every: 2, batch_size: 16}}
tune:
  model.hidden_size: {{type: int, low: 4, high: 32, log: true}}
  model.cell: {{type: categorical, choices: [lstm, gru]}}
  train.lr: {{type: float, low: 0.0001, high: 0.01, log: true}}
""")


def test_tune_runs_trials_and_writes_the_best_config(cli, tmp_path):
    config = names_tune_config(tmp_path)
    result = cli("tune", config, "--trials", "3", "--out", "study")
    assert result.exit_code == 0, result.output
    assert Path("study/study.db").is_file()
    rows = result.stderr.splitlines()
    assert rows[0].split()[:3] == ["trial", "state", "valid_loss"]
    assert [row.split()[0] for row in rows[1:]] == ["0", "1", "2"]  # one row per trial
    best = Path("study/best_config.yaml")
    assert best.is_file() and "tune: null" in best.read_text()
    import yaml

    chosen = yaml.safe_load(best.read_text())
    assert 4 <= chosen["model"]["hidden_size"] <= 32 and chosen["model"]["cell"] in ("lstm", "gru")
    again = cli("train", best, "--out", "best-run", "--no-progress")
    assert again.exit_code == 0, again.output


def test_tune_without_search_space_is_a_user_error(cli, tmp_path):
    config = write(tmp_path / "h.yaml", HELLO)
    result = cli("tune", config, "--trials", "1")
    assert result.exit_code == 2 and "no tune: section" in result.stderr


@pytest.mark.slow
def test_two_tune_workers_share_one_sqlite_study(tmp_path):
    config = names_tune_config(tmp_path)
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "RNNKIT_CACHE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "rnnkit", "tune", str(config), "--trials", "4",
               "--storage", storage, "--study", "shared"]
    workers = [subprocess.Popen([*command, "--out", str(tmp_path / f"w{i}")], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for i in range(2)]
    for worker in workers:
        _, stderr = worker.communicate(timeout=600)
        assert worker.returncode == 0, stderr.decode()
    import optuna

    study = optuna.load_study(study_name="shared", storage=storage)
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]  # 4 in total, unique numbers
    assert all(t.state.is_finished() for t in study.trials)
    runs = sorted(path.name for path in tmp_path.glob("w*/trial-*"))
    assert runs == [f"trial-{number}" for number in range(4)]  # each trained by one worker


def _claim_and_run_trials(storage: str, trials: int) -> None:
    """A tune worker with a trivial objective, so that workers race for every trial."""
    from rnnkit.tasks import tune

    study = tune._open_study(tune._optuna(), storage, "race", "min")
    slot_lock = tune._trial_slot_lock(storage)
    while (trial := tune._claim_trial(study, trials, slot_lock, None)) is not None:
        tune._run_trial(study, trial, lambda trial: trial.suggest_float("x", 0.0, 1.0))


def test_racing_workers_on_one_sqlite_study_start_exactly_the_total(tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 'race.db'}"
    optuna.create_study(study_name="race", storage=storage)  # the schema, before the race
    with ThreadPoolExecutor(3) as pool:  # 3 workers; their errors are re-raised here
        list(pool.map(_claim_and_run_trials, [storage] * 3, [12] * 3, timeout=120))
    study = optuna.load_study(study_name="race", storage=storage)
    assert sorted(t.number for t in study.trials) == list(range(12))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_a_new_sqlite_studys_tables_are_created_under_a_lock(tmp_path, monkeypatch):
    """Workers started together on a new SQLite file raced to create its tables, and the
    loser failed ("table studies already exists"): the storage is created under a lock."""
    from filelock import FileLock, Timeout

    from rnnkit.tasks import tune

    optuna = tune._optuna()
    database = tmp_path / "new.db"
    held = []

    class StorageNotingTheLock(optuna.storages.RDBStorage):
        def __init__(self, *args, **kwargs):
            try:
                FileLock(str(database.resolve()) + ".schema.lock").acquire(timeout=0)
                held.append(False)  # another worker could be creating the tables meanwhile
            except Timeout:
                held.append(True)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", StorageNotingTheLock)
    storage = tune._storage(optuna, f"sqlite:///{database}", print)
    assert held == [True]
    assert tune._open_study(optuna, storage, "new", "min").study_name == "new"


def test_only_sqlite_files_get_a_trial_slot_lock(tmp_path):
    from filelock import FileLock

    from rnnkit.tasks.tune import _trial_slot_lock

    lock = _trial_slot_lock(f"sqlite:///{tmp_path / 'study.db'}")
    assert isinstance(lock, FileLock)
    assert lock.lock_file == str((tmp_path / "study.db").resolve()) + ".trials.lock"
    for storage in ("postgresql://user:pw@db-host/rnnkit", "sqlite://", "sqlite:///:memory:"):
        assert not isinstance(_trial_slot_lock(storage), FileLock)


def test_datasets_list_and_prepare_a_generated_one(cli, tmp_path):
    listed = cli("datasets", "list")
    assert listed.exit_code == 0
    for name in ("shakespeare", "rotten_tomatoes", "brown_pos", "names", "sunspots", "hello"):
        assert name in listed.stdout
    prepared = cli("datasets", "prepare", "sine", "--cache-dir", "cache2")
    assert prepared.exit_code == 0, prepared.output
    assert Path("cache2/datasets/sine/train.csv").is_file()


def test_help_on_every_command(cli):
    for command in ([], ["train"], ["evaluate"], ["generate"], ["predict"], ["tune"],
                    ["export"], ["datasets"], ["datasets", "prepare"]):
        result = cli(*command, "--help")
        assert result.exit_code == 0 and "Usage" in result.stdout, command


def test_python_dash_m_is_the_same_command():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run([sys.executable, "-m", "rnnkit", "--version"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("rnnkit ")
    missing = subprocess.run([sys.executable, "-m", "rnnkit", "train", "missing.yaml"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and missing.stderr.startswith("error: config file not found")


def test_analysis_commands_are_registered(cli):
    listing = cli("--help").stdout
    for command in ("analyze", "report", "demo"):
        assert command in listing
        assert cli(command, "--help").exit_code == 0


def test_a_study_of_only_pruned_trials_has_no_best(tmp_path):
    """A pruned trial carries its last reported value; it must not be taken for a result."""
    import optuna

    from rnnkit.tasks import tune
    from rnnkit.tasks.tune_results import best_trial

    study = optuna.create_study(direction="minimize")
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial.report(0.5, step=0)
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    assert study.trials[0].value == 0.5  # optuna keeps the intermediate value
    records = [tune._record(t, "min") for t in study.trials]
    assert (records[0].state, records[0].value) == ("pruned", 0.5)
    assert best_trial(records, "min") is None
