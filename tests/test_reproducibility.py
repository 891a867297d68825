"""Bit-reproducible products (MKL strict CNR) and exact resume in a fresh process.

Each check runs in a child process because MKL fixes its mode at its first call. The child
processes restrict MKL to its SSE4.2 code path (``MKL_ENABLE_INSTRUCTIONS``): there, as on the
AMD EPYC machines where this was first seen, products outside CNR mode depend on the operands'
memory alignment, so these tests fail on any x86 machine, Intel included, if that comes back.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rnnkit.reproducibility import STRICT_CNR, blas_mode

needs_mkl = pytest.mark.skipif(not torch.backends.mkl.is_available(),
                               reason="torch does not use MKL on this platform")
ALIGNMENT_SENSITIVE = {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}

# Products of the shapes a recurrent layer does (rows x input @ weight^T, with and without a
# bias), each on misaligned copies of its operands; prints how many differ from the aligned one.
ALIGNMENT_PROBE = """
import itertools, json, torch
import rnnkit
from rnnkit.reproducibility import blas_mode

def misaligned(t, offset):
    buffer = torch.empty(t.numel() + 16, dtype=t.dtype)
    view = buffer[offset:offset + t.numel()].view(t.shape)
    view.copy_(t)
    return view

generator = torch.Generator().manual_seed(0)
differ = total = 0
for rows, inner, cols in itertools.product([1, 8, 33, 128], [7, 129, 256], [64, 100, 1024]):
    x = torch.randn(rows, inner, generator=generator)
    weight = torch.randn(cols, inner, generator=generator)
    bias = torch.randn(cols, generator=generator)
    expected = (torch.addmm(bias, x, weight.t()), x @ weight.t())
    for offset in (1, 3, 5):
        for a, w in ((misaligned(x, offset), weight), (x, misaligned(weight, offset)),
                     (misaligned(x, offset), misaligned(weight, offset))):
            got = (torch.addmm(bias, a, w.t()), a @ w.t())
            differ += sum(not torch.equal(g, e) for g, e in zip(got, expected))
            total += 2
print(json.dumps({"differ": differ, "total": total, "strict": blas_mode().strict}))
"""


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with ``env`` added (MKL_CBWR from the parent removed)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("MKL_CBWR", "RNNKIT_MKL_CNR")}
    environment.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=environment,
                          capture_output=True, text=True, timeout=300, check=False)


def probe(**env: str) -> dict:
    result = run_python(ALIGNMENT_PROBE, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@needs_mkl
def test_this_test_process_runs_mkl_in_strict_cnr_mode():
    mode = blas_mode()
    assert mode.strict and mode.reproducible and mode.branch == "auto"


@needs_mkl
def test_products_do_not_depend_on_alignment_under_rnnkit():
    outcome = probe(**ALIGNMENT_SENSITIVE)
    assert outcome["strict"]
    assert outcome["total"] == 648
    assert outcome["differ"] == 0


@needs_mkl
def test_control_without_cnr_the_same_products_depend_on_alignment():
    """Shows the test above can fail: with rnnkit's request switched off, bits differ."""
    outcome = probe(RNNKIT_MKL_CNR="off", **ALIGNMENT_SENSITIVE)
    assert not outcome["strict"]
    assert outcome["differ"] > 0


@needs_mkl
def test_a_mode_the_user_chose_is_kept():
    code = "import rnnkit, torch; from rnnkit.reproducibility import blas_mode; print(blas_mode())"
    result = run_python(code, MKL_CBWR="COMPATIBLE")
    assert "branch='compatible', strict=False" in result.stdout, result.stderr


@needs_mkl
def test_a_product_before_import_rnnkit_is_named_in_a_warning():
    code = """
    import warnings, torch
    torch.randn(8, 8) @ torch.randn(8, 8)   # MKL fixes its mode here, outside CNR
    import rnnkit
    from rnnkit.reproducibility import check_blas_reproducibility
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_blas_reproducibility()
    print(caught[0].message)
    """
    result = run_python(code)
    assert "torch ran a matrix product before rnnkit was imported" in result.stdout, result.stderr


def test_import_rnnkit_asks_for_strict_cnr_unless_told_otherwise():
    code = "import os, rnnkit; print(os.environ.get('MKL_CBWR'))"
    assert run_python(code).stdout.strip() == STRICT_CNR
    assert run_python(code, MKL_CBWR="AVX2").stdout.strip() == "AVX2"
    assert run_python(code, RNNKIT_MKL_CNR="off").stdout.strip() == "None"


HELLO_RNN = ("task: language_model\ndata: {dataset: hello, seq_len: 16}\n"
             "model: {cell: rnn, hidden_size: 96, embedding_size: 40, num_layers: 2}\n"
             "train: {batch_size: 8, eval_every: 4, checkpoint_every: 4}\n")


def train(config: Path, out: Path, *extra: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rnnkit", "train", str(config), "--out", str(out),
         "--no-progress", *extra],
        env={**os.environ, "RNNKIT_CACHE_DIR": str(config.parent / "cache"),
             **ALIGNMENT_SENSITIVE},
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def losses(run: Path) -> list[str]:
    with open(run / "metrics.csv", newline="") as handle:
        return [row["loss"] for row in csv.DictReader(handle)]


def test_resume_in_a_fresh_process_reproduces_the_uninterrupted_run_bit_for_bit(tmp_path):
    config = tmp_path / "hello.yaml"
    config.write_text(HELLO_RNN, encoding="utf-8")
    train(config, tmp_path / "full", "--set", "train.max_steps=16")
    train(config, tmp_path / "split", "--set", "train.max_steps=7")
    train(config, tmp_path / "split", "--resume", "--set", "train.max_steps=16")

    assert losses(tmp_path / "split") == losses(tmp_path / "full")  # as printed: every digit
    full = load_file(tmp_path / "full/checkpoints/last/model.safetensors")
    split = load_file(tmp_path / "split/checkpoints/last/model.safetensors")
    assert full.keys() == split.keys()
    for name, weight in full.items():
        assert torch.equal(weight, split[name]), name
