"""The workspace cache on and off (``rnnkit.engine.workspace``) in one process: training
steps of the char-level LM of ``e2e_charlm.py`` (2 x 256, seq 128, batch 64, Adam), and
torch.nn's model beside them, rounds interleaved, medians.

Each sample follows one unmeasured step under its setting (a training loop's steady state).
Per model and setting: steps/s (wall clock), minor page faults and system CPU time per step
(``getrusage``), so the mechanism is measured with the speed::

    python bench/workspace_ab.py --cells LSTM,GRU --rounds 5
    MALLOC_MMAP_THRESHOLD_=2000000000 MALLOC_TRIM_THRESHOLD_=4000000000 python bench/workspace_ab.py

(the second: glibc told never to unmap, the setting that spares torch.nn its faults too).

A process's earlier allocations change what glibc maps afresh (its mmap threshold grows as
mapped blocks are freed), so ``--processes`` runs each model alone in a new process instead,
the three in turn per round (each: one warm-up step, then the measured steps)::

    python bench/workspace_ab.py --processes --cells LSTM,GRU --rounds 5 --steps 6

``--inference`` times layer calls under ``torch.no_grad()`` instead (T=100, the cache off and
on in alternation, 7 samples, medians, faults a call)::

    python bench/workspace_ab.py --inference LSTM:256:128,LSTM:512:128,GRU:256:128
    python bench/workspace_ab.py --inference LSTM:512:128,GRU:512:128 --int8
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e_charlm import BATCH, SEQ, VOCAB, build_pair, trainer

from rnnkit.engine import workspace


def measure(step, steps: int) -> tuple[float, float, float]:
    """(steps/s, minor faults per step, system ms per step) over ``steps`` steps."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    faults = (after.ru_minflt - before.ru_minflt) / steps
    system_ms = (after.ru_stime - before.ru_stime) / steps * 1e3
    return steps / elapsed, faults, system_ms


def training_steps(cell: str) -> tuple:
    """``(torch.nn step, rnnkit step)``: callables each running one optimisation step of the
    char-LM with ``cell``, from identical weights."""
    generator = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, VOCAB, (BATCH, SEQ + 1), generator=generator) for _ in range(4)]
    reference, ours = build_pair(cell, "native")
    return trainer(reference, batches)[0], trainer(ours, batches)[0]


def bench_cell(cell: str, rounds: int, steps: int) -> list[dict]:
    ref_step, our_step = training_steps(cell)
    # torch.nn runs beside the cache at its default limit, as it would in a user's process.
    runs = {"torch.nn": (ref_step, workspace.DEFAULT_LIMIT_MB), "rnnkit, cache off": (our_step, 0),
            "rnnkit, cache on": (our_step, workspace.DEFAULT_LIMIT_MB)}
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
    for step, limit in runs.values():  # warm-up
        workspace.set_limit(limit)
        step()
    order = list(runs)
    for r in range(rounds):
        for name in (order if r % 2 == 0 else order[::-1]):
            step, limit = runs[name]
            workspace.set_limit(limit)
            step()  # unmeasured: the cache refills after the other setting emptied it
            samples[name].append(measure(step, steps))
    workspace.set_limit(workspace.DEFAULT_LIMIT_MB)
    rows = []
    for name, values in samples.items():
        rate = statistics.median(v[0] for v in values)
        rows.append({"cell": cell, "model": name, "steps_per_s": rate,
                     "faults": statistics.median(v[1] for v in values),
                     "system_ms": statistics.median(v[2] for v in values)})
    base = rows[0]["steps_per_s"]
    for row in rows:
        row["vs_torch"] = row["steps_per_s"] / base
    return rows


def one_process(cell: str, model: str, steps: int) -> dict:
    """``model`` alone in this process: one warm-up step, then ``steps`` measured."""
    ref_step, our_step = training_steps(cell)
    step = ref_step if model == "torch.nn" else our_step
    workspace.set_limit(0 if model == "rnnkit, cache off" else workspace.DEFAULT_LIMIT_MB)
    step()
    rate, faults, system_ms = measure(step, steps)
    return {"steps_per_s": rate, "faults": faults, "system_ms": system_ms}


