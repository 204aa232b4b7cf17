"""Meetings (hosts and admins): schedule meetings and series, start one now, and for each one the
join link, invites, calendar file, edits, cancellation, ending it for everyone and attendance."""

from datetime import datetime, timedelta, timezone

import streamlit as st

from lib import services
from lib.auth import guard
from lib.auth.policy import ActionError
from lib.meetings.attendance import attendance_csv
from lib.meetings.views import ACTIVE, CANCELLED, ENDED, SCHEDULED, STATUSES
from lib.ui import live
from lib.ui import meetings as ui
from lib.ui.format import clock, md

svc = services.get()
user = guard.require_page(svc, "meetings")
actor = guard.actor(user)
meetings = svc.meetings
st.title("Meetings")
live.show_flash()

servers = svc.gateway.server_names()
hosts = [u.username for u in svc.users.list() if u.role in ("admin", "host") and not u.disabled]  # who may co-host
now = datetime.now(timezone.utc)
view_zone = ui.default_zone()

if not servers:
    st.info("No LiveKit server is configured: meetings need one. Add a server on the Servers page.")
    st.stop()

list_tab, schedule_tab, instant_tab = st.tabs(["Meetings", "Schedule", "Start now"], key="meetings_tab")

with schedule_tab:
    draft = ui.draft_form("schedule", servers, hosts, user.username)
    if draft is not None:
        live.submit(lambda: meetings.schedule(actor, draft), lambda m: f"Scheduled '{m.title}': {len(m.occurrences)} occurrence(s).", form="schedule")

with instant_tab:
    with st.form("instant"):
        key = lambda field: live.widget_key("instant", field)  # noqa: E731
        title = st.text_input("Title", value="Instant meeting", max_chars=200, key=key("title"))
        c1, c2 = st.columns(2)
        server = c1.selectbox("Server", servers, key=key("server"))
        minutes = c2.number_input("Minutes", min_value=5, max_value=int(svc.settings.meeting_max_hours * 60), value=60, step=5, key=key("minutes"))
        password = st.text_input("Meeting password (optional)", type="password", key=key("password"))
        if st.form_submit_button("Start meeting now", type="primary"):
            live.submit(
                lambda: meetings.start_instant(actor, title, server, minutes=int(minutes), time_zone=view_zone, password=password or None),
                lambda m: f"'{m.title}' is open until {ui.when(m.occurrences[0].ends_at, view_zone)}: share its link from the Meetings tab.",
                form="instant",
            )

