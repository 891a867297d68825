"""``backend='auto'``: use the native engine only for the shapes where it measured faster.

The tables below are read off ``bench/results/layers.md`` (``python bench/layers.py`` on this
project's 2-core AVX-512 Xeon, torch 2.13 at 2 threads, idle machine, T=100), for AMD CPUs
with AVX-512 off ``bench/results/layers_amd.md`` (the same on a 2-core AMD EPYC, Zen 5), and
for CPUs without AVX-512 off ``bench/results/layers_amd_zen3.md`` (a 2-core AVX2-only AMD
EPYC, Zen 3; see :func:`measured_grid`): a grid point is listed when the native engine's
median speedup over ``torch.nn`` was at least :func:`margin` (1.05; 1.15 for LSTM sequences).
Any other shape maps to its nearest grid point (on a log scale) and goes native only if that
point is listed, so ``auto`` never picks a kernel measured slower than torch's.

- nn.RNN / nn.GRU run a per-step loop of small ATen ops: the native engine wins everywhere
  (1.2x and more at batch 128 with 512 units, where both are bound by the same GEMMs and the
  engine no longer pays page faults for its buffers: :mod:`rnnkit.engine.workspace`).
- nn.LSTM uses oneDNN's fused kernel: the native engine wins in training everywhere
  (1.31-2.06x on the Xeon), and in inference at batch 1, at 64 units and at 128 units batch
  32; in inference at 128-256 units from batch 32 otherwise the two are within the LSTM margin
  of each other (1.06-1.08x), and at 512 units from batch 32 oneDNN is ahead (0.93-0.99x):
  oneDNN keeps them.
- Per-row ``lengths=`` (or packed input) with rows of different lengths
  (:data:`VARIABLE_LENGTH_WINS`, from ``bench/results/variable_lengths.md``): torch.nn's
  alternative is then its packed path, which runs no oneDNN kernel but one small product per
  time step on a shrinking batch; the engine runs the packed layout too and wins in training
  and inference at every point measured.
- Streaming ``step()`` (one step, batch 1; :data:`STREAMING_WINS`, from the streaming table):
  the one-call native step wins for every cell and size measured.
- A batched ``step()`` (one step of many rows: an autoregressive forecaster's sample paths,
  beam search; :data:`STEP_WINS`, from ``bench/results/step_batches.md``): the one-call step
  computes each row's dot products (its weights read once per step in chunks that stay in
  L1 for every row), which pays up to 32 rows below 512 units (1.5-7.8x), at 8 rows of 512
  units (1.6-2.0x) and up to 128 rows at 64-128 units (1.2-2.0x); from 512 rows torch's fused
  kernel, whose products are matrix products, is ahead (0.44-0.91x; a 64-unit RNN still wins
  at 512). ``forward()`` over a one-step sequence in inference takes the one-call step where
  this table lists the point (``RecurrentBase._forward_one_step``), and :func:`should_use`
  otherwise.
"""

from __future__ import annotations

import math

import torch

from rnnkit.engine import _loader

MARGIN = 1.05
# Against oneDNN's LSTM the layer grid (input size == hidden) flatters the engine: with a
# smaller input (a char-LM's first layer: 64 -> 256, batch 64) oneDNN gains relative to it,
# and a 1.09x grid win measured 0.94-0.98x there (bench/e2e_charlm.py). LSTM sequence shapes
# therefore need a wider win.
LSTM_MARGIN = 1.15
HIDDEN_GRID = (64, 128, 256, 512)
BATCH_GRID = (1, 32, 128)

