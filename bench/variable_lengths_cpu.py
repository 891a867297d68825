"""Variable-length batches on one thread, timed in CPU time: an A/B of two rnnkit trees that a
loaded machine cannot blur.

The same three functions as ``variable_lengths.py`` (torch.nn's packed path, rnnkit with
packed input, rnnkit with ``lengths=``), one thread each, interleaved repetitions, medians of
the calling thread's CPU time (``time.thread_time``: with one thread every kernel runs on it,
and time spent waiting for a core is not counted). ``--src`` picks the rnnkit tree, so a
build before a change and one after can be compared, each against torch in its own process:

    python bench/variable_lengths_cpu.py --src /path/to/old/src --out /tmp/before.json
    python bench/variable_lengths_cpu.py --out /tmp/after.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", default=str(HERE.parent / "src"),
                        help="the src folder whose rnnkit is measured")
    parser.add_argument("--modes", default="LSTM,GRU,RNN")
    parser.add_argument("--hiddens", default="64,256")
    parser.add_argument("--batches", default="32,128")
    parser.add_argument("--tasks", default="inference,training")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    sys.path.insert(0, args.src)
    import torch

    import rnnkit.nn as rnn  # from --src: variable_lengths below reuses this import
    sys.path.insert(0, str(HERE))
    from variable_lengths import runners

    torch.set_num_threads(1)
    rnn.set_backend("native")
    rows = []
    for mode in args.modes.split(","):
        for task in args.tasks.split(","):
            for hidden in (int(h) for h in args.hiddens.split(",")):
                for batch in (int(b) for b in args.batches.split(",")):
                    functions, lengths = runners(mode, hidden, batch, task == "training")
                    times = [[] for _ in functions]
                    for _ in range(args.reps):
                        for index, function in enumerate(functions):
                            start = time.thread_time()
                            function()
                            times[index].append(time.thread_time() - start)
                    medians = [1e3 * statistics.median(t) for t in times]
                    rows.append({"mode": mode, "task": task, "hidden": hidden, "batch": batch,
                                 "max_len": int(lengths.max()),
                                 "mean_len": float(lengths.float().mean()),
                                 "torch_packed_ms": medians[0], "rnnkit_packed_ms": medians[1],
                                 "rnnkit_lengths_ms": medians[2],
                                 "packed_speedup": medians[0] / medians[1],
                                 "lengths_speedup": medians[0] / medians[2]})
                    print(json.dumps(rows[-1]), flush=True)
    meta = {"src": str(Path(rnn.__file__).resolve().parents[2]), "reps": args.reps,
            "threads": 1, "clock": "thread_time", "torch": torch.__version__,
            "load": os.getloadavg()[0], "argv": " ".join(sys.argv[1:] if argv is None else argv)}
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
