"""What the Webhooks page draws of receivers and deliveries: their rows and their state in words.
Values admins typed (URLs, descriptions) are clipped and shown with their hidden characters."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from ..outbound.events import EVENT_TYPES
from ..outbound.service import DeliveryView, ReceiverView
from .format import clip, clock, since, visible

# The secret of a receiver just added: shown on the next run, then forgotten.
SECRET_KEY = "_webhook_new_secret"


def state_text(r: ReceiverView) -> str:
    if r.paused_at is None:
        return "active"
    return f"paused since {clock(r.paused_at)} ({since(r.paused_at)} ago) because {r.paused_reason}"


def receiver_label(r: ReceiverView) -> str:
    return f"#{r.id} {clip(visible(r.url), 80)}"


def receivers_frame(receivers: Sequence[ReceiverView]) -> pd.DataFrame:
    rows = [
        {
            "id": r.id,
            "url": clip(visible(r.url)),
            "events": ", ".join(r.events),
            "state": clip(visible(state_text(r))),
            "failures in a row": r.consecutive_failures,
            "waiting": r.waiting,
            "description": clip(visible(r.description)),
            "added": f"{clock(r.created_at)} by {r.created_by}",
        }
        for r in receivers
    ]
    return pd.DataFrame(rows, columns=["id", "url", "events", "state", "failures in a row", "waiting", "description", "added"])


def deliveries_frame(deliveries: Sequence[DeliveryView]) -> pd.DataFrame:
    rows = [
        {
            "time": d.created_at,
            "event": d.event_type,
            "receiver": f"#{d.receiver_id} {clip(visible(d.receiver_url), 60)}",
            "status": d.status,
            "attempts": d.attempts,
            "next attempt": d.next_attempt_at if d.status in ("pending", "failed") else None,
            "last status code": d.last_status_code,
            "last error": clip(visible(d.last_error)),
            "delivery": d.id,
            "event id": d.event_id,
        }
        for d in deliveries
    ]
    columns = ["time", "event", "receiver", "status", "attempts", "next attempt", "last status code", "last error", "delivery", "event id"]
    return pd.DataFrame(rows, columns=columns)


DELIVERY_COLUMNS = {
    "time": st.column_config.DatetimeColumn("time", format="YYYY-MM-DD HH:mm:ss"),
    "next attempt": st.column_config.DatetimeColumn("next attempt", format="YYYY-MM-DD HH:mm:ss"),
    "last status code": st.column_config.NumberColumn("last status code", format="%d"),
}


def event_checkboxes(form: str, chosen: Sequence[str] = ()) -> list[str]:
    """One checkbox per event type, two columns; the types ticked."""
    left, right = st.columns(2)
    picked = []
    for i, event_type in enumerate(EVENT_TYPES):
        column = left if i < len(EVENT_TYPES) / 2 else right
        if column.checkbox(event_type, value=event_type in chosen, key=f"{form}_{event_type}"):
            picked.append(event_type)
    return picked