# (cell, training) -> {(hidden, batch)} where native was >= margin(cell) x torch.nn.
NATIVE_WINS: dict[tuple[str, bool], frozenset[tuple[int, int]]] = {
    ("RNN", False): frozenset({(64, 1), (64, 32), (64, 128), (128, 1), (128, 32), (128, 128),
                               (256, 1), (256, 32), (256, 128), (512, 1), (512, 32), (512, 128)}),
    ("RNN", True): frozenset({(64, 1), (64, 32), (64, 128), (128, 1), (128, 32), (128, 128),
                              (256, 1), (256, 32), (256, 128), (512, 1), (512, 32), (512, 128)}),
    ("GRU", False): frozenset({(64, 1), (64, 32), (64, 128), (128, 1), (128, 32), (128, 128),
                               (256, 1), (256, 32), (256, 128), (512, 1), (512, 32), (512, 128)}),
    ("GRU", True): frozenset({(64, 1), (64, 32), (64, 128), (128, 1), (128, 32), (128, 128),
                              (256, 1), (256, 32), (256, 128), (512, 1), (512, 32), (512, 128)}),
    ("LSTM", False): frozenset({(64, 1), (64, 32), (64, 128), (128, 1), (128, 32), (256, 1),
                                (512, 1)}),
    ("LSTM", True): frozenset({(64, 1), (64, 32), (64, 128), (128, 1), (128, 32), (128, 128),
                               (256, 1), (256, 32), (256, 128), (512, 1), (512, 32), (512, 128)}),
}
# Rows of different lengths: (cell, training) -> {(hidden, batch)} where the native
# lengths= path measured >= margin(cell) x torch.nn's packed path (bench/results/
# variable_lengths.md, --backend native). The engine runs them in the packed layout (one input
# product over the valid steps only, no padded block inside) and wins everywhere measured:
# training 6.9-29x (torch's packed backward is a per-step autograd loop), inference 1.8-4.4x;
# H=128/512 are listed too.
_MEASURED_POINTS = frozenset((hidden, batch) for hidden in HIDDEN_GRID for batch in (32, 128))
VARIABLE_LENGTH_WINS: dict[tuple[str, bool], frozenset[tuple[int, int]]] = {
    (cell, training): _MEASURED_POINTS
    for cell in ("RNN", "GRU", "LSTM") for training in (False, True)
}
# Streaming step() at batch 1: cell -> hidden sizes (grid points) where the one-call native
# step measured >= MARGIN x a one-step torch.nn call.
STREAMING_WINS: dict[str, frozenset[int]] = {
    "RNN": frozenset({64, 128, 256, 512}),
    "GRU": frozenset({64, 128, 256, 512}),
    "LSTM": frozenset({64, 128, 256, 512}),
}

# Batched step() (bench/results/step_batches.json, the Xeon; AMD uses it too, unmeasured
# there): cell -> {(hidden, batch)} grid points where the one-call native step measured
# >= MARGIN x rnnkit's own step on torch's fused kernel (what auto takes otherwise).
STEP_BATCH_GRID = (8, 32, 128, 512, 2048)
STEP_WINS: dict[str, frozenset[tuple[int, int]]] = {
    "RNN": frozenset({(64, 8), (64, 32), (64, 128), (64, 512), (128, 8), (128, 32), (128, 128),
                      (256, 8), (256, 32), (256, 128), (512, 8)}),
    "GRU": frozenset({(64, 8), (64, 32), (64, 128), (128, 8), (128, 32), (128, 128), (256, 8),
                      (256, 32), (512, 8)}),
    "LSTM": frozenset({(64, 8), (64, 32), (64, 128), (128, 8), (128, 32), (128, 128),
                       (256, 8), (256, 32), (512, 8)}),
}

# The same on AMD (bench/results/layers_amd.json). torch.nn's RNN and GRU run their per-step
# products on MKL, which runs at the rate of its AVX2 code on AMD, and the engine's own
# products run on its tile there (rnnkit.engine.gemm): the engine wins at every RNN/GRU point.
# Against oneDNN's fused LSTM the engine wins in training except at H=512 B=128 (1.10x), and in
# inference at batch 1 and at H=256 B=128; elsewhere in inference the two are within
# 0.95-1.13x of each other and oneDNN keeps them.
_ALL_POINTS = frozenset((hidden, batch) for hidden in HIDDEN_GRID for batch in BATCH_GRID)
NATIVE_WINS_AMD: dict[tuple[str, bool], frozenset[tuple[int, int]]] = {
    ("RNN", False): _ALL_POINTS,
    ("RNN", True): _ALL_POINTS,
    ("GRU", False): _ALL_POINTS,
    ("GRU", True): _ALL_POINTS,
    ("LSTM", False): frozenset({(64, 1), (128, 1), (256, 1), (256, 128), (512, 1)}),
    ("LSTM", True): _ALL_POINTS - {(512, 128)},
}
# Streaming on AMD won at every cell and size too (2.8-12.3x): STREAMING_WINS serves both.
# On a Zen 4 (bench/results/layers_amd_zen4.md, read by no test) this table picked nothing
# measured below 0.97x torch.nn; it forgoes the engine's 1.30x at LSTM inference H=64 B=32
# (1.14x on the Zen 5, under the LSTM margin).

