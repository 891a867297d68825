"""Speed of rnnkit's native engine against torch.nn on this machine.

For RNN, GRU and LSTM, inference (no_grad) and training (forward + backward), hidden sizes
64..512, batches 1..128, seq 100: the ratio torch.nn time / rnnkit time from paired,
interleaved repetitions in one process (median and min-max over repetitions), the engine's
GFLOP/s and its share of a measured large-GEMM ceiling; then the per-step latency of
streaming ``step()`` at batch 1 against calling torch.nn one step at a time (the streaming
paths, ``streamer()`` fp32 and int8 with ORT and 1/2 threads, are in bench/streaming.py).

    python bench/layers.py            # full grid, writes bench/results/layers.{json,md}
    python bench/layers.py --quick    # a smaller grid, writes bench/results/layers_quick.*
    python bench/layers.py --clock cpu  # 1 thread, per-thread CPU time: robust on a busy
                                        # machine, writes bench/results/layers_cpu1.*
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnkit import engine
from rnnkit import nn as rnn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import onnx_peer

RESULTS = Path(__file__).resolve().parent / "results"
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
ENGINE_MODES = {"RNN": "RNN_TANH", "GRU": "GRU", "LSTM": "LSTM"}
MIN_SAMPLE_SECONDS = 0.05
# A batch-1 call lasts 0.05-7 ms, so one scheduler hiccup moves a 50 ms sample a lot
# (LSTM H=64: 0.33-1.29x over 5 repetitions); more repetitions cost little there.
BATCH_ONE_REPS_FACTOR = 3
# Idle seconds before each timing sample. torch's OpenMP team and ONNX Runtime's intra-op
# pool keep spinning after their last call; on a 2-core machine the spinner of the
# implementation sampled just before takes a core from the next one (rnnkit's GRU H=64 at
# batch 1 ran several times slower right after ORT than after a pause). A user runs one
# library, not three in turn, so each sample starts with every other pool asleep.
SETTLE_SECONDS = 0.2
settle_seconds = SETTLE_SECONDS
# Wall-clock by default; --clock cpu switches to the calling thread's CPU time (with one
# torch thread, so all work of both implementations runs on that thread).
clock = time.perf_counter
# --prepack: rnnkit's layers keep their packed weights between calls (rnnkit.nn.prepack), as
# an ONNX Runtime session keeps its own.
prepack_layers = False


@dataclass
class Row:
    """One benchmarked configuration."""

    mode: str
    task: str  # "inference" or "training"
    hidden: int
    batch: int
    seq_len: int
    torch_ms: float
    rnnkit_ms: float
    speedup: float  # median of paired ratios torch / rnnkit
    speedup_min: float
    speedup_max: float
    rnnkit_gflops: float
    ceiling_pct: float
    auto_uses_native: bool  # what backend='auto' picks for this shape
    ort_ms: float | None = None  # ONNX Runtime, inference rows only
    vs_ort: float | None = None  # median of paired ratios ORT / rnnkit (> 1: rnnkit faster)
    vs_ort_min: float | None = None
    vs_ort_max: float | None = None


def make_pair(mode: str, hidden: int, backend: str):
    """``(torch.nn layer, rnnkit.nn layer)`` with equal weights, input size == hidden."""
    torch.manual_seed(0)
    reference = getattr(torch.nn, mode)(hidden, hidden)
    ours = getattr(rnn, mode)(hidden, hidden, backend=backend)
    ours.load_state_dict(reference.state_dict())
    if prepack_layers:
        rnn.prepack(ours)
    return reference, ours


def step_flops(mode: str, hidden: int, batch: int) -> float:
    """Multiply-add FLOPs of one forward time step (input and recurrent products)."""
    return 2.0 * batch * GATES[mode] * hidden * (hidden + hidden)


def runner(layer, x: torch.Tensor, training: bool):
    """A no-argument callable doing one inference or one forward+backward pass."""
    if not training:
        def infer():
            with torch.no_grad():
                layer(x)
        return infer

    params = list(layer.parameters())

    def train():
        for p in params:
            p.grad = None
        output, _ = layer(x)
        output.sum().backward()
    return train


def calibrate(fn) -> int:
    """Calls per timing sample so one sample lasts at least MIN_SAMPLE_SECONDS."""
    fn()
    start = clock()
    fn()
    once = max(clock() - start, 1e-6)
    return max(1, int(MIN_SAMPLE_SECONDS / once + 0.999))


def sample(fn, calls: int) -> float:
    if settle_seconds:
        time.sleep(settle_seconds)
        fn()  # wakes this implementation's own threads, as in a user's running loop
    start = clock()
    for _ in range(calls):
        fn()
    return (clock() - start) / calls


def interleaved(functions, reps: int) -> list[list[float]]:
    """Seconds per call of each callable, sampled in turn (rotating which goes first)."""
    calls = max(calibrate(fn) for fn in functions)
    times: list[list[float]] = [[] for _ in functions]
    order = list(range(len(functions)))
    for _ in range(reps):
        for index in order:
            times[index].append(sample(functions[index], calls))
        order = order[1:] + order[:1]
    return times


def paired(baseline, candidate, reps: int) -> tuple[list[float], list[float]]:
    """Interleaved timings (seconds per call) of two callables, alternating which goes first."""
    base, cand = interleaved([baseline, candidate], reps)
    return base, cand


def ratio_stats(numerator: list[float], denominator: list[float]) -> tuple[float, float, float]:
    ratios = [a / b for a, b in zip(numerator, denominator, strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)


def gemm_ceiling(reps: int) -> float:
    """GFLOP/s of a large float32 matrix product with torch's BLAS on all torch threads."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    times = [sample(lambda: torch.mm(a, b), 3) for _ in range(reps)]
    return 2 * 2048**3 / statistics.median(times) / 1e9


