"""The Streamlit pages, run in-process by AppTest against a real livekit-server: what each page
shows, the room controls, hostile input, and a dead server beside a good one."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from livekit import api
from streamlit.testing.v1 import AppTest

from lib import services
from lib.auth.guard import TOKEN_STATE_KEY
from lib.config import load_settings
from lib.livekit.devserver import REPO_ROOT, DevServer, free_port
from lib.services import Services
from lib.sim.agent_worker import AgentWorker
from lib.sim.participants import ParticipantPool
from lib.auth.policy import Actor

pytestmark = pytest.mark.integration

PAGES = REPO_ROOT / "pages"
SERVER = "default"  # the environment server's name when DASHBOARD_SERVER_NAME is unset
HOSTILE = "<script>alert(1)</script>"
UNICODE = "Zürich 会议室 🎉 ﷽ e\u0301"
TEN_KB = " ".join([HOSTILE, UNICODE] * 200)  # about 10 kB of UTF-8
# Elements whose text Streamlit renders as Markdown.
MARKDOWN_KINDS = ("title", "header", "subheader", "markdown", "caption", "success", "info", "warning", "error")


@pytest.fixture
def dashboard(livekit_server: DevServer, tmp_path: Path) -> Iterator[Services]:
    """The process's services, built for this test and watching the session's server."""
    env = {
        "LIVEKIT_URL": livekit_server.ws_url,
        "LIVEKIT_API_KEY": livekit_server.api_key,
        "LIVEKIT_API_SECRET": livekit_server.api_secret,
        "DASHBOARD_DATA_DIR": str(tmp_path / "data"),
        "DASHBOARD_SECRET_KEY": "test-secret-key-for-the-page-tests",
    }
    services.stop()
    svc = services.start(load_settings(env, tmp_path / "none.toml"))
    admin = svc.users.create(Actor.system("test"), "page-admin", "page-admin-password", "admin")
    SESSION["cookie"] = svc.logins.create(admin.id)[0]
    try:
        yield svc
    finally:
        SESSION.clear()
        services.stop()


@pytest.fixture
def ended_rooms(lk_api) -> Iterator[list[str]]:
    """Names of rooms a test makes through the dashboard; they are ended when it finishes."""
    names: list[str] = []
    yield names
    for name in names:
        try:
            lk_api.call(lambda lk, name=name: lk.room.delete_room(api.DeleteRoomRequest(room=name)))
        except api.TwirpError:
            pass  # the test ended it already


SESSION: dict[str, str] = {}  # the signed-in admin's cookie value for this test


def run_page(name: str) -> AppTest:
    at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=30)
    at.session_state[TOKEN_STATE_KEY] = SESSION["cookie"]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def rerun_until(at: AppTest, ready: Callable[[AppTest], bool], timeout: float = 20.0) -> AppTest:
    """Rerun the page until `ready` holds or `timeout` passes. The gateway serves snapshots up to
    a second old and the server's listings settle over a moment, so pages are polled, not slept on."""
    deadline = time.monotonic() + timeout
    while not ready(at) and time.monotonic() < deadline:
        time.sleep(0.3)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    return at


def frames_with(at: AppTest, column: str) -> list[pd.DataFrame]:
    return [d.value for d in at.dataframe if column in d.value.columns]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def listed_rooms(at: AppTest) -> set[str]:
    return {name for frame in frames_with(at, "room") if "metadata" in frame.columns for name in frame["room"]}


def plain(markdown: str) -> str:
    """Markdown text as the reader sees it, for values without backslashes of their own."""
    return markdown.replace("\\", "")


def markdown_texts(at: AppTest) -> list[str]:
    return [el.value for kind in MARKDOWN_KINDS for el in getattr(at, kind)]


def rendered_strings(at: AppTest) -> Iterator[str]:
    """Everything the page sent to the browser, as text: each element's message and value, and
    every dataframe cell."""
    for node in [*at.main, *at.sidebar]:
        proto = getattr(node, "proto", None)
        if proto is not None:
            yield str(proto)
        try:
            value = node.value
        except Exception:  # noqa: BLE001 - blocks and some elements have no value
            continue
        if isinstance(value, pd.DataFrame):
            yield from (str(cell) for cell in value.astype(str).to_numpy().ravel())
            yield from (str(c) for c in value.columns)
        else:
            yield str(value)


