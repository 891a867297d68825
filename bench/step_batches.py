"""One ``step()`` over a batch of rows: the native one-call step against torch's fused kernel.

The native step (``rnnkit.nn.streaming``, one C call for every layer) was written for online
inference at batch 1, where it wins by 5-18x (bench/layers.py's streaming table). Batched
steps come from code that advances many sequences at once: an autoregressive forecaster's
sample paths (500 per series, thousands of rows per call when windows are forecast
together), beam search, sampling many texts. This measures, for RNN/GRU/LSTM, hidden sizes
64..512 (input size == hidden) and batches 8..2048, the same rnnkit layer's ``step()`` with
``backend='native'`` (the fast path) and ``backend='torch'`` (the path ``auto`` takes
otherwise: torch's fused kernel over a one-step sequence), each advancing its own state,
under ``torch.no_grad()``; paired, interleaved samples (each after a pause, as
bench/layers.py does), medians of the ratios torch / native. ``policy.STEP_WINS`` is read
off the result.

    python bench/step_batches.py            # writes bench/results/step_batches.{json,md}
    python bench/step_batches.py --hiddens 64 --batches 512 --reps 3 --out step_quick
    python bench/step_batches.py --forward  # forward() over a one-step sequence instead:
                                            # backend='auto' against 'torch', step_forward.*

``--forward`` measures what a decoder fed one token at a time through ``forward()`` gets: the
layer with ``backend='auto'`` (the one-call step where ``STEP_WINS`` says it wins, else the
sequence path ``auto`` picks) against the same layer on torch's fused kernel.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import layers  # the timing helpers of bench/layers.py

from rnnkit import engine
from rnnkit import nn as rnn

HIDDENS = (64, 128, 256, 512)
BATCHES = (8, 32, 128, 512, 2048)


def step_pair(mode: str, hidden: int, batch: int, forward: bool = False):
    """Two no-argument callables stepping equal layers (native, torch) over one batch;
    ``forward``: through ``forward()`` on a one-step sequence, the first layer on ``auto``."""
    torch.manual_seed(0)
    native = getattr(rnn, mode)(hidden, hidden, backend="auto" if forward else "native").eval()
    fused = getattr(rnn, mode)(hidden, hidden, backend="torch").eval()
    fused.load_state_dict(native.state_dict())
    x = torch.randn(batch, hidden)
    states = {"native": None, "torch": None}
    with torch.no_grad():  # both give the same step before anything is timed
        a, _ = native.step(x)
        b, _ = fused.step(x)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)

    def call(layer, name):
        def run():
            _, states[name] = layer.step(x, states[name])

        def run_forward():
            _, states[name] = layer(x[None], states[name])
        return run_forward if forward else run
    return call(native, "native"), call(fused, "torch")


def measure(mode: str, hidden: int, batch: int, reps: int, forward: bool = False) -> dict:
    native, fused = step_pair(mode, hidden, batch, forward)
    with torch.no_grad():
        torch_times, native_times = layers.interleaved([fused, native], reps)
    speedup, low, high = layers.ratio_stats(torch_times, native_times)
    return {"mode": mode, "hidden": hidden, "batch": batch,
            "native_us": 1e6 * statistics.median(native_times),
            "torch_us": 1e6 * statistics.median(torch_times),
            "speedup": speedup, "speedup_min": low, "speedup_max": high,
            "auto_uses_native": engine.streaming_wins(layers.ENGINE_MODES[mode], hidden, batch),
            "forward": forward}


def auto_path(row: dict) -> str:
    """What ``backend='auto'`` runs for the row now: ``native`` or ``torch`` for a step;
    for a one-step ``forward()``, the one-call ``step``, the ``sequence`` kernels or
    ``torch``."""
    mode = layers.ENGINE_MODES[row["mode"]]
    if engine.streaming_wins(mode, row["hidden"], row["batch"]):
        return "step" if row.get("forward") else "native"
    if row.get("forward") and engine.should_use(
            mode, input_size=row["hidden"], hidden_size=row["hidden"], batch=row["batch"],
            seq_len=1, dtype=torch.float32, device="cpu", training=False):
        return "sequence"
    return "torch"


def markdown(meta: dict, rows: list[dict]) -> str:
    forward = any(row.get("forward") for row in rows)
    title = ("# `forward()` over a one-step sequence: `backend='auto'` against torch's fused "
             "kernel" if forward else
             "# One batched `step()`: the native one-call step against torch's fused kernel")
    lines = [
        title, "",
        f"{meta['cpu']}, {meta['threads']} threads, torch {meta['torch']}, engine ISA "
        f"`{meta['isa']}`, input size == hidden, wall clock, {meta['reps']} paired interleaved "
        f"repetitions, each sample after {meta['settle']} s idle. Command: "
        f"`python bench/step_batches.py{meta['args']}`.", "",
        "speedup = torch time / native time (median of paired ratios, min-max); `auto`: what "
        "`backend='auto'` takes for that step now (native where the speedup was >= 1.05)."
        if not forward else
        "speedup = torch time / auto time (median of paired ratios, min-max); `auto`: what "
        "`backend='auto'` runs now: the one-call `step` (where `STEP_WINS` lists the point), "
        "the `sequence` kernels (where the T=100 grid does) or `torch`.", "",
        f"| cell | H | B | {'auto' if forward else 'native'} µs | torch µs | speedup | min-max "
        "| auto |",
        "|---|---:|---:|---:|---:|---:|---|---|"]
    for row in rows:
        lines.append(f"| {row['mode']} | {row['hidden']} | {row['batch']} | "
                     f"{row['native_us']:.1f} | {row['torch_us']:.1f} | "
                     f"**{row['speedup']:.2f}x** | {row['speedup_min']:.2f}-"
                     f"{row['speedup_max']:.2f} | "
                     f"{auto_path(row)} |")
    return "\n".join(lines) + "\n"


def render(path: Path) -> None:
    """Rewrite the markdown beside ``path`` (a results JSON), re-deriving ``auto``."""
    results = json.loads(path.read_text())
    for row in results["steps"]:
        row["auto_uses_native"] = engine.streaming_wins(layers.ENGINE_MODES[row["mode"]],
                                                        row["hidden"], row["batch"])
    path.write_text(json.dumps(results, indent=1))
    path.with_suffix(".md").write_text(markdown(results["meta"], results["steps"]))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--modes", default="RNN,GRU,LSTM")
    parser.add_argument("--hiddens", default=",".join(map(str, HIDDENS)))
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)))
    parser.add_argument("--settle", type=float, default=layers.SETTLE_SECONDS)
    parser.add_argument("--forward", action="store_true",
                        help="forward() on one-step sequences, auto against torch")
    parser.add_argument("--out", default=None,
                        help="results file stem (default step_batches, step_forward)")
    parser.add_argument("--render", metavar="JSON", default=None,
                        help="only rewrite JSON's markdown, the auto column from the current "
                             "policy")
    args = parser.parse_args(argv)
    if args.render:
        render(Path(args.render))
        return
    layers.settle_seconds = args.settle
    torch.set_num_threads(2)
    rows = []
    for mode in args.modes.split(","):
        for hidden in map(int, args.hiddens.split(",")):
            for batch in map(int, args.batches.split(",")):
                rows.append(measure(mode, hidden, batch, args.reps, args.forward))
                row = rows[-1]
                print(f"{mode} H={hidden} B={batch}: {'auto' if args.forward else 'native'} "
                      f"{row['native_us']:.1f} µs, torch "
                      f"{row['torch_us']:.1f} µs, {row['speedup']:.2f}x", flush=True)
    given = " ".join(sys.argv[1:] if argv is None else argv)
    meta = {"cpu": layers.cpu_name(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "isa": engine.isa(), "reps": args.reps,
            "settle": args.settle, "args": f" {given}" if given else "",
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    stem = layers.RESULTS / (args.out or ("step_forward" if args.forward else "step_batches"))
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "steps": rows}, indent=1))
    stem.with_suffix(".md").write_text(markdown(meta, rows))
    print(f"wrote {stem}.json and .md")


if __name__ == "__main__":
    main()
