"""backend='auto' decisions and the no-extension contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rnnkit import engine
from rnnkit.engine import _loader, policy

BENCH = Path(__file__).resolve().parents[2] / "bench" / "results" / "layers.json"

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")


def decide(mode, hidden, batch, *, training=True, device="cpu", dtype=torch.float32):
    return engine.should_use(mode, input_size=hidden, hidden_size=hidden, batch=batch,
                             seq_len=100, dtype=dtype, device=device, training=training)


# Each measured grid and the file it was read off.
GRIDS = {"intel": BENCH, "amd": BENCH.with_name("layers_amd.json"),
         "avx2": BENCH.with_name("layers_amd_zen3.json")}


@pytest.fixture(params=sorted(GRIDS))
def grid(request, monkeypatch):
    """The committed grid file of one machine, with ``auto`` reading that machine's tables."""
    monkeypatch.setattr(policy, "measured_grid", lambda: request.param)
    return GRIDS[request.param]


def test_every_grid_has_a_table():
    assert sorted(policy.GRIDS) == sorted(GRIDS)


def test_the_grid_is_the_cpus():
    vendor = _loader.require_native().cpu_vendor()
    expected = "avx2" if engine.isa() == "avx2" else ("amd" if vendor == "amd" else "intel")
    assert policy.measured_grid() == expected


@pytest.mark.skipif(not engine.available() or "avx2" not in engine.supported_isas(),
                    reason="this CPU has no AVX2")
def test_the_avx2_kernels_read_the_avx2_grid():
    previous = engine.isa()
    try:
        engine.set_isa("avx2")
        assert policy.measured_grid() == "avx2"
        if "avx512" in engine.supported_isas():
            engine.set_isa("avx512")
            assert policy.measured_grid() != "avx2"
    finally:
        engine.set_isa(previous)
    assert _loader.kernel_isa == previous


def test_auto_follows_the_committed_benchmark(grid):
    """Every grid point of the vendor's layers file: native only where it was >= the margin."""
    results = json.loads(grid.read_text())
    for row in results["layers"]:
        mode = {"RNN": "RNN_TANH"}.get(row["mode"], row["mode"])
        native = decide(mode, row["hidden"], row["batch"], training=row["task"] == "training")
        assert native == (row["speedup"] >= policy.margin(row["mode"])), row


def test_shapes_between_grid_points_use_the_nearest_one():
    assert decide("GRU", 100, 2) == decide("GRU", 128, 1)
    assert decide("RNN_RELU", 300, 40) == decide("RNN_TANH", 256, 32)
    # Batch 64 lies as far from 32 as from 128 (log scale): the smaller grid point decides.
    assert decide("LSTM", 64, 64, training=False) == decide("LSTM", 64, 32, training=False)
    assert decide("LSTM", 512, 90, training=False) == decide("LSTM", 512, 128, training=False)


def test_streaming_follows_the_committed_benchmark(grid):
    """Every streaming row of the vendor's layers file: native only where it was >= MARGIN."""
    results = json.loads(grid.read_text())
    for row in results["streaming"]:
        mode = {"RNN": "RNN_TANH"}.get(row["mode"], row["mode"])
        native = engine.should_use(mode, input_size=row["hidden"], hidden_size=row["hidden"],
                                   batch=1, seq_len=1, dtype=torch.float32, device="cpu",
                                   training=False)
        assert native == (row["speedup"] >= policy.margin(row["mode"], streaming=True)), row
        assert engine.streaming_wins(mode, row["hidden"], 1) == native


def test_batched_steps_follow_the_committed_benchmark():
    """Every row of bench/results/step_batches.json: the native one-call step only where
    it was >= MARGIN x torch's fused kernel; batches between grid points take the nearest."""
    results = json.loads(BENCH.with_name("step_batches.json").read_text())
    assert len(results["steps"]) == 3 * 4 * 5  # the whole grid was measured
    for row in results["steps"]:
        mode = {"RNN": "RNN_TANH"}.get(row["mode"], row["mode"])
        wins = row["speedup"] >= policy.MARGIN
        assert engine.streaming_wins(mode, row["hidden"], row["batch"]) == wins, row
    assert engine.streaming_wins("LSTM", 64, 500) == engine.streaming_wins("LSTM", 64, 512)
    assert engine.streaming_wins("GRU", 100, 3) == engine.streaming_wins("GRU", 128, 8)


def test_never_native_off_cpu_or_for_other_dtypes():
    assert not decide("GRU", 64, 1, device="meta")
    assert not decide("GRU", 64, 1, dtype=torch.float16)


def test_missing_extension_is_reported(monkeypatch):
    monkeypatch.setattr(_loader, "native", None)
    monkeypatch.setattr(_loader, "import_error", ImportError("no compiler"))
    assert not engine.available()
    assert not decide("GRU", 64, 1)
    with pytest.raises(engine.EngineUnavailableError, match="no compiler"):
        engine.recurrence("GRU", torch.zeros(2, 1, 3), torch.zeros(1, 4), None,
                          torch.zeros(12, 3), torch.zeros(12, 4), None, None, None, None, False)


def test_bad_arguments_name_what_is_wrong():
    x, h0 = torch.zeros(2, 1, 3), torch.zeros(1, 4)
    w_ih, w_hh = torch.zeros(12, 3), torch.zeros(12, 4)
    with pytest.raises(ValueError, match="mode: expected one of"):
        engine.recurrence("LSTMX", x, h0, None, w_ih, w_hh, None, None, None, None, False)
    with pytest.raises(TypeError, match=r"weight_hh: expected dtype torch\.float32"):
        engine.recurrence("GRU", x, h0, None, w_ih, w_hh.double(), None, None, None, None, False)
    with pytest.raises(ValueError, match=r"lengths: expected values in \[0, 2\]"):
        engine.recurrence("GRU", x, h0, None, w_ih, w_hh, None, None, None, torch.tensor([3]),
                          False)
    with pytest.raises(ValueError, match="h0: expected shape"):
        engine.recurrence("GRU", x, torch.zeros(2, 4), None, w_ih, w_hh, None, None, None, None,
                          False)


def test_isa_can_be_forced_and_reported():
    isas = engine.supported_isas()
    assert isas[0] == "generic" and engine.isa() in isas
    with pytest.raises(ValueError, match="isa"):
        engine.set_isa("sse9")


VARIABLE = BENCH.with_name("variable_lengths.json")


def test_variable_lengths_follow_the_committed_benchmark():
    """Rows of different lengths: native where bench/variable_lengths.py --backend native
    measured the engine's lengths= path >= the margin x torch.nn's packed path."""
    results = json.loads(VARIABLE.read_text())
    assert results["meta"]["backend"] == "native"
    for row in results["rows"]:
        point = (row["hidden"], row["batch"])
        listed = point in policy.VARIABLE_LENGTH_WINS[(row["mode"], row["task"] == "training")]
        assert listed == (row["lengths_speedup"] >= policy.margin(row["mode"])), row


def test_lengths_only_add_native_points():
    for training in (False, True):
        for hidden in policy.HIDDEN_GRID:
            for batch in policy.BATCH_GRID:
                dense = decide("LSTM", hidden, batch, training=training)
                varied = engine.should_use("LSTM", input_size=hidden, hidden_size=hidden,
                                           batch=batch, seq_len=100, dtype=torch.float32,
                                           device="cpu", training=training,
                                           variable_lengths=True)
                assert varied or not dense
