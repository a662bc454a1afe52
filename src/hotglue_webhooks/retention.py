"""Retention: delete events (with their actions) and rejections older than N days, and
incidents closed and snoozes ended longer ago than that.

Deletes in small batches, each its own short transaction, and rests as long as each
batch took before the next: ingest never waits long for the write lock (SQLite) and
its commits do not queue behind a stream of purge WAL (PostgreSQL); a purge gives at
least half of the time to everyone else. The worker purges at most once per ``purge_interval_seconds``
across all worker processes (the last purge time lives in ``meta``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hotglue_webhooks.metrics import count_purge
from hotglue_webhooks.storage.db import write_session
from hotglue_webhooks.storage.incidents import purge_closed
from hotglue_webhooks.storage.models import ActionRecord, Command, Event, Meta, Rejection, SnoozeRow

LAST_PURGE_KEY = "retention.last_purge"


@dataclass(frozen=True)
class PurgeResult:
    """What a purge removed, and the cut-off it used (aware UTC)."""

    cutoff: datetime
    events: int
    actions: int
    rejections: int
    incidents: int = 0
    """Incidents closed (resolved, expired) before the cut-off, with their members."""
    snoozes: int = 0
    """Snoozes that ended (summary queued) before the cut-off."""


def purge(
    sessions: sessionmaker[Session],
    retention_days: int,
    now: datetime | None = None,
    batch_size: int = 100,
    progress: Callable[[int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PurgeResult:
    """Delete everything received more than ``retention_days`` days before ``now``.

    ``batch_size`` events (with their actions) per transaction; after each, ``sleep`` as
    many seconds as it took. ``progress`` is called with the number of events deleted
    after each batch.
    """
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=retention_days)
    events = actions = rejections = 0
    for session, ids in _batches(sessions, Event, cutoff, batch_size, sleep):
        actions += session.execute(delete(ActionRecord).where(ActionRecord.event_id.in_(ids))).rowcount  # type: ignore[attr-defined]
        events += session.execute(delete(Event).where(Event.id.in_(ids))).rowcount  # type: ignore[attr-defined]
        if progress:
            progress(len(ids))
    for session, ids in _batches(sessions, Rejection, cutoff, batch_size, sleep):
        rejections += session.execute(delete(Rejection).where(Rejection.id.in_(ids))).rowcount  # type: ignore[attr-defined]
    # Incidents and snoozes are few (one per outage, one per person's click): one statement each.
    with write_session(sessions) as session:
        incidents, _members = purge_closed(session.connection(), cutoff)
        snoozes = session.execute(
            delete(SnoozeRow).where(SnoozeRow.until < cutoff, SnoozeRow.ended_at.is_not(None))
        ).rowcount  # type: ignore[attr-defined]
        # Commands (who clicked what) go with the events they acted on; their response_url with them.
        session.execute(delete(Command).where(Command.requested_at < cutoff))
    _set_last_purge(sessions, now)
    count_purge(events, actions, rejections)
    return PurgeResult(
        cutoff=cutoff, events=events, actions=actions, rejections=rejections, incidents=incidents, snoozes=snoozes
    )


def _batches(
    sessions: sessionmaker[Session],
    model: type[Event] | type[Rejection],
    cutoff: datetime,
    batch_size: int,
    sleep: Callable[[float], None],
) -> Iterator[tuple[Session, list[int]]]:
    """Yield ``(session, ids)``: up to ``batch_size`` ids of ``model`` rows received before
    ``cutoff``, oldest first, each batch in its own write transaction (committed when the
    caller asks for the next), then ``sleep`` as long as that transaction took."""
    took = 0.0
    while True:
        sleep(took)
        started = time.monotonic()
        with write_session(sessions) as session:
            ids = list(
                session.scalars(
                    select(model.id).where(model.received_at < cutoff).order_by(model.id).limit(batch_size)
                )
            )
            if not ids:
                return
            yield session, ids
        took = time.monotonic() - started


def _stamp(moment: datetime) -> str:
    """Format a time so that string order is time order (fixed width, UTC, microseconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _set_last_purge(sessions: sessionmaker[Session], now: datetime) -> None:
    with write_session(sessions) as session:
        row = session.get(Meta, LAST_PURGE_KEY)
        if row is None:
            session.add(Meta(key=LAST_PURGE_KEY, value=_stamp(now)))
        else:
            row.value = _stamp(now)


def last_purge(sessions: sessionmaker[Session]) -> datetime | None:
    """Return when the last purge finished, or None if there was none."""
    with sessions() as session:
        row = session.get(Meta, LAST_PURGE_KEY)
    return datetime.fromisoformat(row.value) if row else None


def claim_purge_slot(sessions: sessionmaker[Session], now: datetime, interval_seconds: float) -> bool:
    """Return True for exactly one caller per ``interval_seconds`` across all processes."""
    return claim_slot(sessions, LAST_PURGE_KEY, now, interval_seconds)


def claim_slot(sessions: sessionmaker[Session], key: str, now: datetime, interval_seconds: float) -> bool:
    """Return True for exactly one caller per ``interval_seconds`` across all processes,
    for the periodic job named ``key`` (its last start is the ``meta`` row ``key``)."""
    not_after = _stamp(now - timedelta(seconds=interval_seconds))
    try:
        with write_session(sessions) as session:
            if session.get(Meta, key) is None:
                session.add(Meta(key=key, value=_stamp(now)))
                return True
            result = session.execute(
                update(Meta).where(Meta.key == key, Meta.value <= not_after).values(value=_stamp(now))
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]
    except IntegrityError:
        return False  # another worker inserted the first row at the same moment


def oldest_event(sessions: sessionmaker[Session]) -> datetime | None:
    """Return the receipt time of the oldest stored event, or None."""
    with sessions() as session:
        return session.scalar(select(func.min(Event.received_at)))
