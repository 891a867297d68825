"""What the default rolling calibration costs `predict` (or `evaluate`) on a panel.

The store example (6 series) is repeated 50 times under new ids (300 series), each followed by
a week of known covariates; two runs are trained briefly on the example (3 epochs, seed 0): the
example's own direct Gaussian GRU and an autoregressive Student-t LSTM (whose intervals come
from ``data.samples`` = 500 sample paths). ``predict`` is then timed on the 300 series without
the window (``calibration_window=0``: the validation factor) and with the default window of
14, interleaved, in one process, ``--reps`` repetitions each; medians, and the median of the
paired ratios.

    python bench/predict_recalibration.py --reps 5
    python bench/predict_recalibration.py --call evaluate --copies 5 --reps 3

With ``--call evaluate`` the copies have no blank week after them and the call timed is the
evaluation of the whole file (``task.scores``: windows every 7 steps, whose intervals the
window refits from a forecast of every stride-1 window).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path

import torch

from rnnkit import tasks

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "forecast_stores.yaml"
STORES = ROOT / "examples" / "data" / "stores.csv"
MODELS = {
    "direct Gaussian GRU (the example)": [],
    "autoregressive Student-t LSTM": ["model.strategy=autoregressive", "model.cell=lstm",
                                      "model.likelihood=student_t", "model.gaussian=null"],
}


def panel(path: Path, copies: int, horizon: int) -> Path:
    """The store file ``copies`` times under new ids, each series followed by ``horizon`` rows
    of known covariates and blank sales."""
    rows = list(csv.DictReader(STORES.open()))
    by_series: dict[str, list[dict]] = {}
    for row in rows:
        by_series.setdefault(row["series_id"], []).append(row)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        for copy in range(copies):
            for series_id, series in by_series.items():
                new_id = f"{series_id}_{copy}"
                writer.writerows({**row, "series_id": new_id} for row in series)
                last = series[-1]
                writer.writerows({"series_id": new_id, "time": int(last["time"]) + step,
                                  "sales": "", "holiday": "0", "size": last["size"]}
                                 for step in range(1, horizon + 1))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--copies", type=int, default=50)
    parser.add_argument("--call", choices=("predict", "evaluate"), default="predict")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"`{args.call}`:\n")
    print("| model | series | no window s | window 14 s | with / without |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as scratch:
        for name, overrides in MODELS.items():
            config = tasks.load_config(EXAMPLE, ["train.progress=false", "train.max_epochs=3",
                                                 *overrides])
            run_dir = Path(scratch) / f"run{len(overrides)}"
            tasks.train(config, run_dir)
            run = tasks.load_run(run_dir)
            evaluating = args.call == "evaluate"
            path = panel(Path(scratch) / "panel.csv", args.copies,
                         0 if evaluating else config.data.horizon)
            inputs = [run.task.read(path)]
            times: dict[int, list[float]] = {0: [], 14: []}
            for rep in range(args.reps):
                for window in (0, 14) if rep % 2 == 0 else (14, 0):
                    start = time.perf_counter()
                    if evaluating:
                        run.task.config.data.calibration_window = window
                        run.task.scores(run.model, inputs[0])
                    else:
                        run.task.predict(run.model, inputs, calibration_window=window)
                    times[window].append(time.perf_counter() - start)
            ratio = statistics.median(b / a for a, b in zip(times[0], times[14], strict=True))
            print(f"| {name} | {6 * args.copies} | {statistics.median(times[0]):.2f} "
                  f"| {statistics.median(times[14]):.2f} | {ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
