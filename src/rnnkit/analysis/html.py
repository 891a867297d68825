"""A self-contained HTML page: inline CSS, images as base64 data URIs, no external resources.

A report is a list of :class:`Section` objects. A section that could not be built carries the
reason instead of content, and the page says so: one broken section never sinks the report.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from rnnkit.analysis.plots import figure_png

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1100px; padding: 1em 2em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 1.8em; border-bottom: 1px solid #bbb; }
nav ul { columns: 2; }
table { border-collapse: collapse; margin: .6em 0; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6f6; padding: .7em; overflow-x: auto; font-size: .88em; white-space: pre-wrap;
      overflow-wrap: anywhere; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: .9em; color: #555; }
.unavailable { background: #fff6e0; border-left: 4px solid #e0a000; padding: .5em 1em; }
.note { color: #555; font-size: .92em; }
.chars span { font-family: monospace; white-space: pre; }
"""


@dataclass
class Section:
    """A titled part of a report: HTML body and the PNG files it embeds (``name -> bytes``)."""

    title: str
    body: str = ""
    images: dict[str, bytes] = field(default_factory=dict)
    unavailable: str | None = None

    def add_figure(self, name: str, figure: Figure, caption: str = "") -> None:
        """Embed ``figure`` (kept as ``name``.png too) with an optional caption."""
        png = figure_png(figure)
        self.images[name] = png
        self.body += figure_html(png, caption or name)

    def add(self, html_text: str) -> None:
        self.body += html_text


def escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def figure_html(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>\n")


def paragraph(text: str, css_class: str = "") -> str:
    attribute = f' class="{css_class}"' if css_class else ""
    return f"<p{attribute}>{escape(text)}</p>\n"


def preformatted(text: str) -> str:
    return f"<pre>{escape(text)}</pre>\n"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f'<td class="num">{value:.4g}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    return f"<td>{escape(value)}</td>"


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """An HTML table of ``rows`` (dicts); columns default to the first row's keys."""
    if not rows:
        return paragraph("(no rows)", "note")
    columns = list(columns or rows[0].keys())
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(row.get(c, "")) for c in columns) + "</tr>\n"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>\n"


def build_section(title: str, builder: Callable[[Section], None]) -> Section:
    """Run ``builder(section)``; any error becomes the section's ``unavailable`` reason."""
    section = Section(title)
    try:
        builder(section)
    except Exception as error:  # a report shows what it can; the reason is printed in the page
        section.body, section.images = "", {}
        section.unavailable = f"{type(error).__name__}: {error}"
    return section


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"


def render(title: str, sections: Sequence[Section], subtitle: str = "") -> str:
    """The whole page as one HTML string."""
    items = "".join(f'<li><a href="#{_anchor(s.title)}">{escape(s.title)}</a></li>'
                    for s in sections)
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        paragraph(subtitle, "note") if subtitle else "",
        f"<nav><ul>{items}</ul></nav>",
    ]
    for section in sections:
        parts.append(f'<section id="{_anchor(section.title)}"><h2>{escape(section.title)}</h2>')
        if section.unavailable is not None:
            parts.append(f'<p class="unavailable">Not available: {escape(section.unavailable)}</p>')
        else:
            parts.append(section.body)
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(path: str | Path, title: str, sections: Sequence[Section],
                 subtitle: str = "", image_dir: str | Path | None = None) -> Path:
    """Write the page to ``path`` and each section's PNGs into ``image_dir`` (if given)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if image_dir is not None:
        image_dir = Path(image_dir)
        image_dir.mkdir(parents=True, exist_ok=True)
        for section in sections:
            for name, png in section.images.items():
                (image_dir / f"{name}.png").write_bytes(png)
    path.write_text(render(title, sections, subtitle), encoding="utf-8")
    return path
