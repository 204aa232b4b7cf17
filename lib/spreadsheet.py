"""CSV cells that a spreadsheet opens as text: exports hold names and titles that anyone can type."""

from __future__ import annotations

# A cell starting with one of these is run as a formula by common spreadsheets.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
