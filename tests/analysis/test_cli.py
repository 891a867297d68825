"""``rnnkit analyze``, ``rnnkit report`` and ``rnnkit demo vanishing-gradients``."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from rnnkit.analysis.demo import ClippingConfig, DemoConfig
from rnnkit.cli.main import app

runner = CliRunner()


def test_commands_are_registered():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("analyze", "report", "demo"):
        assert command in result.output


def test_demo_writes_results_and_report(tmp_path, monkeypatch):
    # The quick demo itself is tested in test_demo.py; here a tinier one checks the wiring.
    tiny = DemoConfig(delays=(2, 4), hidden_size=4, steps=3, batch_size=4, eval_size=8,
                      flow_size=4, clipping=ClippingConfig(steps=3))
    monkeypatch.setattr(DemoConfig, "quick", classmethod(lambda cls: tiny))
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "vanishing-gradients", "--quick", "--seed", "3",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "memory length at delay 4" in result.output
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["delays"] == [2, 4] and results["config"]["seed"] == 3
    assert "--quick --seed 3" in (out / "report.html").read_text()


def test_analyze_gradient_flow_prints_and_plots(lm_run, tmp_path):
    result = runner.invoke(app, ["analyze", str(lm_run), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "verdict" in result.output and "rnn layer 0" in result.output
    assert (tmp_path / "gradient_flow.png").is_file()


def test_analyze_hidden(classifier_run, tmp_path):
    result = runner.invoke(app, ["analyze", str(classifier_run), "--what", "hidden",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "saturated" in result.output and "reverse" in result.output


def test_user_errors_exit_2(lm_run, tmp_path):
    missing = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such directory" in missing.output
    wrong = runner.invoke(app, ["analyze", str(lm_run), "--what", "attention"])
    assert wrong.exit_code == 2 and "seq2seq" in wrong.output


def test_report_command(lm_run):
    result = runner.invoke(app, ["report", str(lm_run)])
    assert result.exit_code == 0, result.output
    assert "report.html" in result.output
