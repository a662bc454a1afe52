"""Retention: old events, their actions and old rejections go; new ones stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event, func, select, update

from conftest import Receiver
from hotglue_webhooks.retention import claim_purge_slot, last_purge, oldest_event, purge
from hotglue_webhooks.storage.models import ActionRecord, Event, Rejection


def counts(receiver: Receiver) -> tuple[int, int, int]:
    with receiver.runtime.sessions() as session:
        return tuple(  # type: ignore[return-value]
            int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Event, ActionRecord, Rejection)
        )


def test_purge_removes_old_events_with_their_actions_and_keeps_new_ones(receiver: Receiver) -> None:
    old_id = int(receiver.post("sync_failed__shopify_500").json["id"])
    new_id = int(receiver.post("etl_failed__transform").json["id"])
    receiver.post(b"not json")  # a rejection
    receiver.worker().drain()
    now = datetime.now(UTC)
    with receiver.runtime.sessions.begin() as session:
        session.execute(update(Event).where(Event.id == old_id).values(received_at=now - timedelta(days=31)))
        session.execute(update(Rejection).values(received_at=now - timedelta(days=31)))
    assert counts(receiver) == (2, 2, 1)
    batches: list[int] = []
    result = purge(receiver.runtime.sessions, 30, now=now, batch_size=1, progress=batches.append)
    assert (result.events, result.actions, result.rejections) == (1, 1, 1)
    assert batches == [1]
    assert counts(receiver) == (1, 1, 0)
    with receiver.runtime.sessions() as session:
        assert session.get(Event, new_id) is not None
    assert last_purge(receiver.runtime.sessions) == now
    assert oldest_event(receiver.runtime.sessions) is not None


def test_purge_rests_after_each_batch_as_long_as_it_took(receiver: Receiver) -> None:
    ids = [int(receiver.post(payload_name).json["id"]) for payload_name in ("sync_failed__shopify_500", "etl_failed__transform")]
    now = datetime.now(UTC)
    with receiver.runtime.sessions.begin() as session:
        session.execute(update(Event).where(Event.id.in_(ids)).values(received_at=now - timedelta(days=31)))
    rests: list[float] = []
    batches: list[int] = []
    result = purge(receiver.runtime.sessions, 30, now=now, batch_size=1, progress=batches.append, sleep=rests.append)
    assert result.events == 2 and batches == [1, 1]
    # Before each transaction: nothing before the first, then each batch's own duration
    # (two event batches, the empty look for more events, then the rejections' look).
    assert rests[0] == 0.0
    assert len(rests) == 4
    assert all(rest > 0 for rest in rests[1:3])


def test_only_one_purge_per_interval_across_workers(receiver: Receiver) -> None:
    sessions = receiver.runtime.sessions
    now = datetime.now(UTC)
    assert claim_purge_slot(sessions, now, 3600) is True
    assert claim_purge_slot(sessions, now + timedelta(minutes=30), 3600) is False
    assert claim_purge_slot(sessions, now + timedelta(minutes=61), 3600) is True


def test_a_worker_looks_at_the_purge_slot_at_most_once_a_minute(receiver: Receiver) -> None:
    """The slot is a write transaction: a worker must not take one before every claim."""
    statements: list[str] = []
    event.listen(receiver.runtime.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    worker = receiver.worker()
    now = datetime.now(UTC)
    worker.clock = lambda: now

    worker.maybe_purge()  # takes the slot and purges (nothing is old)
    assert last_purge(receiver.runtime.sessions) is not None
    taken = len(statements)
    assert taken > 0
    worker.maybe_purge()
    assert len(statements) == taken  # within the minute: no statement at all
    worker.clock = lambda: now + timedelta(seconds=61)
    worker.maybe_purge()
    assert len(statements) > taken  # looks again (the slot itself stays taken for the hour)


def test_every_worker_thread_can_hold_a_connection_and_the_purge_still_gets_one(database_url: str) -> None:
    """A worker thread holds its connection from claim to release; the purge slot (a
    write session) needs one more while they wait for the write lock."""
    receiver = Receiver(database_url, worker_threads=20)
    try:
        engine = receiver.runtime.engine
        held = [engine.connect() for _ in range(20)]
        try:
            assert claim_purge_slot(receiver.runtime.sessions, datetime.now(UTC), 3600) is True
        finally:
            for connection in held:
                connection.close()
    finally:
        receiver.close()


def test_purge_removes_incidents_closed_and_snoozes_ended_before_the_window(receiver: Receiver) -> None:
    from hotglue_webhooks.storage.db import write_session
    from hotglue_webhooks.storage.models import Incident, IncidentMember, SnoozeRow

    now = datetime.now(UTC)
    old, recent = now - timedelta(days=31), now - timedelta(days=1)

    def incident(state: str, closed: datetime | None) -> Incident:
        return Incident(
            signature="00000000000000aa", env_id="e", stage="SYNC_FAILED", connector="shopify → optiply",
            error_line="x", channel="#c", state=state, first_seen_at=old, opened_at=old, last_change_at=old,
            closed_at=closed, flush_seq=1, updated_at=old,
        )

    with write_session(receiver.runtime.sessions) as session:
        gone, kept, still_open = incident("resolved", old), incident("expired", recent), incident("open", None)
        session.add_all([gone, kept, still_open])
        session.flush()
        for parent in (gone, kept, still_open):
            session.add(IncidentMember(signature="00000000000000aa", tenant="1", flow_id="F", incident_id=parent.id,
                                       event_id=1, state="folded", seen_at=old))
        session.add(IncidentMember(signature="00000000000000bb", tenant="2", flow_id="F", event_id=2, state="alone", seen_at=old))
        session.add_all([
            SnoozeRow(scope="tenant", target="1", until=old, by="a", created_at=old, held=0, ended_at=old),
            SnoozeRow(scope="tenant", target="2", until=old, by="a", created_at=old, held=0),  # its summary is not out yet
            SnoozeRow(scope="tenant", target="3", until=recent, by="a", created_at=old, held=0, ended_at=recent),
        ])
    result = purge(receiver.runtime.sessions, 30, now=now)
    assert (result.incidents, result.snoozes) == (1, 1)
    with receiver.runtime.sessions() as session:
        assert sorted(session.scalars(select(Incident.state))) == ["expired", "open"]
        assert session.scalar(select(func.count()).select_from(IncidentMember)) == 2  # the kept incidents' members
        assert sorted(session.scalars(select(SnoozeRow.target))) == ["2", "3"]
