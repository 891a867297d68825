"""Training time of an autoregressive forecaster, this checkout against another source tree
(e.g. an older commit's), interleaved, as CPU seconds (the machine is shared, so wall-clock
mostly measures the load). The run: examples/electricity_covariates.yaml with an LSTM,
``model.strategy=autoregressive``, a fixed 20 epochs (no early stopping, so both sides do the
same number of steps and validation passes), one thread.

    mkdir -p /tmp/before && cp -r src /tmp/before/ && for f in models/forecaster.py \\
        tasks/forecasting.py; do git show f39f476:src/rnnkit/$f > /tmp/before/src/rnnkit/$f; done
    .venv/bin/python bench/forecast_ar_speed.py --before /tmp/before/src [--repeats 3]

(``f39f476``: the last commit before autoregressive training became teacher-forced and its
validation cheaper.) Prints the median CPU and wall seconds of ``tasks.train`` per side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OVERRIDES = ["model.cell=lstm", "model.strategy=autoregressive", "train.max_epochs=20",
             "train.patience=null", "train.progress=false", "data.test=null"]


def one_run() -> None:
    """Train once in this process and print ``{"cpu": s, "wall": s}``."""
    import torch

    from rnnkit import tasks

    torch.set_num_threads(1)
    config = tasks.load_config(ROOT / "examples" / "electricity_covariates.yaml", OVERRIDES)
    with tempfile.TemporaryDirectory() as scratch:
        cpu, wall = time.process_time(), time.perf_counter()
        tasks.train(config, Path(scratch) / "run")
        print(json.dumps({"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True,
                        help="the other source tree's src/ directory (rnnkit inside)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_run()
        return
    sides = {"before": str(args.before), "after": str(ROOT / "src")}
    times: dict[str, list[dict]] = {side: [] for side in sides}
    for _ in range(args.repeats):
        for side, source in sides.items():
            environment = {**os.environ, "PYTHONPATH": source}
            done = subprocess.run([sys.executable, __file__, "--before", source, "--one"],
                                  capture_output=True, text=True, env=environment, check=True)
            times[side].append(json.loads(done.stdout.strip().splitlines()[-1]))
    for side, runs in times.items():
        cpu = [r["cpu"] for r in runs]
        wall = [r["wall"] for r in runs]
        listed = ", ".join(f"{c:.2f}" for c in cpu)
        print(f"{side}: CPU s median {np.median(cpu):.2f} (runs {listed}), wall s median "
              f"{np.median(wall):.2f}")


if __name__ == "__main__":
    main()
