"""Peak memory and time to the first training step on large inputs.

    python bench/large_inputs.py [--text-mb 2048] [--line-mb 500] [--csv-rows 5000000]

Each case trains for one step in a child process (``tasks.train``, ``train.max_steps=1``,
``data.eval_limit`` small) and reports the child's peak RSS (``resource.getrusage``) and the
seconds from start to the end of the first step. Results go to ``bench/results/large_inputs.md``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import sys, time
start = time.monotonic()
from rnnkit import tasks
from rnnkit.train import Callback
class FirstStep(Callback):
    def on_batch_end(self, trainer, record):
        if not hasattr(self, "t"):
            self.t = time.monotonic() - start
cb = FirstStep()
config = tasks.load_config(None, sys.argv[2:])
tasks.train(config, sys.argv[1], callbacks=[cb], notice=lambda m: None)
print("FIRST_STEP", getattr(cb, "t", float("nan")))
"""


def make_text(path: Path, megabytes: int, one_line: bool) -> None:
    line = b"ROMEO: But, soft! what light through yonder window breaks? It is the east.\n"
    if one_line:
        line = line.replace(b"\n", b" ")
    with path.open("wb") as handle:
        for _ in range(megabytes * (1 << 20) // len(line)):
            handle.write(line)


def make_csv(path: Path, rows: int) -> None:
    with path.open("w") as handle:
        handle.write("t,value\n")
        for start in range(0, rows, 100_000):
            handle.write("".join(f"{t},{(t * 7919) % 1000 / 10}\n"
                                 for t in range(start, min(rows, start + 100_000))))


def run_case(name: str, run_dir: Path, overrides: list[str]) -> dict:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", CHILD, str(run_dir), *overrides],
                            capture_output=True, text=True)
    seconds = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # MB (max so far)
    first = [line for line in result.stdout.splitlines() if line.startswith("FIRST_STEP")]
    return {"case": name, "ok": result.returncode == 0, "peak_rss_mb": round(peak),
            "first_step_s": float(first[0].split()[1]) if first else None,
            "total_s": round(seconds, 1), "error": result.stderr.strip()[-300:]
            if result.returncode else ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-mb", type=int, default=2048)
    parser.add_argument("--line-mb", type=int, default=500)
    parser.add_argument("--csv-rows", type=int, default=5_000_000)
    parser.add_argument("--only", choices=["text", "line", "csv"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rnnkit-large-"))
    lm = ["task=language_model", "model.hidden_size=64", "model.num_layers=1",
          "train.max_steps=1", "train.eval_every=1", "data.eval_limit=20000",
          "train.progress=false", "train.batch_size=32", "data.seq_len=100"]
    cases = {
        "text": (f"text {args.text_mb} MB", lambda p: make_text(p, args.text_mb, False), "t.txt",
                 lm),
        "line": (f"one line of {args.line_mb} MB", lambda p: make_text(p, args.line_mb, True),
                 "l.txt", lm),
        "csv": (f"series CSV, {args.csv_rows:,} rows", lambda p: make_csv(p, args.csv_rows),
                "s.csv", ["task=forecasting", "model.hidden_size=16", "train.max_steps=1",
                          "train.eval_every=1", "data.eval_limit=1000", "data.lookback=24",
                          "data.horizon=12", "train.progress=false", "data.time_column=t",
                          "data.format=series"]),
    }
    results = []
    for key, (name, make, filename, overrides) in cases.items():
        if args.only and key != args.only:
            continue
        path = work / filename
        make(path)
        size = path.stat().st_size / (1 << 20)
        result = run_case(name, work / f"run-{key}", [f"data.train={path}", *overrides])
        result["file_mb"] = round(size)
        results.append(result)
        path.unlink()
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
