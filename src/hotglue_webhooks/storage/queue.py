"""The work queue kept in our own event table: claim an event with a lease, release it.

Events of one tenant (``order_group``) are handed out one at a time, in ``order_at``
(HotGlue's ``last_updated``, else receipt) order: an event is claimable only when no
earlier event of its group is still open. Different tenants run in parallel. Urgent
events (those that may alert or change a schedule) and the earlier events of their
tenant are claimed before the rest.
PostgreSQL claims with ``FOR UPDATE SKIP LOCKED``; SQLite serialises writers with
``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, TextClause, and_, bindparam, exists, literal_column, or_, select, text, update
from sqlalchemy.orm import aliased

from hotglue_webhooks.storage.db import transaction
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


@dataclass(frozen=True)
class Claim:
    """An event leased to ``owner``, with what processing it needs, read by the claim.

    ``attempts`` counts this claim; ``decided`` is whether its actions are recorded
    (a retried or replayed event skips deciding); ``until`` is when the lease taken by
    the claim expires.
    """

    id: int
    owner: str
    payload: dict[str, Any]
    dedupe_key: str
    order_at: datetime
    attempts: int
    decided: bool
    until: datetime
    source: str = "webhook"
    """``webhook`` or ``reconciled`` (the stage was found in HotGlue's job list)."""

    @property
    def order(self) -> tuple[datetime, int]:
        """(``order_at``, id): the event's place in its tenant's processing order."""
        return self.order_at, self.id


_NOW = bindparam("now", type_=UTCDateTime())
_ORDER = (Event.next_attempt_at, Event.order_at, Event.id)
# An event whose worker died (its lease expired): few rows are ``processing``.
_EXPIRED = (
    select(Event.id)
    .where(Event.state == EVENT_PROCESSING, Event.lease_expires_at < _NOW, _first_of_its_tenant())
    .order_by(*_ORDER)
    .limit(1)
)
# The earliest due pending or retrying event, walked in ``ix_events_due`` order
# (models.DUE_SQL) and stopped at the first whose tenant has nothing earlier open.
_DUE = (
    select(Event.id)
    .where(
        Event.state.in_([literal_column(f"'{state}'") for state in (EVENT_PENDING, EVENT_RETRYING)]),
        Event.next_attempt_at <= _NOW,
        _first_of_its_tenant(),
    )
    .order_by(*_ORDER)
    .limit(1)
)
# SQLite's planner prefers ix_events_queue for the state test, then sorts every due
# event and runs the tenant check on each; told the index, it stops early. SQLAlchemy
# renders no index hint for SQLite, hence the text.
_SQLITE_DUE = text(
    f"""SELECT e.id FROM events AS e INDEXED BY ix_events_due
    WHERE e.{DUE_SQL} AND e.next_attempt_at <= :now
      AND NOT EXISTS (
        SELECT 1 FROM events AS earlier
        WHERE earlier.order_group = e.order_group AND earlier.{OPEN_SQL}
          AND (earlier.order_at < e.order_at OR (earlier.order_at = e.order_at AND earlier.id < e.id)))
    ORDER BY e.next_attempt_at, e.order_at, e.id LIMIT 1"""
).bindparams(_NOW)
# Urgent first (issue 11): the earliest due urgent event (a ``*_FAILED`` stage or a full
# sync's end, rules.decide.is_urgent), walked in ``ix_events_urgent_due`` order, brings
# its tenant's head: the tenant's earliest open event, when it is due. So an alert waits
# only behind its own tenant's earlier stages (per-tenant order holds), never behind the
# progress stages of other tenants; and those earlier stages of its tenant jump the line
# with it. The head is one probe of ``ix_events_open_order``.
_urgent = aliased(Event, name="u")
_open = aliased(Event, name="o")
_HEAD = (
    select(_open.id)
    .where(
        _open.order_group == _urgent.order_group,
        _open.state.in_([literal_column(f"'{state}'") for state in EVENT_OPEN_STATES]),
    )
    .order_by(_open.order_at, _open.id)
    .limit(1)
    .scalar_subquery()
)
_URGENT = (
    select(Event.id)
    .select_from(_urgent)
    .join(Event, Event.id == _HEAD)
    .where(
        _urgent.state.in_([literal_column(f"'{state}'") for state in (EVENT_PENDING, EVENT_RETRYING)]),
        _urgent.urgent,
        _urgent.next_attempt_at <= _NOW,
        Event.state.in_([EVENT_PENDING, EVENT_RETRYING]),
        Event.next_attempt_at <= _NOW,
    )
    .order_by(_urgent.next_attempt_at, _urgent.order_at, _urgent.id)
    .limit(1)
)
_SQLITE_URGENT = text(
    f"""SELECT h.id FROM events AS u INDEXED BY ix_events_urgent_due
    JOIN events AS h ON h.id = (
        SELECT o.id FROM events AS o
        WHERE o.order_group = u.order_group AND o.{OPEN_SQL}
        ORDER BY o.order_at, o.id LIMIT 1)
    WHERE u.{DUE_SQL} AND u.urgent AND u.next_attempt_at <= :now
      AND h.state IN ('{EVENT_PENDING}', '{EVENT_RETRYING}') AND h.next_attempt_at <= :now
    ORDER BY u.next_attempt_at, u.order_at, u.id LIMIT 1"""
).bindparams(_NOW)
# The statements are built once: building them (an aliased table, the expressions) per
# claim was a tenth of a worker's time.
_CANDIDATES: dict[str, tuple[Select[int] | TextClause, ...]] = {
    # A single query with both in an OR cannot use an index for its order: it read and
    # sorted the whole backlog on every claim.
    "postgresql": (
        _EXPIRED.with_for_update(skip_locked=True),
        _URGENT.with_for_update(skip_locked=True, of=Event),
        _DUE.with_for_update(skip_locked=True),
    ),
    "sqlite": (_EXPIRED, _SQLITE_URGENT, _SQLITE_DUE),
}
_TAKE = (
    update(Event)
    .where(Event.id == bindparam("event_id"))
    .values(
        state=EVENT_PROCESSING,
        lease_owner=bindparam("owner"),
        lease_expires_at=bindparam("until", type_=UTCDateTime()),
        attempts=Event.attempts + 1,
    )
    .returning(Event.payload, Event.dedupe_key, Event.order_at, Event.attempts, Event.decided_at, Event.source)
)


def claim_next(
    connection: Connection, owner: str, now: datetime, lease_seconds: float, expired: bool = True
) -> Claim | None:
    """Lease the next due event to ``owner`` for ``lease_seconds``; None when none is due.

    One write transaction on ``connection``: find the event (with ``expired``, first one
    whose worker died; then the head of the tenant of the earliest due urgent event; then
    the earliest due one whose tenant has nothing earlier open),
    take it, and read it back with the take. A worker looks for expired leases only
    now and then (they are rare; the query is a tenth of a claim's cost).
    """
    queries = _CANDIDATES.get(connection.dialect.name, _CANDIDATES["postgresql"])
    with transaction(connection):
        event_id = None
        for query in queries if expired else queries[1:]:
            event_id = connection.execute(query, {"now": now}).scalar()
            if event_id is not None:
                break
        if event_id is None:
            return None
        until = now + timedelta(seconds=lease_seconds)
        row = connection.execute(_TAKE, {"event_id": event_id, "owner": owner, "until": until}).one()
        return Claim(
            event_id, owner, row.payload, row.dedupe_key, row.order_at, row.attempts, row.decided_at is not None, until,
            row.source,
        )


# The claim's event, still leased to the claim's owner.
_HELD = (Event.id == bindparam("event_id"), Event.lease_owner == bindparam("owner"), Event.state == EVENT_PROCESSING)
# The same, as a condition for a statement on another table (parameters ``held_event``
# and ``held_owner``): the worker marks an action running only while it holds the event.
LEASE_HELD = exists().where(
    Event.id == bindparam("held_event"), Event.lease_owner == bindparam("held_owner"),
    Event.state == EVENT_PROCESSING,
)
_RENEW = update(Event).where(*_HELD).values(lease_expires_at=bindparam("until", type_=UTCDateTime()))


def renew(connection: Connection, claim: Claim, now: datetime, lease_seconds: float) -> datetime | None:
    """Extend the claim's lease (within the caller's transaction); return when it now
    expires, or None when it was lost to another worker."""
    until = now + timedelta(seconds=lease_seconds)
    result = connection.execute(_RENEW, {"event_id": claim.id, "owner": claim.owner, "until": until})
    return until if result.rowcount else None


_RELEASE = (
    update(Event)
    .where(*_HELD)
    .values(
        state=bindparam("state"),
        next_attempt_at=bindparam("next_attempt_at", type_=UTCDateTime()),
        lease_owner=None,
        lease_expires_at=None,
        processed_at=bindparam("processed_at", type_=UTCDateTime()),
        last_error=bindparam("last_error"),
    )
)


def release(
    connection: Connection,
    claim: Claim,
    *,
    state: str,
    next_attempt_at: datetime,
    processed_at: datetime | None = None,
    last_error: str | None = None,
) -> bool:
    """Hand the claimed event back in ``state`` (within the caller's transaction).

    Returns False (and changes nothing) when the claim's owner no longer holds the lease.
    """
    result = connection.execute(
        _RELEASE,
        {
            "event_id": claim.id, "owner": claim.owner, "state": state, "next_attempt_at": next_attempt_at,
            "processed_at": processed_at, "last_error": last_error,
        },
    )
    return bool(result.rowcount)
