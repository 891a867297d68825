"""Every ready config in examples/ trains (shortened to a few steps) and leaves a usable run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.suffix in (".yaml", ".toml"))
HEAVY = {"shakespeare_char_lm.yaml", "dates_seq2seq.yaml", "pos_tagging.yaml"}


def test_every_task_has_an_example():
    import yaml

    tasks = set()
    for path in EXAMPLES:
        if path.suffix == ".yaml":
            tasks.add(yaml.safe_load(path.read_text())["task"])
    tasks |= {"forecasting", "language_model"}  # sine.toml, hello.toml
    from rnnkit.tasks import TASK_NAMES

    assert tasks == set(TASK_NAMES)


@pytest.mark.parametrize(
    "example",
    [pytest.param(p, id=p.name, marks=[pytest.mark.slow] if p.name in HEAVY else [])
     for p in EXAMPLES],
)
def test_example_trains_briefly(cli, example):
    Path("examples").symlink_to(ROOT / "examples")  # configs name files relative to the root
    result = cli("train", example, "--out", "run", "--no-progress",
                 "--set", "train.max_steps=2", "--set", "train.eval_every=2",
                 "--set", "data.eval_limit=16")
    assert result.exit_code == 0, result.output
    summary = json.loads(Path("run/summary.json").read_text())
    assert summary["steps"] == 2 and summary["stop_reason"] == "max_steps"
    assert summary["valid_metrics"]
