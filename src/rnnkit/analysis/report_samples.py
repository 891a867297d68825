"""Per-task sample sections of the run report: generated text, predictions, confusion matrix,
tagged sentences, translations with attention maps, forecasts with intervals.

Each builder takes a :class:`RunContext` and fills a :class:`Section`; it raises (and the page
says why) when the run's task glue or data is unavailable.
"""

from __future__ import annotations

import html
import itertools

import matplotlib
import numpy as np
import torch

from rnnkit.analysis import plots
from rnnkit.analysis.hidden import record_states, text_features, unit_correlations
from rnnkit.analysis.html import Section, escape, paragraph, preformatted, table
from rnnkit.analysis.run_context import RunContext
from rnnkit.data.vocab import UNK
from rnnkit.tasks.base import batched_outputs

SHOWN = 8
COLOURED_CHARS = 300


def _join(context: RunContext, tokens: list[str]) -> str:
    return ("" if context.run.task.tokenizer.name == "char" else " ").join(tokens)


def _language_model(context: RunContext, section: Section) -> None:
    for temperature in (0.5, 1.0):
        text = context.run.generate(length=400, temperature=temperature, seed=0)
        section.add(paragraph(f"Generated text, temperature {temperature}, seed 0:"))
        section.add(preformatted(text))


def visible_tokens(vocab, ids) -> list[str]:
    """Tokens of ``ids`` without padding and sequence markers, but with ``<unk>`` kept: a word
    the model never saw is shown as such, not silently dropped."""
    return [t for t in vocab.decode(ids) if t == UNK or t not in vocab.specials]


def _classification(context: RunContext, section: Section) -> None:
    task = context.run.task
    # Every example of the file, not one batch: the matrix and its accuracy are the set's
    # (one batch of 32 gave 0.44 where the whole validation set gives 0.65).
    examples = task.read(context.data_path)
    outputs = batched_outputs(context.model, [ids for ids, _ in examples], task.vocab.pad_id)
    predicted = torch.cat([logits.argmax(dim=-1) for logits, _ in outputs]).tolist()
    targets = [label for _, label in examples]
    labels = task.labels.itos
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    for true, guess in zip(targets, predicted, strict=True):
        matrix[true, guess] += 1
    accuracy = float(np.trace(matrix)) / max(matrix.sum(), 1)
    section.add(paragraph(f"All {matrix.sum()} examples of {context.data_path}: accuracy "
                          f"{accuracy:.3f}."))
    section.add_figure("confusion_matrix", plots.confusion_figure(matrix, labels),
                       "Confusion matrix (rows: true label)")
    rows = [{"text": _join(context, visible_tokens(task.vocab, ids))[:200],
             "true": labels[true], "predicted": labels[guess]}
            for (ids, true), guess in zip(examples[:SHOWN], predicted, strict=False)]
    section.add(table(rows))


def _tagging(context: RunContext, section: Section) -> None:
    batch, task = context.batch, context.run.task
    with torch.no_grad():  # a batch of a tagger with character features carries its chars
        predicted = context.model.predict(batch.tokens, batch.lengths,
                                          getattr(batch, "chars", None))
    tags = task.tags.itos
    lines = []
    for row in range(min(SHOWN, len(batch))):
        length = int(batch.lengths[row])
        words = task.vocab.decode(batch.tokens[row, :length].tolist())
        parts = []
        for word, true, guess in zip(words, batch.targets[row, :length].tolist(),
                                     predicted[row, :length].tolist(), strict=True):
            mark = "" if true == guess else f" (true {tags[true]})"
            style = "" if true == guess else ' style="color:#b00000"'
            parts.append(f"<span{style}>{escape(word)}/{escape(tags[guess])}{escape(mark)}</span>")
        lines.append("<li>" + " ".join(parts) + "</li>")
    section.add(paragraph("Predicted tags; mistakes in red with the true tag."))
    section.add("<ol>" + "\n".join(lines) + "</ol>\n")


def decoded_examples(context: RunContext, count: int) -> list[dict]:
    """Greedy translations of the first ``count`` rows of the run's batch: ``source``,
    ``reference``, ``output`` token lists and ``attention`` ``(output, source)`` or ``None``."""
    batch, task = context.batch, context.run.task
    count = min(count, len(batch))
    decoded = context.model.greedy_decode(batch.source[:count], batch.source_lengths[:count])
    examples = []
    for row in range(count):
        source = visible_tokens(
            task.source_vocab, batch.source[row, :int(batch.source_lengths[row])].tolist())
        output = visible_tokens(
            task.target_vocab, decoded.tokens[row, :int(decoded.lengths[row])].tolist())
        attention = None if decoded.attention is None else (
            decoded.attention[row, :len(output), :len(source)].numpy())
        examples.append({"source": source, "output": output, "attention": attention,
                         "reference": visible_tokens(task.target_vocab,
                                                     batch.target[row].tolist())})
    return examples


