"""Signed invites and attendance folding: pure logic on plain data."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from lib.meetings.attendance import attendance_csv, attendance_rows
from lib.meetings.invites import Invite, InviteError, invite_key, sign, verify

NOW = datetime(2027, 5, 1, 12, 0, tzinfo=timezone.utc)
KEY = invite_key("a secret key of the dashboard")


def test_a_signed_invite_verifies_for_its_meeting_and_link_version() -> None:
    invite = Invite(7, 2, "ann@example.org", NOW + timedelta(hours=1))
    assert verify(KEY, sign(KEY, invite), meeting_id=7, link_version=2, now=NOW) == invite


@pytest.mark.parametrize(
    ("meeting", "version", "now", "message"),
    [(8, 2, NOW, "another meeting"), (7, 3, NOW, "revoked"), (7, 2, NOW + timedelta(hours=2), "expired")],
)
def test_an_invite_is_refused_elsewhere_after_rotation_and_after_expiry(meeting: int, version: int, now: datetime, message: str) -> None:
    text = sign(KEY, Invite(7, 2, None, NOW + timedelta(hours=1)))
    with pytest.raises(InviteError, match=message):
        verify(KEY, text, meeting_id=meeting, link_version=version, now=now)


def test_a_tampered_or_foreign_invite_is_refused_before_it_is_read() -> None:
    text = sign(KEY, Invite(7, 2, None, NOW + timedelta(hours=1)))
    body, mac = text.split(".")
    forged = sign(invite_key("another key"), Invite(7, 2, None, NOW + timedelta(hours=1)))
    for bad in (forged, body + "." + mac[::-1], body[:-2] + "." + mac, "", "x" * 2000, "a.b.c", "!!.??"):
        with pytest.raises(InviteError):
            verify(KEY, bad, meeting_id=7, link_version=2, now=NOW)


def spans(rows: list[tuple[str, int, int | None, bool]]) -> pd.DataFrame:
    """(identity, joined minute, left minute or None for still there, estimated)."""
    at = lambda minute: pd.Timestamp(NOW + timedelta(minutes=minute))  # noqa: E731
    return pd.DataFrame(
        {
            "room_sid": ["RM_1"] * len(rows),
            "identity": [r[0] for r in rows],
            "kind": ["standard"] * len(rows),
            "joined_at": [at(r[1]) for r in rows],
            "left_at": [at(r[2] if r[2] is not None else 60) for r in rows],
            "left_estimated": [r[3] for r in rows],
            "open": [r[2] is None for r in rows],
        }
    )


def test_attendance_counts_overlapping_reconnects_once_and_marks_estimates() -> None:
    rows = attendance_rows(
        spans([("g-1", 0, 30, False), ("g-1", 20, 40, False), ("g-2", 5, 10, True), ("g-3", 50, None, False)]),
        {"g-1": ("Ada", "ada@example.org")},
        NOW + timedelta(minutes=60),
    )
    by_id = {r.identity: r for r in rows}
    assert by_id["g-1"].minutes == 40 and by_id["g-1"].exact and by_id["g-1"].email == "ada@example.org"
    assert by_id["g-2"].minutes == 5 and not by_id["g-2"].exact and by_id["g-2"].name == ""
    assert by_id["g-3"].last_leave is None and not by_id["g-3"].exact
    assert [r.identity for r in rows] == ["g-1", "g-2", "g-3"]


def test_attendance_csv_keeps_formulas_out_of_spreadsheets() -> None:
    rows = attendance_rows(spans([("g-1", 0, 10, False)]), {"g-1": ("=HYPERLINK(\"x\")", None)}, NOW)
    text = attendance_csv(rows).decode()
    assert "'=HYPERLINK" in text and text.splitlines()[0].startswith("name,identity,email")
