"""Faults of the history's background work made visible: a write the store refuses is counted
with its time and message and the writer recovers; a collector task that crashes is logged with
its traceback and restarted; the files the store writes are private to its user."""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from lib.config import ServerConfig
from lib.history.collector import Collector
from lib.history.events import PARTICIPANT_JOINED, WEBHOOK, HistoryEvent
from lib.history.store import HistoryStore, RoomSample, ServerSample
from lib.livekit.gateway import LiveKitGateway

T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)


def good(n: int = 0) -> list[object]:
    return [ServerSample("s", T0 + timedelta(seconds=n), True, 1, 2, None),
            RoomSample("s", T0 + timedelta(seconds=n), "RM_ok", "fine-room", 2, 1, 0, 1)]  # fmt: skip


def refused() -> list[object]:
    """A batch DuckDB refuses: a participant count that is not a number (a conversion error
    whose message quotes the value)."""
    return [RoomSample("s", T0, "RM_bad", "secret-room", "mallory", 1, 0, 1)]  # type: ignore[arg-type]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    history = HistoryStore(tmp_path / "history.duckdb")
    yield history
    history.close()


# ----- the writer ---------------------------------------------------------------------------


def test_a_fresh_writer_reports_no_failure(store: HistoryStore) -> None:
    store.submit(good())
    store.flush()
    status = store.status()
    assert (status.failed_batches, status.last_failure_at, status.last_failure, status.failing, status.queued) == (0, None, None, False, 0)


def test_a_refused_batch_is_counted_with_its_time_and_message_and_a_good_batch_recovers(store: HistoryStore) -> None:
    before = datetime.now(timezone.utc)
    store.submit(refused())
    store.flush()

    failed = store.status()
    assert failed.failed_batches == 1 and failed.failing and failed.queued == 0
    assert failed.last_failure_at is not None and failed.last_failure_at >= before
    assert failed.last_failure is not None and failed.last_failure.startswith("ConversionException:")
    assert store.query("SELECT count(*) AS n FROM room_samples")["n"].iloc[0] == 0

    store.submit(good())
    store.flush()
    recovered = store.status()
    assert not recovered.failing
    assert recovered.failed_batches == 1 and recovered.last_failure == failed.last_failure
    assert store.query("SELECT count(*) AS n FROM room_samples")["n"].iloc[0] == 1


def test_a_refused_batch_does_not_take_the_batches_queued_with_it(store: HistoryStore) -> None:
    # A large first batch keeps the writer busy, so the next ones queue and are taken together.
    store.submit([ServerSample("s", T0 + timedelta(milliseconds=i), True, 0, 0, None) for i in range(20_000)])
    store.submit(refused())
    store.submit(good(1))
    store.submit(good(2))
    store.flush()

    assert store.status().failed_batches == 1 and not store.status().failing
    assert store.query("SELECT count(*) AS n FROM room_samples WHERE room_sid = 'RM_ok'")["n"].iloc[0] == 2


def test_a_store_whose_connection_broke_counts_every_batch_it_could_not_write(tmp_path: Path) -> None:
    history = HistoryStore(tmp_path / "history.duckdb")
    history._conn.close()  # broken underneath: what a lost file or a fatal DuckDB error leaves
    try:
        history.submit(good(1))
        history.submit(good(2))
        history.flush()
        status = history.status()
        assert status.failed_batches == 2 and status.failing and status.queued == 0
        assert status.last_failure is not None and "closed" in status.last_failure.lower()
    finally:
        history.close()