def labelled(widgets, label: str):  # type: ignore[no-untyped-def]
    """The first widget with this label; on the rooms page that is the "Create a room" form's."""
    return next(w for w in widgets if w.label == label)


def room_choices(at: AppTest) -> list[str]:
    return [o for s in at.selectbox if s.key == "room_pick" for o in s.options]


def pick_room(at: AppTest, room: str) -> AppTest:
    at = rerun_until(at, lambda a: any(room[:79] in o and o.endswith(f"·  {SERVER}") for o in room_choices(a)))
    at.selectbox(key="room_pick").set_value((SERVER, room)).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def server_rooms(lk_api, *names: str) -> list[api.Room]:
    return list(lk_api.call(lambda lk: lk.room.list_rooms(api.ListRoomsRequest(names=list(names)))).rooms)


def server_totals(lk_api) -> dict[str, int]:
    """The counts the overview shows, read straight from the Server API."""
    people = [
        p
        for room in lk_api.call(lambda lk: lk.room.list_rooms(api.ListRoomsRequest())).rooms
        for p in lk_api.list_participants(room.name)
    ]
    return {
        "Participants": len(people),
        "Publishers": sum(1 for p in people if p.tracks),
        "Tracks": sum(len(p.tracks) for p in people),
        "Agents": sum(1 for p in people if p.kind == api.ParticipantInfo.Kind.AGENT),
    }


def wait_for_tracks(lk_api, room: str, identities: set[str]) -> None:
    lk_api.poll(
        lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room=room)),
        until=lambda r: {p.identity for p in r.participants if p.tracks} >= identities,
    )


# ----- every page ---------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["overview", "rooms", "agents", "settings", "tokens", "navigation"])
def test_page_runs_without_exception_with_live_rooms(
    page: str, dashboard: Services, participants: ParticipantPool, unique_name
) -> None:
    participants.join(unique_name(), "alice", publish_audio=True)

    at = run_page(page)

    assert at.title, "every page has a title"
    assert not at.error, [e.value for e in at.error]


def test_navigation_serves_the_overview_by_default(dashboard: Services) -> None:
    at = run_page("navigation")

    assert [t.value for t in at.title] == ["Overview"]
    assert set(metrics(at)) == {"Rooms", "Participants", "Publishers", "Tracks", "Agents"}


# ----- what the pages show ------------------------------------------------------------------


def test_overview_metrics_count_the_real_participants(
    dashboard: Services, participants: ParticipantPool, lk_api, unique_name
) -> None:
    first, second = unique_name(), unique_name()
    participants.join(first, "alice", publish_audio=True)
    participants.join(first, "bob")
    participants.join(second, "carol", publish_audio=True)
    wait_for_tracks(lk_api, first, {"alice"})
    wait_for_tracks(lk_api, second, {"carol"})

    def counts_match(at: AppTest) -> bool:
        shown = metrics(at)
        return all(shown[label] == str(n) for label, n in server_totals(lk_api).items())

    at = rerun_until(run_page("overview"), counts_match)

    shown, expected = metrics(at), server_totals(lk_api)
    assert {label: shown[label] for label in expected} == {label: str(n) for label, n in expected.items()}
    assert int(shown["Participants"]) >= 3 and int(shown["Publishers"]) >= 2 and int(shown["Tracks"]) >= 2
    assert int(shown["Rooms"]) >= 2
    [status] = frames_with(at, "status")
    assert status.set_index("server").loc[SERVER, "status"] == "reachable"


def test_rooms_page_lists_rooms_and_the_selected_rooms_participants_and_tracks(
    dashboard: Services, participants: ParticipantPool, lk_api, unique_name
) -> None:
    busy, empty = unique_name(), unique_name()
    participants.join(busy, "alice", publish_audio=True)
    participants.join(busy, "bob")
    lk_api.create_room(empty, metadata="nobody here")
    wait_for_tracks(lk_api, busy, {"alice"})

    at = rerun_until(run_page("rooms"), lambda a: {busy, empty} <= listed_rooms(a))
    assert {busy, empty} <= listed_rooms(at)

    at = pick_room(at, busy)
    at = rerun_until(at, lambda a: metrics(a).get("Tracks") == "1")
    assert metrics(at) == {"Participants": "2", "Publishers": "1", "Agents": "0", "Tracks": "1"}
    [people] = frames_with(at, "identity")
    assert set(people["identity"]) == {"alice", "bob"}
    [tracks] = frames_with(at, "track")
    assert list(tracks["participant"]) == ["alice"]
    assert list(tracks["source"]) == ["microphone"] and list(tracks["type"]) == ["audio"]

    at.text_input(key="room_search").input(empty).run()
    assert not at.exception
    assert listed_rooms(at) == {empty}


