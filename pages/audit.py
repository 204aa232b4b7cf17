"""Audit (admins): who did what, when, to what, and how it went; filterable, exportable as CSV."""

from datetime import datetime, time, timedelta, timezone

import pandas as pd
import streamlit as st

from lib import services
from lib.auth import guard
from lib.auth.audit import RESULTS, to_csv
from lib.ui.dates import day_range

svc = services.get()
guard.require_page(svc, "audit")
audit = svc.audit
st.title("Audit")

today = datetime.now(timezone.utc).date()
c1, c2, c3, c4 = st.columns(4)
days = c1.date_input("Between (UTC days)", value=(today - timedelta(days=7), today), max_value=today)
action = c2.selectbox("Action", ["(any)", *audit.actions()])
result = c3.selectbox("Result", ["(any)", *RESULTS])
actor = c4.text_input("User", placeholder="exact user name")
text = st.text_input("Target or detail contains")

start, end = day_range(days, today)
if start is None:
    st.caption("No days picked: showing every day.")
elif days and isinstance(days, tuple) and len(days) == 1:
    st.caption(f"Only the first day is picked: showing {start:%Y-%m-%d} to today.")
records = audit.query(
    since=datetime.combine(start, time.min, timezone.utc) if start else None,
    until=datetime.combine(end, time.max, timezone.utc) if end else None,
    action=None if action == "(any)" else action,
    result=None if result == "(any)" else result,
    actor=actor.strip() or None,
    text=text.strip() or None,
)
st.caption(f"{len(records)} event(s)" + (" (the newest 5000)" if len(records) == 5000 else ""))
frame = pd.DataFrame([r.__dict__ for r in records], columns=["at", "actor", "action", "target", "result", "detail", "address"])
st.dataframe(frame, hide_index=True, width="stretch", column_config={"at": st.column_config.DatetimeColumn("at", format="YYYY-MM-DD HH:mm:ss")})
st.download_button("Download CSV", to_csv(records), file_name="audit.csv", mime="text/csv", disabled=not records)
