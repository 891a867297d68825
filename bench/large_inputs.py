"""Peak memory and time to the first training step on large inputs.

    python bench/large_inputs.py [--text-mb 2048] [--line-mb 500] [--csv-rows 5000000]
                                 [--only text|line|csv|csv-read] [--dir DIR]

Each case trains for one step in a child process (``tasks.train``, ``train.max_steps=1``,
``data.eval_limit`` small) and reports that child's own peak RSS (``os.wait4``) and the seconds
from its start to the end of the first step; ``csv-read`` only reads the series CSV
(``SeriesReader.read_series``). Each result is printed as a JSON line and appended to
``bench/results/large_inputs.jsonl``; the generated file is deleted after its case.
"""

from __future__ import annotations

import argparse
import json
import shutil
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

READ_ONLY = """
import sys, time
start = time.monotonic()
from rnnkit.data import SeriesReader
series = SeriesReader(sys.argv[1], time_column="t").read_series()
print("FIRST_STEP", time.monotonic() - start, series.values.shape)
"""

PEAK = """
import resource
print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)
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


def run_case(name: str, code: str, arguments: list[str]) -> dict:
    """Run ``code`` in a child that prints ``FIRST_STEP seconds``; its own peak RSS is read
    from ``getrusage(RUSAGE_SELF)`` as it exits (RUSAGE_CHILDREN in this process would report
    the largest of all children so far)."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code + PEAK, *arguments],
                            capture_output=True, text=True)
    seconds = time.monotonic() - started
    found = dict(line.split(maxsplit=1) for line in result.stdout.splitlines()
                 if line.startswith(("FIRST_STEP", "PEAK_RSS_KB")))
    first, peak = found.get("FIRST_STEP"), found.get("PEAK_RSS_KB")
    return {"case": name, "ok": result.returncode == 0,
            "peak_rss_mb": round(int(peak) / 1024) if peak else None,
            "first_step_s": round(float(first.split()[0]), 1) if first else None,
            "total_s": round(seconds, 1),
            "error": result.stderr.strip()[-300:] if result.returncode else ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-mb", type=int, default=2048)
    parser.add_argument("--line-mb", type=int, default=500)
    parser.add_argument("--csv-rows", type=int, default=5_000_000)
    parser.add_argument("--only", choices=["text", "line", "csv", "csv-read"])
    parser.add_argument("--dir", help="where to write the generated files (default: a new "
                        "temporary directory)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rnnkit-large-", dir=args.dir))
    lm = ["task=language_model", "model.hidden_size=64", "model.num_layers=1",
          "train.max_steps=1", "train.eval_every=1", "data.eval_limit=20000",
          "train.progress=false", "train.batch_size=32", "data.seq_len=100"]
    forecast = ["task=forecasting", "data.dataset=null", "model.hidden_size=16",
                "train.max_steps=1", "train.eval_every=1", "data.eval_limit=1000",
                "data.lookback=24", "data.horizon=12", "train.progress=false",
                "data.time_column=t", "data.format=series"]
    csv_rows = f"{args.csv_rows:,} rows"
    cases = {
        "text": (f"text {args.text_mb} MB", lambda p: make_text(p, args.text_mb, False), "t.txt",
                 lm),
        "line": (f"one line of {args.line_mb} MB", lambda p: make_text(p, args.line_mb, True),
                 "l.txt", lm),
        "csv": (f"series CSV, {csv_rows}", lambda p: make_csv(p, args.csv_rows), "s.csv",
                forecast),
        "csv-read": (f"series CSV, {csv_rows}, read only", lambda p: make_csv(p, args.csv_rows),
                     "s.csv", None),
    }
    log = Path(__file__).resolve().parent / "results" / "large_inputs.jsonl"
    for key, (name, make, filename, overrides) in cases.items():
        if args.only != key and (args.only or key == "csv-read"):
            continue
        path = work / filename
        make(path)
        size = path.stat().st_size / (1 << 20)
        if overrides is None:
            result = run_case(name, READ_ONLY, [str(path)])
        else:
            result = run_case(name, CHILD, [str(work / f"run-{key}"), f"data.train={path}",
                                            *overrides])
        result["file_mb"] = round(size)
        path.unlink()
        shutil.rmtree(work / f"run-{key}", ignore_errors=True)
        print(json.dumps(result), flush=True)
        with log.open("a") as handle:
            handle.write(json.dumps(result) + "\n")
    work.rmdir()


if __name__ == "__main__":
    main()