def test_agents_page_shows_the_dispatched_agent_and_its_running_job(
    dashboard: Services, agent_worker: AgentWorker, participants: ParticipantPool, lk_api, unique_name
) -> None:
    room = unique_name()
    participants.join(room, "caller")  # dispatches are listed for rooms with participants
    dispatch = lk_api.call(
        lambda lk: lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=agent_worker.agent_name, room=room)
        )
    )

    def job_running(at: AppTest) -> bool:
        jobs = [f for f in frames_with(at, "dispatch") if "status" in f.columns]
        agents = frames_with(at, "identity")
        return (
            any(((f["dispatch"] == dispatch.id) & (f["status"] == "running")).any() for f in jobs)
            and any((f["room"] == room).any() for f in agents)
        )

    at = rerun_until(run_page("agents"), job_running, timeout=45)

    assert job_running(at)
    [agents] = frames_with(at, "identity")
    mine = agents[agents["room"] == room]
    assert list(mine["kind"]) == ["agent"]
    assert int(metrics(at)["Jobs running"]) >= 1 and int(metrics(at)["Dispatches"]) >= 1


def test_settings_lists_the_environment_server_with_the_secret_masked(
    dashboard: Services, livekit_server: DevServer
) -> None:
    stored_secret = "stored-secret-" + "s" * 40
    dashboard.servers.add("stored", livekit_server.ws_url, "stored-key", stored_secret)

    at = run_page("settings")

    [servers] = frames_with(at, "api secret")
    by_name = servers.set_index("name")
    assert by_name.loc[SERVER, "defined by"] == "environment"
    assert by_name.loc[SERVER, "url"] == livekit_server.ws_url
    assert by_name.loc[SERVER, "api secret"] == "•" * 8 + livekit_server.api_secret[-4:]
    assert by_name.loc["stored", "api secret"] == "•" * 8 + stored_secret[-4:]
    everything = list(rendered_strings(at))
    assert everything and not [s for s in everything if livekit_server.api_secret in s]
    assert not [s for s in everything if stored_secret in s]


# ----- controls -----------------------------------------------------------------------------


def test_room_created_through_the_form_exists_on_the_server(
    dashboard: Services, lk_api, unique_name, ended_rooms: list[str]
) -> None:
    room = unique_name()
    ended_rooms.append(room)
    at = run_page("rooms")

    labelled(at.text_input, "Room name").input(room)
    labelled(at.text_area, "Metadata").input('{"purpose": "form test"}')
    at.button(key="FormSubmitter:create_room-Create room").click().run()

    assert not at.exception, [e.value for e in at.exception]
    assert any("done" in s.value for s in at.success), [e.value for e in at.error]
    [created] = server_rooms(lk_api, room)
    assert created.metadata == '{"purpose": "form test"}'


def test_room_ended_through_the_two_step_confirmation_is_gone_from_the_server(
    dashboard: Services, lk_api, unique_name
) -> None:
    room = unique_name()
    lk_api.create_room(room)
    at = pick_room(run_page("rooms"), room)

    at.button(key=f"end_{SERVER}_{room}").click().run()
    assert not at.exception
    assert any(room in plain(w.value) for w in at.warning), "the first click only asks"
    assert server_rooms(lk_api, room), "nothing is ended before the confirmation"

    at.button(key=f"end_{SERVER}_{room}_yes").click().run()

    assert not at.exception, [e.value for e in at.exception]
    assert any("done" in s.value for s in at.success), [e.value for e in at.error]
    assert server_rooms(lk_api, room) == []
    assert room not in listed_rooms(at)