def test_a_redelivered_event_is_new_only_once_whether_stored_or_still_queued(store: HistoryStore) -> None:
    def joined(event_id: str) -> HistoryEvent:
        return HistoryEvent(event_id, "s", T0, WEBHOOK, PARTICIPANT_JOINED, "RM_1", "room", "PA_1", "alice", "standard")

    first = store.submit_new([joined("wh:EV_1")])
    again_while_queued = store.submit_new([joined("wh:EV_1")])  # the writer may not have run yet
    store.flush()
    again_when_stored = store.submit_new([joined("wh:EV_1")])
    other = store.submit_new([joined("wh:EV_2")])
    store.flush()

    assert [e.event_id for e in first] == ["wh:EV_1"]
    assert again_while_queued == [] and again_when_stored == []
    assert [e.event_id for e in other] == ["wh:EV_2"]
    assert store.query("SELECT count(*) AS n FROM events")["n"].iloc[0] == 2


# ----- the collector ------------------------------------------------------------------------


def test_a_crashed_collector_task_is_logged_with_its_traceback_and_restarted(livekit_server, tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    broken = HistoryStore(tmp_path / "history.duckdb")
    broken._conn.close()  # the collector's first read of the store (last_seen) raises
    gateway = LiveKitGateway(
        [ServerConfig("crashy", livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret)], request_timeout=2.0
    )
    collector = Collector(gateway, broken, interval=0.2)
    caplog.set_level(logging.ERROR, logger="lib.history.collector")
    try:
        assert not collector.status().running
        collector.start()
        deadline = time.monotonic() + 20
        while collector.status().restarts < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        status = collector.status()
    finally:
        collector.stop()
        gateway.close()
        broken.close()

    assert status.restarts >= 2 and status.running
    assert status.last_crash_at is not None and status.last_crash is not None
    assert status.last_crash.startswith("ConnectionException:")
    crashes = [r for r in caplog.records if r.name == "lib.history.collector" and "crashy" in r.getMessage()]
    assert crashes and all(r.exc_info for r in crashes)
    assert "Traceback (most recent call last)" in caplog.text and "in last_seen" in caplog.text


# ----- file modes ---------------------------------------------------------------------------


def test_the_history_file_and_its_wal_are_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "history.duckdb"
    history = HistoryStore(path)
    wal = Path(f"{path}.wal")
    try:
        for n in range(3):
            history.submit(good(n))
            history.flush()
            assert mode(path) == 0o600
            assert wal.exists() and mode(wal) == 0o600
        history.query("CHECKPOINT")  # DuckDB removes the WAL and opens a new one on the next write
        history.submit(good(10))
        history.flush()
        assert mode(wal) == 0o600
        assert mode(path.parent) == 0o700, "a directory the store creates is private too"
        assert mode(Path(f"{path}.tmp")) == 0o700, "DuckDB spills query data there"
    finally:
        history.close()


def test_an_existing_world_readable_history_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "history.duckdb"
    HistoryStore(path).close()
    os.chmod(path, 0o644)
    os.chmod(tmp_path, 0o755)
    history = HistoryStore(path)
    try:
        history.submit(good())
        history.flush()
        assert mode(path) == 0o600 and mode(Path(f"{path}.wal")) == 0o600
        assert mode(tmp_path) == 0o755, "a directory that existed is the operator's: left as it was"
    finally:
        history.close()
    assert not Path(f"{path}.wal").exists() or mode(Path(f"{path}.wal")) == 0o600


def test_closing_waits_for_a_read_in_flight_instead_of_failing_it(tmp_path: Path) -> None:
    """The collector's reads run in worker threads that cancelling its tasks does not stop: the
    store closed under one used to fail ("connection is busy with another call")."""
    store = HistoryStore(tmp_path / "history.duckdb")
    results: list[object] = []

    def long_read() -> None:
        try:
            results.append(store.query("SELECT count(*) AS n FROM range(400000000) t(i) WHERE i % 7 = 3")["n"].iloc[0])
        except Exception as exc:  # noqa: BLE001 - what the read met is the result
            results.append(exc)

    reader = threading.Thread(target=long_read)
    reader.start()
    time.sleep(0.3)  # the read is under way
    store.close()
    reader.join(30)
    assert results and not isinstance(results[0], Exception), results
    with pytest.raises(RuntimeError, match="closed"):
        store.query("SELECT 1")
