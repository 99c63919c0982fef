"""The report document's blocks (headings, paragraphs, lists, tables, figures) and their two renderers,
Markdown and self-contained HTML (:mod:`document` builds the blocks).

Both renderers pass every piece of text through :mod:`specdyn.safetext` (prompt texts, domain names and
ids come from user data): it is shown literally, never as markup, and control characters are made inert.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from specdyn.report.verdicts import Verdict
from specdyn.safetext import html, markdown


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Paragraph:
    text: str
    note: bool = False  # drawn as a highlighted box in HTML


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Figure:
    name: str
    png: bytes
    caption: str


# ----------------------------------------------------------------------------------------------------
# Renderers


def to_markdown(blocks: list, image_dir: str = "plots") -> str:
    """Markdown with figures linked as ``image_dir/NAME.png`` (written next to report.md)."""
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {markdown(b.text)}")
        elif isinstance(b, Paragraph):
            out.append(f"> **Note:** {markdown(b.text)}" if b.note else markdown(b.text))
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {markdown(i)}" for i in b.items))
        elif isinstance(b, Table):
            lines = ["| " + " | ".join(markdown(h) for h in b.header) + " |",
                     "|" + "---|" * len(b.header)]
            lines += ["| " + " | ".join(markdown(c) for c in row) + " |" for row in b.rows]
            if b.caption:
                lines.append(f"\n*{markdown(b.caption)}*")
            out.append("\n".join(lines))
        elif isinstance(b, Figure):
            out.append(f"![{markdown(b.name)}]({image_dir}/{b.name}.png)\n\n*{markdown(b.caption)}*")
    return "\n\n".join(out) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:0.5em 0 0.2em;font-size:0.9em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f2f2f2}
caption{caption-side:bottom;text-align:left;font-size:0.85em;color:#555;padding-top:3px}
figure{margin:1em 0} figure img{max-width:100%} figcaption{font-size:0.85em;color:#555}
.note{background:#fff4d6;border-left:4px solid #e0a800;padding:0.5em 1em}
.holds{color:#11702e;font-weight:600} .does-not-hold{color:#a4161a;font-weight:600}
.inconclusive{color:#7a5d00;font-weight:600} .not-comparable,.not-applicable{color:#555;font-style:italic}
"""

_VERDICT_CLASS = {v.value: v.name.lower().replace("_", "-") for v in Verdict}


def _cell(text: str, tag: str) -> str:
    cls = _VERDICT_CLASS.get(text)
    attr = f' class="{cls}"' if cls else ""
    return f"<{tag}{attr}>{html(str(text))}</{tag}>"


def to_html(blocks: list, title: str = "specdyn report") -> str:
    """One self-contained HTML page: inline CSS, figures embedded as base64 PNG, all text escaped."""
    body = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{html(b.text)}</h{b.level}>")
        elif isinstance(b, Paragraph):
            body.append(f'<p class="note">{html(b.text)}</p>' if b.note else
                        f"<p>{html(b.text)}</p>")
        elif isinstance(b, Bullets):
            body.append("<ul>" + "".join(f"<li>{html(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            rows = "".join("<tr>" + "".join(_cell(c, "td") for c in row) + "</tr>" for row in b.rows)
            caption = f"<caption>{html(b.caption)}</caption>" if b.caption else ""
            head = "".join(_cell(h, "th") for h in b.header)
            body.append(f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(b, Figure):
            data = base64.b64encode(b.png).decode("ascii")
            body.append(f'<figure><img alt="{html(b.name)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{html(b.caption)}</figcaption></figure>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html(title)}'
            f"</title><style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
