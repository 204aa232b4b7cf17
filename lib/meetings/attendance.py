"""Attendance of one meeting occurrence, folded from the history store's participant spans: one
row per participant with first join, last leave and the minutes present (overlapping spans of
one identity, as when a participant reconnects, counted once)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from ..spreadsheet import safe_cell

CSV_COLUMNS = ["name", "identity", "email", "first_join", "last_leave", "minutes", "present_now", "end"]


@dataclass(frozen=True)
class AttendanceRow:
    name: str  # as given at join; empty for someone who joined with a token of another origin
    identity: str
    email: str  # as given at join of a private meeting; empty otherwise
    first_join: datetime
    last_leave: datetime | None  # None while still present
    minutes: float
    exact: bool  # every leave was seen (a webhook), none inferred from a snapshot
    kind: str  # LiveKit's participant kind: standard, agent, ...


def _present_seconds(spans: list[tuple[datetime, datetime]]) -> float:
    """Seconds covered by the union of the spans."""
    total, end = 0.0, None
    for a, b in sorted(spans):
        if end is None or a > end:
            total += (b - a).total_seconds()
            end = b
        elif b > end:
            total += (b - end).total_seconds()
            end = b
    return total


def attendance_rows(spans: pd.DataFrame, known: dict[str, tuple[str, str | None]], now: datetime) -> list[AttendanceRow]:
    """`spans`: lib.history.sessions.room_participant_spans; `known`: identity -> (name, email)
    from the join grants. Sorted by first join."""
    rows = []
    for identity, group in spans.groupby("identity", sort=False):
        joined = [ts.to_pydatetime() for ts in group["joined_at"]]
        left = [ts.to_pydatetime() for ts in group["left_at"]]
        still_open = bool(group["open"].any())
        name, email = known.get(str(identity), ("", None))
        rows.append(
            AttendanceRow(
                name=name, identity=str(identity), email=email or "", first_join=min(joined),
                last_leave=None if still_open else max(left), minutes=round(_present_seconds(list(zip(joined, left))) / 60, 2),
                exact=not still_open and not bool(group["left_estimated"].any()), kind=str(group["kind"].iloc[0]),
            )  # fmt: skip
        )
    return sorted(rows, key=lambda r: (r.first_join, r.identity))


def attendance_csv(rows: list[AttendanceRow]) -> bytes:
    """Names are typed by guests: no cell reaches a spreadsheet as a formula."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow(
            [
                safe_cell(r.name), safe_cell(r.identity), safe_cell(r.email), r.first_join.isoformat(),
                r.last_leave.isoformat() if r.last_leave else "", f"{r.minutes:.2f}", "yes" if r.last_leave is None else "no",
                "exact" if r.exact else ("open" if r.last_leave is None else "estimated"),
            ]  # fmt: skip
        )
    return out.getvalue().encode()
