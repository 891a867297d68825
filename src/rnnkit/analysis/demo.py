"""The long-dependency demonstration: a vanilla RNN forgets where LSTM and GRU remember.

``rnnkit demo vanishing-gradients`` runs :func:`run_demo`:

1. **Delay sweep.** RNN, LSTM and GRU learn :class:`RecallTask` (recall a symbol after ``delay``
   blank steps) at several delays with the same budget. Each model's gradient flow
   ``||∂L/∂h_t||`` is measured before and after training: its decay per step and memory length
   explain who can learn what.
2. **Exploding gradients and clipping.** An RNN whose ``W_hh`` is an orthogonal matrix scaled
   above 1 has exploding gradients; trained with plain SGD + momentum it is wrecked by its first
   updates, while the same run with gradient-norm clipping learns.

Everything is seeded; results go to ``results.json``, PNGs and one self-contained ``report.html``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from rnnkit.analysis.experiment import (
    CellRun,
    TrainingHistory,
    evaluate_on_task,
    largest_singular_values,
    task_gradient_flow,
    train_on_task,
)
from rnnkit.analysis.tasks import LastStepModel, RecallTask, chrono_initialise


@dataclass(frozen=True)
class ClippingConfig:
    """The exploding run: RNN with ``W_hh = scale * orthogonal``, SGD with momentum."""

    delay: int = 20
    weight_scale: float = 1.5
    lr: float = 0.05
    momentum: float = 0.9
    clip_norm: float = 1.0
    steps: int = 300


@dataclass(frozen=True)
class DemoConfig:
    """Settings of the demonstration; :meth:`quick` is the < 30 s version used by tests.

    Gated cells get chrono initialisation for time scales up to ``max(delays)`` (the RNN has no
    gate to set); every cell gets the same optimiser, steps, clipping and data.
    """

    delays: tuple[int, ...] = (10, 30, 60, 100)
    cells: tuple[str, ...] = ("rnn", "lstm", "gru")
    hidden_size: int = 64
    steps: int = 400
    batch_size: int = 64
    lr: float = 3e-3
    clip_norm: float = 1.0
    num_symbols: int = 8
    success_accuracy: float = 0.9
    eval_size: int = 512
    flow_size: int = 128
    chrono: bool = True
    seed: int = 0
    threads: int = 1
    clipping: ClippingConfig = field(default_factory=ClippingConfig)

    @classmethod
    def quick(cls) -> DemoConfig:
        return cls(delays=(5, 40), hidden_size=48, steps=200, batch_size=64, eval_size=256,
                   flow_size=32, clipping=ClippingConfig(steps=80))

    def __post_init__(self) -> None:
        if not self.delays or any(not isinstance(d, int) or d < 1 for d in self.delays):
            raise ValueError(f"delays: expected positive integers, got {self.delays!r}")
        unknown = [cell for cell in self.cells if cell not in ("rnn", "lstm", "gru")]
        if unknown or not self.cells:
            raise ValueError(f"cells: expected some of 'rnn', 'lstm', 'gru', got {self.cells!r}")


@dataclass
class ClippingResult:
    """The exploding run without and with clipping, and the gradient flow at its start."""

    flow_at_init: dict
    without: TrainingHistory
    with_clipping: TrainingHistory
    score_without: float
    score_with: float


@dataclass
class DemoResult:
    config: DemoConfig
    runs: list[CellRun]
    clipping: ClippingResult

    def run(self, cell: str, delay: int) -> CellRun:
        return next(r for r in self.runs if r.cell == cell and r.delay == delay)

    def first_rnn_failure(self) -> int | None:
        """The shortest delay at which the RNN fails while a gated cell succeeds, if any."""
        threshold = self.config.success_accuracy
        for delay in self.config.delays:
            scores = {cell: self.run(cell, delay).score for cell in self.config.cells}
            if scores.get("rnn", 1.0) < threshold and any(
                    score >= threshold for cell, score in scores.items() if cell != "rnn"):
                return delay
        return None

    def focus_delay(self) -> int:
        """The delay that needs explaining: :meth:`first_rnn_failure`, else the longest."""
        failure = self.first_rnn_failure()
        return max(self.config.delays) if failure is None else failure

    def memory_lengths(self, delay: int | None = None, trained: bool = True) -> dict[str, int]:
        """Memory length per cell at ``delay`` (default: :meth:`focus_delay`), after training or
        at initialisation: how many steps back ``||∂L/∂x_t||`` stays above 1% of its value at
        the last step (the symbol to recall is ``delay + 1`` steps back)."""
        delay = self.focus_delay() if delay is None else delay
        runs = {cell: self.run(cell, delay) for cell in self.config.cells}
        return {cell: (run.input_after if trained else run.input_before).memory_length
                for cell, run in runs.items()}

    def accuracy_table(self) -> dict[str, dict[int, float]]:
        return {cell: {d: self.run(cell, d).score for d in self.config.delays}
                for cell in self.config.cells}

    def summary_lines(self) -> list[str]:
        """The headline numbers for a terminal: accuracy, memory lengths, clipping."""
        cells, delays = self.config.cells, self.config.delays
        accuracy = self.accuracy_table()
        lines = ["accuracy per delay: " + "; ".join(
            f"{cell} " + ", ".join(f"{d}:{accuracy[cell][d]:.2f}" for d in delays)
            for cell in cells)]
        for delay in delays:
            runs = [self.run(cell, delay) for cell in cells]
            lines.append(f"memory length at delay {delay} (steps back the input gradient "
                         "reaches, init -> trained): " + ", ".join(
                             f"{r.cell} {r.memory_text('init')} -> {r.memory_text('trained')}"
                             for r in runs))
        failure = self.first_rnn_failure()
        lines.append("no delay where the RNN fails and a gated cell succeeds" if failure is None
                     else f"shortest delay where the RNN fails and a gated cell succeeds: "
                          f"{failure}")
        lines.append(f"exploding RNN: accuracy {self.clipping.score_without:.2f} without "
                     f"clipping, {self.clipping.score_with:.2f} with clipping")
        return lines

    def to_dict(self) -> dict:
        clipping = self.clipping
        return {
            "config": asdict(self.config),
            "accuracy": {c: {str(d): v for d, v in row.items()}
                         for c, row in self.accuracy_table().items()},
            "focus_delay": self.focus_delay(),
            "memory_length": {
                str(delay): {"init": self.memory_lengths(delay, trained=False),
                             "trained": self.memory_lengths(delay)}
                for delay in self.config.delays},
            "runs": [run.to_dict() for run in self.runs],
            "clipping": {
                "flow_at_init": clipping.flow_at_init,
                "accuracy_without_clipping": clipping.score_without,
                "accuracy_with_clipping": clipping.score_with,
                "max_grad_norm": max(clipping.without.grad_norms, default=float("nan")),
                "diverged_at_without": clipping.without.diverged_at,
            },
        }


def _build_model(config: DemoConfig, task: RecallTask, cell: str, seed: int) -> LastStepModel:
    torch.manual_seed(seed)
    model = LastStepModel(cell, task.input_size, config.hidden_size, task.output_size)
    if config.chrono and cell != "rnn":
        generator = torch.Generator().manual_seed(seed)
        chrono_initialise(model.rnn, max(max(config.delays), 3), generator)
    return model


def run_cell(config: DemoConfig, cell: str, delay: int) -> CellRun:
    """Train one cell at one delay and measure its gradient flow before and after."""
    task = RecallTask(delay, config.num_symbols)
    seed = config.seed + 1000 * delay  # the same data for every cell at this delay
    model = _build_model(config, task, cell, seed + 10 * ("rnn", "lstm", "gru").index(cell))
    before = task_gradient_flow(model, task, config.flow_size, seed + 1)
    spectrum_before = largest_singular_values(model.rnn)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    history = train_on_task(model, task, optimizer, config.steps, config.batch_size,
                            torch.Generator().manual_seed(seed + 2), config.clip_norm)
    score = evaluate_on_task(model, task, config.eval_size, seed + 3)
    after = task_gradient_flow(model, task, config.flow_size, seed + 1)
    hidden = (before.curve(), after.curve())
    inputs = (before.inputs[0], after.inputs[0])
    return CellRun(cell, delay, score, history, hidden[0].summary(), hidden[1].summary(),
                   hidden[0].by_distance.tolist(), hidden[1].by_distance.tolist(),
                   inputs[0].summary(), inputs[1].summary(),
                   inputs[0].by_distance.tolist(), inputs[1].by_distance.tolist(),
                   spectrum_before, largest_singular_values(model.rnn))


def exploding_model(config: DemoConfig, task: RecallTask) -> LastStepModel:
    """The RNN of the clipping experiment: ``W_hh`` orthogonal times ``weight_scale``."""
    torch.manual_seed(config.seed)
    model = LastStepModel("rnn", task.input_size, config.hidden_size, task.output_size)
    with torch.no_grad():
        torch.nn.init.orthogonal_(model.rnn.weight_hh_l0)
        model.rnn.weight_hh_l0.mul_(config.clipping.weight_scale)
    return model


def run_clipping(config: DemoConfig) -> ClippingResult:
    """The same exploding RNN trained without and with gradient-norm clipping."""
    settings = config.clipping
    task = RecallTask(settings.delay, config.num_symbols)
    flow = task_gradient_flow(exploding_model(config, task), task, config.flow_size, config.seed)
    histories, scores = [], []
    for clip in (None, settings.clip_norm):
        model = exploding_model(config, task)
        optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum)
        histories.append(train_on_task(model, task, optimizer, settings.steps, config.batch_size,
                                       torch.Generator().manual_seed(config.seed + 7), clip))
        scores.append(evaluate_on_task(model, task, config.eval_size, config.seed + 8))
    summary = flow.curve().summary()
    flow_at_init = {"decay_rate": summary.decay_rate, "factor_per_step": summary.factor_per_step,
                    "verdict": summary.verdict, "curve": flow.curve().by_distance.tolist()}
    return ClippingResult(flow_at_init, histories[0], histories[1], scores[0], scores[1])


def run_demo(config: DemoConfig | None = None, progress=None) -> DemoResult:
    """Run the sweep and the clipping experiment; ``progress(message)`` is told of each run."""
    config = config or DemoConfig()
    threads = torch.get_num_threads()
    # Tiny models run fastest single-threaded; the setting is restored afterwards.
    torch.set_num_threads(config.threads)
    try:
        runs = []
        for delay in config.delays:
            for cell in config.cells:
                runs.append(run_cell(config, cell, delay))
                if progress is not None:
                    progress(_run_line(runs[-1]))
        clipping = run_clipping(config)
    finally:
        torch.set_num_threads(threads)
    return DemoResult(config, runs, clipping)


def _run_line(run: CellRun) -> str:
    return (f"{run.cell:>4} delay {run.delay:>3}: accuracy {run.score:.3f}; input gradient "
            f"at init {run.input_before.describe()}; trained {run.input_after.describe()} "
            f"({run.history.seconds:.1f} s)")


def save_results(result: DemoResult, out_dir: str | Path) -> Path:
    """Write ``results.json`` into ``out_dir``; returns its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.json"
    path.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path
