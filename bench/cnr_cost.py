"""What strict CNR costs: MKL with rnnkit's default (``MKL_CBWR=AUTO,STRICT``) vs MKL's own.

MKL fixes its mode at its first call, so each measurement runs in a child process; children
with and without strict CNR alternate (A B B A ...) and the ratios are taken pair by pair.
Each child measures the large-GEMM ceiling (2048^3 float32 products on all torch threads) and
the training steps/s of the char-level LM of ``e2e_charlm.py`` (2 x 256, batch 64, seq 128)
with rnnkit's layers on ``backend='auto'``.

    python bench/cnr_cost.py             # writes bench/results/cnr_cost.{json,md}
    python bench/cnr_cost.py --pairs 2   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
CELLS = ("LSTM", "GRU")


def child(cells: list[str], steps: int) -> dict:
    """Measure in this process (called with the environment of one side)."""
    sys.path.insert(0, str(BENCH.parent / "src"))
    import torch

    import rnnkit  # noqa: F401  (sets MKL's mode unless RNNKIT_MKL_CNR=off)
    from rnnkit.reproducibility import blas_mode

    sys.path.insert(0, str(BENCH))
    from e2e_charlm import BATCH, SEQ, VOCAB, build_pair, timed, trainer
    from layers import gemm_ceiling

    generator = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, VOCAB, (BATCH, SEQ + 1), generator=generator) for _ in range(4)]
    out = {"strict": blas_mode().strict, "gemm_gflops": gemm_ceiling(5)}
    for cell in cells:
        _, ours = build_pair(cell, "auto")
        step, _ = trainer(ours, batches)
        step()  # warm-up
        out[cell] = timed(step, steps)
    return out


def run_side(strict: bool, cells: list[str], steps: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    env["RNNKIT_MKL_CNR"] = "on" if strict else "off"
    command = [sys.executable, __file__, "--child", "--cells", ",".join(cells),
               "--steps", str(steps)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["strict"] == strict, measured
    return measured


def markdown(meta: dict, rows: list[dict]) -> str:
    lines = ["# Cost of strict CNR (rnnkit's default MKL mode)", "",
             f"{meta['cpu']}; torch {meta['torch']}, {meta['threads']} threads; {meta['pairs']} "
             f"interleaved pairs of child processes; medians, ratio = strict / MKL default "
             "(pair by pair; > 1 is faster with strict CNR).", "",
             "| measure | MKL default | strict CNR | ratio | min-max |", "|---|---:|---:|---:|---|"]
    for row in rows:
        lines.append(f"| {row['measure']} | {row['default']:.2f} | {row['strict']:.2f} | "
                     f"**{row['ratio']:.3f}** | {row['ratio_min']:.3f}-{row['ratio_max']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=6, help="char-LM steps per measurement")
    parser.add_argument("--cells", default=",".join(CELLS))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cells = args.cells.split(",")
    if args.child:
        print(json.dumps(child(cells, args.steps)))
        return
    sides: dict[bool, list[dict]] = {True: [], False: []}
    for pair in range(args.pairs):
        for strict in ((True, False) if pair % 2 == 0 else (False, True)):
            sides[strict].append(run_side(strict, cells, args.steps))
            print(f"pair {pair + 1} strict={strict}: {sides[strict][-1]}", flush=True)
    rows = []
    for key, name in [("gemm_gflops", "GEMM ceiling, GFLOP/s")] + [
            (cell, f"char-LM {cell} 2x256 training, steps/s") for cell in cells]:
        strict = [m[key] for m in sides[True]]
        default = [m[key] for m in sides[False]]
        ratios = [s / d for s, d in zip(strict, default, strict=True)]
        rows.append({"measure": name, "strict": statistics.median(strict),
                     "default": statistics.median(default), "ratio": statistics.median(ratios),
                     "ratio_min": min(ratios), "ratio_max": max(ratios)})
    import torch
    from layers import cpu_name

    meta = {"cpu": cpu_name(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "pairs": args.pairs}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cnr_cost.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    (RESULTS / "cnr_cost.md").write_text(markdown(meta, rows))
    print(markdown(meta, rows))


if __name__ == "__main__":
    main()