def bench_processes(cell: str, rounds: int, steps: int) -> list[dict]:
    names = ["torch.nn", "rnnkit, cache off", "rnnkit, cache on"]
    samples: dict[str, list[dict]] = {name: [] for name in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            out = subprocess.run([sys.executable, __file__, "--one", name, "--cells", cell,
                                  "--steps", str(steps)], check=True, capture_output=True,
                                 text=True).stdout
            samples[name].append(json.loads(out.strip().splitlines()[-1]))
    rows = [{"cell": cell, "model": name,
             **{key: statistics.median(v[key] for v in values)
                for key in ("steps_per_s", "faults", "system_ms")},
             "ratios": [v["steps_per_s"] / t["steps_per_s"]
                        for v, t in zip(values, samples["torch.nn"], strict=True)]}
            for name, values in samples.items()]
    for row in rows:
        row["vs_torch"] = statistics.median(row["ratios"])
    return rows


def bench_inference(layers: str, int8: bool = False, samples: int = 7) -> None:
    """Print one row per ``MODE:HIDDEN:BATCH`` layer (``int8``: through
    ``rnnkit.nn.quantize_int8``): ms and faults a call, cache off / on."""
    from rnnkit import nn as rnn

    print("| layer | off ms (faults a call) | on ms (faults a call) | off / on |")
    print("|---|---:|---:|---:|")
    for spec in layers.split(","):
        mode, hidden, batch = spec.split(":")
        torch.manual_seed(0)
        layer = getattr(rnn, mode)(int(hidden), int(hidden), backend="native").eval()
        layer = rnn.quantize_int8(layer) if int8 else layer
        x = torch.randn(100, int(batch), int(hidden))
        times: dict[int, list[float]] = {0: [], workspace.DEFAULT_LIMIT_MB: []}
        faults: dict[int, list[int]] = {limit: [] for limit in times}
        with torch.no_grad():
            for r in range(samples):
                for limit in (sorted(times) if r % 2 == 0 else sorted(times)[::-1]):
                    workspace.set_limit(limit)
                    layer(x)
                    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                    start = time.perf_counter()
                    layer(x)
                    times[limit].append(time.perf_counter() - start)
                    faults[limit].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                                         - before)
        off, on = times[0], times[workspace.DEFAULT_LIMIT_MB]
        ratio = statistics.median(a / b for a, b in zip(off, on, strict=True))
        print(f"| {'int8 ' if int8 else ''}{mode} H={hidden} B={batch} "
              f"| {statistics.median(off) * 1e3:.1f} "
              f"({statistics.median(faults[0]):,.0f}) | {statistics.median(on) * 1e3:.1f} "
              f"({statistics.median(faults[workspace.DEFAULT_LIMIT_MB]):,.0f}) | {ratio:.2f} |")
    workspace.set_limit(workspace.DEFAULT_LIMIT_MB)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", default="LSTM,GRU")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="steps per sample")
    parser.add_argument("--processes", action="store_true",
                        help="each model alone in a new process, in turn")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--inference", metavar="MODE:H:B,...",
                        help="time inference calls of these layers instead")
    parser.add_argument("--int8", action="store_true",
                        help="with --inference: the layers quantised by rnnkit.nn.quantize_int8")
    args = parser.parse_args(argv)
    if args.inference:
        bench_inference(args.inference, args.int8)
        return
    if args.one:
        print(json.dumps(one_process(args.cells, args.one, args.steps)))
        return
    malloc = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, glibc settings {malloc or 'default'}")
    print("| cell | model | steps/s | vs torch.nn | minor faults / step | system ms / step |")
    print("|---|---|---:|---:|---:|---:|")
    for cell in args.cells.split(","):
        rows = (bench_processes if args.processes else bench_cell)(cell, args.rounds, args.steps)
        for row in rows:
            spread = (f" ({min(row['ratios']):.2f}-{max(row['ratios']):.2f})"
                      if "ratios" in row else "")
            print(f"| {row['cell']} | {row['model']} | {row['steps_per_s']:.2f} "
                  f"| {row['vs_torch']:.2f}x{spread} | {row['faults']:.0f} "
                  f"| {row['system_ms']:.0f} |")


if __name__ == "__main__":
    main()
