"""Variable-length batches: rnnkit (``lengths=`` and packed input) vs torch.nn's packed path.

Lengths are drawn like review lengths (log-normal, median ~60 tokens, clipped to 10..400);
each batch is padded to its longest row. torch.nn runs ``pack_padded_sequence`` (unsorted) ->
layer -> ``pad_packed_sequence``, as users write it; rnnkit runs the same packed code and its
own ``lengths=`` argument. Inference (no_grad) and training (forward + backward), paired,
interleaved repetitions in one process, medians.

    python bench/variable_lengths.py          # writes bench/results/variable_lengths.{json,md}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnkit import nn as rnn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from layers import cpu_name, interleaved, ratio_stats

RESULTS = Path(__file__).resolve().parent / "results"


def review_lengths(batch: int, generator: torch.Generator) -> torch.Tensor:
    """Log-normal lengths (median e^4.1 ~ 60), clipped to [10, 400], int64 ``(batch,)``."""
    normal = torch.randn(batch, generator=generator, dtype=torch.float64)
    return (4.1 + 0.8 * normal).exp().round().clamp(10, 400).long()


def runners(mode: str, hidden: int, batch: int, training: bool):
    torch.manual_seed(0)
    reference = getattr(torch.nn, mode)(hidden, hidden, batch_first=True)
    ours = getattr(rnn, mode)(hidden, hidden, batch_first=True)
    ours.load_state_dict(reference.state_dict())
    generator = torch.Generator().manual_seed(1)
    lengths = review_lengths(batch, generator)
    x = torch.randn(batch, int(lengths.max()), hidden, generator=generator)

    def packed(layer):
        def run():
            packed_input = pack_padded_sequence(x, lengths, batch_first=True,
                                                enforce_sorted=False)
            output, _ = layer(packed_input)
            padded, _ = pad_packed_sequence(output, batch_first=True)
            return padded
        return run

    def with_lengths():
        output, _ = ours(x, lengths=lengths)
        return output

    torch.testing.assert_close(with_lengths(), packed(reference)(), rtol=1e-4, atol=1e-5)
    functions = [packed(reference), packed(ours), with_lengths]
    if not training:
        return [_no_grad(f) for f in functions], lengths
    return [_train(f, layer) for f, layer in zip(functions, (reference, ours, ours),
                                                  strict=True)], lengths


def _no_grad(function):
    def run():
        with torch.no_grad():
            function()
    return run


def _train(function, layer):
    parameters = list(layer.parameters())

    def run():
        for parameter in parameters:
            parameter.grad = None
        function().sum().backward()
    return run


def measure(mode: str, task: str, hidden: int, batch: int, reps: int) -> dict:
    """One grid point: medians (ms) and torch-packed / rnnkit ratios."""
    functions, lengths = runners(mode, hidden, batch, task == "training")
    times = interleaved(functions, reps)
    row = {"mode": mode, "task": task, "hidden": hidden, "batch": batch,
           "max_len": int(lengths.max()), "mean_len": float(lengths.float().mean()),
           "torch_packed_ms": 1e3 * statistics.median(times[0]),
           "rnnkit_packed_ms": 1e3 * statistics.median(times[1]),
           "rnnkit_lengths_ms": 1e3 * statistics.median(times[2])}
    row["packed_speedup"], _, _ = ratio_stats(times[0], times[1])
    row["lengths_speedup"], row["lengths_min"], row["lengths_max"] = ratio_stats(times[0],
                                                                                 times[2])
    return row


def render(meta: dict, rows: list[dict]) -> str:
    lines = ["# Variable-length batches: rnnkit vs torch.nn's packed path", "",
             f"{meta['cpu']}, {meta['threads']} threads, torch {meta['torch']}, log-normal "
             f"lengths 10-400; {meta['reps']} interleaved repetitions, medians; speedup = "
             "torch.nn packed time / rnnkit time (rnnkit backend "
             f"`{meta['backend']}`). Load average at the start: "
             f"{meta['load']:.1f}.", "",
             f"Reproduce: `python bench/variable_lengths.py {meta['argv']}`", "",
             "| cell | task | H | B | max/mean len | torch packed ms | rnnkit packed ms | speedup "
             "| rnnkit lengths= ms | speedup | min-max |",
             "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['task']} | {r['hidden']} | {r['batch']} | "
                     f"{r['max_len']}/{r['mean_len']:.0f} | {r['torch_packed_ms']:.1f} | "
                     f"{r['rnnkit_packed_ms']:.1f} | **{r['packed_speedup']:.2f}x** | "
                     f"{r['rnnkit_lengths_ms']:.1f} | **{r['lengths_speedup']:.2f}x** | "
                     f"{r['lengths_min']:.2f}-{r['lengths_max']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--modes", default="LSTM,GRU")
    parser.add_argument("--hiddens", default="128,256")
    parser.add_argument("--batches", default="32,128", help="comma-separated batch sizes")
    parser.add_argument("--tasks", default="inference,training")
    parser.add_argument("--out", default="variable_lengths", help="results file stem")
    parser.add_argument("--backend", default="auto", choices=("auto", "native", "torch"),
                        help="rnnkit's backend for its two columns")
    args = parser.parse_args(argv)
    rnn.set_backend(args.backend)
    meta = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "reps": args.reps, "backend": args.backend, "load": os.getloadavg()[0],
            "argv": " ".join(sys.argv[1:] if argv is None else argv)}
    rows = []
    for mode in args.modes.split(","):
        for task in args.tasks.split(","):
            for hidden in (int(h) for h in args.hiddens.split(",")):
                for batch in (int(b) for b in args.batches.split(",")):
                    rows.append(measure(mode, task, hidden, batch, args.reps))
                    print(json.dumps(rows[-1]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps({"meta": meta, "rows": rows},
                                                         indent=2) + "\n")
    text = render(meta, rows)
    (RESULTS / f"{args.out}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
