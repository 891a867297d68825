"""Where forecasting training on a long series CSV spends memory, stage by stage.

    python bench/large_inputs_stages.py [--csv-rows 5000000] [--dir DIR]

Runs the steps of ``tasks.train`` up to the first batch in this process (the same overrides as
``bench/large_inputs.py --only csv``) and prints, after each, the NumPy/Python memory held and
the stage's peak (``tracemalloc``, which slows reading several-fold) and the process's peak RSS
so far. The generated file is deleted at the end.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import tracemalloc
from pathlib import Path

from large_inputs import make_csv

OVERRIDES = ["task=forecasting", "data.dataset=null", "model.hidden_size=16",
             "train.max_steps=1", "train.eval_every=1", "data.eval_limit=1000",
             "data.lookback=24", "data.horizon=12", "train.progress=false",
             "data.time_column=t", "data.format=series"]


def stage(name: str) -> None:
    current, peak = tracemalloc.get_traced_memory()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"{name:14s} held {current / 2**20:6.0f} MB  stage peak {peak / 2**20:6.0f} MB  "
          f"peak RSS so far {rss:6d} MB", flush=True)
    tracemalloc.reset_peak()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv-rows", type=int, default=5_000_000)
    parser.add_argument("--dir", help="where to write the generated file")
    args = parser.parse_args()
    from rnnkit import tasks
    from rnnkit.tasks.forecasting import ForecastingTask

    with tempfile.TemporaryDirectory(prefix="rnnkit-stages-", dir=args.dir) as work:
        path = Path(work) / "s.csv"
        make_csv(path, args.csv_rows)
        config = tasks.load_config(None, [*OVERRIDES, f"data.train={path}"])
        tracemalloc.start()
        task = ForecastingTask.fit(config, path)
        stage("fit (columns)")
        train = task.read(path)
        stage("read")
        train, valid = task.hold_out(train)
        task.fit_on_split(train, valid)
        stage("fit_on_split")
        source = task.train_source(train, config.train.seed)
        stage("train_source")
        next(iter(source.iter_epoch(0)))
        stage("first batch")


if __name__ == "__main__":
    main()
