"""train.save_top_k: the N best checkpoints by the monitored metric, pruned by name."""

from __future__ import annotations

import pytest
from tests.train.train_toys import RegressionSource, Regressor, quiet_config

from rnnkit.tasks.run_dir import clear_run_files
from rnnkit.train import TrainConfig, Trainer, load_checkpoint, seed_everything
from rnnkit.train.top_k import rank

SCRIPT = [5.0, 3.0, 4.0, 1.0, 2.0, 6.0]  # valid_loss at steps 1..6


def _tops(run_dir):
    return sorted(p.name for p in (run_dir / "checkpoints").iterdir() if p.name.startswith("top"))


def _scripted(run_dir, max_steps, start=0, mode="min"):
    seed_everything(0)
    values = iter(SCRIPT[start:])
    return Trainer(Regressor(), RegressionSource(), quiet_config(
        max_steps=max_steps, eval_every=1, save_top_k=2),
        evaluate=lambda model: {"valid_loss": next(values)}, monitor_mode=mode, run_dir=run_dir)


def test_keeps_the_two_best_and_deletes_only_what_it_wrote(tmp_path):
    (tmp_path / "checkpoints" / "mine").mkdir(parents=True)
    _scripted(tmp_path, 6).fit()
    # 5@1, 3@2 kept; 4@3 pushes out 5@1; 1@4 pushes out 4@3; 2@5 pushes out 3@2; 6@6 stays out.
    assert _tops(tmp_path) == ["top-step-00000004", "top-step-00000005"]
    assert (tmp_path / "checkpoints" / "mine").is_dir()
    best = load_checkpoint(tmp_path / "checkpoints" / "best")
    assert best.metadata["trainer"]["step"] == 4
    top = load_checkpoint(tmp_path / "checkpoints" / "top-step-00000005")
    assert top.metadata["trainer"]["metrics"] == {"valid_loss": 2.0}
    assert top.trainer_state is None  # weights and metadata only; resuming uses `last`


def test_max_mode_keeps_the_largest(tmp_path):
    _scripted(tmp_path, 6, mode="max").fit()
    assert _tops(tmp_path) == ["top-step-00000001", "top-step-00000006"]


def test_a_resumed_run_goes_on_pruning_the_same_set(tmp_path):
    _scripted(tmp_path, 3).fit()
    assert _tops(tmp_path) == ["top-step-00000002", "top-step-00000003"]
    _scripted(tmp_path, 6, start=3).fit(resume=True)
    assert _tops(tmp_path) == ["top-step-00000004", "top-step-00000005"]


def test_overwrite_clears_them_with_the_run(tmp_path):
    _scripted(tmp_path, 2).fit()
    assert clear_run_files(tmp_path) == []
    assert not (tmp_path / "checkpoints").exists()


def test_rank_ties_keep_the_earlier_and_non_finite_never_enters():
    kept = [[1.0, 1], [2.0, 2]]
    assert rank(kept, 2.0, 3, 2, "min") == (False, kept, [])
    assert rank(kept, float("nan"), 3, 2, "min") == (False, kept, [])
    assert rank(kept, 1.5, 3, 2, "min") == (True, [[1.0, 1], [1.5, 3]], [2])
    assert rank(kept, 1.5, 2, 2, "min") == (False, kept, [])  # step 2 is already kept


@pytest.mark.parametrize("value", [0, -1])
def test_config_refuses_a_non_positive_k(value):
    with pytest.raises(ValueError, match=r"TrainConfig\.save_top_k: expected an integer >= 1"):
        TrainConfig(max_steps=1, save_top_k=value)