with list_tab:
    c1, c2, c3 = st.columns([2, 2, 1])
    statuses = c1.multiselect("Status", STATUSES, default=[SCHEDULED, ACTIVE], key="meetings_status")
    today = now.date()
    days = c2.date_input(f"Days ({view_zone})", value=(today - timedelta(days=7), today + timedelta(days=365)), key="meetings_days")
    mine = c3.toggle("Only mine", value=user.role != "admin", disabled=user.role != "admin", key="meetings_mine")
    since, until, range_note = ui.start_range(days, view_zone)
    if range_note:
        st.caption(range_note)
    rows = meetings.list(actor, statuses=tuple(statuses), since=since, until=until, mine=mine)
    st.caption(f"{len(rows)} occurrence(s); times in {view_zone}.")
    if not rows:
        st.info("No meeting matches. Schedule one, or widen the filters.")
        st.stop()
    labels = {r.occurrence.id: f"{r.title} · {ui.when(r.occurrence.starts_at, view_zone)} · {r.occurrence.status}" for r in rows}
    st.dataframe(ui.rows_table(rows, view_zone, now), hide_index=True, width="stretch")
    # The closed picker shows the label it was drawn with: keyed on the labels, it is drawn
    # afresh when one changes (an edit, a move, a new status), keeping the pick.
    remembered = st.session_state.get("_meetings_picked")
    picked = st.selectbox(
        "Meeting", list(labels), format_func=lambda oid: labels[oid], index=list(labels).index(remembered) if remembered in labels else 0,
        key=f"meetings_pick_{abs(hash(tuple(labels.values())))}",
    )  # fmt: skip
    st.session_state["_meetings_picked"] = picked
    row = next(r for r in rows if r.occurrence.id == picked)
    meeting = meetings.get(actor, row.meeting_id)
    occurrence = next(o for o in meeting.occurrences if o.id == picked)

    st.subheader(md(meeting.title), anchor=False)  # a title is text, whatever Markdown or HTML it holds
    st.text(meeting.description or "(no description)")
    info = [
        f"**Status:** {md(ui.status_text(occurrence, now))}",
        f"**When:** {md(ui.when(occurrence.starts_at, meeting.time_zone))} to {md(ui.when(occurrence.ends_at, meeting.time_zone))} ({md(meeting.time_zone)})",
        f"**Repeats:** {md(ui.rule_text(meeting))}",
        f"**Host:** {md(meeting.host)}" + (f"; co-hosts {md(', '.join(meeting.cohosts))}" if meeting.cohosts else ""),
        f"**Access:** {'private, ' + str(len(meeting.invitees)) + ' invitee(s)' if meeting.private else 'public'}; "
        f"{'password set' if meeting.has_password else 'no password'}; server {md(meeting.server)}, room `{occurrence.room_name}`",
    ]
    st.markdown("  \n".join(info))
    st.caption(
        "Join link (no password in it: guests type the password, or use an invite link). The dashboard's own join page "
        "is not built yet: until it is, the link names the meeting, and guests' tokens come from the Tokens page."
    )
    st.code(meeting.join_url, language=None)

    link_tab, edit_tab, attendance_tab = st.tabs(["Share", "Change", "Attendance"], key="meeting_tabs")
    with link_tab:
        st.download_button(
            "Download calendar file (.ics)", meetings.calendar(actor, meeting.id), file_name=f"meeting-{meeting.id}.ics",
            mime="text/calendar", key=f"ics_{meeting.id}_{meeting.sequence}",
        )  # fmt: skip
        with st.form(f"invite_{meeting.id}"):
            email = st.selectbox("Invite for", meeting.invitees, key=f"invite_email_{meeting.id}") if meeting.private else None
            st.caption("An invite link stands in for the password. It expires with the meeting and stops working when the link is rotated.")
            if st.form_submit_button("Make an invite link"):
                try:
                    st.code(meetings.invite_link(actor, meeting.id, email), language=None)
                except ActionError as exc:
                    st.error(md(live.failure(exc)))
        if live.confirm("Rotate link", f"rotate_{meeting.id}", "Rotate the link? The current link and every invite link sent so far stop working."):
            live.submit(lambda: meetings.rotate_link(actor, meeting.id), "New link made: send it again to everyone.", refusal_after_rerun=True)

    with edit_tab:
        if occurrence.status in (ENDED, CANCELLED):
            st.info(f"This occurrence is {occurrence.status}.")
        if meeting.status in (SCHEDULED, ACTIVE):
            with st.expander("Edit the meeting" + (" (the whole series)" if meeting.recurrence else "")):
                changed = ui.draft_form(f"edit_{meeting.id}_{meeting.version}", servers, hosts, meeting.host, meeting)
                if changed is not None:
                    live.submit(lambda: meetings.update(actor, meeting.id, meeting.version, changed), "Meeting saved; the scheduler follows the new times.")
        if meeting.recurrence and occurrence.status == SCHEDULED:
            with st.form(f"move_{occurrence.id}_{occurrence.version}"):
                st.caption(f"Move only this occurrence (times in {meeting.time_zone}).")
                start = ui.local(occurrence.starts_at, meeting.time_zone)
                end = ui.local(occurrence.ends_at, meeting.time_zone)
                c1, c2, c3, c4 = st.columns(4)
                d1, t1 = c1.date_input("Starts on", value=start.date()), c2.time_input("at", value=start.time(), step=timedelta(minutes=5))
                d2, t2 = c3.date_input("Ends on", value=end.date()), c4.time_input("at ", value=end.time(), step=timedelta(minutes=5))
                if st.form_submit_button("Move this occurrence"):
                    live.submit(
                        lambda: meetings.move_occurrence(actor, occurrence.id, occurrence.version, datetime.combine(d1, t1), datetime.combine(d2, t2)),
                        "Occurrence moved.",
                    )
            if live.confirm("Cancel this occurrence", f"cancel_occ_{occurrence.id}", "Cancel only this occurrence of the series?"):
                live.submit(lambda: meetings.cancel_occurrence(actor, occurrence.id), "Occurrence cancelled.", refusal_after_rerun=True)
        if occurrence.status == ACTIVE and live.confirm(
            "End for everyone", f"end_{occurrence.id}", f"End '{meeting.title}' now? Its room is deleted and everyone in it is disconnected."
        ):
            live.submit(lambda: meetings.end_now(actor, occurrence.id), "Meeting ended; its room was deleted.", refusal_after_rerun=True)
        if meeting.status in (SCHEDULED, ACTIVE) and live.confirm(
            "Cancel meeting" + (" (every occurrence ahead)" if meeting.recurrence else ""), f"cancel_{meeting.id}",
            f"Cancel '{meeting.title}'? Guests can no longer join, and a room under way is deleted.",
        ):  # fmt: skip
            live.submit(lambda: meetings.cancel(actor, meeting.id), "Meeting cancelled.", refusal_after_rerun=True)

    with attendance_tab:
        if occurrence.status == SCHEDULED:
            st.info("Nobody has joined: this occurrence has not started.")
        else:
            try:
                present = meetings.attendance(actor, occurrence.id)
            except ActionError as exc:  # why attendance cannot be read here
                st.error(md(live.failure(exc)))
                present = None
            if present is not None and not present:
                st.info("Nobody was seen in this meeting's room.")
            elif present:
                st.dataframe(
                    [
                        {
                            "name": r.name or "(not joined through the dashboard)", "identity": r.identity, "email": r.email,
                            "first join": clock(r.first_join), "last leave": clock(r.last_leave) if r.last_leave else "still here",
                            "minutes": r.minutes, "end": "exact" if r.exact else ("open" if r.last_leave is None else "estimated"),
                        }  # fmt: skip
                        for r in present
                    ],
                    hide_index=True, width="stretch",
                )  # fmt: skip
                st.caption("Exact: the leave was reported by the server's webhook. Estimated: inferred from the snapshots, within one collection interval.")
                st.download_button("Download CSV", attendance_csv(present), file_name=f"attendance-{occurrence.id}.csv", mime="text/csv")
