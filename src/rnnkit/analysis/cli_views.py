"""What ``rnnkit analyze DIR --what ...`` computes: numbers to print and plots to write."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnkit.analysis import plots
from rnnkit.analysis.gradient_flow import gradient_flow
from rnnkit.analysis.hidden import record_states
from rnnkit.analysis.report_samples import decoded_examples
from rnnkit.analysis.run_context import RunContext, last_position_only

Rows = list[dict]


def _save(figure, out_dir: Path, name: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.png"
    path.write_bytes(plots.figure_png(figure))
    return path


def gradient_flow_view(run_dir: Path, data: Path | None, out_dir: Path) -> tuple[Rows, list[Path]]:
    """One row per layer-direction: norm at the loss, decay per step, memory, verdict."""
    context = RunContext(run_dir, data)
    batch = context.batch
    if context.task_name == "language_model":
        batch = last_position_only(batch)
    flow = gradient_flow(context.model, batch)
    curves = {curve.label: curve.by_distance for curve in flow.all_curves()}
    return flow.table(), [_save(plots.flow_figure(curves), out_dir, "gradient_flow")]


def hidden_view(run_dir: Path, data: Path | None, out_dir: Path) -> tuple[Rows, list[Path]]:
    """Per recorded layer: mean |h|, fraction of saturated units (|h| > 0.95), a heatmap."""
    context = RunContext(run_dir, data)
    traces = record_states(context.model, lambda m: m.loss(context.batch))
    rows, written = [], []
    for trace in traces:
        valid = trace.valid().numpy()
        for layer in range(trace.num_layers):
            for direction in range(trace.num_directions):
                states = trace.hidden(layer, direction).numpy()[valid]  # (valid steps, units)
                rows.append({"layer": f"{trace.name} l{layer}{' reverse' if direction else ''}",
                             "mean_abs": float(np.abs(states).mean()),
                             "saturated": float((np.abs(states) > 0.95).mean()),
                             "units": states.shape[1]})
        first = trace.hidden(-1, 0).numpy()[0, :int(trace.lengths[0])]
        written.append(_save(plots.heatmap_figure(first.T, f"{trace.name}: top layer, example 1"),
                             out_dir, f"hidden_{trace.name.replace('#', '_')}"))
    return rows, written


def attention_view(run_dir: Path, data: Path | None, out_dir: Path) -> tuple[Rows, list[Path]]:
    """Attention maps of the first examples of a seq2seq run, and how peaked they are."""
    context = RunContext(run_dir, data)
    if context.task_name != "seq2seq":
        raise ValueError(f"--what attention: needs a seq2seq run, {run_dir} is a "
                         f"{context.task_name} run")
    rows, written = [], []
    for index, example in enumerate(decoded_examples(context, 4), start=1):
        weights = example["attention"]
        if weights is None:
            raise ValueError(f"--what attention: the model in {run_dir} has attention 'none'")
        rows.append({"example": index, "source_len": len(example["source"]),
                     "output_len": len(example["output"]),
                     "mean_max_weight": float(weights.max(axis=1).mean()) if weights.size else 0.0})
        written.append(_save(plots.attention_figure(weights, example["source"], example["output"]),
                             out_dir, f"attention_{index}"))
    return rows, written


VIEWS = {"gradient-flow": gradient_flow_view, "hidden": hidden_view, "attention": attention_view}