def test_control_refused_by_the_server_shows_an_error_not_an_exception(
    dashboard: Services, lk_api
) -> None:
    # 256 characters pass the form's limit; as 512 bytes they exceed the server's room name limit.
    room = "é" * 256
    at = run_page("rooms")

    labelled(at.text_input, "Room name").input(room)
    at.button(key="FormSubmitter:create_room-Create room").click().run()

    assert not at.exception, [e.value for e in at.exception]
    assert any("failed: invalid request" in plain(e.value) for e in at.error), [e.value for e in at.error]
    assert server_rooms(lk_api, room) == []


# ----- hostile input ------------------------------------------------------------------------


def test_hostile_room_and_participant_values_render_as_text(
    dashboard: Services, participants: ParticipantPool, lk_api, unique_name, ended_rooms: list[str]
) -> None:
    room = f"{HOSTILE} {UNICODE} {unique_name()}"
    identity = f"{HOSTILE}-ü"
    lk_api.create_room(room, metadata=TEN_KB)
    participants.join(room, identity, name=UNICODE, metadata=TEN_KB, publish_audio=True)
    assert len(TEN_KB.encode()) >= 10_000
    seen: list[str] = []

    at = pick_room(run_page("rooms"), room)
    at = rerun_until(at, lambda a: metrics(a).get("Participants") == "1")
    seen += markdown_texts(at)
    assert TEN_KB in [t.value for t in at.text], "the room metadata is shown whole, as plain text"
    [people] = frames_with(at, "identity")
    assert list(people["identity"]) == [identity] and list(people["name"]) == [UNICODE]

    at.button(key=f"end_{SERVER}_{room}").click().run()  # the confirmation prompt names the room
    assert not at.exception
    seen += markdown_texts(at)
    at.button(key=f"remove_{SERVER}_{room}_{identity}").click().run()  # ... and the participant
    assert not at.exception
    seen += markdown_texts(at)

    created = f"{HOSTILE} {unique_name()}"
    ended_rooms.append(created)
    labelled(at.text_input, "Room name").input(created)
    labelled(at.text_area, "Metadata").input(TEN_KB)
    at.button(key="FormSubmitter:create_room-Create room").click().run()  # the result names it too
    assert not at.exception, [e.value for e in at.exception]
    assert [r.metadata for r in server_rooms(lk_api, created)] == [TEN_KB]
    seen += markdown_texts(at)

    at.text_input(key="room_search").input(HOSTILE).run()
    assert not at.exception
    assert {room, created} <= listed_rooms(at)
    seen += markdown_texts(at)
    for page in ("overview", "agents", "settings"):
        seen += markdown_texts(run_page(page))

    assert any(room in plain(s) for s in seen), "the room name is shown somewhere as text"
    assert not [s for s in seen if "<script>" in s]


# ----- a dead server beside a good one ------------------------------------------------------


def test_unreachable_server_gets_a_banner_and_does_not_hide_the_good_servers_rooms(
    dashboard: Services, lk_api, unique_name
) -> None:
    room = unique_name()
    lk_api.create_room(room)
    dashboard.servers.add("dead", f"ws://127.0.0.1:{free_port()}", "deadkey", "dead-secret-" + "x" * 20)
    dashboard.follower.sync()  # at once, rather than at the follower's next look

    for page in ("overview", "rooms", "agents"):
        at = run_page(page)
        banners = [e.value for e in at.error]
        assert any(b.startswith("**dead**: unreachable") for b in banners), (page, banners)
        assert not any(SERVER in b for b in banners), (page, banners)

        if page == "rooms":
            at = rerun_until(at, lambda a: room in listed_rooms(a))
            assert room in listed_rooms(at)
        if page == "overview":
            [status] = frames_with(at, "status")
            by_server = status.set_index("server")["status"]
            assert by_server[SERVER] == "reachable"
            assert by_server["dead"].startswith("unreachable")
            assert int(metrics(at)["Rooms"]) >= 1


# ----- tokens -------------------------------------------------------------------------------

ISSUE_TOKEN = "FormSubmitter:issue_token-Issue token"


