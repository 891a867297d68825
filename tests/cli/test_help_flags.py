"""--help shows on/off flags as switches (no `<bool>` type, as if they took a value)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("command", [(), ("train",), ("evaluate",), ("predict",),
                                     ("backtest",), ("report",)])
def test_no_flag_shows_a_bool_type(cli, command):
    result = cli(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "--help" in result.stdout and "<bool>" not in result.stdout


def test_a_flag_pair_shows_both_switches_and_its_default(cli):
    result = cli("train", "--help")
    assert "--progress" in result.stdout and "--no-progress" in result.stdout
    assert "[default: progress]" in result.stdout
    # options that take a value keep their type
    assert "<path>" in result.stdout