def _seq2seq(context: RunContext, section: Section) -> None:
    rows = []
    for index, example in enumerate(decoded_examples(context, SHOWN)):
        rows.append({key: _join(context, example[key])
                     for key in ("source", "reference", "output")})
        if example["attention"] is not None and index < 3:
            section.add_figure(f"attention_{index}", plots.attention_figure(
                example["attention"], example["source"], example["output"],
                f"Attention, example {index + 1}"),
                f"Attention weights for {rows[-1]['source'][:60]!r}")
    section.add(table(rows))


def forecast_view(context: RunContext) -> dict[str, np.ndarray | None]:
    """The numbers the forecast figure draws, first target only, each ``(steps,)``: ``history``
    (lookback), ``truth``, ``mean``, ``lower``, ``upper`` (horizon; bounds ``None`` without an
    interval). The forecast comes from the task glue, exactly as ``predict`` makes it, so the
    per-window level and covariates are handled the same way."""
    task, examples = context.run.task, context.examples
    series = examples[0] if isinstance(examples, list) else examples  # a panel: its first series
    window = task.last_window(series)
    forecast = task.forecast(context.model, window)

    def first(values: torch.Tensor | None) -> np.ndarray | None:
        return None if values is None else values[0, :, 0].cpu().double().numpy()

    target = task.artifacts["targets"][0]
    return {"history": window.history[0, :, target], "truth": window.future[0, :, 0],
            "mean": first(forecast.mean), "lower": first(forecast.lower),
            "upper": first(forecast.upper)}


def _forecasting(context: RunContext, section: Section) -> None:
    view, interval = forecast_view(context), context.run.config.data.interval
    section.add_figure("forecast", plots.forecast_figure(
        view["history"], view["truth"], view["mean"], view["lower"], view["upper"],
        "Forecast of the last horizon of the data", f"{interval:.0%} interval"),
        "History, truth and forecast (first target)")
    _backtest(context, section)


# The backtest's aggregate MASE of the model and of each baseline made from the same
# windows' history (ETS only where statsforecast was installed when the backtest ran).
BASELINE_ROWS = (("model", "mase"), ("seasonal naive", "naive_mase"), ("Theta", "theta_mase"),
                 ("ETS (statsforecast AutoETS)", "ets_mase"))


def backtest_baselines(summary: dict | None) -> list[dict[str, object]]:
    """Rows ``{"forecast", "MASE"}``: the model and each baseline a saved backtest scored, from
    its ``summary.json``; none without a backtest."""
    aggregate = (summary or {}).get("aggregate", {})
    return [{"forecast": label, "MASE": round(aggregate[key], 4)}
            for label, key in BASELINE_ROWS if key in aggregate]


def backtest_coverage(summary: dict | None, interval: float) -> str | None:
    """A sentence on the saved backtest's interval coverage and how precisely its test set
    knows it (``coverage_low``/``coverage_high``/``coverage_values``); ``None`` without them."""
    aggregate = (summary or {}).get("aggregate", {})
    if "coverage_low" not in aggregate:
        return None
    return (f"The {interval:.0%} intervals covered {aggregate['coverage']:.1%} of the "
            f"backtest's values (95% interval {aggregate['coverage_low']:.1%}-"
            f"{aggregate['coverage_high']:.1%}: the test set is worth about "
            f"{aggregate['coverage_values']:.0f} independent values).")


def backtest_traces(rows: list[dict]) -> list[dict[str, object]]:
    """What the report's backtest figure draws for one series' saved forecast rows
    (``origin``, ``step``, ``mean``, and ``lower``/``upper`` when probabilistic; strings as read
    from ``forecasts.csv``): a list of ``{"label", "x", "mean", "lower", "upper"}``, ``x`` the
    step of the backtest file each value forecasts. Origins at least a horizon apart: each
    origin's forecast path (the first labelled). Closer origins (a stride-1 backtest draws up
    to a horizon of overlapping paths over every value) or a horizon of 1: the forecasts made
    1 step and ``horizon`` steps ahead, each one line over the values it forecast, as Darts'
    historical forecasts with ``last_points_only`` show them."""
    origins = sorted({int(r["origin"]) for r in rows})
    horizon = max(int(r["step"]) for r in rows)
    overlapping = any(b - a < horizon for a, b in itertools.pairwise(origins))
    if overlapping or horizon == 1:  # one-step paths are single points: draw them as one line
        groups = [(f"{lead} step{'s' if lead > 1 else ''} ahead",
                   [r for r in rows if int(r["step"]) == lead])
                  for lead in dict.fromkeys((1, horizon))]
    else:
        groups = [("forecast" if index == 0 else None,
                   [r for r in rows if int(r["origin"]) == origin])
                  for index, origin in enumerate(origins)]
    traces = []
    for label, part in groups:
        part = sorted(part, key=lambda r: int(r["origin"]) + int(r["step"]))
        bands = {name: [float(r[name]) for r in part] if name in part[0] else None
                 for name in ("lower", "upper")}
        traces.append({"label": label,
                       "x": [int(r["origin"]) + int(r["step"]) - 1 for r in part],
                       "mean": [float(r["mean"]) for r in part], **bands})
    return traces


