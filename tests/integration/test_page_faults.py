"""Faults a new user met on the pages (AppTest against a real livekit-server), each pinned: data
sent to one chosen participant while people come and go, the Users page beyond its first user,
the refresh choice across pages, a half-picked audit range, a server that stops answering, and
the Servers page's answer to a URL of the wrong kind."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from livekit import api
from streamlit.testing.v1 import AppTest

from lib.auth.guard import TOKEN_STATE_KEY
from lib.auth.policy import Actor
from lib.livekit.devserver import DevServer
from lib.services import Services
from lib.sim.participants import ParticipantPool
from tests.integration.test_pages import PAGES, SESSION, SERVER, dashboard, frames_with, listed_rooms, metrics, pick_room, plain, rerun_until, run_page  # noqa: F401
from tests.integration.test_routes import start_dev_server, stop_now

pytestmark = pytest.mark.integration


def test_data_for_one_chosen_participant_reaches_only_them_while_others_join(
    dashboard: Services, participants: ParticipantPool, lk_api, unique_name
) -> None:
    room = unique_name()
    people = {name: participants.join(room, name) for name in ("alice", "bob", "carol")}
    at = pick_room(run_page("rooms"), room)
    at = rerun_until(at, lambda a: metrics(a).get("Participants") == "3")
    at.radio(key=f"data_audience_{SERVER}_{room}").set_value("Chosen participants")
    at.multiselect(key=f"data_to_{SERVER}_{room}").set_value(["bob"])
    next(t for t in at.text_area if t.label.startswith("Message")).input("for bob only")
    next(t for t in at.text_input if t.label == "Topic").input("ops")

    # Someone joins before the operator presses Send: the page's participant list changes.
    people["dave"] = participants.join(room, "dave")
    lk_api.poll(lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room=room)), until=lambda r: len(r.participants) == 4)
    time.sleep(2.5)  # past the age of the snapshot the page shares, so its next run sees dave
    at.button(key=f"FormSubmitter:data_{SERVER}_{room}-Send data").click().run()

    assert not at.exception, [e.value for e in at.exception]
    assert any("Send data to bob: done" in plain(s.value) for s in at.success), [e.value for e in at.error]
    got = participants.wait_for_data(people["bob"], topic="ops", timeout=10)
    assert got is not None and got.payload == b"for bob only"
    time.sleep(1.0)  # a broadcast would have reached the others by now too
    for name in ("alice", "carol", "dave"):
        assert not [d for d in participants.received_data(people[name]) if d.topic == "ops"], f"{name} got it"
    [row] = dashboard.audit.query(action="data.send")
    assert row.target == f"{SERVER}/{room}" and row.detail.startswith("to bob (topic ops")


def test_chosen_participants_with_nobody_picked_sends_nothing(
    dashboard: Services, participants: ParticipantPool, unique_name
) -> None:
    room = unique_name()
    alice = participants.join(room, "alice")
    at = rerun_until(pick_room(run_page("rooms"), room), lambda a: metrics(a).get("Participants") == "1")
    at.radio(key=f"data_audience_{SERVER}_{room}").set_value("Chosen participants")
    next(t for t in at.text_area if t.label.startswith("Message")).input("to nobody")
    at.button(key=f"FormSubmitter:data_{SERVER}_{room}-Send data").click().run()

    assert any("Pick at least one participant" in e.value for e in at.error)
    time.sleep(1.0)
    assert participants.received_data(alice) == []
    assert dashboard.audit.query(action="data.send") == []


def test_users_page_changes_a_user_who_is_not_first_in_the_list(dashboard: Services) -> None:
    for name in ("b-user", "c-user"):
        dashboard.users.create(Actor.system(), name, "long-enough-password", "analyst")
    at = run_page("users")

    at.selectbox(key="user_pick").set_value("c-user").run()
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="role_of_c-user").set_value("operator")
    at.button(key="FormSubmitter:role_c-user-Change role").click().run()

    assert not at.exception, [e.value for e in at.exception]
    assert dashboard.users.get("c-user").role == "operator"
    assert dashboard.users.get("b-user").role == "analyst"


def run_navigation() -> AppTest:
    at = AppTest.from_file(str(PAGES / "navigation.py"), default_timeout=30)
    at.session_state[TOKEN_STATE_KEY] = SESSION["cookie"]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def refresh_choice(at: AppTest) -> int:
    [picker] = [s for s in at.sidebar.selectbox if s.label == "Auto-refresh"]
    return picker.value


@pytest.mark.parametrize("chosen", [0, 2])
def test_the_refresh_choice_survives_pages_without_the_picker(dashboard: Services, chosen: int) -> None:
    at = run_navigation()
    [picker] = [s for s in at.sidebar.selectbox if s.label == "Auto-refresh"]
    picker.set_value(chosen).run()

    for page in ("users", "rooms", "account", "audit", "agents", "settings", "overview", "history", "rooms"):
        at.switch_page(f"{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        if page in ("rooms", "agents", "overview"):
            assert refresh_choice(at) == chosen, f"back to the default on {page}"


def test_a_fresh_session_starts_with_the_default_refresh(dashboard: Services) -> None:
    at = run_navigation()
    assert refresh_choice(at) == dashboard.settings.refresh_seconds
    at.switch_page("users.py").run()
    at.switch_page("rooms.py").run()
    assert refresh_choice(at) == dashboard.settings.refresh_seconds, "never silently paused"


def test_the_audit_page_takes_a_half_picked_date_range(dashboard: Services) -> None:
    today = datetime.now(timezone.utc).date()
    at = run_page("audit")

    at.date_input[0].set_value((today - timedelta(days=2),)).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Only the first day is picked" in c.value for c in at.caption)

    # (A cleared picker is lib.auth.audit.day_range's business, tested with plain data: AppTest
    # sends an empty range as "unchanged".)


def test_a_server_that_stops_answering_shows_its_last_data_as_such_never_zeros(
    dashboard: Services, unique_name
) -> None:
    flaky = start_dev_server()
    try:
        room = unique_name()
        dashboard.servers.add("flaky", flaky.ws_url, flaky.api_key, flaky.api_secret)
        dashboard.follower.sync()
        dashboard.gateway.create_room("flaky", room)
        at = rerun_until(run_page("rooms"), lambda a: room in listed_rooms(a))
        assert room in listed_rooms(at)
    finally:
        stop_now(flaky)

    overview = rerun_until(run_page("overview"), lambda a: any("**flaky**" in e.value for e in a.error))
    [banner] = [e.value for e in overview.error if "**flaky**" in e.value]
    assert "last good data is from" in banner
    [known] = frames_with(overview, "as of")
    assert list(known["server"]) == ["flaky"] and int(known["rooms"].iloc[0]) >= 1
    [totals] = [c.value for c in overview.caption if c.value.startswith("Totals of the servers that answered")]
    assert "flaky" in totals
    [per_server] = [f for f in frames_with(overview, "rooms") if "as of" not in f.columns]
    assert "flaky" not in set(per_server["server"]), "a silent server is no row of live zeros"

    rooms = run_page("rooms")
    assert room not in listed_rooms(rooms), "its rooms are not shown as if live"
    assert any("**flaky**" in e.value for e in rooms.error)


def test_the_servers_page_names_the_schemes_it_takes(dashboard: Services) -> None:
    at = run_page("settings")
    inputs = {t.label: t for t in at.text_input}
    inputs["Name"].input("files")
    inputs["URL"].input("ftp://files.example.com")
    inputs["API key"].input("key")
    inputs["API secret"].input("secret")
    at.button(key="FormSubmitter:add_server-Test").click().run()

    assert not at.exception, [e.value for e in at.exception]
    errors = [plain(e.value) for e in at.error]
    assert any("ws://, wss://, http:// or https://" in e for e in errors), errors
    assert not any("after 0.0 s" in e for e in errors), errors
    assert dashboard.servers.get("files") is None


def test_the_servers_page_refuses_the_same_server_under_a_second_name(dashboard: Services, livekit_server: DevServer) -> None:
    at = run_page("settings")
    inputs = {t.label: t for t in at.text_input}
    inputs["Name"].input("again")
    inputs["URL"].input(livekit_server.http_url + "/")
    inputs["API key"].input(livekit_server.api_key)
    inputs["API secret"].input(livekit_server.api_secret)
    at.button(key="FormSubmitter:add_server-Test and save").click().run()

    assert not at.exception, [e.value for e in at.exception]
    assert any(f"already watched as '{SERVER}'" in plain(e.value) for e in at.error), [e.value for e in at.error]
    assert dashboard.servers.get("again") is None
    [row] = dashboard.audit.query(action="server.add")
    assert row.result == "failed"


# ----- found by walking the demo as a new user ---------------------------------------------


def test_a_mute_button_mutes_even_when_the_track_was_muted_meanwhile(
    dashboard: Services, participants: ParticipantPool, lk_api, unique_name
) -> None:
    room = unique_name()
    speaker = participants.join(room, "speaker", publish_audio=True)
    at = rerun_until(pick_room(run_page("rooms"), room), lambda a: any(b.label == "Mute" for b in a.button))
    [sid] = participants.track_sids(speaker).values()
    mute = next(b for b in at.button if b.label == "Mute")

    # The track is muted by someone else after the page drew its "Mute" button.
    lk_api.call(lambda lk: lk.room.mute_published_track(api.MuteRoomTrackRequest(room=room, identity="speaker", track_sid=sid, muted=True)))
    time.sleep(2.5)  # past the shared snapshot's age: the next run sees the track muted
    mute.click().run()

    assert not at.exception, [e.value for e in at.exception]
    [member] = lk_api.list_participants(room)
    assert [t.muted for t in member.tracks] == [True], "the click did what its label said"
    assert [r.action for r in dashboard.audit.query(action="track.mute")] == ["track.mute"]
    assert dashboard.audit.query(action="track.unmute") == []


def test_an_attribute_edit_is_kept_while_the_participant_changes_underneath(
    dashboard: Services, participants: ParticipantPool, lk_api, unique_name
) -> None:
    room = unique_name()
    participants.join(room, "grace", attributes={"seen.key": "1"})
    at = rerun_until(pick_room(run_page("rooms"), room), lambda a: metrics(a).get("Participants") == "1")
    form = f"info_{SERVER}_{room}_grace"

    # The participant changes after the form was drawn; a refresh says so, and keeps the form.
    update = api.UpdateParticipantRequest(room=room, identity="grace", attributes={"late.key": "2"})
    lk_api.call(lambda lk: lk.room.update_participant(update))
    time.sleep(2.5)  # past the shared snapshot's age
    at = at.run()
    assert any("Changed on the server since this form was opened" in w.value for w in at.warning)
    assert "seen.key" in at.text_area(key=f"{form}_attributes").value

    at.text_input(key=f"{form}_name").input("Grace Hopper")
    at.text_area(key=f"{form}_attributes").input('{"mine": "typed by the operator"}')  # seen.key deleted
    at.button(key=f"FormSubmitter:{form}-Update participant").click().run()

    assert not at.exception, [e.value for e in at.exception]
    [member] = lk_api.list_participants(room)
    assert member.name == "Grace Hopper"
    assert dict(member.attributes) == {"mine": "typed by the operator", "late.key": "2"}, "typed kept, unseen kept, deleted gone"

    # After the save the form shows the server's values, so saving again changes nothing.
    def attributes_shown(a: AppTest) -> dict[str, str]:
        return json.loads(next(t for t in a.text_area if t.label.startswith("Attributes")).value)

    assert attributes_shown(at) == {"mine": "typed by the operator", "late.key": "2"}
    at.button(key=f"FormSubmitter:{form}-Update participant").click().run()
    [member] = lk_api.list_participants(room)
    assert dict(member.attributes) == {"mine": "typed by the operator", "late.key": "2"}

    # A change on the server is announced beside the form, and "Load current values" loads it.
    update = api.UpdateParticipantRequest(room=room, identity="grace", attributes={"later.key": "3"})
    lk_api.call(lambda lk: lk.room.update_participant(update))
    time.sleep(2.5)
    at = at.run()
    [reload] = [b for b in at.button if b.label == "Load current values" and form in (b.key or "")]
    reload.click().run()
    assert attributes_shown(at) == {"mine": "typed by the operator", "late.key": "2", "later.key": "3"}


def test_a_picked_room_that_ends_stays_picked_and_offers_no_controls(
    dashboard: Services, lk_api, unique_name
) -> None:
    gone, other = unique_name(), unique_name()
    lk_api.create_room(gone)
    lk_api.create_room(other)
    at = pick_room(run_page("rooms"), gone)
    assert at.button(key=f"end_{SERVER}_{gone}")

    lk_api.call(lambda lk: lk.room.delete_room(api.DeleteRoomRequest(room=gone)))
    at = rerun_until(at, lambda a: any("This room is gone" in w.value for w in a.warning))

    assert at.selectbox(key="room_pick").value == (SERVER, gone)
    assert not [b for b in at.button if b.key and b.key.startswith("end_")], "no control for any other room"


def test_a_gone_pick_gives_way_to_a_search_for_something_else(dashboard: Services, lk_api, unique_name) -> None:
    gone = unique_name()
    lk_api.create_room(gone)
    at = pick_room(run_page("rooms"), gone)
    lk_api.call(lambda lk: lk.room.delete_room(api.DeleteRoomRequest(room=gone)))
    at = rerun_until(at, lambda a: any("This room is gone" in w.value for w in a.warning))

    at.text_input(key="room_search").input(f"nothing-called-this-{unique_name()}").run()
    assert "No room to show." in [c.value for c in at.caption], "the search asked for other rooms"
    assert not any("This room is gone" in w.value for w in at.warning)


def test_creating_a_room_that_exists_says_so_and_changes_nothing(dashboard: Services, lk_api, unique_name) -> None:
    room = unique_name()
    lk_api.create_room(room, metadata="original")
    at = run_page("rooms")
    next(t for t in at.text_input if t.label == "Room name").input(room)
    next(t for t in at.text_area if t.label == "Metadata").input("overwrite")
    at.button(key="FormSubmitter:create_room-Create room").click().run()

    assert any("already exists" in plain(e.value) for e in at.error), [e.value for e in at.error]
    [existing] = lk_api.call(lambda lk: lk.room.list_rooms(api.ListRoomsRequest(names=[room]))).rooms
    assert existing.metadata == "original"
    [row] = dashboard.audit.query(action="room.create")
    assert row.result == "failed" and "already exists" in row.detail


def test_a_created_users_password_does_not_stay_in_the_form(dashboard: Services) -> None:
    at = run_page("users")

    def field(label: str):  # type: ignore[no-untyped-def]
        return next(t for t in at.text_input if t.label == label)

    field("User name").input("fresh-user")
    field("Initial password").input("fresh-user-password")
    at.button(key="FormSubmitter:create_user-Create user").click().run()

    assert any("User 'fresh-user' created as analyst." in plain(s.value) for s in at.success)
    assert field("User name").value == "" and field("Initial password").value == ""

    field("User name").input("Fresh-User")  # a name taken in other letter case
    field("Initial password").input("another-password")
    at.button(key="FormSubmitter:create_user-Create user").click().run()
    assert any("already exists" in plain(e.value) for e in at.error)
    assert field("User name").value == "Fresh-User", "what was typed stays on an error"
