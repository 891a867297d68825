"""The demonstration's report: accuracy per delay, gradient-flow curves, clipping, spectra."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnkit.analysis import plots
from rnnkit.analysis.decay import FlowThresholds
from rnnkit.analysis.demo import DemoResult
from rnnkit.analysis.html import (
    Section,
    build_section,
    paragraph,
    preformatted,
    table,
    write_report,
)

COMMAND = "rnnkit demo vanishing-gradients"


def _setup(result: DemoResult, command: str):
    def build(section: Section) -> None:
        config = result.config
        thresholds = FlowThresholds()
        section.add(paragraph(
            f"Task: recall one of {config.num_symbols} symbols shown at step 0 after `delay` "
            f"blank steps; the answer is read at the final query step, so the loss sits exactly "
            f"delay + 1 steps after the information. Every cell: hidden size "
            f"{config.hidden_size}, {config.steps} Adam steps (lr {config.lr}) of "
            f"{config.batch_size} examples, gradient clipping at {config.clip_norm}, seed "
            f"{config.seed}. Gated cells use chrono initialisation of their keep-gate biases "
            f"(time scales up to {max(config.delays)} steps); a vanilla RNN has no gate to set."))
        section.add(paragraph(
            "Gradient flow: the norm of the total derivative ∂L/∂h_t at every step, averaged "
            "over rows. Decay rate = least-squares slope of ln-norm per step back from the loss; "
            f"vanishing below x{thresholds.vanishing_factor} per step, exploding above "
            f"x{thresholds.exploding_factor}; memory length = how many steps back the norm "
            f"still reaches {thresholds.memory_fraction:.0%} of its value at the loss."))
        section.add(preformatted(command))
    return build


def _accuracy(result: DemoResult):
    def build(section: Section) -> None:
        accuracy = result.accuracy_table()
        rows = [{"cell": cell, **{f"delay {d}": accuracy[cell][d] for d in result.config.delays}}
                for cell in result.config.cells]
        section.add(table(rows))
        section.add(paragraph(f"Chance is {1 / result.config.num_symbols:.3f}; the dashed line "
                              f"marks the success threshold {result.config.success_accuracy}."))
        figure = plots.grouped_bars_figure(
            [str(d) for d in result.config.delays],
            {cell: [accuracy[cell][d] for d in result.config.delays] for cell in accuracy},
            "Recall accuracy after training", "accuracy", "delay (steps)",
            hline=result.config.success_accuracy)
        section.add_figure("demo_accuracy", figure, "Accuracy per cell and delay")
    return build


def _flow_rows(result: DemoResult) -> list[dict]:
    rows = []
    for run in result.runs:
        stages = (("init", run.flow_before, run.input_before),
                  ("trained", run.flow_after, run.input_after))
        for stage, hidden, inputs in stages:
            rows.append({"cell": run.cell, "delay": run.delay, "stage": stage,
                         "h: factor/step": hidden.factor_per_step, "h: verdict": hidden.verdict,
                         "x: factor/step": inputs.factor_per_step, "x: verdict": inputs.verdict,
                         "memory (steps)": inputs.memory_text,
                         "accuracy": run.score if stage == "trained" else ""})
    return rows


def _flow(result: DemoResult):
    def build(section: Section) -> None:
        delay = result.focus_delay()
        section.add(paragraph(f"Delay {delay}: the shortest at which the vanilla RNN fails while "
                              "a gated cell succeeds (else the longest delay). The symbol to "
                              f"recall is {delay + 1} steps back from the loss."))
        runs = [result.run(cell, delay) for cell in result.config.cells]
        for stage in ("init", "trained"):
            section.add(paragraph(
                f"Memory length {'after training' if stage == 'trained' else 'at initialisation'}"
                " (steps back that ‖∂L/∂x_t‖ stays at least 1% of its value at the last step): "
                + ", ".join(f"{r.cell} {r.memory_text(stage)}" for r in runs)))
        for kind, title, ylabel in (
                ("input", "Gradient reaching the input x_t", "‖∂L/∂x_t‖"),
                ("hidden", "Gradient of the hidden state h_t", "‖∂L/∂h_t‖")):
            curves = {}
            for run in runs:
                before, after = ((run.input_curve_before, run.input_curve_after) if kind == "input"
                                 else (run.curve_before, run.curve_after))
                curves[f"{run.cell} at init"] = before
                curves[f"{run.cell} trained"] = after
            section.add_figure(f"demo_{kind}_gradient_flow", plots.flow_figure(
                curves, f"{title}, delay {delay}", ylabel),
                f"{ylabel} against steps back from the loss (log scale)")
        section.add(paragraph("Every run (h: top-layer hidden state; x: input; an LSTM keeps its "
                              "long memory in c, so its h curve can fall while x stays high):"))
        section.add(table(_flow_rows(result)))
    return build


def _spectrum(result: DemoResult):
    def build(section: Section) -> None:
        section.add(paragraph(
            "Largest singular value of each gate block of W_hh, at initialisation -> after "
            "training. For a tanh RNN, ∂h_t/∂h_{t-1} = diag(1 - h_t²) W_hh, so a largest value "
            "below 1 guarantees vanishing; training the RNN pushes it up."))
        rows = []
        for run in result.runs:
            row = {"cell": run.cell, "delay": run.delay}
            for gate, before in run.spectrum_before.items():
                row[f"{gate} block"] = f"{before:.2f} -> {run.spectrum_after[gate]:.2f}"
            rows.append(row)
        for cell in result.config.cells:
            section.add(table([row for row in rows if row["cell"] == cell]))
    return build


def _training(result: DemoResult):
    def build(section: Section) -> None:
        delay = result.focus_delay()
        runs = [result.run(cell, delay) for cell in result.config.cells]
        series = {r.cell: (list(range(1, len(r.history.losses) + 1)), r.history.losses)
                  for r in runs}
        section.add_figure("demo_training_loss", plots.series_figure(
            series, f"Training loss at delay {delay}", ylabel="cross-entropy"),
            "Training loss per step")
        norms = {r.cell: (list(range(1, len(r.history.grad_norms) + 1)), r.history.grad_norms)
                 for r in runs}
        section.add_figure("demo_grad_norms", plots.series_figure(
            norms, "Global gradient norm (before clipping)", ylabel="norm", logy=True,
            hline=result.config.clip_norm, hline_label="clip"), "Gradient-norm history")
    return build


def _clipping(result: DemoResult):
    def build(section: Section) -> None:
        clip = result.clipping
        settings = result.config.clipping
        section.add(paragraph(
            f"A vanilla RNN with W_hh = {settings.weight_scale} x orthogonal at recall delay "
            f"{settings.delay}, SGD (lr {settings.lr}, momentum {settings.momentum}), "
            f"{settings.steps} steps. At initialisation its gradient is "
            f"{clip.flow_at_init['verdict']} (x{clip.flow_at_init['factor_per_step']:.3f} per "
            f"step back). Accuracy without clipping {clip.score_without:.3f}, with clipping at "
            f"{settings.clip_norm}: {clip.score_with:.3f}."))
        histories = {"no clipping": clip.without, f"clip {settings.clip_norm}": clip.with_clipping}
        losses = {k: (list(range(1, len(h.losses) + 1)), h.losses) for k, h in histories.items()}
        norms = {k: (list(range(1, len(h.grad_norms) + 1)), h.grad_norms)
                 for k, h in histories.items()}
        section.add_figure("clipping_loss", plots.series_figure(
            losses, "Exploding RNN: training loss", ylabel="cross-entropy"), "Training loss")
        section.add_figure("clipping_grad_norm", plots.series_figure(
            norms, "Exploding RNN: gradient norm before clipping", ylabel="norm", logy=True),
            "Gradient norm per step")
        section.add_figure("clipping_flow_at_init", plots.flow_figure(
            {"exploding RNN at init": np.asarray(clip.flow_at_init["curve"])},
            "Gradient flow of the exploding RNN at initialisation"), "Gradient grows going back")
    return build


def write_demo_report(result: DemoResult, out_dir: str | Path, command: str = COMMAND) -> Path:
    """Write ``report.html`` (self-contained) and one PNG per plot into ``out_dir``."""
    out_dir = Path(out_dir)
    sections = [
        build_section("Set-up", _setup(result, command)),
        build_section("Accuracy per delay", _accuracy(result)),
        build_section("Gradient flow through time", _flow(result)),
        build_section("Recurrent weight spectrum", _spectrum(result)),
        build_section("Training curves", _training(result)),
        build_section("Exploding gradients and clipping", _clipping(result)),
    ]
    return write_report(out_dir / "report.html", "Vanishing and exploding gradients", sections,
                        subtitle="rnnkit long-dependency demonstration", image_dir=out_dir)