# Without AVX-512 (bench/results/layers_amd_zen3.json, an AVX2-only AMD EPYC Zen 3): the
# engine runs its AVX2 kernels, torch's products and oneDNN's LSTM theirs. RNN and GRU win
# everywhere (1.15-16.8x); the LSTM everywhere in training (1.21-1.76x) and in inference at
# batch 1 and from batch 32 up to 128 units (1.16-1.23x; 1.18-1.44x in an 11-repetition
# re-run), where the AVX-512 grids saw oneDNN level with it. From 256 units at batch 32 and
# more the grid measured 1.02-1.14x (the re-run 0.98-1.19x): oneDNN keeps them. Streaming won
# at every size (3.4-17x): STREAMING_WINS serves it too.
NATIVE_WINS_AVX2: dict[tuple[str, bool], frozenset[tuple[int, int]]] = {
    ("RNN", False): _ALL_POINTS,
    ("RNN", True): _ALL_POINTS,
    ("GRU", False): _ALL_POINTS,
    ("GRU", True): _ALL_POINTS,
    ("LSTM", False): frozenset({(64, 1), (64, 32), (64, 128), (128, 1), (128, 32), (128, 128),
                                (256, 1), (512, 1)}),
    ("LSTM", True): _ALL_POINTS,
}
GRIDS = {"intel": NATIVE_WINS, "amd": NATIVE_WINS_AMD, "avx2": NATIVE_WINS_AVX2}


def measured_grid() -> str:
    """Which measured grid ``auto`` reads: ``'avx2'`` where the engine runs its AVX2 kernels
    (a CPU without AVX-512, of either vendor: the engine, torch's BLAS and oneDNN then all run
    their AVX2 code), else ``'amd'`` on AMD CPUs and ``'intel'`` on any other."""
    if _loader.kernel_isa == "avx2":
        return "avx2"
    return "amd" if _loader.cpu_vendor == "amd" else "intel"


def _native_wins() -> dict[tuple[str, bool], frozenset[tuple[int, int]]]:
    return GRIDS[measured_grid()]


def margin(cell: str, streaming: bool = False) -> float:
    """Speedup a grid point needs before ``auto`` goes native there."""
    return LSTM_MARGIN if cell == "LSTM" and not streaming else MARGIN


def _nearest(value: int, grid: tuple[int, ...]) -> int:
    return min(grid, key=lambda point: abs(math.log(max(value, 1)) - math.log(point)))


def should_use(mode: str, *, input_size: int, hidden_size: int, batch: int, seq_len: int,
               dtype: torch.dtype, device: torch.device | str, training: bool,
               variable_lengths: bool = False) -> bool:
    """True when the native kernel was measured faster than torch.nn for this shape on CPU.

    ``variable_lengths``: the rows have different lengths, so torch.nn would run its packed
    path (the comparison in :data:`VARIABLE_LENGTH_WINS`).
    """
    if _loader.native is None or torch.device(device).type != "cpu":
        return False
    if dtype not in (torch.float32, torch.float64):
        return False
    cell = "RNN" if mode.startswith("RNN") else mode
    if seq_len == 1 and batch == 1:
        return streaming_wins(mode, hidden_size, batch)
    point = (_nearest(hidden_size, HIDDEN_GRID), _nearest(batch, BATCH_GRID))
    # torch's packed path is never faster than its dense one, so lengths only add points.
    if variable_lengths and point in VARIABLE_LENGTH_WINS[(cell, bool(training))]:
        return True
    return point in _native_wins()[(cell, bool(training))]


def streaming_wins(mode: str, hidden_size: int, batch: int) -> bool:
    """True when a one-step native call (``step()`` without gradients) was measured faster
    than torch's kernel for this shape: :data:`STREAMING_WINS` at batch 1, :data:`STEP_WINS`
    above (nearest grid point)."""
    cell = "RNN" if mode.startswith("RNN") else mode
    hidden = _nearest(hidden_size, HIDDEN_GRID)
    if batch == 1:
        return hidden in STREAMING_WINS[cell]
    return (hidden, _nearest(batch, STEP_BATCH_GRID)) in STEP_WINS[cell]
