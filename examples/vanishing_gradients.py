"""Why a vanilla RNN forgets: the long-dependency demonstration as a script.

Same as ``rnnkit demo vanishing-gradients [--quick] --out DIR``: trains RNN, LSTM and GRU on
recall-after-delay tasks, measures gradient flow through time before and after training, runs
an exploding RNN with and without gradient clipping, and writes DIR/report.html.

    PYTHONPATH=src python examples/vanishing_gradients.py --quick runs/vg-quick
"""

from __future__ import annotations

import argparse

from rnnkit.analysis.demo import DemoConfig, run_demo, save_results
from rnnkit.analysis.demo_report import write_demo_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="runs/vanishing-gradients")
    parser.add_argument("--quick", action="store_true", help="the < 30 s version")
    arguments = parser.parse_args()
    result = run_demo(DemoConfig.quick() if arguments.quick else DemoConfig(), progress=print)
    save_results(result, arguments.out)
    print("\n".join(result.summary_lines()))
    print(f"report: {write_demo_report(result, arguments.out)}")


if __name__ == "__main__":
    main()
