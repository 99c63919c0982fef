"""User text (domain names, prompt ids and texts, model names, paths) made safe to show.

Names come from suite files and run folders, so they may hold anything: ANSI escape sequences that
recolour or rewrite the terminal, bidirectional overrides that reorder what is shown, Markdown or
HTML markup. Every output passes user text through one of these functions, which show it literally:

- :func:`visible` (terminal text): control characters become visible, inert escapes (``\\x1b``);
- :func:`one_line`: the same, after runs of whitespace (newlines too) become one space;
- :func:`markdown`: visible, then escaped so Markdown shows it as written, never as markup, on one
  line (a newline is shown as ``\x0a``: flatten running text with :func:`one_line` first);
- :func:`html`: visible, then HTML-escaped.
"""

from __future__ import annotations

import html as _html
import re

# C0 and C1 controls and DEL, line/paragraph separators, bidirectional marks, overrides and isolates,
# and lone surrogates (which cannot be encoded at all).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")
# Characters that are Markdown (or GitHub's math) markup anywhere in a line. `_` is safe between two
# letters or digits (it cannot open or close emphasis there), so `accepted_local` stays readable.
_MD_INLINE = re.compile(r"[\\`*\[\]|~$]|(?<![^\W_])_|_(?![^\W_])")
# Markup only at the start of a line: headings, list items, setext underlines, ordered lists.
_MD_LEADING = re.compile(r"^(?:[-+=#](?![\d.])|\d{1,9}(?=[.)](?:\s|$)))")


def _escape(match: re.Match) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: object) -> str:
    """``text`` with every control or bidi-control character shown as an inert escape (``\\x1b``)."""
    return _UNSAFE.sub(_escape, str(text))


def one_line(text: object) -> str:
    """:func:`visible` on one line: runs of whitespace (newlines, tabs) become a single space."""
    return visible(" ".join(str(text).split()))


def markdown(text: object) -> str:
    """Markdown source that renders as ``text`` literally, on one line (safe in table cells)."""
    escaped = _MD_INLINE.sub(lambda m: "\\" + m[0], _html.escape(visible(text), quote=False))
    return _MD_LEADING.sub(lambda m: m[0] + "\\" if m[0][0].isdigit() else "\\" + m[0], escaped, count=1)


def html(text: object) -> str:
    """HTML text (also safe in attribute values) that shows ``text`` literally."""
    return _html.escape(visible(text))
