"""One thread or two: per-step time of the native recurrence at each, to tune the thread choice.

For RNN, GRU and LSTM x hidden 64..512 x batch 1..128 (seq 50, input == hidden), inference and
training (forward + backward), the engine's time per step with its thread count forced to 1
and to 2; ``src/rnnkit/engine/threads.py`` picks 2 where this table says it pays.

    python bench/threads.py     # writes bench/results/threads.{json,md}
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnkit import engine
from rnnkit.engine import ops, threads

RESULTS = Path(__file__).resolve().parent / "results"
GATES = {"RNN_TANH": 1, "GRU": 3, "LSTM": 4}
SEQ = 50


def per_step_us(fn, calls: int) -> float:
    fn()
    samples = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls)
    return 1e6 * statistics.median(samples) / SEQ


def measure(mode: str, hidden: int, batch: int) -> dict:
    gates = GATES[mode]
    torch.manual_seed(0)
    x = torch.randn(SEQ, batch, hidden)
    h0 = torch.zeros(batch, hidden)
    c0 = torch.zeros(batch, hidden) if mode == "LSTM" else None
    weights = [(torch.randn(gates * hidden, hidden) * 0.05).requires_grad_() for _ in range(2)]
    biases = [torch.zeros(gates * hidden, requires_grad=True) for _ in range(2)]
    args = (x, h0, c0, *weights, *biases, None, None, False)

    def infer():
        with torch.no_grad():
            ops.recurrence(mode, *args)

    def train():
        y, _, _ = ops.recurrence(mode, *args)
        y.sum().backward()

    calls = max(3, int(3e5 / (gates * hidden * hidden * batch**0.7)))
    row = {"mode": mode, "hidden": hidden, "batch": batch,
           "chosen": threads.choose_threads(mode, batch, hidden, hidden)}
    original = ops.choose_threads
    try:
        for count in (1, 2):
            ops.choose_threads = lambda *_, count=count: count
            row[f"infer_{count}"] = per_step_us(infer, calls)
            row[f"train_{count}"] = per_step_us(train, max(2, calls // 3))
    finally:
        ops.choose_threads = original
    return row


def markdown(rows: list[dict], backend: str) -> str:
    lines = [
        "# Native recurrence: one thread vs two",
        "",
        f"`python bench/threads.py`: µs per time step (seq {SEQ}, input == hidden, float32), "
        f"thread backend `{backend}`. speedup = 1-thread time / 2-thread time; `chosen` is what "
        "`engine.threads.choose_threads` picks.",
        "",
        "| cell | H | B | infer 1t | infer 2t | speedup | train 1t | train 2t | speedup | chosen |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['hidden']} | {r['batch']} | {r['infer_1']:.1f} | "
            f"{r['infer_2']:.1f} | {r['infer_1'] / r['infer_2']:.2f}x | {r['train_1']:.1f} | "
            f"{r['train_2']:.1f} | {r['train_1'] / r['train_2']:.2f}x | {r['chosen']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    if not engine.available():
        raise SystemExit(f"native engine not available: {engine.import_error}")
    rows = []
    for mode in GATES:
        for hidden in (64, 128, 256, 512):
            for batch in (1, 8, 32, 128):
                row = measure(mode, hidden, batch)
                rows.append(row)
                print(f"{mode:8} H={hidden:3} B={batch:3}  infer {row['infer_1']:7.1f} / "
                      f"{row['infer_2']:7.1f} us  train {row['train_1']:7.1f} / "
                      f"{row['train_2']:7.1f} us  chosen {row['chosen']}", flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "threads.json").write_text(json.dumps(rows, indent=2) + "\n")
    (RESULTS / "threads.md").write_text(markdown(rows, engine.thread_backend()))
    print(f"wrote {RESULTS / 'threads.md'}")


if __name__ == "__main__":
    main()
