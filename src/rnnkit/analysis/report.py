"""``rnnkit report DIR``: one self-contained HTML page about a training run, plus its PNGs.

Sections are independent: each is built by its own function, and one that cannot be built (no
metrics log yet, data file moved, a task without samples) shows the reason in the page.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from rnnkit.analysis import plots
from rnnkit.analysis.gradient_flow import gradient_flow
from rnnkit.analysis.hidden import record_states
from rnnkit.analysis.html import (
    Section,
    build_section,
    paragraph,
    preformatted,
    table,
    write_report,
)
from rnnkit.analysis.recording import recurrent_layers
from rnnkit.analysis.report_samples import SAMPLE_SECTIONS, hidden_state_section
from rnnkit.analysis.run_context import RunContext, last_position_only
from rnnkit.analysis.run_files import metric_series
from rnnkit.analysis.spectrum import recurrent_weight_spectrum, step_jacobian_spectrum
from rnnkit.analysis.study_report import build_study_report, is_study

REPORT_FILE = "report.html"
IMAGE_DIR = "report_images"
TRAJECTORY_STEPS = 60
JACOBIAN_BUDGET = 16_384  # steps x state size: keeps big models' Jacobians to seconds


def overview(context: RunContext):
    def build(section: Section) -> None:
        metadata = context.files.metadata()
        trainer = metadata.get("trainer", {})
        rows = [{"item": "task", "value": metadata.get("task", "?")},
                {"item": "model", "value": metadata.get("model_type", "?")},
                {"item": "checkpoint", "value": str(context.files.checkpoint)},
                {"item": "steps trained", "value": trainer.get("step", "?")},
                {"item": f"best {trainer.get('monitor', 'metric')}",
                 "value": trainer.get("best_metric", "?")}]
        rows += [{"item": f"last {k}", "value": v} for k, v in trainer.get("metrics", {}).items()]
        section.add(table(rows))
        section.add(paragraph("Model configuration:"))
        config = metadata.get("model_config", {})
        section.add(table([{"field": k, "value": v} for k, v in config.items()]))
    return build


def configuration(context: RunContext):
    def build(section: Section) -> None:
        section.add(preformatted(context.files.config_text()))
    return build


def training_curves(context: RunContext):
    def build(section: Section) -> None:
        rows = context.files.metrics()
        steps, losses = metric_series(rows, "loss")
        if not steps:
            raise ValueError("metrics.csv has no loss rows yet")
        series = {"training loss": (steps, losses)}
        evaluated = sorted({k for row in rows for k in row if k.startswith(("valid_", "test_"))})
        for name in evaluated:
            if name.endswith("loss"):
                series[name] = metric_series(rows, name)
        section.add_figure("training_loss", plots.series_figure(
            series, "Training and validation loss", ylabel="loss"), "Loss per step")
        for name in evaluated:
            if not name.endswith("loss"):
                section.add_figure(name, plots.series_figure(
                    {name: metric_series(rows, name)}, name, ylabel=name), f"{name} per evaluation")
    return build


def gradient_norm_history(context: RunContext):
    def build(section: Section) -> None:
        steps, norms = metric_series(context.files.metrics(), "grad_norm")
        if not steps:
            raise ValueError("metrics.csv has no grad_norm column")
        clip = (context.files.config().get("train") or {}).get("clip_norm")
        section.add_figure("grad_norm_history", plots.series_figure(
            {"global gradient norm": (steps, norms)}, "Gradient norm before clipping",
            ylabel="norm", logy=True, hline=clip, hline_label=f"clip_norm {clip}"),
            "Global gradient norm per logged step (before clipping)")
        above = sum(norm > clip for norm in norms) if clip else 0
        if clip:
            section.add(paragraph(f"{above} of {len(norms)} logged steps were clipped "
                                  f"(norm above {clip})."))
    return build


def _first_row_inputs(context: RunContext) -> dict:
    """Each recurrent layer's input sequence ``(seq, input_size)`` for the batch's first row."""
    traces = record_states(context.model, lambda m: m.loss(context.batch))
    return {trace.name: torch.stack(trace.inputs)[:int(trace.lengths[0]), 0] for trace in traces}


def spectrum(context: RunContext):
    def build(section: Section) -> None:
        try:
            inputs, missing = _first_row_inputs(context), ""
        except Exception as error:  # the weights alone still give the W_hh spectrum
            inputs, missing = {}, f"{type(error).__name__}: {error}"
        for name, layer in recurrent_layers(context.model):
            spectra = recurrent_weight_spectrum(layer)
            rows = [{"layer": s.layer, "direction": s.direction, "gate": s.gate,
                     "largest σ": s.largest, "smallest σ": float(s.singular_values[-1])}
                    for s in spectra]
            section.add(paragraph(f"{name}: singular values of each gate block of W_hh "
                                  "(largest vs 1: above 1 can stretch, below 1 shrinks)."))
            section.add(table(rows))
            trajectory = None
            if name in inputs:
                steps = min(TRAJECTORY_STEPS, max(8, JACOBIAN_BUDGET // layer.hidden_size // 2))
                trajectory = step_jacobian_spectrum(layer, inputs[name][:steps])
                section.add(paragraph(
                    "Step Jacobian ∂s_t/∂s_{t-1} (layer 0, forward, first example, "
                    f"{len(trajectory)} steps; s = [h; c] "
                    f"for LSTM): largest singular value mean {trajectory[:, 0].mean():.3f}, "
                    f"max {trajectory[:, 0].max():.3f}."))
            elif missing:
                section.add(paragraph(f"No trajectory (needs the run's data): {missing}", "note"))
            values = {f"l{s.layer}{'r' if s.direction else ''} {s.gate}": s.singular_values
                      for s in spectra}
            section.add_figure(f"spectrum_{name}", plots.spectrum_figure(
                values, trajectory, title=f"{name}: W_hh singular values"),
                f"{name}: W_hh spectrum and step-Jacobian spectrum along a trajectory")
    return build


def end_of_training_flow(context: RunContext):
    def build(section: Section) -> None:
        batch = context.batch
        note = "Loss: the model's own loss on one batch of the run's data."
        if context.task_name == "language_model":
            batch = last_position_only(batch)
            note = ("Loss: next-token loss at each row's last position only, so the curve "
                    "shows how far back the prediction still depends on the past.")
        flow = gradient_flow(context.model, batch)
        section.add(paragraph(note + f" Data: {context.data_path}."))
        section.add(table(flow.table()))
        curves = {curve.label: curve.by_distance for curve in flow.all_curves()}
        section.add_figure("gradient_flow", plots.flow_figure(curves),
                           "‖∂L/∂h_t‖ against steps back from the loss, per layer and direction")
    return build


def hidden_states(context: RunContext):
    def build(section: Section) -> None:
        traces = record_states(context.model, lambda m: m.loss(context.batch))
        # The first layer over the batch's sentences: a tagger's char-BiLSTM runs first, over
        # each word's characters (one row per word), which is not a view over time.
        rows = len(context.batch)
        trace = next((t for t in traces if len(t.lengths) == rows), traces[0])
        states = trace.hidden(-1, 0)[0].numpy()  # first row: (seq, units)
        length = int(trace.lengths[0])
        shown = states[:length]
        busiest = np.argsort(-shown.std(axis=0))[:32]
        section.add_figure("hidden_heatmap", plots.heatmap_figure(
            shown[:, busiest].T, f"{trace.name}: top layer, 32 most active units, first example"),
            "Hidden units (rows) over time (columns)")
        hidden_state_section(context, section)
    return build


SECTIONS = (
    ("Overview", overview),
    ("Configuration", configuration),
    ("Training and validation curves", training_curves),
    ("Gradient-norm history", gradient_norm_history),
    ("Gradient flow through time at the end of training", end_of_training_flow),
    ("Recurrent spectrum", spectrum),
    ("Hidden states", hidden_states),
)


def build_report(run_dir: str | Path, data: str | Path | None = None,
                 progress: bool = False) -> Path:
    """Write ``DIR/report.html`` and ``DIR/report_images/*.png``; returns the HTML path.

    ``progress`` shows a bar on stderr naming the section (and its figures) being built: the
    gradient flow and spectra take seconds each on a large model. A study directory written
    by ``rnnkit tune`` gets the tuning report instead (:mod:`rnnkit.analysis.study_report`).
    """
    if is_study(run_dir):  # a directory `rnnkit tune` wrote: the tuning report
        return build_study_report(run_dir)
    context = RunContext(run_dir, data)
    builders = [*SECTIONS, *SAMPLE_SECTIONS]
    sections = []
    with tqdm(builders, desc="report", unit="section", file=sys.stderr, leave=False,
              disable=not progress) as bar:
        for title, builder in bar:
            bar.set_postfix_str(title)
            sections.append(build_section(title, builder(context)))
    run_dir = context.files.run_dir
    return write_report(run_dir / REPORT_FILE, f"rnnkit run report: {run_dir.name}", sections,
                        subtitle=str(run_dir.resolve()), image_dir=run_dir / IMAGE_DIR)
