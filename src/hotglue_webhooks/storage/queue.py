"""The work queue kept in our own event table: claim an event with a lease, release it.

Events of one tenant (``order_group``) are handed out one at a time, in ``order_at``
(HotGlue's ``last_updated``, else receipt) order: an event is claimable only when no
earlier event of its group is still open. Different tenants run in parallel.
PostgreSQL claims with ``FOR UPDATE SKIP LOCKED``; SQLite serialises writers with
``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Select, TextClause, and_, bindparam, exists, literal_column, or_, select, text, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from hotglue_webhooks.storage.db import write_session
from hotglue_webhooks.storage.models import (
    DUE_SQL,
    EVENT_OPEN_STATES,
    OPEN_SQL,
    EVENT_PENDING,
    EVENT_PROCESSING,
    EVENT_RETRYING,
    Event,
    UTCDateTime,
)


def _first_of_its_tenant():  # type: ignore[no-untyped-def]
    """No earlier event of the same ``order_group`` is still open.

    Written with literal states so that it matches the partial index
    ``ix_events_open_order`` (models.OPEN_SQL): each check reads only the tenant's open
    events, not its whole history.
    """
    earlier = aliased(Event)
    return ~exists().where(
        earlier.order_group == Event.order_group,
        earlier.state.in_([literal_column(f"'{state}'") for state in EVENT_OPEN_STATES]),
        or_(
            earlier.order_at < Event.order_at,
            and_(earlier.order_at == Event.order_at, earlier.id < Event.id),
        ),
    )


def _candidates(now: datetime, dialect: str) -> list[Select[int] | TextClause]:
    """The claim queries, in the order they are tried; each returns at most one id.

    First an event whose worker died (its lease expired: few rows are ``processing``),
    then the earliest due pending or retrying one, walked in ``ix_events_due`` order
    (models.DUE_SQL) and stopped at the first whose tenant has nothing earlier open. A
    single query with both in an OR cannot use an index for its order: it read and
    sorted the whole backlog on every claim.
    """
    order = (Event.next_attempt_at, Event.order_at, Event.id)
    expired = (
        select(Event.id)
        .where(Event.state == EVENT_PROCESSING, Event.lease_expires_at < now, _first_of_its_tenant())
        .order_by(*order)
        .limit(1)
    )
    due = (
        select(Event.id)
        .where(
            Event.state.in_([literal_column(f"'{state}'") for state in (EVENT_PENDING, EVENT_RETRYING)]),
            Event.next_attempt_at <= now,
            _first_of_its_tenant(),
        )
        .order_by(*order)
        .limit(1)
    )
    if dialect == "sqlite":
        # SQLite's planner prefers ix_events_queue for the state test, then sorts every
        # due event and runs the tenant check on each; told the index, it stops early.
        # SQLAlchemy renders no index hint for SQLite, hence the text.
        return [expired, _SQLITE_DUE.bindparams(bindparam("now", now, type_=UTCDateTime()))]
    return [expired, due]


_SQLITE_DUE = text(
    f"""SELECT e.id FROM events AS e INDEXED BY ix_events_due
    WHERE e.{DUE_SQL} AND e.next_attempt_at <= :now
      AND NOT EXISTS (
        SELECT 1 FROM events AS earlier
        WHERE earlier.order_group = e.order_group AND earlier.{OPEN_SQL}
          AND (earlier.order_at < e.order_at OR (earlier.order_at = e.order_at AND earlier.id < e.id)))
    ORDER BY e.next_attempt_at, e.order_at, e.id LIMIT 1"""
)


def claim_next(
    sessions: sessionmaker[Session], owner: str, now: datetime, lease_seconds: float
) -> int | None:
    """Lease the next due event to ``owner`` for ``lease_seconds``; return its id or None."""
    with write_session(sessions) as session:
        dialect = session.get_bind().dialect.name
        event_id = None
        for query in _candidates(now, dialect):
            if dialect == "postgresql" and isinstance(query, Select):
                query = query.with_for_update(skip_locked=True)
            event_id = session.scalar(query)
            if event_id is not None:
                break
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