def _backtest(context: RunContext, section: Section) -> None:
    """Historical forecasts of ``rnnkit backtest`` (first series) against the actuals, and
    its MASE against the baselines'."""
    from rnnkit.tasks.backtest import read_backtest_forecasts, read_backtest_summary

    rows = read_backtest_forecasts(context.files.run_dir)
    if not rows:
        return
    summary = read_backtest_summary(context.files.run_dir)
    baselines = backtest_baselines(summary)
    if baselines:
        origins = summary["aggregate"].get("origins", "?")
        section.add(paragraph(f"Backtest over {origins} origins: MASE of the model and of the "
                              "baselines made from the same windows' history (lower is "
                              "better; a model not below them is not worth its training)."))
        section.add(table(baselines))
    coverage = backtest_coverage(summary, context.run.config.data.interval)
    if coverage:
        section.add(paragraph(coverage))
    rows = [r for r in rows if r["series"] == rows[0]["series"]]
    figure = plots.new_figure()
    axes = figure.add_subplot()
    steps = sorted({int(r["origin"]) + int(r["step"]) - 1 for r in rows})
    actual = {int(r["origin"]) + int(r["step"]) - 1: float(r["actual"]) for r in rows}
    axes.plot(steps, [actual[t] for t in steps], color="black", label="actual")
    traces = backtest_traces(rows)
    colours = ("tab:blue", "tab:orange") if traces[0]["label"] != "forecast" else None
    for index, trace in enumerate(traces):
        colour = colours[index] if colours else "tab:blue"
        axes.plot(trace["x"], trace["mean"], color=colour, label=trace["label"])
        if trace["lower"] is not None:
            axes.fill_between(trace["x"], trace["lower"], trace["upper"], color=colour,
                              alpha=0.15)
    axes.set_xlabel("step of the backtest file")
    axes.set_title("Backtest: historical forecasts against the actual values")
    axes.legend(fontsize=8)
    how = ("the forecasts made 1 and horizon steps ahead of each value, with their intervals"
           if colours else "each origin's forecast with its interval")
    section.add_figure("backtest", figure, f"Backtest forecasts (RUN/backtest/forecasts.csv, "
                       f"first series): {how}, against the actual values")


def _conditional_generation(context: RunContext, section: Section) -> None:
    conditions = context.run.task.labels.itos[:SHOWN]
    rows = [{"condition": c, "sample": context.run.generate(condition=c, seed=i)}
            for i, c in enumerate(conditions)]
    section.add(table(rows))


SAMPLE_BUILDERS = {
    "language_model": _language_model, "classification": _classification,
    "tagging": _tagging, "seq2seq": _seq2seq, "forecasting": _forecasting,
    "conditional_generation": _conditional_generation,
}


def samples(context: RunContext):
    def build(section: Section) -> None:
        task = context.task_name
        if task not in SAMPLE_BUILDERS:
            raise ValueError(f"no sample view for task {task!r}")
        SAMPLE_BUILDERS[task](context, section)
    return build


SAMPLE_SECTIONS = [("Samples", samples)]


def _coloured_text(text: str, activations: np.ndarray) -> str:
    """Each character on a background from blue (-1) to red (+1), as in char-rnn figures."""
    colormap = matplotlib.colormaps["RdBu_r"]
    spans = []
    for char, value in zip(text, activations, strict=True):
        red, green, blue, _ = colormap((float(np.clip(value, -1, 1)) + 1) / 2)
        shown = "↵\n" if char == "\n" else char
        spans.append(f'<span style="background:rgb({red * 255:.0f},{green * 255:.0f},'
                     f'{blue * 255:.0f})" title="{value:+.2f}">{html.escape(shown)}</span>')
    return '<div class="chars">' + "".join(spans) + "</div>\n"


def hidden_state_section(context: RunContext, section: Section) -> None:
    """For a character language model: the units that track quotes, line ends and so on."""
    if context.task_name != "language_model" or context.run.task.tokenizer.name != "char":
        return
    vocab = context.run.task.vocab
    ids = context.examples[:600]
    text = "".join(vocab.decode(ids))
    tokens = torch.as_tensor(ids).unsqueeze(0)
    trace = record_states(context.model, lambda m: m(tokens))[0]
    states = trace.hidden(-1, 0)[0].numpy()  # (seq, units)
    rows = []
    for name, feature in text_features(text).items():
        if feature.std() == 0:
            continue
        best = unit_correlations(states, feature, top=1)[0]
        rows.append({"feature": name, "unit": best.unit, "correlation": best.correlation})
    rows.sort(key=lambda row: -abs(row["correlation"]))
    section.add(paragraph("Units of the top layer most correlated with character features "
                          f"over {len(text)} characters of {context.data_path}:"))
    section.add(table(rows))
    for row in rows[:2]:
        section.add(paragraph(f"Unit {row['unit']} ({row['feature']}, r = "
                              f"{row['correlation']:+.2f}); red = positive, blue = negative:"))
        section.add(_coloured_text(text[:COLOURED_CHARS], states[:COLOURED_CHARS, row["unit"]]))
