"""A/B in one process: the forward recurrence kernel of another build of ``_native`` against
this tree's, at a fixed thread count.

Each point (cell, hidden, batch; seq 100, input = hidden) runs the native forward kernel alone
(``ops._run_forward`` on a precomputed input projection), for inference (``save=False``) and
for training (``save=True``, the activations kept for BPTT). The two builds alternate within
every round (order flipped each round); medians of the wall clock (or, with ``--clock cpu``, of
the process's CPU time: all threads, a barrier's spinning included) are reported, with the
ratio other/this (> 1: this build is faster), and the minimum over the rounds: on a machine
shared with other jobs a thread that waits at a barrier for a descheduled peer can take a
scheduler quantum per step, so the median moves by 100x between runs while the minimum (the
least disturbed round) stays put. Before timing, every output of this build at 1 and at
``--threads`` threads is checked bit-equal to the other build's one-thread result.

    cp src/rnnkit/engine/_native*.so /tmp/old_native.so   # before rebuilding
    python bench/forward_rows_ab.py /tmp/old_native.so
    python bench/forward_rows_ab.py /tmp/old_native.so --cells LSTM --hiddens 64,128 \\
        --batches 32,128 --lengths
    python bench/forward_rows_ab.py /tmp/old_native.so --charlm LSTM   # e2e_charlm's step

``--charlm CELL`` times instead one training step of bench/e2e_charlm.py's model (2 x 256,
batch 64, ``backend='native'``) with each build, and torch.nn's step, in turn within each round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import e2e_charlm as charlm
from bptt_ab import load_other

from rnnkit.engine import ops
from rnnkit.engine.checks import GATES

SEQ = 100
KERNEL_MODES = {"LSTM": "LSTM", "GRU": "GRU", "RNN": "RNN_TANH"}
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def point_tensors(cell: str, hidden: int, batch: int, lengths: bool) -> dict:
    """Seeded weights, input projection and initial states of one point."""
    generator = torch.Generator().manual_seed(hidden * 1000 + batch)
    width = GATES[KERNEL_MODES[cell]] * hidden

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=generator) * scale

    x = randn(SEQ, batch, hidden)
    w_ih = randn(width, hidden, scale=hidden ** -0.5)
    rows = None
    if lengths:  # review-like spread, longest first as the kernel expects
        drawn = torch.empty(batch).log_normal_(4.0, 0.8, generator=generator)
        rows = drawn.round().clamp(1, SEQ).long().sort(descending=True).values
    xg = ops._input_projection(x, w_ih, None)
    bias, b_hn = ops._gate_bias(cell, x, randn(width, scale=0.1), randn(width, scale=0.1),
                                width, hidden)
    return {"xg": xg, "bias": bias, "b_hn": b_hn, "lengths": rows,
            "h0": randn(batch, hidden, scale=0.5),
            "c0": randn(batch, hidden, scale=0.5) if cell == "LSTM" else None,
            "w_hh": randn(width, hidden, scale=hidden ** -0.5)}


def forward(module, cell: str, t: dict, threads: int, save: bool):
    """``(y, h_n, c_n, saved)`` of the forward kernel of ``module`` at ``threads`` threads."""
    ops.require_native = lambda: module
    hidden = t["h0"].shape[1]
    plan = ops._Plan(KERNEL_MODES[cell], hidden, hidden, t["lengths"], False, threads)
    return ops._run_forward(plan, t["xg"], t["bias"], t["h0"], t["c0"], t["w_hh"], t["b_hn"],
                            None, save)


def flat(result, save: bool) -> list:
    """The outputs, and the activations kept for BPTT when saved (inference's scratch is not
    all written)."""
    y, h_n, c_n, saved = result
    return [v for v in (y, h_n, c_n, *(saved if save else ())) if v is not None]


def check_bits(other, this, cell: str, t: dict, threads: int) -> None:
    for save in (False, True):
        reference = flat(forward(other, cell, t, 1, save), save)
        for n in (1, threads):
            got = flat(forward(this, cell, t, n, save), save)
            assert all(torch.equal(a, b) for a, b in zip(reference, got, strict=True)), \
                f"{cell}: bits differ at {n} threads, save={save}"


def measure(other, this, cell: str, t: dict, threads: int, save: bool, rounds: int,
            clock) -> dict:
    builds = {"other": other, "this": this}
    runs = {name: [] for name in builds}
    for r in range(rounds):
        for name in (list(builds) if r % 2 == 0 else list(builds)[::-1]):
            start = clock()
            forward(builds[name], cell, t, threads, save)
            runs[name].append(clock() - start)
    return {name: (statistics.median(v) * 1e3, min(v) * 1e3) for name, v in runs.items()}


def measure_charlm(other, this, cell: str, rounds: int) -> None:
    """Steps/s of the char-LM with each build and with torch.nn, interleaved."""
    generator = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, charlm.VOCAB, (charlm.BATCH, charlm.SEQ + 1),
                             generator=generator) for _ in range(4)]
    reference, ours = charlm.build_pair(cell, "native")
    torch_step, _ = charlm.trainer(reference, batches)
    our_step, _ = charlm.trainer(ours, batches)

    def with_build(module):
        def step():
            ops.require_native = lambda: module
            our_step()
        return step

    steps = {"torch.nn": torch_step, "other": with_build(other), "this": with_build(this)}
    for step in steps.values():  # warm-up
        step()
    rates = {name: [] for name in steps}
    for r in range(rounds):
        for name in (list(steps) if r % 2 == 0 else list(steps)[::-1]):
            rates[name].append(charlm.timed(steps[name], 2))
    for name, values in rates.items():
        print(f"{cell} char-LM {name}: median {statistics.median(values):.2f} steps/s, "
              f"max {max(values):.2f}")
    for name in ("other", "this"):
        ratios = [o / t for o, t in zip(rates[name], rates["torch.nn"], strict=True)]
        print(f"{cell} char-LM {name} / torch.nn: median {statistics.median(ratios):.2f}x "
              f"({min(ratios):.2f}-{max(ratios):.2f})")
    ratios = [n / o for n, o in zip(rates["this"], rates["other"], strict=True)]
    print(f"{cell} char-LM this / other: median {statistics.median(ratios):.2f}x "
          f"({min(ratios):.2f}-{max(ratios):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", help="path of the other build's _native*.so")
    parser.add_argument("--cells", default="LSTM,GRU,RNN")
    parser.add_argument("--hiddens", default="64,128,256,512")
    parser.add_argument("--batches", default="32,64,128")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall")
    parser.add_argument("--charlm", metavar="CELL", default=None,
                        help="time e2e_charlm's training step instead of the kernel grid")
    parser.add_argument("--lengths", action="store_true",
                        help="log-normal lengths (median ~55 of 100 steps), longest first")
    args = parser.parse_args()
    other, this = load_other(args.other), ops.require_native()
    torch.set_num_threads(args.threads)
    if args.charlm:
        print(f"load average at start {os.getloadavg()[0]:.2f}; {args.threads} threads")
        measure_charlm(other, this, args.charlm, args.rounds)
        print(f"load average at end {os.getloadavg()[0]:.2f}")
        return
    print(f"load average at start {os.getloadavg()[0]:.2f}; seq {SEQ}, {args.threads} threads, "
          f"lengths {'log-normal' if args.lengths else 'none'}, {args.clock} clock")
    print("| cell | H | B | task | other ms | this ms | other/this | other min | this min "
          "| ratio of min |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for cell in args.cells.split(","):
        for hidden in map(int, args.hiddens.split(",")):
            for batch in map(int, args.batches.split(",")):
                t = point_tensors(cell, hidden, batch, args.lengths)
                check_bits(other, this, cell, t, args.threads)
                for save in (False, True):
                    ms = measure(other, this, cell, t, args.threads, save, args.rounds,
                                 CLOCKS[args.clock])
                    task = "training fwd" if save else "inference"
                    (old, old_min), (new, new_min) = ms["other"], ms["this"]
                    print(f"| {cell} | {hidden} | {batch} | {task} | {old:.2f} | {new:.2f} | "
                          f"{old / new:.2f}x | {old_min:.2f} | {new_min:.2f} | "
                          f"{old_min / new_min:.2f}x |", flush=True)
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