def bench_layer(mode, task, hidden, batch, seq_len, reps, ceiling, backend, ort) -> Row:
    reference, ours = make_pair(mode, hidden, backend)
    x = torch.randn(seq_len, batch, hidden)
    training = task == "training"
    functions = [runner(reference, x, training), runner(ours, x, training)]
    if ort and not training:
        functions.append(onnx_peer.ort_sequence(reference, x))
    times = interleaved(functions, reps * BATCH_ONE_REPS_FACTOR if batch == 1 else reps)
    base, cand = times[0], times[1]
    speedup = ratio_stats(base, cand)
    flops = step_flops(mode, hidden, batch) * seq_len * (3 if training else 1)
    gflops = flops / statistics.median(cand) / 1e9
    auto = engine.should_use(ENGINE_MODES[mode], input_size=hidden, hidden_size=hidden,
                             batch=batch, seq_len=seq_len, dtype=x.dtype, device=x.device,
                             training=training)
    row = Row(mode, task, hidden, batch, seq_len, 1e3 * statistics.median(base),
              1e3 * statistics.median(cand), *speedup, gflops, 100 * gflops / ceiling, auto)
    if len(times) == 3:
        row.ort_ms = 1e3 * statistics.median(times[2])
        row.vs_ort, row.vs_ort_min, row.vs_ort_max = ratio_stats(times[2], cand)
    return row


def bench_streaming(mode, hidden, reps, backend, ort) -> dict:
    """Per-step latency at batch 1: rnnkit ``step()`` vs torch.nn on a length-1 sequence.

    Both run under one ``torch.no_grad()`` (as a streaming loop would), each fed its own
    ready-made input: ``(1, 1, H)`` for torch.nn's sequence API, ``(1, H)`` for ``step()``.
    """
    reference, ours = make_pair(mode, hidden, backend)
    x = torch.randn(1, 1, hidden)
    x_step = x[0].clone()
    state = {"ref": None, "ours": None}

    def torch_step():
        _, state["ref"] = reference(x, state["ref"])

    def rnnkit_step():
        _, state["ours"] = ours.step(x_step, state["ours"])

    functions = [torch_step, rnnkit_step] + ([onnx_peer.ort_step(reference)] if ort else [])
    with torch.no_grad():
        times = interleaved(functions, reps)
    base, cand = times[0], times[1]
    speedup, low, high = ratio_stats(base, cand)
    result = {"mode": mode, "hidden": hidden, "torch_us": 1e6 * statistics.median(base),
              "rnnkit_us": 1e6 * statistics.median(cand), "speedup": speedup,
              "speedup_min": low, "speedup_max": high}
    if ort:
        result["ort_us"] = 1e6 * statistics.median(times[2])
        result["vs_ort"], result["vs_ort_min"], result["vs_ort_max"] = ratio_stats(times[2],
                                                                                   cand)
    return result


