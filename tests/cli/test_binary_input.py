"""``predict`` refuses binary input on stdin as ``evaluate`` refuses a binary data file."""

from __future__ import annotations

import pytest
from tests.cli.conftest import write
from tests.tasks.small_data import small_text


@pytest.fixture
def lm(cli, tmp_path):
    paths = small_text(tmp_path)
    config = write(tmp_path / "lm.yaml", f"task: language_model\ndata: {{train: {paths['train']}, "
                   f"valid: {paths['valid']}, seq_len: 16}}\nmodel: {{hidden_size: 8, "
                   "num_layers: 1, embedding_size: 4}\ntrain: {batch_size: 4, max_steps: 2}\n")
    assert cli("train", config, "--out", "lm", "--no-progress").exit_code == 0
    return "lm"


@pytest.mark.parametrize(("data", "message"), [
    (b"fine\nbad \xff\n", "error: <stdin>:2: invalid UTF-8 byte 0xff at byte offset 9"),
    (b"fine\n\x00\x01\x02\n", "error: <stdin>:2: NUL byte at byte offset 5"),
])
def test_binary_stdin_is_refused_with_its_line(cli, lm, tmp_path, data, message):
    result = cli("predict", lm, input=data)
    assert result.exit_code == 2 and result.stderr.startswith(message)
    (tmp_path / "bin.txt").write_bytes(data)
    evaluated = cli("evaluate", lm, "--data", tmp_path / "bin.txt")
    assert evaluated.exit_code == 2 and "bin.txt:2: " + message.split(":2: ")[1] in \
        evaluated.stderr
