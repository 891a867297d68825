"""The long-dependency demonstration: tasks, the quick run and its report."""

from __future__ import annotations

import json
import re

import pytest
import torch

from rnnkit.analysis.demo import DemoConfig, run_demo, save_results
from rnnkit.analysis.demo_report import write_demo_report
from rnnkit.analysis.tasks import AddingTask, RecallTask


def test_recall_task_layout():
    task = RecallTask(delay=3, num_symbols=4)
    inputs, targets = task.sample(5, torch.Generator().manual_seed(0))
    assert inputs.shape == (5, 5, 6) and targets.shape == (5,)
    assert torch.equal(inputs[:, 0].argmax(dim=1), targets)
    assert torch.all(inputs[:, 1:4].argmax(dim=2) == 4) and torch.all(inputs[:, -1, 5] == 1)


def test_adding_task_targets_are_the_marked_sum():
    inputs, targets = AddingTask(10).sample(50, torch.Generator().manual_seed(0))
    assert torch.all(inputs[:, :, 1].sum(dim=1) == 2)
    assert torch.all(inputs[:, :5, 1].sum(dim=1) == 1)  # one marker in each half
    torch.testing.assert_close(targets, (inputs[:, :, 0] * inputs[:, :, 1]).sum(dim=1))


def test_tasks_reject_bad_arguments():
    with pytest.raises(ValueError, match="delay"):
        RecallTask(-1)
    with pytest.raises(ValueError, match="length"):
        AddingTask(1)
    with pytest.raises(ValueError, match="cells"):
        DemoConfig(cells=("transformer",))


@pytest.fixture(scope="module")
def quick_result():
    return run_demo(DemoConfig.quick())


def test_quick_demo_rnn_remembers_less_than_lstm(quick_result):
    longest = max(quick_result.config.delays)
    accuracy = quick_result.accuracy_table()
    assert accuracy["rnn"][longest] < 0.5 and accuracy["lstm"][longest] >= 0.9
    assert quick_result.first_rnn_failure() == longest
    memory = quick_result.memory_lengths(longest)
    assert memory["rnn"] < memory["lstm"]
    assert memory["rnn"] < memory["gru"]
    rnn_run = quick_result.run("rnn", longest)
    assert rnn_run.flow_before.verdict == "vanishing" and rnn_run.input_after.verdict == "vanishing"
    assert memory["rnn"] < longest + 1 <= memory["lstm"]  # the RNN's gradient never reaches x_0


def test_quick_demo_clipping_rescues_the_exploding_rnn(quick_result):
    clipping = quick_result.clipping
    assert clipping.flow_at_init["verdict"] == "exploding"
    assert clipping.score_with > 0.9 > 0.5 > clipping.score_without


def test_quick_demo_is_reproducible(quick_result):
    again = run_demo(DemoConfig.quick())
    assert again.accuracy_table() == quick_result.accuracy_table()
    assert again.memory_lengths() == quick_result.memory_lengths()


def test_demo_report_is_self_contained(quick_result, tmp_path):
    results = json.loads(save_results(quick_result, tmp_path).read_text())
    assert set(results["accuracy"]) == {"rnn", "lstm", "gru"}
    page = write_demo_report(quick_result, tmp_path).read_text()
    assert not re.search(r"https?://", page)
    sources = re.findall(r'<img[^>]*src="([^"]*)"', page)
    assert len(sources) >= 6 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "Not available" not in page and "(no rows)" not in page
    assert (tmp_path / "demo_input_gradient_flow.png").stat().st_size > 1000
