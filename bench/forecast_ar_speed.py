"""Training cost of an autoregressive forecaster, this checkout against another source tree
(e.g. an older commit's), interleaved, as CPU seconds (the machine is shared, so wall-clock
mostly measures the load). The runs: rnnkit's autoregressive LSTM of bench/forecast_peers.py
(32 units, Gaussian, batch 32, the same train/valid/test cut) on elecdaily and on the store
panel, a fixed number of epochs (no early stopping, so both sides do the same steps and
validation passes), one thread, one seed. Prints per side and dataset the median CPU seconds
of ``tasks.train`` (which includes reading, validation after every epoch and what follows
training), per epoch, the CPU seconds of the validation passes alone (per epoch) and of what
runs once after training (the conformal fit, where the tree has it), and the validation and
test MASE of the checkpoint kept. The one-time import torch makes when the first optimizer is
built is done before the clock starts, on both sides.

    mkdir -p /tmp/before && cp -r src /tmp/before/ && for f in models/forecaster.py \\
        tasks/forecasting.py tasks/run.py tasks/base.py; do \\
        git show cc4709a~1:src/rnnkit/$f > /tmp/before/src/rnnkit/$f; done
    .venv/bin/python bench/forecast_ar_speed.py --before /tmp/before/src [--repeats 3]

(``cc4709a~1``: the last commit before per-epoch validation stopped drawing sample paths.)
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
DATASETS = ("elecdaily", "stores")


def one_run(dataset: str, epochs: int, seed: int) -> None:
    """Train once in this process and print ``{"cpu": s, "wall": s, "epochs": n, ...}``."""
    import torch
    from forecast_peers import BATCH, HIDDEN, elecdaily_problem, stores_problem

    from rnnkit import tasks
    from rnnkit.tasks.forecasting import ForecastingTask

    torch.set_num_threads(1)
    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])  # its first use imports dynamo
    spent = {"validation": 0.0, "after": 0.0}
    ForecastingTask.scores = _timed(ForecastingTask.scores, spent, "validation")
    if hasattr(ForecastingTask, "finish_training"):
        ForecastingTask.finish_training = _timed(ForecastingTask.finish_training, spent, "after")
    with tempfile.TemporaryDirectory() as scratch:
        problem = elecdaily_problem() if dataset == "elecdaily" else stores_problem(
            Path(scratch))
        overrides = [f"data.train={problem.files['train']}",
                     f"data.valid={problem.files['valid']}",
                     f"data.test={problem.files['test']}", "model.cell=lstm",
                     "model.strategy=autoregressive", f"model.hidden_size={HIDDEN}",
                     "model.likelihood=gaussian", "model.gaussian=null",
                     f"train.batch_size={BATCH}", f"train.max_epochs={epochs}",
                     "train.patience=null", "train.max_time=null", "train.progress=false",
                     f"train.seed={seed}"]
        config = tasks.load_config(problem.config, overrides)
        cpu, wall = time.process_time(), time.perf_counter()
        outcome = tasks.train(config, Path(scratch) / "run")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(json.dumps({"cpu": cpu, "wall": wall, "epochs": outcome.fit.epoch,
                          "validation_cpu": spent["validation"], "after_cpu": spent["after"],
                          "valid_mase": outcome.valid_metrics["valid_mase"],
                          "test_mase": outcome.test_metrics["mase"],
                          "valid_coverage": outcome.valid_metrics.get("valid_coverage"),
                          "test_coverage": outcome.test_metrics.get("coverage")}))


def _timed(method, spent: dict, name: str):
    """``method`` adding its CPU seconds to ``spent[name]``; for ``scores``, only the calls on
    the validation split (not the test file scored after training)."""
    def timed(task, *args):
        start = time.process_time()
        try:
            return method(task, *args)
        finally:
            if name != "validation" or args[-1] is task._calibration_part:
                spent[name] += time.process_time() - start
    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True,
                        help="the other source tree's src/ directory (rnnkit inside)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_run(args.one, args.epochs, args.seed)
        return
    sides = {"before": str(args.before), "after": str(ROOT / "src")}
    runs: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.repeats):
        for dataset in args.datasets:
            for side, source in sides.items():  # interleaved: the load drifts alike for both
                environment = {**os.environ, "PYTHONPATH": source}
                done = subprocess.run(
                    [sys.executable, __file__, "--before", source, "--one", dataset,
                     "--epochs", str(args.epochs), "--seed", str(args.seed)],
                    capture_output=True, text=True, env=environment, check=True)
                result = json.loads(done.stdout.strip().splitlines()[-1])
                runs.setdefault((dataset, side), []).append(result)
                print(dataset, side, result, flush=True)
    for (dataset, side), results in runs.items():
        cpu = [r["cpu"] for r in results]
        per_epoch = [r["cpu"] / r["epochs"] for r in results]
        validation = [r["validation_cpu"] / r["epochs"] for r in results]
        first = results[0]
        print(f"{dataset} {side}: CPU s median {np.median(cpu):.2f} (runs "
              f"{', '.join(f'{c:.2f}' for c in cpu)}), per epoch {np.median(per_epoch):.3f} "
              f"(validation {np.median(validation):.3f}), once after training "
              f"{np.median([r['after_cpu'] for r in results]):.2f}, "
              f"wall s median {np.median([r['wall'] for r in results]):.1f}; valid MASE "
              f"{first['valid_mase']:.4f}, test MASE {first['test_mase']:.4f}, test "
              f"coverage {first['test_coverage']:.3f}")


if __name__ == "__main__":
    main()