def markdown(meta: dict, rows: list[Row], streaming: list[dict]) -> str:
    factor = meta.get("batch_one_reps_factor", 1)  # files written before it existed: 1
    batch_one = f" ({factor}x as many at batch 1)" if factor > 1 else ""
    lines = [
        "# rnnkit native engine vs torch.nn",
        "",
        f"{meta['cpu']}, {meta['threads']} threads, {meta['clock']}-clock timing (load average "
        f"{meta['load_average']:.1f} at the start), torch {meta['torch']}, engine ISA "
        f"`{meta['isa']}`, backend `{meta['backend']}`, float32, seq {meta['seq_len']}, "
        f"{meta['reps']} paired interleaved repetitions{batch_one}"
        f"{settle_note(meta)}"
        f"{', rnnkit layers prepacked (rnnkit.nn.prepack)' if meta.get('prepack') else ''}"
        f". Large-GEMM ceiling {meta['gemm_ceiling_gflops']:.0f} GFLOP/s.",
        "",
        "Speedup = torch.nn time / rnnkit time (median, min-max over repetitions). `auto`: "
        "the engine `backend='auto'` picks for that shape (torch means the same kernels as "
        "torch.nn, i.e. ~1.0x).",
        "",
        "| cell | task | H | B | torch ms | rnnkit ms | speedup | min-max | GFLOP/s | % ceiling "
        "| auto | ORT ms | vs ORT | min-max |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---:|---|",
    ]
    for r in rows:
        ort = (f"{r.ort_ms:.2f} | **{r.vs_ort:.2f}x** | {r.vs_ort_min:.2f}-{r.vs_ort_max:.2f}"
               if r.vs_ort is not None else " | | ")
        lines.append(
            f"| {r.mode} | {r.task} | {r.hidden} | {r.batch} | {r.torch_ms:.2f} | "
            f"{r.rnnkit_ms:.2f} | **{r.speedup:.2f}x** | {r.speedup_min:.2f}-{r.speedup_max:.2f} "
            f"| {r.rnnkit_gflops:.1f} | {r.ceiling_pct:.0f}% "
            f"| {'native' if r.auto_uses_native else 'torch'} | {ort} |")
    lines += ["", "vs ORT = ONNX Runtime time / rnnkit time (> 1: rnnkit faster), the same "
              "torch.nn weights exported with torch.onnx, outputs checked equal first.",
              "", "## Streaming `step()` at batch 1 (no_grad), per step", "",
              "| cell | H | torch.nn µs | rnnkit µs | speedup | min-max | ORT µs | vs ORT |",
              "|---|---:|---:|---:|---:|---|---:|---:|"]
    for s in streaming:
        ort = f"{s['ort_us']:.1f} | **{s['vs_ort']:.2f}x**" if "ort_us" in s else " | "
        lines.append(f"| {s['mode']} | {s['hidden']} | {s['torch_us']:.1f} | {s['rnnkit_us']:.1f} "
                     f"| **{s['speedup']:.2f}x** | {s['speedup_min']:.2f}-{s['speedup_max']:.2f} "
                     f"| {ort} |")
    return "\n".join(lines) + "\n"


def settle_note(meta: dict) -> str:
    """How the samples were separated (files written before the settle gap: no pause)."""
    settle = meta.get("settle_seconds")
    if not settle:
        return ", each sample straight after the previous implementation's"
    return (f", each sample after {settle:g} s idle and one untimed call (no other "
            "implementation's thread pool still spinning)")


