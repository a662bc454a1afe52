"""Our own Slack bookkeeping: open alert threads, and per-channel pacing.

Pacing: Slack allows about one message per second per channel
(https://api.slack.com/methods/chat.postMessage#rate_limiting); the sender paces itself
instead of retrying into 429s. The next free moment of each channel lives in the
database, so every worker process shares it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Insert, Update, and_, bindparam, case, insert, or_, select, update

from hotglue_webhooks.ingest import parse_time
from hotglue_webhooks.rules import ALERT_OPEN, ALERT_REPEAT, ALERT_RESOLVE, OpenAlert
from hotglue_webhooks.rules.model import ALERT_EDIT
from hotglue_webhooks.storage.db import insert_unless_present, transaction
from hotglue_webhooks.storage.models import SlackPacing, SlackThread, UTCDateTime


_THREAD_COLUMNS = (
    SlackThread.thread_key, SlackThread.fingerprint, SlackThread.channel, SlackThread.channel_name,
    SlackThread.ts, SlackThread.count, SlackThread.first_at, SlackThread.last_at, SlackThread.text,
    SlackThread.blocks,
)
_OPEN_THREADS = select(*_THREAD_COLUMNS).where(
    SlackThread.tenant == bindparam("tenant"), SlackThread.flow_id == bindparam("flow_id"),
    SlackThread.resolved_at.is_(None),
)
# [with_before]: only threads opened by events earlier in processing order. Built once:
# this runs for every failure event.
_OPEN_THREADS_QUERIES = {
    False: _OPEN_THREADS.order_by(SlackThread.first_at, SlackThread.id),
    True: _OPEN_THREADS.where(
        or_(
            SlackThread.opened_order_at < bindparam("order_at", type_=UTCDateTime()),
            and_(
                SlackThread.opened_order_at == bindparam("order_at", type_=UTCDateTime()),
                SlackThread.opened_event_id < bindparam("event_id"),
            ),
        )
    ).order_by(SlackThread.first_at, SlackThread.id),
}


def open_alerts(
    connection: Connection, tenant: str, flow_id: str, before: tuple[datetime, int] | None = None
) -> tuple[OpenAlert, ...]:
    """Return the unresolved alert threads of a tenant's flow, oldest first (a read
    transaction of its own on ``connection``).

    ``before`` = (``order_at``, id) of the event being decided: only threads opened by
    events earlier in processing order are returned. None returns all.
    """
    values: dict[str, Any] = {"tenant": tenant, "flow_id": flow_id}
    if before is not None:
        values["order_at"], values["event_id"] = before
    with transaction(connection, write=False):
        rows = connection.execute(_OPEN_THREADS_QUERIES[before is not None], values).all()
    return tuple(
        OpenAlert(
            thread_key=row.thread_key,
            fingerprint=row.fingerprint,
            channel=row.channel,
            channel_name=row.channel_name or row.channel,
            ts=row.ts,
            count=row._mapping["count"],  # not row.count: that name is also a tuple method
            first_at=row.first_at,
            last_at=row.last_at,
            text=row.text,
            blocks=tuple(row.blocks),
        )
        for row in rows
    )


_OPEN_THREAD = insert(SlackThread)
_THREAD_OPEN = (SlackThread.thread_key == bindparam("key"), SlackThread.resolved_at.is_(None))
_AT = bindparam("at", type_=UTCDateTime())
# One more failure: count it, and move ``last_at`` later only (never back).
_REPEAT = (
    update(SlackThread)
    .where(*_THREAD_OPEN)
    .values(count=SlackThread.count + 1, last_at=case((SlackThread.last_at < _AT, _AT), else_=SlackThread.last_at))
)
_RESOLVE = update(SlackThread).where(*_THREAD_OPEN).values(resolved_at=bindparam("now", type_=UTCDateTime()))


def record_alert(
    connection: Connection,
    alert: Mapping[str, Any],
    posted: Mapping[str, Any],
    params: Mapping[str, Any],
    opener: tuple[datetime, int],
    now: datetime,
) -> None:
    """Apply one successful alert message to the threads (within the caller's write
    transaction on ``connection``; one statement, no ORM unit of work).

    ``alert`` is the action's ``params["alert"]``; ``posted`` is Slack's answer
    (``channel`` id and ``ts``); ``opener`` is the event's (``order_at``, id). "open"
    starts a thread, "repeat" counts one more failure on every open thread with that key,
    "resolve" closes every open thread with that key, "edit" keeps the message's new
    text and blocks on the threads of that message (a command updated it).
    """
    op, key = alert.get("op"), str(alert.get("thread_key"))
    at = parse_time(alert.get("at") if isinstance(alert.get("at"), str) else None) or now
    if op == ALERT_OPEN:
        # One message may open a thread per pair (the grouped silence notice): same ts.
        pairs: list[Any] = alert["pairs"] if isinstance(alert.get("pairs"), list) else [alert]
        connection.execute(
            _OPEN_THREAD,
            [{
                "thread_key": str(pair.get("thread_key") or key),
                "tenant": pair.get("tenant"),
                "flow_id": pair.get("flow_id"),
                "fingerprint": str(alert.get("fingerprint")),
                "opened_order_at": opener[0],
                "opened_event_id": opener[1],
                "channel": str(posted.get("channel") or params["channel"]),
                "channel_name": str(params["channel"]),
                "ts": str(posted["ts"]),
                "text": params["text"],
                "blocks": list(params.get("blocks") or []),
                "count": 1,
                "first_at": at,
                "last_at": at,
            } for pair in pairs],
        )
    elif op == ALERT_REPEAT:
        connection.execute(_REPEAT, {"key": key, "at": at})
    elif op == ALERT_RESOLVE:
        connection.execute(_RESOLVE, {"key": key, "now": now})
    elif op == ALERT_EDIT:
        connection.execute(
            update(SlackThread)
            .where(SlackThread.channel == str(posted.get("channel") or params["channel"]), SlackThread.ts == str(params["ts"]))
            .values(text=params["text"], blocks=list(params.get("blocks") or []))
        )


@functools.cache
def _upserts(dialect: str) -> tuple[Insert, Update]:
    """(create the channel's row unless present, move its ``next_at`` later only)."""
    create = insert_unless_present(dialect, SlackPacing.__table__, "channel").values(  # type: ignore[arg-type]
        channel=bindparam("name"), next_at=bindparam("at", type_=UTCDateTime())
    )
    later = (
        update(SlackPacing)
        .where(SlackPacing.channel == bindparam("name"), SlackPacing.next_at < bindparam("at", type_=UTCDateTime()))
        .values(next_at=bindparam("at", type_=UTCDateTime()))
    )
    return create, later


def push_back(connection: Connection, channel: str, until: datetime) -> None:
    """Book ``channel`` until ``until`` (Slack answered 429 with Retry-After): every worker
    waits. Within the caller's write transaction."""
    for statement in _upserts(connection.dialect.name):
        connection.execute(statement, {"name": channel, "at": until})


_BOOKED = select(SlackPacing.next_at).where(SlackPacing.channel == bindparam("name"))
_BOOKED_FOR_UPDATE = _BOOKED.with_for_update()


def reserve_slot(
    connection: Connection, channel: str, now: datetime, interval_seconds: float, horizon_seconds: float
) -> tuple[bool, datetime]:
    """Reserve the next free moment to post to ``channel``, within the caller's write
    transaction (the one that marks the message's action running).

    Returns ``(True, at)`` when a slot within ``horizon_seconds`` of ``now`` was reserved
    (send at ``at``), or ``(False, at)`` without reserving when the channel is booked until
    ``at`` (try again then). Slots are ``interval_seconds`` apart.
    """
    if interval_seconds <= 0:
        # Unpaced: nothing to reserve, so no row lock that every worker would queue on;
        # only a 429's booking (push_back) makes the channel wait.
        booked = connection.execute(_BOOKED, {"name": channel}).scalar()
        slot = max(booked or now, now)
        return (slot - now).total_seconds() <= horizon_seconds, slot
    create, later = _upserts(connection.dialect.name)
    connection.execute(create, {"name": channel, "at": now})
    # PostgreSQL: the row lock queues the workers posting to this channel until commit.
    # SQLite: the write transaction already excludes every other writer.
    slot = max(connection.execute(_BOOKED_FOR_UPDATE, {"name": channel}).scalar_one(), now)
    if (slot - now).total_seconds() > horizon_seconds:
        return False, slot
    connection.execute(later, {"name": channel, "at": slot + timedelta(seconds=interval_seconds)})
    return True, slot