def test_a_token_issued_through_the_page_shows_its_claims_and_the_token_only_once_revealed(
    dashboard: Services, livekit_server: DevServer, participants: ParticipantPool, lk_api, unique_name
) -> None:
    room = unique_name()
    participants.join(room, "someone")  # a live room, for the picker to offer
    at = rerun_until(run_page("tokens"), lambda a: room in a.selectbox(key="token_room_pick").options)

    at.selectbox(key="token_room_pick").set_value(room).run()
    assert at.text_input(key="token_room").value == room, "picking a live room fills the room in"
    assert at.selectbox(key="token_room_pick").value is None
    at.text_input(key="issue_token_identity").input("page-guest")
    at.text_area(key="issue_token_attributes").input("role = speaker\nlang=de")
    at.checkbox(key="issue_token_admin").check()
    at.checkbox(key="issue_token_data").uncheck()
    at.number_input(key="issue_token_ttl").set_value(45)
    at.button(key=ISSUE_TOKEN).click().run()

    assert not at.exception and not at.error, [e.value for e in at.error]
    [claims] = [json.loads(j.value) for j in at.json]
    assert claims["sub"] == "page-guest" and claims["attributes"] == {"role": "speaker", "lang": "de"}
    assert claims["video"] == {"room": room, "roomJoin": True, "roomAdmin": True, "canPublish": True, "canSubscribe": True, "canPublishData": False}
    assert claims["exp"] - claims["nbf"] == 45 * 60
    assert any("Expires" in m.value and "(in 44m" in m.value for m in at.markdown), [m.value for m in at.markdown]
    hidden = list(rendered_strings(at))
    assert not at.code, "nothing of the token is drawn before it is revealed"

    at.toggle(key="token_reveal").set_value(True).run()
    [code] = at.code
    token = code.value
    assert api.TokenVerifier(livekit_server.api_key, livekit_server.api_secret).verify(token).identity == "page-guest"
    _, payload, signature = token.split(".")
    assert not [s for s in hidden if payload in s or signature in s], "the token was sent before the reveal"
    assert not [s for s in rendered_strings(at) if livekit_server.api_secret in s]
    [row] = dashboard.audit.query(action="token.issue")
    assert (row.actor, row.result, row.target) == ("page-admin", "ok", f"{SERVER}/{room}")
    assert token not in row.detail

    at.button(key=ISSUE_TOKEN).click().run()
    assert len(at.json) == 1 and not at.code, "a new token starts hidden again"

    participants.join(room, "page-guest", token=token)  # and it works
    joined = lk_api.poll(lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room=room)),
                         until=lambda r: any(p.identity == "page-guest" for p in r.participants))  # fmt: skip
    assert [dict(p.attributes) for p in joined.participants if p.identity == "page-guest"] == [{"role": "speaker", "lang": "de"}]


def test_the_token_form_keeps_what_was_typed_when_a_line_is_bad_or_the_service_refuses(dashboard: Services, unique_name) -> None:
    room = unique_name()
    at = run_page("tokens")
    at.text_input(key="token_room").input(room).run()
    at.text_input(key="issue_token_identity").input("kept-identity")
    at.text_area(key="issue_token_metadata").input("kept metadata")
    at.text_area(key="issue_token_attributes").input("good=1\nnot a pair")
    at.button(key=ISSUE_TOKEN).click().run()

    assert not at.exception
    assert [plain(e.value) for e in at.error] == ["Attributes are key=value lines: line 2 ('not a pair') has no '='."]
    assert dashboard.audit.query(action="token.issue") == [], "a line that does not parse never reaches the service"

    at.text_area(key="issue_token_attributes").input("good=1")
    at.text_area(key="issue_token_dispatch_metadata").input("for nobody")
    at.button(key=ISSUE_TOKEN).click().run()

    assert [plain(e.value) for e in at.error] == ["Dispatch metadata is given but no agent to dispatch: name the agent, or clear the metadata."]
    assert not at.json and not at.toggle, "no result is shown for a refused request"
    assert (at.text_input(key="token_room").value, at.text_input(key="issue_token_identity").value) == (room, "kept-identity")
    assert at.text_area(key="issue_token_metadata").value == "kept metadata"
    assert at.text_area(key="issue_token_dispatch_metadata").value == "for nobody"
    [row] = dashboard.audit.query(action="token.issue")
    assert row.result == "failed" and "no agent to dispatch" in row.detail

    at.text_area(key="issue_token_dispatch_metadata").input("")
    at.button(key=ISSUE_TOKEN).click().run()
    assert not at.error and len(at.json) == 1
    at.text_area(key="issue_token_attributes").input("=no key")
    at.button(key=ISSUE_TOKEN).click().run()
    assert at.error and not at.json, "the token issued before is not shown as if it were this request's"