def render(path: Path) -> None:
    """Rewrite ``path``'s markdown (and auto column) from its JSON with the current policy."""
    payload = json.loads(path.read_text())
    rows = [Row(**row) for row in payload["layers"]]
    for row in rows:
        row.auto_uses_native = engine.should_use(
            ENGINE_MODES[row.mode], input_size=row.hidden, hidden_size=row.hidden,
            batch=row.batch, seq_len=row.seq_len, dtype=torch.float32, device="cpu",
            training=row.task == "training")
    payload["layers"] = [asdict(row) for row in rows]
    path.write_text(json.dumps(payload, indent=2) + "\n")
    path.with_suffix(".md").write_text(markdown(payload["meta"], rows, payload["streaming"]))


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller grid")
    parser.add_argument("--reps", type=int, default=5, help="paired repetitions (>= 5)")
    parser.add_argument("--backend", default="native", choices=["native", "auto"])
    parser.add_argument("--modes", default="RNN,GRU,LSTM")
    parser.add_argument("--out", default=None, help="results file stem under bench/results")
    parser.add_argument("--render", metavar="JSON", default=None,
                        help="only rewrite JSON's markdown, re-deriving the auto column from "
                             "the current policy")
    parser.add_argument("--streaming-only", action="store_true",
                        help="re-measure only streaming step() and update that part of the "
                             "results file")
    parser.add_argument("--no-ort", action="store_true",
                        help="skip the ONNX Runtime column (inference rows and streaming)")
    parser.add_argument("--hiddens", default=None, help="comma-separated hidden sizes")
    parser.add_argument("--batches", default=None, help="comma-separated batch sizes")
    parser.add_argument("--tasks", default="inference,training")
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                        help="wall: elapsed time on torch's threads; cpu: one thread, CPU time")
    parser.add_argument("--prepack", action="store_true",
                        help="prepack rnnkit's layers (rnnkit.nn.prepack): packed weights kept "
                             "between calls, as in an ONNX Runtime session")
    parser.add_argument("--settle", type=float, default=SETTLE_SECONDS,
                        help="idle seconds before each timing sample, so no other "
                             "implementation's spinning thread pool shares the cores (0: none)")
    args = parser.parse_args(argv)
    if args.render:
        render(Path(args.render))
        return
    global clock, settle_seconds, prepack_layers
    settle_seconds = args.settle
    prepack_layers = args.prepack
    if args.clock == "cpu":
        torch.set_num_threads(1)
        clock = time.thread_time
    if not engine.available():
        raise SystemExit(f"native engine not available: {engine.import_error}")
    hiddens = (64, 256) if args.quick else (64, 128, 256, 512)
    batches = (1, 32) if args.quick else (1, 32, 128)
    if args.hiddens:
        hiddens = tuple(int(h) for h in args.hiddens.split(","))
    if args.batches:
        batches = tuple(int(b) for b in args.batches.split(","))
    ort = not args.no_ort
    seq_len = 100
    ceiling = gemm_ceiling(args.reps)
    meta = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "isa": engine.isa(), "backend": args.backend, "seq_len": seq_len, "reps": args.reps,
            "gemm_ceiling_gflops": ceiling, "clock": args.clock,
            "settle_seconds": settle_seconds, "prepack": args.prepack,
            "batch_one_reps_factor": BATCH_ONE_REPS_FACTOR,
            "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    print(f"GEMM ceiling {ceiling:.0f} GFLOP/s, ISA {engine.isa()}", flush=True)
    stem = args.out or ("layers_quick" if args.quick else "layers") + (
        "_cpu1" if args.clock == "cpu" else "")
    rows = []
    if args.streaming_only:
        previous = json.loads((RESULTS / f"{stem}.json").read_text())
        rows = [Row(**row) for row in previous["layers"]]
        meta = {**previous["meta"], "streaming_load_average":
                os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    for mode in ([] if args.streaming_only else args.modes.split(",")):
        for task in args.tasks.split(","):
            for hidden in hiddens:
                for batch in batches:
                    row = bench_layer(mode, task, hidden, batch, seq_len, args.reps, ceiling,
                                      args.backend, ort)
                    rows.append(row)
                    print(f"{mode:4} {task:9} H={hidden:3} B={batch:3}  torch {row.torch_ms:8.2f} "
                          f"ms  rnnkit {row.rnnkit_ms:8.2f} ms  {row.speedup:5.2f}x "
                          f"({row.speedup_min:.2f}-{row.speedup_max:.2f})  "
                          f"{row.rnnkit_gflops:6.1f} GFLOP/s"
                          + (f"  ORT {row.ort_ms:8.2f} ms, rnnkit {row.vs_ort:5.2f}x"
                             if row.vs_ort is not None else ""), flush=True)
    streaming = []
    for mode in args.modes.split(","):
        for hidden in hiddens:
            s = bench_streaming(mode, hidden, args.reps, args.backend, ort)
            streaming.append(s)
            print(f"step {mode:4} H={hidden:3}  torch {s['torch_us']:7.1f} us  rnnkit "
                  f"{s['rnnkit_us']:7.1f} us  {s['speedup']:5.2f}x", flush=True)
    RESULTS.mkdir(exist_ok=True)
    payload = {"meta": meta, "layers": [asdict(r) for r in rows], "streaming": streaming}
    (RESULTS / f"{stem}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(meta, rows, streaming))
    print(f"wrote {RESULTS / stem}.json and .md")


if __name__ == "__main__":
    main()
