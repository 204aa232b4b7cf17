"""Text formatting for the UI. Everything user-controlled that reaches Markdown goes through
`md()`, and every name a chart draws through `chart_label()`, so names and metadata render as
the text they are, never as markup; `visible()` shows the characters that would otherwise hide
in a name (bidi overrides, zero-width characters, controls)."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timezone

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")
CELL_LIMIT = 200
# Categories drawn as nothing or that reorder their neighbours: controls (C0, DEL, C1), format
# characters (bidi embeddings, overrides and isolates, zero-width space and joiners, BOM, soft
# hyphen, tags), surrogates left by broken decoding, line and paragraph separators.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Letters and marks that draw as blank space: Hangul fillers and the combining grapheme joiner.
_HIDDEN_OTHERS = frozenset("\u115f\u1160\u3164\uffa0\u034f")


def _hidden(ch: str) -> bool:
    return ch in _HIDDEN_OTHERS or unicodedata.category(ch) in _HIDDEN_CATEGORIES


def visible(text: str) -> str:
    """`text` with every invisible or direction-changing character replaced by a marker naming
    it (U+202E becomes ⟨U+202E⟩), so a name cannot hide or reorder what is shown beside it.
    Letters of any script, emoji and ordinary spaces are left as they are."""
    if text.isprintable() and not _HIDDEN_OTHERS.intersection(text):  # the common case, in C
        return text
    return "".join(f"⟨U+{ord(ch):04X}⟩" if _hidden(ch) else ch for ch in text)


def md(text: str) -> str:
    """Escape Markdown (and the HTML Streamlit would show escaped anyway) so text stays text;
    hidden characters are shown by `visible()`."""
    return _MD_SPECIAL.sub(r"\\\1", visible(text.replace("\n", " ")))


def chart_label(text: str) -> str:
    """A name as plotly should draw it (axis ticks, legends, hovers): `visible()`, then escaped
    for plotly.js, which reads a few HTML tags (<b>, <i>, <a>, <br>, <span>, ...) and entities
    (&amp; &lt; &gt; and a handful more, numeric ones too). Only &, < and > are escaped: plotly
    does not decode &quot; or &#x27;, so html.escape's quotes would show as entities."""
    return visible(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int = CELL_LIMIT) -> str:
    """Shorten long values for table cells; the full value is shown in the detail view."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def since(ts: datetime | None, now: datetime | None = None) -> str:
    if ts is None:
        return ""
    now = now or datetime.now(timezone.utc)
    return duration((now - ts).total_seconds())


def clock(ts: datetime | None) -> str:
    """A UTC wall-clock time with the date when it is not today."""
    if ts is None:
        return ""
    ts = ts.astimezone(timezone.utc)
    if ts.date() == datetime.now(timezone.utc).date():
        return ts.strftime("%H:%M:%S UTC")
    return ts.strftime("%Y-%m-%d %H:%M:%S UTC")
