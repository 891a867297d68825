"""Figures for the analyses, drawn with matplotlib's object API on the Agg canvas (headless).

Every function returns a :class:`matplotlib.figure.Figure`; :func:`figure_png` turns one into
PNG bytes. No global pyplot state is touched, so figures can be built from any thread.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100


def new_figure(width: float = 7.0, height: float = 3.6) -> Figure:
    """A figure with an Agg canvas attached."""
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def figure_png(figure: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def flow_figure(curves: Mapping[str, np.ndarray], title: str = "Gradient flow through time",
                ylabel: str = "‖∂L/∂h_t‖ (mean over rows)") -> Figure:
    """Gradient norm vs distance from the loss, one line per curve, log scale."""
    figure = new_figure()
    axes = figure.add_subplot()
    colours: dict[str, str] = {}
    for label, values in curves.items():
        values = np.asarray(values, dtype=float)
        shown = np.where(values > 0, values, np.nan)
        # "<name> at init" and "<name> trained" share a colour; the initial curve is dashed.
        name = label.removesuffix(" at init").removesuffix(" trained")
        style = {"linestyle": "--"} if label.endswith(" at init") else {}
        if name in colours:
            style["color"] = colours[name]
        (line,) = axes.semilogy(np.arange(values.size), shown, marker=".", markersize=3,
                                label=label, **style)
        colours.setdefault(name, line.get_color())
    axes.set_xlabel("steps back from the loss (distance)")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    if curves:
        axes.legend(fontsize=8)
    return figure


def series_figure(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str,
                  xlabel: str = "step", ylabel: str = "", logy: bool = False,
                  hline: float | None = None, hline_label: str = "") -> Figure:
    """Lines ``name -> (x, y)``, e.g. training and validation curves or gradient norms."""
    figure = new_figure()
    axes = figure.add_subplot()
    for label, (x, y) in series.items():
        axes.plot(x, y, label=label, marker="." if len(x) < 40 else None)
    if hline is not None:
        axes.axhline(hline, color="black", linestyle="--", linewidth=1, label=hline_label)
    if logy:
        axes.set_yscale("log")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    return figure


def heatmap_figure(values: np.ndarray, title: str, xlabels: Sequence[str] | None = None,
                   ylabel: str = "hidden unit", xlabel: str = "time step",
                   cmap: str = "RdBu_r", symmetric: bool = True) -> Figure:
    """``values`` ``(rows, steps)`` as an image; tick labels per step when given (≤ 80)."""
    values = np.asarray(values, dtype=float)
    width = min(14.0, 3.0 + 0.12 * values.shape[1])
    figure = new_figure(width, min(8.0, 2.0 + 0.08 * values.shape[0]))
    axes = figure.add_subplot()
    limit = float(np.nanmax(np.abs(values))) if values.size else 1.0
    bounds = {"vmin": -limit, "vmax": limit} if symmetric else {}
    image = axes.imshow(values, aspect="auto", cmap=cmap, interpolation="nearest", **bounds)
    figure.colorbar(image, ax=axes, shrink=0.8)
    if xlabels is not None and len(xlabels) <= 80:
        axes.set_xticks(range(len(xlabels)))
        axes.set_xticklabels([repr(label)[1:-1] for label in xlabels], fontsize=7, rotation=90)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    return figure


def _label_matrix(axes, columns: Sequence[str], rows: Sequence[str], titles: tuple[str, str, str],
                  rotation: int) -> None:
    """Tick labels for every column and row of a matrix plot; ``titles`` = (x, y, plot)."""
    axes.set_xticks(range(len(columns)))
    axes.set_xticklabels(columns, rotation=rotation, ha="right" if rotation < 90 else "center",
                         fontsize=8)
    axes.set_yticks(range(len(rows)))
    axes.set_yticklabels(rows, fontsize=8)
    axes.set_xlabel(titles[0])
    axes.set_ylabel(titles[1])
    axes.set_title(titles[2])


def attention_figure(weights: np.ndarray, source: Sequence[str], target: Sequence[str],
                     title: str = "Attention") -> Figure:
    """Attention ``(target, source)``: which source token each output step looked at."""
    weights = np.asarray(weights, dtype=float)
    figure = new_figure(min(12.0, 2.5 + 0.3 * len(source)), min(10.0, 2.0 + 0.3 * len(target)))
    axes = figure.add_subplot()
    image = axes.imshow(weights, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, shrink=0.8)
    _label_matrix(axes, source, target, ("source", "output", title), rotation=90)
    return figure


def forecast_figure(history: np.ndarray, truth: np.ndarray | None, mean: np.ndarray,
                    lower: np.ndarray | None = None, upper: np.ndarray | None = None,
                    title: str = "Forecast", interval_label: str = "interval") -> Figure:
    """History, then the forecast mean with its interval band against the true future."""
    figure = new_figure()
    axes = figure.add_subplot()
    start = len(history)
    future = np.arange(start, start + len(mean))
    axes.plot(np.arange(start), history, color="black", label="history")
    if truth is not None:
        axes.plot(future, truth, color="black", linestyle="--", marker=".", label="truth")
    axes.plot(future, mean, color="tab:blue", marker=".", label="forecast")
    if lower is not None and upper is not None:
        axes.fill_between(future, lower, upper, color="tab:blue", alpha=0.25, label=interval_label)
    axes.set_xlabel("time step")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    return figure


def confusion_figure(matrix: np.ndarray, labels: Sequence[str], title: str = "Confusion") -> Figure:
    """Counts ``(true, predicted)`` with the numbers written in each cell."""
    matrix = np.asarray(matrix)
    size = min(10.0, 2.5 + 0.5 * len(labels))
    figure = new_figure(size + 1.0, size)
    axes = figure.add_subplot()
    axes.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(column, row, str(int(count)), ha="center", va="center", fontsize=8,
                  color="white" if count > matrix.max() / 2 else "black")
    _label_matrix(axes, labels, labels, ("predicted", "true", title), rotation=45)
    return figure


def spectrum_figure(gate_values: Mapping[str, np.ndarray], trajectory: np.ndarray | None = None,
                    title: str = "Recurrent spectrum") -> Figure:
    """Singular values of ``W_hh`` blocks (left) and the largest step-Jacobian singular value
    along a trajectory (right); the dashed line at 1 separates shrinking from stretching."""
    figure = new_figure(10.0, 3.6)
    left = figure.add_subplot(1, 2, 1)
    for label, values in gate_values.items():
        left.plot(np.arange(1, len(values) + 1), values, marker=".", label=label)
    left.axhline(1.0, color="black", linestyle="--", linewidth=1)
    left.set_xlabel("index")
    left.set_ylabel("singular value of W_hh")
    left.set_title(title)
    left.legend(fontsize=8)
    left.grid(True, alpha=0.3)
    right = figure.add_subplot(1, 2, 2)
    if trajectory is not None and len(trajectory):
        right.plot(trajectory[:, 0], marker=".", label="largest σ of ∂s_t/∂s_{t-1}")
        right.axhline(1.0, color="black", linestyle="--", linewidth=1)
        right.legend(fontsize=8)
    right.set_xlabel("time step")
    right.set_title("Step Jacobian along a trajectory")
    right.grid(True, alpha=0.3)
    return figure


def grouped_bars_figure(groups: Sequence[str], values: Mapping[str, Sequence[float]], title: str,
                        ylabel: str, xlabel: str = "", hline: float | None = None) -> Figure:
    """Bars per group (x) and series (colour), e.g. accuracy per delay and cell."""
    figure = new_figure()
    axes = figure.add_subplot()
    width = 0.8 / max(len(values), 1)
    positions = np.arange(len(groups))
    for index, (label, series) in enumerate(values.items()):
        axes.bar(positions + (index - (len(values) - 1) / 2) * width, series, width, label=label)
    if hline is not None:
        axes.axhline(hline, color="black", linestyle="--", linewidth=1)
    axes.set_xticks(positions)
    axes.set_xticklabels(groups)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend(fontsize=8)
    axes.grid(True, axis="y", alpha=0.3)
    return figure


def hyperparameter_figure(params: Mapping[str, Sequence[str]], values: Sequence[float],
                          states: Sequence[str], best: Sequence[bool], metric: str) -> Figure:
    """One panel per hyperparameter: each trial's ``metric`` against the value it tried.

    Numbers go on a numeric axis (log-scaled when they span more than two decades), anything
    else on categories; pruned trials are crosses, the best trial a star."""
    figure = new_figure(width=max(4.0, 3.2 * len(params)), height=3.2)
    for index, (name, raw) in enumerate(params.items()):
        axes = figure.add_subplot(1, len(params), index + 1)
        numbers = _as_numbers(raw)
        if numbers is None:
            labels = sorted(set(raw))
            x = [labels.index(v) for v in raw]
            axes.set_xticks(range(len(labels)), labels, rotation=30, fontsize=8)
        else:
            x = numbers
            positive = [v for v in numbers if v > 0]
            if len(positive) == len(numbers) and max(positive) / min(positive) > 100:
                axes.set_xscale("log")
        for marker, keep in (("o", lambda s, b: s != "pruned" and not b),
                             ("x", lambda s, b: s == "pruned" and not b),
                             ("*", lambda s, b: b)):
            chosen = [i for i, (s, b) in enumerate(zip(states, best, strict=True)) if keep(s, b)]
            if chosen:
                axes.scatter([x[i] for i in chosen], [values[i] for i in chosen], marker=marker,
                             s=80 if marker == "*" else 30)
        axes.set_xlabel(name, fontsize=8)
        if index == 0:
            axes.set_ylabel(metric)
        axes.grid(True, alpha=0.3)
    figure.tight_layout()
    return figure


def _as_numbers(raw: Sequence[str]) -> list[float] | None:
    try:
        return [float(v) for v in raw]
    except (TypeError, ValueError):
        return None
