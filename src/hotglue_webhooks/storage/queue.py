"""The work queue kept in our own event table: claim an event with a lease, release it.

Events of one tenant (``order_group``) are handed out one at a time, in ``order_at``
(HotGlue's ``last_updated``, else receipt) order: an event is claimable only when no
earlier event of its group is still open. Different tenants run in parallel.
PostgreSQL claims with ``FOR UPDATE SKIP LOCKED``; SQLite serialises writers with
``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from hotglue_webhooks.storage.db import write_session
from hotglue_webhooks.storage.models import (
    EVENT_OPEN_STATES,
    EVENT_PENDING,
    EVENT_PROCESSING,
    EVENT_RETRYING,
    Event,
)


def _claimable(now: datetime):  # type: ignore[no-untyped-def]
    earlier = aliased(Event)
    due = or_(
        and_(Event.state.in_((EVENT_PENDING, EVENT_RETRYING)), Event.next_attempt_at <= now),
        # A worker that died (or lost its lease) leaves its event to be taken again.
        and_(Event.state == EVENT_PROCESSING, Event.lease_expires_at < now),
    )
    blocked = exists().where(
        earlier.order_group == Event.order_group,
        earlier.state.in_(EVENT_OPEN_STATES),
        or_(
            earlier.order_at < Event.order_at,
            and_(earlier.order_at == Event.order_at, earlier.id < Event.id),
        ),
    )
    return and_(due, ~blocked)


def claim_next(
    sessions: sessionmaker[Session], owner: str, now: datetime, lease_seconds: float
) -> int | None:
    """Lease the next due event to ``owner`` for ``lease_seconds``; return its id or None."""
    with write_session(sessions) as session:
        query = (
            select(Event.id)
            .where(_claimable(now))
            .order_by(Event.next_attempt_at, Event.order_at, Event.id)
            .limit(1)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        event_id = session.scalar(query)
        if event_id is None:
            return None
        session.execute(
            update(Event)
            .where(Event.id == event_id)
            .values(
                state=EVENT_PROCESSING,
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=Event.attempts + 1,
            )
        )
        return event_id


def renew_lease(
    sessions: sessionmaker[Session], event_id: int, owner: str, now: datetime, lease_seconds: float
) -> bool:
    """Extend ``owner``'s lease on the event; False when the lease was lost to another worker."""
    with write_session(sessions) as session:
        result = session.execute(
            update(Event)
            .where(Event.id == event_id, Event.lease_owner == owner, Event.state == EVENT_PROCESSING)
            .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def release(
    session: Session,
    event_id: int,
    owner: str,
    *,
    state: str,
    next_attempt_at: datetime,
    processed_at: datetime | None = None,
    last_error: str | None = None,
) -> bool:
    """Hand the event back in ``state`` (within the caller's transaction).

    Returns False (and changes nothing) when ``owner`` no longer holds the lease.
    """
    result = session.execute(
        update(Event)
        .where(Event.id == event_id, Event.lease_owner == owner, Event.state == EVENT_PROCESSING)
        .values(
            state=state,
            next_attempt_at=next_attempt_at,
            lease_owner=None,
            lease_expires_at=None,
            processed_at=processed_at,
            last_error=last_error,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
