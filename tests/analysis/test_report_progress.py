"""``rnnkit report`` shows which section it is building on a terminal, nothing elsewhere."""

from __future__ import annotations

from typer.testing import CliRunner

from rnnkit.analysis.report import build_report
from rnnkit.cli.main import app


def test_progress_names_each_section_on_stderr(lm_run, capsys):
    build_report(lm_run, progress=True)
    stderr = capsys.readouterr().err
    assert "report" in stderr and "section" in stderr
    for title in ("Overview", "Recurrent spectrum", "Hidden states", "Samples"):
        assert title in stderr
    assert "0/8 [" in stderr  # the seven fixed sections and the task's samples


def test_the_command_is_silent_when_stderr_is_not_a_terminal(lm_run):
    result = CliRunner().invoke(app, ["report", str(lm_run)])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.strip() == f"wrote {lm_run / 'report.html'}"
