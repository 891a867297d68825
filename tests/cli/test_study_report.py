"""`rnnkit report STUDY_DIR`: the tuning report of a study `rnnkit tune` wrote."""

from __future__ import annotations

import csv
import json
import re
from html import escape
from pathlib import Path

from tests.cli.conftest import write
from tests.cli.test_tune_search import grid_config

from rnnkit.analysis.study_report import build_study_report, is_study, read_study

BEST_CURVES = "Best trial's curves"


def test_report_of_a_real_grid_study_shows_every_trial_and_the_best_curves(cli, tmp_path):
    assert cli("tune", grid_config(tmp_path), "--out", "study").exit_code == 0
    assert is_study("study")
    result = cli("report", "study")
    assert result.exit_code == 0, result.output
    page = Path("study/report.html").read_text()
    assert "rnnkit tuning report: study" in page
    for title in ("Study", "Trials", "Metric against each hyperparameter",
                  "Best trial's curves"):
        assert f"<h2>{escape(title)}</h2>" in page
    assert 'class="unavailable"' not in page
    with open("study/trials.csv", newline="") as handle:
        trials = list(csv.DictReader(handle))
    table = page[page.index("<h2>Trials</h2>"):page.index("<h2>Metric against")]
    assert len(re.findall(r"<tr>", table)) == len(trials) + 1  # header + one row per trial
    for trial in trials:
        assert f"<td>{trial['valid_loss']}</td>" in table
    best = json.loads(Path("study/study.json").read_text())["best"]
    assert f'<td>best trial</td><td class="num">{best["number"]}</td>' in page
    assert sorted(p.name for p in Path("study/report_images").iterdir()) == [
        "best_trial_curves.png", "metric_by_parameter.png"]


def test_pruned_trials_are_kept_and_a_study_without_a_best_says_why(tmp_path):
    study = tmp_path / "s"
    study.mkdir()
    write(study / "study.json", json.dumps({"engine": "optuna", "monitor": "valid_loss",
                                            "mode": "min", "trials": 2, "best": None}))
    write(study / "trials.csv", "trial,state,valid_loss,train.lr,evaluations,seconds,run_dir\n"
          "0,pruned,2.5,0.001,1,1.0,\n1,fail,,0.01,0,0.5,\n")
    assert [row["state"] for row in read_study(study).rows] == ["pruned", "fail"]
    page = build_study_report(study).read_text()
    assert "<td>pruned</td>" in page and "<td>fail</td>" in page
    assert "metric_by_parameter.png" in {p.name for p in (study / "report_images").iterdir()}
    curves = page[page.index(f"<h2>{escape(BEST_CURVES)}</h2>"):]
    assert "no completed trial with a run directory" in curves
