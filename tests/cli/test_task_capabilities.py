"""The CLI asks the run's task what it supports (predict flags, backtest, export options, the
input `predict` reads) instead of switching on task names; the messages stay as they were."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from tests.cli.conftest import write

from rnnkit.cli import predict_inputs
from rnnkit.models.export_graphs import WindowScaling
from rnnkit.tasks import TASKS
from rnnkit.tasks.config import config_from_dict
from rnnkit.tasks.forecasting import ForecastingTask


def test_flags_and_backtest_refused_for_tasks_that_do_not_declare_them(cli, tmp_path):
    config = write(tmp_path / "hello.yaml",
                   "task: language_model\ndata: {dataset: hello, seq_len: 8}\n"
                   "model: {hidden_size: 8, embedding_size: 4}\n"
                   "train: {batch_size: 4, max_steps: 1, eval_every: 1}\n")
    assert cli("train", config, "--out", "lm", "--no-progress").exit_code == 0
    for flags, message in (
            (["--samples", "2"], "--samples: only forecasting runs take it"),
            (["--calibration-window", "5"], "--calibration-window: only forecasting runs take it"),
            (["--beam-size", "2"], "--beam-size: only seq2seq runs take it"),
            (["--n-best", "2"], "--n-best: only seq2seq runs take it")):
        result = cli("predict", "lm", *flags, input="hello\n")
        assert result.exit_code == 2, result.output
        assert f"{message}; this run's task is language_model" in result.stderr
    series = write(tmp_path / "series.csv", "time,value\n" + "".join(
        f"{i},{i % 5}\n" for i in range(40)))
    result = cli("backtest", "lm", "--data", series)
    assert result.exit_code == 2, result.output
    assert ("backtest: the run's task is language_model; backtesting is for forecasting runs"
            in result.stderr)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_each_task_declares_an_input_kind_predict_reads(name):
    assert TASKS[name].predict_input in predict_inputs.INPUT_KINDS


def _run(predict_input: str, name: str = "language_model", **data):
    """A stand-in run whose task is named ``name`` but reads ``predict_input``: the reading
    must follow the declaration, not the name."""
    task = SimpleNamespace(name=name, predict_input=predict_input)
    config = SimpleNamespace(data=SimpleNamespace(
        **{"text_column": "text", "format": "auto", **data}))
    return SimpleNamespace(task=task, config=config)


def test_predict_reads_the_declared_kind_whatever_the_task_is_called():
    table = ["label,text", "pos,good film", "neg,dull"]
    assert predict_inputs._from_lines(_run("text_column"), table, ".csv", None) == [
        "good film", "dull"]
    assert predict_inputs._from_lines(_run("lines"), table, ".csv", None) == table
    pairs = ["3 marzo 1999\t1999-03-03", "7 maggio 2001"]
    assert predict_inputs._from_lines(_run("source_column"), pairs, None, None) == [
        "3 marzo 1999", "7 maggio 2001"]
    conll = ["Taylor\tB-PER", "Swift\tI-PER", "", "hi\tO"]
    assert predict_inputs._from_lines(_run("conll", format="conll"), conll, None, None) == [
        "Taylor Swift", "hi"]
    assert predict_inputs._from_lines(_run("lines", format="conll"), conll, None, None) == [
        "Taylor\tB-PER", "Swift\tI-PER", "hi\tO"]


def test_an_unknown_input_kind_is_named():
    with pytest.raises(ValueError, match=r"tagger\.predict_input: expected one of lines, "
                       r"text_column, source_column, conll, series, got 'table'"):
        predict_inputs._from_lines(_run("table", name="tagger"), ["a"], None, None)


def test_predict_options_and_backtest_are_declared_by_the_tasks_that_take_them():
    options = {name: task.predict_options for name, task in TASKS.items() if task.predict_options}
    assert options == {"forecasting": {"samples", "calibration_window"},
                       "seq2seq": {"beam_size", "n_best"}}
    assert [name for name, task in TASKS.items() if task.supports_backtest] == ["forecasting"]


@pytest.mark.parametrize("normalize", ["last_value", "global", "series"])
def test_a_forecasting_export_builds_in_the_runs_window_scaling(normalize):
    config = config_from_dict({"task": "forecasting", "data": {"normalize": normalize}})
    assert ForecastingTask(config, {}).export_options() == {"scaling": WindowScaling(normalize)}


def test_window_scaling_exports_the_runs_floor():
    config = config_from_dict({"task": "forecasting", "data": {"normalize": "window"}})
    options = ForecastingTask(config, {"window_floor": [0.1, 2.0]}).export_options()
    assert options == {"scaling": WindowScaling("window", (0.1, 2.0))}


def test_other_tasks_export_with_no_extra_options():
    config = config_from_dict({"task": "language_model", "data": {"normalize": "last_value"}})
    assert TASKS["language_model"](config, {}).export_options() == {}
