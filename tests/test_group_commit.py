"""storage/db.py group commit: concurrent writes of one process share one statement and its commit."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Connection, event, func, select, text

from conftest import payload
from hotglue_webhooks.ingest import store_event
from hotglue_webhooks.redaction import Redactor
from hotglue_webhooks.storage import db
from hotglue_webhooks.storage.migrate import upgrade
from hotglue_webhooks.storage.models import Event


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'group.db'}"
    engine = db.make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def _body(job: int) -> bytes:
    sent = payload("job_completed__incremental")
    sent["job_id"] = f"job-{job}"
    sent["s3_root"] = f"root/{job}"
    return json.dumps(sent).encode()


def _queue_behind_a_writer(group: db._GroupCommit, threads: list[threading.Thread]) -> None:
    """Start ``threads`` while another writer of this process holds the turn, so that all
    their writes queue up and go as one group; return once they all finished."""
    with group._turn:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 5
        while len(group._queue) < len(threads) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(group._queue) == len(threads)
    for thread in threads:
        thread.join(10)


def test_concurrent_deliveries_are_each_stored_once_and_committed_before_the_answer(database_url: str) -> None:
    engine = db.make_engine(database_url)
    sessions = db.make_sessionmaker(engine)
    redactor = Redactor()
    other = db.make_engine(database_url)  # another process's view: sees only what was committed
    begins: list[str] = []

    @event.listens_for(engine, "begin")
    def _count_begin(_connection: Connection) -> None:
        begins.append("begin")

    def deliver(job: int) -> tuple[int, int, bool, int]:
        body = _body(job % 40)  # every stage delivered 3 times, some at the same moment
        stored = store_event(sessions, body, json.loads(body), {}, redactor)
        with other.connect() as connection:
            visible = connection.scalar(select(func.count()).select_from(Event).where(Event.id == stored.event_id))
        return job % 40, stored.event_id, stored.duplicate, int(visible or 0)

    try:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(deliver, range(120)))
        assert all(visible == 1 for *_, visible in answers)  # durable before the call returned
        firsts = [(stage, event_id) for stage, event_id, duplicate, _ in answers if not duplicate]
        assert sorted(stage for stage, _ in firsts) == list(range(40))  # one first delivery per stage
        first_id = dict(firsts)
        assert all(event_id == first_id[stage] for stage, event_id, _, _ in answers)
        with engine.connect() as connection:
            assert connection.scalar(select(func.count()).select_from(Event)) == 40
        assert len(begins) < 120  # some deliveries shared a transaction
    finally:
        engine.dispose()
        other.dispose()


def test_one_failing_write_in_a_group_fails_only_its_own_caller(sqlite_url: str) -> None:
    engine = db.make_engine(sqlite_url)
    sessions = db.make_sessionmaker(engine)
    group = db._group_commits.setdefault(engine, db._GroupCommit())
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER NOT NULL)"))

    def good(n: int):  # type: ignore[no-untyped-def]
        def work(connection: Connection) -> int:
            connection.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})
            return n

        return work

    def bad(connection: Connection) -> int:
        connection.execute(text("INSERT INTO t (n) VALUES (NULL)"))  # NOT NULL: IntegrityError
        return -1

    outcomes: dict[str, object] = {}

    def call(name: str, work) -> None:  # type: ignore[no-untyped-def]
        try:
            outcomes[name] = db.write_alone_or_grouped(sessions, work)
        except Exception as error:
            outcomes[name] = error

    try:
        _queue_behind_a_writer(
            group,
            [threading.Thread(target=call, args=(name, work))
             for name, work in (("one", good(1)), ("bad", bad), ("two", good(2)))],
        )
        assert outcomes["one"] == 1 and outcomes["two"] == 2
        assert "NOT NULL" in str(outcomes["bad"])
        with engine.connect() as connection:
            assert sorted(connection.scalars(text("SELECT n FROM t"))) == [1, 2]
    finally:
        engine.dispose()


def test_a_batch_holding_the_same_stage_twice_stores_it_once(database_url: str) -> None:
    engine = db.make_engine(database_url)
    sessions = db.make_sessionmaker(engine)
    group = db._group_commits.setdefault(engine, db._GroupCommit())
    redactor = Redactor()
    answers: dict[int, object] = {}

    def deliver(slot: int, job: int) -> None:
        body = _body(job)
        answers[slot] = store_event(sessions, body, json.loads(body), {}, redactor)

    try:
        known = store_event(sessions, _body(7), json.loads(_body(7)), {}, redactor)  # stored before the batch
        _queue_behind_a_writer(
            group, [threading.Thread(target=deliver, args=args) for args in ((0, 1), (1, 1), (2, 2), (3, 7))]
        )
        first, second, other, old = (answers[slot] for slot in range(4))
        assert {first.duplicate, second.duplicate} == {False, True}  # type: ignore[attr-defined]
        assert first.event_id == second.event_id  # type: ignore[attr-defined]
        assert other.duplicate is False and other.event_id != first.event_id  # type: ignore[attr-defined]
        assert old.duplicate is True and old.event_id == known.event_id  # type: ignore[attr-defined]
        with engine.connect() as connection:
            assert connection.scalar(select(func.count()).select_from(Event)) == 3
    finally:
        engine.dispose()
